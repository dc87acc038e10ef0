"""umwelt.nn.observables against oracles: autograd, closed forms and the old umwelt.nn.train
formulas (copied here). (When they moved here from sim/observe.py, they were checked equal to
its copies to the bit, in one process.)"""

import copy
import math

import numpy as np
import pytest
import torch

from umwelt.errors import ConfigError, ShapeError
from umwelt.nn import build_mlp, build_model, hinge_loss
from umwelt.nn.gate import gate_entropy_bits
from umwelt.nn.losses import get_loss
from umwelt.nn.observables import (
    GRAD_EDGES,
    MARGIN_QUANTILES,
    WEIGHT_EDGES,
    correlation_spectra,
    effective_temperatures,
    evaluate,
    fixed_histogram,
    full_gradient,
    gate_statistics,
    layer_norms,
    margin_statistics,
    observe,
    order_parameter,
    symmetry_statistics,
    using_generator,
    weight_layers,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
F64 = torch.float64


def _data(n=37, d=5, seed=0, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=dtype)
    y = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0).to(dtype)
    return X, y


def _mlp(T, dtype=F64, widths=(5, 7, 4, 1)):
    return build_mlp(widths, temperature=T, seed=1, dtype=dtype)


def _tiny_vgg(T=0.0, dtype=F64):
    return build_model(
        "vgg11", input_shape=(3, 32, 32), width=1 / 32, temperature=T, seed=0, dtype=dtype
    )


def _images(n=5, seed=3):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 3, 32, 32, dtype=F64, generator=g)
    y = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0).to(F64)
    return X, y


def _old_gate_statistics(model, X, *, batch_size=4096):
    """The list version umwelt.nn.train.gate_statistics had (a sample pass, then relu_gates)."""
    n, T, mode = X.shape[0], model.temperature, model.mode
    ent = [torch.zeros((), dtype=F64) for _ in model.gates]
    agree = [torch.zeros((), dtype=torch.int64) for _ in model.gates]
    units = [0 for _ in model.gates]
    with torch.no_grad():
        try:
            model.set_mode("sample").set_record(True)
            for start in range(0, n, batch_size):
                xb = X[start : start + batch_size]
                model(xb)
                relu = model.relu_gates(xb)
                for l, (gate, h0) in enumerate(zip(model.gates, relu, strict=True)):
                    ent[l] += gate_entropy_bits(gate.last_logits, T).sum()
                    agree[l] += (gate.last_gates == h0).sum()
                    units[l] += h0.numel()
        finally:
            model.set_mode(mode).set_record(False)
    return {
        "gate_entropy": [e.item() / u for e, u in zip(ent, units, strict=True)],
        "gate_agreement": [a.item() / u for a, u in zip(agree, units, strict=True)],
    }


# -- independent oracles --------------------------------------------------------------------------


@pytest.mark.parametrize("loss", ["hinge", "logistic"])
def test_full_gradient_is_the_whole_batch_autograd_gradient(loss):
    X, y = _data()
    model = _mlp(0.0)
    model(X[:3]).sum().backward()  # an unrelated .grad that must survive
    before = [p.grad.clone() for p in model.parameters()]
    grads, stats = full_gradient(model, X, y, loss=loss, batch_size=10)  # 10 ∤ 37
    assert all(torch.equal(b, p.grad) for b, p in zip(before, model.parameters()))
    ref = copy.deepcopy(model)
    f = ref(X)
    risk = get_loss(loss)(f, y)
    full = torch.autograd.grad(risk, list(ref.parameters()))
    for a, b in zip(grads, full, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)
    assert math.isclose(stats["loss"], risk.item(), rel_tol=1e-12)
    assert stats["acc"] == (f * y > 0).double().mean().item()
    sq = sum((g**2).sum().item() for g in full)
    assert math.isclose(stats["grad_sq"], sq, rel_tol=1e-12)
    lr = 0.03
    assert order_parameter(model, X, y, lr=lr, loss=loss, batch_size=10) == lr * stats["grad_sq"]
    assert full_gradient(model, X, y, loss=get_loss(loss), batch_size=10)[1] == stats  # callable


