"""Processes stopped from outside (the reliability issue's process cases): Ctrl-C (SIGINT) to
``umwelt train``, ``umwelt simulate`` and ``umwelt hessian``, and ``kill -9`` before a train
run's first checkpoint. Each leaves a directory that is whole — no ``*.tmp`` file, readable by
:meth:`sim.runs.Run.open`, its lock gone — and a train run continues to exactly the numbers of a
run never stopped. The order of the writes that makes this so is checked in process (fast).
(Two writers of one directory: ``tests/test_runs_lock.py``.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from sim.cli import app
from sim.runs import Run
from sim.runs.lock import holder, is_held

runner = CliRunner()
UMWELT = [sys.executable, "-m", "sim.cli"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
DATA = "teacher:n=90,dim=8,n_test=40"
TRAIN = ["train", "--model", "mlp:8,6", "--dataset", DATA, "--epochs", "3", "--batch-size", "16",
         "--lr", "0.05", "--observe-at", "0,2,3", "--eval-batch-size", "32", "--temperature",
         "0.5", "--no-figures"]  # fmt: skip


def _strip(rows: list[dict]) -> list[dict]:
    """The rows without their clock readings."""
    return [{k: v for k, v in r.items() if k not in ("wall_s", "timing", "total_wall_s")}
            for r in rows]  # fmt: skip


def _weights(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["model"]


def _whole(run_dir: Path) -> Run:
    """The run in ``run_dir``, checked whole: no temporary file, no lock, every row readable."""
    assert not list(run_dir.rglob("*.tmp")), sorted(run_dir.rglob("*.tmp"))
    assert holder(run_dir) is None and not is_held(run_dir)
    run = Run.open(run_dir)
    run.metrics(required=True), run.summary()
    return run


def _same_run(a: Path, b: Path) -> None:
    """Equal metric rows and equal final weights."""
    assert _strip(Run.open(a).metrics()) == _strip(Run.open(b).metrics())
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def _interrupt_when(proc: subprocess.Popen, ready, timeout: float = 120) -> tuple[int, str]:
    """Send SIGINT to ``proc`` once ``ready()`` holds; its exit code and stderr."""
    t = time.time()
    while not ready():
        assert proc.poll() is None, "it ended before it could be interrupted"
        assert time.time() - t < timeout, "it never got there"
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


@pytest.mark.slow
def test_ctrl_c_in_train_then_resume_equals_the_run_never_stopped(tmp_path):
    """Step 11 = epoch 2, step 5; with checkpoints every 3 steps the last is epoch 2, step 3
    (``--interrupt-after-steps`` sends the SIGINT a Ctrl-C would, at that precise step)."""
    out, ref = tmp_path / "stopped", tmp_path / "ref"
    args = [*TRAIN, "--checkpoint-every", "3", "--out", str(out)]
    proc = subprocess.run([*UMWELT, *args, "--interrupt-after-steps", "11"], env=ENV,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "interrupted; continue with --resume RUN (the last checkpoint is kept)"
    ]
    assert json.loads((out / "summary.json").read_text())["status"] == "interrupted"
    _whole(out)
    ck = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert ck["epoch"] == 1 and ck["in_epoch"]["step"] == 3

    res = runner.invoke(app, ["train", "--resume", str(out), "--quiet", "--no-figures"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, [*TRAIN, "--checkpoint-every", "3", "--out", str(ref), "--quiet"])
    assert res.exit_code == 0, res.output
    assert Run.open(out).summary()["status"] == "completed"
    _whole(out)
    _same_run(out, ref)


@pytest.mark.slow
def test_kill_9_before_the_first_checkpoint_then_the_same_out_again(tmp_path):
    """A real ``kill -9`` right after ``config.json`` is written, while epoch 0 is measured
    (seconds: before ``last.pt``): a stale lock is left behind; the same command again takes it
    over, starts in place and equals a run never stopped."""
    out, ref = tmp_path / "killed", tmp_path / "ref"
    args = ["train", "--model", "mlp:16", "--dataset", "teacher:n=4000,dim=32,n_test=100",
            "--epochs", "1", "--batch-size", "64", "--observe-at", "0,1",
            "--no-figures"]  # fmt: skip
    proc = subprocess.Popen([*UMWELT, *args, "--out", str(out)], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        t = time.time()
        while not (out / "config.json").is_file():
            assert proc.poll() is None and time.time() - t < 300, "it never started"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        proc.kill()
    assert not (out / "checkpoints" / "last.pt").exists(), "killed too late: after last.pt"
    assert holder(out)["pid"] == proc.pid and not is_held(out)  # left behind, stale
    res = runner.invoke(app, [*args, "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, [*args, "--out", str(ref), "--quiet"])
    assert res.exit_code == 0, res.output
    _whole(out)
    _same_run(out, ref)


@pytest.mark.slow
def test_ctrl_c_in_simulate_leaves_a_whole_run(tmp_path):
    out = tmp_path / "sim"
    args = ["simulate", "--epochs", "100000", "--hidden", "8", "--samples", "4", "--dataset",
            DATA, "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen([*UMWELT, *args], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip

    def two_epochs() -> bool:
        path = out / "metrics.jsonl"
        return path.is_file() and len(path.read_text().splitlines()) >= 3

    code, err = _interrupt_when(proc, two_epochs)
    assert code == 130 and err.strip().splitlines() == [
        "interrupted; metrics and weights so far are in the run directory"
    ], err
    run = _whole(out)
    assert run.summary()["status"] == "interrupted"
    last = run.metrics()[-1]["epoch"]
    assert last >= 2 and run.model(which="finite_T") is not None  # the weights of that row


@pytest.mark.slow
def test_ctrl_c_in_hessian_leaves_a_whole_run_and_the_analysis_continues(tmp_path):
    """Interrupted in the middle of its second epoch: the first is written whole (its row, its
    arrays, the settings file), nothing half-written, and the same command then finishes."""
    run_dir = tmp_path / "sim"
    res = runner.invoke(app, ["simulate", "--epochs", "2", "--hidden", "32", "--samples", "2",
                              "--dataset", "teacher:n=300,dim=16,n_test=10", "--quiet",
                              "--out", str(run_dir)])  # fmt: skip
    assert res.exit_code == 0, res.output
    args = ["hessian", str(run_dir), "--no-figures", "--quiet", "--entries", "200"]
    proc = subprocess.Popen([*UMWELT, *args], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    first = run_dir / "hessian" / "epoch_0000.npz"
    code, err = _interrupt_when(proc, first.is_file)
    assert code == 130 and err.strip().splitlines() == [
        "interrupted; the epochs finished so far are in RUN/hessian"
    ], err
    run = _whole(run_dir)
    assert [r["epoch"] for r in run.hessian_rows("finite_T")] == [0]
    assert (run_dir / "hessian" / "config.json").is_file()
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert [r["epoch"] for r in Run.open(run_dir).hessian_rows("finite_T")] == [0, 2]


# -- the order of the writes: what an interruption between two of them leaves ------------------


@pytest.fixture
def renames(monkeypatch) -> list[str]:
    """The files written (every file is renamed into place, :func:`sim.runs.io.atomic_write`)
    in order, as the paths given."""
    done, replace = [], os.replace

    def record(src, dst, *args, **kwargs):
        replace(src, dst, *args, **kwargs)
        done.append(str(dst))

    monkeypatch.setattr(os, "replace", record)
    return done


def test_simulate_writes_an_epochs_weights_before_its_row(tmp_path, renames):
    """Stopped between any two writes, ``metrics.jsonl``'s last row names the weights on disk."""
    from sim import api

    out = tmp_path / "sim"
    api.simulate(temperature=0.1, hidden=(4,), epochs=2, dataset="teacher:n=40,dim=5,n_test=10",
                 samples=2, out=out)  # fmt: skip
    names = [str(Path(p).relative_to(out)) for p in renames]
    epoch = ["checkpoints/finite_T.pt", "checkpoints/relu.pt", "metrics.jsonl"]
    assert names[: 2 + 3 * len(epoch)] == ["config.json", "checkpoints/init.pt", *epoch * 3]
    assert names[11] == "summary.json"


def test_hessian_writes_its_settings_with_its_first_result(tmp_path, sim_run, renames):
    """``hessian/config.json`` comes with the first epoch's arrays, not before the analysis
    (a refused or interrupted first epoch leaves no settings that bind the next analysis)."""
    import shutil

    from sim import api

    run_dir = Path(shutil.copytree(sim_run, tmp_path / "sim"))
    api.hessian(run_dir, lanczos_steps=3, extreme_steps=3, start_vectors=2, entries=0,
                grid_points=11, figures=False)  # fmt: skip
    names = [str(Path(p).relative_to(run_dir)) for p in renames]
    assert names[:3] == ["hessian/config.json", "hessian/epoch_0000.npz", "hessian/hessian.jsonl"]
    assert names.count("hessian/config.json") == 1
