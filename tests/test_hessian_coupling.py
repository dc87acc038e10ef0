"""Coupling set sizes (fig. 7c) and Mardia's tests, against planted structures and definitions.

Oracles: a planted block population whose coupling fraction is known in closed form (the band's
coverage over seeds, its variance against Monte Carlo), brute-force enumeration of the
U-statistics behind Hoeffding's variance, Mardia's :math:`b_1, b_2` from their definitions with
an explicit inverse covariance, and the hand-written Benjamini–Hochberg step-up this module's
``significant`` used before it called SciPy.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from umwelt.errors import ConfigError
from umwelt.nn.hessian import (
    COUPLING_INTERVALS,
    CouplingSet,
    MardiaTest,
    coupling_set,
    coupling_set_from_pairs,
    entry_statistics,
    entry_summary,
    mardia,
    pair_density_variance,
    pair_significance,
    significant,
)

# ---------------------------------------------------------------------------------------------
# Benjamini–Hochberg: SciPy against the hand-written step-up it replaced


def _bh_by_hand(p: np.ndarray, alpha: float) -> np.ndarray:
    """The step-up ``significant`` computed before it called ``false_discovery_control``."""
    out = np.zeros(p.shape, dtype=bool)
    tested = ~np.isnan(p)
    m = int(tested.sum())
    if m == 0:
        return out
    flat = p[tested]
    order = np.argsort(flat)
    below = flat[order] <= alpha * np.arange(1, m + 1) / m
    cut = np.nonzero(below)[0]
    sig = np.zeros(m, dtype=bool)
    if cut.size:
        sig[order[: cut[-1] + 1]] = True
    out[tested] = sig
    return out


def test_bh_agrees_with_the_hand_written_step_up():
    rng = np.random.default_rng(0)
    for trial in range(300):
        m = int(rng.integers(1, 400))
        # a mixture of nulls and signals, NaNs (not tested), and ties
        p = np.where(rng.random(m) < 0.3, rng.random(m) * 1e-3, rng.random(m))
        p[rng.random(m) < 0.1] = np.nan
        if trial % 3 == 0:
            p = np.round(p, 3)
        for alpha in (0.01, 0.05, 0.2):
            assert np.array_equal(significant(p, alpha, "bh"), _bh_by_hand(p, alpha)), (trial, m)
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, np.nan])
    assert np.array_equal(significant(p, 0.05, "bh"), _bh_by_hand(p, 0.05))
    grid = np.array([[0.01, 0.9], [np.nan, 0.02]])  # any shape
    assert significant(grid, 0.05, "bh").tolist() == [[True, False], [False, True]]
    with pytest.raises(ConfigError, match=r"p-values must lie in \[0, 1\]"):
        significant(np.array([0.5, 1.5]), 0.05, "bh")


# ---------------------------------------------------------------------------------------------
# A planted population: entries in blocks, each entry coupled to the others of its block


def _blocks(P: int, sizes, probs, seed: int) -> np.ndarray:
    """Block labels of ``P`` entries, block sizes drawn from ``sizes`` with ``probs``."""
    rng = np.random.default_rng(seed)
    out, total = [], 0
    while total < P:
        s = min(int(rng.choice(sizes, p=probs)), P - total)
        out.append(s)
        total += s
    return np.repeat(np.arange(len(out)), out)


def _planted_fraction(labels: np.ndarray) -> float:
    """The population's mean fraction of the other entries an entry is coupled with."""
    P = labels.size
    sizes = np.unique(labels, return_counts=True)[1]
    return float((sizes * (sizes - 1)).sum() / (P * (P - 1)))


#: heterogeneous: a few large blocks (a third of the entries in blocks of 150), many small ones
HETERO = ((1, 2, 3, 5, 60, 150), (0.3, 0.25, 0.2, 0.15, 0.07, 0.03))
P_BIG = 40_000
LABELS = _blocks(P_BIG, *HETERO, seed=1)
F_TRUE = _planted_fraction(LABELS)


def _sampled_pairs(rng: np.random.Generator, K: int) -> np.ndarray:
    pick = rng.choice(P_BIG, K, replace=False)
    return LABELS[pick][:, None] == LABELS[pick][None, :]


