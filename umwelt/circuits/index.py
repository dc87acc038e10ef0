r"""Mixed-radix numbering of the basis circuits of a complete layered net (THEORY.md §3).

A circuit of a net with widths ``(n_0, ..., n_L)`` is a tuple of digits
``i = (i_0, ..., i_{L-1})``, ``i_l ∈ [0, n_l)``: one unit per layer below the output. In a
complete layered net every such tuple is a path, so circuits are numbered in mixed radix with
the **input digit** ``i_0`` **most significant** and the last hidden digit least significant
(C order, as :func:`numpy.ravel_multi_index` and :func:`itertools.product`):

.. math::
    \mathrm{index}(i) = \sum_{k=0}^{L-1} i_k \prod_{j > k} n_j,
    \qquad 0 \le \mathrm{index} < N = \prod_{l < L} n_l .

A :class:`PathIndex` may also pin some digits (:meth:`PathIndex.through` pins the two digits
a weight ``W^l_{ab}`` connects); it then numbers only the circuits through those units, in the
same order, by the free digits alone. Uniform sampling of circuits is uniform sampling of
the index, which is the same as drawing each free digit uniformly and independently: this is
how :meth:`PathIndex.sample_paths` draws, so counts beyond :math:`2^{63}` need no big random
integers. Indices are int64 arrays while ``N ≤ 2^63`` and object arrays of Python ints beyond.

>>> idx = PathIndex((2, 3, 4))
>>> idx.count, idx.index((1, 2, 3)), idx.path(23)
(24, 23, (1, 2, 3))
>>> idx.through((2, 1, 3)).count  # W^2_{13} pins digits 1 and 2: free digit 0
2
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from umwelt.errors import ConfigError, EnumerationLimitError, ShapeError
from umwelt.network import LayeredNetwork, parse_widths

__all__ = ["INT64_COUNT_LIMIT", "PathIndex"]

INT64_COUNT_LIMIT: int = 2**63
"""Counts up to this have every index in int64; beyond, indices are Python ints."""

_MAX_ALL_PATHS = 2**24  # rows of PathIndex.all_paths() by default (L int64 each)


def _as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, int | np.integer) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise ConfigError(f"rng must be a numpy Generator or an integer seed, got {rng!r}")


def _check_count(n: int, what: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ConfigError(f"{what} must be an integer ≥ 0, got {n!r}")
    return int(n)


def _is_int(v) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


class PathIndex:
    r"""Mixed-radix numbering of circuits ``(i_0, ..., i_{L-1})``, ``i_0`` most significant.

    Args:
        radices: ``(n_0, ..., n_{L-1})``, the widths below the output.
        fixed: digits pinned to a value, ``{digit k: value}``; only circuits with those digits
            are numbered (by their free digits, in the same order).

    Raises:
        ConfigError: for a non-positive radix, or a pinned digit or value out of range.

    Attributes:
        radices: the radices, a tuple of ints.
        fixed: the pinned digits, a dict.
        free: the free digits, ascending.
    """

    def __init__(self, radices: Sequence[int], fixed: Mapping[int, int] | None = None):
        self.radices: tuple[int, ...] = parse_widths(radices, what="radices")
        L = len(self.radices)
        self.fixed: dict[int, int] = {}
        self._empty = False
        for k, v in (fixed or {}).items():
            if not _is_int(k) or not 0 <= k < L:
                raise ConfigError(f"a pinned digit must be in [0, {L}), got {k!r}")
            if not _is_int(v) or not 0 <= v < self.radices[k]:
                raise ConfigError(
                    f"digit {k} must be pinned to a value in [0, {self.radices[k]}), got {v!r}"
                )
            self.fixed[int(k)] = int(v)
        self.free: tuple[int, ...] = tuple(k for k in range(L) if k not in self.fixed)

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def from_network(cls, net: LayeredNetwork) -> PathIndex:
        """The index of all circuits of ``net``: radices ``net.widths[:-1]``."""
        return cls(net.widths[:-1])

    @classmethod
    def from_widths(cls, widths: Sequence[int] | str) -> PathIndex:
        """The index of all circuits of a net with widths ``(n_0, ..., n_L)`` (``n_L = 1``)."""
        ws = parse_widths(widths)
        if len(ws) < 2 or ws[-1] != 1:
            raise ConfigError(f"widths must be (n_0, ..., n_L) with n_L = 1, got {widths!r}")
        return cls(ws[:-1])

    def weight_digits(self, layer: int, a: int, b: int) -> dict[int, int]:
        r"""The digits a weight pins: ``W^l_{ab}`` joins digit ``l-1 = a`` to digit ``l = b``
        (``l < L``); the output weight ``W^L_{a0}`` pins digit ``L-1 = a`` (``b`` must be 0).

        Raises:
            ConfigError: naming the layer or the unit out of range.
        """
        L = self.depth
        if not _is_int(layer) or not 1 <= layer <= L:
            raise ConfigError(f"weight layer must be in [1, {L}], got {layer!r}")
        n_in = self.radices[layer - 1]
        n_out = self.radices[layer] if layer < L else 1
        if not _is_int(a) or not 0 <= a < n_in:
            raise ConfigError(f"W^{layer} has rows [0, {n_in}), got a = {a!r}")
        if not _is_int(b) or not 0 <= b < n_out:
            raise ConfigError(f"W^{layer} has columns [0, {n_out}), got b = {b!r}")
        if layer < L:
            return {layer - 1: int(a), layer: int(b)}
        return {L - 1: int(a)}

    def through(self, *weights: tuple[int, int, int]) -> PathIndex:
        r"""The circuits of this index that pass through every given weight ``(l, a, b)``.

        Weights of one layer are never on one circuit together, nor are adjacent-layer weights
        that disagree on the unit they share: then the result is empty (``count == 0``).

        >>> PathIndex((3, 4, 2)).through((1, 0, 2), (3, 1, 0)).count  # digits 0, 1, 2 pinned
        1
        >>> PathIndex((3, 4, 2)).through((2, 1, 0), (2, 1, 1)).count
        0
        """
        fixed = dict(self.fixed)
        empty = self._empty
        for w in weights:
            if not isinstance(w, tuple | list) or len(w) != 3:
                raise ConfigError(f"a weight is (layer, a, b), got {w!r}")
            for k, v in self.weight_digits(*w).items():
                if fixed.get(k, v) != v:
                    empty = True
                fixed[k] = v
        out = PathIndex(self.radices, fixed)
        out._empty = empty
        return out

    # -- size -----------------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Number of digits ``L`` (the net's number of weight layers)."""
        return len(self.radices)

    @property
    def count(self) -> int:
        """Number of circuits numbered, a Python int (0 when pinned weights exclude each other)."""
        if self._empty:
            return 0
        return math.prod(self.radices[k] for k in self.free)

    @property
    def fits_int64(self) -> bool:
        """Whether every index fits in int64 (``count ≤ 2^63``)."""
        return self.count <= INT64_COUNT_LIMIT

    def __repr__(self) -> str:
        pinned = f", fixed={self.fixed}" if self.fixed else ""
        return f"PathIndex({self.radices}{pinned}, count={self.count})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PathIndex):
            return NotImplemented
        return (self.radices, self.fixed, self._empty) == (other.radices, other.fixed, other._empty)

    def __hash__(self) -> int:
        return hash((self.radices, tuple(sorted(self.fixed.items())), self._empty))

    # -- index <-> path -------------------------------------------------------------------------

    def _check_paths(self, paths) -> np.ndarray:
        p = np.asarray(paths)
        if p.ndim != 2 or p.shape[1] != self.depth:
            raise ShapeError(f"paths must have shape (n, {self.depth}), got {p.shape}")
        if p.size and not np.issubdtype(p.dtype, np.integer):
            raise ConfigError(f"paths must hold integers, got dtype {p.dtype}")
        p = p.astype(np.int64)
        for k, r in enumerate(self.radices):
            bad = (p[:, k] < 0) | (p[:, k] >= r)
            if bad.any():
                s = int(np.flatnonzero(bad)[0])
                raise ConfigError(
                    f"path {s} has digit {k} = {int(p[s, k])}, outside [0, {r}): {p[s].tolist()}"
                )
        for k, v in self.fixed.items():
            bad = p[:, k] != v
            if bad.any():
                s = int(np.flatnonzero(bad)[0])
                raise ConfigError(
                    f"path {s} = {p[s].tolist()} has digit {k} = {int(p[s, k])}, but this index "
                    f"pins it to {v}"
                )
        return p

    def _check_indices(self, indices) -> np.ndarray:
        idx = np.asarray(indices)
        if idx.ndim != 1:
            raise ShapeError(f"circuit indices must be 1-D, got shape {idx.shape}")
        if idx.dtype == object or (idx.size and not self.fits_int64):
            for v in idx:
                if not _is_int(v):
                    raise ConfigError(f"circuit indices must be integers, got {v!r}")
            idx = np.array([int(v) for v in idx], dtype=object)
        elif idx.size and not np.issubdtype(idx.dtype, np.integer):
            raise ConfigError(f"circuit indices must be integers, got dtype {idx.dtype}")
        n = self.count
        if idx.size:
            bad = (idx < 0) | (idx >= n)
            if np.any(bad):
                v = idx[np.flatnonzero(bad)[0]]
                raise ConfigError(f"circuit index {v} is out of range [0, {n})")
        return idx.astype(np.int64) if self.fits_int64 else idx

    def index(self, path: Sequence[int]) -> int:
        """The index of one circuit ``(i_0, ..., i_{L-1})``, a Python int.

        Raises:
            ConfigError: for a digit out of range, or one that differs from a pinned value.
            ShapeError: for a path of the wrong length.
        """
        p = self._check_paths(np.asarray(path)[None, :] if np.ndim(path) == 1 else path)
        if p.shape[0] != 1:
            raise ShapeError(f"expected one path of length {self.depth}, got shape {p.shape}")
        out = 0
        for k in self.free:
            out = out * self.radices[k] + int(p[0, k])
        return out

    def indices(self, paths) -> np.ndarray:
        """The indices of paths ``(n, L)``: int64, or Python ints (object) beyond ``2^63``."""
        p = self._check_paths(paths)
        if self.fits_int64:
            out = np.zeros(p.shape[0], dtype=np.int64)
            for k in self.free:
                out = out * self.radices[k] + p[:, k]
            return out
        out = np.zeros(p.shape[0], dtype=object)
        for k in self.free:
            out = out * self.radices[k] + p[:, k].astype(object)
        return out

    def path(self, index: int) -> tuple[int, ...]:
        """The circuit ``(i_0, ..., i_{L-1})`` of one index.

        Raises:
            ConfigError: for an index outside ``[0, count)``.
        """
        if not _is_int(index):
            raise ConfigError(f"a circuit index must be an integer, got {index!r}")
        n = self.count
        if not 0 <= index < n:
            raise ConfigError(f"circuit index {index} is out of range [0, {n})")
        out = [0] * self.depth
        for k, v in self.fixed.items():
            out[k] = v
        rem = int(index)
        for k in reversed(self.free):
            rem, out[k] = divmod(rem, self.radices[k])
        return tuple(out)

    def paths(self, indices) -> np.ndarray:
        """The circuits of indices (1-D, ints or Python ints), as int64 digits ``(n, L)``.

        Raises:
            ConfigError: for an index outside ``[0, count)``.
        """
        idx = self._check_indices(indices)
        out = np.zeros((idx.size, self.depth), dtype=np.int64)
        for k, v in self.fixed.items():
            out[:, k] = v
        rem = idx.copy()
        for k in reversed(self.free):
            r = self.radices[k]
            out[:, k] = (rem % r).astype(np.int64)
            rem = rem // r
        return out

    def all_paths(self, *, limit: int = _MAX_ALL_PATHS) -> np.ndarray:
        """Every circuit as ``(count, L)`` int64 digits, in index order.

        Raises:
            EnumerationLimitError: when ``count`` exceeds ``limit``.
        """
        n = self.count
        if n > limit:
            raise EnumerationLimitError(
                f"listing all {n} circuits is over the limit of {limit} paths"
            )
        out = np.zeros((n, self.depth), dtype=np.int64)
        if n == 0:
            return out
        for k, v in self.fixed.items():
            out[:, k] = v
        if self.free:
            grids = np.indices(tuple(self.radices[k] for k in self.free))
            for j, k in enumerate(self.free):
                out[:, k] = grids[j].ravel()
        return out

    # -- uniform sampling -----------------------------------------------------------------------

    def sample_paths(
        self, n: int, rng: np.random.Generator | int | None = None, *, replace: bool = True
    ) -> np.ndarray:
        """``n`` circuits drawn uniformly, as int64 digits ``(n, L)``.

        With replacement every free digit is drawn uniformly and independently. Without, draws
        are repeated and only first occurrences kept (sequential sampling without replacement,
        so the order is random too); when ``n`` is at least a quarter of the count, a random
        permutation of all circuits is cut instead. Memory is ``O(n)`` either way: the range
        is never materialized.

        Args:
            n: number of circuits.
            rng: a numpy Generator (used as is) or a seed.
            replace: sample with replacement (default) or without.

        Raises:
            ConfigError: for ``n > count`` without replacement, or ``n > 0`` from an empty
                index.
        """
        n = _check_count(n)
        rng = _as_rng(rng)
        N = self.count
        if n > 0 and N == 0:
            raise ConfigError(f"cannot sample from an empty set of circuits ({self!r})")
        if not replace and n > N:
            raise ConfigError(f"cannot draw {n} distinct circuits out of {N} without replacement")
        if not replace and 4 * n >= N:
            return self.paths(rng.permutation(N)[:n])

        def draw(m: int) -> np.ndarray:
            out = np.zeros((m, self.depth), dtype=np.int64)
            for k, v in self.fixed.items():
                out[:, k] = v
            for k in self.free:
                out[:, k] = rng.integers(0, self.radices[k], size=m)
            return out

        if replace:
            return draw(n)
        got = np.zeros((0, self.depth), dtype=np.int64)
        while got.shape[0] < n:
            more = draw(int(1.1 * (n - got.shape[0])) + 16)
            allp = np.concatenate([got, more])
            _, first = np.unique(allp, axis=0, return_index=True)
            got = allp[np.sort(first)][:n]
        return got

    def sample(
        self, n: int, rng: np.random.Generator | int | None = None, *, replace: bool = True
    ) -> np.ndarray:
        """``n`` circuit indices drawn uniformly (see :meth:`sample_paths`).

        Returns:
            int64 array ``(n,)``, or an object array of Python ints when ``count > 2^63``.
        """
        return self.indices(self.sample_paths(n, rng, replace=replace))
