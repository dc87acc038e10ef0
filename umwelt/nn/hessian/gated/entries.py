r"""Per-example entries of a gated net's Hessian from the passes of a block of unit vectors
(:meth:`~umwelt.nn.hessian.gated.GatedProducts.example_entries`).

**Per-example entries.** The bootstrap of sampled entries (:mod:`~umwelt.nn.hessian.entries`)
needs :math:`c_{ijk} = \partial^2 \ell_i / \partial\theta_j \partial\theta_k` for every example
:math:`i`. :meth:`~umwelt.nn.hessian.gated.GatedProducts.example_entries` takes the passes of a
block for the columns' unit vectors :math:`e_k` on the *unweighted* primal pass (``primal(...,
weighted=False)``: :math:`c_i = \ell'_i`, :math:`d_i = \ell''_i`), and instead of summing the
weight gradients over the examples reads each example's requested rows off :math:`\dot\delta
\otimes a + \delta \otimes \dot a` (for a conv weight from a strided view of the input's
patches, gathered at the rows' input channels and kernel positions only). With the columns in
one layer :math:`m` most terms vanish and are skipped: the tangents below :math:`m`, the
adjoints above it when :math:`d = 0` (the hinge), the tangents above the highest requested row
and the adjoints below the lowest; and the unit vectors are not multiplied out (:math:`e_k a`
is a channel of the input's patches). What is left is about one convolution per layer and
column. Measured on ``vgg12`` at width 1/8 (512 CIFAR-10 images, float64, one thread;
``sim.benchmarks.hessian_examples``): 0.27 ms per example and column for the hinge (0.52 for
the logistic loss, whose adjoints run from the output down), against 7.8 ms (9.0) for
``torch.func``'s per-example products (``vmap`` over examples and columns): 29× (17×) faster,
equal to 1e-15.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from umwelt.nn.hessian.gated.layers import GatedLayer


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
        gp.view(B, math.prod(gp.shape[1:]))[:, at.flatten()] = delta[:, t.o].flatten(1)  # (adjoint)
        return gp[..., ph : ph + H, pw : pw + W].contiguous()


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
