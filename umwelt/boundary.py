r"""Where the phase boundary lies: the capacity at which half the runs converge (THEORY.md §5).

The paper's headline claim is that training converges when a net's capacity exceeds the data's
complexity. A sweep trains nets of :math:`N` parameters on data of complexity :math:`n` (the
number of training examples, or a label-noise fraction), several seeds each, and records
whether each run *converged* (zero training risk, :mod:`umwelt.phases`). For each value of the
complexity axis this module estimates the **threshold capacity** :math:`N^*` at which a run
converges with probability ``level`` (½ by default) — the median effective dose of a
dose-response experiment (Finney, *Probit Analysis*, 1971) with :math:`\log N` as the dose —
with a bootstrap confidence interval, and, when the complexity axis is a size, the exponent
:math:`a` of the power law :math:`N^* \propto n^a` with its interval.

**The law.** With :math:`x = \log N`,

.. math::
    P(\text{converged} \mid N) = \sigma(b_0 + b_1 x), \qquad
    \log N^* = \frac{\operatorname{logit}(\ell) - b_0}{b_1},

fitted by maximum likelihood over all capacities and seeds of one complexity value
(:func:`fit_logistic`). A positive slope :math:`b_1` is the claim's direction; a negative one
(bigger nets converge *less*) is reported as ``negative_slope``, never hidden.

**When the maximum-likelihood estimate does not exist** (Albert & Anderson, *Biometrika* 71,
1984): if every run converged, none did, or the outcomes are *separated* — no converged run at
a capacity below a failed one — the likelihood grows without bound as :math:`b_1 \to \infty`.
Then :math:`N^*` lies in the gap between the largest capacity with a failed run and the
smallest with a converged one, and its estimate is the gap's geometric midpoint (status
``separated``, slope :math:`+\infty`; ``separated_negative`` for the mirror image). If every
run converged, :math:`N^*` is only known to lie below the smallest capacity tried (status
``all_converged``: no estimate, ``ci_high`` the bound); if none did, above the largest
(``none_converged``, ``ci_low`` the bound); with one capacity only, the slope cannot be
estimated (``one_capacity``).

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

**The power law** (:func:`power_law`): ordinary least squares of :math:`\log N^*` on
:math:`\log n` over the points with an estimate (``fit`` and ``separated``). Its interval
refits the law on joint replicates: replicate :math:`b` of every point (the points are
different runs, so their bootstraps are independent), each taken as a draw uniform in its
:math:`[L_b, U_b]`, and the interval is the percentile interval of the refitted exponents.
The draw lets the uncertainty within each gap average over the points: taking the ends of the
intervals that widen the exponent's interval most covered a nominal 90 % in 99.7 % of the
sweeps (:math:`k = 3` below), taking their midpoints in 86 % (:math:`k = 8`, 8 seeds).

**Coverage**, measured on synthetic sweeps drawn from
:math:`P = \sigma(k(\log N - \log N^*))`, nominal 90 %, 200 bootstrap replicates. The
threshold, 8 capacities a factor 2 apart, 1000 sweeps each: 0.90 (:math:`k = 1`, 5 or 10
seeds), 0.92 (:math:`k = 2`, 5 seeds), 0.97 (:math:`k = 3`), 0.995 (:math:`k = 8`, 4 seeds,
96 % of the data sets separated). The exponent, :math:`N^* = 4 n^{0.8}` at 5 sizes a factor 2
apart on 10 capacities a factor 2 apart: 0.91 (:math:`k = 1.5`, 4 seeds, 500 sweeps), 0.91
(:math:`k = 3`), 0.997 (:math:`k = 8`, 3 seeds, 300 sweeps). ``tests/test_boundary.py``
checks the threshold and the exponent with 200 sweeps each.

A closed form: with two capacities, the fit reproduces the converged fractions there, so for
1 of 4 runs converged at :math:`N = 10` and 3 of 4 at :math:`N = 1000`,
:math:`b_1 = 2\log 3 / \log 100` and :math:`N^* = 100`:

>>> import math
>>> fit = fit_logistic(np.log([10.0] * 4 + [1000.0] * 4), [1, 0, 0, 0, 1, 1, 1, 0])
>>> fit.status, round(fit.slope / (2 * math.log(3) / math.log(100)), 6)
('fit', 1.0)
>>> t = capacity_threshold([10.0] * 4 + [1000.0] * 4, [1, 0, 0, 0, 1, 1, 1, 0], seed=0)
>>> round(t.estimate, 6), t.status
(100.0, 'fit')
>>> t = capacity_threshold([10, 20, 40, 80] * 3, [0, 0, 1, 1] * 3, seed=0)  # separated
>>> t.status, t.estimate == math.sqrt(20 * 40), t.ci_low, t.ci_high
('separated', True, 20.0, 40.0)

``numpy`` and ``scipy`` only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
from scipy.special import expit, log_expit, logit

from umwelt._checks import check_int
from umwelt.errors import ConfigError, NonFiniteError
from umwelt.seeds import index_seed

__all__ = [
    "STATUSES",
    "BoundaryPoint",
    "LogisticFit",
    "PowerLaw",
    "Threshold",
    "boundary",
    "boundary_from_rows",
    "capacity_threshold",
    "fit_logistic",
    "power_law",
]

#: every status of a fit or threshold, and what it means
STATUSES: dict[str, str] = {
    "fit": "finite maximum-likelihood fit with a positive slope",
    "negative_slope": "finite fit with a slope ≤ 0: bigger nets converge less",
    "separated": "no converged run below a failed one: slope +∞, N* the gap's midpoint",
    "separated_negative": "no failed run below a converged one: slope −∞ (bigger nets fail)",
    "all_converged": "every run converged: N* below the smallest capacity (a bound)",
    "none_converged": "no run converged: N* above the largest capacity (a bound)",
    "one_capacity": "all runs at one capacity: the slope cannot be estimated",
}

#: the statuses whose estimate enters the power law
_ESTIMATED = ("fit", "separated")
_NEWTON_STEPS = 100  # Newton iterations of a bootstrap refit (quadratic: ~10 suffice)
_NEWTON_TOL = 1e-10  # largest coefficient change (standardized x) at convergence


def _plain(v: Any) -> Any:
    """A JSON value: numpy scalars as Python ones, non-finite floats as None."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _json(obj: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return {f.name: _plain(getattr(obj, f.name)) for f in fields(obj) if f.name not in skip}


