r"""``umwelt circuits``: the basis circuits of a net, their identities and their symmetry.

For an MLP (``--widths``, a circuit graph file, or a checkpoint of ``umwelt simulate`` /
``umwelt train``) or a conv net (``--model tiny-conv`` or a VGG preset at a width multiplier, or
a VGG checkpoint of ``umwelt train``), at a few inputs with their gates (ReLU at ``T = 0``,
sampled at ``T > 0``) and max-pool selections, it

1. **verifies the identities on the spot** (THEORY.md §3), in float64, against torch autograd
   through the same net with the same gates fixed:

   * :math:`\sum_i \Psi_i = f(x)` for every input;
   * :math:`\sum_{i \ni W^l_{ab}} \Omega^{(l)}_i = \partial f/\partial W^l_{ab}` for **every**
     weight and input;
   * :math:`\sum_{i \ni W^l_{ab}, W^{l'}_{cd}} \Omega^{(l,l')}_i = \partial^2 f / \partial
     W^l_{ab} \partial W^{l'}_{cd}` for ``checks`` entries drawn along uniformly sampled
     circuits (a random circuit and two of its weights, so that each entry has circuits);

   by **enumerating** every circuit (``enumerated: true``) when ``inputs × circuits`` fits the
   budget ``max_circuits`` (``--enumerate`` insists on it, and fails beyond the budget), and
   otherwise by summing over every circuit with dynamic programming over the circuit graph
   (:class:`~umwelt.circuits.ConvCircuits`; an MLP is a conv net without convolutions). Each
   error is normwise relative: :math:`\max|a - b| / \max|b|` over everything compared;

2. **samples** ``samples`` circuits per order uniformly (an input, a circuit, and the weight(s)
   differentiated out; :mod:`umwelt.circuits.symmetry`) and reports the symmetry statistics of
   :math:`\psi`, :math:`\Omega^{(1)}`, :math:`\Omega^{(2)}` — for a checkpoint also those of
   its initialization, side by side;

3. with ``out``, writes the fig. 3b histograms (``circuit_histograms.png``), with ``moments``
   the assembly moments at initialization against depth and width
   (``assembly_moments.png``, eq. 20), and ``circuits.json``.

**Through training** (``run``, a run directory of ``umwelt train`` with an MLP, or of
``umwelt simulate``): instead of all this, the assembly moments of the net at each checkpointed
epoch (``epochs``, default all) over the inputs — the mean and second moment of ``f``, of every
gradient entry and of ``samples`` Hessian entries (the same at every epoch), with standard
errors across the inputs — beside eq. 20's prediction (:mod:`umwelt.circuits.moments`). With
``plant_mean = (fraction, shift)`` each epoch's net is measured a second time with a planted
broken weight symmetry: that fraction of each layer's weights (the same, seeded positions at
every epoch) shifted by ``shift`` times the layer's RMS weight, which makes the :math:`\mu`
term of eq. 20 non-zero. With ``out``: ``assembly_moments_training.png`` and ``circuits.json``.
Nothing is written into the run directory.

Inputs: ``x`` (one input given), else for a checkpoint the first examples of its training set
(when the dataset loads), else standard-normal vectors.

The package, in dependency order: :mod:`~sim.circuits.config` (:class:`CircuitsConfig`, its
checks, ``--plant-mean``), :mod:`~sim.circuits.nets` (the net, its inputs and gates; circuit
graph files and checkpoints), :mod:`~sim.circuits.identities` (step 1, against autograd),
:mod:`~sim.circuits.figures` (the figures), :mod:`~sim.circuits.training` (*Through
training*), :mod:`~sim.circuits.runner` (:func:`run`: the memory check, step 2, the files).
"""

# every name the one module sim/circuits.py defined, its private helpers too (the surface: __all__)
from sim.circuits.config import DEFAULT_WIDTHS as DEFAULT_WIDTHS
from sim.circuits.config import TINY_CONV as TINY_CONV
from sim.circuits.config import CircuitsConfig, parse_plant_mean
from sim.circuits.config import _check_width as _check_width
from sim.circuits.figures import ORDER_LABELS as ORDER_LABELS
from sim.circuits.figures import _figures as _figures
from sim.circuits.figures import _note as _note
from sim.circuits.figures import _training_figure as _training_figure
from sim.circuits.identities import _autograd as _autograd
from sim.circuits.identities import _check_identities as _check_identities
from sim.circuits.identities import _enumerated_sums as _enumerated_sums
from sim.circuits.identities import _mlp_weight_entry as _mlp_weight_entry
from sim.circuits.identities import _rel as _rel
from sim.circuits.identities import _torch_f as _torch_f
from sim.circuits.nets import _gates as _gates
from sim.circuits.nets import _inputs as _inputs
from sim.circuits.nets import _load_graph as _load_graph
from sim.circuits.nets import _load_input as _load_input
from sim.circuits.nets import _Net as _Net
from sim.circuits.nets import _resolve as _resolve
from sim.circuits.nets import _to_net as _to_net
from sim.circuits.nets import graph_from_json, graph_to_json, load_checkpoint_net
from sim.circuits.runner import _check_memory as _check_memory
from sim.circuits.runner import _show_circuit as _show_circuit
from sim.circuits.runner import _symmetry as _symmetry
from sim.circuits.runner import run
from sim.circuits.training import _open_mlp_run as _open_mlp_run
from sim.circuits.training import _run_inputs as _run_inputs
from sim.circuits.training import _through_training as _through_training

__all__ = [
    "CircuitsConfig",
    "graph_from_json",
    "graph_to_json",
    "load_checkpoint_net",
    "parse_plant_mean",
    "run",
]
