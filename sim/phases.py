"""``umwelt phases RUN``: re-classify a finished run's epochs, with other thresholds, without
retraining (THEORY.md §5; the rule is :mod:`umwelt.phases`').

A train run has one net; a simulate run two (``finite_T``, sampled at its temperature, and the
``relu`` twin). Each net's rows come from ``metrics.jsonl``, its Hessian rows (where ``umwelt
hessian`` analysed it) from ``hessian/hessian.jsonl`` (``hessian_relu/`` for the twin), all
through :class:`sim.runs.Run`. A run written before the phase observables existed has no
``n_unsatisfied``: its epochs are ``undetermined`` and the result says which fields are missing.
Nothing is written.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from sim.runs import Run
from umwelt.errors import ConfigError
from umwelt.phases import PhaseRule, classify, summarize

__all__ = ["FIELDS", "PhasesConfig", "run"]

#: what the rule reads from a row (with the net's prefix)
FIELDS: tuple[str, ...] = ("loss", "order_parameter", "n_unsatisfied", "frac_unsatisfied")


@dataclass(frozen=True)
class PhasesConfig(PhaseRule):
    """The run to classify and the thresholds (inherited from :class:`~umwelt.phases.PhaseRule`)."""

    run: Path | None = None  # a run directory of umwelt train or umwelt simulate

    @property
    def rule(self) -> PhaseRule:
        """The thresholds alone."""
        return PhaseRule(**{f.name: getattr(self, f.name) for f in fields(PhaseRule)})

    def validated(self) -> PhasesConfig:
        """This config, or :class:`ConfigError` naming the first bad value (reads nothing)."""
        if self.run is None:
            raise ConfigError("a run directory is required (umwelt phases RUN)")
        self.rule.validated()
        return replace(self, run=Path(self.run))


def run(cfg: PhasesConfig) -> dict:
    """The phase of every epoch of each net of the run, and each net's phase history.

    Returns:
        ``{"run", "kind", "thresholds", "nets": {net: {"epochs": [{epoch, phase, reason,
        recorded}], "summary", "missing", "hessian_epochs"}}}``; ``recorded`` is the phase the
        run wrote online (``None`` for a run before phases existed).

    Raises:
        ConfigError: for a bad threshold or a directory that is not a run.
    """
    cfg = cfg.validated()
    r = Run.open(cfg.run)
    rows = r.metrics(required=True)
    nets = {"finite_T": ""} if r.kind == "train" else {"finite_T": "", "relu": "relu_"}
    out = {"run": str(r.path), "kind": r.kind, "thresholds": asdict(cfg.rule), "nets": {}}
    for net, prefix in nets.items():
        stochastic = net == "finite_T" and _stochastic(r)
        hessian = r.hessian_rows(net)
        labels = classify(rows, hessian, rule=cfg.rule, stochastic=stochastic, prefix=prefix)
        phase_key = f"{prefix}phase"
        out["nets"][net] = {
            "stochastic": stochastic,
            "missing": [
                f"{prefix}{k}" for k in FIELDS if all(f"{prefix}{k}" not in x for x in rows)
            ],
            "hessian_epochs": [h["epoch"] for h in hessian],
            "epochs": [
                {
                    "epoch": p.epoch,
                    "phase": p.phase,
                    "reason": p.reason,
                    "recorded": x.get(phase_key),
                }
                for p, x in zip(labels, rows, strict=True)
            ],
            "summary": summarize(labels, cfg.rule),
        }
    return out


def _stochastic(r: Run) -> bool:
    """The run's net samples its gates (N_Δ is then a mean over evaluation draws)."""
    mode = getattr(r.config, "gate_mode", "sample")
    return mode == "sample" and float(r.config.temperature) > 0
