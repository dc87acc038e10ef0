"""The ``umwelt`` command: thin wrappers that turn options into a Config and call a driver.

Every :class:`~umwelt.errors.UmweltError` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from sim.simulate import SimulateConfig
from umwelt.errors import UmweltError

_SIM = SimulateConfig()  # the option defaults are the driver's defaults

app = typer.Typer(
    help="Umwelt: deep neural networks as stochastic graphical models at temperature T.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


def _fail(err: UmweltError) -> None:
    typer.echo(f"error: {err}", err=True)
    raise typer.Exit(code=2)


@app.command()
def simulate(
    temperature: Annotated[
        float, typer.Option(help="Gate temperature T ≥ 0 (0 = ReLU; inf ok).")
    ] = _SIM.temperature,
    hidden: Annotated[
        str, typer.Option(help="Hidden widths, comma-separated, e.g. 32,32.")
    ] = ",".join(map(str, _SIM.hidden)),
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = _SIM.epochs,
    lr: Annotated[float, typer.Option(help="SGD step size η.")] = _SIM.lr,
    momentum: Annotated[float, typer.Option(help="SGD momentum in [0, 1).")] = _SIM.momentum,
    batch_size: Annotated[int, typer.Option(help="Examples per EM iteration.")] = _SIM.batch_size,
    samples: Annotated[
        int, typer.Option(help="Monte Carlo gate draws per example at evaluation.")
    ] = _SIM.samples,
    dataset: Annotated[
        str,
        typer.Option(
            help="digits (default, embedded), random-labels, teacher, hidden-manifold; "
            "knobs as name:key=value,... e.g. hidden-manifold:n=1000,D=8."
        ),
    ] = _SIM.dataset,
    loss: Annotated[str, typer.Option(help="hinge or logistic.")] = _SIM.loss,
    seed: Annotated[int, typer.Option(help="Seed of every random draw.")] = _SIM.seed,
    device: Annotated[str, typer.Option(help="cpu, cuda or cuda:N.")] = _SIM.device,
    dtype: Annotated[str, typer.Option(help="float32 or float64.")] = _SIM.dtype,
    out: Annotated[
        Path | None, typer.Option(help="New run directory (default runs/simulate-<time>).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar or table.")] = False,
) -> None:
    """Train a net at temperature T by EM and its ReLU twin side by side; write a run directory."""
    from sim.simulate import run

    cfg = SimulateConfig(
        temperature=temperature,
        hidden=hidden,
        epochs=epochs,
        lr=lr,
        momentum=momentum,
        batch_size=batch_size,
        samples=samples,
        dataset=dataset,
        loss=loss,
        seed=seed,
        device=device,
        dtype=dtype,
        out=out,
    )
    try:
        cfg = cfg.validated()
        if quiet:
            result = run(cfg)
        else:
            from sim.display import epoch_progress, simulate_table

            with epoch_progress(cfg.epochs, f"simulate T={cfg.temperature:g}") as advance:
                result = run(cfg, on_epoch=advance)
            simulate_table(result)
    except UmweltError as err:
        _fail(err)
    except KeyboardInterrupt:
        typer.echo("interrupted; metrics and weights so far are in the run directory", err=True)
        raise typer.Exit(code=130) from None
    typer.echo(f"run directory: {result.run_dir}")


@app.command()
def exact(
    widths: Annotated[str, typer.Option(help="Layer widths, input first, output 1.")] = "3,4,3,1",
    temperature: Annotated[float, typer.Option(help="Gate temperature T ≥ 0.")] = 1.0,
    inputs: Annotated[int, typer.Option(help="Number of standard-normal inputs.")] = 4,
    samples: Annotated[int, typer.Option(help="Monte Carlo draws to compare (0: none).")] = 10_000,
    seed: Annotated[int, typer.Option(help="Seed of weights, inputs and draws.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Exact gate marginals and output moments of a tiny net, beside Monte Carlo estimates."""
    import json

    from sim.exact import ExactConfig
    from sim.exact import run as run_exact

    cfg = ExactConfig(
        widths=widths, temperature=temperature, inputs=inputs, samples=samples, seed=seed
    )
    try:
        result = run_exact(cfg)
    except UmweltError as err:
        _fail(err)
    if as_json:
        from sim.runio import to_jsonable

        typer.echo(json.dumps(to_jsonable(result)))
    else:
        from sim.display import exact_table

        exact_table(result)


@app.command()
def bench(
    which: Annotated[str, typer.Argument(help="enumeration, training, vgg or all.")] = "all",
    quick: Annotated[bool, typer.Option("--quick", help="Tiny sizes (seconds).")] = False,
) -> None:
    """Benchmarks that print speed ratios measured side by side in one run."""
    import importlib

    names = ["enumeration", "training", "vgg"]
    if which not in (*names, "all"):
        _fail(UmweltError(f"unknown benchmark {which!r}; choose from {', '.join(names)}, all"))
    for name in names if which == "all" else [which]:
        importlib.import_module(f"sim.benchmarks.{name}").run(quick=quick)


def main() -> None:
    """Entry point of the ``umwelt`` console script."""
    app()


if __name__ == "__main__":
    sys.exit(main())
