"""One writer at a time: an exclusive lock on a run directory.

Every command that writes into a run directory (``umwelt simulate``, ``umwelt train`` and its
``--resume``, ``umwelt hessian``) holds ``RUN/.lock`` while it writes. The lock is taken
atomically (``O_CREAT | O_EXCL``) before the first file is written and removed when the command
ends, however it ends; a second writer fails at once with one line naming the holder (its
process id, host, command and start time). Readers (``Run.open``, ``umwelt plot``, ``umwelt
phases``) need no lock.

A lock whose process is gone (killed with ``kill -9``, a crashed machine) is *stale*: on the
same host its process id no longer exists, so the next writer takes it over. A lock written on
another host cannot be checked from here and is respected. The process that holds a lock may
take it again (``umwelt train --hessian-at`` runs the Hessian analysis inside the training
process): the inner holder neither re-creates nor removes it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from datetime import datetime
from pathlib import Path

from umwelt.errors import ConfigError

__all__ = [
    "LOCK_NAME",
    "RunLock",
    "RunLockedError",
    "check_not_held",
    "claim_new",
    "holder",
    "is_held",
]

LOCK_NAME = ".lock"
#: a lock file still empty this long after it was created is left over from a crash
_EMPTY_GRACE_S = 30.0


class RunLockedError(ConfigError):
    """Another process is writing into the run directory."""


def holder(run_dir: Path | str) -> dict | None:
    """What ``RUN/.lock`` says about its holder (``{}`` if unreadable), or None if unlocked."""
    path = Path(run_dir) / LOCK_NAME
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        info = json.loads(text)
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def _stale(path: Path, info: dict) -> bool:
    """Whether the lock at ``path`` with contents ``info`` belongs to no running process."""
    if not info:  # created but not yet written, or damaged: stale once old
        try:
            return time.time() - path.stat().st_mtime > _EMPTY_GRACE_S
        except FileNotFoundError:
            return True
    pid, host = info.get("pid"), info.get("host")
    if host != socket.gethostname() or not isinstance(pid, int):
        return False
    return not _alive(pid)


class RunLock:
    """The lock of one run directory; a context manager.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> with RunLock(d, "umwelt demo"):
    ...     holder(d)["command"]
    'umwelt demo'
    >>> holder(d) is None
    True
    """

    def __init__(self, run_dir: Path | str, command: str | None = None):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.command = command or " ".join(["umwelt", *sys.argv[1:2]])
        self.owned = False

    def acquire(self) -> RunLock:
        """Take the lock (creating the directory if needed).

        Raises:
            RunLockedError: naming the holder, when another live process holds it.
        """
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(3):  # a stale lock is removed and the creation tried again
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                info = holder(self.run_dir) or {}
                if info.get("pid") == os.getpid() and info.get("host") == socket.gethostname():
                    return self  # this process holds it already: the outer holder releases
                if not _stale(self.path, info):
                    raise RunLockedError(_held(self.run_dir, info)) from None
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
                continue
            except OSError as e:
                raise ConfigError(f"cannot write in {str(self.run_dir)!r}: {e.strerror}") from None
            info = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "command": self.command,
                "started": datetime.now().isoformat(timespec="seconds"),
            }
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(info))
            self.owned = True
            return self
        raise RunLockedError(_held(self.run_dir, holder(self.run_dir) or {}))

    def release(self) -> None:
        """Remove the lock if this object took it."""
        if self.owned:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self.owned = False

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def check_not_held(run_dir: Path | str) -> None:
    """:class:`RunLockedError` naming the holder when a live process holds the lock."""
    if is_held(run_dir):
        raise RunLockedError(_held(Path(run_dir), holder(run_dir) or {}))


def is_held(run_dir: Path | str) -> bool:
    """Whether a live process (or one on another host) holds the directory's lock."""
    info = holder(run_dir)
    return info is not None and not _stale(Path(run_dir) / LOCK_NAME, info)


def claim_new(run_dir: Path | str, command: str) -> RunLock:
    """The lock of a *new* run directory: taken, then the directory checked to hold nothing
    else (a writer that got in between the checks and the lock is refused here).

    Raises:
        RunLockedError: when another process holds it; ConfigError when it is not empty.
    """
    lock = RunLock(run_dir, command).acquire()
    if any(p.name != LOCK_NAME for p in lock.run_dir.iterdir()):
        lock.release()
        raise ConfigError(
            f"--out {str(lock.run_dir)!r} already exists and is not empty; choose a new one"
        )
    return lock


def _held(run_dir: Path, info: dict) -> str:
    who = (
        f"process {info.get('pid')} on {info.get('host')} ({info.get('command')}, since "
        f"{info.get('started')})"
        if info
        else "another process (its lock file is being written)"
    )
    return f"{str(run_dir)!r} is being written by {who}; wait for it to finish or stop it"
