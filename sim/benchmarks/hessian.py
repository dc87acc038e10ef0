"""Cost of Hessian-vector products, and the memory of stochastic Lanczos quadrature.

For each model (a bias-free MLP; ``vgg12`` at reduced width when
:func:`umwelt.nn.models.build_model` is available), on the same batch and parameters, these
contenders are timed side by side:

* ``grad`` — the gradient of the risk by ``loss.backward()`` (plain autograd; what a training
  step pays), and ``grad_func`` — by ``torch.func.grad`` (the reverse pass inside the HVP);
* ``hvp`` — :meth:`umwelt.nn.hessian.ModelHessian.matvec` with ``ad="fwd-over-rev"``:
  ``torch.func.jvp`` of ``torch.func.grad``;
* ``hvp_rof`` — the same operator with ``ad="rev-over-fwd"`` (``grad`` of the ``jvp``);
* ``hvp_gated`` — with ``ad="gated"``, the default for these nets: the product written out by
  hand (:mod:`umwelt.nn.hessian.gated`), the primal pass kept between products (the first
  product of an operator pays for it: the warm-up), inactive hinges left out (the table gives
  the fraction ``active``);
* ``double_backward`` — PyHessian's HVP: ``autograd.grad`` with ``create_graph=True``, then the
  gradient of :math:`g \\cdot v`.

Each repetition times every contender once, in alternating order, so drifts in machine load hit
all alike; medians and median per-repetition ratios are reported. Goals, for the default
product ``hvp_gated``: ``hvp/grad ≤ 2.5`` and ``double_backward/hvp ≥ 2``.

**Memory of SLQ**: one start vector of ``k`` Lanczos steps with full and with no
re-orthogonalization. *Accounted* is the Lanczos state the algorithm keeps (``k × N`` vs
``3 × N`` numbers); *measured* is the peak increase over the level just before the run — on
CUDA ``torch.cuda.max_memory_allocated``; on CPU the resident set size sampled every 0.5 ms
from ``/proc/self/statm`` by a background thread (``tracemalloc`` does not see torch's
allocations; the allocator may reuse freed memory, so this is a lower bound of what was
touched). ``none`` runs first, so memory it frees cannot hide ``full``'s peak.

The other two Hessian benchmarks that :func:`run` reports after these tables, each in its own
module: **block products** (:func:`~sim.benchmarks.hessian_blocks.block_products`, in
:mod:`sim.benchmarks.hessian_blocks`) and **one full observation**
(:func:`~sim.benchmarks.hessian_observation.observation`, with its before/after estimate, in
:mod:`sim.benchmarks.hessian_observation`); what they share (data, clocks, memory peaks) is in
:mod:`sim.benchmarks.hessian_common`. Every name importable from this module before the split is
importable from it still (re-exported below).
"""

from __future__ import annotations

import os
import statistics

import torch

from sim.benchmarks.hessian_blocks import BLOCK_IMAGES as BLOCK_IMAGES
from sim.benchmarks.hessian_blocks import BLOCK_KS as BLOCK_KS
from sim.benchmarks.hessian_blocks import GOAL_BLOCK as GOAL_BLOCK
from sim.benchmarks.hessian_blocks import block_products as block_products
from sim.benchmarks.hessian_common import CIFAR10_JPEG as CIFAR10_JPEG
from sim.benchmarks.hessian_common import QUICK_IMAGES as QUICK_IMAGES
from sim.benchmarks.hessian_common import QUICK_WIDTH as QUICK_WIDTH
from sim.benchmarks.hessian_common import _observation_data as _observation_data
from sim.benchmarks.hessian_common import _peak as _peak
from sim.benchmarks.hessian_common import _PeakRSS as _PeakRSS
from sim.benchmarks.hessian_common import _sync as _sync
from sim.benchmarks.hessian_common import _thread_time as _thread_time
from sim.benchmarks.hessian_common import _time as _time
from sim.benchmarks.hessian_observation import BEFORE_SETTINGS as BEFORE_SETTINGS
from sim.benchmarks.hessian_observation import GOAL_EPOCH_S as GOAL_EPOCH_S
from sim.benchmarks.hessian_observation import OBSERVATION_IMAGES as OBSERVATION_IMAGES
from sim.benchmarks.hessian_observation import OBSERVATION_WIDTH as OBSERVATION_WIDTH
from sim.benchmarks.hessian_observation import PARTS as PARTS
from sim.benchmarks.hessian_observation import QUICK_SETTINGS as QUICK_SETTINGS
from sim.benchmarks.hessian_observation import REDUCED_SETTINGS as REDUCED_SETTINGS
from sim.benchmarks.hessian_observation import _Clock as _Clock
from sim.benchmarks.hessian_observation import _observation_estimate as _observation_estimate
from sim.benchmarks.hessian_observation import observation as observation
from umwelt.nn import build_mlp
from umwelt.nn.hessian import ModelHessian, slq

