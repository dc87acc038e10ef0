r"""The gate layer in torch: binary neuronal gates at temperature :math:`T` (THEORY.md §1–2).

Given a layer's logits :math:`z`, the gates are independent Bernoulli variables with
:math:`p = \sigma(z/T)` (eq. 2–8) and the layer outputs :math:`x = \mathrm{dg}(h)\,z`.
:class:`Gate` computes one of three things:

* ``"sample"`` — the E-step: draw :math:`h \sim \mathrm{Bern}(\sigma(z/T))` with
  :math:`h = 1[u < p]`, :math:`u \sim U[0, 1)`, and return :math:`h \odot z` (the values of
  ``torch.where(h, z, 0)``, up to the sign of a zero). The gates are
  constants for autograd, so ``backward`` is the M-step gradient with the sampled gates held
  fixed: :math:`\partial x_i / \partial z_i = h_i`. At :math:`T = 0` no random numbers are drawn
  and the layer *is* ``torch.relu`` (bitwise, forward and backward: the tie :math:`z = 0` is a
  closed gate with gradient 0, eq. 7).
* ``"mean"`` — the mean field :math:`\mathbb{E}[h z] = z\,\sigma(z/T) = T\,\mathrm{SiLU}(z/T)`:
  ReLU at :math:`T = 0`, :math:`z/2` at :math:`T = \infty`.
* ``"relu"`` — ``torch.relu(z)``, whatever :math:`T` is.

Both limits of :math:`T` are exact, and no mode produces NaN or inf for finite logits at any
:math:`T \in [0, \infty]`: when :math:`T` is below the smallest normal number of the logits'
dtype (so that ``z / T`` would be ``0 / 0`` at a tie) the scaled logits are formed in float64.
This mirrors :func:`umwelt.gates.scaled_logits`, the numpy oracle.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from umwelt.errors import ConfigError
from umwelt.gates import check_temperature
from umwelt.nn.noise import GateNoise

__all__ = [
    "GATE_MODES",
    "Gate",
    "GatedModel",
    "check_mode",
    "gate_entropy_bits",
    "scaled_logits",
]

GATE_MODES: tuple[str, ...] = ("sample", "mean", "relu")

_LN2 = math.log(2.0)


def check_mode(mode: str) -> str:
    """Return ``mode`` unless it is not one of :data:`GATE_MODES` (then :class:`ConfigError`)."""
    if mode not in GATE_MODES:
        raise ConfigError(f"gate mode must be one of {', '.join(GATE_MODES)}, got {mode!r}")
    return mode


def scaled_logits(z: torch.Tensor, T: float) -> torch.Tensor:
    r"""The natural parameter :math:`a = z/T` for a finite temperature :math:`0 < T < \infty`.

    When ``T`` is below the smallest normal number of ``z``'s dtype (e.g. ``T = 1e-300`` for
    float32, where ``T`` would round to 0 and a tie would give ``0/0``) the division is done in
    float64, where it is exact enough: :math:`\pm\infty` off the tie and 0 on it. Differentiable.

    Args:
        z: logits, any shape.
        T: a temperature with ``0 < T < inf`` (the two limits are the caller's business).

    Returns:
        ``z / T``, of ``z``'s dtype or float64 in the tiny-``T`` case.
    """
    if T < torch.finfo(z.dtype).tiny:
        return z.double() / T
    return z / T


def gate_entropy_bits(z: torch.Tensor, T: float) -> torch.Tensor:
    r"""Entropy in bits of each gate :math:`\mathrm{Bern}(\sigma(z/T))`, as float64.

    .. math::
        H(a) = \mathrm{softplus}(-|a|) + |a|\,\sigma(-|a|) \quad \text{(nats)},\qquad a = z/T,

    a sum of two non-negative terms (no cancellation); 0 at ``T = 0`` (and wherever ``z/T``
    overflows), exactly 1 bit at ``T = inf``.

    >>> gate_entropy_bits(torch.tensor([0.0, 5.0]), float("inf")).tolist()
    [1.0, 1.0]
    >>> gate_entropy_bits(torch.tensor([0.0, -5.0]), 0.0).tolist()
    [0.0, 0.0]
    """
    T = check_temperature(T)
    z = z.detach().double()
    if T == 0.0:
        return torch.zeros_like(z)
    if math.isinf(T):
        return torch.ones_like(z)
    a = (z / T).abs()
    nats = nn.functional.softplus(-a) + a * torch.sigmoid(-a)
    return torch.where(torch.isinf(a), 0.0, nats) / _LN2


class Gate(nn.Module):
    r"""Binary gates at temperature ``T`` applied to a layer's logits: ``x = h * z``.

    Args:
        temperature: :math:`T \in [0, \infty]`.
        mode: ``"sample"`` (E-step: Bernoulli gates, held fixed for backward), ``"mean"``
            (:math:`z\,\sigma(z/T)`) or ``"relu"``.
        generator: source of the sampling noise, on the device of the inputs: a
            :class:`~umwelt.nn.noise.GateNoise` (fast on the CPU; what runs use) or a
            :class:`torch.Generator`; ``None`` uses torch's default generator of that device.
        record: keep the last gates and logits (detached) in :attr:`last_gates` and
            :attr:`last_logits`, for statistics.

    Attributes:
        last_gates: bool tensor ``(B, n)`` of the last forward pass when ``record`` is on (the
            sampled gates in ``"sample"`` mode, ``z > 0`` in ``"relu"`` mode, ``None`` in
            ``"mean"`` mode, which has no gates).
        last_logits: the last input ``z``, detached, when ``record`` is on.

    Raises:
        ConfigError: for a temperature outside ``[0, inf]`` or an unknown mode, naming it.

    >>> g = Gate(0.0)
    >>> g(torch.tensor([-1.0, 0.0, 2.0])).tolist()
    [0.0, 0.0, 2.0]
    """

    def __init__(
        self,
        temperature: float,
        mode: str = "sample",
        *,
        generator: GateNoise | torch.Generator | None = None,
        record: bool = False,
    ):
        super().__init__()
        self.temperature = temperature
        self.mode = mode
        self.generator = generator
        self.record = record
        self.last_gates: torch.Tensor | None = None
        self.last_logits: torch.Tensor | None = None

    @property
    def temperature(self) -> float:
        """The temperature :math:`T` (validated on assignment)."""
        return self._temperature

    @temperature.setter
    def temperature(self, T: float) -> None:
        self._temperature = check_temperature(T)

    @property
    def mode(self) -> str:
        """``"sample"``, ``"mean"`` or ``"relu"`` (validated on assignment)."""
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        self._mode = check_mode(mode)

    def extra_repr(self) -> str:
        return f"temperature={self._temperature}, mode={self._mode!r}"

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Apply the gates to the logits ``z`` (any shape); returns a tensor of ``z``'s shape."""
        mode, T = self._mode, self._temperature
        if mode == "sample":
            return self._sample(z, T)
        if mode == "relu":
            if self.record:
                self._keep(z > 0, z)
            return torch.relu(z)
        if self.record:
            self._keep(None, z)
        if T == 0.0:
            return torch.relu(z)
        if T == math.inf:
            return z * 0.5
        return z * torch.sigmoid(scaled_logits(z, T)).to(z.dtype)  # z σ(z/T)

    def _sample(self, z: torch.Tensor, T: float) -> torch.Tensor:
        if T == 0.0:
            # h = 1[z > 0], no draws: torch.relu itself, so T = 0 is bitwise the ReLU net (values
            # of where(z > 0, z, 0), gradient 0 at the tie; relu also keeps the sign of a -0).
            if self.record:
                self._keep(z > 0, z)
            return torch.relu(z)
        zd = z.detach()  # the gates are constants: no autograd graph for p or u
        gen = self.generator
        if isinstance(gen, GateNoise):
            m = gen.uniform(zd.shape, zd.dtype)  # u ~ U[0, 1), float32 or float64
        else:
            m = torch.empty_like(zd).uniform_(generator=gen)  # u ~ U[0, 1)
        if T == math.inf:
            m.lt_(0.5)  # p = 1/2
        else:
            m.lt_(torch.sigmoid_(scaled_logits(zd, T)))  # p = σ(z/T)
        # m = 1[u < p] as 0.0/1.0 in z's dtype, in place: fewer kernels than a bool mask and
        # torch.where, and the backward of a product is one multiply (∂x/∂z = h).
        if m.dtype != z.dtype:
            m = m.to(z.dtype)
        if self.record:
            self._keep(m.bool(), z)
        return z * m  # x = dg(h) z, gates held fixed

    def _keep(self, h: torch.Tensor | None, z: torch.Tensor) -> None:
        self.last_gates = h
        self.last_logits = z.detach()


class GatedModel(nn.Module):
    """Base of the networks whose hidden layers are :class:`Gate` modules sharing one temperature
    and one mode (:class:`~umwelt.nn.mlp.GatedMLP`, :class:`~umwelt.nn.vgg.GatedVGG`).

    A subclass fills :attr:`gates` (a ``ModuleList`` of :class:`Gate`) and calls
    :meth:`set_temperature` and :meth:`set_mode` once; the setters change every gate together.
    """

    gates: nn.ModuleList

    @property
    def temperature(self) -> float:
        """The gates' common temperature (set it with :meth:`set_temperature`)."""
        return self._temperature

    @property
    def mode(self) -> str:
        """The gates' common mode (set it with :meth:`set_mode`)."""
        return self._mode

    def set_mode(self, mode: str):
        """Set every gate's mode (``"sample"``, ``"mean"`` or ``"relu"``); returns ``self``."""
        self._mode = check_mode(mode)
        for g in self.gates:
            g.mode = mode
        return self

    def set_temperature(self, T: float):
        """Set every gate's temperature; returns ``self``."""
        self._temperature = check_temperature(T)
        for g in self.gates:
            g.temperature = self._temperature
        return self

    def set_generator(self, generator: GateNoise | torch.Generator | None):
        """Use ``generator`` (on the parameters' device, or ``None``) for all gate noise."""
        if generator is not None:
            dev = next(self.parameters()).device
            if generator.device.type != dev.type:
                raise ConfigError(
                    f"the gate generator is on {generator.device} but the model is on {dev}"
                )
        for g in self.gates:
            g.generator = generator
        return self

    def set_record(self, record: bool):
        """Make every gate keep (or stop keeping) its last gates and logits; returns ``self``."""
        for g in self.gates:
            g.record = bool(record)
        return self
