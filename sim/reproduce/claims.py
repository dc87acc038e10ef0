r"""The paper's claims, one :class:`~sim.reproduce.report.Claim` each, decided from a reproduction's
files (THEORY.md §4–5; the paper's eq. 14–15, figs. 3–8, §5).

Every claim is a number with a 95 % interval set against what the paper says, and the verdict
follows one rule, an equivalence test: **holds** when the whole interval lies where the paper
says the number is, **does not hold** when the whole interval lies outside, and **not
measurable at this scale** when the interval straddles the boundary (more data, a longer run or
a larger net would decide) or the run holds no data for it; the reason says which. The bounds
of "where the paper says" are this module's constants, since the paper gives none:

* *Symmetric about 0* (circuits, weights, gradients, Hessian entries): the mirror
  Kolmogorov–Smirnov distance :math:`D = \sup_t |F(t) - P(-v \le t)|` between the non-zero
  values and their mirror image is at most :data:`KS_TOL` (0.1: e.g. a 55:45 sign balance).
  Its interval is :math:`D \pm c/\sqrt m` over ``m`` non-zero values, with :math:`c` =
  :data:`KS_CRIT` the 95 % point of :math:`\sup_{[0,1]}|B|`, the null law of
  :math:`\sqrt m D` (:func:`umwelt.circuits.mirror_ks_test`); a sample of fewer than
  :math:`(c/0.1)^2 \approx 503` non-zero values cannot resolve 0.1 (*unresolved*).
* *About an order of magnitude below* (fig. 4b): a ratio in :data:`ORDER_BAND`
  :math:`= [10^{-1.5}, 10^{-0.5}]`; *at the loss's rate*: the slope of
  :math:`\log \eta\|\nabla R\|^2` against :math:`\log R` over the epochs in :data:`RATE_BAND`
  = [1/2, 2]. Both with moving-block bootstrap intervals over the epochs (serially correlated).
* *Reaches 0*: the last epoch's value at most :data:`ZERO_TOL` of the initial one.
* *A symmetric spectrum* (fig. 8a): :math:`\int|\rho(\lambda) - \rho(-\lambda)|\,d\lambda` (the
  Hessian rows' bias-corrected ``density_asymmetry``, 0 to 2) at most :data:`DENSITY_TOL`,
  ± 1.96 of its standard error.
* *Sparse* correlations (figs. 6b,c): at most :data:`SPARSE_TOL` of the pairs of uniformly
  sampled entries significantly correlated (the rows' ``coupling_set_fraction`` and its band).
* *About 3.39·10⁻⁴* (fig. 7c): within a factor :data:`ABOUT_FACTOR` of it.

A claim about a run that stopped while still learning (the plasticity phase) before the event
it predicts (zero risk) is *not measurable at this scale* at the ``cpu`` and ``quick`` scales,
and *does not hold* at the paper's own (``gpu``: 300 epochs).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim.reproduce.report import VERDICTS, Claim

__all__ = [
    "ABOUT_FACTOR",
    "CLAIMS",
    "DENSITY_TOL",
    "KS_CRIT",
    "KS_TOL",
    "ORDER_BAND",
    "PAPER_COUPLING",
    "RATE_BAND",
    "SPARSE_TOL",
    "ZERO_TOL",
    "Evidence",
    "evaluate",
    "rules",
    "within",
]

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


@dataclass(frozen=True)
class Evidence:
    """What the claims are decided from: a reproduction's rows, arrays and figures.

    Attributes:
        scale: ``cpu``, ``gpu`` or ``quick`` (the preset).
        rows: ``metrics.jsonl`` of the train run (epoch 0 first).
        summary: its ``summary.json`` (``{}`` if none).
        observations: its ``observations/epoch_XXXX.npz``, by epoch.
        hessian_rows: ``hessian/hessian.jsonl``.
        entries: ``(epoch, values of the live sampled Hessian entries)`` per analysed epoch.
        circuits: ``circuits/circuits.json`` (symmetry at initialization), or ``None``.
        phases: ``(epoch, phase)`` as :mod:`sim.phases` labels them.
        n_params: N, the parameters of the net.
        figures: figure name (``order_parameter``) → its PNG, those that exist.
        seed: the seed of the bootstraps.
    """

    scale: str
    rows: list[dict]
    summary: dict = field(default_factory=dict)
    observations: list[dict[str, np.ndarray]] = field(default_factory=list)
    hessian_rows: list[dict] = field(default_factory=list)
    entries: list[tuple[int, np.ndarray]] = field(default_factory=list)
    circuits: dict | None = None
    phases: list[tuple[int, str]] = field(default_factory=list)
    n_params: int = 0
    figures: dict[str, Path] = field(default_factory=dict)
    seed: int = 0

    def figure(self, *names: str) -> Path | None:
        """The first of these figures that exists."""
        return next((self.figures[n] for n in names if n in self.figures), None)


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


def circuit_symmetry(ev: Evidence) -> Claim:
    base = {
        "key": "circuit_symmetry",
        "claim": "Uniformly sampled basis circuits ψ and their first- and second-order "
        "perturbations Ω⁽¹⁾, Ω⁽²⁾ are symmetric about 0 at initialization, μ(ψ) ≈ μ(−ψ)",
        "where": "eq. 14, fig. 3b",
        "paper": "μ(ψ) ≈ μ(−ψ) (histograms)",
        "figure": ev.figure("circuit_histograms"),
    }
    if ev.circuits is None or "symmetry" not in ev.circuits:
        return Claim(**base, reason="no circuit sample (circuits/circuits.json) was written")
    names = {"psi": "ψ", "omega1": "Ω⁽¹⁾", "omega2": "Ω⁽²⁾"}
    cells, ps = [], []
    for o, s in ev.circuits["symmetry"].items():
        m = round(_num(s.get("n")) * (1.0 - _num(s.get("frac_zero"))))
        cells.append(_Cell(names.get(o, o), _num(s.get("mirror_ks")), int(m)))
        ps.append(f"{names.get(o, o)} p = {_num(s.get('sym_test_pvalue')):.2g}")
    claim = _symmetry_claim(base, cells, "circuit values", all_resolved=True)
    return _with_reason(claim, f"{claim.reason}; exact mirror tests: {', '.join(ps)}")


def _with_reason(c: Claim, reason: str) -> Claim:
    from dataclasses import replace

    return replace(c, reason=reason)


def _layer_cells(ev: Evidence, kind: str) -> list[_Cell]:
    """Per observed epoch and layer, the mirror distance of the layer's ``kind`` (weight, grad)
    entries (``ks_stat`` is over all entries; over the non-zero ones it is ``ks_stat · n/m``)."""
    cells = []
    for o in ev.observations:
        e = int(o["epoch"])
        for l, (name, shape) in enumerate(zip(o["layer_names"], o["layer_shapes"])):
            n = int(np.prod(shape))
            zero = _num(o[f"{kind}_frac_zero"][l])
            m = round(n * (1.0 - zero)) if math.isfinite(zero) else 0
            ks = _num(o[f"{kind}_ks_stat"][l])
            D = ks * n / m if m else math.nan
            cells.append(_Cell(f"epoch {e}, layer {l + 1} ({name})", D, m))
    return cells


def weight_symmetry(ev: Evidence) -> Claim:
    base = {
        "key": "weights_symmetric",
        "claim": "Each layer's weight distribution stays nearly symmetric about 0 through training",
        "where": "fig. 3a",
        "paper": "symmetric ridgelines, intact and broken mixed",
        "figure": ev.figure("weights_ridgeline"),
    }
    return _symmetry_claim(base, _layer_cells(ev, "weight"), "weights", all_resolved=False)


def _pooled_gradient_cells(ev: Evidence) -> list[_Cell]:
    """Per observed epoch, the mirror distance of every gradient entry of the net (each layer
    in units of its RMS entry, as fig. 4a pools them), from the stored histograms: bins
    symmetric about 0, the exact zeros removed from the bin at 0; at the bins' resolution."""
    cells = []
    for o in ev.observations:
        edges = np.asarray(o["grad_edges"], float)
        counts = np.asarray(o["grad_hist"], float).sum(axis=0)
        under = float(np.sum(o["grad_under"]))
        over = float(np.sum(o["grad_over"]))
        sizes = np.prod(np.asarray(o["layer_shapes"], float), axis=1)
        zeros = float(np.nansum(sizes * np.asarray(o["grad_frac_zero"], float)))
        if not np.allclose(edges, -edges[::-1]) or edges.size % 2 == 0:
            continue  # not symmetric bins with an edge at 0
        zero_bin = int(np.searchsorted(edges, 0.0, side="right")) - 1  # [0, next edge)
        counts[zero_bin] = max(0.0, counts[zero_bin] - zeros)
        m = under + over + counts.sum()
        if m <= 0:
            cells.append(_Cell(f"epoch {int(o['epoch'])}", math.nan, 0))
            continue
        below = under + np.concatenate([[0.0], np.cumsum(counts)])  # #{v < t_k}, k = 0..K
        above = over + np.concatenate([np.cumsum(counts[::-1])[::-1], [0.0]])  # #{v ≥ t_k}
        # P(v < t) vs P(-v < t) = P(v > -t): at the edges t_k = -t_{K-k}
        D = float(np.max(np.abs(below - above[::-1])) / m)
        cells.append(_Cell(f"epoch {int(o['epoch'])}", D, int(round(m))))
    return cells


