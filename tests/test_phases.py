"""umwelt.phases: every branch of the rule on synthetic rows, online = offline, bad thresholds."""

import math
import re

import numpy as np
import pytest

from umwelt.errors import ConfigError
from umwelt.phases import PHASES, EpochPhase, PhaseRule, classify, summarize


def _rows(risk, op, n_unsat, n=100):
    return [
        {
            "epoch": e,
            "loss": float(r),
            "order_parameter": float(o),
            "n_unsatisfied": u,
            "frac_unsatisfied": None if u is None else u / n,
        }
        for e, (r, o, u) in enumerate(zip(risk, op, n_unsat))
    ]


E = 30
FALLING = 0.9 ** np.arange(E)  # risk falls 10% an epoch
FLAT = 0.4 + 1e-4 * np.sin(np.arange(E))  # a plateau, slightly noisy


def test_plastic_net_falls_with_a_live_order_parameter():
    labels = classify(_rows(FALLING, 0.1 * FALLING, [40] * E))
    assert [p.phase for p in labels[:9]] == ["undetermined"] * 9
    assert all(p.reason == "fewer than 10 epochs" for p in labels[:9])
    assert {p.phase for p in labels[9:]} == {"plasticity"}
    assert labels[-1].risk_change == pytest.approx(0.9**9 - 1, rel=1e-9)
    assert labels[-1].op_ratio == pytest.approx(0.1)


def test_frustrated_net_has_a_flat_risk_and_a_vanishing_order_parameter():
    labels = classify(_rows(FLAT, 1e-7 * np.ones(E), [60] * E))
    assert {p.phase for p in labels[9:]} == {"frustration"}


def test_converged_is_zero_unsatisfied_constraints_and_a_tolerance_when_stochastic():
    unsat = [40] * 20 + [0] * 10
    labels = classify(_rows(FALLING, 0.1 * FALLING, unsat))
    assert [p.phase for p in labels[20:]] == ["converged"] * 10
    assert labels[20].reason == "N_Δ = 0"
    few = [40] * 20 + [0.1] * 10  # a mean over gate draws: 0.1 of 100 examples
    assert classify(_rows(FALLING, 0.1 * FALLING, few))[-1].phase == "plasticity"
    stoch = classify(_rows(FALLING, 0.1 * FALLING, few), stochastic=True)
    assert stoch[-1].phase == "converged" and "≤ 0.002" in stoch[-1].reason
    strict = classify(
        _rows(FALLING, 0.1 * FALLING, few), stochastic=True, rule=PhaseRule(unsat_tol=0)
    )
    assert strict[-1].phase == "plasticity"


@pytest.mark.parametrize(
    "risk, op, needle",
    [
        (FALLING, 1e-7 * FALLING, "risk falling but the order parameter is negligible"),
        (FLAT, 0.1 * FLAT, "risk flat but the order parameter is not negligible"),
        (1.0 / FALLING, 0.1 / FALLING, "risk rising"),
    ],
)
def test_disagreeing_signals_are_undetermined_and_say_which(risk, op, needle):
    last = classify(_rows(risk, op, [50] * E))[-1]
    assert last.phase == "undetermined" and needle in last.reason


def test_the_hessian_confirms_or_vetoes():
    rows = _rows(FALLING, 0.1 * FALLING, [40] * E)
    sym = [{"epoch": 25, "neg_share": 0.45, "lambda_min": -2.0, "lambda_max": 2.1}]
    psd = [{"epoch": 25, "neg_share": 0.01, "lambda_min": -0.01, "lambda_max": 3.0}]
    assert classify(rows, sym)[-1].phase == "plasticity"
    assert "Hessian two-sided (epoch 25)" in classify(rows, sym)[-1].reason
    vetoed = classify(rows, psd)[-1]
    assert vetoed.phase == "undetermined" and "Hessian disagrees" in vetoed.reason
    assert classify(rows, psd)[20].phase == "plasticity"  # epoch 25 is after epoch 20
    stuck = _rows(FLAT, 1e-7 * np.ones(E), [60] * E)
    assert classify(stuck, psd)[-1].phase == "frustration"
    assert classify(stuck, sym)[-1].phase == "undetermined"
    outside = [{"epoch": 3, "neg_share": 0.45, "lambda_min": -2.0, "lambda_max": 2.1}]
    assert classify(stuck, outside)[-1].phase == "frustration"  # not within the window


def test_online_labels_use_only_the_past():
    rows = _rows(np.concatenate([FALLING[:15], np.full(15, FALLING[14])]), 0.1 * FALLING, [40] * E)
    full = classify(rows)
    for e in range(E):
        assert classify(rows[: e + 1])[-1] == full[e]


def test_rows_without_the_new_fields_and_the_twin_prefix():
    old = _rows(FALLING, 0.1 * FALLING, [None] * E)
    assert {p.phase for p in classify(old)} == {"undetermined"}
    assert classify(old)[0].reason == "no n_unsatisfied in the row"
    twin = [{"epoch": r["epoch"], **{f"relu_{k}": v for k, v in r.items() if k != "epoch"}}
            for r in _rows(FALLING, 0.1 * FALLING, [40] * E)]  # fmt: skip
    assert classify(twin, prefix="relu_")[-1].phase == "plasticity"


def test_summary():
    labels = classify(_rows(FALLING, 0.1 * FALLING, [40] * 20 + [0] * 10))
    s = summarize(labels)
    assert s["final"] == "converged" and s["began"] == {
        "undetermined": 0,
        "plasticity": 9,
        "converged": 20,
    }
    assert s["epochs_in"] == {
        "plasticity": 11,
        "frustration": 0,
        "converged": 10,
        "undetermined": 9,
    }
    assert set(s["epochs_in"]) == set(PHASES) and s["thresholds"]["window"] == 10
    assert summarize([])["final"] is None
    assert isinstance(labels[0], EpochPhase) and math.isnan(labels[0].risk_change)


@pytest.mark.parametrize(
    "kw, needle",
    [
        ({"window": 1}, "window must be an integer ≥ 2"),
        ({"window": -3}, "-3"),
        ({"flat_tol": 1.0}, "flat_tol must be in [0, 1)"),
        ({"op_tol": -0.1}, "op_tol"),
        ({"neg_tol": 0.3, "two_sided_min": 0.2}, "must exceed neg_tol"),
    ],
)
def test_bad_thresholds_name_the_value(kw, needle):
    with pytest.raises(ConfigError, match=re.escape(needle)):
        classify(_rows(FALLING, FALLING, [1] * E), rule=PhaseRule(**kw))


def test_a_diverged_net_is_never_converged():
    rows = _rows(FALLING, 0.1 * FALLING, [40] * E)
    rows[-1] |= {"loss": float("nan"), "n_unsatisfied": 0, "frac_unsatisfied": 0.0}
    last = classify(rows)[-1]
    assert last.phase == "undetermined" and "diverged" in last.reason
