r"""The numpy conv net of the circuits: a bias-free VGG with its gates and max-pool selections.

:class:`ConvNetwork` holds the weights (kernels ``(c_out, c_in, k, k)`` as ``torch.nn.Conv2d``,
linear matrices ``(n_in, n_out)`` as :class:`~umwelt.network.LayeredNetwork`) and runs the
forward pass with the gates fixed (:class:`ConvForward`: logits, gates, the winner of each 2×2
max-pool window, ``f(x)``); :func:`tiny_conv_network` is a conv net small enough to list every
circuit. The circuits themselves are :mod:`umwelt.circuits.conv.circuits`'.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from umwelt.circuits.index import _as_rng
from umwelt.errors import ConfigError, ShapeError
from umwelt.network import LayeredNetwork

__all__ = ["ConvForward", "ConvNetwork", "tiny_conv_network"]


# -- the network ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvForward:
    """A forward pass with fixed gates.

    Attributes:
        logits: per gated layer, ``(c, h, w)`` for a convolution, ``(n,)`` for a linear layer.
        gates: the gates used, float 0/1, shaped as the logits.
        selections: per convolution, ``None`` (no pooling) or int ``(c, h/2, w/2)``: the winner
            of each 2×2 window, ``2 dy + dx``.
        output: ``f(x)``, a float.
    """

    logits: list[np.ndarray]
    gates: list[np.ndarray]
    selections: list[np.ndarray | None]
    output: float


def _conv2d(a: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Cross-correlation with zero padding ``k//2``, as ``torch.nn.functional.conv2d``.

    ``a (c_in, h, w)``, ``W (c_out, c_in, k, k)`` → ``(c_out, h, w)``.
    """
    k = W.shape[-1]
    p = k // 2
    ap = np.pad(a, ((0, 0), (p, p), (p, p)))
    win = np.lib.stride_tricks.sliding_window_view(ap, (k, k), axis=(1, 2))  # (c, h, w, k, k)
    return np.einsum("chwij,ocij->ohw", win, W, optimize=True)


