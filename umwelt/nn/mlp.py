r"""A bias-free gated multilayer perceptron in torch (THEORY.md §1).

.. math::
    z_l = x_{l-1} W_l, \qquad h_l \sim \mathrm{Bern}(\sigma(z_l/T)), \qquad x_l = h_l \odot z_l,
    \qquad f = x_{L-1} W_L,

with ``nn.Linear(bias=False)`` layers (``linear.weight`` is :math:`W_l^\top`, shape
``(n_l, n_{l-1})``) and a :class:`~umwelt.nn.gate.Gate` after every hidden one. It is the torch
twin of :class:`umwelt.network.LayeredNetwork` (the numpy oracle): :func:`build_mlp` draws the
same He-normal weights from the same seed, and :meth:`GatedMLP.to_network` /
:meth:`GatedMLP.from_network` convert exactly (in float64).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from umwelt.errors import ConfigError, ShapeError
from umwelt.gates import check_temperature
from umwelt.network import LayeredNetwork, parse_widths
from umwelt.nn.gate import Gate, GatedModel, check_mode

__all__ = ["GatedMLP", "build_mlp", "relu_reference_mlp"]


def _check_widths(widths: Sequence[int] | str) -> tuple[int, ...]:
    ws = parse_widths(widths)
    if len(ws) < 2:
        raise ConfigError(f"widths need an input and an output width, got {widths!r}")
    if ws[-1] != 1:
        raise ConfigError(f"the output width must be 1, got widths {widths!r}")
    return ws


class GatedMLP(GatedModel):
    r"""Bias-free MLP with gates at temperature ``T`` after every hidden layer.

    The constructor sets every weight to zero (it draws nothing); use :func:`build_mlp` (seeded
    He-normal) or :meth:`from_network` for useful weights.

    Args:
        widths: ``(n_0, ..., n_L)``, input first, ``n_L = 1`` (a sequence or ``"64,32,1"``).
        temperature: :math:`T \in [0, \infty]` of every gate.
        mode: ``"sample"``, ``"mean"`` or ``"relu"`` (see :class:`~umwelt.nn.gate.Gate`).
        dtype: parameter dtype.
        device: parameter device.

    Attributes:
        linears: the ``L`` ``nn.Linear(bias=False)`` layers.
        gates: the ``L - 1`` hidden :class:`~umwelt.nn.gate.Gate` modules.

    Raises:
        ConfigError: for malformed widths, an output width other than 1, a bad temperature or
            mode, naming the value.
    """

    def __init__(
        self,
        widths: Sequence[int] | str,
        *,
        temperature: float,
        mode: str = "sample",
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ):
        super().__init__()
        ws = _check_widths(widths)
        self._widths = ws
        self.linears = nn.ModuleList(
            nn.utils.skip_init(nn.Linear, a, b, bias=False, dtype=dtype, device=device)
            for a, b in zip(ws[:-1], ws[1:], strict=True)
        )
        with torch.no_grad():
            for lin in self.linears:
                lin.weight.zero_()
        self._temperature = check_temperature(temperature)
        self._mode = check_mode(mode)
        self.gates = nn.ModuleList(Gate(self._temperature, self._mode) for _ in ws[1:-1])

    # -- configuration ---------------------------------------------------------------------------

    @property
    def widths(self) -> tuple[int, ...]:
        """``(n_0, n_1, ..., n_L)``, input first."""
        return self._widths

    @property
    def depth(self) -> int:
        """Number of weight layers ``L``."""
        return len(self.linears)

    # -- forward passes --------------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``f(x)`` of shape ``(B,)`` for inputs ``(B, n_0)``, gates per the current mode."""
        a = x
        for lin, gate in zip(self.linears, self.gates, strict=False):
            a = gate(lin(a))  # (B, n_l)
        return self.linears[-1](a)[:, 0]  # (B,)

    def forward_with_gates(self, x: torch.Tensor, gates: Sequence[torch.Tensor]) -> torch.Tensor:
        """``f(x)`` of shape ``(B,)`` with the hidden gates fixed to ``gates``.

        Args:
            x: inputs ``(B, n_0)``.
            gates: ``L - 1`` bool tensors, ``gates[l-1]`` of shape ``(B, n_l)`` (or ``(n_l,)``,
                broadcast over the batch).

        Raises:
            ShapeError: for a wrong number of gate layers or a wrong width.
        """
        if len(gates) != len(self.gates):
            raise ShapeError(f"expected {len(self.gates)} gate layers, got {len(gates)}")
        a = x
        for l, (lin, h) in enumerate(zip(self.linears, gates, strict=False), start=1):
            if h.shape[-1:] != (self._widths[l],):
                raise ShapeError(
                    f"gates of layer {l} must have shape (B, {self._widths[l]}), got "
                    f"{tuple(h.shape)}"
                )
            a = torch.where(h.to(dtype=torch.bool), lin(a), 0.0)  # x_l = dg(h_l) z_l
        return self.linears[-1](a)[:, 0]

    @torch.no_grad()
    def relu_gates(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The ``T = 0`` gates ``1[z_l > 0]`` of these weights: ``L - 1`` bool ``(B, n_l)``."""
        out = []
        a = x
        for lin in self.linears[:-1]:
            z = lin(a)  # (B, n_l)
            h = z > 0
            out.append(h)
            a = torch.where(h, z, 0.0)
        return out

    # -- conversion ------------------------------------------------------------------------------

    def to_network(self) -> LayeredNetwork:
        """A float64 numpy copy, ``W_l = linears[l-1].weight.T`` of shape ``(n_{l-1}, n_l)``."""
        return LayeredNetwork(
            [
                lin.weight.detach().to(device="cpu", dtype=torch.float64).numpy().T
                for lin in self.linears
            ]
        )

    @classmethod
    def from_network(
        cls,
        net: LayeredNetwork,
        *,
        temperature: float,
        mode: str = "sample",
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> GatedMLP:
        """A :class:`GatedMLP` with the weights of ``net`` (copied, cast to ``dtype``)."""
        model = cls(net.widths, temperature=temperature, mode=mode, dtype=dtype, device=device)
        with torch.no_grad():
            for lin, w in zip(model.linears, net.weights, strict=True):
                lin.weight.copy_(torch.as_tensor(w.T, dtype=dtype))
        return model


def build_mlp(
    widths: Sequence[int] | str,
    *,
    temperature: float,
    mode: str = "sample",
    seed: int,
    gain: float = math.sqrt(2.0),
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> GatedMLP:
    r"""A :class:`GatedMLP` with He-normal weights, :math:`W_l \sim \mathcal N(0, g^2/n_{l-1})`.

    The weights are those of ``LayeredNetwork.he_normal(widths, seed, gain)``, so the numpy and
    torch engines start from the same network for the same seed.

    Args:
        widths: ``(n_0, ..., n_L)``, input first, ``n_L = 1`` (a sequence or ``"64,32,1"``).
        temperature: :math:`T \in [0, \infty]` of every gate.
        mode: ``"sample"``, ``"mean"`` or ``"relu"``.
        seed: seed of the numpy generator the weights are drawn from.
        gain: :math:`g`, the standard deviation times :math:`\sqrt{n_{l-1}}` (He: :math:`\sqrt2`).
        dtype: parameter dtype (the float64 draws are rounded to it).
        device: parameter device.

    Raises:
        ConfigError: for malformed widths, an output width other than 1, a bad gain,
            temperature or mode, naming the value.

    >>> m = build_mlp("3,4,1", temperature=0.0, seed=0, dtype=torch.float64)
    >>> net = LayeredNetwork.he_normal((3, 4, 1), seed=0)
    >>> all((a == b).all() for a, b in zip(m.to_network().weights, net.weights))
    True
    """
    ws = _check_widths(widths)
    net = LayeredNetwork.he_normal(ws, seed=seed, gain=gain)
    return GatedMLP.from_network(
        net, temperature=temperature, mode=mode, dtype=dtype, device=device
    )


def relu_reference_mlp(
    net: LayeredNetwork,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> nn.Sequential:
    """A plain ``Linear, ReLU, ..., Linear`` ``nn.Sequential`` with the weights of ``net``.

    The independent oracle of the ``T = 0`` limit: it returns ``(B, 1)``, not ``(B,)``.
    """
    layers: list[nn.Module] = []
    for l, w in enumerate(net.weights):
        lin = nn.utils.skip_init(
            nn.Linear, w.shape[0], w.shape[1], bias=False, dtype=dtype, device=device
        )
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(w.T, dtype=dtype))
        layers.append(lin)
        if l < len(net.weights) - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)
