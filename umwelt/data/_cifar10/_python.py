r"""The official python batches: checked, unpickled without running code, split.

Each batch is a pickle of ``{b"data": uint8 (10000, 3072), b"labels": [...], ...}`` whose rows
are the red, green and blue 32×32 planes, row-major; ``batches.meta`` names the ten classes.
Batches go through a restricted unpickler (:mod:`umwelt.data._unpickle`): a pickle from the
internet cannot run code. This module reads them from a directory (``python-dir``) and checks
what any source unpickled; the tar reader (:mod:`._tar`) feeds it the same files from an archive.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from umwelt.data._cifar10._classes import CIFAR10_CLASSES
from umwelt.data._cifar10._layout import (
    _BATCH_FILES,
    _META,
    _ROW,
    _TEST_BATCH,
    _TRAIN_BATCHES,
    IMAGE_SHAPE,
    _read_bytes,
    _Split,
)
from umwelt.data._unpickle import restricted_loads
from umwelt.errors import DataError


def _batch_rows(obj: Any, source: str, wanted: frozenset[int]) -> tuple[np.ndarray, np.ndarray]:
    """The ``wanted`` images of one unpickled batch: uint8 ``(k, 3, 32, 32)`` and ids ``(k,)``."""
    if not isinstance(obj, dict):
        raise DataError(f"{source} is not a CIFAR-10 batch: a {type(obj).__name__}, not a dict")
    data, labels = _field(obj, "data", source), _field(obj, "labels", source)
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2):
        raise DataError(f"{source}: data must be a uint8 array (N, {_ROW}), got {_what(data)}")
    if data.shape[1] != _ROW:
        raise DataError(f"{source}: data must have {_ROW} columns, got shape {data.shape}")
    try:
        ids = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"{source}: labels must be integers 0-9, got {_what(labels)}") from None
    if ids.shape != (data.shape[0],):
        raise DataError(f"{source}: {data.shape[0]} images but labels of shape {ids.shape}")
    if ids.size and not (0 <= ids.min() and ids.max() < len(CIFAR10_CLASSES)):
        raise DataError(f"{source}: labels must be in 0-9, got {ids.min()}..{ids.max()}")
    keep = np.isin(ids, list(wanted))
    return data[keep].reshape(-1, *IMAGE_SHAPE), ids[keep]  # (k, 3, 32, 32), (k,)


def _check_meta(obj: Any, source: str) -> None:
    if not isinstance(obj, dict):
        raise DataError(f"{source} is not CIFAR-10's batches.meta: a {type(obj).__name__}")
    raw = _field(obj, "label_names", source)
    try:
        names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in raw)
    except (TypeError, UnicodeDecodeError):
        raise DataError(f"{source}: label_names must be a list of names, got {raw!r}") from None
    if names != CIFAR10_CLASSES:
        raise DataError(f"{source}: label_names {list(names)} are not CIFAR-10's classes")


def _field(obj: dict, key: str, source: str) -> Any:
    for k in (key.encode(), key):  # Python 2 wrote byte keys; a Python 3 re-pack may not
        if k in obj:
            return obj[k]
    raise DataError(f"{source} has no {key!r} entry; keys: {sorted(map(str, obj))}")


def _what(a: object) -> str:
    if isinstance(a, np.ndarray):
        return f"array of shape {a.shape}, dtype {a.dtype}"
    return type(a).__name__


def _python_splits(
    batches: dict[str, tuple[np.ndarray, np.ndarray]],
) -> tuple[_Split, _Split]:
    def split(names: Sequence[str]) -> _Split:
        pixels = np.concatenate([batches[n][0] for n in names])  # (n, 3, 32, 32) uint8
        ids = np.concatenate([batches[n][1] for n in names])  # (n,)
        return _Split(ids, lambda idx: pixels[idx])

    return split(_TRAIN_BATCHES), split((_TEST_BATCH,))


def _read_python_dir(root: Path, wanted: frozenset[int]) -> tuple[_Split, _Split]:
    missing = [n for n in _BATCH_FILES if not (root / n).is_file()]
    if missing:
        raise DataError(f"CIFAR-10 python directory {str(root)!r} lacks {', '.join(missing)}")
    meta = str(root / _META)
    _check_meta(restricted_loads(_read_bytes(root / _META), source=meta), meta)
    batches = {}
    for name in (*_TRAIN_BATCHES, _TEST_BATCH):
        source = str(root / name)
        batches[name] = _batch_rows(
            restricted_loads(_read_bytes(root / name), source=source), source, wanted
        )
    return _python_splits(batches)
