r"""Basis circuits: every input-to-output path of a layered net (THEORY.md §3–4).

Li, *Complexity from Adaptive-Symmetries Breaking* (eq. 10–11), writes the output of a
bias-free layered network with fixed gates as an *assembly* of basis circuits. A circuit is one
unit per layer below the output, ``i = (i_0, ..., i_{L-1})``, and its value is the product
along the path,

.. math::
    \Psi_i = x_{i_0} \prod_{l=1}^{L-1} W^l_{i_{l-1} i_l} H^l_{i_l} \cdot W^L_{i_{L-1} 0},
    \qquad f(x) = \sum_i \Psi_i ,

over :math:`N = \prod_{l<L} n_l` circuits. Differentiating weights out of the circuits
through them gives the perturbations :math:`\Omega^{(l)}` and :math:`\Omega^{(l,l')}` (eq. 16,
19), whose sums are the gradient and Hessian entries of ``f``; the paper's circuit symmetry
(eq. 14) is the near-symmetry :math:`\mu(\psi) \approx \mu(-\psi)` of these values over
uniformly sampled circuits.

The modules, one concept each:

* :mod:`~umwelt.circuits.graph`: the network as a networkx ``DiGraph``, the
  ``all_simple_paths`` reference, conversion back, drawing;
* :mod:`~umwelt.circuits.index`: :class:`PathIndex`, mixed-radix numbering (``i_0`` most
  significant), uniform sampling with and without replacement, Python ints beyond ``2^63``;
* :mod:`~umwelt.circuits.values`: all circuit values (within :data:`MAX_CIRCUIT_VALUES`
  ``= 2^27`` values, 1 GiB), streaming statistics of all of them, sampled values;
* :mod:`~umwelt.circuits.perturbations`: :math:`\Omega^{(l)}`, :math:`\Omega^{(l,l')}` and
  derivatives as circuit sums;
* :mod:`~umwelt.circuits.timing`: circuits-per-second measurements for benchmarks;
* :mod:`~umwelt.circuits.symmetry`: sampled :math:`\Psi`, :math:`\Omega^{(l)}`,
  :math:`\Omega^{(l,l')}` and their symmetry statistics (eq. 14, fig. 3b), with a valid test
  of :math:`\psi` against :math:`-\psi`; moments of the assemblies at initialization (eq. 20);
* :mod:`~umwelt.circuits.moments`: the assembly moments of one net (an epoch of a run) over
  inputs, a planted broken weight symmetry, and eq. 20's prediction with its :math:`\mu` term;
* :mod:`~umwelt.circuits.conv`: circuits of convolutional nets through (channel, position)
  units, counted by dynamic programming, numbered, sampled uniformly, summed.

The numbers are computed by numba kernels (:mod:`umwelt._kernels.circuits`), each with a
plain-numpy twin (``backend="numpy"``) it is tested against.

>>> import numpy as np
>>> from umwelt import LayeredNetwork
>>> net = LayeredNetwork.he_normal((3, 4, 3, 1), seed=0)
>>> x = np.array([0.5, -1.0, 2.0])
>>> psi = circuit_values(net, x)  # ReLU gates of x
>>> psi.shape, bool(np.isclose(psi.sum(), net.relu_forward(x)[0]))
((36,), True)
"""

from umwelt.circuits.conv import (
    MAX_CONV_EDGES,
    MAX_ENUMERATED_CONV_CIRCUITS,
    POOL_MODES,
    ConvCircuits,
    ConvForward,
    ConvNetwork,
    tiny_conv_network,
)
from umwelt.circuits.graph import (
    MAX_REFERENCE_CIRCUITS,
    OUTPUT,
    circuit_graph,
    draw_circuit_graph,
    network_from_graph,
    reference_circuits,
)
from umwelt.circuits.index import INT64_COUNT_LIMIT, PathIndex
from umwelt.circuits.moments import (
    ASSEMBLY_ORDERS,
    NetMoments,
    PlantedMean,
    moments_series,
    net_assembly_moments,
    plant_mean,
)
from umwelt.circuits.perturbations import (
    circuit_derivative,
    first_order,
    sampled_first_order,
    sampled_second_order,
    second_order,
)
from umwelt.circuits.symmetry import (
    EXACT_MIRROR_KS_MAX,
    ORDERS,
    AssemblyMoments,
    CircuitSample,
    SymmetryStats,
    assembly_entries,
    assembly_moments,
    mirror_ks_test,
    sample_conv_perturbations,
    sample_layers,
    sample_perturbations,
    symmetry_stats,
)
from umwelt.circuits.timing import THROUGHPUT_KINDS, Throughput, measure_throughput
from umwelt.circuits.values import (
    MAX_CIRCUIT_VALUES,
    MAX_STREAMED_CIRCUITS,
    CircuitStats,
    circuit_stats,
    circuit_values,
    n_circuits,
    sample_circuits,
    sampled_circuit_values,
)

__all__ = [
    "INT64_COUNT_LIMIT",
    "MAX_CIRCUIT_VALUES",
    "MAX_REFERENCE_CIRCUITS",
    "MAX_STREAMED_CIRCUITS",
    "OUTPUT",
    "THROUGHPUT_KINDS",
    "CircuitStats",
    "PathIndex",
    "Throughput",
    "circuit_derivative",
    "circuit_graph",
    "circuit_stats",
    "circuit_values",
    "draw_circuit_graph",
    "first_order",
    "measure_throughput",
    "n_circuits",
    "network_from_graph",
    "reference_circuits",
    "sample_circuits",
    "sampled_circuit_values",
    "sampled_first_order",
    "sampled_second_order",
    "second_order",
    # item 5: circuit symmetry and assembly moments
    "EXACT_MIRROR_KS_MAX",
    "ORDERS",
    "AssemblyMoments",
    "CircuitSample",
    "SymmetryStats",
    "assembly_entries",
    "assembly_moments",
    "mirror_ks_test",
    "sample_conv_perturbations",
    "sample_layers",
    "sample_perturbations",
    "symmetry_stats",
    # issue 14 item 6: assembly moments of one net, a planted broken symmetry (eq. 20)
    "ASSEMBLY_ORDERS",
    "NetMoments",
    "PlantedMean",
    "moments_series",
    "net_assembly_moments",
    "plant_mean",
    # item 6: circuits of convolutional nets
    "MAX_CONV_EDGES",
    "MAX_ENUMERATED_CONV_CIRCUITS",
    "POOL_MODES",
    "ConvCircuits",
    "ConvForward",
    "ConvNetwork",
    "tiny_conv_network",
]
