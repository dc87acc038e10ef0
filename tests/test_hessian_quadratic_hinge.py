"""The quadratic hinge's Hessian against dense float64 oracles, and its Gauss–Newton check.

ℓ = ½·max(0, 1 − y f)² has ℓ'' = 1 on the unsatisfied examples, so (THEORY.md §3, §5)

    H = Σ_i w_i ℓ'_i ∇²f_i  +  Σ_i w_i ℓ''_i ∇f_i ∇f_iᵀ = C + G,

C the circuit part (zero diagonal and trace), G the Gauss–Newton part. The oracles are autograd
of the risk written out by hand as a function of the flat parameter vector, with the gates
fixed (the numpy engine's ReLU gates at T = 0, the operator's stored sample at T > 0), and the
per-example Jacobian J of the outputs from ``torch.autograd.functional.jacobian``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from cases import TINY_WIDTHS
from test_hessian_operator import data, mlp, relu_gates_numpy, tiny_vgg
from torch.nn import functional as F

from umwelt.errors import ConfigError
from umwelt.nn.hessian import (
    CountedOperator,
    HingeCheckWarning,
    MatrixOperator,
    ModelHessian,
    gauss_newton_part,
    hinge_checks,
)

D = torch.float64
AD = ["gated", "fwd-over-rev", "rev-over-fwd", "auto"]
HINGE_KEYS = {
    "diag_max_abs",
    "diag_rel",
    "n_coords",
    "trace",
    "trace_se",
    "trace_rel",
    "trace_method",
    "scale",
    "diag_ok",
    "trace_ok",
    "ok",
}
GN_KEYS = {
    "gn_diag_max_abs",
    "gn_trace",
    "gn_active",
    "circuit_diag_max_abs",
    "circuit_diag_rel",
    "circuit_trace",
    "circuit_trace_se",
    "circuit_trace_rel",
}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def qh(f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The quadratic hinge by hand (not the package's)."""
    return 0.5 * torch.clamp(1 - y * f, min=0) ** 2


def flat(layers) -> torch.Tensor:
    return torch.cat([m.weight.detach().reshape(-1) for m in layers])


def split(th: torch.Tensor, shapes) -> list[torch.Tensor]:
    return [p.reshape(s) for p, s in zip(th.split([math.prod(s) for s in shapes]), shapes)]


def mlp_outputs(model, X, gates):
    """``θ -> f (n,)`` of the MLP with fixed ``gates``."""
    shapes = [lin.weight.shape for lin in model.linears]

    def f(th):
        a = X
        Ws = split(th, shapes)
        for l, W in enumerate(Ws):
            z = a @ W.T  # (n, n_l)
            a = z * gates[l].to(D) if l < len(Ws) - 1 else z
        return a[:, 0]

    return f


def vgg_outputs(model, X, gates):
    """``θ -> f (n,)`` of the VGG with fixed ``gates``, from F.conv2d by hand."""
    shapes = [m.weight.shape for m in model.weight_layers]
    n_conv = len(model.convs)

    def f(th):
        Ws = split(th, shapes)
        a = X
        for l, pool in enumerate(model.arch.pool_after):
            a = F.conv2d(a, Ws[l], padding=1) * gates[l].to(D)
            a = F.max_pool2d(a, 2) if pool else a
        a = a.flatten(1)
        for l in range(n_conv, len(Ws)):
            a = a @ Ws[l].T
            a = a * gates[l].to(D) if l < len(Ws) - 1 else a
        return a[:, 0]

    return f


def parts(outputs, theta, y, w):
    """Dense oracles ``(H, G, C, J)``: the Hessian of Σ w_i qh_i, its Gauss–Newton part
    Jᵀ dg(w ℓ'') J with ℓ'' = 1[1 − y f > 0] in closed form, the circuit part Σ w_i ℓ'_i ∇²f_i
    with ℓ'_i = −y_i (1 − y_i f_i)₊ held fixed, and the Jacobian J (n, N)."""
    H = torch.autograd.functional.hessian(lambda th: (w * qh(outputs(th), y)).sum(), theta)
    J = torch.autograd.functional.jacobian(outputs, theta)  # (n, N)
    u = 1 - y * outputs(theta).detach()
    G = J.T @ ((w * (u > 0).to(D))[:, None] * J)
    c = (w * -y * torch.clamp(u, min=0)).detach()
    C = torch.autograd.functional.hessian(lambda th: (c * outputs(th)).sum(), theta)
    return H, G, C, J


