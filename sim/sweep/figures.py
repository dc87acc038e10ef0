r"""The figures of a sweep directory and their file names, from its rows
(:mod:`sim.sweep.collect`) and boundary (:mod:`sim.sweep.boundary`), into ``DIR/figures/``:

=========================  ====================================================================
``phase_diagram.png``      the final phase of every point over ``x`` × ``y`` (log scales), one
                           panel per ``facet`` value (temperature), the seeds of a cell as
                           sub-cells, the estimated boundary :math:`N^*(n)` with its intervals
                           and the power law :math:`N^* \propto n^a`
``frac_unsatisfied.png``   :math:`N_\Delta/n` over the same cells (mean over seeds)
``final_loss.png``         the final training loss over the same cells, log colour
``boundary_fits.png``      per complexity value, the fraction converged against :math:`N` and
                           the fitted logistic law, :math:`N^*` marked
``collapse.png``           :math:`N_\Delta/N` and the test accuracy against :math:`N/n`
=========================  ====================================================================

Axes are row columns: ``x`` (default ``n_params``), ``y`` (default ``n_train`` when it varies,
else ``label_noise``, else the first other numeric axis), ``facet`` (default ``temperature``
when it varies).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from sim.runs import atomic_write
from umwelt.errors import ConfigError

__all__ = ["FIGURES", "choose_axes", "draw"]

FIGURES = ("phase_diagram", "frac_unsatisfied", "final_loss", "boundary_fits", "collapse")
_LABELS = {
    "n_params": "N (parameters)",
    "n_train": "n (training examples)",
    "label_noise": "label noise",
    "temperature": "T",
    "capacity_ratio": "N / n",
    "width": "width multiplier",
}


def _numeric(rows: list[dict], key: str) -> bool:
    vals = [r.get(key) for r in rows if r.get(key) is not None]
    return bool(vals) and all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in vals
    )


def _varies(rows: list[dict], key: str) -> bool:
    return len({r.get(key) for r in rows if r.get(key) is not None}) > 1


def choose_axes(
    rows: list[dict[str, Any]], axes: list[str], x: str | None, y: str | None, facet: str | None
) -> tuple[str, str, str | None]:
    """The ``x``, ``y`` and ``facet`` columns of the diagrams: given ones checked, the others
    chosen (see the module docstring).

    Raises:
        ConfigError: for a column that no row has as a number.
    """
    done = [r for r in rows if r.get("n_params") is not None] or rows
    x = x or "n_params"
    if y is None:
        others = [a for a in axes if a not in (x, "seed", "model", "width", "dataset", facet)]
        candidates = ["n_train", "label_noise", *others]
        y = next((c for c in candidates if _numeric(done, c) and _varies(done, c)), "n_train")
    if facet is None and _varies(done, "temperature") and "temperature" not in (x, y):
        facet = "temperature"
    for name, key in (("--x", x), ("--y", y), ("--facet", facet)):
        if key is not None and done and not _numeric(done, key):
            shown = ", ".join(sorted(k for k in done[0] if _numeric(done, k)))
            raise ConfigError(f"{name} {key!r} is not a numeric column of the sweep ({shown})")
    return x, y, facet


def _save(fig, path: Path) -> Path:
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=130))


def draw(
    sweep_dir: Path,
    rows: list[dict[str, Any]],
    boundary: dict[str, Any] | None,
    *,
    axes: list[str],
    x: str | None = None,
    y: str | None = None,
    facet: str | None = None,
) -> list[Path]:
    """Draw every figure of :data:`FIGURES` that the rows allow; the paths written."""
    from umwelt.plotting import plot_collapse, plot_phase_diagram, plot_value_map
    from umwelt.plotting._common import panel_grid  # the panels of the facets

    x, y, facet = choose_axes(rows, axes, x, y, facet)
    have = [r for r in rows if r.get(x) is not None and r.get(y) is not None]
    if not have:
        return []
    out = Path(sweep_dir) / "figures"
    out.mkdir(parents=True, exist_ok=True)
    facets = sorted({r.get(facet) for r in have}, key=str) if facet else [None]
    labels = {"xlabel": _LABELS.get(x, x), "ylabel": _LABELS.get(y, y)}
    paths = []

    def panels(draw_one, name: str) -> None:
        fig, ax = panel_grid(len(facets), min(len(facets), 3), (5.6, 4.2))
        for a, fv in zip(ax, facets):
            sub = [r for r in have if facet is None or r.get(facet) == fv]
            title = None if facet is None else f"{_LABELS.get(facet, facet)} = {fv:g}"
            draw_one(sub, a, title, _boundary_rows(boundary, facet, fv))
        paths.append(_save(fig, out / f"{name}.png"))

    def phase(sub, a, title, b):
        power = b.get("power_law") if b else None
        plot_phase_diagram([r[x] for r in sub], [r[y] for r in sub], [r.get("phase") for r in sub],
                           [r.get("seed") for r in sub], boundary=b and b["points"],
                           power_law=power, title=title, ax=a, **labels)  # fmt: skip

    def unsat(sub, a, title, b):
        plot_value_map([r[x] for r in sub], [r[y] for r in sub],
                       [r.get("frac_unsatisfied") for r in sub], label="N_Δ / n (mean over seeds)",
                       vmin=0.0, vmax=1.0, boundary=b and b["points"], title=title, ax=a,
                       **labels)  # fmt: skip

    def loss(sub, a, title, b):
        plot_value_map([r[x] for r in sub], [r[y] for r in sub], [r.get("final_loss") for r in sub],
                       label="final training loss", log_color=True, boundary=b and b["points"],
                       title=title, ax=a, **labels)  # fmt: skip

    panels(phase, "phase_diagram")
    panels(unsat, "frac_unsatisfied")
    panels(loss, "final_loss")
    if boundary and boundary.get("groups"):
        paths.append(_save(_fits_figure(boundary), out / "boundary_fits.png"))
    ratio = [r for r in have if r.get("capacity_ratio") is not None]
    if ratio:
        fig, _ = plot_collapse(
            [r["capacity_ratio"] for r in ratio],
            [r.get("unsat_per_param") for r in ratio],
            [r.get("test_acc") for r in ratio],
            [r.get("n_train") for r in ratio],
            title="collapse: every point (one colour per n)",
        )
        paths.append(_save(fig, out / "collapse.png"))
    return paths


def _boundary_rows(boundary: dict | None, facet: str | None, value) -> dict | None:
    """The boundary of one facet value: ``{"points": [...], "power_law": {...}}``."""
    if not boundary:
        return None
    for g in boundary.get("groups", []):
        if facet is None or g["facet"].get(facet) == value:
            return g
    return None


def _fits_figure(boundary: dict):
    from umwelt.plotting import plot_boundary_fits

    fig, _ = plot_boundary_fits(boundary["groups"], capacity_label=_LABELS.get("n_params"))
    return fig
