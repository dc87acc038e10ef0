r"""Which code computes circuit values: a numba kernel or its plain-numpy twin, serial or
parallel.

Each computation of :mod:`umwelt.circuits.values` has a numba kernel
(:mod:`umwelt._kernels.circuits`) and a plain-numpy twin, selected by ``backend=``
(:func:`_check_backend`); the twin is the oracle the kernel is tested against. Both form every
product in the same order, so materialized values agree bit for bit, and the streaming
histogram counts equal :func:`numpy.histogram` of the materialized array exactly. The parallel
kernels are used from :data:`_PARALLEL_MIN` units of work on, when numba has more than one
thread (:func:`_parallel`); their results do not depend on the number of threads.
"""

from __future__ import annotations

import numba

from umwelt.errors import ConfigError

_BACKENDS = ("numba", "numpy")
_PARALLEL_MIN = 2**20  # circuits (or samples × inputs) from which the parallel kernels are used


def _check_backend(backend: str) -> str:
    if backend not in _BACKENDS:
        raise ConfigError(f"backend must be one of {_BACKENDS}, got {backend!r}")
    return backend


def _parallel(work: int) -> bool:
    return work >= _PARALLEL_MIN and numba.get_num_threads() > 1
