r"""What is measured on a gated network while it learns (THEORY.md §4, §7).

Every function here is generic over any model whose weights are ``nn.Linear`` / ``nn.Conv2d``
layers (bias-free) and whose gates are :class:`umwelt.nn.gate.Gate` modules listed in
``model.gates`` (the gated MLP and the VGG nets alike). The full-data quantities take a
``torch.distributed`` process ``group``: each rank works on its contiguous shard of the
examples and the sums and counts are all-reduced (:mod:`umwelt.nn.parallel`), so under
``torchrun`` they equal the single-process values, and alone (``group=None``, nothing
initialized) the same code runs on all examples.

From one pass over the training set (:func:`full_gradient`):

* the risk :math:`R = \frac1n\sum_i \ell(y_i f(x_i))` and the accuracy (:math:`y f > 0`; an
  output of 0 is wrong), in the model's gate mode (in ``"sample"`` mode each example's gates
  are drawn once: a one-draw Monte Carlo estimate of the risk);
* the gradient :math:`\nabla_\theta R` of that same pass and the plasticity order parameter
  :math:`\eta\|\nabla_\theta R\|^2` (eq. 15, :func:`order_parameter`).

Per weight layer :math:`l` (in the order of ``model.modules()``, :func:`weight_layers`), the
arrays of one observed epoch (:func:`observe`):

* **weight histograms on fixed bins** (fig. 3a): entries of :math:`W_l` in units of
  :math:`u_l`, the root mean square of the layer's weights *at initialization* (≈ the He
  standard deviation :math:`g/\sqrt{\mathrm{fan_{in}}}`), on the bins :data:`WEIGHT_EDGES`
  (``-8 … 8`` in steps of 0.1), identical at every epoch, plus counts below and above;
* **gradient histograms** (fig. 4a): entries of :math:`\partial R/\partial W_l` in units of
  their root mean square *at this epoch* (the gradient shrinks by orders of magnitude; its shape
  is what is compared), on :data:`GRAD_EDGES`, with the unit saved;
* **symmetry statistics** of weights and gradients (:func:`symmetry_statistics`): mean, std,
  skewness, fraction of positive entries among the non-zero ones, the sign test's p-value
  (binomial, :math:`P(+) = 1/2`) and the two-sample Kolmogorov–Smirnov p-value of
  :math:`\{g\}` against :math:`\{-g\}` (a descriptive symmetry score: the two samples are not
  independent, so read it as a distance, not an exact test);
* **gate entropy, agreement with the ReLU gates and fraction open** per gate layer
  (:func:`gate_statistics`);
* **within-layer weight correlation spectra** (Fok et al., seed 001; THEORY.md §7,
  :func:`correlation_spectra`): the eigenvalues of the Gram matrix
  :math:`W W^\top/\mathrm{fan_{in}}` and of the correlation-coefficient matrix between the
  layer's neurons (rows of ``weight`` reshaped to ``(n_out, fan_in)``: output units, or output
  channels of a convolution), largest first, and the correlation spectrum's participation ratio
  :math:`(\sum\lambda)^2 / (n_{\rm out}\sum\lambda^2)` (1 when isotropic).

One module per concept, whose names this one re-exports (import from here):
:mod:`~umwelt.nn.observables_model` (weight layers, the gates' generator, the data and loss
checks), :mod:`~umwelt.nn.observables_passes` (:func:`full_gradient`, :func:`order_parameter`,
:func:`evaluate`), :mod:`~umwelt.nn.observables_phase` (:func:`margin_statistics`,
:func:`layer_norms`, :func:`effective_temperatures`), :mod:`~umwelt.nn.observables_gates`
(:func:`gate_statistics`), :mod:`~umwelt.nn.observables_entries` (:func:`fixed_histogram`,
:func:`symmetry_statistics`, :func:`correlation_spectra`) and
:mod:`~umwelt.nn.observables_epoch` (:func:`observe`, its bins).

Saving and loading the observations is the drivers' business.
"""

from __future__ import annotations

from umwelt.nn.observables_entries import correlation_spectra, fixed_histogram, symmetry_statistics
from umwelt.nn.observables_epoch import GRAD_EDGES, WEIGHT_EDGES, observe
from umwelt.nn.observables_gates import gate_statistics
from umwelt.nn.observables_model import _check_data as _check_data  # umwelt.nn.train
from umwelt.nn.observables_model import _loss_fn as _loss_fn  # umwelt.nn.train
from umwelt.nn.observables_model import _output as _output  # umwelt.nn.train
from umwelt.nn.observables_model import using_generator, weight_layers
from umwelt.nn.observables_passes import evaluate, full_gradient, order_parameter
from umwelt.nn.observables_phase import (
    MARGIN_QUANTILES,
    effective_temperatures,
    layer_norms,
    margin_statistics,
)

__all__ = [
    "GRAD_EDGES",
    "MARGIN_QUANTILES",
    "WEIGHT_EDGES",
    "correlation_spectra",
    "effective_temperatures",
    "layer_norms",
    "margin_statistics",
    "evaluate",
    "fixed_histogram",
    "full_gradient",
    "gate_statistics",
    "observe",
    "order_parameter",
    "symmetry_statistics",
    "using_generator",
    "weight_layers",
]
