r"""CIFAR-10 made binary, read from the formats users have (THEORY.md §6).

CIFAR-10 (Krizhevsky 2009, *Learning Multiple Layers of Features from Tiny Images*) holds
60,000 RGB images of 32×32 pixels in ten classes, 5,000 training and 1,000 test images each.
The paper trains a single-output VGG on CIFAR-10 *made binary*; :func:`cifar10` does that:

* **Classes.** ``classes="cat,dog"`` (the default): two classes by name or index 0–9, the
  first → −1 and the second → +1. Or the grouping ``"vehicles-vs-animals"``: airplane,
  automobile, ship, truck → −1 and the six animals → +1 (:data:`CLASS_GROUPS`).
* **Subset.** ``subset=n`` draws a balanced training subset, ``n/2`` images from each side
  (uniformly within a side, so a grouped side is stratified only on average), without
  replacement, seeded; ``subset_test`` does the same for the test set, which is otherwise
  every test image of the selected classes. Images keep their source order (the official
  batches' order; sorted class then file name for image trees); training drivers shuffle.
* **Label noise.** ``label_noise=p`` gives exactly ``round(p * n_train)`` training images,
  chosen at random, a fresh label ±1 drawn by a fair coin (Zhang et al. 2017's partially
  random labels: about half of them end up flipped, ``info["flipped"]`` says how many).
  Test labels stay clean. (The synthetic families' ``noise`` *flips* labels instead.)
* **Standardization.** Per channel, with the mean and std of the *training* images actually
  selected: :math:`x'_{c} = (x_c - m_c)/s_c`, applied to both splits; ``m`` and ``s`` (in
  pixel units 0–255) are recorded in ``info``. Computed exactly from per-channel histograms.

Images come out as float32 arrays ``(n, 3, 32, 32)`` (channel, row, column); labels float64 ±1.

**Formats**, detected from the path's contents, not its name (:func:`detect_format`):

* ``python-dir``: the official python version unpacked, a directory with ``data_batch_1`` …
  ``data_batch_5``, ``test_batch`` and ``batches.meta`` (or holding ``cifar-10-batches-py/``).
  Each batch is a pickle of ``{b"data": uint8 (10000, 3072), b"labels": [...], ...}`` whose
  rows are the red, green and blue 32×32 planes, row-major. Batches go through a restricted
  unpickler (:mod:`umwelt.data._unpickle`): a pickle from the internet cannot run code.
* ``python-tar``: the same files inside a tar archive (``cifar-10-python.tar.gz`` as
  downloaded), read member by member from the archive, never extracted to disk.
* ``image-tree-dir``: class-per-folder image files ``train/<class>/*.png|jpg`` and
  ``test/<class>/*`` (the root may also be one folder down), decoded with Pillow.
* ``image-tree-tar``: the same tree inside a ``.tar`` or ``.tar.gz``, read without extracting.

Only images of the selected classes are read, and of an image tree only those in the subsets
are decoded. Loading two classes (10,000 + 2,000 images) from the 19.6 MB JPEG tree
``cifar10-jpeg.tar.gz`` costs about 3.5 s of CPU time: one pass through the archive (~2 s,
mostly :mod:`tarfile`'s per-member work on 60,000 members) and decoding (~0.1 ms per image);
all ten classes (60,000 images) about 12 s. Nothing is cached.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from umwelt.data._base import Dataset, _check_count, _check_fraction, _finish, _spawn
from umwelt.data._unpickle import restricted_loads
from umwelt.errors import DataError

#: The ten CIFAR-10 classes; a class's index is its position (the official label).
CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

#: Named binary groupings: name -> (classes labelled −1, classes labelled +1).
CLASS_GROUPS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "vehicles-vs-animals": (
        ("airplane", "automobile", "ship", "truck"),
        ("bird", "cat", "deer", "dog", "frog", "horse"),
    ),
}

#: The formats :func:`detect_format` recognizes -> description.
CIFAR10_FORMATS: dict[str, str] = {
    "python-dir": "official python batches in a directory (cifar-10-batches-py)",
    "python-tar": "official python batches in a tar archive (cifar-10-python.tar.gz)",
    "image-tree-dir": "class-per-folder images train/<class>/*, test/<class>/* in a directory",
    "image-tree-tar": "class-per-folder images train/<class>/*, test/<class>/* in a tar archive",
}

CIFAR10_DESCRIPTION = "CIFAR-10 (Krizhevsky 2009), 32x32 RGB images, two classes or groups -> -1/+1"

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

_Selection = tuple[tuple[str, ...], tuple[str, ...]]


# -- classes ------------------------------------------------------------------------------------


def parse_classes(classes: str | Sequence[str | int]) -> _Selection:
    """The binary task: ``(classes labelled −1, classes labelled +1)``.

    Args:
        classes: ``"a,b"`` with two class names (case-insensitive) or indices 0–9, a sequence
            of two such, or a key of :data:`CLASS_GROUPS` such as ``"vehicles-vs-animals"``.

    Returns:
        Two tuples of class names from :data:`CIFAR10_CLASSES`.

    Raises:
        DataError: naming the value for an unknown class, a class given twice, or not
            exactly two classes.

    Example:
        >>> parse_classes("3, dog")
        (('cat',), ('dog',))
    """
    if isinstance(classes, str):
        key = classes.strip().lower()
        if key in CLASS_GROUPS:
            return CLASS_GROUPS[key]
        items: list[str | int] = [s.strip() for s in classes.split(",")]
    elif isinstance(classes, Sequence):
        items = list(classes)
    else:
        raise DataError(f"classes must be a string such as 'cat,dog', got {classes!r}")
    if len(items) != 2:
        raise DataError(
            f"classes must name two CIFAR-10 classes ('cat,dog') or a grouping "
            f"({', '.join(CLASS_GROUPS)}), got {classes!r}"
        )
    names = tuple(_class_name(item) for item in items)
    if names[0] == names[1]:
        raise DataError(f"class {names[0]!r} given twice in classes={classes!r}; give two classes")
    return (names[0],), (names[1],)


def _class_name(item: str | int) -> str:
    valid = ", ".join(CIFAR10_CLASSES)
    if isinstance(item, int | np.integer) and not isinstance(item, bool):
        if 0 <= item < len(CIFAR10_CLASSES):
            return CIFAR10_CLASSES[int(item)]
        raise DataError(f"unknown CIFAR-10 class index {item!r}; valid: 0-9 or {valid}")
    if isinstance(item, str):
        name = item.strip().lower()
        if name in CIFAR10_CLASSES:
            return name
        if name.isdigit() and int(name) < len(CIFAR10_CLASSES):
            return CIFAR10_CLASSES[int(name)]
    raise DataError(f"unknown CIFAR-10 class {item!r}; valid: {valid} (or indices 0-9)")


def _canonical(selection: _Selection) -> str:
    for key, group in CLASS_GROUPS.items():
        if group == selection:
            return key
    return f"{selection[0][0]},{selection[1][0]}"


# -- the sources --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Split:
    """One split as read from a source, before selection: class ids and a pixel loader."""

    ids: np.ndarray  # (n,) int64 class index 0..9 of each image, in source order
    load: Callable[[np.ndarray], np.ndarray]  # indices (k,) -> uint8 (k, 3, 32, 32)


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


def _read(path: Path, wanted: frozenset[int]) -> tuple[str, _Split, _Split]:
    """Read the images of the ``wanted`` classes: ``(format, train, test)``."""
    if path.is_dir():
        fmt, root = _detect_dir(path)
        if fmt == "python-dir":
            return fmt, *_read_python_dir(root, wanted)
        return fmt, *_read_tree_dir(root, wanted)
    return _read_tar(path, wanted)


# -- official python batches --------------------------------------------------------------------


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


# -- image trees --------------------------------------------------------------------------------


def _basename(name: str) -> str:
    """The last component of an archive member's name (plain string work: 60,000 members)."""
    return name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


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


