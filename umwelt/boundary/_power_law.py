r"""The power law :math:`N^* = C n^a` over a boundary's points, with the exponent's interval.

**The power law** (:func:`power_law`): ordinary least squares of :math:`\log N^*` on
:math:`\log n` over the points with an estimate (``fit`` and ``separated``). Its interval
refits the law on joint replicates: replicate :math:`b` of every point (the points are
different runs, so their bootstraps are independent), each taken as a draw uniform in its
:math:`[L_b, U_b]`, and the interval is the percentile interval of the refitted exponents.
The draw lets the uncertainty within each gap average over the points: taking the ends of the
intervals that widen the exponent's interval most covered a nominal 90 % in 99.7 % of the
sweeps (:math:`k = 3` in the coverage of :mod:`umwelt.boundary`), taking their midpoints in
86 % (:math:`k = 8`, 8 seeds).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from umwelt.boundary._bootstrap import _quantile_bounds
from umwelt.boundary._common import _check_open_unit, _json
from umwelt.boundary._threshold import BoundaryPoint
from umwelt.errors import ConfigError

#: the statuses whose estimate enters the power law
_ESTIMATED = ("fit", "separated")


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
    >>> from umwelt.boundary import capacity_threshold
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
