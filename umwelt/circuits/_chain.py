r"""Checking inputs and gates, and turning a net into the kernels' chain of matrices.

The factors of a circuit ``i = (i_0, ..., i_{L-1})`` of a layered net with gates ``h`` are

.. math::
    F_0 = x, \qquad F_l = W^l\,\mathrm{dg}(h_l) \ (1 \le l < L), \qquad F_L = W^L_{:,0},
    \qquad \Psi_i = F_0[i_0] \prod_{l=1}^{L-1} F_l[i_{l-1}, i_l]\; F_L[i_{L-1}].

Differentiating out a weight ``W^l_{ab}`` (``wrt``) replaces ``F_l`` by ``h_{l,b}`` at
``(a, b)`` (by 1 for ``l = L``) and pins digits ``l-1 = a`` and ``l = b``. The chain of
:mod:`umwelt._kernels.circuits` is then ``G_0 = F_0`` (as one row), ``G_l = F_l`` and
``G_{L-1} = F_{L-1}\,\mathrm{dg}(F_L)`` (``G_0 = (F_0 \odot F_1)`` as one row when ``L = 1``),
each restricted to the allowed digits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from umwelt.circuits.index import PathIndex
from umwelt.errors import ConfigError, ShapeError
from umwelt.network import GateSample, LayeredNetwork

Weight = tuple[int, int, int]


@dataclass(frozen=True)
class Chain:
    """The kernels' chain (see :mod:`umwelt._kernels.circuits`), with its matrices."""

    mats: list[np.ndarray]
    gflat: np.ndarray
    goff: np.ndarray
    radices: np.ndarray

    @property
    def count(self) -> int:
        return int(np.prod(self.radices.astype(object)))


def check_network(net) -> LayeredNetwork:
    if not isinstance(net, LayeredNetwork):
        raise ConfigError(f"expected a LayeredNetwork, got {type(net).__name__}")
    return net


def check_inputs(net: LayeredNetwork, x, gates) -> tuple[np.ndarray, list[np.ndarray], bool]:
    """``x`` as ``(B, n_0)`` float64, gates as ``L-1`` float64 0/1 arrays ``(B, n_l)``.

    ``x`` may be ``(n_0,)`` or ``(B, n_0)`` and each gate layer ``(n_l,)`` or ``(B', n_l)``;
    batch sizes broadcast (1 against ``B``). ``gates=None`` means the ReLU gates of ``x``; a
    :class:`~umwelt.network.GateSample` is taken by its ``gates``.

    Returns:
        ``(xs, hs, batched)``, ``batched`` telling whether any argument had a batch axis.
    """
    check_network(net)
    xa = np.asarray(x)
    if xa.dtype == object or not (
        np.issubdtype(xa.dtype, np.number) or np.issubdtype(xa.dtype, np.bool_)
    ):
        raise ConfigError(f"input x must be numeric, got dtype {xa.dtype}")
    xa = xa.astype(np.float64)
    n0 = net.widths[0]
    if xa.ndim not in (1, 2) or xa.shape[-1] != n0:
        raise ShapeError(f"input x must have shape ({n0},) or (B, {n0}), got {xa.shape}")
    if not np.all(np.isfinite(xa)):
        raise ConfigError("input x contains non-finite entries")
    batched = xa.ndim == 2
    xs = xa.reshape(-1, n0)
    if isinstance(gates, GateSample):
        gates = gates.gates
        if not batched and all(g.shape[0] == 1 for g in gates):
            gates = [g[0] for g in gates]
    if gates is None:
        gates = [g if batched else g[0] for g in net.relu_sample(xs).gates]
    if isinstance(gates, np.ndarray) or len(gates) != net.depth - 1:
        got = "an array" if isinstance(gates, np.ndarray) else f"{len(gates)}"
        raise ShapeError(f"expected a list of {net.depth - 1} gate layers, got {got}")
    hs = []
    B = xs.shape[0]
    for l, (h, n) in enumerate(zip(gates, net.hidden_widths), start=1):
        h = np.asarray(h)
        if h.ndim not in (1, 2) or h.shape[-1] != n:
            raise ShapeError(
                f"gates of layer {l} must have shape ({n},) or (B, {n}), got {h.shape}"
            )
        if h.dtype != np.bool_:
            if not (np.issubdtype(h.dtype, np.number)) or not np.all((h == 0) | (h == 1)):
                raise ConfigError(f"gates of layer {l} must be bool or 0/1, got {h.ravel()[:8]}")
        batched = batched or h.ndim == 2
        hb = h.reshape(-1, n)
        if hb.shape[0] != B:
            if B == 1:
                B = hb.shape[0]
            elif hb.shape[0] != 1:
                raise ShapeError(
                    f"gates of layer {l} have batch {hb.shape[0]} but the input has batch {B}"
                )
        hs.append(hb.astype(np.float64))
    if xs.shape[0] != B:
        xs = np.broadcast_to(xs, (B, n0))
    for l, hb in enumerate(hs):
        if hb.shape[0] != B:
            if hb.shape[0] != 1:
                raise ShapeError(f"gates of layer {l + 1} have batch {hb.shape[0]}, expected {B}")
            hs[l] = np.broadcast_to(hb, (B, hb.shape[1]))
    return np.ascontiguousarray(xs), [np.ascontiguousarray(h) for h in hs], batched


