"""One epoch's analysis, :func:`analyse_epoch`: its row and arrays from the operator — the risk,
the SLQ density and its spectral summary (moments, negative mass, traces, the symlog-smoothed
density and its band), then the hinge checks (:mod:`sim.hessian.hinges`), the per-layer-pair
blocks (:mod:`sim.hessian.spectrum`) and the sampled entries (:mod:`sim.hessian.entries`).
Public so that a benchmark can time one epoch part by part."""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

import numpy as np

from sim.hessian.entries import BAND_LEVEL, sampled_entries
from sim.hessian.hinges import hinge_check_row
from sim.hessian.spectrum import layer_blocks_of, spectrum

__all__ = ["analyse_epoch"]


def analyse_epoch(
    op, cfg, *, grid, c, steps, seeds, stage, loss_name, spectrum_of=None, pairs=None
):
    """Everything of one epoch: ``(row, arrays)``.

    ``spectrum_of``: the epoch's :func:`spectrum` ``(res, extremes)`` when it was taken
    already (it fixes the grid of a first epoch); else taken here. ``pairs``: the entries of
    the run's ``hessian/config.json`` (:func:`draw_entries`; ``None``: drawn here).
    """
    from umwelt.nn.hessian import (
        active_hinges,
        exact_trace,
        quadrature_resolution,
        spectral_summary,
        symlog_density,
    )

    t0 = time.perf_counter()
    N = op.n
    row: dict[str, Any] = {"n_params": N, "n_examples": op.n_total, "loss": op.risk()}
    row["hvp_mode"] = op.ad  # how the products were taken (changes only round-off)
    row["dtype"] = str(op.dtype).removeprefix("torch.")
    active = None  # which examples have a share in H (the hinges active)
    if loss_name in ("hinge", "quadratic-hinge"):
        active = active_hinges(op)
        row["active_fraction"] = float(active.mean())
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
        row |= hinge_check_row(op, cfg, summ, seeds, stage, loss_name=loss_name)
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
        "slq_point_masses": res.point_masses,  # deflated: the first nodes, not random
        "reorth": res.reorth,
    }
    if active is not None:
        arrays["active_hinges"] = active  # (n_examples,) bool, in example_ids' order
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
