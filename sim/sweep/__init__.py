r"""``umwelt sweep``: many ``umwelt train`` runs over capacity × data complexity × temperature,
collected into one table and drawn as phase diagrams (THEORY.md §5, the headline claim).

A sweep file (:mod:`~sim.sweep.spec`) names the points; each point is an ordinary train run
directory ``DIR/points/<id>`` (so ``umwelt phases``, ``hessian``, ``plot`` and ``--resume``
work on each), run by a :mod:`~sim.sweep.worker` process on this machine or as a SLURM array
task (:mod:`~sim.sweep.executors`). Running the same command again continues: finished points
are skipped, interrupted ones resumed exactly, failed ones retried once and then recorded
with their error (one failed point never stops the sweep). :mod:`~sim.sweep.collect` writes
``phases.csv``; :mod:`~sim.sweep.boundary` the phase boundary; :mod:`~sim.sweep.figures` the
diagrams. The directory is described in :mod:`~sim.sweep.store`.

The sweep's own directory has one writer at a time (``DIR/.lock``, the sweep driver's); each
point's run directory has its own lock, taken by its worker.

Sitting above the drivers (it starts train and Hessian runs), the sweep may import them, as
:mod:`sim.api` and :mod:`sim.cli` do.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sim.runs import io
from sim.runs.codec import JsonConfig, check_path
from sim.runs.lock import RunLock, check_not_held, claim_new
from sim.sweep import store
from sim.sweep.executors import SlurmOptions, check_slurm_available, run_local, run_slurm
from sim.sweep.spec import Point, SweepSpec, read_spec
from umwelt._checks import check_int
from umwelt.errors import ConfigError

__all__ = [
    "EXECUTORS",
    "SweepConfig",
    "SweepPlan",
    "SweepResult",
    "estimate",
    "plot",
    "prepare",
    "run",
]

EXECUTORS = ("local", "slurm")


def available_cores() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class SweepConfig(JsonConfig):
    """Every setting of ``umwelt sweep``: the sweep file, its directory, where points run."""

    spec: Path | None = None  # the sweep file (TOML); None with collect (DIR only)
    out: Path | None = None  # the sweep directory (required)
    executor: str = "local"  # local (a process pool) or slurm (submitit)
    jobs: int | None = None  # local: points at a time (None: the number of cores)
    dry_run: bool = False  # list the points and their estimated cost; write nothing
    extend: bool = False  # add a different sweep file's new points to DIR's sweep
    retry_failed: bool = False  # start the points recorded as failed again
    collect: bool = False  # only rebuild phases.csv, the boundary and the figures from DIR
    figures: bool = True  # draw the phase diagrams at the end
    slurm_partition: str | None = None
    slurm_time: int = 60  # minutes per point (a job array task)
    slurm_gpus_per_job: int = 0
    slurm_cpus_per_job: int = 1
    slurm_array_parallelism: int = 64
    slurm_cluster: str | None = None  # submitit's cluster (None: slurm; "local": this machine)

    def validated(self) -> SweepConfig:
        """A copy with checked values (the sweep file is read by :func:`run`)."""
        if self.executor not in EXECUTORS:
            raise ConfigError(f"executor must be local or slurm, got {self.executor!r}")
        out = check_path("out", self.out)
        if out is None:
            raise ConfigError("--out DIR is required: the sweep directory")
        spec = check_path("spec", self.spec)
        if spec is None and not self.collect:
            raise ConfigError("a sweep file is required (umwelt sweep SPEC.toml --out DIR)")
        jobs = None if self.jobs is None else check_int("jobs", self.jobs, 1)
        if self.slurm_partition is not None and not str(self.slurm_partition).strip():
            raise ConfigError("slurm partition must be a name, got ''")
        if self.slurm_cluster not in (None, "slurm", "local", "debug"):
            raise ConfigError(f"slurm cluster must be slurm or local, got {self.slurm_cluster!r}")
        return replace(
            self,
            spec=spec,
            out=out,
            jobs=jobs,
            slurm_time=check_int("slurm time (minutes)", self.slurm_time, 1),
            slurm_gpus_per_job=check_int("slurm gpus per job", self.slurm_gpus_per_job, 0),
            slurm_cpus_per_job=check_int("slurm cpus per job", self.slurm_cpus_per_job, 1),
            slurm_array_parallelism=check_int(
                "slurm array parallelism", self.slurm_array_parallelism, 1
            ),
        )

    def slurm(self) -> SlurmOptions:
        """The SLURM settings."""
        return SlurmOptions(
            partition=self.slurm_partition,
            time_min=self.slurm_time,
            gpus_per_job=self.slurm_gpus_per_job,
            cpus_per_job=self.slurm_cpus_per_job,
            array_parallelism=self.slurm_array_parallelism,
            cluster=self.slurm_cluster,
        )


@dataclass
class SweepResult:
    """What a sweep did: its directory, each point's state, the collected rows (none for a
    dry run), the cost estimate of a dry run and the figures written."""

    out: Path
    states: dict[str, str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    estimate: list[dict[str, Any]] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    boundary: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """How many points are in each state."""
        return {s: sum(v == s for v in self.states.values()) for s in store.STATES}


#: ``(states, running ids)`` after every change
OnUpdate = Callable[[dict[str, str], set[str]], None]

_STEP_S = 1.5e-3  # seconds of overhead per optimizer step of a small net (measured, 1 thread)
_START_S = 4.0  # seconds to start a worker (python, torch, numba) and observe epoch 0
_FLOPS = 2e9  # floating-point operations per second and thread, a CPU core's rough rate


def estimate(points: tuple[Point, ...] | list[Point], *, threads: int = 1) -> list[dict]:
    """A rough cost of each point from its settings alone (nothing is built or loaded): its
    parameters ``n_params``, ``n_train``, the floating-point operations of every epoch's
    training and measuring passes (``flops``: 12·N·n + 2·N·n_test per epoch) and ``seconds``
    at ``_FLOPS`` per thread plus a fixed start and a per-step overhead. An upper bound when
    the run may stop at a phase."""
    from sim.train import model_size

    out = []
    for p in points:
        cfg = p.config
        size = model_size(cfg) or {}
        P, n, n_test = size.get("n_parameters", 0), size.get("n_train", 0), size.get("n_test", 0)
        steps = math.ceil(n / cfg.batch_size) * cfg.epochs
        flops = cfg.epochs * (12 * P * n + 2 * P * n_test)
        seconds = _START_S + steps * _STEP_S + flops / (_FLOPS * threads)
        out.append({"id": p.id, "label": p.label(), "n_params": P, "n_train": n,
                    "epochs": cfg.epochs, "flops": flops, "seconds": seconds})  # fmt: skip
    return out


def _check_points(spec: SweepSpec) -> None:
    """Each point's memory need, before any run starts (``umwelt train``'s own check)."""
    from sim.train import check_memory

    seen = set()
    for p in spec.points:
        cfg = p.config
        key = (cfg.model, cfg.width, cfg.dataset, cfg.subset, cfg.subset_test, cfg.batch_size,
               cfg.eval_batch_size, cfg.dtype)  # fmt: skip
        if key in seen:
            continue
        seen.add(key)
        try:
            check_memory(cfg)
        except ConfigError as e:
            raise ConfigError(f"point {p.label()}: {e}") from None


def _lock(out: Path) -> RunLock:
    """The sweep directory's lock: a new directory (claimed), or an existing sweep's."""
    if out.is_dir() and (out / store.SWEEP_FILE).is_file():
        return RunLock(out, "umwelt sweep").acquire()
    return claim_new(out, "umwelt sweep")


@dataclass(frozen=True)
class SweepPlan:
    """A checked sweep, ready to run: its settings, the parsed sweep file (``None`` for
    ``collect``) and the threads of each point."""

    cfg: SweepConfig
    spec: SweepSpec | None
    threads: int


def prepare(cfg: SweepConfig | SweepPlan) -> SweepPlan:
    """Everything checked before anything is written: the values, the sweep file and every
    point (``umwelt train``'s validation and memory check), the directory (new, this sweep's,
    or — with ``extend`` — another sweep's), the executor. The CLI calls it before it draws a
    progress bar; :func:`run` takes its result as is.

    Raises:
        ConfigError: naming the first bad value, point or directory.
    """
    if isinstance(cfg, SweepPlan):
        return cfg
    cfg = cfg.validated()
    out = cfg.out
    if cfg.collect:
        store.read_sweep(out)  # a sweep directory, or one line saying it is not
        return SweepPlan(cfg, None, 0)
    spec = read_spec(cfg.spec)
    _check_points(spec)
    if cfg.dry_run:
        return SweepPlan(cfg, spec, _threads(cfg))
    if cfg.executor == "slurm":
        check_slurm_available()
    if out.is_dir() and (out / store.SWEEP_FILE).is_file():
        check_not_held(out)
        store.merge(out, spec, extend=cfg.extend)  # refuses another sweep
        io.check_writable(out, f"--out {str(out)!r}")
    else:
        io.check_out_dir(out)
    return SweepPlan(cfg, spec, _threads(cfg))


def run(cfg: SweepConfig | SweepPlan, *, on_update: OnUpdate | None = None) -> SweepResult:
    """Run (or continue) the sweep of ``cfg``: check every point (:func:`prepare`), run what
    is not finished, collect, estimate the boundary, draw the diagrams.

    Args:
        cfg: the settings, or :func:`prepare`'s plan of them.
        on_update: called with every point's state and the running ids after each change.

    Raises:
        ConfigError: for a bad sweep file or point (before anything is written), a directory
            that holds another sweep (without ``extend``), or one another sweep is writing.
        KeyboardInterrupt: interrupted; every point is resumable, the table is collected.
    """
    plan = prepare(cfg)
    cfg, spec, out = plan.cfg, plan.spec, plan.cfg.out
    if cfg.collect:
        with RunLock(out, "umwelt sweep --collect"):
            return _finish(out, cfg, store.states(out, _ids(out)))
    if cfg.dry_run:
        return SweepResult(out, dict.fromkeys((p.id for p in spec.points), "pending"),
                           estimate=estimate(spec.points, threads=plan.threads))  # fmt: skip
    lock = _lock(out)
    try:
        record = store.merge(out, spec, extend=cfg.extend)
        store.write_sweep(out, record)
        ids = [p["id"] for p in record["points"]]
        if cfg.retry_failed:
            for pid, state in store.states(out, ids).items():
                if state == "failed":
                    store.clear_failure(out, pid)
        todo = [p for p, s in store.states(out, ids).items() if s in ("pending", "interrupted")]
        update = _all(out, ids, on_update)
        try:
            if cfg.executor == "local":
                jobs = cfg.jobs or available_cores()
                run_local(out, todo, jobs=jobs, threads=plan.threads, on_update=update)
            else:
                run_slurm(out, todo, options=cfg.slurm(), on_update=update)
        finally:
            result = _finish(out, cfg, store.states(out, ids))
    finally:
        lock.release()
    return result


def _ids(out: Path) -> list[str]:
    return [p["id"] for p in store.read_sweep(out)["points"]]


def _threads(cfg: SweepConfig) -> int:
    if cfg.executor == "slurm":
        return cfg.slurm_cpus_per_job
    jobs = cfg.jobs or available_cores()
    return max(1, available_cores() // jobs)


def _all(out: Path, ids: list[str], on_update: OnUpdate | None) -> OnUpdate | None:
    """``on_update`` seeing every point of the sweep, not only those started now."""
    if on_update is None:
        return None
    before = store.states(out, ids)

    def update(states: dict[str, str], running: set[str]) -> None:
        on_update({**before, **states}, running)

    return update


def _finish(out: Path, cfg: SweepConfig, states: dict[str, str]) -> SweepResult:
    """Collect the table, estimate and write the boundary, draw the figures."""
    from sim.sweep.collect import collect

    rows = collect(out)
    result = SweepResult(out, states, rows=rows)
    boundary, result.figures = _analyse(out, rows, figures=cfg.figures)
    if boundary is not None:
        result.boundary = [
            {**g["facet"], **{k: v for k, v in p.items() if not isinstance(v, list)}}
            for g in boundary["groups"]
            for p in g["points"]
        ]
    return result


def _analyse(out: Path, rows: list[dict], *, figures: bool, write: bool = True, **axes):
    """The boundary of the default (or given) axes and the figures: ``(boundary, paths)``."""
    from sim.sweep import boundary as bd
    from sim.sweep.figures import choose_axes, draw

    names = store.read_sweep(out)["axes"]
    x, y, facet = choose_axes(rows, names, axes.get("x"), axes.get("y"), axes.get("facet"))
    result = None
    if any(r.get("converged") is not None for r in rows):
        result = bd.estimate(rows, names, x=x, y=y, facet=facet)
        if write:
            bd.write(out, result)
    paths = draw(out, rows, result, axes=names, x=x, y=y, facet=facet) if figures else []
    return result, paths


def plot(
    sweep_dir: Path | str, *, x: str | None = None, y: str | None = None, facet: str | None = None
) -> list[Path]:
    """``umwelt plot DIR``: the phase diagrams of a sweep directory over the columns ``x``,
    ``y`` (and panels by ``facet``), from its run directories as they are now (nothing but
    the figures is written); the paths written.

    Raises:
        ConfigError: when ``sweep_dir`` is not a sweep directory, or a column is not a
            numeric one of its rows.
    """
    from sim.sweep.collect import read_rows

    out = Path(sweep_dir)
    rows = read_rows(out)
    return _analyse(out, rows, figures=True, write=False, x=x, y=y, facet=facet)[1]
