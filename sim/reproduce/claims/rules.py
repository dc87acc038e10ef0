r"""The verdict rule every claim is decided by, and its constants: an interval against the region
where the paper says the number is (:func:`within`, :func:`_combine`), the bounds of that region
(:data:`KS_TOL`, :data:`ORDER_BAND`, ...; :func:`rules` records them in the report), and the
mirror Kolmogorov–Smirnov test of *symmetric about 0* that four claims share (:class:`_Cell`,
:func:`_symmetry_claim`). :mod:`sim.reproduce.claims` explains each rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sim.reproduce.report import VERDICTS, Claim

__all__ = ["rules", "within"]

HOLDS, FAILS, UNDECIDED = VERDICTS

KS_TOL = 0.1  # a mirror KS distance up to this is "symmetric about 0"
KS_CRIT = 2.2414027  # P(sup_[0,1] |B| ≥ KS_CRIT) = 0.05: the 95 % half-width of √m D
Z95 = 1.959964  # the normal's 97.5 % point
ORDER_BAND = (10**-1.5, 10**-0.5)  # "about an order of magnitude below"
RATE_BAND = (0.5, 2.0)  # "at about the same rate": the log-log slope
ZERO_TOL = 1e-3  # "reaches 0": at most this fraction of the initial value
DENSITY_TOL = 0.1  # ∫|ρ(λ) − ρ(−λ)| dλ up to this is "symmetric"
SPARSE_TOL = 0.1  # at most this fraction of pairs significantly correlated is "sparse"
MEANS_FLOOR = 0.95  # fig. 7b: "at least 95 %"
MEANS_END = 0.97  # "rising to about 98 %": the last epoch reaches at least this
PAPER_COUPLING = 3.39e-4  # fig. 7c: the fraction of the entries an entry correlates with
ABOUT_FACTOR = 3.0  # "about" a number: within this factor of it
BOOTSTRAP = 2000  # resamples of the block bootstraps over epochs
#: erf(0.15/√2): the largest share of entries with zero mean whose |mean|/SE is below 0.15
SE_CEILING = math.erf(0.15 / math.sqrt(2.0))


def rules() -> dict[str, Any]:
    """The constants every verdict is decided by (recorded in the report's settings)."""
    return {
        "symmetric": f"mirror KS distance ≤ {KS_TOL} (interval D ± {KS_CRIT:.4g}/√m)",
        "order_band": list(ORDER_BAND),
        "rate_band": list(RATE_BAND),
        "zero_tol": ZERO_TOL,
        "density_tol": DENSITY_TOL,
        "sparse_tol": SPARSE_TOL,
        "means_floor": MEANS_FLOOR,
        "means_end": MEANS_END,
        "about_factor": ABOUT_FACTOR,
        "interval": "95 %",
        "bootstrap_resamples": BOOTSTRAP,
    }


def within(lo: float, hi: float, low: float = -math.inf, high: float = math.inf) -> str:
    """The verdict of an interval ``[lo, hi]`` against the region ``[low, high]``: holds when it
    lies inside, does not hold when it lies outside, not measurable when it straddles.

    >>> within(0.02, 0.08, high=0.1), within(0.12, 0.3, high=0.1), within(0.05, 0.2, high=0.1)
    ('holds', 'does not hold', 'not measurable at this scale')
    """
    if lo >= low and hi <= high:
        return HOLDS
    if hi < low or lo > high:
        return FAILS
    return UNDECIDED


def _combine(verdicts: Sequence[str]) -> str:
    """All hold: holds; any fails: does not hold; else not measurable."""
    if any(v == FAILS for v in verdicts):
        return FAILS
    if verdicts and all(v == HOLDS for v in verdicts):
        return HOLDS
    return UNDECIDED


def _num(v: Any) -> float:
    """A row value as a float (``None``, text: NaN)."""
    if isinstance(v, bool) or v is None:
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _g(x: float) -> str:
    return "—" if not math.isfinite(x) else f"{x:.3g}"


def _with_reason(c: Claim, reason: str) -> Claim:
    from dataclasses import replace

    return replace(c, reason=reason)


# -- symmetry about 0: the mirror KS distance ----------------------------------------------------


@dataclass(frozen=True)
class _Cell:
    """One sample's mirror distance ``D`` over its ``m`` non-zero values."""

    label: str
    D: float
    m: int

    @property
    def band(self) -> tuple[float, float]:
        half = KS_CRIT / math.sqrt(self.m) if self.m else math.inf
        return max(0.0, self.D - half), min(1.0, self.D + half)

    @property
    def resolved(self) -> bool:
        return self.m > 0 and KS_CRIT / math.sqrt(self.m) <= KS_TOL

    @property
    def verdict(self) -> str:
        return within(*self.band, high=KS_TOL)

    def text(self) -> str:
        lo, hi = self.band
        return f"{self.label}: D = {self.D:.3g} [{lo:.3g}, {hi:.3g}] over {self.m:,} values"


def _symmetry_claim(base: dict, cells: list[_Cell], what: str, *, all_resolved: bool) -> Claim:
    """Symmetric when every (resolved) cell's interval is within :data:`KS_TOL`; asymmetric when
    some cell's interval lies beyond it."""
    cells = [c for c in cells if c.m > 0 and math.isfinite(c.D)]
    if not cells:
        return Claim(**base, reason=f"no non-zero {what} were recorded")
    resolved = [c for c in cells if c.resolved]
    bad = [c for c in cells if c.verdict == FAILS]
    pool = resolved if not all_resolved else cells
    worst = max(bad or pool or cells, key=lambda c: c.D)
    lo, hi = worst.band
    rule = f"symmetric when the mirror KS distance D ≤ {KS_TOL}"
    small = [c for c in cells if not c.resolved]
    if all_resolved and small and not bad:
        return Claim(
            **base,
            measured=worst.D,
            ci=(lo, hi),
            reason=(
                f"{small[0].label} has only {small[0].m:,} non-zero values (≥ "
                f"{math.ceil((KS_CRIT / KS_TOL) ** 2)} resolve {KS_TOL}); {worst.text()}; "
                f"rule: {rule}"
            ),
        )
    need = math.ceil((KS_CRIT / KS_TOL) ** 2)
    if bad:
        verdict = FAILS
        reason = f"{len(bad)} of {len(cells)} beyond it, the worst {worst.text()}"
    elif not pool:
        verdict = UNDECIDED
        reason = (f"every sample is too small to resolve {KS_TOL} (≥ {need} non-zero values); "
                  f"the largest {worst.text()}")  # fmt: skip
    else:
        verdict = _combine([c.verdict for c in pool])
        reason = f"{len(pool)} of {len(cells)} within it; the largest {worst.text()}"
        if verdict == UNDECIDED:
            reason = f"an interval straddles {KS_TOL}: {worst.text()}"
        skipped = len(cells) - len(resolved)
        if skipped and not all_resolved:
            reason += f"; {skipped} too small to resolve {KS_TOL} (< {need} values) left out"
    reason += f"; rule: {rule}"
    return Claim(**base, measured=worst.D, ci=(lo, hi), verdict=verdict, reason=reason)