# -- tar archives -------------------------------------------------------------------------------


def _tar_members(path: Path, want: Callable[[str], bool]):
    """Stream ``(name, bytes or None)`` over the files of a tar archive; bytes when ``want``."""
    try:
        is_tar = tarfile.is_tarfile(path)
    except OSError as e:
        raise DataError(f"cannot read {str(path)!r}: {e.strerror or e}") from None
    if not is_tar:
        raise _neither(path, "a file that is not a tar archive (or a damaged one)")
    try:
        with tarfile.open(path, mode="r|*") as tf:
            for member in tf:
                if not member.isfile():
                    continue
                if not want(member.name):
                    yield member.name, None
                    continue
                limit = (
                    _MAX_BATCH_BYTES if _basename(member.name) in _BATCH_FILES else _MAX_IMAGE_BYTES
                )
                if member.size > limit:
                    raise DataError(
                        f"member {member.name} of {str(path)!r} is {member.size} bytes, more "
                        f"than a CIFAR-10 file can be ({limit})"
                    )
                f = tf.extractfile(member)
                yield member.name, f.read() if f is not None else b""
            # tarfile ends the iteration quietly at a damaged header after the first: what
            # follows the last member must be the end-of-archive zeros, and nothing else.
            while chunk := tf.fileobj.read(1 << 20):
                if chunk.strip(b"\0"):
                    raise tarfile.ReadError(f"unreadable member header at byte {tf.offset}")
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise DataError(f"corrupt or truncated archive {str(path)!r}: {e}") from None


