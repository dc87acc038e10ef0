"""Standard small networks, each a named factory with a fixed seed.

Tests parametrize over these (see ``conftest.py``) so every property is checked on the same
shapes: shallow and deep, square and funnel-shaped.
"""

from __future__ import annotations

import numpy as np

from umwelt.network import LayeredNetwork

# name -> widths (input first, output 1)
TINY_WIDTHS: dict[str, tuple[int, ...]] = {
    "2-2-1": (2, 2, 1),
    "5-5-1": (5, 5, 1),
    "3-4-3-1": (3, 4, 3, 1),
    "4-3-3-2-1": (4, 3, 3, 2, 1),
}


def tiny_network(name: str, seed: int = 0) -> LayeredNetwork:
    """He-normal network of the named tiny shape."""
    return LayeredNetwork.he_normal(TINY_WIDTHS[name], seed=seed)


def inputs(net: LayeredNetwork, batch: int = 3, seed: int = 1) -> np.ndarray:
    """Standard-normal inputs for ``net``, shape ``(batch, n_0)``."""
    return np.random.default_rng(seed).normal(size=(batch, net.widths[0]))
