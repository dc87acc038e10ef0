"""Cost of per-example Hessian entries: the gated passes against ``torch.func``'s per-example
products.

:func:`umwelt.nn.hessian.entry_contributions` needs, for every sampled entry :math:`(j, k)` and
every example :math:`i`, :math:`c_{ijk} = \\partial^2 \\ell_i / \\partial\\theta_j
\\partial\\theta_k`: the bootstrap over the examples resamples them. Two ways, timed side by
side on the same operator data, the same gates and the same entries:

* ``vmap`` — :meth:`~umwelt.nn.hessian.ModelHessian.per_example_hvp` of the columns' unit
  vectors, ``torch.func.vmap`` over the examples of a chunk and over the columns of a chunk
  (forward-over-reverse per example; what every ``ad`` mode took before, and the
  ``torch.func`` modes still take), the entries read off;
* ``gated`` — :meth:`~umwelt.nn.hessian.gated.GatedProducts.example_entries`: with the gates
  fixed, one tangent and one adjoint pass for a block of columns, on the unweighted primal pass
  kept per batch, each example's rows read off the weight-gradient terms without summing over
  the examples; terms known to be zero (below and above the columns' layer) skipped.

``vgg12`` at width 1/8 as ``umwelt train`` initializes it (float64: what ``umwelt hessian``
takes up to 50,000 parameters), on 512 images (the CIFAR-10 subset of
:mod:`sim.benchmarks.hessian_common`, or its stand-in), hinge loss, one thread; the entries are
drawn among the non-zero ones of a few random columns
(:func:`~umwelt.nn.hessian.nonzero_entries`, as :mod:`sim.hessian` draws them), 8 columns per
chunk as it takes them.
Each repetition times both in alternating order (CPU time of the one thread); the cost is
reported per example and distinct column, the speed-up is the median of the per-repetition
ratios, and the largest difference of the two results relative to their largest entry. Goal:
``gated`` at least 5× faster. Measured (CIFAR-10, 13 columns with non-zero entries, 1,600
entries): 0.27 ms per example and column against 7.8 ms, 29×, for the hinge (82% of the
examples active); 0.52 against 9.0 ms, 17×, for the logistic loss (every example, and the
Gauss–Newton part: the adjoints run from the output down); equal to 1.1e-15 and 1.5e-15.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import torch

from sim.benchmarks.hessian_common import (
    CIFAR10_JPEG,
    QUICK_IMAGES,
    QUICK_WIDTH,
    _observation_data,
    _thread_time,
)
from umwelt.nn.hessian import ModelHessian, entry_contributions, nonzero_entries

GOAL_SPEEDUP = 5.0  # gated against vmap, per example and column
WIDTH, IMAGES = 1 / 8, 512  # vgg12's width and the images of the full run
COLUMNS, ENTRIES = 16, 1600  # distinct columns and entries of the full run
COLUMN_CHUNK = 8  # columns per chunk (sim.hessian's)


def per_example_entries(
    quick: bool = False,
    *,
    device: str = "cpu",
    repeats: int = 2,
    loss: str = "hinge",
    data: str | Path = CIFAR10_JPEG,
) -> dict:
    """Time the per-example entries of the gated passes against ``torch.func``'s
    (module docstring), side by side, on one thread.

    Args:
        quick: ``vgg12`` at width 1/16 on 8 synthetic images, 8 columns (seconds).
        device: ``"cpu"`` or ``"cuda"``.
        repeats: repetitions (each times both, in alternating order).
        loss: the operator's loss.
        data: the CIFAR-10 JPEG archive; Gaussian images of the same shape when it is absent.

    Returns:
        ``{"width", "images", "n_params", "columns", "entries", "active", "vmap_ms",
        "gated_ms", "speedup", "max_rel_diff", "goal_met", "threads": 1, "data"}``;
        ``*_ms`` per example and distinct column (median over repetitions).
    """
    from sim.runs.train import TrainConfig, build_model

    width, images, n_cols, K = (
        (QUICK_WIDTH, QUICK_IMAGES, 8, 80) if quick else (WIDTH, IMAGES, COLUMNS, ENTRIES)
    )
    X, y, source = _observation_data(images, quick, Path(data))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        dtype = torch.float64
        model = build_model(
            TrainConfig(model="vgg12", width=width), (3, 32, 32), device=device, dtype=dtype
        )
        X, y = X.to(device), y.to(device=device, dtype=dtype)
        gated = ModelHessian(model, X, y, loss=loss, ad="gated")
        vmap = ModelHessian(model, X, y, loss=loss, ad="fwd-over-rev", gate_masks=gated.gate_masks)
        sample = nonzero_entries(gated, K, n_cols, seed=0)
        results: dict[str, np.ndarray] = {}
        contenders = {
            name: lambda op=op, name=name: results.__setitem__(
                name, entry_contributions(op, sample, column_chunk=COLUMN_CHUNK)
            )
            for name, op in (("vmap", vmap), ("gated", gated))
        }
        contenders["gated"]()  # warm-up: the gated operator's primal passes are kept after it
        times: dict[str, list[float]] = {name: [] for name in contenders}
        for r in range(repeats):
            for name in contenders if r % 2 == 0 else list(contenders)[::-1]:
                times[name].append(_thread_time(contenders[name], device))
        ref, got = results["vmap"], results["gated"]
        diff = float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-300))
        active = 1.0  # the examples with a share in H: all for the logistic loss
        if loss in ("hinge", "quadratic-hinge"):
            active = float((1 - y * gated.outputs() > 0).double().mean())
    finally:
        torch.set_num_threads(threads)
    per = 1e3 / (images * len(np.unique(sample.cols)))  # s -> ms per example and column
    vmap_ms = statistics.median(times["vmap"]) * per
    gated_ms = statistics.median(times["gated"]) * per
    speedup = statistics.median(v / g for v, g in zip(times["vmap"], times["gated"], strict=True))
    out = {
        "width": width,
        "images": images,
        "n_params": gated.n,
        "columns": len(np.unique(sample.cols)),
        "entries": sample.size,
        "active": active,
        "vmap_ms": vmap_ms,
        "gated_ms": gated_ms,
        "speedup": speedup,
        "max_rel_diff": diff,
        "goal_met": speedup >= GOAL_SPEEDUP,
        "threads": 1,
        "data": source,
    }
    clock = "wall" if device.startswith("cuda") else "thread CPU"
    print(
        f"Per-example Hessian entries: vgg12 width {width:g} (N = {gated.n:,}), {images} images, "
        f"{loss} ({active:.0%} active), float64, 1 thread, {device} ({clock} time); "
        f"{out['columns']} columns, {sample.size} entries, {repeats} repeats; data: {source}"
    )
    print(f"{'vmap ms/ex/col':>16}{'gated ms/ex/col':>17}{'speed-up':>10}{'max rel diff':>14}")
    print(f"{vmap_ms:>16.3f}{gated_ms:>17.4f}{speedup:>9.1f}x{diff:>14.1e}")
    print(
        f"  goal gated ≥ {GOAL_SPEEDUP:g}x vmap: {speedup:.1f}x "
        + ("met" if out["goal_met"] else "NOT met")
    )
    return out
