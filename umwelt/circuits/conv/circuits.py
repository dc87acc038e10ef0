r"""The circuits of a conv net for one input: the circuit graph, counted, numbered, sampled, summed.

:class:`ConvCircuits` builds the graph of one input's units (level by level, the edges of each
weight layer with their weights and max-pool selection factors, :class:`_Transition`), counts
the paths into and out of every unit as exact Python ints, numbers the circuits
lexicographically, draws them uniformly backwards from the output, and gives their values and
their sums over every circuit by dynamic programming (the concepts and the math:
:mod:`umwelt.circuits.conv`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from umwelt.circuits.conv.network import ConvNetwork
from umwelt.circuits.index import _as_rng
from umwelt.errors import ConfigError, EnumerationLimitError, ShapeError

__all__ = ["MAX_CONV_EDGES", "MAX_ENUMERATED_CONV_CIRCUITS", "POOL_MODES", "ConvCircuits"]

MAX_CONV_EDGES: int = 2**25
"""Budget of edges of a circuit graph (each costs about 40 bytes: 1.3 GiB)."""

MAX_ENUMERATED_CONV_CIRCUITS: int = 2**22
"""Default limit of :meth:`ConvCircuits.enumerate` (paths and values: about 40 bytes each per
level)."""

POOL_MODES = ("select", "gate")


# -- exact counts: object arrays of Python ints ---------------------------------------------------


def _exclusive_cumsum(a: np.ndarray) -> np.ndarray:
    """``[0, a_0, a_0 + a_1, …]`` as Python ints (object array of ``a.size + 1``)."""
    out = np.empty(a.size + 1, dtype=object)
    out[0] = 0
    if a.size:
        out[1:] = np.cumsum(a.astype(object))
    return out


def _bucket(cex: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The ``j`` with ``cex[j] ≤ target < cex[j + 1]`` (the bucket a number falls in)."""
    return np.searchsorted(cex, target, side="right") - 1


