"""Circuit values and streaming statistics (umwelt.circuits.values, umwelt._kernels.circuits).

Oracles: the forward pass ``LayeredNetwork.output`` (``Σ_i Ψ_i = f(x)``), the plain-numpy twins
(bit for bit: both form every product in the same order), ``numpy.histogram`` and numpy's
reductions of the materialized array, and a per-circuit product written out by hand.
"""

from __future__ import annotations

import itertools

import numba
import numpy as np
import pytest
from cases import TINY_WIDTHS, inputs, tiny_network
from hypothesis import given, settings
from hypothesis import strategies as st

from umwelt import ConfigError, EnumerationLimitError, LayeredNetwork, ShapeError, UmweltError
from umwelt.circuits import (
    MAX_CIRCUIT_VALUES,
    THROUGHPUT_KINDS,
    CircuitStats,
    PathIndex,
    circuit_stats,
    circuit_values,
    measure_throughput,
    n_circuits,
    sample_circuits,
    sampled_circuit_values,
)
from umwelt.circuits import values as values_module

# the standard tiny nets plus a depth-1 net, width-1 layers and deeper, uneven ones
EXTRA_WIDTHS = [(3, 1), (1, 1, 1), (1, 3, 1, 2, 1), (4, 5, 6, 1), (2, 3, 4, 2, 3, 1)]
ALL_WIDTHS = [TINY_WIDTHS[k] for k in sorted(TINY_WIDTHS)] + EXTRA_WIDTHS


def net_of(widths, seed=0) -> LayeredNetwork:
    return LayeredNetwork.he_normal(widths, seed=seed)


def gate_sets(net: LayeredNetwork, x: np.ndarray, seed: int = 2) -> dict[str, list[np.ndarray]]:
    """Sampled gates at T = 1, the ReLU gates, and every gate open, for inputs ``x (B, n_0)``."""
    rng = np.random.default_rng(seed)
    return {
        "sampled": net.sample(x, 1.0, rng).gates,
        "relu": net.relu_sample(x).gates,
        "open": [np.ones((x.shape[0], n), dtype=bool) for n in net.hidden_widths],
    }


def psi_by_hand(net: LayeredNetwork, x: np.ndarray, gates, path) -> float:
    """One circuit's value, factor by factor (x 1-D, gates 1-D)."""
    v = x[path[0]]
    for l in range(1, net.depth):
        v *= net.weights[l - 1][path[l - 1], path[l]] * float(gates[l - 1][path[l]])
    return v * net.weights[-1][path[-1], 0]


def assert_sum_is_output(total, f, terms) -> None:
    """``total == f`` to 1e-10 relative, with an absolute floor at round-off of ``Σ|terms|``."""
    scale = np.sum(np.abs(terms), axis=-1)
    np.testing.assert_allclose(total, f, rtol=1e-10, atol=1e-13 * float(np.max(scale) + 1e-300))


# -- Σ_i Ψ_i = f(x) -------------------------------------------------------------------------------


@pytest.mark.parametrize("widths", ALL_WIDTHS, ids=str)
@pytest.mark.parametrize("kind", ["sampled", "relu", "open"])
def test_circuits_sum_to_the_output(widths, kind):
    net = net_of(widths)
    x = inputs(net, batch=5)
    gates = gate_sets(net, x)[kind]
    psi = circuit_values(net, x, gates)  # (B, N)
    assert psi.shape == (5, n_circuits(net))
    f = net.output(x, gates)
    assert_sum_is_output(psi.sum(axis=1), f, psi)
    # and streamed, per input
    for b in range(5):
        s = circuit_stats(net, x[b], [h[b] for h in gates])
        assert s.count == n_circuits(net)
        assert_sum_is_output(s.sum, f[b], psi[b])


def test_relu_default_gates_and_gate_sample(tiny_net):
    x = inputs(tiny_net, batch=4)
    relu = circuit_values(tiny_net, x)
    np.testing.assert_array_equal(relu, circuit_values(tiny_net, x, tiny_net.relu_sample(x).gates))
    assert_sum_is_output(relu.sum(axis=1), tiny_net.relu_forward(x), relu)
    s = tiny_net.sample(x, 0.5, np.random.default_rng(0))
    np.testing.assert_array_equal(
        circuit_values(tiny_net, x, s), circuit_values(tiny_net, x, s.gates)
    )
    # one input with a GateSample of one row stays unbatched
    s1 = tiny_net.sample(x[0], 0.5, np.random.default_rng(0))
    assert circuit_values(tiny_net, x[0], s1).shape == (n_circuits(tiny_net),)


