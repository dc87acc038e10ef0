"""Cost of the E-step: one EM epoch with sampled gates vs the same epoch of the plain ReLU net.

Three contenders train from the same weights on the same data, batch size and data order:

* ``sample`` — :class:`umwelt.nn.GatedMLP` in ``"sample"`` mode at ``T = 0.1`` (gates drawn);
* ``relu`` — the same ``GatedMLP`` in ``"relu"`` mode;
* ``sequential`` — :func:`umwelt.nn.relu_reference_mlp`, a plain ``nn.Sequential``.

Each repetition times one epoch of each, in alternating order, so drifts in machine load hit
all three alike; the medians and median ratios are reported. Goal: ``sample / relu ≤ 1.3``.
Data is random at the size of scikit-learn's digits (1437 training examples × 64 features).
"""

from __future__ import annotations

import statistics
import time

import torch

from umwelt.nn import (
    GateNoise,
    build_mlp,
    epoch_order,
    make_optimizer,
    relu_reference_mlp,
    train_epoch,
)

GOAL = 1.3


def run(
    quick: bool = False,
    *,
    n: int = 1437,
    widths: tuple[int, ...] = (64, 32, 32, 1),
    batch_size: int = 32,
    temperature: float = 0.1,
    repeats: int = 15,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> dict:
    """Time one training epoch of each contender ``repeats`` times (3 when ``quick``).

    Returns:
        ``{"times": {name: [seconds, ...]}, "median_s": {name: s}, "ratios": {...}, "goal": 1.3,
        "meets_goal": bool, ...}``; ratios are medians of per-repetition ratios.
    """
    if quick:
        repeats = 3
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(n, widths[0], generator=gen, dtype=dtype).to(device)  # (n, n_0)
    teacher = torch.randn(widths[0], generator=gen, dtype=dtype).to(device)
    y = torch.where(X @ teacher > 0, 1.0, -1.0).to(dtype)  # (n,)

    sample = build_mlp(
        widths, temperature=temperature, mode="sample", seed=0, dtype=dtype, device=device
    )
    sample.set_generator(GateNoise(1, device))
    relu = build_mlp(
        widths, temperature=temperature, mode="relu", seed=0, dtype=dtype, device=device
    )
    seq = relu_reference_mlp(relu.to_network(), dtype=dtype, device=device)
    models = {"sample": sample, "relu": relu, "sequential": seq}
    opts = {k: make_optimizer(m, lr=0.01, momentum=0.9) for k, m in models.items()}

    order_gen = torch.Generator().manual_seed(2)

    def epoch(name: str, order: torch.Tensor) -> float:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        train_epoch(models[name], X, y, opts[name], batch_size=batch_size, order=order)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    names = list(models)
    order = epoch_order(n, order_gen)
    for name in names:  # warm-up
        epoch(name, order)
    times: dict[str, list[float]] = {k: [] for k in names}
    for r in range(repeats):
        order = epoch_order(n, order_gen)
        for name in names if r % 2 == 0 else names[::-1]:
            times[name].append(epoch(name, order))

    def ratio(a: str, b: str) -> float:
        return statistics.median(x / z for x, z in zip(times[a], times[b], strict=True))

    med = {k: statistics.median(v) for k, v in times.items()}
    ratios = {
        "sample/relu": ratio("sample", "relu"),
        "sample/sequential": ratio("sample", "sequential"),
        "relu/sequential": ratio("relu", "sequential"),
    }
    print(
        f"one EM epoch: n={n}, widths={widths}, batch={batch_size}, T={temperature}, "
        f"{device}, {str(dtype).removeprefix('torch.')}, {repeats} repeats, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"{'contender':<12}{'median ms':>12}")
    for k in names:
        print(f"{k:<12}{1e3 * med[k]:>12.2f}")
    for k, v in ratios.items():
        print(f"{k:<20}{v:>6.2f}x")
    meets = ratios["sample/relu"] <= GOAL
    print(f"goal sample/relu ≤ {GOAL}x: {'met' if meets else 'NOT met'}")
    return {
        "n": n,
        "widths": widths,
        "batch_size": batch_size,
        "temperature": temperature,
        "repeats": repeats,
        "device": device,
        "times": times,
        "median_s": med,
        "ratios": ratios,
        "goal": GOAL,
        "meets_goal": meets,
    }


if __name__ == "__main__":
    run()
