r"""Figures of a training run: learning curves and the order parameter (every epoch), gate
statistics, and per layer at the observed epochs the weight and gradient ridgelines, scalar
series and within-layer weight-correlation spectra (THEORY.md §4: figs. 3a, 4a, 4b, 8b; Fok et
al.'s broken symmetries).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from umwelt.plotting._common import (
    STYLES,
    axes_row,
    color_ramp,
    finish,
    grid_edges,
    loggable,
    panel_grid,
    ridgelines,
)

# -- every epoch (``umwelt simulate``, ``umwelt train``): figs. 4b, 8b, gates --------------------


#: the colour of each phase in the strips (umwelt.phases.PHASES)
PHASE_COLORS: dict[str, str] = {
    "plasticity": "tab:green",
    "frustration": "tab:red",
    "converged": "tab:blue",
    "undetermined": "0.85",
}


def plot_phase_strip(
    ax: Axes, epoch: Sequence[float], phases: Mapping[str, Sequence[str | None]]
) -> Axes:
    """Coloured bands, one row per net, of each epoch's phase (THEORY.md §5): a strip to put
    under curves against epoch. A ``None`` phase (a run before phases existed) is left blank.

    Args:
        ax: the (short) axes to draw on; its x axis is the epochs.
        epoch: shape ``(E,)``.
        phases: ``{net label: (E,) phase names}``.

    Returns:
        ``ax``.
    """
    e = np.asarray(epoch, dtype=float)
    half = np.diff(e).min() / 2 if e.size > 1 else 0.5
    for row, labels in enumerate(phases.values()):
        for x, p in zip(e, labels, strict=True):
            if p is not None:
                ax.axvspan(x - half, x + half, ymin=row / len(phases), ymax=(row + 1) / len(phases),
                           color=PHASE_COLORS.get(p, "0.5"), lw=0)  # fmt: skip
    ax.set(ylim=(0, len(phases)), yticks=np.arange(len(phases)) + 0.5)
    ax.set_xlim(e[0] - half, e[-1] + half)
    ax.set_yticklabels(list(phases), fontsize=7)
    ax.tick_params(axis="x", labelsize=7)
    seen = {p for labels in phases.values() for p in labels if p is not None}
    handles = [Patch(color=c, label=p) for p, c in PHASE_COLORS.items() if p in seen]
    if handles:
        ax.legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5),
                  frameon=False, title="phase", title_fontsize=7)  # fmt: skip
    return ax


def plot_learning_curves(
    epoch: Sequence[float],
    loss: Mapping[str, Mapping[str, Sequence[float]]],
    acc: Mapping[str, Mapping[str, Sequence[float]]],
    *,
    phases: Mapping[str, Sequence[str | None]] | None = None,
    title: str | None = None,
    ax: Sequence[Axes] | None = None,
):
    """Loss (log scale) and accuracy against epoch for several nets, with each net's phase as a
    strip under the loss panel (:func:`plot_phase_strip`) when ``phases`` are given.

    Args:
        epoch: x values, shape ``(E,)``.
        loss: ``{net label: {"train": (E,), "test": (E,)}}``; either split may be absent.
        acc: same layout, accuracies in [0, 1].
        phases: ``{net label: (E,) phase names}`` (a new figure only).
        title: figure title.
        ax: two axes to draw on, else a new figure.

    Returns:
        ``(fig, [ax_loss, ax_acc])``, and the strip's axes last when drawn.
    """
    strip = None
    if phases and ax is None:
        fig = Figure(figsize=(10, 4.6 + 0.15 * len(phases)), layout="constrained")
        grid = fig.add_gridspec(2, 2, height_ratios=(1, 0.04 + 0.04 * len(phases)))
        ax_loss, ax_acc = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
        strip = fig.add_subplot(grid[1, 0], sharex=ax_loss)
    else:
        fig, (ax_loss, ax_acc) = axes_row(ax, 2, (10, 4))
    for i, (label, splits) in enumerate(loss.items()):
        for split, y in splits.items():
            ax_loss.plot(
                epoch,
                loggable(y),
                STYLES.get(split, ":"),
                color=f"C{i}",
                label=f"{label} {split}",
            )
    for i, (label, splits) in enumerate(acc.items()):
        for split, y in splits.items():
            ax_acc.plot(epoch, y, STYLES.get(split, ":"), color=f"C{i}", label=f"{label} {split}")
    ax_loss.set(yscale="log", xlabel="epoch", ylabel="loss (log scale; 0 not shown)")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", ylim=(min(0.45, ax_acc.get_ylim()[0]), 1.01))
    ax_acc.axhline(1.0, color="0.7", lw=0.8)
    fig, axes = finish(fig, [ax_loss, ax_acc], title)
    if strip is not None:
        plot_phase_strip(strip, epoch, phases)
        ax_loss.tick_params(labelbottom=False)
        ax_loss.set_xlabel("")
        strip.set_xlabel("epoch (phase: umwelt.phases)", fontsize=8)
        axes.append(strip)
    return fig, axes


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
    fig, (ax_h, ax_a) = axes_row(ax, 2, (10, 4))
    entropy, agreement = np.atleast_2d(entropy), np.atleast_2d(agreement)
    for l in range(entropy.shape[1]):
        ax_h.plot(epoch, entropy[:, l], color=f"C{l}", label=f"layer {l + 1}")
        ax_a.plot(epoch, agreement[:, l], color=f"C{l}", label=f"layer {l + 1}")
    ax_h.set(xlabel="epoch", ylabel="gate entropy (bits per gate)", ylim=(0, None))
    ax_a.set(xlabel="epoch", ylabel="agreement with ReLU gates", ylim=(None, 1.005))
    return finish(fig, [ax_h, ax_a], title)


def plot_order_parameter(
    epoch: Sequence[float],
    series: Mapping[str, Sequence[float]],
    *,
    ratio: tuple[str, str] | None = None,
    split_at: float | None = None,
    title: str | None = None,
    ax: Axes | None = None,
):
    r"""The plasticity order parameter :math:`\eta\|\nabla R\|^2` beside the loss, log scale
    (THEORY.md §4, fig. 4b). Zeros are not drawn (log axis).

    The paper's layout: with ``split_at`` (its 150) and a run longer than that, the epochs up
    to ``split_at`` on a log scale and the rest beside them on a linear one (where both have
    fallen to near 0); with ``ratio = (a, b)`` a panel below with series ``a`` / ``b`` over
    every epoch (the order parameter against the loss: "an order of magnitude below it").

    Args:
        epoch: shape ``(E,)``.
        series: ``{label: (E,)}``, e.g. ``{"training loss": ..., "η‖∇R‖²": ...}``.
        ratio: the labels of the numerator and denominator of the ratio panel.
        split_at: the last epoch of the log-scale panel.

    Returns:
        ``(fig, ax)`` without ``ratio`` or a split, else ``(fig, [axes])``: the log panel,
        the linear one (if split), the ratio panel (if any).
    """
    e = np.asarray(epoch, dtype=float)
    split = split_at is not None and e.size > 0 and e.max() > split_at
    if ax is not None or not (split or ratio):
        fig, (top,) = axes_row(ax, 1, (6, 4))
        lin, bottom = None, None
    else:
        fig = Figure(figsize=(9 if split else 6, 6.2 if ratio else 4), layout="constrained")
        grid = fig.add_gridspec(2 if ratio else 1, 2 if split else 1,
                                height_ratios=[2.2, 1] if ratio else None)  # fmt: skip
        top = fig.add_subplot(grid[0, 0])
        lin = fig.add_subplot(grid[0, 1]) if split else None
        bottom = fig.add_subplot(grid[1, :]) if ratio else None
    first = e <= split_at if split else np.ones(e.shape, dtype=bool)
    for i, (label, y) in enumerate(series.items()):
        style = {"color": f"C{i}", "ls": "-" if i % 2 == 0 else "--"}
        y = np.asarray(y, dtype=float)
        top.plot(e[first], loggable(y[first]), label=label, **style)
        if lin is not None:
            rest = e >= split_at
            lin.plot(e[rest], y[rest], label=label, **style)
    top.set(yscale="log", xlabel="epoch", ylabel="value (log scale; 0 not shown)")
    top.grid(alpha=0.3, which="both")
    top.legend(fontsize=8)
    if lin is not None:
        lin.set(xlabel="epoch", ylabel="value (linear)", ylim=(0, None))
        lin.set_title(f"after epoch {split_at:g}, linear", fontsize=8)
        lin.grid(alpha=0.3)
    if bottom is not None:
        a, b = (np.asarray(series[k], dtype=float) for k in ratio)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(b > 0, a / b, np.nan)
        bottom.plot(e, loggable(r), color="k", lw=1.0, label=f"{ratio[0]} / {ratio[1]}")
        bottom.set(yscale="log", xlabel="epoch", ylabel="ratio")
        bottom.axhline(0.1, color="0.5", lw=0.7, ls=":", label="0.1 (an order of magnitude)")
        bottom.legend(fontsize=7)
        bottom.grid(alpha=0.3, which="both")
    if title:
        (fig.suptitle if lin is not None or bottom is not None else top.set_title)(title)
    if lin is None and bottom is None:
        return fig, top
    return fig, [a for a in (top, lin, bottom) if a is not None]


# -- per layer at the observed epochs (``umwelt plot``): ridgelines, series, spectra --------------


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
    hists = np.asarray(hists, dtype=float)
    E, L, _ = hists.shape
    centers = 0.5 * (edges[:-1] + edges[1:])
    width = np.diff(edges)
    fig, axes = panel_grid(L, ncols, (3.2, 2.6 + 0.12 * E))
    colors = color_ramp(E, top=1.0)
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
        ridgelines(ax, centers, dens, epochs, colors, scale=scale, overlap=overlap)
        reach = max(reach * 1.1, 3.0 * float(np.max(width)), 1e-12)
        ax.set_xlim(-reach, reach)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_title(labels[l], fontsize=8)
    left, bottom = grid_edges(axes, ncols)
    for ax in left:
        ax.set_ylabel("epoch")
    for ax in bottom:
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
    n = len(panels)
    fig, axes = axes_row(None, n, (4.6 * n + 2.4, 3.8))
    for ax, (ylabel, values) in zip(axes, panels.items()):
        values = np.atleast_2d(np.asarray(values, dtype=float))
        L = values.shape[1]
        colors = color_ramp(L, "plasma", top=0.85)
        for l in range(L):
            if np.all(np.isnan(values[:, l])):
                continue  # undefined for this layer (e.g. one neuron): no line, no legend entry
            ax.plot(epochs, values[:, l], "o-", ms=3, lw=1, color=colors[l], label=labels[l])
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
    E, L = len(spectra), len(labels)
    fig, axes = panel_grid(L, ncols, (3.2, 2.6))
    colors = color_ramp(E, top=1.0)
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
            ax.plot(rank, loggable(lam, floor), color=colors[e], lw=1, label=f"epoch {epochs[e]}")
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
    left, bottom = grid_edges(axes, ncols)
    for ax in left:
        ax.set_ylabel(ylabel, fontsize=8)
    for ax in bottom:
        ax.set_xlabel("rank", fontsize=8)
    axes[0].legend(fontsize=6)
    if title:
        fig.suptitle(title)
    return fig, axes
