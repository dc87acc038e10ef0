"""The gate law against its closed forms and exact limits (THEORY.md §1)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from umwelt import gates as gl
from umwelt.errors import ConfigError, ShapeError, UmweltError

TEMPERATURES = [0.0, 1e-300, 1e-3, 0.1, 1.0, 10.0, 1e300, math.inf]
EXTREME = np.array([-1e6, -1.0, -1e-300, 0.0, 1e-300, 1.0, 1e6])

finite_logits = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
temperatures = st.one_of(st.just(0.0), st.just(math.inf), st.floats(1e-300, 1e300, allow_nan=False))
logit_arrays = arrays(
    np.float64, array_shapes(min_dims=1, max_dims=3, max_side=6), elements=finite_logits
)


@pytest.mark.parametrize("T", TEMPERATURES)
def test_extreme_logits_stay_finite(T):
    p = gl.gate_probabilities(EXTREME, T)
    assert np.all((p >= 0) & (p <= 1))
    assert np.all(np.isfinite(gl.mean_field(EXTREME, T)))
    assert np.all(np.isfinite(gl.gate_entropy_bits(EXTREME, T)))
    lp = gl.gate_log_prob(np.ones_like(EXTREME), EXTREME, T)
    assert not np.isnan(lp)


def test_zero_temperature_is_relu():
    z = np.array([-2.0, -0.0, 0.0, 1e-300, 3.0])
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(gl.sample_gates(z, 0.0, rng), [False, False, False, True, True])
    np.testing.assert_array_equal(gl.mean_field(z, 0.0), np.maximum(z, 0.0))
    np.testing.assert_array_equal(gl.gate_entropy_bits(z, 0.0), 0.0)
    # the ReLU configuration is certain, every other one impossible
    assert gl.gate_log_prob(gl.relu_gates(z), z, 0.0) == 0.0
    assert gl.gate_log_prob(~gl.relu_gates(z), z, 0.0) == -np.inf


def test_infinite_temperature_is_a_fair_coin():
    z = np.array([-1e6, 0.0, 5.0, 1e6])
    np.testing.assert_array_equal(gl.gate_probabilities(z, math.inf), 0.5)
    np.testing.assert_array_equal(gl.mean_field(z, math.inf), z / 2)
    np.testing.assert_allclose(gl.gate_entropy_bits(z, math.inf), 1.0)
    h = gl.sample_gates(np.zeros(200_000), math.inf, np.random.default_rng(1))
    assert abs(h.mean() - 0.5) < 4 * 0.5 / math.sqrt(h.size)
    assert gl.gate_log_prob(h[:10], np.zeros(10), math.inf) == pytest.approx(10 * math.log(0.5))


def test_mean_field_closed_form_is_scaled_swish():
    z = np.linspace(-8, 8, 101)
    for T in [0.05, 0.7, 3.0]:
        silu = (z / T) / (1 + np.exp(-z / T))
        np.testing.assert_allclose(gl.mean_field(z, T), T * silu, rtol=1e-13, atol=1e-300)


def test_sampling_frequencies_match_probabilities():
    z = np.array([-1.0, -0.2, 0.0, 0.3, 2.0])
    T, n = 0.5, 100_000
    h = gl.sample_gates(np.broadcast_to(z, (n, z.size)), T, np.random.default_rng(2))
    p = gl.gate_probabilities(z, T)
    se = np.sqrt(p * (1 - p) / n)
    assert np.all(np.abs(h.mean(axis=0) - p) < 4 * se)


@settings(max_examples=200, deadline=None)
@given(z=logit_arrays, T=temperatures)
def test_probabilities_are_probabilities(z, T):
    p = gl.gate_probabilities(z, T)
    assert p.shape == z.shape
    assert np.all((p >= 0) & (p <= 1))
    # σ(a) + σ(−a) = 1, except the T = 0 tie, where both gates are closed (eq. 7)
    total = p + gl.gate_probabilities(-z, T)
    tie = (T == 0.0) & (z == 0)
    np.testing.assert_allclose(total[~tie], 1.0, atol=1e-15)
    np.testing.assert_array_equal(total[tie], 0.0)
    # monotone in z
    order = np.argsort(z, axis=None)
    assert np.all(np.diff(p.ravel()[order]) >= 0)


@settings(max_examples=200, deadline=None)
@given(z=logit_arrays, T=temperatures, seed=st.integers(0, 2**32 - 1))
def test_log_prob_normalizes_and_matches_probabilities(z, T, seed):
    h = gl.sample_gates(z, T, np.random.default_rng(seed))
    lp = gl.gate_log_prob(h, z, T)
    assert lp.shape == z.shape[:-1]
    assert np.all(lp <= 0) and not np.any(np.isnan(lp))
    # a sampled configuration always has positive probability
    assert np.all(np.isfinite(lp))
    # per-gate: log p(1) and log p(0) exponentiate to p and 1 − p
    p = gl.gate_probabilities(z, T)
    on = gl.gate_log_prob(np.ones_like(z)[..., None], z[..., None], T)
    off = gl.gate_log_prob(np.zeros_like(z)[..., None], z[..., None], T)
    np.testing.assert_allclose(np.exp(on), p, atol=1e-15)
    np.testing.assert_allclose(np.exp(off), 1 - p, atol=1e-15)


@settings(max_examples=200, deadline=None)
@given(z=logit_arrays, T=temperatures)
def test_mean_field_and_entropy_bounds(z, T):
    m = gl.mean_field(z, T)
    assert np.all(np.isfinite(m))
    # z σ(z/T) lies between min(z, 0) and max(z, 0)
    assert np.all(m <= np.maximum(z, 0) + 1e-12) and np.all(m >= np.minimum(z, 0) - 1e-12)
    H = gl.gate_entropy_bits(z, T)
    assert np.all((H >= 0) & (H <= 1 + 1e-12))


@pytest.mark.parametrize("T", [-1, -1e-300, math.nan, "hot", None])
def test_bad_temperature_is_named(T):
    with pytest.raises(ConfigError, match="temperature"):
        gl.gate_probabilities(np.zeros(2), T)
    assert issubclass(ConfigError, UmweltError)


def test_log_prob_shape_mismatch():
    with pytest.raises(ShapeError, match=r"\(3,\).*\(2,\)"):
        gl.gate_log_prob(np.zeros(3), np.zeros(2), 1.0)
