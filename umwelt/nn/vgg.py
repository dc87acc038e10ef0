r"""Bias-free VGG-style convolutional nets with stochastic gates (THEORY.md §1, §6).

The paper's experiment (section 6) trains a VGG-style net — 3×3 convolutions, max-pooling,
ReLU, **no biases**, **no batch norm**, one output — on binary CIFAR-10. Here every ReLU is a
:class:`~umwelt.nn.gate.Gate` at temperature :math:`T`, one per gated layer:

.. math::
    z_l = W_l * x_{l-1}, \qquad h_l \sim \mathrm{Bern}(\sigma(z_l/T)), \qquad
    x_l = \mathrm{pool}(h_l \odot z_l),

where :math:`*` is a 3×3 convolution (padding 1, so a stage keeps its spatial size) and
``pool`` a 2×2 max-pooling after the last convolution of each stage (the identity elsewhere).
After five poolings a :math:`32\times32` image is a :math:`c\times1\times1` map; it is
flattened and passed through bias-free linear layers with gates between them, the last one of
width 1 (the paper's "coarse-grained variable"). At :math:`T = 0` (or in ``"relu"`` mode) the
net *is* the plain ReLU VGG, which :func:`plain_relu_vgg` builds from ``torch.nn`` layers for
reference.

Presets (the name counts the weight layers):

========  ==========================================  ===================  ===============
preset    convolutions (``M`` = 2×2 max-pool)           classifier           parameters
========  ==========================================  ===================  ===============
vgg11     64 M 128 M 256 256 M 512 512 M 512 512 M    512→512→512→1        9,742,528
vgg12     64 64 M 128 128 M 256 256 M 512 512 M       512→512→1            9,664,704
          512 512 M
vgg13     same convolutions as vgg12                  512→512→512→1        9,926,848
vgg16     64 64 M 128 128 M 256 256 256 M 512 512     512→512→512→1        15,235,264
          512 M 512 512 512 M
========  ==========================================  ===================  ===============

The convolution stacks are configurations A, B and D of Simonyan & Zisserman (2015, table 1).
For 32×32 inputs the ImageNet classifier (three fully connected layers of 4096) is replaced, as
in the usual CIFAR variants, by 512-wide layers: three of them (512→512→512→classes) as in
Fu's ``pytorch-vgg-cifar10``, which keeps the name equal to the number of weight layers (the
``kuangliu/pytorch-cifar`` variant uses a single 512→classes layer instead). Neither dropout nor
batch norm is used. ``vgg12`` — the ten convolutions of VGG-13 and two linear layers
512→512→1, 12 weight layers and 9,664,704 ≈ 9.7·10⁶ parameters — is our reading of the paper's
"12 layers, about 10⁷ parameters".

A width multiplier ``width`` scales every hidden layer — each convolution's channels and each
hidden linear width — to the nearest integer (halves round up); the input channels and the
output width 1 are not scaled. A multiplier that rounds a layer to 0 channels is refused
(:class:`~umwelt.errors.ConfigError` naming the width and the layer).

Weights are He-normal, :math:`W \sim \mathcal N(0, g^2/\mathrm{fan\_in})` with
:math:`\mathrm{fan\_in} = c_\mathrm{in}\cdot 3\cdot 3` for a convolution and the input width for
a linear layer, drawn in float64 from one CPU :class:`torch.Generator` seeded with ``seed``
(layer by layer, convolutions first) and then rounded to the dtype and moved to the device: the
same seed gives the same initial weights on every device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from umwelt._checks import check_positive
from umwelt.errors import ConfigError, ShapeError
from umwelt.gates import check_temperature
from umwelt.nn.gate import Gate, GatedModel, check_mode

__all__ = [
    "VGG_PRESETS",
    "GatedVGG",
    "VGGArchitecture",
    "build_vgg",
    "plain_relu_vgg",
    "vgg_architecture",
]

_A = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")
_B = (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")
_D = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")

# preset -> (convolution stack, hidden linear widths); the output layer (width 1) is implied.
_CONFIGS: dict[str, tuple[tuple[int | str, ...], tuple[int, ...]]] = {
    "vgg11": (_A, (512, 512)),
    "vgg12": (_B, (512,)),
    "vgg13": (_B, (512, 512)),
    "vgg16": (_D, (512, 512)),
}

VGG_PRESETS: tuple[str, ...] = tuple(_CONFIGS)

DEFAULT_INPUT_SHAPE: tuple[int, int, int] = (3, 32, 32)


# -- the architecture: presets, width multiplier, input shape -------------------------------------


@dataclass(frozen=True)
class VGGArchitecture:
    """A VGG preset resolved for a width multiplier and an input shape.

    Attributes:
        preset: the preset name.
        width: the width multiplier.
        input_shape: ``(C, H, W)`` of one example.
        channels: output channels of each convolution, after the multiplier.
        pool_after: whether a 2×2 max-pooling follows each convolution.
        hidden: widths of the hidden linear layers, after the multiplier.
        flat_features: the input width of the first linear layer (``c · h · w``).
        gate_shapes: per gated layer, the shape of one example's gates: ``(c, h, w)`` for a
            convolution (before its pooling), ``(n,)`` for a hidden linear layer.
        layer_names: ``conv1, ..., convK, fc1, ..., fcM`` (every weight layer, output last).
    """

    preset: str
    width: float
    input_shape: tuple[int, int, int]
    channels: tuple[int, ...]
    pool_after: tuple[bool, ...]
    hidden: tuple[int, ...]
    flat_features: int
    gate_shapes: tuple[tuple[int, ...], ...]
    layer_names: tuple[str, ...]

    @property
    def depth(self) -> int:
        """Number of weight layers (convolutions + linear layers)."""
        return len(self.layer_names)

    @property
    def linear_widths(self) -> tuple[int, ...]:
        """``(flat_features, *hidden, 1)``: the widths of the linear part, input first."""
        return (self.flat_features, *self.hidden, 1)

    def parameter_count(self) -> int:
        """Number of weights: :math:`\\sum 9\\,c_\\mathrm{in} c_\\mathrm{out}` + linear weights."""
        cin = (self.input_shape[0], *self.channels[:-1])
        conv = sum(9 * a * b for a, b in zip(cin, self.channels, strict=True))
        lw = self.linear_widths
        return conv + sum(a * b for a, b in zip(lw[:-1], lw[1:], strict=True))


def check_width(width: float) -> float:
    """Return the width multiplier as a float unless it is not a finite number > 0."""
    return check_positive("width multiplier", width)


def scale_width(n: int, width: float, layer: str, unit: str = "channels") -> int:
    """``n · width`` rounded to the nearest integer (halves up); ConfigError when it is < 1.

    >>> scale_width(64, 1 / 8, "conv1"), scale_width(64, 0.01, "conv1"), scale_width(4, 0.375, "x")
    (8, 1, 2)
    """
    v = math.floor(n * width + 0.5)
    if v < 1:
        raise ConfigError(
            f"width multiplier {width!r} makes layer {layer} empty: {n} {unit} × {width!r} "
            f"rounds to {v}; use a width ≥ {1 / (2 * n):g}"
        )
    return int(v)


def _check_preset(preset: str) -> str:
    if not isinstance(preset, str) or preset not in _CONFIGS:
        raise ConfigError(f"unknown VGG preset {preset!r}; known presets: {', '.join(_CONFIGS)}")
    return preset


def _check_shape(input_shape: Sequence[int], preset: str, pools: int) -> tuple[int, int, int]:
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = ()
    if len(shape) != 3 or any(
        isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape
    ):
        raise ConfigError(
            f"a VGG needs an input shape (channels, height, width) of positive integers, got "
            f"{input_shape!r}"
        )
    k = 2**pools
    if shape[1] % k or shape[2] % k:
        raise ConfigError(
            f"{preset} max-pools {pools} times, so the image height and width must be multiples "
            f"of {k}; got input shape {shape}"
        )
    return shape  # type: ignore[return-value]


def vgg_architecture(
    preset: str, width: float = 1.0, input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE
) -> VGGArchitecture:
    """Resolve ``preset`` for a width multiplier and an input shape ``(C, H, W)``.

    Raises:
        ConfigError: for an unknown preset (listing the known ones), a width multiplier that is
            not a finite number > 0 or that makes a layer empty (naming both), or an input shape
            that is not ``(C, H, W)`` with ``H`` and ``W`` multiples of :math:`2^{\\#pools}`.

    >>> a = vgg_architecture("vgg12", 1 / 8)
    >>> a.channels, a.hidden, a.flat_features, a.depth
    ((8, 8, 16, 16, 32, 32, 64, 64, 64, 64), (64,), 64, 12)
    """
    preset = _check_preset(preset)
    w = check_width(width)
    stack, hidden = _CONFIGS[preset]
    pools = stack.count("M")
    shape = _check_shape(input_shape, preset, pools)
    h, wd = shape[1:]
    channels: list[int] = []
    pool_after: list[bool] = []
    gate_shapes: list[tuple[int, ...]] = []
    for item in stack:
        if item == "M":
            pool_after[-1] = True
            h, wd = h // 2, wd // 2
            continue
        c = scale_width(int(item), w, f"conv{len(channels) + 1}")
        channels.append(c)
        pool_after.append(False)
        gate_shapes.append((c, h, wd))
    hid = tuple(scale_width(n, w, f"fc{i}", unit="units") for i, n in enumerate(hidden, start=1))
    gate_shapes.extend((n,) for n in hid)
    names = tuple(f"conv{i}" for i in range(1, len(channels) + 1)) + tuple(
        f"fc{i}" for i in range(1, len(hid) + 2)
    )
    return VGGArchitecture(
        preset=preset,
        width=w,
        input_shape=shape,
        channels=tuple(channels),
        pool_after=tuple(pool_after),
        hidden=hid,
        flat_features=channels[-1] * h * wd,
        gate_shapes=tuple(gate_shapes),
        layer_names=names,
    )


# -- initialization ------------------------------------------------------------------------------


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ConfigError(f"seed must be an integer in [0, 2**63), got {seed!r}")
    return seed


def _check_gain(gain: float) -> float:
    try:
        g = float(gain)
    except (TypeError, ValueError):
        raise ConfigError(f"gain must be a finite number > 0, got {gain!r}") from None
    if isinstance(gain, bool) or not (math.isfinite(g) and g > 0):
        raise ConfigError(f"gain must be a finite number > 0, got {gain!r}")
    return g


@torch.no_grad()
def _he_normal_(weights: Sequence[torch.Tensor], seed: int, gain: float) -> None:
    r"""Fill ``weights`` in order with :math:`\mathcal N(0, g^2/\mathrm{fan\_in})` draws.

    ``fan_in`` is ``w[0].numel()`` (``c_in · 3 · 3`` for a conv weight ``(c_out, c_in, 3, 3)``,
    ``n_in`` for a linear one ``(n_out, n_in)``). The draws are float64 from one CPU generator,
    so every dtype and device gets the same (rounded) numbers.
    """
    gen = torch.Generator().manual_seed(_check_seed(seed))
    gain = _check_gain(gain)
    for w in weights:
        std = gain / math.sqrt(w[0].numel())
        w.copy_(torch.randn(w.shape, generator=gen, dtype=torch.float64).mul_(std))


# -- the gated net -------------------------------------------------------------------------------


class GatedVGG(GatedModel):
    r"""Bias-free VGG with a :class:`~umwelt.nn.gate.Gate` after every hidden layer.

    The same interface as :class:`~umwelt.nn.mlp.GatedMLP` (``gates``, ``temperature``,
    ``mode``, ``set_mode``, ``set_temperature``, ``set_generator``, ``set_record``,
    ``relu_gates``, ``forward_with_gates``). The constructor sets every weight to zero (it draws
    nothing); use :func:`build_vgg` for seeded He-normal weights.

    Args:
        preset: one of :data:`VGG_PRESETS`.
        width: width multiplier of every hidden layer (see the module docstring).
        input_shape: ``(C, H, W)`` of one example; ``H`` and ``W`` multiples of 32.
        temperature: :math:`T \in [0, \infty]` of every gate.
        mode: ``"sample"``, ``"mean"`` or ``"relu"``.
        dtype: parameter dtype.
        device: parameter device.

    Attributes:
        arch: the resolved :class:`VGGArchitecture`.
        convs: the ``nn.Conv2d(3×3, padding=1, bias=False)`` layers.
        linears: the ``nn.Linear(bias=False)`` layers, the last of width 1.
        gates: one :class:`~umwelt.nn.gate.Gate` per convolution, then one per hidden linear
            layer.

    Raises:
        ConfigError: for an unknown preset, a bad width multiplier or input shape, a bad
            temperature or mode, naming the value.
    """

    def __init__(
        self,
        preset: str,
        *,
        width: float = 1.0,
        input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE,
        temperature: float,
        mode: str = "sample",
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ):
        super().__init__()
        arch = vgg_architecture(preset, width, input_shape)
        self.arch = arch
        self._temperature = check_temperature(temperature)
        self._mode = check_mode(mode)
        cin = (arch.input_shape[0], *arch.channels[:-1])
        self.convs = nn.ModuleList(
            nn.utils.skip_init(
                nn.Conv2d, a, b, 3, padding=1, bias=False, dtype=dtype, device=device
            )
            for a, b in zip(cin, arch.channels, strict=True)
        )
        lw = arch.linear_widths
        self.linears = nn.ModuleList(
            nn.utils.skip_init(nn.Linear, a, b, bias=False, dtype=dtype, device=device)
            for a, b in zip(lw[:-1], lw[1:], strict=True)
        )
        with torch.no_grad():
            for p in self.parameters():
                p.zero_()
        self.gates = nn.ModuleList(Gate(self._temperature, self._mode) for _ in arch.gate_shapes)
        self._pool_after = arch.pool_after

    # -- configuration ---------------------------------------------------------------------------

    @property
    def preset(self) -> str:
        """The preset name."""
        return self.arch.preset

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one example."""
        return self.arch.input_shape

    @property
    def gate_shapes(self) -> tuple[tuple[int, ...], ...]:
        """Per gated layer, one example's gate shape: ``(c, h, w)`` or ``(n,)``."""
        return self.arch.gate_shapes

    @property
    def depth(self) -> int:
        """Number of weight layers."""
        return self.arch.depth

    @property
    def weight_layers(self) -> list[nn.Module]:
        """Every weight layer in order: the convolutions, then the linear layers."""
        return [*self.convs, *self.linears]

    def extra_repr(self) -> str:
        return f"preset={self.arch.preset!r}, width={self.arch.width}"

    # -- forward passes --------------------------------------------------------------------------

    def _check_input(self, x: torch.Tensor) -> None:
        if x.shape[1:] != self.arch.input_shape or x.ndim != 4:
            raise ShapeError(
                f"{self.arch.preset} expects inputs (B, {', '.join(map(str, self.input_shape))}), "
                f"got {tuple(x.shape)}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``f(x)`` of shape ``(B,)`` for images ``(B, C, H, W)``, gates per the current mode."""
        self._check_input(x)
        gates = iter(self.gates)
        a = x
        for conv, gate, pool in zip(self.convs, gates, self._pool_after):
            a = gate(conv(a))  # (B, c_l, h_l, w_l)
            if pool:
                a = F.max_pool2d(a, 2)  # (B, c_l, h_l/2, w_l/2)
        a = a.flatten(1)  # (B, c·h·w)
        for lin, gate in zip(self.linears, gates):
            a = gate(lin(a))  # (B, n_l)
        return self.linears[-1](a)[:, 0]  # (B,)

    def forward_with_gates(self, x: torch.Tensor, gates: Sequence[torch.Tensor]) -> torch.Tensor:
        """``f(x)`` of shape ``(B,)`` with every gated layer's gates fixed to ``gates``.

        Args:
            x: images ``(B, C, H, W)``.
            gates: one bool tensor per gated layer, of shape ``(B, *gate_shapes[l])`` (or
                ``gate_shapes[l]``, broadcast over the batch).

        Raises:
            ShapeError: for a wrong number of gate layers or a wrong gate shape.
        """
        self._check_input(x)
        if len(gates) != len(self.gates):
            raise ShapeError(f"expected {len(self.gates)} gate layers, got {len(gates)}")
        for l, (h, shape) in enumerate(zip(gates, self.gate_shapes, strict=True)):
            if tuple(h.shape[-len(shape) :]) != shape or h.ndim > len(shape) + 1:
                raise ShapeError(
                    f"gates of {self.arch.layer_names[l]} must have shape (B, "
                    f"{', '.join(map(str, shape))}), got {tuple(h.shape)}"
                )
        hs = iter(gates)
        a = x
        for conv, h, pool in zip(self.convs, hs, self._pool_after):
            a = torch.where(h.to(dtype=torch.bool), conv(a), 0.0)  # x_l = dg(h_l) z_l
            if pool:
                a = F.max_pool2d(a, 2)
        a = a.flatten(1)
        for lin, h in zip(self.linears, hs):
            a = torch.where(h.to(dtype=torch.bool), lin(a), 0.0)
        return self.linears[-1](a)[:, 0]

    @torch.no_grad()
    def relu_gates(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The ``T = 0`` gates ``1[z_l > 0]`` of these weights, one bool tensor per gated layer:
        ``(B, c, h, w)`` for a convolution (its output, before pooling), ``(B, n)`` for a hidden
        linear layer."""
        self._check_input(x)
        out = []
        a = x
        for conv, pool in zip(self.convs, self._pool_after, strict=True):
            z = conv(a)  # (B, c_l, h_l, w_l)
            h = z > 0
            out.append(h)
            a = torch.where(h, z, 0.0)
            if pool:
                a = F.max_pool2d(a, 2)
        a = a.flatten(1)
        for lin in self.linears[:-1]:
            z = lin(a)  # (B, n_l)
            h = z > 0
            out.append(h)
            a = torch.where(h, z, 0.0)
        return out

    # -- conversion ------------------------------------------------------------------------------

    def relu_reference(self) -> nn.Sequential:
        """A plain ``torch.nn`` ReLU VGG (see :func:`plain_relu_vgg`) with a copy of these
        weights, on their device and dtype."""
        w = self.convs[0].weight
        seq = _plain_sequential(self.arch, w.dtype, w.device)
        with torch.no_grad():
            for dst, src in zip(_plain_weights(seq), self.weight_layers, strict=True):
                dst.copy_(src.weight)
        return seq


def build_vgg(
    preset: str,
    *,
    width: float = 1.0,
    input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE,
    temperature: float,
    mode: str = "sample",
    seed: int,
    gain: float = math.sqrt(2.0),
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> GatedVGG:
    r"""A :class:`GatedVGG` with He-normal weights :math:`\mathcal N(0, g^2/\mathrm{fan\_in})`.

    Args:
        preset: one of :data:`VGG_PRESETS`.
        width: width multiplier of every hidden layer.
        input_shape: ``(C, H, W)`` of one example.
        temperature: :math:`T \in [0, \infty]` of every gate.
        mode: ``"sample"``, ``"mean"`` or ``"relu"``.
        seed: seed of the CPU generator the weights are drawn from (float64, layer by layer).
        gain: :math:`g` (He: :math:`\sqrt2`).
        dtype: parameter dtype (the float64 draws are rounded to it).
        device: parameter device (the same weights on every device).

    Raises:
        ConfigError: for an unknown preset, a bad width, input shape, gain, seed, temperature or
            mode, naming the value.

    >>> m = build_vgg("vgg12", width=1 / 16, temperature=0.0, seed=0)
    >>> m(torch.zeros(2, 3, 32, 32)).shape, len(m.gates), sum(p.numel() for p in m.parameters())
    (torch.Size([2]), 11, 37884)
    """
    model = GatedVGG(
        preset,
        width=width,
        input_shape=input_shape,
        temperature=temperature,
        mode=mode,
        dtype=dtype,
        device=device,
    )
    _he_normal_([m.weight for m in model.weight_layers], seed, gain)
    return model


# -- the plain torch.nn reference ----------------------------------------------------------------


def _plain_sequential(
    arch: VGGArchitecture, dtype: torch.dtype, device: torch.device | str
) -> nn.Sequential:
    layers: list[nn.Module] = []
    cin = arch.input_shape[0]
    for c, pool in zip(arch.channels, arch.pool_after, strict=True):
        layers.append(
            nn.utils.skip_init(
                nn.Conv2d, cin, c, 3, padding=1, bias=False, dtype=dtype, device=device
            )
        )
        layers.append(nn.ReLU())
        if pool:
            layers.append(nn.MaxPool2d(2))
        cin = c
    layers.append(nn.Flatten())
    lw = arch.linear_widths
    for l, (a, b) in enumerate(zip(lw[:-1], lw[1:], strict=True)):
        layers.append(nn.utils.skip_init(nn.Linear, a, b, bias=False, dtype=dtype, device=device))
        if l < len(lw) - 2:
            layers.append(nn.ReLU())
    layers.append(nn.Flatten(0))  # (B, 1) -> (B,)
    return nn.Sequential(*layers)


def _plain_weights(seq: nn.Sequential) -> list[torch.Tensor]:
    return [m.weight for m in seq if isinstance(m, nn.Conv2d | nn.Linear)]


def plain_relu_vgg(
    preset: str,
    width: float = 1.0,
    *,
    input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE,
    seed: int,
    gain: float = math.sqrt(2.0),
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> nn.Sequential:
    """The ReLU VGG of ``preset`` as a plain ``nn.Sequential`` of ``torch.nn`` layers.

    ``Conv2d(bias=False), ReLU, [MaxPool2d(2)], ..., Flatten, Linear(bias=False), ReLU, ...,
    Linear(bias=False), Flatten(0)``: no :class:`~umwelt.nn.gate.Gate`, output ``(B,)``. Its
    weights are those :func:`build_vgg` draws for the same arguments, so it is the reference of
    the ``T = 0`` and ``"relu"``-mode :class:`GatedVGG` (for the weights of an existing model use
    :meth:`GatedVGG.relu_reference`).
    """
    arch = vgg_architecture(preset, width, input_shape)
    seq = _plain_sequential(arch, dtype, device)
    _he_normal_(_plain_weights(seq), seed, gain)
    return seq
