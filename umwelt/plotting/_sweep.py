r"""Figures of a sweep (``umwelt sweep``; THEORY.md §5): phase diagrams over two axes, value
maps over the same cells, and the collapse of :math:`N_\Delta/N` against :math:`N/n`.

A sweep's points sit on a grid of axis values (capacity :math:`N`, data size :math:`n`, ...),
several seeds per cell. Both axes are drawn on log scales when their values are positive and
span more than a factor of 3, the cells centred on the values with edges at their geometric
(or arithmetic) midpoints, so that a boundary estimated in the same units can be drawn over
them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from umwelt.plotting._common import axes_row, color_ramp
from umwelt.plotting._training import PHASE_COLORS

#: the colour of a point without a final phase (not run, failed)
MISSING_COLOR = "white"


def _is_log(values: np.ndarray) -> bool:
    v = values[np.isfinite(values)]
    return v.size > 1 and bool(np.all(v > 0)) and v.max() / v.min() > 3


def _edges(values: np.ndarray, log: bool) -> np.ndarray:
    """Cell edges around the sorted distinct ``values``: midpoints (geometric on a log axis),
    the outer ones mirrored."""
    v = np.log(values) if log else values.astype(float)
    if v.size == 1:
        e = np.array([v[0] - 0.5, v[0] + 0.5]) if not log else np.array([v[0] - 0.3, v[0] + 0.3])
    else:
        mid = (v[1:] + v[:-1]) / 2
        e = np.concatenate([[v[0] - (mid[0] - v[0])], mid, [v[-1] + (v[-1] - mid[-1])]])
    return np.exp(e) if log else e


def _grid(x: np.ndarray, y: np.ndarray):
    xs, ys = np.unique(x), np.unique(y)
    lx, ly = _is_log(xs), _is_log(ys)
    return xs, ys, _edges(xs, lx), _edges(ys, ly), lx, ly


def _axes_setup(ax: Axes, xe, ye, lx, ly, xlabel, ylabel, xs, ys) -> None:
    ax.set_xscale("log" if lx else "linear")
    ax.set_yscale("log" if ly else "linear")
    ax.set_xlim(xe[0], xe[-1])
    ax.set_ylim(ye[0], ye[-1])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if len(xs) <= 12:
        ax.set_xticks(xs, [f"{v:g}" for v in xs], fontsize=7)
        ax.minorticks_off()
    if len(ys) <= 12:
        ax.set_yticks(ys, [f"{v:g}" for v in ys], fontsize=7)
    if len(xs) <= 12 and len(ys) <= 12:
        ax.tick_params(which="minor", length=0)


def plot_phase_diagram(
    x: Sequence[float],
    y: Sequence[float],
    phase: Sequence[str | None],
    seed: Sequence[object] | None = None,
    *,
    boundary: Sequence[Mapping[str, float | None]] | None = None,
    power_law: Mapping[str, float | None] | None = None,
    xlabel: str = "N (parameters)",
    ylabel: str = "n (training examples)",
    title: str | None = None,
    ax: Axes | None = None,
) -> tuple[Figure, Axes]:
    r"""The final phase of every point as colour over two axes; the seeds of a cell as side
    by side sub-cells (sorted by seed), so that disagreement between seeds shows.

    Args:
        x, y: ``(P,)`` the two axis values of every point (e.g. :math:`N`, :math:`n`).
        phase: ``(P,)`` final phase names (:data:`PHASE_COLORS`), ``None`` where unknown.
        seed: ``(P,)`` the seed (any sortable label) of every point; ``None``: one per cell.
        boundary: rows with ``complexity`` (a ``y`` value), ``n_star`` and ``low``/``high``
            (in ``x`` units; ``None`` where absent): the estimated :math:`N^*` per ``y`` with
            its interval, drawn as points with horizontal bars.
        power_law: ``{"a", "c"}`` of :math:`\log N^* = c + a \log n`, drawn as a line.

    Returns:
        ``(fig, ax)``.
    """
    fig, (ax,) = axes_row(ax, 1, (5.2, 4.0))
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    seed = np.zeros(len(x)) if seed is None else np.asarray(seed)
    xs, ys, xe, ye, lx, ly = _grid(x, y)
    for i, xv in enumerate(xs):
        for j, yv in enumerate(ys):
            idx = np.flatnonzero((x == xv) & (y == yv))
            if idx.size == 0:
                continue
            idx = idx[np.argsort(seed[idx], kind="stable")]
            x0, x1 = (np.log(xe[i]), np.log(xe[i + 1])) if lx else (xe[i], xe[i + 1])
            cuts = np.linspace(x0, x1, idx.size + 1)
            cuts = np.exp(cuts) if lx else cuts
            for k, p in enumerate(idx):
                color = PHASE_COLORS.get(phase[p], "0.5") if phase[p] else MISSING_COLOR
                ax.add_patch(Rectangle((cuts[k], ye[j]), cuts[k + 1] - cuts[k], ye[j + 1] - ye[j],
                                       facecolor=color, edgecolor="white", lw=0.4))  # fmt: skip
            ax.add_patch(Rectangle((xe[i], ye[j]), xe[i + 1] - xe[i], ye[j + 1] - ye[j],
                                   fill=False, edgecolor="0.25", lw=0.8))  # fmt: skip
    _axes_setup(ax, xe, ye, lx, ly, xlabel, ylabel, xs, ys)
    _draw_boundary(ax, boundary, power_law, ye)
    seen = {p for p in phase if p}
    handles = [Patch(color=c, label=p) for p, c in PHASE_COLORS.items() if p in seen]
    if any(p is None for p in phase):
        handles.append(Patch(facecolor=MISSING_COLOR, edgecolor="0.5", label="no result"))
    if boundary:
        handles.append(mpl.lines.Line2D([], [], color="k", marker="D", ls="-",
                                        label="N* (P(converged) = ½)"))  # fmt: skip
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              frameon=False, title="final phase", title_fontsize=7)  # fmt: skip
    if title:
        ax.set_title(title, fontsize=9)
    return fig, ax


def _draw_boundary(ax: Axes, boundary, power_law, ye) -> None:
    if not boundary:
        return
    pts = [b for b in boundary if b.get("n_star") is not None]
    if pts:
        yv = np.array([b["complexity"] for b in pts], dtype=float)
        xv = np.array([b["n_star"] for b in pts], dtype=float)
        lo = np.array([b.get("low") if b.get("low") is not None else np.nan for b in pts])
        hi = np.array([b.get("high") if b.get("high") is not None else np.nan for b in pts])
        err = np.vstack(
            [np.where(np.isfinite(lo), xv - lo, 0), np.where(np.isfinite(hi), hi - xv, 0)]
        )
        ax.errorbar(xv, yv, xerr=np.clip(err, 0, None), fmt="D", color="k", ms=5, capsize=3,
                    lw=1.2, zorder=5)  # fmt: skip
        order = np.argsort(yv)
        ax.plot(xv[order], yv[order], color="k", lw=1.0, ls="-", zorder=4)
    if power_law and power_law.get("a") is not None and power_law.get("c") is not None:
        n = np.geomspace(ye[0], ye[-1], 50)
        a, c = power_law["a"], power_law["c"]
        label = f"N* ∝ n^{a:.2f}"
        if power_law.get("a_low") is not None and power_law.get("a_high") is not None:
            label += f" [{power_law['a_low']:.2f}, {power_law['a_high']:.2f}]"
        ax.plot(np.exp(c) * n**a, n, color="k", ls="--", lw=1.0, zorder=4, label=label)
        ax.text(0.02, 0.98, label, transform=ax.transAxes, fontsize=8, va="top",
                bbox={"facecolor": "white", "alpha": 0.8, "lw": 0})  # fmt: skip


def plot_value_map(
    x: Sequence[float],
    y: Sequence[float],
    value: Sequence[float | None],
    *,
    label: str,
    log_color: bool = False,
    boundary: Sequence[Mapping[str, float | None]] | None = None,
    xlabel: str = "N (parameters)",
    ylabel: str = "n (training examples)",
    title: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    ax: Axes | None = None,
) -> tuple[Figure, Axes]:
    """A value of every point (``frac_unsatisfied``, the final loss) as colour over two axes,
    the mean over the seeds of a cell; with ``log_color`` a log colour scale (non-positive
    values drawn at its floor, hatched).

    Returns:
        ``(fig, ax)``.
    """
    fig, (ax,) = axes_row(ax, 1, (5.2, 4.0))
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    v = np.array([np.nan if u is None else u for u in value], dtype=float)
    xs, ys, xe, ye, lx, ly = _grid(x, y)
    grid = np.full((len(ys), len(xs)), np.nan)
    for i, xv in enumerate(xs):
        for j, yv in enumerate(ys):
            sel = v[(x == xv) & (y == yv)]
            sel = sel[np.isfinite(sel)]
            if sel.size:
                grid[j, i] = sel.mean()
    finite = grid[np.isfinite(grid)]
    if log_color:
        pos = finite[finite > 0]
        floor = pos.min() / 10 if pos.size else 1e-12
        zero = np.isfinite(grid) & (grid <= 0)
        shown = np.where(zero, floor, grid)
        norm = LogNorm(
            vmin=vmin or floor, vmax=vmax or max(pos.max() if pos.size else 1, floor * 10)
        )
    else:
        shown, zero = grid, np.zeros_like(grid, dtype=bool)
        lo = vmin if vmin is not None else (finite.min() if finite.size else 0)
        hi = vmax if vmax is not None else (finite.max() if finite.size else 1)
        norm = Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1)
    mesh = ax.pcolormesh(xe, ye, np.ma.masked_invalid(shown), cmap="viridis", norm=norm,
                         edgecolors="white", linewidth=0.5)  # fmt: skip
    for j, i in zip(*np.nonzero(zero)):
        ax.add_patch(Rectangle((xe[i], ye[j]), xe[i + 1] - xe[i], ye[j + 1] - ye[j], fill=False,
                               hatch="///", edgecolor="white", lw=0))  # fmt: skip
    fig.colorbar(mesh, ax=ax, label=label + (" (hatched: 0)" if zero.any() else ""))
    _axes_setup(ax, xe, ye, lx, ly, xlabel, ylabel, xs, ys)
    _draw_boundary(ax, boundary, None, ye)
    if title:
        ax.set_title(title, fontsize=9)
    return fig, ax


def plot_collapse(
    ratio: Sequence[float],
    unsat_per_param: Sequence[float | None],
    test_acc: Sequence[float | None],
    group: Sequence[float],
    *,
    group_label: str = "n",
    title: str | None = None,
    ax: Sequence[Axes] | None = None,
) -> tuple[Figure, list[Axes]]:
    r"""The jamming collapse: :math:`N_\Delta/N` against :math:`N/n` (log–log; points with
    :math:`N_\Delta = 0` drawn at the bottom edge, hollow), and the test accuracy against
    :math:`N/n`, one colour per value of ``group`` (e.g. :math:`n`).

    Returns:
        ``(fig, [ax_unsat, ax_acc])``.
    """
    fig, axes = axes_row(ax, 2, (10.0, 3.8))
    r = np.asarray(ratio, dtype=float)
    u = np.array([np.nan if a is None else a for a in unsat_per_param], dtype=float)
    acc = np.array([np.nan if a is None else a for a in test_acc], dtype=float)
    g = np.asarray(group, dtype=float)
    groups = np.unique(g[np.isfinite(g)])
    colors = color_ramp(len(groups), "plasma", top=0.85)
    pos = u[np.isfinite(u) & (u > 0)]
    floor = pos.min() / 3 if pos.size else 1e-3
    for gv, color in zip(groups, colors):
        s = g == gv
        nz, z = s & (u > 0), s & (u == 0)
        axes[0].scatter(r[nz], u[nz], color=color, s=16, label=f"{group_label} = {gv:g}")
        axes[0].scatter(r[z], np.full(z.sum(), floor), facecolors="none", edgecolors=color, s=16)
        axes[1].scatter(r[s], acc[s], color=color, s=16, label=f"{group_label} = {gv:g}")
    axes[0].set(xscale="log", yscale="log", xlabel="N / n", ylabel="N_Δ / N")
    axes[0].axhline(floor, color="0.6", lw=0.6, ls=":")
    axes[0].text(0.99, 0.02, "hollow: N_Δ = 0", transform=axes[0].transAxes, ha="right",
                 fontsize=7, color="0.4")  # fmt: skip
    axes[1].set(xscale="log", xlabel="N / n", ylabel="test accuracy")
    axes[1].axhline(0.5, color="0.6", lw=0.6, ls=":")
    for a in axes:
        a.axvline(1.0, color="0.5", lw=0.7, ls="--")
        a.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    if title:
        fig.suptitle(title)
    return fig, list(axes)


def plot_boundary_fits(
    groups: Sequence[Mapping],
    *,
    capacity_label: str = "N (parameters)",
    ax: Sequence[Axes] | None = None,
) -> tuple[Figure, list[Axes]]:
    r"""How each :math:`N^*` was found: per complexity value, the fraction of seeds converged
    at each capacity, the fitted logistic law :math:`P = \sigma(b_0 + b_1 \log N)` and
    :math:`N^*` with its interval, one panel per group (facet).

    Args:
        groups: ``{"title", "points": [{"complexity", "capacities", "frac_converged",
            "counts", "b0", "b1", "n_star", "low", "high", "status"}]}`` per panel.

    Returns:
        ``(fig, axes)``.
    """
    fig, axes = axes_row(ax, len(groups), (4.6 * len(groups), 3.6))
    for a, g in zip(axes, groups):
        pts = g["points"]
        colors = color_ramp(len(pts), "plasma", top=0.85)
        for b, color in zip(pts, colors):
            caps = np.asarray(b.get("capacities") or [], dtype=float)
            if caps.size == 0:
                continue
            frac = np.asarray(b["frac_converged"], dtype=float)
            size = 10 + 6 * np.asarray(b.get("counts") or np.ones_like(caps), dtype=float)
            a.scatter(caps, frac, color=color, s=size, zorder=3,
                      label=f"n = {b['complexity']:g}")  # fmt: skip
            if b.get("b0") is not None and b.get("b1") is not None and np.isfinite(b["b1"]):
                grid = np.geomspace(caps.min() / 2, caps.max() * 2, 200)
                a.plot(grid, 1 / (1 + np.exp(-(b["b0"] + b["b1"] * np.log(grid)))), color=color,
                       lw=1.2)  # fmt: skip
            if b.get("n_star") is not None:
                a.axvline(b["n_star"], color=color, lw=0.8, ls="--")
                if b.get("low") is not None and b.get("high") is not None:
                    a.axvspan(b["low"], b["high"], color=color, alpha=0.12, lw=0)
        a.axhline(0.5, color="0.5", lw=0.6, ls=":")
        a.set(xscale="log", ylim=(-0.05, 1.05), xlabel=capacity_label, ylabel="P(converged)")
        a.set_title(g.get("title") or "", fontsize=9)
        a.grid(alpha=0.3)
        a.legend(fontsize=7, loc="lower right")
    return fig, list(axes)
