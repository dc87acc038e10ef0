"""Sampled Hessian entries: per-example contributions, bootstrap vs brute force, statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from test_hessian_operator import TinyConv, data, mlp

from umwelt.errors import ConfigError
from umwelt.nn.hessian import (
    ModelHessian,
    bootstrap_entries,
    correlation_submatrix,
    count_exponent,
    entry_contributions,
    entry_statistics,
    entry_summary,
    sample_entries,
    significant,
)

D = torch.float64

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_sample_entries_are_distinct_cross_layer_and_seeded():
    m = mlp("4-3-3-2-1", 0.0)  # tensors of 12, 9, 6, 2 weights: N = 29
    X, y = data(3, (4,))
    op = ModelHessian(m, X, y)
    s = sample_entries(op, 150, seed=1)
    assert s.size == 150 and s.n == 29
    assert s.population == (29 * 28 - (12 * 11 + 9 * 8 + 6 * 5 + 2 * 1)) // 2
    pairs = {(min(a, b), max(a, b)) for a, b in zip(s.rows, s.cols)}
    assert len(pairs) == 150
    assert np.all(op.layer_of(s.rows) != op.layer_of(s.cols))
    assert np.all(np.diff(s.cols) >= 0)  # grouped by column
    again = sample_entries(op, 150, seed=1)
    assert np.array_equal(again.rows, s.rows) and np.array_equal(again.cols, s.cols)
    every = sample_entries(op, s.population, seed=2)  # the whole population
    assert len({(min(a, b), max(a, b)) for a, b in zip(every.rows, every.cols)}) == s.population
    w = sample_entries(op, 40, seed=0, within_layer=True)
    assert np.all(w.rows != w.cols)
    few = sample_entries(op, 30, seed=0, n_columns=3)
    assert len(np.unique(few.cols)) <= 3
    # the columns' capacity counts a pair with both ends among the columns once: filling it
    # exactly terminates, one more entry is refused
    for within in (False, True):
        pool = np.random.default_rng(5).choice(29, 12, replace=False)  # the draw's own columns
        layer = op.layer_of(np.arange(29))
        admissible = {
            (min(j, k), max(j, k))
            for k in pool.tolist()
            for j in range(29)
            if j != k and (within or layer[j] != layer[k])
        }
        full = sample_entries(op, len(admissible), seed=5, n_columns=12, within_layer=within)
        assert {(min(a, b), max(a, b)) for a, b in zip(full.rows, full.cols)} == admissible
        with pytest.raises(ConfigError, match="do not fit"):
            sample_entries(op, len(admissible) + 1, seed=5, n_columns=12, within_layer=within)
    with pytest.raises(ConfigError, match="only 288 admissible pairs"):
        sample_entries(op, 289)
    single = ModelHessian(torch.nn.Linear(3, 1, bias=False).double(), X[:, :3], y)
    with pytest.raises(ConfigError, match="only 0 admissible pairs"):
        sample_entries(single, 1)


@pytest.mark.parametrize("within_layer", [False, True])
def test_contributions_average_to_the_dense_entries(within_layer):
    X, y = data(7, (1, 4, 4))
    op = ModelHessian(TinyConv(0.5), X, y, loss="logistic", batch_size=3)
    s = sample_entries(op, 40, seed=0, within_layer=within_layer)
    C = entry_contributions(op, s, example_chunk=3, column_chunk=5)
    assert C.shape == (7, 40)
    H = op.dense().numpy()
    np.testing.assert_allclose(op.example_weights.numpy() @ C, H[s.rows, s.cols], atol=1e-14)


def test_within_layer_entries_vanish_for_hinge():
    m = mlp("3-4-3-1", 0.5)
    X, y = data(9, (3,))
    op = ModelHessian(m, X, y, loss="hinge")
    s = sample_entries(op, 60, seed=0, within_layer=True)
    C = entry_contributions(op, s)
    same = op.layer_of(s.rows) == op.layer_of(s.cols)
    assert same.any() and (~same).any()
    assert np.all(C[:, same] == 0.0)
    assert np.abs(C[:, ~same]).max() > 0


def test_bootstrap_equals_brute_force_recomputation():
    """Each resample's entries equal the dense Hessian of the resample-weighted risk."""
    m = mlp("3-4-3-1", 0.7)
    X, y = data(6, (3,))
    op = ModelHessian(m, X, y, loss="logistic", batch_size=4)
    s = sample_entries(op, 25, seed=3, within_layer=True)
    C = entry_contributions(op, s, example_chunk=4)
    samples, counts = bootstrap_entries(C, 24, seed=5)
    assert samples.shape == (24, 25) and np.all(counts.sum(axis=1) == 6)
    brute = np.stack(
        [
            ModelHessian(m, X, y, loss="logistic", example_weights=c / 6, gate_masks=op.gate_masks)
            .dense()
            .numpy()[s.rows, s.cols]
            for c in counts
        ]
    )
    scale = np.abs(brute).max()
    np.testing.assert_allclose(samples, brute, rtol=0, atol=1e-14 * scale)
    value = op.dense().numpy()[s.rows, s.cols]
    st = entry_statistics(samples, value, n=op.n)
    sd = brute.std(axis=0, ddof=1)
    np.testing.assert_allclose(st.std, sd, rtol=1e-10, atol=1e-14 * scale)
    live = sd > 1e-10 * scale  # entries of units no example opens are exactly 0: degenerate
    assert st.live.tolist() == live.tolist() and 5 < live.sum() < 25
    b, v, sd = brute[:, live], value[live], sd[live]
    np.testing.assert_allclose(st.ratio[live], np.abs(v) / sd, rtol=1e-10)
    np.testing.assert_allclose(st.corr[np.ix_(live, live)], np.corrcoef(b.T), atol=1e-10)
    np.testing.assert_allclose(st.skew[live], stats.skew(b, axis=0), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(st.kurt[live], stats.kurtosis(b, axis=0), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(st.normalized[:, live], b / sd, rtol=1e-10)
    assert st.frac_below == pytest.approx(np.mean(np.abs(v) / sd < 0.15))
    assert np.isnan(st.ratio[~live]).all()


def test_correlation_counts_follow_the_stated_rule():
    rng = np.random.default_rng(0)
    B = 400
    a = rng.normal(size=B)
    S = np.stack(
        [a, a + 0.1 * rng.normal(size=B), rng.normal(size=B), rng.normal(size=B), np.zeros(B)],
        axis=1,
    )  # entries 0 and 1 correlated, 2 and 3 independent, 4 degenerate
    st = entry_statistics(S, S.mean(axis=0), n=10_000)
    assert st.n_corr.tolist() == [1, 1, 0, 0, 0]
    assert st.live.tolist() == [True, True, True, True, False]
    assert np.isnan(st.ratio[4]) and np.isnan(st.corr[4]).all()
    # by hand: Fisher z, Bonferroni over the 6 live pairs
    r = np.corrcoef(S[:, :4].T)[np.triu_indices(4, 1)]
    p = 2 * stats.norm.sf(np.abs(np.arctanh(r)) * math.sqrt(B - 3))
    assert (p < 0.05 / 6).sum() == 1
    assert st.corr_exponent[0] == pytest.approx(0.0) and np.isnan(st.corr_exponent[2])
    idx, block = correlation_submatrix(st, 3)
    assert idx.tolist() == [0, 1, 2] and block.shape == (3, 3)
    summ = entry_summary(st)
    assert summ["n_live"] == 4 and summ["mean_n_corr"] == pytest.approx(0.5)
    assert summ["coupling_fraction"] == pytest.approx(0.5 / 3)
    assert summ["coupling_exponent"] == pytest.approx(math.log(0.5) / math.log(10_000))


def test_skewness_and_kurtosis_significance():
    rng = np.random.default_rng(1)
    B = 500
    S = np.stack([rng.normal(size=B), rng.exponential(size=B), rng.standard_t(3, size=B)], axis=1)
    st = entry_statistics(S, np.zeros(3), n=100)
    assert st.skew_sig[1]
    assert st.kurt_sig[1] and st.kurt_sig[2] and not st.kurt_sig[0]
    assert not st.skew_sig[0]
    few = entry_statistics(S[:10], np.zeros(3), n=100)  # B < 20: no tests, no warnings
    assert not few.skew_sig.any() and not few.kurt_sig.any()


def test_significance_corrections_and_exponents():
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, np.nan])
    assert significant(p, 0.05, "bonferroni").tolist() == [True] + [False] * 8
    assert significant(p, 0.05, "bh").tolist() == [True, True] + [False] * 7  # BH step-up
    with pytest.raises(ConfigError, match="correction"):
        significant(p, 0.05, "holm")
    assert count_exponent(100, 10_000) == pytest.approx(0.5)
    assert np.isnan(count_exponent(0, 10))
    with pytest.raises(ConfigError, match="at least 4 bootstrap"):
        entry_statistics(np.zeros((3, 2)), np.zeros(2), n=5)


def test_fraction_of_small_means_on_symmetric_entries():
    """Entries fluctuating around 0 (the paper's picture) are mostly below |mean|/std = 0.15."""
    X, y = data(40, (1, 4, 4))
    op = ModelHessian(TinyConv(0.0), X, y, loss="hinge")
    s = sample_entries(op, 30, seed=0, n_columns=6)
    C = entry_contributions(op, s)
    samples, _ = bootstrap_entries(C, 50, seed=0)
    st = entry_statistics(samples, op.example_weights.numpy() @ C, n=op.n)
    summ = entry_summary(st)
    assert 0.0 <= summ["frac_means_below_015"] <= 1.0
    assert summ["n_live"] + int((~st.live).sum()) == 30
    assert np.all(np.isfinite(st.normalized[:, st.live]))
