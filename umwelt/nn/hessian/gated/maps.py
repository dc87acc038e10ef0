r"""The three maps of a weight layer :math:`z = W * a` — :math:`W * a`, :math:`W^\top g`,
:math:`g \otimes a` — and, per dtype and device, the calls that run them fastest
(:func:`_maps_for`); the layout of a block's ``k`` tangents (:func:`_by_batch`,
:func:`_by_channels`, :func:`_side_by_side`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.nn import functional as F

from umwelt.nn.hessian.gated.layers import GatedLayer

_aten = torch.ops.aten

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
            return z.view(B, h, w, W.shape[0]).permute(0, 3, 1, 2).contiguous()  # (B = 0 too)
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
    against 15 ms for 256 images of 8 channels at 32×32). A product so costs 0.82 of the
    library's calls at widths 1/8 and 1/4 on 512 images, 0.93 at width 1/8 on 2,000 (batches of
    1,000; one or two threads), measured side by side."""

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
