r"""Which Hessian entries a basis circuit joins, and samples of them fixed for a whole run.

With the gates held fixed, :math:`\partial^2 f/\partial\theta_j\partial\theta_k` is a sum over
the basis circuits through both weights (THEORY.md §3): it vanishes identically unless some
input-to-output path runs through both. In a chain of weight layers :math:`W_1, \dots, W_L`
(:class:`~umwelt.nn.mlp.GatedMLP`, :class:`~umwelt.nn.vgg.GatedVGG`; a weight
:math:`W_l[o, i, \dots]` joins input unit (channel) :math:`i` to output unit :math:`o`):

* two weights of one layer are never on one circuit (one weight per layer);
* two weights of **adjacent** layers :math:`l, l + 1` are joined exactly when the output unit of
  the first is the input unit of the second (a flattening between them maps an input feature
  to its channel): :math:`1/n_l` of those pairs;
* two weights **further apart** are always joined (the layers between connect every unit to
  every unit; a convolution's kernel offsets that only ever meet padding give entries that are
  zero at every epoch, which the statistics leave out as degenerate).

That is the circuit part of :math:`H`, all of it for the hinge loss. A loss with curvature
(:math:`\ell'' \ne 0`: logistic, quadratic hinge) adds the Gauss–Newton part
:math:`\ell''\,\nabla f \nabla f^\top`, non-zero for every pair: there every cross-layer
pair is admissible (``gauss_newton=True``).

So the pairs a circuit joins are known from the shapes alone, before any product, and a sample
of them can be drawn once per run and followed through training (the paper's fig. 6a):
:func:`circuit_entries` draws ``K`` of them confined to ``n_columns`` columns (the cost: one
pass of per-example products per distinct column) and, for the correlation sub-matrix of
figs. 6b,c, ``uniform`` more uniformly among all joined pairs (entries confined to a few
columns share weights and correlate more than random entries).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from umwelt._checks import check_int
from umwelt.errors import ConfigError

__all__ = ["CircuitLayout", "circuit_entries", "circuit_layout"]


@dataclass(frozen=True, eq=False)
class CircuitLayout:
    """The units of every coordinate of a chain of weight layers.

    Attributes:
        offsets: ``(L + 1,)`` start of each layer's coordinates (the last: ``N``).
        shapes: each layer's weight shape ``(n_out, n_in, ...)``.
        links: per layer ``l ≥ 1``, how many of its input features make one output unit of
            layer ``l - 1`` (1 without a flattening; ``h·w`` after one).
        gauss_newton: every cross-layer pair counts as joined (a loss with curvature).
    """

    offsets: np.ndarray
    shapes: tuple[tuple[int, ...], ...]
    links: tuple[int, ...]
    gauss_newton: bool = False

    @property
    def n(self) -> int:
        """:math:`N`."""
        return int(self.offsets[-1])

    def layer(self, idx: np.ndarray) -> np.ndarray:
        """The layer of each coordinate."""
        return np.searchsorted(self.offsets, idx, side="right") - 1

    def units(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(layer, out unit, in unit)`` of each coordinate; the in unit is that of the layer
        before (a flattened feature as its channel)."""
        idx = np.asarray(idx, dtype=np.int64)
        lay = self.layer(idx)
        out = np.empty_like(idx)
        inp = np.empty_like(idx)
        for l, shape in enumerate(self.shapes):
            sel = lay == l
            if not sel.any():
                continue
            local = idx[sel] - self.offsets[l]
            inner = int(np.prod(shape[2:], dtype=np.int64))
            out[sel] = local // (shape[1] * inner)
            feature = (local // inner) % shape[1]
            inp[sel] = feature // (self.links[l] if l > 0 else 1)
        return lay, out, inp

    def joined(self, j: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Whether some basis circuit runs through both coordinates of each pair."""
        lj, oj, ij = self.units(j)
        lk, ok, ik = self.units(k)
        if self.gauss_newton:
            return lj != lk
        far = np.abs(lj - lk) >= 2
        up = (lk == lj + 1) & (oj == ik)  # j's output unit feeds k
        down = (lj == lk + 1) & (ok == ij)
        return far | up | down

    def rows_joined_to(self, col: int) -> np.ndarray:
        """The coordinates joined to coordinate ``col`` (ascending)."""
        lc, oc, ic = (int(a[0]) for a in self.units(np.array([col])))
        parts = []
        for l in range(len(self.shapes)):
            lo, hi = int(self.offsets[l]), int(self.offsets[l + 1])
            if abs(l - lc) >= 2 or (self.gauss_newton and l != lc):
                parts.append(np.arange(lo, hi))
            elif l == lc + 1 or l == lc - 1:
                idx = np.arange(lo, hi)
                _, o, i = self.units(idx)
                parts.append(idx[(i == oc) if l == lc + 1 else (o == ic)])
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def population(self) -> int:
        """The number of unordered pairs a circuit joins."""
        sizes = np.diff(self.offsets)
        total = 0
        for a in range(len(sizes)):
            for b in range(a + 1, len(sizes)):
                adjacent = b == a + 1 and not self.gauss_newton
                total += int(sizes[a] * sizes[b]) // (self.shapes[a][0] if adjacent else 1)
        return total


def circuit_layout(
    shapes: Sequence[Sequence[int]], *, gauss_newton: bool = False
) -> CircuitLayout | None:
    """The layout of weight layers of these shapes (input first), or ``None`` when they are
    not a chain (a layer's inputs neither its predecessor's outputs nor a flattening of them:
    e.g. a parameter that is not a weight matrix or kernel). ``gauss_newton``: a loss with
    curvature, every cross-layer pair joined."""
    shapes = tuple(tuple(int(d) for d in s) for s in shapes)
    if not shapes or any(len(s) < 2 for s in shapes):
        return None
    links = [1]
    for prev, cur in zip(shapes, shapes[1:]):
        if cur[1] % prev[0]:
            return None
        links.append(cur[1] // prev[0])
    sizes = [int(np.prod(s, dtype=np.int64)) for s in shapes]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return CircuitLayout(offsets, shapes, tuple(links), gauss_newton)


def circuit_entries(
    layout: CircuitLayout, K: int, n_columns: int, *, uniform: int = 0, seed: int
) -> tuple[tuple[np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray, int]]:
    """``K`` pairs a circuit joins in ``n_columns`` random columns, and ``uniform`` more drawn
    uniformly among all joined pairs, distinct from them.

    The columns are those of :func:`~umwelt.nn.hessian.nonzero_entries` at the same seed; the
    pairs depend on the shapes and the seed only, so every epoch of a run gets the same.

    Returns:
        ``((rows, cols, population), (rows, cols, population))``: the column-confined pairs,
        sorted by column then row, with the number of joined pairs in those columns (fewer
        than ``K``: all of them), and the uniform ones with the number of joined pairs.

    ``uniform`` is cut to the joined pairs left over (a tiny net).

    Raises:
        ConfigError: for ``n_columns`` above :math:`N`.
    """
    N = layout.n
    K = check_int("the number of entries K", K, 0)
    n_columns = check_int("the entry columns", n_columns)
    uniform = check_int("the uniform entries", uniform, 0)
    if n_columns > N:
        raise ConfigError(f"{n_columns} entry columns exceed N = {N}")
    rng = np.random.default_rng(seed)
    cols = np.sort(rng.choice(N, n_columns, replace=False))
    js, ks = [], []
    for c in cols.tolist():
        j = layout.rows_joined_to(c)
        j = j[~np.isin(j, cols) | (c < j)]  # a pair of two columns: once, in the smaller
        js.append(j)
        ks.append(np.full(j.size, c, np.int64))
    j_all = np.concatenate(js) if js else np.zeros(0, np.int64)
    k_all = np.concatenate(ks) if ks else np.zeros(0, np.int64)
    take = rng.choice(j_all.size, min(K, j_all.size), replace=False) if j_all.size else []
    r, cc = j_all[take], k_all[take]
    order = np.lexsort((r, cc))
    confined = (r[order], cc[order], int(j_all.size))

    total = layout.population()
    uniform = min(uniform, total - len(r))  # a tiny net: as many as the joined pairs leave
    seen = {(min(a, b), max(a, b)) for a, b in zip(r.tolist(), cc.tolist())}
    ur: list[int] = []
    uc: list[int] = []
    while len(ur) < uniform:
        m = 4 * (uniform - len(ur)) + 16
        a, b = rng.integers(0, N, m), rng.integers(0, N, m)
        ok = layout.joined(a, b) & (a != b)
        for x, y in zip(a[ok].tolist(), b[ok].tolist()):
            key = (max(x, y), min(x, y))  # row ≥ column
            if (key[1], key[0]) in seen:
                continue
            seen.add((key[1], key[0]))
            ur.append(key[0])
            uc.append(key[1])
            if len(ur) == uniform:
                break
    u_r, u_c = np.asarray(ur, np.int64), np.asarray(uc, np.int64)
    order = np.lexsort((u_r, u_c))
    return confined, (u_r[order], u_c[order], total)