def test_planted_block_correlations_end_to_end():
    """Gaussian entries with planted correlation blocks: through ``entry_statistics`` the
    estimated count over the whole population brackets the planted one."""
    rng = np.random.default_rng(3)
    P, K, B, rho = 5000, 300, 300, 0.9
    labels = _blocks(P, (1, 4, 20), (0.4, 0.4, 0.2), seed=2)
    true_count = _planted_fraction(labels) * (P - 1)
    pick = rng.choice(P, K, replace=False)
    lab = np.unique(labels[pick], return_inverse=True)[1]
    # equicorrelated blocks: x = √ρ z_block + √(1-ρ) e
    S = math.sqrt(rho) * rng.normal(size=(B, lab.max() + 1))[:, lab]
    S += math.sqrt(1 - rho) * rng.normal(size=(B, K))
    S = np.column_stack([S, np.zeros(B)])  # plus one degenerate entry
    st = entry_statistics(S, S.mean(axis=0), n=10**6)
    # the significance calls find exactly the planted pairs
    planted = (lab[:, None] == lab[None, :]).sum(axis=1) - 1
    assert np.array_equal(st.n_corr[:K], planted)
    cs = coupling_set(st, P)
    assert cs.count_lo <= true_count <= cs.count_hi
    assert abs(cs.mean_count - true_count) < 3 * cs.fraction_se * (P - 1)
    assert cs.mean_fraction == pytest.approx(entry_summary(st)["coupling_fraction"])
    np.testing.assert_allclose(cs.count[:K], planted / (K - 1) * (P - 1))
    coupled = planted > 0
    assert coupled.any() and (~coupled).any()
    want = np.log(cs.count[:K][coupled]) / np.log(10**6)
    np.testing.assert_allclose(cs.exponent[:K][coupled], want)
    assert np.isnan(cs.exponent[:K][~coupled]).all()  # no partner in the sample: no exponent
    assert np.isnan(cs.fraction[K]) and np.isnan(cs.count[K]) and cs.n_live == K
    assert cs.mean_exponent == pytest.approx(math.log(cs.mean_count) / math.log(10**6))
    assert cs.exponent_lo <= cs.mean_exponent <= cs.exponent_hi
    # the exponent over the whole population exceeds the one capped by the sample
    assert cs.mean_exponent > entry_summary(st)["coupling_exponent"]


def test_pair_significance_reproduces_n_corr_for_both_corrections():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(200, 6))
    S = np.column_stack([a, a[:, :3] + 0.5 * rng.normal(size=(200, 3)), rng.normal(size=(200, 5))])
    for correction in ("bonferroni", "bh"):
        st = entry_statistics(S, S.mean(axis=0), n=100, correction=correction)
        idx, G = pair_significance(st)
        assert np.array_equal(G.sum(axis=1), st.n_corr[idx]) and np.array_equal(G, G.T)
        assert not G.diagonal().any()


def test_hoeffding_variance_against_enumeration():
    """The closed form against the U-statistics summed over all ordered distinct tuples."""
    rng = np.random.default_rng(5)
    for K in (4, 6, 9):
        for _ in range(5):
            G = rng.random((K, K)) < rng.uniform(0.1, 0.7)
            G = np.triu(G, 1)
            G = G | G.T
            pairs = list(itertools.permutations(range(K), 2))
            theta = np.mean([G[i, j] for i, j in pairs])
            e3 = np.mean([G[i, j] * G[i, k] for i, j, k in itertools.permutations(range(K), 3)])
            e4 = np.mean([G[i, j] * G[k, m] for i, j, k, m in itertools.permutations(range(K), 4)])
            zeta1, zeta2 = e3 - e4, theta - e4
            want = (4 * (K - 2) * zeta1 + 2 * zeta2) / (K * (K - 1))
            assert pair_density_variance(G) == pytest.approx(want, rel=1e-12, abs=1e-15)
    with pytest.raises(ConfigError, match="at least 4 entries"):
        pair_density_variance(np.zeros((3, 3), dtype=bool))