def _randbelow(highs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Exact uniform integers ``0 ≤ r < high`` (Python ints, object array) per entry."""
    out = np.empty(highs.size, dtype=object)
    small = np.array([h < 2**62 for h in highs], dtype=bool)
    if small.any():
        hs = np.array([int(h) for h in highs[small]], dtype=np.int64)
        out[np.flatnonzero(small)] = rng.integers(0, hs).astype(object)
    for i in np.flatnonzero(~small):
        h = int(highs[i])
        nbytes = (h.bit_length() + 7) // 8 + 1
        while True:  # rejection sampling of a random bit string: exact
            r = int.from_bytes(rng.bytes(nbytes), "little") >> (8 * nbytes - h.bit_length())
            if r < h:
                break
        out[i] = r
    return out


# -- the circuit graph ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Transition:
    """Edges from level ``t`` to level ``t + 1``, sorted by ``(dst, src)``.

    ``ptr`` (CSR by destination), ``perm_src`` (the order sorted by ``(src, dst)``),
    ``ptr_src`` (CSR by source in that order) and ``pos_src`` (its inverse).
    """

    src: np.ndarray
    dst: np.ndarray
    param: np.ndarray
    weight: np.ndarray
    select: np.ndarray
    ptr: np.ndarray
    perm_src: np.ndarray
    ptr_src: np.ndarray
    key: np.ndarray  # dst * n_src + src, ascending: finds the edge of a (src, dst) pair
    pos_src: np.ndarray  # inverse of perm_src: an edge's position in source order


class ConvCircuits:
    r"""The circuits of a :class:`ConvNetwork` for one input, its gates and its max-pool
    selections (:mod:`umwelt.circuits.conv`).

    Args:
        net: the network.
        x: one input ``(C, H, W)`` (or flat).
        gates: per gated layer, 0/1 arrays of :attr:`ConvNetwork.gate_shapes`; ``None``: the
            ReLU gates of ``x``.
        pool: ``"select"`` (only the window's winner connects onward) or ``"gate"`` (every
            unit connects, the selection is a 0/1 factor).
        max_edges: refuse circuit graphs with more edges than this.

    Attributes:
        net, pool, forward (:class:`ConvForward`: gates, selections, output), x (flat).
        unit_factor: per level ``0..D``, each unit's own factor: the input, the (flat) gates,
            1 at the output.
        level_sizes: units per level ``0..D``.
        from_input, to_output: per level, object arrays of Python ints
            (:mod:`umwelt.circuits.conv`).
        count: the number of circuits, a Python int.

    Raises:
        EnumerationLimitError: when the graph would have more than ``max_edges`` edges.
        ShapeError, ConfigError: for an input or gates that do not fit, an unknown pool mode.
    """

    def __init__(
        self,
        net: ConvNetwork,
        x: np.ndarray,
        gates: Sequence[np.ndarray] | None = None,
        *,
        pool: str = "select",
        max_edges: int = MAX_CONV_EDGES,
    ):
        if not isinstance(net, ConvNetwork):
            raise ConfigError(f"expected a ConvNetwork, got {type(net).__name__}")
        if pool not in POOL_MODES:
            raise ConfigError(f"pool must be one of {POOL_MODES}, got {pool!r}")
        self.net = net
        self.pool = pool
        self.forward = net.forward(x, gates)
        self.x = net._check_x(x).reshape(-1)
        D = net.depth
        self.level_sizes = [math.prod(s) for s in net.level_shapes]
        # each unit's own factor: the input (level 0), the gates, 1 at the output (level D)
        self.unit_factor = [self.x] + [g.reshape(-1) for g in self.forward.gates] + [np.ones(1)]
        n_edges = self._edge_count()
        if n_edges > max_edges:
            raise EnumerationLimitError(
                f"the circuit graph of {net!r} has {n_edges} edges, over the budget of "
                f"{max_edges}; use a smaller width or input"
            )
        self.transitions = [self._build(t) for t in range(D)]
        self._count_paths()

    # -- building the graph ---------------------------------------------------------------------

    def _edge_count(self) -> int:
        """The number of edges the graph will have (computed before building it)."""
        net = self.net
        total = 0
        mult = 1  # edges per effective source: 4 behind a pooling in gate mode
        for W, pool, (co, h, w) in zip(net.convs, net.pool_after, net.conv_shapes):
            k, p = W.shape[2], W.shape[2] // 2
            rows = sum(max(0, h - abs(i - p)) for i in range(k))
            cols = sum(max(0, w - abs(j - p)) for j in range(k))
            total += co * W.shape[1] * rows * cols * mult
            mult = 4 if (pool and self.pool == "gate") else 1
        for m, W in enumerate(net.linears):
            total += W.size * (mult if m == 0 else 1)
        return total

    def _sources(self, t: int, eff: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Units of level ``t`` behind effective source positions ``eff`` (flat indices into
        the level's map after pooling): ``(position in eff, unit, selection factor)``."""
        net = self.net
        if t == 0 or t > len(net.convs) or not net.pool_after[t - 1]:
            return np.arange(eff.size), eff, np.ones(eff.size)
        c, h, w = net.conv_shapes[t - 1]
        sel = self.forward.selections[t - 1].reshape(-1)  # (c h/2 w/2,)
        cc, rem = np.divmod(eff, (h // 2) * (w // 2))
        py, px = np.divmod(rem, w // 2)
        if self.pool == "select":
            dy, dx = np.divmod(sel[eff], 2)
            unit = cc * h * w + (2 * py + dy) * w + (2 * px + dx)
            return np.arange(eff.size), unit, np.ones(eff.size)
        k = np.repeat(np.arange(eff.size), 4)
        d = np.tile(np.arange(4), eff.size)
        dy, dx = np.divmod(d, 2)
        unit = cc[k] * h * w + (2 * py[k] + dy) * w + (2 * px[k] + dx)
        return k, unit, (sel[eff][k] == d).astype(np.float64)

    def _build(self, t: int) -> _Transition:
        """Edges of weight layer ``t + 1`` (from level ``t`` to ``t + 1``)."""
        net = self.net
        K = len(net.convs)
        if t < K:  # a convolution
            W = net.convs[t]
            co, ci, k, _ = W.shape
            _, h, w = net.conv_shapes[t]
            p = k // 2
            o, y, xx, c, i, j = (
                g.ravel() for g in np.meshgrid(*map(np.arange, (co, h, w, ci, k, k)), indexing="ij")
            )
            ys, xs = y + i - p, xx + j - p
            ok = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
            o, y, xx, c, i, j, ys, xs = (a[ok] for a in (o, y, xx, c, i, j, ys, xs))
            eff = c * h * w + ys * w + xs  # source position in the (pooled) map of level t
            dst = o * h * w + y * w + xx
            param = ((o * ci + c) * k + i) * k + j
        else:  # a linear layer
            W = net.linears[t - K]
            n_in, n_out = W.shape
            eff = np.repeat(np.arange(n_in), n_out)
            dst = np.tile(np.arange(n_out), n_in)
            param = eff * n_out + dst
        kk, src, select = self._sources(t, eff)
        dst, param = dst[kk], param[kk]
        order = np.lexsort((src, dst))
        src, dst, param, select = src[order], dst[order], param[order], select[order]
        n_dst = self.level_sizes[t + 1]
        ptr = np.searchsorted(dst, np.arange(n_dst + 1))
        perm_src = np.lexsort((dst, src))
        ptr_src = np.searchsorted(src[perm_src], np.arange(self.level_sizes[t] + 1))
        weight = W.reshape(-1)[param]
        key = dst * self.level_sizes[t] + src
        pos_src = np.empty_like(perm_src)
        pos_src[perm_src] = np.arange(perm_src.size)
        return _Transition(src, dst, param, weight, select, ptr, perm_src, ptr_src, key, pos_src)

    def _count_paths(self) -> None:
        D = self.net.depth
        fi = [np.ones(self.level_sizes[0], dtype=object)]
        for tr in self.transitions:
            n = np.zeros(self.level_sizes[len(fi)], dtype=object)
            n[:] = 0
            np.add.at(n, tr.dst, fi[-1][tr.src])
            fi.append(n)
        to = [None] * (D + 1)
        to[D] = np.ones(1, dtype=object)
        for t in range(D - 1, -1, -1):
            tr = self.transitions[t]
            n = np.zeros(self.level_sizes[t], dtype=object)
            n[:] = 0
            np.add.at(n, tr.src, to[t + 1][tr.dst])
            to[t] = n
        self.from_input: list[np.ndarray] = fi
        self.to_output: list[np.ndarray] = to
        self.count: int = int(fi[D][0])
        # exclusive prefix sums: for sampling (edges by destination, weighted by from_input of
        # the source) and for numbering (edges by source, weighted by to_output of the target)
        self._cex_fi = [_exclusive_cumsum(fi[t][tr.src]) for t, tr in enumerate(self.transitions)]
        self._cex_to = [
            _exclusive_cumsum(to[t + 1][tr.dst[tr.perm_src]])
            for t, tr in enumerate(self.transitions)
        ]
        self._cex_to0 = _exclusive_cumsum(to[0])

    # -- size -----------------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Levels below the output, ``D`` (a circuit has ``D`` units and ``D`` edges)."""
        return self.net.depth

    @property
    def n_edges(self) -> int:
        """Edges of the circuit graph."""
        return sum(tr.src.size for tr in self.transitions)

    def through(self, level: int, unit: int) -> int:
        """Number of circuits through one unit of a level ``0..D-1``."""
        return int(self.from_input[level][unit] * self.to_output[level][unit])

    def __repr__(self) -> str:
        return f"ConvCircuits({self.net!r}, pool={self.pool!r}, count={self.count})"

    # -- paths <-> edges ------------------------------------------------------------------------

    def _check_paths(self, paths) -> np.ndarray:
        p = np.asarray(paths)
        D = self.depth
        if p.ndim != 2 or p.shape[1] != D:
            raise ShapeError(f"paths must have shape (n, {D}), got {p.shape}")
        if p.size and not np.issubdtype(p.dtype, np.integer):
            raise ConfigError(f"paths must hold integers, got dtype {p.dtype}")
        p = p.astype(np.int64)
        for t in range(D):
            bad = (p[:, t] < 0) | (p[:, t] >= self.level_sizes[t])
            if bad.any():
                s = int(np.flatnonzero(bad)[0])
                raise ConfigError(
                    f"path {s} has unit {int(p[s, t])} at level {t} "
                    f"({self.net.level_names[t]}), outside [0, {self.level_sizes[t]})"
                )
        return p

    def edges(self, paths) -> np.ndarray:
        """The edge of every step of every path, ``(n, D)`` (indices into each transition).

        Raises:
            ConfigError: for a path that is not a path of this graph (naming the step).
        """
        p = self._check_paths(paths)
        n, D = p.shape
        out = np.empty((n, D), dtype=np.int64)
        for t, tr in enumerate(self.transitions):
            dst = p[:, t + 1] if t + 1 < D else np.zeros(n, dtype=np.int64)
            want = dst * self.level_sizes[t] + p[:, t]
            e = np.minimum(np.searchsorted(tr.key, want), max(tr.key.size - 1, 0))
            ok = tr.key[e] == want if tr.key.size else np.zeros(n, dtype=bool)
            if not ok.all():
                s = int(np.flatnonzero(~ok)[0])
                names = self.net.level_names
                raise ConfigError(
                    f"path {s} = {p[s].tolist()} is not a circuit: no edge from unit "
                    f"{int(p[s, t])} of {names[t]} to unit {int(dst[s])} of {names[t + 1]}"
                )
            out[:, t] = e
        return out

    # -- numbering ------------------------------------------------------------------------------

    def path(self, index: int) -> tuple[int, ...]:
        """The circuit of one index (lexicographic numbering, :mod:`umwelt.circuits.conv`).

        Raises:
            ConfigError: for an index outside ``[0, count)``.
        """
        return tuple(int(u) for u in self.paths([index])[0])

    def paths(self, indices) -> np.ndarray:
        """The circuits of indices (ints or Python ints), as ``(n, D)`` int64 units.

        Raises:
            ConfigError: for an index outside ``[0, count)`` or not an integer.
        """
        idx = np.asarray(indices, dtype=object).reshape(-1)
        for v in idx:
            if isinstance(v, bool) or not isinstance(v, int | np.integer):
                raise ConfigError(f"a circuit index must be an integer, got {v!r}")
            if not 0 <= v < self.count:
                raise ConfigError(f"circuit index {v} is out of range [0, {self.count})")
        r = np.array([int(v) for v in idx], dtype=object)
        n, D = r.size, self.depth
        out = np.empty((n, D), dtype=np.int64)
        if n == 0:
            return out
        j = _bucket(self._cex_to0, r)
        r = r - self._cex_to0[j]
        u = j
        out[:, 0] = u
        for t in range(D - 1):
            tr = self.transitions[t]
            cex = self._cex_to[t]
            target = cex[tr.ptr_src[u]] + r  # row of u's out-edges, in source order
            j = _bucket(cex, target)
            r = target - cex[j]
            u = tr.dst[tr.perm_src[j]]
            out[:, t + 1] = u
        return out

    def indices(self, paths) -> np.ndarray:
        """The indices of circuits ``(n, D)``, as an object array of Python ints."""
        p = self._check_paths(paths)
        e = self.edges(p)
        idx = self._cex_to0[p[:, 0]]
        for t in range(self.depth - 1):
            tr = self.transitions[t]
            cex = self._cex_to[t]
            idx = idx + (cex[tr.pos_src[e[:, t]]] - cex[tr.ptr_src[p[:, t]]])
        return np.array([int(v) for v in idx], dtype=object)

    def index(self, path: Sequence[int]) -> int:
        """The index of one circuit."""
        return int(self.indices(np.asarray(path)[None, :])[0])

    def all_paths(self, *, limit: int = MAX_ENUMERATED_CONV_CIRCUITS) -> np.ndarray:
        """Every circuit, ``(count, D)``, in index order.

        Raises:
            EnumerationLimitError: when ``count`` exceeds ``limit``.
        """
        if self.count > limit:
            raise EnumerationLimitError(
                f"listing all {self.count} circuits is over the limit of {limit}"
            )
        return self.paths(np.arange(self.count).astype(object))

    # -- uniform sampling -----------------------------------------------------------------------

    def sample_paths(self, n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """``n`` circuits drawn uniformly with replacement, backwards from the output
        (:mod:`umwelt.circuits.conv`), as ``(n, D)`` int64 units.

        Raises:
            ConfigError: for a negative ``n``, or ``n > 0`` when there is no circuit.
        """
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise ConfigError(f"the number of circuits must be an integer ≥ 0, got {n!r}")
        rng = _as_rng(rng)
        n, D = int(n), self.depth
        if n and self.count == 0:
            raise ConfigError("this network has no circuits to sample")
        out = np.empty((n, D), dtype=np.int64)
        v = np.zeros(n, dtype=np.int64)  # the output unit
        for t in range(D - 1, -1, -1):
            tr = self.transitions[t]
            cex = self._cex_fi[t]
            r = _randbelow(self.from_input[t + 1][v], rng)  # uniform below v's path count
            e = _bucket(cex, cex[tr.ptr[v]] + r)  # predecessor u with prob fi[u] / fi[v]
            v = tr.src[e]
            out[:, t] = v
        return out

    # -- values ---------------------------------------------------------------------------------

    def factors(self, paths) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(x (n,), weights (n, D), rest (n, D))``: the input of each path, the weight of
        each of its edges, and the rest of each step's factor (selection × gate of the unit
        reached)."""
        p = self._check_paths(paths)
        e = self.edges(p)
        n, D = p.shape
        w = np.empty((n, D))
        rest = np.empty((n, D))
        for t, tr in enumerate(self.transitions):
            w[:, t] = tr.weight[e[:, t]]
            g = self.unit_factor[t + 1][p[:, t + 1]] if t + 1 < D else 1.0
            rest[:, t] = tr.select[e[:, t]] * g
        return self.x[p[:, 0]], w, rest

    def values(self, paths, wrt_layers: int | Sequence = ()) -> np.ndarray:
        r""":math:`\Psi` of circuits, or :math:`\Omega` with the weights of up to two layers
        (``1..D``, each an int or an int array ``(n,)``) left out.

        Raises:
            ConfigError: for a layer out of range or the same layer twice.
        """
        x, w, rest = self.factors(paths)
        n, D = w.shape
        if isinstance(wrt_layers, int | np.integer) and not isinstance(wrt_layers, bool):
            wrt_layers = (wrt_layers,)
        if len(wrt_layers) > 2:
            raise ConfigError(
                f"at most two layers can be differentiated out, got {len(wrt_layers)}"
            )
        out_w = w.copy()
        masks = []
        for lay in wrt_layers:
            arr = np.broadcast_to(np.asarray(lay, dtype=np.int64), (n,))
            if np.any((arr < 1) | (arr > D)):
                raise ConfigError(f"layers must be in [1, {D}], got {lay!r}")
            m = np.zeros((n, D), dtype=bool)
            m[np.arange(n), arr - 1] = True
            masks.append(m)
        if len(masks) == 2 and np.any(masks[0] & masks[1]):
            raise ConfigError("the two layers differentiated must differ for every circuit")
        for m in masks:
            out_w[m] = 1.0
        v = x.copy()
        for t in range(D):
            v = v * (out_w[:, t] * rest[:, t])
        return v

    def params(self, paths) -> np.ndarray:
        """The weight each step uses, as a flat index into that layer's weight tensor,
        ``(n, D)``."""
        e = self.edges(paths)
        return np.stack([tr.param[e[:, t]] for t, tr in enumerate(self.transitions)], axis=1)

    # -- sums over every circuit, by dynamic programming ----------------------------------------

    def _forward_sums(self) -> list[np.ndarray]:
        """``A[t][u]``: the sum over partial paths from the inputs to unit ``u`` of level ``t``
        of their products, the unit's own factor included."""
        A = [self.x.copy()]
        for t, tr in enumerate(self.transitions):
            s = np.bincount(
                tr.dst,
                weights=A[t][tr.src] * tr.weight * tr.select,
                minlength=self.level_sizes[t + 1],
            )
            A.append(s * self.unit_factor[t + 1])
        return A

    def _backward_sums(self) -> list[np.ndarray]:
        """``B[t][u]``: the sum over partial paths from unit ``u`` of level ``t`` to the output
        of the products of the factors after ``u``."""
        D = self.depth
        B = [None] * (D + 1)
        B[D] = np.ones(1)
        for t in range(D - 1, -1, -1):
            tr = self.transitions[t]
            w = tr.weight * tr.select * self.unit_factor[t + 1][tr.dst] * B[t + 1][tr.dst]
            B[t] = np.bincount(tr.src, weights=w, minlength=self.level_sizes[t])
        return B

    def path_sum(self) -> float:
        r""":math:`\sum_{\text{all circuits}} \Psi = f(x)`, by dynamic programming."""
        return float(self._forward_sums()[-1][0])

    def gradient(self) -> list[np.ndarray]:
        r"""Per layer, :math:`\sum \Omega^{(l)}` over the circuits through each weight, shaped
        as the weight tensor: the gradient of ``f`` with the gates and selections fixed."""
        A, B = self._forward_sums(), self._backward_sums()
        out = []
        for t, (tr, W) in enumerate(zip(self.transitions, self.net.weights)):
            contrib = A[t][tr.src] * tr.select * self.unit_factor[t + 1][tr.dst] * B[t + 1][tr.dst]
            out.append(np.bincount(tr.param, weights=contrib, minlength=W.size).reshape(W.shape))
        return out

    def hessian_entries(self, entries) -> np.ndarray:
        r""":math:`\sum \Omega^{(l,l')}` over the circuits through both weights of each entry
        ``(l, p, l', q)`` (``p``, ``q`` flat indices into the layers' weight tensors, ``l ≠ l'``):
        entries of the Hessian of ``f``. Within-layer entries are 0 (no circuit has two weights
        of a layer)."""
        e = np.asarray(entries, dtype=np.int64).reshape(-1, 4)
        D = self.depth
        A, B = self._forward_sums(), self._backward_sums()
        out = np.zeros(e.shape[0])
        for k, (l1, p, l2, q) in enumerate(e.tolist()):
            if not (1 <= l1 <= D and 1 <= l2 <= D):
                raise ConfigError(f"layers must be in [1, {D}], got {l1}, {l2}")
            if l1 == l2:
                continue
            if l1 > l2:
                l1, p, l2, q = l2, q, l1, p
            t1, t2 = l1 - 1, l2 - 1
            tr = self.transitions[t1]
            m = tr.param == p
            s = np.bincount(
                tr.dst[m],
                weights=A[t1][tr.src[m]] * tr.select[m],
                minlength=self.level_sizes[t1 + 1],
            )
            s *= self.unit_factor[t1 + 1]
            for t in range(t1 + 1, t2):  # carry the sums up to level t2
                tr = self.transitions[t]
                w = s[tr.src] * tr.weight * tr.select
                s = np.bincount(tr.dst, weights=w, minlength=self.level_sizes[t + 1])
                s = s * self.unit_factor[t + 1]
            tr = self.transitions[t2]
            m = tr.param == q
            dst = tr.dst[m]
            out[k] = float(
                np.sum(s[tr.src[m]] * tr.select[m] * self.unit_factor[t2 + 1][dst] * B[t2 + 1][dst])
            )
        return out

    # -- sums over every circuit, by listing them -----------------------------------------------

    def enumerate(self, *, limit: int = MAX_ENUMERATED_CONV_CIRCUITS):
        """Every circuit with its value: ``(paths (N, D), values (N,))``.

        Raises:
            EnumerationLimitError: when ``count`` exceeds ``limit``.
        """
        p = self.all_paths(limit=limit)
        return p, self.values(p)
