"""Cost of block products: ``matmat`` of ``k`` vectors against ``k`` Hessian-vector products.

**Block products** (:func:`block_products`): ``matmat`` of ``k`` vectors — one tangent and
one adjoint pass for all ``k`` (:mod:`umwelt.nn.hessian.gated`) — against ``k`` products,
``k = 1, 4, 8, 16``, on ``vgg12`` at widths 1/8 and 1/4 as ``umwelt train`` initializes it, on
512 images (the CIFAR-10 subset of :mod:`sim.benchmarks.hessian_common`, or its stand-in),
hinge loss, one thread, in float64 (what ``umwelt hessian`` takes up to 50,000 parameters) and
float32. Each repetition times one product and every ``matmat(k)`` in alternating order; the
speed-up is the median over repetitions of ``k × product / matmat(k)``, in CPU time of the one
thread (a shared machine's waits left out). Memory: *stated* is the operator's bound on what a
``matmat(k)`` holds beyond the kept primal passes
(:meth:`~umwelt.nn.hessian.ModelHessian.block_memory`, within the cache setting), *measured*
the peak increase during ``matmat(k)`` (:func:`~sim.benchmarks.hessian_common._peak`, as for
the SLQ memory of :mod:`sim.benchmarks.hessian`; a lower bound: the allocator reuses what the
warm-up freed). Goals at ``k = 8``: ≥ 3× at width 1/8, ≥ 1.5× at width 1/4. What the
library's convolution kernels allow a block at these shapes, term by term and without the
gating: :mod:`sim.benchmarks.kernels` (``umwelt bench kernels``).

:func:`sim.benchmarks.hessian.run` runs it after the product costs.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import torch

from sim.benchmarks.hessian_common import (
    CIFAR10_JPEG,
    QUICK_IMAGES,
    QUICK_WIDTH,
    _observation_data,
    _peak,
    _thread_time,
)
from umwelt.nn.hessian import ModelHessian

GOAL_BLOCK = {1 / 8: 3.0, 1 / 4: 1.5}  # matmat(8) against 8 products, vgg12 at these widths
BLOCK_KS = (1, 4, 8, 16)  # the block sizes timed
BLOCK_IMAGES = 512  # images of the block-product timing


def block_products(
    quick: bool = False,
    *,
    device: str = "cpu",
    widths: tuple[float, ...] = tuple(GOAL_BLOCK),
    images: int = BLOCK_IMAGES,
    ks: tuple[int, ...] = BLOCK_KS,
    dtypes: tuple[torch.dtype, ...] = (torch.float64, torch.float32),
    repeats: int = 2,
    data: str | Path = CIFAR10_JPEG,
) -> dict:
    """Time ``matmat`` of ``k`` vectors against ``k`` products, side by side (module docstring).

    Args:
        quick: width 1/16, 8 synthetic images, ``k = 1, 4``, float32 (seconds).
        device: ``"cpu"`` or ``"cuda"``.
        widths: ``vgg12`` width multipliers.
        images: training images of the risk.
        ks: the block sizes.
        dtypes: parameter dtypes.
        repeats: repetitions.
        data: the CIFAR-10 JPEG archive; Gaussian images of the same shape when it is absent.

    Returns:
        ``{"rows": [{"dtype", "width", "n_params", "active", "product_s", "matmat_s": {k: s},
        "speedup": {k: x}, "stated_MB": {k: MB}, "measured_MB": {k: MB}, "max_rel_diff"}],
        "threads": 1, "data": ...}``.
    """
    from sim.runs.train import TrainConfig, build_model

    if quick:
        widths, images, ks, repeats = (QUICK_WIDTH,), QUICK_IMAGES, (1, 4), 2
        dtypes = (torch.float32,)
    X, y, source = _observation_data(images, quick, Path(data))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rows = []
    try:
        for dtype in dtypes:
            for w in widths:
                model = build_model(
                    TrainConfig(model="vgg12", width=w), (3, 32, 32), device=device, dtype=dtype
                )
                yd = y.to(device=device, dtype=dtype)
                op = ModelHessian(model, X.to(device), yd, loss="hinge", ad="gated")
                gen = torch.Generator().manual_seed(1)
                V = torch.randn(op.n, max(ks), generator=gen, dtype=dtype).to(device)
                cols = torch.stack([op.matvec(V[:, j]) for j in range(max(ks))], dim=1)
                diff = float((op.matmat(V) - cols).abs().max() / cols.abs().max())  # + warm-up
                contenders = {0: lambda op=op, V=V: op.matvec(V[:, 0])}
                contenders |= {k: lambda op=op, V=V, k=k: op.matmat(V[:, :k]) for k in ks}
                times: dict[int, list[float]] = {k: [] for k in contenders}
                for r in range(repeats):
                    for k in contenders if r % 2 == 0 else list(contenders)[::-1]:
                        times[k].append(_thread_time(contenders[k], device))
                speedup = {
                    k: statistics.median(
                        k * t1 / tk for t1, tk in zip(times[0], times[k], strict=True)
                    )
                    for k in ks
                }
                rows.append(
                    {
                        "dtype": str(dtype).removeprefix("torch."),
                        "width": w,
                        "n_params": op.n,
                        "active": float((1 - yd * op.outputs() > 0).double().mean()),
                        "product_s": statistics.median(times[0]),
                        "matmat_s": {k: statistics.median(times[k]) for k in ks},
                        "speedup": speedup,
                        "stated_MB": {k: op.block_memory(k) / 2**20 for k in ks},
                        "measured_MB": {k: _peak(contenders[k], device) / 2**20 for k in ks},
                        "cached_MB": op.cached_bytes / 2**20,
                        "max_rel_diff": diff,
                    }
                )
    finally:
        torch.set_num_threads(threads)
    print(
        f"Block products (gated): matmat(k) against k products, vgg12, {images} images, hinge, "
        f"1 thread, {device} ({'wall' if device.startswith('cuda') else 'thread CPU'} time); "
        f"{repeats} repeats; data: {source}"
    )
    print(
        f"{'dtype':<9}{'width':>7}{'N':>10}{'active':>8}{'product s':>11}"
        + "".join(f"{f'k={k}: s':>10}{'x':>7}" for k in ks)
        + f"{'MB stated/measured (k=' + str(max(ks)) + ')':>30}{'|HV-cols|':>11}"
    )
    for r in rows:
        mb = f"{r['stated_MB'][max(ks)]:.1f}/{r['measured_MB'][max(ks)]:.1f}"
        print(
            f"{r['dtype']:<9}{r['width']:>7g}{r['n_params']:>10,}{r['active']:>8.0%}"
            f"{r['product_s']:>11.3f}"
            + "".join(f"{r['matmat_s'][k]:>10.3f}{r['speedup'][k]:>6.2f}x" for k in ks)
            + f"{mb:>30}{r['max_rel_diff']:>11.1e}"
        )
    goals = {}
    if 8 in ks:
        for r in rows:
            goal = GOAL_BLOCK.get(r["width"])
            if goal is not None:
                key = f"{r['dtype']} width {r['width']:g}"
                goals[key] = r["speedup"][8] >= goal
                print(
                    f"  goal matmat(8) ≥ {goal:g}x 8 products, {key}: {r['speedup'][8]:.2f}x "
                    + ("met" if goals[key] else "NOT met")
                )
    return {"rows": rows, "threads": 1, "data": source, "goals": goals}
