r"""One entry point for every model the training driver can build (issue 4, item 1).

``build_model(spec, ...)`` takes the ``--model`` string of ``umwelt train``:

* a VGG preset — ``vgg11``, ``vgg12``, ``vgg13``, ``vgg16`` (:mod:`umwelt.nn.vgg`, the paper's
  experiment is ``vgg12``);
* ``mlp:<hidden widths>`` such as ``mlp:32,32`` — a :class:`~umwelt.nn.mlp.GatedMLP` on the
  flattened input, widths ``(prod(input_shape), 32, 32, 1)``, with exactly the weights
  :func:`~umwelt.nn.mlp.build_mlp` draws for the same seed and gain (those of the numpy engine's
  :meth:`~umwelt.network.LayeredNetwork.he_normal`).

Every model maps ``(B, *input_shape)`` to ``(B,)`` and shares the gate interface (``gates``,
``temperature``, ``mode``, ``set_mode``, ``set_temperature``, ``set_generator``,
``set_record``, ``relu_gates``, ``forward_with_gates``). The width multiplier scales every
hidden layer of either family the same way: ``round(n · width)`` with halves up, refused when a
layer would be empty.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from umwelt.errors import ConfigError, ShapeError
from umwelt.network import parse_widths
from umwelt.nn.device import resolve_device, resolve_dtype
from umwelt.nn.mlp import GatedMLP, build_mlp
from umwelt.nn.vgg import VGG_PRESETS, build_vgg, check_width, scale_width

__all__ = ["MLP_PREFIX", "MODEL_PRESETS", "FlatMLP", "build_model", "count_parameters"]

MODEL_PRESETS: tuple[str, ...] = VGG_PRESETS
"""The named models; besides them ``build_model`` takes ``mlp:<hidden widths>``."""

MLP_PREFIX = "mlp:"


def _known() -> str:
    return f"{', '.join(MODEL_PRESETS)}, or {MLP_PREFIX}<hidden widths> such as {MLP_PREFIX}32,32"


class FlatMLP(GatedMLP):
    r"""A :class:`~umwelt.nn.mlp.GatedMLP` that flattens its input: ``(B, *input_shape)`` →
    ``(B, n_0)`` with :math:`n_0 = \prod` ``input_shape``, then the MLP.

    Everything else — parameters and their names, ``widths``, the gate interface,
    ``to_network`` — is the :class:`~umwelt.nn.mlp.GatedMLP`'s. Inputs already flat
    (``(B, n_0)``) are accepted too.

    Args:
        widths: ``(n_0, ..., n_L)`` with ``n_L = 1``.
        input_shape: one example's shape, with product ``n_0`` (default ``(n_0,)``).
        temperature, mode, dtype, device: as for :class:`~umwelt.nn.mlp.GatedMLP`.

    Raises:
        ConfigError: when ``prod(input_shape) != n_0``, and as :class:`GatedMLP` does.
    """

    def __init__(
        self,
        widths: Sequence[int] | str,
        *,
        input_shape: Sequence[int] | None = None,
        temperature: float,
        mode: str = "sample",
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ):
        super().__init__(widths, temperature=temperature, mode=mode, dtype=dtype, device=device)
        n0 = self.widths[0]
        shape = (n0,) if input_shape is None else _check_input_shape(input_shape)
        if math.prod(shape) != n0:
            raise ConfigError(
                f"input shape {shape} has {math.prod(shape)} entries but the MLP's input width "
                f"is {n0}"
            )
        self.input_shape: tuple[int, ...] = shape

    def _flat(self, x: torch.Tensor) -> torch.Tensor:
        rest = x.shape[1:]
        if rest != self.input_shape and rest != (self.widths[0],):
            raise ShapeError(
                f"the MLP expects inputs (B, {', '.join(map(str, self.input_shape))}), got "
                f"{tuple(x.shape)}"
            )
        return x.flatten(1)  # (B, n_0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``f(x)`` of shape ``(B,)`` for inputs ``(B, *input_shape)``."""
        return super().forward(self._flat(x))

    def forward_with_gates(self, x: torch.Tensor, gates: Sequence[torch.Tensor]) -> torch.Tensor:
        """:meth:`GatedMLP.forward_with_gates` on the flattened input."""
        return super().forward_with_gates(self._flat(x), gates)

    @torch.no_grad()
    def relu_gates(self, x: torch.Tensor) -> list[torch.Tensor]:
        """:meth:`GatedMLP.relu_gates` on the flattened input: ``L - 1`` bool ``(B, n_l)``."""
        return super().relu_gates(self._flat(x))


