"""The path index (umwelt.circuits.index): mixed-radix numbering and uniform sampling.

Oracles: ``itertools.product`` and ``numpy.ravel_multi_index`` (the order), Python's own big
integers (counts beyond 2^63), and chi-square tests of uniformity with fixed seeds.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from umwelt import ConfigError, EnumerationLimitError, LayeredNetwork, ShapeError
from umwelt.circuits import INT64_COUNT_LIMIT, PathIndex, n_circuits, sample_circuits


@pytest.mark.parametrize("radices", [(1,), (5,), (2, 3), (3, 1, 4), (2, 3, 4, 2, 3)])
def test_round_trip_and_order_match_itertools_product(radices):
    idx = PathIndex(radices)
    assert idx.count == math.prod(radices) and idx.depth == len(radices) and idx.fits_int64
    ref = list(itertools.product(*map(range, radices)))
    assert [idx.path(k) for k in range(idx.count)] == ref
    assert [idx.index(p) for p in ref] == list(range(idx.count))
    allp = idx.all_paths()
    np.testing.assert_array_equal(allp, np.array(ref))
    np.testing.assert_array_equal(idx.indices(allp), np.arange(idx.count))
    np.testing.assert_array_equal(idx.paths(np.arange(idx.count)), allp)
    np.testing.assert_array_equal(idx.indices(allp), np.ravel_multi_index(allp.T, radices))
    assert idx.indices(allp).dtype == np.int64


def test_count_of_a_network_is_the_product_of_widths_below_the_output():
    net = LayeredNetwork.he_normal((16, 32, 32, 32, 1), seed=0)
    assert n_circuits(net) == PathIndex.from_network(net).count == 16 * 32**3 == 524288
    assert PathIndex.from_widths("3,4,1").radices == (3, 4)
    assert PathIndex.from_widths((7, 1)).count == 7


def test_huge_counts_are_python_ints():
    idx = PathIndex((2**20,) * 4)  # 2^80 circuits
    assert idx.count == 2**80 and isinstance(idx.count, int) and not idx.fits_int64
    big = [0, 1, 2**63, 2**80 - 1, 123456789012345678901234]
    paths = idx.paths(big)
    assert paths.dtype == np.int64 and paths.shape == (5, 4)
    back = idx.indices(paths)
    assert back.dtype == object and list(back) == big
    assert all(type(v) is int for v in back)
    assert idx.path(2**80 - 1) == (2**20 - 1,) * 4
    assert idx.index((1, 0, 0, 0)) == 2**60
    s = idx.sample(1000, np.random.default_rng(0))
    assert s.dtype == object and all(0 <= v < 2**80 for v in s)
    assert max(s) > 2**63  # the top digits are drawn too
    with pytest.raises(ConfigError, match=r"out of range \[0, 1208925819614629174706176\)"):
        idx.paths([2**80])


def test_count_of_exactly_2_to_the_63_still_fits_int64():
    idx = PathIndex((2**21,) * 3)
    assert idx.count == INT64_COUNT_LIMIT == 2**63 and idx.fits_int64
    last = idx.paths(np.array([2**63 - 1], dtype=np.int64))
    assert last.tolist() == [[2**21 - 1] * 3]
    assert idx.indices(last).tolist() == [2**63 - 1]
    assert idx.sample(10, 0).dtype == np.int64
    with pytest.raises(ConfigError, match="out of range"):
        idx.paths([2**63])
    assert not PathIndex((2**21,) * 3 + (2,)).fits_int64


@settings(max_examples=50, deadline=None)
@given(
    radices=st.lists(st.integers(1, 2**40), min_size=1, max_size=5),
    data=st.data(),
)
def test_property_round_trip_any_size(radices, data):
    idx = PathIndex(radices)
    k = data.draw(st.integers(0, idx.count - 1))
    path = idx.path(k)
    assert all(0 <= d < r for d, r in zip(path, radices))
    assert idx.index(path) == k
    assert idx.indices(idx.paths([k])).tolist() == [k]


def test_sampling_with_replacement_is_uniform():
    idx = PathIndex((3, 4, 5))
    n = 60_000
    s = idx.sample(n, np.random.default_rng(1))
    counts = np.bincount(s, minlength=idx.count)
    assert stats.chisquare(counts).pvalue > 1e-3
    p = idx.sample_paths(n, np.random.default_rng(2))
    for k, r in enumerate(idx.radices):  # each digit uniform
        assert stats.chisquare(np.bincount(p[:, k], minlength=r)).pvalue > 1e-3


@pytest.mark.parametrize("n", [5, 40])  # the rejection path (4n < N) and the permutation path
def test_sampling_without_replacement_is_unique_and_uniform(n):
    idx = PathIndex((4, 5, 3))
    rng = np.random.default_rng(3)
    counts = np.zeros(idx.count, dtype=int)
    first = np.zeros(idx.count, dtype=int)
    for _ in range(3000):
        s = idx.sample(n, rng, replace=False)
        assert s.size == n and np.unique(s).size == n
        counts[s] += 1
        first[s[0]] += 1
    assert stats.chisquare(counts).pvalue > 1e-3  # every circuit equally likely to be in it
    assert stats.chisquare(first).pvalue > 1e-3  # and in random order


def test_sampling_without_replacement_does_not_allocate_the_range():
    idx = PathIndex((10**6,) * 5)  # 10^30 circuits
    s = idx.sample(20_000, np.random.default_rng(4), replace=False)
    assert len(set(s)) == 20_000
    idx = PathIndex((2**31, 2**31))  # 2^62: fits int64, far too many to list
    s = idx.sample(50_000, np.random.default_rng(5), replace=False)
    assert s.dtype == np.int64 and np.unique(s).size == 50_000
    whole = PathIndex((3, 4)).sample(12, 0, replace=False)
    assert sorted(whole.tolist()) == list(range(12))


def test_sampling_is_reproducible_from_a_seed():
    idx = PathIndex((7, 8, 9))
    np.testing.assert_array_equal(idx.sample(100, 11), idx.sample(100, 11))
    net = LayeredNetwork.he_normal((7, 8, 9, 1), seed=0)
    np.testing.assert_array_equal(sample_circuits(net, 100, 11), idx.sample_paths(100, 11))


def test_through_pins_the_weights_digits():
    idx = PathIndex((3, 4, 2))  # L = 3 weight layers: W^1 (3,4), W^2 (4,2), W^3 (2,1)
    t = idx.through((2, 1, 0))
    assert t.fixed == {1: 1, 2: 0} and t.free == (0,) and t.count == 3
    assert [t.path(k) for k in range(3)] == [(0, 1, 0), (1, 1, 0), (2, 1, 0)]
    assert t.index((2, 1, 0)) == 2
    assert idx.through((3, 1, 0)).count == 12 and idx.through((3, 1, 0)).fixed == {2: 1}
    assert idx.through((1, 0, 0)).count == 2 and idx.through((1, 0, 0), (3, 1, 0)).count == 1
    assert idx.through((1, 0, 2), (2, 2, 1)).count == 1
    assert idx.through((1, 0, 2), (2, 3, 1)).count == 0  # disagree on digit 1
    assert idx.through((2, 0, 0), (2, 0, 1)).count == 0  # one weight per layer
    assert t.sample_paths(50, 0)[:, 1:].tolist() == [[1, 0]] * 50
    with pytest.raises(ConfigError, match="pins it to 1"):
        t.index((0, 2, 0))
    with pytest.raises(ConfigError, match="empty set"):
        idx.through((1, 0, 2), (2, 3, 1)).sample_paths(1, 0)
    assert t == PathIndex((3, 4, 2), {1: 1, 2: 0})
    assert hash(t) == hash(PathIndex((3, 4, 2), t.fixed))
    assert "count=3" in repr(t)


def test_bad_input_names_the_values():
    idx = PathIndex((3, 4))
    with pytest.raises(ConfigError, match=r"circuit index 12 is out of range \[0, 12\)"):
        idx.path(12)
    with pytest.raises(ConfigError, match=r"circuit index -1 is out of range"):
        idx.paths([3, -1])
    with pytest.raises(ConfigError, match=r"digit 1 = 4, outside \[0, 4\)"):
        idx.index((0, 4))
    with pytest.raises(ShapeError, match=r"shape \(n, 2\), got \(1, 3\)"):
        idx.index((0, 1, 2))
    with pytest.raises(ConfigError, match="integers"):
        idx.paths([1.5])
    with pytest.raises(ConfigError, match="integers"):
        idx.indices(np.array([[0.0, 1.0]]))
    with pytest.raises(ConfigError, match="radices must be positive"):
        PathIndex((3, 0))
    with pytest.raises(ConfigError, match=r"pinned to a value in \[0, 4\), got 9"):
        PathIndex((3, 4), {1: 9})
    with pytest.raises(ConfigError, match=r"weight layer must be in \[1, 2\], got 3"):
        idx.through((3, 0, 0))
    with pytest.raises(ConfigError, match=r"W\^1 has columns \[0, 4\), got b = 4"):
        idx.through((1, 0, 4))
    with pytest.raises(ConfigError, match=r"W\^2 has columns \[0, 1\), got b = 1"):
        idx.through((2, 0, 1))
    with pytest.raises(ConfigError, match="cannot draw 13 distinct circuits out of 12"):
        idx.sample(13, 0, replace=False)
    with pytest.raises(ConfigError, match="n must be an integer ≥ 0"):
        idx.sample(-1, 0)
    with pytest.raises(EnumerationLimitError, match="over the limit of 5"):
        idx.all_paths(limit=5)
    with pytest.raises(ConfigError, match="n_L = 1"):
        PathIndex.from_widths((3, 2))
