"""The ``umwelt`` command: thin wrappers that turn options into a Config and call a driver.

Options are text at this edge: :func:`parse_epochs`, :func:`parse_widths`,
:func:`parse_fraction` and :func:`parse_input` turn it into the typed values the Configs hold
(their ``validated()`` checks values and parses nothing). Every option whose value is a Config
field takes its default from that field (:func:`default`, :func:`with_default`). Each command
hands its Config to the driver, which validates it once; ``simulate`` and ``train`` call the
driver's ``prepare`` first (values and filesystem, nothing written), so that a bad option fails
before a progress bar is drawn, and ``run`` takes the prepared Config as is.

Every :class:`~umwelt.errors.UmweltError` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import dataclasses
import sys
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from sim.circuits import DEFAULT_WIDTHS, CircuitsConfig
from sim.exact import ExactConfig
from sim.hessian import HessianConfig
from sim.phases import PhasesConfig
from sim.reproduce import ReproduceConfig
from sim.runs import PAPER_OBSERVE_AT, SimulateConfig, TrainConfig
from sim.sweep import SweepConfig
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


@app.command()
def bench(
    which: Annotated[
        str, typer.Argument(help="enumeration, training, vgg, hessian, circuits or all.")
    ] = "all",
    quick: Annotated[bool, typer.Option("--quick", help="Tiny sizes (seconds).")] = False,
) -> None:
    """Benchmarks that print speed ratios measured side by side in one run."""
    import importlib

    names = ["enumeration", "training", "vgg", "hessian", "circuits"]
    if which not in (*names, "all"):
        _fail(UmweltError(f"unknown benchmark {which!r}; choose from {', '.join(names)}, all"))
    for name in names if which == "all" else [which]:
        importlib.import_module(f"sim.benchmarks.{name}").run(quick=quick)


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


_CI = CircuitsConfig  # the options of `circuits` default to its fields


@app.command()
def circuits(
    widths: Annotated[
        str | None,
        typer.Option(
            help="MLP widths, input first, output 1 (default "
            + ",".join(map(str, DEFAULT_WIDTHS))
            + ")."
        ),
    ] = default(_CI, "widths"),
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="A run directory of `umwelt simulate` (or `umwelt train`)."),
    ] = None,  # the field's (a literal for a path: ruff B008); tests/test_cli.py checks
    which: Annotated[
        str,
        typer.Option(help="Checkpoint: init, finite_T or relu (simulate); init, last or an epoch."),
    ] = default(_CI, "which"),
    model: Annotated[
        str | None,
        typer.Option(help="A conv net: tiny-conv, or a VGG preset (vgg11, ...) at --width."),
    ] = default(_CI, "model"),
    width: Annotated[str, typer.Option(help="VGG width multiplier, e.g. 1/32.")] = default(
        _CI, "width"
    ),
    graph: Annotated[
        Path | None,
        typer.Option(help='A circuit graph as JSON: {"edges": [[["x",0],[1,0],w], ...]}.'),
    ] = None,  # the field's (a literal for a path: ruff B008); tests/test_cli.py checks
    x: Annotated[
        str | None, typer.Option("--x", help="One input: comma-separated values or a .npy file.")
    ] = default(_CI, "x"),
    seed: Annotated[
        int, typer.Option(help="Seed of weights, inputs, gates and samples.")
    ] = default(_CI, "seed"),
    inputs: Annotated[int, typer.Option(help="Number of inputs.")] = default(_CI, "inputs"),
    samples: Annotated[
        int, typer.Option(help="Uniformly sampled circuits per order (ψ, Ω⁽¹⁾, Ω⁽²⁾).")
    ] = default(_CI, "samples"),
    temperature: Annotated[
        float, typer.Option(help="Gate temperature T ≥ 0 (0: ReLU gates; else sampled).")
    ] = default(_CI, "temperature"),
    pool: Annotated[
        str, typer.Option(help="Max-pooling in conv circuits: select (winner only) or gate.")
    ] = default(_CI, "pool"),
    force_enumerate: Annotated[
        bool,
        typer.Option("--enumerate", help="Enumerate every circuit; refuse beyond --max-circuits."),
    ] = default(_CI, "force_enumerate"),
    max_circuits: Annotated[
        int, typer.Option(help="Memory budget: enumerate when inputs × circuits ≤ this.")
    ] = default(_CI, "max_circuits"),
    checks: Annotated[
        int, typer.Option(help="Hessian entries checked against autograd.")
    ] = default(_CI, "checks"),
    circuit: Annotated[
        int | None, typer.Option(help="Show the circuit of this index (first input).")
    ] = default(_CI, "circuit"),
    moments: Annotated[
        bool, typer.Option("--moments", help="Also the assembly moments at init (eq. 20).")
    ] = default(_CI, "moments"),
    run: Annotated[
        Path | None,
        typer.Option(
            help="A run directory of umwelt train (MLP) or simulate: instead, the assembly "
            "moments at its checkpointed epochs beside eq. 20 (--samples: Hessian entries)."
        ),
    ] = None,  # the field's (a literal for a path: ruff B008); tests/test_cli.py checks
    epochs: Annotated[
        str | None,
        typer.Option(help="With --run: epochs, comma-separated (default: every checkpoint)."),
    ] = default(_CI, "epochs"),
    plant_mean: Annotated[
        str | None,
        typer.Option(
            metavar="FRACTION:SHIFT",
            help="With --run: also measure each epoch's net with this fraction of each layer's "
            "weights (seeded) shifted by SHIFT × the layer's RMS weight, e.g. 0.25:1 (eq. 20's μ).",
        ),
    ] = default(_CI, "plant_mean"),
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    out: Annotated[
        Path | None, typer.Option(help="Write the fig. 3b histograms (PNG) and circuits.json.")
    ] = None,  # the field's (a literal for a path: ruff B008); tests/test_cli.py checks
) -> None:
    """Basis circuits of a net: verify Σψ = f and its derivatives, measure circuit symmetry."""
    from sim.circuits import parse_plant_mean
    from sim.circuits import run as run_circuits

    try:
        cfg = CircuitsConfig(
            widths=None if widths is None else parse_widths(widths),
            checkpoint=checkpoint,
            which=which,
            model=model,
            width=parse_fraction(width),
            graph=graph,
            x=None if x is None else parse_input(x),
            seed=seed,
            inputs=inputs,
            samples=samples,
            temperature=temperature,
            pool=pool,
            force_enumerate=force_enumerate,
            max_circuits=max_circuits,
            checks=checks,
            circuit=circuit,
            moments=moments,
            run=run,
            epochs=None if epochs is None else parse_epochs(epochs, "epochs", items="integers"),
            plant_mean=None if plant_mean is None else parse_plant_mean(plant_mean),
            out=out,
        )
        result = run_circuits(cfg)  # validates cfg, once
    except UmweltError as err:
        _fail(err)
    _emit(result, as_json, "circuits_table" if run is None else "circuit_moments_table")


_HE = HessianConfig  # the options of `hessian` default to its fields


@app.command()
def hessian(
    run_dir: Annotated[
        Path, typer.Argument(metavar="RUN", help="A run directory of umwelt train or simulate.")
    ],
    epochs: Annotated[
        str | None,
        typer.Option(
            help="Epochs to analyse, comma-separated (default: every checkpoint; a simulate run "
            "has 0 = init.pt and its last epoch)."
        ),
    ] = default(_HE, "epochs"),
    net: Annotated[
        str, typer.Option(help="Simulate runs: finite_T (the net at T) or relu (its twin).")
    ] = default(_HE, "net"),
    examples: Annotated[
        int | None,
        typer.Option(help="A fixed, seeded set of this many training examples (default all)."),
    ] = default(_HE, "examples"),
    batch_size: Annotated[int, typer.Option(help="Examples per batch of a product.")] = default(
        _HE, "batch_size"
    ),
    lanczos_steps: Annotated[
        int | None, typer.Option(help="SLQ Lanczos steps k ≤ N (default min(80, N)).")
    ] = default(_HE, "lanczos_steps"),
    start_vectors: Annotated[
        int, typer.Option(help="SLQ start vectors (bootstrapped for the bands).")
    ] = default(_HE, "start_vectors"),
    reorth: Annotated[
        str, typer.Option(help="Re-orthogonalization: full (k×N memory) or none (3×N).")
    ] = default(_HE, "reorth"),
    extremes: Annotated[
        str,
        typer.Option(
            help="Extreme eigenvalues: slq (its Ritz values when converged), lanczos or eigsh."
        ),
    ] = default(_HE, "extremes"),
    extreme_steps: Annotated[
        int | None, typer.Option(help="Lanczos steps of the extremes (default min(80, N)).")
    ] = default(_HE, "extreme_steps"),
    entries: Annotated[
        int | None,
        typer.Option(
            "--entries",
            help="Sampled entries K (default min(1000, admissible); 0: no entry statistics).",
        ),
    ] = default(_HE, "entries"),
    entry_columns: Annotated[
        int | None,
        typer.Option(help="Columns the entries lie in (cost: one pass per column; 0: uniform)."),
    ] = default(_HE, "entry_columns"),
    corr_entries: Annotated[
        str,
        typer.Option(
            help="The 100×100 correlations (figs. 6b,c) of uniform entries or of the columns'."
        ),
    ] = default(_HE, "corr_entries"),
    uniform_entries: Annotated[
        int,
        typer.Option(
            help="Uniform entries among the K (the correlations and the coupling set of figs. "
            "6b,c and 7c; at most K/2; one pass each)."
        ),
    ] = default(_HE, "uniform_entries"),
    deflation_steps: Annotated[
        int,
        typer.Option(
            help="Deflate the converged eigenpairs of a Lanczos run of this many steps (0: off)."
        ),
    ] = default(_HE, "deflation_steps"),
    blocks: Annotated[
        bool,
        typer.Option(
            "--blocks/--no-blocks",
            help="Per-layer-pair blocks: shares of tr H², top singular values (layers × "
            "block-vectors products).",
        ),
    ] = default(_HE, "blocks"),
    block_vectors: Annotated[
        int, typer.Option(help="Gaussian probes per layer of --blocks (2 to 64).")
    ] = default(_HE, "block_vectors"),
    bootstrap: Annotated[
        int, typer.Option(help="Bootstrap resamples of the examples (entries), ≥ 20.")
    ] = default(_HE, "bootstrap"),
    grid_bound: Annotated[
        float | None,
        typer.Option(help="Density grid [-b, b] (default 1.5 × the largest |λ| analysed)."),
    ] = default(_HE, "grid_bound"),
    grid_points: Annotated[int, typer.Option(help="Points of the density grid.")] = default(
        _HE, "grid_points"
    ),
    smoothing: Annotated[
        float, typer.Option(help="Density smoothing width in the symmetric-log coordinate.")
    ] = default(_HE, "smoothing"),
    seed: Annotated[int, typer.Option(help="Seed of subset, gates, vectors, entries.")] = default(
        _HE, "seed"
    ),
    device: Annotated[
        str, typer.Option(help="cpu, cuda, cuda:N (torchrun: cuda:LOCAL_RANK).")
    ] = default(_HE, "device"),
    dtype: Annotated[
        str, typer.Option(help="float32, float64 or auto (float64 up to 50,000 parameters).")
    ] = default(_HE, "dtype"),
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Replace the run's earlier Hessian results.")
    ] = default(_HE, "fresh"),
    figures: Annotated[
        bool, typer.Option("--figures/--no-figures", help="Write figures/hessian_*.png.")
    ] = default(_HE, "figures"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars or table.")] = False,
) -> None:
    """Hessian spectra, sampled entries and their statistics at a run's checkpoints (figs. 6–8).

    Writes RUN/hessian/epoch_XXXX.npz, RUN/hessian/hessian.jsonl and RUN/figures/hessian_*.png.
    Under torchrun each process takes a shard of the examples; rank 0 writes.
    """
    import json

    from sim.distributed import env_world
    from sim.hessian import run as run_hessian
    from sim.runs.hessian import hessian_dirname

    try:
        cfg = HessianConfig(
            run=run_dir,
            epochs=None if epochs is None else parse_epochs(epochs, "epochs", items="integers"),
            net=net,
            examples=examples,
            batch_size=batch_size,
            lanczos_steps=lanczos_steps,
            start_vectors=start_vectors,
            reorth=reorth,
            extremes=extremes,
            extreme_steps=extreme_steps,
            entries=entries,
            entry_columns=entry_columns or None,
            corr_entries=corr_entries,
            uniform_entries=uniform_entries,
            deflation_steps=deflation_steps,
            blocks=blocks,
            block_vectors=block_vectors,
            bootstrap=bootstrap,
            grid_bound=grid_bound,
            grid_points=grid_points,
            smoothing=smoothing,
            seed=seed,
            device=device,
            dtype=dtype,
            fresh=fresh,
            figures=figures,
        )
        world = env_world()
        out = run_dir / hessian_dirname(net)
        if quiet or not world.is_main:
            rows = run_hessian(cfg)  # validates cfg (and reads the run), once
        else:
            from sim.display import hessian_progress, hessian_table

            with hessian_progress(f"hessian {run_dir.name}") as bar:
                rows = run_hessian(cfg, progress=bar)
            if not as_json:
                hessian_table(rows)
    except UmweltError as err:
        _fail(err)
    except KeyboardInterrupt:
        typer.echo("interrupted; the epochs finished so far are in RUN/hessian", err=True)
        raise typer.Exit(code=130) from None
    if world.is_main:
        if as_json:
            from sim.runs import to_jsonable

            typer.echo(json.dumps(to_jsonable(rows)))
        else:
            typer.echo(f"hessian results: {out}")


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


def main() -> None:
    """Entry point of the ``umwelt`` console script."""
    app()


if __name__ == "__main__":
    sys.exit(main())
