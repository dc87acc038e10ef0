"""Finite-T nets against their ReLU twins on the digits data, across temperatures.

For each temperature T, `umwelt simulate` trains a net by generalized EM (gates sampled at T)
and its ReLU twin from the same initialization and data order. The figure shows, against T:

* test accuracy of the finite-T net (expected accuracy of one sampled net, with its Monte Carlo
  standard error) and of the ensemble prediction, beside the ReLU twin;
* how often the sampled gates agree with the ReLU gates of the same weights, per layer.

At small T the sampled network *is* the ReLU network (agreement → 1); as T grows the gates turn
into coin flips (agreement → 1/2) and the net has to learn with noisy circuits.

Run:  python examples/02_temperature_sweep_digits.py [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from sim.simulate import SimulateConfig, run


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny configuration (seconds)")
    parser.add_argument("--out", type=Path, default=Path("runs/example-temperature-sweep"))
    args = parser.parse_args(argv)

    temperatures = [0.0, 0.5, 5.0] if args.quick else [0.0, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0]
    epochs = 1 if args.quick else 30
    hidden = (8, 8) if args.quick else (32, 32)
    args.out.mkdir(parents=True, exist_ok=True)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for T in temperatures:
            res = run(
                SimulateConfig(
                    temperature=T,
                    hidden=hidden,
                    epochs=epochs,
                    samples=16,
                    out=Path(tmp) / f"T{T:g}",
                )
            )
            s = res.summary
            rows.append(s)
            print(
                f"T = {T:6g}: test acc {s['mc_test_acc']:.3f} ± {s['mc_test_acc_se']:.3f} "
                f"(ensemble {s['ensemble_test_acc']:.3f}), ReLU twin {s['relu_test_acc']:.3f}, "
                f"gate agreement {np.round(s['gate_agreement'], 3).tolist()}"
            )

    Ts = np.array(temperatures)
    x = np.where(Ts > 0, Ts, Ts[Ts > 0].min() / 3)  # draw T = 0 at the left edge of a log axis
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax_acc, ax_agr = fig.subplots(1, 2)
    ax_acc.errorbar(
        x,
        [r["mc_test_acc"] for r in rows],
        yerr=[r["mc_test_acc_se"] for r in rows],
        marker="o",
        capsize=3,
        label="finite-T net (one sampled net)",
    )
    ax_acc.plot(x, [r["ensemble_test_acc"] for r in rows], "s--", label="finite-T ensemble")
    ax_acc.plot(x, [r["relu_test_acc"] for r in rows], "k^:", label="ReLU twin")
    agreement = np.array([r["gate_agreement"] for r in rows])
    for l in range(agreement.shape[1]):
        ax_agr.plot(x, agreement[:, l], "o-", label=f"layer {l + 1}")
    ax_agr.axhline(0.5, color="0.6", lw=0.8, ls="--")
    for ax in (ax_acc, ax_agr):
        ax.set_xscale("log")
        ax.set_xlabel("temperature T (leftmost point: T = 0)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ax_acc.set_ylabel("test accuracy (digits 0–4 vs 5–9)")
    ax_agr.set_ylabel("sampled gates equal to ReLU gates")
    fig.suptitle(f"digits, hidden {hidden}, {epochs} epochs of EM at each T")
    path = args.out / "temperature_sweep.png"
    fig.savefig(path, dpi=120)
    print(f"figure: {path}")
    return path


if __name__ == "__main__":
    main()
