r"""Class-per-folder image trees: which files are images of which class, decoded with Pillow.

A tree holds ``train/<class>/*.png|jpg`` and ``test/<class>/*`` (hidden files, macOS resource
forks and other suffixes are skipped). Images are sorted by class, then file name, and only
those selected are decoded (:func:`_tree_splits`). This module reads a tree from a directory
(``image-tree-dir``); the tar reader (:mod:`._tar`) feeds it the member bytes of an archive.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from umwelt.data._cifar10._classes import CIFAR10_CLASSES
from umwelt.data._cifar10._layout import (
    _IMAGE_SUFFIXES,
    _SPLITS,
    IMAGE_SHAPE,
    _read_bytes,
    _Split,
)
from umwelt.errors import DataError


def _tree_member(name: str) -> tuple[str, str, str] | None:
    """``(prefix, split, class folder)`` when ``name`` is ``…/train|test/<class>/<image>``."""
    parts = [p for p in name.replace("\\", "/").split("/") if p and p != "."]
    if len(parts) < 3 or parts[-3] not in _SPLITS:
        return None
    if not parts[-1].lower().endswith(_IMAGE_SUFFIXES):
        return None
    for p in parts:  # hidden files and folders, macOS resource forks
        if p[0] == "." or p == "__MACOSX":
            return None
    return "/".join(parts[:-3]), parts[-3], parts[-2]


def _tree_class(folder: str, where: str) -> int:
    try:
        return CIFAR10_CLASSES.index(folder.lower())
    except ValueError:
        raise DataError(
            f"unknown class folder {folder!r} in {where}; CIFAR-10 class folders are "
            f"{', '.join(CIFAR10_CLASSES)}"
        ) from None


def _decode(blob: bytes, name: str) -> np.ndarray:
    """One PNG or JPEG file -> uint8 ``(3, 32, 32)``."""
    try:
        from PIL import Image
    except ImportError as e:  # pragma: no cover - Pillow comes with matplotlib
        raise DataError(f"reading image files needs Pillow (pip install pillow): {e}") from e
    try:
        with Image.open(io.BytesIO(blob), formats=("PNG", "JPEG")) as im:
            if im.size != (32, 32):
                raise DataError(f"image {name} is {im.size[0]}x{im.size[1]}, not 32x32")
            rgb = np.asarray(im.convert("RGB"))  # (32, 32, 3)
    except DataError:
        raise
    except Exception as e:  # Pillow raises OSError, ValueError, SyntaxError... on bad files
        raise DataError(f"cannot decode image {name}: {type(e).__name__}: {e}") from None
    return rgb.transpose(2, 0, 1)  # (3, 32, 32)


def _tree_splits(
    items: dict[str, list[tuple[int, str, bytes | Path]]], where: str, wanted: frozenset[int]
) -> tuple[_Split, _Split]:
    """Splits from ``split -> [(class id, name, bytes or file)]``, sorted by class then name."""
    out = []
    for split in _SPLITS:
        rows = sorted(items[split], key=lambda r: (r[0], r[1]))
        missing = sorted(wanted - {r[0] for r in rows})
        if missing:
            names = ", ".join(CIFAR10_CLASSES[c] for c in missing)
            raise DataError(f"no {split} images of class {names} in {where}")
        ids = np.array([r[0] for r in rows], dtype=np.int64)

        def load(idx: np.ndarray, rows: list[tuple[int, str, bytes | Path]] = rows) -> np.ndarray:
            pixels = np.empty((len(idx), *IMAGE_SHAPE), dtype=np.uint8)  # (k, 3, 32, 32)
            for j, i in enumerate(idx):
                _, name, src = rows[i]
                blob = src if isinstance(src, bytes) else _read_bytes(src)
                pixels[j] = _decode(blob, name)
            return pixels

        out.append(_Split(ids, load))
    return out[0], out[1]


def _read_tree_dir(root: Path, wanted: frozenset[int]) -> tuple[_Split, _Split]:
    items: dict[str, list[tuple[int, str, bytes | Path]]] = {s: [] for s in _SPLITS}
    for split in _SPLITS:
        for folder in sorted(_subdirs(root / split)):
            c = _tree_class(folder.name, str(root / split))
            if c not in wanted:
                continue
            for f in sorted(folder.iterdir()):
                if _tree_member(f"{split}/{folder.name}/{f.name}") and f.is_file():
                    items[split].append((c, str(f), f))
    return _tree_splits(items, repr(str(root)), wanted)


def _subdirs(path: Path) -> list[Path]:
    try:
        return [p for p in path.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))]
    except OSError as e:
        raise DataError(f"cannot list {str(path)!r}: {e.strerror or e}") from None
