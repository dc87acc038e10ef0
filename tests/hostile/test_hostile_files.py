"""Hostile and damaged run files, generated here in tmp_path (nothing binary is committed):
every command that reads them gives exit 2, one line naming the file, no traceback, and changes
nothing. (The reliability issue's corpus, the file cases.)"""

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sim import api

# sim_run, train_run: tests/hostile/conftest.py
UMWELT = [sys.executable, "-m", "sim.cli"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
DATA = "teacher:n=40,dim=5,n_test=10"


def _tree(d: Path) -> dict:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _refused(args: list[str], needle: str, unchanged: Path | None = None) -> str:
    before = _tree(unchanged) if unchanged is not None else None
    res = subprocess.run([*UMWELT, *args], env=ENV, capture_output=True, text=True, timeout=120)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, res.stdout + res.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    if unchanged is not None:
        assert _tree(unchanged) == before
    return lines[0]


class _Payload:
    """A pickle that would create a file when loaded (it must never be)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_a_tampered_metrics_row(sim_run, tmp_path):
    d = _copy(sim_run, tmp_path / "d")
    (d / "metrics.jsonl").write_text('{"epoch": "abc"}\n')
    _refused(["plot", str(d)], "line 1: epoch must be an integer ≥ 0, got 'abc'", d)
    (d / "metrics.jsonl").write_text('{"epoch": 0}\n{not json\n')
    _refused(["plot", str(d)], "line 2 is not JSON", d)
    _refused(["phases", str(d)], "line 2 is not JSON", d)


def test_a_truncated_and_a_pickled_observation(train_run, tmp_path):
    d = _copy(train_run, tmp_path / "d")
    path = d / "observations" / "epoch_0001.npz"
    path.write_bytes(path.read_bytes()[:100])
    _refused(["plot", str(d)], "unreadable arrays", d)
    np.savez(path, epoch=np.array(1), bad=np.array([{"x": 1}], dtype=object))
    _refused(["plot", str(d)], "unreadable arrays", d)


@pytest.mark.parametrize("name", ["finite_T", "relu", "init"])
def test_a_malicious_checkpoint_runs_no_code(sim_run, tmp_path, name):
    d = _copy(sim_run, tmp_path / "d")
    marker = tmp_path / "pwned"
    (d / "checkpoints" / f"{name}.pt").write_bytes(pickle.dumps(_Payload(marker)))
    line = _refused(["circuits", "--checkpoint", str(d), "--which", name, "--json"], f"{name}.pt")
    assert "refused: weights_only" in line or "cannot read checkpoint" in line
    assert not marker.exists()
    if name != "init":
        _refused(["hessian", str(d), "--net", name if name == "relu" else "finite_T"],
                 f"{name}.pt", d)  # fmt: skip
        assert not marker.exists()


def test_a_truncated_train_checkpoint_and_another_models(train_run, tmp_path):
    d = _copy(train_run, tmp_path / "d")
    last = d / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:64])
    _refused(["train", "--resume", str(d), "--quiet"], "cannot read checkpoint", d)
    other = tmp_path / "other"
    api.train(model="mlp:7", dataset=DATA, epochs=1, batch_size=8, observe_at=(0,), out=other,
              figures=False)  # fmt: skip
    shutil.copy(other / "checkpoints" / "last.pt", last)
    _refused(["train", "--resume", str(d), "--quiet"], "does not fit the run's model 'mlp:4'", d)


def test_a_corrupt_hessian_row_file_is_refused_before_any_product(train_run, tmp_path):
    d = _copy(train_run, tmp_path / "d")
    tiny = ["--lanczos-steps", "3", "--start-vectors", "2", "--extreme-steps", "3",
            "--entries", "0", "--grid-points", "11", "--no-figures", "--quiet"]  # fmt: skip
    res = subprocess.run([*UMWELT, "hessian", str(d), "--epochs", "0", *tiny], env=ENV,
                         capture_output=True, text=True)  # fmt: skip
    assert res.returncode == 0, res.stderr
    rows = d / "hessian" / "hessian.jsonl"
    rows.write_text(rows.read_text() + "{broken\n")
    _refused(["hessian", str(d), "--epochs", "1", *tiny], "hessian.jsonl' line 2 is not JSON", d)
    assert not (d / "hessian" / "epoch_0001.npz").exists()


def test_out_that_cannot_be_written_is_refused_before_computing(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for cmd in (["simulate", "--epochs", "1"], ["circuits", "--widths", "3,2,1"]):
        _refused([*cmd, "--out", str(afile)], "is a file, not a directory")
        _refused([*cmd, "--out", str(afile / "sub")], "which is a file")
    _refused(["simulate", "--epochs", "1", "--out", "/proc/umwelt-run"], "cannot write in")
    _refused(["circuits", "--widths", "3,2,1", "--out", "/proc/umwelt-run"], "cannot write in")
    assert json.loads(json.dumps(afile.read_text())) == "x"


def test_a_run_killed_before_its_first_checkpoint_restarts_in_place(train_run, tmp_path):
    d = _copy(train_run, tmp_path / "d")
    (d / "checkpoints" / "last.pt").unlink()  # as if killed before the first one
    line = _refused(["train", "--resume", str(d), "--quiet"], "start it again in place", d)
    assert "--out" in line
    args = ["train", "--model", "mlp:4", "--dataset", DATA, "--epochs", "1", "--batch-size", "8"]
    res = subprocess.run([*UMWELT, *args, "--out", str(d), "--quiet", "--no-figures"], env=ENV,
                         capture_output=True, text=True)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert (d / "checkpoints" / "last.pt").is_file() and not (d / ".lock").exists()
    (d / "notes.txt").write_text("mine")  # something that is not a run's: never removed
    (d / "checkpoints" / "last.pt").unlink()
    _refused([*args, "--out", str(d)], "already exists and is not empty", d)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["train", "--model", "mlp:3", "--dataset", DATA, "--stop-at-phase", "plastic"],
         "stop-at-phase must be one of converged, frustration, got 'plastic'"),
        (["phases", "{run}", "--window", "0"], "window must be an integer ≥ 2 epochs, got 0"),
        (["phases", "{run}", "--unsat-tol", "2"], "unsat_tol must be in [0, 1), got 2.0"),
        (["simulate", "--loss", "squared"], "loss must be one of"),
    ],
)  # fmt: skip
def test_the_new_options_refuse_bad_values_in_one_line(sim_run, tmp_path, args, needle):
    out = tmp_path / "never"
    args = [str(sim_run) if a == "{run}" else a for a in args]
    extra = ["--out", str(out)] if args[0] in ("train", "simulate") else []
    _refused([*args, *extra], needle, sim_run)
    assert not out.exists()


@pytest.mark.parametrize(
    "run, name, args, needle",
    [
        ("sim", "config.json", ["hessian", "--quiet"], "it is not a regular file"),
        ("sim", "metrics.jsonl", ["phases"], "it is not a regular file"),
        ("sim", "checkpoints/finite_T.pt", ["circuits", "--json", "--checkpoint"], "finite_T.pt"),
        ("train", "observations/epoch_0001.npz", ["plot"], "it is not a regular file"),
    ],
)
def test_a_named_pipe_in_place_of_a_run_file_is_refused_unread(
    sim_run, train_run, tmp_path, run, name, args, needle
):
    """Reading a pipe waits for a writer that never comes: every reader refuses it at once."""
    d = _copy(sim_run if run == "sim" else train_run, tmp_path / "d")
    (d / name).unlink()
    os.mkfifo(d / name)
    _refused([*args, str(d)], needle, d)
