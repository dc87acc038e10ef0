"""``umwelt simulate`` and ``umwelt exact``: one small net at temperature T, trained by EM
beside its ReLU twin, or computed exactly beside Monte Carlo estimates."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sim.cli.options import _emit, _fail, app, default, parse_widths
from sim.exact import ExactConfig
from sim.runs import SimulateConfig
from umwelt.errors import UmweltError

_SIM = SimulateConfig  # the options of `simulate` default to its fields


@app.command()
def simulate(
    temperature: Annotated[
        float, typer.Option(help="Gate temperature T ≥ 0 (0 = ReLU; inf ok).")
    ] = default(_SIM, "temperature"),
    hidden: Annotated[
        str, typer.Option(help="Hidden widths, comma-separated, e.g. 32,32.")
    ] = default(_SIM, "hidden"),
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = default(_SIM, "epochs"),
    lr: Annotated[float, typer.Option(help="SGD step size η.")] = default(_SIM, "lr"),
    momentum: Annotated[float, typer.Option(help="SGD momentum in [0, 1).")] = default(
        _SIM, "momentum"
    ),
    batch_size: Annotated[int, typer.Option(help="Examples per EM iteration.")] = default(
        _SIM, "batch_size"
    ),
    samples: Annotated[
        int, typer.Option(help="Monte Carlo gate draws per example at evaluation.")
    ] = default(_SIM, "samples"),
    dataset: Annotated[
        str,
        typer.Option(
            help="digits (default, embedded), random-labels, teacher, hidden-manifold; "
            "knobs as name:key=value,... e.g. hidden-manifold:n=1000,D=8."
        ),
    ] = default(_SIM, "dataset"),
    loss: Annotated[str, typer.Option(help="hinge, quadratic-hinge or logistic.")] = default(
        _SIM, "loss"
    ),
    seed: Annotated[int, typer.Option(help="Seed of every random draw.")] = default(_SIM, "seed"),
    device: Annotated[str, typer.Option(help="cpu, cuda or cuda:N.")] = default(_SIM, "device"),
    dtype: Annotated[str, typer.Option(help="float32 or float64.")] = default(_SIM, "dtype"),
    out: Annotated[
        Path | None, typer.Option(help="New run directory (default runs/simulate-<time>).")
    ] = None,  # the field's (a literal for a path: ruff B008); tests/test_cli.py checks
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar or table.")] = False,
) -> None:
    """Train a net at temperature T by EM and its ReLU twin side by side; write a run directory."""
    from sim.simulate import prepare, run

    try:
        cfg = SimulateConfig(
            temperature=temperature,
            hidden=parse_widths(hidden, "hidden widths"),
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
        cfg = prepare(cfg)  # values and the run directory, before anything is drawn or written
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
    status = result.summary.get("status", "")
    if status != "completed":  # a diverged run says so, --quiet or not
        typer.echo(f"run {status}", err=True)
    typer.echo(f"run directory: {result.run_dir}")


_EX = ExactConfig  # the options of `exact` default to its fields


@app.command()
def exact(
    widths: Annotated[str, typer.Option(help="Layer widths, input first, output 1.")] = default(
        _EX, "widths"
    ),
    temperature: Annotated[float, typer.Option(help="Gate temperature T ≥ 0.")] = default(
        _EX, "temperature"
    ),
    inputs: Annotated[int, typer.Option(help="Number of standard-normal inputs.")] = default(
        _EX, "inputs"
    ),
    samples: Annotated[int, typer.Option(help="Monte Carlo draws to compare (0: none).")] = default(
        _EX, "samples"
    ),
    seed: Annotated[int, typer.Option(help="Seed of weights, inputs and draws.")] = default(
        _EX, "seed"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Exact gate marginals and output moments of a tiny net, beside Monte Carlo estimates."""
    from sim.exact import run as run_exact

    try:
        cfg = ExactConfig(
            widths=parse_widths(widths),
            temperature=temperature,
            inputs=inputs,
            samples=samples,
            seed=seed,
        )
        result = run_exact(cfg)  # validates cfg, once
    except UmweltError as err:
        _fail(err)
    _emit(result, as_json, "exact_table")
