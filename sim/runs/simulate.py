r"""A run directory of ``umwelt simulate``: its :class:`SimulateConfig`, and how its data and
nets are rebuilt from it.

The directory (every file written atomically, metrics and weights after every epoch)::

    config.json        every setting, the MLP's ``widths``, the seeds and library versions
    metrics.jsonl      one row per epoch (epoch 0 = initialization)
    summary.json       the final row and the Monte Carlo accuracies with standard errors
    figures/*.png      learning curves, gate entropy/agreement, order parameter
    checkpoints/*.pt   state dicts: init.pt, finite_T.pt, relu.pt (weights_only=True)
    hessian/, hessian_relu/   Hessian analyses of the net and of its ReLU twin

A simulate run keeps only its latest weights: ``finite_T.pt`` and ``relu.pt`` are those of the
last row of ``metrics.jsonl`` (written with them after every epoch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

from sim.runs.codec import JsonConfig, check_path
from umwelt._checks import check_fraction, check_int, check_positive, check_real
from umwelt.errors import ConfigError
from umwelt.gates import check_temperature
from umwelt.network import parse_widths

__all__ = ["CHECKPOINTS", "NETS", "SimulateConfig", "build_net", "load_data"]

#: the checkpoints of a run: the shared initialization, the net at T, its ReLU twin
CHECKPOINTS: tuple[str, ...] = ("init", "finite_T", "relu")
#: the two trained nets
NETS: tuple[str, ...] = ("finite_T", "relu")


@dataclass(frozen=True)
class SimulateConfig(JsonConfig):
    """Every setting of a simulation, typed (the CLI parses text such as ``--hidden 32,32``);
    :meth:`validated` checks the values, :func:`sim.simulate.prepare` the run directory."""

    temperature: float = 0.1  # gate temperature T of the stochastic net (0 = ReLU, inf allowed)
    hidden: tuple[int, ...] = (64, 64)  # hidden widths n_1..n_{L-1}; input and output (1) implied
    epochs: int = 100  # passes over the training set
    lr: float = 0.01  # SGD step size η
    momentum: float = 0.9  # SGD momentum
    batch_size: int = 32  # examples per EM iteration
    samples: int = 32  # Monte Carlo gate draws per example at evaluation
    dataset: str = "digits"  # dataset spec, see umwelt.data.load_dataset
    loss: str = "hinge"  # "hinge" (the theory's) or "logistic"
    gain: float = math.sqrt(2.0)  # He-normal gain: W ~ N(0, gain² / n_in)
    seed: int = 0  # the one seed every random draw flows from
    device: str = "cpu"  # "cpu", "cuda", "cuda:N"
    dtype: str = "float32"  # "float32" or "float64"
    out: Path | None = None  # run directory; default runs/simulate-<time> (chosen by prepare)

    def validated(self) -> SimulateConfig:
        """A copy with normalized values, or :class:`ConfigError` naming the first bad one.

        Pure: it looks at the values only (the run directory is checked by
        :func:`sim.simulate.prepare`), and a validated copy returns itself.
        """
        if "validated" in self.marks:
            return self
        from umwelt.nn.device import resolve_device, resolve_dtype
        from umwelt.nn.train import get_loss

        T = check_temperature(check_real("temperature", self.temperature))
        if isinstance(self.hidden, str):
            raise ConfigError(f"hidden widths must be a tuple of integers, got {self.hidden!r}")
        hidden = parse_widths(self.hidden, what="hidden widths")
        if not isinstance(self.dataset, str) or not self.dataset.strip():
            raise ConfigError(f"dataset must be a name or a spec, got {self.dataset!r}")
        get_loss(self.loss)
        resolve_device(self.device)
        resolve_dtype(self.dtype)
        return replace(
            self,
            temperature=T,
            hidden=hidden,
            epochs=check_int("epochs", self.epochs),
            batch_size=check_int("batch size", self.batch_size),
            samples=check_int("samples", self.samples),
            lr=check_positive("learning rate", self.lr),
            gain=check_positive("gain", self.gain),
            momentum=check_fraction("momentum", self.momentum),
            seed=check_int("seed", self.seed, 0),
            out=check_path("out", self.out),
        ).marked("validated")


def load_data(cfg: SimulateConfig):
    """The dataset of ``cfg`` as ``umwelt simulate`` uses it: loaded with the run's seed and
    flattened (an MLP sees images as vectors)."""
    from umwelt.data import load_dataset

    return load_dataset(cfg.dataset, seed=cfg.seed).flattened()


def build_net(cfg: SimulateConfig, widths, which: str = "finite_T", *, device="cpu", dtype=None):
    """A net of the run with its seeded initial weights, as ``umwelt simulate`` builds it.

    Args:
        cfg: the run's settings.
        widths: the MLP's widths, input first (``config.json``'s ``widths``).
        which: ``"finite_T"`` or ``"init"`` (sample mode at the run's temperature) or
            ``"relu"`` (the twin: relu mode, T = 0).
        dtype: a torch dtype (default: the run's).
    """
    from umwelt.nn import build_mlp
    from umwelt.nn.device import resolve_dtype

    if which not in CHECKPOINTS:
        raise ConfigError(f"checkpoint must be one of {', '.join(CHECKPOINTS)}, got {which!r}")
    relu = which == "relu"
    return build_mlp(
        widths,
        temperature=0.0 if relu else cfg.temperature,
        mode="relu" if relu else "sample",
        seed=cfg.seed,
        gain=cfg.gain,
        dtype=resolve_dtype(cfg.dtype) if dtype is None else dtype,
        device=device,
    )
