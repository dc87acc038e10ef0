"""Figures as functions of data: each takes arrays (and optionally axes) and returns
``(fig, axes)``. Nothing here shows or saves; drivers choose filenames.

Figures are built on :class:`matplotlib.figure.Figure` directly (no pyplot global state), so
they render headless and in parallel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = [
    "plot_gate_statistics",
    "plot_layer_series",
    "plot_learning_curves",
    "plot_order_parameter",
    "plot_ridgeline",
    "plot_spectra",
]

# one colour per net, one line style per data split
_STYLES = {"train": "-", "test": "--"}


def _axes(ax: Sequence[Axes] | Axes | None, n: int, size: tuple[float, float]):
    if ax is not None:
        axes = list(np.atleast_1d(ax))
        return axes[0].figure, axes
    fig = Figure(figsize=size, layout="constrained")
    return fig, list(np.atleast_1d(fig.subplots(1, n)))


def plot_learning_curves(
    epoch: Sequence[float],
    loss: Mapping[str, Mapping[str, Sequence[float]]],
    acc: Mapping[str, Mapping[str, Sequence[float]]],
    *,
    title: str | None = None,
    ax: Sequence[Axes] | None = None,
):
    """Loss (log scale) and accuracy against epoch for several nets.

    Args:
        epoch: x values, shape ``(E,)``.
        loss: ``{net label: {"train": (E,), "test": (E,)}}``; either split may be absent.
        acc: same layout, accuracies in [0, 1].
        title: figure title.
        ax: two axes to draw on, else a new figure.

    Returns:
        ``(fig, [ax_loss, ax_acc])``.
    """
    fig, (ax_loss, ax_acc) = _axes(ax, 2, (10, 4))
    for i, (label, splits) in enumerate(loss.items()):
        for split, y in splits.items():
            y = np.asarray(y, dtype=float)
            ax_loss.plot(
                epoch,
                np.where(y > 0, y, np.nan),
                _STYLES.get(split, ":"),
                color=f"C{i}",
                label=f"{label} {split}",
            )
    for i, (label, splits) in enumerate(acc.items()):
        for split, y in splits.items():
            ax_acc.plot(epoch, y, _STYLES.get(split, ":"), color=f"C{i}", label=f"{label} {split}")
    ax_loss.set(yscale="log", xlabel="epoch", ylabel="loss (log scale; 0 not shown)")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", ylim=(min(0.45, ax_acc.get_ylim()[0]), 1.01))
    ax_acc.axhline(1.0, color="0.7", lw=0.8)
    for a in (ax_loss, ax_acc):
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig, [ax_loss, ax_acc]


def plot_gate_statistics(
    epoch: Sequence[float],
    entropy: np.ndarray,
    agreement: np.ndarray,
    *,
    title: str | None = None,
    ax: Sequence[Axes] | None = None,
):
    """Per-layer gate entropy (bits per gate) and agreement with the ReLU gates over epochs.

    Args:
        epoch: shape ``(E,)``.
        entropy: shape ``(E, L-1)``, mean bits per gate of each hidden layer.
        agreement: shape ``(E, L-1)``, fraction of sampled gates equal to the ReLU gates.

    Returns:
        ``(fig, [ax_entropy, ax_agreement])``.
    """
    fig, (ax_h, ax_a) = _axes(ax, 2, (10, 4))
    entropy, agreement = np.atleast_2d(entropy), np.atleast_2d(agreement)
    for l in range(entropy.shape[1]):
        ax_h.plot(epoch, entropy[:, l], color=f"C{l}", label=f"layer {l + 1}")
        ax_a.plot(epoch, agreement[:, l], color=f"C{l}", label=f"layer {l + 1}")
    ax_h.set(xlabel="epoch", ylabel="gate entropy (bits per gate)", ylim=(0, None))
    ax_a.set(xlabel="epoch", ylabel="agreement with ReLU gates", ylim=(None, 1.005))
    for a in (ax_h, ax_a):
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig, [ax_h, ax_a]


def plot_order_parameter(
    epoch: Sequence[float],
    series: Mapping[str, Sequence[float]],
    *,
    title: str | None = None,
    ax: Axes | None = None,
):
    r"""The plasticity order parameter :math:`\eta\|\nabla R\|^2` beside the loss, log scale
    (THEORY.md §4, fig. 4b). Zeros are not drawn (log axis).

    Args:
        epoch: shape ``(E,)``.
        series: ``{label: (E,)}``, e.g. ``{"training loss": ..., "η‖∇R‖²": ...}``.

    Returns:
        ``(fig, ax)``.
    """
    fig, (ax,) = _axes(ax, 1, (6, 4))
    for i, (label, y) in enumerate(series.items()):
        y = np.asarray(y, dtype=float)
        ax.plot(
            epoch,
            np.where(y > 0, y, np.nan),
            color=f"C{i}",
            label=label,
            ls="-" if i % 2 == 0 else "--",
        )
    ax.set(yscale="log", xlabel="epoch", ylabel="value (log scale; 0 not shown)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return fig, ax


# -- training-run figures (``umwelt plot``): ridgelines, per-layer series, spectra ----------------


def _grid(n: int, ncols: int | None, panel: tuple[float, float]):
    ncols = ncols or min(n, 4)
    nrows = -(-n // ncols)
    fig = Figure(figsize=(panel[0] * ncols, panel[1] * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for a in axes[n:]:
        a.set_axis_off()
    return fig, list(axes[:n])


def _smooth(counts: np.ndarray, sigma_bins: float) -> np.ndarray:
    if sigma_bins <= 0:
        return counts.astype(float)
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(counts.astype(float), sigma_bins, mode="constant")


def plot_ridgeline(
    edges: np.ndarray,
    hists: np.ndarray,
    epochs: Sequence[int],
    *,
    labels: Sequence[str],
    xlabel: str,
    smooth: float = 1.5,
    ncols: int | None = None,
    overlap: float = 1.8,
    title: str | None = None,
):
    r"""Ridgelines: per layer, one Gaussian-smoothed histogram per epoch, offset by epoch
    (the paper's fig. 3a for weights, fig. 4a for gradients).

    Each curve is a density (area 1 over the bins), smoothed with a Gaussian of ``smooth`` bins;
    within a panel all curves share one vertical scale, so that the tallest rises ``overlap``
    offsets. The earliest epoch is at the bottom. A dashed line marks 0, to judge symmetry. The
    x range is symmetric and covers the central 99.8% of every curve.

    Args:
        edges: bin edges ``(nb + 1,)``, common to every layer and epoch.
        hists: counts ``(E, L, nb)``.
        epochs: ``(E,)`` the epoch of each row.
        labels: ``(L,)`` panel titles.
        xlabel: the x-axis label (the bins' unit).

    Returns:
        ``(fig, axes)``, one axis per layer.
    """
    import matplotlib as mpl

    hists = np.asarray(hists, dtype=float)
    E, L, _ = hists.shape
    centers = 0.5 * (edges[:-1] + edges[1:])
    width = np.diff(edges)
    fig, axes = _grid(L, ncols, (3.2, 2.6 + 0.12 * E))
    cmap = mpl.colormaps["viridis"]
    for l, ax in enumerate(axes):
        dens = np.zeros((E, centers.size))
        reach = 0.0
        for e in range(E):
            total = hists[e, l].sum()
            if total > 0:
                dens[e] = _smooth(hists[e, l], smooth) / (total * width)
                cdf = np.cumsum(hists[e, l]) / total
                lo = centers[min(np.searchsorted(cdf, 0.001), centers.size - 1)]
                hi = centers[min(np.searchsorted(cdf, 0.999), centers.size - 1)]
                reach = max(reach, abs(lo), abs(hi))
        peak = dens.max()
        scale = overlap / peak if peak > 0 else 1.0
        for e in range(E):
            color = cmap(e / max(E - 1, 1))
            y = e + dens[e] * scale
            ax.fill_between(centers, e, y, color=color, alpha=0.85, lw=0, zorder=2 * (E - e))
            ax.plot(centers, y, color="k", lw=0.6, zorder=2 * (E - e) + 1)
        ax.axvline(0.0, color="0.3", lw=0.7, ls="--", zorder=3 * E)
        reach = max(reach * 1.1, 3.0 * float(np.max(width)), 1e-12)
        ax.set_xlim(-reach, reach)
        ax.set_ylim(-0.2, E - 1 + overlap + 0.3)
        ax.set_yticks(np.arange(E), [str(ep) for ep in epochs], fontsize=7)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_title(labels[l], fontsize=8)
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
    for ax in axes[:: ncols or min(L, 4)]:
        ax.set_ylabel("epoch")
    for ax in axes[-(ncols or min(L, 4)) :]:
        ax.set_xlabel(xlabel, fontsize=8)
    if title:
        fig.suptitle(title)
    return fig, axes


def plot_layer_series(
    epochs: Sequence[float],
    panels: Mapping[str, np.ndarray],
    *,
    labels: Sequence[str],
    reference: Mapping[str, float] | None = None,
    title: str | None = None,
):
    """Per-layer scalars over epochs, one panel per quantity, one line per layer.

    Args:
        epochs: ``(E,)``.
        panels: ``{y label: (E, L) values}``.
        labels: ``(L,)`` layer names for the legend.
        reference: ``{y label: value}`` drawn as a dashed horizontal line (e.g. 0.5, 0).

    Layers whose values are all NaN are left out.

    Returns:
        ``(fig, axes)``.
    """
    import matplotlib as mpl

    n = len(panels)
    fig = Figure(figsize=(4.6 * n + 2.4, 3.8), layout="constrained")
    axes = list(np.atleast_1d(fig.subplots(1, n)))
    cmap = mpl.colormaps["plasma"]
    for ax, (ylabel, values) in zip(axes, panels.items()):
        values = np.atleast_2d(np.asarray(values, dtype=float))
        L = values.shape[1]
        for l in range(L):
            if np.all(np.isnan(values[:, l])):
                continue  # undefined for this layer (e.g. one neuron): no line, no legend entry
            ax.plot(
                epochs,
                values[:, l],
                "o-",
                ms=3,
                lw=1,
                color=cmap(0.85 * l / max(L - 1, 1)),
                label=labels[l],
            )
        if reference and ylabel in reference:
            ax.axhline(reference[ylabel], color="0.4", ls="--", lw=0.8)
        ax.set(xlabel="epoch", ylabel=ylabel)
        ax.grid(alpha=0.3)
    handles, names = axes[-1].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside right center", fontsize=7)
    if title:
        fig.suptitle(title)
    return fig, axes


def plot_spectra(
    spectra: Sequence[Sequence[np.ndarray]],
    epochs: Sequence[int],
    *,
    labels: Sequence[str],
    bands: Sequence[tuple[float, float] | None] | None = None,
    ylabel: str = "eigenvalue",
    ncols: int | None = None,
    title: str | None = None,
):
    r"""Per layer, the sorted eigenvalues at each epoch against their rank (log y axis).

    A flat curve is an isotropic spectrum; eigenvalues that rise above the rest over training
    are correlated directions (Fok et al.'s broken symmetries). ``bands[l] = (lo, hi)`` shades a
    reference range, e.g. the Marchenko–Pastur bulk of independent Gaussian rows (with
    ``lo <= 0`` only the upper edge is drawn, dashed). Eigenvalues below ``1e-10`` times the
    largest (numerically zero, e.g. beyond the rank) are not drawn.

    Args:
        spectra: ``spectra[e][l]``: eigenvalues of layer ``l`` at epoch ``e``, largest first.
        epochs: ``(E,)``.
        labels: ``(L,)`` panel titles.

    Returns:
        ``(fig, axes)``.
    """
    import matplotlib as mpl

    E, L = len(spectra), len(labels)
    fig, axes = _grid(L, ncols, (3.2, 2.6))
    cmap = mpl.colormaps["viridis"]
    for l, ax in enumerate(axes):
        if all(np.size(spectra[e][l]) < 2 for e in range(E)):
            ax.set_title(labels[l], fontsize=8)
            ax.text(
                0.5,
                0.5,
                "one neuron:\nno correlations",
                ha="center",
                va="center",
                transform=ax.transAxes,
                fontsize=8,
                color="0.4",
            )
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        for e in range(E):
            lam = np.asarray(spectra[e][l], dtype=float)
            rank = np.arange(1, lam.size + 1)
            floor = 1e-10 * np.max(lam, initial=0.0)
            ax.plot(
                rank,
                np.where(lam > floor, lam, np.nan),
                color=cmap(e / max(E - 1, 1)),
                lw=1,
                label=f"epoch {epochs[e]}",
            )
        if bands is not None and bands[l] is not None:
            lo, hi = bands[l]
            if lo > 0:
                ax.axhspan(lo, hi, color="0.85", zorder=0)
            else:
                ax.axhline(hi, color="0.5", ls="--", lw=0.8, zorder=0)
        ax.set_yscale("log")
        ax.set_title(labels[l], fontsize=8)
        ax.tick_params(which="both", labelsize=7)
        ax.grid(alpha=0.3, which="both")
    nc = ncols or min(L, 4)
    for ax in axes[::nc]:
        ax.set_ylabel(ylabel, fontsize=8)
    for ax in axes[-nc:]:
        ax.set_xlabel("rank", fontsize=8)
    axes[0].legend(fontsize=6)
    if title:
        fig.suptitle(title)
    return fig, axes


# -- basis circuits (issue 3): circuit symmetry, assembly moments ---------------------------------

__all__ += ["plot_assembly_moments", "plot_circuit_histograms"]


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
    fig, axes = _axes(ax, n, (4.6 * n, 4.2))
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


# -- Hessian through training (issue 5): figs. 6a–c, 7a–c, 8a -------------------------------------

__all__ += ["plot_hessian_entries", "plot_hessian_means", "plot_hessian_spectrum"]


def _symlog_axis(ax: Axes, c: float, bound: float, axis: str = "x") -> None:
    r"""Put the axis on :math:`u = \mathrm{sign}(\lambda)\ln(1 + |\lambda|/c)` (the scale the
    Hessian's density grid is even in), ticks at 0 and at ±powers of ten in ``[c, bound]``."""

    def fwd(v):
        v = np.asarray(v, dtype=float)
        return np.sign(v) * np.log1p(np.abs(v) / c)

    def inv(u):
        u = np.asarray(u, dtype=float)
        return np.sign(u) * c * np.expm1(np.abs(u))

    lo, hi = int(np.ceil(np.log10(c))), int(np.floor(np.log10(bound)))
    step = max(1, (hi - lo + 1) // 4)  # at most ~5 ticks per side
    pos = [10.0**k for k in range(hi, lo - 1, -step)][::-1]
    ticks = [-p for p in pos[::-1]] + [0.0] + pos
    labels = [
        ("0" if t == 0 else f"{t:.0e}".replace("e+0", "e").replace("e-0", "e-")) for t in ticks
    ]
    if axis == "x":
        ax.set_xscale("function", functions=(fwd, inv))
        ax.set_xticks(ticks, labels, fontsize=7)
        ax.set_xlim(-bound, bound)
    else:
        ax.set_yscale("function", functions=(fwd, inv))
        ax.set_yticks(ticks, labels, fontsize=7)


def _asinh_axis(ax: Axes, reach: float) -> None:
    """x axis even in ``asinh(x)`` (linear within ±1, logarithmic beyond) on ``[-reach, reach]``,
    ticks at 0, ±1, ±10, ..."""
    ax.set_xscale("function", functions=(np.arcsinh, np.sinh))
    top = max(int(np.floor(np.log10(max(reach, 1.0)))), 0)
    pos = [10.0**k for k in range(0, top + 1)]
    ticks = [-p for p in pos[::-1]] + [0.0] + pos
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks], fontsize=7)
    ax.set_xlim(-reach, reach)


def _asinh_densities(edges: np.ndarray, hists: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Bin centres, densities per unit of ``asinh(x)`` ``(E, nb)``, and the symmetric reach that
    covers 99.9% of every histogram."""
    edges = np.asarray(edges, dtype=float)
    t = np.arcsinh(edges)
    centers = np.sinh(0.5 * (t[:-1] + t[1:]))
    dt = np.diff(t)
    dens = np.zeros(hists.shape)
    reach = 1.0
    for e, h in enumerate(hists):
        total = h.sum()
        if total > 0:
            dens[e] = h / (total * dt)
            cdf = np.cumsum(h) / total
            lo = abs(edges[min(np.searchsorted(cdf, 0.0005), len(edges) - 1)])
            hi = abs(edges[min(np.searchsorted(cdf, 0.9995) + 1, len(edges) - 1)])
            reach = max(reach, lo, hi)
    return centers, dens, reach


def _epoch_colors(n: int):
    import matplotlib as mpl

    cmap = mpl.colormaps["viridis"]
    return [cmap(0.9 * e / max(n - 1, 1)) for e in range(n)]


def plot_hessian_spectrum(
    grid: np.ndarray,
    densities: np.ndarray,
    epochs: Sequence[int],
    *,
    c: float,
    lo: np.ndarray | None = None,
    hi: np.ndarray | None = None,
    series: Mapping[str, Mapping[str, tuple[Sequence[float], Sequence[float] | None]]]
    | None = None,
    title: str | None = None,
):
    r"""Fig. 8a: Hessian eigenvalue densities over epochs on symmetric-log axes, with bands.

    The x axis is :math:`u = \mathrm{sign}(\lambda)\ln(1 + |\lambda|/c)` (linear within
    :math:`|\lambda| \lesssim c`, logarithmic beyond), labelled in :math:`\lambda`; the y axis
    is the density :math:`\rho(\lambda)` on a log scale (down to :math:`10^{-5}` of its peak),
    so the bulk near 0 and the outliers of every epoch show on one figure. A symmetric spectrum
    is mirror symmetric about the dashed line at 0.

    Args:
        grid: ``(G,)`` eigenvalues :math:`\lambda`, symmetric about 0.
        densities: ``(E, G)`` densities per unit :math:`\lambda` (mass 1).
        epochs: ``(E,)``.
        c: the linear scale of the symmetric-log axis.
        lo, hi: ``(E, G)`` error band (e.g. 5th–95th bootstrap percentiles), same units.
        series: optional further panels against epoch: ``{y label: {line label: (values (E,),
            standard errors (E,) or None)}}``, e.g. extremes, negative mass, asymmetry.

    Returns:
        ``(fig, axes)``: the density axis first.
    """
    grid = np.asarray(grid, dtype=float)
    dens = np.atleast_2d(np.asarray(densities, dtype=float))
    E = dens.shape[0]
    extra = len(series or {})
    fig = Figure(figsize=(7.5 + 3.6 * extra, 4.4), layout="constrained")
    axes = list(np.atleast_1d(fig.subplots(1, 1 + extra, width_ratios=[2.1] + [1] * extra)))
    ax = axes[0]
    peaks = np.nanmax(dens, axis=1) if dens.size else np.ones(1)
    top = float(np.max(peaks, initial=0.0))
    low = peaks[peaks > 0]
    floor = 1e-5 * float(low.min()) if low.size else 1e-12  # 5 decades below the lowest peak
    colors = _epoch_colors(E)
    for e in range(E):
        y = dens[e]
        if lo is not None and hi is not None:
            ax.fill_between(
                grid,
                np.maximum(np.asarray(lo[e], dtype=float), floor),
                np.maximum(np.asarray(hi[e], dtype=float), floor),
                color=colors[e],
                alpha=0.25,
                lw=0,
            )
        ax.plot(
            grid,
            np.where(y > floor, y, np.nan),
            color=colors[e],
            lw=1.2,
            label=f"epoch {epochs[e]}",
        )
    ax.axvline(0.0, color="0.4", lw=0.7, ls="--")
    bound = float(np.max(np.abs(grid)))
    _symlog_axis(ax, c, bound)
    ax.set_yscale("log")
    ax.set_ylim(floor, top * 3)
    ax.set(
        xlabel=f"eigenvalue λ (symmetric log; linear within ±{c:.1g})",
        ylabel="eigenvalue density ρ(λ) (log scale)",
    )
    ax.grid(alpha=0.3, which="major")
    ax.legend(fontsize=7, ncols=2 if E > 6 else 1)
    for a, (ylabel, lines) in zip(axes[1:], (series or {}).items()):
        for i, (label, (vals, se)) in enumerate(lines.items()):
            vals = np.asarray(vals, dtype=float)
            a.errorbar(
                epochs,
                vals,
                yerr=None if se is None else np.asarray(se, dtype=float),
                fmt="o-",
                ms=3,
                lw=1,
                capsize=2,
                color=f"C{i}",
                label=label,
            )
        if any(np.nanmin(np.asarray(v, dtype=float), initial=0.0) < 0 for v, _ in lines.values()):
            a.axhline(0.0, color="0.5", lw=0.7, ls="--")  # a sign to judge
        a.set(xlabel="epoch", ylabel=ylabel)
        a.grid(alpha=0.3)
        a.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return fig, axes


def plot_hessian_entries(
    edges: np.ndarray,
    hists: np.ndarray,
    epochs: Sequence[int],
    corr: Mapping[str, np.ndarray],
    *,
    overlap: float = 1.6,
    title: str | None = None,
):
    r"""Figs. 6a–c: distributions of sampled Hessian entries normalized by their bootstrap
    standard deviation, over epochs, and correlation-coefficient sub-matrices between entries.

    (a) Ridgelines, earliest epoch at the bottom: per epoch the density of
    :math:`H^{(b)}_{jk}/\mathrm{std}_{jk}` pooled over bootstrap samples and live entries, on
    an ``asinh`` axis (linear within ±1, logarithmic beyond; densities per unit of ``asinh``),
    with the standard normal (grey, dashed) for reference; symmetric about the dashed 0 when the
    entries fluctuate symmetrically. (b), (c) the correlation matrices (``RdBu``, −1…1), e.g. at
    the first and the last epoch.

    Args:
        edges: ``(nb + 1,)`` bin edges.
        hists: ``(E, nb)`` counts.
        epochs: ``(E,)``.
        corr: ``{panel title: (s, s) correlation matrix}`` (NaN shown blank).

    Returns:
        ``(fig, axes)``.
    """
    hists = np.atleast_2d(np.asarray(hists, dtype=float))
    E = hists.shape[0]
    nc = len(corr)
    fig = Figure(figsize=(4.2 + 3.9 * nc, 4.6), layout="constrained")
    axes = list(np.atleast_1d(fig.subplots(1, 1 + nc, width_ratios=[1.15] + [1] * nc)))
    ax = axes[0]
    centers, dens, reach = _asinh_densities(edges, hists)
    # N(0, 1) per unit of asinh(x): φ(x) cosh(asinh x) = φ(x) √(1 + x²)
    ref = np.exp(-0.5 * centers**2) / np.sqrt(2 * np.pi) * np.sqrt(1 + centers**2)
    peak = max(float(dens.max()) if dens.size else 0.0, float(ref.max()))
    scale = overlap / peak
    colors = _epoch_colors(E)
    for e in range(E):
        y = e + dens[e] * scale
        z = 2 * (E - e)
        ax.fill_between(centers, e, y, color=colors[e], alpha=0.85, lw=0, zorder=z)
        ax.plot(centers, y, color="k", lw=0.6, zorder=z + 1)
        ax.plot(centers, e + ref * scale, color="0.35", lw=0.7, ls="--", zorder=z + 1)
    ax.axvline(0.0, color="0.3", lw=0.7, ls="--", zorder=3 * E + 2)
    ax.set_yticks(np.arange(E), [str(ep) for ep in epochs], fontsize=7)
    ax.set_ylim(-0.2, E - 1 + overlap + 0.3)
    _asinh_axis(ax, reach)
    ax.set(xlabel="H⁽ᵇ⁾ⱼₖ / std(Hⱼₖ)  (asinh scale; bootstrap over examples)", ylabel="epoch")
    ax.set_title("(a) normalized entries (grey: N(0, 1))", fontsize=9)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    image = None
    for i, (a, (name, M)) in enumerate(zip(axes[1:], corr.items())):
        M = np.asarray(M, dtype=float)
        image = a.imshow(M, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
        a.set_title(f"({chr(ord('b') + i)}) {name}", fontsize=9)
        a.set(xlabel="entry", ylabel="entry")
    if image is not None:
        fig.colorbar(image, ax=axes[1:], shrink=0.8, label="correlation coefficient")
    if title:
        fig.suptitle(title)
    return fig, axes


def plot_hessian_means(
    edges: np.ndarray,
    hists: np.ndarray,
    epochs: Sequence[int],
    frac_below: Sequence[float] | Mapping[str, Sequence[float]],
    exponents: Mapping[str, Sequence[float]],
    *,
    threshold: float = 0.15,
    reference: float = 0.95,
    null: float | None = None,
    title: str | None = None,
):
    r"""Figs. 7a–c: concentration of the sampled entries' means, and coupling exponents.

    (a) Per epoch the distribution of :math:`H_{jk}/\mathrm{std}_{jk}` (signed; on an ``asinh``
    axis, densities per unit of ``asinh``), the band :math:`|\cdot| <` ``threshold`` shaded;
    (b) the fraction of entries inside the band over epochs, one curve per normalization
    (dashed: ``reference``, the paper's 95%; dotted: ``null``, e.g. the fraction that entries
    whose expectation is exactly 0 would give); (c) exponents of :math:`N` over epochs — e.g.
    the coupling-set size :math:`\log \overline{n_\mathrm{corr}} / \log N` and the numbers of
    entries with significant skewness or kurtosis (gaps: a count of 0).

    Args:
        edges: ``(nb + 1,)`` bin edges of mean/std.
        hists: ``(E, nb)`` counts.
        epochs: ``(E,)``.
        frac_below: ``(E,)``, or ``{label: (E,)}`` for several normalizations.
        exponents: ``{label: (E,)}``.

    Returns:
        ``(fig, [ax_a, ax_b, ax_c])``.
    """
    hists = np.atleast_2d(np.asarray(hists, dtype=float))
    E = hists.shape[0]
    fig = Figure(figsize=(14, 4.2), layout="constrained")
    ax_a, ax_b, ax_c = fig.subplots(1, 3)
    centers, dens, reach = _asinh_densities(edges, hists)
    ax_a.axvspan(-threshold, threshold, color="0.8", zorder=0, label=f"|mean|/std < {threshold:g}")
    colors = _epoch_colors(E)
    for e in range(E):
        if hists[e].sum() > 0:
            ax_a.plot(centers, dens[e], color=colors[e], lw=1.1, label=f"epoch {epochs[e]}")
    _asinh_axis(ax_a, reach)
    ax_a.set(xlabel="Hⱼₖ / std(Hⱼₖ)  (asinh scale)", ylabel="density per unit of asinh")
    ax_a.set_title("(a) mean over bootstrap std", fontsize=9)
    ax_a.legend(fontsize=7, ncols=2 if E > 6 else 1)
    if not isinstance(frac_below, Mapping):
        frac_below = {f"|mean|/std < {threshold:g}": frac_below}
    low = reference if null is None else min(reference, null)
    for i, (label, vals) in enumerate(frac_below.items()):
        f = np.asarray(vals, dtype=float)
        ax_b.plot(epochs, f, "o-", ms=4, color=f"C{i}", label=label)
        low = min(low, np.nanmin(f)) if np.isfinite(f).any() else low
    ax_b.axhline(reference, color="0.4", ls="--", lw=0.8, label=f"{reference:.0%}")
    if null is not None:
        ax_b.axhline(null, color="0.4", ls=":", lw=0.8, label=f"all entries 0 in mean: {null:.1%}")
    ax_b.set(xlabel="epoch", ylabel="fraction of entries", ylim=(max(low - 0.05, 0), 1.005))
    ax_b.set_title("(b) concentration of means", fontsize=9)
    ax_b.legend(fontsize=7)
    for i, (label, vals) in enumerate(exponents.items()):
        ax_c.plot(epochs, np.asarray(vals, dtype=float), "o-", ms=4, color=f"C{i}", label=label)
    ax_c.set(xlabel="epoch", ylabel="exponent of N  (count = N^exponent)")
    ax_c.set_title("(c) coupling set size, skewness, kurtosis", fontsize=9)
    ax_c.legend(fontsize=7)
    for a in (ax_a, ax_b, ax_c):
        a.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig, [ax_a, ax_b, ax_c]
