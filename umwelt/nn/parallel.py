r"""Data parallelism over a ``torch.distributed`` process group: shards and summed reductions.

One program runs alone or as :math:`W` processes (e.g. under ``torchrun``). Every process holds
the whole data set and an identical model; the functions of :mod:`umwelt.nn.train` and
:mod:`umwelt.nn.observables` take a process ``group`` and split the *work*, never the data:

* **a global minibatch is split, not the data set**: every rank draws the same epoch order from
  the shared data-order generator, cuts the same global minibatch of :math:`B` examples and
  takes its contiguous slice (:func:`shard`; sizes differ by at most one, and a rank gets none
  when the last batch is smaller than :math:`W`);
* **gradients are summed, weighted by the global batch**: rank :math:`r` back-propagates
  :math:`\frac{b_r}{B}\,\bar\ell_r = \frac1B\sum_{i \in r}\ell_i` and :func:`all_reduce_sum`
  adds the ranks' gradients, so every rank holds :math:`\frac1B\sum_i\nabla\ell_i`, the
  single-process gradient of the global batch (up to the order of the floating-point
  additions), an unequal last batch included; every rank then takes the same optimizer step;
* **full-data measurements** (risk, accuracy, the order parameter :math:`\eta\|\nabla R\|^2`,
  gate statistics) give each rank the contiguous shard :func:`shard_bounds` of ``range(n)``
  and all-reduce sums and counts, so they equal the single-process values to rounding.

``group=None`` is the default process group. When ``torch.distributed`` is unavailable or not
initialized every function behaves as rank 0 of 1: :func:`shard` returns its input and
:func:`all_reduce_sum` does nothing, so single-process and multi-process runs share one code
path. Joining and leaving a process group is the drivers' business, not this module's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist

if TYPE_CHECKING:
    from torch.distributed import ProcessGroup

__all__ = [
    "all_gather_bytes",
    "all_gather_shards",
    "all_reduce_sum",
    "local_batches",
    "rank_and_size",
    "shard",
    "shard_bounds",
]


def rank_and_size(group: ProcessGroup | None = None) -> tuple[int, int]:
    """``(rank, size)`` of this process in ``group`` (``None``: the default group).

    ``(0, 1)`` when ``torch.distributed`` is unavailable or not initialized.

    >>> rank_and_size()
    (0, 1)
    """
    if not (dist.is_available() and dist.is_initialized()):
        return 0, 1
    return dist.get_rank(group), dist.get_world_size(group)


def shard_bounds(n: int, rank: int, size: int) -> tuple[int, int]:
    """``[start, stop)`` of rank ``rank``'s contiguous share of ``n`` items.

    The first ``n mod size`` ranks get one item more; shares may be empty.

    >>> [shard_bounds(5, r, 2) for r in range(2)]
    [(0, 3), (3, 5)]
    >>> [shard_bounds(1, r, 3) for r in range(3)]
    [(0, 1), (1, 1), (1, 1)]
    """
    q, rem = divmod(n, size)
    start = rank * q + min(rank, rem)
    return start, start + q + (rank < rem)


def shard(x, group: ProcessGroup | None = None):
    """This rank's contiguous slice of ``x`` along its first axis (``x`` itself when alone)."""
    rank, size = rank_and_size(group)
    if size == 1:
        return x
    a, b = shard_bounds(len(x), rank, size)
    return x[a:b]


def local_batches(n: int, batch_size: int, group: ProcessGroup | None = None) -> Iterator[slice]:
    """Consecutive slices of at most ``batch_size`` items covering this rank's shard of ``n``.

    >>> list(local_batches(5, 2))
    [slice(0, 2, None), slice(2, 4, None), slice(4, 5, None)]
    """
    a, b = shard_bounds(n, *rank_and_size(group))
    for start in range(a, b, batch_size):
        yield slice(start, min(start + batch_size, b))


def all_reduce_sum(
    tensors: list[torch.Tensor], group: ProcessGroup | None = None
) -> list[torch.Tensor]:
    """Sum each tensor over the ranks of ``group``, in place, one collective per dtype.

    The tensors of one dtype are flattened into one buffer (one message, not one per tensor);
    every rank receives the same sums. A no-op when alone. All tensors must be on the device
    the group's backend communicates on.

    Returns:
        ``tensors`` (the same objects).
    """
    if not tensors or rank_and_size(group)[1] == 1:
        return tensors
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for t in tensors:
        by_dtype.setdefault(t.dtype, []).append(t)
    for same in by_dtype.values():
        flat = torch.cat([t.reshape(-1) for t in same])  # (Σ numel,)
        dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=group)
        offset = 0
        for t in same:
            t.copy_(flat[offset : offset + t.numel()].view_as(t))
            offset += t.numel()
    return tensors


def all_gather_bytes(
    state: torch.Tensor, group: ProcessGroup | None = None, device: str | torch.device = "cpu"
) -> list[torch.Tensor]:
    """Every rank's uint8 tensor (e.g. a generator state), in rank order, on the CPU.

    Args:
        state: this rank's tensor; every rank must pass one of the same length (states of
            generators of one kind are).
        group: the process group (``None``: the default one).
        device: where an NCCL group communicates (this rank's CUDA device); a gloo group
            communicates on the CPU.

    Returns:
        ``size`` CPU tensors; ``[state]`` when alone.
    """
    _, size = rank_and_size(group)
    if size == 1:
        return [state.cpu()]
    comm = device if dist.get_backend(group) == "nccl" else "cpu"
    local = state.to(comm)
    out = [torch.empty_like(local) for _ in range(size)]
    dist.all_gather(out, local, group=group)
    return [t.cpu() for t in out]


def all_gather_shards(t: torch.Tensor, n: int, group: ProcessGroup | None = None) -> torch.Tensor:
    """The whole ``(n, ...)`` tensor from every rank's shard ``t`` (its rows
    :func:`shard_bounds` of ``n``), in order; ``t`` itself when alone.

    The shards differ by at most one row; each is padded to the largest for the collective
    and the padding is dropped.
    """
    rank, size = rank_and_size(group)
    if size == 1:
        return t
    bounds = [shard_bounds(n, r, size) for r in range(size)]
    width = max(b - a for a, b in bounds)
    comm = t.device if dist.get_backend(group) == "nccl" else torch.device("cpu")
    pad = torch.zeros((width, *t.shape[1:]), dtype=t.dtype, device=comm)
    pad[: t.shape[0]] = t.to(comm)
    out = [torch.empty_like(pad) for _ in range(size)]
    dist.all_gather(out, pad, group=group)
    return torch.cat([o[: b - a] for o, (a, b) in zip(out, bounds, strict=True)]).to(t.device)
