r"""Where a sweep's points run: a bounded local process pool, or a SLURM job array (submitit).

Both start :mod:`sim.sweep.worker` once per point, each pinned to its share of the cores, and
both read the outcome from the point's run directory (:func:`sim.sweep.store.point_state`), so
that what finished where is collected the same way. A failed point is started once more in
the same sweep (:data:`~sim.sweep.store.ATTEMPTS` in all); interrupted points are resumed by
the next run of the sweep.

``local``: one worker process per point, at most ``jobs`` at a time, each with
``OMP_NUM_THREADS = threads``, in its own session so that Ctrl-C reaches the sweep alone,
which then interrupts every worker once (each writes its state and releases its lock) and
waits for them.

``slurm``: one job array (``submitit.AutoExecutor``) per round, its tasks writing into the same
directory (a shared filesystem); the sweep waits for the array, polling, and a second Ctrl-C
leaves the jobs running (``umwelt sweep DIR --collect`` later).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sim.sweep import store
from umwelt.errors import ConfigError

__all__ = ["SlurmOptions", "run_local", "run_slurm"]

#: ``(states, running)``: called after every change (states of all points, ids running now)
OnUpdate = Callable[[dict[str, str], set[str]], None]
_POLL_S = 0.2


def _retry(sweep_dir: Path, pid: str, tried: dict[str, int]) -> bool:
    """Whether point ``pid`` should be started (again): not finished, not failed for good."""
    return store.point_state(sweep_dir, pid) in ("pending", "interrupted") and tried[pid] < (
        store.ATTEMPTS
    )


def run_local(
    sweep_dir: Path,
    ids: list[str],
    *,
    jobs: int,
    threads: int,
    on_update: OnUpdate | None = None,
) -> dict[str, str]:
    """Run the points ``ids`` in at most ``jobs`` worker processes of ``threads`` threads.

    Returns:
        the state of every point afterwards.

    Raises:
        KeyboardInterrupt: after every worker was interrupted and has ended.
    """
    sweep_dir = Path(sweep_dir)
    env = {**os.environ, **{v: str(threads) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}}
    queue = list(ids)
    tried = dict.fromkeys(ids, 0)
    running: dict[str, subprocess.Popen] = {}
    logs = sweep_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    current = store.states(sweep_dir, ids)

    def update() -> None:
        if on_update is not None:
            on_update(current, set(running))

    update()
    try:
        while queue or running:
            while queue and len(running) < jobs:
                pid = queue.pop(0)
                if not _retry(sweep_dir, pid, tried):
                    continue
                tried[pid] += 1
                with open(logs / f"{pid}.log", "ab") as log:
                    running[pid] = subprocess.Popen(
                        [sys.executable, "-m", "sim.sweep.worker", str(sweep_dir), pid,
                         str(threads)],
                        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                        start_new_session=True,
                    )  # fmt: skip
                current[pid] = "running"
                update()
            time.sleep(_POLL_S)
            for pid, proc in list(running.items()):
                if proc.poll() is None:
                    continue
                del running[pid]
                current[pid] = store.point_state(sweep_dir, pid)
                if proc.returncode not in (0, 130) and _retry(sweep_dir, pid, tried):
                    queue.append(pid)  # once more, at the end
                update()
    except KeyboardInterrupt:
        _interrupt(running)
        raise
    return store.states(sweep_dir, ids)


def _interrupt(running: dict[str, subprocess.Popen], grace_s: float = 120.0) -> None:
    """Ctrl-C to every worker once; wait for them (a worker writes its state and unlocks)."""
    for proc in running.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + grace_s
    for proc in running.values():
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()  # its lock is stale and is taken over by the next run
            proc.wait()


@dataclass(frozen=True)
class SlurmOptions:
    """The SLURM settings of ``--executor slurm``; ``cluster`` is submitit's (``None``: SLURM
    when ``sbatch`` exists; ``"local"`` runs the array on this machine, for tests)."""

    partition: str | None = None
    time_min: int = 60
    gpus_per_job: int = 0
    cpus_per_job: int = 1
    array_parallelism: int = 64
    cluster: str | None = None


def _submitit():
    try:
        import submitit
    except ImportError:
        raise ConfigError("--executor slurm needs submitit: pip install 'umwelt[slurm]'") from None
    return submitit


def check_slurm_available() -> None:
    """That submitit can be imported (before anything is written)."""
    _submitit()


def run_slurm(
    sweep_dir: Path,
    ids: list[str],
    *,
    options: SlurmOptions,
    on_update: OnUpdate | None = None,
) -> dict[str, str]:
    """Run the points ``ids`` as SLURM job arrays (one per round), waiting for them.

    Returns:
        the state of every point afterwards.
    """
    from sim.sweep.worker import run_job

    submitit = _submitit()
    sweep_dir = Path(sweep_dir)
    executor = submitit.AutoExecutor(folder=sweep_dir / "slurm", cluster=options.cluster)
    params = {
        "timeout_min": options.time_min,
        "cpus_per_task": options.cpus_per_job,
        "slurm_array_parallelism": options.array_parallelism,
        "name": f"umwelt-sweep-{sweep_dir.name}",
    }
    if options.gpus_per_job:
        params["gpus_per_node"] = options.gpus_per_job
    if options.partition:
        params["slurm_partition"] = options.partition
    executor.update_parameters(**params)
    tried = dict.fromkeys(ids, 0)
    current = store.states(sweep_dir, ids)
    todo = [p for p in ids if _retry(sweep_dir, p, tried)]
    while todo:
        for pid in todo:
            tried[pid] += 1
        n = len(todo)
        jobs = executor.map_array(run_job, [str(sweep_dir)] * n, todo, [options.cpus_per_job] * n)
        _write_jobs(sweep_dir, dict(zip(todo, (j.job_id for j in jobs))))
        waiting = dict(zip(todo, jobs))
        while waiting:
            for pid, job in list(waiting.items()):
                current[pid] = store.point_state(sweep_dir, pid)
                if job.done():
                    del waiting[pid]
            if on_update is not None:
                on_update(current, {p for p in waiting if current[p] == "running"})
            if waiting:
                time.sleep(_POLL_S * 5)
        todo = [p for p in todo if _retry(sweep_dir, p, tried)]
    return store.states(sweep_dir, ids)


def _write_jobs(sweep_dir: Path, jobs: dict[str, str]) -> None:
    """Add the job id of every point submitted to ``slurm/jobs.json``."""
    from sim.runs import io
    from sim.runs.untrusted import load_json

    path = sweep_dir / "slurm" / "jobs.json"
    old = load_json(path) if path.is_file() else {}
    io.write_json(path, {**(old if isinstance(old, dict) else {}), **jobs})
