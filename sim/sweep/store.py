r"""The sweep directory: ``sweep.json``, the points' run directories and their states.

::

    DIR/sweep.json          the sweep file(s) and the point list (id, axis values, settings)
    DIR/points/<id>/        one ordinary ``umwelt train`` run directory per point
    DIR/failures/<id>.json  a point whose run raised: attempts and the error (its worker's)
    DIR/logs/<id>.log       what a point's worker printed
    DIR/slurm/              submitit's job folders (--executor slurm)
    DIR/phases.csv .jsonl   one row per point (sim.sweep.collect), rebuilt at any time
    DIR/boundary.csv .json  the estimated phase boundary
    DIR/figures/            the phase diagrams

A point's state is read from its run directory, never stored twice: ``done`` (its
``summary.json`` says completed, converged, stopped at a phase or diverged), ``running`` (its
lock is held), ``interrupted`` (a checkpoint to resume from), ``failed`` (its run raised on
every attempt), else ``pending``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sim.runs import io
from sim.runs.lock import holder, is_held
from sim.runs.train import CHECKPOINT, TrainConfig
from sim.runs.untrusted import load_json
from sim.sweep.spec import SweepSpec
from umwelt.errors import ConfigError, UmweltError

__all__ = [
    "ATTEMPTS",
    "FINISHED",
    "STATES",
    "failure",
    "merge",
    "point_dir",
    "point_state",
    "read_sweep",
    "record_failure",
    "states",
    "write_sweep",
]

SWEEP_FILE = "sweep.json"
#: how many times a point's run is started before it is recorded as failed
ATTEMPTS = 2
#: a finished run's summary status starts with one of these
FINISHED = ("completed", "converged", "stopped", "diverged")
STATES = ("done", "running", "interrupted", "failed", "pending")


def point_dir(sweep_dir: Path, pid: str) -> Path:
    """The run directory of point ``pid``."""
    return Path(sweep_dir) / "points" / pid


def _failure_file(sweep_dir: Path, pid: str) -> Path:
    return Path(sweep_dir) / "failures" / f"{pid}.json"


def failure(sweep_dir: Path, pid: str) -> dict[str, Any] | None:
    """The failure record of a point (``attempts``, ``error``), or ``None``."""
    path = _failure_file(sweep_dir, pid)
    if not path.is_file():
        return None
    try:
        rec = load_json(path)
    except UmweltError:
        return None  # a damaged record counts as none: the point is tried again
    return rec if isinstance(rec, dict) and isinstance(rec.get("attempts"), int) else None


def record_failure(sweep_dir: Path, pid: str, error: str) -> dict[str, Any]:
    """Count one more failed attempt of a point, with its error (one line)."""
    old = failure(sweep_dir, pid) or {"attempts": 0, "errors": []}
    rec = {
        "attempts": old["attempts"] + 1,
        "error": error,
        "errors": [*old.get("errors", []), {"error": error, "at": time.time()}][-5:],
    }
    io.write_json(_failure_file(sweep_dir, pid), rec)
    return rec


def clear_failure(sweep_dir: Path, pid: str) -> None:
    """Forget a point's failures (it finished)."""
    _failure_file(sweep_dir, pid).unlink(missing_ok=True)


def run_status(run_dir: Path) -> str | None:
    """The ``status`` of a point's ``summary.json`` (``None``: none, or unreadable)."""
    path = Path(run_dir) / "summary.json"
    if not path.is_file():
        return None
    try:
        summary = load_json(path)
    except UmweltError:
        return None
    status = summary.get("status") if isinstance(summary, dict) else None
    return status if isinstance(status, str) else None


def point_state(sweep_dir: Path, pid: str) -> str:
    """One of :data:`STATES`, read from the point's run directory and failure record."""
    d = point_dir(sweep_dir, pid)
    if d.is_dir() and is_held(d):
        return "running"
    status = run_status(d) if d.is_dir() else None
    if status is not None and status.startswith(FINISHED):
        return "done"
    rec = failure(sweep_dir, pid)
    if rec is not None and rec["attempts"] >= ATTEMPTS:
        return "failed"
    if (d / "checkpoints" / CHECKPOINT).is_file():
        return "interrupted"
    return "pending"


