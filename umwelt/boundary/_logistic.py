r"""The logistic fit of one complexity value: :math:`P(\text{converged} \mid N)` as a
sigmoid of :math:`\log N`, by maximum likelihood, and what is known where the estimate does
not exist.

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
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit, log_expit, logit

from umwelt.boundary._common import _check_open_unit, _check_runs, _json
from umwelt.errors import NonFiniteError

_NEWTON_STEPS = 100  # Newton iterations of a bootstrap refit (quadratic: ~10 suffice)
_NEWTON_TOL = 1e-10  # largest coefficient change (standardized x) at convergence


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