def test_hoeffding_variance_matches_monte_carlo():
    """Mean of the estimate over samples = the variance of the density over samples."""
    rng = np.random.default_rng(6)
    U, V = [], []
    for _ in range(400):
        G = _sampled_pairs(rng, 150)
        U.append((G.sum() - 150) / (150 * 149))
        V.append(pair_density_variance(G))
    # the Monte Carlo variance has relative error about √(2/400) = 7%
    assert np.mean(V) == pytest.approx(np.var(U, ddof=1), rel=0.25)
    assert np.mean(U) == pytest.approx(F_TRUE, rel=0.05)


def _binomial_band(level: float, n: int, z: float = 3.0) -> tuple[float, float]:
    half = z * math.sqrt(level * (1 - level) / n)
    return level - half, level + half


def test_quasi_poisson_band_covers_at_the_nominal_level():
    """200 seeds of K = 300 entries from the planted population: coverage of the planted
    fraction within a binomial tolerance of 90%; the naive band resampling the entries'
    fractions as if independent undercovers (so the population is a hard enough case)."""
    level, n_seeds = 0.9, 200
    hit = naive = 0
    for s in range(n_seeds):
        rng = np.random.default_rng(100 + s)
        cs = coupling_set_from_pairs(_sampled_pairs(rng, 300), P_BIG, n=1000, level=level)
        assert cs.method == "quasi-poisson" and cs.n_resamples == 0
        hit += cs.fraction_lo <= F_TRUE <= cs.fraction_hi
        f = cs.fraction
        half = stats.norm.ppf((1 + level) / 2) * f.std(ddof=1) / math.sqrt(f.size)
        naive += f.mean() - half <= F_TRUE <= f.mean() + half
    lo, hi = _binomial_band(level, n_seeds)
    assert lo <= hit / n_seeds <= hi, hit
    assert naive / n_seeds < lo, naive


def test_vertex_bootstrap_band_is_conservative():
    """scipy.stats.bootstrap resampling entries: about √3 too wide where couplings are sparse,
    so it covers more often than nominal (documented, kept for comparison)."""
    level, n_seeds = 0.8, 60
    hit = 0
    ratio = []
    for s in range(n_seeds):
        rng = np.random.default_rng(500 + s)
        G = _sampled_pairs(rng, 150)
        bands = {}
        for method in ("percentile", "quasi-poisson"):
            bands[method] = coupling_set_from_pairs(
                G, P_BIG, n=1000, level=level, n_resamples=200, method=method, seed=rng
            )
        cs = bands["percentile"]
        hit += cs.fraction_lo <= F_TRUE <= cs.fraction_hi
        q = bands["quasi-poisson"]
        if q.fraction_hi > q.fraction_lo:
            ratio.append((cs.fraction_hi - cs.fraction_lo) / (q.fraction_hi - q.fraction_lo))
    assert hit / n_seeds > level
    assert np.median(ratio) > 1.2


def test_bands_are_seeded_and_bca_runs():
    G = _sampled_pairs(np.random.default_rng(7), 80)
    a = coupling_set_from_pairs(G, P_BIG, n=1000, method="BCa", n_resamples=300, seed=1)
    b = coupling_set_from_pairs(G, P_BIG, n=1000, method="BCa", n_resamples=300, seed=1)
    c = coupling_set_from_pairs(
        G, P_BIG, n=1000, method="BCa", n_resamples=300, seed=np.random.default_rng(2)
    )
    assert (a.fraction_lo, a.fraction_hi) == (b.fraction_lo, b.fraction_hi)
    assert (a.fraction_lo, a.fraction_hi) != (c.fraction_lo, c.fraction_hi)
    assert a.method in ("BCa", "percentile")
    assert a.fraction_lo <= a.mean_fraction <= a.fraction_hi
    assert a.count_lo == pytest.approx(a.fraction_lo * (P_BIG - 1))


