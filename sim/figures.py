r"""The figures of a run directory, and their file names: the one module that decides them
(THEORY.md §4, §7). The plot functions of :mod:`umwelt.plotting` draw; this module feeds them a
run's rows (read through :class:`sim.runs.Run`) and saves ``RUN/figures/<name>.png``, atomically.
``umwelt simulate``, ``umwelt train``, ``umwelt hessian`` and ``umwelt plot`` all draw through it.

Which command wrote ``RUN`` is told by :meth:`sim.runs.Run.open`:

- a run of ``umwelt simulate`` (:data:`SIMULATE_FIGURES`, :func:`simulate_figures`): learning
  curves and order parameter beside the ReLU twin's, gate entropy and agreement, from
  ``config.json`` and ``metrics.jsonl``;
- a run of ``umwelt train``: from ``config.json``, ``metrics.jsonl`` and
  ``observations/epoch_XXXX.npz`` (nothing else; a run killed half-way plots what it has), into
  ``RUN/figures/``:

==========================  ===================================================================
``weights_ridgeline.png``   fig. 3a: per layer, Gaussian-smoothed histograms of the weights at
                            the observed epochs, offset by epoch, in units of the layer's RMS
                            weight at initialization (fixed bins)
``gradients_ridgeline.png`` fig. 4a: the same for the entries of the full-training-set
                            gradient, in units of each epoch's RMS gradient entry
``gradient_symmetry.png``   per layer over epochs: skewness, fraction of positive entries and
                            the KS distance between ``g`` and ``-g``
``order_parameter.png``     fig. 4b: :math:`\eta\|\nabla R\|^2` next to the training loss,
                            log scale to epoch 150 then linear (the paper's layout), and
                            their ratio over training
``learning_curves.png``     fig. 8b: loss (log) and accuracy, training and test, every epoch
``gates.png``               per gate layer: entropy (bits), agreement with the ReLU gates and
                            the fraction of open gates
``weight_correlations.png`` Fok et al.: the within-layer correlation spectra (eigenvalue vs
                            rank) at the observed epochs, Marchenko–Pastur bulk shaded
``weight_isotropy.png``     per layer over epochs: participation ratio of that spectrum
==========================  ===================================================================

For either kind, when ``umwelt hessian RUN`` has written ``RUN/hessian/``
(``RUN/hessian_relu/`` for a simulate run's ReLU twin), :func:`hessian_figures` adds
``hessian_{entries,means,spectrum}.png`` (figs. 6a–c, 7a–c, 8a; ``hessian_relu_*.png``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from sim.runs import Run, SimulateConfig, atomic_write
from sim.runs.hessian import HESSIAN_DIRS
from umwelt.errors import ConfigError

__all__ = [
    "FIGURES",
    "HESSIAN_FIGURES",
    "HESSIAN_SUBDIRS",
    "SIMULATE_FIGURES",
    "figure_path",
    "hessian_figures",
    "make_figures",
    "simulate_figures",
    "train_figures",
]

#: the figures of a simulate run (``figures/<name>.png``)
SIMULATE_FIGURES = ("learning_curves", "gates", "order_parameter")
#: the figures of a Hessian analysis (``figures/<analysis dir>_<name>.png``)
HESSIAN_FIGURES = ("blocks", "entries", "followed", "means", "spectrum")
HESSIAN_SUBDIRS = HESSIAN_DIRS  # the net's analysis, and a simulate run's ReLU twin's

#: the figures of a train run (``figures/<name>.png``)
FIGURES = (
    "weights_ridgeline",
    "gradients_ridgeline",
    "gradient_symmetry",
    "order_parameter",
    "learning_curves",
    "gates",
    "weight_correlations",
    "weight_isotropy",
)


def figure_path(run_dir: Path, name: str) -> Path:
    """``RUN/figures/<name>.png``: where every figure of a run goes."""
    return Path(run_dir) / "figures" / f"{name}.png"


def _save(figs: dict, run_dir: Path, dpi: int, prefix: str = "") -> list[Path]:
    """Save each ``(name, figure)`` as :func:`figure_path` atomically; the paths in order."""
    written = []
    for name, fig in figs.items():
        path = figure_path(run_dir, f"{prefix}{name}")
        atomic_write(path, lambda p, f=fig: f.savefig(p, format="png", dpi=dpi))
        written.append(path)
    return written


def simulate_figures(run_dir: Path, rows: list[dict], cfg: SimulateConfig) -> list[Path]:
    """Draw :data:`SIMULATE_FIGURES` of a simulate run from its metric rows into
    ``RUN/figures``; their paths.

    Raises:
        ConfigError: when the rows lack a column the figures need.
    """
    try:
        return _save(_simulate_figures(rows, cfg), Path(run_dir), dpi=120)
    except KeyError as e:
        raise ConfigError(f"{str(run_dir)!r}: metrics.jsonl has no column {e}") from None


def _simulate_figures(rows: list[dict], cfg: SimulateConfig) -> dict:
    from umwelt.plotting import plot_gate_statistics, plot_learning_curves, plot_order_parameter

    epoch = [r["epoch"] for r in rows]
    col = {k: [r[k] for r in rows] for k in rows[0] if k not in ("gate_entropy", "gate_agreement")}
    tlabel = f"T = {cfg.temperature:g}"
    figs = {
        "learning_curves": plot_learning_curves(
            epoch,
            loss={
                tlabel: {"train": col["loss"], "test": col["test_loss"]},
                "ReLU twin": {"train": col["relu_loss"], "test": col["relu_test_loss"]},
            },
            acc={
                tlabel: {"train": col["train_acc"], "test": col["test_acc"]},
                "ReLU twin": {"train": col["relu_train_acc"], "test": col["relu_test_acc"]},
            },
            phases=_phases(rows, {tlabel: "", "ReLU twin": "relu_"}),
            title=f"{cfg.dataset}: hidden {','.join(map(str, cfg.hidden))}, {tlabel} vs ReLU",
        )[0],
        "gates": plot_gate_statistics(
            epoch,
            np.array([r["gate_entropy"] for r in rows]),
            np.array([r["gate_agreement"] for r in rows]),
            title=f"gates of the {tlabel} net on the training set",
        )[0],
        "order_parameter": plot_order_parameter(
            epoch,
            {
                f"loss ({tlabel})": col["loss"],
                f"η‖∇R‖² ({tlabel})": col["order_parameter"],
                "loss (ReLU)": col["relu_loss"],
                "η‖∇R‖² (ReLU)": col["relu_order_parameter"],
                **_unsatisfied(rows, {tlabel: "", "ReLU": "relu_"}),
            },
            title="plasticity order parameter beside the risk",
        )[0],
    }
    assert tuple(figs) == SIMULATE_FIGURES
    return figs


def _phases(rows: list[dict], nets: dict[str, str]) -> dict | None:
    """``{net label: each row's phase}`` (key ``<prefix>phase``); None before phases existed."""
    out = {label: [r.get(f"{p}phase") for r in rows] for label, p in nets.items()}
    return out if any(x is not None for v in out.values() for x in v) else None


def _unsatisfied(rows: list[dict], nets: dict[str, str]) -> dict:
    """``{"N_Δ/n (label)": column}`` of the nets whose rows record it (THEORY.md §5)."""
    out = {}
    for label, p in nets.items():
        key = f"{p}frac_unsatisfied"
        if any(key in r for r in rows):
            name = f"N_Δ/n ({label})" if label else "unsatisfied fraction N_Δ/n"
            out[name] = np.array([math.nan if r.get(key) is None else r[key] for r in rows])
    return out


def _layer_labels(o: dict[str, np.ndarray]) -> list[str]:
    out = []
    for l, (name, shape) in enumerate(zip(o["layer_names"], o["layer_shapes"], strict=True)):
        dims = [int(s) for s in shape]
        while len(dims) > 2 and dims[-1] == 1:
            dims.pop()
        out.append(f"{l + 1}: {name} ({'×'.join(map(str, dims))})")
    return out


def _title(config: dict) -> str:
    width = config.get("width", 1.0)
    w = "" if width == 1.0 else f" ×{width:g}"
    T = config.get("temperature")
    return (
        f"{config.get('model')}{w}, {Path(str(config.get('dataset'))).name}, "
        f"T = {T}, {config.get('gate_mode')} gates, {config.get('loss')} loss"
    )


def make_figures(run: Run | Path | str) -> list[Path]:
    """Write every figure that the run's files allow into ``RUN/figures``; return the paths.

    A run of ``umwelt train`` or of ``umwelt simulate``, plus the Hessian figures of either
    when ``umwelt hessian`` has analysed it.

    Raises:
        ConfigError: when ``run`` is neither kind of run directory or a file is unreadable.
    """
    run = run if isinstance(run, Run) else Run.open(run)
    if run.kind == "simulate":
        written = simulate_figures(run.path, run.metrics(required=True), run.config)
    else:
        written = train_figures(run)
    for subdir in HESSIAN_SUBDIRS:  # figs. 6–8 when umwelt hessian has analysed the run
        written += hessian_figures(run, subdir)
    return written


def train_figures(run: Run) -> list[Path]:
    """The figures of a run of ``umwelt train`` (the table in the module docstring).

    Raises:
        ConfigError: for a run of another kind, or one without metric rows.
    """
    from umwelt.plotting import (
        plot_layer_series,
        plot_learning_curves,
        plot_order_parameter,
        plot_ridgeline,
        plot_spectra,
    )

    if run.kind != "train":
        raise ConfigError(f"{str(run.path)!r} is a {run.kind} run, not a run of umwelt train")
    run_dir, config = run.path, run.stored
    rows, obs = run.metrics(required=True), run.observations()
    title = _title(config)
    title3 = title.replace(", T =", "\nT =")  # for the narrow figures
    figs = {}

    epoch = [r["epoch"] for r in rows]

    def col(key: str) -> np.ndarray:
        return np.array([math.nan if r.get(key) is None else r[key] for r in rows], dtype=float)

    figs["learning_curves"] = plot_learning_curves(
        epoch,
        loss={f"T = {config.get('temperature')}": {"train": col("loss"), "test": col("test_loss")}},
        acc={
            f"T = {config.get('temperature')}": {"train": col("train_acc"), "test": col("test_acc")}
        },
        phases=_phases(rows, {f"T = {config.get('temperature')}": ""}),
        title=f"loss and accuracy — {title}",
    )[0]
    figs["order_parameter"] = plot_order_parameter(
        epoch,
        {
            "training loss R": col("loss"),
            "order parameter η‖∇R‖²": col("order_parameter"),
            **_unsatisfied(rows, {"": ""}),
        },
        ratio=("order parameter η‖∇R‖²", "training loss R"),
        split_at=150,  # the paper's fig. 4b: log scale to epoch 150, then linear
        title=f"plasticity order parameter and training loss\n{title3}",
    )[0]
    if obs:
        ep = [int(o["epoch"]) for o in obs]
        labels = _layer_labels(obs[-1])
        figs["weights_ridgeline"] = plot_ridgeline(
            obs[0]["weight_edges"],
            np.stack([o["weight_hist"] for o in obs]),
            ep,
            labels=labels,
            xlabel="weight / initial RMS weight of the layer",
            title=f"weight distributions over training — {title}",
        )[0]
        figs["gradients_ridgeline"] = plot_ridgeline(
            obs[0]["grad_edges"],
            np.stack([o["grad_hist"] for o in obs]),
            ep,
            labels=labels,
            xlabel="∂R/∂w / RMS of the layer's gradient",
            title=f"gradient distributions over training (full training set) — {title}",
        )[0]
        figs["gradient_symmetry"] = plot_layer_series(
            ep,
            {
                "skewness of ∂R/∂w": np.stack([o["grad_skewness"] for o in obs]),
                "fraction of ∂R/∂w > 0 (non-zero)": np.stack([o["grad_frac_pos"] for o in obs]),
                "KS distance of g and −g": np.stack([o["grad_ks_stat"] for o in obs]),
            },
            labels=labels,
            reference={"skewness of ∂R/∂w": 0.0, "fraction of ∂R/∂w > 0 (non-zero)": 0.5},
            title=f"gradient symmetry — {title}",
        )[0]
        G = len(obs[-1].get("gate_entropy", ()))
        if G:
            figs["gates"] = plot_layer_series(
                ep,
                {
                    "gate entropy (bits per gate)": np.stack([o["gate_entropy"] for o in obs]),
                    "agreement with the ReLU gates": np.stack([o["gate_agreement"] for o in obs]),
                    "fraction of open gates": np.stack([o["gate_open"] for o in obs]),
                },
                labels=[f"gates after {lab}" for lab in labels[:G]],
                reference={"agreement with the ReLU gates": 1.0},
                title=f"gates on the training set (one draw at T) — {title}",
            )[0]
        L = len(labels)
        bands = []
        for shape in obs[-1]["layer_shapes"]:
            n_out, fan_in = int(shape[0]), int(np.prod(shape[1:]))
            q = n_out / fan_in  # the Marchenko–Pastur ratio; q ≥ 1: zero eigenvalues, edge only
            lo = (1 - math.sqrt(q)) ** 2 if q < 1 else 0.0
            bands.append((lo, (1 + math.sqrt(q)) ** 2) if n_out > 1 else None)
        figs["weight_correlations"] = plot_spectra(
            [[o[f"corr_eigs_{l:02d}"] for l in range(L)] for o in obs],
            ep,
            labels=labels,
            bands=bands,
            ylabel="eigenvalue (neuron correlations)",
            title=f"within-layer weight correlation spectra (grey: Marchenko–Pastur bulk)\n{title}",
        )[0]
        figs["weight_isotropy"] = plot_layer_series(
            ep,
            {
                "participation ratio of the correlation spectrum": np.stack(
                    [o["corr_participation"] for o in obs]
                )
            },
            labels=labels,
            title=f"isotropy of within-layer correlations\n{title3}",
        )[0]
    return _save(figs, run_dir, dpi=110)


# -- the Hessian through training (umwelt hessian): figs. 6a–c, 7a–c, 8a ---------------------------


FOLLOWED = 3  # entries followed through training in fig. 6a


def _followed(eps: list[dict]) -> dict[str, list[np.ndarray]]:
    """Fig. 6a's entries: the first :data:`FOLLOWED` live at every epoch when the epochs share
    their entries (``{label: [normalized samples per epoch]}``; empty otherwise)."""
    rows, cols = eps[0]["entry_rows"], eps[0]["entry_cols"]
    if any(not np.array_equal(d["entry_rows"], rows) for d in eps):
        return {}
    if any(not np.array_equal(d["entry_cols"], cols) for d in eps):
        return {}
    live = np.logical_and.reduce([d["entry_live"] for d in eps])
    out = {}
    for i in np.nonzero(live)[0][:FOLLOWED]:
        label = f"entry ({int(rows[i])}, {int(cols[i])})"
        out[label] = [d["entry_samples"][:, i] / d["entry_std"][i] for d in eps]
    return out


def hessian_figures(run: Run | Path | str, subdir: str = "hessian") -> list[Path]:
    """Write ``figures/<subdir>_{entries,means,spectrum}.png`` from ``RUN/<subdir>/``.

    ``hessian_entries.png`` (figs. 6a–c: normalized entry distributions over epochs, the
    100 × 100 correlation sub-matrices at the first and last epoch), ``hessian_means.png``
    (figs. 7a–c: mean/std distributions with the 0.15 band, the fraction inside it, the coupling
    / skewness / kurtosis exponents), ``hessian_spectrum.png`` (fig. 8a: densities on the shared
    grid with ± 1.645 SE bands on symmetric-log axes, beside the extremes and the negative mass
    and asymmetry with standard errors). Nothing when the run has no Hessian analysis; the
    entry figures only when entries were sampled.
    """
    from umwelt.plotting import (
        plot_followed_entries,
        plot_hessian_blocks,
        plot_hessian_entries,
        plot_hessian_means,
        plot_hessian_spectrum,
    )

    run = run if isinstance(run, Run) else Run.open(run)
    run_dir = run.path
    config, eps = run.hessian("relu" if subdir == HESSIAN_SUBDIRS[1] else "finite_T")
    if not eps:
        return []
    rows = [d["row"] for d in eps]
    ep = [int(d["epoch"]) for d in eps]
    s = config.get("settings", {})
    net = " (ReLU twin)" if s.get("net") == "relu" else ""
    head = (
        f"{run_dir.name}{net}: {config.get('kind')} run, T = {config.get('temperature')}, "
        f"{config.get('loss')} loss, N = {rows[-1]['n_params']:,}, "
        f"{rows[-1]['n_examples']:,} examples"
    )

    def col(key: str) -> np.ndarray:
        return np.array([np.nan if r.get(key) is None else r[key] for r in rows], dtype=float)

    figs = {}
    figs["spectrum"] = plot_hessian_spectrum(
        eps[0]["grid"],
        np.stack([d["density"] for d in eps]),
        ep,
        c=float(eps[0]["grid_c"]),
        lo=np.stack([d["density_lo"] for d in eps]),
        hi=np.stack([d["density_hi"] for d in eps]),
        series={
            "extreme eigenvalues (log scale; 0 not shown)": {
                "λ_max": (col("lambda_max"), None),
                "−λ_min": (-col("lambda_min"), None),
            },
            "spectral balance": {
                "negative mass": (col("neg_mass"), col("neg_mass_se")),
                "negative share of the resolved mass": (col("neg_share"), col("neg_share_se")),
                "asymmetry ∫λ³ρ/(∫λ²ρ)^1.5": (col("asymmetry"), col("asymmetry_se")),
                "∫|ρ(λ)−ρ(−λ)|dλ": (col("density_asymmetry"), col("density_asymmetry_se")),
            },
        },
        title=f"Hessian eigenvalue density (SLQ, {int(s.get('start_vectors', 0))} start vectors "
        f"× {int(rows[-1]['lanczos_steps'])} steps; bands: ± 1.645 SE, closed form)\n{head}",
    )
    lam = np.concatenate([-col("lambda_min"), col("lambda_max")])
    if np.any(lam > 0):
        figs["spectrum"][1][1].set_yscale("log")  # a converged hinge net has H = 0: not shown
    with_blocks = [d for d in eps if "block_share" in d]
    if with_blocks:
        figs["blocks"] = plot_hessian_blocks(
            np.stack([d["block_share"] for d in with_blocks]),
            [int(d["epoch"]) for d in with_blocks],
            [str(x) for x in with_blocks[-1]["block_names"]],
            singular=np.stack([d["block_singular"] for d in with_blocks]),
            title=f"per-layer-pair blocks of the Hessian ({int(s.get('block_vectors', 0))} "
            f"probes per layer)\n{head}",
        )[0]
    with_entries = [d for d in eps if "entry_live" in d]
    if with_entries:
        e_ep = [int(d["epoch"]) for d in with_entries]
        first, last = with_entries[0], with_entries[-1]
        corr = {f"correlations, epoch {int(first['epoch'])}": first["corr_sub"]}
        if len(with_entries) > 1:
            corr[f"correlations, epoch {int(last['epoch'])}"] = last["corr_sub"]
        K = int(with_entries[-1]["entry_live"].size)
        uni = "uniform entries" if last["row"].get("corr_entries") == "uniform" else "its columns"
        followed = _followed(with_entries)
        if followed:
            figs["followed"] = plot_followed_entries(
                e_ep,
                followed,
                np.stack([d["normalized_hist"] for d in with_entries]),
                first["normalized_edges"],
                title="the same Hessian entries through training (fig. 6a; bootstrap over the "
                f"examples, B = {s.get('bootstrap')})\n{head}",
            )[0]
        figs["entries"] = plot_hessian_entries(
            first["normalized_edges"],
            np.stack([d["normalized_hist"] for d in with_entries]),
            e_ep,
            corr,
            title=f"sampled Hessian entries (K = {K:,}, bootstrap B = {s.get('bootstrap')}; "
            f"correlations of {uni})\n{head}",
        )[0]
        e_rows = [d["row"] for d in with_entries]

        def ecol(key: str) -> np.ndarray:
            return np.array([np.nan if r.get(key) is None else r[key] for r in e_rows], float)

        def band(key: str):
            if not any(f"{key}_lo" in r for r in e_rows):
                return ecol(key)
            return ecol(key), ecol(f"{key}_lo"), ecol(f"{key}_hi")

        figs["means"] = plot_hessian_means(
            first["ratio_edges"],
            np.stack([d["ratio_hist"] for d in with_entries]),
            e_ep,
            {
                "÷ bootstrap std of the mean": band("frac_means_below_015"),
                "÷ spread of the per-example terms": band("frac_means_below_015_per_example"),
            },
            {
                "coupling set among all entries: log count / log N": band("coupling_set_exponent"),
                "among the sampled: log n̄_corr / log N": ecol("coupling_exponent"),
                "significant skewness: log # / log N": ecol("skew_exponent"),
                "significant kurtosis: log # / log N": ecol("kurt_exponent"),
            },
            # with the bootstrap-std normalization an entry whose mean is exactly 0 has
            # |mean|/std ~ |N(0, 1)|: P(< 0.15) = erf(0.15/√2) = 11.9%, far below the paper's 95%
            null=math.erf(0.15 / math.sqrt(2.0)),
            title=f"concentration of the entries' means and coupling exponents\n{head}",
        )[0]
    figs["spectrum"] = figs["spectrum"][0]
    figs = {name: figs[name] for name in HESSIAN_FIGURES if name in figs}
    return _save(figs, run_dir, dpi=110, prefix=f"{subdir}_")
