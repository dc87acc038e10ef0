r"""Circuit symmetry: how symmetric about 0 are circuit values and their perturbations?

Li, *Complexity from Adaptive-Symmetries Breaking* (eq. 14, fig. 3b; THEORY.md §4) measures
the **circuit symmetry** :math:`\mu(\psi) \approx \mu(-\psi)` on circuits sampled uniformly from
a network, and the same for the first- and second-order perturbations
:math:`\Omega^{(l)}` and :math:`\Omega^{(l,l')}` (eq. 16, 19). This module samples them and
summarizes each set of values by symmetry statistics; it also estimates the moments of the
*assemblies* (their sums: ``f``, gradient entries, Hessian entries) at initialization, to set
beside the paper's eq. 20.

One module per concept; this one re-exports their names (import from here or from
:mod:`umwelt.circuits`):

* :mod:`umwelt.circuits.symmetry_statistics`: the statistics of a sample
  (:func:`symmetry_stats`) and the mirror Kolmogorov–Smirnov test of ψ against −ψ
  (:func:`mirror_ks_test`), with its exact and Brownian null distributions;
* :mod:`umwelt.circuits.symmetry_sampling`: what is sampled (:func:`sample_perturbations`,
  :func:`sample_conv_perturbations` for conv nets, :class:`CircuitSample`);
* :mod:`umwelt.circuits.symmetry_assemblies`: the assemblies in closed form
  (:func:`assembly_entries`) and their moments over initializations
  (:func:`assembly_moments`, to set beside eq. 20).
"""

from __future__ import annotations

from umwelt.circuits.symmetry_assemblies import (
    AssemblyMoments,
    assembly_entries,
    assembly_moments,
)
from umwelt.circuits.symmetry_assemblies import (
    _sample_hessian_entries as _sample_hessian_entries,  # umwelt.circuits.moments
)
from umwelt.circuits.symmetry_sampling import (
    ORDERS,
    CircuitSample,
    sample_conv_perturbations,
    sample_layers,
    sample_perturbations,
)
from umwelt.circuits.symmetry_statistics import (
    EXACT_MIRROR_KS_MAX,
    SymmetryStats,
    mirror_ks_test,
    symmetry_stats,
)
from umwelt.circuits.symmetry_statistics import _brownian_tail as _brownian_tail  # tests
from umwelt.circuits.symmetry_statistics import _walk_tail_exact as _walk_tail_exact  # tests

__all__ = [
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
]
