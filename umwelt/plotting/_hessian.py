r"""Figures of the Hessian through training (``umwelt hessian``, THEORY.md §4): the eigenvalue
densities over epochs (fig. 8a), the sampled entries normalized by their bootstrap spread with
their correlations (figs. 6a–c), and the concentration of the entries' means with the coupling
exponents (figs. 7a–c).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes

from umwelt.plotting._common import axes_row, color_ramp, loggable, ridgelines


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
    fig, axes = axes_row(
        None, 1 + extra, (7.5 + 3.6 * extra, 4.4), width_ratios=[2.1] + [1] * extra
    )
    ax = axes[0]
    peaks = np.nanmax(dens, axis=1) if dens.size else np.ones(1)
    top = float(np.max(peaks, initial=0.0))
    low = peaks[peaks > 0]
    floor = 1e-5 * float(low.min()) if low.size else 1e-12  # 5 decades below the lowest peak
    colors = color_ramp(E)
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
            loggable(y, floor),
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
    fig, axes = axes_row(None, 1 + nc, (4.2 + 3.9 * nc, 4.6), width_ratios=[1.15] + [1] * nc)
    ax = axes[0]
    centers, dens, reach = _asinh_densities(edges, hists)
    # N(0, 1) per unit of asinh(x): φ(x) cosh(asinh x) = φ(x) √(1 + x²)
    ref = np.exp(-0.5 * centers**2) / np.sqrt(2 * np.pi) * np.sqrt(1 + centers**2)
    peak = max(float(dens.max()) if dens.size else 0.0, float(ref.max()))
    scale = overlap / peak
    colors = color_ramp(E)
    ridgelines(ax, centers, dens, epochs, colors, scale=scale, overlap=overlap)
    for e in range(E):  # each over its ridge, under the ridge below
        ax.plot(centers, e + ref * scale, color="0.35", lw=0.7, ls="--", zorder=2 * (E - e) + 1)
    _asinh_axis(ax, reach)
    ax.set(xlabel="H⁽ᵇ⁾ⱼₖ / std(Hⱼₖ)  (asinh scale; bootstrap over examples)", ylabel="epoch")
    ax.set_title("(a) normalized entries (grey: N(0, 1))", fontsize=9)
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
        frac_below: ``(E,)``, or ``{label: (E,)}`` for several normalizations; a value may be
            ``(values, lo, hi)``, drawn with its band.
        exponents: ``{label: (E,)}``, a value also ``(values, lo, hi)``.

    Returns:
        ``(fig, [ax_a, ax_b, ax_c])``.
    """
    hists = np.atleast_2d(np.asarray(hists, dtype=float))
    E = hists.shape[0]
    fig, (ax_a, ax_b, ax_c) = axes_row(None, 3, (14, 4.2))
    centers, dens, reach = _asinh_densities(edges, hists)
    ax_a.axvspan(-threshold, threshold, color="0.8", zorder=0, label=f"|mean|/std < {threshold:g}")
    colors = color_ramp(E)
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
        f, band = _with_band(vals)
        ax_b.plot(epochs, f, "o-", ms=4, color=f"C{i}", label=label)
        if band is not None:
            ax_b.fill_between(epochs, *band, color=f"C{i}", alpha=0.2, lw=0)
            f = np.concatenate([f, band[0]])
        low = min(low, np.nanmin(f)) if np.isfinite(f).any() else low
    ax_b.axhline(reference, color="0.4", ls="--", lw=0.8, label=f"{reference:.0%}")
    if null is not None:
        ax_b.axhline(null, color="0.4", ls=":", lw=0.8, label=f"all entries 0 in mean: {null:.1%}")
    ax_b.set(xlabel="epoch", ylabel="fraction of entries", ylim=(max(low - 0.05, 0), 1.005))
    ax_b.set_title("(b) concentration of means", fontsize=9)
    ax_b.legend(fontsize=7)
    for i, (label, vals) in enumerate(exponents.items()):
        f, band = _with_band(vals)
        ax_c.plot(epochs, f, "o-", ms=4, color=f"C{i}", label=label)
        if band is not None:
            ax_c.fill_between(epochs, *band, color=f"C{i}", alpha=0.2, lw=0)
    ax_c.set(xlabel="epoch", ylabel="exponent of N  (count = N^exponent)")
    ax_c.set_title("(c) coupling set size, skewness, kurtosis", fontsize=9)
    ax_c.legend(fontsize=7)
    for a in (ax_a, ax_b, ax_c):
        a.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig, [ax_a, ax_b, ax_c]


def _with_band(vals) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """``values`` or ``(values, lo, hi)`` as ``(values, (lo, hi) | None)``, float arrays."""
    if isinstance(vals, tuple) and len(vals) == 3:
        v, lo, hi = (np.asarray(x, dtype=float) for x in vals)
        return v, (lo, hi)
    return np.asarray(vals, dtype=float), None