def test_every_value_is_its_product_in_index_order():
    net = net_of((2, 3, 4, 2, 3, 1), seed=5)
    x = inputs(net, batch=1)[0]
    gates = [h[0] for h in gate_sets(net, x[None])["sampled"]]
    psi = circuit_values(net, x, gates)
    index = PathIndex.from_network(net)
    for k, path in enumerate(itertools.product(*map(range, net.widths[:-1]))):
        assert index.index(path) == k
        np.testing.assert_allclose(psi[k], psi_by_hand(net, x, gates, path), rtol=1e-14, atol=0)


def test_values_reshape_to_the_circuit_tensor():
    """``psi.reshape(n_0, ..., n_{L-1})[i_0, ..., i_{L-1}] = Ψ_i``: i_0 most significant."""
    net = net_of((4, 5, 6, 1), seed=1)
    x = inputs(net, batch=1)[0]
    h = [np.ones(n, dtype=bool) for n in net.hidden_widths]
    psi = circuit_values(net, x, h).reshape(4, 5, 6)
    w1, w2, w3 = net.weights
    ref = np.einsum("a,ab,bc,c->abc", x, w1, w2, w3[:, 0])
    np.testing.assert_allclose(psi, ref, rtol=1e-13)


# -- kernels against their numpy twins ------------------------------------------------------------


@pytest.mark.parametrize("widths", ALL_WIDTHS, ids=str)
def test_values_kernel_equals_numpy_twin_bit_for_bit(widths):
    net = net_of(widths, seed=3)
    x = inputs(net, batch=3)
    for gates in gate_sets(net, x).values():
        fast = circuit_values(net, x, gates)
        ref = circuit_values(net, x, gates, backend="numpy")
        np.testing.assert_array_equal(fast, ref)


@pytest.mark.parametrize("widths", ALL_WIDTHS, ids=str)
def test_sampled_values_equal_the_enumeration_and_the_twin(widths):
    net = net_of(widths, seed=4)
    x = inputs(net, batch=3)
    gates = gate_sets(net, x)["sampled"]
    psi = circuit_values(net, x, gates)
    index = PathIndex.from_network(net)
    paths = sample_circuits(net, 50, np.random.default_rng(0))
    idx = index.indices(paths)
    got = sampled_circuit_values(net, x, gates, paths)
    np.testing.assert_array_equal(got, psi[:, idx])
    np.testing.assert_array_equal(got, sampled_circuit_values(net, x, gates, idx))
    np.testing.assert_array_equal(
        got, sampled_circuit_values(net, x, gates, paths, backend="numpy")
    )


def assert_stats_equal(a: CircuitStats, b: CircuitStats, values: np.ndarray) -> None:
    """Counts, extremes and histogram exactly; sums and moments to 1e-10 (absolute floor at the
    round-off of the values' scale)."""
    assert (a.count, a.n_positive, a.n_negative, a.n_zero) == (
        b.count,
        b.n_positive,
        b.n_negative,
        b.n_zero,
    )
    assert a.min == b.min and a.max == b.max
    if a.edges is None:
        assert b.edges is None and a.hist is None and b.hist is None
    else:
        np.testing.assert_array_equal(a.edges, b.edges)
        np.testing.assert_array_equal(a.hist, b.hist)
    scale = float(np.sum(np.abs(values))) + 1e-300
    np.testing.assert_allclose(a.sum, b.sum, rtol=1e-10, atol=1e-13 * scale)
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-10, atol=1e-13 * scale / a.count)
    np.testing.assert_allclose(a.sum_sq, b.sum_sq, rtol=1e-10)
    np.testing.assert_allclose(a.m2, b.m2, rtol=1e-10, atol=1e-13 * b.sum_sq)


