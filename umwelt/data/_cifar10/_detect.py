r"""Which CIFAR-10 format a path holds, from its contents (:func:`detect_format`), and reading it.

* ``python-dir``: the official python version unpacked, a directory with ``data_batch_1`` …
  ``data_batch_5``, ``test_batch`` and ``batches.meta`` (or holding ``cifar-10-batches-py/``).
* ``python-tar``: the same files inside a tar archive (``cifar-10-python.tar.gz`` as
  downloaded).
* ``image-tree-dir``: class-per-folder image files ``train/<class>/*.png|jpg`` and
  ``test/<class>/*`` (the root may also be one folder down).
* ``image-tree-tar``: the same tree inside a ``.tar`` or ``.tar.gz``.

The name of a path says nothing; a directory is looked into, an archive listed. :func:`_read`
hands the path to its format's reader (:mod:`._python`, :mod:`._tree`, :mod:`._tar`).
"""

from __future__ import annotations

import os
from pathlib import Path

from umwelt.data._cifar10._layout import (
    _BATCH_FILES,
    _PYTHON_DIRNAME,
    _SPLITS,
    _basename,
    _existing,
    _neither,
    _Split,
)
from umwelt.data._cifar10._python import _read_python_dir
from umwelt.data._cifar10._tar import _read_tar, _tar_format, _tar_members
from umwelt.data._cifar10._tree import _read_tree_dir, _subdirs, _tree_member

#: The formats :func:`detect_format` recognizes -> description.
CIFAR10_FORMATS: dict[str, str] = {
    "python-dir": "official python batches in a directory (cifar-10-batches-py)",
    "python-tar": "official python batches in a tar archive (cifar-10-python.tar.gz)",
    "image-tree-dir": "class-per-folder images train/<class>/*, test/<class>/* in a directory",
    "image-tree-tar": "class-per-folder images train/<class>/*, test/<class>/* in a tar archive",
}


def detect_format(path: str | os.PathLike[str]) -> str:
    """Which CIFAR-10 format ``path`` holds, from its contents (a key of :data:`CIFAR10_FORMATS`).

    A tar archive is listed (for a ``.tar.gz``, one pass of decompression); no image or batch
    is read.

    Raises:
        DataError: naming the path when it does not exist, is not readable as a directory or
            a tar archive, or holds neither format (or both).
    """
    path = _existing(path)
    if path.is_dir():
        return _detect_dir(path)[0]
    has_batches = has_images = False
    for name, _ in _tar_members(path, want=lambda name: False):
        has_batches |= _basename(name) in _BATCH_FILES
        has_images |= _tree_member(name) is not None
    return _tar_format(path, has_batches, has_images)


def _read(path: Path, wanted: frozenset[int]) -> tuple[str, _Split, _Split]:
    """Read the images of the ``wanted`` classes: ``(format, train, test)``."""
    if path.is_dir():
        fmt, root = _detect_dir(path)
        if fmt == "python-dir":
            return fmt, *_read_python_dir(root, wanted)
        return fmt, *_read_tree_dir(root, wanted)
    return _read_tar(path, wanted)


def _detect_dir(path: Path) -> tuple[str, Path]:
    """``(format, root)`` of a directory: the official batches or an image tree."""
    candidates = [path]
    if (path / _PYTHON_DIRNAME).is_dir():
        candidates.append(path / _PYTHON_DIRNAME)
    for root in candidates:
        if any((root / n).is_file() for n in _BATCH_FILES):
            return "python-dir", root
    roots = [path, *_subdirs(path)]
    trees = [r for r in roots if all((r / s).is_dir() for s in _SPLITS)]
    if trees[:1] == [path] or len(trees) == 1:
        return "image-tree-dir", trees[0]
    if len(trees) > 1:
        raise _neither(path, f"several image trees ({', '.join(t.name for t in trees)})")
    if any((r / s).is_dir() for r in roots for s in _SPLITS):
        raise _neither(path, "an image tree needs both train/ and test/ folders")
    raise _neither(path, "a directory with neither")
