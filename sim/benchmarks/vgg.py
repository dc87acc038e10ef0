"""Training throughput of the gated VGG: sampled gates vs ReLU gates vs a plain ``torch.nn`` VGG.

For each width multiplier of ``vgg12`` four contenders start from the same weights and train on
the same random 32×32 images with the same minibatches (hinge loss, SGD with momentum):

* ``sample`` — :class:`umwelt.nn.GatedVGG` in ``"sample"`` mode at ``T = 0.1`` (gates drawn
  in every layer, the E-step of generalized EM);
* ``sample_tg`` — the same, drawing its uniforms from a :class:`torch.Generator` instead of
  :class:`umwelt.nn.GateNoise` (what the gate noise costs with torch's CPU Mersenne twister);
* ``relu`` — the same ``GatedVGG`` in ``"relu"`` mode;
* ``plain`` — :func:`umwelt.nn.plain_relu_vgg`, an ``nn.Sequential`` of ``Conv2d``/``ReLU``/
  ``MaxPool2d``/``Linear``.

Each repetition times ``steps`` training steps of each contender, in alternating order so that
drifts in machine load hit all alike; throughput is images per second of the median time,
ratios are medians of per-repetition time ratios. Goals: ``sample / relu ≤ 1.3`` and
``relu / plain ≤ 1.1``.
"""

from __future__ import annotations

import statistics
import time

import torch

from umwelt.nn import GateNoise, build_vgg, hinge_loss, make_optimizer, plain_relu_vgg

GOALS = {"sample/relu": 1.3, "relu/plain": 1.1}

# (width, batch size, steps per timing, repeats); full width is ~1 GFLOP per training image.
# 1/8 is the width of the CPU-scale run of issue 4; 1/4 and 1 are the benchmark's.
FULL = ((1 / 8, 32, 4, 9), (1 / 4, 32, 4, 9), (1.0, 16, 2, 7))
QUICK = ((1 / 16, 16, 2, 3),)


def _bench_width(
    width: float,
    batch_size: int,
    steps: int,
    repeats: int,
    *,
    preset: str,
    temperature: float,
    device: str,
    dtype: torch.dtype,
) -> dict:
    gen = torch.Generator().manual_seed(0)
    n = batch_size * steps
    X = torch.randn(n, 3, 32, 32, generator=gen, dtype=dtype).to(device)  # (n, 3, 32, 32)
    y = torch.where(torch.rand(n, generator=gen) < 0.5, 1.0, -1.0).to(dtype=dtype, device=device)

    common = dict(width=width, seed=0, dtype=dtype, device=device)
    sample = build_vgg(preset, temperature=temperature, mode="sample", **common)
    sample.set_generator(GateNoise(1, device))
    sample_tg = build_vgg(preset, temperature=temperature, mode="sample", **common)
    sample_tg.set_generator(torch.Generator(device=device).manual_seed(1))
    relu = build_vgg(preset, temperature=temperature, mode="relu", **common)
    plain = plain_relu_vgg(preset, **common)
    models = {"sample": sample, "sample_tg": sample_tg, "relu": relu, "plain": plain}
    opts = {k: make_optimizer(m, lr=1e-3, momentum=0.9) for k, m in models.items()}

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    def train(name: str) -> float:
        model, opt = models[name], opts[name]
        model.train()
        sync()
        t0 = time.perf_counter()
        for s in range(steps):
            xb = X[s * batch_size : (s + 1) * batch_size]  # (B, 3, 32, 32)
            yb = y[s * batch_size : (s + 1) * batch_size]  # (B,)
            opt.zero_grad(set_to_none=True)
            hinge_loss(model(xb), yb).backward()
            opt.step()
        sync()
        return time.perf_counter() - t0

    names = list(models)
    for name in names:  # warm-up (allocator, oneDNN primitives)
        train(name)
    times: dict[str, list[float]] = {k: [] for k in names}
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            times[name].append(train(name))

    def ratio(a: str, b: str) -> float:
        return statistics.median(x / z for x, z in zip(times[a], times[b], strict=True))

    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "width": width,
        "batch_size": batch_size,
        "steps": steps,
        "repeats": repeats,
        "parameters": sum(p.numel() for p in plain.parameters()),
        "times": times,
        "images_per_s": {k: n / t for k, t in med.items()},
        "ratios": {
            "sample/relu": ratio("sample", "relu"),
            "relu/plain": ratio("relu", "plain"),
            "sample/plain": ratio("sample", "plain"),
            "sample_tg/sample": ratio("sample_tg", "sample"),
        },
    }


def run(
    quick: bool = False,
    *,
    preset: str = "vgg12",
    temperature: float = 0.1,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    configs: tuple[tuple[float, int, int, int], ...] | None = None,
) -> dict:
    """Time training steps of the four contenders at each width.

    Args:
        quick: one tiny width (1/16), a few steps: seconds.
        configs: ``(width, batch size, steps per timing, repeats)`` tuples, overriding the
            defaults (widths 1/8, 1/4 and 1: about half a minute on two cores).

    Returns:
        ``{"results": [per width: {"images_per_s": {...}, "ratios": {...}, "times": ...}],
        "goals": {...}, "meets_goals": bool, ...}``.
    """
    if configs is None:
        configs = QUICK if quick else FULL
    results = [
        _bench_width(w, b, s, r, preset=preset, temperature=temperature, device=device, dtype=dtype)
        for w, b, s, r in configs
    ]
    print(
        f"{preset} training throughput (images/s): T={temperature} for sample, {device}, "
        f"{str(dtype).removeprefix('torch.')}, {torch.get_num_threads()} threads"
    )
    head = f"{'width':>7}{'params':>11}{'batch':>7}{'sample':>9}{'relu':>9}{'plain':>9}"
    head += f"{'sample/relu':>13}{'relu/plain':>12}{'torch-gen/GateNoise':>21}"
    print(head)
    meets = True
    for res in results:
        ips, rat = res["images_per_s"], res["ratios"]
        print(
            f"{res['width']:>7.4g}{res['parameters']:>11,}{res['batch_size']:>7}"
            f"{ips['sample']:>9.1f}{ips['relu']:>9.1f}{ips['plain']:>9.1f}"
            f"{rat['sample/relu']:>12.2f}x{rat['relu/plain']:>11.2f}x"
            f"{rat['sample_tg/sample']:>20.2f}x"
        )
        meets &= all(rat[k] <= g for k, g in GOALS.items())
    goals = ", ".join(f"{k} ≤ {g}x" for k, g in GOALS.items())
    print(f"goals {goals}: {'met' if meets else 'NOT met'} (ratios: medians of time ratios)")
    return {
        "preset": preset,
        "temperature": temperature,
        "device": device,
        "dtype": str(dtype),
        "threads": torch.get_num_threads(),
        "results": results,
        "goals": GOALS,
        "meets_goals": meets,
    }


if __name__ == "__main__":
    run()
