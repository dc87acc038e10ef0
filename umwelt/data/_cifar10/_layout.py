r"""The CIFAR-10 files every reader shares: names, sizes, the split record, checked access.

The official python version is five training batches ``data_batch_1`` … ``data_batch_5``, a
``test_batch`` and ``batches.meta`` (usually in ``cifar-10-batches-py/``), each batch a pickle
of 10,000 rows of ``3 * 32 * 32`` values; an image tree holds ``train/<class>/*.png|jpg`` and
``test/<class>/*``. Every reader returns its two splits as a :class:`_Split` (class ids and a
pixel loader, before selection).

A path is checked before it is read (:func:`_existing`: a directory or a regular file, not a
pipe or a device), and a file or archive member larger than a CIFAR-10 file can be is refused
unread (:func:`_read_bytes`; an official batch is 31 MB, an image < 4 kB): a hostile path must
not make a reader wait forever or read gigabytes into memory.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from umwelt.errors import DataError

IMAGE_SHAPE = (3, 32, 32)
_ROW = 3 * 32 * 32  # values per image in the official batches
_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
_TEST_BATCH = "test_batch"
_META = "batches.meta"
_BATCH_FILES = (*_TRAIN_BATCHES, _TEST_BATCH, _META)
_PYTHON_DIRNAME = "cifar-10-batches-py"
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_SPLITS = ("train", "test")
# Archive members larger than these are refused (an official batch is 31 MB, an image < 4 kB):
# a hostile archive must not make us read gigabytes into memory.
_MAX_BATCH_BYTES = 64 << 20
_MAX_IMAGE_BYTES = 1 << 20


@dataclass(frozen=True)
class _Split:
    """One split as read from a source, before selection: class ids and a pixel loader."""

    ids: np.ndarray  # (n,) int64 class index 0..9 of each image, in source order
    load: Callable[[np.ndarray], np.ndarray]  # indices (k,) -> uint8 (k, 3, 32, 32)


def _existing(path: str | os.PathLike[str]) -> Path:
    """``path`` if it is a directory or a regular file: a named pipe or a device is refused
    unread (reading one would wait forever, or never end)."""
    p = Path(path).expanduser()
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        raise DataError(f"CIFAR-10 path {str(path)!r} does not exist") from None
    except OSError as e:  # a name too long, a loop of links
        raise DataError(f"CIFAR-10 path {str(path)!r}: {e.strerror}") from None
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        raise DataError(
            f"CIFAR-10 path {str(path)!r} is neither a directory nor a file (a pipe or a device)"
        )
    return p


def _neither(path: Path, what: str) -> DataError:
    return DataError(
        f"{str(path)!r} is not CIFAR-10 data: {what}; expected the official python batches "
        f"({', '.join(_BATCH_FILES)}) or image folders train/<class>/, test/<class>/, as a "
        f"directory or a .tar/.tar.gz"
    )


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, refused (as the tar reader refuses a member) when it is larger than a
    CIFAR-10 file can be: a 64 GiB ``data_batch_1`` is not read into memory, a named pipe is not
    read at all."""
    limit = _MAX_BATCH_BYTES if path.name in _BATCH_FILES else _MAX_IMAGE_BYTES
    try:
        st = path.stat()
        size = st.st_size
        if not stat.S_ISREG(st.st_mode):  # a pipe would be read forever
            raise DataError(f"{str(path)!r} is not a regular file (a pipe or a device)")
        if size > limit:
            raise DataError(
                f"{str(path)!r} is {size} bytes, more than a CIFAR-10 file can be ({limit})"
            )
        return path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {str(path)!r}: {e.strerror or e}") from None


def _basename(name: str) -> str:
    """The last component of an archive member's name (plain string work: 60,000 members)."""
    return name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
