r"""How :class:`~umwelt.nn.hessian.model.ModelHessian` takes its products: one strategy per mode.

The ``ad`` modes of :class:`~umwelt.nn.hessian.model.ModelHessian` give the same :math:`Hv`
to round-off at different costs: ``"fwd-over-rev"`` (``torch.func.jvp`` of
``torch.func.grad``, as curvlinops; any model), ``"rev-over-fwd"`` (``torch.func.grad`` of the
``jvp`` :math:`\nabla R \cdot v`) and ``"gated"`` (the forward-over-reverse product of a gated
net with fixed gates written out by hand, the primal pass kept between products:
:mod:`~umwelt.nn.hessian.gated`).

**A table of strategies.** Each ``ad`` mode but ``"auto"`` is one strategy in
``_STRATEGIES`` (as curvlinops' ``kfac.py`` picks a backend from ``_BACKENDS[backend]``): how
the products of a batch are summed into :math:`HV`, which second derivative of ``torch.func``
the per-example products take, and how the per-example entries of a set of columns
(``_EntryColumns``) are read off. ``"auto"`` chooses ``"gated"`` or ``"fwd-over-rev"`` on
construction (:attr:`~umwelt.nn.hessian.model.ModelHessian.ad`,
:attr:`~umwelt.nn.hessian.model.ModelHessian.ad_fallback`). A strategy's methods take the
operator ``op``, a :class:`~umwelt.nn.hessian.model.ModelHessian` (annotated by its base class
here: :mod:`~umwelt.nn.hessian.model` imports this module).

:func:`load_forward_ad` loads torch's forward-mode decompositions once, before the first
``jvp``, without torch's own deprecation warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import torch
from torch.func import grad, jvp, vmap

from umwelt.nn.hessian.base import HessianOperator

__all__ = ["AD_MODES", "load_forward_ad"]


def load_forward_ad() -> None:
    """Import torch's forward-mode decompositions now, without its own deprecation warning.

    The first ``torch.func.jvp`` imports ``torch._decomp.decompositions_for_jvp``, which calls
    the deprecated ``torch.jit.script`` inside torch (2.9+) and warns; that warning is torch's,
    not the caller's, so it is silenced here, once, for that import only.
    """
    load = getattr(torch.autograd.forward_ad, "_maybe_load_decompositions", None)
    if load is not None:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore",
                message=r".*torch\.jit\.script.* is deprecated",
                category=DeprecationWarning,
            )
            load()


# -- how products are taken: one strategy per ``ad`` mode ----------------------------------------


class _FwdOverRev:
    """``ad="fwd-over-rev"``: ``torch.func.jvp`` of ``torch.func.grad`` (as curvlinops, any
    model), batch by batch; :meth:`matmat` pushes ``column_chunk`` vectors through one
    ``torch.func.vmap``."""

    @staticmethod
    def second(
        risk: Callable[[dict[str, torch.Tensor]], torch.Tensor],
        params: dict[str, torch.Tensor],
        t: dict[str, torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        r""":math:`\nabla^2 r\, t` of ``risk(params)``, by name: the ``jvp`` of ``grad``."""
        return jvp(grad(risk), (params,), (t,))[1]

    def matvec(self, op: HessianOperator, v: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(v)
        for b in op.batches():
            out += op._hvp(lambda p, b=b: op.batch_risk(p, b), v)  # (N,)
        return out

    def example_entries(self, op: HessianOperator, E: _EntryColumns) -> torch.Tensor:
        """Per-example entries by :meth:`ModelHessian.per_example_hvp` of the unit vectors of
        a chunk of columns at a time (``torch.func.vmap`` over examples and columns), read
        off: ``(n_examples, K)``."""
        dev = op.device
        out = torch.zeros(op.n_examples, len(E.rows), dtype=op.dtype, device=dev)
        for s, e in E.chunks:
            U = torch.zeros((op.n, e - s), dtype=op.dtype, device=dev)  # unit vectors e_k
            U[torch.as_tensor(E.cols[s:e], device=dev), torch.arange(e - s, device=dev)] = 1.0
            which = E.entries(s, e)
            slot = torch.as_tensor(E.slot[which] - s, device=dev)
            row = torch.as_tensor(E.rows[which], device=dev)
            which = torch.as_tensor(which, device=dev)
            for sl, P in op.per_example_hvp(U, example_chunk=E.example_chunk):  # (B, c, N)
                out[sl, which] = P[:, slot, row]
            E.done(e - s)
        return out

    def matmat(self, op: HessianOperator, V: torch.Tensor) -> torch.Tensor:
        if op.column_chunk == 1 or V.shape[1] == 1:
            return HessianOperator._matmat(op, V)  # column by column, through op._matvec
        out = torch.zeros_like(V)  # (N, k)
        for b in op.batches():
            many = vmap(lambda t, b=b: op._hvp(lambda p: op.batch_risk(p, b), t))
            for s in range(0, V.shape[1], op.column_chunk):
                cols = V[:, s : s + op.column_chunk]  # (N, c)
                out[:, s : s + cols.shape[1]] += many(cols.T.contiguous()).T
        return out


class _RevOverFwd(_FwdOverRev):
    r"""``ad="rev-over-fwd"``: ``torch.func.grad`` of the ``jvp`` :math:`\nabla R \cdot v`."""

    @staticmethod
    def second(
        risk: Callable[[dict[str, torch.Tensor]], torch.Tensor],
        params: dict[str, torch.Tensor],
        t: dict[str, torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        r""":math:`\nabla^2 r\, t` by name: ``grad`` of the directional derivative
        :math:`p \mapsto \nabla r(p) \cdot t`."""
        return grad(lambda p: jvp(risk, (p,), (t,))[1])(params)


class _Gated(_FwdOverRev):
    """``ad="gated"``: the fixed-gate products by hand (:mod:`~umwelt.nn.hessian.gated`, the
    operator's ``_gated``): each batch's primal pass once, then the columns in blocks of
    :meth:`~umwelt.nn.hessian.gated.GatedProducts.columns`, each block one tangent and one
    adjoint pass. Per-example entries (:meth:`example_entries`) take the same passes for the
    unit vectors of their columns, reading each example's rows off the weight-gradient terms;
    per-example products of other vectors stay forward-over-reverse."""

    def matvec(self, op: HessianOperator, v: torch.Tensor) -> torch.Tensor:
        return self.matmat(op, v[:, None])[:, 0]

    def matmat(self, op: HessianOperator, V: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(V)  # (N, k)
        for b in op.batches():
            primal = op._gated.primal(op._params, b)
            block = op._gated.product_columns(primal)
            for s in range(0, V.shape[1], block):
                cols = V[:, s : s + block].T  # (c, N), a view: unflatten copies each part
                hv = op._gated.product(primal, op._params, op.unflatten(cols))
                out[:, s : s + cols.shape[0]] += op.flatten(hv).T
        return out

    def example_entries(self, op: HessianOperator, E: _EntryColumns) -> torch.Tensor:
        """Per-example entries by :meth:`~umwelt.nn.hessian.gated.GatedProducts.example_entries`,
        batch by batch on its unweighted primal pass (computed once, for every chunk of
        columns), each chunk of columns (one parameter tensor) in blocks of
        :meth:`~umwelt.nn.hessian.gated.GatedProducts.columns` unit vectors; the examples in
        chunks of :meth:`~umwelt.nn.hessian.gated.GatedProducts.chunk_examples` (not
        ``example_chunk``). ``(n_examples, K)``."""
        dev = op.device
        offsets, names = op.param_offsets, op.param_names
        row_tensor = op.layer_of(E.rows)
        out = torch.zeros(op.n_examples, len(E.rows), dtype=op.dtype, device=dev)
        for b in op.batches():
            primal = op._gated.primal(op._params, b, weighted=False)
            block = op._gated.columns(primal)
            for s0, e0 in E.chunks:
                t = int(op.layer_of(E.cols[s0 : s0 + 1])[0])
                for s in range(s0, e0, block):
                    e = min(s + block, e0)
                    columns = (names[t], torch.as_tensor(E.cols[s:e] - offsets[t], device=dev))
                    which = E.entries(s, e)
                    rows, where = {}, {}
                    for r in np.unique(row_tensor[which]):
                        w = which[row_tensor[which] == r]
                        slot = torch.as_tensor(E.slot[w] - s, device=dev)
                        rows[names[r]] = (slot, torch.as_tensor(E.rows[w] - offsets[r], device=dev))
                        where[names[r]] = torch.as_tensor(w, device=dev)
                    vals = op._gated.example_entries(primal, op._params, columns, rows)
                    for name, w in where.items():
                        out[b.index, w] = vals[name]
                E.done(e0 - s0)
            op._check_product(out[b.index])
        return out


class _EntryColumns:
    """The entries of :meth:`ModelHessian.per_example_entries` by column: ``rows`` ``(K,)``,
    the distinct columns ``cols`` (sorted), each entry's column ``slot`` in them, the
    ``chunks`` ``(start, stop)`` of the columns (at most ``column_chunk``, in one parameter
    tensor each), and the progress: :meth:`done` counts columns against ``total``."""

    def __init__(self, op, rows, cols, column_chunk, example_chunk, progress, passes):
        self.rows = rows
        self.cols, self.slot = np.unique(cols, return_inverse=True)
        self.example_chunk = example_chunk
        tensor = op.layer_of(self.cols)
        starts, first = [], 0  # the chunks' first columns; the first column of their tensor
        for s in range(len(self.cols)):
            if s == 0 or tensor[s] != tensor[s - 1]:
                first = s
            if (s - first) % column_chunk == 0:
                starts.append(s)
        self.chunks = list(zip(starts, [*starts[1:], len(self.cols)][: len(starts)]))
        self._progress, self._done, self.total = progress, 0, len(self.cols) * passes

    def entries(self, start: int, stop: int) -> np.ndarray:
        """The entries whose column is one of ``cols[start:stop]``."""
        return np.nonzero((self.slot >= start) & (self.slot < stop))[0]

    def done(self, columns: int) -> None:
        self._done += columns
        if self._progress is not None:
            self._progress(self._done, self.total)


#: the strategy of each ``ad`` mode but ``"auto"``, which chooses one of them
_STRATEGIES: dict[str, _FwdOverRev] = {
    "gated": _Gated(),
    "fwd-over-rev": _FwdOverRev(),
    "rev-over-fwd": _RevOverFwd(),
}
AD_MODES: tuple[str, ...] = ("auto", *_STRATEGIES)
