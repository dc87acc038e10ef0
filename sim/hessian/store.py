"""What an analysis leaves in ``RUN/hessian/`` (:mod:`sim.runs.hessian`), written atomically.

The first analysis of a run writes ``config.json`` (its settings and the density grid); later
ones must use the same settings (:func:`check_stored`; a directory of an earlier version, whose
SLQ start vectors were Rademacher, counts as other settings) unless ``fresh``
(:func:`clear`). Each analysed epoch becomes ``epoch_XXXX.npz`` and its row is merged into
``hessian.jsonl`` (:func:`write_epoch`) as soon as it exists.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from sim.runs import io, to_jsonable
from sim.runs.untrusted import load_json, load_jsonl
from umwelt.errors import ConfigError

__all__ = ["check_stored", "clear", "write_config", "write_epoch"]


def check_stored(out: Path, settings: dict, cfg) -> dict | None:
    """The stored analysis settings and grid, checked against these (``None``: none stored)."""
    path = out / "config.json"
    if cfg.fresh or not path.is_file():
        return None
    if (out / "hessian.jsonl").is_file():  # a damaged row file: refused before any result
        try:
            load_jsonl(out / "hessian.jsonl")
        except ConfigError as e:
            raise ConfigError(f"{e}; pass --fresh to replace the results") from None
    try:
        stored = load_json(path)
        old = {("examples" if k == "subset" else k): v for k, v in stored["settings"].items()}
    except (ConfigError, KeyError, TypeError, AttributeError) as e:
        raise ConfigError(f"unreadable {str(path)!r} ({e!r}); pass --fresh to replace it") from None
    for key, value in settings.items():
        if key == "start_dist" and old.get(key, "rademacher") != value:
            # not a user setting: analyses before the closed-form error bars used Rademacher
            raise ConfigError(
                f"{str(out)!r} holds results computed with {old.get(key, 'rademacher')} SLQ start "
                f"vectors (an earlier version), not {value}; pass --fresh to replace them"
            )
        if old.get(key) != value:
            raise ConfigError(
                f"{str(out)!r} holds results computed with {key} = {old.get(key)!r}, not "
                f"{value!r}; use the same settings, or --fresh to replace them"
            )
    if cfg.grid_bound is not None and not math.isclose(cfg.grid_bound, stored["grid_bound"]):
        raise ConfigError(
            f"{str(out)!r} holds densities on the grid bound {stored['grid_bound']:g}, not "
            f"{cfg.grid_bound:g}; leave out --grid-bound, or --fresh to replace them"
        )
    return stored


def clear(out: Path) -> None:
    """Remove the results of earlier analyses (``fresh``)."""
    for p in [*out.glob("epoch_*.npz"), out / "hessian.jsonl", out / "config.json"]:
        p.unlink(missing_ok=True)


def write_epoch(out: Path, row: dict, arrays: dict) -> None:
    """``epoch_XXXX.npz`` (the arrays and the row) and the row merged into ``hessian.jsonl``."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, epoch=row["epoch"], row=json.dumps(to_jsonable(row)), **arrays)

    io.atomic_write(out / f"epoch_{row['epoch']:04d}.npz", write)
    path = out / "hessian.jsonl"
    old = load_jsonl(path) if path.is_file() else []
    merged = {r["epoch"]: r for r in old} | {row["epoch"]: to_jsonable(row)}
    io.write_jsonl(path, [merged[k] for k in sorted(merged)])


def write_config(out: Path, record: dict) -> Path:
    """``config.json`` of the analysis directory (settings, grid, seeds, versions)."""
    return io.write_json(out / "config.json", {**record, "versions": io.versions()})
