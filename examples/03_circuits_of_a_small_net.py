"""The basis circuits of a 3-3-2-1 network: every input-to-output path, and how they add up.

With its gates fixed, a bias-free network is a sum of paths (THEORY.md §3, eq. 10–11): a
circuit i = (i₀, i₁, i₂) picks one input, one unit of each hidden layer, and has the value

    Ψ_i = x_{i₀} · W¹_{i₀i₁} H¹_{i₁} · W²_{i₁i₂} H²_{i₂} · W³_{i₂0},

so a 3-3-2-1 net has 3·3·2 = 18 circuits, and f(x) = Σ_i Ψ_i. A closed gate (H = 0) zeroes
every circuit through it; flipping one gate changes exactly the circuits through that unit.

The script
* prints every circuit with its path and value, and checks that they add up to f(x);
* flips one gate of the first hidden layer and shows which circuits change, and that the new
  values add up to the output of the net with the flipped gate;
* draws the net with networkx (umwelt.circuits.draw_circuit_graph) before and after the flip,
  with the largest circuit highlighted, beside the 18 values as bars.

Run:  python examples/03_circuits_of_a_small_net.py [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from umwelt import LayeredNetwork
from umwelt.circuits import PathIndex, circuit_graph, circuit_values, draw_circuit_graph


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the same (it takes a second)")
    parser.add_argument("--out", type=Path, default=Path("runs/example-circuits"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    net = LayeredNetwork.he_normal((3, 3, 2, 1), seed=7)
    x = np.array([0.8, -0.5, 1.2])
    gates = [h[0] for h in net.relu_sample(x[None]).gates]  # the ReLU gates of x
    f = float(net.output(x[None], [h[None] for h in gates])[0])
    index = PathIndex.from_network(net)
    paths = index.all_paths()
    psi = circuit_values(net, x, gates)

    print(
        f"input x = {x}, ReLU gates: layer 1 {gates[0].astype(int)}, layer 2 {gates[1].astype(int)}"
    )
    print(f"{'index':>5}  {'path (i0,i1,i2)':<16}{'Ψ':>10}")
    for i, (p, v) in enumerate(zip(paths, psi)):
        print(f"{i:>5}  {str(tuple(int(u) for u in p)):<16}{v + 0.0:>10.4f}")
    print(f"Σ Ψ = {psi.sum():.12f}   f(x) = {f:.12f}   (differ by {abs(psi.sum() - f):.1e})")

    # flip gate 1 of the first hidden layer
    unit = 1
    flipped = [gates[0].copy(), gates[1].copy()]
    flipped[0][unit] = not flipped[0][unit]
    f2 = float(net.output(x[None], [h[None] for h in flipped])[0])
    psi2 = circuit_values(net, x, flipped)
    changed = np.flatnonzero(psi2 != psi)
    through = np.flatnonzero(paths[:, 1] == unit)
    state = "open" if flipped[0][unit] else "closed"
    print(f"\nflip gate {unit} of layer 1 (now {state}): circuits changed {changed.tolist()}")
    print(f"  the circuits through that unit are {through.tolist()}")
    print(f"Σ Ψ' = {psi2.sum():.12f}   f with the flipped gate = {f2:.12f}")
    assert np.isclose(psi.sum(), f, rtol=1e-12, atol=1e-15)
    assert np.isclose(psi2.sum(), f2, rtol=1e-12, atol=1e-15)
    assert set(changed) <= set(through)

    # -- figure: the graph before and after, and the circuit values -----------------------------
    fig = Figure(figsize=(15, 5.4), layout="constrained")
    ax_before, ax_after, ax_bars = fig.subplots(1, 3, width_ratios=[1, 1, 1.3])
    best = int(np.argmax(np.abs(psi)))
    draw_circuit_graph(circuit_graph(net, x, gates), circuit=best, ax=ax_before)
    ax_before.set_title(
        f"ReLU gates of x\nlargest circuit {tuple(int(u) for u in paths[best])}: "
        f"Ψ = {psi[best]:.3f}",
        fontsize=10,
    )
    best2 = int(np.argmax(np.abs(psi2)))
    draw_circuit_graph(circuit_graph(net, x, flipped), circuit=best2, ax=ax_after)
    ax_after.set_title(
        f"gate {unit} of layer 1 flipped ({state})\nlargest circuit "
        f"{tuple(int(u) for u in paths[best2])}: Ψ = {psi2[best2]:.3f}",
        fontsize=10,
    )
    k = np.arange(index.count)
    ax_bars.bar(k - 0.2, psi, width=0.4, label=f"ReLU gates: Σ = f = {f:.3f}")
    ax_bars.bar(k + 0.2, psi2, width=0.4, label=f"gate flipped: Σ = f' = {f2:.3f}")
    for i in through:
        ax_bars.axvspan(i - 0.45, i + 0.45, color="0.9", zorder=0)
    ax_bars.axhline(0, color="0.3", lw=0.8)
    ax_bars.set_xticks(k, [str(tuple(int(u) for u in p)) for p in paths], rotation=90, fontsize=7)
    ax_bars.set(
        ylabel="circuit value Ψ", title="the 18 circuits (shaded: through the flipped gate)"
    )
    ax_bars.legend(fontsize=8)
    fig.suptitle("basis circuits of a 3-3-2-1 net: f(x) is the sum of its input-to-output paths")
    path = args.out / "circuits_of_a_small_net.png"
    fig.savefig(path, dpi=110)
    print(f"figure: {path}")
    return path


if __name__ == "__main__":
    main()
