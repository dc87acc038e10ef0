"""Benchmark: basis circuits per second, side by side in one run (issue 3).

* **enumeration**: every circuit value of widths 16,32,32,32,1 (524,288 circuits) by the numba
  kernel (:func:`umwelt.circuits.circuit_values`) against ``networkx.all_simple_paths`` on the
  circuit graph (:func:`umwelt.circuits.reference_circuits`), which is timed on a subset of the
  paths and extrapolated (its rate is flat in the number of paths); goal ≥ 1000×;
* **streaming statistics** (:func:`umwelt.circuits.circuit_stats`, with a 100-bin histogram and
  without) on widths 32,64,64,64,1 (8.4·10⁶ circuits) and 64,64,64,64,64,1 (1.07·10⁹); goal
  ≥ 2·10⁸ circuits/s per core, so the rate is reported per numba thread too;
* **perturbations**: first- and second-order (the second on 64,64,64,64,64,64,1, where the
  circuits through two weights are 64³), for all circuits through given weights and for
  uniformly sampled circuits;
* **conv circuits**: uniform samples per second of a VGG-11 at width 1/32 (≈10¹⁷ circuits).

Each measurement (:func:`umwelt.circuits.measure_throughput`) compiles first and reports the
best of a few runs, with ReLU gates (about half closed) or every gate open. Rates count
circuits covered: the streaming kernel handles a row of ``n_{L-1}`` circuits per prefix by
per-row aggregates and binary searches (exactly), and adds a prefix through a closed gate as one
block of zeros, so it covers more circuits per second than it forms products.

Run with ``python -m sim.benchmarks.circuits`` or ``umwelt bench circuits``.
"""

from __future__ import annotations

import time

import numba
import numpy as np

from umwelt.circuits import measure_throughput


def _conv_sampling(quick: bool) -> dict:
    """Uniform circuit samples per second of a VGG-11 at width 1/32 (values included)."""
    from umwelt.circuits import ConvCircuits, ConvNetwork, tiny_conv_network

    if quick:
        net = tiny_conv_network(seed=0, input_shape=(1, 8, 8), channels=(2, 2), pool_after=(1, 1))
        n = 2_000
    else:
        from umwelt.nn import build_vgg

        net = ConvNetwork.from_torch(build_vgg("vgg11", width=1 / 32, temperature=0.0, seed=0))
        n = 100_000
    x = np.random.default_rng(1).normal(size=net.input_shape)
    t0 = time.perf_counter()
    cc = ConvCircuits(net, x)
    build = time.perf_counter() - t0
    cc.sample_paths(10, 0)
    t0 = time.perf_counter()
    p = cc.sample_paths(n, 0)
    cc.values(p)
    s = time.perf_counter() - t0
    return {
        "net": repr(net),
        "n_circuits": cc.count,
        "edges": cc.n_edges,
        "build_s": build,
        "samples": n,
        "samples_per_s": n / s,
    }


