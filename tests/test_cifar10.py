"""Tests of CIFAR-10 loading: every format built tiny here, the binary task, and bad input.

Nothing here is real CIFAR-10 except the integration test, which reads the shared JPEG tree
``../shared/data/cifar10-jpeg.tar.gz`` when it exists. The fakes follow the official layout:
a batch is a protocol-2 pickle of ``{b"data": uint8 (N, 3072), b"labels": [...], ...}`` whose
rows are the R, G, B planes of 32×32 pixels, row-major; an image tree holds
``train/<class>/*.png|jpg`` and ``test/<class>/*``.

Every fake image encodes where its values come from: image ``i`` has value
``(c * 1024 + y * 32 + x + 7 * i) % 251`` at channel ``c``, row ``y``, column ``x``, so the
pixel at ``[n, c, y, x]`` of a loaded array says both which image it is and whether the
layout was read right.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import pickletools
import shutil
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from umwelt.data import (
    CIFAR10_CLASSES,
    Dataset,
    cifar10,
    detect_format,
    load_dataset,
    parse_classes,
    restricted_loads,
)
from umwelt.errors import DataError

SHARED_TAR = Path(__file__).parents[1] / ".." / "shared" / "data" / "cifar10-jpeg.tar.gz"

N_BATCH = 20  # images per fake batch: 2 of each class
N_TREE_TRAIN, N_TREE_TEST = 4, 2  # images per class in the fake image tree
CAT, DOG = CIFAR10_CLASSES.index("cat"), CIFAR10_CLASSES.index("dog")
VEHICLES = [CIFAR10_CLASSES.index(c) for c in ("airplane", "automobile", "ship", "truck")]


# -- building the fakes -------------------------------------------------------------------------


def image(i: int) -> np.ndarray:
    """Fake image ``i`` as uint8 ``(3, 32, 32)``, built from the layout's index arithmetic."""
    c, y, x = np.indices((3, 32, 32))
    return ((c * 1024 + y * 32 + x + 7 * i) % 251).astype(np.uint8)


def official_row(i: int) -> np.ndarray:
    """Image ``i`` as an official batch row: position ``c*1024 + y*32 + x`` (built flat)."""
    return ((np.arange(3072) + 7 * i) % 251).astype(np.uint8)


def identity(raw: np.ndarray) -> np.ndarray:
    """Which fake image each of ``raw`` (n, 3, 32, 32) is, from its pixel [0, 0, 0] = 7 i % 251."""
    inverse = {7 * i % 251: i for i in range(251)}
    return np.array([inverse[int(v)] for v in raw[:, 0, 0, 0]])


def raw_pixels(ds_X: np.ndarray, info: dict) -> np.ndarray:
    """Undo the per-channel standardization: the pixel values 0..255 as float64."""
    mean = np.array(info["channel_mean"])[None, :, None, None]
    std = np.array(info["channel_std"])[None, :, None, None]
    return ds_X.astype(np.float64) * std + mean


class Py2Pickler(pickle._Pickler):
    """Writes what Python 2's cPickle wrote for the official batches (protocol 2).

    Strings become ``BINSTRING`` opcodes (Python 2 ``str``: loaded as bytes with
    ``encoding="bytes"``), and numpy's reconstructor is named ``numpy.core.multiarray``.
    Python 3's own protocol 2 instead writes bytes through ``_codecs.encode``.
    """

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str

    def save_global(self, obj, name=None):
        if getattr(obj, "__name__", "") == "_reconstruct":
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
        else:
            super().save_global(obj, name)