def _tar_format(path: Path, has_batches: bool, has_images: bool) -> str:
    if has_batches and has_images:
        raise _neither(path, "an archive with both python batches and image folders")
    if has_batches:
        return "python-tar"
    if has_images:
        return "image-tree-tar"
    raise _neither(path, "an archive with neither")


def _read_tar(path: Path, wanted: frozenset[int]) -> tuple[str, _Split, _Split]:
    """One pass through the archive: unpickle batches, keep the wanted classes' image bytes."""
    batches: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    meta_seen = False
    items: dict[str, list[tuple[int, str, bytes | Path]]] = {s: [] for s in _SPLITS}
    prefixes: set[str] = set()
    folder_ids: dict[str, int] = {}

    def want(name: str) -> bool:  # called once per member: classify it here
        if _basename(name) in _BATCH_FILES:
            return True
        tree = _tree_member(name)
        if tree is None:
            return False
        prefix, _, folder = tree
        prefixes.add(prefix)
        if folder not in folder_ids:
            folder_ids[folder] = _tree_class(folder, f"{str(path)!r} ({name})")
        return folder_ids[folder] in wanted

    for name, blob in _tar_members(path, want):
        if blob is None:  # not wanted
            continue
        base = _basename(name)
        if base in _BATCH_FILES:
            if base in batches or (base == _META and meta_seen):
                raise DataError(f"{str(path)!r} holds {base} twice (second: {name})")
            obj = restricted_loads(blob, source=f"{path}:{name}")
            if base == _META:
                _check_meta(obj, f"{path}:{name}")
                meta_seen = True
            else:
                batches[base] = _batch_rows(obj, f"{path}:{name}", wanted)
            continue
        _, split, folder = _tree_member(name)  # type: ignore[misc]  # wanted: a tree member
        items[split].append((folder_ids[folder], name, blob))
    fmt = _tar_format(path, bool(batches) or meta_seen, bool(prefixes))
    if fmt == "python-tar":
        missing = [n for n in _BATCH_FILES if n not in batches and not (n == _META and meta_seen)]
        if missing:
            raise DataError(f"CIFAR-10 archive {str(path)!r} lacks {', '.join(missing)}")
        return fmt, *_python_splits(batches)
    if len(prefixes) > 1:
        raise _neither(path, f"an archive with several image trees ({', '.join(sorted(prefixes))})")
    return fmt, *_tree_splits(items, repr(str(path)), wanted)


# -- the dataset --------------------------------------------------------------------------------


def _check_subset(value: object, what: str) -> int | None:
    if value is None:
        return None
    n = _check_count(value, what, minimum=2)
    if n % 2:
        raise DataError(f"{what} must be even (half from each side), got {n}")
    return n


def _select(
    ids: np.ndarray, selection: _Selection, n: int | None, rng: np.random.Generator, what: str
) -> np.ndarray:
    """Indices of the selected images; a balanced random ``n`` of them when ``n`` is given."""
    sides = [np.flatnonzero(np.isin(ids, [CIFAR10_CLASSES.index(c) for c in s])) for s in selection]
    if n is None:
        return np.sort(np.concatenate(sides))
    half = n // 2
    if half > min(len(s) for s in sides):
        raise DataError(
            f"{what}={n} is larger than available: {len(sides[0])} images labelled -1 "
            f"({','.join(selection[0])}) and {len(sides[1])} labelled +1 "
            f"({','.join(selection[1])}) allow at most {2 * min(len(s) for s in sides)}"
        )
    chosen = [rng.choice(s, size=half, replace=False) for s in sides]
    return np.sort(np.concatenate(chosen))


