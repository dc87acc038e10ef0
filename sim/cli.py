"""The ``umwelt`` command: thin wrappers that turn options into a Config and call a driver.

Every :class:`~umwelt.errors.UmweltError` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from sim.simulate import SimulateConfig
from sim.train import TrainConfig
from umwelt.errors import UmweltError

_SIM = SimulateConfig()  # the option defaults are the driver's defaults

app = typer.Typer(
    help="Umwelt: deep neural networks as stochastic graphical models at temperature T.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


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

    from sim.exact import ExactConfig
    from sim.exact import run as run_exact

    cfg = ExactConfig(
        widths=widths, temperature=temperature, inputs=inputs, samples=samples, seed=seed
    )
    try:
        result = run_exact(cfg)
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


_TR = TrainConfig()  # the option defaults of `train` are the driver's defaults


def _opt(help: str, default) -> str:
    return f"{help} (default: {default})"


@app.command()
def train(
    model: Annotated[
        str | None,
        typer.Option(help=_opt("vgg11, vgg12, vgg13, vgg16, or mlp:<hidden widths>.", _TR.model)),
    ] = None,
    width: Annotated[
        float | None, typer.Option(help=_opt("Width multiplier of every layer.", _TR.width))
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
        float | None, typer.Option(help=_opt("Gate temperature T ≥ 0 (0 = ReLU).", _TR.temperature))
    ] = None,
    gate_mode: Annotated[
        str | None, typer.Option(help=_opt("sample (EM), mean or relu.", _TR.gate_mode))
    ] = None,
    loss: Annotated[str | None, typer.Option(help=_opt("hinge or logistic.", _TR.loss))] = None,
    epochs: Annotated[int | None, typer.Option(help=_opt("Training epochs.", _TR.epochs))] = None,
    lr: Annotated[float | None, typer.Option(help=_opt("SGD step size η.", _TR.lr))] = None,
    momentum: Annotated[
        float | None, typer.Option(help=_opt("SGD momentum in [0, 1).", _TR.momentum))
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(help=_opt("Global minibatch (split over processes).", _TR.batch_size)),
    ] = None,
    gain: Annotated[
        float | None, typer.Option(help=_opt("He gain of the initialization.", "√2"))
    ] = None,
    seed: Annotated[int | None, typer.Option(help=_opt("Seed of every draw.", _TR.seed))] = None,
    device: Annotated[
        str | None,
        typer.Option(help=_opt("cpu, cuda, cuda:N (torchrun: cuda:LOCAL_RANK).", _TR.device)),
    ] = None,
    dtype: Annotated[str | None, typer.Option(help=_opt("float32 or float64.", _TR.dtype))] = None,
    observe_at: Annotated[
        str | None,
        typer.Option(
            help="Epochs to record observables at, comma-separated (default: "
            "0,10,20,30,40,100,160,200,260,300 up to --epochs, and the last epoch)."
        ),
    ] = None,
    checkpoint_every: Annotated[
        int | None,
        typer.Option(help=_opt("Also checkpoint every K steps (0: at epoch ends).", 0)),
    ] = None,
    eval_batch_size: Annotated[
        int | None,
        typer.Option(help=_opt("Batch of the full-data measurements.", _TR.eval_batch_size)),
    ] = None,
    stop_at_zero_loss: Annotated[
        bool | None,
        typer.Option(
            "--stop-at-zero-loss", help="Stop once the training risk is exactly 0 (converged)."
        ),
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
) -> None:
    """Train a VGG or MLP by generalized EM at temperature T, recording the symmetries."""
    import os
    import signal

    from sim.distributed import env_world
    from sim.runs import parse_settings
    from sim.train import resume_config, run

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
        "observe_at": observe_at,
        "checkpoint_every": checkpoint_every,
        "eval_batch_size": eval_batch_size,
        "stop_at_zero_loss": stop_at_zero_loss,
        "hessian_at": hessian_at,
        "out": out,
    }
    given = {k: v for k, v in given.items() if v is not None}
    steps = 0

    def on_step_kill(info: dict) -> None:
        nonlocal steps
        steps += 1
        if kill_after_steps is not None and steps >= kill_after_steps:
            os.kill(os.getpid(), signal.SIGKILL)

    try:
        settings = parse_settings(hessian_settings)  # strings are parsed here, at the edge
        if settings is not None:
            given["hessian"] = settings
        world = env_world()
        if resume is not None:
            cfg = resume_config(resume, given)
        else:
            cfg = TrainConfig(**given).validated()
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
        Path, typer.Argument(metavar="RUN", help="A run directory of umwelt train or simulate.")
    ],
) -> None:
    """(Re)draw the figures of a train or simulate run into RUN/figures.

    After `umwelt hessian RUN` also its Hessian figures (figs. 6a–c, 7a–c, 8a: hessian_*.png).
    """
    from sim.plot import run as plot_run

    try:
        paths = plot_run(run_dir)
    except UmweltError as err:
        _fail(err)
    for p in paths:
        typer.echo(str(p))


@app.command()
def circuits(
    widths: Annotated[
        str | None, typer.Option(help="MLP widths, input first, output 1 (default 16,32,32,1).")
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="A run directory of `umwelt simulate` (or `umwelt train`)."),
    ] = None,
    which: Annotated[
        str,
        typer.Option(help="Checkpoint: init, finite_T or relu (simulate); init, last or an epoch."),
    ] = "finite_T",
    model: Annotated[
        str | None,
        typer.Option(help="A conv net: tiny-conv, or a VGG preset (vgg11, ...) at --width."),
    ] = None,
    width: Annotated[str, typer.Option(help="VGG width multiplier, e.g. 1/32.")] = "1/32",
    graph: Annotated[
        Path | None,
        typer.Option(help='A circuit graph as JSON: {"edges": [[["x",0],[1,0],w], ...]}.'),
    ] = None,
    x: Annotated[
        str | None, typer.Option("--x", help="One input: comma-separated values or a .npy file.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of weights, inputs, gates and samples.")] = 0,
    inputs: Annotated[int, typer.Option(help="Number of inputs.")] = 4,
    samples: Annotated[
        int, typer.Option(help="Uniformly sampled circuits per order (ψ, Ω⁽¹⁾, Ω⁽²⁾).")
    ] = 10_000,
    temperature: Annotated[
        float, typer.Option(help="Gate temperature T ≥ 0 (0: ReLU gates; else sampled).")
    ] = 0.0,
    pool: Annotated[
        str, typer.Option(help="Max-pooling in conv circuits: select (winner only) or gate.")
    ] = "select",
    force_enumerate: Annotated[
        bool,
        typer.Option("--enumerate", help="Enumerate every circuit; refuse beyond --max-circuits."),
    ] = False,
    max_circuits: Annotated[
        int, typer.Option(help="Memory budget: enumerate when inputs × circuits ≤ this.")
    ] = 2**22,
    checks: Annotated[int, typer.Option(help="Hessian entries checked against autograd.")] = 64,
    circuit: Annotated[
        int | None, typer.Option(help="Show the circuit of this index (first input).")
    ] = None,
    moments: Annotated[
        bool, typer.Option("--moments", help="Also the assembly moments at init (eq. 20).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    out: Annotated[
        Path | None, typer.Option(help="Write the fig. 3b histograms (PNG) and circuits.json.")
    ] = None,
) -> None:
    """Basis circuits of a net: verify Σψ = f and its derivatives, measure circuit symmetry."""

    from sim.circuits import CircuitsConfig
    from sim.circuits import run as run_circuits

    cfg = CircuitsConfig(
        widths=widths,
        checkpoint=checkpoint,
        which=which,
        model=model,
        width=width,
        graph=graph,
        x=x,
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
        out=out,
    )
    try:
        result = run_circuits(cfg)
    except UmweltError as err:
        _fail(err)
    _emit(result, as_json, "circuits_table")


def _hessian_default(name: str):
    """A default of :class:`sim.hessian.HessianConfig` (the options' defaults are the driver's)."""
    from sim.hessian import HessianConfig

    return getattr(HessianConfig(), name)


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
    ] = None,
    net: Annotated[
        str, typer.Option(help="Simulate runs: finite_T (the net at T) or relu (its twin).")
    ] = _hessian_default("net"),
    examples: Annotated[
        int | None,
        typer.Option(help="A fixed, seeded set of this many training examples (default all)."),
    ] = None,
    batch_size: Annotated[
        int, typer.Option(help="Examples per batch of a product.")
    ] = _hessian_default("batch_size"),
    lanczos_steps: Annotated[
        int | None, typer.Option(help="SLQ Lanczos steps k ≤ N (default min(80, N)).")
    ] = None,
    start_vectors: Annotated[
        int, typer.Option(help="SLQ start vectors (bootstrapped for the bands).")
    ] = _hessian_default("start_vectors"),
    reorth: Annotated[
        str, typer.Option(help="Re-orthogonalization: full (k×N memory) or none (3×N).")
    ] = _hessian_default("reorth"),
    extremes: Annotated[
        str, typer.Option(help="Extreme eigenvalues by lanczos or eigsh.")
    ] = _hessian_default("extremes"),
    extreme_steps: Annotated[
        int | None, typer.Option(help="Lanczos steps of the extremes (default min(80, N)).")
    ] = None,
    entries: Annotated[
        int | None,
        typer.Option(
            "--entries",
            help="Sampled entries K (default min(1000, admissible); 0: no entry statistics).",
        ),
    ] = None,
    entry_columns: Annotated[
        int | None,
        typer.Option(help="Columns the entries lie in (cost: one pass per column; 0: uniform)."),
    ] = _hessian_default("entry_columns"),
    bootstrap: Annotated[
        int, typer.Option(help="Bootstrap resamples of the examples (entries), ≥ 20.")
    ] = _hessian_default("bootstrap"),
    grid_bound: Annotated[
        float | None,
        typer.Option(help="Density grid [-b, b] (default 1.5 × the largest |λ| analysed)."),
    ] = None,
    grid_points: Annotated[
        int, typer.Option(help="Points of the density grid.")
    ] = _hessian_default("grid_points"),
    smoothing: Annotated[
        float, typer.Option(help="Density smoothing width in the symmetric-log coordinate.")
    ] = _hessian_default("smoothing"),
    seed: Annotated[
        int, typer.Option(help="Seed of subset, gates, vectors, entries.")
    ] = _hessian_default("seed"),
    device: Annotated[
        str, typer.Option(help="cpu, cuda, cuda:N (torchrun: cuda:LOCAL_RANK).")
    ] = _hessian_default("device"),
    dtype: Annotated[
        str, typer.Option(help="float32, float64 or auto (float64 up to 10⁶ parameters).")
    ] = _hessian_default("dtype"),
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Replace the run's earlier Hessian results.")
    ] = False,
    figures: Annotated[
        bool, typer.Option("--figures/--no-figures", help="Write figures/hessian_*.png.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars or table.")] = False,
) -> None:
    """Hessian spectra, sampled entries and their statistics at a run's checkpoints (figs. 6–8).

    Writes RUN/hessian/epoch_XXXX.npz, RUN/hessian/hessian.jsonl and RUN/figures/hessian_*.png.
    Under torchrun each process takes a shard of the examples; rank 0 writes.
    """
    import json

    from sim.distributed import env_world
    from sim.hessian import HessianConfig
    from sim.hessian import run as run_hessian
    from sim.runs.hessian import hessian_dirname

    cfg = HessianConfig(
        run=run_dir,
        epochs=epochs,
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
    try:
        world = env_world()
        cfg = cfg.validated()
        out = cfg.run / hessian_dirname(cfg.net)
        if quiet or not world.is_main:
            rows = run_hessian(cfg)
        else:
            from sim.display import hessian_progress, hessian_table

            with hessian_progress(f"hessian {cfg.run.name}") as bar:
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


def main() -> None:
    """Entry point of the ``umwelt`` console script."""
    app()


if __name__ == "__main__":
    sys.exit(main())
