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

**Block products** (:func:`block_products`): ``matmat`` of ``k`` vectors — one tangent and
one adjoint pass for all ``k`` (:mod:`umwelt.nn.hessian.gated`) — against ``k`` products,
``k = 1, 4, 8, 16``, on ``vgg12`` at widths 1/8 and 1/4 as ``umwelt train`` initializes it, on
512 images (the CIFAR-10 subset below, or its stand-in), hinge loss, one thread, in float64
(what ``umwelt hessian`` takes up to 50,000 parameters) and float32. Each repetition times one
product and every ``matmat(k)`` in alternating order; the speed-up is the median over
repetitions of ``k × product / matmat(k)``, in CPU time of the one thread (a shared machine's
waits left out). Memory: *stated* is the operator's bound on what a ``matmat(k)`` holds beyond
the kept primal passes (:meth:`~umwelt.nn.hessian.ModelHessian.block_memory`, within the cache
setting), *measured* the peak increase during ``matmat(k)`` as for SLQ below (a lower bound: the
allocator reuses what the warm-up freed). Goals at ``k = 8``: ≥ 3× at width 1/8, ≥ 1.5× at
width 1/4.

**One full observation** (:func:`observation`): what ``umwelt hessian`` computes for one epoch
(:mod:`sim.hessian`'s own per-epoch functions, its default settings), for ``vgg12`` at width
1/8 as ``umwelt train`` initializes it, on 2,000 images — a balanced cat/dog subset of the
CIFAR-10 JPEG tree at ``../shared/data/cifar10-jpeg.tar.gz`` from the project root when it is
there, else Gaussian images of the same shape (the output says which). Its wall time is split
into operator construction (with the gate sample), the extremes, the risk and active fraction,
the SLQ products, the density and summary computed from them, the hinge checks (exact diagonal
entries and the trace test) and the sampled entries (columns, per-example contributions,
bootstrap); the parts partition the total. Every Hessian-vector product on the full data is
counted and timed, and the per-example products of the entries separately.
"""

from __future__ import annotations

import bisect
import copy
import os
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from umwelt.nn import build_mlp
from umwelt.nn.hessian import ModelHessian, slq

GOAL_HVP_OVER_GRAD = 2.5
GOAL_DOUBLE_OVER_HVP = 2.0
GOAL_BLOCK = {1 / 8: 3.0, 1 / 4: 1.5}  # matmat(8) against 8 products, vgg12 at these widths
BLOCK_KS = (1, 4, 8, 16)  # the block sizes timed
BLOCK_IMAGES = 512  # images of the block-product timing
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


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _time(fn: Callable[[], object], device: str) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


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


class _PeakRSS:
    """Peak resident set size (bytes) seen by a thread polling ``/proc/self/statm``."""

    def __init__(self, interval: float = 5e-4):
        self.interval = interval
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.peak = 0
        self._stop = threading.Event()

    def rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(self.interval)

    def __enter__(self) -> _PeakRSS:
        self.base = self.rss()
        self.peak = self.base
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())


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


#: the full benchmark's *before*: the analysis as it was before issue 13 (float64 products,
#: the extremes by a separate Lanczos pass, per-example entries by torch.func, every entry in
#: the columns: no uniform ones) with fewer
#: products of each kind, its time scaled to
#: the default counts (each float64 product on 2,000 images costs seconds on a CPU)
BEFORE_SETTINGS = {"dtype": "float64", "extremes": "lanczos", "corr_entries": "columns"}
REDUCED_SETTINGS = {
    "lanczos_steps": 8,
    "start_vectors": 2,
    "extreme_steps": 8,
    "entry_columns": 4,
    "hinge_coords": 4,
}
GOAL_EPOCH_S = 600.0  # the default epoch on vgg12 width 1/8, 2,000 images, 2 cores (issue 13)


def _observation_estimate(quick: bool, device: str) -> dict:
    """The default epoch before and after, in one run: *before* — :func:`observation` with
    :data:`BEFORE_SETTINGS` and :data:`REDUCED_SETTINGS`, its time estimated for ``umwelt
    hessian``'s default counts (each part's measured seconds per product times the default
    number of its products, plus its time outside products as measured; the per-example
    products of the entries scale with the number of columns); *after* — :func:`observation`
    at the defaults, measured. Quick: one quick observation."""
    if quick:
        return observation(True, device=device)
    r = observation(
        False, device=device, settings=BEFORE_SETTINGS | REDUCED_SETTINGS, vmap_entries=True
    )
    from sim.hessian import HessianConfig

    d, got = HessianConfig(), r["settings"]
    k_d = min(80, r["n_params"])
    hinge = got.get("hinge_coords", d.hinge_coords)
    counts = {  # default products per part
        "extremes": k_d,
        "slq": k_d * d.start_vectors,
        "checks": r["hvps"]["checks"] - hinge + d.hinge_coords,  # + the trace test's, as measured
        "entries": d.entry_columns,
    }
    col_scale = d.entry_columns / max(got["entry_columns"], 1)
    est = sum(r["parts_s"].values()) - sum(r["hvp_s"].values()) - r["per_example"]["seconds"]
    for part, n in counts.items():
        if r["hvps"][part]:
            est += n * r["hvp_s"][part] / r["hvps"][part]
    est += r["per_example"]["seconds"] * col_scale
    r["default_products"] = counts
    r["estimated_default_s"] = est
    print(
        f"before, at umwelt hessian's default counts ({sum(counts.values())} full-data "
        "products: "
        + ", ".join(f"{k} {n}" for k, n in counts.items())
        + f"; per-example products × {col_scale:g}) this observation would take about "
        f"{est:,.0f} s = {est / 3600:.2f} h (measured seconds per product × counts)"
    )
    after = observation(False, device=device)
    t = after["total_s"]
    print(
        f"Default epoch, before → after: about {est:,.0f} s (estimated) → {t:,.0f} s "
        f"(measured; {after['n_hvp']} full-data products), {est / t:.1f}× faster; goal ≤ "
        f"{GOAL_EPOCH_S:.0f} s: {'met' if t <= GOAL_EPOCH_S else 'NOT met'}"
    )
    return {"before": r, "after": after, "speedup": est / t, "goal_met": t <= GOAL_EPOCH_S}


# -- one full observation --------------------------------------------------------------------------

OBSERVATION_WIDTH = 1 / 8  # vgg12 width of the full-size observation (issue 5)
OBSERVATION_IMAGES = 2000  # training images of the full-size observation
QUICK_WIDTH, QUICK_IMAGES = 1 / 16, 8
#: quick mode: every count of the analysis cut to a few products (the rest: umwelt's defaults)
QUICK_SETTINGS = {
    "lanczos_steps": 4,
    "start_vectors": 2,
    "extreme_steps": 4,
    "entries": 8,
    "entry_columns": 4,
    "bootstrap": 20,
    "hinge_coords": 2,
    "grid_points": 51,
}
CIFAR10_JPEG = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "cifar10-jpeg.tar.gz"
)
# (key, label) of the parts of an observation, in the order they run
PARTS = (
    ("operator", "operator + gate sample"),
    ("slq", "density: SLQ products"),
    ("extremes", "extremes (a separate pass)"),
    ("density", "risk, grid, band, summary"),
    ("checks", "hinge checks: diagonal, trace"),
    ("entries", "entries: columns, bootstrap"),
    ("roundoff", "float32 round-off check"),
)


class _Clock:
    """Timestamps of one observation: each product on the operator, and each stage report.

    :meth:`watch` shadows the operator's ``matvec``, ``matmat`` and ``per_example_entries``
    on the instance (``vmap_twin``: the latter taken by that operator instead, ``torch.func``'s
    as before issue 13), so the analysis runs on the same object. :meth:`stage` is the
    analysis's progress callback, called after the products it counts: a stage's first product
    is the first one that ends before a report of it and after every report of another stage.
    """

    def __init__(self, echo: bool, vmap_twin: Callable[[], ModelHessian] | None = None):
        self.vmap_twin = vmap_twin  # the operator whose per-example entries are timed instead
        self.t0 = time.perf_counter()
        self.products: list[tuple[float, float, int, bool]] = []  # (start, end, vectors, full)
        self.stages: list[tuple[float, str]] = []
        self._echo = echo
        self._shown: tuple[str, int] = ("", -1)

    def watch(self, op: ModelHessian) -> None:
        def timed(fn: Callable, vectors: Callable[[torch.Tensor], int]) -> Callable:
            def product(v):
                t = time.perf_counter()
                out = fn(v)
                self.products.append((t, time.perf_counter(), vectors(v), True))
                return out

            return product

        op.matvec = timed(op.matvec, lambda v: 1)
        op.matmat = timed(op.matmat, lambda V: V.shape[1])
        entries = op.per_example_entries

        def per_example_entries(rows, cols, **kw):
            t = time.perf_counter()
            # vmap_entries: the per-example products as before issue 13, by torch.func
            source = entries if self.vmap_twin is None else self.vmap_twin().per_example_entries
            out = source(rows, cols, **kw)
            n = out.shape[0] * len(np.unique(np.asarray(cols)))
            self.products.append((t, time.perf_counter(), n, False))
            return out

        op.per_example_entries = per_example_entries

    def stage(self, name: str, done: int = 0, total: int = 0, info: str = "") -> None:
        self.stages.append((time.perf_counter(), name))
        tenth = 10 * done // total if total else 10
        if self._echo and (name, tenth) != self._shown:
            self._shown = (name, tenth)
            at = time.perf_counter() - self.t0
            print(f"  {at:9.1f} s  {name} {done}/{total}", flush=True)

    def _first_start(self, name: str, default: float) -> float:
        times = [t for t, _ in self.stages]
        starts = [p[0] for p in self.products if self._label(times, p[1]) == name]
        return min(starts, default=default)

    def _last_stage(self, name: str, default: float) -> float:
        return max((t for t, s in self.stages if s == name), default=default)

    def _label(self, times: list[float], end: float) -> str:
        """The stage reported first after ``end`` (``times``: of the reports)."""
        i = bisect.bisect_left(times, end)
        return self.stages[i][1] if i < len(self.stages) else ""

    def bounds(self, start: float, built: float, spectrum: float, end: float) -> list[float]:
        """The times that cut ``[start, end]`` into the :data:`PARTS`, in order.

        ``built`` ends the operator's construction, ``spectrum`` the SLQ run and the extremes
        (:func:`sim.hessian.spectrum`), ``end`` the epoch's analysis; the round-off check runs
        after it. Within a stage runs from its first product to its last report (a stage that
        did not run takes no time).
        """
        b = [start, built]
        b.append(self._last_stage("slq", built))
        b.append(spectrum)  # the separate extremes pass, if there was one
        b.append(self._first_start("checks", self._first_start("entries", end)))
        b.append(self._last_stage("checks", b[-1]))
        b.append(end)
        return b

    def products_in(self, bounds: list[float], full: bool) -> dict[str, tuple[int, float]]:
        """Per part (by start time): ``(vectors, seconds)`` of the full-data (or per-example)
        products."""
        out = {key: (0, 0.0) for key, _ in PARTS}
        for t, e, k, f in self.products:
            if f == full:
                key = PARTS[min(max(bisect.bisect_right(bounds, t) - 1, 0), len(PARTS) - 1)][0]
                n, s = out[key]
                out[key] = (n + k, s + e - t)
        return out


def _observation_data(n: int, quick: bool, path: Path) -> tuple[torch.Tensor, torch.Tensor, str]:
    """``(X (n, 3, 32, 32) float32, y (n,) ±1, description)`` — CIFAR-10 or a stand-in."""
    if not quick and path.is_file():
        from umwelt.data import load_dataset

        # as umwelt train loads it (cat, dog; balanced subset; training statistics)
        ds = load_dataset(str(path), seed=0, subset=n, subset_test=2)
        X, y = torch.as_tensor(ds.X_train), torch.as_tensor(ds.y_train)
        return X, y, f"CIFAR-10 {ds.info['classes']}, balanced subset ({path.name})"
    why = "quick mode" if quick else f"no {path}"
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(n, 3, 32, 32, generator=gen)  # (n, 3, 32, 32)
    y = torch.ones(n)
    y[torch.randperm(n, generator=gen)[: n // 2]] = -1.0
    return X, y, f"synthetic stand-in: Gaussian images, balanced random labels ({why})"


def observation(
    quick: bool = False,
    *,
    width: float | None = None,
    images: int | None = None,
    settings: dict | None = None,
    data: str | Path = CIFAR10_JPEG,
    device: str = "cpu",
    vmap_entries: bool = False,
) -> dict:
    """Time one full Hessian observation — one epoch of ``umwelt hessian`` — part by part.

    Runs :mod:`sim.hessian`'s functions of one epoch in its order (operator, extremes, then
    :func:`sim.hessian.analyse_epoch`: risk, SLQ density, summary, hinge checks, entries) on
    ``vgg12`` with ``umwelt train``'s initial weights, as the first epoch of a run: the density
    grid's bound is ``grid_margin`` × the largest extreme. The dtype is ``umwelt hessian``'s
    ``auto`` (float64 up to :data:`~sim.runs.hessian.AUTO_FLOAT64_LIMIT` parameters), or
    ``settings["dtype"]``.

    Args:
        quick: width 1/16, 8 synthetic images, :data:`QUICK_SETTINGS` (seconds).
        width: ``vgg12`` width multiplier (default 1/8).
        images: training images analysed (default 2,000).
        settings: :class:`sim.hessian.HessianConfig` fields to change (default: none, i.e.
            ``umwelt hessian``'s defaults; quick: :data:`QUICK_SETTINGS`).
        data: the CIFAR-10 JPEG archive; Gaussian images of the same shape when it is absent.
        device: ``"cpu"`` or ``"cuda"``.
        vmap_entries: the per-example entries by ``torch.func`` (``vmap``), as before the
            gated per-example passes.

    Returns:
        ``{"parts_s": {part: s}, "total_s", "analysis_wall_s" (sim.hessian's own clock of the
        epoch's analysis), "hvps": {part: count}, "hvp_s": {part: s}, "n_hvp", "s_per_hvp",
        "per_example": {...}, "settings", "row", "data", ...}``.
    """
    from sim import hessian as sh
    from sim.runs.train import TrainConfig, build_model

    width = width or (QUICK_WIDTH if quick else OBSERVATION_WIDTH)
    images = images or (QUICK_IMAGES if quick else OBSERVATION_IMAGES)
    changes = dict(QUICK_SETTINGS if quick and settings is None else settings or {})
    cfg = sh.HessianConfig(device=device, figures=False, **changes)
    t = time.perf_counter()
    X, y, source = _observation_data(images, quick, Path(data))
    data_s = time.perf_counter() - t
    train = TrainConfig(model="vgg12", width=width)
    n_params = sum(
        p.numel()
        for p in build_model(train, (3, 32, 32), device="cpu", dtype=torch.float32).parameters()
        if p.requires_grad
    )
    if cfg.dtype == "auto":
        dtype = torch.float64 if n_params <= sh.AUTO_FLOAT64_LIMIT else torch.float32
    else:
        dtype = getattr(torch, cfg.dtype)
    model = build_model(train, (3, 32, 32), device=device, dtype=dtype)
    seeds = sh.stream_seeds(cfg.seed)
    label = f"vgg12 width {width:g}"
    print(
        f"One Hessian observation (umwelt hessian, one epoch): {label}, N = {n_params:,}, "
        f"{images:,} images, {device}, {str(dtype).removeprefix('torch.')}, "
        f"{torch.get_num_threads()} threads; data: {source}"
        + (f"; settings changed: {changes}" if changes else "; umwelt hessian's defaults")
    )

    twin: list[ModelHessian] = []

    def vmap_twin() -> ModelHessian:  # the same operator, per-example products by torch.func
        if not twin:
            twin.append(
                ModelHessian(
                    model,
                    X,
                    y.to(dtype),
                    loss=train.loss,
                    batch_size=cfg.batch_size,
                    gate_seed=seeds["gates"],
                    ad="fwd-over-rev",
                )
            )
        return twin[0]

    clock = _Clock(echo=True, vmap_twin=vmap_twin if vmap_entries else None)
    start = time.perf_counter()

    def operator(dt: torch.dtype, n: int) -> ModelHessian:
        m = model if dt == dtype else copy.deepcopy(model).to(dt)
        return sh.build_operator(
            m,
            X[:n],
            y[:n],
            ids=torch.arange(n),
            loss=train.loss,
            batch_size=cfg.batch_size,
            gate_seed=seeds["gates"],
            epoch=0,
            world=None,
        )

    op = operator(dtype, images)
    steps = sh.resolve_steps(cfg, op)
    clock.watch(op)
    built = time.perf_counter()
    taken = sh.spectrum(op, cfg, steps, seeds, clock.stage)
    top = max(abs(taken[1]["lo"]), abs(taken[1]["hi"]))
    grid, c = sh.density_grid(cfg.grid_margin * top if top > 0 else 1.0, cfg.grid_points)
    after_spectrum = time.perf_counter()
    row, _ = sh.analyse_epoch(
        op,
        cfg,
        grid=grid,
        c=c,
        steps=steps,
        seeds=seeds,
        stage=clock.stage,
        loss_name=train.loss,
        spectrum_of=taken,
    )
    end = time.perf_counter()
    if dtype == torch.float32:  # as sim.hessian checks a float32 epoch
        n = min(images, sh.analysis.ROUNDOFF_EXAMPLES)
        pair = [operator(t, n) for t in (torch.float32, torch.float64)]
        row |= sh.roundoff_row(pair, row, seed=1)
    finished = time.perf_counter()

    bounds = [*clock.bounds(start, built, after_spectrum, end), finished]
    parts = {key: bounds[i + 1] - bounds[i] for i, (key, _) in enumerate(PARTS)}
    full, per_example = clock.products_in(bounds, True), clock.products_in(bounds, False)
    hvps = {key: n for key, (n, _) in full.items()}
    hvp_s = {key: s for key, (_, s) in full.items()}
    n_hvp, product_s = sum(hvps.values()), sum(hvp_s.values())
    n_pe = sum(k for k, _ in per_example.values())
    pe_s = sum(s for _, s in per_example.values())
    total = finished - start

    print(f"{'part':<32}{'s':>10}{'%':>7}{'HVPs':>7}{'HVP s':>10}{'s/HVP':>9}")
    for key, name in PARTS:
        n = hvps[key]
        per = f"{hvp_s[key] / n:>9.3f}" if n else f"{'':>9}"
        print(
            f"{name:<32}{parts[key]:>10.2f}{100 * parts[key] / total:>6.1f}%{n:>7}"
            f"{hvp_s[key]:>10.2f}{per}"
        )
    per = f"{product_s / n_hvp:>9.3f}" if n_hvp else ""
    print(f"{'total':<32}{total:>10.2f}{100.0:>6.1f}%{n_hvp:>7}{product_s:>10.2f}{per}")
    print(
        f"full-data HVPs: {n_hvp} at {product_s / max(n_hvp, 1):.3f} s each "
        f"({product_s / total:.0%} of the total); per-example products of the entries: "
        f"{n_pe:,} in {pe_s:.2f} s ({pe_s / max(n_pe, 1) * 1e3:.2f} ms each); "
        f"sim.hessian's own clock of the epoch's analysis: {row['wall_s']:.2f} s; "
        f"data loading (not counted): {data_s:.2f} s"
    )
    keep = (
        "lambda_min",
        "lambda_max",
        "extremes_from",
        "neg_mass",
        "trace",
        "m2",
        "m2_se",
        "loss",
        "active_fraction",
        "roundoff",
        "roundoff_m2",
    )
    return {
        "model": label,
        "n_params": op.n,
        "n_examples": images,
        "device": device,
        "dtype": str(dtype),
        "threads": torch.get_num_threads(),
        "data": source,
        "data_s": data_s,
        "settings": {**changes, **steps, "start_vectors": cfg.start_vectors},
        "parts_s": parts,
        "total_s": total,
        "analysis_wall_s": row["wall_s"],
        "hvps": hvps,
        "hvp_s": hvp_s,
        "n_hvp": n_hvp,
        "s_per_hvp": product_s / n_hvp if n_hvp else float("nan"),
        "per_example": {
            "products": n_pe,
            "seconds": pe_s,
            "s_per_product": pe_s / n_pe if n_pe else float("nan"),
        },
        "row": {k: row[k] for k in (*keep, "n_entries") if k in row},
    }


def _thread_time(fn: Callable[[], object], device: str) -> float:
    """Seconds of ``fn``: on a CPU the CPU time of this thread (the work of a one-thread run,
    not the waits of a shared machine), on CUDA the wall time."""
    if device.startswith("cuda"):
        return _time(fn, device)
    t0 = time.thread_time()
    fn()
    return time.thread_time() - t0


def _peak(fn: Callable[[], object], device: str) -> float:
    """Peak memory increase (bytes) while ``fn`` runs (as :func:`_slq_memory` measures it)."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return float(torch.cuda.max_memory_allocated() - base)
    if not os.path.exists("/proc/self/statm"):
        fn()
        return float("nan")
    with _PeakRSS() as m:
        fn()
    return float(m.peak - m.base)


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


if __name__ == "__main__":
    run()
