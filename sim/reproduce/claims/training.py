"""The claims about training itself: the order parameter η‖∇R‖² against the loss (eq. 15,
fig. 4b: an order below it, at its rate, both reaching 0), zero training error (fig. 8b) and the
phases it passes through (§5), with the moving-block bootstrap over (serially correlated) epochs
and the verdict of a run that stopped before zero risk."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from sim.reproduce.claims.evidence import Evidence
from sim.reproduce.claims.rules import (
    BOOTSTRAP,
    FAILS,
    HOLDS,
    ORDER_BAND,
    RATE_BAND,
    ZERO_TOL,
    _g,
    _num,
    within,
)
from sim.reproduce.report import Claim

__all__ = [
    "order_parameter_rate",
    "order_parameter_ratio",
    "order_parameter_zero",
    "phase_sequence",
    "zero_training_error",
]

# -- the order parameter against the loss (fig. 4b) -----------------------------------------------


def _block_bootstrap(n: int, stat: Callable[[np.ndarray], float], seed: int) -> tuple[float, float]:
    """95 % percentile interval of ``stat(indices)`` under the moving-block bootstrap of ``n``
    serially correlated epochs (blocks of ⌈n^{1/3}⌉)."""
    rng = np.random.default_rng(seed)
    b = max(1, math.ceil(n ** (1 / 3)))
    starts = np.arange(n - b + 1)
    k = math.ceil(n / b)
    values = []
    for _ in range(BOOTSTRAP):
        idx = (rng.choice(starts, k)[:, None] + np.arange(b)[None, :]).ravel()[:n]
        v = stat(idx)
        if math.isfinite(v):
            values.append(v)
    if not values:
        return math.nan, math.nan
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def _loss_op(ev: Evidence) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(epochs, loss, order parameter)`` of the epochs where both are finite and > 0."""
    e = np.array([_num(r.get("epoch")) for r in ev.rows])
    L = np.array([_num(r.get("loss")) for r in ev.rows])
    op = np.array([_num(r.get("order_parameter")) for r in ev.rows])
    keep = np.isfinite(L) & np.isfinite(op) & (L > 0) & (op > 0)
    return e[keep], L[keep], op[keep]


def order_parameter_ratio(ev: Evidence) -> Claim:
    base = {
        "key": "op_ratio",
        "claim": "The step-rescaled order parameter η‖∇R‖² is about an order of magnitude "
        "below the training loss",
        "where": "eq. 15, fig. 4b",
        "paper": "η‖∇R‖² ≈ 0.1 × loss",
        "figure": ev.figure("order_parameter"),
    }
    e, L, op = _loss_op(ev)
    if e.size < 3:
        return Claim(**base, reason=f"only {e.size} epochs with a non-zero loss")
    q = np.log10(op / L)
    med = 10 ** float(np.median(q))
    lo, hi = _block_bootstrap(q.size, lambda i: 10 ** float(np.median(q[i])), ev.seed)
    verdict = within(lo, hi, *ORDER_BAND)
    reason = (f"the median ratio over {e.size} epochs with loss > 0 (block bootstrap "
              f"interval); epoch {int(e[0])}: {op[0] / L[0]:.3g}, epoch {int(e[-1])}: "
              f"{op[-1] / L[-1]:.3g}; rule: about an order below when in "
              f"[{ORDER_BAND[0]:.3g}, {ORDER_BAND[1]:.3g}]")  # fmt: skip
    return Claim(**base, measured=med, ci=(lo, hi), verdict=verdict, reason=reason)


def order_parameter_rate(ev: Evidence) -> Claim:
    base = {
        "key": "op_rate",
        "claim": "η‖∇R‖² falls at about the loss's rate",
        "where": "fig. 4b",
        "paper": "parallel on log axes (slope 1)",
        "figure": ev.figure("order_parameter"),
    }
    e, L, op = _loss_op(ev)
    x, y = np.log(L), np.log(op)
    span = math.exp(float(np.ptp(x))) if e.size else 1.0
    if e.size < 5 or span < 2:
        return Claim(**base, reason=f"the loss spans too little to fit a rate ({e.size} epochs "
                     f"with loss > 0, falling by a factor {span:.3g})")  # fmt: skip

    def slope(i: np.ndarray) -> float:
        xi, yi = x[i], y[i]
        vx = float(np.var(xi))
        return float(np.cov(xi, yi, bias=True)[0, 1] / vx) if vx > 0 else math.nan

    b = slope(np.arange(e.size))
    lo, hi = _block_bootstrap(e.size, slope, ev.seed + 1)
    verdict = within(lo, hi, *RATE_BAND)
    reason = (f"least-squares slope of log η‖∇R‖² on log R over {e.size} epochs (block "
              f"bootstrap interval); rule: the same rate when in [{RATE_BAND[0]:g}, "
              f"{RATE_BAND[1]:g}]")  # fmt: skip
    return Claim(**base, measured=b, ci=(lo, hi), verdict=verdict, reason=reason)


