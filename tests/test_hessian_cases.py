"""The Hessian operator on every standard torch case (``cases.TORCH_CASES``), both losses and
every ``ad`` mode that applies: property tests against an independent dense oracle.

The oracle is ``torch.autograd.functional.hessian`` (float64) of the risk written out by hand
from the case's numpy twin (:class:`~umwelt.circuits.conv.ConvNetwork`: its weights, layer
layout and, at T = 0, its ReLU gates), with the gates fixed as the operator fixes them: the
numpy engine's ReLU gates at T = 0, the operator's stored sample at T > 0 (as in
``test_hessian_operator.py``). Checked: ``u·(Hv) = v·(Hu)`` and ``Hv`` = oracle for random
vectors (hypothesis draws their seed and sparsity), ``matmat`` = column-by-column ``matvec``,
and the hinge structure of THEORY.md §3 — every circuit uses one weight per layer, so the
within-layer blocks of ``∇²f`` vanish and ``H = E[ℓ'·y·∇²f]`` has zero diagonal blocks. A last
test shows that each check rejects a slightly wrong operator.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from cases import TORCH_CASES, TorchCase, ad_modes
from cases import torch_case as build_case
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

from umwelt.nn.hessian import HessianOperator, MatrixOperator, ModelHessian

D = torch.float64
LOSSES = ("hinge", "logistic")
RTOL = 1e-12  # relative to the round-off scale |H| |v| of a product

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# (case, loss, ad) for every ad mode that applies to the case
PRODUCTS = [(c, loss, ad) for c in sorted(TORCH_CASES) for loss in LOSSES for ad in ad_modes(c)]


# -- the cases, their operators and the oracle (built once per module) ---------------------------


@functools.cache
def case(name: str) -> TorchCase:
    return build_case(name)


@functools.cache
def operator(name: str, loss: str, ad: str = "auto") -> ModelHessian:
    c = case(name)
    return ModelHessian(c.model, c.X, c.y, loss=loss, batch_size=c.batch_size, ad=ad)


def per_example_loss(f: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    if loss == "hinge":
        return torch.clamp(1 - y * f, min=0)
    return torch.log1p(torch.exp(-y * f))


def oracle_gates(c: TorchCase, masks: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    """The gates the oracle fixes, one ``(n, *shape)`` tensor per gated layer: the numpy
    twin's ReLU gates at T = 0, else the operator's stored sample ``masks``."""
    net = c.twin
    if c.temperature == 0:
        per = [net.forward(x.numpy()).gates for x in c.X]  # per example, layer by layer
        gates = [torch.as_tensor(np.stack([g[l] for g in per])) for l in range(len(per[0]))]
    else:
        gates = list(masks)
    want = [(len(c.X), *s) for s in net.gate_shapes]
    assert [tuple(g.shape) for g in gates] == want
    return gates


def oracle_f(c: TorchCase, gates: list[torch.Tensor]) -> tuple[Callable, torch.Tensor]:
    """``(theta -> f (n,), theta_0)``: the outputs as a function of the flat weights, by hand
    (``F.conv2d``, ``F.max_pool2d``, matrix products) with fixed gates; ``theta_0`` from the
    numpy twin, in layer order (kernels, then ``(n_out, n_in)`` linear weights)."""
    net = c.twin
    Ws0 = [torch.as_tensor(W) for W in net.convs] + [torch.as_tensor(W.T) for W in net.linears]
    shapes = [W.shape for W in Ws0]
    sizes = [math.prod(s) for s in shapes]
    K = len(net.convs)

    def f(theta: torch.Tensor) -> torch.Tensor:
        Ws = [p.reshape(s) for p, s in zip(theta.split(sizes), shapes)]
        a = c.X
        for l in range(K):
            a = F.conv2d(a, Ws[l], padding=Ws[l].shape[-1] // 2) * gates[l].to(D)
            if net.pool_after[l]:
                a = F.max_pool2d(a, 2)
        a = a.flatten(1)
        for l in range(K, len(Ws)):
            a = a @ Ws[l].T
            if l < len(Ws) - 1:
                a = a * gates[l].to(D)
        return a[:, 0]  # (n,)

    return f, torch.cat([W.reshape(-1) for W in Ws0])


@functools.cache
def oracle(name: str, loss: str) -> torch.Tensor:
    """The dense ``(N, N)`` Hessian of the mean risk with the gates of ``operator(name, loss,
    "fwd-over-rev")`` (checked to be every mode's)."""
    c = case(name)
    op = operator(name, loss, "fwd-over-rev")
    f, theta = oracle_f(c, oracle_gates(c, op.gate_masks))
    assert op.param_shapes == tuple(tuple(s) for s in _shapes(c)) and op.n == theta.numel()
    H = torch.autograd.functional.hessian(
        lambda th: per_example_loss(f(th), c.y, loss).mean(), theta, vectorize=True
    )
    assert H.abs().max() > 0  # some example has a share in H: the checks are not vacuous
    return H


def _shapes(c: TorchCase) -> list[tuple[int, ...]]:
    return [W.shape for W in c.twin.convs] + [W.T.shape for W in c.twin.linears]


def blocks(op: ModelHessian) -> list[slice]:
    """The within-layer index ranges (one per weight tensor)."""
    o = op.param_offsets
    return [slice(int(a), int(b)) for a, b in zip(o[:-1], o[1:])]


# -- the checks (each raises AssertionError on a wrong operator; see the last test) -------------


def check_products(op: HessianOperator, H: torch.Tensor, u: torch.Tensor, v: torch.Tensor):
    """``u·(Hv) = v·(Hu)`` to the round-off of the bilinear form ``|u| |H| |v|``, and ``Hu``,
    ``Hv`` = the oracle's to ``RTOL · max(|H| |w|)``."""
    Hu, Hv = op.matvec(u), op.matvec(v)
    uHv, vHu = u @ Hv, v @ Hu
    assert abs(uHv - vHu) <= RTOL * (u.abs() @ H.abs() @ v.abs()), (float(uHv), float(vHu))
    for w, Hw in ((u, Hu), (v, Hv)):
        bound = RTOL * (H.abs() @ w.abs()).max()
        err = (Hw - H @ w).abs().max()
        assert err <= bound, (float(err), float(bound))


def check_matmat(op: HessianOperator, H: torch.Tensor, V: torch.Tensor):
    """``matmat(V)`` = one ``matvec`` per column, and = the oracle's ``HV``."""
    HV = op.matmat(V)
    assert HV.shape == V.shape
    bound = RTOL * (H.abs() @ V.abs()).max()
    by_column = torch.stack([op.matvec(V[:, j]) for j in range(V.shape[1])], dim=1)
    assert (HV - by_column).abs().max() <= bound
    assert (HV - H @ V).abs().max() <= bound


def check_hinge_blocks(H: torch.Tensor, within: list[slice]):
    """Every within-layer block of the dense hinge Hessian vanishes (to round-off)."""
    scale = H.abs().max()
    assert scale > 0
    for s in within:
        assert H[s, s].abs().max() <= 1e-14 * scale, s


# -- properties on every case, loss and ad mode ---------------------------------------------------


@pytest.mark.parametrize(("name", "loss", "ad"), PRODUCTS)
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), density=st.sampled_from([1.0, 0.3, 0.02]))
def test_products_are_symmetric_and_equal_the_dense_oracle(name, loss, ad, seed, density):
    op, H = operator(name, loss, ad), oracle(name, loss)
    assert op.ad == ad
    ref = operator(name, loss, "fwd-over-rev").gate_masks  # the oracle's gates: every mode's
    assert all(torch.equal(a, b) for a, b in zip(op.gate_masks, ref, strict=True))
    g = torch.Generator().manual_seed(seed)
    u, v = (
        torch.randn(op.n, dtype=D, generator=g) * (torch.rand(op.n, generator=g) < density)
        for _ in range(2)
    )
    check_products(op, H, u, v)


