r"""Figures as functions of data: each takes arrays (and, where it can share a figure, the axes
``ax`` to draw on) and returns ``(fig, ax)`` or ``(fig, axes)``. Nothing here shows or saves a
figure: the drivers in ``sim/`` choose the file names and call ``fig.savefig``.

Figures are built on :class:`matplotlib.figure.Figure` directly (no pyplot global state, so no
interactive backend is ever selected): they render headless and in parallel. ``import umwelt``
does not import this package; importing it loads matplotlib (never torch).

The figure families, one private module each (figures of THEORY.md §4 unless said otherwise):

**A training run** (:mod:`~umwelt.plotting._training`; ``umwelt simulate``, ``umwelt plot``)

- :func:`plot_learning_curves`: loss (log) and accuracy against epoch, several nets (fig. 8b).
- :func:`plot_order_parameter`: :math:`\eta\|\nabla R\|^2` beside the loss (fig. 4b).
- :func:`plot_phase_strip`: each epoch's phase as coloured bands (THEORY.md §5), under the
  learning curves (``phases=`` of :func:`plot_learning_curves`).
- :func:`plot_gate_statistics`: per-layer gate entropy and agreement with the ReLU gates.
- :func:`plot_ridgeline`: per-layer histograms offset by epoch (fig. 3a weights, 4a gradients).
- :func:`plot_layer_series`: per-layer scalars over epochs (gradient symmetry, gates, isotropy).
- :func:`plot_spectra`: within-layer weight-correlation spectra against rank (Fok et al.).

**Basis circuits** (:mod:`~umwelt.plotting._circuits`; ``umwelt circuits``)

- :func:`plot_circuit_histograms`: circuit values against their mirror image (fig. 3b).
- :func:`plot_assembly_moments`: assemblies' mean and second moment against depth (eq. 20).
- :func:`plot_assembly_moments_training`: the same against epoch, with eq. 20's prediction.

**The Hessian through training** (:mod:`~umwelt.plotting._hessian`; ``umwelt hessian``)

- :func:`plot_hessian_spectrum`: eigenvalue densities over epochs, symmetric-log (fig. 8a).
- :func:`plot_hessian_entries`: normalized entries and their correlations (figs. 6a–c).
- :func:`plot_hessian_means`: concentration of the means, coupling exponents (figs. 7a–c).
- :func:`plot_followed_entries`: the same entries followed through training (fig. 6a).
- :func:`plot_hessian_blocks`: per-layer-pair shares of tr H² over epochs (``--blocks``).

**A sweep** (:mod:`~umwelt.plotting._sweep`; ``umwelt sweep``, ``umwelt plot DIR``; §5)

- :func:`plot_phase_diagram`: the final phase over two axes, seeds as sub-cells, the boundary.
- :func:`plot_value_map`: a value (``frac_unsatisfied``, the final loss) over the same cells.
- :func:`plot_boundary_fits`: the fraction converged against N, the logistic fits, N*.
- :func:`plot_collapse`: N_Δ/N and the test accuracy against N/n.
"""

from umwelt.plotting._circuits import plot_assembly_moments as plot_assembly_moments
from umwelt.plotting._circuits import (
    plot_assembly_moments_training as plot_assembly_moments_training,
)
from umwelt.plotting._circuits import plot_circuit_histograms as plot_circuit_histograms
from umwelt.plotting._hessian import plot_followed_entries as plot_followed_entries
from umwelt.plotting._hessian import plot_hessian_blocks as plot_hessian_blocks
from umwelt.plotting._hessian import plot_hessian_entries as plot_hessian_entries
from umwelt.plotting._hessian import plot_hessian_means as plot_hessian_means
from umwelt.plotting._hessian import plot_hessian_spectrum as plot_hessian_spectrum
from umwelt.plotting._sweep import plot_boundary_fits as plot_boundary_fits
from umwelt.plotting._sweep import plot_collapse as plot_collapse
from umwelt.plotting._sweep import plot_phase_diagram as plot_phase_diagram
from umwelt.plotting._sweep import plot_value_map as plot_value_map
from umwelt.plotting._training import plot_gate_statistics as plot_gate_statistics
from umwelt.plotting._training import plot_layer_series as plot_layer_series
from umwelt.plotting._training import plot_learning_curves as plot_learning_curves
from umwelt.plotting._training import plot_order_parameter as plot_order_parameter
from umwelt.plotting._training import plot_phase_strip as plot_phase_strip
from umwelt.plotting._training import plot_ridgeline as plot_ridgeline
from umwelt.plotting._training import plot_spectra as plot_spectra
