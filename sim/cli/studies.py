"""``umwelt sweep`` and ``umwelt reproduce``: the studies of many runs, a phase diagram over a
grid of points and the paper's experiment with each of its claims checked."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sim.cli.options import _fail, app, default
from sim.reproduce import ReproduceConfig
from sim.sweep import SweepConfig
from umwelt.errors import UmweltError

_SW = SweepConfig  # the options of `sweep` default to its fields
_RE = ReproduceConfig  # the options of `reproduce` default to its fields


@app.command()
def sweep(
    source: Annotated[
        Path,
        typer.Argument(
            metavar="SPEC|DIR", help="The sweep file (TOML); with --collect, the sweep directory."
        ),
    ],
    out: Annotated[
        Path | None, typer.Option(help="The sweep directory (new, or this sweep's to continue).")
    ] = None,
    executor: Annotated[
        str, typer.Option(help="local (a process pool) or slurm (submitit).")
    ] = default(_SW, "executor"),
    jobs: Annotated[
        int | None,
        typer.Option(help="local: points at a time, each on cores/jobs threads (default: cores)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the points and their cost; write nothing.")
    ] = False,
    extend: Annotated[
        bool, typer.Option("--extend", help="Add a different sweep file's points to DIR's.")
    ] = False,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Start the points recorded as failed again.")
    ] = False,
    collect: Annotated[
        bool,
        typer.Option("--collect", help="Only rebuild DIR's phases.csv, boundary and figures."),
    ] = False,
    figures: Annotated[
        bool, typer.Option("--figures/--no-figures", help="Draw the phase diagrams at the end.")
    ] = True,
    slurm_partition: Annotated[str | None, typer.Option(help="SLURM partition.")] = None,
    slurm_time: Annotated[
        int, typer.Option(help="SLURM time limit of one point, minutes.")
    ] = default(_SW, "slurm_time"),
    slurm_gpus_per_job: Annotated[int, typer.Option(help="GPUs of one point.")] = default(
        _SW, "slurm_gpus_per_job"
    ),
    slurm_cpus_per_job: Annotated[int, typer.Option(help="CPUs (threads) of one point.")] = (
        default(_SW, "slurm_cpus_per_job")
    ),
    slurm_array_parallelism: Annotated[
        int, typer.Option(help="SLURM array tasks running at once.")
    ] = default(_SW, "slurm_array_parallelism"),
    slurm_cluster: Annotated[
        str | None, typer.Option(hidden=True, help="Testing: submitit's cluster (local).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar or table.")] = False,
) -> None:
    """Train many nets over capacity × data × temperature and draw the phase diagram.

    `umwelt sweep SPEC.toml --out DIR` runs (or continues) every point; `umwelt sweep DIR
    --collect` rebuilds DIR/phases.csv, DIR/boundary.csv and DIR/figures from what finished.
    """
    from sim.sweep import SweepConfig as Config
    from sim.sweep import prepare as prepare_sweep
    from sim.sweep import run as run_sweep

    cfg = Config(
        spec=None if collect else source,
        out=(out if out is not None else source) if collect else out,
        executor=executor,
        jobs=jobs,
        dry_run=dry_run,
        extend=extend,
        retry_failed=retry_failed,
        collect=collect,
        figures=figures,
        slurm_partition=slurm_partition,
        slurm_time=slurm_time,
        slurm_gpus_per_job=slurm_gpus_per_job,
        slurm_cpus_per_job=slurm_cpus_per_job,
        slurm_array_parallelism=slurm_array_parallelism,
        slurm_cluster=slurm_cluster,
    )
    try:
        plan = prepare_sweep(cfg)  # the file, every point and the directory; nothing written
        if quiet or dry_run or collect:
            result = run_sweep(plan)
        else:
            from sim.display import sweep_progress

            with sweep_progress(len(plan.spec.points), f"sweep {plan.cfg.out}") as bar:
                result = run_sweep(plan, on_update=bar)
        if not quiet:
            from sim.display import sweep_table

            sweep_table(result)
    except UmweltError as err:
        _fail(err)
    except KeyboardInterrupt:
        if executor == "slurm":
            typer.echo(
                "interrupted; the submitted SLURM jobs keep running: umwelt sweep DIR --collect "
                "gathers what finished, the same command again continues",
                err=True,
            )
        else:
            typer.echo(
                "interrupted; every point is resumable: run the same command again", err=True
            )
        raise typer.Exit(code=130) from None
    if not dry_run:
        typer.echo(f"sweep directory: {result.out}")


@app.command()
def reproduce(
    out: Annotated[
        Path,
        typer.Argument(
            metavar="OUT", help="The reproduction's directory (new, or this one's to continue)."
        ),
    ],
    scale: Annotated[
        str,
        typer.Option(
            help="cpu (vgg12 at 1/8 width, 4,000 images, ~2 h on 2 cores) or gpu (the paper's: "
            "width 1, all 10,000 images, 300 epochs)."
        ),
    ] = default(_RE, "scale"),
    quick: Annotated[
        bool,
        typer.Option("--quick", help="A tiny MLP on synthetic data (under a minute; CI's)."),
    ] = default(_RE, "quick"),
    dataset: Annotated[
        str | None,
        typer.Option(
            help="Required for cpu and gpu: a CIFAR-10 path (cifar-10-python.tar.gz, "
            "cifar-10-batches-py/, or a train/<class>/, test/<class>/ image tree as a folder or "
            ".tar[.gz]); with --quick also a synthetic family such as teacher:n=256,dim=16."
        ),
    ] = default(_RE, "dataset"),
    seed: Annotated[int, typer.Option(help="Seed of every draw.")] = default(_RE, "seed"),
    device: Annotated[
        str | None,
        typer.Option(help="cpu, cuda or cuda:N (default: cpu; cuda for --scale gpu)."),
    ] = default(_RE, "device"),
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar or table.")] = False,
) -> None:
    """The paper's experiment at a scale, and each of its claims checked: OUT/REPORT.md and
    OUT/report.html (one self-contained page).

    Trains OUT/train (an ordinary umwelt train run: vgg12, hinge loss, cat vs dog), its Hessian
    at the paper's epochs, samples the circuit symmetry at initialization (OUT/circuits), and
    decides every claim: holds, does not hold, or not measurable at this scale. The same
    command again continues an interrupted reproduction.
    """
    from sim.reproduce import prepare as prepare_reproduction
    from sim.reproduce import run as run_reproduction

    try:
        cfg = ReproduceConfig(
            out=out, scale=scale, quick=quick, dataset=dataset, seed=seed, device=device
        )
        plan = prepare_reproduction(cfg)  # values, OUT and the dataset; nothing written yet
        if quiet:
            result = run_reproduction(plan)
        else:
            from sim.display import reproduce_table, train_progress

            start = max(0, _last_epoch(plan.train.out))
            label = f"reproduce {plan.cfg.preset}: {plan.cfg.model}"
            with train_progress(plan.cfg.epochs, label, start=start) as bar:
                result = run_reproduction(
                    plan, on_epoch=bar.epoch, on_step=bar.step, on_stage=bar.stage
                )
            reproduce_table(result)
    except UmweltError as err:
        _fail(err)
    except KeyboardInterrupt:
        typer.echo("interrupted; the same command continues the reproduction", err=True)
        raise typer.Exit(code=130) from None
    typer.echo(f"report: {result.report_md} and {result.report_html}")


def _last_epoch(run_dir: Path) -> int:
    """The last epoch of a train run's rows so far (-1 before the first)."""
    from sim.runs import Run

    try:
        rows = Run.open(run_dir).metrics()
    except UmweltError:
        return -1
    return int(rows[-1]["epoch"]) if rows else -1