def _check_input_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = ()
    if not shape or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape):
        raise ConfigError(
            f"input shape must be a non-empty tuple of positive integers, got {input_shape!r}"
        )
    return shape


def _mlp_hidden(spec: str, width: float) -> tuple[int, ...]:
    text = spec[len(MLP_PREFIX) :]
    try:
        hidden = parse_widths(text, what="MLP hidden widths")
    except ConfigError:
        raise ConfigError(
            f"model {spec!r}: {MLP_PREFIX} must be followed by comma-separated positive integer "
            f"hidden widths, such as {MLP_PREFIX}32,32"
        ) from None
    return tuple(
        scale_width(n, width, f"hidden layer {l} of {spec}", unit="units")
        for l, n in enumerate(hidden, start=1)
    )


def build_model(
    spec: str,
    *,
    input_shape: tuple[int, ...],
    temperature: float,
    mode: str = "sample",
    width: float = 1.0,
    gain: float = math.sqrt(2.0),
    seed: int,
    dtype: torch.dtype | str = torch.float32,
    device: torch.device | str = "cpu",
) -> nn.Module:
    r"""The model named by ``spec`` with seeded He-normal weights.

    Args:
        spec: a VGG preset (:data:`MODEL_PRESETS`) or ``mlp:<hidden widths>``, e.g. ``mlp:32,32``.
        input_shape: one example's shape, e.g. ``(3, 32, 32)`` (a VGG needs ``(C, H, W)`` with
            ``H`` and ``W`` multiples of 32; an MLP flattens any shape).
        temperature: :math:`T \in [0, \infty]` of every gate.
        mode: ``"sample"``, ``"mean"`` or ``"relu"``.
        width: multiplier of every hidden layer's width (VGG channels and hidden linear widths;
            MLP hidden widths), rounded to the nearest integer, halves up.
        gain: He gain :math:`g`, weights :math:`\mathcal N(0, g^2/\mathrm{fan\_in})`.
        seed: weight seed. VGG: :func:`~umwelt.nn.vgg.build_vgg`; MLP:
            :func:`~umwelt.nn.mlp.build_mlp` (the numpy engine's draws).
        dtype: ``torch.float32``/``torch.float64`` or ``"float32"``/``"float64"``.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a :class:`torch.device`.

    Returns:
        A :class:`~umwelt.nn.vgg.GatedVGG` or a :class:`FlatMLP`, mapping
        ``(B, *input_shape)`` to ``(B,)``.

    Raises:
        ConfigError: for an unknown preset (listing the known ones), malformed MLP widths, a
            width multiplier that makes a layer empty, a bad input shape, gain, seed,
            temperature, mode, dtype or device — naming the value.

    >>> m = build_model("mlp:4", input_shape=(2, 3), temperature=0.0, seed=0)
    >>> m.widths, m(torch.zeros(5, 2, 3)).shape
    ((6, 4, 1), torch.Size([5]))
    """
    if not isinstance(spec, str):
        raise ConfigError(f"model must be a string ({_known()}), got {spec!r}")
    dtype = resolve_dtype(dtype)
    device = resolve_device(device)
    width = check_width(width)
    name = spec.strip()
    if name.startswith(MLP_PREFIX):
        shape = _check_input_shape(input_shape)
        widths = (math.prod(shape), *_mlp_hidden(name, width), 1)
        model = FlatMLP(
            widths,
            input_shape=shape,
            temperature=temperature,
            mode=mode,
            dtype=dtype,
            device=device,
        )
        ref = build_mlp(
            widths,
            temperature=temperature,
            mode=mode,
            seed=seed,
            gain=gain,
            dtype=dtype,
            device=device,
        )
        model.load_state_dict(ref.state_dict())
        return model
    if name in VGG_PRESETS:
        return build_vgg(
            name,
            width=width,
            input_shape=input_shape,
            temperature=temperature,
            mode=mode,
            seed=seed,
            gain=gain,
            dtype=dtype,
            device=device,
        )
    raise ConfigError(f"unknown model {spec!r}; known models: {_known()}")


def count_parameters(model: nn.Module) -> int:
    """Number of scalar parameters of ``model`` (all of them are weights: there are no biases).

    >>> count_parameters(build_model("vgg12", input_shape=(3, 32, 32), temperature=0.0, seed=0))
    9664704
    """
    return sum(p.numel() for p in model.parameters())