def test_no_significant_pair_and_all_significant():
    K, level = 50, 0.95
    none = coupling_set_from_pairs(np.zeros((K, K), bool), 10_000, n=100, level=level)
    M = K * (K - 1) // 2
    assert none.mean_fraction == 0 and none.fraction_lo == 0
    assert none.fraction_hi == pytest.approx(-math.log((1 - level) / 2) / M)  # Poisson, E = 0
    assert np.isnan(none.mean_exponent) and np.isnan(none.exponent_lo)
    assert math.isfinite(none.exponent_hi)
    boot = coupling_set_from_pairs(np.zeros((K, K), bool), 10_000, n=100, method="BCa")
    assert boot.fraction_lo == boot.fraction_hi == 0  # every resample: no pair
    full = coupling_set_from_pairs(np.ones((K, K), bool), 10_000, n=100)
    assert full.mean_fraction == full.fraction_lo == full.fraction_hi == 1


def test_row_fields():
    G = _sampled_pairs(np.random.default_rng(8), 60)
    cs = coupling_set_from_pairs(G, P_BIG, n=1000)
    row = cs.row()
    assert row["coupling_set_fraction"] == cs.mean_fraction
    assert row["coupling_set_population"] == P_BIG and row["coupling_set_n_live"] == 60
    assert {"coupling_set_count_lo", "coupling_set_exponent_hi", "coupling_set_fraction_se"} <= set(
        row
    )
    assert all(isinstance(v, float | int) for v in row.values())
    assert set(cs.row("c7")) == {k.replace("coupling_set", "c7") for k in row}
    assert isinstance(cs, CouplingSet)
    with pytest.raises(AttributeError):
        cs.mean_fraction = 0.0  # frozen


def test_coupling_errors_name_the_values():
    G = np.zeros((6, 6), dtype=bool)
    with pytest.raises(ConfigError, match="at least 5 live entries, got 4"):
        coupling_set_from_pairs(np.zeros((4, 4), bool), 100, n=10)
    with pytest.raises(ConfigError, match="population .*smaller than the sample"):
        coupling_set_from_pairs(G, 5, n=10)
    with pytest.raises(ConfigError, match="entry resamples"):
        coupling_set_from_pairs(G, 100, n=10, n_resamples=10)
    with pytest.raises(ConfigError, match="confidence level"):
        coupling_set_from_pairs(G, 100, n=10, level=1.0)
    with pytest.raises(ConfigError, match="method must be one of"):
        coupling_set_from_pairs(G, 100, n=10, method="studentized")
    with pytest.raises(ConfigError, match="square"):
        coupling_set_from_pairs(np.zeros((6, 5), bool), 100, n=10)
    asym = G.copy()
    asym[0, 1] = True
    with pytest.raises(ConfigError, match="symmetric"):
        coupling_set_from_pairs(asym, 100, n=10)
    with pytest.raises(ConfigError, match="Hessian dimension"):
        coupling_set_from_pairs(G, 100, n=1)
    st = entry_statistics(np.random.default_rng(0).normal(size=(30, 3)), np.zeros(3), n=10)
    with pytest.raises(ConfigError, match="at least 5 live entries, got 3"):
        coupling_set(st, 100)
    assert COUPLING_INTERVALS[0] == "quasi-poisson"


# ---------------------------------------------------------------------------------------------
# Mardia's multivariate skewness and kurtosis


def _mardia_by_definition(X: np.ndarray) -> tuple[float, float]:
    """:math:`b_1, b_2` with an explicit inverse of the (1/B) covariance."""
    B = X.shape[0]
    Xc = X - X.mean(axis=0)
    Sinv = np.linalg.inv(Xc.T @ Xc / B)
    D = np.einsum("ai,ij,bj->ab", Xc, Sinv, Xc)
    return float((D**3).sum() / B**2), float((np.diag(D) ** 2).mean())


