"""Quick throughput measurements of the circuit kernels (circuits per second), for benchmarks.

Each measurement builds a seeded He-normal net and a standard-normal input, runs the
computation once to compile (not timed), then reports the best of ``repeats`` timed runs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

from umwelt.circuits.graph import reference_circuits
from umwelt.circuits.index import PathIndex
from umwelt.circuits.perturbations import sampled_first_order, sampled_second_order
from umwelt.circuits.values import circuit_stats, circuit_values, sampled_circuit_values
from umwelt.errors import ConfigError
from umwelt.network import LayeredNetwork, parse_widths

__all__ = ["THROUGHPUT_KINDS", "Throughput", "measure_throughput"]

THROUGHPUT_KINDS = (
    "values",  # circuit_values: every circuit materialized
    "stats",  # circuit_stats with a 100-bin histogram over (min, max) given up front
    "stats_nohist",  # circuit_stats without a histogram
    "first_order",  # circuit_values(wrt=[(2, 0, 0)]): all circuits through one weight
    "second_order",  # circuit_values(wrt=[(1, 0, 0), (L, 0, 0)])
    "sampled",  # sampled_circuit_values of uniformly drawn circuits
    "sampled_first_order",  # sampled_first_order along layer 1
    "sampled_second_order",  # sampled_second_order along layers 1 and L
    "networkx",  # reference_circuits: networkx.all_simple_paths (a subset, see max_circuits)
)


@dataclass(frozen=True)
class Throughput:
    """One measurement.

    Attributes:
        kind: what was timed (one of :data:`THROUGHPUT_KINDS`).
        widths: the net.
        gates: ``"relu"`` or ``"open"`` (every gate open: no zero prefixes to skip).
        circuits: circuits processed per run.
        seconds: the best time of the runs.
        threads: numba threads used.
    """

    kind: str
    widths: tuple[int, ...]
    gates: str
    circuits: int
    seconds: float
    threads: int

    @property
    def circuits_per_s(self) -> float:
        """Circuits per second."""
        return self.circuits / self.seconds

    @property
    def circuits_per_s_per_thread(self) -> float:
        """Circuits per second and thread."""
        return self.circuits_per_s / self.threads


def measure_throughput(
    widths: Sequence[int] | str,
    kind: str = "stats",
    *,
    gates: str = "relu",
    threads: int | None = None,
    repeats: int = 3,
    max_circuits: int | None = None,
    seed: int = 0,
) -> Throughput:
    """Time one circuit computation on a He-normal net of the given widths.

    Args:
        widths: ``(n_0, ..., n_L)``, ``n_L = 1``.
        kind: one of :data:`THROUGHPUT_KINDS`.
        gates: ``"relu"`` (the ReLU gates of the input: about half closed) or ``"open"``.
        threads: numba threads for the run (restored afterwards); default: numba's current.
        repeats: timed runs; the best is reported.
        max_circuits: circuits for the sampled kinds (default 10^6) and for ``"networkx"``
            (default 20,000 paths, a subset of the net's).
        seed: seed of the weights, the input and the samples.

    Raises:
        ConfigError: for an unknown kind or gates, or a bad number of threads or repeats.
    """
    if kind not in THROUGHPUT_KINDS:
        raise ConfigError(f"kind must be one of {THROUGHPUT_KINDS}, got {kind!r}")
    if gates not in ("relu", "open"):
        raise ConfigError(f"gates must be 'relu' or 'open', got {gates!r}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ConfigError(f"repeats must be an integer ≥ 1, got {repeats!r}")
    ws = parse_widths(widths)
    net = LayeredNetwork.he_normal(ws, seed=seed)
    rng = np.random.default_rng(seed + 1)
    x = rng.normal(size=ws[0])
    h = (
        net.relu_sample(x).gates
        if gates == "relu"
        else [np.ones((1, n), dtype=bool) for n in net.hidden_widths]
    )
    h = [g[0] for g in h]
    L = net.depth
    index = PathIndex.from_network(net)
    n_sampled = 10**6 if max_circuits is None else int(max_circuits)

    if kind.endswith("second_order") and L < 2:
        raise ConfigError(f"second-order perturbations need depth ≥ 2, got widths {ws}")
    wrt = [(min(2, L), 0, 0)] if kind == "first_order" else [(1, 0, 0), (L, 0, 0)]
    if kind == "networkx":
        n = min(index.count, 20_000 if max_circuits is None else int(max_circuits))
    elif kind.startswith("sampled"):
        n = n_sampled
    elif kind in ("first_order", "second_order"):
        n = index.through(*wrt).count
    else:
        n = index.count
    paths = index.sample_paths(n, rng) if kind.startswith("sampled") else None
    hist_range = None
    if kind == "stats":
        s = circuit_stats(net, x, h, limit=2**62)
        hist_range = (s.min, s.max)

    def job() -> None:
        if kind == "values":
            circuit_values(net, x, h)
        elif kind == "stats":
            circuit_stats(net, x, h, bins=100, hist_range=hist_range, limit=2**62)
        elif kind == "stats_nohist":
            circuit_stats(net, x, h, limit=2**62)
        elif kind in ("first_order", "second_order"):
            circuit_values(net, x, h, wrt=wrt)
        elif kind == "sampled":
            sampled_circuit_values(net, x, h, paths)
        elif kind == "sampled_first_order":
            sampled_first_order(net, x, h, paths, 1)
        elif kind == "sampled_second_order":
            sampled_second_order(net, x, h, paths, 1, L)
        else:
            reference_circuits(net, x, h, max_circuits=n)

    old = numba.get_num_threads()
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ConfigError(f"threads must be an integer ≥ 1, got {threads!r}")
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        used = numba.get_num_threads()
        if kind != "networkx":
            job()  # compile
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            job()
            best = min(best, time.perf_counter() - t0)
    finally:
        numba.set_num_threads(old)
    return Throughput(kind, ws, gates, n, best, used)
