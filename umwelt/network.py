r"""A layered, bias-free network as a multilayer probabilistic graphical model (THEORY.md §1).

Weights :math:`W_l \in \mathbb{R}^{n_{l-1} \times n_l}`, :math:`l = 1..L`, with :math:`n_L = 1`.
Every hidden layer :math:`l < L` carries binary gates :math:`h_l`, drawn given everything below:

.. math::
    z_l = W_l^\top x_{l-1}, \quad
    h_l \sim \mu_l(\cdot \mid z_l) = \prod_i \mathrm{Bern}(\sigma(z_{l,i}/T)), \quad
    x_l = \mathrm{dg}(h_l)\, z_l, \quad f(x) = W_L^\top x_{L-1}.

Sampling is ancestral, layer by layer ("sample a gate, then compute the logit of the next
layer"); at :math:`T = 0` it is exactly the ReLU network. Inputs are batched: ``x`` has shape
``(B, n_0)`` and each layer's gates ``(B, n_l)``; weights follow the paper's orientation
``(n_in, n_out)`` so ``z = x @ W``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from umwelt import gates as gl
from umwelt.errors import ConfigError, ShapeError

__all__ = ["GateSample", "LayeredNetwork", "parse_widths"]


def parse_widths(widths: Sequence[int] | str, *, what: str = "widths") -> tuple[int, ...]:
    """Check a list of layer widths (``"32,32"`` or ``[32, 32]``): positive integers, non-empty.

    Raises:
        ConfigError: naming the value when it is empty, malformed or has a width < 1.
    """
    raw = widths
    if isinstance(widths, str):
        parts = [p.strip() for p in widths.split(",")]
        if widths.strip() == "" or any(p == "" for p in parts):
            raise ConfigError(f"{what} must be comma-separated positive integers, got {raw!r}")
        try:
            widths = [int(p) for p in parts]
        except ValueError:
            raise ConfigError(
                f"{what} must be comma-separated positive integers, got {raw!r}"
            ) from None
    out = []
    for w in widths:
        if isinstance(w, bool) or not isinstance(w, int | np.integer) or w < 1:
            raise ConfigError(f"{what} must be positive integers, got {raw!r}")
        out.append(int(w))
    if not out:
        raise ConfigError(f"{what} must not be empty, got {raw!r}")
    return tuple(out)


@dataclass(frozen=True)
class GateSample:
    """One sampled gate configuration per input.

    Attributes:
        gates: ``L-1`` bool arrays, ``gates[l-1]`` of shape ``(B, n_l)``.
        logits: ``L`` arrays, ``logits[l-1] = z_l`` of shape ``(B, n_l)`` (the last is ``f``).
        output: ``f(x)`` of shape ``(B,)``.
    """

    gates: list[np.ndarray]
    logits: list[np.ndarray]
    output: np.ndarray


class LayeredNetwork:
    r"""Bias-free layered network with gates at every hidden layer.

    Args:
        weights: ``W_1..W_L``, ``W_l`` of shape ``(n_{l-1}, n_l)``, last of width 1.

    Raises:
        ShapeError: when consecutive shapes do not chain or the output width is not 1.
    """

    def __init__(self, weights: Sequence[np.ndarray]):
        ws = [np.array(w, dtype=np.float64) for w in weights]
        if not ws:
            raise ShapeError("a network needs at least one weight matrix, got none")
        for l, w in enumerate(ws, start=1):
            if w.ndim != 2:
                raise ShapeError(f"W_{l} must be 2-D (n_in, n_out), got shape {w.shape}")
            if l > 1 and w.shape[0] != ws[l - 2].shape[1]:
                raise ShapeError(
                    f"W_{l} has {w.shape[0]} inputs but W_{l - 1} has {ws[l - 2].shape[1]} outputs"
                )
            if not np.all(np.isfinite(w)):
                raise ShapeError(f"W_{l} contains non-finite entries")
        if ws[-1].shape[1] != 1:
            raise ShapeError(f"the output layer must have width 1, got {ws[-1].shape[1]}")
        self.weights: list[np.ndarray] = ws

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def he_normal(
        cls, widths: Sequence[int] | str, seed: int, gain: float = math.sqrt(2.0)
    ) -> LayeredNetwork:
        r"""He-normal initialization :math:`W_l \sim \mathcal{N}(0, \mathrm{gain}^2 / n_{l-1})`.

        Args:
            widths: ``(n_0, n_1, ..., n_L)`` with ``n_L = 1``, input first.
            seed: seed of the one generator all layers are drawn from, in order.
            gain: standard deviation times :math:`\sqrt{n_{l-1}}`; :math:`\sqrt 2` is He's.
        """
        ws = parse_widths(widths)
        if len(ws) < 2:
            raise ConfigError(f"widths need an input and an output width, got {widths!r}")
        if ws[-1] != 1:
            raise ConfigError(f"the output width must be 1, got widths {widths!r}")
        if not (math.isfinite(gain) and gain > 0):
            raise ConfigError(f"gain must be a finite number > 0, got {gain!r}")
        rng = np.random.default_rng(seed)
        return cls(
            [rng.normal(0.0, gain / math.sqrt(a), size=(a, b)) for a, b in zip(ws[:-1], ws[1:])]
        )

    # -- shape ----------------------------------------------------------------------------------

    @property
    def widths(self) -> tuple[int, ...]:
        """``(n_0, n_1, ..., n_L)``."""
        return (self.weights[0].shape[0],) + tuple(w.shape[1] for w in self.weights)

    @property
    def depth(self) -> int:
        """Number of weight layers ``L``."""
        return len(self.weights)

    @property
    def hidden_widths(self) -> tuple[int, ...]:
        """``(n_1, ..., n_{L-1})``: the widths that carry gates."""
        return self.widths[1:-1]

    @property
    def n_gates(self) -> int:
        """Total number of hidden gates ``n_1 + ... + n_{L-1}``."""
        return sum(self.hidden_widths)

    def __repr__(self) -> str:
        return f"LayeredNetwork(widths={self.widths})"

    def _check_input(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.widths[0]:
            raise ShapeError(f"input must have shape (B, {self.widths[0]}), got {x.shape}")
        return x

    def _check_gates(self, gates: Sequence[np.ndarray], batch: int) -> list[np.ndarray]:
        if len(gates) != self.depth - 1:
            raise ShapeError(f"expected {self.depth - 1} gate layers, got {len(gates)}")
        out = []
        for l, (h, n) in enumerate(zip(gates, self.hidden_widths), start=1):
            h = np.asarray(h)
            if h.shape[-1:] != (n,) or h.ndim > 2:
                raise ShapeError(f"gates of layer {l} must have shape (B, {n}), got {h.shape}")
            out.append(np.broadcast_to(h, (batch, n)))
        return out

    # -- the graphical model --------------------------------------------------------------------

    def logits(self, x: np.ndarray, gates: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Every layer's logits ``z_1..z_L`` for fixed gates (``z_L`` is the output, ``(B, 1)``)."""
        x = self._check_input(x)
        gates = self._check_gates(gates, x.shape[0])
        zs = []
        a = x
        for l, w in enumerate(self.weights):
            z = a @ w  # (B, n_l)
            zs.append(z)
            if l < self.depth - 1:
                a = np.where(gates[l], z, 0.0)  # x_l = dg(h_l) z_l
        return zs

    def output(self, x: np.ndarray, gates: Sequence[np.ndarray]) -> np.ndarray:
        """``f(x)`` for the given gates, shape ``(B,)``."""
        return self.logits(x, gates)[-1][:, 0]

    def log_prob(self, x: np.ndarray, gates: Sequence[np.ndarray], T: float) -> np.ndarray:
        r"""``log μ(h_1..h_{L-1} | x) = Σ_l log μ_l(h_l | O_{l-1})``, shape ``(B,)``."""
        zs = self.logits(x, gates)
        gates = self._check_gates(gates, zs[0].shape[0])
        return sum(
            (gl.gate_log_prob(h, z, T) for h, z in zip(gates, zs[:-1])),
            start=np.zeros(zs[0].shape[0]),
        )

    def sample(self, x: np.ndarray, T: float, rng: np.random.Generator) -> GateSample:
        """Ancestral sample of one gate configuration per input row (the E-step)."""
        T = gl.check_temperature(T)
        x = self._check_input(x)
        gates, zs = [], []
        a = x
        for l, w in enumerate(self.weights):
            z = a @ w  # (B, n_l)
            zs.append(z)
            if l < self.depth - 1:
                h = gl.sample_gates(z, T, rng)
                gates.append(h)
                a = np.where(h, z, 0.0)
        return GateSample(gates=gates, logits=zs, output=zs[-1][:, 0])

    def relu_sample(self, x: np.ndarray) -> GateSample:
        """The ``T = 0`` configuration: the ReLU network's gates, logits and output."""
        return self.sample(x, 0.0, np.random.default_rng(0))  # no draws at T = 0

    def relu_forward(self, x: np.ndarray) -> np.ndarray:
        """The ReLU network's output ``f(x)``, shape ``(B,)``."""
        return self.relu_sample(x).output

    def mean_field_forward(self, x: np.ndarray, T: float) -> np.ndarray:
        r"""Mean-field output: every layer replaced by :math:`z\,\sigma(z/T)`, shape ``(B,)``."""
        T = gl.check_temperature(T)
        a = self._check_input(x)
        for l, w in enumerate(self.weights):
            a = a @ w
            if l < self.depth - 1:
                a = gl.mean_field(a, T)
        return a[:, 0]
