"""One Hessian analysis of a run, epoch by epoch: the orchestration of ``umwelt hessian``.

:func:`run` validates a :class:`~sim.hessian.config.HessianConfig`, joins the process group
under ``torchrun`` and calls :func:`analyse`: the first operator checks every request against
the dimension N; when several epochs share a grid not fixed yet, a cheap first pass over them
(:func:`grid_scan`) finds the largest eigenvalue that fixes it; then :func:`analyse_epoch` runs
on each epoch (its :func:`spectrum`: the SLQ run, which gives the extremes) and writes it
(:mod:`sim.hessian.store`) as soon as it exists. :func:`analyse_epoch` is public so that a
benchmark can time one epoch part by part. The estimators themselves live in
:mod:`umwelt.nn.hessian`.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sim.figures import hessian_figures
from sim.hessian import store
from sim.hessian.config import HessianConfig, checkpoints_of
from sim.runs import HessianSettings, Run
from sim.runs.hessian import AUTO_FLOAT64_LIMIT, ENTRY_CHUNK_BYTES, check_requests
from sim.runs.lock import RunLock
from umwelt.errors import ConfigError, NonFiniteError, UmweltError
from umwelt.seeds import index_seed, streams

__all__ = [
    "AUTO_FLOAT64_LIMIT",
    "Progress",
    "analyse",
    "analyse_epoch",
    "build_operator",
    "density_grid",
    "extreme_eigenvalues",
    "grid_scan",
    "load_epoch",
    "record_epoch",
    "resolve_steps",
    "roundoff_row",
    "run",
    "settings_record",
    "spectrum",
    "stream_seeds",
]

SYMLOG_C = 1e-3  # the symlog grid's linear scale c, a fraction of the bound (symmetric_grid's)
EIGSH_TOL = 1e-6  # ARPACK's relative tolerance for extremes="eigsh"
# extremes="slq": the SLQ's outermost Ritz values are the extremes when their residual bounds
# are at most this fraction of the spectral radius (else a separate Lanczos pass)
EXTREME_RTOL = 1e-3
GRID_SCAN_STEPS = 20  # Lanczos steps of the scan that fixes a grid shared by several epochs
ROUNDOFF_EXAMPLES = 256  # examples of the float32-against-float64 product (roundoff_row)
BAND_LEVEL = 0.9  # the density's band: ± z_0.95 standard errors (closed form, umwelt SLQ)
# SLQ start vectors: normalized Gaussian ones are uniform on the sphere, where the error bars'
# closed form is exact in law (with Rademacher ones it is only an upper bound)
SLQ_DIST = "gaussian"
CORR_SUBMATRIX = 100  # size of the saved correlation sub-matrix (figs. 6b,c)
# fixed bins of H^(b)/std (fig. 6a) and of the signed H/std (fig. 7a): even in asinh(x), i.e.
# linear within ±1 and logarithmic beyond, up to ±10⁴ (values beyond are counted in the end bins)
ENTRY_EDGES = np.sinh(np.linspace(-np.arcsinh(1e4), np.arcsinh(1e4), 241))

Progress = Callable[[str, int, int, str], None]


def load_epoch(run_dir: Path | str, epoch: int, *, net: str = "finite_T", dtype="float64"):
    """``(model, X, y, loss, temperature)`` of a run at ``epoch``, rebuilt as :func:`run` does.

    For notebooks and tests: the model at that checkpoint in ``dtype`` on the CPU, and the
    whole training set.
    """
    import torch

    from umwelt.nn.device import resolve_dtype

    run = Run.open(run_dir)
    found = checkpoints_of(run, net)
    if epoch not in found:
        raise ConfigError(f"epoch {epoch} is not in the run; it has {list(found)}")
    dt = resolve_dtype(dtype)
    data = run.data()
    X = torch.as_tensor(np.ascontiguousarray(data.X_train), dtype=dt)
    y = torch.as_tensor(np.ascontiguousarray(data.y_train), dtype=dt)
    return run.model(epoch, net=net, dtype=dt), X, y, run.loss, run.temperature(net)


# -- seeds, grid, settings ------------------------------------------------------------------------


_STREAMS = (
    "examples",
    "gates",
    "extremes",
    "slq",
    "summary",
    "checks",
    "entries",
    "bootstrap",
    "corr",
)


def stream_seeds(seed: int) -> dict[str, int]:
    """Independent seeds of every random draw, from the one ``seed``."""
    return streams(seed, _STREAMS)


def density_grid(bound: float, points: int) -> tuple[np.ndarray, float]:
    from umwelt.nn.hessian import symmetric_grid

    return symmetric_grid(bound, points, scale="symlog"), SYMLOG_C * bound


def settings_record(cfg: HessianConfig, n: int, dtype: str, steps: dict[str, int | None]) -> dict:
    """Every setting that changes the numbers (must match across analyses of one run)."""
    return {
        "net": cfg.net,
        "examples": cfg.examples,
        "dtype": dtype,
        "lanczos_steps": steps["lanczos_steps"],
        "start_vectors": cfg.start_vectors,
        "reorth": cfg.reorth,
        "extremes": cfg.extremes,
        "extreme_steps": steps["extreme_steps"],
        "entries": steps["entries"],
        "entry_columns": steps["entry_columns"],
        "corr_entries": cfg.corr_entries,
        "deflation_steps": cfg.deflation_steps,
        "blocks": cfg.blocks,
        "block_vectors": cfg.block_vectors,
        "bootstrap": cfg.bootstrap,
        "start_dist": SLQ_DIST,
        "hinge_coords": cfg.hinge_coords,
        "grid_points": cfg.grid_points,
        "smoothing": cfg.smoothing,
        "seed": cfg.seed,
        "n_params": n,
    }


# -- the operator ----------------------------------------------------------------------------------


def build_operator(model, X, y, *, ids, loss, batch_size, gate_seed, epoch, world):
    from umwelt.nn.hessian import ModelHessian

    kw = {
        "loss": loss,
        "batch_size": batch_size,
        "gate_seed": gate_seed,
        "context": f"epoch {epoch}",
    }
    if world is not None and world.distributed:
        from umwelt.nn.hessian.distributed import DistributedModelHessian

        return DistributedModelHessian(model, X, y, indices=ids, **kw)
    return ModelHessian(model, X, y, indices=ids, **kw)


# -- one epoch -------------------------------------------------------------------------------------


def extreme_eigenvalues(op, cfg: HessianConfig, steps: int, seed: int) -> tuple[float, float]:
    """The extremes by a separate pass: ARPACK (``extremes="eigsh"``) or one fully
    re-orthogonalized Lanczos run of ``steps`` steps (``"lanczos"``, and ``"slq"`` when the
    SLQ's Ritz values have not converged)."""
    from umwelt.nn.hessian import eigsh_extremes, lanczos_extremes

    if cfg.extremes == "eigsh":
        lo, hi = eigsh_extremes(op, 1, tol=EIGSH_TOL, seed=seed)
        return float(lo[0]), float(hi[0])
    return lanczos_extremes(op, steps, seed=seed)


def spectrum(op, cfg: HessianConfig, steps: dict, seeds: dict, stage: Callable):
    """The epoch's SLQ run (``lanczos_steps`` × ``start_vectors`` products, the vectors in
    blocks; with ``deflation_steps`` first a Lanczos run of that many steps whose converged
    eigenpairs become exact point masses, :mod:`umwelt.nn.hessian.deflation`) and its
    extremes: ``(res, extremes)`` with ``extremes`` a dict of ``lo``, ``hi``,
    ``from`` and the residual bounds ``residual_lo``, ``residual_hi`` of the SLQ's outermost
    Ritz values.

    With ``extremes="slq"`` (the default) the extremes are those Ritz values when both residual
    bounds are at most :data:`EXTREME_RTOL` × the spectral radius (some eigenvalue then lies
    that close to each; as the Ritz values lie inside the spectrum, they are its ends to that
    accuracy): no product more. Otherwise a separate pass (:func:`extreme_eigenvalues`), and
    the outermost of both.
    """
    from umwelt.nn.hessian import CountedOperator, slq

    k, n_v = steps["lanczos_steps"], cfg.start_vectors
    total, done = k * n_v, [0]

    def tick(m: int) -> None:
        done[0] += m
        stage("slq", min(done[0], total), total)

    counted = CountedOperator(op, tick)
    if cfg.deflation_steps:  # the converged eigenpairs of one run as exact point masses
        from umwelt.nn.hessian.deflation import converged_pairs, deflated_slq

        total += cfg.deflation_steps
        theta, Y = converged_pairs(counted, cfg.deflation_steps, seed=seeds["extremes"])
        res = deflated_slq(counted, theta, Y, k, n_v, seed=seeds["slq"])
    else:
        res = slq(counted, k, n_v, seed=seeds["slq"], dist=SLQ_DIST, reorth=cfg.reorth)
    stage("slq", total, total)
    lo, hi, r_lo, r_hi = res.extremes()
    radius = max(abs(lo), abs(hi))
    out = {"lo": lo, "hi": hi, "from": "slq", "residual_lo": r_lo, "residual_hi": r_hi}
    if cfg.extremes == "slq" and max(r_lo, r_hi) <= EXTREME_RTOL * radius:
        return res, out
    stage("extremes", 0, 1, "a separate pass")
    a, b = extreme_eigenvalues(op, cfg, steps["extreme_steps"], seeds["extremes"])
    stage("extremes", 1, 1, "")
    source = "slq+lanczos" if cfg.extremes == "slq" else cfg.extremes
    out |= {"lo": min(a, lo), "hi": max(b, hi), "from": source}
    out |= {"separate_lo": a, "separate_hi": b}
    return res, out


def grid_scan(op, cfg: HessianConfig, steps: dict, seeds: dict) -> float:
    r"""The largest :math:`|\lambda|` that fixes the shared grid when several epochs are
    analysed before any grid exists: a short Lanczos run (:data:`GRID_SCAN_STEPS` steps at
    most) with ``extremes="slq"``, the separate pass otherwise (its extremes then serve the
    epoch's row too)."""
    from umwelt.nn.hessian import lanczos_extremes

    if cfg.extremes == "slq":
        lo, hi = lanczos_extremes(
            op, min(GRID_SCAN_STEPS, steps["extreme_steps"]), seed=seeds["extremes"]
        )
    else:
        lo, hi = extreme_eigenvalues(op, cfg, steps["extreme_steps"], seeds["extremes"])
    return max(abs(lo), abs(hi))


def draw_entries(op, cfg, K: int, n_columns: int | None, seeds, *, loss_name: str, stored=None):
    """The entries of an epoch: ``(sample, uniform, rule, total)``.

    ``uniform`` marks the entries drawn uniformly among all admissible pairs (the correlation
    sub-matrix's, figs. 6b,c); ``total`` is the number of pairs the rule admits in the whole
    Hessian (``"nonzero"``: in the sampled columns only); ``rule`` says how they were drawn:

    * ``"circuit"`` / ``"gauss-newton"`` — the pairs some basis circuit joins (every cross-layer
      pair for a loss with curvature; :mod:`umwelt.nn.hessian.pairs`), ``K`` in all: with
      ``corr_entries="uniform"`` min(:data:`CORR_SUBMATRIX`, K/2) uniform ones, the rest in
      ``entry_columns`` random columns — from the shapes and the seed alone, so the same
      pairs at every epoch (``stored``: those of the run's ``hessian/config.json``, reused);
    * ``"uniform"`` — ``entry_columns=None``: ``K`` uniform cross-layer pairs;
    * ``"nonzero"`` — a model whose weights are not a chain of layers: the non-zero entries of
      ``entry_columns`` columns at this epoch (:func:`~umwelt.nn.hessian.nonzero_entries`).
    """
    from umwelt.nn.hessian import EntrySample, nonzero_entries, sample_entries
    from umwelt.nn.hessian.pairs import circuit_entries, circuit_layout

    if stored is not None:
        rows, cols = np.asarray(stored["rows"], np.int64), np.asarray(stored["cols"], np.int64)
        sample = EntrySample(rows, cols, op.n, int(stored["population"]), False, seeds["entries"])
        return sample, np.asarray(stored["uniform"], bool), str(stored["rule"]), stored["total"]
    if n_columns is None:
        sample = sample_entries(op, K, seed=seeds["entries"])
        return sample, np.ones(sample.size, bool), "uniform", sample.population
    curvature = loss_name in ("logistic", "quadratic-hinge")
    layout = circuit_layout(op.param_shapes, gauss_newton=curvature)
    if layout is None:
        sample = nonzero_entries(op, K, n_columns, seed=seeds["entries"])
        return sample, np.zeros(sample.size, bool), "nonzero", sample.population
    # K in all: of them min(100, K/2) uniform for the correlation sub-matrix
    U = min(CORR_SUBMATRIX, K // 2) if cfg.corr_entries == "uniform" else 0
    (r, c, pop), (ur, uc, total) = circuit_entries(
        layout, K - U, n_columns, uniform=U, seed=seeds["entries"]
    )
    rows, cols = np.concatenate([r, ur]), np.concatenate([c, uc])
    uniform = np.concatenate([np.zeros(r.size, bool), np.ones(ur.size, bool)])
    sample = EntrySample(rows, cols, op.n, pop, False, seeds["entries"])
    return sample, uniform, "gauss-newton" if curvature else "circuit", total


def entry_bands(st, ratio_ex, uniform, total: int, samples, seeds) -> dict:
    """Fig. 7b's bands and fig. 7c's coupling set and joint shape, for the row.

    * ``frac_means_below_015_lo``/``_hi`` and ``..._per_example_lo``/``_hi``: a
      :data:`BAND_LEVEL` band over the sampled entries
      (:func:`~umwelt.nn.hessian.fraction_band`);
    * ``coupling_set_*``: the coupling set scaled to the ``total`` pairs of the whole Hessian
      (:func:`~umwelt.nn.hessian.coupling_set_from_pairs`), from the uniform entries when there
      are some (``coupling_set_sample``; column-confined entries share weights and correlate
      more), with its quasi-Poisson band;
    * ``mardia_*``: Mardia's multivariate skewness and kurtosis of the entries' bootstrap
      distribution (:func:`~umwelt.nn.hessian.mardia`).
    Each is left out (``NaN``) below the entries or resamples it needs.
    """
    from umwelt.nn.hessian import coupling_set_from_pairs, fraction_band, mardia
    from umwelt.nn.hessian.coupling import MIN_ENTRIES, MIN_SAMPLES, pair_significance

    out: dict[str, Any] = {}
    ratio = st.ratio[st.live]
    for key, r in (("frac_means_below_015", ratio), ("frac_means_below_015_per_example", ratio_ex)):
        lo, hi, how = fraction_band(r < st.threshold, level=BAND_LEVEL, seed=seeds["bootstrap"])
        out |= {f"{key}_lo": lo, f"{key}_hi": hi}
    out["frac_band"] = how
    idx, G = pair_significance(st)  # over the live entries
    use = uniform[idx] if uniform[idx].sum() >= MIN_ENTRIES else np.ones(idx.size, bool)
    out["coupling_set_sample"] = "uniform" if not use.all() or uniform.all() else "columns"
    if use.sum() >= MIN_ENTRIES and total >= use.sum():
        cs = coupling_set_from_pairs(
            G[np.ix_(use, use)], total, seed=seeds["bootstrap"], n=st.n, level=BAND_LEVEL
        )
        out |= cs.row()
    if samples.shape[0] >= MIN_SAMPLES and st.live.sum() >= 2:
        out |= mardia(samples[:, st.live], seed=seeds["corr"]).row()
    return out


def sampled_entries(op, cfg, K: int, n_columns: int | None, seeds, stage: Callable, **draw):
    """Sampled entries, their bootstrap over all examples (reduced over ranks), statistics."""
    from umwelt.nn.hessian import (
        correlation_submatrix,
        entry_contributions,
        entry_statistics,
        entry_summary,
        example_bootstrap,
    )

    sample, uniform, rule, total = draw_entries(op, cfg, K, n_columns, seeds, **draw)
    if sample.size == 0:  # no non-zero entry (e.g. a converged hinge net: H = 0)
        return {"frac_means_below_015": math.nan, "coupling_exponent": math.nan, "n_entries": 0}, {}
    err: NonFiniteError | None = None
    C = np.zeros((op.n_examples, sample.size))
    c_chunk = 8
    e_chunk = int(np.clip(ENTRY_CHUNK_BYTES // (8 * c_chunk * op.n), 8, 256))
    try:
        C = entry_contributions(
            op,
            sample,
            example_chunk=e_chunk,
            column_chunk=c_chunk,
            progress=lambda done, total: stage("entries", done, total),
        )  # (n_shard, K)
    except NonFiniteError as e:
        err = e
    if op.any_failed(err is not None):
        raise err or NonFiniteError(
            f"a per-example Hessian product ({op.context}) is not finite on another process"
        )
    if err is not None:
        raise err
    n = op.n_total
    samples, value = example_bootstrap(op, C, cfg.bootstrap, seed=seeds["bootstrap"])
    st = entry_statistics(samples, value, n=op.n)
    summary = entry_summary(st)
    # the other reading of the paper's "normalized by its standard deviation": the spread of the
    # entry's per-example contributions, √n times the bootstrap std of the mean
    ratio_ex = st.ratio[st.live] / math.sqrt(n)
    summary["frac_means_below_015_per_example"] = (
        float((ratio_ex < st.threshold).mean()) if ratio_ex.size else math.nan
    )
    summary["entry_rule"] = rule
    summary |= entry_bands(st, ratio_ex, uniform, total, samples, seeds)
    if uniform.any() and not uniform.all():  # the uniform ones' block (figs. 6b,c)
        sub_idx = np.nonzero(uniform & st.live)[0][:CORR_SUBMATRIX]
        sub = st.corr[np.ix_(sub_idx, sub_idx)]
        summary["corr_entries"] = "uniform"
    else:
        sub_idx, sub = correlation_submatrix(st, CORR_SUBMATRIX, seed=seeds["corr"])
        summary["corr_entries"] = "uniform" if uniform.all() else "columns"
    live = st.live
    norm = np.clip(st.normalized[:, live], ENTRY_EDGES[0], ENTRY_EDGES[-1])
    signed = np.where(live, st.value / np.where(live, st.std, 1.0), np.nan)
    arrays = {
        "entry_rows": sample.rows,
        "entry_cols": sample.cols,
        "entry_uniform": uniform,
        "entry_population": sample.population,
        "entry_total": total,
        "entry_rule": rule,
        "entry_value": st.value,
        "entry_std": st.std,
        "entry_mean_over_std": signed,
        "entry_live": live,
        "entry_n_corr": st.n_corr,
        "entry_skew": st.skew,
        "entry_kurt": st.kurt,
        "entry_skew_sig": st.skew_sig,
        "entry_kurt_sig": st.kurt_sig,
        "entry_samples": samples,
        "normalized_edges": ENTRY_EDGES,
        "normalized_hist": np.histogram(norm, ENTRY_EDGES)[0],
        "ratio_edges": ENTRY_EDGES,
        "ratio_hist": np.histogram(
            np.clip(signed[live], ENTRY_EDGES[0], ENTRY_EDGES[-1]), ENTRY_EDGES
        )[0],
        "corr_sub_index": sub_idx,
        "corr_sub": sub,
    }
    return summary, arrays


def analyse_epoch(
    op, cfg, *, grid, c, steps, seeds, stage, loss_name, spectrum_of=None, pairs=None
):
    """Everything of one epoch: ``(row, arrays)``.

    ``spectrum_of``: the epoch's :func:`spectrum` ``(res, extremes)`` when it was taken
    already (it fixes the grid of a first epoch); else taken here. ``pairs``: the entries of
    the run's ``hessian/config.json`` (:func:`draw_entries`; ``None``: drawn here).
    """
    from umwelt.nn.hessian import (
        CountedOperator,
        active_hinge_fraction,
        exact_trace,
        hinge_checks,
        quadrature_resolution,
        spectral_summary,
        symlog_density,
    )

    t0 = time.perf_counter()
    N = op.n
    row: dict[str, Any] = {"n_params": N, "n_examples": op.n_total, "loss": op.risk()}
    row["hvp_mode"] = op.ad  # how the products were taken (changes only round-off)
    row["dtype"] = str(op.dtype).removeprefix("torch.")
    if loss_name in ("hinge", "quadratic-hinge"):
        row["active_fraction"] = active_hinge_fraction(op)
    res, ext = spectrum_of if spectrum_of is not None else spectrum(op, cfg, steps, seeds, stage)
    # moments, negative mass, trace from the raw nodes (the grid here only feeds the λ-smoothed
    # density asymmetry, which is replaced by the symlog-smoothed one below)
    resolution = quadrature_resolution(res)
    with warnings.catch_warnings():  # H = 0 (a converged hinge net): NaN asymmetries, quietly
        warnings.simplefilter("ignore", RuntimeWarning)
        summ = spectral_summary(
            res,
            grid=grid,
            sigma=grid[-1] / 50,
            resolution=resolution,
        )
    # smoothed in the symlog coordinate at the grid's c, or the resolution δ if that is coarser
    band, summ_u, c_s = symlog_density(
        res,
        grid,
        c=c,
        sigma=cfg.smoothing,
        resolution=resolution,
        level=BAND_LEVEL,
    )
    nodes, weights = res.pooled()
    bound = float(grid[-1])
    row |= {
        "lambda_min": ext["lo"],
        "lambda_max": ext["hi"],
        "extremes_from": ext["from"],  # slq, slq+lanczos (not converged), lanczos or eigsh
        "extremes_residual_min": ext["residual_lo"],  # the SLQ's outermost Ritz values' bounds
        "extremes_residual_max": ext["residual_hi"],
        "extremes_lambda_min": ext.get("separate_lo", math.nan),  # the separate pass, if any
        "extremes_lambda_max": ext.get("separate_hi", math.nan),
        "ritz_min": summ["ritz_min"],
        "ritz_max": summ["ritz_max"],
        "neg_mass": summ["neg_mass"],
        "neg_mass_se": summ["neg_mass_se"],
        "neg_share": summ["neg_share"],
        "neg_share_se": summ["neg_share_se"],
        "resolution": resolution,
        "asymmetry": summ["asymmetry"],
        "asymmetry_se": summ["asymmetry_se"],
        "density_asymmetry": summ_u["density_asymmetry"],
        "density_asymmetry_se": summ_u["density_asymmetry_se"],
        "density_asymmetry_bias": summ_u["density_asymmetry_bias"],
        "trace": summ["trace"],  # Hutchinson's, from the SLQ runs: the cross-check
        "trace_se": summ["trace_se"],
        "trace_exact": exact_trace(op),  # from the structure (None where it does not give it)
        "m2": summ["m2"],
        "m2_se": summ["m2_se"],
        "se_reason": summ["se_reason"],  # None, or why the *_se above are null
        "beyond_grid": float(weights[np.abs(nodes) > bound].sum()),
    }
    if loss_name in ("hinge", "quadratic-hinge"):  # the latter against its Gauss–Newton part
        hc_total = min(cfg.hinge_coords, N) + (16 if cfg.hinge_coords < N else 0)
        hc_done = [0]

        def tick_checks(m: int) -> None:
            hc_done[0] += m
            stage("checks", min(hc_done[0], hc_total), hc_total)

        hc = hinge_checks(
            CountedOperator(op, tick_checks),
            n_coords=min(cfg.hinge_coords, N),
            n_v=16,
            seed=seeds["checks"],
            warn=False,
        )
        row |= {
            "hinge_diag_max_abs": hc["diag_max_abs"],
            "hinge_diag_rel": hc["diag_rel"],
            "hinge_trace": hc["trace"],
            "hinge_trace_se": hc["trace_se"],
            "hinge_ok": hc["ok"],
        }
        if "gn_trace" in hc:  # quadratic hinge: diag H = diag G, tr H = tr G
            row |= {
                k: hc[k]
                for k in (
                    "gn_diag_max_abs",
                    "gn_trace",
                    "gn_active",
                    "circuit_diag_max_abs",
                    "circuit_diag_rel",
                    "circuit_trace",
                    "circuit_trace_se",
                )
            }
    arrays: dict[str, Any] = {
        "grid": grid,
        "grid_c": c,
        "smoothing": cfg.smoothing,
        "smoothing_c": c_s,
        "density": band.density,
        "density_std": band.std,
        "density_lo": band.lo,
        "density_hi": band.hi,
        "density_level": band.level,
        "slq_nodes": res.nodes,
        "slq_weights": res.weights,
        "slq_seed": res.seed,
        "slq_dist": res.dist,
        "reorth": res.reorth,
    }
    if cfg.blocks:
        row |= layer_blocks_of(op, cfg, seeds, stage, arrays)
    K = steps["entries"]
    if K:
        es, entry_arrays = sampled_entries(
            op, cfg, K, steps["entry_columns"], seeds, stage, loss_name=loss_name, stored=pairs
        )
        row |= es
        arrays |= entry_arrays
    else:
        row |= {"frac_means_below_015": math.nan, "coupling_exponent": math.nan}
    row["wall_s"] = time.perf_counter() - t0
    return row, arrays


# -- the analysis ----------------------------------------------------------------------------------


def run(cfg: HessianConfig, *, progress: Progress | None = None) -> list[dict]:
    """Analyse the checkpoints of a run; write ``RUN/hessian/`` (rank 0) and the figures.

    Args:
        cfg: the settings; validated here before anything is read or written.
        progress: called as ``progress(stage, done, total, info)``: stages ``"extremes"`` and
            ``"epochs"`` (the two passes over the epochs), ``"slq"``, ``"checks"`` (products)
            and ``"entries"`` (columns) within an epoch.

    Returns:
        the rows of the epochs analysed now (every rank).

    Raises:
        UmweltError: a bad setting, run directory or epoch, a request larger than the Hessian
            (before anything is written); :class:`~umwelt.errors.NonFiniteError` naming the
            first epoch whose products are not finite (after writing the epochs before it).
    """
    from sim import distributed

    cfg = cfg.validated()
    world, device = distributed.setup(cfg.device)
    completed = False
    try:
        result = analyse(cfg, world=world, device=device, progress=progress)
        completed = True
        return result
    finally:
        distributed.teardown(world, completed=completed)


def record_epoch(
    run_dir: Path | str,
    epoch: int,
    *,
    settings: HessianSettings | None = None,
    world=None,
    device: str = "cpu",
):
    """The analysis of one epoch of a training run in progress (``umwelt train --hessian-at``).

    Called on every rank right after rank 0 wrote ``checkpoints/model_epoch_XXXX.pt``; uses
    :class:`HessianConfig` with ``settings`` (``None``: the defaults), the
    grid of an earlier recorded epoch if there is one, and does not touch torch's global random
    state (a resumed training stays exact). A failure does not stop the training: it becomes a
    warning.

    Returns:
        the row, or ``None`` after a failure.
    """
    import torch

    if world is not None and world.distributed:
        import torch.distributed as dist

        dist.barrier()  # rank 0 has written the checkpoint
    devices = [torch.device(device)] if torch.device(device).type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            cfg = HessianConfig.of(run_dir, settings, epochs=(epoch,), device=device, figures=False)
            rows = analyse(cfg.validated(), world=world, device=device)
        return rows[0]
    except UmweltError as e:
        warnings.warn(
            f"--hessian-at: the Hessian of epoch {epoch} was not recorded: {e}",
            RuntimeWarning,
            stacklevel=2,
        )
        return None


def analyse(
    cfg: HessianConfig, *, world=None, device: str = "cpu", progress: Progress | None = None
) -> list[dict]:
    """:func:`run` inside an existing process group (``world``: :class:`sim.distributed.World`).

    ``cfg`` must be validated. Every rank calls it; rank 0 writes, holding the run directory's
    lock (:class:`sim.runs.lock.RunLock`) from before the first product: a second writer is
    refused before anything is computed (inside ``umwelt train --hessian-at`` the training
    process holds it already).
    """
    main = world is None or world.is_main
    lock = RunLock(cfg.run, "umwelt hessian").acquire() if main else None
    try:
        return _analyse(cfg, world=world, device=device, progress=progress)
    finally:
        if lock is not None:
            lock.release()


def _analyse(cfg: HessianConfig, *, world, device: str, progress: Progress | None) -> list[dict]:
    import torch

    from umwelt.nn.device import resolve_device, resolve_dtype

    def stage(name: str, done: int, total: int, info: str = "") -> None:
        if progress is not None:
            progress(name, done, total, info)

    main = world is None or world.is_main
    run = Run.open(cfg.run)
    found = checkpoints_of(run, cfg.net)
    out = run.hessian_dir(cfg.net)
    dev = resolve_device(device)
    seeds = stream_seeds(cfg.seed)
    epochs = list(cfg.epochs)
    temperature = run.temperature(cfg.net)

    # -- what depends on the model: dtype, N and the requests that must fit in it
    first = run.build_model(cfg.net, dtype=torch.float32)
    N = sum(p.numel() for p in first.parameters() if p.requires_grad)
    del first
    dtype_name = cfg.dtype
    if dtype_name == "auto":
        dtype_name = "float64" if N <= AUTO_FLOAT64_LIMIT else run.config.dtype
    dtype = resolve_dtype(dtype_name)
    data = run.data()
    X = torch.as_tensor(np.ascontiguousarray(data.X_train))  # (n_train, ...) on the CPU
    y = torch.as_tensor(np.ascontiguousarray(data.y_train))
    n_train = int(X.shape[0])
    if cfg.examples is not None and cfg.examples > n_train:
        raise ConfigError(
            f"--examples {cfg.examples} exceeds the {n_train} training examples of the run"
        )
    if cfg.examples is None:
        ids = np.arange(n_train)
    else:
        rng = np.random.default_rng(seeds["examples"])
        ids = np.sort(rng.choice(n_train, cfg.examples, replace=False))

    def build(epoch: int, *, dt=dtype, examples=ids):
        m = run.model(epoch, net=cfg.net, dtype=dt, device=dev)
        return build_operator(
            m,
            X,
            y,
            ids=examples,
            loss=run.loss,
            batch_size=cfg.batch_size,
            gate_seed=seeds["gates"],
            epoch=epoch,
            world=world,
        )

    # -- the first operator: the step counts, every request checked, the stored settings
    op = build(epochs[0])
    steps = resolve_steps(cfg, op)
    settings = settings_record(cfg, op.n, dtype_name, steps)
    stored = store.check_stored(out, settings, cfg)
    if stored is not None:
        bound: float | None = float(stored["grid_bound"])
        points = int(stored["grid_points"])
    else:
        bound, points = cfg.grid_bound, cfg.grid_points
    pairs = None if stored is None else stored.get("entry_pairs")

    # -- pass 1, only when several epochs share a grid that is not fixed yet: the largest |λ|
    # of every epoch (a short scan; the separate extremes with extremes="lanczos"/"eigsh")
    failed: tuple[int, NonFiniteError] | None = None
    done_epochs = list(epochs)
    if bound is None and len(epochs) > 1:
        tops: list[float] = []
        for i, e in enumerate(epochs):
            stage("extremes", i, len(epochs), f"epoch {e}")
            op = op if i == 0 else build(e)
            try:
                tops.append(grid_scan(op, cfg, steps, seeds))
            except NonFiniteError as err:
                if i == 0:
                    raise NonFiniteError(f"epoch {e}: {err}; nothing was written") from None
                failed = (e, err)
                break
        stage("extremes", len(tops), len(epochs), "")
        done_epochs = epochs[: len(tops)]
        top = max(tops)
        bound = cfg.grid_margin * top if top > 0 else 1.0
        op = None
    configured = False

    # -- pass 2: everything, epoch by epoch, each written as soon as it exists (a first
    # epoch without a grid fixes it from its own spectrum)
    rows: list[dict] = []
    for i, e in enumerate(done_epochs):
        stage("epochs", i, len(done_epochs), f"epoch {e}")
        try:
            op = op if op is not None else build(e)
            taken = None
            if bound is None:
                taken = spectrum(op, cfg, steps, seeds, stage)
                top = max(abs(taken[1]["lo"]), abs(taken[1]["hi"]))
                bound = cfg.grid_margin * top if top > 0 else 1.0
            grid, c = density_grid(bound, points)
            row, arrays = analyse_epoch(
                op,
                cfg,
                grid=grid,
                c=c,
                steps=steps,
                seeds=seeds,
                stage=stage,
                loss_name=run.loss,
                spectrum_of=taken,
                pairs=pairs,
            )
            if pairs is None and arrays.get("entry_rule") in FIXED_RULES:
                pairs = entry_pairs(arrays)  # the same entries at every later epoch
            if dtype == torch.float32:
                row |= roundoff_row(
                    [
                        build(e, dt=t, examples=ids[:ROUNDOFF_EXAMPLES])
                        for t in (torch.float32, torch.float64)
                    ],
                    row,
                    seed=index_seed(seeds["checks"], 1),
                )
        except NonFiniteError as err:
            if not rows and i == 0 and not configured:
                raise NonFiniteError(f"epoch {e}: {err}; nothing was written") from None
            failed = (e, err)
            break
        finally:
            op = None
        row = {
            "epoch": e,
            "checkpoint": found[e].name,
            "net": cfg.net,
            "temperature": temperature,
            **row,
            "lanczos_steps": steps["lanczos_steps"],
            "start_vectors": cfg.start_vectors,
            "grid_bound": bound,
            "world_size": 1 if world is None else world.size,
        }
        rows.append(row)
        if main:
            if not configured:  # the settings are written with the first result they describe
                if cfg.fresh:
                    store.clear(out)
                record = {
                    "run": str(run.path),
                    "kind": run.kind,
                    "temperature": temperature,
                    "loss": run.loss,
                    "settings": settings,
                    "grid_bound": bound,
                    "grid_points": points,
                    "grid_scale": "symlog",
                    "grid_c": c,
                    "band_level": BAND_LEVEL,
                    "seeds": seeds,
                }
                if pairs is not None:
                    record["entry_pairs"] = pairs
                store.write_config(out, record)
                configured = True
            store.write_epoch(out, row, arrays | {"example_ids": ids})
    stage("epochs", len(rows), len(done_epochs), "")
    if main and cfg.figures and rows:
        hessian_figures(run, subdir=out.name)
    if failed is not None:
        e, err = failed
        kept = ", ".join(str(r["epoch"]) for r in rows) or "none"
        raise NonFiniteError(
            f"epoch {e}: {err}; stopped there (epochs analysed before it: {kept}, in {str(out)!r})"
        )
    return rows


#: the entry rules whose pairs depend on the shapes and seed alone (kept for the whole run)
FIXED_RULES = ("circuit", "gauss-newton", "uniform")


def entry_pairs(arrays: dict) -> dict:
    """The entries of an epoch as ``hessian/config.json`` keeps them for the run."""
    return {
        "rule": str(arrays["entry_rule"]),
        "rows": arrays["entry_rows"].tolist(),
        "cols": arrays["entry_cols"].tolist(),
        "uniform": arrays["entry_uniform"].tolist(),
        "population": int(arrays["entry_population"]),
        "total": int(arrays["entry_total"]),
    }


def layer_blocks_of(op, cfg, seeds, stage: Callable, arrays: dict) -> dict:
    r"""``--blocks``: the layer × layer blocks (:func:`~umwelt.nn.hessian.blocks.layer_blocks`,
    layers × ``block_vectors`` products) into ``arrays``; the row's summary of them: the
    within-layer share of :math:`\mathrm{tr}\,H^2` and the pair with the largest share."""
    from umwelt.nn.hessian import CountedOperator
    from umwelt.nn.hessian.blocks import layer_blocks

    L = len(op.param_offsets) - 1
    total, done = L * cfg.block_vectors, [0]

    def tick(m: int) -> None:
        done[0] += m
        stage("blocks", min(done[0], total), total)

    bl = layer_blocks(
        CountedOperator(op, tick),
        op.param_offsets,
        cfg.block_vectors,
        seed=index_seed(seeds["checks"], 2),
    )
    arrays |= bl.arrays()
    arrays["block_names"] = np.array(op.param_names)
    within = float(np.trace(bl.share)) if np.isfinite(bl.share).all() else math.nan
    top = np.unravel_index(np.nanargmax(bl.share), bl.share.shape) if np.isfinite(within) else None
    return {
        "blocks_within_share": within,
        "blocks_within_share_se": float(np.sqrt((np.diag(bl.share_se) ** 2).sum())),
        "blocks_top_pair": None if top is None else [int(top[0]), int(top[1])],
        "blocks_top_share": None if top is None else float(bl.share[top]),
    }


def roundoff_row(ops, row: dict, *, seed: int) -> dict:
    r"""The round-off of float32 products, measured: ``roundoff`` :math:`\rho` =
    :math:`\|H_{32} v - H_{64} v\| / \|H_{64} v\|` for one Gaussian ``v`` on the first
    :data:`ROUNDOFF_EXAMPLES` examples (``ops``: their operators in float32 and float64), and
    ``roundoff_m2`` = :math:`2\rho\,\lambda_{\max}\sqrt{m_2}`, a bound on the error it adds
    to ``m2`` (a perturbation of norm :math:`\rho\sqrt{m_2}` of :math:`H`) to hold against
    ``m2_se``; a warning when it is not below it."""
    import torch

    from umwelt.nn.hessian.vectors import random_vectors

    op32, op64 = ops
    v = random_vectors(op64.n, 1, seed=seed, dist="gaussian", dtype=torch.float64)[0]
    h64 = op64.matvec(v.to(op64.device))
    h32 = op32.matvec(v.to(device=op32.device, dtype=torch.float32)).double()
    scale = float(torch.linalg.vector_norm(h64))
    rho = float(torch.linalg.vector_norm(h32 - h64)) / scale if scale > 0 else 0.0
    top = max(abs(row["lambda_min"]), abs(row["lambda_max"]))
    bound = 2 * rho * top * math.sqrt(max(row["m2"], 0.0))
    se = row.get("m2_se")
    if se is not None and math.isfinite(se) and bound > se:
        warnings.warn(
            f"float32 round-off (relative {rho:.1e} per product) may add up to {bound:.2e} to "
            f"m2, above its standard error {se:.2e}: consider dtype float64",
            RuntimeWarning,
            stacklevel=2,
        )
    return {"roundoff": rho, "roundoff_m2": bound}


def resolve_steps(cfg: HessianConfig, op) -> dict[str, int | None]:
    """The defaults that depend on N, and a check of every request against N and the memory
    budget (:func:`sim.runs.hessian.check_requests`, with the operator's exact sizes)."""
    N = op.n
    sizes = np.diff(op.param_offsets)
    pairs = N * (N - 1) // 2 - int((sizes * (sizes - 1) // 2).sum())  # cross-layer pairs
    # with entry columns, the non-zero entries of those columns are the population of each epoch
    # (fewer than K there: all of them, see _nonzero_entries)
    if cfg.blocks:  # before anything is computed or written
        from umwelt.nn.hessian.blocks import check_blocks

        check_blocks(op.param_offsets, cfg.block_vectors)
    return check_requests(
        cfg,
        n_parameters=N,
        pairs=pairs,
        n_examples=op.n_total,
        itemsize=getattr(op.dtype, "itemsize", 8),
        epochs=len(cfg.epochs or (0,)),
    )