def _final_phase(ev: Evidence) -> str | None:
    determined = [p for _, p in ev.phases if p != "undetermined"]
    return determined[-1] if determined else None


def _not_reached(ev: Evidence, base: dict, measured: float, what: str) -> Claim:
    """The verdict of a run that did not reach zero risk: still learning at a reduced scale is
    not measurable; frustrated, or at the paper's scale, it does not hold."""
    phase = _final_phase(ev)
    where = f"(last determined phase: {phase or 'none'})"
    if phase in ("plasticity", None) and ev.scale != "gpu":
        return Claim(**base, measured=measured,
                     reason=f"{what} {where}: the run ended while still learning; at this "
                     "scale it stops before the paper's 300 epochs")  # fmt: skip
    return Claim(**base, measured=measured, verdict=FAILS, reason=f"{what} {where}")


def order_parameter_zero(ev: Evidence) -> Claim:
    base = {
        "key": "op_zero",
        "claim": "η‖∇R‖² and the training loss both reach 0",
        "where": "fig. 4b",
        "paper": "both → 0",
        "figure": ev.figure("order_parameter"),
    }
    if len(ev.rows) < 2:
        return Claim(**base, reason="the run has no epoch beyond the initialization")
    first, last = ev.rows[0], ev.rows[-1]
    ratios = [_num(last.get(k)) / _num(first.get(k)) if _num(first.get(k)) > 0 else math.nan
              for k in ("loss", "order_parameter")]  # fmt: skip
    r = max(ratios) if all(math.isfinite(v) for v in ratios) else math.nan
    what = (f"the last epoch's loss and η‖∇R‖² are {_g(ratios[0])} and {_g(ratios[1])} of "
            f"their initial values (rule: 0 when ≤ {ZERO_TOL:g})")  # fmt: skip
    if math.isfinite(r) and r <= ZERO_TOL:
        return Claim(**base, measured=r, verdict=HOLDS, reason=f"{what}, at epoch "
                     f"{last.get('epoch')}")  # fmt: skip
    return _not_reached(ev, base, r, what)


def zero_training_error(ev: Evidence) -> Claim:
    base = {
        "key": "zero_error",
        "claim": "Training reaches zero training error: training accuracy 1",
        "where": "fig. 8b",
        "paper": "training accuracy → 1, loss → 0",
        "figure": ev.figure("learning_curves"),
    }
    if not ev.rows:
        return Claim(**base, reason="the run has no epochs")
    last = ev.rows[-1]
    acc = _num(last.get("train_acc"))
    first = ev.summary.get("first_zero_train_error_epoch")
    first = "never" if first is None else f"epoch {first}"
    what = (
        f"training accuracy {_g(acc)} at the last epoch {last.get('epoch')} (first "
        f"accuracy 1: {first}; test accuracy {_g(_num(last.get('test_acc')))})"
    )
    if acc == 1.0:
        return Claim(**base, measured=acc, verdict=HOLDS, reason=what)
    return _not_reached(ev, base, acc, what)


# -- the phases (§5) ------------------------------------------------------------------------------


def phase_sequence(ev: Evidence) -> Claim:
    base = {
        "key": "phases",
        "claim": "Training passes through the plasticity phase to convergence (zero risk)",
        "where": "§5, fig. 8",
        "paper": "plasticity → converged",
        "figure": ev.figure("learning_curves"),
    }
    seq: list[tuple[str, int]] = []
    for e, p in ev.phases:
        if p != "undetermined" and (not seq or seq[-1][0] != p):
            seq.append((p, e))
    shown = " → ".join(f"{p} (from epoch {e})" for p, e in seq) or "none determined"
    converged = next((e for p, e in seq if p == "converged"), None)
    measured = None if converged is None else float(converged)
    if not seq:
        return Claim(**base, reason=f"no epoch's phase was determined ({len(ev.phases)} epochs)")
    if any(p == "frustration" for p, _ in seq):
        return Claim(**base, measured=measured, verdict=FAILS, reason=f"frustrated: {shown}")
    if seq[0][0] == "plasticity" and seq[-1][0] == "converged":
        return Claim(**base, measured=measured, verdict=HOLDS,
                     reason=f"{shown}; measured: the first converged epoch")  # fmt: skip
    if seq[-1][0] == "plasticity" and ev.scale != "gpu":
        return Claim(**base, measured=measured,
                     reason=f"{shown}: still learning when the run's epochs ended")  # fmt: skip
    return Claim(**base, measured=measured, verdict=FAILS, reason=shown)
