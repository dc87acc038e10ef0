"""The phase-boundary estimator (umwelt.boundary): closed forms, an independent fit, coverage.

Synthetic sweeps draw ``converged`` from the known law
``P(converged | N) = expit(k (log N - log N*))``; the estimates must find ``N*``, the fitted
coefficients must match scikit-learn's unpenalized logistic regression, and the nominal 90 %
intervals must cover ``N*`` (and the power-law exponent) in a fraction of the sweeps that a
binomial test cannot tell from 0.9 (rejecting at p < 0.001 only).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import optimize, stats
from scipy.special import expit, log_expit
from sklearn.linear_model import LogisticRegression

import umwelt.boundary as B
from umwelt.boundary import (
    STATUSES,
    BoundaryPoint,
    boundary,
    boundary_from_rows,
    capacity_threshold,
    fit_logistic,
    power_law,
)
from umwelt.errors import ConfigError, NonFiniteError

N_STAR = 1000.0
#: 8 capacities a factor 2 apart; N* lies 0.2 of a step above the 4th
CAPS = N_STAR * 2.0 ** (np.arange(8) - 3.5 + 0.3)
#: the power-law sweep: N* = 4 n^0.8 over 5 sizes, on one capacity grid 2^4 ... 2^12
SIZES = np.array([50.0, 100.0, 200.0, 400.0, 800.0])
GRID = 2.0 ** np.arange(4, 13)
PREFACTOR, EXPONENT = 4.0, 0.8


def _draw(rng, caps, seeds, k, n_star):
    """Capacities (each ``seeds`` times) and outcomes drawn from the logistic law."""
    N = np.repeat(caps, seeds)
    return N, rng.random(N.size) < expit(k * (np.log(N) - np.log(n_star)))


def _covers(lo, hi, truth):
    return (lo is None or lo <= truth) and (hi is None or truth <= hi)


def _consistent_with(hits: int, trials: int, p: float = 0.9, alternative="two-sided") -> bool:
    return stats.binomtest(hits, trials, p, alternative=alternative).pvalue > 1e-3


# --- the fit: closed form, independent oracle, twin --------------------------------------------


def test_two_capacities_reproduce_the_converged_fractions():
    """Saturated model: P̂ at each capacity is its converged fraction, so b and N* are closed."""
    N = [10.0] * 5 + [1000.0] * 5
    y = [1, 0, 0, 0, 0] + [1, 1, 1, 1, 0]  # 1/5 and 4/5
    fit = fit_logistic(np.log(N), y)
    b1 = (math.log(4) - math.log(1 / 4)) / math.log(100)
    assert fit.status == "fit"
    assert fit.slope == pytest.approx(b1, rel=1e-8)
    assert fit.intercept == pytest.approx(math.log(1 / 4) - b1 * math.log(10), rel=1e-8)
    assert fit.log_likelihood == pytest.approx(2 * (math.log(0.2) + 4 * math.log(0.8)))
    assert capacity_threshold(N, y, n_boot=50, seed=0).estimate == pytest.approx(100.0)
    # at level 1/5 the threshold is the capacity where a fifth converged
    t = capacity_threshold(N, y, level=0.2, n_boot=50, seed=0)
    assert t.estimate == pytest.approx(10.0) and t.level == 0.2


@pytest.mark.parametrize("seed", range(5))
def test_coefficients_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    N, y = _draw(rng, CAPS, 3 + seed, 0.7 + 0.3 * seed, N_STAR)
    fit = fit_logistic(np.log(N), y)
    assert fit.status == "fit"
    ref = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000)
    ref.fit(np.log(N)[:, None], y)
    assert fit.slope == pytest.approx(ref.coef_[0, 0], rel=1e-5)
    assert fit.intercept == pytest.approx(ref.intercept_[0], rel=1e-5, abs=1e-6)


def test_fit_matches_scipy_minimize_from_flat_to_nearly_separated():
    """The batched Newton iteration (the point fit and every bootstrap refit) against
    scipy.optimize.minimize of the negative log-likelihood, written here independently."""
    rng = np.random.default_rng(1)
    x = np.log(np.repeat(CAPS, 4))

    def nll(b, y):
        eta = b[0] + b[1] * x
        return -np.sum(y * log_expit(eta) + (1 - y) * log_expit(-eta)), np.array(
            [np.sum(expit(eta) - y), np.sum((expit(eta) - y) * x)]
        )

    ys = [rng.random(x.size) < expit(k * (x - np.log(N_STAR))) for k in np.linspace(0.3, 5, 80)]
    fits = [(fit_logistic(x, y), y) for y in ys]
    fits = [(f, y) for f, y in fits if f.status in ("fit", "negative_slope")]
    assert len(fits) > 50
    for f, y in fits:
        ref = optimize.minimize(
            nll, [0.0, 0.0], args=(y,), jac=True, method="BFGS", options={"gtol": 1e-9}
        )
        assert f.log_likelihood >= -ref.fun - 1e-9  # never worse than scipy's optimum
        np.testing.assert_allclose([f.intercept, f.slope], ref.x, rtol=1e-4, atol=1e-4)
    # and the bootstrap's many-rows call gives the same rows as one at a time
    z = (x - x.mean()) / x.std()
    rows = np.array([y for _, y in fits], dtype=float)
    many = B._newton(np.broadcast_to(z, rows.shape), rows)
    one = np.array([B._newton(z[None], r[None])[0] for r in rows])
    np.testing.assert_allclose(many, one, rtol=1e-12, atol=1e-12)


def test_a_fit_that_does_not_converge_raises(monkeypatch):
    monkeypatch.setattr(B._logistic, "_NEWTON_STEPS", 1)
    with pytest.raises(NonFiniteError, match="did not converge"):
        fit_logistic(np.log([1.0, 2.0, 3.0] * 2), [0, 1, 1, 1, 0, 1])


def test_estimate_close_to_truth_with_many_draws():
    rng = np.random.default_rng(2)
    N, y = _draw(rng, CAPS, 400, 2.0, N_STAR)
    t = capacity_threshold(N, y, n_boot=200, seed=0)
    assert t.status == "fit"
    assert abs(math.log(t.estimate / N_STAR)) < 0.03
    assert t.slope == pytest.approx(2.0, rel=0.08)
    assert t.ci_low < N_STAR < t.ci_high and t.ci_high / t.ci_low < 1.15
    assert t.boot_separated == 0.0 and t.boot_failed == 0.0


def test_result_does_not_depend_on_the_order_of_the_runs():
    rng = np.random.default_rng(3)
    N, y = _draw(rng, CAPS, 5, 1.5, N_STAR)
    perm = rng.permutation(N.size)
    a, b = capacity_threshold(N, y, seed=4), capacity_threshold(N[perm], y[perm], seed=4)
    assert a == b and np.array_equal(a.replicates, b.replicates)
    assert a != capacity_threshold(N, y, seed=5)  # and the seed does matter


# --- coverage --------------------------------------------------------------------------------


def test_threshold_interval_covers_at_its_nominal_level():
    rng = np.random.default_rng(10)
    hits, narrow, trials = 0, 0, 200
    for r in range(trials):
        N, y = _draw(rng, CAPS, 5, 1.0, N_STAR)
        t = capacity_threshold(N, y, n_boot=200, ci=0.9, seed=r)
        hits += _covers(t.ci_low, t.ci_high, N_STAR)
        lo, hi = B._quantile_bounds(t.replicates[:, 0], t.replicates[:, 1], 0.5)
        narrow += lo <= math.log(N_STAR) <= hi
    assert _consistent_with(hits, trials), f"coverage {hits / trials:.3f} of a nominal 0.9"
    # the check has power: the same replicates' 50 % intervals are not taken for 90 % ones
    assert not _consistent_with(narrow, trials) and _consistent_with(narrow, trials, 0.5)


def test_threshold_interval_still_covers_when_most_sweeps_are_separated():
    """A transition sharper than the grid: most data sets are separated; the interval must not
    under-cover (it may over-cover: the grid does not resolve N* any better)."""
    rng = np.random.default_rng(11)
    hits, separated, trials = 0, 0, 200
    for r in range(trials):
        N, y = _draw(rng, CAPS, 4, 8.0, N_STAR)
        t = capacity_threshold(N, y, n_boot=100, ci=0.9, seed=r)
        hits += _covers(t.ci_low, t.ci_high, N_STAR)
        separated += t.status == "separated"
    assert separated > 0.8 * trials
    assert _consistent_with(hits, trials, alternative="less"), f"coverage {hits / trials:.3f}"


def test_power_law_exponent_interval_covers_at_its_nominal_level():
    rng = np.random.default_rng(12)
    N = np.tile(np.repeat(GRID, 4), SIZES.size)
    n = np.repeat(SIZES, GRID.size * 4)
    truth = PREFACTOR * n**EXPONENT
    hits, trials, exponents = 0, 200, []
    for r in range(trials):
        y = rng.random(N.size) < expit(1.5 * (np.log(N) - np.log(truth)))
        law = power_law(boundary(N, n, y, n_boot=100, seed=r))
        assert law.status == "fit"
        hits += _covers(law.ci_low, law.ci_high, EXPONENT)
        exponents.append(law.exponent)
    assert _consistent_with(hits, trials), f"coverage {hits / trials:.3f} of a nominal 0.9"
    assert np.mean(exponents) == pytest.approx(EXPONENT, abs=0.03)


def test_power_law_recovers_the_exponent_with_many_draws():
    rng = np.random.default_rng(13)
    N = np.tile(np.repeat(GRID, 100), SIZES.size)
    n = np.repeat(SIZES, GRID.size * 100)
    y = rng.random(N.size) < expit(2.0 * (np.log(N) - np.log(PREFACTOR * n**EXPONENT)))
    law = power_law(boundary(N, n, y, n_boot=100, seed=0))
    assert law.exponent == pytest.approx(EXPONENT, abs=0.08)  # ~3 standard errors
    mid = 200.0  # the middle size, where the fitted law is best determined
    assert law.prefactor * mid**law.exponent == pytest.approx(PREFACTOR * mid**EXPONENT, rel=0.05)
    assert law.ci_low < EXPONENT < law.ci_high and law.ci_high - law.ci_low < 0.15
    assert law.n_points == 5 and law.n_boot == 100


# --- separated and degenerate data -----------------------------------------------------------


def test_all_converged_is_a_bound_not_an_estimate():
    t = capacity_threshold([16, 32, 64] * 3, [1] * 9, seed=0)
    assert (t.status, t.estimate, t.ci_low, t.ci_high) == ("all_converged", None, None, 16.0)
    assert t.n_boot == 0 and t.slope is None and "bound" in t.reason


def test_none_converged_is_a_bound_not_an_estimate():
    t = capacity_threshold([16, 32, 64] * 3, [0] * 9, seed=0)
    assert (t.status, t.estimate, t.ci_low, t.ci_high) == ("none_converged", None, 64.0, None)


def test_one_capacity_has_no_estimate():
    t = capacity_threshold([32] * 6, [0, 1, 0, 1, 1, 0], seed=0)
    assert (t.status, t.estimate, t.ci_low, t.ci_high) == ("one_capacity", None, None, None)


def test_separated_gives_the_geometric_midpoint_and_an_infinite_slope():
    N = [16, 32, 64, 128, 256] * 4
    y = [0, 0, 1, 1, 1] * 4
    t = capacity_threshold(N, y, n_boot=300, seed=0)
    assert t.status == "separated" and t.slope == math.inf and t.intercept is None
    assert t.estimate == pytest.approx(math.sqrt(32 * 64), rel=1e-12)
    assert t.ci_low <= 32 and t.ci_high >= 64  # the gap is inside the interval
    assert t.boot_separated + t.boot_degenerate == pytest.approx(1.0)
    assert t.to_json()["slope"] is None
    # every level crosses the step at the same place
    assert capacity_threshold(N, y, level=0.9, n_boot=10, seed=0).estimate == t.estimate


def test_separated_at_one_mixed_capacity_puts_the_threshold_there():
    N = [16, 32, 64, 128] * 4
    y = [0, 0, 1, 1] * 3 + [0, 1, 1, 1]  # at 32: 1 of 4 converged
    t = capacity_threshold(N, y, n_boot=300, seed=0)
    assert t.status == "separated" and t.estimate == pytest.approx(32.0)
    # a quarter converged at 32: the threshold lies above it, up to half-way to 64
    assert t.ci_low <= 32 and t.ci_high >= math.sqrt(32 * 64)


def test_bigger_nets_failing_is_reported():
    sep = capacity_threshold([16, 32, 64, 128] * 3, [1, 1, 0, 0] * 3, n_boot=50, seed=0)
    assert sep.status == "separated_negative" and sep.slope == -math.inf
    assert sep.estimate == pytest.approx(math.sqrt(32 * 64))
    y = [1, 1, 1, 0, 1, 0, 0, 0] * 3 + [1, 0, 1, 1, 0, 1, 0, 0]
    neg = capacity_threshold(CAPS.tolist() * 4, y, n_boot=50, seed=0)
    assert neg.status == "negative_slope" and neg.slope < 0 and neg.estimate is not None
    assert "converge less" in neg.reason


def test_near_separated_data_reports_its_separated_replicates():
    N = [16, 32, 64, 128] * 3
    y = [0, 0, 1, 1] * 2 + [0, 1, 0, 1]  # one overlap: a finite fit
    t = capacity_threshold(N, y, n_boot=400, seed=0)
    assert t.status == "fit"
    assert 0.1 < t.boot_separated < 0.95
    assert f"{t.boot_separated:.0%} of 400 bootstrap replicates separated" in t.reason


def test_every_status_is_documented():
    cases = [
        ([1, 2], [1, 1]),
        ([1, 2], [0, 0]),
        ([2, 2], [0, 1]),
        ([1, 2], [0, 1]),
        ([1, 2], [1, 0]),
        ([1, 2, 3] * 2, [0, 1, 1, 1, 0, 1]),  # overlapping, rising
        ([1, 2, 3] * 2, [1, 1, 0, 0, 1, 0]),  # overlapping, falling
    ]
    seen = {capacity_threshold(N, y, n_boot=5, seed=0).status for N, y in cases}
    assert seen == set(STATUSES)


def test_power_law_needs_three_estimated_points_and_names_the_others():
    caps = [16, 32, 64, 128] * 3
    pts = [
        BoundaryPoint(10.0, capacity_threshold(caps, [0, 0, 1, 1] * 3, n_boot=20, seed=0)),
        BoundaryPoint(20.0, capacity_threshold(caps, [0, 0, 0, 1] * 3, n_boot=20, seed=1)),
        BoundaryPoint(40.0, capacity_threshold(caps, [0] * 12, n_boot=20, seed=2)),
    ]
    law = power_law(pts)
    assert law.status == "too_few_points" and law.exponent is None and law.n_points == 2
    assert "40 (none_converged)" in law.reason


def test_results_are_plain_json():
    rng = np.random.default_rng(4)
    N = np.tile(np.repeat(GRID, 3), SIZES.size)
    n = np.repeat(SIZES, GRID.size * 3)
    y = rng.random(N.size) < expit(3.0 * (np.log(N) - np.log(PREFACTOR * n**EXPONENT)))
    pts = boundary(N, n, y, n_boot=20, seed=0)
    assert [p.complexity for p in pts] == SIZES.tolist()
    fit = fit_logistic(np.log([1.0, 2.0]), [0, 1])
    for obj in [*pts, power_law(pts), fit]:
        row = obj.to_json()
        json.dumps(row, allow_nan=False)
        assert all(v is None or type(v) in (int, float, str, list) for v in row.values())
    assert set(pts[0].to_json()) == {"complexity"} | {
        f for f in B.Threshold.__dataclass_fields__ if f != "replicates"
    }


def test_boundary_from_rows_matches_boundary_and_skips_unfinished_points():
    rows = [
        {"n_params": N, "n_train": n, "converged": bool(N > 2 * n)}
        for n in (10, 20)
        for N in (8, 16, 32, 64, 128)
        for _ in range(2)
    ]
    rows.append({"n_params": 8, "n_train": 10, "converged": None})
    got = boundary_from_rows(rows, n_boot=30, seed=3)
    ref = boundary(
        [r["n_params"] for r in rows[:-1]],
        [r["n_train"] for r in rows[:-1]],
        [r["converged"] for r in rows[:-1]],
        n_boot=30,
        seed=3,
    )
    assert got == ref and got[0].threshold.n_runs == 10
    assert got[0].threshold.estimate == pytest.approx(math.sqrt(16 * 32))


def test_module_surface_is_all():
    defined = {
        name
        for name, v in vars(B).items()
        if not name.startswith("_") and str(getattr(v, "__module__", "")).startswith(B.__name__)
    }
    assert defined | {"STATUSES"} == set(B.__all__)


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(capacity=[1, 2, 3], converged=[0, 1]), "capacity has 3 values but converged has 2"),
        (dict(capacity=[], converged=[]), "no runs"),
        (dict(capacity=[1, 0], converged=[0, 1]), r"finite and > 0, got 0\.0 at index 1"),
        (dict(capacity=[1, -4], converged=[0, 1]), r"got -4\.0 at index 1"),
        (dict(capacity=[np.nan, 2], converged=[0, 1]), r"got nan at index 0"),
        (dict(capacity=[1, np.inf], converged=[0, 1]), r"got inf at index 1"),
        (dict(capacity=[1, 2], converged=[0, np.nan]), r"0/1 or bool, got nan at index 1"),
        (dict(capacity=[1, 2], converged=[0, 2]), r"0/1 or bool, got 2\.0 at index 1"),
        (dict(capacity=[[1, 2]], converged=[0, 1]), r"one-dimensional, got shape \(1, 2\)"),
        (dict(capacity=["a", 2], converged=[0, 1]), "capacity must be numbers"),
        (dict(level=0), r"level must be in \(0, 1\), got 0"),
        (dict(level=1.0), r"level must be in \(0, 1\), got 1\.0"),
        (dict(level=-0.5), r"got -0\.5"),
        (dict(level=math.nan), r"level must be in \(0, 1\), got nan"),
        (dict(level="0.5"), r"level must be in \(0, 1\), got '0\.5'"),
        (dict(ci=1.5), r"ci must be in \(0, 1\), got 1\.5"),
        (dict(n_boot=0), "n_boot must be an integer ≥ 1, got 0"),
        (dict(seed=-1), "seed must be an integer ≥ 0, got -1"),
    ],
)
def test_bad_input_names_the_value(kwargs, message):
    args = dict(capacity=[1, 2], converged=[0, 1]) | kwargs
    with pytest.raises(ConfigError, match=message):
        capacity_threshold(args.pop("capacity"), args.pop("converged"), **{"seed": 0} | args)


def test_bad_input_of_fit_boundary_and_power_law():
    with pytest.raises(ConfigError, match="log_capacity must be finite, got nan at index 0"):
        fit_logistic([np.nan, 1.0], [0, 1])
    with pytest.raises(ConfigError, match="level must be in"):
        fit_logistic([0.0, 1.0], [0, 1]).log_threshold(2.0)
    with pytest.raises(ConfigError, match="complexity must be finite, got nan at index 1"):
        boundary([1, 2], [5, np.nan], [0, 1], seed=0)
    with pytest.raises(ConfigError, match="complexity has 1 values but converged has 2"):
        boundary([1, 2], [5], [0, 1], seed=0)
    with pytest.raises(ConfigError, match="no row has all of 'n_params'"):
        boundary_from_rows([{"n_params": 3}], seed=0)
    t = capacity_threshold([1, 2], [0, 1], n_boot=5, seed=0)
    with pytest.raises(ConfigError, match="complexities > 0, got 0.0"):
        power_law([BoundaryPoint(0.0, t)] * 3)
    with pytest.raises(ConfigError, match=r"ci must be in \(0, 1\), got 0"):
        power_law([BoundaryPoint(1.0, t)] * 3, ci=0)
    u = capacity_threshold([1, 2], [0, 1], n_boot=6, seed=0)
    pts = [BoundaryPoint(1.0, t), BoundaryPoint(2.0, t), BoundaryPoint(3.0, u)]
    with pytest.raises(ConfigError, match=r"different numbers of replicates: \[5, 6\]"):
        power_law(pts)
