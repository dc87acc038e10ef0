r"""Values of given circuits: :func:`sampled_circuit_values`, e.g. of circuits drawn uniformly
by :func:`sample_circuits`.

Each circuit is a path ``(S, L)`` or an index ``(S,)``; with ``wrt_layers`` the circuit's own
weight of each of up to two layers is differentiated out (the perturbations
:math:`\Omega^{(l)}_i`, :math:`\Omega^{(l,l')}_i`), the layers possibly differing per circuit,
so that (circuit, weight on it) pairs can be sampled. The values equal the entries of
:func:`~umwelt.circuits.circuit_values` at the same circuits bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from umwelt import _kernels
from umwelt.circuits._chain import check_inputs, check_network, pack_network
from umwelt.circuits.index import PathIndex, _as_rng
from umwelt.circuits.values_backends import _check_backend, _parallel
from umwelt.errors import ConfigError, ShapeError
from umwelt.network import LayeredNetwork

__all__ = ["sample_circuits", "sampled_circuit_values"]


def sample_circuits(
    net: LayeredNetwork | PathIndex,
    n: int,
    rng: np.random.Generator | int | None = None,
    *,
    replace: bool = True,
) -> np.ndarray:
    """``n`` circuits drawn uniformly, as int64 paths ``(n, L)`` (see
    :meth:`PathIndex.sample_paths`; pass a pinned :class:`PathIndex` to sample the circuits
    through given weights).

    Args:
        net: a network, or a :class:`PathIndex`.
        n: number of circuits.
        rng: a numpy Generator (used as is) or a seed.
        replace: with replacement (default) or without (then ``n ≤`` the count).
    """
    index = net if isinstance(net, PathIndex) else PathIndex.from_network(check_network(net))
    return index.sample_paths(n, _as_rng(rng), replace=replace)


def _as_paths(net: LayeredNetwork, circuits) -> np.ndarray:
    index = PathIndex.from_network(net)
    c = np.asarray(circuits)
    if c.ndim == 2:
        return index._check_paths(c)
    if c.ndim == 1:
        return index.paths(c)
    raise ShapeError(
        f"circuits must be paths (n, {net.depth}) or indices (n,), got shape {c.shape}"
    )


def _wrt_layers(net: LayeredNetwork, layers, S: int) -> tuple[np.ndarray, np.ndarray]:
    """``(d1, d2)``: per-sample differentiated layers, ``-1`` for none."""
    L = net.depth
    if isinstance(layers, int | np.integer) and not isinstance(layers, bool):
        layers = (layers,)
    if len(layers) > 2:
        raise ConfigError(f"at most two layers can be differentiated out, got {len(layers)}")
    ds = []
    for j, lay in enumerate(layers):
        arr = np.asarray(lay)
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise ConfigError(f"layers to differentiate must be integers, got {lay!r}")
        arr = np.broadcast_to(arr.astype(np.int64), (S,)) if arr.ndim == 0 else arr
        if arr.shape != (S,):
            raise ShapeError(f"layers[{j}] must be an int or shape ({S},), got {arr.shape}")
        bad = (arr < 1) | (arr > L)
        if bad.any():
            raise ConfigError(f"layers must be in [1, {L}], got {int(arr[np.flatnonzero(bad)[0]])}")
        ds.append(np.ascontiguousarray(arr, dtype=np.int64))
    while len(ds) < 2:
        ds.append(np.full(S, -1, dtype=np.int64))
    same = (ds[0] == ds[1]) & (ds[0] >= 1)
    if same.any():
        raise ConfigError(
            f"the two layers differentiated must differ, both are {int(ds[0][same][0])} for "
            f"sample {int(np.flatnonzero(same)[0])}: within-layer second derivatives vanish"
        )
    return ds[0], ds[1]


def _sampled_numpy(xs, hs, net, paths, d1, d2) -> np.ndarray:
    """Twin of :func:`umwelt._kernels.sampled_values`: the same products, vectorized."""
    L = net.depth
    f = [xs[:, paths[:, 0]]]  # (B, S)
    for l in range(1, L):
        w = net.weights[l - 1][paths[:, l - 1], paths[:, l]]  # (S,)
        h = hs[l - 1][:, paths[:, l]]  # (B, S)
        f.append(np.where((d1 == l) | (d2 == l), h, w * h))
    wl = net.weights[L - 1][paths[:, L - 1], 0]
    f.append(np.broadcast_to(np.where((d1 == L) | (d2 == L), 1.0, wl), f[0].shape))
    if L == 1:
        return f[0] * f[1]
    v = f[0]
    for l in range(1, L - 1):
        v = v * f[l]
    return v * (f[L - 1] * f[L])


def sampled_circuit_values(
    net: LayeredNetwork,
    x: np.ndarray,
    gates: Sequence[np.ndarray] | None,
    circuits: np.ndarray | Sequence[int],
    *,
    wrt_layers: int | Sequence[int | np.ndarray] = (),
    backend: str = "numba",
) -> np.ndarray:
    r"""Values of given circuits, or their perturbations along their own weights.

    With ``wrt_layers = (l,)`` each circuit ``i`` has its own weight of layer ``l``,
    :math:`W^l_{i_{l-1} i_l}` (:math:`W^L_{i_{L-1} 0}` for ``l = L``), differentiated out: the
    first-order perturbation :math:`\Omega^{(l)}_i`; two layers give :math:`\Omega^{(l,l')}_i`.
    A layer may differ per circuit (an int array), e.g. to sample (circuit, weight) pairs.

    Args:
        net: the network.
        x: one input ``(n_0,)`` or a batch ``(B, n_0)``.
        gates: ``L-1`` gate layers, ``(n_l,)`` or ``(B, n_l)``; ``None``: the ReLU gates.
        circuits: paths ``(S, L)`` or indices ``(S,)`` (Python ints beyond 2^63).
        wrt_layers: up to two layers in ``[1, L]``, each an int or an int array ``(S,)``;
            the two must differ for every circuit.
        backend: ``"numba"`` or ``"numpy"`` (the twin).

    Returns:
        float64 ``(S,)``, or ``(B, S)`` when ``x`` or a gate layer has a batch axis; equal bit
        for bit to the entries of :func:`circuit_values` at the same circuits.

    Raises:
        ConfigError: for a digit or index out of range, bad layers, gates other than 0/1.
        ShapeError: for arrays that do not fit.
    """
    backend = _check_backend(backend)
    xs, hs, batched = check_inputs(net, x, gates)
    paths = _as_paths(net, circuits)
    S = paths.shape[0]
    d1, d2 = _wrt_layers(net, wrt_layers, S)
    B = xs.shape[0]
    if backend == "numpy":
        out = _sampled_numpy(xs, hs, net, paths, d1, d2)
    else:
        wflat, woff, widths = pack_network(net)
        hflat = np.ascontiguousarray(np.concatenate(hs, axis=1) if hs else np.zeros((B, 0)))
        hoff = np.concatenate([[0], np.cumsum(net.hidden_widths)]).astype(np.int64)
        out = np.empty((B, S))
        kernel = (
            _kernels.sampled_values_parallel if _parallel(B * S * 8) else _kernels.sampled_values
        )
        kernel(xs, wflat, woff, widths, hflat, hoff, paths, d1, d2, out)
    return out if batched else out[0]
