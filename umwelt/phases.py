r"""Which phase a run is in, epoch by epoch, from the rows it records (THEORY.md §5).

The paper's claim is about phases of training. A net whose capacity exceeds the data's
complexity stays in the **plasticity phase** — examples still carry risk, the plasticity order
parameter :math:`\eta\|\nabla_\theta R\|^2` (eq. 15) is not negligible against the risk, the
Hessian spectrum has weight on both sides of 0 (every stationary point a saddle) — until it
**converges** to zero risk. A net that cannot absorb its data is **frustrated**: the risk stays
above 0 but stops falling, the order parameter vanishes against it, the Hessian is close to
positive semi-definite. The number of unsatisfied constraints
:math:`N_\Delta = \#\{i : y_i f(x_i) < 1\}` (examples with non-zero hinge loss; Geiger et al.
2019, Spigler et al. 2019) is the quantity that makes the boundary sharp: a converged net has
:math:`N_\Delta = 0`.

**The rule.** :func:`classify` labels epoch :math:`e` from the rows up to :math:`e` only (so it
runs online, during training), with the thresholds of a :class:`PhaseRule`:

1. ``undetermined`` when the row has no ``n_unsatisfied`` (a run recorded before it existed)
   or its risk is not finite (a diverged net).
2. ``converged`` when :math:`N_\Delta = 0`. For a **stochastic** net (gates sampled at
   :math:`T > 0`) :math:`N_\Delta` is the mean over the evaluation's gate draws, and a few
   margins flip with the draws even once the net has learned the data, so there the rule is
   :math:`N_\Delta / n \le` ``unsat_tol``.
3. ``undetermined`` (``"fewer than W epochs"``) while fewer than ``window`` = W rows exist.
4. Over the trailing window of W epochs, the risk's relative change
   :math:`\rho = R_e / R_{e-W+1} - 1` is taken from a least-squares line through
   :math:`\log R` (robust to one noisy epoch); the order parameter is compared with the risk by
   the median over the window of :math:`q = \eta\|\nabla R\|^2 / R`.
   The risk is *falling* when :math:`\rho \le -` ``flat_tol``, *flat* when
   :math:`|\rho| <` ``flat_tol``; the order parameter is *negligible* when
   :math:`q <` ``op_tol``.
5. Where a Hessian row of an epoch in the window exists (the latest one is used), its spectrum
   is *nearly PSD* when ``neg_share`` :math:`\le` ``neg_tol`` and
   :math:`\lambda_{\min} \ge -` ``psd_eps`` :math:`\cdot\lambda_{\max}`, *two-sided* when
   ``neg_share`` :math:`\ge` ``two_sided_min``.
6. ``plasticity``: falling, order parameter not negligible, and no Hessian row or a two-sided
   spectrum. ``frustration``: flat, order parameter negligible, and no Hessian row or a nearly
   PSD spectrum. Anything else is ``undetermined``, with the reason (e.g. ``"risk flat but the
   order parameter is not negligible"``).

The thresholds are parameters; their defaults are written in :class:`PhaseRule`. ``numpy`` only.

>>> rows = [{"epoch": e, "loss": 1.0 * 0.8**e, "order_parameter": 0.1 * 0.8**e,
...          "n_unsatisfied": 50, "frac_unsatisfied": 0.5} for e in range(12)]
>>> [p.phase for p in classify(rows)][-3:]
['plasticity', 'plasticity', 'plasticity']
>>> rows[-1] |= {"n_unsatisfied": 0, "frac_unsatisfied": 0.0}
>>> classify(rows)[-1].phase
'converged'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from umwelt.errors import ConfigError

__all__ = ["PHASES", "EpochPhase", "PhaseRule", "classify", "summarize"]

#: the labels, in the order the summary lists them
PHASES: tuple[str, ...] = ("plasticity", "frustration", "converged", "undetermined")


@dataclass(frozen=True)
class PhaseRule:
    """The thresholds of the rule in the module docstring."""

    window: int = 10  # trailing epochs W over which the trends are measured
    flat_tol: float = 0.05  # |relative risk change over W| below this: flat; ≤ −this: falling
    op_tol: float = 1e-3  # order parameter / risk below this: negligible
    unsat_tol: float = 2e-3  # stochastic nets: converged when N_Δ / n ≤ this
    neg_tol: float = 0.05  # Hessian nearly PSD: neg_share ≤ this ...
    psd_eps: float = 0.05  # ... and λ_min ≥ −psd_eps · λ_max
    two_sided_min: float = 0.15  # Hessian two-sided: neg_share ≥ this

    def validated(self) -> PhaseRule:
        """This rule, or :class:`ConfigError` naming the first threshold out of range."""
        w = self.window
        if isinstance(w, bool) or not isinstance(w, int | np.integer) or w < 2:
            raise ConfigError(f"the phase window must be an integer ≥ 2 epochs, got {w!r}")
        for name in ("flat_tol", "op_tol", "unsat_tol", "neg_tol", "psd_eps", "two_sided_min"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v < 1:
                raise ConfigError(f"the phase threshold {name} must be in [0, 1), got {v!r}")
        if self.two_sided_min <= self.neg_tol:
            raise ConfigError(
                f"two_sided_min ({self.two_sided_min!r}) must exceed neg_tol ({self.neg_tol!r})"
            )
        return self

    def as_dict(self) -> dict:
        """The thresholds by name (for ``summary.json``)."""
        return asdict(self)


@dataclass(frozen=True)
class EpochPhase:
    """The label of one epoch and why.

    Attributes:
        epoch: the row's epoch.
        phase: one of :data:`PHASES`.
        reason: the rule's branch in words (what was seen, or what is missing).
        risk_change: :math:`\\rho` over the window (NaN before W epochs).
        op_ratio: the window's median order parameter / risk (NaN before W epochs).
    """

    epoch: int
    phase: str
    reason: str
    risk_change: float = math.nan
    op_ratio: float = math.nan


def _get(row: dict, key: str) -> float:
    v = row.get(key)
    try:
        return math.nan if v is None else float(v)
    except (TypeError, ValueError):
        return math.nan


def _relative_change(risk: np.ndarray) -> float:
    """:math:`R_{end}/R_{start} - 1` from a least-squares line through log R (NaN if R ≤ 0)."""
    if np.any(~np.isfinite(risk)) or np.any(risk <= 0):
        return math.nan
    t = np.arange(risk.size, dtype=np.float64)
    slope = np.polyfit(t, np.log(risk), 1)[0]
    return float(math.expm1(slope * (risk.size - 1)))


def _spectrum(h: dict | None, rule: PhaseRule) -> str | None:
    """``"psd"``, ``"two-sided"``, ``"between"``, or None without a usable Hessian row."""
    if h is None:
        return None
    neg, lo, hi = _get(h, "neg_share"), _get(h, "lambda_min"), _get(h, "lambda_max")
    if not math.isfinite(neg):
        return None
    if neg <= rule.neg_tol and (not math.isfinite(lo) or lo >= -rule.psd_eps * max(hi, 0.0)):
        return "psd"
    return "two-sided" if neg >= rule.two_sided_min else "between"


def classify(
    rows: Sequence[dict],
    hessian_rows: Sequence[dict] = (),
    *,
    rule: PhaseRule | None = None,
    stochastic: bool = False,
    prefix: str = "",
) -> list[EpochPhase]:
    r"""The phase of every row's epoch, each from the rows up to it (the module's rule).

    Args:
        rows: one dict per epoch in order, with ``epoch``, ``loss`` (the training risk),
            ``order_parameter``, ``n_unsatisfied`` and ``frac_unsatisfied`` (each with
            ``prefix``).
        hessian_rows: rows with ``epoch``, ``neg_share``, ``lambda_min``, ``lambda_max``.
        rule: the thresholds (default :class:`PhaseRule`).
        stochastic: the net's gates are sampled (:math:`T > 0`): :math:`N_\Delta` is a mean
            over draws and ``unsat_tol`` applies.
        prefix: the keys' prefix (``"relu_"`` for a simulate run's ReLU twin).

    Returns:
        one :class:`EpochPhase` per row.
    """
    rule = (rule or PhaseRule()).validated()
    W = int(rule.window)
    hess = sorted(
        (h for h in hessian_rows if math.isfinite(_get(h, "epoch"))),
        key=lambda h: _get(h, "epoch"),
    )
    out: list[EpochPhase] = []
    risk = np.array([_get(r, f"{prefix}loss") for r in rows])
    op = np.array([_get(r, f"{prefix}order_parameter") for r in rows])
    for i, row in enumerate(rows):
        epoch = int(_get(row, "epoch")) if math.isfinite(_get(row, "epoch")) else i
        n_unsat = _get(row, f"{prefix}n_unsatisfied")
        frac = _get(row, f"{prefix}frac_unsatisfied")
        if not math.isfinite(n_unsat):
            out.append(EpochPhase(epoch, "undetermined", f"no {prefix}n_unsatisfied in the row"))
            continue
        if not math.isfinite(risk[i]):
            out.append(EpochPhase(epoch, "undetermined", "non-finite risk (a diverged net)"))
            continue
        if n_unsat == 0 or (stochastic and math.isfinite(frac) and frac <= rule.unsat_tol):
            why = "N_Δ = 0" if n_unsat == 0 else f"N_Δ/n = {frac:.2g} ≤ {rule.unsat_tol:g}"
            out.append(EpochPhase(epoch, "converged", why))
            continue
        if i + 1 < W:
            out.append(EpochPhase(epoch, "undetermined", f"fewer than {W} epochs"))
            continue
        window = slice(i + 1 - W, i + 1)
        change = _relative_change(risk[window])
        with np.errstate(divide="ignore", invalid="ignore"):
            q = float(np.nanmedian(op[window] / risk[window])) if W else math.nan
        falling = change <= -rule.flat_tol
        flat = abs(change) < rule.flat_tol
        negligible = q < rule.op_tol
        lo_epoch = _get(rows[window.start], "epoch")
        h = next((h for h in reversed(hess) if lo_epoch <= _get(h, "epoch") <= epoch), None)
        spectrum = _spectrum(h, rule)
        seen = f"risk {change:+.1%} over {W} epochs, order parameter / risk {q:.2g}"
        if spectrum is not None:
            seen += f", Hessian {spectrum} (epoch {int(_get(h, 'epoch'))})"
        if not (math.isfinite(change) and math.isfinite(q)):
            phase, why = "undetermined", f"no finite risk trend or order parameter ({seen})"
        elif falling and not negligible and spectrum in (None, "two-sided"):
            phase, why = "plasticity", seen
        elif flat and negligible and spectrum in (None, "psd"):
            phase, why = "frustration", seen
        else:
            phase = "undetermined"
            if falling and negligible:
                why = f"risk falling but the order parameter is negligible ({seen})"
            elif flat and not negligible:
                why = f"risk flat but the order parameter is not negligible ({seen})"
            elif not (falling or flat):
                why = f"risk rising ({seen})"
            else:
                why = f"the Hessian disagrees with the trends ({seen})"
        out.append(EpochPhase(epoch, phase, why, change, q))
    return out


def summarize(labels: Sequence[EpochPhase], rule: PhaseRule | None = None) -> dict:
    """The phase history: the final phase, the first epoch of each phase seen, the epochs spent
    in each, and the thresholds.

    >>> s = summarize([EpochPhase(0, "undetermined", ""), EpochPhase(1, "plasticity", ""),
    ...                EpochPhase(2, "converged", "")])
    >>> s["final"], s["began"], s["epochs_in"]["plasticity"]
    ('converged', {'undetermined': 0, 'plasticity': 1, 'converged': 2}, 1)
    """
    rule = rule or PhaseRule()
    began: dict[str, int] = {}
    spent = dict.fromkeys(PHASES, 0)
    for p in labels:
        began.setdefault(p.phase, p.epoch)
        spent[p.phase] += 1
    return {
        "final": labels[-1].phase if labels else None,
        "final_reason": labels[-1].reason if labels else None,
        "began": began,
        "epochs_in": spent,
        "thresholds": rule.as_dict(),
    }
