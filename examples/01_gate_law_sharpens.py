"""How the gate law of a 2-2-1 network sharpens into the ReLU gates as T goes from 10 to 0.

The net has two inputs, one hidden layer of two gates and one output. Given an input x, each
gate is open with probability σ(z_i / T), z = Wᵀx. Exact enumeration of all 2² gate
configurations gives the law μ₁(h | x), the mean E[f(x)] and the variance Var[f(x)] exactly.

The figure shows
* top: P(gate 1 open | x) over the input plane at T = 10, 1, 0.1 and 0 — a smooth ramp that
  becomes the half-plane z₁ > 0, the ReLU gate;
* bottom left: the probability of each of the four configurations at one input, against T;
  all mass moves onto the ReLU configuration;
* bottom right: E[f(x)] ± one standard deviation against T, meeting the ReLU output at T → 0.

Run:  python examples/01_gate_law_sharpens.py [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from umwelt import LayeredNetwork
from umwelt.exact import exact_enumeration, layer_distribution


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="coarser grids (seconds)")
    parser.add_argument("--out", type=Path, default=Path("runs/example-gate-law"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    net = LayeredNetwork.he_normal((2, 2, 1), seed=3)
    x0 = np.array([[0.6, 0.9]])
    relu = net.relu_sample(x0)
    print("weights W1 =\n", net.weights[0].round(3), "\nW2 =", net.weights[1].ravel().round(3))
    print(
        f"input x0 = {x0[0]}, logits z = {relu.logits[0][0].round(3)}, "
        f"ReLU gates = {relu.gates[0][0].astype(int)}, ReLU f(x0) = {relu.output[0]:.4f}"
    )

    # -- top row: the gate-1 marginal over the input plane -----------------------------------
    n = 41 if args.quick else 201
    g = np.linspace(-2, 2, n)
    grid = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)
    shown = [10.0, 1.0, 0.1, 0.0]
    fig = Figure(figsize=(13, 7.5), layout="constrained")
    top = fig.subfigures(2, 1)
    axes = top[0].subplots(1, len(shown))
    for ax, T in zip(axes, shown):
        p = exact_enumeration(net, grid, T).marginals[0][:, 0].reshape(n, n)
        im = ax.imshow(p, origin="lower", extent=(-2, 2, -2, 2), vmin=0, vmax=1, cmap="viridis")
        ax.plot(*x0[0], "r*", ms=10)
        ax.set(title=f"T = {T:g}", xlabel="x₁", ylabel="x₂" if T == shown[0] else None)
    top[0].colorbar(im, ax=axes, label="P(gate 1 open | x)")
    top[0].suptitle("the gate marginal sharpens into the ReLU half-plane (red star: x0)")

    # -- bottom row: the law at x0 and the output moments against T ---------------------------
    Ts = np.geomspace(10, 1e-3, 25 if args.quick else 120)
    law = np.concatenate([layer_distribution(net, x0, T, layer=1) for T in Ts])  # (T, 4)
    moments = [exact_enumeration(net, x0, T) for T in Ts]
    mean = np.array([m.mean[0] for m in moments])
    sd = np.sqrt([m.var[0] for m in moments])
    ax_law, ax_f = top[1].subplots(1, 2)
    relu_code = int(relu.gates[0][0] @ np.array([1, 2]))
    for k in range(4):
        bits = f"h = ({k & 1}, {k >> 1 & 1})"
        ax_law.plot(
            Ts,
            law[:, k],
            lw=2.5 if k == relu_code else 1.2,
            label=bits + (" (ReLU gates)" if k == relu_code else ""),
        )
    ax_law.set(xscale="log", xlabel="temperature T", ylabel="μ₁(h | x0)", ylim=(-0.02, 1.02))
    ax_law.invert_xaxis()
    ax_law.legend(fontsize=8)
    ax_f.plot(Ts, mean, label="E[f(x0)] (exact)")
    ax_f.fill_between(Ts, mean - sd, mean + sd, alpha=0.25, label="± sd")
    ax_f.axhline(relu.output[0], color="k", ls="--", label="ReLU f(x0)")
    ax_f.set(xscale="log", xlabel="temperature T", ylabel="network output")
    ax_f.invert_xaxis()
    ax_f.legend(fontsize=8)
    for ax in (ax_law, ax_f):
        ax.grid(alpha=0.3)

    print(
        f"at T = {Ts[-1]:g}: law over configurations = {law[-1].round(4)}, "
        f"E[f] = {mean[-1]:.4f}, sd = {sd[-1]:.2e}"
    )
    path = args.out / "gate_law_sharpens.png"
    fig.savefig(path, dpi=110)
    print(f"figure: {path}")
    return path


if __name__ == "__main__":
    main()
