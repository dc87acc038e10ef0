r"""The threshold capacity :math:`N^*` of one complexity value, and of each: the boundary.

:func:`capacity_threshold` puts together the fit of :mod:`~umwelt.boundary._logistic` (the
estimate, or the gap's geometric midpoint where the data are separated) and the bootstrap of
:mod:`~umwelt.boundary._bootstrap` (the interval, and the replicates that
:func:`~umwelt.boundary.power_law` refits); :func:`boundary` does so for each distinct value
of the complexity axis, each with its own seed, and :func:`boundary_from_rows` for a sweep's
rows by column name.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from umwelt._checks import check_int
from umwelt.boundary._bootstrap import _quantile_bounds, _replicate_bounds, _uniform_within
from umwelt.boundary._common import _check_open_unit, _check_runs, _json, _plain
from umwelt.boundary._logistic import _standardize, fit_logistic
from umwelt.errors import ConfigError
from umwelt.seeds import index_seed

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
    complexity value, with its pairs-bootstrap interval (:mod:`~umwelt.boundary._bootstrap`).

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
