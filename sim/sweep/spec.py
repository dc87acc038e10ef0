r"""A sweep file: which ``umwelt train`` runs a phase diagram needs, read and checked.

A sweep file is TOML (read with :mod:`tomllib`) with three tables whose keys are
``umwelt train``'s options (``stop_at_phase`` or ``stop-at-phase``)::

    [train]                 # what every point shares
    epochs = 300
    loss = "quadratic-hinge"
    stop_at_phase = "converged"
    hessian_at = "last"     # optional: analyse the Hessian of each point's last epoch
    hessian_settings = "lanczos_steps=20,vectors=4,entries=0"
    [grid]                  # the product of these axes
    model = ["mlp:4", "mlp:16", "mlp:64"]
    dataset = ["random-labels:n=250", "random-labels:n=1000"]
    seed = [0, 1, 2]
    [zip]                   # optional: axes that vary together (equal lengths), times the grid
    lr = [0.05, 0.02]
    batch_size = [32, 128]

Every point is one :class:`~sim.runs.TrainConfig`, validated by ``umwelt train``'s own checks
before any run starts; its id is a hash of its settings, so the same point has the same id in
every sweep file that asks for it.

>>> spec = parse_spec('''
... [train]
... epochs = 2
... [grid]
... model = ["mlp:4", "mlp:8"]
... dataset = ["random-labels:n=20"]
... seed = [0, 1]
... ''')
>>> len(spec.points), spec.axes, spec.points[0].values
(4, ('model', 'dataset', 'seed'), {'model': 'mlp:4', 'dataset': 'random-labels:n=20', 'seed': 0})
>>> spec.points[0].config.epochs, spec.points[0].id == point_id(spec.points[0].config)
(2, True)
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import tomllib
import typing
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from sim.runs import TrainConfig
from sim.runs.hessian import HessianSettings, parse_settings
from umwelt.errors import ConfigError, UmweltError

__all__ = ["Point", "SweepSpec", "label", "parse_spec", "point_id", "read_spec"]

TABLES = ("train", "grid", "zip")
#: train options a sweep sets itself, per point
_RESERVED = {"out": "each point's directory is DIR/points/<id>", "resume": "run the sweep again"}
_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
_HINTS = typing.get_type_hints(TrainConfig)
#: the options of a point as a ``umwelt train`` option name takes them
_OPTION_NAMES = sorted(
    [*(n for n in _FIELDS if n not in _RESERVED and n != "hessian"), "hessian_settings"]
)


@dataclass(frozen=True)
class Point:
    """One run of a sweep: its id, its axis values and its :class:`TrainConfig` (validated,
    ``out`` unset: :func:`sim.sweep.store.point_dir` places it)."""

    id: str
    values: dict[str, Any]
    config: TrainConfig

    def label(self) -> str:
        """``model=mlp:4 seed=0``: the axis values, for messages."""
        return label(self.values)


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep file: the shared options, the axes and the points in order.

    ``hessian_last`` (the sweep's ``hessian_at = "last"``) asks for the Hessian analysis of
    every point's last epoch with ``hessian`` (its settings) once the point has finished; the
    points then observe (checkpoint) their last epoch.
    """

    shared: dict[str, Any]
    grid: dict[str, list]
    zipped: dict[str, list]
    points: tuple[Point, ...]
    hessian_last: bool = False
    hessian: HessianSettings | None = None
    text: str = field(default="", compare=False)

    @property
    def axes(self) -> tuple[str, ...]:
        """The options that vary: the grid's, then the zipped ones."""
        return (*self.grid, *self.zipped)

    def to_json(self) -> dict[str, Any]:
        """The spec as ``sweep.json`` stores it (the points are stored beside it)."""
        return {
            "train": self.shared,
            "grid": self.grid,
            "zip": self.zipped,
            "hessian_at": "last" if self.hessian_last else None,
            "hessian_settings": None if self.hessian is None else self.hessian.to_json(),
        }


def point_id(cfg: TrainConfig) -> str:
    """A stable id of a point: a hash of its validated settings (``out`` aside).

    >>> point_id(TrainConfig(model="mlp:4", dataset="digits")) == point_id(
    ...     TrainConfig(model=" mlp:4", dataset="digits"))
    True
    """
    settings = replace(cfg.validated(), out=None).to_json()
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
    return "p" + digest[:11]


