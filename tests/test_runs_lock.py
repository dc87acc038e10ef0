"""One writer per run directory (sim.runs.lock): held, stale, re-entrant, and two real
processes racing for one --out."""

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sim.runs import write_json
from sim.runs.lock import LOCK_NAME, RunLock, RunLockedError, claim_new, holder, is_held
from umwelt.errors import ConfigError

UMWELT = [sys.executable, "-m", "sim.cli"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _lock_file(d: Path, **info) -> None:
    d.mkdir(parents=True, exist_ok=True)
    base = {"pid": os.getpid(), "host": socket.gethostname(), "command": "x", "started": "t"}
    (d / LOCK_NAME).write_text(json.dumps({**base, **info}))


@pytest.fixture
def sleeper():
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield p
    p.kill()
    p.wait()


def test_a_live_holder_is_named_and_the_lock_is_left_alone(tmp_path, sleeper):
    _lock_file(tmp_path, pid=sleeper.pid, command="umwelt train")
    with pytest.raises(RunLockedError, match=f"being written by process {sleeper.pid} on"):
        RunLock(tmp_path).acquire()
    assert holder(tmp_path)["pid"] == sleeper.pid and is_held(tmp_path)


def test_a_stale_lock_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _lock_file(tmp_path, pid=dead.pid)
    assert not is_held(tmp_path)
    with RunLock(tmp_path, "umwelt simulate") as lock:
        assert lock.owned and holder(tmp_path)["pid"] == os.getpid()
    assert holder(tmp_path) is None


def test_other_hosts_and_fresh_empty_locks_are_respected(tmp_path):
    _lock_file(tmp_path, pid=1, host="elsewhere")
    with pytest.raises(RunLockedError, match="on elsewhere"):
        RunLock(tmp_path).acquire()
    (tmp_path / LOCK_NAME).write_text("")  # created, not yet written
    with pytest.raises(RunLockedError, match="being written"):
        RunLock(tmp_path).acquire()
    old = time.time() - 3600
    os.utime(tmp_path / LOCK_NAME, (old, old))  # an empty lock left by a crash long ago
    with RunLock(tmp_path):
        pass


def test_the_holder_may_take_it_again_without_releasing_it(tmp_path):
    with RunLock(tmp_path) as outer:
        with RunLock(tmp_path) as inner:
            assert outer.owned and not inner.owned
        assert holder(tmp_path)["pid"] == os.getpid()  # the inner exit left it
    assert holder(tmp_path) is None


def test_a_new_run_directory_must_hold_nothing_but_the_lock(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "metrics.jsonl").write_text("")
    with pytest.raises(ConfigError, match="already exists and is not empty"):
        claim_new(tmp_path / "x", "umwelt train")
    assert holder(tmp_path / "x") is None
    claim_new(tmp_path / "y", "umwelt train").release()


def test_files_get_the_mode_of_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o644


# -- two processes ---------------------------------------------------------------------------------

DATA = "teacher:n=300,dim=16,n_test=20"
SLOW_TRAIN = ["train", "--model", "mlp:64,64", "--dataset", DATA, "--epochs", "400",
              "--batch-size", "4", "--observe-at", "0", "--quiet", "--no-figures"]  # fmt: skip


def _wait_for_lock(d: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    t = time.time()
    while holder(d) is None:
        assert proc.poll() is None, "the first writer ended early"
        assert time.time() - t < timeout, "the first writer never took the lock"
        time.sleep(0.05)


@pytest.mark.slow
def test_two_writers_of_one_directory(tmp_path):
    out = tmp_path / "run"
    first = subprocess.Popen([*UMWELT, *SLOW_TRAIN, "--out", str(out)], env=ENV,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        _wait_for_lock(out, first)
        for args in (
            [*SLOW_TRAIN, "--out", str(out), "--seed", "1"],
            ["train", "--resume", str(out), "--quiet"],
            ["simulate", "--out", str(out), "--epochs", "1", "--quiet"],
            ["hessian", str(out), "--quiet"],
        ):
            second = subprocess.run([*UMWELT, *args], env=ENV, capture_output=True, text=True)
            lines = second.stderr.strip().splitlines()
            assert second.returncode == 2, (args, second.stderr)
            assert len(lines) == 1 and f"process {first.pid}" in lines[0], (args, lines)
            assert "Traceback" not in second.stderr
        assert json.loads((out / "config.json").read_text())["seed"] == 0  # not mixed
        first.send_signal(signal.SIGKILL)  # kill -9: the lock is left behind, stale
        first.wait()
        assert holder(out)["pid"] == first.pid and not is_held(out)
        with RunLock(out, "the next writer") as lock:  # takes the stale lock over
            assert lock.owned and holder(out)["pid"] == os.getpid()
    finally:
        first.kill()
        first.wait()
