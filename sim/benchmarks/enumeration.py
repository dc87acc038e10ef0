"""Benchmark: exact enumeration, numba kernel against its plain-numpy twin.

Both backends of :func:`umwelt.exact.exact_enumeration` run on the same network, inputs and
temperature in one process; the numba kernel is compiled (or loaded from its cache) by a warm-up
call first. The rate is gate configurations covered per second, ``B · 2^{n_1+…+n_{L-1}} / t``
with ``t`` the median wall time of several calls. The kernel sums the last hidden layer in
closed form, so part of its speed-up is algorithmic (it visits ``2^{n_{L-1}}`` times fewer
nodes), not only compilation.

Run with ``python -m sim.benchmarks.enumeration``.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from umwelt.exact import exact_enumeration, n_configurations
from umwelt.network import LayeredNetwork


def _median_seconds(fn, repeats: int, min_total: float) -> float:
    """Median wall time of ``fn()`` over at least ``repeats`` calls and ``min_total`` seconds."""
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < min_total:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(quick: bool = False) -> dict:
    """Measure configurations per second of the numba kernel and the numpy twin, side by side.

    Args:
        quick: a small network and few repeats (well under a couple of seconds), for tests.

    Returns:
        ``{"numba_configs_per_s", "numpy_configs_per_s", "speedup", "widths",
        "n_configurations", "batch", "T", "numba_s", "numpy_s"}``; ``n_configurations`` is per
        input and the times are per call (``batch`` inputs).
    """
    widths = (4, 4, 4, 4, 1) if quick else (6, 6, 6, 6, 1)
    batch = 2
    T = 1.0  # every branch has positive probability: no pruning, the full tree
    net = LayeredNetwork.he_normal(widths, seed=0)
    x = np.random.default_rng(1).normal(size=(batch, widths[0]))
    n_conf = n_configurations(net)

    fast = exact_enumeration(net, x, T, backend="numba")  # compile, or load the cache
    ref = exact_enumeration(net, x, T, backend="numpy")
    if not np.allclose(fast.mean, ref.mean, rtol=1e-10, atol=0.0):
        raise RuntimeError(f"backends disagree: numba {fast.mean} vs numpy {ref.mean}")

    numba_s = _median_seconds(
        lambda: exact_enumeration(net, x, T, backend="numba"),
        repeats=5 if quick else 20,
        min_total=0.05 if quick else 0.5,
    )
    numpy_s = _median_seconds(
        lambda: exact_enumeration(net, x, T, backend="numpy"),
        repeats=2 if quick else 3,
        min_total=0.0,
    )
    result = {
        "numba_configs_per_s": batch * n_conf / numba_s,
        "numpy_configs_per_s": batch * n_conf / numpy_s,
        "speedup": numpy_s / numba_s,
        "widths": widths,
        "n_configurations": n_conf,
        "batch": batch,
        "T": T,
        "numba_s": numba_s,
        "numpy_s": numpy_s,
    }
    print(
        f"exact enumeration, widths {'-'.join(map(str, widths))}, T = {T}, "
        f"{batch} inputs x 2^{net.n_gates} = {n_conf} configurations"
    )
    print(f"  {'backend':<8}{'time / call':>14}{'configs / s':>16}")
    print(f"  {'numba':<8}{numba_s * 1e3:>11.3f} ms{result['numba_configs_per_s']:>16.3e}")
    print(f"  {'numpy':<8}{numpy_s * 1e3:>11.3f} ms{result['numpy_configs_per_s']:>16.3e}")
    print(f"  speed-up numba / numpy: {result['speedup']:.0f}x")
    print(
        f"  (the kernel sums the last hidden layer's 2^{widths[-2]} patterns in closed form, "
        "so part of the speed-up is algorithmic)"
    )
    return result


if __name__ == "__main__":
    run()
