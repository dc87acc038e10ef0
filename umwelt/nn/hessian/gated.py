r"""Hessian-vector products of a gated net with its gates held fixed, written out by hand.

With the gates held fixed (the M-step, THEORY.md §2), every hidden layer of a
:class:`~umwelt.nn.mlp.GatedMLP` or :class:`~umwelt.nn.vgg.GatedVGG` is linear in its input,

.. math::
    z_l = W_l * a_{l-1}, \qquad x_l = h_l \odot z_l, \qquad a_l = \mathrm{pool}(x_l),
    \qquad f = z_L,

with :math:`*` a bias-free convolution or linear map, :math:`h_l` a constant (the ReLU gates
:math:`1[z_l > 0]` at :math:`T = 0` and in ``"relu"`` mode, a stored sample at :math:`T > 0`,
:math:`1/2` for mean-field gates at :math:`T = \infty`) and ``pool`` a 2×2 max-pooling whose
choice of maxima is also held fixed. So :math:`f` is multilinear in the weights (THEORY.md §3)
and, with :math:`c_i = w_i \ell'_i` and :math:`d_i = w_i \ell''_i`,

.. math::
    Hv = \sum_i c_i\, \nabla_\theta (J_i v) + d_i\, (J_i v)\, \nabla_\theta f_i .

The first term is the circuit part (zero diagonal, THEORY.md §3), the second the Gauss–Newton
part. :math:`\ell'` and :math:`\ell''` are taken per example by autograd of the named loss
(:mod:`~umwelt.nn.losses`). With :math:`u_i = 1 - y_i f_i`: for the hinge :math:`c_i = -w_i y_i`
on the active examples and :math:`d_i = 0`; for the quadratic hinge :math:`c_i = -w_i y_i u_i`
and :math:`d_i = w_i` where :math:`u_i > 0`, both 0 elsewhere; for the logistic loss both are
non-zero everywhere.

The product is forward-over-reverse, by hand: the tangent pass and the adjoint pass of the
tangent,

.. math::
    \dot z_l = W_l * \dot a_{l-1} + V_l * a_{l-1}, \qquad
    \dot\delta_{l-1} = h_{l-1} \odot \mathrm{pool}^\top
        \big(W_l^\top \dot\delta_l + V_l^\top \delta_l\big), \qquad
    (Hv)_l = \dot\delta_l \otimes a_{l-1} + \delta_l \otimes \dot a_{l-1},

started from :math:`\dot a_0 = 0` and :math:`\dot\delta_L = d \odot \dot f`, where
:math:`\delta_l = \partial (c \cdot f) / \partial z_l` is the adjoint of the primal pass and
:math:`\otimes` the weight gradient of layer :math:`l` (``conv2d_weight``, or an outer product).

**The primal pass does not depend on** :math:`v`: the inputs :math:`a_{l-1}`, the gates, the
pooling choices, the adjoints :math:`\delta_l` and :math:`d` are computed once per batch and
kept (within a memory budget) for every later product at the same parameters. A product then
costs six convolution-sized operations per layer (:math:`W \dot a`, :math:`V a`,
:math:`W^\top \dot\delta`, :math:`V^\top \delta` and two weight gradients), against three for a
gradient, eight for ``torch.func``'s forward-over-reverse, which recomputes the primal pass and
the primal adjoint every time, and about nine for a double backward; nor is a max-pooling
recomputed (on CPU as dear as a convolution). Examples with :math:`c_i = d_i = 0` — an
inactive hinge or a satisfied quadratic hinge (:math:`y_i f_i \ge 1`), or a zero weight — have
no share in :math:`H` and are left out of the kept pass. On ``vgg12`` (one CPU thread, batch 32,
all examples with a share) a product measured 1.7 gradients at width 1/4 and 2.0 at full width,
against 2.8–3.3 for ``torch.func`` and 3.0–3.3 for a double backward.

The product is the same Hessian as :class:`~umwelt.nn.hessian.ModelHessian`'s other modes (to
round-off): the ReLU's second derivative and the hinge's vanish almost everywhere, the
quadratic hinge's is the step :math:`1[u_i > 0]` as autograd takes it, and the pooling and the
gates take the branches autograd takes. It applies only to the models whose forward pass it
knows (:func:`gated_layers` says why not, otherwise): a
:class:`~umwelt.nn.mlp.GatedMLP` (also :class:`~umwelt.nn.models.FlatMLP`) or a
:class:`~umwelt.nn.vgg.GatedVGG` whose forward is not overridden, every weight trainable and
nothing else, and gates that are fixed factors — not mean-field gates at :math:`0 < T < \infty`,
whose smooth :math:`z\,\sigma(z/T)` has a second derivative.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from umwelt.nn.gate import Gate
from umwelt.nn.hessian.base import Batch
from umwelt.nn.losses import LossFn
from umwelt.nn.mlp import GatedMLP
from umwelt.nn.models import FlatMLP
from umwelt.nn.vgg import GatedVGG

__all__ = ["DEFAULT_CACHE_BYTES", "GatedLayer", "GatedProducts", "gated_layers"]

DEFAULT_CACHE_BYTES = 2**30  # primal passes kept per operator (1 GiB), batch by batch

_aten = torch.ops.aten
_POOL = ([2, 2], [2, 2], [0, 0], [1, 1], False)  # F.max_pool2d(a, 2): kernel, stride, pad, dil


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


# -- the layer maps ---------------------------------------------------------------------------


def _forward(layer: GatedLayer, a: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    if layer.conv is None:
        return F.linear(a, W)  # (B, n_out)
    return F.conv2d(a, W, None, *layer.conv)  # (B, c_out, h, w)


def _backward(
    layer: GatedLayer, g: torch.Tensor, a: torch.Tensor, W: torch.Tensor, mask: list[bool]
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``(Wᵀ g, g ⊗ a)`` of ``z = W * a``, each only where ``mask`` asks for it."""
    if layer.conv is None:
        return (g @ W if mask[0] else None), (g.T @ a if mask[1] else None)
    stride, padding, dilation, groups = layer.conv
    out = _aten.convolution_backward(
        g, a, W, None, stride, padding, dilation, False, [0, 0], groups, [*mask, False]
    )
    return out[0], out[1]