def gradient_symmetry(ev: Evidence) -> Claim:
    base = {
        "key": "gradients_symmetric",
        "claim": "The entries of the full-training-set gradient ∂R/∂θ stay symmetric about 0 "
        "throughout training",
        "where": "fig. 4a",
        "paper": "symmetric ridgelines",
        "figure": ev.figure("gradients_ridgeline"),
    }
    claim = _symmetry_claim(base, _pooled_gradient_cells(ev), "gradient entries",
                            all_resolved=False)  # fmt: skip
    cells = _layer_cells(ev, "grad")
    bad = [c for c in cells if c.m and c.verdict == FAILS]
    note = "every layer pooled, each in units of its RMS entry (fig. 4a), at the bins' 0.1 RMS"
    if bad:
        worst = max(bad, key=lambda c: c.D)
        note += (
            f"; alone, {len(bad)} of {len(cells)} layer-epochs are asymmetric, e.g. {worst.text()}"
        )
        n_layers = len(ev.observations[0]["layer_names"])
        if worst.label.endswith(f"layer {n_layers} ({ev.observations[0]['layer_names'][-1]})"):
            note += " (the output layer's ∂R/∂W = −E[y ℓ'(yf) x] with x ≥ 0 shares one sign)"
    return _with_reason(claim, f"{claim.reason} ({note})")


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


#: every claim, in the report's order: each a function of the :class:`Evidence`
CLAIMS: tuple[Callable[[Evidence], Claim], ...] = (
    circuit_symmetry,
    weight_symmetry,
    gradient_symmetry,
    order_parameter_ratio,
    order_parameter_rate,
    order_parameter_zero,
    zero_training_error,
    spectrum_symmetric,
    spectrum_contracts,
    entries_symmetric,
    means_015_se,
    means_015_per_example,
    correlations_sparse,
    coupling_fraction,
    phase_sequence,
)


def evaluate(ev: Evidence) -> list[Claim]:
    """One :class:`Claim` per entry of :data:`CLAIMS`."""
    return [claim(ev) for claim in CLAIMS]
