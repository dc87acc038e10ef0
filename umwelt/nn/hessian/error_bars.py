r"""Closed-form error bars of a stochastic Lanczos quadrature estimate, over its start vectors.

An SLQ estimate (:mod:`~umwelt.nn.hessian.quadrature`) is a mean over :math:`n_v` random start
vectors :math:`q` of quadratic forms :math:`q^\top f(H)\, q`; its error is the spread of those
forms, which the law of the start vectors gives in closed form.

A bootstrap over the start vectors under-covers: with 8 vectors the z-scores of the second
moment had a standard deviation of 1.5 against dense Hessians, and with 2 vectors a reported
error was 64 times too small, because one vector that happens to see a dominant eigenvector
inflates the estimate *and* its spread together. The error bars here use the law of the start
vectors instead. For :math:`q` uniform on the unit sphere (a normalized
Gaussian vector) and a spectral function :math:`B = b(H)`, the fourth moments
:math:`\mathbb E[q_i q_j q_k q_l] = (\delta_{ij}\delta_{kl} + \delta_{ik}\delta_{jl} +
\delta_{il}\delta_{jk}) / (N(N+2))` give

.. math::
    \mathrm{Var}\big[q^\top B q\big] = \frac{2\,(N\,\mathrm{tr}B^2 - (\mathrm{tr}B)^2)}{N^2(N+2)}
    = \frac{2}{N+2}\,\mathrm{Var}_\rho(b),

the variance of :math:`b` under the eigenvalue density itself. For Rademacher
:math:`q = v/\sqrt N` it is :math:`\frac{2}{N^2}\sum_{i\ne j} B_{ij}^2 = \frac2N
\mathrm{Var}_\rho(b) - \frac{2}{N^2}\sum_i (B_{ii} - \bar b)^2`: the same formula with
:math:`N` for :math:`N + 2` is an *upper bound*, tight when the diagonal of :math:`b(H)` is flat
(delocalized eigenvectors), loose when a coordinate is nearly an eigenvector (the weights of a
dead unit): Rademacher error bars are conservative, Gaussian ones exact in law.

Every reported quantity is a smooth function :math:`Q = \varphi(\mathbb E[q^\top f(H) q])` of
such quadratic forms (the trace: :math:`f = N\lambda`; the moment asymmetry:
:math:`\varphi = m_3/m_2^{3/2}`; a density point: a kernel), so to first order its estimate
errs by the mean over the start vectors of :math:`q^\top b(H) q - \mathbb E`, with the
*influence function* :math:`b = \nabla\varphi \cdot f` evaluated at the estimate (the delta
method). Hence

.. math::
    \hat\sigma^2 = \frac{a\,\hat V}{1 - a}, \qquad a = \frac{2}{(N+2)\,n_v}, \qquad
    \hat V = \hat\rho(\beta^2), \quad \beta = b - \hat\rho(b),

with :math:`\hat\rho` the pooled quadrature measure (exact for the polynomial :math:`b^2` of
the moments, degree :math:`\le 6 \le 2k - 1`); :math:`1/(1-a)` removes the bias
:math:`\mathbb E[\hat\rho(b^2) - \hat\rho(b)^2] = V - \sigma^2`. :math:`\hat V` is random with
the same weights as the estimate. Modelling :math:`N (u_i^\top q)^2` as independent
:math:`\chi^2_1`, :math:`\hat V \approx V \chi^2_\nu/\nu` with Satterthwaite's (1946)

.. math::
    \nu = n_v N\,\frac{\rho(\beta^2)^2}{\rho(\beta^4)} \in [n_v,\ n_v N],

and :math:`z = (\hat Q - Q)/\hat\sigma` has :math:`\mathbb E[z^2] \approx \nu/(\nu - 2)` (a
Student *t*; exactly :math:`n_v/(n_v - 2)` when one eigenvalue carries all of
:math:`\mathrm{Var}_\rho(b)`: then :math:`z = (X - 1)/\sqrt{2X/n_v}`, :math:`X = \chi^2_{n_v}/
n_v`). The reported standard error is :math:`\hat\sigma\sqrt{\hat\nu/(\hat\nu - 2)}` (the
estimate :math:`\hat\nu` clipped to :math:`[n_v, n_v N]`), so that :math:`\mathbb E[z^2]
\approx 1`. With 2 start vectors and one dominant direction :math:`\nu = 2` and
:math:`\mathbb E[z^2] = \infty`: no finite error bar is honest, and below
:data:`MIN_ERROR_VECTORS` = 3 start vectors every standard error is ``NaN`` (``None`` in JSON)
with the reason :func:`error_bar_reason`.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["MIN_ERROR_VECTORS", "error_bar_reason"]

MIN_ERROR_VECTORS = 3  # fewer start vectors: no honest error bar (module docstring)


def error_bar_reason(n_v: int) -> str | None:
    """Why ``n_v`` start vectors give no error bars (``None``: they do).

    >>> error_bar_reason(8) is None
    True
    """
    if n_v >= MIN_ERROR_VECTORS:
        return None
    return (
        f"{n_v} start vector{'s' if n_v != 1 else ''}: below {MIN_ERROR_VECTORS} no standard "
        "error is honest (when one eigen-direction dominates, the z-score of a mean over 2 "
        "vectors has infinite variance)"
    )


def _normal_quantile(p: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(p))


def _influence_se(
    weights: np.ndarray,
    b: np.ndarray,
    n: int,
    dist: str,
    *,
    widen: bool = True,
    fixed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Standard error of :math:`\frac{1}{n_v}\sum_v \sum_m \tau^{(v)}_m b(\theta^{(v)}_m)` in
    closed form (module docstring): ``(se, sigma)``, ``sigma`` without Satterthwaite's widening.
    ``fixed`` = :math:`r`: the first ``r`` nodes of each row are the same exact point masses of
    weight :math:`1/n` (:attr:`~umwelt.nn.hessian.measure.SLQResult.point_masses`); the error
    is that of the rest, an SLQ in :math:`n - r` dimensions with weights :math:`\tau n/(n - r)`,
    times :math:`(n - r)/n`.

    Args:
        weights: ``(n_v, k)``.
        b: the influence function at the nodes, ``(n_v, k)`` or ``(n_v, k, G)``.
        n: the dimension :math:`N`.
        dist: ``"gaussian"`` (exact in law) or ``"rademacher"`` (an upper bound).
        widen: multiply by :math:`\sqrt{\hat\nu/(\hat\nu - 2)}` (``NaN`` below
            :data:`MIN_ERROR_VECTORS` start vectors).

    Returns:
        ``(b.shape[2:])`` each (a 0-d array for ``(n_v, k)``).
    """
    if fixed:
        scale = (n - fixed) / n
        rest = weights[:, fixed:] / scale, b[:, fixed:], n - fixed, dist
        se, sigma = _influence_se(*rest, widen=widen)
        return se * scale, sigma * scale
    n_v = weights.shape[0]
    w = weights.reshape(weights.shape + (1,) * (b.ndim - 2)) / n_v
    beta2 = (b - (w * b).sum(axis=(0, 1))) ** 2
    v2 = (w * beta2).sum(axis=(0, 1))
    v4 = (w * beta2 * beta2).sum(axis=(0, 1))
    a = (2.0 / (n + 2) if dist == "gaussian" else 2.0 / n) / n_v
    sigma = np.sqrt(a * v2 / (1 - a))
    if not widen:
        return sigma, sigma
    if n_v < MIN_ERROR_VECTORS:
        return np.full_like(sigma, math.nan), sigma
    ratio = np.divide(v2**2, v4, out=np.ones_like(v2), where=v4 > 0)
    nu = np.clip(n_v * n * ratio, n_v, n_v * n)
    return sigma * np.sqrt(nu / (nu - 2)), sigma