def mixed(model, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(X, y)`` rescaled to a median |f| ≠ 0 of 1.5 (with the operator's fixed gates), labelled
    so that every third example is misclassified: satisfied and unsatisfied examples both."""
    n = X.shape[0]
    for _ in range(2):
        ones = torch.ones(n, dtype=D)
        f = ModelHessian(model, X, ones, loss="quadratic-hinge", ad="fwd-over-rev").outputs()
        X = X * (1.5 / f[f != 0].abs().median())  # (a dead unit may give f = 0)
    flip = torch.where(torch.arange(n) % 3 == 0, -1.0, 1.0).to(D)
    return X, torch.where(f >= 0, 1.0, -1.0).to(D) * flip


def mlp_case(name: str, T: float, n: int = 9):
    model = mlp(name, T)
    X, _ = data(n, (model.widths[0],))
    return model, *mixed(model, X)


# -- the Hessian equals the dense oracle, every ad mode -------------------------------------------


@pytest.mark.parametrize("T", [0.0, 0.5])
@pytest.mark.parametrize("name", sorted(TINY_WIDTHS))
def test_mlp_hessian_equals_dense_oracle_in_every_ad_mode(name, T):
    model, X, y = mlp_case(name, T)
    ops = {}
    for ad in AD:
        masks = ops["gated"].gate_masks if ops else None
        ops[ad] = ModelHessian(
            model, X, y, loss="quadratic-hinge", batch_size=4, ad=ad, gate_masks=masks
        )
    assert ops["auto"].ad == "gated" and ops["auto"].ad_fallback is None
    gates = relu_gates_numpy(model, X) if T == 0 else ops["gated"].gate_masks
    outputs = mlp_outputs(model, X, gates)
    theta = flat(model.linears)
    w = torch.full((X.shape[0],), 1 / X.shape[0], dtype=D)
    H, G, C, _ = parts(outputs, theta, y, w)
    active = 1 - y * outputs(theta) > 0
    assert 0 < int(active.sum()) < X.shape[0]  # both kinds of example
    assert torch.allclose(ops["gated"].outputs(), outputs(theta), rtol=0, atol=1e-14)
    scale = H.abs().max().item()
    assert scale > 0
    for ad, op in ops.items():
        assert (op.dense() - H).abs().max().item() <= 1e-12 * scale, ad
    # H = C + G: the circuit part and the (PSD) Gauss–Newton part
    assert (C + G - H).abs().max().item() <= 1e-12 * scale
    assert torch.linalg.eigvalsh(G).min().item() >= -1e-12 * scale
    assert C.diagonal().abs().max().item() == 0.0 and G.diagonal().max().item() > 0


@pytest.mark.parametrize("T", [0.0, 0.7])
def test_tiny_vgg_hessian_equals_the_oracle_in_every_ad_mode(T):
    model = tiny_vgg(T)
    X, y = mixed(model, data(5, (1, 32, 32))[0])
    ops = {}
    for ad in AD:
        masks = ops["gated"].gate_masks if ops else None
        ops[ad] = ModelHessian(
            model, X, y, loss="quadratic-hinge", batch_size=3, ad=ad, gate_masks=masks
        )
    op = ops["gated"]
    assert ops["auto"].ad == "gated" and op.n == 2395
    gates = model.relu_gates(X) if T == 0 else op.gate_masks
    outputs = vgg_outputs(model, X, gates)
    theta = flat(model.weight_layers)
    f = outputs(theta)
    assert torch.allclose(op.outputs(), f, rtol=0, atol=1e-14 * f.abs().max())
    active = 1 - y * f > 0
    assert 0 < int(active.sum()) < 5

    def risk(th):
        return qh(outputs(th), y).mean()

    cols = [0, 9, 100, 2000, op.n - 1]  # conv1, conv2, a middle conv, conv8, the output layer
    V = torch.eye(op.n, dtype=D)[:, cols]
    V = torch.cat([V, torch.randn(op.n, 1, dtype=D, generator=torch.Generator().manual_seed(3))], 1)
    HV = torch.stack(
        [torch.autograd.functional.hvp(risk, theta, V[:, k])[1] for k in range(V.shape[1])], 1
    )  # (N, 6), double backward of the hand-written risk
    bound = 1e-12 * HV.abs().max()
    assert HV.abs().max() > 0
    for ad, o in ops.items():
        assert (o.matmat(V) - HV).abs().max() <= bound, ad
    # the Gauss–Newton part from the per-example Jacobian; H − G has zero diagonal
    J = torch.autograd.functional.jacobian(outputs, theta, vectorize=True)  # (5, N)
    wd = active.to(D) / 5
    gn = gauss_newton_part(op, V)
    diag_G = (wd[:, None] * J**2).sum(0)
    assert gn.n_active == int(active.sum())
    assert np.allclose(gn.diag, diag_G.numpy(), rtol=1e-12, atol=0)
    assert math.isclose(gn.trace, float(diag_G.sum()), rel_tol=1e-12)
    GV = J.T @ (wd[:, None] * (J @ V))  # (N, 6)
    assert np.allclose(gn.quadratic, (V * GV).sum(0).numpy(), rtol=1e-12, atol=0)
    circuit_diag = (HV - GV)[cols, range(len(cols))]  # (H − G)_jj at the unit columns
    assert circuit_diag.abs().max() <= bound and GV[cols, range(len(cols))].abs().max() > 0
    # the check: sampled diagonal and Hutchinson trace, no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = hinge_checks(op, n_coords=12, n_v=8, seed=1)
    assert out["ok"] and out["trace_method"] == "hutchinson" and out["gn_active"] == gn.n_active
    assert math.isclose(out["gn_trace"], gn.trace, rel_tol=1e-12)


# -- the Gauss–Newton part against Jᵀ dg(w ℓ'') J --------------------------------------------------


@pytest.mark.parametrize("T", [0.0, 0.5])
@pytest.mark.parametrize("name", ["3-4-3-1", "4-3-3-2-1"])
def test_gauss_newton_part_equals_the_jacobian_oracle(name, T):
    model, X, y = mlp_case(name, T, n=11)
    w = torch.as_tensor(np.arange(11) % 3, dtype=D) / 11  # bootstrap-like weights, some 0
    op = ModelHessian(model, X, y, loss="quadratic-hinge", batch_size=4, example_weights=w)
    gates = relu_gates_numpy(model, X) if T == 0 else op.gate_masks
    outputs = mlp_outputs(model, X, gates)
    theta = flat(model.linears)
    H, G, C, J = parts(outputs, theta, y, w)
    V = torch.randn(op.n, 5, dtype=D, generator=torch.Generator().manual_seed(2))
    gn = gauss_newton_part(op, V, example_chunk=3)
    active = (1 - y * outputs(theta) > 0) & (w > 0)
    assert gn.n_active == int(active.sum()) > 0
    assert np.allclose(gn.diag, G.diagonal().numpy(), rtol=1e-13, atol=1e-16)
    assert math.isclose(gn.trace, float(G.trace()), rel_tol=1e-13)
    assert np.allclose(gn.quadratic, (V * (G @ V)).sum(0).numpy(), rtol=1e-12, atol=1e-16)
    assert np.allclose(gn.diag, (J**2).T.numpy() @ (w * active).numpy(), rtol=1e-13)
    # the circuit part H − G: zero diagonal, zero trace, zero within-layer blocks
    scale = H.abs().max().item()
    R = op.dense() - G
    assert R.diagonal().abs().max().item() <= 1e-13 * scale
    assert abs(R.trace().item()) <= 1e-13 * scale * op.n
    assert (R - C).abs().max().item() <= 1e-12 * scale
    off = op.param_offsets
    for a, b in zip(off[:-1], off[1:]):
        assert R[a:b, a:b].abs().max().item() <= 1e-13 * scale
    # per-example products: Σ_i w_i ∇²ℓ_i V = H V
    HV = sum((w[sl][:, None, None] * P).sum(0) for sl, P in op.per_example_hvp(V, example_chunk=4))
    HV = HV.T  # (N, 5)
    assert (HV - H @ V).abs().max().item() <= 1e-12 * scale * op.n


def test_gauss_newton_part_refuses_bad_arguments():
    model, X, y = mlp_case("3-4-3-1", 0.0)
    op = ModelHessian(model, X, y, loss="quadratic-hinge")
    with pytest.raises(ConfigError, match="needs a ModelHessian, got MatrixOperator"):
        gauss_newton_part(MatrixOperator(torch.eye(3, dtype=D)))
    with pytest.raises(ConfigError, match=r"V must be \(27, k\), got \(5, 2\)"):
        gauss_newton_part(op, torch.ones(5, 2, dtype=D))
    with pytest.raises(ConfigError, match="example_chunk must be a positive integer, got 0"):
        gauss_newton_part(op, example_chunk=0)
    with pytest.raises(ConfigError, match="needs a ModelHessian .* got MatrixOperator"):
        hinge_checks(MatrixOperator(torch.eye(3, dtype=D)), gauss_newton=True)


# -- the checks --------------------------------------------------------------------------------


@pytest.mark.parametrize("T", [0.0, 0.5])
@pytest.mark.parametrize("name", ["5-5-1", "4-3-3-2-1"])
def test_quadratic_hinge_checks_report_the_gauss_newton_part(name, T):
    model, X, y = mlp_case(name, T, n=12)
    op = ModelHessian(model, X, y, loss="quadratic-hinge", batch_size=5, context="epoch 2")
    G = torch.diag(torch.as_tensor(gauss_newton_part(op).diag))
    H = op.dense()
    ticks = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = hinge_checks(op)
        counted = hinge_checks(CountedOperator(op, ticks.append))  # as sim/hessian calls it
        sampled = hinge_checks(op, n_coords=6, n_v=24, seed=3)
    assert set(out) == HINGE_KEYS | GN_KEYS and out == counted and sum(ticks) == op.n
    assert out["ok"] and out["trace_method"] == "exact" and out["n_coords"] == op.n
    # the diagonal and trace of H no longer vanish: they are those of G
    assert out["diag_max_abs"] > 0 and math.isclose(out["trace"], float(H.trace()), rel_tol=1e-13)
    assert math.isclose(out["gn_trace"], float(G.trace()), rel_tol=1e-13)
    assert math.isclose(out["gn_diag_max_abs"], out["diag_max_abs"], rel_tol=1e-13)
    assert out["circuit_diag_max_abs"] <= 1e-13 * out["diag_max_abs"]
    assert abs(out["circuit_trace"]) <= 1e-13 * out["trace"] and out["circuit_trace_se"] == 0
    assert out["gn_active"] == int((1 - y * op.outputs() > 0).sum()) > 0
    assert sampled["ok"] and sampled["trace_method"] == "hutchinson" and sampled["n_coords"] == 6
    assert sampled["circuit_trace_se"] > 0 and sampled["trace_se"] > 0
    assert abs(sampled["circuit_trace"]) <= 4 * sampled["circuit_trace_se"]
    # asked to compare with 0, as for the hinge: it fails, and says so
    with pytest.warns(HingeCheckWarning, match=r"epoch 2.*zero diagonal.*quadratic-hinge"):
        zero = hinge_checks(op, gauss_newton=False)
    assert set(zero) == HINGE_KEYS and not zero["ok"]


def test_hinge_checks_are_unchanged_for_the_hinge():
    model, X, y = mlp_case("4-3-3-2-1", 0.5, n=12)
    op = ModelHessian(model, X, y, loss="hinge", batch_size=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = hinge_checks(op)
        gn = hinge_checks(op, gauss_newton=True)  # G = 0 for the hinge: the same check
    assert set(out) == HINGE_KEYS and out["ok"] and out["diag_max_abs"] == 0.0
    assert gn["ok"] and gn["gn_trace"] == 0.0 and gn["gn_active"] == 0
    assert {k: gn[k] for k in HINGE_KEYS} == out


def test_gauss_newton_check_holds_for_logistic_and_fails_for_smooth_gates():
    model, X, y = mlp_case("3-4-3-1", 0.0, n=12)
    op = ModelHessian(model, X, y, loss="logistic")
    with pytest.warns(HingeCheckWarning, match="loss: logistic"):
        assert not hinge_checks(op)["ok"]  # unchanged: compared with 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert hinge_checks(op, gauss_newton=True)["ok"]  # diag H = diag G for any loss
    smooth = mlp("3-4-3-1", 0.5).set_mode("mean")  # z σ(z/T): ∇²f has a diagonal
    op = ModelHessian(smooth, 2 * X, y, loss="quadratic-hinge", context="epoch 7")
    with pytest.warns(HingeCheckWarning, match=r"epoch 7.*Gauss–Newton part"):
        out = hinge_checks(op)
    assert not out["ok"] and not out["diag_ok"] and out["circuit_diag_rel"] > 1e-3


def test_satisfied_quadratic_hinge_net_has_a_zero_hessian_and_passes():
    model, X, _ = mlp_case("5-5-1", 0.0)
    f = model(X).detach()
    y = torch.sign(f)
    X = X * (2 / f.abs().min())  # every margin y f ≥ 2: every example satisfied
    op = ModelHessian(model, X, y, loss="quadratic-hinge", batch_size=4)
    assert torch.equal(op.dense(), torch.zeros(op.n, op.n, dtype=D))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = hinge_checks(op)
    assert out["ok"] and out["gn_active"] == 0 and out["gn_trace"] == 0.0 and out["scale"] == 0
