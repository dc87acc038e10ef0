r"""Data-parallel Hessian-vector products: each process its shard of the examples, all-reduced.

The risk is a weighted sum over examples (:mod:`~umwelt.nn.hessian.model`),

.. math::
    R = \sum_{r=0}^{W-1} \sum_{i \in S_r} w_i\,\ell_i, \qquad w_i = \frac{1}{n}, \qquad
    Hv = \sum_r \Big(\sum_{i \in S_r} w_i \nabla^2\ell_i\Big) v,

so :class:`DistributedModelHessian` — one per process of a ``torch.distributed`` group (e.g.
under ``torchrun``) — holds the contiguous shard :math:`S_r` of the ``n`` examples (the first
``n mod W`` ranks one example more), weights each of its examples by :math:`1/n` (the *global*
count), computes its partial product exactly as :class:`~umwelt.nn.hessian.ModelHessian` does,
and sums the partial products over the ranks with one ``all_reduce`` per product (or per block
of vectors). Every rank then holds :math:`Hv`; the single-process product up to the order of the
floating-point additions.

* **The same Hessian.** The fixed gate sample of example :math:`i` is seeded by its index in the
  full data set (``(gate_seed, i)``), so a shard draws exactly the gates the single-process
  operator draws for those examples.
* **Identical control flow.** Lanczos, SLQ, ``eigsh`` and the checks branch on the products;
  they run on every rank on bitwise identical all-reduced vectors (every rank receives the same
  reduced buffer), so every rank takes the same steps and the collectives stay matched. Start
  vectors are seeded, hence equal on all ranks.
* **Reduced as well**: :meth:`~DistributedModelHessian.risk`,
  :meth:`~DistributedModelHessian.gradient`. *Not* reduced: :meth:`outputs`,
  :meth:`per_example_hvp`, :meth:`per_example_entries` and :meth:`batches`, which are about
  this rank's examples (:attr:`~DistributedModelHessian.shard` says which);
  :meth:`~DistributedModelHessian.all_reduce` sums any per-shard quantity (e.g.
  ``example_weights @ C`` of sampled entries, or a bootstrap :math:`(m^{(b)}/n)\,C` with the
  shard's columns of the counts).
* **Failure on one rank.** A product is checked after the reduction, so a NaN on any rank makes
  every rank raise the same :class:`~umwelt.errors.NonFiniteError`. Per-example products are
  local: use :meth:`~DistributedModelHessian.any_failed` to agree before the next collective.

Without an initialized process group (or with one process) the operator is a plain
:class:`~umwelt.nn.hessian.ModelHessian` on all examples. The module uses ``torch.distributed``
directly; it knows nothing of the drivers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from umwelt.errors import ConfigError
from umwelt.nn.hessian.model import ModelHessian
from umwelt.nn.losses import LossFn
from umwelt.nn.parallel import rank_and_size, shard_bounds

__all__ = ["DistributedModelHessian"]


class DistributedModelHessian(ModelHessian):
    r"""The Hessian of a model's risk with the examples sharded over a process group.

    Args:
        model: as for :class:`~umwelt.nn.hessian.ModelHessian` (identical on every rank).
        X: inputs ``(n_all, ...)``, the same on every rank (only the shard is kept).
        y: labels ``(n_all,)`` in ``{-1, +1}``.
        indices: the examples of the risk (a fixed subset of ``X``; default all), the same
            on every rank; this rank keeps its contiguous shard of them.
        group: the ``torch.distributed`` process group (default: the world).
        **kwargs: ``loss``, ``batch_size``, ``gate_seed``, ``column_chunk``, ``ad``,
            ``cache_bytes``, ``context`` — as for :class:`~umwelt.nn.hessian.ModelHessian`
            (``batch_size`` applies within the shard).

    Raises:
        ConfigError: fewer examples than processes, ``example_weights`` or ``gate_masks`` given
            (the weights are :math:`1/n` by construction; a gate sample is drawn per example),
            and everything :class:`~umwelt.nn.hessian.ModelHessian` refuses.
    """

    def __init__(
        self,
        model: nn.Module,
        X: torch.Tensor,
        y: torch.Tensor,
        *,
        indices: Sequence[int] | torch.Tensor | np.ndarray | None = None,
        group=None,
        loss: str | LossFn = "hinge",
        **kwargs,
    ):
        for key in ("example_weights", "gate_masks"):
            if key in kwargs:
                raise ConfigError(f"{key} cannot be given to a DistributedModelHessian")
        self._group = group
        self._local = False  # inside _matmat: products of this shard only
        self._rank, self._size = rank_and_size(group)
        if not isinstance(X, torch.Tensor):
            raise ConfigError("X must be a torch tensor")
        if indices is None:
            ids = torch.arange(X.shape[0])
        else:
            ids = torch.as_tensor(np.asarray(indices)).reshape(-1)
            if ids.dtype not in (torch.int32, torch.int64):
                raise ConfigError(f"indices must be integers, got dtype {ids.dtype}")
        n_total = int(ids.numel())
        if n_total < self._size:
            raise ConfigError(
                f"{n_total} examples cannot be shared by {self._size} processes (each needs one)"
            )
        a, b = shard_bounds(n_total, self._rank, self._size)
        self._n_total = n_total
        self._shard = slice(a, b)
        super().__init__(
            model,
            X,
            y,
            loss=loss,
            indices=ids[a:b],
            example_weights=torch.full((b - a,), 1.0 / n_total, dtype=torch.float64),
            **kwargs,
        )

    # -- the layout -----------------------------------------------------------------------------

    @property
    def rank(self) -> int:
        """This process's rank in the group (0 without a group)."""
        return self._rank

    @property
    def world_size(self) -> int:
        """Number of processes sharing the examples (1 without a group)."""
        return self._size

    @property
    def distributed(self) -> bool:
        """More than one process."""
        return self._size > 1

    @property
    def n_total(self) -> int:
        """Number of examples of the risk, over all ranks (``n``)."""
        return self._n_total

    @property
    def shard(self) -> slice:
        """This rank's examples as positions ``[start, stop)`` in the full list of ``n``."""
        return self._shard

    # -- collectives ----------------------------------------------------------------------------

    def all_reduce(self, t: torch.Tensor) -> torch.Tensor:
        """Sum ``t`` over the ranks, in place (a no-op alone); returns it."""
        if self.distributed:
            import torch.distributed as dist

            dist.all_reduce(t, op=dist.ReduceOp.SUM, group=self._group)
        return t

    def any_failed(self, failed: bool) -> bool:
        """Whether any rank reports ``failed`` (a collective: every rank must call it)."""
        if not self.distributed:
            return bool(failed)
        flag = torch.tensor([1.0 if failed else 0.0], dtype=self.dtype, device=self.device)
        return bool(self.all_reduce(flag)[0] > 0)

    # -- reduced products and sums ----------------------------------------------------------------

    def _matvec(self, v: torch.Tensor) -> torch.Tensor:
        out = super()._matvec(v)  # (N,) this shard's share
        return out if self._local else self.all_reduce(out)

    def _matmat(self, V: torch.Tensor) -> torch.Tensor:
        # the parent may fall back to a loop of _matvec: those shares are summed once, here
        self._local = True
        try:
            out = super()._matmat(V)  # (N, k) this shard's share
        finally:
            self._local = False
        return self.all_reduce(out)

    @torch.no_grad()
    def risk(self) -> float:
        r""":math:`R = \sum_i w_i \ell_i` over all ranks' examples."""
        t = torch.tensor([self._local_risk()], dtype=torch.float64, device=self.device)
        return float(self.all_reduce(t)[0])

    def gradient(self) -> torch.Tensor:
        r""":math:`\nabla R`, ``(N,)``, summed over the ranks."""
        return self.all_reduce(super().gradient())

    def _local_risk(self) -> float:
        return super().risk()

    # an error path may run on one rank only: the message quotes this rank's share, no collective
    _hint_risk_label = "this rank's share of the risk"

    def _hint_risk(self) -> float:
        return self._local_risk()
