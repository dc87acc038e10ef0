"""``checkpoints/last.pt``: everything a train run needs to continue, saved and loaded.

Model, optimizer (momentum buffers), the state of every generator (data order; gate noise and
evaluation of every rank; torch's default CPU and CUDA generators), the unfinished epoch's order
and position, the metric rows so far and the wall time; written atomically, loaded with
``torch.load(..., weights_only=True)``. :data:`FORMAT` 2: gate noise and evaluation draws from
:class:`umwelt.nn.GateNoise`.
"""

from __future__ import annotations

import json
import time

from sim.runs import io
from sim.runs.train import CHECKPOINT
from sim.runs.untrusted import load_checkpoint
from umwelt.errors import ConfigError

__all__ = ["FORMAT", "load", "rng_states", "save"]

# Each function takes the run's sim.train.trainer.Trainer (not imported: it imports this module).

FORMAT = 2  # 2: gate noise and evaluation draws from umwelt.nn.GateNoise


def rng_states(tr) -> dict:
    """Every generator's state; per-rank ones gathered from all ranks (a collective)."""
    import torch

    from umwelt.nn.parallel import all_gather_bytes

    dev = str(tr.device)
    states = {
        "data_order": tr.order_gen.get_state(),
        "gate_noise": all_gather_bytes(tr.noise_gen.get_state(), device=dev),
        "evaluation": all_gather_bytes(tr.eval_gen.get_state(), device=dev),
        "torch_cpu": all_gather_bytes(torch.get_rng_state(), device=dev),
        "torch_cuda": None,
    }
    if tr.device.type == "cuda":
        cuda = torch.cuda.get_rng_state(tr.device)
        states["torch_cuda"] = all_gather_bytes(cuda, device=dev)
    return states


def save(tr) -> None:
    """Write ``checkpoints/last.pt`` atomically (all ranks call it; rank 0 writes)."""
    import torch

    rng = rng_states(tr)
    if not tr.world.is_main:
        return
    in_epoch = None if tr.in_epoch is None else tr.in_epoch.state_dict()
    state = {
        "format": FORMAT,
        "epoch": tr.epoch,
        "in_epoch": in_epoch,
        "model": tr.model.state_dict(),
        "optimizer": tr.optimizer.state_dict(),
        "rng": rng,
        "metrics": json.dumps(io.to_jsonable(tr.rows)),
        "wall_s": tr.wall(),
        "world_size": tr.world.size,
    }
    io.atomic_write(tr.run_dir / "checkpoints" / CHECKPOINT, lambda p: torch.save(state, p))


def load(tr) -> None:
    """Restore ``tr`` from ``checkpoints/last.pt`` (every rank reads it).

    Raises:
        ConfigError: for an unreadable or foreign file, one of another model or another
            number of processes at T > 0, naming it.
    """
    import torch

    from umwelt.nn.train import EpochState

    path = tr.run_dir / "checkpoints" / CHECKPOINT
    ck = load_checkpoint(path)  # a truncated, foreign or hostile file: one line naming it
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise ConfigError(f"{str(path)!r} is not a train checkpoint of format {FORMAT}")
    noisy = tr.cfg.gate_mode == "sample" and tr.cfg.temperature > 0
    if ck["world_size"] != tr.world.size and noisy:
        raise ConfigError(
            f"--resume: the run used {ck['world_size']} processes and this is "
            f"{tr.world.size}; at T > 0 the per-rank gate noise cannot be continued"
        )
    try:
        tr.model.load_state_dict(ck["model"])
        tr.optimizer.load_state_dict(ck["optimizer"])
    except (RuntimeError, ValueError, KeyError) as e:  # another model's checkpoint
        first = " ".join(str(e).strip().splitlines()[:2])
        raise ConfigError(
            f"checkpoint {str(path)!r} does not fit the run's model {tr.cfg.model!r}: {first}"
        ) from None
    rng = ck["rng"]
    r = tr.world.rank if tr.world.rank < len(rng["gate_noise"]) else None
    tr.order_gen.set_state(rng["data_order"])
    if r is not None:
        tr.noise_gen.set_state(rng["gate_noise"][r])
        tr.eval_gen.set_state(rng["evaluation"][r])
        torch.set_rng_state(rng["torch_cpu"][r])
        if tr.device.type == "cuda" and rng["torch_cuda"] is not None:
            torch.cuda.set_rng_state(rng["torch_cuda"][r], tr.device)
    tr.epoch = ck["epoch"]
    tr.rows = json.loads(ck["metrics"])
    tr.wall_offset = ck["wall_s"]
    tr.t0 = time.perf_counter()
    if ck["in_epoch"] is not None:
        tr.in_epoch = EpochState.from_state_dict(ck["in_epoch"], tr.device)