@pytest.mark.parametrize(("name", "loss", "ad"), PRODUCTS)
def test_matmat_of_random_columns_equals_matvecs(name, loss, ad):
    c, H = case(name), oracle(name, loss)
    kw = dict(loss=loss, batch_size=c.batch_size, ad=ad)
    op = ModelHessian(c.model, c.X, c.y, column_chunk=2, **kw)  # k = 3: chunks of 2 and 1
    assert op.ad == ad and operator(name, loss, ad).column_chunk == 16  # the default
    V = torch.randn(op.n, 3, dtype=D, generator=torch.Generator().manual_seed(3))
    check_matmat(op, H, V)


def test_hinge_hessian_has_zero_within_layer_blocks(torch_case):
    c = torch_case
    op = ModelHessian(c.model, c.X, c.y, loss="hinge", batch_size=c.batch_size)  # ad="auto"
    assert op.ad == ("gated" if c.gated else "fwd-over-rev")
    assert c.seed == 0 and all(  # the gates of the cached oracle
        torch.equal(a, b)
        for a, b in zip(op.gate_masks, operator(c.name, "hinge").gate_masks, strict=True)
    )
    H = op.dense()
    scale = H.abs().max()
    assert (H - H.T).abs().max() <= 1e-14 * scale  # symmetric as a matrix too
    assert (H - oracle(c.name, "hinge")).abs().max() <= RTOL * scale
    check_hinge_blocks(H, blocks(op))
    assert abs(torch.trace(H)) <= 1e-14 * scale * op.n
    # H = E[ℓ'·y·∇²f] with ℓ' = -1 on the active hinges: the Hessian of Σ_i c_i f_i
    f, theta = oracle_f(c, oracle_gates(c, op.gate_masks))
    active = 1 - c.y * f(theta).detach() > 0
    assert int(active.sum()) >= 1
    cw = -c.y * active / len(c.y)
    v = torch.randn(op.n, dtype=D, generator=torch.Generator().manual_seed(7))
    _, Hf_v = torch.autograd.functional.hvp(lambda th: (cw * f(th)).sum(), theta, v)
    assert (H @ v - Hf_v).abs().max() <= RTOL * (H.abs() @ v.abs()).max()
    # the logistic Hessian adds ℓ''·∇f∇fᵀ: within-layer blocks that do not vanish
    Hl = oracle(c.name, "logistic")
    with pytest.raises(AssertionError):
        check_hinge_blocks(Hl, blocks(op))