def test_full_gradient_at_positive_temperature_is_one_draw_per_example():
    """With the draws fixed (one pass of noise), the gradient is that of the sampled net."""
    X, y = _data()
    model = _mlp(0.5)
    with using_generator(model, torch.Generator().manual_seed(4)):
        grads, stats = full_gradient(model, X, y, batch_size=X.shape[0])
    with using_generator(model, torch.Generator().manual_seed(4)):
        risk = hinge_loss(model(X), y)
        full = torch.autograd.grad(risk, list(model.parameters()))
    for a, b in zip(grads, full, strict=True):
        assert torch.equal(a, b)
    assert stats["loss"] == risk.item()


def test_evaluate_closed_forms():
    X, y = _data(n=10, d=3)
    zero = build_mlp((3, 4, 1), temperature=1.0, seed=0, dtype=F64)
    with torch.no_grad():
        for p in zero.parameters():
            p.zero_()  # f = 0: hinge loss 1, logistic log 2, every example wrong
    assert evaluate(zero, X, y) == {"loss": 1.0, "acc": 0.0}
    assert evaluate(zero, X, y, loss="logistic")["loss"] == pytest.approx(math.log(2), rel=1e-15)
    model = _mlp(0.0)
    X, y = _data()
    got = evaluate(model, X, y, batch_size=8)
    with torch.no_grad():
        f = model(X)
    assert math.isclose(got["loss"], hinge_loss(f, y).item(), rel_tol=1e-12)
    assert got["acc"] == (f * y > 0).double().mean().item()


@pytest.mark.parametrize("vgg", [False, True], ids=["mlp", "vgg"])
def test_gate_statistics_limits(vgg):
    X = _images(6)[0] if vgg else _data(n=50)[0]
    cold = _tiny_vgg(0.0) if vgg else _mlp(0.0)
    G = len(cold.gates)
    s = gate_statistics(cold, X, batch_size=4)
    assert all(v.dtype == np.float64 and v.shape == (G,) for v in s.values())
    np.testing.assert_array_equal(s["gate_entropy"], 0.0)
    np.testing.assert_array_equal(s["gate_agreement"], 1.0)
    for g in cold.gates:  # gate_open: the fraction of positive logits of the ReLU net
        g.record = True
    with torch.no_grad():
        cold(X)
    want = [g.last_gates.double().mean().item() for g in cold.gates]
    np.testing.assert_allclose(s["gate_open"], want, rtol=1e-12)
    hot = _tiny_vgg(math.inf) if vgg else _mlp(math.inf)
    with using_generator(hot, torch.Generator().manual_seed(1)):
        s = gate_statistics(hot, X, batch_size=4)
    np.testing.assert_array_equal(s["gate_entropy"], 1.0)
    assert np.all((0.2 < s["gate_agreement"]) & (s["gate_agreement"] < 0.8))


def test_gate_statistics_entropy_of_the_first_layer_and_modes_restored():
    X, _ = _data(n=300, d=6)
    T = 0.7
    model = build_mlp((6, 10, 8, 1), temperature=T, mode="relu", seed=1, dtype=F64)
    model.set_generator(torch.Generator().manual_seed(0))
    s = gate_statistics(model, X, batch_size=64)
    z1 = X @ model.linears[0].weight.T  # layer 1's logits do not depend on sampling
    assert s["gate_entropy"][0] == pytest.approx(gate_entropy_bits(z1, T).mean().item(), rel=1e-12)
    assert np.all((0 < s["gate_entropy"]) & (s["gate_entropy"] < 1))
    assert np.all((0.5 < s["gate_agreement"]) & (s["gate_agreement"] < 1))
    assert model.mode == "relu" and all(g.mode == "relu" for g in model.gates)
    assert all(not g.record and g.last_gates is None for g in model.gates)


@pytest.mark.parametrize("T", [0.0, 0.5, math.inf])
def test_gate_statistics_equal_the_old_list_version(T):
    X, _ = _data(n=23)
    model = build_mlp((5, 6, 4, 1), temperature=T, seed=2, dtype=F64)
    model.set_generator(torch.Generator().manual_seed(5))
    ref = _old_gate_statistics(model, X, batch_size=9)
    model.set_generator(torch.Generator().manual_seed(5))
    got = gate_statistics(model, X, batch_size=9)
    assert got["gate_entropy"].tolist() == ref["gate_entropy"]
    assert got["gate_agreement"].tolist() == ref["gate_agreement"]


