"""Which nets the fixed-gate products know: a gated MLP or VGG as a chain of
:class:`GatedLayer` s (:func:`gated_layers`), or why not."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from umwelt.nn.gate import Gate
from umwelt.nn.mlp import GatedMLP
from umwelt.nn.models import FlatMLP
from umwelt.nn.vgg import GatedVGG

__all__ = ["GatedLayer", "gated_layers"]


@dataclass(frozen=True)
class GatedLayer:
    """One weight layer of a gated net, as the product sees it.

    Attributes:
        name: the weight's parameter name (``named_parameters``).
        conv: ``(stride, padding, dilation, groups)`` of a convolution; ``None`` for a linear
            layer.
        gate: the fixed factor :math:`h` of the layer's output: ``"relu"`` (:math:`1[z > 0]`),
            ``"sample"`` (the stored gate sample number :attr:`mask`), ``"half"``
            (:math:`1/2`), or ``None`` (the output layer).
        mask: which of the operator's gate masks (``"sample"`` gates only).
        pool: a 2×2 max-pooling follows the gate.
        flatten: the layer's input is flattened to ``(B, -1)`` first.
    """

    name: str
    conv: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], int] | None
    gate: str | None
    mask: int | None = None
    pool: bool = False
    flatten: bool = False


def _gate_kind(gate: Gate, sampling: Sequence[Gate]) -> tuple[str, int | None] | str:
    if "forward" in gate.__dict__:
        return f"gate {gate} has a replaced forward"
    for k, g in enumerate(sampling):
        if g is gate:
            return "sample", k
    T = gate.temperature
    if gate.mode == "relu" or T == 0.0:
        return "relu", None
    if gate.mode == "mean" and math.isinf(T):
        return "half", None
    return f"{gate.mode!r} gates at T = {T:g} are not fixed factors (z σ(z/T) is smooth)"


def gated_layers(
    model: nn.Module, trainable: Sequence[str], sampling: Sequence[Gate] = ()
) -> tuple[GatedLayer, ...] | str:
    """The layers of ``model`` for the fixed-gate product, or why it does not apply.

    Args:
        model: the operator's model.
        trainable: names of the trainable parameters (the Hessian's coordinates).
        sampling: the gates held to a stored sample, in the order of the masks.

    Returns:
        One :class:`GatedLayer` per weight layer, input first; or a sentence saying why the
        model is not a gated net this product knows.

    >>> from umwelt.nn import build_mlp
    >>> m = build_mlp((3, 2, 1), temperature=0.0, seed=0)
    >>> names = ["linears.0.weight", "linears.1.weight"]
    >>> [(layer.name, layer.gate) for layer in gated_layers(m, names)]
    [('linears.0.weight', 'relu'), ('linears.1.weight', None)]
    >>> gated_layers(m.set_mode("mean").set_temperature(0.5), names)
    "'mean' gates at T = 0.5 are not fixed factors (z σ(z/T) is smooth)"
    """
    kind = type(model).forward
    if kind is GatedVGG.forward:
        mods: list[nn.Module] = [*model.convs, *model.linears]
        pools = [*model._pool_after, *([False] * len(model.linears))]
    elif kind in (GatedMLP.forward, FlatMLP.forward):
        mods = list(model.linears)
        pools = [False] * len(mods)
    else:
        return f"{type(model).__name__} is not a GatedMLP or GatedVGG (its own forward)"
    if len(model.gates) != len(mods) - 1:
        return f"{len(model.gates)} gates for {len(mods)} weight layers"
    names = {id(p): k for k, p in model.named_parameters()}
    weights = [m.weight for m in mods]
    if any(getattr(m, "bias", None) is not None for m in mods):
        return "a weight layer has a bias"
    if sorted(names[id(w)] for w in weights) != sorted(trainable):
        return "the trainable parameters are not exactly the weight layers' weights"
    layers = []
    for l, (m, pool) in enumerate(zip(mods, pools, strict=True)):
        conv = None
        if isinstance(m, nn.Conv2d):
            if m.padding_mode != "zeros" or isinstance(m.padding, str):
                return f"convolution {l} pads with {m.padding_mode!r}/{m.padding!r}"
            conv = (tuple(m.stride), tuple(m.padding), tuple(m.dilation), m.groups)
        elif not isinstance(m, nn.Linear):
            return f"weight layer {l} is a {type(m).__name__}"
        gate, mask = None, None
        if l < len(mods) - 1:
            g = _gate_kind(model.gates[l], sampling)
            if isinstance(g, str):
                return g
            gate, mask = g
        flatten = isinstance(model, GatedVGG) and l == len(model.convs)
        layers.append(GatedLayer(names[id(m.weight)], conv, gate, mask, pool, flatten))
    return tuple(layers)
