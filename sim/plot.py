r"""``umwelt plot RUN``: (re)draw the figures of a run directory (THEORY.md §4, §7).

Which command wrote ``RUN`` is read from its ``config.json`` (:func:`sim.runio.run_config`, the
one place that tells the kinds apart):

- a run of ``umwelt simulate``: the figures :mod:`sim.simulate` draws at the end of the run
  (:data:`SIMULATE_FIGURES`: learning curves and order parameter beside the ReLU twin's, gate
  entropy and agreement), drawn by its own function from ``config.json`` and ``metrics.jsonl``;
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
                            log scale, every epoch
``learning_curves.png``     fig. 8b: loss (log) and accuracy, training and test, every epoch
``gates.png``               per gate layer: entropy (bits), agreement with the ReLU gates and
                            the fraction of open gates
``weight_correlations.png`` Fok et al.: the within-layer correlation spectra (eigenvalue vs
                            rank) at the observed epochs, Marchenko–Pastur bulk shaded
``weight_isotropy.png``     per layer over epochs: participation ratio of that spectrum
==========================  ===================================================================

For either kind, when ``umwelt hessian RUN`` (:mod:`sim.hessian`) has written ``RUN/hessian/``
(``RUN/hessian_relu/`` for a simulate run's ReLU twin), :func:`hessian_figures` adds
``hessian_{entries,means,spectrum}.png`` (figs. 6a–c, 7a–c, 8a; ``hessian_relu_*.png``).
"""

from __future__ import annotations

import json
import math
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

from sim import runio
from sim.simulate import FIGURES as SIMULATE_FIGURES
from umwelt.errors import ConfigError

__all__ = ["FIGURES", "SIMULATE_FIGURES", "load_run", "make_figures"]


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


def _metrics(run_dir: Path, kind: str) -> list[dict]:
    """The rows of ``metrics.jsonl``; at least one."""
    try:
        rows = runio.read_jsonl(run_dir / "metrics.jsonl")
    except FileNotFoundError:
        raise ConfigError(f"the {kind} run {str(run_dir)!r} has no metrics.jsonl") from None
    except ValueError as e:
        raise ConfigError(f"{str(run_dir)!r}: unreadable metrics.jsonl ({e})") from None
    if not rows:
        raise ConfigError(f"the {kind} run {str(run_dir)!r} has no metrics yet (metrics.jsonl)")
    return rows


def load_run(run_dir: Path | str) -> tuple[dict, list[dict], list[dict[str, np.ndarray]]]:
    """``(config, metric rows, observations sorted by epoch)`` of a training run.

    Raises:
        ConfigError: when ``run_dir`` is not a training run directory or a file is unreadable.
    """
    from sim.observe import load_observation

    run_dir = Path(run_dir)
    kind, config = runio.run_config(run_dir)
    if kind != "train":
        raise ConfigError(f"{str(run_dir)!r} is a {kind} run, not a run of umwelt train")
    rows = _metrics(run_dir, kind)
    obs = []
    for path in sorted((run_dir / "observations").glob("epoch_*.npz")):
        try:
            obs.append(load_observation(path))
        except (OSError, ValueError) as e:
            raise ConfigError(f"unreadable observation {str(path)!r}: {e}") from None
    obs.sort(key=lambda o: int(o["epoch"]))
    return config, rows, obs


def _simulate_figures(run_dir: Path, config: dict) -> list[Path]:
    """Redraw a simulate run's figures with the function that drew them during the run."""
    from sim.simulate import SimulateConfig, draw_figures

    rows = _metrics(run_dir, "simulate")
    known = {f.name for f in fields(SimulateConfig)}
    cfg = SimulateConfig(**{k: v for k, v in config.items() if k in known})
    try:  # JSON has no tuples and writes T = inf as "inf"
        cfg = replace(cfg, temperature=float(cfg.temperature), hidden=tuple(cfg.hidden))
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{str(run_dir)!r}: unreadable config.json ({e})") from None
    try:
        return draw_figures(run_dir, rows, cfg)
    except KeyError as e:
        raise ConfigError(f"{str(run_dir)!r}: metrics.jsonl has no column {e}") from None


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


def make_figures(run_dir: Path | str) -> list[Path]:
    """Write every figure that the run's files allow into ``run_dir/figures``; return the paths.

    A run of ``umwelt train`` or of ``umwelt simulate`` (see :func:`sim.runio.run_config`), plus the
    Hessian figures of either when ``umwelt hessian`` has analysed it.

    Raises:
        ConfigError: when ``run_dir`` is neither kind of run directory or a file is unreadable.
    """
    run_dir = Path(run_dir)
    kind, config = runio.run_config(run_dir)
    if kind == "simulate":
        written = _simulate_figures(run_dir, config)
    else:
        written = _train_figures(run_dir)
    for subdir in HESSIAN_SUBDIRS:  # figs. 6–8 when umwelt hessian has analysed the run
        written += hessian_figures(run_dir, subdir)
    return written