def py2_dumps(obj) -> bytes:
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def official_files() -> tuple[dict[str, bytes], np.ndarray, np.ndarray]:
    """The official files as ``name -> bytes``, and the class of each image (train, test).

    Image ``i`` is the ``i``-th of the concatenation data_batch_1..5, test_batch; each batch
    holds every class twice, shuffled. ``data_batch_1`` is written the Python 2 way.
    """
    rng = np.random.default_rng(0)
    files, labels = {}, []
    names = [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]
    for b, name in enumerate(names):
        batch_labels = rng.permutation(np.arange(N_BATCH) % 10)
        idx = range(b * N_BATCH, (b + 1) * N_BATCH)
        obj = {
            b"batch_label": f"{name} of 6".encode(),
            b"labels": [int(v) for v in batch_labels],
            b"data": np.stack([official_row(i) for i in idx]),  # (N, 3072) uint8
            b"filenames": [f"img_{i}.png".encode() for i in idx],
        }
        files[name] = py2_dumps(obj) if b == 0 else pickle.dumps(obj, protocol=2)
        labels.append(batch_labels)
    meta = {
        b"label_names": [c.encode() for c in CIFAR10_CLASSES],
        b"num_cases_per_batch": N_BATCH,
        b"num_vis": 3072,
    }
    files["batches.meta"] = pickle.dumps(meta, protocol=2)
    labels = np.concatenate(labels)
    return files, labels[: 5 * N_BATCH], labels[5 * N_BATCH :]


