r"""A phase diagram from a script: where capacity overtakes the data (THEORY.md §5).

The headline claim — a net converges (zero training risk) when its capacity exceeds the data's
complexity — is a statement about a *boundary*. This script draws it: one-hidden-layer ReLU
nets of N = 11 … 352 parameters on random labels (Zhang et al. 2017: nothing to learn, so each
of the n labels must be memorized) of n = 20 … 160 examples, at T = 0 and T = 0.1, three seeds
each, every run stopping once converged. ``sim.api.sweep`` is ``umwelt sweep``: the points are
ordinary train runs, the same call continues an interrupted sweep, and it returns the rows of
``phases.csv`` and the boundary ``N*(n)`` (P(converged) = ½ from a logistic fit in log N over
capacities and seeds, a bootstrap 90 % interval).

What it shows (full run, 144 points, about 25 minutes on 2 cores): below N/n ≈ 1 every net
ends frustrated (N_Δ/n between 0.2 and 0.9); N* is 88 parameters for n = 20, 40, 80 and
jumps to ≈ 352 for n = 160, at both temperatures; every data set is *separated* — no seed
converges below a capacity at which another fails — so the transition is sharper than the
factor-2 grid and the interval is the grid's gap. The collapse plot (``DIR/figures/``) puts
N_Δ/N of all points on one curve of N/n.

Run:  python examples/05_phase_diagram.py [--quick] [--out DIR]
(``--quick``: 8 points, about a minute on 2 cores; writes DIR/phase_diagram.png and the
sweep's directory DIR/sweep, and prints the boundary)
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from sim import api

SPEC = """
[train]
epochs = {epochs}
loss = "hinge"
stop_at_phase = "converged"
batch_size = 20
lr = 0.05
observe_at = [0]
[grid]
model = {models}
dataset = {datasets}
temperature = {temperatures}
seed = {seeds}
"""

FULL = {
    "epochs": 150,
    "models": ["mlp:1", "mlp:2", "mlp:4", "mlp:8", "mlp:16", "mlp:32"],
    "n": [20, 40, 80, 160],
    "temperatures": [0.0, 0.1],
    "seeds": [0, 1, 2],
}
QUICK = {"epochs": 60, "models": ["mlp:1", "mlp:16"], "n": [20, 40], "temperatures": [0.0],
         "seeds": [0, 1]}  # fmt: skip


def spec_text(s: dict) -> str:
    """The sweep file of settings ``s`` (TOML lists are written as Python's, quoted)."""
    datasets = [f"random-labels:n={n},dim=10,n_test=50" for n in s["n"]]
    return SPEC.format(epochs=s["epochs"], models=_toml(s["models"]), datasets=_toml(datasets),
                       temperatures=_toml(s["temperatures"]), seeds=_toml(s["seeds"]))  # fmt: skip


def _toml(values: list) -> str:
    return "[" + ", ".join(f'"{v}"' if isinstance(v, str) else repr(v) for v in values) + "]"


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny configuration (a minute)")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: temp)")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="umwelt-phase-diagram-"))
    out.mkdir(parents=True, exist_ok=True)
    spec = out / "sweep.toml"
    spec.write_text(spec_text(QUICK if args.quick else FULL))
    result = api.sweep(spec, out=out / "sweep")  # again after an interruption: it continues
    print(f"{len(result.rows)} points: {result.counts()}")
    for b in result.boundary:
        hi = "∞" if b["high"] is None else f"{b['high']:g}"
        lo = "0" if b["low"] is None else f"{b['low']:g}"
        star = "—" if b["n_star"] is None else f"{b['n_star']:g}"
        at = f"T = {b['temperature']:g}, " if "temperature" in b else ""
        print(f"{at}n = {b['complexity']:g}: N* = {star} [{lo}, {hi}]"
              f" ({b['n_converged']}/{b['n_runs']} converged; {b['status']})")  # fmt: skip
    figure = out / "phase_diagram.png"
    shutil.copyfile(out / "sweep" / "figures" / "phase_diagram.png", figure)
    print(f"wrote {figure} (and the other diagrams in {out / 'sweep' / 'figures'})")
    return figure


if __name__ == "__main__":
    main()