def plot_followed_entries(
    epochs: Sequence[int],
    entries: Mapping[str, Sequence[np.ndarray]],
    pooled: np.ndarray,
    edges: np.ndarray,
    *,
    title: str | None = None,
):
    r"""Fig. 6a the paper's way: the same entries followed through training.

    One panel per entry: at each epoch the histogram of its bootstrap samples
    :math:`H^{(b)}_{jk}/\mathrm{std}_{jk}` (colour: epoch), on log axes (``symlog`` in the
    value, linear within ±1; log counts); the last panel pools every live entry.

    Args:
        epochs: ``(E,)``.
        entries: ``{label: [samples of epoch e, (B,)] * E}``, e.g. three entries.
        pooled: ``(E, nb)`` counts of the pooled normalized samples on ``edges``.
        edges: ``(nb + 1,)`` bin edges of the pooled counts.

    Returns:
        ``(fig, axes)``.
    """
    E = len(epochs)
    n = len(entries) + 1
    fig, axes = axes_row(None, n, (3.6 * n, 3.6))
    colors = color_ramp(E)
    for ax, (label, per_epoch) in zip(axes, entries.items()):
        reach = max((float(np.nanmax(np.abs(x))) for x in per_epoch if np.size(x)), default=1.0)
        bins = np.sinh(np.linspace(-np.arcsinh(reach), np.arcsinh(reach), 41))
        for e, x in enumerate(per_epoch):
            h, _ = np.histogram(np.asarray(x, float), bins)
            ax.stairs(np.where(h > 0, h, np.nan), bins, color=colors[e], label=f"epoch {epochs[e]}")
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_yscale("log")
        ax.set(xlabel="H⁽ᵇ⁾ⱼₖ / std(Hⱼₖ)", ylabel="bootstrap samples")
        ax.set_title(label, fontsize=9)
    ax = axes[-1]
    pooled = np.atleast_2d(np.asarray(pooled, dtype=float))
    for e in range(pooled.shape[0]):
        tot = pooled[e].sum()
        if tot > 0:
            ax.stairs(np.where(pooled[e] > 0, pooled[e] / tot, np.nan), edges, color=colors[e])
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_yscale("log")
    ax.set(xlabel="H⁽ᵇ⁾ⱼₖ / std(Hⱼₖ)", ylabel="share of samples")
    ax.set_title("every live entry, pooled", fontsize=9)
    axes[0].legend(fontsize=7, ncols=2 if E > 6 else 1)
    for a in axes:
        a.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig, axes


def plot_hessian_blocks(
    shares: np.ndarray,
    epochs: Sequence[int],
    names: Sequence[str],
    *,
    singular: np.ndarray | None = None,
    most: int = 4,
    title: str | None = None,
):
    r"""Per-layer-pair spectra: layer × layer heat maps of each block's share of
    :math:`\mathrm{tr}\,H^2` (log colour scale, blank where 0), at up to ``most`` epochs (the
    first, the last and evenly between); with ``singular``, a last panel of each block's largest
    singular value over epochs (one line per pair whose share ever passes 1 %).

    Args:
        shares: ``(E, L, L)``.
        epochs: ``(E,)``.
        names: the ``L`` layers' names.
        singular: ``(E, L, L, s)`` leading singular values, or ``None``.

    Returns:
        ``(fig, axes)``.
    """
    from matplotlib.colors import LogNorm

    shares = np.asarray(shares, dtype=float)
    E, L = shares.shape[0], shares.shape[1]
    pick = sorted(set(np.linspace(0, E - 1, min(most, E)).round().astype(int).tolist()))
    n = len(pick) + (singular is not None)
    fig, axes = axes_row(None, n, (3.9 * n, 3.8))
    pos = shares[shares > 0]
    norm = LogNorm(vmin=max(float(pos.min()), 1e-6), vmax=1.0) if pos.size else None
    image = None
    short = [str(s).replace(".weight", "") for s in names]
    for ax, e in zip(axes, pick):
        M = np.where(shares[e] > 0, shares[e], np.nan)
        image = ax.imshow(M, cmap="viridis", norm=norm, interpolation="nearest")
        ax.set_title(f"epoch {epochs[e]}", fontsize=9)
        ax.set_xticks(range(L), short, rotation=90, fontsize=6)
        ax.set_yticks(range(L), short, fontsize=6)
    axes[0].set_ylabel("layer a")
    for ax in axes[: len(pick)]:
        ax.set_xlabel("layer b")
    if image is not None:
        fig.colorbar(image, ax=axes[: len(pick)], shrink=0.8, label="‖H_ab‖²_F / tr H²")
    if singular is not None:
        ax = axes[-1]
        s0 = np.asarray(singular, dtype=float)[..., 0]  # (E, L, L)
        for a in range(L):
            for b in range(a, L):
                if np.nanmax(shares[:, a, b]) >= 0.01:
                    ax.plot(epochs, s0[:, a, b], "o-", ms=3, lw=1, label=f"{short[a]} × {short[b]}")
        ax.set_yscale("log")
        ax.set(xlabel="epoch", ylabel="largest singular value of H_ab")
        ax.legend(fontsize=6, ncols=2)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig, axes