def numpy_stats(v: np.ndarray, edges) -> dict:
    """What numpy says about the materialized values."""
    out = {
        "count": v.size,
        "sum": v.sum(),
        "sum_sq": np.sum(v * v),
        "mean": v.mean(),
        "var": v.var(),
        "min": v.min(),
        "max": v.max(),
        "frac_positive": np.mean(v > 0),
    }
    if edges is not None:
        out["hist"] = np.histogram(v, bins=edges)[0]
    return out


BIN_CHOICES = {
    "none": {},
    "auto20": {"bins": 20},
    "range": {"bins": 7, "hist_range": (-0.05, 0.02)},  # values fall outside on both sides
    "edges": {"bins": [-1.0, -0.1, -1e-3, 0.0, 1e-3, 0.01, 0.3, 2.0]},  # 0 is an edge
    "positive": {"bins": [1e-4, 1e-3, 1e-2, 1e-1]},  # zeros and negatives not counted
}


@pytest.mark.parametrize("widths", ALL_WIDTHS, ids=str)
@pytest.mark.parametrize("binning", sorted(BIN_CHOICES))
def test_streaming_stats_equal_numpy_of_the_materialized_values(widths, binning):
    net = net_of(widths, seed=6)
    x = inputs(net, batch=2, seed=7)
    for gates in gate_sets(net, x).values():
        for b in range(2):
            xb, hb = x[b], [h[b] for h in gates]
            v = circuit_values(net, xb, hb)
            s = circuit_stats(net, xb, hb, **BIN_CHOICES[binning])
            twin = circuit_stats(net, xb, hb, **BIN_CHOICES[binning], backend="numpy")
            assert_stats_equal(s, twin, v)
            ref = numpy_stats(v, s.edges)
            assert s.count == ref["count"]
            assert s.min == ref["min"] and s.max == ref["max"]
            assert s.frac_positive == ref["frac_positive"]
            scale = float(np.sum(np.abs(v))) + 1e-300
            np.testing.assert_allclose(s.sum, ref["sum"], rtol=1e-10, atol=1e-13 * scale)
            np.testing.assert_allclose(s.sum_sq, ref["sum_sq"], rtol=1e-10)
            np.testing.assert_allclose(s.var, ref["var"], rtol=1e-9, atol=1e-13 * s.second_moment)
            if "hist" in ref:
                np.testing.assert_array_equal(s.hist, ref["hist"])
            if binning == "range":
                np.testing.assert_array_equal(
                    s.hist, np.histogram(v, bins=7, range=(-0.05, 0.02))[0]
                )
            if binning == "auto20":
                np.testing.assert_array_equal(s.hist, np.histogram(v, bins=20)[0])
                assert s.hist.sum() == s.count


def test_streaming_stats_on_a_larger_net_and_any_thread_count(monkeypatch):
    """20,480 circuits, half the gates closed: zero subtrees are skipped, results are exact, and
    the parallel kernels give the serial kernels' results bit for bit."""
    net = net_of((5, 8, 8, 8, 8, 1), seed=8)
    x = inputs(net, batch=1, seed=9)[0]
    paths = sample_circuits(net, 300, 0)
    for gates in (None, [np.ones(8, dtype=bool)] * 4):
        v = circuit_values(net, x, gates)
        edges = np.linspace(-0.02, 0.02, 41)
        serial = circuit_stats(net, x, gates, bins=edges)
        sampled = sampled_circuit_values(net, x, gates, paths, wrt_layers=2)
        with monkeypatch.context() as m:
            m.setattr("umwelt.circuits.values_backends._PARALLEL_MIN", 0)
            assert values_module._parallel(1) == (numba.get_num_threads() > 1)
            parallel = circuit_stats(net, x, gates, bins=edges)
            np.testing.assert_array_equal(circuit_values(net, x, gates), v)
            np.testing.assert_array_equal(
                sampled_circuit_values(net, x, gates, paths, wrt_layers=2), sampled
            )
        assert parallel == serial
        np.testing.assert_array_equal(serial.hist, np.histogram(v, bins=edges)[0])
        assert serial.n_zero == np.count_nonzero(v == 0)
        assert serial.min == v.min() and serial.max == v.max()
        assert_sum_is_output(serial.sum, net.output(x, gates or net.relu_sample(x).gates)[0], v)


