"""Circuit symmetry (umwelt.circuits.symmetry): statistics, the test of ψ against −ψ, sampling
of perturbations, assemblies and their moments.

Oracles: scipy.stats for every statistic computed by hand (moments, Wilcoxon, binomial, the
two-sample KS distance), brute force over all 2^m sign flips for the exact mirror-KS p-value,
the circuit sums of umwelt.circuits (streamed over every circuit) for the closed-form
assemblies, and E[f²] = 2 exactly for He-normal ReLU nets of any width and depth.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from umwelt import ConfigError, LayeredNetwork, ShapeError
from umwelt.circuits import (
    EXACT_MIRROR_KS_MAX,
    assembly_entries,
    assembly_moments,
    circuit_derivative,
    mirror_ks_test,
    sample_layers,
    sample_perturbations,
    sampled_circuit_values,
    symmetry_stats,
)
from umwelt.circuits.symmetry import (
    _brownian_tail,
    _sample_hessian_entries,
    _walk_tail_exact,
)

# -- statistics against scipy ---------------------------------------------------------------------


def test_statistics_match_scipy_on_a_skewed_sample_with_zeros():
    rng = np.random.default_rng(0)
    v = rng.exponential(size=400) - 0.6
    v[::7] = 0.0
    s = symmetry_stats(v)
    nz = v[v != 0]
    assert s.n == v.size
    np.testing.assert_allclose(s.mean, v.mean(), rtol=1e-14)
    np.testing.assert_allclose(s.std, v.std(ddof=1), rtol=1e-14)
    np.testing.assert_allclose(s.mean_over_std, v.mean() / v.std(ddof=1), rtol=1e-13)
    np.testing.assert_allclose(s.skewness, stats.skew(v, bias=True), rtol=1e-12)
    np.testing.assert_allclose(s.excess_kurtosis, stats.kurtosis(v, bias=True), rtol=1e-12)
    assert s.frac_zero == pytest.approx(1 - nz.size / v.size)
    assert s.frac_positive == pytest.approx(np.mean(nz > 0))
    assert s.wilcoxon_pvalue == pytest.approx(stats.wilcoxon(nz, method="asymptotic").pvalue)
    assert s.sign_test_pvalue == pytest.approx(stats.binomtest(int(np.sum(nz > 0)), nz.size).pvalue)
    assert s.skewness > 1  # the exponential's skewness is 2
    assert s.sym_test_pvalue < 1e-6  # and the test sees it


def test_known_closed_forms():
    s = symmetry_stats(np.array([-2.0, -1.0, 0.0, 1.0, 2.0]))
    assert (s.mean, s.skewness, s.frac_positive, s.frac_zero) == (0.0, 0.0, 0.5, 0.2)
    assert s.sym_test_pvalue == 1.0  # a perfectly symmetric sample
    z = symmetry_stats(np.zeros(5))  # all zeros: nothing to test
    assert z.frac_zero == 1.0 and math.isnan(z.sym_test_pvalue) and math.isnan(z.skewness)


def test_mirror_ks_distance_is_the_two_sample_ks_distance_of_v_and_minus_v():
    rng = np.random.default_rng(1)
    for v in (rng.normal(size=200) + 0.1, rng.standard_t(3, size=500), rng.exponential(size=50)):
        D, _ = mirror_ks_test(v)
        assert D == pytest.approx(stats.ks_2samp(v, -v).statistic, abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_exact_p_value_equals_brute_force_over_all_sign_flips(seed):
    rng = np.random.default_rng(seed)
    mags = rng.choice([0.5, 1.0, 2.0, 3.0, 4.0], size=11) if seed % 2 else rng.random(11)
    v = mags * rng.choice([-1.0, 1.0], size=11)  # ties in |v| for odd seeds
    D, p = mirror_ks_test(v)
    dists = np.array(
        [mirror_ks_test(mags * np.array(s))[0] for s in itertools.product((-1.0, 1.0), repeat=11)]
    )
    assert p == pytest.approx(np.mean(dists >= D - 1e-12), abs=1e-12)


def test_brownian_limit_is_close_to_the_exact_walk_and_conservative_in_the_tail():
    m = EXACT_MIRROR_KS_MAX
    for x in (0.5, 1.0, 1.5, 2.5, 3.5):
        d = int(round(x * math.sqrt(m)))
        exact, limit = _walk_tail_exact([1] * m, d), _brownian_tail(d / math.sqrt(m))
        assert limit == pytest.approx(exact, rel=0.02)
    assert _brownian_tail(0.0) == 1.0 and _brownian_tail(12.0) < 1e-30


@pytest.mark.parametrize(
    "draw",
    [
        lambda r, n: r.normal(size=n),
        lambda r, n: r.standard_t(2, size=n),  # heavy tails
        lambda r, n: r.normal(size=n) * r.exponential(size=n) ** 3,  # products, as circuits
    ],
    ids=["normal", "t2", "product"],
)
def test_symmetric_laws_give_uniform_p_values(draw):
    rng = np.random.default_rng(2)
    p = np.array([mirror_ks_test(draw(rng, 300))[1] for _ in range(150)])
    assert 0.0 <= np.mean(p < 0.05) <= 0.11  # level respected (the exact test is conservative)
    assert stats.kstest(p, "uniform").pvalue > 1e-3  # uniform: not piled up near 0


def test_asymmetric_laws_give_tiny_p_values_in_both_regimes():
    rng = np.random.default_rng(3)
    skewed = rng.exponential(size=6000) - math.log(2)  # median 0, skewed: a shape asymmetry
    assert np.mean(skewed > 0) == pytest.approx(0.5, abs=0.02)
    assert mirror_ks_test(skewed[:1500])[1] < 1e-6  # exact regime
    assert mirror_ks_test(skewed)[1] < 1e-12  # Brownian regime (> EXACT_MIRROR_KS_MAX)
    assert mirror_ks_test(rng.normal(size=5000) + 0.2)[1] < 1e-12  # a shift
    assert mirror_ks_test(rng.normal(size=5000))[1] > 1e-3


@pytest.mark.parametrize(
    ("values", "err", "match"),
    [
        (np.zeros((3, 3)), ShapeError, "1-D"),
        (np.array([1.0]), ConfigError, "at least 2"),
        (np.array([1.0, np.nan]), ConfigError, "non-finite"),
    ],
)
def test_bad_samples_are_refused(values, err, match):
    with pytest.raises(err, match=match):
        symmetry_stats(values)


# -- sampled perturbations ------------------------------------------------------------------------


def test_sampled_perturbations_are_the_circuit_values_of_the_drawn_layers():
    net = LayeredNetwork.he_normal((4, 5, 4, 3, 1), seed=1)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4))
    gates = net.sample(x, 0.7, rng).gates
    s = sample_perturbations(net, x, gates, n=3000, rng=5)
    assert set(s) == {"psi", "omega1", "omega2"}
    for order, k in (("psi", 0), ("omega1", 1), ("omega2", 2)):
        c = s[order]
        assert c.layers.shape == (3000, k) and c.values.shape == (3000,)
        for b in range(3):
            m = c.inputs == b
            wl = tuple(c.layers[m, j] for j in range(k))
            want = sampled_circuit_values(
                net, x[b], [h[b] for h in gates], c.paths[m], wrt_layers=wl
            )
            np.testing.assert_array_equal(c.values[m], want)
        assert stats.chisquare(np.bincount(c.inputs, minlength=3)).pvalue > 1e-3
    # layers uniform over 1..L, pairs uniform over the L(L-1)/2 pairs, with l < l'
    assert stats.chisquare(np.bincount(s["omega1"].layers[:, 0], minlength=5)[1:]).pvalue > 1e-3
    pairs = s["omega2"].layers
    assert np.all(pairs[:, 0] < pairs[:, 1])
    codes = (pairs[:, 0] - 1) * 4 + (pairs[:, 1] - 1)
    counts = np.bincount(codes, minlength=16)[[1, 2, 3, 6, 7, 11]]
    assert counts.sum() == 3000 and stats.chisquare(counts).pvalue > 1e-3


def test_sample_layers_and_orders_refuse_what_cannot_be():
    rng = np.random.default_rng(0)
    with pytest.raises(ConfigError, match="at least 2 layers"):
        sample_layers(1, 5, 2, rng)
    net = LayeredNetwork.he_normal((3, 1), seed=0)
    with pytest.raises(ConfigError, match="at least 2 layers"):
        sample_perturbations(net, np.ones(3), n=10, rng=0)
    with pytest.raises(ConfigError, match="unknown order"):
        sample_perturbations(net, np.ones(3), n=10, orders=("psi", "omega3"))
    with pytest.raises(ConfigError, match="≥ 2"):
        sample_perturbations(net, np.ones(3), n=1, orders=("psi",))
    with pytest.raises(ShapeError):
        sample_perturbations(net, np.ones(4), n=10, orders=("psi",))


# -- assemblies -----------------------------------------------------------------------------------


@pytest.mark.parametrize("widths", [(3, 1), (3, 4, 1), (3, 4, 3, 2, 1)], ids=str)
def test_closed_form_assemblies_are_the_circuit_sums(widths):
    net = LayeredNetwork.he_normal(widths, seed=8)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, widths[0]))
    gates = net.sample(x, 1.0, rng).gates
    he = _sample_hessian_entries(widths, 25, rng) if net.depth >= 2 else None
    f, grads, hess = assembly_entries(net, x, gates, he)
    for b in range(2):
        g = [h[b] for h in gates]
        scale = 1e-12 * (1 + abs(f[b]))
        assert f[b] == pytest.approx(circuit_derivative(net, x[b], g, []), abs=scale)
        for l, w in enumerate(net.weights, start=1):
            for a, c in itertools.product(range(w.shape[0]), range(w.shape[1])):
                want = circuit_derivative(net, x[b], g, [(l, a, c)])
                assert grads[l - 1][b, a, c] == pytest.approx(want, abs=scale)
        for k, e in enumerate(he if he is not None else []):
            want = circuit_derivative(net, x[b], g, [tuple(e[:3]), tuple(e[3:])])
            assert hess[b, k] == pytest.approx(want, abs=scale)


def test_hessian_entries_are_drawn_uniformly_off_the_diagonal_blocks():
    widths = (3, 4, 2, 1)
    e = _sample_hessian_entries(widths, 6000, np.random.default_rng(0))
    assert np.all(e[:, 0] != e[:, 3])
    sizes = np.array([12, 8, 2])
    obs = np.zeros((3, 3))
    np.add.at(obs, (e[:, 0] - 1, e[:, 3] - 1), 1)
    want = np.outer(sizes, sizes).astype(float)
    np.fill_diagonal(want, 0)
    off = ~np.eye(3, dtype=bool)
    assert stats.chisquare(obs[off], want[off] / want.sum() * 6000).pvalue > 1e-3
    with pytest.raises(ConfigError, match="two different layers"):
        assembly_entries(
            LayeredNetwork.he_normal(widths, seed=0), np.ones((1, 3)), None, [[1, 0, 0, 1, 1, 1]]
        )


def test_moments_of_f_at_he_initialization_match_the_exact_value():
    # E[f²] = 2 exactly for He-normal ReLU nets and standard-normal inputs (any n, L), E[f] = 0
    m = assembly_moments((2, 3), (16,), nets=64, inputs=8, entries=8, seed=1)
    for i in range(2):
        assert abs(m.second["f"][i, 0] - 2.0) < 4 * m.second_se["f"][i, 0]
        assert abs(m.mean["f"][i, 0]) < 4 * m.mean_se["f"][i, 0]
    assert m.second["grad"].shape == (2, 1) and np.all(m.second["hess"] > 0)
    d = m.as_dict()
    assert d["depths"] == [2, 3] and set(d["second"]) == {"f", "grad", "hess"}


def test_moments_refuse_bad_settings():
    with pytest.raises(ConfigError, match="nets"):
        assembly_moments((2,), (4,), nets=1)
    with pytest.raises(ConfigError, match="gain"):
        assembly_moments((2,), (4,), gain=-1.0)
    with pytest.raises(ConfigError):
        assembly_moments((0,), (4,))
