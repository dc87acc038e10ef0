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

__all__ = ["plot_gate_statistics", "plot_learning_curves", "plot_order_parameter"]

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
