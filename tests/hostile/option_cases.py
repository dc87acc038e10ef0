"""What every file of the option corpus (``test_hostile_options*.py``) shares: a case table
as pytest params, the places a case names, and the check that every case passes.

A case is ``(id, extra args, needle[, marks])``: the command's base arguments and the extra
ones, in which ``{name}`` is a place made under ``tmp_path`` the first time it is named
(:data:`PLACES`). :func:`assert_refused` runs the command in process and checks the contract
of ``test_hostile_options.py``: exit code 2, one line ``error: ...`` holding the needle, no
traceback, and nothing written.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sim.cli import app

runner = CliRunner()
DATA = "teacher:n=40,dim=5,n_test=10"
HUGE = "1000000000000"  # 10¹²: more of anything than memory holds

#: (command, the options a case gives beyond its base): what the coverage test counts
GIVEN: set[tuple[str, str]] = set()


def cases(command: str, base: list[str], table: list[tuple]) -> list:
    """``(id, extra args, needle[, marks])`` rows as pytest params ``base + extra`` of
    ``command``."""
    GIVEN.update((command, a) for _, extra, *_ in table for a in extra if a.startswith("--"))
    return [
        pytest.param([*base, *extra], needle, id=f"{command}-{name}", marks=marks)
        for name, extra, needle, *marks in table
    ]


# -- the places a case names ----------------------------------------------------------------------


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _dir(path: Path) -> Path:
    path.mkdir()
    return path


def _copy(src: Path, dst: Path) -> Path:
    return Path(shutil.copytree(src, dst))


def _pipe(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _link(path: Path, to: Path) -> Path:
    path.symlink_to(to)
    return path


def _loop(a: Path, b: Path) -> Path:
    _link(a, b), _link(b, a)
    return a


def _cifar(root: Path) -> Path:
    """The official python batches, tiny: each of the six batches holds every class twice."""
    from umwelt.data import CIFAR10_CLASSES

    root.mkdir()
    meta = {b"label_names": [c.encode() for c in CIFAR10_CLASSES], b"num_vis": 3072}
    (root / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
        batch = {b"labels": list(range(10)) * 2, b"data": np.zeros((20, 3072), np.uint8)}
        (root / name).write_bytes(pickle.dumps(batch, protocol=2))
    return root


def _reproduction(path: Path, seed: int) -> Path:
    """A reproduction's directory as a first session leaves it: its settings (quick, ``seed``)."""
    from sim.reproduce import ReproduceConfig

    settings = ReproduceConfig(out=path, quick=True, seed=seed).validated().settings()
    path.mkdir()
    _write(path / "reproduce.json", json.dumps({"settings": settings, "dataset_sha256": None}))
    return path


def _npy(path: Path, array: np.ndarray) -> Path:
    np.save(path, array, allow_pickle=array.dtype == object)
    return path


#: what ``{name}`` in a case's arguments becomes: ``(root, request) -> path`` (made on demand)
PLACES = {
    "out": lambda root, rq: root / "out",  # never made: the command must not make it
    "missing": lambda root, rq: root / "missing",  # never made
    "long": lambda root, rq: root / ("n" * 300),  # a name longer than any file system's (255)
    "broken_link": lambda root, rq: _link(root / "broken", root / "nowhere"),
    "loop": lambda root, rq: _loop(root / "loop", root / "loop2"),
    "file": lambda root, rq: _write(root / "afile", "x\n"),
    "empty": lambda root, rq: _dir(root / "empty"),
    "junk": lambda root, rq: _write(_dir(root / "junk") / "notes.txt", "mine").parent,
    "sim": lambda root, rq: _copy(rq.getfixturevalue("sim_run"), root / "sim"),
    "train": lambda root, rq: _copy(rq.getfixturevalue("train_run"), root / "train"),
    "tar": lambda root, rq: _write(root / "broken.tar.gz", "not a tar archive\n"),
    "cifar": lambda root, rq: _cifar(root / "cifar-10-batches-py"),
    "pipe": lambda root, rq: _pipe(root / "pipe"),  # reading it would wait for a writer
    "pipe_npy": lambda root, rq: _pipe(root / "pipe.npy"),
    "npy_text": lambda root, rq: _write(root / "text.npy", "1,2,3\n"),
    "npy_object": lambda root, rq: _npy(root / "object.npy", np.array([{}, 2, 3], dtype=object)),
    "npy_nan": lambda root, rq: _npy(root / "nan.npy", np.array([np.nan, 1.0, 2.0])),
    "npy_five": lambda root, rq: _npy(root / "five.npy", np.ones(5)),
    "dir_npy": lambda root, rq: _dir(root / "dir.npy"),
    "reproduction": lambda root, rq: _reproduction(root / "reproduction", seed=7),
    "bad_reproduction": lambda root, rq: _write(_dir(root / "bad") / "reproduce.json", "{"
                                                ).parent,
    "graph_no_edges": lambda root, rq: _write(root / "g1.json", '{"nodes": []}'),
    "graph_bad_edge": lambda root, rq: _write(root / "g2.json", '{"edges": [[1, 2, 3]]}'),
    "graph_bad_weight": lambda root, rq: _write(
        root / "g3.json", '{"edges": [[["x", 0], [1, 0], "heavy"], [[1, 0], ["f", 0], 1.0]]}'
    ),
}  # fmt: skip


class _Places(dict):
    """``{name}`` → the path of that place under ``root``, made the first time it is named."""

    def __init__(self, root: Path, request):
        super().__init__()
        self.root, self.request = root, request

    def __missing__(self, name: str) -> str:
        self[name] = str(PLACES[name](self.root, self.request))
        return self[name]


def tree(path: Path) -> dict[str, bytes] | bytes | None:
    """Every file and directory under ``path`` with its bytes (a file: its bytes; nothing
    there, or nothing the system can look up: ``None``)."""
    try:
        if path.is_file():
            return path.read_bytes()
        if not path.is_dir():
            return None
    except OSError:  # a name too long
        return None
    return {str(p.relative_to(path)): p.read_bytes() if p.is_file() else b"<dir>"
            for p in sorted(path.rglob("*"))}  # fmt: skip


# -- running a case -------------------------------------------------------------------------------


@contextlib.contextmanager
def _deadline(seconds: int):
    """Raise TimeoutError in the test's (main) thread after ``seconds``."""

    def expire(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def assert_refused(args: list[str], needle: str, tmp_path: Path, request, monkeypatch) -> None:
    """Run the case ``args`` and check that it is refused: exit code 2, one line ``error: ...``
    holding ``needle``, nothing on stdout, no traceback, every place it names unchanged, no
    ``--out`` and nothing in the working directory."""
    places = _Places(tmp_path / "places", request)
    places.root.mkdir()
    args = [a.format_map(places) for a in args]
    cwd = tmp_path / "cwd"  # where a default runs/<kind>-<time> would appear
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    before = {name: tree(Path(p)) for name, p in places.items()}

    with _deadline(30):  # a pipe read by mistake would wait forever
        res = runner.invoke(app, args)

    lines = res.stderr.splitlines()
    assert res.exit_code == 2 and isinstance(res.exception, SystemExit), res.output
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert needle in lines[0], lines[0]
    assert res.stdout == "" and "Traceback" not in res.output, res.output
    assert {name: tree(Path(p)) for name, p in places.items()} == before  # nothing changed
    assert not Path(places["out"]).exists() and list(cwd.iterdir()) == []
