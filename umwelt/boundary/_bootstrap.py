r"""The bootstrap of one complexity value's threshold: each replicate a point or an interval
of thresholds, and the interval's order statistics.

**The interval** (:func:`capacity_threshold`) is a case-resampling (pairs) bootstrap
(Efron & Tibshirani, *An Introduction to the Bootstrap*, 1993, §9.5): the runs of the
complexity value are drawn with replacement ``n_boot`` times from a
:class:`numpy.random.Generator` seeded explicitly, and each replicate is refitted (by the
Newton iteration of :func:`fit_logistic`, all replicates at once). A fitted replicate gives
the point :math:`L_b = U_b = \log N^*_b`; one whose estimate does not exist gives the
*interval* :math:`[L_b, U_b]` of thresholds consistent with it:

* separated with a gap: the gap, between the capacity of its last failed run and that of its
  first converged one;
* separated at one mixed capacity :math:`x_t` (failures below, successes above, both at
  :math:`x_t`: the MLE puts :math:`\log N^*` at :math:`x_t` with an infinite slope): from
  :math:`x_t` half-way to the neighbouring capacity on the side its converged fraction points
  to (below if more than ``level`` of its runs converged, above if fewer);
* all converged: :math:`(-\infty, x_{\min}]`; none: :math:`[x_{\max}, +\infty)`.

The interval at confidence :math:`c` is

.. math::
    \bigl[\,Q_{(1-c)/2}(L),\; Q_{(1+c)/2}(U)\,\bigr],

the lower order statistic of the lower ends and the upper one of the upper ends; an infinite
end is reported as ``None`` (unbounded). Where every replicate is fitted this is the
percentile interval; where the transition is sharper than the capacity grid, and most data
sets are separated, it still covers, where a point rule (the midpoint) for the replicates
covered a nominal 90 % as little as 63 % of the time. It is conservative there: the grid does
not resolve the threshold any better. :func:`scipy.stats.bootstrap` is not used because its
intervals take one statistic per replicate at both ends, and these replicates are intervals,
some of them unbounded.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import logit

from umwelt.boundary._logistic import _newton


def _replicate_bounds(
    levels: np.ndarray,
    j: np.ndarray,
    z: np.ndarray,
    y: np.ndarray,
    level: float,
    m: float,
    s: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""Each bootstrap replicate's interval :math:`[L_b, U_b]` of :math:`\log N^*`.

    Args:
        levels: the distinct :math:`x` in increasing order, shape ``(J,)``.
        j: each resampled run's index into ``levels``, shape ``(B, n)``.
        z: each resampled run's standardized :math:`x`, shape ``(B, n)``.
        y: each resampled run's outcome, shape ``(B, n)``.
        level, m, s: the level and the standardization of :math:`x`.

    Returns:
        ``(L, U, separated, degenerate)``: the bounds (NaN for a refit that failed), and
        masks of the replicates that were separated (either way) and that were all converged,
        none converged or at one capacity.
    """
    B, J = y.shape[0], levels.size
    flat = (np.arange(B)[:, None] * J + j).ravel()
    total = np.bincount(flat, minlength=B * J).reshape(B, J)
    conv = np.bincount(flat, weights=y.ravel(), minlength=B * J).reshape(B, J)
    present, has1 = total > 0, conv > 0
    has0 = present & (conv < total)
    idx = np.arange(J)
    # the last index with a failed (converged) run, the first with a converged (failed) one
    max0 = np.where(has0, idx, -1).max(1)
    min1 = np.where(has1, idx, J).min(1)
    max1 = np.where(has1, idx, -1).max(1)
    min0 = np.where(has0, idx, J).min(1)
    lo_x = np.concatenate([[-np.inf], levels])  # lo_x[i + 1] = levels[i]; lo_x[0] = -inf
    hi_x = np.concatenate([levels, [np.inf]])  # hi_x[J] = +inf
    rows = np.arange(B)

    def gap(lo: np.ndarray, hi: np.ndarray, rising: bool) -> tuple[np.ndarray, np.ndarray]:
        """The bounds of separated rows whose outcomes change between indices ``lo ≤ hi``:
        the gap ``[x_lo, x_hi]``, or for a mixed capacity ``t = lo = hi`` the half step
        towards the side its converged fraction points to (``x_t`` itself at the level)."""
        t = np.clip(lo, 0, J - 1)
        xt = levels[t]
        prev = lo_x[np.where(present & (idx < t[:, None]), idx, -1).max(1) + 1]
        nxt = hi_x[np.where(present & (idx > t[:, None]), idx, J).min(1)]
        frac = conv[rows, t] / np.maximum(total[rows, t], 1)
        above = frac < level if rising else frac > level  # the crossing lies above x_t
        below = frac > level if rising else frac < level
        mixed = lo == hi
        L = np.where(mixed, np.where(below, 0.5 * (prev + xt), xt), levels[t])
        U = np.where(mixed, np.where(above, 0.5 * (xt + nxt), xt), hi_x[hi])
        return L, U

    L, U = np.full(B, np.nan), np.full(B, np.nan)
    all1, all0 = max0 < 0, max1 < 0
    one = present.sum(1) == 1
    degenerate = all1 | all0 | one
    L[all1], U[all1] = -np.inf, levels[np.argmax(present, 1)][all1]
    L[all0], U[all0] = levels[J - 1 - np.argmax(present[:, ::-1], 1)][all0], np.inf
    L[one & ~(all1 | all0)], U[one & ~(all1 | all0)] = -np.inf, np.inf
    sep = ~degenerate & (max0 <= min1)
    L[sep], U[sep] = (b[sep] for b in gap(max0, min1, rising=True))
    neg = ~degenerate & ~sep & (max1 <= min0)
    L[neg], U[neg] = (b[neg] for b in gap(max1, min0, rising=False))
    fit = ~(degenerate | sep | neg)
    if fit.any():
        beta = _newton(z[fit], y[fit])  # (F, 2), standardized
        with np.errstate(divide="ignore", invalid="ignore"):
            t = m + s * (logit(level) - beta[:, 0]) / beta[:, 1]
        t[beta[:, 1] == 0] = np.nan  # no information on the threshold; counted as failed
        L[fit], U[fit] = t, t
    return L, U, sep | neg, degenerate


def _uniform_within(L: np.ndarray, U: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``L + u (U - L)`` where both ends are finite; the infinite end where one is; NaN where
    both are (no information) or either is NaN."""
    fin = np.isfinite(L) & np.isfinite(U)
    Lf, Uf = np.where(fin, L, 0.0), np.where(fin, U, 0.0)
    one_sided = np.where(np.isinf(L) & np.isfinite(U), L, np.where(np.isfinite(L), U, np.nan))
    return np.where(fin, Lf + u * (Uf - Lf), one_sided)


def _quantile_bounds(L: np.ndarray, U: np.ndarray, ci: float) -> tuple[float, float]:
    """The lower ``(1 - ci)/2`` order statistic of ``L`` and the upper one of ``U`` (NaN
    replicates left out)."""
    keep = ~(np.isnan(L) | np.isnan(U))
    if not keep.any():
        return math.nan, math.nan
    lo = float(np.quantile(L[keep], (1 - ci) / 2, method="lower"))
    hi = float(np.quantile(U[keep], (1 + ci) / 2, method="higher"))
    return lo, hi