def read_spec(path: Path | str) -> SweepSpec:
    """The sweep file at ``path``, parsed and every point checked (:func:`parse_spec`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read the sweep file {str(path)!r}: {e}") from None
    return parse_spec(text, where=str(path))


def parse_spec(text: str, *, where: str = "sweep file") -> SweepSpec:
    """A sweep file's text, parsed, the points made and each validated as ``umwelt train``
    validates its options.

    Raises:
        ConfigError: naming the table and option, or the point and the option, that is bad.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{where}: not valid TOML ({e})") from None
    unknown = sorted(set(doc) - set(TABLES))
    if unknown:
        raise ConfigError(f"{where}: unknown table [{unknown[0]}] (tables: train, grid, zip)")
    tables = {}
    for name in TABLES:
        table = doc.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: [{name}] must be a table, got {table!r}")
        tables[name] = {_option(k, name, where): v for k, v in table.items()}
    shared, grid, zipped = tables["train"], tables["grid"], tables["zip"]
    hessian_last, settings = _hessian_request(shared, where)
    for name, axes in (("grid", grid), ("zip", zipped)):
        for key, values in axes.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(
                    f"{where}: [{name}] {key} must be a non-empty list, got {values!r}"
                )
            if key in ("hessian_at", "hessian_settings"):
                raise ConfigError(f"{where}: [{name}] {key} cannot vary; set it in [train]")
    both = sorted((set(grid) | set(zipped)) & set(shared) | set(grid) & set(zipped))
    if both:
        raise ConfigError(f"{where}: option {both[0]!r} is set in more than one table")
    lengths = {len(v) for v in zipped.values()}
    if len(lengths) > 1:
        shown = ", ".join(f"{k}: {len(v)}" for k, v in zipped.items())
        raise ConfigError(f"{where}: the [zip] axes must have equal lengths, got {shown}")
    rows = [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]
    zrows = [dict(zip(zipped, combo)) for combo in zip(*zipped.values())] or [{}]
    points, seen = [], {}
    for values in ({**g, **z} for g in rows for z in zrows):
        cfg = _point_config({**shared, **values}, values, where)
        if hessian_last and cfg.epochs not in cfg.observe_at:  # its weights must be kept
            cfg = replace(cfg, observe_at=(*cfg.observe_at, cfg.epochs)).validated()
        pid = point_id(cfg)
        if pid in seen:
            raise ConfigError(
                f"{where}: points {seen[pid]} and {label(values)} are the same run (id {pid})"
            )
        seen[pid] = label(values)
        points.append(Point(pid, values, cfg))
    return SweepSpec(
        shared, grid, zipped, tuple(points), hessian_last=hessian_last, hessian=settings, text=text
    )


def label(values: dict[str, Any]) -> str:
    """A point's axis values as ``model=mlp:4 seed=0``, for messages and logs."""
    return " ".join(f"{k}={v}" for k, v in values.items()) or "(the only point)"


def _option(key: str, table: str, where: str) -> str:
    name = key.replace("-", "_")
    if name in _RESERVED:
        raise ConfigError(f"{where}: [{table}] {key} is not a sweep option: {_RESERVED[name]}")
    if name not in _OPTION_NAMES:
        raise ConfigError(
            f"{where}: [{table}] unknown option {key!r} (umwelt train's: "
            f"{', '.join(_OPTION_NAMES)})"
        )
    return name


def _hessian_request(shared: dict[str, Any], where: str) -> tuple[bool, HessianSettings | None]:
    """``hessian_at = "last"`` and its settings, taken out of the shared options (a point's
    run may stop early, so its last epoch is known only when it has finished)."""
    if shared.get("hessian_at") != "last":
        return False, None
    del shared["hessian_at"]
    text = shared.pop("hessian_settings", None)
    if text is not None and not isinstance(text, str):
        raise ConfigError(f"{where}: hessian_settings must be KEY=VALUE,... text, got {text!r}")
    try:
        settings = parse_settings(text) or HessianSettings()
        return True, settings.validated()
    except UmweltError as e:
        raise ConfigError(f"{where}: [train] hessian_settings: {e}") from None


def _point_config(options: dict[str, Any], values: dict[str, Any], where: str) -> TrainConfig:
    """The validated :class:`TrainConfig` of one point (a TOML value per option)."""
    kw: dict[str, Any] = {}
    try:
        for key, value in options.items():
            if key == "hessian_settings":
                if not isinstance(value, str):
                    raise ConfigError(f"hessian_settings must be KEY=VALUE,... text, got {value!r}")
                kw["hessian"] = parse_settings(value)
            else:
                kw[key] = _typed(key, value)
        return TrainConfig(**kw).validated()
    except UmweltError as e:
        raise ConfigError(f"{where}: point {label(values)}: {e}") from None


def _typed(key: str, value: Any) -> Any:
    """A TOML value as the field ``key`` holds it: lists as tuples, ``"1/8"`` for a number."""
    hint = _HINTS[key]
    if isinstance(value, str) and float in (hint, *typing.get_args(hint)):
        try:
            return float(Fraction(value.strip()))
        except (ValueError, ZeroDivisionError):
            raise ConfigError(
                f"{key} must be a number such as 0.25 or 1/8, got {value!r}"
            ) from None
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, dict):
        raise ConfigError(f"{key} must be a value, not a table: {value!r}")
    return value
