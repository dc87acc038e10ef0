"""The spectrum of one epoch: the SLQ run and its extremes, the grid scan of several epochs,
the per-layer-pair blocks and the float32 round-off check (:mod:`sim.hessian.epoch` and
:mod:`sim.hessian.analysis` call them; the estimators live in :mod:`umwelt.nn.hessian`)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np

from sim.hessian.config import HessianConfig
from umwelt.seeds import index_seed

__all__ = [
    "extreme_eigenvalues",
    "grid_scan",
    "layer_blocks_of",
    "roundoff_examples",
    "roundoff_row",
    "spectrum",
]

EIGSH_TOL = 1e-6  # ARPACK's relative tolerance for extremes="eigsh"
# extremes="slq": the SLQ's outermost Ritz values are the extremes when their residual bounds
# are at most this fraction of the spectral radius (else a separate Lanczos pass)
EXTREME_RTOL = 1e-3
GRID_SCAN_STEPS = 20  # Lanczos steps of the scan that fixes a grid shared by several epochs
ROUNDOFF_EXAMPLES = 256  # examples of the float32-against-float64 product (roundoff_row)
# SLQ start vectors: normalized Gaussian ones are uniform on the sphere, where the error bars'
# closed form is exact in law (with Rademacher ones it is only an upper bound)
SLQ_DIST = "gaussian"


def extreme_eigenvalues(op, cfg: HessianConfig, steps: int, seed: int) -> tuple[float, float]:
    """The extremes by a separate pass: ARPACK (``extremes="eigsh"``) or one fully
    re-orthogonalized Lanczos run of ``steps`` steps (``"lanczos"``, and ``"slq"`` when the
    SLQ's Ritz values have not converged)."""
    from umwelt.nn.hessian import eigsh_extremes, lanczos_extremes

    if cfg.extremes == "eigsh":
        lo, hi = eigsh_extremes(op, 1, tol=EIGSH_TOL, seed=seed)
        return float(lo[0]), float(hi[0])
    return lanczos_extremes(op, steps, seed=seed)


def spectrum(
    op,
    cfg: HessianConfig,
    steps: dict,
    seeds: dict,
    stage: Callable,
    *,
    separate: tuple[float, float] | None = None,
):
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
    the outermost of both (``separate``: that pass's ``(lo, hi)`` when :func:`grid_scan` took
    it already).
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
    if separate is None:
        stage("extremes", 0, 1, "a separate pass")
        separate = extreme_eigenvalues(op, cfg, steps["extreme_steps"], seeds["extremes"])
        stage("extremes", 1, 1, "")
    a, b = separate
    source = "slq+lanczos" if cfg.extremes == "slq" else cfg.extremes
    out |= {"lo": min(a, lo), "hi": max(b, hi), "from": source}
    out |= {"separate_lo": a, "separate_hi": b}
    return res, out


def grid_scan(
    op, cfg: HessianConfig, steps: dict, seeds: dict
) -> tuple[float, tuple[float, float] | None]:
    r"""The largest :math:`|\lambda|` that fixes the shared grid when several epochs are
    analysed before any grid exists, and the separate extremes pass if it was that: a short
    Lanczos run (:data:`GRID_SCAN_STEPS` steps at most, ``None``) with ``extremes="slq"``, the
    separate pass otherwise (its ``(lo, hi)``, for :func:`spectrum`'s ``separate``)."""
    from umwelt.nn.hessian import lanczos_extremes

    if cfg.extremes == "slq":
        lo, hi = lanczos_extremes(
            op, min(GRID_SCAN_STEPS, steps["extreme_steps"]), seed=seeds["extremes"]
        )
        return max(abs(lo), abs(hi)), None
    lo, hi = extreme_eigenvalues(op, cfg, steps["extreme_steps"], seeds["extremes"])
    return max(abs(lo), abs(hi)), (lo, hi)


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


def roundoff_examples(ids: np.ndarray, active: np.ndarray | None) -> np.ndarray:
    """The examples of the round-off check (:func:`roundoff_row`): the first
    :data:`ROUNDOFF_EXAMPLES` of ``ids`` with a share in :math:`H` (``active``, bool per
    example: the hinges active; late in training most are satisfied), the first of all when
    ``active`` is ``None`` (a loss where every example has one) or none is."""
    shared = ids if active is None else ids[np.asarray(active, dtype=bool)]
    return (shared if len(shared) else ids)[:ROUNDOFF_EXAMPLES]


def roundoff_row(ops, row: dict, *, seed: int) -> dict:
    r"""The round-off of float32 products, measured: ``roundoff`` :math:`\rho` =
    :math:`\|H_{32} v - H_{64} v\| / \|H_{64} v\|` for one Gaussian ``v`` on
    :func:`roundoff_examples` (``ops``: their operators in float32 and float64), and
    ``roundoff_m2`` = :math:`2\rho\,\lambda_{\max}\sqrt{m_2}`, a bound on the error it adds
    to ``m2`` (a perturbation of norm :math:`\rho\sqrt{m_2}` of :math:`H`) to hold against
    ``m2_se``; a warning when it is not below it. When those examples have no share in
    :math:`H` (e.g. every hinge among them satisfied late in training: :math:`Hv = 0` in both
    dtypes) nothing is measured: ``None`` and ``roundoff_reason`` says why."""
    import torch

    from umwelt.nn.hessian.vectors import random_vectors

    op32, op64 = ops
    v = random_vectors(op64.n, 1, seed=seed, dist="gaussian", dtype=torch.float64)[0]
    h64 = op64.matvec(v.to(op64.device))
    h32 = op32.matvec(v.to(device=op32.device, dtype=torch.float32)).double()
    scale = float(torch.linalg.vector_norm(h64))
    if scale == 0 and not bool(h32.any()):
        why = f"the check's {op64.n_examples} examples have no share in H at this epoch (Hv = 0)"
        return {"roundoff": None, "roundoff_m2": None, "roundoff_reason": why}
    rho = float(torch.linalg.vector_norm(h32 - h64)) / scale if scale > 0 else math.inf
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
