r"""Process groups for data-parallel runs under ``torchrun``: join, describe, leave.

``umwelt train`` and ``umwelt hessian`` are one program whether they run alone or as ``W``
processes under ``torchrun`` (which sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``). This
module reads that environment once (:func:`env_world`), joins the default process group
(:func:`setup`: NCCL for CUDA devices, rank ``r`` on ``cuda:LOCAL_RANK``; gloo on the CPU) and
leaves it (:func:`teardown`). How the work is split and summed over the group — minibatch
shards, all-reduced gradients and full-data measurements — is the engine's
(:mod:`umwelt.nn.parallel`, used by :mod:`umwelt.nn.train` and :mod:`umwelt.nn.observables`),
so one process and many run the same code; only rank 0 writes files and shows progress.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from umwelt.errors import ConfigError

__all__ = [
    "World",
    "env_world",
    "setup",
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