def check_wrt(net: LayeredNetwork, wrt: Sequence[Weight]) -> tuple[Weight, ...]:
    """Validate weights ``(layer, a, b)`` to differentiate out: in range, distinct layers."""
    if isinstance(wrt, tuple) and len(wrt) == 3 and all(isinstance(v, int) for v in wrt):
        raise ConfigError(f"wrt is a sequence of weights (layer, a, b); got one weight {wrt!r}")
    out = []
    index = PathIndex.from_network(net)
    for w in wrt:
        try:
            layer, a, b = w
        except (TypeError, ValueError):
            raise ConfigError(f"a weight is (layer, a, b), got {w!r}") from None
        index.weight_digits(layer, a, b)  # range checks
        out.append((int(layer), int(a), int(b)))
    layers = [w[0] for w in out]
    if len(set(layers)) != len(layers):
        raise ConfigError(
            f"weights to differentiate must be in distinct layers, got layers {layers}: every "
            "circuit has one weight per layer, so within-layer derivatives vanish identically"
        )
    return tuple(out)


def circuit_index(net: LayeredNetwork, wrt: Sequence[Weight] = ()) -> PathIndex:
    """The index of the circuits through every weight of ``wrt``."""
    return PathIndex.from_network(net).through(*wrt)


def factors(
    net: LayeredNetwork, x: np.ndarray, h: Sequence[np.ndarray], wrt: Sequence[Weight]
) -> list[np.ndarray]:
    """``F_0..F_L`` for one input ``x (n_0,)`` and gates ``h[l-1] (n_l,)`` (module docstring)."""
    L = net.depth
    F: list[np.ndarray] = [x]
    for l in range(1, L):
        F.append(net.weights[l - 1] * h[l - 1][None, :])
    F.append(net.weights[L - 1][:, 0])
    for layer, a, b in wrt:
        if layer < L:
            d = np.zeros_like(F[layer])
            d[a, b] = h[layer - 1][b]
            F[layer] = d
        else:
            d = np.zeros_like(F[L])
            d[a] = 1.0
            F[L] = d
    return F


def build_chain(
    net: LayeredNetwork, x: np.ndarray, h: Sequence[np.ndarray], wrt: Sequence[Weight] = ()
) -> Chain | None:
    """The chain of the circuits through ``wrt`` for one input; ``None`` when there are none."""
    index = circuit_index(net, wrt)
    if index.count == 0:
        return None
    L = net.depth
    allowed = [
        np.array([index.fixed[k]]) if k in index.fixed else np.arange(n)
        for k, n in enumerate(index.radices)
    ]
    F = factors(net, x, h, wrt)
    R = [F[0][allowed[0]]]
    for l in range(1, L):
        R.append(F[l][np.ix_(allowed[l - 1], allowed[l])])
    R.append(F[L][allowed[L - 1]])
    if L == 1:
        mats = [(R[0] * R[1])[None, :]]
    else:
        mats = [R[0][None, :], *R[1 : L - 1], R[L - 1] * R[L][None, :]]
    mats = [np.ascontiguousarray(g, dtype=np.float64) for g in mats]
    gflat = np.concatenate([g.ravel() for g in mats])
    goff = np.concatenate([[0], np.cumsum([g.size for g in mats])]).astype(np.int64)
    radices = np.array([g.shape[1] for g in mats], dtype=np.int64)
    return Chain(mats, gflat, goff, radices)


def pack_network(net: LayeredNetwork) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The weights as ``(wflat, woff, widths)`` (see :mod:`umwelt._kernels.enumeration`)."""
    wflat = np.concatenate([np.ascontiguousarray(w).ravel() for w in net.weights])
    woff = np.concatenate([[0], np.cumsum([w.size for w in net.weights])]).astype(np.int64)
    return wflat, woff, np.asarray(net.widths, dtype=np.int64)
