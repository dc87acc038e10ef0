"""Exact enumeration and Monte Carlo (umwelt.exact, umwelt._kernels).

Oracles, each independent of the numba kernel: the plain-numpy twin, a brute-force sum over
``itertools.product`` built from ``net.log_prob`` and ``net.output``, the ReLU network at
``T = 0``, the maximum-entropy law at ``T = inf``, a hand-written product of Bernoullis, and
Monte Carlo sampling with ``net.sample``.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from cases import inputs, tiny_network
from hypothesis import given, settings
from hypothesis import strategies as st

from umwelt import ConfigError, EnumerationLimitError, LayeredNetwork, ShapeError
from umwelt.exact import (
    MAX_CONFIGURATIONS,
    ExactResult,
    MonteCarloResult,
    exact_enumeration,
    layer_distribution,
    monte_carlo,
    n_configurations,
)

INF = float("inf")
TEMPERATURES = [0.0, 0.1, 1.0, 10.0, INF]


def assert_results_close(a: ExactResult, b: ExactResult, rtol: float = 1e-10) -> None:
    """Marginals, mean and variance agree to ``rtol`` (with an absolute floor at round-off
    of the output's scale, for means that cancel to ~0)."""
    assert a.n_configurations == b.n_configurations
    assert len(a.marginals) == len(b.marginals)
    for ma, mb in zip(a.marginals, b.marginals, strict=True):
        assert ma.shape == mb.shape
        np.testing.assert_allclose(ma, mb, rtol=rtol, atol=1e-15)
    scale = float(np.max(np.abs(b.mean)) + np.max(np.sqrt(b.var))) + 1e-300
    np.testing.assert_allclose(a.mean, b.mean, rtol=rtol, atol=1e-14 * scale)
    np.testing.assert_allclose(a.var, b.var, rtol=rtol, atol=1e-14 * scale**2)


def brute_force(net: LayeredNetwork, x: np.ndarray, T: float) -> ExactResult:
    """Sum over every configuration from itertools.product, one configuration at a time."""
    hw = net.hidden_widths
    bounds = np.cumsum((0, *hw))
    probs, outs, gate_rows = [], [], []
    for bits in itertools.product((False, True), repeat=net.n_gates):
        h = np.array(bits, dtype=bool)
        gates = [h[a:b] for a, b in itertools.pairwise(bounds)]  # broadcast over the batch
        probs.append(np.exp(net.log_prob(x, gates, T)))  # (B,)
        outs.append(net.output(x, gates))  # (B,)
        gate_rows.append(h)
    P = np.array(probs)  # (K, B)
    F = np.array(outs)  # (K, B)
    G = np.array(gate_rows, dtype=float)  # (K, S)
    mean = (P * F).sum(axis=0)
    var = (P * (F - mean) ** 2).sum(axis=0)
    marg = P.T @ G  # (B, S)
    marginals = [marg[:, a:b] for a, b in itertools.pairwise(bounds)]
    return ExactResult(marginals, mean, var, len(P))


# -- the kernel against its numpy twin ------------------------------------------------------------


@pytest.mark.parametrize("T", TEMPERATURES)
def test_numba_kernel_equals_numpy_twin(tiny_net, T):
    x = inputs(tiny_net, batch=4)
    fast = exact_enumeration(tiny_net, x, T, backend="numba")
    ref = exact_enumeration(tiny_net, x, T, backend="numpy")
    assert_results_close(fast, ref)
    assert fast.n_configurations == n_configurations(tiny_net) == 2**tiny_net.n_gates


@pytest.mark.parametrize("name", ["2-2-1", "3-4-3-1", "4-3-3-2-1"])
@pytest.mark.parametrize("T", TEMPERATURES)
def test_brute_force_oracle(name, T):
    net = tiny_network(name, seed=3)
    x = inputs(net, batch=3, seed=5)
    ref = brute_force(net, x, T)
    for backend in ("numba", "numpy"):
        assert_results_close(exact_enumeration(net, x, T, backend=backend), ref)


@settings(max_examples=30, deadline=None)
@given(
    widths=st.lists(st.integers(1, 4), min_size=2, max_size=4),
    T=st.one_of(st.sampled_from([0.0, INF]), st.floats(0.05, 20.0)),
    seed=st.integers(0, 2**16),
)
def test_property_numba_mean_and_var_equal_numpy_twin(widths, T, seed):
    net = LayeredNetwork.he_normal((*widths, 1), seed=seed)
    x = np.random.default_rng(seed + 1).normal(size=(2, widths[0]))
    assert_results_close(
        exact_enumeration(net, x, T, backend="numba"),
        exact_enumeration(net, x, T, backend="numpy"),
    )


# -- the two limits -------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_zero_temperature_is_the_relu_network(tiny_net, backend):
    x = inputs(tiny_net, batch=5)
    r = exact_enumeration(tiny_net, x, 0.0, backend=backend)
    relu = tiny_net.relu_sample(x)
    for m, g in zip(r.marginals, relu.gates, strict=True):
        np.testing.assert_array_equal(m, g.astype(float))
    np.testing.assert_allclose(r.mean, tiny_net.relu_forward(x), rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(r.var, 0.0)


def _inputs_away_from_ties(net: LayeredNetwork, margin: float, n: int) -> np.ndarray:
    """Inputs whose ReLU logits at every hidden layer are at least ``margin`` away from 0."""
    x = np.random.default_rng(11).normal(size=(400, net.widths[0]))
    zs = net.relu_sample(x).logits[:-1]
    ok = np.all(np.concatenate([np.abs(z) for z in zs], axis=1) > margin, axis=1)
    assert ok.sum() >= n, "test setup: too few inputs away from gate ties"
    return x[ok][:n]


def test_small_temperature_collapses_to_relu(tiny_net):
    x = _inputs_away_from_ties(tiny_net, margin=0.05, n=4)
    r = exact_enumeration(tiny_net, x, 1e-3)  # |z|/T ≥ 50: off-ReLU branches weigh ≲ e^-50
    relu = tiny_net.relu_sample(x)
    for m, g in zip(r.marginals, relu.gates, strict=True):
        np.testing.assert_allclose(m, g.astype(float), rtol=0, atol=1e-15)
    np.testing.assert_allclose(r.mean, tiny_net.relu_forward(x), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(r.var, 0.0, atol=1e-14)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_infinite_temperature_is_maximum_entropy(tiny_net, backend):
    x = inputs(tiny_net, batch=3) * 100.0  # large logits make no difference at T = inf
    r = exact_enumeration(tiny_net, x, INF, backend=backend)
    if backend == "numba":  # the kernel multiplies p = 1/2 exactly
        np.testing.assert_array_equal(r.marginals[0], 0.5)
    else:  # the twin weighs by exp(log_prob): exact up to round-off of the logarithm
        np.testing.assert_allclose(r.marginals[0], 0.5, rtol=1e-14)
    for m in r.marginals[1:]:  # every gate is a fair coin at T = inf, whatever lies below
        np.testing.assert_allclose(m, 0.5, rtol=1e-14)


def test_network_without_hidden_layers():
    net = LayeredNetwork([[[1.5], [-2.0]]])
    x = np.array([[1.0, 2.0], [0.5, 0.0]])
    for backend in ("numba", "numpy"):
        r = exact_enumeration(net, x, 1.0, backend=backend)
        assert r.marginals == [] and r.n_configurations == 1
        np.testing.assert_allclose(r.mean, [-2.5, 0.75])
        np.testing.assert_array_equal(r.var, 0.0)


def test_single_input_row_is_a_batch_of_one():
    net = tiny_network("3-4-3-1")
    x = inputs(net, batch=1)
    a = exact_enumeration(net, x[0], 1.0)
    b = exact_enumeration(net, x, 1.0)
    assert a.mean.shape == (1,) and a.marginals[0].shape == (1, 4)
    assert_results_close(a, b, rtol=0)


# -- the layer law --------------------------------------------------------------------------------


@pytest.mark.parametrize("T", [0.0, 0.3, 1.0, INF])
def test_layer_distribution_sums_to_one_and_matches_marginals(tiny_net, T):
    x = inputs(tiny_net, batch=3)
    r = exact_enumeration(tiny_net, x, T, backend="numpy")
    for layer, n in enumerate(tiny_net.hidden_widths, start=1):
        mu = layer_distribution(tiny_net, x, T, layer)
        assert mu.shape == (3, 2**n)
        assert np.all(mu >= 0)
        np.testing.assert_allclose(mu.sum(axis=1), 1.0, rtol=1e-13)
        bits = (np.arange(2**n)[:, None] >> np.arange(n)) & 1  # (2^n, n): bit i = gate i
        np.testing.assert_allclose(mu @ bits, r.marginals[layer - 1], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("T", [0.0, 0.5, 2.0, INF])
def test_layer_distribution_of_one_layer_is_a_product_of_bernoullis(T):
    net = tiny_network("2-2-1", seed=4)
    x = inputs(net, batch=3, seed=6)
    mu = layer_distribution(net, x, T, 1)
    z = x @ net.weights[0]  # (B, 2)

    def sigma(v: float) -> float:
        if T == 0.0:
            return 1.0 if v > 0 else 0.0
        if math.isinf(T):
            return 0.5
        return 1.0 / (1.0 + math.exp(-v / T))

    for b in range(3):
        p0, p1 = sigma(z[b, 0]), sigma(z[b, 1])
        expected = [(1 - p0) * (1 - p1), p0 * (1 - p1), (1 - p0) * p1, p0 * p1]  # k = h0 + 2 h1
        np.testing.assert_allclose(mu[b], expected, rtol=1e-13, atol=1e-16)


@pytest.mark.parametrize("T", [0.2, 1.0])
def test_layer_distribution_of_last_layer_against_brute_force(T):
    net = tiny_network("4-3-3-2-1", seed=2)
    x = inputs(net, batch=2, seed=3)
    mu = layer_distribution(net, x, T, 3)  # the last hidden layer, 2 gates
    expected = np.zeros((2, 4))
    for bits in itertools.product((False, True), repeat=net.n_gates):
        h = np.array(bits)
        gates = [h[:3], h[3:6], h[6:]]
        expected[:, int(h[6]) + 2 * int(h[7])] += np.exp(net.log_prob(x, gates, T))
    np.testing.assert_allclose(mu, expected, rtol=1e-12)


# -- Monte Carlo against exact --------------------------------------------------------------------


def assert_within_se(est, se, exact, k=4.0):
    """``|est - exact| ≤ k·se`` entrywise; where ``se = 0`` the two must be equal."""
    est, se, exact = np.broadcast_arrays(est, se, exact)
    err = np.abs(est - exact)
    pos = se > 0
    assert np.all(err[pos] <= k * se[pos]), f"max z-score {np.max(err[pos] / se[pos]):.2f} > {k}"
    np.testing.assert_allclose(est[~pos], exact[~pos], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", ["3-4-3-1", "5-5-1"])
@pytest.mark.parametrize("T", [0.1, 1.0, 10.0])
def test_monte_carlo_agrees_with_exact(name, T):
    net = tiny_network(name)
    x = inputs(net, batch=3)
    S = 4000
    mc = monte_carlo(net, x, T, S, seed=12345)
    ex = exact_enumeration(net, x, T)
    assert isinstance(mc, MonteCarloResult) and mc.n_samples == S
    for m, se, p in zip(mc.marginals, mc.marginals_se, ex.marginals, strict=True):
        assert m.shape == p.shape == se.shape
        # the standard error of a Bernoulli mean is s/√S with s² = S/(S-1) m(1-m)
        np.testing.assert_allclose(se, np.sqrt(m * (1 - m) / (S - 1)), rtol=1e-12, atol=1e-18)
        # a gate open in all but a handful of samples has a badly estimated s (one miss gives
        # s/√S = 1/S whatever p is), so also allow the exact binomial error √(p(1-p)/S)
        assert_within_se(m, np.maximum(se, np.sqrt(p * (1 - p) / S)), p)
    assert_within_se(mc.mean, mc.mean_se, ex.mean)
    assert_within_se(mc.var, mc.var_se, ex.var, k=5.0)


def test_monte_carlo_at_zero_temperature_is_deterministic():
    net = tiny_network("3-4-3-1")
    x = inputs(net)
    mc = monte_carlo(net, x, 0.0, 10, seed=0)
    relu = net.relu_sample(x)
    for m, se, g in zip(mc.marginals, mc.marginals_se, relu.gates, strict=True):
        np.testing.assert_array_equal(m, g.astype(float))
        np.testing.assert_array_equal(se, 0.0)
    np.testing.assert_allclose(mc.mean, relu.output, rtol=1e-15)
    assert mc.constant.all()  # every draw agreed, so the errors are exactly 0, not round-off
    for a in (mc.mean_se, mc.var, mc.var_se):
        np.testing.assert_array_equal(a, 0.0)


# -- no variation seen: standard errors exactly 0, and the rule of three -------------------------


def test_identical_draws_give_standard_errors_of_exactly_zero():
    """The case of issue 13 (`umwelt exact --widths 5,5,1 --temperature 0.1 --samples 2000
    --seed 5`): inputs 1 and 3 drew one configuration 2000 times; f - mean(f) left SEs of
    ~5e-18 and variances of ~1e-31, hence z-scores of 1e13."""
    net = LayeredNetwork.he_normal((5, 5, 1), seed=5)
    x = np.random.default_rng(6).normal(size=(4, 5))
    mc = monte_carlo(net, x, 0.1, 2000, seed=7)
    assert mc.constant.tolist() == [False, True, False, True]
    assert mc.rule_of_three == 3 / 2000
    relu = net.relu_sample(x)
    for b in (1, 3):
        assert mc.mean_se[b] == 0.0 and mc.var[b] == 0.0 and mc.var_se[b] == 0.0
        np.testing.assert_array_equal(mc.marginals[0][b], relu.gates[0][b])  # the one seen
        np.testing.assert_array_equal(mc.marginals_se[0][b], 0.0)
        np.testing.assert_allclose(mc.mean[b], relu.output[b], rtol=1e-15)
    for b in (0, 2):  # these varied: their errors are measured
        assert mc.mean_se[b] > 0 and mc.var[b] > 0 and mc.var_se[b] > 0


def test_output_constant_while_gates_flip():
    """Layer 1 is shut in every draw, so z_2 = 0, layer 2 flips fair coins and f = 0."""
    net = LayeredNetwork([[[-5.0]], [[1.0, 1.0]], [[1.0], [2.0]]])  # widths (1, 1, 2, 1)
    mc = monte_carlo(net, np.array([[1.0]]), 0.1, 500, seed=3)  # P(h_1 = 1) = σ(-50)
    assert mc.constant.tolist() == [True]
    assert mc.mean.tolist() == [0.0] and mc.mean_se.tolist() == [0.0] and mc.var.tolist() == [0.0]
    assert mc.marginals_se[0].tolist() == [[0.0]] and np.all(mc.marginals_se[1] > 0)


@pytest.mark.parametrize("S", [3, 10, 2000, 10**6])
def test_rule_of_three_bounds_the_unseen_at_95_percent(S):
    """3/S is above the exact one-sided 95 % Clopper–Pearson bound 1 − 0.05^{1/S}, and an
    outcome of probability 3/S goes unseen in S draws less than 5 % of the time."""
    assert 1 - 0.05 ** (1 / S) <= 3 / S
    assert (1 - 3 / S) ** S < 0.05


def test_shifted_moments_keep_a_small_spread_on_a_large_output():
    """Moments about the first draw: an output of 1e8 that steps by ~1e-3 keeps its variance
    to round-off (about the float mean, whose own error is ~1e-8, it is off by ~5e-10)."""
    net = LayeredNetwork([[[1e8, 1e-3]], [[1.0], [1.0]]])  # f = 1e8 h_1 + 1e-3 h_2
    mc = monte_carlo(net, np.array([[1.0]]), 1e-3, 4000, seed=0)  # h_1 = 1; h_2 ~ σ(1)
    p = mc.marginals[0][0, 1]
    assert mc.marginals[0][0, 0] == 1.0 and 0.6 < p < 0.85
    step = (np.float64(1e8) + 1e-3) - 1e8  # the step as float64 represents it
    np.testing.assert_allclose(mc.var[0], step**2 * p * (1 - p) * 4000 / 3999, rtol=1e-12)


# -- Monte Carlo error bars are honest: z-scores against the exact law -----------------------------


@pytest.mark.parametrize("name", ["3-4-3-1", "5-5-1"])
def test_monte_carlo_z_scores_against_exact_have_unit_spread(name):
    """The independent oracle: over 200 seeds, (estimate − exact)/se of the mean, the variance
    and every gate marginal has mean ≈ 0 and standard deviation within [0.8, 1.25]. At T = 1
    every gate is open with probability in (0.05, 0.95), so the draws always vary."""
    net = tiny_network(name)
    x = inputs(net, batch=3)
    T, S, seeds = 1.0, 1000, 200
    ex = exact_enumeration(net, x, T)
    assert all(np.all((p > 0.05) & (p < 0.95)) for p in ex.marginals)
    z_mean, z_var, z_gate = [], [], []
    for seed in range(seeds):
        mc = monte_carlo(net, x, T, S, seed=seed)
        assert not mc.constant.any()
        z_mean.append((mc.mean - ex.mean) / mc.mean_se)
        z_var.append((mc.var - ex.var) / mc.var_se)
        z_gate += [
            ((m - p) / se).ravel() for m, se, p in zip(mc.marginals, mc.marginals_se, ex.marginals)
        ]
    for what, z in (("mean", z_mean), ("var", z_var), ("marginals", z_gate)):
        z = np.concatenate(z)
        assert np.all(np.isfinite(z)), what
        assert 0.8 <= z.std() <= 1.25, f"{what}: z-score SD {z.std():.3f}"
        assert abs(z.mean()) < 4 / math.sqrt(z.size) + 0.05, f"{what}: z-score mean {z.mean():.3f}"


def test_monte_carlo_seed_is_reproducible_and_accepts_a_generator():
    net = tiny_network("2-2-1")
    x = inputs(net)
    a = monte_carlo(net, x, 1.0, 50, seed=7)
    b = monte_carlo(net, x, 1.0, 50, seed=np.random.default_rng(7))
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.marginals[0], b.marginals[0])


# -- refusals and bad input -----------------------------------------------------------------------


def test_refuses_more_configurations_than_the_limit():
    net = LayeredNetwork.he_normal((2, 12, 11, 1), seed=0)  # 23 gates
    assert n_configurations(net) == 2**23 > MAX_CONFIGURATIONS
    for backend in ("numba", "numpy"):
        with pytest.raises(EnumerationLimitError) as info:
            exact_enumeration(net, np.ones((1, 2)), 1.0, backend=backend)
        msg = str(info.value)
        assert "2^23" in msg and str(2**23) in msg and str(MAX_CONFIGURATIONS) in msg


def test_refuses_a_custom_limit_and_layer_law_over_the_limit():
    net = tiny_network("3-4-3-1")  # 7 gates
    with pytest.raises(EnumerationLimitError, match=r"2\^7 = 128 .* limit of 100"):
        exact_enumeration(net, np.ones(3), 1.0, limit=100)
    with pytest.raises(EnumerationLimitError, match=r"2\^7 = 128 .* limit of 64"):
        layer_distribution(net, np.ones(3), 1.0, 2, limit=64)
    assert layer_distribution(net, np.ones(3), 1.0, 1, limit=16).shape == (1, 16)


def test_layer_distribution_refuses_wide_layers():
    net = LayeredNetwork.he_normal((2, 21, 1), seed=0)
    with pytest.raises(ConfigError, match="21 gates"):
        layer_distribution(net, np.ones(2), 1.0, 1, limit=2**30)


@pytest.mark.parametrize("layer", [0, 3, -1, 1.0, True])
def test_layer_distribution_refuses_bad_layer(layer):
    with pytest.raises(ConfigError, match="layer"):
        layer_distribution(tiny_network("3-4-3-1"), np.ones(3), 1.0, layer)


@pytest.mark.parametrize("T", [-1.0, float("nan"), "hot", None])
def test_bad_temperature(T):
    net = tiny_network("2-2-1")
    for call in (
        lambda: exact_enumeration(net, np.ones(2), T),
        lambda: exact_enumeration(net, np.ones(2), T, backend="numpy"),
        lambda: layer_distribution(net, np.ones(2), T, 1),
        lambda: monte_carlo(net, np.ones(2), T, 10, seed=0),
    ):
        with pytest.raises(ConfigError, match="temperature"):
            call()


def test_bad_backend_limit_and_sample_count():
    net = tiny_network("2-2-1")
    with pytest.raises(ConfigError, match="'torch'"):
        exact_enumeration(net, np.ones(2), 1.0, backend="torch")
    with pytest.raises(ConfigError, match="limit"):
        exact_enumeration(net, np.ones(2), 1.0, limit=0)
    for n in (1, 0, 2.5):
        with pytest.raises(ConfigError, match="n_samples"):
            monte_carlo(net, np.ones(2), 1.0, n, seed=0)


def test_bad_input_shape():
    net = tiny_network("2-2-1")
    with pytest.raises(ShapeError, match=r"\(B, 2\)"):
        exact_enumeration(net, np.ones((2, 3)), 1.0)
    with pytest.raises(ShapeError, match=r"\(B, 2\)"):
        monte_carlo(net, np.ones(3), 1.0, 10, seed=0)
