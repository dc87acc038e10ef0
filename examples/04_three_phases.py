r"""Three phases you can see: a narrow, a medium and a wide net on the same random labels.

The paper's headline claim (THEORY.md §5) is that training reaches zero risk when the net's
potential complexity exceeds the data's. Random labels (Zhang et al. 2017) make the data's
complexity a count: there is no rule to learn, so a net reaches zero training risk only by
memorizing all ``n`` labels, which takes about as many parameters as examples (the jamming
picture of Geiger, Spigler et al. 2019). Three one-hidden-layer ReLU nets (T = 0), the same
data, loss (the quadratic hinge ½·max(0, 1 − y f)²), step size, batch and epochs:

* **narrow** (``mlp:2``, N ≪ n parameters): the risk stops falling with almost every example
  unsatisfied (N_Δ/n ≈ 1) and the plasticity order parameter vanishes against it
  (η‖∇R‖²/R ≪ 10⁻³): **frustration**, its end Hessian close to positive semi-definite;
* **medium** (``mlp:24``, N ≈ 0.4 n): near the boundary. N_Δ keeps falling, but slowly and
  noisily; the rule mostly says ``undetermined`` (risk flat within the window while the order
  parameter is not negligible) with spells of **plasticity**, and the budget ends before it fits
  (``mlp:32``, N ≈ 0.53 n, does fit: R ≈ 10⁻³² by epoch 800, but see the first note below);
* **wide** (``mlp:512``, N ≫ n): **plasticity**, then **converged** (N_Δ = 0) within a few
  dozen epochs; the run stops there (``stop_at_phase="converged"``) and its Hessian is exactly 0.

The labels are those of the online rule (:mod:`umwelt.phases`, default thresholds) recorded in
every row, drawn as a strip under the curves; the table gives them again after the end-of-
training Hessian joins the rule (``umwelt phases RUN`` re-classifies the same way).

Two things this example shows about the measurement itself:

* With the quadratic hinge the margins y f of the last unsatisfied examples approach 1 from
  below and freeze one rounding unit short of it, so N_Δ = 0 is reached only when the momentum
  overshoot carries them across. Hence ``float64`` and a step size as large as the wide net
  allows (η = 0.03; mlp:512 diverges at 0.05): measured on mlp:256–1024, in float32 or with
  η ≤ 0.02 a wide net sits at R ≈ 10⁻¹⁶ (float32) or 10⁻³² (float64) with 0.3–30% of the
  examples at y f = 1 − ulp, and is never labelled converged.
* The quadratic hinge's Hessian has a positive semi-definite Gauss–Newton part on every
  unsatisfied example, which dominates: even the wide net while still plastic has
  ``neg_share`` ≈ 0 at this Lanczos resolution, so the Hessian separates converged (H = 0) from
  the rest, but plasticity from frustration only through the small negative weight
  (``neg_mass``) and λ_min/λ_max; with a Hessian row the rule calls the medium net
  ``undetermined`` ("the Hessian disagrees with the trends").

Run:  python examples/04_three_phases.py [--quick] [--out DIR]
(full: about 2 minutes on one core, ``--quick``: about 15 s; writes DIR/three_phases.png and
prints the table)
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from sim import api
from sim.runs import Run
from umwelt.phases import PHASES, classify
from umwelt.plotting import plot_phase_strip

#: (label, model, line colour); the colours avoid the phase strip's red, green and blue
NETS = {
    False: [("narrow", "mlp:2", "0.15"), ("medium", "mlp:24", "tab:purple"),
            ("wide", "mlp:512", "tab:orange")],
    True: [("narrow", "mlp:2", "0.15"), ("medium", "mlp:6", "tab:purple"),
           ("wide", "mlp:128", "tab:orange")],
}  # fmt: skip
#: the data and the training settings shared by the three nets
SETTINGS = {
    False: dict(n=2000, dim=32, n_test=200, epochs=600, batch_size=128),
    True: dict(n=200, dim=16, n_test=50, epochs=60, batch_size=32),
}
LR = 0.03
FLOOR = 1e-6  # the loss axis stops here (a converging net falls to 1e-30 before R = 0)


def train_and_analyse(model: str, out: Path, s: dict, quick: bool) -> dict:
    """Train one net (stopping once converged), analyse its end Hessian, label its epochs."""
    t0 = time.perf_counter()
    res = api.train(
        model=model,
        dataset=f"random-labels:n={s['n']},dim={s['dim']},n_test={s['n_test']}",
        loss="quadratic-hinge",
        temperature=0.0,
        epochs=s["epochs"],
        lr=LR,
        batch_size=s["batch_size"],
        dtype="float64",
        observe_at=(s["epochs"],),  # a run that stops early is observed at its last epoch
        stop_at_phase="converged",
        out=out,
        figures=False,
    )
    run = Run.open(res.run_dir)
    rows = run.metrics()
    last = rows[-1]["epoch"]
    summary = run.summary()
    api.hessian(
        run.path,
        epochs=(last,),
        examples=s["n"],
        lanczos_steps=min(30 if quick else 60, summary["n_parameters"]),
        start_vectors=4 if quick else 8,
        entries=0,
        bootstrap=20,
        figures=False,
    )
    wall = time.perf_counter() - t0
    hrows = run.hessian_rows()
    _, hess = run.hessian()
    labels = classify(rows, hrows)  # the rule again, now with the end Hessian
    q = [p.op_ratio for p in labels if math.isfinite(p.op_ratio)]
    began = summary["phases"]["began"]
    h = hrows[-1]
    ratio = h["lambda_min"] / h["lambda_max"] if h["lambda_max"] > 0 else math.nan
    return {
        "model": model,
        "rows": rows,
        "n_params": summary["n_parameters"],
        "online": rows[-1]["phase"],
        "with_hessian": labels[-1].phase,
        "reason": labels[-1].reason,
        "last": last,
        "converged_at": began.get("converged"),
        "frustrated_from": began.get("frustration"),
        "epochs_in": summary["phases"]["epochs_in"],
        "zero_error_at": summary["first_zero_train_error_epoch"],
        "frac_unsat": rows[-1]["frac_unsatisfied"],
        # the window median of η‖∇R‖²/R at the last epoch the rule measured it (a converged
        # epoch has R = 0 and no ratio: then the window just before)
        "q": q[-1] if q else math.nan,
        "neg_share": h["neg_share"],
        "neg_mass": h["neg_mass"],
        "ratio": ratio,
        "hessian": hess[-1],
        "wall": wall,
    }


def _fmt(v, spec: str = ".2g") -> str:
    return "—" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:{spec}}"


def print_table(results: dict[str, dict], n: int) -> None:
    head = (
        f"{'net':<8}{'model':<9}{'N':>7}{'N/n':>7}  {'phase (online)':<15}{'+Hessian':<14}"
        f"{'N_Δ=0 @':>8}{'F from':>8}{'N_Δ/n':>8}{'η|∇R|²/R':>10}{'neg_share':>10}"
        f"{'neg_mass':>9}{'λmin/λmax':>11}{'wall s':>8}  epochs P/F/C/U"
    )
    print(head)
    for label, r in results.items():
        print(
            f"{label:<8}{r['model']:<9}{r['n_params']:>7}{r['n_params'] / n:>7.2g}  "
            f"{r['online']:<15}{r['with_hessian']:<14}{_fmt(r['converged_at'], 'd'):>8}"
            f"{_fmt(r['frustrated_from'], 'd'):>8}{r['frac_unsat']:>8.3f}{_fmt(r['q']):>10}"
            f"{_fmt(r['neg_share'], '.3f'):>10}{_fmt(r['neg_mass'], '.3f'):>9}"
            f"{_fmt(r['ratio'], '.2g'):>11}{r['wall']:>8.1f}  "
            + "/".join(str(r["epochs_in"][p]) for p in PHASES)
        )
    for label, r in results.items():
        print(f"  {label}: last epoch {r['last']}, with the Hessian: {r['reason']}")


def _symlog_x(ax, c: float, bound: float) -> None:
    """Symmetric-log x axis on [-bound, bound], linear within ±c, ticks at 0 and at most three
    powers of ten a side (matplotlib's own crowd each other around 0)."""
    ax.set_xscale("symlog", linthresh=c, linscale=0.3)
    ax.set_xlim(-bound, bound)
    lo, hi = math.floor(math.log10(c)) + 1, math.floor(math.log10(bound))
    ks = list(range(hi, lo - 1, -max(1, math.ceil((hi - lo + 1) / 3))))[::-1]
    ticks = [-(10.0**k) for k in ks[::-1]] + [0.0] + [10.0**k for k in ks]
    labels = [f"$-10^{{{k}}}$" for k in ks[::-1]] + ["0"] + [f"$10^{{{k}}}$" for k in ks]
    ax.set_xticks(ticks, labels, fontsize=7)
    ax.minorticks_off()


def draw(results: dict[str, dict], colors: dict[str, str], n: int, title: str) -> Figure:
    fig = Figure(figsize=(15, 6.2), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[1, 1.45])
    ax_loss, ax_unsat, ax_strip = left.subplots(
        3, 1, sharex=True, gridspec_kw={"height_ratios": [3, 3, 1.1]}
    )
    epochs = max(r["last"] for r in results.values())
    axis = np.arange(epochs + 1)
    strips = {}
    for label, r in results.items():
        e = np.array([row["epoch"] for row in r["rows"]])
        loss = np.array([np.nan if row["loss"] is None else row["loss"] for row in r["rows"]])
        unsat = np.array([row["frac_unsatisfied"] for row in r["rows"]])
        name = f"{label} ({r['model']}, N/n = {r['n_params'] / n:.2g})"
        ax_loss.plot(e, np.where(loss > 0, loss, np.nan), color=colors[label], lw=1, label=name)
        ax_unsat.plot(e, np.where(unsat > 0, unsat, np.nan), color=colors[label], lw=1)
        if r["converged_at"] is not None:  # R = 0 and N_Δ = 0 do not show on a log axis
            for ax in (ax_loss, ax_unsat):
                ax.plot([r["converged_at"]], [FLOOR if ax is ax_loss else 0.5 / n],
                        marker="v", ms=9, color=colors[label], clip_on=False)  # fmt: skip
        by_epoch = {row["epoch"]: row["phase"] for row in r["rows"]}
        strips[label] = [by_epoch.get(int(x)) for x in axis]
    ax_loss.set(yscale="log", ylabel="training risk R (quadratic hinge)")
    ax_loss.set_ylim(bottom=FLOOR)
    ax_unsat.set(yscale="log", ylabel="N_Δ / n  (margin y f < 1)")
    ax_unsat.set_ylim(0.5 / n, 1.5)
    ax_loss.legend(fontsize=8, loc="lower left")
    ax_loss.text(0.99, 0.02, "▼ epoch of N_Δ = 0 (R = 0)", transform=ax_loss.transAxes,
                 ha="right", va="bottom", fontsize=8)  # fmt: skip
    for ax in (ax_loss, ax_unsat):
        ax.grid(alpha=0.3)
    plot_phase_strip(ax_strip, axis, dict(reversed(strips.items())))  # narrow on top
    if epochs > 100:  # a converging net's few dozen epochs would be a sliver on a linear axis
        ax_strip.set_xscale("symlog", linthresh=10, linscale=0.6)
        ticks = [t for t in (0, 5, 10, 30, 100, 300, 1000, 3000) if t < 0.8 * epochs] + [epochs]
        ax_strip.set_xticks(ticks, [str(t) for t in ticks])
        ax_strip.set_xlabel("epoch (linear to 10, logarithmic beyond)")
    else:
        ax_strip.set_xlabel("epoch")
    to_axes = ax_strip.transData + ax_strip.transAxes.inverted()
    for row, r in enumerate(reversed(list(results.values()))):
        if r["converged_at"] is not None:  # one epoch wide: say where the run stopped
            x = r["converged_at"]
            after = to_axes.transform((x, 0))[0] < 0.8  # room to the right
            ax_strip.text(x + (1 if after else -1), row + 0.5,
                          "◀ stopped: converged" if after else "stopped: converged ▶",
                          ha="left" if after else "right", va="center", fontsize=7)  # fmt: skip
    ax_loss.set_title("(a) learning curves and the online phase (default rule)", fontsize=10)

    panels = right.subplots(1, len(results))
    for ax, (label, r) in zip(panels, results.items(), strict=True):
        h = r["hessian"]
        grid, dens = np.asarray(h["grid"]), np.asarray(h["density"])
        lo, hi = np.asarray(h["density_lo"]), np.asarray(h["density_hi"])
        peak = float(np.nanmax(dens))
        floor = 1e-5 * peak
        c = float(h["grid_c"])
        ax.fill_between(grid, np.maximum(lo, floor), np.maximum(hi, floor),
                        color=colors[label], alpha=0.25, lw=0)  # fmt: skip
        ax.plot(grid, np.maximum(dens, floor), color=colors[label], lw=1.2)
        nodes = np.asarray(h["slq_nodes"]).ravel()[np.asarray(h["slq_weights"]).ravel() > 1e-4]
        ax.plot(nodes, np.full(nodes.shape, 2 * floor), "|", color=colors[label], ms=8, mew=0.6)
        ax.axvline(0, color="0.5", ls="--", lw=0.8)
        _symlog_x(ax, c, float(grid[-1]))
        ax.set_yscale("log")
        ax.set_ylim(floor, 3 * peak)
        ax.set_xlabel(f"eigenvalue λ (symlog, linear within ±{c:.1g})", fontsize=8)
        row = h["row"]
        if row["lambda_max"] > 0:
            for lam in (row["lambda_min"], row["lambda_max"]):
                ax.axvline(lam, color=colors[label], ls=":", lw=0.8)
            note = (
                f"neg_share = {_fmt(r['neg_share'], '.2f')}\nneg_mass = {r['neg_mass']:.3f}\n"
                f"λ_min/λ_max = {r['ratio']:.2g}\n(dotted: λ_min, λ_max)"
            )
        else:
            note = "H = 0: every example\nsatisfied (N_Δ = 0),\nno loss, no curvature"
        ax.text(0.03, 0.97, note, transform=ax.transAxes, va="top", fontsize=8,
                bbox={"facecolor": "white", "alpha": 0.85, "lw": 0})  # fmt: skip
        ax.set_title(
            f"{label} {r['model']}, epoch {r['last']}\nphase with this Hessian: "
            f"{r['with_hessian']}",
            fontsize=9,
        )
    panels[0].set_ylabel("density ρ(λ)")
    right.suptitle("(b) end-of-training Hessian densities (SLQ, smoothed in the symlog "
                   "coordinate; 90% band; ticks: the quadrature nodes)", fontsize=10)  # fmt: skip
    fig.suptitle(title)
    return fig


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny configuration (seconds)")
    parser.add_argument("--out", type=Path, default=Path("runs/example-three-phases"))
    args = parser.parse_args(argv)
    s = SETTINGS[args.quick]
    args.out.mkdir(parents=True, exist_ok=True)

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, model, _ in NETS[args.quick]:
            results[label] = train_and_analyse(model, Path(tmp) / label, s, args.quick)
            r = results[label]
            print(f"{label} {model}: {r['online']} at epoch {r['last']} ({r['wall']:.0f} s)")
    print_table(results, s["n"])

    colors = {label: color for label, _, color in NETS[args.quick]}
    title = (
        f"random labels n = {s['n']}, dim = {s['dim']}; one hidden layer, T = 0, quadratic "
        f"hinge, SGD η = {LR}, momentum 0.9, batch {s['batch_size']}, ≤ {s['epochs']} epochs"
    )
    fig = draw(results, colors, s["n"], title)
    path = args.out / "three_phases.png"
    fig.savefig(path, dpi=110)
    print(f"figure: {path}")
    return path


if __name__ == "__main__":
    main()
