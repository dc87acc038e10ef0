r"""Tar archives (``.tar``, ``.tar.gz``): streamed member by member, never extracted to disk.

One pass through the archive classifies each member (an official batch, an image of a tree,
or neither), unpickles the batches and keeps the bytes of the wanted classes' images
(:func:`_read_tar`); a member larger than a CIFAR-10 file can be is refused unread, and a
damaged header is not taken for the end of the archive (:func:`_tar_members`).
"""

from __future__ import annotations

import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from umwelt.data._cifar10._layout import (
    _BATCH_FILES,
    _MAX_BATCH_BYTES,
    _MAX_IMAGE_BYTES,
    _META,
    _SPLITS,
    _basename,
    _neither,
    _Split,
)
from umwelt.data._cifar10._python import _batch_rows, _check_meta, _python_splits
from umwelt.data._cifar10._tree import _tree_class, _tree_member, _tree_splits
from umwelt.data._unpickle import restricted_loads
from umwelt.errors import DataError


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
