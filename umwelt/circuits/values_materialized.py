r"""Every circuit value, materialized: :func:`circuit_values` within a memory budget.

The value of every basis circuit of one input (or of each input of a batch), in the order of
:class:`~umwelt.circuits.PathIndex` (``i_0`` the most significant digit), or with ``wrt`` the
perturbations of every circuit through given weights; :func:`n_circuits` counts them. The
array is refused beyond :data:`MAX_CIRCUIT_VALUES` values (``2^27`` float64 = 1 GiB over the
whole batch; ``limit=`` overrides it): :func:`~umwelt.circuits.circuit_stats` streams more, and
:func:`~umwelt.circuits.sampled_circuit_values` samples them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from umwelt import _kernels
from umwelt.circuits._chain import (
    Chain,
    Weight,
    build_chain,
    check_inputs,
    check_network,
    check_wrt,
    circuit_index,
)
from umwelt.circuits.index import PathIndex
from umwelt.circuits.values_backends import _check_backend, _parallel
from umwelt.errors import ConfigError, EnumerationLimitError
from umwelt.network import LayeredNetwork

__all__ = ["MAX_CIRCUIT_VALUES", "circuit_values", "n_circuits"]

MAX_CIRCUIT_VALUES: int = 2**27
"""Memory budget of :func:`circuit_values`: ``2^27`` float64 values (1 GiB), over all inputs."""


def n_circuits(net: LayeredNetwork) -> int:
    r"""Number of basis circuits :math:`\prod_{l<L} n_l`, a Python int.

    >>> n_circuits(LayeredNetwork.he_normal((16, 32, 32, 32, 1), seed=0))
    524288
    """
    return PathIndex.from_network(check_network(net)).count


def _check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int | np.integer) or limit < 1:
        raise ConfigError(f"limit must be a positive integer, got {limit!r}")
    return int(limit)


def _refuse_materializing(n: int, batch: int, limit: int, what: str) -> None:
    total = n * batch
    if total > limit:
        per = f" ({n} per input × {batch} inputs)" if batch > 1 else ""
        raise EnumerationLimitError(
            f"{what} would materialize {total} circuit values{per}, {total * 8 / 2**30:.3g} "
            f"GiB, over the budget of {limit} values ({limit * 8 / 2**30:.3g} GiB); use "
            "circuit_stats() to stream them or sample_circuits() to sample them"
        )


def _chain_values_numpy(chain: Chain) -> np.ndarray:
    """Twin of :func:`umwelt._kernels.chain_values`: the same products, by broadcasting."""
    P = np.ones(1)
    for g in chain.mats:
        P = (P.reshape(-1, g.shape[0])[:, :, None] * g[None, :, :]).ravel()
    return P


def _chain_values(chain: Chain, backend: str, out: np.ndarray) -> None:
    if backend == "numpy":
        out[:] = _chain_values_numpy(chain)
        return
    kernel = _kernels.chain_values_parallel if _parallel(out.size) else _kernels.chain_values
    kernel(chain.gflat, chain.goff, chain.radices, out)


def circuit_values(
    net: LayeredNetwork,
    x: np.ndarray,
    gates: Sequence[np.ndarray] | None = None,
    *,
    wrt: Sequence[Weight] = (),
    limit: int = MAX_CIRCUIT_VALUES,
    backend: str = "numba",
) -> np.ndarray:
    r"""The value :math:`\Psi_i` of every circuit, in index order.

    .. math::
        \Psi_i = x_{i_0} \prod_{l=1}^{L-1} W^l_{i_{l-1} i_l} H^l_{i_l} \cdot W^L_{i_{L-1} 0},
        \qquad \sum_i \Psi_i = f(x).

    With ``wrt = [(l, a, b), ...]`` (distinct layers) it returns the perturbations instead:
    each weight :math:`W^l_{ab}` differentiated out of every circuit through all of them,
    ordered by ``PathIndex.from_network(net).through(*wrt)``; their sum is
    :math:`\partial^k f / \partial W^{l}_{ab} \cdots` with the gates fixed.

    Args:
        net: the network.
        x: one input ``(n_0,)`` or a batch ``(B, n_0)``.
        gates: ``L-1`` gate layers, each ``(n_l,)`` or ``(B, n_l)``, bool or 0/1 (a
            :class:`~umwelt.network.GateSample` is accepted); ``None``: the ReLU gates of ``x``.
        wrt: weights ``(layer, a, b)`` to differentiate out, ``1 ≤ layer ≤ L``.
        limit: budget of values materialized over the whole batch (default
            :data:`MAX_CIRCUIT_VALUES`, 1 GiB).
        backend: ``"numba"`` or ``"numpy"`` (the twin).

    Returns:
        float64 ``(N,)``, or ``(B, N)`` when ``x`` or a gate layer has a batch axis.

    Raises:
        EnumerationLimitError: when ``B N`` exceeds ``limit``, naming both.
        ShapeError: when ``x`` or the gates do not fit the network.
        ConfigError: for gates other than 0/1, a weight out of range, repeated layers in
            ``wrt``, a bad limit or backend.

    >>> net = LayeredNetwork([[[1.0, 2.0]], [[3.0], [4.0]]])  # widths (1, 2, 1)
    >>> circuit_values(net, np.array([1.0]), [np.array([True, False])]).tolist()
    [3.0, 0.0]
    """
    backend = _check_backend(backend)
    limit = _check_limit(limit)
    xs, hs, batched = check_inputs(net, x, gates)
    wrt = check_wrt(net, wrt)
    N = circuit_index(net, wrt).count
    B = xs.shape[0]
    _refuse_materializing(N, B, limit, "circuit_values()")
    out = np.zeros((B, N))
    for b in range(B):
        chain = build_chain(net, xs[b], [h[b] for h in hs], wrt)
        if chain is not None:
            _chain_values(chain, backend, out[b])
    return out if batched else out[0]
