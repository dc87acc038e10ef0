r"""What the boundary's estimators share: the statuses of a fit or threshold, the checks of
their inputs (each error names the value), and the JSON values of their results.
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

import numpy as np

from umwelt.errors import ConfigError

#: every status of a fit or threshold, and what it means
STATUSES: dict[str, str] = {
    "fit": "finite maximum-likelihood fit with a positive slope",
    "negative_slope": "finite fit with a slope ≤ 0: bigger nets converge less",
    "separated": "no converged run below a failed one: slope +∞, N* the gap's midpoint",
    "separated_negative": "no failed run below a converged one: slope −∞ (bigger nets fail)",
    "all_converged": "every run converged: N* below the smallest capacity (a bound)",
    "none_converged": "no run converged: N* above the largest capacity (a bound)",
    "one_capacity": "all runs at one capacity: the slope cannot be estimated",
}


def _plain(v: Any) -> Any:
    """A JSON value: numpy scalars as Python ones, non-finite floats as None."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _json(obj: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return {f.name: _plain(getattr(obj, f.name)) for f in fields(obj) if f.name not in skip}


# --- input checks --------------------------------------------------------------------------


def _check_open_unit(name: str, v: Any) -> float:
    f = math.nan if isinstance(v, bool | str | bytes) else v
    try:
        f = float(f)
    except (TypeError, ValueError):
        f = math.nan
    if not 0 < f < 1:
        raise ConfigError(f"{name} must be in (0, 1), got {v!r}")
    return f


def _as_array(name: str, values: Any) -> np.ndarray:
    try:
        a = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{name} must be numbers, got {values!r}") from e
    if a.ndim != 1:
        raise ConfigError(f"{name} must be one-dimensional, got shape {a.shape}")
    return a


def _first_bad(a: np.ndarray, ok: np.ndarray) -> str:
    i = int(np.flatnonzero(~ok)[0])
    return f"{float(a[i])!r} at index {i}"


def _check_runs(
    name: str, x: Any, converged: Any, *, positive: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` as float arrays of equal length ≥ 1, ``x`` finite (and > 0), ``y`` in {0, 1}."""
    x, y = _as_array(name, x), _as_array("converged", converged)
    if x.size != y.size:
        raise ConfigError(f"{name} has {x.size} values but converged has {y.size}")
    if x.size == 0:
        raise ConfigError(f"no runs: {name} and converged are empty")
    ok = np.isfinite(x) & (x > 0 if positive else True)
    if not ok.all():
        rule = "finite and > 0" if positive else "finite"
        raise ConfigError(f"{name} must be {rule}, got {_first_bad(x, ok)}")
    ok = (y == 0) | (y == 1)
    if not ok.all():
        raise ConfigError(f"converged must be 0/1 or bool, got {_first_bad(y, ok)}")
    return x, y