def test_using_generator_restores_the_gates_own():
    model = _mlp(0.5)
    own = torch.Generator().manual_seed(0)
    model.set_generator(own)
    with pytest.raises(RuntimeError), using_generator(model, None):
        assert all(g.generator is None for g in model.gates)
        raise RuntimeError
    assert all(g.generator is own for g in model.gates)


def test_weight_layers_of_a_conv_net():
    layers = weight_layers(_tiny_vgg())
    kinds = [type(m).__name__ for _, m in layers]
    assert kinds[-3:] == ["Linear"] * 3 and set(kinds[:-3]) == {"Conv2d"}


def test_symmetry_statistics():
    rng = np.random.default_rng(0)
    v = rng.standard_normal(2000)
    sym = symmetry_statistics(np.concatenate([v, -v]))
    assert sym["mean"] == 0.0 and abs(sym["skewness"]) < 1e-12 and sym["frac_pos"] == 0.5
    assert sym["ks_stat"] == 0.0 and sym["ks_p"] == 1.0 and sym["sign_p"] == 1.0
    skewed = symmetry_statistics(rng.exponential(size=2000) - 0.5)
    assert skewed["skewness"] > 1 and skewed["ks_p"] < 1e-6
    zeros = symmetry_statistics(np.zeros(10))  # a converged net: no warnings, NaN where undefined
    assert zeros["frac_zero"] == 1.0 and math.isnan(zeros["skewness"])
    assert math.isnan(zeros["frac_pos"]) and math.isnan(zeros["ks_p"])
    assert all(math.isnan(x) for x in symmetry_statistics(np.array([1.0, np.inf])).values())


def test_fixed_histogram_counts_everything():
    v = np.array([-9.0, -8.0, 0.0, 0.05, 7.99, 8.0, 8.5])
    counts, under, over = fixed_histogram(v, WEIGHT_EDGES)
    assert (under, over) == (1, 1) and counts.sum() == 5 and counts.shape == (160,)


def test_correlation_spectra():
    rng = np.random.default_rng(1)
    rank1 = correlation_spectra(np.outer(rng.standard_normal(6), rng.standard_normal(20)))
    np.testing.assert_allclose(rank1["corr"], [6, 0, 0, 0, 0, 0], atol=1e-9)
    assert math.isclose(rank1["participation"], 1 / 6, rel_tol=1e-9)
    W = rng.standard_normal((4, 3, 3, 3))
    conv = correlation_spectra(W)
    assert conv["corr"].shape == (4,) and math.isclose(conv["corr"].sum(), 4.0, rel_tol=1e-12)
    W2 = W.reshape(4, -1)
    np.testing.assert_allclose(conv["gram"], np.linalg.svd(W2, compute_uv=False) ** 2 / 27)
    assert np.all(np.diff(conv["gram"]) <= 0)  # largest first
    assert math.isnan(correlation_spectra(np.ones((1, 5)))["participation"])


def test_observe_on_a_conv_net():
    model = _tiny_vgg()
    X, y = _images()
    grads, stats = full_gradient(model, X, y, batch_size=2)
    layers = weight_layers(model)
    units = np.array([float(m.weight.detach().pow(2).mean().sqrt()) for _, m in layers])
    gates = gate_statistics(model, X, batch_size=5)
    obs = observe(4, model, grads, units, gates, {"loss": stats["loss"]})
    L = len(layers)
    assert obs["weight_hist"].shape == (L, len(WEIGHT_EDGES) - 1)
    assert obs["grad_hist"].shape == (L, len(GRAD_EDGES) - 1)
    for l, ((_, m), g) in enumerate(zip(layers, grads)):
        total = obs["weight_hist"][l].sum() + obs["weight_under"][l] + obs["weight_over"][l]
        assert total == m.weight.numel()
        assert obs[f"corr_eigs_{l:02d}"].shape == (m.weight.shape[0],)
        assert obs["grad_unit"][l] == pytest.approx(g.pow(2).mean().sqrt().item(), rel=1e-12)
    assert math.isclose(obs["weight_std"][0], units[0], rel_tol=0.05)  # at init: std ≈ RMS
    assert int(obs["epoch"]) == 4 and float(obs["loss"]) == stats["loss"]
    np.testing.assert_array_equal(obs["gate_open"], gates["gate_open"])
    with pytest.raises(ShapeError, match="one gradient"):
        observe(4, model, grads[:-1], units, gates, {})