GOAL_HVP_OVER_GRAD = 2.5
GOAL_DOUBLE_OVER_HVP = 2.0
COLUMNS = ("grad", "grad_func", "hvp", "hvp_rof", "hvp_gated", "double_backward")


def double_backward_hvp(op: ModelHessian, v: torch.Tensor) -> torch.Tensor:
    """:math:`Hv` by double backward (PyHessian), with the operator's batches and fixed gates."""
    params = {k: p.detach().requires_grad_() for k, p in op.params.items()}
    leaves = list(params.values())
    vs = op.unflatten(v)
    out = torch.zeros_like(v)
    for b in op.batches():
        gs = torch.autograd.grad(op.batch_risk(params, b), leaves, create_graph=True)
        dot = sum((g * vs[k]).sum() for g, k in zip(gs, params, strict=True))
        out += op.flatten(list(torch.autograd.grad(dot, leaves)))
    return out


def autograd_gradient(op: ModelHessian) -> torch.Tensor:
    """The risk's gradient by ``backward()`` (a training step's cost)."""
    params = {k: p.detach().requires_grad_() for k, p in op.params.items()}
    for b in op.batches():
        op.batch_risk(params, b).backward()
    return op.flatten([p.grad for p in params.values()])


def _models(quick: bool, device: str, dtype: torch.dtype, vgg_widths: tuple[float, ...]):
    """``[(label, model, input_shape, batch)]``, and a note when the VGG is unavailable."""
    widths = (64, 64, 64, 1) if quick else (1024, 512, 512, 1)
    out = [
        (
            f"mlp {','.join(map(str, widths))}",
            build_mlp(widths, temperature=0.0, seed=0, dtype=dtype, device=device),
            (widths[0],),
            32 if quick else 256,
        )
    ]
    try:
        from umwelt.nn.models import build_model
    except ImportError:
        return out, "vgg12 skipped: umwelt.nn.models.build_model is not available yet"
    for w in (1 / 16,) if quick else vgg_widths:
        model = build_model(
            "vgg12",
            input_shape=(3, 32, 32),
            temperature=0.0,
            width=w,
            seed=0,
            dtype=dtype,
            device=device,
        )
        out.append((f"vgg12 width {w:g}", model, (3, 32, 32), 4 if quick else 32))
    return out, None


def _slq_memory(op: ModelHessian, k: int, device: str) -> dict[str, dict[str, float]]:
    item = torch.finfo(op.dtype).bits // 8
    out: dict[str, dict[str, float]] = {}
    for reorth in ("none", "full"):
        accounted = (k if reorth == "full" else 3) * op.n * item
        if device.startswith("cuda"):
            torch.cuda.synchronize()
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            slq(op, k, 1, seed=0, reorth=reorth, block=1)
            torch.cuda.synchronize()
            measured = torch.cuda.max_memory_allocated() - base
            method = "torch.cuda.max_memory_allocated"
        elif os.path.exists("/proc/self/statm"):
            with _PeakRSS() as m:
                slq(op, k, 1, seed=0, reorth=reorth, block=1)
            measured = m.peak - m.base
            method = "peak RSS (/proc/self/statm, 0.5 ms polling)"
        else:
            measured, method = float("nan"), "unavailable"
        out[reorth] = {"accounted_MB": accounted / 2**20, "measured_MB": measured / 2**20}
    out["method"] = method  # type: ignore[assignment]
    return out