def test_cases_are_float64_seeded_and_their_twin_is_the_same_net(torch_case):
    c = torch_case
    assert all(p.dtype == D for p in c.model.parameters()) and c.X.dtype == c.y.dtype == D
    assert c.X.shape[0] == c.y.shape[0] <= 7 and set(c.y.tolist()) == {-1.0, 1.0}
    again = build_case(c.name, seed=0)
    other = build_case(c.name, seed=1)
    assert torch.equal(again.X, c.X) and torch.equal(again.y, c.y)
    flat = [
        torch.cat([p.detach().reshape(-1) for p in m.model.parameters()]) for m in (c, again, other)
    ]
    assert torch.equal(flat[0], flat[1]) and not torch.equal(flat[0], flat[2])
    op = operator(c.name, c.loss)
    gates = oracle_gates(c, op.gate_masks)
    twin = [
        c.twin.forward(x.numpy(), [g[i].numpy() for g in gates]).output for i, x in enumerate(c.X)
    ]
    torch.testing.assert_close(op.outputs(), torch.tensor(twin, dtype=D), rtol=1e-12, atol=1e-14)


# -- every check fails on a slightly wrong operator ---------------------------------------------


class _ColumnDrift(MatrixOperator):
    """A matrix whose matmat differs from its matvecs in one entry."""

    def _matmat(self, V: torch.Tensor) -> torch.Tensor:
        out = self.matrix @ V
        out[0, -1] += 1e-9 * self.matrix.abs().max()
        return out


def test_the_checks_reject_a_perturbed_operator():
    name = "vgg12-w128-T0.5"
    H = oracle(name, "hinge")
    n, eps = H.shape[0], 1e-9 * H.abs().max()
    g = torch.Generator().manual_seed(0)
    u, v = torch.randn(n, dtype=D, generator=g), torch.randn(n, dtype=D, generator=g)
    V = torch.randn(n, 3, dtype=D, generator=g)
    good = MatrixOperator(H)
    check_products(good, H, u, v)
    check_matmat(good, H, V)
    E = torch.zeros_like(H)
    E[0, 1] = 100 * eps  # one entry 1e-7 |H| off the transpose (u·Hv - v·Hu: 270 × the bound)
    with pytest.raises(AssertionError, match=r"^\(-?\d"):  # the symmetry assertion's message
        check_products(MatrixOperator(H + E), H, u, v)
    with pytest.raises(AssertionError):  # symmetric, and Hv off by 1e-9 |H|
        check_products(MatrixOperator(H + eps * torch.eye(n, dtype=D)), H, u, v)
    with pytest.raises(AssertionError):
        check_matmat(_ColumnDrift(H), H, V)
    op = operator(name, "hinge")
    within = blocks(op)
    check_hinge_blocks(H, within)
    P = H.clone()
    P[within[3].start, within[3].start + 1] = eps  # one within-layer entry
    with pytest.raises(AssertionError):
        check_hinge_blocks(P, within)
    # real operators that are wrong: another gate sample at T > 0, or the other loss
    c = case(name)
    kw = dict(loss="hinge", batch_size=c.batch_size)
    with pytest.raises(AssertionError):
        check_products(ModelHessian(c.model, c.X, c.y, gate_seed=1, **kw), H, u, v)
    with pytest.raises(AssertionError):
        check_products(operator(name, "logistic"), H, u, v)
