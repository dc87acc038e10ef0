"""What the claims are decided from: :class:`Evidence`, a reproduction's rows, arrays and figures
(:mod:`sim.reproduce.runner` reads them from its files)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Evidence"]


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
