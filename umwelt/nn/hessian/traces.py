r"""Hutchinson's trace estimator: :math:`\mathrm{tr}\, H = \mathbb E[v^\top H v]`.

For probe vectors with :math:`\mathbb E[v v^\top] = I` (Rademacher or Gaussian,
:mod:`~umwelt.nn.hessian.vectors`), :math:`v^\top H v` is an unbiased estimate of the trace
(Hutchinson 1989); the mean over ``n_v`` of them comes with its standard error. With Rademacher
vectors the estimate is exact for a diagonal :math:`H` (:math:`v_i^2 = 1`):

>>> import torch
>>> from umwelt.nn.hessian.base import MatrixOperator
>>> hutchinson_trace(MatrixOperator(torch.diag(torch.tensor([1.0, 2.0, 3.0]).double())), 4)
(6.0, 0.0)

The same estimate comes from the first moments of stochastic Lanczos quadrature
(:meth:`~umwelt.nn.hessian.quadrature.SLQResult.trace`); Hutchinson's estimate of the diagonal
is :func:`~umwelt.nn.hessian.checks.hessian_diagonal`.
"""

from __future__ import annotations

import math

import torch

from umwelt._checks import check_int
from umwelt.nn.hessian.base import HessianOperator
from umwelt.nn.hessian.vectors import random_vectors

__all__ = ["hutchinson_trace"]


def hutchinson_trace(
    op: HessianOperator, n_v: int, *, seed: int = 0, dist: str = "rademacher", chunk: int = 8
) -> tuple[float, float]:
    r"""Hutchinson's :math:`\mathrm{tr}\,H = \mathbb E[v^\top H v]`: estimate and standard error.

    ``n_v`` products (in batches of ``chunk``), Rademacher or Gaussian :math:`v`.
    """
    n_v = check_int("the number of probe vectors n_v", n_v)
    V = random_vectors(op.n, n_v, seed=seed, dist=dist, dtype=op.dtype, device=op.device).T
    q = torch.cat(
        [
            (V[:, s : s + chunk] * op.matmat(V[:, s : s + chunk])).sum(dim=0)
            for s in range(0, n_v, chunk)
        ]
    ).double()  # (n_v,) v·Hv
    se = float(q.std() / math.sqrt(n_v)) if n_v > 1 else math.nan
    return float(q.mean()), se