@pytest.mark.parametrize("kind", ["open", "relu"])
def test_histogram_is_exact_with_many_bins_gaps_and_empty_bins(kind):
    """Rows spread over many bins (the galloping path, bins skipped, zero-width bins)."""
    net = net_of((3, 16, 16, 32, 1), seed=10)
    x = inputs(net, batch=1, seed=11)[0]
    gates = None if kind == "relu" else [np.ones(n, dtype=bool) for n in net.hidden_widths]
    v = circuit_values(net, x, gates)
    rng = np.random.default_rng(12)
    sd = v.std()
    choices = [
        1,
        2,
        997,
        np.sort(rng.normal(0, sd, size=500)),
        np.array([-sd, -sd / 10, 0.0, 0.0, sd / 10, sd / 10, sd]),  # two zero-width bins
        np.array([v.min(), v.max()]),
        np.array([v.max(), v.max() + 1.0]),  # only the maximum lands in range
    ]
    for bins in choices:
        s = circuit_stats(net, x, gates, bins=bins)
        np.testing.assert_array_equal(s.hist, np.histogram(v, bins=bins)[0])
        np.testing.assert_array_equal(s.edges, np.histogram(v, bins=bins)[1])


def test_merge_pools_two_inputs():
    net = tiny_network("3-4-3-1")
    x = inputs(net, batch=2)
    gates = gate_sets(net, x)["open"]
    edges = np.linspace(-1, 1, 11)
    parts = [circuit_stats(net, x[b], [h[b] for h in gates], bins=edges) for b in range(2)]
    merged = parts[0].merge(parts[1])
    v = circuit_values(net, x, gates).ravel()
    pooled = circuit_stats(net, x[0], [h[0] for h in gates], bins=edges, backend="numpy")
    assert merged.count == v.size and merged.hist.sum() == np.histogram(v, bins=edges)[0].sum()
    np.testing.assert_allclose(merged.mean, v.mean(), rtol=1e-12)
    np.testing.assert_allclose(merged.var, v.var(), rtol=1e-12)
    assert pooled.count == v.size // 2
    assert merged.merge(CircuitStats.empty(edges)) is merged
    with pytest.raises(ConfigError, match="edges"):
        merged.merge(parts[0].__class__.empty(np.linspace(0, 1, 3)))


@settings(max_examples=25, deadline=None)
@given(
    widths=st.lists(st.integers(1, 5), min_size=1, max_size=4).map(lambda w: (*w, 1)),
    seed=st.integers(0, 2**16),
    p_open=st.sampled_from([0.0, 0.5, 1.0]),
)
def test_property_sum_and_stats(widths, seed, p_open):
    rng = np.random.default_rng(seed)
    net = net_of(widths, seed=seed)
    x = rng.normal(size=widths[0])
    gates = [rng.random(n) < p_open for n in net.hidden_widths]
    v = circuit_values(net, x, gates)
    assert_sum_is_output(v.sum(), net.output(x, gates)[0], v)
    s = circuit_stats(net, x, gates, bins=9)
    np.testing.assert_array_equal(s.hist, np.histogram(v, bins=9)[0])
    assert (s.n_positive, s.n_negative, s.n_zero) == (
        np.count_nonzero(v > 0),
        np.count_nonzero(v < 0),
        np.count_nonzero(v == 0),
    )


# -- bad input ------------------------------------------------------------------------------------


def test_materializing_over_the_budget_names_count_and_budget():
    net = net_of((64, 64, 64, 64, 64, 1))  # 2^30 circuits, 8 GiB
    x = np.ones(64)
    with pytest.raises(EnumerationLimitError, match=r"1073741824 .*134217728 values \(1 GiB\)"):
        circuit_values(net, x)
    assert MAX_CIRCUIT_VALUES == 2**27
    small = tiny_network("3-4-3-1")
    with pytest.raises(EnumerationLimitError, match=r"72 circuit values \(36 per input × 2"):
        circuit_values(small, inputs(small, batch=2), limit=50)
    with pytest.raises(EnumerationLimitError, match="over the limit of 10"):
        circuit_stats(small, inputs(small, batch=1)[0], limit=10)
    with pytest.raises(EnumerationLimitError, match="budget"):
        circuit_stats(net, x, backend="numpy")