def test_mardia_against_its_definition_and_the_stated_tests():
    rng = np.random.default_rng(9)
    B, p = 60, 4
    X = rng.normal(size=(B, p)) @ rng.normal(size=(p, p)) + rng.exponential(size=(B, p))
    b1, b2 = _mardia_by_definition(X)
    for small in (True, False):
        t = mardia(X, seed=0, small_sample=small)
        assert t.b1 == pytest.approx(b1, rel=1e-9) and t.b2 == pytest.approx(b2, rel=1e-9)
        assert t.dim == t.rank == p and t.entries.tolist() == list(range(p))
        assert t.skew_dof == p * (p + 1) * (p + 2) / 6
    t = mardia(X, seed=0, max_dim=p, small_sample=False)  # the asymptotic forms, as stated
    assert t.skew_stat == pytest.approx(B * b1 / 6)
    assert t.skew_pvalue == pytest.approx(stats.chi2.sf(B * b1 / 6, p * (p + 1) * (p + 2) / 6))
    z = (b2 - p * (p + 2)) / math.sqrt(8 * p * (p + 2) / B)
    assert t.kurt_z == pytest.approx(z)
    assert t.kurt_pvalue == pytest.approx(2 * stats.norm.sf(abs(z)))
    t = mardia(X, seed=0, max_dim=p)  # Mardia (1974)'s finite-sample forms
    k = (p + 1) * (B + 1) * (B + 3) / (B * ((B + 1) * (p + 1) - 6))
    assert t.skew_stat == pytest.approx(B * b1 * k / 6)
    mean = p * (p + 2) * (B - 1) / (B + 1)
    var = 8 * p * (p + 2) * (B - 3) * (B - p - 1) * (B - p + 1) / ((B + 1) ** 2 * (B + 3) * (B + 5))
    assert t.kurt_z == pytest.approx((b2 - mean) / math.sqrt(var))


def test_mardia_of_one_entry_is_the_squared_skewness_and_the_kurtosis():
    x = np.random.default_rng(10).gamma(2.0, size=(200, 1))
    t = mardia(x, seed=0)
    assert t.b1 == pytest.approx(stats.skew(x[:, 0]) ** 2, rel=1e-9)
    assert t.b2 == pytest.approx(stats.kurtosis(x[:, 0], fisher=False), rel=1e-9)


def test_mardia_is_affine_invariant():
    rng = np.random.default_rng(11)
    X = rng.standard_t(5, size=(100, 5))
    A = rng.normal(size=(5, 5))
    a, b = mardia(X, seed=0), mardia(X @ A + 3.0, seed=0)
    assert a.b1 == pytest.approx(b.b1, rel=1e-8) and a.b2 == pytest.approx(b.b2, rel=1e-8)


def test_mardia_p_values_on_gaussian_samples_are_uniform():
    """Gaussian samples, p = B/5 entries: the finite-sample tests' p-values are uniform over
    seeds (KS), while the asymptotic kurtosis test rejects most of them at this size."""
    B, K = 200, 300
    skew_p, kurt_p, kurt_asym = [], [], []
    for s in range(100):
        X = np.random.default_rng(1000 + s).normal(size=(B, K))
        t = mardia(X, seed=s)
        assert t.dim == B // 5
        skew_p.append(t.skew_pvalue)
        kurt_p.append(t.kurt_pvalue)
        kurt_asym.append(mardia(X, seed=s, small_sample=False).kurt_pvalue)
    assert stats.kstest(skew_p, "uniform").pvalue > 0.01
    assert stats.kstest(kurt_p, "uniform").pvalue > 0.01
    assert np.mean(np.array(kurt_asym) < 0.05) > 0.3


def test_mardia_on_a_planted_skewed_distribution_is_significant():
    """Entries mixing shared exponential factors: skewed, heavy-tailed, correlated."""
    rng = np.random.default_rng(12)
    B, K = 300, 200
    X = rng.exponential(size=(B, 10)) @ rng.normal(size=(10, K)) + 0.3 * rng.normal(size=(B, K))
    t = mardia(X, seed=0)
    assert t.dim == 60 and t.rank == 60
    assert t.skew_pvalue < 1e-6 and t.kurt_pvalue < 1e-3 and t.kurt_z > 0


