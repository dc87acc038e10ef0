r"""Where the spectrum stands: the summary statistics of an SLQ measure, with their errors.

:func:`spectral_summary` says where the spectrum stands (THEORY.md §5): negative mass, moment
asymmetry :math:`\int\lambda^3\rho / (\int\lambda^2\rho)^{3/2}` and density asymmetry
:math:`\int|\rho(\lambda) - \rho(-\lambda)|\,d\lambda`, and the trace (Hutchinson:
:math:`\mathbb E[v^\top H v] = \mathrm{tr}\,H`, here from the quadrature's first moments), each
with the closed-form standard error of :mod:`~umwelt.nn.hessian.error_bars` (the delta method:
the statistic's influence function at the nodes).

Two quantities need more than the delta method. ``neg_mass`` counts the weight below a step
:math:`x = -\epsilon`: with :math:`k < N` steps (and no early exit) a Gauss node near the step
carries weight of both sides, an error shared by all start vectors. For nodes
:math:`\theta_1 < \dots < \theta_k` with :math:`j` of them below :math:`x`, the
Chebyshev–Markov–Stieltjes inequalities (Golub & Meurant 2010, *Matrices, Moments and
Quadrature with Applications*) bracket the true weight below :math:`x` by
:math:`[\sum_{m<j}\tau_m,\ \sum_{m\le j+1}\tau_m]`; the estimate is the midpoint of each
vector's bracket, and half its width (averaged over the vectors) is added to the standard error
in quadrature. That is a bound, not a standard deviation: with :math:`k < N` and weight near 0
the ``neg_mass`` error bar is conservative (``neg_share``, whose steps sit at the resolution, is
the resolved statistic). ``density_asymmetry`` integrates :math:`|\bar D(u)|` of the noisy
difference :math:`D = \rho(u) - \rho(-u)`; where :math:`\bar D \approx \mathcal N(D, s^2)`,
:math:`\mathbb E|\bar D| = |D| + s\,g(|D|/s)` with :math:`g(t) = 2\phi(t) - 2t\,\Phi(-t)`, so
the plain integral is biased upwards by the noise (by :math:`0.80\,s` per point of an exactly
symmetric spectrum). The reported value subtracts :math:`s\,g(|\bar D|/s)` point by point
(``density_asymmetry_bias``: what was subtracted), with :math:`s` the closed form; what remains
is a bias of at most :math:`+0.48\,s` at :math:`D = 0` and within :math:`\pm 0.1\,s` for
:math:`|D| \ge s/2`. No estimator removes it at 0: the mean of any estimator is an analytic
(even) function of :math:`D`, and :math:`|D|` is not.
"""

from __future__ import annotations

import math

import numpy as np

from umwelt.errors import ConfigError
from umwelt.nn.hessian.error_bars import _influence_se, error_bar_reason
from umwelt.nn.hessian.measure import _CHUNK_NUMBERS, SLQResult, _kernel

__all__ = ["spectral_summary"]


