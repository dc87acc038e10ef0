"""One Hessian analysis of a run, epoch by epoch: the orchestration of ``umwelt hessian``.

:func:`run` validates a :class:`~sim.hessian.config.HessianConfig`, joins the process group
under ``torchrun`` and calls :func:`analyse`: the first operator checks every request against
the dimension N; when several epochs share a grid not fixed yet, a cheap first pass over them
(:func:`grid_scan`) finds the largest eigenvalue that fixes it; then :func:`analyse_epoch` runs
on each epoch (its :func:`spectrum`: the SLQ run, which gives the extremes) and writes it
(:mod:`sim.hessian.store`) as soon as it exists. :func:`analyse_epoch` is public so that a
benchmark can time one epoch part by part. The estimators themselves live in
:mod:`umwelt.nn.hessian`.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
from sim.runs.hessian import AUTO_FLOAT64_LIMIT, check_requests
from sim.runs.lock import RunLock
from umwelt.errors import ConfigError, NonFiniteError, UmweltError
from umwelt.seeds import index_seed, streams

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

SYMLOG_C = 1e-3  # the symlog grid's linear scale c, a fraction of the bound (symmetric_grid's)
Progress = Callable[[str, int, int, str], None]


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


# -- one epoch -------------------------------------------------------------------------------------


def analyse_epoch(
    op, cfg, *, grid, c, steps, seeds, stage, loss_name, spectrum_of=None, pairs=None
):
    """Everything of one epoch: ``(row, arrays)``.

    ``spectrum_of``: the epoch's :func:`spectrum` ``(res, extremes)`` when it was taken
    already (it fixes the grid of a first epoch); else taken here. ``pairs``: the entries of
    the run's ``hessian/config.json`` (:func:`draw_entries`; ``None``: drawn here).
    """
    from umwelt.nn.hessian import (
        CountedOperator,
        active_hinges,
        exact_trace,
        hinge_checks,
        quadrature_resolution,
        spectral_summary,
        symlog_density,
    )

    t0 = time.perf_counter()
    N = op.n
    row: dict[str, Any] = {"n_params": N, "n_examples": op.n_total, "loss": op.risk()}
    row["hvp_mode"] = op.ad  # how the products were taken (changes only round-off)
    row["dtype"] = str(op.dtype).removeprefix("torch.")
    active = None  # which examples have a share in H (the hinges active)
    if loss_name in ("hinge", "quadratic-hinge"):
        active = active_hinges(op)
        row["active_fraction"] = float(active.mean())
    res, ext = spectrum_of if spectrum_of is not None else spectrum(op, cfg, steps, seeds, stage)
    # moments, negative mass, trace from the raw nodes (the grid here only feeds the λ-smoothed
    # density asymmetry, which is replaced by the symlog-smoothed one below)
    resolution = quadrature_resolution(res)
    with warnings.catch_warnings():  # H = 0 (a converged hinge net): NaN asymmetries, quietly
        warnings.simplefilter("ignore", RuntimeWarning)
        summ = spectral_summary(
            res,
            grid=grid,
            sigma=grid[-1] / 50,
            resolution=resolution,
        )
    # smoothed in the symlog coordinate at the grid's c, or the resolution δ if that is coarser
    band, summ_u, c_s = symlog_density(
        res,
        grid,
        c=c,
        sigma=cfg.smoothing,
        resolution=resolution,
        level=BAND_LEVEL,
    )
    nodes, weights = res.pooled()
    bound = float(grid[-1])
    row |= {
        "lambda_min": ext["lo"],
        "lambda_max": ext["hi"],
        "extremes_from": ext["from"],  # slq, slq+lanczos (not converged), lanczos or eigsh
        "extremes_residual_min": ext["residual_lo"],  # the SLQ's outermost Ritz values' bounds
        "extremes_residual_max": ext["residual_hi"],
        "extremes_lambda_min": ext.get("separate_lo", math.nan),  # the separate pass, if any
        "extremes_lambda_max": ext.get("separate_hi", math.nan),
        "ritz_min": summ["ritz_min"],
        "ritz_max": summ["ritz_max"],
        "neg_mass": summ["neg_mass"],
        "neg_mass_se": summ["neg_mass_se"],
        "neg_share": summ["neg_share"],
        "neg_share_se": summ["neg_share_se"],
        "resolution": resolution,
        "asymmetry": summ["asymmetry"],
        "asymmetry_se": summ["asymmetry_se"],
        "density_asymmetry": summ_u["density_asymmetry"],
        "density_asymmetry_se": summ_u["density_asymmetry_se"],
        "density_asymmetry_bias": summ_u["density_asymmetry_bias"],
        "trace": summ["trace"],  # Hutchinson's, from the SLQ runs: the cross-check
        "trace_se": summ["trace_se"],
        "trace_exact": exact_trace(op),  # from the structure (None where it does not give it)
        "m2": summ["m2"],
        "m2_se": summ["m2_se"],
        "se_reason": summ["se_reason"],  # None, or why the *_se above are null
        "beyond_grid": float(weights[np.abs(nodes) > bound].sum()),
    }
    if loss_name in ("hinge", "quadratic-hinge"):  # the latter against its Gauss–Newton part
        # hinge: the trace test takes the SLQ runs' estimate (no products of its own) when it
        # has an error bar; the quadratic hinge's circuit part needs 16 forms of its own
        given = None
        if loss_name == "hinge" and math.isfinite(summ["trace_se"] or math.nan):
            given = (summ["trace"], summ["trace_se"])
        probes = 16 if cfg.hinge_coords < N and given is None else 0
        hc_total = min(cfg.hinge_coords, N) + probes
        hc_done = [0]

        def tick_checks(m: int) -> None:
            hc_done[0] += m
            stage("checks", min(hc_done[0], hc_total), hc_total)

        hc = hinge_checks(
            CountedOperator(op, tick_checks),
            n_coords=min(cfg.hinge_coords, N),
            n_v=16,
            seed=seeds["checks"],
            warn=False,
            trace_estimate=given,
        )
        row |= {
            "hinge_diag_max_abs": hc["diag_max_abs"],
            "hinge_diag_rel": hc["diag_rel"],
            "hinge_trace": hc["trace"],
            "hinge_trace_se": hc["trace_se"],
            "hinge_ok": hc["ok"],
        }
        if "gn_trace" in hc:  # quadratic hinge: diag H = diag G, tr H = tr G
            row |= {
                k: hc[k]
                for k in (
                    "gn_diag_max_abs",
                    "gn_trace",
                    "gn_active",
                    "circuit_diag_max_abs",
                    "circuit_diag_rel",
                    "circuit_trace",
                    "circuit_trace_se",
                )
            }
    arrays: dict[str, Any] = {
        "grid": grid,
        "grid_c": c,
        "smoothing": cfg.smoothing,
        "smoothing_c": c_s,
        "density": band.density,
        "density_std": band.std,
        "density_lo": band.lo,
        "density_hi": band.hi,
        "density_level": band.level,
        "slq_nodes": res.nodes,
        "slq_weights": res.weights,
        "slq_seed": res.seed,
        "slq_dist": res.dist,
        "slq_point_masses": res.point_masses,  # deflated: the first nodes, not random
        "reorth": res.reorth,
    }
    if active is not None:
        arrays["active_hinges"] = active  # (n_examples,) bool, in example_ids' order
    if cfg.blocks:
        row |= layer_blocks_of(op, cfg, seeds, stage, arrays)
    K = steps["entries"]
    if K:
        es, entry_arrays = sampled_entries(
            op, cfg, K, steps["entry_columns"], seeds, stage, loss_name=loss_name, stored=pairs
        )
        row |= es
        arrays |= entry_arrays
    else:
        row |= {"frac_means_below_015": math.nan, "coupling_exponent": math.nan}
    row["wall_s"] = time.perf_counter() - t0
    return row, arrays


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
