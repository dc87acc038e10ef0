"""Run directories on disk: create them only after every check passed, write every file atomically.

Each file is written to a temporary name in the same directory and renamed over the target, so
an interrupted run leaves either the previous complete file or the new complete file, never a
half-written one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import sys
import tempfile
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from sim.runs.lock import check_not_held
from umwelt.errors import ConfigError

__all__ = [
    "atomic_write",
    "check_lookup",
    "check_out_dir",
    "check_out_place",
    "check_writable",
    "default_run_dir",
    "read_jsonl",
    "to_jsonable",
    "versions",
    "write_json",
    "write_jsonl",
]


def default_run_dir(kind: str) -> Path:
    """``runs/<kind>-<YYYYmmdd-HHMMSS>`` under the working directory."""
    return Path("runs") / f"{kind}-{datetime.now().strftime('%Y%m%d-%H%M%S-%f')}"


def check_out_dir(out: Path) -> Path:
    """Check that ``out`` can become a new run directory, without creating anything.

    Raises:
        ConfigError: when ``out`` is a file, a non-empty directory, or lies under a file.
    """
    out = check_lookup(Path(out), "--out")
    if out.is_dir():
        check_not_held(out)
        if any(out.iterdir()):
            raise ConfigError(
                f"--out {str(out)!r} already exists and is not empty; choose a new one"
            )
    check_out_place(out)  # a file, under a file, or not writable
    return out


def check_out_place(out: Path) -> None:
    """That ``out`` is, or can be made, a directory we can write in: not a file, not under a
    file, not a broken symbolic link, and its nearest existing ancestor writable
    (:func:`check_writable`).

    Raises:
        ConfigError: naming ``out`` and what is wrong.
    """
    out = check_lookup(Path(out), "--out")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file, not a directory")
    for parent in [out, *out.parents]:
        if parent.is_symlink() and not parent.exists():  # mkdir would find it there
            where = "" if parent == out else f" lies under {str(parent)!r}, which"
            raise ConfigError(
                f"--out {str(out)!r}{where} is a broken symbolic link (to {os.readlink(parent)!r})"
            )
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"--out {str(out)!r} lies under {str(parent)!r}, which is a file")
            check_writable(parent, f"--out {str(out)!r}")
            return


def check_lookup(path: Path, what: str) -> Path:
    """``path``, once the system can look it up: a name too long, a loop of symbolic links or
    a directory that cannot be searched is one line naming ``what`` (``Path.exists`` would
    raise). A path that does not exist passes: the caller says what that means.

    Raises:
        ConfigError: ``"<what> '<path>': <the system's reason>"``.
    """
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        pass
    except OSError as e:
        raise ConfigError(f"{what} {str(path)!r}: {e.strerror}") from None
    return Path(path)


def check_writable(directory: Path, what: str) -> None:
    """That a file can be created in ``directory`` — by creating (and removing) one, which is
    the only test that holds on read-only mounts, ``/proc`` and for root.

    Raises:
        ConfigError: naming ``what`` and the directory.
    """
    try:
        with tempfile.TemporaryFile(dir=directory, prefix=".umwelt-probe-"):
            pass
    except OSError as e:
        raise ConfigError(f"{what}: cannot write in {str(directory)!r} ({e.strerror})") from None


def _file_mode() -> int:
    """The mode of a new file under the current umask (0644 for the usual 022)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``,
    with the mode a plain new file would get (the temporary file's own is 0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types from numpy/torch scalars, tuples, paths; non-finite floats become None."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # numpy / torch scalars and arrays
        return to_jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj


def write_json(path: Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    text = json.dumps(to_jsonable(obj), indent=2, ensure_ascii=False) + "\n"
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_jsonl(path: Path, rows: Iterable[dict]) -> Path:
    """Write one JSON object per line, atomically (the whole file is rewritten)."""
    text = "".join(json.dumps(to_jsonable(r), ensure_ascii=False) + "\n" for r in rows)
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def read_jsonl(path: Path) -> list[dict]:
    """The rows of a JSON-lines file."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def versions() -> dict[str, str]:
    """Versions of Python, the platform and every library a result depends on."""
    import matplotlib
    import numba
    import numpy
    import scipy
    import torch

    import umwelt

    return {
        "umwelt": umwelt.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "numpy": numpy.__version__,
        "numba": numba.__version__,
        "scipy": scipy.__version__,
        "torch": torch.__version__,
        "matplotlib": matplotlib.__version__,
    }
