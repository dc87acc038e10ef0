r"""Sampled circuits and perturbations: uniform draws of :math:`\Psi`, :math:`\Omega^{(l)}`
and :math:`\Omega^{(l,l')}` (Li, eq. 14, 16, 19; THEORY.md §4), whose symmetry
:mod:`umwelt.circuits.symmetry_statistics` measures.

**What is sampled** (:func:`sample_perturbations`). Each draw is an input, chosen uniformly
from the inputs given, and a circuit :math:`i`, chosen uniformly from all circuits. ``psi`` is
:math:`\Psi_i`; ``omega1`` is :math:`\Omega^{(l)}_i` for a layer :math:`l` drawn uniformly from
``1..L`` (the circuit's own weight of that layer differentiated out); ``omega2`` is
:math:`\Omega^{(l,l')}_i` for an unordered pair :math:`l \ne l'` drawn uniformly from the
:math:`\binom{L}{2}` pairs. A circuit carries exactly one weight per layer, so this is the
uniform law over (circuit, weight on it) and (circuit, pair of its weights): the weights
differentiated out are sampled the way the circuits carry them.

Conv nets: :func:`sample_conv_perturbations` draws the same three kinds of values from
:class:`~umwelt.circuits.ConvCircuits`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from umwelt._checks import check_int
from umwelt.circuits._chain import check_inputs, check_network
from umwelt.circuits.index import PathIndex, _as_rng
from umwelt.circuits.symmetry_statistics import SymmetryStats, symmetry_stats
from umwelt.circuits.values import sampled_circuit_values
from umwelt.errors import ConfigError
from umwelt.network import LayeredNetwork

__all__ = [
    "ORDERS",
    "CircuitSample",
    "sample_conv_perturbations",
    "sample_layers",
    "sample_perturbations",
]

ORDERS: tuple[str, ...] = ("psi", "omega1", "omega2")
"""The three kinds of sampled values: circuits, first- and second-order perturbations."""


def sample_layers(L: int, n: int, order: int, rng: np.random.Generator) -> np.ndarray:
    """Layers to differentiate out, per draw: ``(n, order)`` ints in ``[1, L]``.

    ``order = 1``: one layer uniform in ``1..L``; ``order = 2``: an unordered pair ``l < l'``
    uniform among the ``L(L-1)/2`` pairs (needs ``L ≥ 2``); ``order = 0``: shape ``(n, 0)``.
    """
    if order == 0:
        return np.zeros((n, 0), dtype=np.int64)
    if order == 1:
        return rng.integers(1, L + 1, size=(n, 1))
    if order == 2:
        if L < 2:
            raise ConfigError(f"second-order perturbations need at least 2 layers, got L = {L}")
        pairs = np.array(list(itertools.combinations(range(1, L + 1), 2)), dtype=np.int64)
        return pairs[rng.integers(0, len(pairs), size=n)]
    raise ConfigError(f"order must be 0, 1 or 2, got {order!r}")


@dataclass(frozen=True)
class CircuitSample:
    """Sampled values of one order.

    Attributes:
        order: ``"psi"``, ``"omega1"`` or ``"omega2"``.
        values: ``(n,)`` the sampled values.
        inputs: ``(n,)`` the input each draw used.
        paths: ``(n, L)`` the circuits.
        layers: ``(n, k)`` the layers differentiated out (``k = 0, 1, 2``).
    """

    order: str
    values: np.ndarray
    inputs: np.ndarray
    paths: np.ndarray
    layers: np.ndarray

    @property
    def stats(self) -> SymmetryStats:
        """:func:`symmetry_stats` of the values."""
        return symmetry_stats(self.values)


def sample_perturbations(
    net: LayeredNetwork,
    x: np.ndarray,
    gates=None,
    *,
    n: int = 10_000,
    orders: Sequence[str] = ORDERS,
    rng: np.random.Generator | int | None = None,
) -> dict[str, CircuitSample]:
    r"""Uniformly sampled :math:`\Psi`, :math:`\Omega^{(l)}` and :math:`\Omega^{(l,l')}`.

    Each draw picks an input uniformly, a circuit uniformly and (for the perturbations) the
    layer(s) differentiated out uniformly (module docstring). The three orders use independent
    draws.

    Args:
        net: the network.
        x: inputs ``(B, n_0)`` (or one ``(n_0,)``).
        gates: ``L-1`` gate layers ``(B, n_l)``; ``None``: the ReLU gates of each input.
        n: draws per order.
        orders: any of :data:`ORDERS` (``omega2`` needs ``L ≥ 2``).
        rng: a numpy Generator or a seed.

    Returns:
        ``{order: CircuitSample}``.

    Raises:
        ConfigError: for an unknown order, ``n < 2``, ``omega2`` with one layer.
        ShapeError: for inputs or gates that do not fit.

    >>> net = LayeredNetwork.he_normal((3, 4, 3, 1), seed=0)
    >>> s = sample_perturbations(net, np.ones(3), n=5, rng=0)
    >>> sorted(s), s["omega2"].layers.shape
    (['omega1', 'omega2', 'psi'], (5, 2))
    """
    check_network(net)
    rng = _as_rng(rng)
    n = check_int("the number of sampled circuits", n, 2)
    for o in orders:
        if o not in ORDERS:
            raise ConfigError(f"unknown order {o!r}; choose from {', '.join(ORDERS)}")
    xs, hs, _ = check_inputs(net, x, gates)
    B = xs.shape[0]
    L = net.depth
    index = PathIndex.from_network(net)
    out = {}
    for o in orders:
        k = ORDERS.index(o)
        paths = index.sample_paths(int(n), rng)
        layers = sample_layers(L, int(n), k, rng)
        which = rng.integers(0, B, size=int(n))
        vals = np.empty(int(n))
        for b in np.unique(which):
            sel = np.flatnonzero(which == b)
            wl = tuple(layers[sel, j] for j in range(k))
            vals[sel] = sampled_circuit_values(
                net, xs[b], [h[b] for h in hs], paths[sel], wrt_layers=wl
            )
        out[o] = CircuitSample(o, vals, which, paths, layers)
    return out


def sample_conv_perturbations(
    circuits: Sequence,
    *,
    n: int = 10_000,
    orders: Sequence[str] = ORDERS,
    rng: np.random.Generator | int | None = None,
) -> dict[str, CircuitSample]:
    r"""The conv-net twin of :func:`sample_perturbations`: uniformly sampled :math:`\Psi`,
    :math:`\Omega^{(l)}`, :math:`\Omega^{(l,l')}` of a conv net.

    Each draw picks one of the inputs uniformly (its :class:`~umwelt.circuits.ConvCircuits`,
    which holds the input, gates and max-pool selections), a circuit of it uniformly
    (:meth:`~umwelt.circuits.ConvCircuits.sample_paths`) and the layer(s) differentiated out
    uniformly. Inputs are weighted equally even where their numbers of circuits differ.

    Args:
        circuits: one :class:`~umwelt.circuits.ConvCircuits` per input.
        n, orders, rng: as :func:`sample_perturbations`.

    Returns:
        ``{order: CircuitSample}`` (``paths`` are ``(n, D)`` units of each input's graph).
    """
    rng = _as_rng(rng)
    n = check_int("the number of sampled circuits", n, 2)
    if not circuits:
        raise ConfigError("no inputs to sample circuits of")
    for o in orders:
        if o not in ORDERS:
            raise ConfigError(f"unknown order {o!r}; choose from {', '.join(ORDERS)}")
    D = circuits[0].depth
    out = {}
    for o in orders:
        k = ORDERS.index(o)
        layers = sample_layers(D, int(n), k, rng)
        which = rng.integers(0, len(circuits), size=int(n))
        paths = np.zeros((int(n), D), dtype=np.int64)
        vals = np.empty(int(n))
        for b in np.unique(which):
            sel = np.flatnonzero(which == b)
            p = circuits[b].sample_paths(sel.size, rng)
            paths[sel] = p
            vals[sel] = circuits[b].values(p, tuple(layers[sel, j] for j in range(k)))
        out[o] = CircuitSample(o, vals, which, paths, layers)
    return out