def states(sweep_dir: Path, ids) -> dict[str, str]:
    """:func:`point_state` of every id."""
    return {pid: point_state(sweep_dir, pid) for pid in ids}


def running_holder(sweep_dir: Path, pid: str) -> str:
    """Who holds a running point's lock, for messages."""
    h = holder(point_dir(sweep_dir, pid)) or {}
    return f"{h.get('command', '?')} (process {h.get('pid', '?')} on {h.get('host', '?')})"


def _records(spec: SweepSpec, hessian: dict | None) -> list[dict[str, Any]]:
    return [
        {"id": p.id, "values": p.values, "config": p.config.to_json(), "hessian": hessian}
        for p in spec.points
    ]


def merge(sweep_dir: Path, spec: SweepSpec, *, extend: bool) -> dict[str, Any]:
    """The ``sweep.json`` record of ``spec`` in ``sweep_dir``: new, the same as stored, or —
    with ``extend`` — the stored one with the new points added (old ones kept).

    Raises:
        ConfigError: when the directory holds another sweep and ``extend`` is not given, or
            is not a sweep directory at all.
    """
    hessian = None if not spec.hessian_last or spec.hessian is None else spec.hessian.to_json()
    new = {
        "kind": "sweep",
        "specs": [{"spec": spec.to_json(), "text": spec.text}],
        "axes": list(spec.axes),
        "points": _records(spec, hessian),
    }
    stored = read_sweep(sweep_dir, missing_ok=True)
    if stored is None:
        return new
    if any(s["spec"] == new["specs"][0]["spec"] for s in stored["specs"]):
        return stored  # the same sweep (or one it was extended from) again: continue it
    if not extend:
        raise ConfigError(
            f"{str(sweep_dir)!r} holds another sweep (its sweep.json differs from this file); "
            "pass --extend to add this file's points to it, or choose another --out"
        )
    known = {p["id"] for p in stored["points"]}
    added = [r for r in new["points"] if r["id"] not in known]
    axes = [*stored["axes"], *(a for a in new["axes"] if a not in stored["axes"])]
    return {
        **stored,
        "specs": [*stored["specs"], *new["specs"]],
        "axes": axes,
        "points": [*stored["points"], *added],
    }


def write_sweep(sweep_dir: Path, record: dict[str, Any]) -> None:
    """Write ``sweep.json`` (atomically), with the versions of the code."""
    io.write_json(Path(sweep_dir) / SWEEP_FILE, {**record, "versions": io.versions()})


def read_sweep(sweep_dir: Path, *, missing_ok: bool = False) -> dict[str, Any] | None:
    """The ``sweep.json`` of a sweep directory, checked for its shape.

    Raises:
        ConfigError: when it is missing (unless ``missing_ok``) or is not a sweep's.
    """
    path = Path(sweep_dir) / SWEEP_FILE
    if not path.is_file():
        if missing_ok and (not Path(sweep_dir).exists() or _empty(Path(sweep_dir))):
            return None
        raise ConfigError(f"{str(sweep_dir)!r} is not a sweep directory (no {SWEEP_FILE})")
    rec = load_json(path)
    ok = isinstance(rec, dict) and rec.get("kind") == "sweep"
    ok = ok and isinstance(rec.get("points"), list) and isinstance(rec.get("specs"), list)
    ok = ok and all(isinstance(p, dict) and {"id", "values", "config"} <= p.keys()
                    for p in rec["points"])  # fmt: skip
    if not ok:
        raise ConfigError(f"{str(path)!r} is not a sweep's {SWEEP_FILE} (damaged or foreign)")
    return rec


def _empty(d: Path) -> bool:
    return d.is_dir() and all(p.name == ".lock" for p in d.iterdir())


def point_config(sweep_dir: Path, record: dict[str, Any]) -> TrainConfig:
    """The :class:`TrainConfig` of a point record, placed in its directory."""
    from dataclasses import replace

    cfg = TrainConfig.from_json(record["config"])
    return replace(cfg, out=point_dir(sweep_dir, record["id"]))


def read_point(sweep_dir: Path, pid: str) -> dict[str, Any]:
    """The record of point ``pid`` in ``sweep.json``."""
    rec = read_sweep(sweep_dir)
    for p in rec["points"]:
        if p["id"] == pid:
            return p
    raise ConfigError(f"{str(sweep_dir)!r} has no point {pid!r}")
