"""What the commands of ``umwelt`` share: ``app`` (the typer group, whose bad options are one
line ``error: ...`` and exit code 2), the option defaults taken from the Configs' fields, the
parsers of option text into typed values, and the output (one JSON object or a table; an
:class:`~umwelt.errors.UmweltError` as one line and exit code 2).
"""

from __future__ import annotations

import dataclasses
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from umwelt.errors import ConfigError, UmweltError


class _OneLineErrors(TyperGroup):
    """The ``umwelt`` group: a bad option or value is one line ``error: ...`` and exit code 2,
    like every other bad input (typer would draw a usage box)."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        from typer._click import exceptions as ce
        from typer.exceptions import Abort

        try:
            rv = super().main(*args, standalone_mode=False, **kwargs)
        except ce.NoArgsIsHelpError as e:
            e.show()  # the help, as typer shows it
            sys.exit(2)
        except ce.UsageError as e:
            where = f"umwelt {e.ctx.info_name}: " if e.ctx is not None and e.ctx.parent else ""
            message = " ".join(_usage_message(e).split())
            typer.echo(f"error: {where}{message}", err=True)
            sys.exit(2)
        except Abort:
            typer.echo("aborted", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


def _usage_message(e: Exception) -> str:
    """typer's message, with the text given when typer's conversion refused it (its message
    names the option, not the value): ``Invalid value for '--epochs': got '1.5' (Input should
    be a valid integer, ...)``."""
    message = e.format_message()
    errors = getattr(e.__cause__, "errors", None)  # pydantic's ValidationError
    first = errors()[0] if callable(errors) and errors() else {}
    if "input" in first and ": " in message:
        head, _, why = message.partition(": ")
        message = f"{head}: got {first['input']!r} ({why})"
    return message


app = typer.Typer(
    cls=_OneLineErrors,
    help="Umwelt: deep neural networks as stochastic graphical models at temperature T.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


# -- option defaults: the Configs' ----------------------------------------------------------------


def default(config: type, name: str) -> Any:
    """The default of the field ``name`` of the Config class ``config``, as its option takes
    it: a tuple as its comma-separated text, a fraction as ``a/b`` (the parsers below read
    them back), anything else as it is.

    >>> from sim.runs import SimulateConfig
    >>> default(SimulateConfig, "hidden"), default(SimulateConfig, "temperature")
    ('64,64', 0.1)

    Raises:
        KeyError: when ``config`` has no such field (at import: a renamed field cannot hide).
    """
    field = next((f for f in dataclasses.fields(config) if f.name == name), None)
    if field is None:
        raise KeyError(f"{config.__name__} has no field {name!r}")
    if field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        value = field.default
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    if isinstance(value, Fraction):
        return str(value)
    return value


def with_default(help: str, config: type, name: str, *, shown: str | None = None) -> str:
    """``help`` and `` (default: …)``: the field's :func:`default` (or ``shown``), for an option
    whose own default is ``None`` (``train``'s, so that ``--resume`` sees what was given).

    >>> from sim.runs import TrainConfig
    >>> with_default("Training epochs.", TrainConfig, "epochs")
    'Training epochs. (default: 300)'
    """
    return f"{help} (default: {default(config, name) if shown is None else shown})"


# -- option text → typed values -------------------------------------------------------------------


def parse_epochs(text: str, what: str, *, items: str = "epochs") -> tuple[int, ...]:
    """``"0,10,20"`` → ``(0, 10, 20)`` (``""``: none); the Config checks the range.

    >>> parse_epochs("5, 1,1", "observe-at")
    (5, 1, 1)

    Raises:
        ConfigError: ``"<what> must be comma-separated <items>, got '…'"``.
    """
    parts = [p.strip() for p in text.split(",")] if text.strip() else []
    try:
        return tuple(int(p) for p in parts)
    except ValueError:
        raise ConfigError(f"{what} must be comma-separated {items}, got {text!r}") from None


def parse_widths(text: str, what: str = "widths") -> tuple[int, ...]:
    """``"16,32,32,1"`` → ``(16, 32, 32, 1)``; the Config checks that they are ≥ 1.

    >>> parse_widths("32, 32", "hidden widths")
    (32, 32)

    Raises:
        ConfigError: ``"<what> must be comma-separated positive integers, got '…'"``.
    """
    parts = [p.strip() for p in text.split(",")]
    try:
        if not text.strip() or "" in parts:
            raise ValueError
        return tuple(int(p) for p in parts)
    except ValueError:
        raise ConfigError(
            f"{what} must be comma-separated positive integers, got {text!r}"
        ) from None


def parse_fraction(text: str, what: str = "width") -> Fraction:
    """``"1/32"`` or ``"0.25"`` → a :class:`~fractions.Fraction`; the Config checks > 0.

    >>> parse_fraction("1/32"), parse_fraction("0.25")
    (Fraction(1, 32), Fraction(1, 4))

    Raises:
        ConfigError: ``"<what> must be a number > 0 such as 0.25 or 1/32, got '…'"``.
    """
    try:
        return Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise ConfigError(
            f"{what} must be a number > 0 such as 0.25 or 1/32, got {text!r}"
        ) from None


def parse_input(text: str) -> tuple[float, ...] | Path:
    """``"0.5,-1,2"`` → ``(0.5, -1.0, 2.0)``; a name ending in ``.npy`` → its :class:`Path`.

    >>> parse_input("0.5,-1,2"), parse_input("x.npy") == Path("x.npy")
    ((0.5, -1.0, 2.0), True)

    Raises:
        ConfigError: ``"cannot read the input '…': …"``.
    """
    text = text.strip()
    if text.endswith(".npy"):
        return Path(text)
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError as e:
        raise ConfigError(f"cannot read the input {text!r}: {e}") from None


# -- output ---------------------------------------------------------------------------------------


def _emit(result: dict, as_json: bool, table: str) -> None:
    """Print ``result`` as one JSON object, or as the table ``sim.display.<table>`` draws."""
    if as_json:
        import json

        from sim.runs import to_jsonable

        typer.echo(json.dumps(to_jsonable(result)))
    else:
        from sim import display

        getattr(display, table)(result)


def _fail(err: UmweltError) -> None:
    typer.echo(f"error: {err}", err=True)
    raise typer.Exit(code=2)
