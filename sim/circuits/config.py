r"""The settings of ``umwelt circuits`` (:class:`CircuitsConfig`), typed and checked once.

Which net (``widths``, ``checkpoint``, ``model``, ``graph`` or ``run``: one of them), its
inputs, the gates' temperature, the budgets of the checks and samples, the assembly moments
(``moments``; through training ``run``, ``epochs``, ``plant_mean``) and the output directory;
:meth:`CircuitsConfig.validated` checks values only (the files are read by
:func:`sim.circuits.run`). :func:`parse_plant_mean` is the CLI's parser of ``--plant-mean``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction
from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np

from umwelt._checks import check_fraction, check_int, check_real
from umwelt.errors import ConfigError
from umwelt.gates import check_temperature
from umwelt.network import parse_widths

__all__ = ["DEFAULT_WIDTHS", "TINY_CONV", "CircuitsConfig", "parse_plant_mean"]

DEFAULT_WIDTHS = (16, 32, 32, 1)
TINY_CONV = "tiny-conv"


def _check_width(width: Any) -> float:
    """A width multiplier, a number > 0 (a :class:`~fractions.Fraction` such as ``1/32`` is
    one; the CLI parses ``--width 1/32`` into it), as a float."""
    w = math.nan
    if isinstance(width, int | float | Fraction | np.number) and not isinstance(width, bool):
        w = float(width)
    if not (math.isfinite(w) and w > 0):
        shown = str(width) if isinstance(width, Fraction) else repr(width)
        raise ConfigError(f"width must be a number > 0 such as 0.25 or 1/32, got {shown}")
    return w


@dataclass(frozen=True)
class CircuitsConfig:
    """Settings of ``umwelt circuits``, typed (the CLI parses ``--widths 16,32,32,1``,
    ``--width 1/32``, ``--x 0.5,-1,2``); :func:`~sim.circuits.run` validates them once."""

    widths: tuple[int, ...] | None = None  # MLP widths, input first (default 16,32,32,1)
    checkpoint: Path | None = None  # a run directory of `umwelt simulate` or `umwelt train`
    which: str = "finite_T"  # simulate: init|finite_T|relu; train: init, last or an epoch
    model: str | None = None  # "tiny-conv" or a VGG preset: conv circuits
    width: float | Fraction = Fraction(1, 32)  # VGG width multiplier
    input_shape: tuple[int, int, int] = (3, 32, 32)  # VGG input shape
    graph: Path | None = None  # a circuit graph as JSON (see graph_to_json)
    x: tuple[float, ...] | Path | None = None  # one input: its values, or a .npy file of them
    seed: int = 0  # weights (seed), inputs (seed + 1), gates and samples (seed + 2)
    inputs: int = 4  # number of inputs (when x is not given)
    samples: int = 10_000  # sampled circuits per order for the symmetry statistics
    temperature: float = 0.0  # gates: ReLU at 0, sampled at T > 0
    pool: str = "select"  # max-pooling in the circuit graph: select (winner only) or gate
    force_enumerate: bool = False  # enumerate every circuit even beyond max_circuits: refuse
    max_circuits: int = 2**22  # enumerate when inputs × circuits ≤ this (memory budget)
    checks: int = 64  # Hessian entries checked against autograd
    circuit: int | None = None  # show this circuit of the first input (its index)
    moments: bool = False  # also the assembly moments at initialization (eq. 20)
    run: Path | None = None  # a run directory: the assembly moments through training instead
    epochs: tuple[int, ...] | None = None  # with run: the epochs measured (default every one)
    plant_mean: tuple[float, float] | None = None  # with run: (fraction, shift in layer RMS)
    out: Path | None = None  # write figures and circuits.json here

    def validated(self) -> CircuitsConfig:
        """A normalized copy, or :class:`ConfigError` naming the first bad value (values only:
        the checkpoint and graph files are read by :func:`~sim.circuits.run`)."""
        sources = [
            n
            for n in ("widths", "checkpoint", "model", "graph", "run")
            if getattr(self, n) is not None
        ]
        if len(sources) > 1:
            raise ConfigError(f"give one net: --{sources[0]} or --{sources[1]}, not both")
        run, epochs, plant = self._validated_training()

        for name in ("widths", "input_shape"):
            if isinstance(getattr(self, name), str):
                raise ConfigError(
                    f"{name} must be a tuple of integers, got {getattr(self, name)!r}"
                )
        widths = self.widths
        if widths is not None:
            widths = parse_widths(widths)
            if len(widths) < 2 or widths[-1] != 1:
                raise ConfigError(f"widths must be n_0,...,n_L with n_L = 1, got {self.widths!r}")
        model = self.model
        if model is not None:
            from umwelt.nn.vgg import VGG_PRESETS

            if model not in (TINY_CONV, *VGG_PRESETS):
                raise ConfigError(
                    f"unknown model {model!r}; choose {TINY_CONV} or a VGG preset "
                    f"({', '.join(VGG_PRESETS)})"
                )
        if self.pool not in ("select", "gate"):
            raise ConfigError(f"pool must be 'select' or 'gate', got {self.pool!r}")
        if self.circuit is not None and (
            isinstance(self.circuit, bool) or not isinstance(self.circuit, int)
        ):
            raise ConfigError(f"circuit must be an integer index, got {self.circuit!r}")
        x = self.x
        if x is not None and not isinstance(x, Path):
            numbers = isinstance(x, tuple | list) and len(x) > 0
            if not numbers or not all(isinstance(v, Real) and not isinstance(v, bool) for v in x):
                raise ConfigError(
                    f"x must be a tuple of numbers or the Path of a .npy file, got {x!r}"
                )
            x = tuple(float(v) for v in x)
            if not all(math.isfinite(v) for v in x):
                raise ConfigError(f"x must be finite numbers, got {self.x!r}")
        shape = tuple(int(s) for s in parse_widths(self.input_shape, what="input shape"))
        if len(shape) != 3:
            raise ConfigError(f"input shape must be C,H,W, got {self.input_shape!r}")
        return replace(
            self,
            widths=widths,
            width=_check_width(self.width),
            x=x,
            input_shape=shape,
            temperature=check_temperature(check_real("temperature", self.temperature)),
            seed=check_int("seed", self.seed, 0),
            inputs=check_int("inputs", self.inputs, 1),
            samples=check_int("samples", self.samples, 2),
            max_circuits=check_int("max_circuits", self.max_circuits, 1),
            checks=check_int("checks", self.checks, 0),
            run=run,
            epochs=epochs,
            plant_mean=plant,
        )

    def _validated_training(self) -> tuple[Path | None, tuple[int, ...] | None, tuple | None]:
        """``(run, epochs, plant_mean)`` checked: the last two only with a run."""
        run = self.run
        if run is not None and not isinstance(run, Path):
            if not isinstance(run, str) or not run:
                raise ConfigError(f"run must be the path of a run directory, got {run!r}")
            run = Path(run)
        for name, flag in (("epochs", "--epochs"), ("plant_mean", "--plant-mean")):
            if getattr(self, name) is not None and run is None:
                raise ConfigError(f"{flag} is for --run (the assembly moments through training)")
        if run is not None and self.moments:
            raise ConfigError("give --run (moments through training) or --moments, not both")
        epochs = self.epochs
        if epochs is not None:
            if isinstance(epochs, str | bytes) or not isinstance(epochs, tuple | list):
                raise ConfigError(f"epochs must be a tuple of integers, got {epochs!r}")
            if not epochs:
                raise ConfigError("epochs must name at least one epoch, got none")
            epochs = tuple(sorted({check_int("an epoch", e, 0) for e in epochs}))
        plant = self.plant_mean
        if plant is not None:
            if isinstance(plant, str | bytes) or not (
                isinstance(plant, tuple | list) and len(plant) == 2
            ):
                raise ConfigError(
                    f"plant_mean must be (fraction, shift), two numbers, got {plant!r}"
                )
            fraction = check_fraction("plant fraction", plant[0], closed_above=True)
            shift = check_real("plant shift", plant[1])
            if not math.isfinite(shift):
                raise ConfigError(f"plant shift must be a finite number, got {plant[1]!r}")
            plant = (fraction, shift)
        return run, epochs, plant


def parse_plant_mean(text: str) -> tuple[float, float]:
    """``"0.25:1"`` → ``(0.25, 1.0)`` (``--plant-mean FRACTION:SHIFT``); the Config checks the
    ranges.

    >>> parse_plant_mean("0.25:-1.5")
    (0.25, -1.5)

    Raises:
        ConfigError: ``"--plant-mean must be FRACTION:SHIFT, two numbers such as 0.25:1, got
            '…'"``.
    """
    head, sep, tail = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return float(head), float(tail)
    except ValueError:
        raise ConfigError(
            f"--plant-mean must be FRACTION:SHIFT, two numbers such as 0.25:1, got {text!r}"
        ) from None