# -- bad input ------------------------------------------------------------------------------------


def test_bad_input():
    X, y = _data(n=10, d=5)
    model = _mlp(0.0)
    with pytest.raises(ConfigError, match="'mse'"):
        full_gradient(model, X, y, loss="mse")
    with pytest.raises(ConfigError, match="-3"):
        evaluate(model, X, y, batch_size=-3)
    with pytest.raises(ConfigError, match="nan"):
        order_parameter(model, X, y, lr=float("nan"))
    with pytest.raises(ShapeError):
        evaluate(model, X, y[:4])
    with pytest.raises(ShapeError):
        full_gradient(model, X[:0], y[:0])
    with pytest.raises(ShapeError):
        gate_statistics(model, X[0])


# -- the phase observables (THEORY.md §5) ---------------------------------------------------------


@pytest.mark.parametrize("T", [0.0, 0.5])
def test_margins_of_the_gradient_pass_count_the_unsatisfied_constraints(T):
    X, y = _data(n=41)
    model = _mlp(T)
    gen = torch.Generator().manual_seed(4)
    with using_generator(model, gen):
        _, stats = full_gradient(model, X, y, batch_size=9, margins=True)
    gen = torch.Generator().manual_seed(4)  # the same draws, one independent forward pass
    with using_generator(model, gen), torch.no_grad():
        model.eval()
        f = torch.cat([model(X[i : i + 9]) for i in range(0, 41, 9)])
    np.testing.assert_array_equal(stats["margins"], (y * f).numpy())
    s = margin_statistics(stats["margins"])
    assert (
        s["n_unsatisfied"] == int(((y * f) < 1).sum())
        and s["frac_unsatisfied"] == s["n_unsatisfied"] / 41
    )
    assert s["margin_quantiles"] == np.quantile((y * f).numpy(), MARGIN_QUANTILES).tolist()
    hinge = float(torch.clamp(1 - y * f, min=0).mean())
    assert (s["n_unsatisfied"] == 0) == (hinge == 0.0)  # N_Δ = 0 exactly when the risk is 0


def test_unsatisfied_constraints_of_several_draws_are_their_mean():
    m = np.array([[0.5, 2.0, -1.0], [2.0, 2.0, 0.9]])  # 2 then 1 unsatisfied
    s = margin_statistics(m)
    assert s["n_unsatisfied"] == 1.5 and s["frac_unsatisfied"] == 0.5
    with pytest.raises(ShapeError, match="margins"):
        margin_statistics(np.zeros((2, 2, 2)))


@pytest.mark.parametrize("T", [0.0, 0.7])
def test_layer_norms_split_the_order_parameter_and_effective_temperatures(T):
    X, y = _data()
    model = _mlp(T)
    grads, stats = full_gradient(model, X, y, batch_size=10)
    norms = layer_norms(model, grads)
    layers = weight_layers(model)
    assert len(norms["layer_grad_norms"]) == len(layers) == len(norms["weight_norms"])
    assert sum(g**2 for g in norms["layer_grad_norms"]) == pytest.approx(stats["grad_sq"])
    for (_, m), w in zip(layers, norms["weight_norms"]):
        assert w == pytest.approx(math.sqrt(float((m.weight.detach() ** 2).sum())))
    temps = effective_temperatures(model)
    assert len(temps) == len(model.gates) == len(layers) - 1
    for t, w in zip(temps, norms["weight_norms"]):
        assert t == (0.0 if T == 0 else pytest.approx(T / w))
    vgg = _tiny_vgg(0.3)
    assert len(effective_temperatures(vgg)) == len(vgg.gates)


def test_nan_margins_count_as_unsatisfied_and_one_weight_has_no_ks():
    s = margin_statistics(np.array([2.0, np.nan, 0.5]))
    assert s["n_unsatisfied"] == 2  # a diverged net's NaN output satisfies nothing
    one = symmetry_statistics(np.array([0.3]))  # no warning (warnings are errors here)
    assert one["frac_pos"] == 1.0 and math.isnan(one["ks_p"])
