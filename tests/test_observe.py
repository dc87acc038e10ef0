"""Observables of a training run, against oracles: the MLP helpers of umwelt.nn, closed forms."""

import math

import numpy as np
import pytest
import torch

from sim.distributed import World
from sim.observe import (
    GRAD_EDGES,
    WEIGHT_EDGES,
    correlation_spectra,
    evaluate,
    fixed_histogram,
    full_gradient,
    gate_statistics,
    load_observation,
    observe,
    save_observation,
    symmetry_statistics,
    using_generator,
    weight_layers,
)
from umwelt.nn import build_mlp, build_model, hinge_loss
from umwelt.nn import gate_statistics as mlp_gate_statistics
from umwelt.nn import order_parameter as mlp_order_parameter
from umwelt.nn.train import evaluate as mlp_evaluate

ALONE = World()


def _data(n=37, d=5, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=dtype)
    y = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0).to(dtype)
    return X, y


def _tiny_vgg(T=0.0, dtype=torch.float64):
    return build_model(
        "vgg11", input_shape=(3, 32, 32), width=1 / 32, temperature=T, seed=0, dtype=dtype
    )


def test_full_gradient_matches_the_mlp_order_parameter_and_autograd():
    X, y = _data()
    model = build_mlp((5, 7, 4, 1), temperature=0.0, seed=1, dtype=torch.float64)
    grads, stats = full_gradient(model, X, y, loss_fn=hinge_loss, batch_size=10, world=ALONE)
    op = mlp_order_parameter(model, X, y, lr=1.0, batch_size=10)
    assert math.isclose(stats["grad_sq"], op, rel_tol=1e-12)
    full = torch.autograd.grad(hinge_loss(model(X), y), list(model.parameters()))
    for a, b in zip(grads, full):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)
    ref = mlp_evaluate(model, X, y, batch_size=10)
    assert math.isclose(stats["loss"], ref["loss"], rel_tol=1e-12)
    assert stats["acc"] == ref["acc"]
    ev = evaluate(model, X, y, loss_fn=hinge_loss, batch_size=8, world=ALONE)
    assert math.isclose(ev["loss"], ref["loss"], rel_tol=1e-12) and ev["acc"] == ref["acc"]
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("T", [0.0, 0.7, math.inf])
def test_gate_statistics_match_the_mlp_helper(T):
    X, _ = _data(n=23)
    model = build_mlp((5, 6, 4, 1), temperature=T, seed=2, dtype=torch.float64)
    ref_gen, gen = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    model.set_generator(ref_gen)
    ref = mlp_gate_statistics(model, X, batch_size=9)
    model.set_generator(None)
    with using_generator(model, gen):
        got = gate_statistics(model, X, batch_size=9, world=ALONE)
    assert all(g.generator is None for g in model.gates)  # restored
    np.testing.assert_array_equal(got["gate_entropy"], ref["gate_entropy"])
    np.testing.assert_array_equal(got["gate_agreement"], ref["gate_agreement"])
    assert got["gate_open"].shape == (2,) and np.all(
        (0 <= got["gate_open"]) & (got["gate_open"] <= 1)
    )
    assert all(g.mode == "sample" and not g.record and g.last_gates is None for g in model.gates)


def test_gate_statistics_of_a_conv_net():
    X = torch.randn(6, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    cold = gate_statistics(_tiny_vgg(0.0), X, batch_size=4, world=ALONE)
    assert cold["gate_entropy"].shape == (len(_tiny_vgg().gates),)
    np.testing.assert_array_equal(cold["gate_entropy"], 0.0)
    np.testing.assert_array_equal(cold["gate_agreement"], 1.0)
    hot = gate_statistics(_tiny_vgg(1.0), X, batch_size=4, world=ALONE)
    assert np.all(hot["gate_entropy"] > 0) and np.all(hot["gate_agreement"] < 1)


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


def test_fixed_histogram_counts_everything():
    v = np.array([-9.0, -8.0, 0.0, 0.05, 7.99, 8.0, 8.5])
    counts, under, over = fixed_histogram(v, WEIGHT_EDGES)
    assert (under, over) == (1, 1) and counts.sum() == 5 and counts.shape == (160,)


def test_correlation_spectra():
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.standard_normal((50, 50)))
    W = q[:8] - q[:8].mean(axis=1, keepdims=True)  # nearly orthogonal centred rows
    W = np.linalg.qr(W.T)[0].T  # orthonormal rows (still centred: they span centred vectors)
    iso = correlation_spectra(W)
    np.testing.assert_allclose(iso["corr"], 1.0, atol=1e-10)
    assert math.isclose(iso["participation"], 1.0, rel_tol=1e-10)
    rank1 = correlation_spectra(np.outer(rng.standard_normal(6), rng.standard_normal(20)))
    np.testing.assert_allclose(rank1["corr"], [6, 0, 0, 0, 0, 0], atol=1e-9)
    assert math.isclose(rank1["participation"], 1 / 6, rel_tol=1e-9)
    conv = correlation_spectra(rng.standard_normal((4, 3, 3, 3)))
    assert conv["corr"].shape == (4,) and math.isclose(conv["corr"].sum(), 4.0, rel_tol=1e-12)
    assert np.all(np.diff(conv["gram"]) <= 0)  # largest first
    assert math.isnan(correlation_spectra(np.ones((1, 5)))["participation"])


def test_observe_on_a_conv_net_and_npz_roundtrip(tmp_path):
    model = _tiny_vgg()
    X = torch.randn(5, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    y = torch.tensor([1.0, -1, 1, 1, -1], dtype=torch.float64)
    grads, stats = full_gradient(model, X, y, loss_fn=hinge_loss, batch_size=2, world=ALONE)
    layers = weight_layers(model)
    assert [type(m).__name__ for _, m in layers][-3:] == ["Linear"] * 3
    units = np.array([float(m.weight.detach().pow(2).mean().sqrt()) for _, m in layers])
    gates = gate_statistics(model, X, batch_size=5, world=ALONE)
    obs = observe(4, model, grads, units, gates, {"loss": stats["loss"]})
    L = len(layers)
    assert obs["weight_hist"].shape == (L, len(WEIGHT_EDGES) - 1)
    assert obs["grad_hist"].shape == (L, len(GRAD_EDGES) - 1)
    for l, (_, m) in enumerate(layers):
        total = obs["weight_hist"][l].sum() + obs["weight_under"][l] + obs["weight_over"][l]
        assert total == m.weight.numel()
        assert obs[f"corr_eigs_{l:02d}"].shape == (m.weight.shape[0],)
    assert math.isclose(obs["weight_std"][0], units[0], rel_tol=0.05)  # at init: std ≈ RMS
    path = save_observation(tmp_path / "observations" / "epoch_0004.npz", obs)
    back = load_observation(path)
    assert set(back) == set(obs) and int(back["epoch"]) == 4
    assert back["layer_names"].dtype.kind == "U"
    for k in obs:
        np.testing.assert_array_equal(back[k], obs[k])
