"""Hostile CIFAR-10 input: a pickle cannot run code, and bad paths, damaged archives, corrupt
batches and bad image trees each raise one :class:`DataError` naming what is wrong.

Each hostile file is built in ``tmp_path`` from the tiny fakes (:mod:`cifar10_fakes`).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from cifar10_fakes import build_fakes, encode, official_files, tree_files, write_tar

from umwelt.data import cifar10, detect_format, load_dataset, restricted_loads
from umwelt.errors import DataError


@pytest.fixture(scope="module")
def fakes(tmp_path_factory) -> dict[str, Path]:
    """Every format, tiny (:func:`cifar10_fakes.build_fakes`)."""
    return build_fakes(tmp_path_factory.mktemp("cifar"))


# -- security -----------------------------------------------------------------------------------


class _System:
    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class _Eval:
    def __reduce__(self):
        return (eval, ("1 + 1",))


@pytest.mark.parametrize("protocol", [2, 4])
def test_a_malicious_batch_is_refused_without_running(tmp_path, fakes, protocol):
    marker = tmp_path / "pwned"
    payload = {b"data": _System(f"touch {marker}"), b"labels": [0]}
    target = tmp_path / "cifar-10-batches-py"
    target.mkdir()
    for f in fakes["python-dir"].iterdir():
        (target / f.name).write_bytes(f.read_bytes())
    evil = pickle.dumps(payload, protocol=protocol)
    (target / "data_batch_3").write_bytes(evil)
    refused = rf"global {os.system.__module__}\.system in .*data_batch_3"
    with pytest.raises(DataError, match=refused):
        cifar10(target)
    assert not marker.exists()
    pickle.loads(evil)  # the payload is live: plain pickle runs it
    assert marker.exists()
    with pytest.raises(DataError, match=r"global (builtins|__builtin__)\.eval in evil"):
        restricted_loads(pickle.dumps(_Eval(), protocol=protocol), source="evil")


def test_only_latin1_codecs_encode_is_allowed():
    evil = b"c_codecs\nencode\n(X\x03\x00\x00\x00abcX\x04\x00\x00\x00zlibtR."
    with pytest.raises(DataError, match="refusing _codecs.encode.*'zlib'"):
        restricted_loads(evil, source="x")
    ok = b"c_codecs\nencode\n(X\x03\x00\x00\x00abcX\x06\x00\x00\x00latin1tR."
    assert restricted_loads(ok, source="x") == b"abc"


# -- bad input ----------------------------------------------------------------------------------


def _copy_dir(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_bad_paths_raise_data_error_naming_them(tmp_path, fakes):
    missing = tmp_path / "nope.tar.gz"
    with pytest.raises(DataError, match=f"{missing}.* does not exist"):
        cifar10(missing)
    with pytest.raises(DataError, match="dataset path './nope' does not exist"):
        load_dataset("./nope")
    with pytest.raises(DataError, match="unknown dataset 'cifar11'.*or a path to CIFAR-10"):
        load_dataset("cifar11")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(
        DataError, match=f"'{empty}' is not CIFAR-10 data: a directory with neither"
    ):
        cifar10(empty)
    half = tmp_path / "half"
    (half / "train" / "cat").mkdir(parents=True)
    with pytest.raises(DataError, match=f"'{half}' is not CIFAR-10 data: .*both train/ and test/"):
        cifar10(half)
    text = tmp_path / "data.tar.gz"
    text.write_text("hello")
    with pytest.raises(DataError, match=f"'{text}' is not CIFAR-10 data: a file that is not a tar"):
        cifar10(text)
    other = write_tar(tmp_path / "other.tar", {"readme.txt": b"hi"}, "w")
    with pytest.raises(DataError, match=f"'{other}' is not CIFAR-10 data: an archive with neither"):
        detect_format(other)


@pytest.mark.parametrize("kind", ["python-tar", "tree-targz", "tree-tar"])
def test_truncated_archives_raise_data_error(tmp_path, fakes, kind):
    data = fakes[kind].read_bytes()
    cut = tmp_path / fakes[kind].name
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=f"corrupt or truncated archive '{cut}'"):
        cifar10(cut)


def test_a_damaged_member_header_is_not_taken_for_the_end(tmp_path, fakes):
    data = bytearray(fakes["tree-tar"].read_bytes())
    at = data.index(b"train/cat/0002.png") // 512 * 512  # that member's header block
    data[at : at + 512] = b"x" * 512
    damaged = tmp_path / "damaged.tar"
    damaged.write_bytes(bytes(data))
    with pytest.raises(DataError, match=f"corrupt or truncated archive '{damaged}': unreadable"):
        cifar10(damaged)


def test_corrupt_batch_files_raise_data_error(tmp_path, fakes):
    target = _copy_dir(fakes["python-dir"], tmp_path / "batches")
    full = (target / "data_batch_2").read_bytes()
    (target / "data_batch_2").write_bytes(full[: len(full) // 3])
    with pytest.raises(DataError, match="data_batch_2 is not a readable pickle"):
        cifar10(target)
    (target / "data_batch_2").write_bytes(pickle.dumps({b"fine_labels": [1]}, protocol=2))
    with pytest.raises(DataError, match="data_batch_2 has no 'data' entry"):
        cifar10(target)
    bad = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 12]}
    (target / "data_batch_2").write_bytes(pickle.dumps(bad, protocol=2))
    with pytest.raises(DataError, match="data_batch_2: labels must be in 0-9, got 1..12"):
        cifar10(target)
    (target / "data_batch_2").unlink()
    with pytest.raises(DataError, match="lacks data_batch_2"):
        cifar10(target)
    (target / "data_batch_2").write_bytes(full)
    meta = {b"label_names": [b"apple", b"pear"]}
    (target / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    with pytest.raises(DataError, match=r"label_names \['apple', 'pear'\] are not CIFAR-10's"):
        cifar10(target)


def test_bad_trees_raise_data_error(tmp_path, fakes):
    tree, _ = tree_files()
    odd = dict(tree)
    odd["train/kitten/0000.png"] = tree["train/cat/0000.png"]
    with pytest.raises(DataError, match="unknown class folder 'kitten'.*airplane, automobile"):
        cifar10(write_tar(tmp_path / "odd.tar", odd, "w"))
    no_dog = {k: v for k, v in tree.items() if not k.startswith("test/dog/")}
    with pytest.raises(DataError, match="no test images of class dog in"):
        cifar10(write_tar(tmp_path / "nodog.tar", no_dog, "w"))
    broken = dict(tree)
    broken["train/cat/0000.png"] = b"\x89PNG garbage"
    with pytest.raises(DataError, match="cannot decode image .*train/cat/0000.png"):
        cifar10(write_tar(tmp_path / "broken.tar", broken, "w"))
    big = dict(tree)
    big["train/cat/0000.png"] = encode(np.zeros((3, 16, 40), np.uint8), "PNG")
    with pytest.raises(DataError, match="image .*train/cat/0000.png is 40x16, not 32x32"):
        cifar10(write_tar(tmp_path / "big.tar", big, "w"))
    both = dict(tree)
    both["cifar-10-batches-py/test_batch"] = official_files()[0]["test_batch"]
    with pytest.raises(DataError, match="both python batches and image folders"):
        cifar10(write_tar(tmp_path / "both.tar", both, "w"))
