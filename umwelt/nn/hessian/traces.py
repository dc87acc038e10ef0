r"""Trace estimators: Hutchinson's :math:`\mathrm{tr}\, H = \mathbb E[v^\top H v]` and Hutch++.

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

**Hutch++** (Meyer, Musco, Musco & Woodruff 2021; :func:`hutchpp_trace`) spends a third of its
products on a sketch :math:`Q` of the top of :math:`H`'s range, takes that part's trace
:math:`\mathrm{tr}(Q^\top H Q)` exactly and Hutchinson's estimate only of the rest,
:math:`(I - QQ^\top) H (I - QQ^\top)`, with probes independent of :math:`Q`; so the estimate
is unbiased and its standard error that of the rest's mean. Where a few eigenvalues carry the
trace the error falls as :math:`1/m` in the products :math:`m` rather than :math:`1/\sqrt m`.
Both are cross-checks: where the structure gives the trace exactly
(:func:`~umwelt.nn.hessian.checks.exact_trace`) that is the number reported.
"""

from __future__ import annotations

import math

import torch

from umwelt._checks import check_int
from umwelt.nn.hessian.base import HessianOperator
from umwelt.nn.hessian.vectors import random_vectors

__all__ = ["hutchinson_trace", "hutchpp_trace"]


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
    return _mean_se(q)


def hutchpp_trace(
    op: HessianOperator, n_products: int, *, seed: int = 0, dist: str = "rademacher"
) -> tuple[float, float]:
    r"""Hutch++'s :math:`\mathrm{tr}\,H` (module docstring): estimate and standard error.

    ``n_products`` (≥ 6) products: ``s = n_products // 3`` for the sketch :math:`Q =
    \mathrm{orth}(HS)`, ``s`` for :math:`\mathrm{tr}(Q^\top H Q)` and the remaining
    ``n_products - 2s`` for Hutchinson's estimate of the deflated rest with probes
    :math:`(I - QQ^\top) G`. The standard error is that of the rest's mean (the sketch's part is
    exact given :math:`Q`); 0 when :math:`Q` spans :math:`H`'s range.

    >>> import torch
    >>> from umwelt.nn.hessian.base import MatrixOperator
    >>> H = torch.diag(torch.tensor([5.0, -2.0, 0.0, 0.0, 0.0, 0.0]).double())
    >>> est, se = hutchpp_trace(MatrixOperator(H), 6)  # rank 2 = the sketch's size: exact
    >>> round(est, 12), se < 1e-12
    (3.0, True)
    """
    m = check_int("the number of products", n_products, 6)
    s = m // 3
    gen = random_vectors(op.n, m - s, seed=seed, dist=dist, dtype=op.dtype, device=op.device).T
    S, G = gen[:, :s], gen[:, s:]  # the sketch's probes, the rest's (independent of Q)
    Q, _ = torch.linalg.qr(op.matmat(S))  # (n, s)
    low = float(torch.trace(Q.T @ op.matmat(Q)))
    P = G - Q @ (Q.T @ G)
    rest, se = _mean_se((P * op.matmat(P)).sum(dim=0).double())  # over the m - 2s probes
    return low + rest, se


def _mean_se(q: torch.Tensor) -> tuple[float, float]:
    """The mean of the probes' quadratic forms ``q`` and its standard error (``NaN`` for one)."""
    se = float(q.std() / math.sqrt(q.numel())) if q.numel() > 1 else math.nan
    return float(q.mean()), se
