r"""A frozen dataclass Config and its ``config.json``: one encoder, one decoder, ``inf`` once.

JSON has no tuples, paths or infinities: :func:`~sim.runs.io.to_jsonable` writes tuples as lists,
paths as strings and :math:`\pm\infty` as ``"inf"``/``"-inf"``. :meth:`JsonConfig.from_json`
reads them back by each field's annotation (``tuple[int, ...]``, ``Path | None``, ``float``, a
nested config), ignoring keys that are not fields (a run's ``config.json`` also records seeds,
dataset facts and versions).

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Demo(JsonConfig):
...     temperature: float = 0.0
...     hidden: tuple[int, ...] = (2,)
>>> Demo.from_json({"temperature": "inf", "hidden": [3, 4], "seeds": {}})
Demo(temperature=inf, hidden=(3, 4))
>>> Demo(float("inf"), (3,)).to_json()
{'temperature': 'inf', 'hidden': [3]}

A config also carries *marks*: the steps it passed (``"validated"``, a driver's ``"prepared"``),
so that a driver's ``run(cfg)`` takes a config the CLI already checked as is instead of checking
it again. Marks live on the instance, not in its fields: equality, ``asdict`` and
:meth:`~JsonConfig.to_json` ignore them, and a changed copy (:func:`dataclasses.replace`) has
none.

>>> d = Demo().marked("validated")
>>> d.marks, dataclasses.replace(d, hidden=(5,)).marks, d == Demo()
(frozenset({'validated'}), frozenset(), True)
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any, Self

from sim.runs.io import to_jsonable
from umwelt.errors import ConfigError

__all__ = ["JsonConfig", "check_path"]


class JsonConfig:
    """Mixin of a frozen dataclass: :meth:`to_json` and :meth:`from_json`, typed by annotation;
    :meth:`marked` and :attr:`marks`, the steps an instance passed."""

    @property
    def marks(self) -> frozenset[str]:
        """The steps this instance passed (see :meth:`marked`)."""
        return self.__dict__.get("_marks", frozenset())

    def marked(self, mark: str) -> Self:
        """This instance, marked as having passed ``mark`` (``"validated"``, ...); only the
        step that checked it marks it. A frozen instance keeps its values, so it keeps its
        marks; :func:`dataclasses.replace` makes an unmarked copy."""
        object.__setattr__(self, "_marks", self.marks | {mark})
        return self

    def to_json(self) -> dict[str, Any]:
        """The fields as plain JSON types (nested configs as objects)."""
        return to_jsonable(dataclasses.asdict(self))  # type: ignore[call-overload]

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Self:
        """The config whose fields are the keys of ``obj`` that name one (the rest: defaults).

        Raises:
            ConfigError: when ``obj`` is not an object or a value does not fit its field.
        """
        if not isinstance(obj, dict):
            raise ConfigError(f"a {cls.__name__} is a JSON object, got {type(obj).__name__}")
        hints = typing.get_type_hints(cls)
        kw = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.name in obj:
                try:
                    kw[f.name] = _decode(hints[f.name], obj[f.name])
                except (TypeError, ValueError) as e:
                    raise ConfigError(
                        f"{cls.__name__}.{f.name} = {obj[f.name]!r} does not fit {hints[f.name]}"
                        f" ({e})"
                    ) from None
        return cls(**kw)


def check_path(name: str, value: Any) -> Path | None:
    """``value`` (a path, its string, or ``None``) as a :class:`~pathlib.Path` or ``None``.

    Raises:
        ConfigError: for anything else, naming it.
    """
    if value is None:
        return None
    if isinstance(value, str | os.PathLike) and str(value):
        return Path(value)
    raise ConfigError(f"{name} must be a path, got {value!r}")


def _decode(hint: Any, value: Any) -> Any:
    """``value`` as read from JSON, turned into the type ``hint`` names."""
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        kinds = [a for a in typing.get_args(hint) if a is not type(None)]
        for kind in kinds:  # the first kind the value fits (str is tried last)
            if kind is not str:
                try:
                    return _decode(kind, value)
                except (TypeError, ValueError):
                    continue
        if str in kinds and isinstance(value, str):
            return value
        raise TypeError(f"{value!r} is none of {kinds}")
    if origin is tuple:
        if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
            raise TypeError(f"not a list: {value!r}")
        (elem, *_) = typing.get_args(hint) or (Any,)
        return tuple(_decode(elem, v) for v in value)
    if hint is Path:
        if not isinstance(value, str):
            raise TypeError(f"not a path: {value!r}")
        return Path(value)
    if hint is float:
        if isinstance(value, bool):
            raise TypeError(f"not a number: {value!r}")
        return float(value)  # "inf", "-inf" as written by to_jsonable
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"not an integer: {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise TypeError(f"not a boolean: {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise TypeError(f"not a string: {value!r}")
        return value
    if isinstance(hint, type) and issubclass(hint, JsonConfig):
        return hint.from_json(value)
    return value
