r"""Figures of basis circuits: the sampled circuit values' symmetry about 0 (the paper's fig. 3b,
eq. 14) and the assemblies' moments against depth at initialization and against epoch through
training (eq. 20); see :mod:`umwelt.circuits`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from umwelt.plotting._common import axes_row


def plot_circuit_histograms(
    panels: Mapping[str, Mapping[str, np.ndarray]],
    *,
    notes: Mapping[str, Mapping[str, str]] | None = None,
    bins: int = 51,
    clip: float = 0.995,
    title: str | None = None,
    ax: Sequence[Axes] | None = None,
):
    r"""Histograms of sampled circuit values, one panel per order (the paper's fig. 3b).

    Each series is drawn as the density of its non-zero values in units of their RMS, with
    the density of the negated values (its mirror image) as a dashed line: a symmetric law
    puts the two on top of each other. The x range is symmetric and covers the fraction
    ``clip`` of every series' ``|v|``; the y axis is logarithmic, to show the tails. Exact
    zeros (circuits through a closed gate) are left out and their share is written in the
    panel.

    Args:
        panels: ``{panel title: {series label: values (n,)}}``, e.g. ``{"ψ": {"trained": …,
            "init": …}, "Ω⁽¹⁾": …, "Ω⁽²⁾": …}``.
        notes: ``{panel title: {series label: text}}`` written under the series' zero share
            (e.g. the symmetry statistics).
        bins: number of bins (odd: a bin centred on 0).
        clip: quantile of ``|v|/RMS`` the x range covers.
        title: figure title.
        ax: one axis per panel, else a new figure.

    Returns:
        ``(fig, axes)``.
    """
    n = len(panels)
    fig, axes = axes_row(ax, n, (4.6 * n, 4.2))
    for a, (name, series) in zip(axes, panels.items()):
        scaled = {}
        for label, v in series.items():
            v = np.asarray(v, dtype=float).ravel()
            nz = v[v != 0]
            rms = float(np.sqrt(np.mean(nz * nz))) if nz.size else 1.0
            scaled[label] = (nz / rms, 1.0 - nz.size / max(v.size, 1), rms)
        hi = max(
            (float(np.quantile(np.abs(u), clip)) for u, _, _ in scaled.values() if u.size),
            default=1.0,
        )
        hi = hi if hi > 0 else 1.0
        edges = np.linspace(-hi, hi, bins + 1)
        lines = []
        lo_d, hi_d = np.inf, 0.0
        for i, (label, (u, zero, rms)) in enumerate(scaled.items()):
            color = f"C{i}"
            if u.size:
                d = np.histogram(u, bins=edges)[0] / (u.size * np.diff(edges))
                m = np.histogram(-u, bins=edges)[0] / (u.size * np.diff(edges))
                a.stairs(d, edges, fill=True, alpha=0.3, color=color, label=label)
                a.stairs(d, edges, color=color, lw=1.0)
                a.stairs(
                    m, edges, color="black" if i == 0 else color, ls="--", lw=0.9,
                    label=f"{label}, mirrored (−v)",
                )  # fmt: skip
                pos = np.concatenate([d[d > 0], m[m > 0]])
                if pos.size:
                    lo_d, hi_d = min(lo_d, pos.min()), max(hi_d, pos.max())
            text = f"{label}: RMS {rms:.3g}, zeros {zero:.1%}"
            if notes and name in notes and label in notes[name]:
                text += "\n" + notes[name][label]
            lines.append(text)
        a.axvline(0, color="0.5", lw=0.8, ls=":")
        a.set_yscale("log")
        if hi_d > 0:  # room above the peak for the text
            a.set_ylim(lo_d / 2, hi_d * 10 ** (0.9 + 0.55 * len(lines)))
        a.set(xlabel="value / RMS of the non-zero values", ylabel="density", xlim=(-hi, hi))
        a.set_title(name)
        a.text(
            0.02, 0.98, "\n".join(lines), transform=a.transAxes, va="top", fontsize=7,
            bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none"},
        )  # fmt: skip
        a.grid(alpha=0.3)
    handles, names = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, names, loc="outside lower center", ncols=len(handles), fontsize=8)
    if title:
        fig.suptitle(title)
    return fig, axes


def plot_assembly_moments(
    depths: Sequence[int],
    widths: Sequence[int],
    mean: Mapping[str, np.ndarray],
    mean_se: Mapping[str, np.ndarray],
    second: Mapping[str, np.ndarray],
    second_se: Mapping[str, np.ndarray],
    *,
    labels: Mapping[str, str] | None = None,
    references: Mapping[str, np.ndarray] | None = None,
    title: str | None = None,
):
    r"""Mean and second moment of the assemblies against depth, one line per width
    (to set beside the paper's eq. 20).

    Top row: the mean divided by the RMS (:math:`\mathbb E[a]/\sqrt{\mathbb E[a^2]}`) with a
    band of ±2 standard errors, against 0. Bottom row: the second moment :math:`\mathbb E[a^2]`
    (log scale) with ±2 standard errors; ``references[k]`` (``(D,)``) is drawn dashed.

    Args:
        depths: ``(D,)``; widths: ``(W,)``.
        mean, mean_se, second, second_se: ``{order: (D, W)}`` (NaN: not defined).
        labels: ``{order: axis title}``.
        references: ``{order: (D,)}`` reference second moments.

    Returns:
        ``(fig, axes)`` with ``axes`` a ``(2, K)`` array.
    """
    keys = list(mean)
    K = len(keys)
    fig = Figure(figsize=(4.2 * K, 6.4), layout="constrained")
    axes = np.atleast_2d(fig.subplots(2, K, squeeze=False))
    d = np.asarray(depths, dtype=float)
    for k, key in enumerate(keys):
        top, bot = axes[0, k], axes[1, k]
        m, ms = np.asarray(mean[key], float), np.asarray(mean_se[key], float)
        s, ss = np.asarray(second[key], float), np.asarray(second_se[key], float)
        for j, n in enumerate(widths):
            rms = np.sqrt(s[:, j])
            with np.errstate(invalid="ignore", divide="ignore"):
                r, rs = m[:, j] / rms, ms[:, j] / rms
            top.plot(d, r, "o-", color=f"C{j}", ms=3, label=f"n = {n}")
            top.fill_between(d, r - 2 * rs, r + 2 * rs, color=f"C{j}", alpha=0.15, lw=0)
            bot.errorbar(
                d,
                s[:, j],
                yerr=2 * ss[:, j],
                fmt="o-",
                color=f"C{j}",
                ms=3,
                capsize=2,
                label=f"n = {n}",
            )
        if references and key in references:
            bot.plot(d, references[key], "k--", lw=1)
        top.axhline(0, color="0.3", lw=0.8)
        name = labels.get(key, key) if labels else key
        top.set(title=name, ylabel="mean / RMS (±2 SE)")
        bot.set(xlabel="depth L (weight layers)", ylabel="second moment (±2 SE)", yscale="log")
        for a in (top, bot):
            a.grid(alpha=0.3, which="both")
            a.set_xticks(d)
    axes[0, 0].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return fig, axes


def plot_assembly_moments_training(
    epochs: Sequence[int],
    series: Mapping[str, Mapping[str, Mapping[str, np.ndarray]]],
    *,
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
):
    r"""Mean and second moment of the assemblies against epoch, beside eq. 20's prediction.

    One colour per series (e.g. the trained net and the same net with a planted broken
    symmetry). Top row: the mean over inputs divided by the RMS, :math:`\mathbb E[a] /
    \sqrt{\mathbb E[a^2]}`, with a band of ±2 standard errors, and the predicted mean (the
    :math:`\mu` term) divided by the same RMS, dashed. Bottom row: the second moment
    :math:`\mathbb E[a^2]` (log scale) with ±2 standard errors and its prediction dashed, where
    there is one (finite). One legend, under the panels.

    Args:
        epochs: ``(E,)``.
        series: ``{label: {field: {order: (E,)}}}`` with fields ``mean``, ``mean_se``,
            ``second``, ``second_se``, ``predicted_mean``, ``predicted_second`` (NaN: not
            defined), as :func:`umwelt.circuits.moments_series` returns them.
        labels: ``{order: axis title}``.
        title: figure title.

    Returns:
        ``(fig, axes)`` with ``axes`` a ``(2, K)`` array, one column per order.
    """
    from matplotlib.lines import Line2D

    first = next(iter(series.values()))
    keys = list(first["mean"])
    K = len(keys)
    fig = Figure(figsize=(4.4 * K, 6.8), layout="constrained")
    axes = np.atleast_2d(fig.subplots(2, K, squeeze=False))
    e = np.asarray(epochs, dtype=float)
    for k, key in enumerate(keys):
        top, bot = axes[0, k], axes[1, k]
        for j, s in enumerate(series.values()):
            color = f"C{j}"
            m, ms = np.asarray(s["mean"][key], float), np.asarray(s["mean_se"][key], float)
            q, qs = np.asarray(s["second"][key], float), np.asarray(s["second_se"][key], float)
            pm = np.asarray(s["predicted_mean"][key], float)
            pq = np.asarray(s["predicted_second"][key], float)
            with np.errstate(invalid="ignore", divide="ignore"):
                rms = np.sqrt(q)
                r, rs, pr = m / rms, ms / rms, pm / rms
            top.plot(e, r, "o-", color=color, ms=3)
            top.fill_between(e, r - 2 * rs, r + 2 * rs, color=color, alpha=0.15, lw=0)
            top.plot(e, pr, "--", color=color, lw=1.2)
            bot.errorbar(e, q, yerr=2 * qs, fmt="o-", color=color, ms=3, capsize=2)
            if np.any(np.isfinite(pq)):
                bot.plot(e, pq, "--", color=color, lw=1.2)
        top.axhline(0, color="0.3", lw=0.8)
        name = labels.get(key, key) if labels else key
        top.set(title=name, ylabel="mean / RMS (±2 SE)")
        bot.set(xlabel="epoch", ylabel="second moment (±2 SE)", yscale="log")
        for a in (top, bot):
            a.grid(alpha=0.3, which="both")
    handles = [
        Line2D([], [], color=f"C{j}", marker="o", ms=3, label=label)
        for j, label in enumerate(series)
    ]
    handles.append(
        Line2D([], [], color="0.3", ls="--", label="eq. 20: mean, the μ term; f², 2⟨x²⟩∏c²")
    )
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8)
    if title:
        fig.suptitle(title)
    return fig, axes
