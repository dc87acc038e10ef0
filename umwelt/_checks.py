"""Checks of scalar settings, shared by the library and the drivers.

Each returns the normalized value or raises :class:`~umwelt.errors.ConfigError` whose message
names the setting and the value given.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from umwelt.errors import ConfigError

__all__ = ["check_fraction", "check_int", "check_positive"]


def check_int(name: str, v: Any, minimum: int = 1) -> int:
    """``v`` as an int unless it is not an integer ≥ ``minimum`` (bools are refused).

    >>> check_int("epochs", 3)
    3
    """
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < minimum:
        raise ConfigError(f"{name} must be an integer ≥ {minimum}, got {v!r}")
    return int(v)


def check_positive(name: str, v: Any) -> float:
    """``v`` as a float unless it is not a finite number > 0 (bools are refused).

    >>> check_positive("learning rate", "0.5")
    0.5
    """
    try:
        f = float(v)
    except (TypeError, ValueError):
        f = math.nan
    if isinstance(v, bool) or not (math.isfinite(f) and f > 0):
        raise ConfigError(f"{name} must be a finite number > 0, got {v!r}")
    return f


def check_fraction(name: str, v: Any, *, closed_above: bool = False) -> float:
    """``v`` as a float unless it lies outside ``[0, 1)`` (``[0, 1]`` when ``closed_above``)."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        f = math.nan
    ok = 0 <= f <= 1 if closed_above else 0 <= f < 1
    if isinstance(v, bool) or not ok:
        raise ConfigError(f"{name} must be in [0, 1{']' if closed_above else ')'}, got {v!r}")
    return f
