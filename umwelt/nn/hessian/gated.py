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

**Block products.** :meth:`GatedProducts.product` takes ``k`` vectors in one tangent and one
adjoint pass: the primal pass is shared, the tangents are ``(B, k, ...)`` tensors, and each
term of a layer is one call for all ``k`` — :math:`V a` one convolution (or matmul) with the
``k`` weights stacked along the output channels, :math:`W \dot a` and
:math:`W^\top \dot\delta` one call with the ``k`` tangents stacked along the batch,
:math:`V^\top \delta` one call with the ``k`` weights side by side along the input channels,
:math:`\dot\delta \otimes a` and :math:`\delta \otimes \dot a` one weight gradient each with
the ``k`` adjoints (tangents) stacked along the channels. The gates, the pooling choices and the
kept examples are those of the single product, so ``matmat`` equals the columns' products to
round-off. The arithmetic is that of ``k`` products — every term is linear in :math:`v` — so a
block is faster only where the library's kernels run faster on the wider calls. On a CPU in
float64 (what ``umwelt hessian`` takes up to 50,000 parameters) torch's convolutions loop over the
examples with one small GEMM each, and :class:`_SlowConvMaps` reshapes each map into fewer,
larger GEMMs. Measured on ``vgg12`` (512 CIFAR-10 images, one thread, CPU time;
``umwelt bench hessian``): ``matmat(8)`` is 2.1× faster than 8 products at width 1/8 (2.9×
faster than the 8 products before blocks, which took the library's calls) and 1.3–1.7× at width
1/4 (2.2×). In float32 (oneDNN) a block runs no faster — 0.94× at width 1/8, 0.92× at 1/4 and
0.56× at full width for ``k = 8`` — oneDNN's convolutions gaining nothing per operation on the
stacked inputs, so a float32 ``matmat`` on a CPU takes its columns one by one
(:meth:`GatedProducts.product_columns`). Every term's arithmetic is ``k``-fold, so a block can
gain only from faster kernels on its wider calls; two of a layer's six terms
(:math:`W \dot a`, :math:`W^\top \dot\delta`) have no shared operand at all and run as
``k`` products do. What float32 gains on a CPU is in the single product instead: oneDNN's
backward-data convolution on few channels is slower than its forward, so
:class:`_OneDnnMaps` takes :math:`W^\top g` as the forward convolution of the flipped kernel
(a product 0.80–0.85 of the library's calls).

**Memory of a block.** Beyond the kept primal passes a block of ``k`` vectors on a chunk of
``m`` examples holds ``k·(m·t + u)`` bytes (:meth:`GatedProducts.block_memory`): ``t``
(:attr:`_Primal.tangent_bytes`) the tangents of one example — its layer inputs and
:data:`_TRANSIENT` times its widest layer (the unfolded inputs and outputs of a map) — and
``u`` (:attr:`GatedProducts.vector_bytes`) :data:`_WEIGHT_COPIES` parameter-sized tensors,
constants measured as peak resident memory in fresh processes (the peaks came to 0.4–1.0 of
the bound; less after a warm-up, the allocator reusing what it freed). The
columns of a block (:meth:`GatedProducts.columns`, at most :data:`MAX_BLOCK`) and the examples
of a chunk (:meth:`GatedProducts.chunk_examples`, at most :data:`BLOCK_ROWS` ``// k``) keep it
within the cache setting (:attr:`GatedProducts.block_bytes`: ``cache_bytes``, at least
:data:`MIN_BLOCK_BYTES`); e.g. 379 MB for ``k = 16`` at width 1/8 in float64, against 1 GiB by
default (measured peak: 122 MB).

**Per-example entries.** The bootstrap of sampled entries (:mod:`~umwelt.nn.hessian.entries`)
needs :math:`c_{ijk} = \partial^2 \ell_i / \partial\theta_j \partial\theta_k` for every
example :math:`i`. :meth:`GatedProducts.example_entries` takes the passes of a block for the
columns' unit vectors :math:`e_k` on the *unweighted* primal pass (``primal(...,
weighted=False)``: :math:`c_i = \ell'_i`, :math:`d_i = \ell''_i`), and instead of summing the
weight gradients over the examples reads each example's requested rows off
:math:`\dot\delta \otimes a + \delta \otimes \dot a` (for a conv weight from a strided
view of the input's patches, gathered at the rows' input channels and kernel positions only).
With the columns in one layer :math:`m` most terms vanish and are skipped: the tangents below
:math:`m`, the adjoints above it when :math:`d = 0` (the hinge), the tangents above the highest
requested row and the adjoints below the lowest; and the unit vectors are not multiplied out
(:math:`e_k a` is a channel of the input's patches). What is left is about one convolution per
layer and column. Measured on ``vgg12`` at width 1/8 (512 CIFAR-10 images, float64, one
thread; ``sim.benchmarks.hessian_examples``): 0.27 ms per example and column for the hinge
(0.52 for the logistic loss, whose adjoints run from the output down), against 7.8 ms (9.0)
for ``torch.func``'s per-example products (``vmap`` over examples and columns): 29× (17×)
faster, equal to 1e-15.

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
from dataclasses import dataclass, replace

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
MIN_BLOCK_BYTES = 64 * 2**20  # a block product's tangents may always take this much (64 MiB)
MAX_BLOCK = 16  # vectors in one block pass, at most
BLOCK_ROWS = 256  # examples × vectors per chunk of a block pass, at most (cache-sized calls)
# a block's memory, measured (GatedProducts.block_memory): per example and vector, the tangents
# kept and about this many times the widest layer (the unfolded input of a convolution, its
# output, the adjoints); per vector, about this many parameter-sized tensors
_TRANSIENT = 14
_WEIGHT_COPIES = 6

_aten = torch.ops.aten


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
#
# A block product takes k vectors at once: tangents and their adjoints are (B, k, ...) tensors,
# contiguous, so that (B·k, c, h, w) — the k tangents stacked along the batch — and
# (B, k·c, h, w) — stacked along the channels — are views of the same memory; the weights of the
# k directions are (k, *W.shape).


class _Maps:
    r"""The three maps of a weight layer :math:`z = W * a`, each one library call: ``forward``
    :math:`W * a`, ``input_grad`` :math:`W^\top g`, ``weight_grad`` :math:`g \otimes a` (the
    gradient in :math:`W`). Subclasses choose other calls for the same maps where they are
    faster (:func:`_maps_for`); ``memo`` holds the flipped kernels of one product."""

    def __init__(self) -> None:
        self.memo: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]] = {}

    def forward(self, layer: GatedLayer, a: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
        if layer.conv is None:
            return F.linear(a, W)  # (B, n_out)
        return F.conv2d(a, W, None, *layer.conv)  # (B, c_out, h, w)

    def input_grad(
        self, layer: GatedLayer, g: torch.Tensor, W: torch.Tensor, shape: Sequence[int]
    ) -> torch.Tensor:
        """``Wᵀ g`` of ``z = W * a`` (``shape``: ``a``'s)."""
        if layer.conv is None:
            return g @ W  # (B, n_in)
        return _conv_backward(layer, g, g.new_empty(shape), W, True)

    def weight_grad(
        self, layer: GatedLayer, g: torch.Tensor, a: torch.Tensor, shape: Sequence[int]
    ) -> torch.Tensor:
        """``g ⊗ a`` (``shape``: ``W``'s)."""
        if layer.conv is None:
            return g.T @ a  # (n_out, n_in)
        return _conv_backward(layer, g, a, g.new_empty(shape), False)

    def flipped(self, W: torch.Tensor) -> torch.Tensor:
        """The kernel of the transposed convolution, ``(c_in, c_out, kh, kw)``."""
        return self._kept(W, "flipped", lambda: W.flip(-2, -1).transpose(0, 1).contiguous())

    def _kept(self, W: torch.Tensor, kind: str, make: Callable[[], torch.Tensor]) -> torch.Tensor:
        """``make()``, a function of the kernel ``W``, kept in :attr:`memo` for the product's
        duration."""
        hit = self.memo.get((id(W), kind))
        if hit is None or hit[0] is not W:
            hit = (W, make())
            self.memo[(id(W), kind)] = hit
        return hit[1]


def _conv_backward(
    layer: GatedLayer, g: torch.Tensor, a: torch.Tensor, W: torch.Tensor, to_input: bool
) -> torch.Tensor:
    stride, padding, dilation, groups = layer.conv
    mask = [to_input, not to_input, False]
    out = _aten.convolution_backward(
        g, a, W, None, stride, padding, dilation, False, [0, 0], groups, mask
    )
    return out[0] if to_input else out[1]


class _SlowConvMaps(_Maps):
    r"""Float64 on a CPU, where torch has no oneDNN kernels and a convolution loops over the
    examples, each one GEMM (``_slow_conv2d``): the GEMM's rows are the output channels of a
    forward convolution and of a weight gradient's ``g``, and few rows run slowly. For a
    "same" convolution (stride 1, no dilation or groups, padding ``(k - 1)/2``), measured on
    ``vgg12`` (at width 1/8 one product then costs 0.65 of the library's calls, one vector of a
    block of 8 0.35):

    * ``forward`` with fewer than :data:`_WIDE` output channels is the transposed convolution
      of the flipped kernel (``9 c_out`` rows); ``input_grad`` is the forward convolution of
      the flipped kernel (so the same rule applies to it);
    * ``weight_grad`` with fewer channels in ``g`` than in ``a`` is taken with their roles
      exchanged (the gradient of the transposed convolution, flipped);
    * where the result has at least :data:`_UNFOLD` × its positions per channel channels
      (the last layers, and the ``k`` stacked vectors), a map is one GEMM over the whole batch
      on the unfolded input (``im2col``), not one per example.
    """

    def forward(self, layer: GatedLayer, a: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
        if not _same(layer, W.shape[2:]):
            return super().forward(layer, a, W)
        B, _, h, w = a.shape
        if _unfolded(h * w, W.shape[0]):
            rows = self._kept(W, "rows", lambda: W.permute(0, 2, 3, 1).reshape(W.shape[0], -1))
            z = _unfold(a, W.shape[2:]) @ rows.T  # (B·h·w, kh·kw·c_in) @ (., c_out)
            return z.view(B, h, w, -1).permute(0, 3, 1, 2).contiguous()
        if W.shape[0] >= _WIDE:
            return super().forward(layer, a, W)
        like = a.new_empty(B, W.shape[0], h, w)
        return _conv_backward(layer, a, like, self.flipped(W), True)

    def input_grad(
        self, layer: GatedLayer, g: torch.Tensor, W: torch.Tensor, shape: Sequence[int]
    ) -> torch.Tensor:
        if not _same(layer, W.shape[2:]):
            return super().input_grad(layer, g, W, shape)
        if W.shape[1] < _WIDE and not _unfolded(g.shape[2] * g.shape[3], W.shape[1]):
            return super().input_grad(layer, g, W, shape)  # (the transposed path of forward)
        return self.forward(layer, g, self.flipped(W))

    def weight_grad(
        self, layer: GatedLayer, g: torch.Tensor, a: torch.Tensor, shape: Sequence[int]
    ) -> torch.Tensor:
        if not _same(layer, shape[2:]):
            return super().weight_grad(layer, g, a, shape)
        c_out, h, w = g.shape[1:]
        if c_out < a.shape[1]:  # the roles exchanged: the gradient of the transposed map
            swapped = (shape[1], shape[0], *shape[2:])
            return self.weight_grad(layer, a, g, swapped).flip(-2, -1).transpose(0, 1)
        if not _unfolded(h * w, c_out):
            return super().weight_grad(layer, g, a, shape)
        cols = _unfold(a, shape[2:])  # (B·h·w, kh·kw·c_in)
        gw = g.transpose(0, 1).reshape(c_out, -1) @ cols  # (c_out, kh·kw·c_in)
        return gw.view(c_out, *shape[2:], shape[1]).permute(0, 3, 1, 2)


class _OneDnnMaps(_Maps):
    r"""Float32 (or any dtype but float64) on a CPU, where torch's convolutions are oneDNN's:
    ``input_grad`` of a "same" convolution is the forward convolution of the flipped kernel
    (:math:`W^\top g = \tilde W * g`), oneDNN's backward-data on NCHW tensors with few channels
    running 2–5× slower than its forward (measured on ``vgg12`` at width 1/8, one thread: 37 ms
    against 15 ms for 256 images of 8 channels at 32×32). A product so costs 0.80–0.85 of the
    library's calls at widths 1/8 and 1/4 (``umwelt bench hessian``)."""

    def input_grad(
        self, layer: GatedLayer, g: torch.Tensor, W: torch.Tensor, shape: Sequence[int]
    ) -> torch.Tensor:
        if not _same(layer, W.shape[2:]):
            return super().input_grad(layer, g, W, shape)
        return F.conv2d(g, self.flipped(W), None, 1, layer.conv[1])


_WIDE = 64  # output channels from which _slow_conv2d's forward is as fast as the transposed path
_UNFOLD = 16  # channels per position from which one GEMM on the unfolded batch is faster


def _unfolded(positions: int, channels: int) -> bool:
    """Whether a map to ``channels`` channels of ``positions`` positions is one GEMM on the
    unfolded input (the unfolding costs a copy of the input ``kh·kw`` times, the GEMM ``channels``
    times as much)."""
    return channels >= _UNFOLD * positions


def _same(layer: GatedLayer, kernel: Sequence[int]) -> bool:
    """A "same" convolution with ``kernel``: stride 1, no dilation, one group, padding
    ``(k - 1)/2``."""
    if layer.conv is None:
        return False
    stride, padding, dilation, groups = layer.conv
    return (
        groups == 1
        and all(s == 1 for s in stride)
        and all(d == 1 for d in dilation)
        and all(2 * p == k - 1 for p, k in zip(padding, kernel, strict=True))
    )


def _unfold(a: torch.Tensor, kernel: Sequence[int]) -> torch.Tensor:
    """``a`` ``(B, c, h, w)`` unfolded for a same convolution with ``kernel`` ``(kh, kw)``:
    ``(B·h·w, kh·kw·c)``, row ``(b, y, x)`` the patch at ``(y, x)`` (channels innermost)."""
    B, c, h, w = a.shape
    kh, kw = kernel
    ph, pw = (kh - 1) // 2, (kw - 1) // 2
    ap = F.pad(a.permute(0, 2, 3, 1), (0, 0, pw, pw, ph, ph))  # (B, h + 2ph, w + 2pw, c)
    s = ap.stride()
    patches = ap.as_strided((B, h, w, kh, kw, c), (s[0], s[1], s[2], s[1], s[2], s[3]))
    return patches.reshape(B * h * w, kh * kw * c)


def _maps_for(dtype: torch.dtype, device: torch.device) -> _Maps:
    """The maps of a product of ``dtype`` on ``device``: :class:`_SlowConvMaps` for float64 on
    a CPU, :class:`_OneDnnMaps` for the other dtypes on a CPU, else the library's own calls."""
    if device.type == "cpu":
        return _SlowConvMaps() if dtype == torch.float64 else _OneDnnMaps()
    return _Maps()


def _by_channels(t: torch.Tensor) -> torch.Tensor:
    """``(B, k, c, ...)`` as ``(B, k·c, ...)`` (a view)."""
    return t.view(t.shape[0], t.shape[1] * t.shape[2], *t.shape[3:])


def _by_batch(t: torch.Tensor) -> torch.Tensor:
    """``(B, k, c, ...)`` as ``(B·k, c, ...)`` (a view)."""
    return t.view(t.shape[0] * t.shape[1], *t.shape[2:])


def _side_by_side(Vl: torch.Tensor) -> torch.Tensor:
    """The ``k`` weights ``(k, c_out, c_in, ...)`` side by side along the input channels:
    ``(c_out, k·c_in, ...)``, so that one product with them maps ``(B, k·c_in, ...)`` to
    ``(B, c_out, ...)`` and its transpose ``δ`` to all ``V_jᵀ δ`` at once."""
    k, c_out, c_in = Vl.shape[:3]
    return Vl.transpose(0, 1).reshape(c_out, k * c_in, *Vl.shape[3:])


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
    tangent_bytes: int  # a block's memory per example and vector (GatedProducts.block_memory)
    size: int = 0  # examples of the batch, kept or not
    kept: torch.Tensor | None = None  # their positions in the batch (None: all, in order)
    bad: torch.Tensor | None = None  # positions in the batch whose f, ℓ' or ℓ'' is not finite

    @property
    def n(self) -> int:
        """Examples kept (those with a share in :math:`H`)."""
        return self.inputs[0].shape[0]

    @property
    def positions(self) -> torch.Tensor:
        """The kept examples' positions in the batch, ``(n,)`` int64."""
        if self.kept is not None:
            return self.kept
        return torch.arange(self.n, device=self.inputs[0].device)

    def rows(self, start: int, stop: int) -> _Primal:
        """The kept pass of examples ``start:stop`` (views, no copy)."""
        sl = slice(start, stop)
        n = len(range(*sl.indices(self.n)))

        def cut(t):
            return t[sl] if isinstance(t, torch.Tensor) else t

        def resized(shape):
            return None if shape is None else (n, *shape[1:])

        return _Primal(
            inputs=[cut(t) for t in self.inputs],
            gates=[cut(h) for h in self.gates],
            argmax=[cut(i) for i in self.argmax],
            shapes=[resized(t) for t in self.shapes],
            flat_from=[resized(t) for t in self.flat_from],
            adjoints=[cut(t) for t in self.adjoints],
            curvature=cut(self.curvature),
            nbytes=0,
            tangent_bytes=self.tangent_bytes,
            size=n,
            kept=self.positions[sl],
        )


class GatedProducts:
    r"""Fixed-gate products :math:`HV` of one model's risk, batch by batch, with a cache.

    Args:
        model: the model (:func:`gated_layers` must accept it).
        layers: its :func:`gated_layers`.
        loss: per-example losses ``(f, y) -> (B,)``; each :math:`\ell_i` must depend on
            :math:`f_i` only (:math:`c` and :math:`d` are taken elementwise).
        cache_bytes: the most memory the kept primal passes may take, in bytes; batches are kept
            in the order they are first met while they fit (0: keep none). A block product's
            tangents take at most as much again (:meth:`columns`, :meth:`chunk_examples`),
            at least those of one vector on one example.
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
        p = next(model.parameters())
        self._maps = _maps_for(p.dtype, p.device)
        # blocks pay where the stacked calls run faster: float64 on a CPU (_SlowConvMaps) and,
        # unmeasured, CUDA; not oneDNN's float32 on a CPU (product_columns)
        self._stacks = p.device.type != "cpu" or p.dtype == torch.float64
        params = dict(model.named_parameters())
        self._weight_bytes = sum(params[lay.name].numel() for lay in layers) * p.element_size()
        self._cache: dict[tuple[int, int], _Primal] = {}
        self._stamp: tuple[int, ...] | None = None

    @property
    def cached_bytes(self) -> int:
        """Memory held by the kept primal passes, in bytes."""
        return sum(p.nbytes for p in self._cache.values())

    @property
    def vector_bytes(self) -> int:
        """A block's memory per vector that does not grow with the examples: about
        :data:`_WEIGHT_COPIES` parameter-sized tensors (the vector, its weights stacked and
        flipped, the result and its terms)."""
        return _WEIGHT_COPIES * self._weight_bytes

    @property
    def block_bytes(self) -> int:
        """The most memory a block product's tangents may take: :attr:`cache_bytes`, at least
        :data:`MIN_BLOCK_BYTES`."""
        return max(self.cache_bytes, MIN_BLOCK_BYTES)

    def primal(
        self, params: dict[str, torch.Tensor], batch: Batch, *, weighted: bool = True
    ) -> _Primal:
        r"""The batch's primal pass: kept, or computed (and kept if it fits the budget).

        Kept passes are dropped when a parameter has changed in place since (its version).
        ``weighted=False``: the pass of the unweighted losses (:math:`c = \ell'`,
        :math:`d = \ell''`, every :math:`w_i` taken as 1), for per-example products
        (:meth:`example_entries`); kept alongside the weighted one.
        """
        stamp = tuple(p._version for p in params.values())
        if stamp != self._stamp:
            self._cache.clear()
            self._stamp = stamp
        key = (batch.index.start, batch.index.stop, weighted)
        p = self._cache.get(key)
        if p is None:
            if not weighted:
                batch = replace(batch, w=torch.ones_like(batch.w))
            p = self._primal(params, batch)
            if self.cached_bytes + p.nbytes <= self.cache_bytes:
                self._cache[key] = p
        return p

    @torch.no_grad()
    def _primal(self, params: dict[str, torch.Tensor], batch: Batch) -> _Primal:
        L = len(self.layers)
        inputs, gates, argmax, shapes, flat_from = [], [], [], [], []
        a = self._prepare(batch.x)
        B = max(a.shape[0], 1)
        kept, widest = 0, 0  # per example: the tangents kept, the widest layer
        for layer in self.layers:
            W = params[layer.name]
            flat_from.append(a.shape if layer.flatten else None)
            if layer.flatten:
                a = a.flatten(1)  # (B, c·h·w)
            inputs.append(a)
            kept += a.numel() // B
            z = self._maps.forward(layer, a, W)
            widest = max(widest, a.numel() // B, z.numel() // B)
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
        size = f.shape[0]
        c, d = self._loss_derivatives(f, batch)
        keep = (c != 0) | ~torch.isfinite(f)  # a NaN must still reach the product
        bad = ~(torch.isfinite(f) & torch.isfinite(c))
        if d is not None:
            keep |= d != 0
            bad |= ~torch.isfinite(d)
        bad = bad.nonzero()[:, 0] if bool(bad.any()) else None
        rows = None
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
                g = self._maps.input_grad(layer, dz, params[layer.name], inputs[l].shape)
                dz = _through_gate(l - 1, g[:, None], gates, argmax, shapes, flat_from)[:, 0]
        held = [*inputs, *adjoints, *gates, *argmax, d]
        nbytes = sum(t.numel() * t.element_size() for t in held if isinstance(t, torch.Tensor))
        tangent = (kept + _TRANSIENT * widest) * inputs[0].element_size()
        return _Primal(
            inputs, gates, argmax, shapes, flat_from, adjoints, d, nbytes, tangent, size, rows, bad
        )

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

    def columns(self, primal: _Primal) -> int:
        """How many vectors one block pass on ``primal`` takes: as many as fit
        :attr:`block_bytes` on one example (:meth:`block_memory`), at least 1 and at most
        :data:`MAX_BLOCK`; 1 when a convolution is grouped (its output channels cannot be
        stacked)."""
        if any(layer.conv is not None and layer.conv[3] != 1 for layer in self.layers):
            return 1
        per = primal.tangent_bytes + self.vector_bytes
        return int(max(1, min(MAX_BLOCK, self.block_bytes // per)))

    def product_columns(self, primal: _Primal) -> int:
        """How many vectors one pass of :meth:`product` takes in a ``matmat``: :meth:`columns`,
        except on a CPU in float32, where a block runs no faster than its columns one by one
        and slower on wide nets (measured on ``vgg12``, one thread: ``matmat(8)`` 0.94× of 8
        products at width 1/8, 0.92× at 1/4, 0.56× at full width): 1 there."""
        if not self._stacks:
            return 1
        return self.columns(primal)

    def chunk_examples(self, primal: _Primal, k: int) -> int:
        """Examples per chunk of a block pass of ``k`` vectors: as many as fit
        :attr:`block_bytes` (:meth:`block_memory`), at most :data:`BLOCK_ROWS` ``// k``
        (cache-sized calls run faster on a CPU), at least 1."""
        fit = (self.block_bytes // k - self.vector_bytes) // max(primal.tangent_bytes, 1)
        return int(max(1, min(BLOCK_ROWS // k, fit)))

    def block_memory(self, primal: _Primal, k: int) -> int:
        """The memory (bytes) a product of ``k`` vectors on ``primal`` holds beyond the kept
        pass, at most: ``k'`` × (``chunk`` × :attr:`_Primal.tangent_bytes` +
        :attr:`vector_bytes`) for a block of ``k' = min(k,`` :meth:`columns` ``)`` vectors on
        a chunk of :meth:`chunk_examples` examples. The constants are measured (peak resident
        memory on ``vgg12``, float32 and float64, one thread)."""
        k = min(k, self.product_columns(primal))
        chunk = min(self.chunk_examples(primal, k), max(primal.n, 1))
        return k * (chunk * primal.tangent_bytes + self.vector_bytes)

    @torch.no_grad()
    def product(
        self, primal: _Primal, params: dict[str, torch.Tensor], V: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        r"""This batch's share of :math:`HV` for ``k`` vectors at once, per parameter.

        Args:
            primal: the batch's :meth:`primal` pass.
            params: the weights by name.
            V: each weight's part of the ``k`` vectors, ``(k, *shape)`` by name (``k`` at
                most :meth:`columns`).

        Returns:
            The batch's share of :math:`HV`, ``(k, *shape)`` by name; the examples taken in
            chunks of :meth:`chunk_examples`.
        """
        V = {name: v.contiguous() for name, v in V.items()}
        k = next(iter(V.values())).shape[0]
        out = {name: torch.zeros_like(v) for name, v in V.items()}
        stacked = {name: v.view(-1, *v.shape[2:]) for name, v in V.items()}  # (k·c_out, ...)
        side = {name: _side_by_side(v) for name, v in V.items()}  # (c_out, k·c_in, ...)
        dense = _Dense(self._maps, stacked, side, k)
        step = self.chunk_examples(primal, k)
        try:
            for s in range(0, primal.n, step):
                part = primal if step >= primal.n else primal.rows(s, s + step)
                collect = _WeightGradients(self._maps, self.layers, part, (stacked, side), out)
                _block(self.layers, self._maps, part, params, dense, collect)
        finally:
            self._maps.memo.clear()
        return out

    @torch.no_grad()
    def example_entries(
        self,
        primal: _Primal,
        params: dict[str, torch.Tensor],
        columns: tuple[str, torch.Tensor],
        rows: dict[str, tuple[torch.Tensor, torch.Tensor]],
    ) -> dict[str, torch.Tensor]:
        r"""Per example, entries of :math:`\nabla^2 \ell_i\, e_k` for ``k`` unit vectors at once.

        The tangent and adjoint passes of :meth:`product` for the unit vectors of ``k``
        columns in one weight, but no weight gradient is summed over the examples: at the
        requested rows alone, per example :math:`i` and column,
        :math:`(\dot\delta \otimes a + \delta \otimes \dot a)_i`. A conv weight's row
        :math:`(o, c, p, q)` is :math:`\sum_{y,x} \dot\delta_{i,o,y,x}\, a_{i,c,y+p,x+q} +
        \delta_{i,o,y,x}\,\dot a_{i,c,y+p,x+q}` (of the padded input, with the layer's stride
        and dilation), read from a strided view of the patches at the rows' :math:`(c, p, q)`
        only (memory ~ examples × rows × positions, in chunks of :data:`_GATHER`); a linear
        weight's row :math:`(o, c)` is :math:`\dot\delta_{i,o} a_{i,c} + \delta_{i,o}
        \dot a_{i,c}`.

        The unit vectors are not multiplied out: :math:`e_k a` is one channel of the input's
        patches and :math:`e_k^\top \delta` one channel of :math:`\delta` put back into the
        input's patches. Terms known to be zero are not computed: the tangents below the
        columns' layer, the adjoints above it when :math:`\ell'' = 0` (the hinge: no
        Gauss–Newton part), the tangents above the highest row (then) and the adjoints below
        the lowest. A block so costs about one convolution per layer and column (one pass,
        forward above the columns' layer and backward below it), against six for
        :meth:`product`.

        Args:
            primal: the batch's :meth:`primal` pass with ``weighted=False`` (a weighted pass
                gives :math:`w_i` times the entries).
            params: the weights by name.
            columns: ``(name, index (k,))``: the columns' weight and their flat indices in it
                (``k`` at most :meth:`columns`).
            rows: the requested rows, by weight name: ``(column (R,), index (R,))`` int64,
                the column (``0 … k-1``) of each and its flat index in the weight.

        Returns:
            ``(size, R)`` by name: the entries of every example of the batch (0 for the
            examples left out of the pass, NaN for those whose :math:`f`, :math:`\ell'` or
            :math:`\ell''` is not finite); the examples taken in chunks of
            :meth:`chunk_examples`.
        """
        name, index = columns
        k = len(index)
        at = {layer.name: l for l, layer in enumerate(self.layers)}
        slots = torch.arange(k, device=index.device)
        V = _Units(name, _EntryRows.of(self.layers[at[name]], params[name].shape, slots, index))
        p = params[name]
        out = {
            key: torch.zeros(primal.size, len(r[0]), dtype=p.dtype, device=p.device)
            for key, r in rows.items()
        }
        wanted = {
            at[key]: _EntryRows.of(self.layers[at[key]], params[key].shape, *r)
            for key, r in rows.items()
            if len(r[0])
        }
        if not wanted:
            return out
        step = self.chunk_examples(primal, k)
        positions, span = primal.positions, (min(wanted), max(wanted))
        for s in range(0, primal.n, step):
            part = primal if step >= primal.n else primal.rows(s, s + step)
            collect = _Entries(self.layers, part, wanted, out, positions[s : s + step])
            _block(self.layers, self._maps, part, params, V, collect, span)
        if primal.bad is not None:
            for t in out.values():
                t[primal.bad] = math.nan
        return out


def _block(
    layers: Sequence[GatedLayer],
    maps: _Maps,
    P: _Primal,
    params: dict[str, torch.Tensor],
    V: _Dense | _Units,
    collect: Callable[[int, torch.Tensor | None, torch.Tensor | None], None],
    span: tuple[int, int] | None = None,
) -> None:
    r"""The tangent and adjoint passes of ``k`` vectors together, on the examples of ``P``;
    ``collect(l, δ̇_l, ȧ_{l-1})`` takes each layer's share, from the output layer down
    (:class:`_WeightGradients`: :math:`HV`; :class:`_Entries`: rows of it per example).

    Every term of a layer is one call for all ``k`` vectors (module docstring, *Block
    products*); the tangents :math:`\dot a` and adjoints :math:`\dot\delta` are
    ``(B, k, ...)``. ``V``: the ``k`` vectors, as weights (:class:`_Dense`) or as unit vectors
    (:class:`_Units`).

    ``span=None``: every term is computed (``V`` has every layer), a zero :math:`\dot\delta_L`
    too, so that a NaN anywhere reaches the product. ``span=(lowest, highest)``: only the
    layers ``lowest … highest`` are collected, and terms known to be zero are skipped (``None``
    for a zero tensor): those of a weight absent from ``V``, the tangents below the first layer
    of ``V``, the adjoints above its last when :math:`d = 0`, the tangents above ``highest``
    then and the adjoints below ``lowest``.
    """
    L = len(layers)
    k = V.k
    lowest, highest = (0, L - 1) if span is None else span
    stop = highest if span is not None and P.curvature is None else L  # no tangent above it
    B = P.n
    tangents: list[torch.Tensor | None] = []
    ad: torch.Tensor | None = None  # ȧ_{l-1}, (B, k, ...)
    for l, layer in enumerate(layers):
        if layer.flatten and ad is not None:
            ad = ad.flatten(2)  # (B, k, c·h·w)
        tangents.append(ad)
        if l == stop:
            break
        W, a = params[layer.name], P.inputs[l]
        zd = None
        if layer.name in V:
            zd = V.forward(layer, a, W.shape)  # V a: (B, k, c_out, ...)
        if ad is not None:
            wa = maps.forward(layer, _by_batch(ad), W)  # W ȧ
            zd = wa.view(B, k, *wa.shape[1:]) if zd is None else zd.add_(wa.view(zd.shape))
        if zd is None:
            continue  # ȧ_l = 0
        idx, h = P.argmax[l], P.gates[l]
        if idx is not None:
            zd = _at(zd, idx)  # (B, k, c, h/2, w/2)
        if isinstance(h, torch.Tensor):
            zd *= h[:, None]
        elif h is not None:
            zd *= h
        ad = zd
    dzd: torch.Tensor | None = None  # δ̇_L = d · J v: (B, k, 1), then δ̇_l (B, k, ...)
    if stop == L and ad is not None:
        fd = ad[:, :, 0]  # (B, k): J v
        # a zero δ̇_L still meets W_L (span=None), so that a NaN there reaches the product
        if P.curvature is not None:
            dzd = (fd * P.curvature[:, None])[:, :, None]
        elif span is None:
            dzd = torch.zeros_like(fd)[:, :, None]
    for l in range(L - 1, lowest - 1, -1):
        layer = layers[l]
        ad = tangents[l] if l < len(tangents) else None
        if l <= highest:
            collect(l, dzd, ad)
        if l == lowest:
            break
        W, shape = params[layer.name], P.inputs[l].shape  # a_{l-1}: (B, c_in, ...)
        g = None
        if layer.name in V:  # Vᵀ δ: (B, k, c_in, ...)
            g = V.transposed(layer, P.adjoints[l], shape)
        if dzd is not None:  # + Wᵀ δ̇
            wd = maps.input_grad(layer, _by_batch(dzd), W, (B * k, *shape[1:]))
            g = wd.view(B, k, *shape[1:]) if g is None else g.add_(wd.view(g.shape))
        if g is not None:
            g = _through_gate(l - 1, g, P.gates, P.argmax, P.shapes, P.flat_from)
        dzd = g


class _Dense:
    r"""``k`` vectors as weights for :func:`_block`: each layer's ``stacked`` along the output
    channels, ``(k·c_out, c_in, ...)``, and ``side`` by side along the input channels,
    ``(c_out, k·c_in, ...)`` (:func:`_side_by_side`); each term one call of ``maps``."""

    def __init__(self, maps: _Maps, stacked, side, k: int):
        self.maps, self.stacked, self.side, self.k = maps, stacked, side, k

    def __contains__(self, name: str) -> bool:
        return name in self.stacked

    def forward(self, layer: GatedLayer, a: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
        """:math:`V a` ``(B, k, c_out, ...)`` (``shape``: the weight's)."""
        zd = self.maps.forward(layer, a, self.stacked[layer.name])  # (B, k·c_out, ...)
        return zd.view(a.shape[0], self.k, shape[0], *zd.shape[2:])

    def transposed(
        self, layer: GatedLayer, delta: torch.Tensor, shape: Sequence[int]
    ) -> torch.Tensor:
        r""":math:`V^\top \delta` ``(B, k, c_in, ...)`` (``shape``: the layer input's)."""
        B = delta.shape[0]
        wide = (B, self.k * shape[1], *shape[2:])
        g = self.maps.input_grad(layer, delta, self.side[layer.name], wide)
        return g.view(B, self.k, *shape[1:])


class _Units:
    r"""``k`` unit vectors :math:`e_k` of one weight ``name`` for :func:`_block` (``cols``:
    their :class:`_EntryRows`, column ``j`` in slot ``j``), not multiplied out:
    :math:`e_k a` is the input's patch at the column's ``(c, p, q)`` in its output channel
    ``o``, and :math:`e_k^\top \delta` channel ``o`` of :math:`\delta` put back at those
    patches (a linear weight: one entry each)."""

    def __init__(self, name: str, cols: _EntryRows):
        self.name, self.cols, self.k = name, cols, len(cols.slot)

    def __contains__(self, name: str) -> bool:
        return name == self.name

    def forward(self, layer: GatedLayer, a: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
        t, B = self.cols, a.shape[0]
        if layer.conv is None:
            zd = a.new_zeros(B, self.k, shape[0])  # (B, k, n_out)
            zd[:, t.slot, t.o] = a[:, t.c]
            return zd
        out_hw = _conv_out(layer, a.shape[-2:], t.kernel)
        zd = a.new_zeros(B, self.k, shape[0], *out_hw)  # (B, k, c_out, h, w)
        zd[:, t.slot, t.o] = _patches(a, layer, t.kernel, out_hw)[:, t.c, t.p, t.q]
        return zd

    def transposed(
        self, layer: GatedLayer, delta: torch.Tensor, shape: Sequence[int]
    ) -> torch.Tensor:
        t, B = self.cols, delta.shape[0]
        if layer.conv is None:
            g = delta.new_zeros(B, self.k, shape[1])  # (B, k, n_in)
            g[:, t.slot, t.c] = delta[:, t.o]
            return g
        stride, (ph, pw), dilation, _ = layer.conv
        (H, W), (h, w) = shape[2:], delta.shape[-2:]
        Hp, Wp = H + 2 * ph, W + 2 * pw
        gp = delta.new_zeros(B, self.k, shape[1], Hp, Wp)  # padded (B, k, c_in, Hp, Wp)
        # where column j's patch read a: slot j, channel c_j, (y s + p_j d, x s + q_j d)
        y = torch.arange(h, device=gp.device) * stride[0]
        x = torch.arange(w, device=gp.device) * stride[1]
        at = ((t.slot * shape[1] + t.c) * Hp + t.p * dilation[0])[:, None, None] + y[:, None]
        at = at * Wp + (t.q * dilation[1])[:, None, None] + x  # (k, h, w)
        gp.view(B, -1)[:, at.flatten()] = delta[:, t.o].flatten(1)  # the adjoint of that read
        return gp[..., ph : ph + H, pw : pw + W].contiguous()


class _WeightGradients:
    r""":meth:`GatedProducts.product`'s share of each layer: :math:`\dot\delta \otimes a +
    \delta \otimes \dot a`, summed over the examples of ``P``, added to ``out``
    (``(k, *W.shape)`` by name); ``V`` as :func:`_block` takes it."""

    def __init__(self, maps, layers, P, V, out):
        self.maps, self.layers, self.P, self.V, self.out = maps, layers, P, V, out

    def __call__(self, l: int, dzd: torch.Tensor, ad: torch.Tensor | None) -> None:
        layer, P, (stacked, side) = self.layers[l], self.P, self.V
        acc, Vs, Vt = self.out[layer.name], stacked[layer.name], side[layer.name]
        k = acc.shape[0]
        # δ̇ ⊗ a: the k adjoints stacked along the output channels
        gw = self.maps.weight_grad(layer, _by_channels(dzd), P.inputs[l], Vs.shape)
        acc += gw.view(acc.shape)
        if ad is None:
            return
        # δ ⊗ ȧ: the k tangents stacked along the input channels, (c_out, k·c_in, ...)
        gw = self.maps.weight_grad(layer, P.adjoints[l], _by_channels(ad), Vt.shape)
        acc += gw.reshape(acc.shape[1], k, *acc.shape[2:]).transpose(0, 1)


_GATHER = 2**20  # elements of one gathered tensor of example entries (examples × rows × pixels)


@dataclass(frozen=True)
class _EntryRows:
    """The requested rows of one weight (:meth:`GatedProducts.example_entries`), decoded:
    each row's vector ``slot``, output unit ``o``, input channel ``c`` (of the layer's input,
    the group's offset added) and kernel position ``(p, q)`` (``None`` for a linear layer),
    ``(R,)`` int64 each; and the kernel's size."""

    slot: torch.Tensor
    o: torch.Tensor
    c: torch.Tensor
    p: torch.Tensor | None = None
    q: torch.Tensor | None = None
    kernel: tuple[int, int] | None = None

    @classmethod
    def of(cls, layer: GatedLayer, shape: Sequence[int], slot, index) -> _EntryRows:
        if layer.conv is None:
            o, c = index // shape[1], index % shape[1]
            return cls(slot, o, c)
        o, rest = index // math.prod(shape[1:]), index % math.prod(shape[1:])
        c, pq = rest // (shape[2] * shape[3]), rest % (shape[2] * shape[3])
        per_group = shape[0] // layer.conv[3]
        c = c + (o // per_group) * shape[1]
        return cls(slot, o, c, pq // shape[3], pq % shape[3], (shape[2], shape[3]))


class _Entries:
    r""":meth:`GatedProducts.example_entries`' share of each layer: at the rows ``wanted``
    (:class:`_EntryRows` by layer), per example of ``P``, :math:`\dot\delta \otimes a +
    \delta \otimes \dot a`, written to ``out`` at the examples' ``positions`` in the batch."""

    def __init__(self, layers, P, wanted, out, positions):
        self.layers, self.P, self.wanted, self.out = layers, P, wanted, out
        self.positions = positions

    def __call__(self, l: int, dzd: torch.Tensor | None, ad: torch.Tensor | None) -> None:
        t = self.wanted.get(l)
        if t is None or (dzd is None and ad is None):
            return
        layer, P = self.layers[l], self.P
        a, delta = P.inputs[l], P.adjoints[l]  # a_{l-1} (B, c_in, ...), δ_l (B, c_out, ...)
        R = len(t.slot)
        vals = a.new_zeros(a.shape[0], R)  # (B, R)
        if layer.conv is None:
            if dzd is not None:
                vals += dzd[:, t.slot, t.o] * a[:, t.c]
            if ad is not None:
                vals += delta[:, t.o] * ad[:, t.slot, t.c]
        else:
            out_hw = (dzd if dzd is not None else delta).shape[-2:]
            # the patches of a (B, c, kh, kw, h, w) and of ȧ (B, k, c, kh, kw, h, w)
            pa = None if dzd is None else _patches(a, layer, t.kernel, out_hw)
            pad = None if ad is None else _patches(ad, layer, t.kernel, out_hw)
            step = max(1, _GATHER // (a.shape[0] * out_hw[0] * out_hw[1]))
            for r in range(0, R, step):
                s = slice(r, r + step)
                o, c, p, q = t.o[s], t.c[s], t.p[s], t.q[s]
                if pa is not None:  # Σ_pos δ̇[o] a[c, p, q]
                    vals[:, s] += (dzd[:, t.slot[s], o] * pa[:, c, p, q]).sum((-2, -1))
                if pad is not None:  # Σ_pos δ[o] ȧ[c, p, q]
                    vals[:, s] += (delta[:, o] * pad[:, t.slot[s], c, p, q]).sum((-2, -1))
        self.out[layer.name][self.positions] = vals


def _patches(
    x: torch.Tensor, layer: GatedLayer, kernel: Sequence[int], out_hw: Sequence[int]
) -> torch.Tensor:
    """``x`` ``(..., H, W)`` zero-padded as ``layer`` pads, seen (a strided view, no copy of
    the patches) as ``(..., kh, kw, h, w)``: the input each position ``(p, q)`` of a ``kernel``
    meets at each output position ``(y, x)`` of ``out_hw``; to be read only (the patches
    overlap)."""
    stride, padding, dilation, _ = layer.conv
    kh, kw = kernel
    xp = F.pad(x, (padding[1], padding[1], padding[0], padding[0]))
    *lead, sh, sw = xp.stride()
    shape = (*xp.shape[:-2], kh, kw, *out_hw)
    strides = (*lead, sh * dilation[0], sw * dilation[1], sh * stride[0], sw * stride[1])
    return xp.as_strided(shape, strides)


def _conv_out(layer: GatedLayer, hw: Sequence[int], kernel: Sequence[int]) -> tuple[int, int]:
    """The output size of ``layer``'s convolution with ``kernel`` on an input of size ``hw``."""
    stride, padding, dilation, _ = layer.conv
    return tuple(
        (n + 2 * p - d * (k - 1) - 1) // s + 1
        for n, p, d, k, s in zip(hw, padding, dilation, kernel, stride, strict=True)
    )


def _through_gate(
    l: int,
    g: torch.Tensor,
    gates: Sequence[torch.Tensor | float | None],
    argmax: Sequence[torch.Tensor | None],
    shapes: Sequence[tuple[int, ...] | None],
    flat_from: Sequence[tuple[int, ...] | None],
) -> torch.Tensor:
    """The adjoints ``(B, k, ...)`` of :math:`z_l` from those of layer ``l + 1``'s input
    ``g``."""
    B, k = g.shape[:2]
    if flat_from[l + 1] is not None:
        g = g.reshape(B, k, *flat_from[l + 1][1:])  # (B, k, c, h, w)
    idx, h = argmax[l], gates[l]
    if isinstance(h, torch.Tensor):
        g = g * h[:, None]  # after a pooling: the gates at the maxima
    elif h is not None:
        g = g * h
    if idx is None:
        return g
    _, c, H, W = shapes[l]
    out = g.new_zeros(B, k, c, H * W)
    out.scatter_(3, idx.flatten(2)[:, None].expand(B, k, c, -1), g.flatten(3))  # poolᵀ
    return out.view(B, k, c, H, W)


def _at(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``t`` ``(B, [k,] c, H, W)`` at the pooling's choices ``idx`` ``(B, c, H/2, W/2)``."""
    i = idx.flatten(2)  # (B, c, H·W/4)
    if t.ndim == 5:
        i = i[:, None].expand(t.shape[0], t.shape[1], *i.shape[1:])
    return t.flatten(-2).gather(-1, i).view(*t.shape[:-2], *idx.shape[2:])


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _checked(model: GatedVGG) -> Callable[[torch.Tensor], torch.Tensor]:
    def prepare(x: torch.Tensor) -> torch.Tensor:
        model._check_input(x)
        return x

    return prepare
