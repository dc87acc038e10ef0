"""Standard small networks, each a named factory with a fixed seed.

Tests parametrize over these (see ``conftest.py``) so every property is checked on the same
shapes: shallow and deep, square and funnel-shaped.

* numpy: :data:`TINY_WIDTHS` (:class:`~umwelt.network.LayeredNetwork`), :func:`tiny_network`;
* torch (float64): :data:`TORCH_CASES`, factories ``seed -> (model, X, y)`` with data of a
  fixed small size, and :func:`torch_case`, which also gives each case's loss, batch size and
  numpy twin (a :class:`~umwelt.circuits.conv.ConvNetwork` with the same weights: the
  independent engine for the ReLU gates and the layer layout of hand-written oracles).

torch is imported by the torch factories only, so the numpy tests do not load it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from umwelt.network import LayeredNetwork

if TYPE_CHECKING:
    import torch

    from umwelt.circuits import ConvNetwork

# name -> widths (input first, output 1)
TINY_WIDTHS: dict[str, tuple[int, ...]] = {
    "2-2-1": (2, 2, 1),
    "5-5-1": (5, 5, 1),
    "3-4-3-1": (3, 4, 3, 1),
    "4-3-3-2-1": (4, 3, 3, 2, 1),
}


def tiny_network(name: str, seed: int = 0) -> LayeredNetwork:
    """He-normal network of the named tiny shape."""
    return LayeredNetwork.he_normal(TINY_WIDTHS[name], seed=seed)


def inputs(net: LayeredNetwork, batch: int = 3, seed: int = 1) -> np.ndarray:
    """Standard-normal inputs for ``net``, shape ``(batch, n_0)``."""
    return np.random.default_rng(seed).normal(size=(batch, net.widths[0]))


# -- torch cases ----------------------------------------------------------------------------------


def _data(
    n: int, shape: tuple[int, ...], seed: int, scale: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``scale``-normal inputs ``(n, *shape)`` and fair ±1 labels ``(n,)``, float64, from a CPU
    generator seeded ``seed + 1`` (the model takes ``seed``)."""
    import torch

    g = torch.Generator().manual_seed(seed + 1)
    X = scale * torch.randn(n, *shape, generator=g, dtype=torch.float64)
    y = torch.where(torch.rand(n, generator=g, dtype=torch.float64) < 0.5, -1.0, 1.0)
    return X, y.to(torch.float64)


def _mlp(widths: tuple[int, ...], T: float, n: int, scale: float):
    def make(seed: int):
        from umwelt.nn import GatedMLP

        net = LayeredNetwork.he_normal(widths, seed=seed)  # the numpy engine's draws
        model = GatedMLP.from_network(net, temperature=T, dtype=_f64())
        return (model, *_data(n, (widths[0],), seed, scale))

    return make


def _vgg(preset: str, T: float, n: int, scale: float):
    def make(seed: int):
        from umwelt.nn import build_model

        shape = (1, 32, 32)  # the smallest a VGG takes (five 2×2 poolings)
        model = build_model(
            preset, input_shape=shape, width=1 / 128, temperature=T, seed=seed, dtype=_f64()
        )
        return (model, *_data(n, shape, seed, scale))

    return make


