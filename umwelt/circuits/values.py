r"""Circuit values: every circuit, streaming statistics over all of them, sampled circuits.

A basis circuit ``i = (i_0, ..., i_{L-1})`` of a layered net with gates ``h`` has the value
(eq. 10–11 of Li, *Complexity from Adaptive-Symmetries Breaking*; THEORY.md §3)

.. math::
    \Psi_i = x_{i_0} \prod_{l=1}^{L-1} W^l_{i_{l-1} i_l} H^l_{i_l} \cdot W^L_{i_{L-1} 0},
    \qquad f(x) = \sum_i \Psi_i ,

a sum over :math:`N = \prod_{l<L} n_l` circuits, numbered by :class:`PathIndex` (``i_0`` the
most significant digit). Three ways to look at them:

* :func:`circuit_values` materializes the whole array, up to a memory budget of
  :data:`MAX_CIRCUIT_VALUES` values (``2^27`` float64 = 1 GiB; ``limit=`` overrides it);
* :func:`circuit_stats` sweeps every circuit without storing any (count, sum, sum of squares,
  mean, variance, min, max, signs, a fixed-bin histogram): 10^9 circuits take about a second;
* :func:`sampled_circuit_values` evaluates given circuits, e.g. drawn uniformly by
  :func:`sample_circuits`.

All three take ``wrt``: weights ``(l, a, b)`` differentiated out, which turns circuit values
into perturbations :math:`\Omega` (see :mod:`umwelt.circuits.perturbations`).

Each computation has a numba kernel (:mod:`umwelt._kernels.circuits`) and a plain-numpy twin,
selected by ``backend=``; the twin is the oracle the kernel is tested against. Both form every
product in the same order, so materialized values agree bit for bit, and the streaming
histogram counts equal :func:`numpy.histogram` of the materialized array exactly.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

from umwelt import _kernels
from umwelt.circuits._chain import (
    Chain,
    Weight,
    build_chain,
    check_inputs,
    check_network,
    check_wrt,
    circuit_index,
    pack_network,
)
from umwelt.circuits.index import PathIndex, _as_rng
from umwelt.errors import ConfigError, EnumerationLimitError, ShapeError
from umwelt.network import LayeredNetwork

__all__ = [
    "MAX_CIRCUIT_VALUES",
    "MAX_STREAMED_CIRCUITS",
    "CircuitStats",
    "circuit_stats",
    "circuit_values",
    "n_circuits",
    "sample_circuits",
    "sampled_circuit_values",
]

MAX_CIRCUIT_VALUES: int = 2**27
"""Memory budget of :func:`circuit_values`: ``2^27`` float64 values (1 GiB), over all inputs."""

MAX_STREAMED_CIRCUITS: int = 2**40
"""Default limit of :func:`circuit_stats` (about 10^12 circuits: minutes to an hour)."""

_BACKENDS = ("numba", "numpy")
_PARALLEL_MIN = 2**20  # circuits (or samples × inputs) from which the parallel kernels are used
_MIN_TASKS = 64  # parallel tasks of the streaming kernel, at least (when there are that many)
_MAX_TASKS = 8192


def n_circuits(net: LayeredNetwork) -> int:
    r"""Number of basis circuits :math:`\prod_{l<L} n_l`, a Python int.

    >>> n_circuits(LayeredNetwork.he_normal((16, 32, 32, 32, 1), seed=0))
    524288
    """
    return PathIndex.from_network(check_network(net)).count


def _check_backend(backend: str) -> str:
    if backend not in _BACKENDS:
        raise ConfigError(f"backend must be one of {_BACKENDS}, got {backend!r}")
    return backend


def _check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int | np.integer) or limit < 1:
        raise ConfigError(f"limit must be a positive integer, got {limit!r}")
    return int(limit)


def _refuse_materializing(n: int, batch: int, limit: int, what: str) -> None:
    total = n * batch
    if total > limit:
        per = f" ({n} per input × {batch} inputs)" if batch > 1 else ""
        raise EnumerationLimitError(
            f"{what} would materialize {total} circuit values{per}, {total * 8 / 2**30:.3g} "
            f"GiB, over the budget of {limit} values ({limit * 8 / 2**30:.3g} GiB); use "
            "circuit_stats() to stream them or sample_circuits() to sample them"
        )


# -- every circuit --------------------------------------------------------------------------------


def _chain_values_numpy(chain: Chain) -> np.ndarray:
    """Twin of :func:`umwelt._kernels.chain_values`: the same products, by broadcasting."""
    P = np.ones(1)
    for g in chain.mats:
        P = (P.reshape(-1, g.shape[0])[:, :, None] * g[None, :, :]).ravel()
    return P


def _parallel(work: int) -> bool:
    return work >= _PARALLEL_MIN and numba.get_num_threads() > 1


def _chain_values(chain: Chain, backend: str, out: np.ndarray) -> None:
    if backend == "numpy":
        out[:] = _chain_values_numpy(chain)
        return
    kernel = _kernels.chain_values_parallel if _parallel(out.size) else _kernels.chain_values
    kernel(chain.gflat, chain.goff, chain.radices, out)


def circuit_values(
    net: LayeredNetwork,
    x: np.ndarray,
    gates: Sequence[np.ndarray] | None = None,
    *,
    wrt: Sequence[Weight] = (),
    limit: int = MAX_CIRCUIT_VALUES,
    backend: str = "numba",
) -> np.ndarray:
    r"""The value :math:`\Psi_i` of every circuit, in index order.

    .. math::
        \Psi_i = x_{i_0} \prod_{l=1}^{L-1} W^l_{i_{l-1} i_l} H^l_{i_l} \cdot W^L_{i_{L-1} 0},
        \qquad \sum_i \Psi_i = f(x).

    With ``wrt = [(l, a, b), ...]`` (distinct layers) it returns the perturbations instead:
    each weight :math:`W^l_{ab}` differentiated out of every circuit through all of them,
    ordered by ``PathIndex.from_network(net).through(*wrt)``; their sum is
    :math:`\partial^k f / \partial W^{l}_{ab} \cdots` with the gates fixed.

    Args:
        net: the network.
        x: one input ``(n_0,)`` or a batch ``(B, n_0)``.
        gates: ``L-1`` gate layers, each ``(n_l,)`` or ``(B, n_l)``, bool or 0/1 (a
            :class:`~umwelt.network.GateSample` is accepted); ``None``: the ReLU gates of ``x``.
        wrt: weights ``(layer, a, b)`` to differentiate out, ``1 ≤ layer ≤ L``.
        limit: budget of values materialized over the whole batch (default
            :data:`MAX_CIRCUIT_VALUES`, 1 GiB).
        backend: ``"numba"`` or ``"numpy"`` (the twin).

    Returns:
        float64 ``(N,)``, or ``(B, N)`` when ``x`` or a gate layer has a batch axis.

    Raises:
        EnumerationLimitError: when ``B N`` exceeds ``limit``, naming both.
        ShapeError: when ``x`` or the gates do not fit the network.
        ConfigError: for gates other than 0/1, a weight out of range, repeated layers in
            ``wrt``, a bad limit or backend.

    >>> net = LayeredNetwork([[[1.0, 2.0]], [[3.0], [4.0]]])  # widths (1, 2, 1)
    >>> circuit_values(net, np.array([1.0]), [np.array([True, False])]).tolist()
    [3.0, 0.0]
    """
    backend = _check_backend(backend)
    limit = _check_limit(limit)
    xs, hs, batched = check_inputs(net, x, gates)
    wrt = check_wrt(net, wrt)
    N = circuit_index(net, wrt).count
    B = xs.shape[0]
    _refuse_materializing(N, B, limit, "circuit_values()")
    out = np.zeros((B, N))
    for b in range(B):
        chain = build_chain(net, xs[b], [h[b] for h in hs], wrt)
        if chain is not None:
            _chain_values(chain, backend, out[b])
    return out if batched else out[0]


# -- streaming statistics -------------------------------------------------------------------------


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


# -- sampled circuits -----------------------------------------------------------------------------


def sample_circuits(
    net: LayeredNetwork | PathIndex,
    n: int,
    rng: np.random.Generator | int | None = None,
    *,
    replace: bool = True,
) -> np.ndarray:
    """``n`` circuits drawn uniformly, as int64 paths ``(n, L)`` (see
    :meth:`PathIndex.sample_paths`; pass a pinned :class:`PathIndex` to sample the circuits
    through given weights).

    Args:
        net: a network, or a :class:`PathIndex`.
        n: number of circuits.
        rng: a numpy Generator (used as is) or a seed.
        replace: with replacement (default) or without (then ``n ≤`` the count).
    """
    index = net if isinstance(net, PathIndex) else PathIndex.from_network(check_network(net))
    return index.sample_paths(n, _as_rng(rng), replace=replace)


def _as_paths(net: LayeredNetwork, circuits) -> np.ndarray:
    index = PathIndex.from_network(net)
    c = np.asarray(circuits)
    if c.ndim == 2:
        return index._check_paths(c)
    if c.ndim == 1:
        return index.paths(c)
    raise ShapeError(
        f"circuits must be paths (n, {net.depth}) or indices (n,), got shape {c.shape}"
    )


def _wrt_layers(net: LayeredNetwork, layers, S: int) -> tuple[np.ndarray, np.ndarray]:
    """``(d1, d2)``: per-sample differentiated layers, ``-1`` for none."""
    L = net.depth
    if isinstance(layers, int | np.integer) and not isinstance(layers, bool):
        layers = (layers,)
    if len(layers) > 2:
        raise ConfigError(f"at most two layers can be differentiated out, got {len(layers)}")
    ds = []
    for j, lay in enumerate(layers):
        arr = np.asarray(lay)
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise ConfigError(f"layers to differentiate must be integers, got {lay!r}")
        arr = np.broadcast_to(arr.astype(np.int64), (S,)) if arr.ndim == 0 else arr
        if arr.shape != (S,):
            raise ShapeError(f"layers[{j}] must be an int or shape ({S},), got {arr.shape}")
        bad = (arr < 1) | (arr > L)
        if bad.any():
            raise ConfigError(f"layers must be in [1, {L}], got {int(arr[np.flatnonzero(bad)[0]])}")
        ds.append(np.ascontiguousarray(arr, dtype=np.int64))
    while len(ds) < 2:
        ds.append(np.full(S, -1, dtype=np.int64))
    same = (ds[0] == ds[1]) & (ds[0] >= 1)
    if same.any():
        raise ConfigError(
            f"the two layers differentiated must differ, both are {int(ds[0][same][0])} for "
            f"sample {int(np.flatnonzero(same)[0])}: within-layer second derivatives vanish"
        )
    return ds[0], ds[1]


def _sampled_numpy(xs, hs, net, paths, d1, d2) -> np.ndarray:
    """Twin of :func:`umwelt._kernels.sampled_values`: the same products, vectorized."""
    L = net.depth
    f = [xs[:, paths[:, 0]]]  # (B, S)
    for l in range(1, L):
        w = net.weights[l - 1][paths[:, l - 1], paths[:, l]]  # (S,)
        h = hs[l - 1][:, paths[:, l]]  # (B, S)
        f.append(np.where((d1 == l) | (d2 == l), h, w * h))
    wl = net.weights[L - 1][paths[:, L - 1], 0]
    f.append(np.broadcast_to(np.where((d1 == L) | (d2 == L), 1.0, wl), f[0].shape))
    if L == 1:
        return f[0] * f[1]
    v = f[0]
    for l in range(1, L - 1):
        v = v * f[l]
    return v * (f[L - 1] * f[L])


def sampled_circuit_values(
    net: LayeredNetwork,
    x: np.ndarray,
    gates: Sequence[np.ndarray] | None,
    circuits: np.ndarray | Sequence[int],
    *,
    wrt_layers: int | Sequence[int | np.ndarray] = (),
    backend: str = "numba",
) -> np.ndarray:
    r"""Values of given circuits, or their perturbations along their own weights.

    With ``wrt_layers = (l,)`` each circuit ``i`` has its own weight of layer ``l``,
    :math:`W^l_{i_{l-1} i_l}` (:math:`W^L_{i_{L-1} 0}` for ``l = L``), differentiated out: the
    first-order perturbation :math:`\Omega^{(l)}_i`; two layers give :math:`\Omega^{(l,l')}_i`.
    A layer may differ per circuit (an int array), e.g. to sample (circuit, weight) pairs.

    Args:
        net: the network.
        x: one input ``(n_0,)`` or a batch ``(B, n_0)``.
        gates: ``L-1`` gate layers, ``(n_l,)`` or ``(B, n_l)``; ``None``: the ReLU gates.
        circuits: paths ``(S, L)`` or indices ``(S,)`` (Python ints beyond 2^63).
        wrt_layers: up to two layers in ``[1, L]``, each an int or an int array ``(S,)``;
            the two must differ for every circuit.
        backend: ``"numba"`` or ``"numpy"`` (the twin).

    Returns:
        float64 ``(S,)``, or ``(B, S)`` when ``x`` or a gate layer has a batch axis; equal bit
        for bit to the entries of :func:`circuit_values` at the same circuits.

    Raises:
        ConfigError: for a digit or index out of range, bad layers, gates other than 0/1.
        ShapeError: for arrays that do not fit.
    """
    backend = _check_backend(backend)
    xs, hs, batched = check_inputs(net, x, gates)
    paths = _as_paths(net, circuits)
    S = paths.shape[0]
    d1, d2 = _wrt_layers(net, wrt_layers, S)
    B = xs.shape[0]
    if backend == "numpy":
        out = _sampled_numpy(xs, hs, net, paths, d1, d2)
    else:
        wflat, woff, widths = pack_network(net)
        hflat = np.ascontiguousarray(np.concatenate(hs, axis=1) if hs else np.zeros((B, 0)))
        hoff = np.concatenate([[0], np.cumsum(net.hidden_widths)]).astype(np.int64)
        out = np.empty((B, S))
        kernel = (
            _kernels.sampled_values_parallel if _parallel(B * S * 8) else _kernels.sampled_values
        )
        kernel(xs, wflat, woff, widths, hflat, hoff, paths, d1, d2, out)
    return out if batched else out[0]
