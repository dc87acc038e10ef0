r"""Numba kernels: plain ``@njit`` functions on arrays, no validation (STYLE.md).

The public wrappers check their arguments and call these; every kernel has a plain-numpy twin
next to its wrapper that is its test oracle.

* :mod:`.enumeration`: exact enumeration of gate configurations (wrapped by
  :mod:`umwelt.exact`).
* :mod:`.circuits`: basis circuits as products along a chain of matrices (wrapped by
  :mod:`umwelt.circuits`).

Weights travel as one flat float64 array with int64 offsets, because numba has no cheap list of
2-D arrays (see each module's docstring). Where a kernel has a ``*_parallel`` twin (``prange``),
both give identical results; the wrappers take the serial one for small work, since starting
a parallel region costs from microseconds to milliseconds on a busy machine.
"""

from umwelt._kernels.circuits import (
    chain_stats,
    chain_stats_parallel,
    chain_values,
    chain_values_parallel,
    sampled_values,
    sampled_values_parallel,
)
from umwelt._kernels.enumeration import exact_moments

__all__ = [
    "chain_stats",
    "chain_stats_parallel",
    "chain_values",
    "chain_values_parallel",
    "exact_moments",
    "sampled_values",
    "sampled_values_parallel",
]
