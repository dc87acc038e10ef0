"""How a measurement sees a model and its data: the weight layers, the gates' generator,
the output, the data and the loss.

Every measurement of :mod:`umwelt.nn.observables` (and the training loop, :mod:`umwelt.nn.train`)
reads a model through these: its weight layers are its ``nn.Linear`` / ``nn.Conv2d`` modules
in the order of ``model.modules()`` (:func:`weight_layers`), its gates the
:class:`umwelt.nn.gate.Gate` modules of ``model.gates`` (drawn from a given generator inside
:func:`using_generator`), its output ``(B,)``; the data are ``(n, ...)`` inputs with ``(n,)``
labels, the loss a name of :data:`umwelt.nn.losses.LOSSES` or a mean loss.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from umwelt.errors import ShapeError
from umwelt.nn.losses import LossFn, get_loss

__all__ = ["using_generator", "weight_layers"]


# -- shared by the training loop ------------------------------------------------------------------


def _loss_fn(loss: str | LossFn) -> LossFn:
    """The mean loss ``loss`` names (:func:`umwelt.nn.losses.get_loss`), or ``loss`` itself."""
    return loss if callable(loss) else get_loss(loss)


def _check_data(X: torch.Tensor, y: torch.Tensor) -> int:
    """``n`` for inputs ``(n, ...)`` and labels ``(n,)``, else :class:`ShapeError`."""
    if X.ndim < 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise ShapeError(
            f"X must be (n, ...) and y (n,), got {tuple(X.shape)} and {tuple(y.shape)}"
        )
    if X.shape[0] == 0:
        raise ShapeError("the data set is empty")
    return X.shape[0]


def _output(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    f = model(x)
    return f[:, 0] if f.ndim == 2 else f  # (B,); a plain nn.Sequential gives (B, 1)


# -- the model's layers and gates -----------------------------------------------------------------


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The ``(name, module)`` of every ``nn.Linear`` and ``nn.Conv2d``, input side first."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear | nn.Conv2d)]


@contextlib.contextmanager
def using_generator(model: nn.Module, generator) -> Iterator[None]:
    """Draw the gates from ``generator`` inside the block; restore each gate's own after."""
    saved = [g.generator for g in model.gates]
    try:
        for g in model.gates:
            g.generator = generator
        yield
    finally:
        for g, s in zip(model.gates, saved, strict=True):
            g.generator = s
