r"""Perturbations of basis circuits: weights differentiated out (THEORY.md §3, eq. 16, 19).

With the gates fixed every circuit value is linear in each weight it uses, and it uses exactly
one weight per layer. Differentiating a weight :math:`W^l_{ab}` out of the circuits through it
(:math:`i_{l-1} = a`, :math:`i_l = b`) gives the **first-order perturbations**

.. math::
    \Omega^{(l)}_i = \frac{\partial \Psi_i}{\partial W^l_{ab}}
    = x_{i_0} \prod_{k \ne l} W^k_{i_{k-1} i_k} H^k_{i_k} \cdot H^l_{b}
    \quad (H^L \equiv 1), \qquad
    \frac{\partial f}{\partial W^l_{ab}} = \sum_{i:\, i_{l-1} = a,\, i_l = b} \Omega^{(l)}_i ,

and two weights of layers :math:`l \ne l'` give the **second-order perturbations**
:math:`\Omega^{(l,l')}_i`, whose sums over the circuits through both weights are the entries
:math:`\partial^2 f / \partial W^l_{ab} \partial W^{l'}_{cd}` of the Hessian of ``f``. Two
weights of one layer are never on one circuit, so the within-layer blocks of that Hessian are
zero (and two weights of adjacent layers that disagree on their shared unit have no circuit in
common: that entry is zero too). Times :math:`\partial \ell / \partial f`, averaged over data,
these sums are the gradient and (for hinge loss) the Hessian of the risk.

All circuits through given weights: :func:`first_order`, :func:`second_order` (arrays, ordered
by ``PathIndex.from_network(net).through(...)``), or :func:`~umwelt.circuits.circuit_stats`
with ``wrt=`` (streamed), and :func:`circuit_derivative` (their sum). Sampled circuits, each
differentiated along its own weight of the given layer(s): :func:`sampled_first_order`,
:func:`sampled_second_order`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from umwelt.circuits._chain import Weight, check_inputs, check_wrt
from umwelt.circuits.values import (
    MAX_CIRCUIT_VALUES,
    MAX_STREAMED_CIRCUITS,
    circuit_stats,
    circuit_values,
    sampled_circuit_values,
)
from umwelt.network import LayeredNetwork

__all__ = [
    "circuit_derivative",
    "first_order",
    "second_order",
    "sampled_first_order",
    "sampled_second_order",
]


def first_order(
    net: LayeredNetwork,
    x: np.ndarray,
    gates: Sequence[np.ndarray] | None,
    layer: int,
    a: int,
    b: int,
    *,
    limit: int = MAX_CIRCUIT_VALUES,
    backend: str = "numba",
) -> np.ndarray:
    r""":math:`\Omega^{(l)}_i` for every circuit through :math:`W^l_{ab}`, in index order.

    Their sum is :math:`\partial f / \partial W^l_{ab}` with the gates fixed.

    Args:
        net, x, gates, limit, backend: as for :func:`~umwelt.circuits.circuit_values`.
        layer: ``l`` in ``[1, L]``.
        a, b: the weight's row in ``[0, n_{l-1})`` and column in ``[0, n_l)`` (0 for ``l = L``).

    Returns:
        float64 ``(N_{ab},)`` with :math:`N_{ab} = \prod_{k \ne l-1, l} n_k`, or ``(B, N_{ab})``.

    Raises:
        ConfigError: for a weight out of range (and as :func:`circuit_values`).

    >>> net = LayeredNetwork([[[1.0, 2.0]], [[3.0], [4.0]]])  # widths (1, 2, 1)
    >>> first_order(net, np.array([5.0]), [np.array([True, True])], 2, 1, 0).tolist()  # x W^1_01
    [10.0]
    """
    return circuit_values(net, x, gates, wrt=[(layer, a, b)], limit=limit, backend=backend)


def second_order(
    net: LayeredNetwork,
    x: np.ndarray,
    gates: Sequence[np.ndarray] | None,
    layer1: int,
    a: int,
    b: int,
    layer2: int,
    c: int,
    d: int,
    *,
    limit: int = MAX_CIRCUIT_VALUES,
    backend: str = "numba",
) -> np.ndarray:
    r""":math:`\Omega^{(l,l')}_i` for every circuit through :math:`W^l_{ab}` and
    :math:`W^{l'}_{cd}` (``l ≠ l'``), in index order; empty when no circuit passes both.

    Their sum is :math:`\partial^2 f / \partial W^l_{ab} \partial W^{l'}_{cd}`.

    Raises:
        ConfigError: for ``l = l'`` (the within-layer block is identically zero) or a weight
            out of range.
    """
    wrt = [(layer1, a, b), (layer2, c, d)]
    return circuit_values(net, x, gates, wrt=wrt, limit=limit, backend=backend)


def circuit_derivative(
    net: LayeredNetwork,
    x: np.ndarray,
    gates: Sequence[np.ndarray] | None,
    wrt: Sequence[Weight],
    *,
    limit: int = MAX_STREAMED_CIRCUITS,
    backend: str = "numba",
) -> float | np.ndarray:
    r"""The derivative of ``f`` by the weights ``wrt`` (distinct layers) as a circuit sum,

    .. math::
        \frac{\partial^k f}{\partial W^{l_1}_{a_1 b_1} \cdots \partial W^{l_k}_{a_k b_k}}
        = \sum_{i \text{ through all}} \Omega^{(l_1, \dots, l_k)}_i ,

    streamed (:func:`~umwelt.circuits.circuit_stats`), so no circuit is stored; ``wrt = ()``
    gives :math:`f(x) = \sum_i \Psi_i`.

    Returns:
        a float, or ``(B,)`` for a batch.
    """
    xs, hs, batched = check_inputs(net, x, gates)
    wrt = check_wrt(net, wrt)
    out = np.array(
        [
            circuit_stats(net, xs[b], [h[b] for h in hs], wrt=wrt, limit=limit, backend=backend).sum
            for b in range(xs.shape[0])
        ]
    )
    return out if batched else float(out[0])


def sampled_first_order(
    net: LayeredNetwork,
    x: np.ndarray,
    gates: Sequence[np.ndarray] | None,
    circuits: np.ndarray | Sequence[int],
    layer: int | np.ndarray,
    *,
    backend: str = "numba",
) -> np.ndarray:
    r""":math:`\Omega^{(l)}_i` of given circuits, each along its own weight of layer ``l``.

    Args:
        circuits: paths ``(S, L)`` or indices ``(S,)``.
        layer: ``l`` in ``[1, L]``, or one per circuit (int array ``(S,)``).

    Returns:
        float64 ``(S,)`` or ``(B, S)`` (see :func:`~umwelt.circuits.sampled_circuit_values`).
    """
    return sampled_circuit_values(net, x, gates, circuits, wrt_layers=(layer,), backend=backend)


def sampled_second_order(
    net: LayeredNetwork,
    x: np.ndarray,
    gates: Sequence[np.ndarray] | None,
    circuits: np.ndarray | Sequence[int],
    layer1: int | np.ndarray,
    layer2: int | np.ndarray,
    *,
    backend: str = "numba",
) -> np.ndarray:
    r""":math:`\Omega^{(l,l')}_i` of given circuits, along their own weights of layers
    ``l ≠ l'`` (ints, or int arrays ``(S,)``).

    Raises:
        ConfigError: when ``l = l'`` for some circuit.
    """
    return sampled_circuit_values(
        net, x, gates, circuits, wrt_layers=(layer1, layer2), backend=backend
    )
