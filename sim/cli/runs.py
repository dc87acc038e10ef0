"""``umwelt train``, ``plot`` and ``phases``: a run directory trained (or resumed), its figures
drawn (or a sweep's phase diagrams), its epochs re-classified."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sim.cli.options import _emit, _fail, app, default, parse_epochs, with_default
from sim.phases import PhasesConfig
from sim.runs import PAPER_OBSERVE_AT, TrainConfig
from umwelt.errors import ConfigError, UmweltError

_TR = TrainConfig  # the options of `train` are None when not given; their help shows its fields
_PAPER = ",".join(map(str, PAPER_OBSERVE_AT))


@app.command()
def train(
    model: Annotated[
        str | None,
        typer.Option(
            help=with_default("vgg11, vgg12, vgg13, vgg16, or mlp:<hidden widths>.", _TR, "model")
        ),
    ] = None,
    width: Annotated[
        float | None,
        typer.Option(help=with_default("Width multiplier of every layer.", _TR, "width")),
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            help="Required: a CIFAR-10 path (cifar-10-batches-py, cifar-10-python.tar.gz, or a "
            "train/<class>/ image tree, folder or .tar[.gz]), digits, or a synthetic family "
            "such as teacher:n=1000,dim=32."
        ),
    ] = None,
    classes: Annotated[
        str | None,
        typer.Option(help="CIFAR-10 binary task: two classes a,b or vehicles-vs-animals."),
    ] = None,
    subset: Annotated[
        int | None, typer.Option(help="Balanced training subset of this size (CIFAR-10).")
    ] = None,
    subset_test: Annotated[
        int | None, typer.Option(help="Balanced test subset of this size (CIFAR-10).")
    ] = None,
    label_noise: Annotated[
        float | None, typer.Option(help="Fraction of training labels replaced at random.")
    ] = None,
    temperature: Annotated[
        float | None,
        typer.Option(help=with_default("Gate temperature T ≥ 0 (0 = ReLU).", _TR, "temperature")),
    ] = None,
    gate_mode: Annotated[
        str | None, typer.Option(help=with_default("sample (EM), mean or relu.", _TR, "gate_mode"))
    ] = None,
    loss: Annotated[
        str | None,
        typer.Option(help=with_default("hinge, quadratic-hinge or logistic.", _TR, "loss")),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(help=with_default("Training epochs.", _TR, "epochs"))
    ] = None,
    lr: Annotated[
        float | None, typer.Option(help=with_default("SGD step size η.", _TR, "lr"))
    ] = None,
    momentum: Annotated[
        float | None, typer.Option(help=with_default("SGD momentum in [0, 1).", _TR, "momentum"))
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            help=with_default("Global minibatch (split over processes).", _TR, "batch_size")
        ),
    ] = None,
    gain: Annotated[
        float | None,
        typer.Option(help=with_default("He gain of the initialization.", _TR, "gain", shown="√2")),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help=with_default("Seed of every draw.", _TR, "seed"))
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(
            help=with_default("cpu, cuda, cuda:N (torchrun: cuda:LOCAL_RANK).", _TR, "device")
        ),
    ] = None,
    dtype: Annotated[
        str | None, typer.Option(help=with_default("float32 or float64.", _TR, "dtype"))
    ] = None,
    observe_at: Annotated[
        str | None,
        typer.Option(
            help="Epochs to record observables at, comma-separated (default: "
            f"{_PAPER} up to --epochs, and the last epoch)."
        ),
    ] = None,
    checkpoint_every: Annotated[
        int | None,
        typer.Option(
            help=with_default(
                "Also checkpoint every K steps (0: at epoch ends).", _TR, "checkpoint_every"
            )
        ),
    ] = None,
    eval_batch_size: Annotated[
        int | None,
        typer.Option(
            help=with_default("Batch of the full-data measurements.", _TR, "eval_batch_size")
        ),
    ] = None,
    stop_at_zero_loss: Annotated[
        bool | None,
        typer.Option(
            "--stop-at-zero-loss", help="Stop once the training risk is exactly 0 (converged)."
        ),
    ] = None,
    stop_at_phase: Annotated[
        str | None,
        typer.Option(help="Stop when the run enters this phase: converged or frustration."),
    ] = None,
    hessian_at: Annotated[
        str | None,
        typer.Option(
            help="Also analyse the Hessian (as umwelt hessian) at these epochs, "
            "comma-separated; they are observed too."
        ),
    ] = None,
    hessian_settings: Annotated[
        str | None,
        typer.Option(
            help="Settings of those analyses, KEY=VALUE,... with the keys of umwelt hessian's "
            "options (e.g. lanczos_steps=40,entries=200,examples=2000); default: its defaults."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="New run directory (default: runs/train-<time>).")
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(help="Continue the run in this directory from its last checkpoint."),
    ] = None,
    figures: Annotated[
        bool, typer.Option("--figures/--no-figures", help="Write the figures at the end.")
    ] = True,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar or table.")] = False,
    kill_after_steps: Annotated[
        int | None, typer.Option(hidden=True, help="Testing: SIGKILL itself after N steps.")
    ] = None,
    interrupt_after_steps: Annotated[
        int | None, typer.Option(hidden=True, help="Testing: SIGINT itself after N steps.")
    ] = None,
) -> None:
    """Train a VGG or MLP by generalized EM at temperature T, recording the symmetries."""
    import os
    import signal

    from sim.distributed import env_world
    from sim.runs import parse_settings
    from sim.train import prepare, resume_config, run

    given = {
        "model": model,
        "width": width,
        "dataset": dataset,
        "classes": classes,
        "subset": subset,
        "subset_test": subset_test,
        "label_noise": label_noise,
        "temperature": temperature,
        "gate_mode": gate_mode,
        "loss": loss,
        "epochs": epochs,
        "lr": lr,
        "momentum": momentum,
        "batch_size": batch_size,
        "gain": gain,
        "seed": seed,
        "device": device,
        "dtype": dtype,
        "checkpoint_every": checkpoint_every,
        "eval_batch_size": eval_batch_size,
        "stop_at_zero_loss": stop_at_zero_loss,
        "stop_at_phase": stop_at_phase,
        "out": out,
    }
    given = {k: v for k, v in given.items() if v is not None}
    steps = 0

    def on_step_kill(info: dict) -> None:
        nonlocal steps
        steps += 1
        if kill_after_steps is not None and steps >= kill_after_steps:
            os.kill(os.getpid(), signal.SIGKILL)
        if steps == interrupt_after_steps:  # as Ctrl-C does: KeyboardInterrupt from here
            os.kill(os.getpid(), signal.SIGINT)

    try:  # text is parsed here, at the edge
        if observe_at is not None:
            given["observe_at"] = parse_epochs(observe_at, "observe-at")
        if hessian_at is not None:
            given["hessian_at"] = parse_epochs(hessian_at, "hessian-at")
        settings = parse_settings(hessian_settings)
        if settings is not None:
            given["hessian"] = settings
        world = env_world()
        if resume is not None:
            cfg = resume_config(resume, given)  # prepared to resume: run() takes it as is
        else:
            cfg = prepare(TrainConfig(**given))  # values and filesystem, nothing written yet
        kw = {"resume": resume is not None, "figures": figures}
        if cfg.hessian_at:
            from sim.hessian import record_epoch

            kw["analyse_hessian"] = record_epoch
        if quiet or not world.is_main:
            result = run(cfg, on_step=on_step_kill, **kw)
        else:
            from sim.display import train_progress, train_table

            label = f"{cfg.model} T={cfg.temperature:g}"
            with train_progress(cfg.epochs, label) as bar:

                def on_step(info: dict) -> None:
                    bar.step(info)
                    on_step_kill(info)

                result = run(cfg, on_epoch=bar.epoch, on_step=on_step, **kw)
            train_table(result)
    except UmweltError as err:
        _fail(err)
    except KeyboardInterrupt:
        typer.echo(
            "interrupted; continue with --resume RUN (the last checkpoint is kept)", err=True
        )
        raise typer.Exit(code=130) from None
    if world.is_main:
        status = result.summary.get("status", "")
        if status != "completed":
            typer.echo(f"run {status}", err=True)
        typer.echo(f"run directory: {result.run_dir}")


@app.command()
def plot(
    run_dir: Annotated[
        Path,
        typer.Argument(
            metavar="RUN|DIR", help="A run directory of umwelt train or simulate, or a sweep's."
        ),
    ],
    x: Annotated[
        str | None, typer.Option(help="Sweeps: the x axis column (default n_params).")
    ] = None,
    y: Annotated[
        str | None,
        typer.Option(help="Sweeps: the y axis column (default n_train, else label_noise)."),
    ] = None,
    facet: Annotated[
        str | None, typer.Option(help="Sweeps: one panel per value (default temperature).")
    ] = None,
) -> None:
    """(Re)draw the figures of a train or simulate run into RUN/figures, or a sweep's phase
    diagrams into DIR/figures.

    After `umwelt hessian RUN` also its Hessian figures (figs. 6a–c, 7a–c, 8a: hessian_*.png).
    """
    from sim.plot import run as plot_run

    try:
        from sim.runs.io import check_lookup

        check_lookup(run_dir, "RUN")  # a name too long, a symlink loop: one line
        if (run_dir / "sweep.json").is_file():
            from sim.sweep import plot as plot_sweep

            paths = plot_sweep(run_dir, x=x, y=y, facet=facet)
        elif (x, y, facet) != (None, None, None):
            raise ConfigError(
                f"--x, --y and --facet are for sweep directories; {run_dir} is not one"
            )
        else:
            paths = plot_run(run_dir)
    except UmweltError as err:
        _fail(err)
    for p in paths:
        typer.echo(str(p))


_PH = PhasesConfig  # the options of `phases` default to its fields (the rule's thresholds)


@app.command()
def phases(
    run_dir: Annotated[
        Path, typer.Argument(metavar="RUN", help="A run directory of umwelt train or simulate.")
    ],
    window: Annotated[int, typer.Option(help="Trailing epochs W of the trends.")] = default(
        _PH, "window"
    ),
    flat_tol: Annotated[
        float, typer.Option(help="|relative risk change over W| below this: flat.")
    ] = default(_PH, "flat_tol"),
    op_tol: Annotated[
        float, typer.Option(help="Order parameter / risk below this: negligible.")
    ] = default(_PH, "op_tol"),
    unsat_tol: Annotated[
        float, typer.Option(help="Stochastic nets: converged when N_Δ/n ≤ this.")
    ] = default(_PH, "unsat_tol"),
    neg_tol: Annotated[
        float, typer.Option(help="Hessian nearly PSD: neg_share ≤ this ...")
    ] = default(_PH, "neg_tol"),
    psd_eps: Annotated[float, typer.Option(help="... and λ_min ≥ −psd_eps·λ_max.")] = default(
        _PH, "psd_eps"
    ),
    two_sided_min: Annotated[
        float, typer.Option(help="Hessian two-sided: neg_share ≥ this.")
    ] = default(_PH, "two_sided_min"),
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Re-classify a run's epochs (plasticity, frustration, converged) with these thresholds.

    Reads metrics.jsonl and the Hessian rows; writes nothing. The rule: umwelt.phases.
    """
    from sim.phases import run as run_phases

    cfg = PhasesConfig(
        run=run_dir,
        window=window,
        flat_tol=flat_tol,
        op_tol=op_tol,
        unsat_tol=unsat_tol,
        neg_tol=neg_tol,
        psd_eps=psd_eps,
        two_sided_min=two_sided_min,
    )
    try:
        result = run_phases(cfg)
    except UmweltError as err:
        _fail(err)
    _emit(result, as_json, "phases_table")
