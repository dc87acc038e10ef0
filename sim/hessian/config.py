"""The configuration of ``umwelt hessian``: which run, which epochs, the settings.

:class:`HessianConfig` is a :class:`~sim.runs.HessianSettings` (every setting that changes the
numbers, shared with ``umwelt train --hessian-settings``) plus what the command adds: the run
directory, its epochs, the net of a simulate run, the device, ``fresh`` and ``figures``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from sim.runs import SETTINGS, HessianSettings, Run
from sim.runs.simulate import NETS
from umwelt.errors import ConfigError

__all__ = ["HessianConfig", "checkpoints_of"]


@dataclass(frozen=True)
class HessianConfig(HessianSettings):
    """A Hessian analysis of a run: its :class:`~sim.runs.HessianSettings` (inherited: every
    setting that changes the numbers) and which run, epochs and device; :meth:`validated`
    checks them all (and the run)."""

    run: Path | None = None  # required: a run directory of umwelt train or umwelt simulate
    epochs: tuple[int, ...] | str | None = None  # None: every checkpointed epoch
    net: str = "finite_T"  # simulate runs: finite_T (the net at T) or relu (the ReLU twin)
    device: str = "cpu"  # cpu, cuda, cuda:N (torchrun: cuda:LOCAL_RANK)
    fresh: bool = False  # discard the run's earlier Hessian results (other settings)
    figures: bool = True  # write figures/hessian_*.png at the end (rank 0)

    @classmethod
    def of(cls, run: Path | str, settings: HessianSettings | None = None, **kw) -> HessianConfig:
        """The analysis of ``run`` with ``settings`` (default: the defaults) and ``kw``."""
        base = {} if settings is None else asdict(settings)
        return cls(run=Path(run), **base, **kw)

    @property
    def settings(self) -> HessianSettings:
        """The settings alone (the fields :data:`~sim.runs.SETTINGS`)."""
        return HessianSettings(**{k: getattr(self, k) for k in SETTINGS})

    def validated(self) -> HessianConfig:
        """A copy with normalized values, or :class:`ConfigError` naming the first bad one.

        Reads the run directory (nothing is written): it must be a run with checkpoints, and
        every requested epoch one of them.
        """
        from umwelt.nn.device import resolve_device

        if self.run is None:
            raise ConfigError("a run directory is required (umwelt hessian RUN)")
        if self.net not in NETS:
            raise ConfigError(f"net must be one of {', '.join(NETS)}, got {self.net!r}")
        run = Run.open(self.run)
        found = checkpoints_of(run, self.net)
        epochs = _parse_epochs(self.epochs)
        if epochs is None:
            epochs = tuple(found)
        for e in epochs:
            if e not in found:
                raise ConfigError(
                    f"epoch {e} is not in the run {str(run.path)!r}: its checkpointed epochs "
                    f"are {', '.join(map(str, found))}"
                )
        resolve_device(self.device)
        checked = asdict(self.settings.validated())
        return replace(self, **checked, run=run.path, epochs=epochs)


def checkpoints_of(run: Run, net: str) -> dict[int, Path]:
    """The run's checkpoints of ``net``; :class:`ConfigError` when it has none."""
    return run.require_checkpoints(net, purpose=" to analyse")


def _parse_epochs(at: Any) -> tuple[int, ...] | None:
    if at is None:
        return None
    if isinstance(at, str):
        items = [s.strip() for s in at.split(",") if s.strip()]
        try:
            at = [int(s) for s in items]
        except ValueError:
            raise ConfigError(f"epochs must be comma-separated integers, got {at!r}") from None
    try:
        at = list(at)
    except TypeError:
        raise ConfigError(f"epochs must be a list of integers, got {at!r}") from None
    if not at:
        raise ConfigError("no epochs given")
    for e in at:
        if isinstance(e, bool) or not isinstance(e, int | np.integer) or e < 0:
            raise ConfigError(f"an epoch must be an integer ≥ 0, got {e!r}")
    return tuple(sorted({int(e) for e in at}))


# -- the run directory -----------------------------------------------------------------------------
