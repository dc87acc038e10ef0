r"""Statistics of every circuit value, streamed: :func:`circuit_stats` stores none of them.

:class:`CircuitStats` holds what is accumulated (count, sum, sum of squares, mean and ``m2`` by
pairwise updates, min, max, signs, a fixed-bin histogram) and how two disjoint sets combine
(:meth:`CircuitStats.merge`); :func:`circuit_stats` sweeps every circuit of one input without
storing any: 10^9 circuits take about a second, up to :data:`MAX_STREAMED_CIRCUITS`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from umwelt import _kernels
from umwelt.circuits._chain import (
    Chain,
    Weight,
    build_chain,
    check_inputs,
    check_wrt,
    circuit_index,
)
from umwelt.circuits.values_backends import _check_backend, _parallel
from umwelt.circuits.values_materialized import (
    MAX_CIRCUIT_VALUES,
    _chain_values_numpy,
    _check_limit,
    _refuse_materializing,
)
from umwelt.errors import ConfigError, EnumerationLimitError, ShapeError
from umwelt.network import LayeredNetwork

__all__ = ["MAX_STREAMED_CIRCUITS", "CircuitStats", "circuit_stats"]

MAX_STREAMED_CIRCUITS: int = 2**40
"""Default limit of :func:`circuit_stats` (about 10^12 circuits: minutes to an hour)."""

_MIN_TASKS = 64  # parallel tasks of the streaming kernel, at least (when there are that many)
_MAX_TASKS = 8192


@dataclass(frozen=True, eq=False)
class CircuitStats:
    r"""Statistics of a set of circuit values, accumulated without storing them.

    Attributes:
        count: number of circuits ``N``.
        sum: :math:`\sum_i \Psi_i` (compensated summation).
        sum_sq: :math:`\sum_i \Psi_i^2`.
        mean: :math:`\bar\Psi = \mathrm{sum} / N`, accumulated by pairwise (Chan) updates.
        m2: :math:`\sum_i (\Psi_i - \bar\Psi)^2`, without the ``E[Ψ²] - E[Ψ]²`` cancellation.
        min, max: extreme values (NaN when ``count == 0``).
        n_positive, n_negative, n_zero: sign counts (exact zeros are common: closed gates).
        hist: counts per bin, int64 ``(n_bins,)``, or ``None``; bins are half-open
            ``[e_k, e_{k+1})`` and the last is closed, values outside are not counted
            (:func:`numpy.histogram`'s rule).
        edges: the bin edges ``(n_bins + 1,)``, or ``None``.

    Two instances compare equal (``==``) when every field is identical (NaNs and arrays
    included).
    """

    count: int
    sum: float
    sum_sq: float
    mean: float
    m2: float
    min: float
    max: float
    n_positive: int
    n_negative: int
    n_zero: int
    hist: np.ndarray | None = None
    edges: np.ndarray | None = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CircuitStats):
            return NotImplemented
        for f in dataclasses.fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
                if a is None or b is None or not np.array_equal(a, b):
                    return False
            elif not (a == b or (a != a and b != b)):  # NaN equals NaN here
                return False
        return True

    __hash__ = None  # type: ignore[assignment]

    @property
    def var(self) -> float:
        """Population variance ``m2 / count``."""
        return self.m2 / self.count if self.count else math.nan

    @property
    def std(self) -> float:
        """Population standard deviation."""
        return math.sqrt(self.var)

    @property
    def second_moment(self) -> float:
        r""":math:`\frac1N \sum_i \Psi_i^2`."""
        return self.sum_sq / self.count if self.count else math.nan

    @property
    def frac_positive(self) -> float:
        """Fraction of circuits with a value > 0."""
        return self.n_positive / self.count if self.count else math.nan

    @property
    def frac_negative(self) -> float:
        """Fraction of circuits with a value < 0."""
        return self.n_negative / self.count if self.count else math.nan

    @property
    def frac_zero(self) -> float:
        """Fraction of circuits with a value exactly 0."""
        return self.n_zero / self.count if self.count else math.nan

    @classmethod
    def empty(cls, edges: np.ndarray | None = None) -> CircuitStats:
        """The statistics of no circuits (with a zero histogram over ``edges`` if given)."""
        hist = None if edges is None else np.zeros(len(edges) - 1, dtype=np.int64)
        nan = math.nan
        return cls(0, 0.0, 0.0, nan, 0.0, nan, nan, 0, 0, 0, hist, edges)

    def merge(self, other: CircuitStats) -> CircuitStats:
        """Statistics of the union of two disjoint sets (e.g. two inputs' circuits).

        Raises:
            ConfigError: when the two histograms have different edges.
        """
        if (self.edges is None) != (other.edges is None) or (
            self.edges is not None and not np.array_equal(self.edges, other.edges)
        ):
            raise ConfigError("cannot merge circuit statistics with different histogram edges")
        if other.count == 0:
            return self
        if self.count == 0:
            return other
        n = self.count + other.count
        d = other.mean - self.mean
        return CircuitStats(
            count=n,
            sum=math.fsum([self.sum, other.sum]),
            sum_sq=self.sum_sq + other.sum_sq,
            mean=self.mean + d * (other.count / n),
            m2=self.m2 + other.m2 + d * d * (self.count / n) * other.count,
            min=min(self.min, other.min),
            max=max(self.max, other.max),
            n_positive=self.n_positive + other.n_positive,
            n_negative=self.n_negative + other.n_negative,
            n_zero=self.n_zero + other.n_zero,
            hist=None if self.hist is None else self.hist + other.hist,
            edges=self.edges,
        )


def _resolve_bins(bins, hist_range) -> np.ndarray | int | None:
    """Edges (array), a bin count whose range is still to be found (int), or None."""
    if bins is None:
        if hist_range is not None:
            raise ConfigError(f"hist_range={hist_range!r} needs bins (a number of bins)")
        return None
    if isinstance(bins, int | np.integer) and not isinstance(bins, bool):
        if bins < 1:
            raise ConfigError(f"bins must be ≥ 1, got {bins}")
        if hist_range is None:
            return int(bins)
        try:
            lo, hi = (float(v) for v in hist_range)
        except (TypeError, ValueError):
            raise ConfigError(f"hist_range must be (lo, hi), got {hist_range!r}") from None
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
            raise ConfigError(f"hist_range must be finite with lo ≤ hi, got {hist_range!r}")
        return _linspace_edges(lo, hi, int(bins))
    if hist_range is not None:
        raise ConfigError("give hist_range only with a number of bins, not with bin edges")
    try:
        edges = np.asarray(bins, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(
            f"bins must be a number of bins or an array of edges, got {bins!r}"
        ) from None
    if edges.ndim != 1 or edges.size < 2:
        raise ConfigError(f"bin edges must be 1-D with at least 2 entries, got shape {edges.shape}")
    if not np.all(np.isfinite(edges)) or np.any(np.diff(edges) < 0):
        raise ConfigError(f"bin edges must be finite and increasing, got {edges}")
    return edges


def _linspace_edges(lo: float, hi: float, n: int) -> np.ndarray:
    """Edges as :func:`numpy.histogram` makes them (a zero-width range widened by ±0.5)."""
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, n + 1)


def _stats_numpy(v: np.ndarray, edges: np.ndarray | None) -> CircuitStats:
    """Twin of the streaming kernel: plain numpy on the materialized values."""
    if v.size == 0:
        return CircuitStats.empty(edges)
    mean = float(v.mean())
    return CircuitStats(
        count=int(v.size),
        sum=float(v.sum()),
        sum_sq=float(np.sum(v * v)),
        mean=mean,
        m2=float(np.sum((v - mean) ** 2)),
        min=float(v.min()),
        max=float(v.max()),
        n_positive=int(np.count_nonzero(v > 0)),
        n_negative=int(np.count_nonzero(v < 0)),
        n_zero=int(np.count_nonzero(v == 0)),
        hist=None if edges is None else np.histogram(v, bins=edges)[0].astype(np.int64),
        edges=edges,
    )


def _n_split(radices: np.ndarray) -> int:
    """Leading row digits split into parallel tasks: at least 64 tasks if possible, ≤ 8192."""
    s, T = 0, 1
    while s < radices.size - 1 and T < _MIN_TASKS:
        T *= int(radices[s])
        s += 1
    if T > _MAX_TASKS and s > 1:
        s -= 1
    return s


def _stats_numba(chain: Chain, edges: np.ndarray | None) -> CircuitStats:
    C = chain.mats[-1]  # (rows, m)
    m = C.shape[1]
    csort = np.sort(C, axis=1)
    rsum = C.sum(axis=1)
    rsumsq = np.sum(C * C, axis=1)
    rmean = rsum / m
    rm2 = np.sum((C - rmean[:, None]) ** 2, axis=1)
    s = _n_split(chain.radices)
    T = int(np.prod(chain.radices[:s]))
    accf = np.zeros((T, 7))
    accf[:, 5] = np.inf
    accf[:, 6] = -np.inf
    acci = np.zeros((T, 4), dtype=np.int64)
    e = np.empty(0) if edges is None else edges
    hist = np.zeros((T, max(e.size - 1, 1)), dtype=np.int64)
    kernel = _kernels.chain_stats_parallel if _parallel(chain.count) else _kernels.chain_stats
    kernel(
        chain.gflat, chain.goff, chain.radices, csort, rsum, rsumsq, rmean, rm2, e, s, accf,
        acci, hist,
    )  # fmt: skip
    n_t = acci[:, 0]
    N = int(n_t.sum())
    if N == 0:  # pragma: no cover - a chain always has circuits
        return CircuitStats.empty(edges)
    means = accf[:, 3]
    mean = float(np.sum(means * n_t) / N)
    m2 = float(np.sum(accf[:, 4]) + np.sum(n_t * (means - mean) ** 2))
    return CircuitStats(
        count=N,
        sum=math.fsum(accf[:, 0]) + math.fsum(accf[:, 1]),
        sum_sq=math.fsum(accf[:, 2]),
        mean=mean,
        m2=m2,
        min=float(accf[:, 5].min()),
        max=float(accf[:, 6].max()),
        n_positive=int(acci[:, 1].sum()),
        n_negative=int(acci[:, 2].sum()),
        n_zero=int(acci[:, 3].sum()),
        hist=None if edges is None else hist.sum(axis=0),
        edges=edges,
    )


def circuit_stats(
    net: LayeredNetwork,
    x: np.ndarray,
    gates: Sequence[np.ndarray] | None = None,
    *,
    wrt: Sequence[Weight] = (),
    bins: int | Sequence[float] | np.ndarray | None = None,
    hist_range: tuple[float, float] | None = None,
    limit: int = MAX_STREAMED_CIRCUITS,
    backend: str = "numba",
) -> CircuitStats:
    r"""Statistics of every circuit value of one input, streamed: nothing is stored.

    Walks the prefixes :math:`x_{i_0} \prod_{l \le L-2} W^l H^l` depth-first, each the start of
    a row of ``n_{L-1}`` circuits; a prefix that is exactly 0 (a closed gate) adds its whole
    subtree as zeros at once. Per row it uses aggregates of the last matrix, so count, sum,
    sum of squares, mean and ``m2`` cost ``O(1)``, and min, max, signs and histogram counts
    come from binary and galloping searches in the row sorted once (exact: rounding is
    monotone). Results do not depend on the number of threads.

    Args:
        net: the network.
        x: one input ``(n_0,)`` (for a batch call once per input and :meth:`CircuitStats.merge`).
        gates: ``L-1`` layers ``(n_l,)`` (or a batch of one); ``None``: the ReLU gates of ``x``.
        wrt: weights ``(layer, a, b)`` differentiated out (perturbations; see
            :func:`circuit_values`); ``sum`` is then the derivative of ``f``.
        bins: ``None`` (no histogram), a number of equal bins, or increasing bin edges.
        hist_range: ``(lo, hi)`` of the equal bins; by default the values' ``(min, max)``,
            found by a first sweep (:func:`numpy.histogram`'s default).
        limit: refuse more circuits than this (default :data:`MAX_STREAMED_CIRCUITS`).
        backend: ``"numba"`` or ``"numpy"`` (the twin: materializes, within
            :data:`MAX_CIRCUIT_VALUES`).

    Returns:
        :class:`CircuitStats`.

    Raises:
        EnumerationLimitError: over ``limit`` (or over the memory budget for ``"numpy"``).
        ShapeError: for a batch of inputs or gates that do not fit.
        ConfigError: for bad bins, range, weights, limit or backend.

    >>> net = LayeredNetwork([[[1.0, 2.0]], [[3.0], [-4.0]]])  # widths (1, 2, 1)
    >>> s = circuit_stats(net, np.array([1.0]), [np.array([True, True])], bins=2)
    >>> s.count, s.sum, s.min, s.max, s.n_positive, s.hist.tolist()  # Ψ = 3, -8
    (2, -5.0, -8.0, 3.0, 1, [1, 1])
    """
    backend = _check_backend(backend)
    limit = _check_limit(limit)
    xs, hs, _ = check_inputs(net, x, gates)
    if xs.shape[0] != 1:
        raise ShapeError(
            f"circuit_stats takes one input, got a batch of {xs.shape[0]}; call it per input "
            "and combine with CircuitStats.merge()"
        )
    wrt = check_wrt(net, wrt)
    edges = _resolve_bins(bins, hist_range)
    N = circuit_index(net, wrt).count
    if N > limit:
        raise EnumerationLimitError(
            f"circuit_stats() would sweep {N} circuits, over the limit of {limit}; pass a larger "
            "limit= or use sample_circuits()"
        )
    if backend == "numpy":
        _refuse_materializing(N, 1, MAX_CIRCUIT_VALUES, "circuit_stats(backend='numpy')")
    chain = build_chain(net, xs[0], [h[0] for h in hs], wrt)
    if chain is None:
        n_bins = edges if isinstance(edges, int) else None
        e = _linspace_edges(0.0, 1.0, n_bins) if n_bins else edges
        return CircuitStats.empty(e)

    def run(e: np.ndarray | None) -> CircuitStats:
        if backend == "numpy":
            return _stats_numpy(_chain_values_numpy(chain), e)
        return _stats_numba(chain, e)

    if isinstance(edges, int):  # range from a first sweep, as numpy's default
        first = run(None)
        return run(_linspace_edges(first.min, first.max, edges))
    return run(edges)