def _train_figures(run_dir: Path) -> list[Path]:
    """The figures of a run of ``umwelt train`` (the table in the module docstring)."""
    from umwelt.plotting import (
        plot_layer_series,
        plot_learning_curves,
        plot_order_parameter,
        plot_ridgeline,
        plot_spectra,
    )

    run_dir = Path(run_dir)
    config, rows, obs = load_run(run_dir)
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
        title=f"loss and accuracy — {title}",
    )[0]
    figs["order_parameter"] = plot_order_parameter(
        epoch,
        {"training loss R": col("loss"), "order parameter η‖∇R‖²": col("order_parameter")},
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
    written = []
    for name, fig in figs.items():
        path = run_dir / "figures" / f"{name}.png"
        runio.atomic_write(path, lambda p, f=fig: f.savefig(p, format="png", dpi=110))
        written.append(path)
    return written


# -- the Hessian through training (sim.hessian): figs. 6a–c, 7a–c, 8a ------------------------------

HESSIAN_FIGURES = ("entries", "means", "spectrum")
HESSIAN_SUBDIRS = ("hessian", "hessian_relu")  # sim.hessian.output_dir: the net, the ReLU twin
__all__ += ["HESSIAN_FIGURES", "HESSIAN_SUBDIRS", "hessian_figures", "load_hessian"]


def load_hessian(run_dir: Path | str, subdir: str = "hessian") -> tuple[dict, list[dict]]:
    """``(RUN/hessian/config.json, the epochs' arrays and rows sorted by epoch)``.

    Each epoch is a dict of its ``epoch_XXXX.npz`` arrays plus ``"row"``, its
    ``hessian.jsonl`` row. Empty when the run has no Hessian analysis.
    """
    out = Path(run_dir) / subdir
    if not (out / "config.json").is_file():
        return {}, []
    try:
        config = json.loads((out / "config.json").read_text())
        epochs = []
        for path in sorted(out.glob("epoch_*.npz")):
            with np.load(path, allow_pickle=False) as z:
                d = {k: z[k] for k in z.files}
            d["row"] = json.loads(str(d["row"]))
            epochs.append(d)
    except (OSError, ValueError, KeyError) as e:
        raise ConfigError(f"unreadable Hessian results in {str(out)!r}: {e}") from None
    epochs.sort(key=lambda d: int(d["epoch"]))
    return config, epochs


def hessian_figures(run_dir: Path | str, subdir: str = "hessian") -> list[Path]:
    """Write ``figures/<subdir>_{entries,means,spectrum}.png`` from ``RUN/<subdir>/``.

    ``hessian_entries.png`` (figs. 6a–c: normalized entry distributions over epochs, the
    100 × 100 correlation sub-matrices at the first and last epoch), ``hessian_means.png``
    (figs. 7a–c: mean/std distributions with the 0.15 band, the fraction inside it, the coupling
    / skewness / kurtosis exponents), ``hessian_spectrum.png`` (fig. 8a: densities on the shared
    grid with bootstrap bands on symmetric-log axes, beside the extremes and the negative mass
    and asymmetry with standard errors). Nothing when the run has no Hessian analysis; the
    entry figures only when entries were sampled.
    """
    from umwelt.plotting import plot_hessian_entries, plot_hessian_means, plot_hessian_spectrum

    run_dir = Path(run_dir)
    config, eps = load_hessian(run_dir, subdir)
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
        f"× {int(rows[-1]['lanczos_steps'])} steps; bands: 90% bootstrap)\n{head}",
    )
    lam = np.concatenate([-col("lambda_min"), col("lambda_max")])
    if np.any(lam > 0):
        figs["spectrum"][1][1].set_yscale("log")  # a converged hinge net has H = 0: not shown
    with_entries = [d for d in eps if "entry_live" in d]
    if with_entries:
        e_ep = [int(d["epoch"]) for d in with_entries]
        first, last = with_entries[0], with_entries[-1]
        corr = {f"correlations, epoch {int(first['epoch'])}": first["corr_sub"]}
        if len(with_entries) > 1:
            corr[f"correlations, epoch {int(last['epoch'])}"] = last["corr_sub"]
        K = int(with_entries[-1]["entry_live"].size)
        figs["entries"] = plot_hessian_entries(
            first["normalized_edges"],
            np.stack([d["normalized_hist"] for d in with_entries]),
            e_ep,
            corr,
            title=f"sampled Hessian entries (K = {K:,}, bootstrap B = {s.get('bootstrap')})"
            f"\n{head}",
        )[0]
        e_rows = [d["row"] for d in with_entries]

        def ecol(key: str) -> np.ndarray:
            return np.array([np.nan if r.get(key) is None else r[key] for r in e_rows], float)

        figs["means"] = plot_hessian_means(
            first["ratio_edges"],
            np.stack([d["ratio_hist"] for d in with_entries]),
            e_ep,
            {
                "÷ bootstrap std of the mean": ecol("frac_means_below_015"),
                "÷ spread of the per-example terms": ecol("frac_means_below_015_per_example"),
            },
            {
                "coupling set: log n̄_corr / log N": ecol("coupling_exponent"),
                "significant skewness: log # / log N": ecol("skew_exponent"),
                "significant kurtosis: log # / log N": ecol("kurt_exponent"),
            },
            # with the bootstrap-std normalization an entry whose mean is exactly 0 has
            # |mean|/std ~ |N(0, 1)|: P(< 0.15) = erf(0.15/√2) = 11.9%, far below the paper's 95%
            null=math.erf(0.15 / math.sqrt(2.0)),
            title=f"concentration of the entries' means and coupling exponents\n{head}",
        )[0]
    figs["spectrum"] = figs["spectrum"][0]
    written = []
    for name in HESSIAN_FIGURES:
        if name in figs:
            path = run_dir / "figures" / f"{subdir}_{name}.png"
            runio.atomic_write(path, lambda p, f=figs[name]: f.savefig(p, format="png", dpi=110))
            written.append(path)
    return written
