r"""Stochastic Lanczos quadrature: :func:`slq`, and (re-exported) what is made of its result.

**Stochastic Lanczos quadrature** (SLQ; Lin, Saad & Yang 2016; Ghorbani et al. 2019) averages
the Gauss quadrature of one Lanczos run (:mod:`~umwelt.nn.hessian.krylov`) over :math:`n_v`
random start vectors :math:`q = v/\|v\|` (Rademacher or Gaussian): since
:math:`\mathbb E[q^\top g(H) q] = \frac1N \mathrm{tr}\, g(H)`, the averaged nodes and weights
estimate the eigenvalue density :math:`\rho(\lambda) = \frac1N \sum_i \delta(\lambda - \lambda_i)`.

:func:`slq` runs it on any :class:`~umwelt.nn.hessian.base.HessianOperator`, several start
vectors advancing together, and returns the raw nodes and weights. What is made of them lives
one concept per module, each name re-exported here:

* :mod:`~umwelt.nn.hessian.error_bars` — closed-form standard errors over the start vectors
  (the law of the start vectors, the delta method, Satterthwaite's widening; none below
  :data:`MIN_ERROR_VECTORS` start vectors, :func:`error_bar_reason`);
* :mod:`~umwelt.nn.hessian.measure` — :class:`SLQResult` (the raw quadrature, its moments,
  trace and smoothed densities), :class:`DensityBand`, the grid (:func:`symmetric_grid`),
  :func:`gaussian_density`, :func:`quadrature_resolution`;
* :mod:`~umwelt.nn.hessian.summary` — :func:`spectral_summary`: negative mass, asymmetries,
  trace, with their standard errors;
* :mod:`~umwelt.nn.hessian.symlog` — :func:`symlog_density` and :func:`symlog_coordinate`:
  densities on symmetric-log axes.
"""

from __future__ import annotations

import numpy as np
import torch

from umwelt._checks import check_int
from umwelt.nn.hessian.base import HessianOperator
from umwelt.nn.hessian.error_bars import MIN_ERROR_VECTORS, error_bar_reason
from umwelt.nn.hessian.krylov import LanczosResult, _check_reorth, _check_steps, _lanczos_block
from umwelt.nn.hessian.measure import (
    DensityBand,
    SLQResult,
    gaussian_density,
    quadrature_resolution,
    symmetric_grid,
)
from umwelt.nn.hessian.summary import spectral_summary
from umwelt.nn.hessian.symlog import symlog_coordinate, symlog_density
from umwelt.nn.hessian.vectors import _check_dist, random_vectors
from umwelt.seeds import index_seed

__all__ = [
    "BLOCK_STATE_BYTES",
    "BLOCK_STATE_SHARE",
    "block_state_bytes",
    "MIN_ERROR_VECTORS",
    "DensityBand",
    "SLQResult",
    "error_bar_reason",
    "gaussian_density",
    "quadrature_resolution",
    "slq",
    "spectral_summary",
    "symlog_coordinate",
    "symlog_density",
    "symmetric_grid",
]

BLOCK_STATE_BYTES = 256 * 2**20  # Lanczos state slq's automatic block size may always take
BLOCK_STATE_SHARE = 0.25  # and up to this share of the memory available (umwelt.memory)


def slq(
    op: HessianOperator,
    k: int,
    n_v: int,
    *,
    seed: int = 0,
    dist: str = "rademacher",
    reorth: str = "full",
    block: int | None = None,
) -> SLQResult:
    r"""Stochastic Lanczos quadrature: ``k`` Lanczos steps from each of ``n_v`` start vectors.

    Costs ``k · n_v`` Hessian-vector products, ``block`` start vectors advancing together (one
    :meth:`~umwelt.nn.hessian.base.HessianOperator.matmat` of ``block`` columns per step:
    faster for small models, ``block`` times the activation memory for large ones). The result
    does not depend on ``block``. Lanczos state: ``k × N × block`` numbers of the operator's
    dtype with full re-orthogonalization, ``3 × N × block`` without.

    Args:
        op: the operator.
        k: Lanczos steps per start vector, ``1 ≤ k ≤ N``.
        n_v: number of start vectors, ``≥ 1`` (``≥ 2`` for error bars).
        seed: seed of the start vectors (vector ``i`` from ``(seed, i)``).
        dist: ``"rademacher"`` or ``"gaussian"``.
        reorth: ``"full"`` or ``"none"``.
        block: start vectors run together; default: as many as keep the Lanczos state within
            :func:`block_state_bytes` (:data:`BLOCK_STATE_SHARE` of the memory available, at
            least :data:`BLOCK_STATE_BYTES`), at most 16 and at most ``n_v``.

    Returns:
        :class:`SLQResult` with the raw nodes and weights.

    Raises:
        ConfigError: for ``k`` outside ``[1, N]``, ``n_v < 1``, ``block < 1``, unknown
            ``dist`` or ``reorth``.
    """
    k = _check_steps(k, op.n)
    n_v = check_int("the number of start vectors n_v", n_v)
    full = _check_reorth(reorth)
    if block is None:
        per_vector = (k if full else 3) * op.n * torch.finfo(op.dtype).bits // 8
        block = max(1, min(16, n_v, block_state_bytes() // per_vector))
    block = check_int("the block size", block)
    _check_dist(dist)
    nodes = np.zeros((n_v, k))
    weights = np.zeros((n_v, k))
    residuals = np.zeros((n_v, k))
    for s in range(0, n_v, block):
        V0 = torch.stack(
            [
                random_vectors(
                    op.n, 1, seed=index_seed(seed, i, bits=32), dist=dist, dtype=op.dtype
                )[0]
                for i in range(s, min(s + block, n_v))
            ],
            dim=1,
        ).to(op.device)  # (N, b)
        for c, (a, b, _, last) in enumerate(_lanczos_block(op, V0, k, full)):
            run = LanczosResult(alphas=a, betas=b, basis=None, last_beta=last)
            th, tau = run.ritz()
            nodes[s + c, : len(th)] = th
            weights[s + c, : len(th)] = tau
            residuals[s + c, : len(th)] = run.ritz_residuals()
    return SLQResult(
        nodes=nodes,
        weights=weights,
        n=op.n,
        k=k,
        dist=dist,
        reorth=reorth,
        seed=int(seed),
        residuals=residuals,
    )


def block_state_bytes() -> int:
    """The Lanczos state :func:`slq` lets its start vectors take together by default:
    :data:`BLOCK_STATE_SHARE` of the memory available (:func:`umwelt.memory.available_bytes`),
    at least :data:`BLOCK_STATE_BYTES` (also when the available memory is unknown)."""
    from umwelt.memory import available_bytes

    room = available_bytes()
    return max(BLOCK_STATE_BYTES, int(BLOCK_STATE_SHARE * room) if room else 0)