def test_bad_shapes_name_the_values():
    net = tiny_network("3-4-3-1")
    x = inputs(net, batch=2)
    ok = [np.ones(4, bool), np.ones(3, bool)]
    with pytest.raises(ShapeError, match=r"\(3,\) or \(B, 3\), got \(2, 4\)"):
        circuit_values(net, np.ones((2, 4)), ok)
    with pytest.raises(ShapeError, match="expected a list of 2 gate layers, got 1"):
        circuit_values(net, x, ok[:1])
    with pytest.raises(ShapeError, match=r"gates of layer 2 must have shape \(3,\)"):
        circuit_values(net, x, [ok[0], np.ones(4, bool)])
    with pytest.raises(ShapeError, match="batch 3 but the input has batch 2"):
        circuit_values(net, x, [np.ones((3, 4), bool), ok[1]])
    with pytest.raises(ShapeError, match="one input, got a batch of 2"):
        circuit_stats(net, x, ok)
    with pytest.raises(ShapeError, match=r"paths \(n, 3\) or indices"):
        sampled_circuit_values(net, x, ok, np.zeros((2, 2, 3), dtype=int))
    with pytest.raises(ShapeError, match=r"paths must have shape \(n, 3\), got \(2, 2\)"):
        sampled_circuit_values(net, x, ok, np.zeros((2, 2), dtype=int))
    with pytest.raises(ShapeError, match=r"layers\[0\] must be an int or shape \(2,\)"):
        sampled_circuit_values(net, x, ok, [0, 1], wrt_layers=([1, 2, 3],))


def test_bad_values_name_the_values():
    net = tiny_network("3-4-3-1")
    x = inputs(net, batch=1)[0]
    ok = [np.ones(4, bool), np.ones(3, bool)]
    with pytest.raises(ConfigError, match="bool or 0/1"):
        circuit_values(net, x, [np.full(4, 0.5), ok[1]])
    with pytest.raises(ConfigError, match="non-finite"):
        circuit_values(net, np.array([1.0, np.nan, 0.0]), ok)
    with pytest.raises(ConfigError, match=r"circuit index 36 is out of range \[0, 36\)"):
        sampled_circuit_values(net, x, ok, [0, 36])
    with pytest.raises(ConfigError, match=r"digit 1 = 4, outside \[0, 4\)"):
        sampled_circuit_values(net, x, ok, [[0, 4, 0]])
    with pytest.raises(ConfigError, match="backend"):
        circuit_values(net, x, ok, backend="cuda")
    with pytest.raises(ConfigError, match="limit"):
        circuit_values(net, x, ok, limit=0)
    with pytest.raises(ConfigError, match="bins must be ≥ 1"):
        circuit_stats(net, x, ok, bins=0)
    with pytest.raises(ConfigError, match="finite and increasing"):
        circuit_stats(net, x, ok, bins=[0.0, 1.0, 0.5])
    with pytest.raises(ConfigError, match="lo ≤ hi"):
        circuit_stats(net, x, ok, bins=3, hist_range=(1.0, 0.0))
    with pytest.raises(ConfigError, match="needs bins"):
        circuit_stats(net, x, ok, hist_range=(0.0, 1.0))
    with pytest.raises(ConfigError, match="LayeredNetwork"):
        circuit_values("3-4-3-1", x, ok)
    with pytest.raises(ConfigError, match="Generator or an integer seed"):
        sample_circuits(net, 3, rng="seed")
    assert issubclass(EnumerationLimitError, UmweltError)


@pytest.mark.parametrize("kind", THROUGHPUT_KINDS)
def test_throughput_measurement_runs(kind):
    t = measure_throughput((3, 4, 3, 1), kind, threads=1, repeats=1, max_circuits=20)
    assert t.kind == kind and t.widths == (3, 4, 3, 1) and t.threads == 1
    expected = {"first_order": 3, "second_order": 1, "networkx": 20}  # 36 circuits in all
    assert t.circuits == expected.get(kind, 20 if "sampled" in kind else 36)
    assert t.seconds > 0 and t.circuits_per_s > 0 and t.circuits_per_s_per_thread > 0
    with pytest.raises(ConfigError, match="kind must be one of"):
        measure_throughput((3, 1), "fast")
    with pytest.raises(ConfigError, match="depth ≥ 2"):
        measure_throughput((3, 1), "second_order")
