r"""The figures of ``umwelt circuits``: their file names, labels and titles.

``circuit_histograms.png`` (fig. 3b: the sampled values per order, a checkpoint beside its
initialization), ``assembly_moments.png`` (at initialization, against depth and width, eq. 20)
and ``assembly_moments_training.png`` (through training); drawn by :mod:`umwelt.plotting`,
written atomically into ``out``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from sim.circuits.config import CircuitsConfig
from sim.circuits.nets import _Net

ORDER_LABELS = {"psi": "ψ (circuits)", "omega1": "Ω⁽¹⁾ (one weight out)", "omega2": "Ω⁽²⁾ (two)"}


def _training_figure(cfg: CircuitsConfig, out: dict, rows, planted_rows) -> Path:
    from sim.runs import atomic_write
    from umwelt.circuits import moments_series
    from umwelt.plotting import plot_assembly_moments_training

    series = {"as trained": moments_series([m for _, m in rows])}
    if planted_rows:
        p = out["plant_mean"]
        label = f"planted: {p['fraction']:g} of each layer's weights {p['shift']:+g} RMS"
        series[label] = moments_series([m for _, m in planted_rows])
    T = f"T = {cfg.temperature:g}" if cfg.temperature else "ReLU gates"
    fig, _ = plot_assembly_moments_training(
        [e for e, _ in rows],
        series,
        labels={
            "f": "f (order 0)",
            "grad": "gradient entries ∂f/∂W (order 1)",
            "hess": f"{out['entries']} Hessian entries ∂²f/∂W∂W' (order 2)",
        },
        title=f"assemblies of {out['net']['description']}, {out['inputs']} inputs, {T}",
    )
    return atomic_write(
        Path(cfg.out) / "assembly_moments_training.png",
        lambda p: fig.savefig(p, format="png", dpi=120),
    )


def _note(s: dict) -> str:
    return (
        f"mean/std {s['mean_over_std']:+.3f}, skew {s['skewness']:+.2f}, "
        f"P(>0|≠0) {s['frac_positive']:.3f}, p(v vs −v) {s['sym_test_pvalue']:.2g}"
    )


def _figures(cfg, n: _Net, values, sym, compare, sym_init, moments) -> list[str]:
    from sim.runs import atomic_write
    from umwelt.plotting import plot_assembly_moments, plot_circuit_histograms

    out = Path(cfg.out)
    label = "trained" if compare is not None else "sampled"
    if cfg.checkpoint is not None:
        label = str(cfg.which)
    panels, notes = {}, {}
    for o, v in values.items():
        name = ORDER_LABELS[o]
        panels[name] = {label: v}
        notes[name] = {label: _note(sym[o])}
        if compare is not None and o in compare:
            panels[name]["init"] = compare[o]
            notes[name]["init"] = _note(sym_init[o])
    T = f"T = {cfg.temperature:g}" if cfg.temperature else "ReLU gates"
    fig, _ = plot_circuit_histograms(
        panels,
        notes=notes,
        title=f"uniformly sampled circuits of {n.description} ({T}, {cfg.samples} per panel)",
    )
    paths = [
        atomic_write(
            out / "circuit_histograms.png", lambda p: fig.savefig(p, format="png", dpi=120)
        )
    ]
    if moments is not None:
        ref = {"f": 2.0 * (moments.gain**2 / 2.0) ** np.asarray(moments.depths, float)}
        fig, _ = plot_assembly_moments(
            moments.depths,
            moments.widths,
            moments.mean,
            moments.mean_se,
            moments.second,
            moments.second_se,
            labels={
                "f": "f (order 0)",
                "grad": "gradient entries ∂f/∂W (order 1)",
                "hess": "Hessian entries ∂²f/∂W∂W' (order 2)",
            },
            references=ref if moments.temperature == 0 else None,
            title=(
                f"assemblies at He initialization, widths (n, …, n, 1), {moments.nets} nets × "
                f"{moments.inputs} inputs per point; dashed: E[f²] = 2c^(2L), c = g/√2 = "
                f"{moments.gain / math.sqrt(2):.3g}"
            ),
        )
        paths.append(
            atomic_write(
                out / "assembly_moments.png", lambda p: fig.savefig(p, format="png", dpi=120)
            )
        )
    return [str(p) for p in paths]
