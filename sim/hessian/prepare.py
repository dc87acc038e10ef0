"""What an analysis is prepared from before its first product: the operator of a checkpoint
(:func:`build_operator`; :func:`load_epoch` rebuilds one for a notebook), the step counts that
depend on N and every request checked against it (:func:`resolve_steps`), the independent seeds
of every random draw (:func:`stream_seeds`), the symlog density grid (:func:`density_grid`) and
the settings that must match across analyses of one run (:func:`settings_record`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sim.hessian.config import HessianConfig, checkpoints_of
from sim.hessian.spectrum import SLQ_DIST
from sim.runs import Run
from sim.runs.hessian import check_requests
from umwelt.errors import ConfigError
from umwelt.seeds import streams

__all__ = [
    "build_operator",
    "density_grid",
    "load_epoch",
    "resolve_steps",
    "settings_record",
    "stream_seeds",
]

SYMLOG_C = 1e-3  # the symlog grid's linear scale c, a fraction of the bound (symmetric_grid's)


def load_epoch(run_dir: Path | str, epoch: int, *, net: str = "finite_T", dtype="float64"):
    """``(model, X, y, loss, temperature)`` of a run at ``epoch``, rebuilt as :func:`run` does.

    For notebooks and tests: the model at that checkpoint in ``dtype`` on the CPU, and the
    whole training set.
    """
    import torch

    from umwelt.nn.device import resolve_dtype

    run = Run.open(run_dir)
    found = checkpoints_of(run, net)
    if epoch not in found:
        raise ConfigError(f"epoch {epoch} is not in the run; it has {list(found)}")
    dt = resolve_dtype(dtype)
    data = run.data()
    X = torch.as_tensor(np.ascontiguousarray(data.X_train), dtype=dt)
    y = torch.as_tensor(np.ascontiguousarray(data.y_train), dtype=dt)
    return run.model(epoch, net=net, dtype=dt), X, y, run.loss, run.temperature(net)


# -- seeds, grid, settings ------------------------------------------------------------------------


_STREAMS = (
    "examples",
    "gates",
    "extremes",
    "slq",
    "summary",
    "checks",
    "entries",
    "bootstrap",
    "corr",
)


def stream_seeds(seed: int) -> dict[str, int]:
    """Independent seeds of every random draw, from the one ``seed``."""
    return streams(seed, _STREAMS)


def density_grid(bound: float, points: int) -> tuple[np.ndarray, float]:
    from umwelt.nn.hessian import symmetric_grid

    return symmetric_grid(bound, points, scale="symlog"), SYMLOG_C * bound


def settings_record(cfg: HessianConfig, n: int, dtype: str, steps: dict[str, int | None]) -> dict:
    """Every setting that changes the numbers (must match across analyses of one run)."""
    return {
        "net": cfg.net,
        "examples": cfg.examples,
        "dtype": dtype,
        "lanczos_steps": steps["lanczos_steps"],
        "start_vectors": cfg.start_vectors,
        "reorth": cfg.reorth,
        "extremes": cfg.extremes,
        "extreme_steps": steps["extreme_steps"],
        "entries": steps["entries"],
        "entry_columns": steps["entry_columns"],
        "corr_entries": cfg.corr_entries,
        "uniform_entries": cfg.uniform_entries,
        "deflation_steps": cfg.deflation_steps,
        "blocks": cfg.blocks,
        "block_vectors": cfg.block_vectors,
        "bootstrap": cfg.bootstrap,
        "start_dist": SLQ_DIST,
        "hinge_coords": cfg.hinge_coords,
        "grid_points": cfg.grid_points,
        "smoothing": cfg.smoothing,
        "seed": cfg.seed,
        "n_params": n,
    }


# -- the operator ----------------------------------------------------------------------------------


def build_operator(model, X, y, *, ids, loss, batch_size, gate_seed, epoch, world):
    from umwelt.nn.hessian import ModelHessian

    kw = {
        "loss": loss,
        "batch_size": batch_size,
        "gate_seed": gate_seed,
        "context": f"epoch {epoch}",
    }
    if world is not None and world.distributed:
        from umwelt.nn.hessian.distributed import DistributedModelHessian

        return DistributedModelHessian(model, X, y, indices=ids, **kw)
    return ModelHessian(model, X, y, indices=ids, **kw)


def resolve_steps(cfg: HessianConfig, op) -> dict[str, int | None]:
    """The defaults that depend on N, and a check of every request against N and the memory
    budget (:func:`sim.runs.hessian.check_requests`, with the operator's exact sizes)."""
    N = op.n
    sizes = np.diff(op.param_offsets)
    pairs = N * (N - 1) // 2 - int((sizes * (sizes - 1) // 2).sum())  # cross-layer pairs
    # with entry columns, the non-zero entries of those columns are the population of each epoch
    # (fewer than K there: all of them, see _nonzero_entries)
    if cfg.blocks:  # before anything is computed or written
        from umwelt.nn.hessian.blocks import check_blocks

        check_blocks(op.param_offsets, cfg.block_vectors)
    return check_requests(
        cfg,
        n_parameters=N,
        pairs=pairs,
        n_examples=op.n_total,
        itemsize=getattr(op.dtype, "itemsize", 8),
        epochs=len(cfg.epochs or (0,)),
    )
