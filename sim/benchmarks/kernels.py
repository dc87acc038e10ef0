r"""What the library's convolution kernels allow a block product, at ``vgg12``'s layer shapes.

A fixed-gate Hessian product (:mod:`umwelt.nn.hessian.gated`) costs six maps per convolution:
:math:`V a` and :math:`W \dot a` forward, :math:`V^\top \delta` and :math:`W^\top \dot\delta`
(the forward convolution of the flipped kernel), :math:`\dot\delta \otimes a` and
:math:`\delta \otimes \dot a` (weight gradients). A block of ``k`` vectors takes every term in
one call for all ``k`` — :math:`V a` with ``k`` times the output channels, :math:`W \dot a` and
:math:`W^\top\dot\delta` on the ``k`` tangents stacked along the batch, :math:`V^\top\delta`
with ``k`` times the input channels, the two gradients with ``k`` times the channels of
:math:`\dot\delta` or :math:`\dot a` — on chunks of :data:`BLOCK_ROWS` ``// k`` examples
(a product of one vector on chunks of :data:`BLOCK_ROWS`), as :meth:`GatedProducts.product`
takes them. Every term's arithmetic is ``k``-fold, so the block gains only what the wider
calls run faster.

For each convolution of ``vgg12`` at a width this times, on ``examples`` examples, one thread,
the six maps of ``k`` single products against those of one block, in the library's NCHW layout
and in channels-last, side by side in alternating order (the median of repetitions), and prints
the ratio ``k`` singles / block and the GFLOP/s each reaches. The sum over the layers bounds
what ``matmat(k)`` can gain over ``k`` products on this machine with these kernels (the gating,
pooling and linear layers add time to both and gain nothing); issue 13's goal is 3× at width
1/8 and 1.5× at 1/4 for ``k = 8``.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import torch
from torch.nn import functional as F

from sim.benchmarks.hessian_common import _thread_time
from umwelt.nn import vgg_architecture
from umwelt.nn.hessian.gated.products import BLOCK_ROWS

LAYOUTS = {"nchw": torch.contiguous_format, "channels-last": torch.channels_last}


def _conv_shapes(width: float) -> list[tuple[int, int, int]]:
    """``(c_in, c_out, side)`` of every convolution of ``vgg12`` at ``width`` on 32×32 images."""
    arch = vgg_architecture("vgg12", width)
    shapes, c_in, side = [], arch.input_shape[0], arch.input_shape[1]
    for c_out, pool in zip(arch.channels, arch.pool_after, strict=True):
        shapes.append((c_in, c_out, side))
        c_in, side = c_out, side // 2 if pool else side
    return shapes


def _weight_grad(g: torch.Tensor, a: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """``g ⊗ a`` of a same 3×3 convolution (``shape``: the weight's)."""
    out = torch.ops.aten.convolution_backward(
        g, a, a.new_empty(shape), None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1,
        [False, True, False],
    )  # fmt: skip
    return out[1]


def _layer(
    c_in: int, c_out: int, side: int, *, examples: int, k: int, layout, dtype, gen
) -> dict[str, Callable[[], object]]:
    """The six maps of ``k`` single products, and of one block, on one layer's shapes."""

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen).to(dtype).contiguous(memory_format=layout)

    B, one, chunk = examples, min(examples, BLOCK_ROWS), min(examples, max(1, BLOCK_ROWS // k))
    a, g = r(one, c_in, side, side), r(one, c_out, side, side)  # a, δ (and one ȧ, δ̇)
    W, Wf = r(c_out, c_in, 3, 3), r(c_in, c_out, 3, 3)  # the kernel, flipped

    def singles() -> None:
        for _ in range(k * -(-B // one)):
            F.conv2d(a, W, None, 1, 1), F.conv2d(a, W, None, 1, 1)  # V a, W ȧ
            F.conv2d(g, Wf, None, 1, 1), F.conv2d(g, Wf, None, 1, 1)  # Vᵀ δ, Wᵀ δ̇
            _weight_grad(g, a, W.shape), _weight_grad(g, a, W.shape)  # δ̇ ⊗ a, δ ⊗ ȧ

    ab, gb = r(chunk, c_in, side, side), r(chunk, c_out, side, side)  # a, δ of a chunk
    ad, dd = r(chunk * k, c_in, side, side), r(chunk * k, c_out, side, side)  # ȧ, δ̇ stacked
    adc, ddc = r(chunk, k * c_in, side, side), r(chunk, k * c_out, side, side)  # by channels
    Vs, Vf = r(k * c_out, c_in, 3, 3), r(k * c_in, c_out, 3, 3)  # V stacked, side by side

    def block() -> None:
        for _ in range(-(-B // chunk)):
            F.conv2d(ab, Vs, None, 1, 1), F.conv2d(ad, W, None, 1, 1)
            F.conv2d(gb, Vf, None, 1, 1), F.conv2d(dd, Wf, None, 1, 1)
            _weight_grad(ddc, ab, Vs.shape), _weight_grad(gb, adc, (c_out, k * c_in, 3, 3))

    return {"singles": singles, "block": block}


def conv_blocks(
    quick: bool = False,
    *,
    widths: tuple[float, ...] = (1 / 8, 1 / 4),
    examples: int = 256,
    k: int = 8,
    dtypes: tuple[torch.dtype, ...] = (torch.float32,),
    repeats: int = 3,
) -> dict:
    """Time the six maps of ``k`` products against one block of ``k``, layer by layer.

    Args:
        quick: width 1/16, 16 examples, ``k = 4``, one repetition (seconds).
        widths: ``vgg12`` width multipliers.
        examples: examples per product.
        k: vectors per block.
        dtypes: dtypes of the tensors (``torch.bfloat16`` shows what oneDNN's bf16 kernels
            would give, at bf16's precision).
        repeats: repetitions (alternating order; medians).

    Returns:
        ``{"rows": [{"width", "dtype", "layout", "layer", "shape", "singles_s", "block_s",
        "speedup", "singles_gflops", "block_gflops"}], "totals": [{"width", "dtype",
        "layout", "singles_s", "block_s", "speedup"}], "threads": 1, "k", "examples"}``.
    """
    if quick:
        widths, examples, k, repeats = (1 / 16,), 16, 4, 1
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    rows, totals = [], []
    print(
        f"Convolution kernels for block products (vgg12, {examples} examples, k = {k}, one "
        f"thread): the six maps of {k} products against one block of {k}, per layer"
    )
    try:
        for dtype in dtypes:
            for w in widths:
                for name, layout in LAYOUTS.items():
                    sums = {"singles": 0.0, "block": 0.0}
                    for i, (c_in, c_out, side) in enumerate(_conv_shapes(w)):
                        fns = _layer(
                            c_in, c_out, side, examples=examples, k=k, layout=layout,
                            dtype=dtype, gen=gen,
                        )  # fmt: skip
                        times = _alternating(fns, repeats)
                        flops = 6 * k * 2 * examples * side * side * c_out * c_in * 9
                        row = {
                            "width": w,
                            "dtype": str(dtype).removeprefix("torch."),
                            "layout": name,
                            "layer": i + 1,
                            "shape": (c_in, c_out, side),
                            "singles_s": times["singles"],
                            "block_s": times["block"],
                            "speedup": times["singles"] / times["block"],
                            "singles_gflops": flops / times["singles"] / 1e9,
                            "block_gflops": flops / times["block"] / 1e9,
                        }
                        rows.append(row)
                        for key in sums:
                            sums[key] += times[key]
                        print(
                            f"  width {w:g} {row['dtype']} {name:>13} conv{i + 1:<2} "
                            f"{c_in:>3}→{c_out:<3} {side:>2}×{side:<2}: {k} products "
                            f"{times['singles'] * 1e3:7.1f} ms ({row['singles_gflops']:5.1f} "
                            f"GFLOP/s), block {times['block'] * 1e3:7.1f} ms "
                            f"({row['block_gflops']:5.1f}): ×{row['speedup']:.2f}"
                        )
                    total = {
                        "width": w,
                        "dtype": str(dtype).removeprefix("torch."),
                        "layout": name,
                        "singles_s": sums["singles"],
                        "block_s": sums["block"],
                        "speedup": sums["singles"] / sums["block"],
                    }
                    totals.append(total)
                    print(
                        f"  width {w:g} {total['dtype']} {name}, every convolution: ×"
                        f"{total['speedup']:.2f} ({k} products {sums['singles']:.3f} s, "
                        f"block {sums['block']:.3f} s)"
                    )
    finally:
        torch.set_num_threads(threads)
    return {"rows": rows, "totals": totals, "threads": 1, "k": k, "examples": examples}


def _alternating(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """The median thread CPU time of each function, run in alternating order after a warm-up."""
    times: dict[str, list[float]] = {key: [] for key in fns}
    for fn in fns.values():
        fn()
    for r in range(repeats):
        for key in fns if r % 2 == 0 else list(fns)[::-1]:
            times[key].append(_thread_time(fns[key], "cpu"))
    return {key: statistics.median(ts) for key, ts in times.items()}


def run(quick: bool = False) -> dict:
    """``umwelt bench kernels``: :func:`conv_blocks` at its defaults."""
    return conv_blocks(quick)
