"""Checks of scalar settings, shared by the library and the drivers.

Each returns the normalized value or raises :class:`~umwelt.errors.ConfigError` whose message
names the setting and the value given. They check values, they do not parse text: a string
(``"0.5"``) is refused like any other non-number — strings are parsed at the CLI's edge.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from umwelt.errors import ConfigError

__all__ = ["check_fraction", "check_int", "check_positive", "check_real"]


def _as_float(v: Any) -> float:
    """``float(v)`` for a number; NaN for text, a bool, or anything ``float`` refuses."""
    if isinstance(v, bool | str | bytes):
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def check_int(name: str, v: Any, minimum: int = 1) -> int:
    """``v`` as an int unless it is not an integer ≥ ``minimum`` (bools are refused).

    >>> check_int("epochs", 3)
    3
    """
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < minimum:
        raise ConfigError(f"{name} must be an integer ≥ {minimum}, got {v!r}")
    return int(v)


def check_real(name: str, v: Any) -> float:
    """``v`` as a float unless it is not a number (text and bools are refused; ``±inf`` and NaN
    are numbers: the caller checks the range).

    >>> check_real("temperature", float("inf"))
    inf
    """
    if not isinstance(v, bool | str | bytes):
        try:
            return float(v)
        except (TypeError, ValueError):
            pass
    raise ConfigError(f"{name} must be a number, got {v!r}")


def check_positive(name: str, v: Any) -> float:
    """``v`` as a float unless it is not a finite number > 0 (text and bools are refused).

    >>> check_positive("learning rate", 0.5)
    0.5
    """
    f = _as_float(v)
    if not (math.isfinite(f) and f > 0):
        raise ConfigError(f"{name} must be a finite number > 0, got {v!r}")
    return f


def check_fraction(name: str, v: Any, *, closed_above: bool = False) -> float:
    """``v`` as a float unless it lies outside ``[0, 1)`` (``[0, 1]`` when ``closed_above``).

    >>> check_fraction("momentum", 0.9)
    0.9
    """
    f = _as_float(v)
    ok = 0 <= f <= 1 if closed_above else 0 <= f < 1
    if not ok:
        raise ConfigError(f"{name} must be in [0, 1{']' if closed_above else ')'}, got {v!r}")
    return f