def _channel_stats(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact per-channel mean and std (population) of uint8 ``(n, 3, H, W)``, from histograms."""
    values = np.arange(256, dtype=np.float64)
    mean, std = np.empty(3), np.empty(3)
    for c in range(3):
        counts = np.bincount(pixels[:, c].ravel(), minlength=256).astype(np.float64)  # (256,)
        total = counts.sum()
        mean[c] = counts @ values / total
        std[c] = np.sqrt(counts @ (values - mean[c]) ** 2 / total)
    return mean, std


def _standardize_images(pixels: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """uint8 ``(n, 3, H, W)`` -> float32 ``(x - mean_c) / scale_c`` through a lookup table."""
    lut = ((np.arange(256.0)[None, :] - mean[:, None]) / scale[:, None]).astype(np.float32)
    out = np.empty(pixels.shape, dtype=np.float32)  # (n, 3, H, W)
    for c in range(3):
        np.take(lut[c], pixels[:, c], out=out[:, c], mode="clip")  # uint8: in range
    return out


def cifar10(
    path: str | os.PathLike[str],
    *,
    classes: str | Sequence[str | int] = "cat,dog",
    subset: int | None = None,
    subset_test: int | None = None,
    label_noise: float = 0.0,
    seed: int = 0,
) -> Dataset:
    r"""Binary CIFAR-10 from ``path``, in any format of :data:`CIFAR10_FORMATS`.

    Args:
        path: a ``cifar-10-batches-py`` directory, ``cifar-10-python.tar.gz``, or an image
            tree (directory, ``.tar`` or ``.tar.gz``); the format is read from the contents.
        classes: ``"a,b"`` (names or indices; ``a`` → −1, ``b`` → +1) or a grouping such as
            ``"vehicles-vs-animals"`` (see :func:`parse_classes`).
        subset: even number of training images, half from each side, drawn with ``seed``;
            ``None`` keeps every training image of the selected classes.
        subset_test: the same for the test set; ``None`` keeps every test image.
        label_noise: fraction of training images given a random label (fair coin), in [0, 1].
        seed: seed of the subsets and the random labels; the same arguments give the same
            arrays.

    Returns:
        A :class:`Dataset` named ``"cifar10"``: float32 images ``(n, 3, 32, 32)`` standardized
        per channel with the training set's statistics, labels float64 ±1. ``info`` records
        ``spec`` (the path as given), ``source`` (absolute), ``format``, ``classes``,
        ``negative_classes``, ``positive_classes``, ``subset``, ``subset_test``,
        ``label_noise``, ``randomized`` and ``flipped`` label counts, ``seed``, sizes,
        ``available_train``/``available_test`` (per side), and ``channel_mean`` and
        ``channel_std`` (pixel units 0–255).

    Raises:
        DataError: one line naming the value, for a path that does not exist or holds neither
            format, a corrupt archive or batch, a refused pickle global, an unknown class or
            a class given twice, or a subset that is odd, not positive or larger than the
            images available.
    """
    selection = parse_classes(classes)
    subset = _check_subset(subset, "subset")
    subset_test = _check_subset(subset_test, "subset_test")
    label_noise = _check_fraction(label_noise, "label_noise")
    r_train, r_test, r_noise = _spawn(seed, 3)
    source = _existing(path)
    wanted = frozenset(CIFAR10_CLASSES.index(c) for s in selection for c in s)
    fmt, train, test = _read(source, wanted)

    idx_train = _select(train.ids, selection, subset, r_train, "subset")
    idx_test = _select(test.ids, selection, subset_test, r_test, "subset_test")
    pixels_train, pixels_test = train.load(idx_train), test.load(idx_test)  # uint8 (n, 3, 32, 32)
    negative = [CIFAR10_CLASSES.index(c) for c in selection[0]]
    y_train = np.where(np.isin(train.ids[idx_train], negative), -1.0, 1.0)  # (n_train,)
    y_test = np.where(np.isin(test.ids[idx_test], negative), -1.0, 1.0)  # (n_test,)

    k = round(label_noise * y_train.shape[0])
    noisy = r_noise.choice(y_train.shape[0], size=k, replace=False)
    clean = y_train.copy()
    y_train[noisy] = np.where(r_noise.random(k) < 0.5, -1.0, 1.0)

    mean, std = _channel_stats(pixels_train)
    scale = np.where(std > 0.0, std, 1.0)
    X_train = _standardize_images(pixels_train, mean, scale)
    X_test = _standardize_images(pixels_test, mean, scale)

    def available(ids: np.ndarray) -> dict[str, int]:
        return {
            "-1": int(np.isin(ids, negative).sum()),
            "+1": int((~np.isin(ids, negative)).sum()),
        }

    canonical = _canonical(selection)
    knobs = {
        "classes": canonical,
        "subset": subset,
        "subset_test": subset_test,
        "label_noise": label_noise,
    }
    info = {
        "name": "cifar10",
        "spec": os.fspath(path),
        "description": CIFAR10_DESCRIPTION,
        "knobs": knobs,
        "seed": int(seed),
        "source": str(source.resolve()),
        "format": fmt,
        **knobs,
        "negative_classes": list(selection[0]),
        "positive_classes": list(selection[1]),
        "randomized": int(k),
        "flipped": int(np.sum(y_train != clean)),
        "available_train": available(train.ids),
        "available_test": available(test.ids),
        "channel_mean": [float(m) for m in mean],
        "channel_std": [float(s) for s in scale],
    }
    return _finish(
        "cifar10",
        X_train,
        y_train,
        X_test,
        y_test,
        info,
        standardization="per channel, training mean and std (pixel units in channel_mean/std)",
    )