def torch_conv_net(net: ConvNetwork, temperature: float, mode: str = "sample"):
    """The torch twin of a numpy :class:`~umwelt.circuits.conv.ConvNetwork` (float64): an
    ``nn.Sequential`` of bias-free ``Conv2d`` (padding ``k // 2``), :class:`~umwelt.nn.gate.Gate`,
    2×2 ``MaxPool2d`` where ``pool_after``, ``Flatten``, then gated ``Linear`` layers; output
    ``(B, 1)``. Not a GatedMLP/GatedVGG, so only the ``torch.func`` products apply to it."""
    import torch
    from torch import nn

    from umwelt.nn import Gate

    layers: list[nn.Module] = []
    for W, pool in zip(net.convs, net.pool_after):
        conv = nn.Conv2d(W.shape[1], W.shape[0], W.shape[2], padding=W.shape[2] // 2, bias=False)
        conv.to(torch.float64).weight.data.copy_(torch.as_tensor(W))
        layers += [conv, Gate(temperature, mode)] + ([nn.MaxPool2d(2)] if pool else [])
    layers.append(nn.Flatten())
    for m, W in enumerate(net.linears):
        lin = nn.Linear(W.shape[0], W.shape[1], bias=False).to(torch.float64)
        lin.weight.data.copy_(torch.as_tensor(W.T))
        layers += [lin] + ([Gate(temperature, mode)] if m < len(net.linears) - 1 else [])
    return nn.Sequential(*layers)


# the numpy tiny conv net of the torch conv case (umwelt.circuits.tiny_conv_network's keywords)
CONV_CASE_NET = dict(input_shape=(2, 4, 4), channels=(2, 2), pool_after=(False, True), hidden=(3,))


def _conv(T: float, n: int, scale: float):
    def make(seed: int):
        from umwelt.circuits import tiny_conv_network

        net = tiny_conv_network(seed, **CONV_CASE_NET)
        return (torch_conv_net(net, T), *_data(n, net.input_shape, seed, scale))

    return make


def _f64():
    import torch

    return torch.float64


class _Entry(NamedTuple):
    factory: Callable[[int], tuple[Any, Any, Any]]
    loss: str  # the case's own loss (tests may take every loss)
    batch_size: int  # unequal batches (n no multiple of it) but for one VGG: torch.func's cost
    gated: bool  # whether ModelHessian(ad="gated") applies (a GatedMLP/GatedVGG, fixed gates)


# name -> entry. N = 59, 55, 612, 614, 99 weights; data n = 7, 7, 5, 5, 6 (input scales chosen so
# that at seed 0 the hinge is active on some examples and, but for one case, not on others).
_TORCH: dict[str, _Entry] = {
    "mlp-4-6-5-1-T0": _Entry(_mlp((4, 6, 5, 1), 0.0, 7, 1.0), "hinge", 4, True),
    "mlp-4-5-4-3-1-T0.5": _Entry(_mlp((4, 5, 4, 3, 1), 0.5, 7, 2.0), "logistic", 4, True),
    "vgg11-w128-T0": _Entry(_vgg("vgg11", 0.0, 5, 2.0), "hinge", 3, True),
    "vgg12-w128-T0.5": _Entry(_vgg("vgg12", 0.5, 5, 2.0), "logistic", 5, True),
    "conv-2x4x4-T0.7": _Entry(_conv(0.7, 6, 1.0), "hinge", 4, False),
}

#: name -> factory ``seed -> (model, X, y)``, float64
TORCH_CASES: dict[str, Callable[[int], tuple[Any, Any, Any]]] = {
    k: e.factory for k, e in _TORCH.items()
}


def ad_modes(name: str) -> tuple[str, ...]:
    """The ``ModelHessian(ad=...)`` modes that apply to the named case: ``"gated"`` (a gated
    MLP/VGG with fixed gates) where it does, the ``torch.func`` ones always."""
    return ("gated",) * _TORCH[name].gated + ("fwd-over-rev", "rev-over-fwd")


@dataclass(frozen=True, eq=False)
class TorchCase:
    """One torch case, built.

    Attributes:
        name: its key in :data:`TORCH_CASES`.
        seed: the seed it was built with.
        model: the float64 model, ``(B, ...) -> (B,)`` or ``(B, 1)``.
        X: inputs ``(n, ...)``.
        y: labels ``(n,)`` in ``{-1, +1}``.
        loss: the case's own loss name.
        batch_size: the operator's batch size for it.
        gated: whether ``ad="gated"`` applies.
        twin: the numpy :class:`~umwelt.circuits.conv.ConvNetwork` with the same weights.
    """

    name: str
    seed: int
    model: Any
    X: Any
    y: Any
    loss: str
    batch_size: int
    gated: bool
    twin: Any

    @property
    def temperature(self) -> float:
        """The temperature of the case's gates (all equal)."""
        from umwelt.nn import Gate

        (T,) = {g.temperature for g in self.model.modules() if isinstance(g, Gate)}
        return T


def torch_case(name: str, seed: int = 0) -> TorchCase:
    """Build the named torch case (:data:`TORCH_CASES`) with ``seed``."""
    from umwelt.circuits import ConvNetwork, tiny_conv_network

    e = _TORCH[name]
    model, X, y = e.factory(seed)
    if e.gated:
        twin = ConvNetwork.from_torch(model)
    else:
        twin = tiny_conv_network(seed, **CONV_CASE_NET)
    return TorchCase(name, seed, model, X, y, e.loss, e.batch_size, e.gated, twin)


# -- run directories ------------------------------------------------------------------------------

#: a tiny umwelt train run's settings (hinge, T = 0; seconds)
TINY_TRAIN = {
    "model": "mlp:6,4",
    "dataset": "teacher:n=60,dim=5,n_test=20",
    "epochs": 1,
    "batch_size": 16,
    "lr": 0.05,
    "eval_batch_size": 64,
}
#: Hessian settings that keep an analysis of it to about a second
TINY_HESSIAN = {"start_vectors": 4, "bootstrap": 40, "grid_points": 101, "entries": 0}


def tiny_train_run(out, **changes):
    """A :data:`TINY_TRAIN` run of ``umwelt train`` (with ``changes``) in ``out``; its dir."""
    from sim.train import TrainConfig
    from sim.train import run as train

    cfg = TrainConfig(**{**TINY_TRAIN, "observe_at": (0,), **changes, "out": out})
    return train(cfg, figures=False).run_dir
