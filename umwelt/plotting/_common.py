"""What the figure families share: new axes, panel grids, colour ramps, ridgelines, log-axis
masking and the finishing touches.

Figures are built on :class:`matplotlib.figure.Figure` directly, never through pyplot, so no
interactive backend is ever selected: they render headless (``fig.savefig`` draws with Agg) and
in parallel. The module is private: the names here are helpers of :mod:`umwelt.plotting`.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

# one colour per net, one line style per data split
STYLES = {"train": "-", "test": "--"}


def axes_row(
    ax: Sequence[Axes] | Axes | None,
    n: int,
    size: tuple[float, float],
    *,
    width_ratios: Sequence[float] | None = None,
) -> tuple[Figure, list[Axes]]:
    """The axes ``ax`` given by the caller (and their figure), else a new figure of ``size``
    inches with one row of ``n`` axes (``width_ratios``: their relative widths)."""
    if ax is not None:
        axes = list(np.atleast_1d(ax))
        return axes[0].figure, axes
    fig = Figure(figsize=size, layout="constrained")
    return fig, list(np.atleast_1d(fig.subplots(1, n, width_ratios=width_ratios)))


def panel_grid(n: int, ncols: int | None, panel: tuple[float, float]) -> tuple[Figure, list[Axes]]:
    """A new figure of ``n`` panels of ``panel`` inches, ``ncols`` (default up to 4) a row; the
    unused cells of the last row are hidden."""
    ncols = ncols or min(n, 4)
    nrows = -(-n // ncols)
    fig = Figure(figsize=(panel[0] * ncols, panel[1] * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for a in axes[n:]:
        a.set_axis_off()
    return fig, list(axes[:n])


def grid_edges(axes: Sequence[Axes], ncols: int | None) -> tuple[list[Axes], list[Axes]]:
    """The first column and the last ``ncols`` panels of a :func:`panel_grid` (where the y and
    the x labels go)."""
    nc = ncols or min(len(axes), 4)
    return list(axes[::nc]), list(axes[-nc:])


def color_ramp(n: int, cmap: str = "viridis", top: float = 0.9) -> list[tuple]:
    """``n`` colours evenly spaced along ``cmap`` from its start to ``top`` (e.g. one per epoch,
    earliest darkest)."""
    colors = mpl.colormaps[cmap]
    return [colors(top * i / max(n - 1, 1)) for i in range(n)]


def loggable(y, floor: float = 0.0) -> np.ndarray:
    """``y`` as floats with NaN where it is ``<= floor``: the values a log axis cannot show (or
    should not) are left out of the line instead of breaking it."""
    y = np.asarray(y, dtype=float)
    return np.where(y > floor, y, np.nan)


def ridgelines(
    ax: Axes,
    x: np.ndarray,
    dens: np.ndarray,
    epochs: Sequence[int],
    colors: Sequence,
    *,
    scale: float,
    overlap: float,
) -> None:
    """Draw one filled curve per epoch, ``e + scale * dens[e]`` over ``x``, earliest at the
    bottom and in front; epochs label the y axis, a dashed line marks 0 (to judge symmetry).

    Args:
        ax: the axis to draw on.
        x: ``(nb,)`` abscissae.
        dens: ``(E, nb)`` densities.
        epochs: ``(E,)`` the y tick labels.
        colors: ``(E,)`` fill colours.
        scale: vertical scale of the densities (one offset per epoch).
        overlap: offsets the tallest curve may rise (to make room above the top ridge).
    """
    E = len(dens)
    for e in range(E):
        y = e + dens[e] * scale
        z = 2 * (E - e)  # a lower ridge hides the ones above it
        ax.fill_between(x, e, y, color=colors[e], alpha=0.85, lw=0, zorder=z)
        ax.plot(x, y, color="k", lw=0.6, zorder=z + 1)
    ax.axvline(0.0, color="0.3", lw=0.7, ls="--", zorder=3 * E + 2)
    ax.set_yticks(np.arange(E), [str(ep) for ep in epochs], fontsize=7)
    ax.set_ylim(-0.2, E - 1 + overlap + 0.3)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)


def finish(
    fig: Figure, axes: Sequence[Axes], title: str | None, *, legend_size: float = 8
) -> tuple[Figure, list[Axes]]:
    """Grid and legend on every axis, ``title`` over the figure; ``(fig, axes)``."""
    for a in axes:
        a.grid(alpha=0.3)
        a.legend(fontsize=legend_size)
    if title:
        fig.suptitle(title)
    return fig, list(axes)