def _pool_select(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2×2 max-pooling of ``a (c, h, w)``: ``(pooled (c, h/2, w/2), winner 2 dy + dx)``."""
    c, h, w = a.shape
    win = a.reshape(c, h // 2, 2, w // 2, 2).transpose(0, 1, 3, 2, 4).reshape(c, h // 2, w // 2, 4)
    sel = np.argmax(win, axis=-1)  # the first maximum, in row-major order of the window
    return np.take_along_axis(win, sel[..., None], axis=-1)[..., 0], sel


class ConvNetwork:
    r"""A bias-free convolutional net with gates (numpy, float64): the circuits' view of a VGG.

    ``convs[k]`` has shape ``(c_out, c_in, k, k)`` (``torch.nn.Conv2d``'s, odd ``k``, padding
    ``k//2``); a 2×2 max-pool follows convolution ``k`` when ``pool_after[k]``; the last map is
    flattened (C order) into the linear layers ``linears[m]`` of shape ``(n_in, n_out)`` (the
    paper's orientation, as :class:`~umwelt.network.LayeredNetwork`), the last of width 1.
    Every convolution and every hidden linear layer is gated.

    Args:
        input_shape: ``(C, H, W)``.
        convs: kernels, possibly none (then the net is an MLP on the flattened input).
        pool_after: one flag per convolution.
        linears: at least one matrix; the last has one column.

    Raises:
        ShapeError: for kernels or matrices that do not chain, an even kernel, a pooled map of
            odd size, an output width other than 1.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        convs: Sequence[np.ndarray],
        pool_after: Sequence[bool],
        linears: Sequence[np.ndarray],
    ):
        shape = tuple(int(s) for s in input_shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ShapeError(f"input shape must be (C, H, W) of positive sizes, got {input_shape}")
        self.input_shape: tuple[int, int, int] = shape  # type: ignore[assignment]
        self.convs = [np.array(w, dtype=np.float64) for w in convs]
        self.pool_after = [bool(p) for p in pool_after]
        self.linears = [np.array(w, dtype=np.float64) for w in linears]
        if len(self.pool_after) != len(self.convs):
            raise ShapeError(
                f"pool_after needs one flag per convolution: {len(self.convs)} convolutions, "
                f"{len(self.pool_after)} flags"
            )
        if not self.linears:
            raise ShapeError("a conv net needs at least one linear layer (the output)")
        c, h, w = shape
        self.conv_shapes: list[tuple[int, int, int]] = []
        for k, W in enumerate(self.convs, start=1):
            if W.ndim != 4 or W.shape[2] != W.shape[3] or W.shape[2] % 2 == 0:
                raise ShapeError(
                    f"conv{k} must be (c_out, c_in, k, k) with k odd, got shape {W.shape}"
                )
            if W.shape[1] != c:
                raise ShapeError(f"conv{k} takes {W.shape[1]} channels but receives {c}")
            c = W.shape[0]
            self.conv_shapes.append((c, h, w))
            if self.pool_after[k - 1]:
                if h % 2 or w % 2:
                    raise ShapeError(f"conv{k} is max-pooled 2×2 but its map is {h}×{w} (odd)")
                h, w = h // 2, w // 2
        n = c * h * w
        for m, W in enumerate(self.linears, start=1):
            if W.ndim != 2 or W.shape[0] != n:
                raise ShapeError(f"fc{m} must have shape ({n}, n_out), got {W.shape}")
            n = W.shape[1]
        if n != 1:
            raise ShapeError(f"the output width must be 1, got {n}")
        if not all(np.all(np.isfinite(W)) for W in (*self.convs, *self.linears)):
            raise ConfigError("the weights contain non-finite entries")
        self.flat_features = self.linears[0].shape[0]

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def he_normal(
        cls,
        input_shape: Sequence[int],
        channels: Sequence[int],
        pool_after: Sequence[bool],
        hidden: Sequence[int],
        *,
        kernel: int = 3,
        seed: int = 0,
        gain: float = math.sqrt(2.0),
    ) -> ConvNetwork:
        r"""He-normal weights :math:`\mathcal N(0, g^2/\mathrm{fan\_in})` (``fan_in = c_in k²``
        or ``n_in``), drawn from ``numpy.random.default_rng(seed)`` layer by layer."""
        rng = np.random.default_rng(seed)
        c, h, w = (int(s) for s in input_shape)
        convs = []
        for co, pool in zip(channels, pool_after):
            convs.append(rng.normal(size=(co, c, kernel, kernel)) * gain / math.sqrt(c * kernel**2))
            c = co
            if pool:
                h, w = h // 2, w // 2
        widths = [c * h * w, *hidden, 1]
        linears = [
            rng.normal(size=(a, b)) * gain / math.sqrt(a) for a, b in zip(widths[:-1], widths[1:])
        ]
        return cls(input_shape, convs, pool_after, linears)

    @classmethod
    def from_layered(cls, net: LayeredNetwork) -> ConvNetwork:
        """A :class:`~umwelt.network.LayeredNetwork` as a conv net without convolutions
        (input shape ``(n_0, 1, 1)``): the same circuits, in the same order."""
        return cls((net.widths[0], 1, 1), [], [], [w.copy() for w in net.weights])

    @classmethod
    def from_torch(cls, model) -> ConvNetwork:
        """The weights of a :class:`~umwelt.nn.vgg.GatedVGG` (or a GatedMLP), as float64."""
        import torch

        from umwelt.nn.mlp import GatedMLP
        from umwelt.nn.vgg import GatedVGG

        def arr(t):
            return t.detach().to(device="cpu", dtype=torch.float64).numpy().copy()

        if isinstance(model, GatedVGG):
            return cls(
                model.arch.input_shape,
                [arr(m.weight) for m in model.convs],
                list(model.arch.pool_after),
                [arr(m.weight).T for m in model.linears],
            )
        if isinstance(model, GatedMLP):
            return cls.from_layered(model.to_network())
        raise ConfigError(f"expected a GatedVGG or GatedMLP, got {type(model).__name__}")

    # -- shape ----------------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Number of weight layers ``D`` (convolutions and linear layers)."""
        return len(self.convs) + len(self.linears)

    @property
    def weights(self) -> list[np.ndarray]:
        """Every weight tensor, layer ``1..D``: kernels, then the linear matrices."""
        return [*self.convs, *self.linears]

    @property
    def gate_shapes(self) -> list[tuple[int, ...]]:
        """Per gated layer: ``(c, h, w)`` of a convolution (before pooling), ``(n,)`` else."""
        return [*self.conv_shapes, *((W.shape[1],) for W in self.linears[:-1])]

    @property
    def level_names(self) -> list[str]:
        """``x, conv1, …, convK, fc1, …`` for the levels ``0..D-1``, then ``f``."""
        K = len(self.convs)
        return (
            ["x", *(f"conv{k}" for k in range(1, K + 1))]
            + [f"fc{m}" for m in range(1, len(self.linears))]
            + ["f"]
        )

    @property
    def level_shapes(self) -> list[tuple[int, ...]]:
        """Unit shapes of the levels ``0..D`` (the output is ``(1,)``)."""
        return [self.input_shape, *self.gate_shapes, (1,)]

    def parameter_count(self) -> int:
        """Number of weights."""
        return sum(W.size for W in self.weights)

    def __repr__(self) -> str:
        convs = ", ".join(
            f"{s[0]}{'M' if p else ''}" for s, p in zip(self.conv_shapes, self.pool_after)
        )
        lin = "-".join(str(W.shape[1]) for W in self.linears)
        return f"ConvNetwork(input {self.input_shape}, convs [{convs}], linear {lin})"

    # -- forward passes -------------------------------------------------------------------------

    def _check_x(self, x: np.ndarray) -> np.ndarray:
        a = np.asarray(x, dtype=np.float64)
        if a.shape != self.input_shape and a.shape != (math.prod(self.input_shape),):
            raise ShapeError(
                f"input must have shape {self.input_shape} (or flat {math.prod(self.input_shape)}"
                f"), got {a.shape}"
            )
        if not np.all(np.isfinite(a)):
            raise ConfigError("input x contains non-finite entries")
        return a.reshape(self.input_shape)

    def _check_gates(self, gates) -> list[np.ndarray]:
        shapes = self.gate_shapes
        if isinstance(gates, np.ndarray) or len(gates) != len(shapes):
            got = "an array" if isinstance(gates, np.ndarray) else len(gates)
            raise ShapeError(f"expected {len(shapes)} gate layers, got {got}")
        out = []
        for name, h, s in zip(self.level_names[1:], gates, shapes):
            h = np.asarray(h)
            if h.shape != s:
                raise ShapeError(f"gates of {name} must have shape {s}, got {h.shape}")
            if h.dtype != np.bool_ and not np.all((h == 0) | (h == 1)):
                raise ConfigError(f"gates of {name} must be bool or 0/1")
            out.append(h.astype(np.float64))
        return out

    def _run(self, x, gate_fn) -> ConvForward:
        a = self._check_x(x)
        logits, gates, sels = [], [], []
        for W, pool in zip(self.convs, self.pool_after):
            z = _conv2d(a, W)  # (c_out, h, w)
            h = gate_fn(len(gates), z)
            logits.append(z)
            gates.append(h)
            a = h * z
            if pool:
                a, sel = _pool_select(a)
                sels.append(sel)
            else:
                sels.append(None)
        a = a.reshape(-1)
        for W in self.linears[:-1]:
            z = a @ W  # (n_out,)
            h = gate_fn(len(gates), z)
            logits.append(z)
            gates.append(h)
            a = h * z
        return ConvForward(logits, gates, sels, float(a @ self.linears[-1][:, 0]))

    def forward(self, x: np.ndarray, gates: Sequence[np.ndarray] | None = None) -> ConvForward:
        """The forward pass with the given gates (``None``: the ReLU gates ``1[z > 0]``).

        Raises:
            ShapeError: for an input or gates of the wrong shape.
        """
        if gates is None:
            return self._run(x, lambda l, z: (z > 0).astype(np.float64))
        hs = self._check_gates(gates)
        return self._run(x, lambda l, z: hs[l])

    def sample_gates(
        self, x: np.ndarray, temperature: float, rng: np.random.Generator | int | None = None
    ) -> list[np.ndarray]:
        r"""Gates drawn layer by layer, :math:`h \sim \mathrm{Bern}(\sigma(z/T))` given the
        layers below (``T = 0``: the ReLU gates), as float 0/1 arrays."""
        from umwelt.gates import check_temperature, sample_gates

        T = check_temperature(temperature)
        rng = _as_rng(rng)
        if T == 0:
            return self.forward(x).gates
        return self._run(x, lambda l, z: sample_gates(z, T, rng).astype(np.float64)).gates


def tiny_conv_network(
    seed: int = 0,
    *,
    input_shape: Sequence[int] = (1, 4, 4),
    channels: Sequence[int] = (2,),
    pool_after: Sequence[bool] = (True,),
    hidden: Sequence[int] = (3,),
) -> ConvNetwork:
    """A tiny He-normal conv net for exhaustive checks: by default one input channel 4×4, one
    3×3 convolution to 2 channels, 2×2 max-pooling, flatten (8), a hidden linear layer of 3 and
    the output (a few hundred circuits)."""
    return ConvNetwork.he_normal(input_shape, channels, pool_after, hidden, seed=seed)
