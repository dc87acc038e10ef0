"""The claims about the sampled Hessian entries (eq. 18, figs. 6–7): symmetric about 0, their
means within 0.15 standard deviations of 0 (under both readings of the std), their correlations
sparse, and the relative coupling set size at the end of training."""

from __future__ import annotations

import math

import numpy as np

from sim.reproduce.claims.evidence import Evidence
from sim.reproduce.claims.rules import (
    ABOUT_FACTOR,
    FAILS,
    HOLDS,
    MEANS_END,
    MEANS_FLOOR,
    PAPER_COUPLING,
    SE_CEILING,
    SPARSE_TOL,
    UNDECIDED,
    _Cell,
    _combine,
    _g,
    _num,
    _symmetry_claim,
    _with_reason,
    within,
)
from sim.reproduce.report import Claim

__all__ = [
    "correlations_sparse",
    "coupling_fraction",
    "entries_symmetric",
    "means_015_per_example",
    "means_015_se",
]

# -- the sampled Hessian entries (figs. 6–7) ------------------------------------------------------


def entries_symmetric(ev: Evidence) -> Claim:
    from umwelt.circuits import mirror_ks_test

    base = {
        "key": "entries_symmetric",
        "claim": "Sampled Hessian entries fluctuate symmetrically around 0 throughout training",
        "where": "eq. 18, fig. 6a",
        "paper": "symmetric about 0",
        "figure": ev.figure("hessian_followed", "hessian_entries"),
    }
    cells = []
    for e, v in ev.entries:
        v = np.asarray(v, float)
        v = v[np.isfinite(v)]
        if v.size >= 2:
            D, _ = mirror_ks_test(v)
            cells.append(_Cell(f"epoch {e}", _num(D), int(np.count_nonzero(v))))
    claim = _symmetry_claim(base, cells, "Hessian entries", all_resolved=False)
    return _with_reason(claim, f"{claim.reason} (the entries' values over the examples)")


def _banded(ev: Evidence, key: str) -> list[tuple[int, float, float, float, dict]]:
    """``(epoch, value, lo, hi, row)`` of the Hessian rows where ``key`` is finite, its band
    ``key_lo``/``key_hi`` (the value itself where a band edge is missing)."""
    out = []
    for h in ev.hessian_rows:
        f, lo, hi = (_num(h.get(k)) for k in (key, f"{key}_lo", f"{key}_hi"))
        if math.isfinite(f):
            out.append(
                (h["epoch"], f, lo if math.isfinite(lo) else f, hi if math.isfinite(hi) else f, h)
            )
    return out


def _means_claim(ev: Evidence, key: str, base: dict, note: str) -> Claim:
    rows = _banded(ev, key)
    if not rows:
        return Claim(**base, reason="no analysed epoch with live sampled entries")
    verdicts = [within(lo, hi, low=MEANS_FLOOR) for _, _, lo, hi, _ in rows]
    verdicts.append(within(rows[-1][2], rows[-1][3], low=MEANS_END))
    e, f, lo, hi, _ = min(rows, key=lambda r: r[1])
    trend = " → ".join(f"{r[1]:.3g}" for r in rows)
    reason = (f"epochs {', '.join(str(r[0]) for r in rows)}: {trend} (the lowest, epoch "
              f"{e}, shown); {note}; rule: ≥ {MEANS_FLOOR:g} at every epoch and ≥ "
              f"{MEANS_END:g} at the last")  # fmt: skip
    return Claim(**base, measured=f, ci=(lo, hi), verdict=_combine(verdicts), reason=reason)


def means_015_se(ev: Evidence) -> Claim:
    base = {
        "key": "means_015_se",
        "claim": "At least 95 % of the Hessian entries' means lie within 0.15 standard "
        "deviations of 0, rising to about 98 % (normalized by the standard error of the mean)",
        "where": "fig. 7b",
        "paper": "≥ 95 %, rising to ≈ 98 %",
        "figure": ev.figure("hessian_means"),
    }
    note = (f"under this reading an entry whose expectation is 0 has |mean|/SE ~ |N(0, 1)|, so "
            f"at most erf(0.15/√2) = {SE_CEILING:.1%} of such entries fall below 0.15: 95 % is "
            "out of reach for any network")  # fmt: skip
    return _means_claim(ev, "frac_means_below_015", base, note)


def means_015_per_example(ev: Evidence) -> Claim:
    base = {
        "key": "means_015_per_example",
        "claim": "At least 95 % of the Hessian entries' means lie within 0.15 standard "
        "deviations of 0, rising to about 98 % (normalized by the spread over examples)",
        "where": "fig. 7b",
        "paper": "≥ 95 %, rising to ≈ 98 %",
        "figure": ev.figure("hessian_means"),
    }
    note = "the std is that of the per-example contributions (√n × the SE), the attainable reading"
    return _means_claim(ev, "frac_means_below_015_per_example", base, note)


def correlations_sparse(ev: Evidence) -> Claim:
    base = {
        "key": "correlations_sparse",
        "claim": "Correlations between Hessian entries are sparse at the start of training and "
        "somewhat denser at the end",
        "where": "figs. 6b, 6c",
        "paper": "sparse; denser at the end",
        "figure": ev.figure("hessian_entries"),
    }
    rows = _banded(ev, "coupling_set_fraction")
    if len(rows) < 2:
        return Claim(**base, reason=f"{len(rows)} analysed epoch(s) with correlations; two are "
                     "needed")  # fmt: skip
    (ea, fa, la, ha, _), (eb, fb, lb, hb, _) = rows[0], rows[-1]
    denser = HOLDS if lb > ha else FAILS if hb < la else UNDECIDED
    verdicts = [within(la, ha, high=SPARSE_TOL), within(lb, hb, high=SPARSE_TOL), denser]
    reason = (f"the fraction of pairs of uniformly sampled entries significantly correlated, "
              f"epoch {ea}: {fa:.3g} [{la:.3g}, {ha:.3g}] → epoch {eb} (shown); rule: sparse "
              f"when ≤ {SPARSE_TOL:g}, denser when the intervals lie apart")  # fmt: skip
    return Claim(**base, measured=fb, ci=(lb, hb), verdict=_combine(verdicts), reason=reason)


def coupling_fraction(ev: Evidence) -> Claim:
    base = {
        "key": "coupling_fraction",
        "claim": "At the end of training a Hessian entry is correlated with about 3.39·10⁻⁴ of "
        "the entries (its relative coupling set size)",
        "where": "fig. 7c",
        "paper": "3.39·10⁻⁴",
        "figure": ev.figure("hessian_means"),
    }
    rows = _banded(ev, "coupling_set_fraction")
    if not rows:
        return Claim(**base, reason="no analysed epoch with correlations of uniform entries")
    e, f, lo, hi, h = rows[-1]
    region = (PAPER_COUPLING / ABOUT_FACTOR, PAPER_COUPLING * ABOUT_FACTOR)
    reason = (f"epoch {e}, the last analysed with live entries ({h.get('coupling_set_n_live')} "
              f"uniform entries), of a net of N = {ev.n_params:,} parameters (the paper's: "
              f"~10⁷); as an exponent of N: {_g(_num(h.get('coupling_set_exponent')))}; rule: "
              f"about when within a factor {ABOUT_FACTOR:g} of 3.39·10⁻⁴")  # fmt: skip
    return Claim(**base, measured=f, ci=(lo, hi), verdict=within(lo, hi, *region), reason=reason)
