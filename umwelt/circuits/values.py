r"""Circuit values: every circuit, streaming statistics over all of them, sampled circuits.

A basis circuit ``i = (i_0, ..., i_{L-1})`` of a layered net with gates ``h`` has the value
(eq. 10–11 of Li, *Complexity from Adaptive-Symmetries Breaking*; THEORY.md §3)

.. math::
    \Psi_i = x_{i_0} \prod_{l=1}^{L-1} W^l_{i_{l-1} i_l} H^l_{i_l} \cdot W^L_{i_{L-1} 0},
    \qquad f(x) = \sum_i \Psi_i ,

a sum over :math:`N = \prod_{l<L} n_l` circuits, numbered by :class:`PathIndex` (``i_0`` the
most significant digit). Three ways to look at them:

* :func:`circuit_values` materializes the whole array, up to a memory budget of
  :data:`MAX_CIRCUIT_VALUES` values (``2^27`` float64 = 1 GiB; ``limit=`` overrides it), in
  :mod:`umwelt.circuits.values_materialized`;
* :func:`circuit_stats` sweeps every circuit without storing any (count, sum, sum of squares,
  mean, variance, min, max, signs, a fixed-bin histogram): 10^9 circuits take about a second;
  in :mod:`umwelt.circuits.values_streamed`;
* :func:`sampled_circuit_values` evaluates given circuits, e.g. drawn uniformly by
  :func:`sample_circuits`, in :mod:`umwelt.circuits.values_sampled`.

All three take ``wrt``: weights ``(l, a, b)`` differentiated out, which turns circuit values
into perturbations :math:`\Omega` (see :mod:`umwelt.circuits.perturbations`).

Each computation has a numba kernel (:mod:`umwelt._kernels.circuits`) and a plain-numpy twin,
selected by ``backend=`` (:mod:`umwelt.circuits.values_backends`); the twin is the oracle the
kernel is tested against. Both form every product in the same order, so materialized values
agree bit for bit, and the streaming histogram counts equal :func:`numpy.histogram` of the
materialized array exactly.

This module re-exports the names of those four (import from here or from
:mod:`umwelt.circuits`).
"""

from __future__ import annotations

from umwelt.circuits.values_backends import _parallel as _parallel  # for the tests
from umwelt.circuits.values_materialized import MAX_CIRCUIT_VALUES, circuit_values, n_circuits
from umwelt.circuits.values_sampled import sample_circuits, sampled_circuit_values
from umwelt.circuits.values_streamed import MAX_STREAMED_CIRCUITS, CircuitStats, circuit_stats

__all__ = [
    "MAX_CIRCUIT_VALUES",
    "MAX_STREAMED_CIRCUITS",
    "CircuitStats",
    "circuit_stats",
    "circuit_values",
    "n_circuits",
    "sample_circuits",
    "sampled_circuit_values",
]