def test_mardia_subset_live_columns_and_rank():
    rng = np.random.default_rng(13)
    B = 100
    X = rng.normal(size=(B, 50))
    X[:, 3] = np.nan  # a degenerate entry of EntryStatistics.normalized
    X[:, 7] = 2.0  # no spread
    t = mardia(X, seed=4)
    assert t.dim == 20 and 3 not in t.entries and 7 not in t.entries
    assert np.array_equal(t.entries, np.sort(t.entries))
    assert np.array_equal(t.entries, mardia(X, seed=4).entries)
    assert not np.array_equal(t.entries, mardia(X, seed=5).entries)
    # a column that is a combination of two others: the projection is the two columns' test
    a = rng.gamma(2.0, size=(B, 2))
    dep = mardia(np.column_stack([a, a.sum(axis=1)]), seed=0)
    ind = mardia(a, seed=0)
    assert dep.dim == 3 and dep.rank == 2
    assert dep.b1 == pytest.approx(ind.b1, rel=1e-6) and dep.b2 == pytest.approx(ind.b2, rel=1e-6)
    assert dep.skew_pvalue == pytest.approx(ind.skew_pvalue, rel=1e-5)
    row = t.row()
    assert row["mardia_dim"] == 20 and row["mardia_n_samples"] == B
    assert {"mardia_b1", "mardia_skew_pvalue", "mardia_kurt_pvalue", "mardia_rank"} <= set(row)
    assert isinstance(t, MardiaTest)


def test_mardia_of_entry_statistics_matches_the_raw_samples():
    rng = np.random.default_rng(14)
    S = rng.gamma(3.0, size=(120, 30)) * rng.uniform(0.1, 10, size=30)
    S[:, 5] = 0.0
    st = entry_statistics(S, S.mean(axis=0), n=100)
    a, b = mardia(st.normalized, seed=3), mardia(S, seed=3)
    assert np.array_equal(a.entries, b.entries) and 5 not in a.entries
    assert a.b1 == pytest.approx(b.b1, rel=1e-8) and a.b2 == pytest.approx(b.b2, rel=1e-8)


def test_mardia_errors_name_the_values():
    with pytest.raises(ConfigError, match="at least 20 samples, got B = 10"):
        mardia(np.zeros((10, 3)), seed=0)
    with pytest.raises(ConfigError, match=r"\(B, K\)"):
        mardia(np.zeros(30), seed=0)
    with pytest.raises(ConfigError, match="too many for B = 40"):
        mardia(np.random.default_rng(0).normal(size=(40, 30)), seed=0, max_dim=25)
    with pytest.raises(ConfigError, match="max_dim"):
        mardia(np.random.default_rng(0).normal(size=(40, 30)), seed=0, max_dim=0)
    with pytest.raises(ConfigError, match="no column"):
        mardia(np.ones((40, 3)), seed=0)


@pytest.mark.parametrize("p, K", [(0.95, 400), (0.5, 200), (0.12, 1000)])
def test_fraction_band_covers_the_true_fraction_at_its_level(p, K):
    from umwelt.nn.hessian import fraction_band

    seeds, level = 300, 0.9
    hits = 0
    for s in range(seeds):
        x = np.random.default_rng(1000 + s).random(K) < p
        lo, hi, how = fraction_band(x, level=level, n_resamples=400, seed=s)
        hits += lo <= p <= hi
    # binomial tolerance: 3 standard deviations of the hit count (percentile bootstrap of a
    # proportion runs slightly short at small K; allow 2 points)
    tol = 3 * np.sqrt(level * (1 - level) / seeds) + 0.02
    assert abs(hits / seeds - level) <= tol, hits / seeds


def test_fraction_band_never_has_width_zero():
    from umwelt.nn.hessian import fraction_band

    lo, hi, how = fraction_band(np.ones(50, bool), level=0.9, seed=0)
    assert how == "clopper-pearson" and hi == 1.0 and 0.9 < lo < 1.0
    assert lo == pytest.approx(0.05 ** (1 / 50), rel=1e-9)  # Clopper-Pearson: (α/2)^(1/n)
    lo, hi, how = fraction_band(np.zeros(0, bool))
    assert how == "none" and np.isnan(lo)
    with pytest.raises(ConfigError, match="band level"):
        fraction_band(np.ones(3, bool), level=1.5)
