"""The ``umwelt`` command: thin wrappers that turn options into a Config and call a driver.

Options are text at this edge: :func:`parse_epochs`, :func:`parse_widths`,
:func:`parse_fraction` and :func:`parse_input` turn it into the typed values the Configs hold
(their ``validated()`` checks values and parses nothing). Every option whose value is a Config
field takes its default from that field (:func:`default`, :func:`with_default`). Each command
hands its Config to the driver, which validates it once; ``simulate`` and ``train`` call the
driver's ``prepare`` first (values and filesystem, nothing written), so that a bad option fails
before a progress bar is drawn, and ``run`` takes the prepared Config as is.

Every :class:`~umwelt.errors.UmweltError` becomes one line on stderr and exit code 2.

The package: :mod:`~sim.cli.options` (``app``, the option defaults, the parsers, the output),
and the commands by concept, each registered on ``app`` when its module is imported, in the
order ``umwelt --help`` lists them: :mod:`~sim.cli.nets` (``simulate``, ``exact``),
:mod:`~sim.cli.benchmarks` (``bench``), :mod:`~sim.cli.runs` (``train``, ``plot``,
``phases``), :mod:`~sim.cli.analyses` (``circuits``, ``hessian``), :mod:`~sim.cli.studies`
(``sweep``, ``reproduce``). ``python -m sim.cli`` runs it (:mod:`~sim.cli.__main__`).
"""

from __future__ import annotations

from sim.cli.options import (
    app,
    default,
    parse_epochs,
    parse_fraction,
    parse_input,
    parse_widths,
    with_default,
)

# The commands register on `app` as their modules are imported, and `umwelt --help` lists them
# in that order: these imports are in the order of the help, not sorted.
# isort: off
from sim.cli.nets import exact, simulate
from sim.cli.benchmarks import bench
from sim.cli.runs import phases, plot, train
from sim.cli.analyses import circuits, hessian
from sim.cli.studies import reproduce, sweep

# isort: on

__all__ = [
    "app",
    "bench",
    "circuits",
    "default",
    "exact",
    "hessian",
    "main",
    "parse_epochs",
    "parse_fraction",
    "parse_input",
    "parse_widths",
    "phases",
    "plot",
    "reproduce",
    "simulate",
    "sweep",
    "train",
    "with_default",
]


def main() -> None:
    """Entry point of the ``umwelt`` console script."""
    app()
