r"""One point of a sweep, run in its own process: ``python -m sim.sweep.worker DIR ID``.

The worker reads the point's settings from ``DIR/sweep.json`` and continues it from where its
run directory stands: nothing done yet (or killed before its first checkpoint) — a new
``umwelt train`` run in ``DIR/points/<id>``; a checkpoint — ``--resume``, exactly; finished —
nothing. With the sweep's ``hessian_at = "last"``, the Hessian of the run's last epoch is then
analysed (``umwelt hessian``). A run that raises counts one failed attempt in
``DIR/failures/<id>.json`` (:mod:`sim.sweep.store`); one that finishes forgets its failures.

Threads: the executors start each worker with ``OMP_NUM_THREADS`` set, and :func:`run_point`
also sets torch's own thread count, so that jobs never oversubscribe the cores.

Exit codes: 0 finished (or already finished), 130 interrupted (resumable), 2 a bad setting or
dataset, 1 anything else.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

from sim.sweep import store
from sim.sweep.spec import label

__all__ = ["run_job", "run_point"]


def set_threads(threads: int | None) -> None:
    """Pin this process to ``threads`` threads (the environment and torch's setting)."""
    if threads is None:
        return
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)


def run_point(sweep_dir: Path | str, pid: str, *, threads: int | None = None) -> str:
    """Run (or continue) point ``pid`` of the sweep in ``sweep_dir`` in this process.

    Returns:
        the point's state afterwards (``"done"``).

    Raises:
        KeyboardInterrupt: interrupted; the point resumes from its last checkpoint.
        Exception: the run failed; the attempt is recorded in ``failures/<id>.json`` first.
    """
    from sim.hessian import record_epoch
    from sim.train import prepare, resume_config, run

    sweep_dir = Path(sweep_dir)
    record = store.read_point(sweep_dir, pid)
    set_threads(threads)
    import torch

    print(f"point {pid}: {label(record['values'])}; {torch.get_num_threads()} threads", flush=True)
    d = store.point_dir(sweep_dir, pid)
    try:
        if store.point_state(sweep_dir, pid) != "done":
            cfg = store.point_config(sweep_dir, record)
            resume = (d / "checkpoints" / store.CHECKPOINT).is_file()
            cfg = resume_config(d) if resume else prepare(cfg)
            hook = record_epoch if cfg.hessian_at else None
            d.parent.mkdir(parents=True, exist_ok=True)
            run(cfg, resume=resume, figures=False, analyse_hessian=hook)
        if record.get("hessian") is not None:
            _hessian_of_last_epoch(d, record["hessian"])
    except KeyboardInterrupt:
        raise
    except BaseException as e:
        store.record_failure(sweep_dir, pid, _one_line(e))
        raise
    store.clear_failure(sweep_dir, pid)
    return store.point_state(sweep_dir, pid)


def _hessian_of_last_epoch(run_dir: Path, settings: dict) -> None:
    """``umwelt hessian`` of the run's last epoch, unless it is already analysed."""
    from sim.hessian import HessianConfig
    from sim.hessian import run as run_hessian
    from sim.runs import HessianSettings, Run

    run = Run.open(run_dir)
    last = run.metrics(required=True)[-1]["epoch"]
    if any(r["epoch"] == last for r in run.hessian_rows("finite_T")):
        return
    cfg = HessianConfig.of(
        run_dir, HessianSettings.from_json(settings), epochs=(last,), figures=False
    )
    run_hessian(cfg)


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if text.startswith(type(e).__name__) else f"{type(e).__name__}: {text}"


def run_job(sweep_dir: str, pid: str, threads: int | None = None) -> str:
    """:func:`run_point` as a submitit job (a SLURM array task): the same, in the job's
    process."""
    return run_point(sweep_dir, pid, threads=threads)


def main(argv: list[str] | None = None) -> int:
    """``python -m sim.sweep.worker DIR ID [THREADS]``: :func:`run_point`, an exit code."""
    from umwelt.errors import UmweltError

    args = sys.argv[1:] if argv is None else argv
    sweep_dir, pid = args[0], args[1]
    threads = int(args[2]) if len(args) > 2 else None
    try:
        run_point(sweep_dir, pid, threads=threads)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except UmweltError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception:
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