def _density_asymmetry(res: SLQResult, grid: np.ndarray, sigma: float):
    r""":math:`\int |\bar D|` less its noise excess (module docstring), the excess, the SE.

    :math:`D(x) = \rho(x) - \rho(-x)` on ``grid``; per node the influence of
    :math:`\int|\bar D|` is :math:`\int \mathrm{sign}(\bar D(x))\,[K(x - \theta) -
    K(x + \theta)]\,dx`. The pointwise noise :math:`s(x)` is the closed form (with Rademacher
    vectors the smaller of its bound and the sample variance over the vectors, so that identical
    quadratures, e.g. of a diagonal :math:`H`, are not corrected).
    """
    nodes, weights, n_v = res.nodes, res.weights, res.n_vectors
    tw = _trapezoid_weights(grid)
    total = excess = 0.0
    b = np.zeros_like(nodes)  # (n_v, k) the influence of each node
    step = max(1, _CHUNK_NUMBERS // max(1, nodes.size))
    for a in range(0, grid.size, step):  # D at x needs the kernels at x only: one pass
        x = grid[a : a + step]
        dk = _kernel(x - nodes[..., None], sigma) - _kernel(x + nodes[..., None], sigma)
        per = np.einsum("vm,vmg->vg", weights, dk)  # (n_v, g) each vector's D
        D = per.mean(axis=0)
        _, s = _influence_se(weights, dk, res.n, res.dist, widen=False, fixed=res.point_masses)
        if res.dist != "gaussian" and n_v > 1:
            s = np.minimum(s, per.std(axis=0, ddof=1) / math.sqrt(n_v))
        e = _fold_bias(D, s)
        w = tw[a : a + step]
        total += float(w @ (np.abs(D) - e))
        excess += float(w @ e)
        b += dk @ (w * np.sign(D))
    se = _influence_se(weights, b, res.n, res.dist, fixed=res.point_masses)[0]
    return total, excess, float(se)


def spectral_summary(
    res: SLQResult,
    *,
    grid: np.ndarray,
    sigma: float,
    zero_tol: float = 1e-6,
    resolution: float = 0.0,
) -> dict[str, float | str | None]:
    r"""Where the spectrum stands, from an SLQ run, with closed-form standard errors.

    * ``neg_mass`` — :math:`\int_{\lambda < -\epsilon} \rho`, the quadrature weight on nodes
      below :math:`-\epsilon`, :math:`\epsilon` = ``zero_tol`` × the largest :math:`|\theta|`
      (so round-off around a zero eigenvalue cluster is not counted as negative); with
      :math:`k < N` the midpoint of each vector's Chebyshev–Markov–Stieltjes bracket, whose
      half-width enters the standard error (module docstring);
    * ``neg_share`` — the negative part of the *resolved* weight,
      :math:`\int_{\lambda < -\delta}\rho \,/\, \int_{|\lambda| > \delta}\rho` with
      :math:`\delta` = max(``resolution``, :math:`\epsilon`) (``resolution``: e.g. the
      quadrature's node spacing): 1/2 for a symmetric spectrum, 0 for a positive
      semi-definite one, and not inflated by a cluster of eigenvalues at 0 that ``k`` Lanczos
      steps smear into nodes of both signs (``NaN`` when no weight lies beyond :math:`\delta`);
    * ``asymmetry`` — :math:`\int\lambda^3\rho / (\int\lambda^2\rho)^{3/2}`, from the quadrature
      moments (exact moments of the SLQ measure, no smoothing; 0 for a symmetric spectrum);
    * ``density_asymmetry`` — :math:`\int |\rho(\lambda) - \rho(-\lambda)|\,d\lambda` of the
      smoothed density on ``grid`` (trapezoid; 0 for a symmetric spectrum; mass beyond the
      grid is not counted), less its noise excess ``density_asymmetry_bias`` (module
      docstring; so it may be slightly negative for a symmetric spectrum);
    * ``trace`` — Hutchinson :math:`N\,\overline{q^\top H q}`;
      ``m2`` — :math:`\frac1N\mathrm{tr} H^2`;
    * ``ritz_min``, ``ritz_max`` — extreme nodes (inside the spectrum);
    * each of the first six with ``<name>_se``, its standard error
      (:mod:`~umwelt.nn.hessian.error_bars`; an upper bound with Rademacher start vectors),
      ``NaN`` below :data:`~umwelt.nn.hessian.error_bars.MIN_ERROR_VECTORS` start
      vectors with ``se_reason`` saying so (``None`` otherwise).

    Raises:
        ConfigError: for a bad ``sigma`` or ``resolution``.
    """
    grid = np.asarray(grid, dtype=np.float64)
    if not (math.isfinite(resolution) and resolution >= 0):
        raise ConfigError(f"the resolution must be a finite number ≥ 0, got {resolution!r}")
    if not (math.isfinite(sigma) and sigma > 0):
        raise ConfigError(f"the smoothing width sigma must be a finite number > 0, got {sigma!r}")
    nodes, weights, N, n_v = res.nodes, res.weights, res.n, res.n_vectors
    live = weights > 0
    tol = zero_tol * float(np.abs(nodes[live]).max()) if live.any() else 0.0

    def mean(f: np.ndarray) -> float:  # the pooled quadrature of f(θ)
        return float((weights * f).sum() / n_v)

    def se(b: np.ndarray) -> float:
        return float(_influence_se(weights, b, N, res.dist, fixed=res.point_masses)[0])

    out: dict[str, float | str | None] = {}
    exact = (live.sum(axis=1) < res.k) | (res.k >= N)  # invariant Krylov space or k = N
    below, half = _step_bracket(nodes, weights, -tol, exact)
    out["neg_mass"] = float(below.mean())
    out["neg_mass_se"] = math.hypot(se((nodes < -tol).astype(float)), float(half.mean()))
    d = max(resolution, tol)
    neg, pos = (nodes < -d).astype(float), (nodes > d).astype(float)
    Nn, Pp = mean(neg), mean(pos)
    if Nn + Pp > 0:
        out["neg_share"] = Nn / (Nn + Pp)
        out["neg_share_se"] = se((neg * Pp - pos * Nn) / (Nn + Pp) ** 2)
    else:
        out["neg_share"] = out["neg_share_se"] = math.nan
    M2, M3 = mean(nodes**2), mean(nodes**3)
    if M2 > 0:
        out["asymmetry"] = M3 / M2**1.5
        out["asymmetry_se"] = se(nodes**3 / M2**1.5 - 1.5 * M3 / M2**2.5 * nodes**2)
    else:
        out["asymmetry"] = out["asymmetry_se"] = math.nan
    da, excess, da_se = _density_asymmetry(res, grid, sigma)
    out |= {"density_asymmetry": da, "density_asymmetry_se": da_se}
    out["density_asymmetry_bias"] = excess
    out["trace"], out["trace_se"] = res.trace()
    out["m2"], out["m2_se"] = M2, se(nodes**2)
    out["se_reason"] = error_bar_reason(n_v)
    out["ritz_min"] = float(nodes[live].min()) if live.any() else 0.0
    out["ritz_max"] = float(nodes[live].max()) if live.any() else 0.0
    out["n_params"] = N
    out["n_vectors"] = n_v
    out["lanczos_steps"] = res.k
    return out


def _trapezoid_weights(grid: np.ndarray) -> np.ndarray:
    """``w`` with ``w @ f == np.trapezoid(f, grid)``."""
    w = np.zeros_like(grid)
    d = np.diff(grid)
    w[:-1] += d / 2
    w[1:] += d / 2
    return w


def _step_bracket(nodes: np.ndarray, weights: np.ndarray, x: float, exact: np.ndarray):
    r"""Each vector's weight below ``x``: the midpoint of its Chebyshev–Markov–Stieltjes
    bracket and the bracket's half-width, ``(n_v,)`` each.

    For Gauss nodes :math:`\theta_1 < \dots < \theta_k` with :math:`j` of them below :math:`x`,
    the true :math:`F(x) \in [\sum_{m < j} \tau_m,\ \sum_{m \le j+1} \tau_m]`; a vector whose
    quadrature is exact (``exact``: an invariant Krylov space or :math:`k = N`) has width 0 and
    its plain count.
    """
    n_v, k = nodes.shape
    order = np.argsort(nodes, axis=1)
    th = np.take_along_axis(nodes, order, axis=1)
    tw = np.take_along_axis(weights, order, axis=1)
    cum = np.concatenate([np.zeros((n_v, 1)), np.cumsum(tw, axis=1)], axis=1)  # (n_v, k + 1)
    j = (th < x).sum(axis=1)
    rows = np.arange(n_v)
    lo, up = cum[rows, np.maximum(j - 1, 0)], cum[rows, np.minimum(j + 1, k)]
    plain = cum[rows, j]
    mid = np.where(exact, plain, (lo + up) / 2)
    half = np.where(exact, 0.0, (up - lo) / 2)
    return mid, half


def _fold_bias(d: np.ndarray, s: np.ndarray) -> np.ndarray:
    r""":math:`s\,g(|d|/s)`, :math:`g(t) = 2\phi(t) - 2t\Phi(-t)`: the first-order excess of
    :math:`\mathbb E|\bar D|` over :math:`|D|` for :math:`\bar D \sim \mathcal N(D, s^2)`, at the
    estimate (0 where ``s == 0``)."""
    from scipy.stats import norm

    t = np.divide(np.abs(d), s, out=np.full_like(d, np.inf), where=s > 0)
    g = 2 * norm.pdf(t) - 2 * np.where(np.isfinite(t), t, 0.0) * norm.cdf(-t)
    return np.where(s > 0, s * g, 0.0)
