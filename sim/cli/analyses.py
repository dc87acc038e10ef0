"""``umwelt circuits`` and ``umwelt hessian``: the analyses of a net or of a run's checkpoints,
its basis circuits and its Hessian."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sim.circuits import DEFAULT_WIDTHS, CircuitsConfig
from sim.cli.options import (
    _emit,
    _fail,
    app,
    default,
    parse_epochs,
    parse_fraction,
    parse_input,
    parse_widths,
)
from sim.hessian import HessianConfig
from umwelt.errors import UmweltError

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