@dataclass
class _Primal:
    """The v-independent part of a batch's products (see the module docstring)."""

    inputs: list[torch.Tensor]  # a_{l-1} as layer l reads it
    gates: list[torch.Tensor | float | None]  # h_l; at the maxima after a pooling
    argmax: list[torch.Tensor | None]  # the pooling's choices
    shapes: list[tuple[int, ...] | None]  # x_l's shape before the pooling
    flat_from: list[tuple[int, ...] | None]  # a_{l-1}'s shape before layer l flattens it
    adjoints: list[torch.Tensor | None]  # δ_l = ∂(c·f)/∂z_l, l ≥ 1
    curvature: torch.Tensor | None  # d = w ℓ''(f), (B,); None when it is 0
    nbytes: int


class GatedProducts:
    r"""Fixed-gate products :math:`Hv` of one model's risk, batch by batch, with a cache.

    Args:
        model: the model (:func:`gated_layers` must accept it).
        layers: its :func:`gated_layers`.
        loss: per-example losses ``(f, y) -> (B,)``; each :math:`\ell_i` must depend on
            :math:`f_i` only (:math:`c` and :math:`d` are taken elementwise).
        cache_bytes: the most memory the kept primal passes may take, in bytes; batches are kept
            in the order they are first met while they fit (0: keep none).
    """

    def __init__(
        self,
        model: nn.Module,
        layers: tuple[GatedLayer, ...],
        loss: LossFn,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ):
        self.layers = layers
        self.cache_bytes = cache_bytes
        if isinstance(model, GatedVGG):
            self._prepare: Callable[[torch.Tensor], torch.Tensor] = _checked(model)
        elif isinstance(model, FlatMLP):
            self._prepare = model._flat
        else:
            self._prepare = _identity
        self._loss = loss
        self._cache: dict[tuple[int, int], _Primal] = {}
        self._stamp: tuple[int, ...] | None = None

    @property
    def cached_bytes(self) -> int:
        """Memory held by the kept primal passes, in bytes."""
        return sum(p.nbytes for p in self._cache.values())

    def primal(self, params: dict[str, torch.Tensor], batch: Batch) -> _Primal:
        """The batch's primal pass: kept, or computed (and kept if it fits the budget).

        Kept passes are dropped when a parameter has changed in place since (its version).
        """
        stamp = tuple(p._version for p in params.values())
        if stamp != self._stamp:
            self._cache.clear()
            self._stamp = stamp
        key = (batch.index.start, batch.index.stop)
        p = self._cache.get(key)
        if p is None:
            p = self._primal(params, batch)
            if self.cached_bytes + p.nbytes <= self.cache_bytes:
                self._cache[key] = p
        return p

    @torch.no_grad()
    def _primal(self, params: dict[str, torch.Tensor], batch: Batch) -> _Primal:
        L = len(self.layers)
        inputs, gates, argmax, shapes, flat_from = [], [], [], [], []
        a = self._prepare(batch.x)
        for layer in self.layers:
            W = params[layer.name]
            flat_from.append(a.shape if layer.flatten else None)
            if layer.flatten:
                a = a.flatten(1)  # (B, c·h·w)
            inputs.append(a)
            z = _forward(layer, a, W)
            h: torch.Tensor | float | None = None
            if layer.gate == "relu":
                h = (z > 0).to(z.dtype)
            elif layer.gate == "sample":
                h = batch.masks[layer.mask].to(z.dtype)
            elif layer.gate == "half":
                h = 0.5
            x = z if h is None else z * h  # x = dg(h) z
            idx = shape = None
            if layer.pool:
                shape = x.shape
                x, idx = F.max_pool2d(x, 2, return_indices=True)  # (B, c, h/2, w/2)
                if isinstance(h, torch.Tensor):
                    h = _at(h, idx)  # the gates at the maxima
            gates.append(h)
            argmax.append(idx)
            shapes.append(shape)
            a = x
        f = a[:, 0]  # (B,)
        c, d = self._loss_derivatives(f, batch)
        keep = (c != 0) | ~torch.isfinite(f)  # a NaN must still reach the product
        if d is not None:
            keep |= d != 0
        if not bool(keep.all()):  # e.g. inactive hinges: no share in H, dropped
            rows = keep.nonzero()[:, 0]
            inputs, c = [t[rows] for t in inputs], c[rows]
            d = None if d is None else d[rows]
            gates = [h[rows] if isinstance(h, torch.Tensor) else h for h in gates]
            argmax = [None if i is None else i[rows] for i in argmax]
            shapes = [None if t is None else (len(rows), *t[1:]) for t in shapes]
            flat_from = [None if t is None else (len(rows), *t[1:]) for t in flat_from]
        adjoints: list[torch.Tensor | None] = [None] * L  # δ_0 is not needed (ȧ_0 = 0)
        dz = c[:, None]  # (B, 1)
        for l in range(L - 1, 0, -1):
            adjoints[l] = dz
            if l > 1:
                layer = self.layers[l]
                g, _ = _backward(layer, dz, inputs[l], params[layer.name], [True, False])
                dz = _through_gate(l - 1, g, gates, argmax, shapes, flat_from)
        held = [*inputs, *adjoints, *gates, *argmax, d]
        nbytes = sum(t.numel() * t.element_size() for t in held if isinstance(t, torch.Tensor))
        return _Primal(inputs, gates, argmax, shapes, flat_from, adjoints, d, nbytes)

    def _loss_derivatives(
        self, f: torch.Tensor, batch: Batch
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:math:`c = w\\ell'(f)` and :math:`d = w\\ell''(f)` (``None`` when it is 0), by
        autograd of the per-example loss: any loss of :math:`f_i` alone (hinge, quadratic hinge,
        logistic or a callable)."""
        fq = f.detach().requires_grad_()
        with torch.enable_grad():
            risk = (batch.w * self._loss(fq, batch.y)).sum()
            (c,) = torch.autograd.grad(risk, fq, create_graph=True)
            d = None
            if c.requires_grad:
                (d,) = torch.autograd.grad(c.sum(), fq, allow_unused=True)
        if d is not None and not bool(d.any()):
            d = None
        return c.detach(), d

    @torch.no_grad()
    def product(
        self, primal: _Primal, params: dict[str, torch.Tensor], V: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        r"""This batch's share of :math:`Hv`, per parameter, for ``V`` (``v`` by name)."""
        P, layers = primal, self.layers
        if P.inputs[0].shape[0] == 0:  # no example with a share in H
            return {layer.name: torch.zeros_like(params[layer.name]) for layer in layers}
        tangents: list[torch.Tensor | None] = []
        ad: torch.Tensor | None = None  # ȧ_{l-1}
        for l, layer in enumerate(layers):
            W, Vl = params[layer.name], V[layer.name]
            if layer.flatten and ad is not None:
                ad = ad.flatten(1)
            tangents.append(ad)
            zd = _forward(layer, P.inputs[l], Vl)  # V a
            if ad is not None:
                zd = zd + _forward(layer, ad, W)  # + W ȧ
            idx, h = P.argmax[l], P.gates[l]
            if idx is not None:
                zd = _at(zd, idx)
            ad = zd if h is None else zd * h
        fd = ad[:, 0]  # (B,) J v
        dzd = (fd * P.curvature if P.curvature is not None else torch.zeros_like(fd))[:, None]
        out: dict[str, torch.Tensor] = {}
        for l in range(len(layers) - 1, -1, -1):
            layer = layers[l]
            W, Vl, a, ad = params[layer.name], V[layer.name], P.inputs[l], tangents[l]
            g, gw = _backward(layer, dzd, a, W, [l > 0, True])  # Wᵀ δ̇, δ̇ ⊗ a
            if ad is not None:
                gw = gw + _backward(layer, P.adjoints[l], ad, W, [False, True])[1]  # δ ⊗ ȧ
            out[layer.name] = gw
            if l > 0:
                g = g + _backward(layer, P.adjoints[l], a, Vl, [True, False])[0]  # Vᵀ δ
                dzd = _through_gate(l - 1, g, P.gates, P.argmax, P.shapes, P.flat_from)
        return out


def _through_gate(
    l: int,
    g: torch.Tensor,
    gates: Sequence[torch.Tensor | float | None],
    argmax: Sequence[torch.Tensor | None],
    shapes: Sequence[tuple[int, ...] | None],
    flat_from: Sequence[tuple[int, ...] | None],
) -> torch.Tensor:
    """The adjoint of :math:`z_l` from that of layer ``l + 1``'s input ``g``."""
    if flat_from[l + 1] is not None:
        g = g.reshape(flat_from[l + 1])  # (B, c, h, w)
    idx, h = argmax[l], gates[l]
    if h is not None:
        g = g * h  # after a pooling: the gates at the maxima
    if idx is None:
        return g
    return _aten.max_pool2d_with_indices_backward(g, g.new_empty(shapes[l]), *_POOL, idx)


def _at(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``t`` (B, c, h, w) at the pooling's choices ``idx`` (B, c, h/2, w/2)."""
    return t.flatten(2).gather(2, idx.flatten(2)).view(idx.shape)


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _checked(model: GatedVGG) -> Callable[[torch.Tensor], torch.Tensor]:
    def prepare(x: torch.Tensor) -> torch.Tensor:
        model._check_input(x)
        return x

    return prepare
