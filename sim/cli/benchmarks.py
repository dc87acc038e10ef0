"""``umwelt bench``: the benchmarks of :mod:`sim.benchmarks`, which print speed ratios."""

from __future__ import annotations

from typing import Annotated

import typer

from sim.cli.options import _fail, app
from umwelt.errors import UmweltError


@app.command()
def bench(
    which: Annotated[
        str, typer.Argument(help="enumeration, training, vgg, hessian, kernels, circuits or all.")
    ] = "all",
    quick: Annotated[bool, typer.Option("--quick", help="Tiny sizes (seconds).")] = False,
) -> None:
    """Benchmarks that print speed ratios measured side by side in one run."""
    import importlib

    names = ["enumeration", "training", "vgg", "hessian", "kernels", "circuits"]
    if which not in (*names, "all"):
        _fail(UmweltError(f"unknown benchmark {which!r}; choose from {', '.join(names)}, all"))
    for name in names if which == "all" else [which]:
        importlib.import_module(f"sim.benchmarks.{name}").run(quick=quick)