def run(
    quick: bool = False,
    *,
    repeats: int = 7,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    vgg_widths: tuple[float, ...] = (1 / 8, 1 / 4),
    lanczos_steps: int = 40,
) -> dict:
    """Time gradient, forward-over-reverse HVP and double-backward HVP; measure SLQ memory.

    Args:
        quick: tiny models, 3 repetitions (seconds).
        repeats: repetitions per contender.
        device: ``"cpu"`` or ``"cuda"``.
        dtype: parameter dtype.
        vgg_widths: width multipliers of ``vgg12`` (full: add ``1.0``).
        lanczos_steps: ``k`` of the SLQ memory measurement.

    Returns:
        ``{"models": {label: {"n_params", "batch", "median_s": {...}, "ratios": {...},
        "max_rel_diff_db": ..., "meets_goals": {...}}}, "slq_memory": {...}, "note": ...,
        "observation": {...}}`` (the last: :func:`observation`).
    """
    if quick:
        repeats, lanczos_steps = 3, 10
    gen = torch.Generator().manual_seed(0)
    models, note = _models(quick, device, dtype, vgg_widths)
    results: dict[str, dict] = {}
    memory: dict[str, dict] = {}
    print(
        f"Hessian-vector products: {device}, {str(dtype).removeprefix('torch.')}, "
        f"{repeats} repeats, {torch.get_num_threads()} threads, hinge loss, T = 0"
    )
    for label, model, shape, batch in models:
        X = torch.randn(batch, *shape, generator=gen, dtype=dtype).to(device)
        y = torch.where(torch.rand(batch, generator=gen) < 0.5, -1.0, 1.0).to(dtype).to(device)
        op = ModelHessian(model, X, y, loss="hinge", column_chunk=1, ad="fwd-over-rev")
        rof = ModelHessian(model, X, y, loss="hinge", column_chunk=1, ad="rev-over-fwd")
        gated = ModelHessian(model, X, y, loss="hinge", ad="gated")  # primal pass kept
        v = torch.randn(op.n, generator=gen, dtype=dtype).to(device)
        contenders = {
            "grad": lambda op=op: autograd_gradient(op),
            "grad_func": lambda op=op: op.gradient(),
            "hvp": lambda op=op, v=v: op.matvec(v),
            "hvp_rof": lambda op=rof, v=v: op.matvec(v),
            "hvp_gated": lambda op=gated, v=v: op.matvec(v),
            "double_backward": lambda op=op, v=v: double_backward_hvp(op, v),
        }
        hv, hv_db = op.matvec(v), double_backward_hvp(op, v)  # warm-up, and agreement
        diff = float((hv - hv_db).abs().max() / hv.abs().max().clamp_min(1e-30))
        for fn in contenders.values():
            fn()
        names = list(contenders)
        times: dict[str, list[float]] = {k: [] for k in names}
        for r in range(repeats):
            for name in names if r % 2 == 0 else names[::-1]:
                times[name].append(_time(contenders[name], device))

        def ratio(a: str, b: str, times=times) -> float:
            return statistics.median(x / z for x, z in zip(times[a], times[b], strict=True))

        ratios = {
            "hvp/grad": ratio("hvp", "grad"),
            "hvp/grad_func": ratio("hvp", "grad_func"),
            "double_backward/hvp": ratio("double_backward", "hvp"),
            "hvp_rof/grad": ratio("hvp_rof", "grad"),
            "double_backward/hvp_rof": ratio("double_backward", "hvp_rof"),
            "hvp_gated/grad": ratio("hvp_gated", "grad"),
            "double_backward/hvp_gated": ratio("double_backward", "hvp_gated"),
        }
        active = float((1 - y * op.outputs() > 0).double().mean())  # hinges with a share in H
        results[label] = {
            "n_params": op.n,
            "batch": batch,
            "median_s": {k: statistics.median(t) for k, t in times.items()},
            "ratios": ratios,
            "max_rel_diff_db": diff,
            "max_rel_diff_gated": float(
                (gated.matvec(v) - hv).abs().max() / hv.abs().max().clamp_min(1e-30)
            ),
            "active_hinges": active,
            "gated_cached_MB": gated.cached_bytes / 2**20,
            "meets_goals": {  # the operator's default product (ad="auto": gated here)
                "hvp/grad": ratios["hvp_gated/grad"] <= GOAL_HVP_OVER_GRAD,
                "double_backward/hvp": ratios["double_backward/hvp_gated"] >= GOAL_DOUBLE_OVER_HVP,
            },
        }
        if label.startswith("mlp") or not memory:
            memory = {"model": label, "n_params": op.n, "k": lanczos_steps}
            memory.update(_slq_memory(op, lanczos_steps, device))

    head = f"{'model':<20}{'N':>10}{'batch':>6}" + "".join(f"{k + ' ms':>20}" for k in COLUMNS)
    print(head)
    for label, r in results.items():
        ms = r["median_s"]
        print(
            f"{label:<20}{r['n_params']:>10,}{r['batch']:>6}"
            + "".join(f"{1e3 * ms[k]:>20.2f}" for k in COLUMNS)
        )
    print(
        f"{'model':<20}{'hvp/grad':>10}{'hvp/grad_func':>15}{'db/hvp':>10}{'rof/grad':>10}"
        f"{'db/rof':>10}{'gated/grad':>12}{'db/gated':>10}{'|Hv-Hv_db|':>12}{'active':>8}"
    )
    for label, r in results.items():
        q = r["ratios"]
        print(
            f"{label:<20}{q['hvp/grad']:>9.2f}x{q['hvp/grad_func']:>14.2f}x"
            f"{q['double_backward/hvp']:>9.2f}x{q['hvp_rof/grad']:>9.2f}x"
            f"{q['double_backward/hvp_rof']:>9.2f}x{q['hvp_gated/grad']:>11.2f}x"
            f"{q['double_backward/hvp_gated']:>9.2f}x{r['max_rel_diff_db']:>12.1e}"
            f"{r['active_hinges']:>8.0%}"
        )
    print(
        f"goals, for the default product (gated): hvp/grad ≤ {GOAL_HVP_OVER_GRAD}x, "
        f"double_backward/hvp ≥ {GOAL_DOUBLE_OVER_HVP}x (active: the hinges with a share in H; "
        "the gated product leaves the others out, so db/gated grows as fewer are active)"
    )
    for label, r in results.items():
        g = r["meets_goals"]
        print(
            f"  {label}: hvp/grad {'met' if g['hvp/grad'] else 'NOT met'}, "
            f"db/hvp {'met' if g['double_backward/hvp'] else 'NOT met'}"
        )
    print(
        f"SLQ memory, one start vector, k = {memory['k']}, {memory['model']} "
        f"(N = {memory['n_params']:,}); measured: {memory['method']}"
    )
    print(f"{'reorth':<8}{'accounted MB':>14}{'measured MB':>14}")
    for reorth in ("none", "full"):
        m = memory[reorth]
        print(f"{reorth:<8}{m['accounted_MB']:>14.1f}{m['measured_MB']:>14.1f}")
    if note:
        print(note)
    return {
        "device": device,
        "dtype": str(dtype),
        "repeats": repeats,
        "threads": torch.get_num_threads(),
        "models": results,
        "slq_memory": memory,
        "goals": {"hvp/grad": GOAL_HVP_OVER_GRAD, "double_backward/hvp": GOAL_DOUBLE_OVER_HVP},
        "note": note,
        "blocks": block_products(quick, device=device),
        "observation": _observation_estimate(quick, device),
    }


if __name__ == "__main__":
    run()
