"""The claims about the Hessian's eigenvalue density (fig. 8a): symmetric about 0 at every
analysed epoch, and contracting toward 0 as the risk falls, from the rows of ``hessian.jsonl``."""

from __future__ import annotations

import math

from sim.reproduce.claims.evidence import Evidence
from sim.reproduce.claims.rules import DENSITY_TOL, Z95, _combine, _g, _num, within
from sim.reproduce.report import Claim

__all__ = ["spectrum_contracts", "spectrum_symmetric"]

# -- the Hessian's spectrum (fig. 8a) -------------------------------------------------------------


def _spectra(ev: Evidence) -> list[dict]:
    return [h for h in ev.hessian_rows if math.isfinite(_num(h.get("m2")))]


def spectrum_symmetric(ev: Evidence) -> Claim:
    base = {
        "key": "esd_symmetric",
        "claim": "The Hessian's eigenvalue density is symmetric about 0 throughout training",
        "where": "fig. 8a",
        "paper": "symmetric, every epoch",
        "figure": ev.figure("hessian_spectrum"),
    }
    live = [h for h in _spectra(ev) if _num(h["m2"]) > 0]
    if not live:
        return Claim(**base, reason="no analysed epoch with a non-zero Hessian")
    verdicts, worst = [], None
    for h in live:
        d, se = _num(h.get("density_asymmetry")), _num(h.get("density_asymmetry_se"))
        if not (math.isfinite(d) and math.isfinite(se)):
            return Claim(**base, reason=f"epoch {h['epoch']}: no error bar ("
                         f"{h.get('se_reason') or 'density asymmetry missing'})")  # fmt: skip
        band = (max(0.0, d - Z95 * se), d + Z95 * se)
        verdicts.append(within(*band, high=DENSITY_TOL))
        if worst is None or d > worst[1]:
            worst = (h["epoch"], d, band)
    e, d, band = worst
    neg = ", ".join(f"{_g(_num(h.get('neg_share')))}" for h in live)
    reason = (f"∫|ρ(λ) − ρ(−λ)|dλ over {len(live)} analysed epochs, the largest at epoch {e} "
              f"(± 1.96 SE); spectral weight below 0 (½ if symmetric): {neg}; rule: symmetric "
              f"when ≤ {DENSITY_TOL:g}")  # fmt: skip
    return Claim(**base, measured=d, ci=band, verdict=_combine(verdicts), reason=reason)


def spectrum_contracts(ev: Evidence) -> Claim:
    base = {
        "key": "esd_contracts",
        "claim": "The eigenvalue density contracts toward 0 as the risk falls",
        "where": "fig. 8a",
        "paper": "narrower as the loss falls",
        "figure": ev.figure("hessian_spectrum"),
    }
    rows = _spectra(ev)
    if len(rows) < 2:
        return Claim(**base, reason=f"{len(rows)} analysed epoch(s); two are needed")
    a, b = rows[0], rows[-1]
    La, Lb = _num(a.get("loss")), _num(b.get("loss"))
    ma, mb = _num(a["m2"]), _num(b["m2"])
    if not La > Lb:
        return Claim(**base, reason=f"the risk did not fall between epochs {a['epoch']} and "
                     f"{b['epoch']} ({_g(La)} → {_g(Lb)})")  # fmt: skip
    if ma <= 0:
        return Claim(
            **base, reason=f"the Hessian vanishes at the first analysed epoch {a['epoch']}"
        )
    r = math.sqrt(mb / ma)
    if mb > 0:
        sa, sb = _num(a.get("m2_se")), _num(b.get("m2_se"))
        sd = 0.5 * math.hypot(sa / ma, sb / mb) if math.isfinite(sa + sb) else math.nan
        band = (r * math.exp(-Z95 * sd), r * math.exp(Z95 * sd)) if math.isfinite(sd) else (r, r)
    else:
        band = (0.0, 0.0)
    verdict = within(*band, high=1.0)
    reason = (
        f"the RMS eigenvalue √m₂ at epoch {b['epoch']} over epoch {a['epoch']} (rule: < 1 is "
        f"contracted) while the risk fell {_g(La)} → {_g(Lb)}; λ range "
        f"[{_g(_num(a.get('lambda_min')))}, {_g(_num(a.get('lambda_max')))}] → "
        f"[{_g(_num(b.get('lambda_min')))}, {_g(_num(b.get('lambda_max')))}]"
    )
    return Claim(**base, measured=r, ci=band, verdict=verdict, reason=reason)
