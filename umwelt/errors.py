"""The errors Umwelt raises on bad input.

Every check on user input raises a subclass of :class:`UmweltError` whose message names the
offending value; the ``umwelt`` command turns any of them into one line and exit code 2.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DataError",
    "EnumerationLimitError",
    "MemoryBudgetError",
    "NonFiniteError",
    "ShapeError",
    "UmweltError",
]


class UmweltError(Exception):
    """Base class of every error Umwelt raises on bad input or impossible requests."""


class ConfigError(UmweltError, ValueError):
    """An option or argument has a value outside its domain (temperature, widths, paths...)."""


class ShapeError(UmweltError, ValueError):
    """Arrays whose shapes do not fit together."""


class DataError(UmweltError, ValueError):
    """An unknown dataset, or data that cannot be read."""


class EnumerationLimitError(UmweltError, ValueError):
    """An exact enumeration would visit more configurations than the stated limit."""


class MemoryBudgetError(ConfigError):
    """A request whose arrays would not fit in memory, refused before anything is allocated
    (:func:`umwelt.memory.check_fits`)."""


class NonFiniteError(UmweltError, FloatingPointError):
    """A computation gave NaN or inf (e.g. a Hessian-vector product of a diverged model)."""
