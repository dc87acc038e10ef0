"""Wall time of one full Hessian observation — one epoch of ``umwelt hessian`` — part by part.

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

**Before and after** (:func:`_observation_estimate`, what :func:`sim.benchmarks.hessian.run`
reports last): the default epoch as the analysis ran before issue 13 (:data:`BEFORE_SETTINGS`),
measured at the reduced counts of :data:`REDUCED_SETTINGS` and estimated at the default counts
from its measured seconds per product, against the default epoch measured; goal: at most
:data:`GOAL_EPOCH_S` seconds.
"""

from __future__ import annotations

import bisect
import copy
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from sim.benchmarks.hessian_common import (
    CIFAR10_JPEG,
    QUICK_IMAGES,
    QUICK_WIDTH,
    _observation_data,
)
from umwelt.nn.hessian import ModelHessian

OBSERVATION_WIDTH = 1 / 8  # vgg12 width of the full-size observation (issue 5)
OBSERVATION_IMAGES = 2000  # training images of the full-size observation
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

    def operator(dt: torch.dtype, rows: np.ndarray) -> ModelHessian:
        m = model if dt == dtype else copy.deepcopy(model).to(dt)
        return sh.build_operator(
            m,
            X,
            y,
            ids=torch.as_tensor(rows),
            loss=train.loss,
            batch_size=cfg.batch_size,
            gate_seed=seeds["gates"],
            epoch=0,
            world=None,
        )

    every = np.arange(images)
    op = operator(dtype, every)
    steps = sh.resolve_steps(cfg, op)
    clock.watch(op)
    built = time.perf_counter()
    taken = sh.spectrum(op, cfg, steps, seeds, clock.stage)
    top = max(abs(taken[1]["lo"]), abs(taken[1]["hi"]))
    grid, c = sh.density_grid(cfg.grid_margin * top if top > 0 else 1.0, cfg.grid_points)
    after_spectrum = time.perf_counter()
    row, arrays = sh.analyse_epoch(
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
        check = sh.roundoff_examples(every, arrays.get("active_hinges"))
        pair = [operator(t, check) for t in (torch.float32, torch.float64)]
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
