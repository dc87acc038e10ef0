r"""Data-parallel training across processes with ``torch.distributed`` (``torchrun``).

``umwelt train`` is one program whether it runs alone or as ``W`` processes under ``torchrun``
(which sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``). With ``W > 1`` every process holds
the whole dataset and an identical model, and

* **the global minibatch is split, not the data set**: every rank draws the same epoch order
  from the shared data-order generator, cuts the same global minibatch of ``B`` examples, and
  takes its contiguous slice :func:`shard` (sizes differ by at most one; a rank may get none
  when the last batch is smaller than ``W``);
* **gradients are summed, weighted by the global batch**: rank ``r`` back-propagates
  :math:`\frac{b_r}{B}\,\bar\ell_r = \frac1B\sum_{i \in r}\ell_i`, and :func:`all_reduce_sum`
  adds the ranks' gradients, so every rank holds :math:`\frac1B\sum_i\nabla\ell_i`, the
  single-process gradient of the global batch (up to the order of floating-point additions),
  unequal last batch included; every rank then takes the same optimizer step;
* **full-data measurements** (the order parameter :math:`\eta\|\nabla R\|^2`, loss, accuracy,
  gate statistics) split the data set with :func:`shard` and all-reduce sums and counts, so they
  equal the single-process values;
* only rank 0 writes files and shows progress.

The backend is NCCL for CUDA devices (rank ``r`` uses ``cuda:LOCAL_RANK``) and gloo on CPU.
The environment is read once, in :func:`env_world`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from umwelt.errors import ConfigError

__all__ = [
    "World",
    "all_gather_bytes",
    "all_reduce_sum",
    "env_world",
    "setup",
    "shard",
    "shard_bounds",
    "teardown",
]


@dataclass(frozen=True)
class World:
    """Where this process stands: ``rank`` of ``size`` processes (``size == 1``: alone)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str | None = None  # "gloo" or "nccl" once a process group exists

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files and shows progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one process."""
        return self.size > 1


def _env_int(env: dict[str, str], name: str) -> int | None:
    raw = env.get(name)
    if raw is None or raw == "":
        return None
    try:
        v = int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be an integer, got {raw!r}") from None
    if v < 0:
        raise ConfigError(f"environment variable {name} must be ≥ 0, got {raw!r}")
    return v


def env_world(env: dict[str, str] | None = None) -> World:
    """The world that ``torchrun`` describes in ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``.

    No variables (a plain ``umwelt train``): rank 0 of 1. Nothing is initialized here.

    Raises:
        ConfigError: for malformed values or ``RANK ≥ WORLD_SIZE``, naming them.
    """
    env = dict(os.environ if env is None else env)
    size = _env_int(env, "WORLD_SIZE")
    rank = _env_int(env, "RANK")
    local = _env_int(env, "LOCAL_RANK")
    if size is None:
        if rank not in (None, 0):
            raise ConfigError(f"RANK={rank} is set but WORLD_SIZE is not")
        return World()
    if size < 1:
        raise ConfigError(f"WORLD_SIZE must be ≥ 1, got {size}")
    rank = 0 if rank is None else rank
    if rank >= size:
        raise ConfigError(f"RANK={rank} must be below WORLD_SIZE={size}")
    return World(rank=rank, size=size, local_rank=rank if local is None else local)


def setup(device: str, env: dict[str, str] | None = None) -> tuple[World, str]:
    """Join the process group when launched by ``torchrun`` with ``WORLD_SIZE > 1``.

    Args:
        device: the configured device, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Returns:
        ``(world, device)``: under ``torchrun`` on CUDA each rank gets ``cuda:LOCAL_RANK``
        (the configured index is ignored); otherwise ``device`` unchanged.

    Raises:
        ConfigError: for bad environment variables or a CUDA world larger than the GPUs here.
    """
    import torch.distributed as dist

    world = env_world(env)
    if not world.distributed:
        return world, device
    cuda = torch.device(device).type == "cuda"
    if cuda:
        n = torch.cuda.device_count()
        if world.local_rank >= n:
            raise ConfigError(f"LOCAL_RANK={world.local_rank} but only {n} CUDA devices exist")
        device = f"cuda:{world.local_rank}"
        torch.cuda.set_device(device)
    backend = "nccl" if cuda else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return World(world.rank, world.size, world.local_rank, backend), device


def teardown(world: World, *, completed: bool = False) -> None:
    """Leave the process group (if this process joined one).

    After a ``completed`` run every rank first waits for the others: a rank that tears gloo
    down while a peer's last collective is still in flight can abort that peer ("terminate
    called without an active exception", seen once in CI). After a failure there is no
    barrier, since the peers may never arrive.
    """
    import torch.distributed as dist

    if world.distributed and dist.is_initialized():
        if completed:
            dist.barrier()
        dist.destroy_process_group()


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


def shard(x, world: World):
    """This rank's contiguous slice of ``x`` along its first axis (all of it when alone)."""
    if not world.distributed:
        return x
    a, b = shard_bounds(len(x), world.rank, world.size)
    return x[a:b]


def all_reduce_sum(tensors: list[torch.Tensor], world: World) -> list[torch.Tensor]:
    """Sum each tensor over the ranks, in place, in one collective per dtype; returns them.

    The tensors are flattened into one buffer per dtype (one message, not one per tensor); every
    rank receives the same sums. A no-op when alone.
    """
    if not world.distributed or not tensors:
        return tensors
    import torch.distributed as dist

    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for t in tensors:
        by_dtype.setdefault(t.dtype, []).append(t)
    for group in by_dtype.values():
        flat = torch.cat([t.reshape(-1) for t in group])  # (Σ numel,)
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        offset = 0
        for t in group:
            t.copy_(flat[offset : offset + t.numel()].view_as(t))
            offset += t.numel()
    return tensors


def all_gather_bytes(state: torch.Tensor, world: World, device: str) -> list[torch.Tensor]:
    """Every rank's uint8 tensor (e.g. a generator state), in rank order, on the CPU.

    All ranks must pass tensors of one length (states of generators of one kind do). Alone:
    ``[state]``.
    """
    if not world.distributed:
        return [state.cpu()]
    import torch.distributed as dist

    comm = device if world.backend == "nccl" else "cpu"
    local = state.to(comm)
    out = [torch.empty_like(local) for _ in range(world.size)]
    dist.all_gather(out, local)
    return [t.cpu() for t in out]
