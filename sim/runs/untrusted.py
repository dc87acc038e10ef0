"""One loader for the files of a run directory, which may be damaged or hostile.

A run directory can be truncated by a crash, edited by hand, copied half-way or handed over by
someone else. Every reader goes through these functions: JSON and JSON lines (each row an object
whose ``epoch``, where present, is an integer ≥ 0), ``.npy`` arrays and ``.npz`` archives without
pickles, and torch checkpoints with ``weights_only=True`` (no code runs). Only regular files are
opened: a named pipe or a device in a file's place is refused, not read (reading one would wait
forever or never end). Any failure is one
:class:`~umwelt.errors.ConfigError` line naming the file and what is wrong with it — never a
traceback, never torch's multi-line explanations.
"""

from __future__ import annotations

import json
import os
import stat
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from umwelt.errors import ConfigError

__all__ = ["load_checkpoint", "load_json", "load_jsonl", "load_npy", "load_npz"]


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return (text[:300] + "…") if len(text) > 300 else text or type(e).__name__


def _regular(path: Path) -> Path:
    """``path`` if it is a regular file (or a link to one); FileNotFoundError as is.

    Raises:
        ConfigError: for a directory, a named pipe, a device or a socket, or a path the system
            cannot look up (a name too long, a loop of links), naming it.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise
    except OSError as e:
        raise ConfigError(f"cannot read {str(path)!r}: {e.strerror}") from None
    if not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file (a pipe or a device)"
        raise ConfigError(f"cannot read {str(path)!r}: it is {kind}")
    return path


def _read_text(path: Path) -> str:
    """The text of ``path``; FileNotFoundError as is, any other failure one ConfigError line."""
    try:
        return _regular(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {str(path)!r}: {_one_line(e)}") from None


def load_json(path: Path) -> Any:
    """The JSON value in ``path``.

    Raises:
        FileNotFoundError: when there is no such file (the caller says what that means).
        ConfigError: for a file that cannot be read or is not JSON.
    """
    path = Path(path)
    text = _read_text(path)
    try:
        return json.loads(text)
    except ValueError as e:
        raise ConfigError(f"{str(path)!r} is not valid JSON ({_one_line(e)})") from None


def _check_epoch(path: Path, line: int, row: dict) -> None:
    e = row.get("epoch")
    if "epoch" in row and (isinstance(e, bool) or not isinstance(e, int) or e < 0):
        raise ConfigError(f"{str(path)!r} line {line}: epoch must be an integer ≥ 0, got {e!r}")


def load_jsonl(path: Path) -> list[dict]:
    """The rows of a JSON-lines file: one object a line (blank lines skipped), sorted as
    written; an ``epoch`` must be an integer ≥ 0.

    Raises:
        FileNotFoundError: when there is no such file.
        ConfigError: naming the file and the first bad line.
    """
    path = Path(path)
    text = _read_text(path)
    rows = []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as e:
            raise ConfigError(f"{str(path)!r} line {i} is not JSON ({_one_line(e)})") from None
        if not isinstance(row, dict):
            raise ConfigError(f"{str(path)!r} line {i} is not a JSON object")
        _check_epoch(path, i, row)
        rows.append(row)
    return rows


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` archive (``allow_pickle=False``: object arrays are refused).

    Raises:
        ConfigError: for a truncated, foreign or pickle-carrying file.
    """
    path = Path(path)
    try:
        with np.load(_regular(path), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except ConfigError:
        raise
    except Exception as e:  # BadZipFile, OSError, ValueError (pickles), EOFError, ...
        raise ConfigError(f"unreadable arrays {str(path)!r}: {_one_line(e)}") from None


def load_npy(path: Path) -> np.ndarray:
    """The array of a ``.npy`` file (``allow_pickle=False``: object arrays are refused).

    Raises:
        FileNotFoundError: when there is no such file.
        ConfigError: for a file that is not a numeric ``.npy`` array, naming it.
    """
    path = Path(path)
    try:
        with open(_regular(path), "rb") as f:
            a = np.lib.format.read_array(f, allow_pickle=False)
    except (FileNotFoundError, ConfigError):
        raise
    except Exception as e:  # not .npy at all, truncated, pickled
        raise ConfigError(f"cannot read the array {str(path)!r}: {_one_line(e)}") from None
    if not isinstance(a, np.ndarray) or a.dtype.kind not in "biuf":
        raise ConfigError(f"cannot read the array {str(path)!r}: not a numeric array")
    return a


def load_checkpoint(path: Path, *, map_location: Any = "cpu") -> Any:
    """A torch checkpoint loaded with ``weights_only=True`` (tensors and plain containers only;
    a file that would run code is refused).

    Raises:
        ConfigError: naming the file, with the first line of torch's reason.
    """
    import torch

    path = Path(path)
    try:
        _regular(path)
        with warnings.catch_warnings():  # torch's notes on foreign pickle protocols: not ours
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise ConfigError(f"no checkpoint {str(path)!r}") from None
    except ConfigError:
        raise
    except Exception as e:  # truncated, foreign, or refused by weights_only
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "Weights only load failed" in first or "weights_only" in str(e):
            first = "it holds objects other than tensors (refused: weights_only)"
        raise ConfigError(f"cannot read checkpoint {str(path)!r}: {_one_line(first)}") from None