# --- input checks --------------------------------------------------------------------------


def _check_open_unit(name: str, v: Any) -> float:
    f = math.nan if isinstance(v, bool | str | bytes) else v
    try:
        f = float(f)
    except (TypeError, ValueError):
        f = math.nan
    if not 0 < f < 1:
        raise ConfigError(f"{name} must be in (0, 1), got {v!r}")
    return f


def _as_array(name: str, values: Any) -> np.ndarray:
    try:
        a = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{name} must be numbers, got {values!r}") from e
    if a.ndim != 1:
        raise ConfigError(f"{name} must be one-dimensional, got shape {a.shape}")
    return a


def _first_bad(a: np.ndarray, ok: np.ndarray) -> str:
    i = int(np.flatnonzero(~ok)[0])
    return f"{float(a[i])!r} at index {i}"


def _check_runs(
    name: str, x: Any, converged: Any, *, positive: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` as float arrays of equal length ≥ 1, ``x`` finite (and > 0), ``y`` in {0, 1}."""
    x, y = _as_array(name, x), _as_array("converged", converged)
    if x.size != y.size:
        raise ConfigError(f"{name} has {x.size} values but converged has {y.size}")
    if x.size == 0:
        raise ConfigError(f"no runs: {name} and converged are empty")
    ok = np.isfinite(x) & (x > 0 if positive else True)
    if not ok.all():
        rule = "finite and > 0" if positive else "finite"
        raise ConfigError(f"{name} must be {rule}, got {_first_bad(x, ok)}")
    ok = (y == 0) | (y == 1)
    if not ok.all():
        raise ConfigError(f"converged must be 0/1 or bool, got {_first_bad(y, ok)}")
    return x, y


# --- the logistic fit ----------------------------------------------------------------------


@dataclass(frozen=True)
class LogisticFit:
    r"""The maximum-likelihood fit :math:`P = \sigma(b_0 + b_1 x)` of one complexity value.

    Attributes:
        status: one of :data:`STATUSES`.
        reason: the status in words, with the numbers.
        intercept: :math:`b_0` (None where the estimate does not exist).
        slope: :math:`b_1`; :math:`\pm\infty` when separated, None for ``all_converged``,
            ``none_converged`` and ``one_capacity``.
        gap: separated: ``(largest x of a failed run, smallest x of a converged one)``, the
            gap in which the threshold lies (mirrored for ``separated_negative``); else None.
        n_runs: the number of runs.
        n_converged: how many of them converged.
        n_capacities: the number of distinct x.
        log_likelihood: the maximized log-likelihood (None without a finite fit).
    """

    status: str
    reason: str
    intercept: float | None
    slope: float | None
    gap: tuple[float, float] | None
    n_runs: int
    n_converged: int
    n_capacities: int
    log_likelihood: float | None

    def log_threshold(self, level: float = 0.5) -> float | None:
        r""":math:`(\operatorname{logit}(\ell) - b_0)/b_1`; separated: the gap's midpoint; None
        where there is no estimate (or the slope is exactly 0)."""
        level = _check_open_unit("level", level)
        if self.gap is not None:
            return 0.5 * (self.gap[0] + self.gap[1])
        if self.slope is None or self.intercept is None or self.slope == 0:
            return None
        return float((logit(level) - self.intercept) / self.slope)

    def to_json(self) -> dict[str, Any]:
        """The fields as plain JSON values (non-finite numbers as None; the gap as a list)."""
        out = _json(self, skip=("gap",))
        out["gap"] = None if self.gap is None else [float(g) for g in self.gap]
        return out


# --- Newton's method, many data sets at once -----------------------------------------------


def _newton(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    r"""The logistic MLE of each row: Newton's method with step halving, all rows at once.

    .. math::
        \beta \leftarrow \beta + t\,H^{-1} g, \quad
        g = \sum_i (y_i - p_i) \binom{1}{z_i}, \quad
        H = \sum_i p_i (1 - p_i) \binom{1}{z_i} (1, z_i),

    the step :math:`t` halved from 1 until the log-likelihood does not fall, a row done when its
    full step is below ``_NEWTON_TOL`` (the 2 × 2 solve in closed form).

    Args:
        z: standardized :math:`x`, shape ``(B, n)``.
        y: 0/1, shape ``(B, n)``; no row separated (the MLE exists).

    Returns:
        :math:`(\beta_0, \beta_1)` per row, shape ``(B, 2)``; NaN for a row not converged in
        ``_NEWTON_STEPS`` iterations.
    """
    B = y.shape[0]
    beta, done = np.zeros((B, 2)), np.zeros(B, dtype=bool)

    def loglik(b: np.ndarray, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        eta = b[:, :1] + b[:, 1:] * z  # (B', n)
        return np.sum(y * eta + log_expit(-eta), axis=1)  # log σ(η) = η + log σ(−η)

    current = loglik(beta, z, y)
    active = np.arange(B)  # the rows still iterating
    for _ in range(_NEWTON_STEPS):
        za, ya, b, now = z[active], y[active], beta[active], current[active]
        eta = b[:, :1] + b[:, 1:] * za  # (B', n)
        p = expit(eta)
        r, w = ya - p, p * expit(-eta)  # p (1 - p) without cancellation
        g0, g1 = r.sum(1), (r * za).sum(1)
        h00, h01, h11 = w.sum(1), (w * za).sum(1), (w * za * za).sum(1)
        det = h00 * h11 - h01**2  # > 0 for a row with two distinct z and 0 < p < 1
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.stack([h11 * g0 - h01 * g1, h00 * g1 - h01 * g0], axis=1) / det[:, None]
        broken = ~np.isfinite(step).all(1)  # a singular Hessian: the row fails (NaN)
        step[broken] = 0.0
        t = np.ones(active.size)
        for _ in range(40):  # halve each row's step until its likelihood does not fall
            trial = b + t[:, None] * step
            value = loglik(trial, za, ya)
            worse = value < now - 1e-12 * np.abs(now)
            if not worse.any():
                break
            t = np.where(worse, 0.5 * t, t)
        beta[active], current[active] = trial, value
        finished = ~broken & (np.abs(step).max(1) < _NEWTON_TOL)  # the full Newton step
        done[active[finished]] = True
        active = active[~(finished | broken)]
        if active.size == 0:
            break
    beta[~done] = np.nan
    return beta


def _standardize(x: np.ndarray) -> tuple[float, float]:
    """Centre and scale of ``x`` (the fit runs on ``(x - m) / s`` for conditioning)."""
    m, s = float(x.mean()), float(x.std())
    return m, s if s > 0 else 1.0


def fit_logistic(log_capacity: Any, converged: Any) -> LogisticFit:
    r"""Maximum-likelihood logistic regression of ``converged`` on ``log_capacity``.

    .. math::
        \hat b = \arg\max_b \sum_i y_i \log\sigma(b_0 + b_1 x_i)
                 + (1 - y_i) \log\sigma(-b_0 - b_1 x_i)

    by Newton's method on standardized :math:`x` (:func:`_newton`, the same iteration that
    refits the bootstrap replicates, so the estimate and its replicates cannot disagree),
    where the estimate exists; the separated and degenerate cases of the module docstring are
    recognized first and reported by ``status``.

    Args:
        log_capacity: :math:`x_i = \log N_i`, shape ``(n,)``, finite.
        converged: :math:`y_i`, 0/1 or bool, shape ``(n,)``.

    Returns:
        the :class:`LogisticFit`.

    Raises:
        ConfigError: for lengths that differ, no runs, a non-finite :math:`x`, or a
            ``converged`` value other than 0/1.
        NonFiniteError: if Newton's method did not converge (not seen on non-separated data,
            where the likelihood is strictly concave with a finite maximum).

    >>> fit_logistic([1.0, 2.0, 3.0], [0, 0, 1]).status
    'separated'
    """
    x, y = _check_runs("log_capacity", log_capacity, converged, positive=False)
    n, k = x.size, int(y.sum())
    levels = np.unique(x)
    done = f"{k} of {n} runs converged at {levels.size} capacities"

    def unfitted(status: str, why: str, slope=None, gap=None) -> LogisticFit:
        return LogisticFit(status, f"{done}: {why}", None, slope, gap, n, k, levels.size, None)

    if k == n:
        return unfitted("all_converged", "every run converged")
    if k == 0:
        return unfitted("none_converged", "no run converged")
    if levels.size == 1:
        return unfitted("one_capacity", "with one capacity the slope cannot be estimated")
    max0, min1 = float(x[y == 0].max()), float(x[y == 1].min())
    max1, min0 = float(x[y == 1].max()), float(x[y == 0].min())
    if max0 <= min1:
        why = f"every failed run at N ≤ {math.exp(max0):.4g}, every converged one at N ≥ "
        why += f"{math.exp(min1):.4g}: separated, the MLE slope is +∞"
        return unfitted("separated", why, math.inf, (max0, min1))
    if max1 <= min0:
        why = f"every converged run at N ≤ {math.exp(max1):.4g}, every failed one at N ≥ "
        why += f"{math.exp(min0):.4g}: bigger nets fail, the MLE slope is −∞"
        return unfitted("separated_negative", why, -math.inf, (max1, min0))
    m, s = _standardize(x)
    beta = _newton(((x - m) / s)[None], y[None])[0]  # standardized
    if not np.isfinite(beta).all():
        raise NonFiniteError(f"the logistic fit of {done} did not converge")
    b1 = float(beta[1] / s)
    b0 = float(beta[0] - b1 * m)
    eta = b0 + b1 * x
    loglik = float(np.sum(y * eta + log_expit(-eta)))
    if b1 > 0:
        status, why = "fit", f"{done}: slope {b1:.4g} per unit log N"
    else:
        status, why = "negative_slope", f"{done}: slope {b1:.4g} ≤ 0, bigger nets converge less"
    return LogisticFit(status, why, b0, b1, None, n, k, levels.size, loglik)


# --- the bootstrap replicates --------------------------------------------------------------


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


# --- the threshold of one complexity value -------------------------------------------------


@dataclass(frozen=True)
class Threshold:
    r"""The capacity :math:`N^*` at which a run converges with probability ``level``.

    Attributes:
        level: :math:`\ell`, the convergence probability that defines the threshold.
        estimate: :math:`N^*` (None for ``all_converged``, ``none_converged``,
            ``one_capacity``).
        ci_low, ci_high: the bootstrap interval; None where unbounded. For
            ``all_converged`` ``ci_high`` is the smallest capacity (a bound, no bootstrap),
            for ``none_converged`` ``ci_low`` the largest.
        ci: the interval's confidence.
        status: one of :data:`STATUSES`.
        reason: the status and the numbers in words.
        intercept, slope: :math:`b_0, b_1` of :math:`\sigma(b_0 + b_1 \log N)` (slope
            :math:`\pm\infty` when separated; None where not estimated).
        n_runs, n_converged, n_capacities: the data.
        n_boot: the bootstrap replicates drawn (0 without a bootstrap).
        boot_separated: the fraction of replicates that were separated.
        boot_degenerate: the fraction all converged, none converged or at one capacity.
        boot_failed: the fraction whose refit failed (left out of the interval).
        replicates: per bootstrap replicate, :math:`L_b`, :math:`U_b` and a draw uniform in
            :math:`[L_b, U_b]` (the infinite end if one is, NaN if both are) of
            :math:`\log N^*`, shape ``(n_boot, 3)``, for :func:`power_law` (not in
            :meth:`to_json`).
    """

    level: float
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    ci: float
    status: str
    reason: str
    intercept: float | None
    slope: float | None
    n_runs: int
    n_converged: int
    n_capacities: int
    n_boot: int
    boot_separated: float | None
    boot_degenerate: float | None
    boot_failed: float | None
    replicates: np.ndarray = field(repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        """The fields as plain JSON values (non-finite numbers as None), without
        ``replicates``."""
        return _json(self, skip=("replicates",))


def _exp(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else math.exp(v)


def capacity_threshold(
    capacity: Any,
    converged: Any,
    *,
    level: float = 0.5,
    n_boot: int = 1000,
    ci: float = 0.9,
    seed: int,
) -> Threshold:
    r"""The threshold capacity :math:`N^* = \exp((\operatorname{logit}\ell - b_0)/b_1)` of one
    complexity value, with its pairs-bootstrap interval (the module docstring).

    Args:
        capacity: :math:`N_i` of each run (all capacities and seeds), shape ``(n,)``, > 0.
        converged: whether run :math:`i` converged, 0/1 or bool, shape ``(n,)``.
        level: :math:`\ell \in (0, 1)`.
        n_boot: bootstrap replicates, ≥ 1.
        ci: the interval's confidence, in (0, 1).
        seed: the seed of the bootstrap's :class:`numpy.random.Generator`, ≥ 0.

    Returns:
        the :class:`Threshold`.

    Raises:
        ConfigError: for lengths that differ, no runs, a capacity that is not finite and
            > 0, a ``converged`` value other than 0/1, or ``level``, ``ci``, ``n_boot``,
            ``seed`` out of range.

    >>> t = capacity_threshold([8, 8, 8, 64, 64, 64], [1, 1, 1, 1, 1, 1], seed=0)
    >>> t.status, t.estimate, t.ci_high
    ('all_converged', None, 8.0)
    """
    N, y = _check_runs("capacity", capacity, converged, positive=True)
    level, ci = _check_open_unit("level", level), _check_open_unit("ci", ci)
    n_boot = check_int("n_boot", n_boot)
    seed = check_int("seed", seed, minimum=0)
    order = np.lexsort((y, N))  # a canonical order: the draws do not depend on the input's
    N, y = N[order], y[order]
    x = np.log(N)
    fit = fit_logistic(x, y)
    common = dict(
        level=level,
        ci=ci,
        status=fit.status,
        intercept=fit.intercept,
        slope=fit.slope,
        n_runs=fit.n_runs,
        n_converged=fit.n_converged,
        n_capacities=fit.n_capacities,
    )
    bounds = {  # no estimate: (ci_low, ci_high, what is known)
        "all_converged": (None, float(N.min()), f"N* < {N.min():.6g}, the smallest capacity"),
        "none_converged": (float(N.max()), None, f"N* > {N.max():.6g}, the largest capacity"),
        "one_capacity": (None, None, "N* not estimated"),
    }
    if fit.status in bounds:
        lo, hi, known = bounds[fit.status]
        return Threshold(
            estimate=None,
            ci_low=lo,
            ci_high=hi,
            reason=f"{fit.reason}; {known} (a bound, not an estimate; no bootstrap)",
            **common,
            n_boot=0,
            boot_separated=None,
            boot_degenerate=None,
            boot_failed=None,
            replicates=np.empty((0, 3)),
        )
    caps, j = np.unique(N, return_inverse=True)
    levels = np.log(caps)

    def capacity_at(v: float | None) -> float | None:
        """``exp(v)``, exactly the capacity tried where ``v`` is one's logarithm."""
        if v is None or not math.isfinite(v):
            return None
        i = int(np.searchsorted(levels, v))
        return float(caps[i]) if i < caps.size and levels[i] == v else math.exp(v)

    if fit.gap is not None:  # separated: the gap's geometric midpoint
        estimate = math.sqrt(capacity_at(fit.gap[0]) * capacity_at(fit.gap[1]))
    else:
        estimate = _exp(fit.log_threshold(level))
    rng = np.random.default_rng(seed)
    m, s = _standardize(x)
    picks = rng.integers(0, x.size, size=(n_boot, x.size))  # (B, n): the resampled runs
    L, U, sep, degenerate = _replicate_bounds(
        levels, j[picks], (x[picks] - m) / s, y[picks], level, m, s
    )
    failed = np.isnan(L) | np.isnan(U)
    lo, hi = _quantile_bounds(L, U, ci)
    draws = _uniform_within(L, U, rng.random(n_boot))  # (B,): for power_law
    why = fit.reason
    if estimate is not None and not N.min() <= estimate <= N.max():
        why += f"; N* = {estimate:.4g} extrapolated beyond the capacities tried"
    why += f"; {sep.mean():.0%} of {n_boot} bootstrap replicates separated"
    if degenerate.any():
        why += f", {degenerate.mean():.0%} all converged, none converged or at one capacity"
    if failed.any():
        why += f", {failed.mean():.0%} refits failed (left out)"
    return Threshold(
        estimate=estimate,
        ci_low=capacity_at(lo),
        ci_high=capacity_at(hi),
        reason=why,
        **common,
        n_boot=n_boot,
        boot_separated=float(sep.mean()),
        boot_degenerate=float(degenerate.mean()),
        boot_failed=float(failed.mean()),
        replicates=np.stack([L, U, draws], axis=1),
    )


# --- the boundary: one threshold per complexity value ----------------------------------------


@dataclass(frozen=True)
class BoundaryPoint:
    """The threshold of one value of the complexity axis.

    Attributes:
        complexity: the value (a number of examples, a label-noise fraction, ...).
        threshold: its :class:`Threshold`.
    """

    complexity: float
    threshold: Threshold

    def to_json(self) -> dict[str, Any]:
        """``{"complexity": ..., **threshold.to_json()}`` (one CSV row)."""
        return {"complexity": _plain(self.complexity), **self.threshold.to_json()}


def boundary(
    capacity: Any,
    complexity: Any,
    converged: Any,
    *,
    level: float = 0.5,
    n_boot: int = 1000,
    ci: float = 0.9,
    seed: int,
) -> list[BoundaryPoint]:
    r"""The phase boundary: :func:`capacity_threshold` of each distinct complexity value.

    The bootstrap of the ``k``-th value (in increasing order) is seeded by
    :func:`umwelt.seeds.index_seed` ``(seed, k)``, so the values' replicates are independent.

    Args:
        capacity: :math:`N_i` of each run, shape ``(n,)``, > 0.
        complexity: the complexity value of each run, shape ``(n,)``, finite.
        converged: whether each run converged, 0/1 or bool, shape ``(n,)``.
        level, n_boot, ci, seed: as in :func:`capacity_threshold`.

    Returns:
        one :class:`BoundaryPoint` per distinct complexity, in increasing order.

    Raises:
        ConfigError: as :func:`capacity_threshold`, or for a complexity of another length
            or not finite.

    >>> pts = boundary([10, 40, 10, 40], [1, 1, 2, 2], [0, 1, 0, 0], n_boot=10, seed=0)
    >>> [(p.complexity, p.threshold.status, p.threshold.estimate) for p in pts]
    [(1.0, 'separated', 20.0), (2.0, 'none_converged', None)]
    """
    N, y = _check_runs("capacity", capacity, converged, positive=True)
    c, _ = _check_runs("complexity", complexity, y, positive=False)
    seed = check_int("seed", seed, minimum=0)
    out = []
    for k, value in enumerate(np.unique(c)):
        mine = c == value
        t = capacity_threshold(
            N[mine], y[mine], level=level, n_boot=n_boot, ci=ci, seed=index_seed(seed, k)
        )
        out.append(BoundaryPoint(float(value), t))
    return out


def boundary_from_rows(
    rows: Iterable[Mapping[str, Any]],
    *,
    complexity: str = "n_train",
    capacity: str = "n_params",
    converged: str = "converged",
    **kwargs: Any,
) -> list[BoundaryPoint]:
    """:func:`boundary` of a sweep's rows (``phases.csv``'s), by column name.

    Rows missing any of the three values (a point not finished, or failed) are left out; each
    point's ``n_runs`` says how many entered.

    Args:
        rows: dicts with the three columns.
        complexity, capacity, converged: the column names.
        **kwargs: ``level``, ``n_boot``, ``ci``, ``seed`` of :func:`boundary`.

    Returns:
        :func:`boundary` of the rows that have all three values.

    >>> rows = [{"n_params": 10, "n_train": 5, "converged": False},
    ...         {"n_params": 40, "n_train": 5, "converged": True},
    ...         {"n_params": 40, "n_train": 5, "converged": None}]
    >>> boundary_from_rows(rows, n_boot=10, seed=0)[0].threshold.n_runs
    2
    """
    keep = [r for r in rows if all(r.get(k) is not None for k in (complexity, capacity, converged))]
    if not keep:
        raise ConfigError(f"no row has all of {capacity!r}, {complexity!r}, {converged!r}")
    return boundary(
        [r[capacity] for r in keep],
        [r[complexity] for r in keep],
        [r[converged] for r in keep],
        **kwargs,
    )


# --- the power law -------------------------------------------------------------------------


@dataclass(frozen=True)
class PowerLaw:
    r""":math:`N^* = C n^a` fitted over a boundary's estimated points.

    Attributes:
        status: ``"fit"``, or ``"too_few_points"`` (fewer than 3 points with an estimate).
        reason: what entered and what was left out, in words.
        exponent: :math:`a` (None unless fitted).
        ci_low, ci_high: its bootstrap interval (None where unbounded or not fitted).
        ci: the interval's confidence.
        prefactor: :math:`C` (None unless fitted).
        scatter: the root-mean-square residual of :math:`\log N^*` (None unless fitted).
        n_points: the points that entered.
        n_boot: the joint replicates used (0 unless fitted).
    """

    status: str
    reason: str
    exponent: float | None
    ci_low: float | None
    ci_high: float | None
    ci: float
    prefactor: float | None
    scatter: float | None
    n_points: int
    n_boot: int

    def to_json(self) -> dict[str, Any]:
        """The fields as plain JSON values (non-finite numbers as None)."""
        return _json(self)


def power_law(points: Sequence[BoundaryPoint], *, ci: float = 0.9) -> PowerLaw:
    r"""The exponent :math:`a` of :math:`\log N^* = \log C + a \log n`, with its interval.

    Ordinary least squares over the points whose status is ``fit`` or ``separated``:
    :math:`a = \sum_i w_i \log N^*_i` with :math:`w_i = (u_i - \bar u)/\sum_k (u_k -
    \bar u)^2`, :math:`u = \log n`. Joint replicate :math:`b` is
    :math:`a_b = \sum_i w_i D_{ib}`, :math:`D_{ib}` the draw of point :math:`i`'s replicate
    :math:`b` (:attr:`Threshold.replicates`); the interval is the percentile interval of the
    :math:`a_b` (order statistics; a replicate without a slope, :math:`+\infty - \infty`,
    left out and counted in ``reason``).

    Args:
        points: :func:`boundary`'s points; the complexity must be a size (> 0).
        ci: the interval's confidence, in (0, 1).

    Returns:
        the :class:`PowerLaw`.

    Raises:
        ConfigError: for ``ci`` outside (0, 1), a complexity ≤ 0, or points with different
            numbers of bootstrap replicates.

    >>> import math
    >>> pts = [BoundaryPoint(n, capacity_threshold([n, 4 * n], [0, 1], n_boot=20, seed=0))
    ...        for n in (10.0, 100.0, 1000.0)]
    >>> law = power_law(pts)
    >>> law.status, round(law.exponent, 12), round(law.prefactor, 12)
    ('fit', 1.0, 2.0)
    """
    ci = _check_open_unit("ci", ci)
    for p in points:
        if not (math.isfinite(p.complexity) and p.complexity > 0):
            raise ConfigError(f"a power law needs complexities > 0, got {p.complexity!r}")
    used = [p for p in points if p.threshold.status in _ESTIMATED]
    left = [f"{p.complexity:g} ({p.threshold.status})" for p in points if p not in used]
    why = f"{len(used)} of {len(points)} points with an estimate"
    if left:
        why += "; left out: " + ", ".join(left)
    if len(used) < 3:
        return PowerLaw(
            "too_few_points",
            f"{why}: a power law needs ≥ 3",
            None,
            None,
            None,
            ci,
            None,
            None,
            len(used),
            0,
        )
    sizes = {p.threshold.replicates.shape[0] for p in used}
    if len(sizes) != 1:
        raise ConfigError(f"the points have different numbers of replicates: {sorted(sizes)}")
    u = np.log([p.complexity for p in used])  # (P,)
    v = np.log([p.threshold.estimate for p in used])  # (P,)
    w = (u - u.mean()) / np.sum((u - u.mean()) ** 2)  # (P,) OLS slope weights
    a = float(w @ v)
    c = float(v.mean() - a * u.mean())
    scatter = float(np.sqrt(np.mean((v - c - a * u) ** 2)))
    reps = np.stack([p.threshold.replicates for p in used], axis=1)  # (B, P, 2)
    B = reps.shape[0]
    if B == 0:
        lo = hi = math.nan
    else:
        draws = reps[:, w != 0, 2]  # (B, P'); a point with w = 0 does not move the slope
        with np.errstate(invalid="ignore"):  # +∞ − ∞: a replicate with no slope (NaN)
            slopes = draws @ w[w != 0]  # (B,)
        lo, hi = _quantile_bounds(slopes, slopes, ci)
        B = int(np.sum(~np.isnan(slopes)))
        if B < slopes.size:
            why += f"; {slopes.size - B} of {slopes.size} joint replicates without a slope"
    return PowerLaw("fit", why, a, _finite(lo), _finite(hi), ci, math.exp(c), scatter, len(used), B)


def _finite(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None