def run(quick: bool = False) -> dict:
    """Measure the circuit kernels side by side; print a table and return the numbers.

    Args:
        quick: small nets (a few seconds in all), for tests.

    Returns:
        ``{name: {"widths", "circuits", "seconds", "circuits_per_s", "per_thread", "threads"}}``
        for each measurement, with ``"speedup_vs_networkx"`` and ``"conv_sampling"``.
    """
    threads = numba.get_num_threads()
    enum_w = (8, 16, 16, 1) if quick else (16, 32, 32, 32, 1)
    mid_w = (16, 32, 32, 1) if quick else (32, 64, 64, 64, 1)
    big_w = (16, 32, 32, 32, 1) if quick else (64, 64, 64, 64, 64, 1)
    reps = 1 if quick else 3
    deep_w = (8, 16, 16, 16, 16, 1) if quick else (64, 64, 64, 64, 64, 64, 1)
    sampled = {"max_circuits": 10**5 if quick else 10**6}
    plan = [
        ("enumeration: numba circuit_values", enum_w, "values", {}),
        ("enumeration: networkx all_simple_paths", enum_w, "networkx",
         {"max_circuits": 500 if quick else 20_000, "repeats": 1}),
        ("streaming stats, 100-bin histogram", mid_w, "stats", {}),
        ("streaming stats, no histogram", mid_w, "stats_nohist", {}),
        ("streaming stats, no histogram, gates open", mid_w, "stats_nohist", {"gates": "open"}),
        ("streaming stats, 100-bin histogram", big_w, "stats", {"repeats": 1}),
        ("streaming stats, no histogram", big_w, "stats_nohist", {"repeats": 1}),
        ("streaming stats, no histogram, 1 thread", big_w, "stats_nohist",
         {"repeats": 1, "threads": 1}),
        ("streaming stats, gates open", big_w, "stats_nohist", {"repeats": 1, "gates": "open"}),
        ("streaming stats, gates open, 1 thread", big_w, "stats_nohist",
         {"repeats": 1, "gates": "open", "threads": 1}),
        ("first order: all circuits through W²₀₀", big_w, "first_order", {}),
        ("second order: all through W¹₀₀, Wᴸ₀₀", deep_w, "second_order", {}),
        ("sampled circuits Ψ", mid_w, "sampled", sampled),
        ("sampled first order Ω⁽¹⁾", mid_w, "sampled_first_order", sampled),
        ("sampled second order Ω⁽²⁾", mid_w, "sampled_second_order", sampled),
    ]  # fmt: skip
    result: dict = {"threads": threads}
    print(f"basis circuits, ReLU gates, numba threads: {threads}")
    print(f"  {'measurement':<42}{'widths':>20}{'circuits':>15}{'circuits/s':>13}{'/thread':>11}")
    for label, widths, kind, kw in plan:
        kw = {"repeats": reps, **kw}
        m = measure_throughput(widths, kind, **kw)
        key = f"{kind}:{'-'.join(map(str, widths))}"
        key += ("/open" if kw.get("gates") == "open" else "") + ("/1" if "threads" in kw else "")
        result[key] = {
            "label": label,
            "widths": widths,
            "circuits": m.circuits,
            "seconds": m.seconds,
            "circuits_per_s": m.circuits_per_s,
            "per_thread": m.circuits_per_s_per_thread,
            "threads": m.threads,
            "gates": m.gates,
        }
        ws = "-".join(map(str, widths))
        print(
            f"  {label:<42}{ws:>20}{m.circuits:>15,}{m.circuits_per_s:>13.3e}"
            f"{m.circuits_per_s_per_thread:>11.2e}"
        )
    ew = "-".join(map(str, enum_w))
    speedup = result[f"values:{ew}"]["circuits_per_s"] / result[f"networkx:{ew}"]["circuits_per_s"]
    result["speedup_vs_networkx"] = speedup
    print(
        f"  speed-up numba enumeration / networkx.all_simple_paths on {ew}: {speedup:,.0f}x "
        "(goal ≥ 1000x; networkx timed on a subset of the paths)"
    )
    for w in (mid_w, big_w):
        ws = "-".join(map(str, w))
        for suffix in ("", "/1", "/open", "/open/1"):
            r = result.get(f"stats_nohist:{ws}{suffix}")
            if r is not None:
                print(
                    f"  streaming statistics on {ws}, {r['gates']} gates: {r['per_thread']:.2e} "
                    f"circuits/s per thread, {r['threads']} thread(s) (goal ≥ 2e8 per core)"
                )
    print(
        "  (circuits/s counts circuits covered: the streaming kernel takes a row of n_{L-1} "
        "circuits per prefix from per-row aggregates and binary searches, exactly, and with ReLU "
        "gates adds a prefix through a closed gate as one block of zeros)"
    )
    conv = _conv_sampling(quick)
    result["conv_sampling"] = conv
    print(
        f"  conv circuits, {conv['net']}: {conv['n_circuits']:.3e} circuits, graph of "
        f"{conv['edges']:,} edges built in {conv['build_s']:.2f} s, "
        f"{conv['samples_per_s']:.3e} uniform samples/s (with their values)"
    )
    return result


if __name__ == "__main__":
    run()
