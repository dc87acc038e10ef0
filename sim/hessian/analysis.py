"""One Hessian analysis of a run, epoch by epoch: the orchestration of ``umwelt hessian``.

:func:`run` validates a :class:`~sim.hessian.config.HessianConfig`, joins the process group
under ``torchrun`` and calls :func:`analyse`: the first operator checks every request against
the dimension N (:mod:`sim.hessian.prepare`); when several epochs share a grid not fixed yet, a
cheap first pass over them (:func:`grid_scan`) finds the largest eigenvalue that fixes it; then
:func:`~sim.hessian.epoch.analyse_epoch` runs on each epoch (its :func:`spectrum`: the SLQ run,
which gives the extremes) and writes it (:mod:`sim.hessian.store`) as soon as it exists.
:func:`record_epoch` does the same for one epoch of a training run in progress. The names of
:mod:`~sim.hessian.prepare`, :mod:`~sim.hessian.epoch`, :mod:`~sim.hessian.spectrum` and
:mod:`~sim.hessian.entries` are importable from here too. The estimators themselves live in
:mod:`umwelt.nn.hessian`.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sim.figures import hessian_figures
from sim.hessian import store
from sim.hessian.config import HessianConfig, checkpoints_of
from sim.hessian.entries import (
    BAND_LEVEL,
    CORR_SUBMATRIX,
    ENTRY_EDGES,
    FIXED_RULES,
    entry_pairs,
    sampled_entries,
)
from sim.hessian.epoch import analyse_epoch
from sim.hessian.prepare import _STREAMS as _STREAMS
from sim.hessian.prepare import SYMLOG_C as SYMLOG_C
from sim.hessian.prepare import (
    build_operator,
    density_grid,
    load_epoch,
    resolve_steps,
    settings_record,
    stream_seeds,
)
from sim.hessian.spectrum import (
    EIGSH_TOL,
    EXTREME_RTOL,
    GRID_SCAN_STEPS,
    ROUNDOFF_EXAMPLES,
    SLQ_DIST,
    extreme_eigenvalues,
    grid_scan,
    layer_blocks_of,
    roundoff_examples,
    roundoff_row,
    spectrum,
)
from sim.runs import HessianSettings, Run
from sim.runs.hessian import AUTO_FLOAT64_LIMIT
from sim.runs.lock import RunLock
from umwelt.errors import ConfigError, NonFiniteError, UmweltError
from umwelt.seeds import index_seed

__all__ = [  # (the spectrum's and the entries' names too, from their modules)
    "AUTO_FLOAT64_LIMIT",
    "BAND_LEVEL",
    "CORR_SUBMATRIX",
    "EIGSH_TOL",
    "ENTRY_EDGES",
    "EXTREME_RTOL",
    "FIXED_RULES",
    "GRID_SCAN_STEPS",
    "ROUNDOFF_EXAMPLES",
    "SLQ_DIST",
    "Progress",
    "analyse",
    "analyse_epoch",
    "build_operator",
    "density_grid",
    "extreme_eigenvalues",
    "grid_scan",
    "load_epoch",
    "record_epoch",
    "resolve_steps",
    "roundoff_examples",
    "roundoff_row",
    "run",
    "settings_record",
    "spectrum",
    "stream_seeds",
    "entry_pairs",
    "layer_blocks_of",
    "sampled_entries",
]

Progress = Callable[[str, int, int, str], None]


# -- the analysis ----------------------------------------------------------------------------------


def run(cfg: HessianConfig, *, progress: Progress | None = None) -> list[dict]:
    """Analyse the checkpoints of a run; write ``RUN/hessian/`` (rank 0) and the figures.

    Args:
        cfg: the settings; validated here before anything is read or written.
        progress: called as ``progress(stage, done, total, info)``: stages ``"extremes"`` and
            ``"epochs"`` (the two passes over the epochs), ``"slq"``, ``"checks"`` (products)
            and ``"entries"`` (columns) within an epoch.

    Returns:
        the rows of the epochs analysed now (every rank).

    Raises:
        UmweltError: a bad setting, run directory or epoch, a request larger than the Hessian
            (before anything is written); :class:`~umwelt.errors.NonFiniteError` naming the
            first epoch whose products are not finite (after writing the epochs before it).
    """
    from sim import distributed

    cfg = cfg.validated()
    world, device = distributed.setup(cfg.device)
    completed = False
    try:
        result = analyse(cfg, world=world, device=device, progress=progress)
        completed = True
        return result
    finally:
        distributed.teardown(world, completed=completed)


def record_epoch(
    run_dir: Path | str,
    epoch: int,
    *,
    settings: HessianSettings | None = None,
    world=None,
    device: str = "cpu",
):
    """The analysis of one epoch of a training run in progress (``umwelt train --hessian-at``).

    Called on every rank right after rank 0 wrote ``checkpoints/model_epoch_XXXX.pt``; uses
    :class:`HessianConfig` with ``settings`` (``None``: the defaults), the
    grid of an earlier recorded epoch if there is one, and does not touch torch's global random
    state (a resumed training stays exact). A failure does not stop the training: it becomes a
    warning.

    Returns:
        the row, or ``None`` after a failure.
    """
    import torch

    if world is not None and world.distributed:
        import torch.distributed as dist

        dist.barrier()  # rank 0 has written the checkpoint
    devices = [torch.device(device)] if torch.device(device).type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            cfg = HessianConfig.of(run_dir, settings, epochs=(epoch,), device=device, figures=False)
            rows = analyse(cfg.validated(), world=world, device=device)
        return rows[0]
    except UmweltError as e:
        warnings.warn(
            f"--hessian-at: the Hessian of epoch {epoch} was not recorded: {e}",
            RuntimeWarning,
            stacklevel=2,
        )
        return None


def analyse(
    cfg: HessianConfig, *, world=None, device: str = "cpu", progress: Progress | None = None
) -> list[dict]:
    """:func:`run` inside an existing process group (``world``: :class:`sim.distributed.World`).

    ``cfg`` must be validated. Every rank calls it; rank 0 writes, holding the run directory's
    lock (:class:`sim.runs.lock.RunLock`) from before the first product: a second writer is
    refused before anything is computed (inside ``umwelt train --hessian-at`` the training
    process holds it already).
    """
    main = world is None or world.is_main
    lock = RunLock(cfg.run, "umwelt hessian").acquire() if main else None
    try:
        return _analyse(cfg, world=world, device=device, progress=progress)
    finally:
        if lock is not None:
            lock.release()


def _analyse(cfg: HessianConfig, *, world, device: str, progress: Progress | None) -> list[dict]:
    import torch

    from umwelt.nn.device import resolve_device, resolve_dtype

    def stage(name: str, done: int, total: int, info: str = "") -> None:
        if progress is not None:
            progress(name, done, total, info)

    main = world is None or world.is_main
    run = Run.open(cfg.run)
    found = checkpoints_of(run, cfg.net)
    out = run.hessian_dir(cfg.net)
    dev = resolve_device(device)
    seeds = stream_seeds(cfg.seed)
    epochs = list(cfg.epochs)
    temperature = run.temperature(cfg.net)

    # -- what depends on the model: dtype, N and the requests that must fit in it
    first = run.build_model(cfg.net, dtype=torch.float32)
    N = sum(p.numel() for p in first.parameters() if p.requires_grad)
    del first
    dtype_name = cfg.dtype
    if dtype_name == "auto":
        dtype_name = "float64" if N <= AUTO_FLOAT64_LIMIT else run.config.dtype
    dtype = resolve_dtype(dtype_name)
    data = run.data()
    X = torch.as_tensor(np.ascontiguousarray(data.X_train))  # (n_train, ...) on the CPU
    y = torch.as_tensor(np.ascontiguousarray(data.y_train))
    n_train = int(X.shape[0])
    if cfg.examples is not None and cfg.examples > n_train:
        raise ConfigError(
            f"--examples {cfg.examples} exceeds the {n_train} training examples of the run"
        )
    if cfg.examples is None:
        ids = np.arange(n_train)
    else:
        rng = np.random.default_rng(seeds["examples"])
        ids = np.sort(rng.choice(n_train, cfg.examples, replace=False))

    def build(epoch: int, *, dt=dtype, examples=ids):
        m = run.model(epoch, net=cfg.net, dtype=dt, device=dev)
        return build_operator(
            m,
            X,
            y,
            ids=examples,
            loss=run.loss,
            batch_size=cfg.batch_size,
            gate_seed=seeds["gates"],
            epoch=epoch,
            world=world,
        )

    # -- the first operator: the step counts, every request checked, the stored settings
    op = build(epochs[0])
    steps = resolve_steps(cfg, op)
    settings = settings_record(cfg, op.n, dtype_name, steps)
    stored = store.check_stored(out, settings, cfg)
    if stored is not None:
        bound: float | None = float(stored["grid_bound"])
        points = int(stored["grid_points"])
    else:
        bound, points = cfg.grid_bound, cfg.grid_points
    pairs = None if stored is None else stored.get("entry_pairs")

    # -- pass 1, only when several epochs share a grid that is not fixed yet: the largest |λ|
    # of every epoch (a short scan; the separate extremes with extremes="lanczos"/"eigsh")
    failed: tuple[int, NonFiniteError] | None = None
    done_epochs = list(epochs)
    separate: dict[int, tuple[float, float] | None] = {}  # the scan's extremes, per epoch
    if bound is None and len(epochs) > 1:
        tops: list[float] = []
        for i, e in enumerate(epochs):
            stage("extremes", i, len(epochs), f"epoch {e}")
            op = op if i == 0 else build(e)
            try:
                top, separate[e] = grid_scan(op, cfg, steps, seeds)
                tops.append(top)
            except NonFiniteError as err:
                if i == 0:
                    raise NonFiniteError(f"epoch {e}: {err}; nothing was written") from None
                failed = (e, err)
                break
        stage("extremes", len(tops), len(epochs), "")
        done_epochs = epochs[: len(tops)]
        top = max(tops)
        bound = cfg.grid_margin * top if top > 0 else 1.0
        op = None
    configured = False

    # -- pass 2: everything, epoch by epoch, each written as soon as it exists (a first
    # epoch without a grid fixes it from its own spectrum, taken before the rest)
    rows: list[dict] = []
    for i, e in enumerate(done_epochs):
        stage("epochs", i, len(done_epochs), f"epoch {e}")
        try:
            op = op if op is not None else build(e)
            t0 = time.perf_counter()
            taken = spectrum(op, cfg, steps, seeds, stage, separate=separate.get(e))
            if bound is None:
                top = max(abs(taken[1]["lo"]), abs(taken[1]["hi"]))
                bound = cfg.grid_margin * top if top > 0 else 1.0
            grid, c = density_grid(bound, points)
            row, arrays = analyse_epoch(
                op,
                cfg,
                grid=grid,
                c=c,
                steps=steps,
                seeds=seeds,
                stage=stage,
                loss_name=run.loss,
                spectrum_of=taken,
                pairs=pairs,
            )
            row["wall_s"] = time.perf_counter() - t0  # with the spectrum taken before it
            if pairs is None and arrays.get("entry_rule") in FIXED_RULES:
                pairs = entry_pairs(arrays)  # the same entries at every later epoch
            if dtype == torch.float32:
                check = roundoff_examples(ids, arrays.get("active_hinges"))
                row |= roundoff_row(
                    [build(e, dt=t, examples=check) for t in (torch.float32, torch.float64)],
                    row,
                    seed=index_seed(seeds["checks"], 1),
                )
        except NonFiniteError as err:
            if not rows and i == 0 and not configured:
                raise NonFiniteError(f"epoch {e}: {err}; nothing was written") from None
            failed = (e, err)
            break
        finally:
            op = None
        row = {
            "epoch": e,
            "checkpoint": found[e].name,
            "net": cfg.net,
            "temperature": temperature,
            **row,
            "lanczos_steps": steps["lanczos_steps"],
            "start_vectors": cfg.start_vectors,
            "grid_bound": bound,
            "world_size": 1 if world is None else world.size,
        }
        rows.append(row)
        if main:
            if not configured:  # the settings are written with the first result they describe
                if cfg.fresh:
                    store.clear(out)
                record = {
                    "run": str(run.path),
                    "kind": run.kind,
                    "temperature": temperature,
                    "loss": run.loss,
                    "settings": settings,
                    "grid_bound": bound,
                    "grid_points": points,
                    "grid_scale": "symlog",
                    "grid_c": c,
                    "band_level": BAND_LEVEL,
                    "seeds": seeds,
                }
                if pairs is not None:
                    record["entry_pairs"] = pairs
                store.write_config(out, record)
                configured = True
            store.write_epoch(out, row, arrays | {"example_ids": ids})
    stage("epochs", len(rows), len(done_epochs), "")
    if main and cfg.figures and rows:
        hessian_figures(run, subdir=out.name)
    if failed is not None:
        e, err = failed
        kept = ", ".join(str(r["epoch"]) for r in rows) or "none"
        raise NonFiniteError(
            f"epoch {e}: {err}; stopped there (epochs analysed before it: {kept}, in {str(out)!r})"
        )
    return rows
