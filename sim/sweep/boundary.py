r"""The phase boundary of a sweep, estimated from its rows by :mod:`umwelt.boundary` and
written to ``DIR/boundary.csv`` and ``DIR/boundary.json``.

Rows are grouped by the facet (temperature) and by every other axis that varies except those
of the capacity (``model``, ``width``), the complexity column ``y`` (and the ``dataset`` that
sets it) and the seed; in each group, for each value of ``y``, :math:`N^*` is the capacity
``x`` at which P(converged) = ½ (a logistic fit in :math:`\log N` over capacities and seeds,
a pairs-bootstrap 90 % interval); when ``y`` is a size (all values > 0 and it names a count:
``n_train``, ``data_n``, ...), the power law :math:`N^* \propto n^a` with the interval of
:math:`a`. The bootstrap is seeded by :data:`SEED` (recorded in ``boundary.json``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from sim.runs import io

__all__ = ["SEED", "estimate", "write"]

SEED = 0  # the bootstrap's seed: the same rows give the same intervals
N_BOOT = 1000
CI = 0.9
_NOT_GROUPED = ("model", "width", "seed", "dataset", "n_params", "n_train", "n_test")


def _is_size(column: str, values: list[float]) -> bool:
    return column.startswith(("n_", "data_n")) and all(v > 0 for v in values)


def estimate(
    rows: list[dict[str, Any]], axes: list[str], *, x: str, y: str, facet: str | None
) -> dict[str, Any]:
    """The boundary of every group of ``rows`` (see the module docstring): ``{"x", "y",
    "facet", "seed", "n_boot", "ci", "groups": [{"facet": {...}, "title", "points": [...],
    "power_law": {...} | None}]}``, each point a CSV-ready dict with the fit's curve data."""
    from umwelt.boundary import boundary_from_rows, power_law

    done = [r for r in rows if r.get("converged") is not None and r.get(x) is not None
            and r.get(y) is not None]  # fmt: skip
    keys = [facet] if facet else []
    keys += [a for a in axes if a not in (*_NOT_GROUPED, x, y, facet)]
    groups: dict[tuple, list[dict]] = {}
    for r in done:
        groups.setdefault(tuple(r.get(k) for k in keys), []).append(r)
    out = []
    for key, members in sorted(groups.items(), key=lambda kv: str(kv[0])):
        pts = boundary_from_rows(members, complexity=y, capacity=x, n_boot=N_BOOT, ci=CI,
                                 seed=SEED)  # fmt: skip
        law = None
        if _is_size(y, [p.complexity for p in pts]):
            law = power_law(pts, ci=CI).to_json()
        facet_values = dict(zip(keys, key))
        title = ", ".join(f"{k} = {v}" for k, v in facet_values.items()) or "all points"
        out.append({"facet": facet_values, "title": title,
                    "points": [_point(p, members, x, y) for p in pts],
                    "power_law": _law(law)})  # fmt: skip
    return {"x": x, "y": y, "facet": facet, "group_by": keys, "seed": SEED, "n_boot": N_BOOT,
            "ci": CI, "groups": out}  # fmt: skip


def _law(law: dict | None) -> dict | None:
    if law is None:
        return None
    c = law.get("prefactor")
    return {**law, "a": law.get("exponent"), "a_low": law.get("ci_low"),
            "a_high": law.get("ci_high"), "c": None if c is None else math.log(c)}  # fmt: skip


def _point(p, members: list[dict], x: str, y: str) -> dict[str, Any]:
    """One boundary point: its threshold and the converged fraction at each capacity."""
    t = p.threshold
    mine = [r for r in members if r[y] == p.complexity]
    caps = sorted({r[x] for r in mine})
    frac = [sum(bool(r["converged"]) for r in mine if r[x] == c) / sum(r[x] == c for r in mine)
            for c in caps]  # fmt: skip
    counts = [sum(r[x] == c for r in mine) for c in caps]
    return {
        "complexity": p.complexity,
        "n_star": t.estimate,
        "low": t.ci_low,
        "high": t.ci_high,
        "status": t.status,
        "reason": t.reason,
        "b0": t.intercept,
        "b1": t.slope,
        "n_runs": t.n_runs,
        "n_converged": t.n_converged,
        "capacities": caps,
        "frac_converged": frac,
        "counts": counts,
    }


def write(sweep_dir: Path, result: dict[str, Any]) -> list[Path]:
    """``boundary.json`` (everything) and ``boundary.csv`` (one row per group and complexity
    value, the group's power law repeated on its rows)."""
    from sim.sweep.collect import write_csv

    rows = []
    for g in result["groups"]:
        law = g["power_law"] or {}
        for p in g["points"]:
            rows.append({**g["facet"], "x": result["x"], "y": result["y"],
                         **{k: v for k, v in p.items() if not isinstance(v, list)},
                         "ci": result["ci"], "exponent": law.get("a"),
                         "exponent_low": law.get("a_low"), "exponent_high": law.get("a_high"),
                         "power_law_status": law.get("status")})  # fmt: skip
    sweep_dir = Path(sweep_dir)
    return [
        io.write_json(sweep_dir / "boundary.json", result),
        write_csv(sweep_dir / "boundary.csv", rows),
    ]
