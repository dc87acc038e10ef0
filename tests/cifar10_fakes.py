"""Tiny fake CIFAR-10 in every format, built at test time, for the ``test_cifar10_*`` files.

The fakes follow the official layout: a batch is a protocol-2 pickle of
``{b"data": uint8 (N, 3072), b"labels": [...], ...}`` whose rows are the R, G, B planes of
32×32 pixels, row-major; an image tree holds ``train/<class>/*.png|jpg`` and
``test/<class>/*``.

Every fake image encodes where its values come from: image ``i`` has value
``(c * 1024 + y * 32 + x + 7 * i) % 251`` at channel ``c``, row ``y``, column ``x``, so the
pixel at ``[n, c, y, x]`` of a loaded array says both which image it is and whether the
layout was read right.
"""

from __future__ import annotations

import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from umwelt.data import CIFAR10_CLASSES

N_BATCH = 20  # images per fake batch: 2 of each class
N_TREE_TRAIN, N_TREE_TEST = 4, 2  # images per class in the fake image tree
CAT, DOG = CIFAR10_CLASSES.index("cat"), CIFAR10_CLASSES.index("dog")
VEHICLES = [CIFAR10_CLASSES.index(c) for c in ("airplane", "automobile", "ship", "truck")]
#: the keys of :func:`build_fakes` by family
PYTHON = ["python-dir", "python-tar"]
TREES = ["tree-dir", "tree-tar", "tree-targz"]


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


def build_fakes(root: Path) -> dict[str, Path]:
    """Every format, tiny, under ``root``: ``python-dir``, ``python-tar``, ``tree-dir``,
    ``tree-tar``, ``tree-targz`` (its tree one folder down, as the shared file's source
    repository is). Each test module wraps it in a module-scoped ``fakes`` fixture."""
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