def write_tar(path: Path, members: dict[str, bytes], mode: str) -> Path:
    with tarfile.open(path, mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def encode(img: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    kw = {"quality": 95, "subsampling": 0} if fmt == "JPEG" else {}  # JPEG: no chroma halving
    Image.fromarray(img.transpose(1, 2, 0), "RGB").save(buf, format=fmt, **kw)
    return buf.getvalue()


def tree_files() -> tuple[dict[str, bytes], dict[str, list[tuple[int, bool]]]]:
    """An image tree ``relative name -> bytes`` and, per split, ``(image i, is_png)`` in the
    order the loader reads them (class, then file name); every other file is a JPEG."""
    files, order = {}, {"train": [], "test": []}
    i = 0
    for split, n in (("train", N_TREE_TRAIN), ("test", N_TREE_TEST)):
        for cls in CIFAR10_CLASSES:
            for k in range(n):
                png = k % 2 == 0
                name = f"{split}/{cls}/{k:04d}.{'png' if png else 'jpg'}"
                files[name] = encode(image(i), "PNG" if png else "JPEG")
                order[split].append((i, png))
                i += 1
    files["train/cat/notes.txt"] = b"not an image"
    files["train/dog/.DS_Store"] = b"\x00\x01"
    return files, order


@pytest.fixture(scope="module")
def fakes(tmp_path_factory) -> dict[str, Path]:
    """Every format, tiny: ``python-dir``, ``python-tar``, ``tree-dir``, ``tree-tar``,
    ``tree-targz`` (its tree one folder down, as the shared file's source repository is)."""
    root = tmp_path_factory.mktemp("cifar")
    files, _, _ = official_files()
    pydir = root / "cifar-10-batches-py"
    pydir.mkdir()
    for name, data in files.items():
        (pydir / name).write_bytes(data)
    members = {f"cifar-10-batches-py/{n}": d for n, d in files.items()}
    members["cifar-10-batches-py/readme.html"] = b"<html></html>"
    tree, _ = tree_files()
    tree_dir = root / "tree"
    for name, data in tree.items():
        (tree_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (tree_dir / name).write_bytes(data)
    nested = {f"CIFAR-10-images/{n}": d for n, d in tree.items()}
    return {
        "python-dir": pydir,
        "python-tar": write_tar(root / "cifar-10-python.tar.gz", members, "w:gz"),
        "tree-dir": tree_dir,
        "tree-tar": write_tar(root / "images.tar", tree, "w"),
        "tree-targz": write_tar(root / "images.tar.gz", nested, "w:gz"),
    }


PYTHON = ["python-dir", "python-tar"]
TREES = ["tree-dir", "tree-tar", "tree-targz"]


# -- formats ------------------------------------------------------------------------------------


def test_fake_batches_are_written_like_the_official_ones():
    files, _, _ = official_files()
    ops = {op.name for op, _, _ in pickletools.genops(files["data_batch_1"])}
    assert "BINSTRING" in ops or "SHORT_BINSTRING" in ops  # Python 2 strings
    assert b"numpy.core.multiarray\n_reconstruct" in files["data_batch_1"]
    assert b"_codecs" not in files["data_batch_1"]
    assert b"_codecs\nencode" in files["data_batch_2"]  # Python 3 at protocol 2


@pytest.mark.parametrize(
    ("kind", "fmt"),
    [
        ("python-dir", "python-dir"),
        ("python-tar", "python-tar"),
        ("tree-dir", "image-tree-dir"),
        ("tree-tar", "image-tree-tar"),
        ("tree-targz", "image-tree-tar"),
    ],
)
def test_detect_format_reads_the_contents(fakes, kind, fmt, tmp_path):
    assert detect_format(fakes[kind]) == fmt
    # the name says nothing: a copy under a misleading name is detected the same way
    if fakes[kind].is_file():
        decoy = tmp_path / "cifar-10-batches-py.zip"
        decoy.write_bytes(fakes[kind].read_bytes())
        assert detect_format(decoy) == fmt
        assert cifar10(decoy).info["format"] == fmt


def test_detect_format_one_folder_up(fakes, tmp_path):
    assert detect_format(fakes["python-dir"].parent) == "python-dir"  # holds cifar-10-batches-py
    shutil.copytree(fakes["tree-dir"], tmp_path / "CIFAR-10-images")  # as a git clone is
    assert detect_format(tmp_path) == "image-tree-dir"
    a, b = cifar10(tmp_path), cifar10(fakes["tree-dir"])
    np.testing.assert_array_equal(a.X_train, b.X_train)


@pytest.mark.parametrize("kind", PYTHON)
def test_official_layout_labels_and_standardization(fakes, kind):
    _, labels_train, labels_test = official_files()
    ds = cifar10(fakes[kind], classes="cat,dog")
    assert ds.input_shape == (3, 32, 32) and ds.dim == 3072
    assert ds.X_train.dtype == ds.X_test.dtype == np.float32
    assert ds.y_train.dtype == np.float64
    assert (ds.n_train, ds.n_test) == (20, 4)  # 2 per class in each of 5 batches; 2 in test
    raw_train, raw_test = raw_pixels(ds.X_train, ds.info), raw_pixels(ds.X_test, ds.info)
    np.testing.assert_allclose(raw_train, np.rint(raw_train), atol=1e-3)
    raw_train, raw_test = np.rint(raw_train), np.rint(raw_test)
    # the images, in source order, with every value at [n, c, y, x]
    i_train = identity(raw_train)
    i_test = identity(raw_test)
    assert list(i_train) == [i for i in range(100) if labels_train[i] in (CAT, DOG)]
    assert list(i_test) == [100 + j for j in range(N_BATCH) if labels_test[j] in (CAT, DOG)]
    expected = np.stack([image(i) for i in i_train])
    np.testing.assert_array_equal(raw_train, expected)
    np.testing.assert_array_equal(raw_test, np.stack([image(i) for i in i_test]))
    n, c, y, x = 3, 1, 17, 5
    assert raw_train[n, c, y, x] == official_row(i_train[n])[c * 1024 + y * 32 + x]
    # cat -> -1, dog -> +1
    np.testing.assert_array_equal(ds.y_train, np.where(labels_train[i_train] == CAT, -1.0, 1.0))
    np.testing.assert_array_equal(ds.y_test, np.where(labels_test[i_test - 100] == CAT, -1, 1))
    # per-channel standardization with training statistics
    np.testing.assert_allclose(ds.X_train.mean(axis=(0, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(ds.X_train.std(axis=(0, 2, 3)), 1.0, rtol=1e-5)
    np.testing.assert_allclose(ds.info["channel_mean"], expected.mean(axis=(0, 2, 3)))
    np.testing.assert_allclose(ds.info["channel_std"], expected.std(axis=(0, 2, 3)))
    assert ds.info["format"] == kind and ds.info["classes"] == "cat,dog"
    assert ds.info["available_train"] == {"-1": 10, "+1": 10}


def test_python_dir_and_tar_agree(fakes):
    a, b = cifar10(fakes["python-dir"]), cifar10(fakes["python-tar"])
    for u, v in zip(
        (a.X_train, a.y_train, a.X_test, a.y_test), (b.X_train, b.y_train, b.X_test, b.y_test)
    ):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("kind", TREES)
def test_image_tree_pixels_and_labels(fakes, kind):
    _, order = tree_files()
    ds = cifar10(fakes[kind], classes="dog,cat")
    assert (ds.n_train, ds.n_test) == (2 * N_TREE_TRAIN, 2 * N_TREE_TEST)
    for X, y, split in ((ds.X_train, ds.y_train, "train"), (ds.X_test, ds.y_test, "test")):
        n_per = len(order[split]) // 10  # images per class, classes in CIFAR10_CLASSES order
        picked = [(k // n_per, *r) for k, r in enumerate(order[split]) if k // n_per in (CAT, DOG)]
        raw = raw_pixels(X, ds.info)
        for (_, i, png), got in zip(picked, raw, strict=True):
            if png:  # lossless: exact
                np.testing.assert_allclose(got, image(i), atol=1e-3)
            else:  # JPEG: close
                assert np.abs(got - image(i)).mean() < 5
        classes = np.array([cls for cls, _, _ in picked])
        np.testing.assert_array_equal(y, np.where(classes == DOG, -1.0, 1.0))  # dog first
    assert ds.info["format"] == ("image-tree-dir" if kind == "tree-dir" else "image-tree-tar")


def test_image_tree_formats_agree(fakes):
    sets = [cifar10(fakes[k], classes="vehicles-vs-animals", subset=8, seed=3) for k in TREES]
    for other in sets[1:]:
        np.testing.assert_array_equal(sets[0].X_train, other.X_train)
        np.testing.assert_array_equal(sets[0].y_train, other.y_train)
        np.testing.assert_array_equal(sets[0].X_test, other.X_test)


# -- the binary task ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("classes", "negative", "positive"),
    [
        ("cat,dog", [CAT], [DOG]),
        ("dog,cat", [DOG], [CAT]),
        ("3,5", [CAT], [DOG]),
        (" Airplane , 9", [0], [9]),
        (["truck", 2], [9], [2]),
        ("vehicles-vs-animals", VEHICLES, [2, 3, 4, 5, 6, 7]),
    ],
)
def test_labels_follow_the_class_rule(fakes, classes, negative, positive):
    _, labels_train, labels_test = official_files()
    ds = cifar10(fakes["python-dir"], classes=classes)
    for X, y, labels, offset in (
        (ds.X_train, ds.y_train, labels_train, 0),
        (ds.X_test, ds.y_test, labels_test, 100),
    ):
        cls = labels[identity(np.rint(raw_pixels(X, ds.info))) - offset]
        assert set(cls) == set(negative) | set(positive)
        np.testing.assert_array_equal(y, np.where(np.isin(cls, negative), -1.0, 1.0))
    assert ds.info["negative_classes"] == [CIFAR10_CLASSES[c] for c in negative]
    assert ds.info["positive_classes"] == [CIFAR10_CLASSES[c] for c in positive]


def test_vehicles_vs_animals_without_subset_keeps_every_image(fakes):
    ds = cifar10(fakes["python-tar"], classes="vehicles-vs-animals")
    assert (ds.n_train, ds.n_test) == (100, 20)
    assert ds.info["available_train"] == {"-1": 40, "+1": 60}
    assert ds.info["positive_fraction_train"] == 0.6


@pytest.mark.parametrize("kind", ["python-tar", "tree-dir"])
def test_subset_is_balanced_seeded_and_deterministic(fakes, kind):
    kw = dict(classes="vehicles-vs-animals", subset=6, subset_test=4)
    a, b = cifar10(fakes[kind], seed=1, **kw), cifar10(fakes[kind], seed=1, **kw)
    assert (a.n_train, a.n_test) == (6, 4)
    assert (a.y_train == 1).sum() == (a.y_train == -1).sum() == 3
    assert (a.y_test == 1).sum() == (a.y_test == -1).sum() == 2
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    np.testing.assert_array_equal(a.X_test, b.X_test)
    others = [cifar10(fakes[kind], seed=s, **kw) for s in (2, 3)]
    ids = [tuple(identity(np.rint(raw_pixels(d.X_train, d.info)))) for d in (a, *others)]
    assert len(set(ids)) > 1  # the seed picks the images
    assert a.info["subset"] == 6 and a.info["subset_test"] == 4 and a.info["seed"] == 1


def test_subset_standardizes_with_the_subset_statistics(fakes):
    ds = cifar10(fakes["python-dir"], subset=4, seed=5)
    raw = np.rint(raw_pixels(ds.X_train, ds.info))
    np.testing.assert_allclose(ds.info["channel_mean"], raw.mean(axis=(0, 2, 3)))
    np.testing.assert_allclose(ds.X_train.mean(axis=(0, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(ds.X_train.std(axis=(0, 2, 3)), 1.0, rtol=1e-5)
    full = cifar10(fakes["python-dir"])
    assert ds.n_test == full.n_test  # the test set is every test image of the classes
    assert ds.info["channel_mean"] != full.info["channel_mean"]


def test_label_noise_randomizes_a_seeded_fraction_of_training_labels(fakes):
    clean = cifar10(fakes["python-dir"], classes="vehicles-vs-animals")
    noisy = cifar10(fakes["python-dir"], classes="vehicles-vs-animals", label_noise=0.5, seed=4)
    again = cifar10(fakes["python-dir"], classes="vehicles-vs-animals", label_noise=0.5, seed=4)
    assert noisy.info["randomized"] == 50
    changed = int(np.sum(clean.y_train != noisy.y_train))
    assert changed == noisy.info["flipped"] and 10 < changed < 40  # about half of 50
    np.testing.assert_array_equal(noisy.y_train, again.y_train)
    np.testing.assert_array_equal(clean.y_test, noisy.y_test)
    np.testing.assert_array_equal(clean.X_train, noisy.X_train)
    every = cifar10(fakes["python-dir"], classes="vehicles-vs-animals", label_noise=1.0)
    assert every.info["randomized"] == 100


def test_parse_classes():
    assert parse_classes("cat,dog") == (("cat",), ("dog",))
    assert parse_classes("VEHICLES-vs-animals")[0] == ("airplane", "automobile", "ship", "truck")
    assert parse_classes([0, "9"]) == (("airplane",), ("truck",))


# -- load_dataset and the container -------------------------------------------------------------


def test_load_dataset_takes_a_path(fakes):
    ds = load_dataset(str(fakes["tree-tar"]), seed=2, classes="cat,dog", subset=4)
    again = load_dataset(fakes["tree-tar"], seed=2, classes="cat,dog", subset=4)  # PathLike
    np.testing.assert_array_equal(ds.X_train, again.X_train)
    assert ds.name == "cifar10" and ds.info["spec"] == str(fakes["tree-tar"])
    assert ds.info["source"] == str(fakes["tree-tar"].resolve())
    assert ds.info["knobs"] == {
        "classes": "cat,dog",
        "subset": 4,
        "subset_test": None,
        "label_noise": 0.0,
    }
    assert json.loads(json.dumps(ds.info)) == ds.info
    default = load_dataset(str(fakes["python-dir"]))
    assert default.info["classes"] == "cat,dog" and default.info["subset"] is None


def test_flattened_gives_an_mlp_its_vectors(fakes):
    ds = cifar10(fakes["python-dir"])
    flat = ds.flattened()
    assert flat.X_train.shape == (ds.n_train, 3072) and flat.dim == ds.dim == 3072
    assert flat.input_shape == (3072,) and flat.X_train.dtype == np.float32
    np.testing.assert_array_equal(flat.X_train[2], ds.X_train[2].ravel())
    assert np.shares_memory(flat.X_train, ds.X_train)
    assert flat.flattened() is flat
    assert "input_shape=(3, 32, 32)" in repr(ds)


def test_dataset_dtype_rule():
    y = np.array([1.0, -1.0])
    Dataset("img", np.zeros((2, 3, 4, 4), np.float32), y, np.zeros((2, 3, 4, 4), np.float32), y)
    with pytest.raises(DataError, match="X_test must be a 4-D float32 array, got shape"):
        Dataset("bad", np.zeros((2, 3, 4, 4), np.float32), y, np.zeros((2, 3, 4, 4)), y)
    with pytest.raises(DataError, match=r"inputs of shape \(3, 4, 4\) but X_test has \(3, 4, 5\)"):
        Dataset("bad", np.zeros((2, 3, 4, 4)), y, np.zeros((2, 3, 4, 5)), y)
    with pytest.raises(DataError, match="X_train must be a float64 or float32 array"):
        Dataset("bad", np.zeros((2, 3), np.float16), y, np.zeros((2, 3), np.float16), y)
    with pytest.raises(DataError, match="X_train must be .* got shape \\(2,\\)"):
        Dataset("bad", np.zeros(2), y, np.zeros(2), y)


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


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"classes": "cat,kitten"}, "unknown CIFAR-10 class 'kitten'; valid: airplane, .*truck"),
        ({"classes": "cat,10"}, "unknown CIFAR-10 class '10'"),
        ({"classes": [3, 11]}, "unknown CIFAR-10 class index 11"),
        ({"classes": "cat,cat"}, "class 'cat' given twice in classes='cat,cat'"),
        ({"classes": "dog,5"}, "class 'dog' given twice"),
        ({"classes": "cat"}, "classes must name two CIFAR-10 classes.*got 'cat'"),
        ({"classes": "cat,dog,frog"}, "got 'cat,dog,frog'"),
        ({"classes": 3}, "classes must be a string such as 'cat,dog', got 3"),
        ({"subset": 7}, "subset must be even .* got 7"),
        ({"subset": 0}, "subset must be an integer >= 2, got 0"),
        ({"subset": -4}, "subset must be an integer >= 2, got -4"),
        ({"subset": 2.0}, "subset must be an integer >= 2, got 2.0"),
        ({"subset": 22}, "subset=22 is larger than available: 10 images labelled -1 .* at most 20"),
        ({"subset_test": 6}, "subset_test=6 is larger than available: 2 images .* at most 4"),
        ({"label_noise": 1.5}, "label_noise must be a number in \\[0, 1\\], got 1.5"),
        ({"seed": -1}, "seed must be an integer >= 0, got -1"),
    ],
)
def test_bad_arguments_raise_data_error_naming_the_value(fakes, kwargs, message):
    with pytest.raises(DataError, match=message):
        cifar10(fakes["python-dir"], **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"classes": "cat,dog"}, "classes='cat,dog' applies to CIFAR-10 paths only, not to"),
        ({"subset": 100}, "subset=100 applies to CIFAR-10 paths only"),
        ({"subset_test": 10}, "subset_test=10 applies"),
        ({"label_noise": 0.1}, "label_noise=0.1 applies .* spec key noise= flips"),
    ],
)
def test_cifar_keywords_are_refused_for_named_families(kwargs, message):
    with pytest.raises(DataError, match=message):
        load_dataset("digits", **kwargs)


# -- the real images ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(
    not SHARED_TAR.exists(),
    reason=f"the shared CIFAR-10 JPEG tree {SHARED_TAR.resolve()} is absent (only the "
    f"project's own machine has ../shared/data/)",
)
def test_shared_cifar10_jpeg_tree():
    ds = load_dataset(str(SHARED_TAR), classes="cat,dog", subset=200, seed=0)
    assert ds.info["format"] == "image-tree-tar"
    assert ds.X_train.shape == (200, 3, 32, 32) and ds.X_test.shape == (2000, 3, 32, 32)
    assert ds.X_train.dtype == np.float32
    assert (ds.y_train == -1).sum() == (ds.y_train == 1).sum() == 100
    assert (ds.y_test == -1).sum() == (ds.y_test == 1).sum() == 1000
    assert ds.info["available_train"] == {"-1": 5000, "+1": 5000}
    np.testing.assert_allclose(ds.X_train.mean(axis=(0, 2, 3)), 0.0, atol=1e-4)
    np.testing.assert_allclose(ds.X_train.std(axis=(0, 2, 3)), 1.0, rtol=1e-4)
    assert all(90 < m < 150 for m in ds.info["channel_mean"])  # natural images, 0..255
    assert all(40 < s < 90 for s in ds.info["channel_std"])
    raw = raw_pixels(ds.X_test, ds.info)
    assert raw.min() > -0.01 and raw.max() < 255.01  # standardized pixels of 0..255
    assert raw.min() < 1 and raw.max() > 254
    np.testing.assert_allclose(raw, np.rint(raw), atol=1e-3)
