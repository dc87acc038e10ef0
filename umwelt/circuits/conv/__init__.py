r"""Basis circuits of convolutional nets: paths through (channel, position) units.

The VGG of the paper's experiment (THEORY.md §6; :mod:`umwelt.nn.vgg`) is, with its gates fixed,
as much an assembly of circuits as a layered MLP (THEORY.md §3). Its units are

* the input pixels ``(c, y, x)`` (level 0);
* the gated units ``(c, y, x)`` of each convolution, *before* its pooling (levels ``1..K``);
* the gated units ``j`` of each hidden linear layer (levels ``K+1..D-1``), and the output.

Edges follow the connectivity, and carry weights:

* a convolution (3×3 or any odd ``k``, stride 1, zero padding ``k//2``, bias-free, as
  ``torch.nn.Conv2d``) joins source ``(c, y_s, x_s)`` to ``(c', y, x)`` with the kernel weight
  :math:`W[c', c, y_s - y + k/\!/2, x_s - x + k/\!/2]` when that is inside the kernel;
* a 2×2 max-pooling after a convolution is, with the gates fixed, a fixed **selection**, like a
  gate: the pooled unit is the one unit of its window that won the max in the forward pass
  (the first in row-major order among equal values, as ``torch.nn.functional.max_pool2d``), so
  only that unit connects onward, by the pooled unit's edges (``pool="select"``, the default).
  With ``pool="gate"`` every unit of the window connects onward and the selection is a 0/1
  factor of the edge instead: then the set of circuits does not depend on the input (the way
  closed gates stay on their circuits with the value 0);
* flattening (C order over ``(c, y, x)``) and the linear layers join every unit to every unit.

A circuit is a path ``(u_0, u_1, …, u_{D-1})``, one unit per level, ``D`` the number of weight
layers; its value is the product of the input, the edge weights, the selection factors and the
gates along it,

.. math::
    \Psi = x_{u_0} \prod_{t=0}^{D-1} w_{e_t}\, s_{e_t}\, h_{u_{t+1}}
    \quad (h_{u_D} \equiv 1), \qquad \sum_{\text{paths}} \Psi = f(x),

and :math:`\Omega^{(l)}`, :math:`\Omega^{(l,l')}` are the same with the weight(s) of layer(s)
``l`` (``l'``) left out. A convolution's kernel weight sits on many edges of its level (weight
sharing), but a circuit crosses a level once, so it carries each layer's weights at most once:
``f`` is still linear in every layer's weights, and the gradient entry of a kernel weight is
the sum of :math:`\Omega^{(l)}` over the circuits whose layer-``l`` edge carries it.

**Counting and sampling** (:class:`ConvCircuits`). Dynamic programming gives, per unit, the
number of paths from any input unit to it (``from_input``) and from it to the output
(``to_output``), as exact Python ints (a VGG at width 1/32 already has more than ``10^{20}``
circuits). A uniform circuit is drawn **backwards from the output**: from a unit ``v``, its
predecessor ``u`` is chosen with probability ``from_input[u] / from_input[v]``, so a path has
probability :math:`\prod \text{from\_input}[u_t]/\text{from\_input}[u_{t+1}] = 1/N`; each step
draws an exact uniform integer below ``from_input[v]``. Circuits are also *numbered*
(:meth:`ConvCircuits.index`, :meth:`ConvCircuits.path`): lexicographically by
``(u_0, u_1, …)`` with ``u_0`` most significant, by ``to_output`` counts, which for a net
without convolutions is the mixed-radix order of :class:`~umwelt.circuits.PathIndex`.

**Sums over all circuits** without listing them: :meth:`ConvCircuits.path_sum`,
:meth:`~ConvCircuits.gradient` and :meth:`~ConvCircuits.hessian_entries` sum
:math:`\Psi`, :math:`\Omega^{(l)}` and :math:`\Omega^{(l,l')}` over every circuit by dynamic
programming over the circuit graph (the distributive law, path by path the same sums), and
:meth:`~ConvCircuits.enumerate` lists every circuit with its value when they fit a budget.

Everything here is vectorized numpy on the graph's edge lists (no numba kernel is needed: a
VGG-11 at width 1/32 has 1.6·10⁵ edges, built in under 0.1 s, and gives about 10⁵ uniform
circuits per second with their values); path counts are object arrays of Python ints.

The package, in dependency order: :mod:`~umwelt.circuits.conv.network` (:class:`ConvNetwork`,
the numpy net with its forward passes, gates and max-pool selections; :func:`tiny_conv_network`)
and :mod:`~umwelt.circuits.conv.circuits` (:class:`ConvCircuits`, the circuit graph of one
input: counting, numbering, uniform sampling, values, sums).

>>> import numpy as np
>>> net = tiny_conv_network(seed=0)
>>> x = np.random.default_rng(1).normal(size=net.input_shape)
>>> cc = ConvCircuits(net, x)
>>> psi = cc.values(cc.all_paths())
>>> bool(np.isclose(psi.sum(), net.forward(x).output))
True
"""

from umwelt.circuits.conv.circuits import (
    MAX_CONV_EDGES,
    MAX_ENUMERATED_CONV_CIRCUITS,
    POOL_MODES,
    ConvCircuits,
)
from umwelt.circuits.conv.circuits import _bucket as _bucket
from umwelt.circuits.conv.circuits import _exclusive_cumsum as _exclusive_cumsum
from umwelt.circuits.conv.circuits import _randbelow as _randbelow
from umwelt.circuits.conv.circuits import _Transition as _Transition
from umwelt.circuits.conv.network import ConvForward, ConvNetwork, tiny_conv_network
from umwelt.circuits.conv.network import _conv2d as _conv2d
from umwelt.circuits.conv.network import _pool_select as _pool_select

__all__ = [
    "MAX_CONV_EDGES",
    "MAX_ENUMERATED_CONV_CIRCUITS",
    "POOL_MODES",
    "ConvCircuits",
    "ConvForward",
    "ConvNetwork",
    "tiny_conv_network",
]
