"""Driving a train run: check and prepare, (re)start, epoch after epoch, summarize."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from sim.figures import make_figures
from sim.runs import Run, io
from sim.runs.lock import RunLock, claim_new
from sim.runs.train import (
    TrainConfig,
    check_resumable,
    clear_early_run,
    resolve_dataset,
    restartable,
)
from sim.train.trainer import Trainer
from umwelt.errors import ConfigError

__all__ = [
    "HessianHook",
    "TrainResult",
    "check_memory",
    "model_size",
    "prepare",
    "resume_config",
    "run",
]


def model_size(cfg: TrainConfig) -> dict[str, Any] | None:
    """What a run of ``cfg`` holds, from its settings alone (nothing is built or loaded):
    ``n_parameters``, ``units`` (activations per example), ``n_train``, ``n_test`` and
    ``input_dim``; ``None`` for a malformed model (its builder names what is wrong)."""
    from umwelt import memory
    from umwelt.data import spec_sizes
    from umwelt.network import parse_widths

    n_train, n_test, shape = spec_sizes(cfg.dataset, subset=cfg.subset, subset_test=cfg.subset_test)
    d = math.prod(shape)
    try:
        if cfg.model.startswith("mlp:"):
            widths = (
                d,
                *(max(1, math.floor(n * cfg.width + 0.5)) for n in parse_widths(cfg.model[4:])),
                1,
            )
            P, units = memory.mlp_parameters(widths), memory.mlp_activations(widths)
        else:
            P, units = memory.vgg_sizes(cfg.model, cfg.width, shape)
    except ConfigError:
        return None
    return {"n_parameters": P, "units": units, "n_train": n_train, "n_test": n_test,
            "input_dim": d}  # fmt: skip


def check_memory(cfg: TrainConfig) -> None:
    """Refuse a model, batch and dataset that cannot fit, before the data are loaded (and the
    Hessian analyses of ``--hessian-at``: :func:`sim.runs.hessian.check_requests`)."""
    from umwelt import memory

    size = model_size(cfg)
    if size is None:
        return  # a malformed model: its builder names what is wrong
    it = 8 if cfg.dtype == "float64" else 4
    P, n = size["n_parameters"], size["n_train"] + size["n_test"]
    batch = max(cfg.batch_size, cfg.eval_batch_size)
    need = memory.training_bytes(P, size["units"], batch=batch, itemsize=it, copies=6)
    need += memory.dataset_bytes(n, size["input_dim"], it)
    shown = f"{P:,} weights, batch {batch}, {n:,} examples"
    memory.check_fits(f"train {cfg.model} × {cfg.width:g} ({shown})", need)
    if cfg.hessian_at:
        _check_hessian(cfg, size)


def _check_hessian(cfg: TrainConfig, size: dict[str, Any]) -> None:
    """Refuse ``--hessian-at`` analyses whose settings do not fit the model or the memory, now
    rather than as a warning at their epoch (from the sizes alone: the entries' population and
    a CIFAR-10 training set are bounded from above)."""
    from sim.runs.hessian import AUTO_FLOAT64_LIMIT, HessianSettings, check_requests

    settings = cfg.hessian or HessianSettings()
    N, n_train = size["n_parameters"], size["n_train"]
    if settings.examples is not None and settings.examples > n_train:
        raise ConfigError(
            f"--hessian-settings examples={settings.examples} exceeds the {n_train:,} training "
            "examples of the run"
        )
    dtype = settings.dtype
    if dtype == "auto":
        dtype = "float64" if N <= AUTO_FLOAT64_LIMIT else cfg.dtype
    n = n_train if settings.examples is None else settings.examples
    check_requests(settings, n_parameters=N, pairs=N * (N - 1) // 2, n_examples=n,
                   itemsize=8 if dtype == "float64" else 4)  # fmt: skip


def prepare(cfg: TrainConfig, *, resume: bool = False) -> TrainConfig:
    """``cfg`` validated, with the filesystem checked: the one step before a run writes.

    Validates the values (:meth:`TrainConfig.validated`, pure), then looks at the disk: ``out``
    (default ``runs/train-<time>``) must be a new or empty directory — or, for ``resume``, a
    run with its checkpoint — and a dataset path becomes absolute (the run resumes from
    anywhere). Nothing is created. :func:`run` calls it; a config it returned (or
    :func:`resume_config` did) is taken as is, so the CLI calls it first, to fail before it
    draws anything, and every setting is checked once.

    Raises:
        ConfigError: naming the first bad value, or the unusable run directory.
    """
    mark = "prepared to resume" if resume else "prepared"
    if mark in cfg.marks:
        return cfg
    cfg = cfg.validated()
    if not resume:
        check_memory(cfg)
    out = cfg.out if cfg.out is not None else io.default_run_dir("train")
    if resume:
        check_resumable(out)
    elif io.check_lookup(Path(out), "--out").is_dir() and restartable(Path(out)):
        io.check_writable(Path(out), f"--out {str(out)!r}")  # restarted in place by run()
    else:
        out = io.check_out_dir(out)
    return replace(cfg, out=out, dataset=resolve_dataset(cfg.dataset)).marked(mark)


def resume_config(run_dir: Path | str, given: dict[str, Any] | None = None) -> TrainConfig:
    """The configuration of the run in ``run_dir``, checked against options given again.

    Args:
        run_dir: the run directory to resume.
        given: options passed now (``{field: value}``, typed; unset ones left out). Each must
            equal the run's own (after normalization: each is validated in the run's
            configuration, values only); ``out``, if given, must be ``run_dir``.

    Returns:
        the run's validated :class:`TrainConfig` with ``out = run_dir``, prepared
        (:func:`prepare`) to resume: :func:`run` takes it as is.

    Raises:
        ConfigError: when ``run_dir`` is not a resumable run, or naming the first option whose
            value differs from the run's ``config.json``.
    """
    run_dir = Path(run_dir)
    check_resumable(run_dir)  # the filesystem, once
    try:
        stored = json.loads((run_dir / "config.json").read_text())
        base = replace(TrainConfig.from_json(stored), out=run_dir)
    except (ValueError, TypeError, ConfigError) as e:
        raise ConfigError(f"--resume {str(run_dir)!r}: unreadable config.json ({e})") from None
    base = base.validated()  # its dataset is as the run resolved it (absolute for a path)
    for key, value in (given or {}).items():
        if key == "out":
            if value is not None and Path(value).resolve() != run_dir.resolve():
                raise ConfigError(
                    f"--out {str(value)!r} differs from --resume {str(run_dir)!r}; give one"
                )
            continue
        if key not in {f.name for f in fields(TrainConfig)}:
            raise ConfigError(f"unknown option {key!r}")
        new = getattr(replace(base, **{key: value}).validated(), key)
        if key == "dataset":
            new = resolve_dataset(new)  # a relative path given again names the same data
        old = getattr(base, key)
        if new != old:
            raise ConfigError(
                f"--resume {str(run_dir)!r}: {key} = {new!r} differs from the run's "
                f"{key} = {old!r} (config.json); resume with the run's settings or start a new run"
            )
    return base.marked("prepared to resume")


#: ``(run_dir, epoch, *, settings, world, device) -> row | None``: a Hessian analysis of an
#: epoch of a run in progress (:func:`sim.hessian.record_epoch`)
HessianHook = Callable[..., dict | None]


@dataclass
class TrainResult:
    """What a run produced: its directory, the metric rows and the summary."""

    run_dir: Path
    metrics: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)


def run(
    cfg: TrainConfig,
    *,
    resume: bool = False,
    on_epoch: Callable[[dict], None] | None = None,
    on_step: Callable[[dict], None] | None = None,
    figures: bool = True,
    analyse_hessian: HessianHook | None = None,
) -> TrainResult:
    """Train, measure and observe; write (or continue) the run directory.

    Args:
        cfg: the settings; validated and the filesystem checked here (:func:`prepare`)
            before anything is created, unless ``cfg`` is :func:`prepare`'s result. For
            ``resume``, build it with :func:`resume_config`.
        resume: continue the run in ``cfg.out`` from its last checkpoint.
        on_epoch: called with each metrics row (on every rank) as soon as it exists.
        on_step: called after every optimizer step with ``{epoch, step, steps, loss}``, after
            the step's checkpoint (if any) was written; an exception it raises stops the run
            there, as a crash would (no checkpoint is written on the way out).
        figures: write the figures of :mod:`sim.figures` at the end (rank 0).
        analyse_hessian: the Hessian analysis of the epochs ``cfg.hessian_at``, called on
            every rank right after the epoch's checkpoint is written, as
            ``analyse_hessian(run_dir, epoch, settings=cfg.hessian, world=, device=)``:
            :func:`sim.hessian.record_epoch` (which the CLI passes). Required when
            ``cfg.hessian_at`` names epochs.

    Returns:
        the run directory, all rows (those of earlier sessions too) and the summary.

    Raises:
        UmweltError: for a bad setting, model or dataset (before the run directory exists), a
            run that cannot be resumed, or a resume directory whose configuration differs.
    """
    from sim import distributed

    cfg = prepare(cfg, resume=resume)
    if cfg.hessian_at and analyse_hessian is None:
        raise ConfigError(
            f"hessian_at = {cfg.hessian_at} needs the Hessian analysis: pass "
            "analyse_hessian=sim.hessian.record_epoch (umwelt train --hessian-at does)"
        )
    world, device_name = distributed.setup(cfg.device)
    completed = False
    locks: list[RunLock] = []  # rank 0's lock of the run directory, once taken
    try:
        hooks = (on_epoch, on_step, analyse_hessian)
        result = _run(cfg, world, device_name, resume, hooks, figures, locks)
        completed = True
        return result
    finally:
        for lock in locks:
            lock.release()
        distributed.teardown(world, completed=completed)


def _run(cfg, world, device_name, resume, hooks, figures, locks) -> TrainResult:
    on_epoch, on_step, analyse_hessian = hooks
    tr = Trainer(cfg, world, device_name, resume=resume)
    run_dir = tr.run_dir
    if resume:
        stored = json.loads((run_dir / "config.json").read_text()).get("data_sha256")
        if stored != tr.data_info["data_sha256"]:
            raise ConfigError(
                f"--resume {str(run_dir)!r}: the dataset {cfg.dataset!r} now has other contents "
                f"than when the run started (sha256 {tr.data_info['data_sha256'][:12]}… vs "
                f"{str(stored)[:12]}…)"
            )
        if world.is_main:  # one writer: before last.pt is read (and later replaced)
            locks.append(RunLock(run_dir, "umwelt train --resume").acquire())
        tr.load_checkpoint()
        tr.hessian_rows = [h for h in Run.open(run_dir).hessian_rows() if h["epoch"] <= tr.epoch]
        if world.distributed:
            import torch.distributed as dist

            dist.barrier()  # every rank has read last.pt before rank 0 may replace it
    elif world.is_main:
        if run_dir.is_dir() and restartable(run_dir):  # killed before its first checkpoint
            locks.append(RunLock(run_dir, "umwelt train").acquire())
            clear_early_run(run_dir)
        locks.append(claim_new(run_dir, "umwelt train"))  # one writer, before the first file
        io.write_json(run_dir / "config.json", tr.config_record())
    result = TrainResult(run_dir=run_dir, metrics=tr.rows)
    if world.is_main and resume:
        io.write_jsonl(run_dir / "metrics.jsonl", tr.rows)  # drop rows past the checkpoint
    status = "completed"
    try:
        for epoch in range(tr.epoch + 1, cfg.epochs + 1):
            t = [time.perf_counter()]
            epoch_loss = tr.train_epoch(on_step) if epoch > 0 else None
            t.append(time.perf_counter())
            row, grads = tr.measure(epoch, epoch_loss)
            t.append(time.perf_counter())
            converged = cfg.stop_at_zero_loss and row["loss"] == 0.0
            phase = tr.phases([*tr.rows, row])[-1].phase  # before this epoch's Hessian
            stop = cfg.stop_at_phase is not None and phase == cfg.stop_at_phase
            if epoch in cfg.observe_at or converged or stop:
                tr.observe(epoch, row, grads)
                if epoch in cfg.hessian_at:  # after its checkpoint model_epoch_XXXX.pt exists
                    h = analyse_hessian(
                        run_dir,
                        epoch,
                        settings=cfg.hessian,
                        world=world,
                        device=str(tr.device),
                    )
                    if h is not None:
                        tr.hessian_rows.append(h)
                        phase = tr.phases([*tr.rows, row])[-1].phase
                        stop = cfg.stop_at_phase is not None and phase == cfg.stop_at_phase
            row["phase"] = phase
            t.append(time.perf_counter())
            del grads
            row["wall_s"] = tr.wall()
            row["timing"] = {  # seconds of this session's epoch (an unfinished one: its rest)
                "train_s": t[1] - t[0],
                "measure_s": t[2] - t[1],
                "observe_s": t[3] - t[2],
            }
            tr.rows.append(row)
            tr.epoch, tr.in_epoch = epoch, None
            if world.is_main:
                io.write_jsonl(run_dir / "metrics.jsonl", tr.rows)
            tr.save_checkpoint()
            if on_epoch is not None:
                on_epoch(row)
            if not (math.isfinite(row["loss"]) and math.isfinite(row["grad_norm"])):
                status = f"diverged at epoch {epoch} (non-finite loss or gradient); lower --lr"
                break
            if converged:
                status = f"converged at epoch {epoch} (zero training risk)"
                break
            if stop:
                status = f"stopped at epoch {epoch}: entered the {phase} phase"
                break
    except BaseException as e:
        status = "interrupted" if isinstance(e, KeyboardInterrupt) else f"failed: {e!r}"
        raise
    finally:
        if world.is_main and tr.rows:
            result.summary = tr.summary(status)
            io.write_json(run_dir / "summary.json", result.summary)
            if figures and status.startswith(("completed", "converged", "diverged", "stopped")):
                make_figures(run_dir)
    return result
