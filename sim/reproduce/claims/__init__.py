r"""The paper's claims, one :class:`~sim.reproduce.report.Claim` each, decided from a reproduction's
files (THEORY.md §4–5; the paper's eq. 14–15, figs. 3–8, §5).

Every claim is a number with a 95 % interval set against what the paper says, and the verdict
follows one rule, an equivalence test: **holds** when the whole interval lies where the paper
says the number is, **does not hold** when the whole interval lies outside, and **not
measurable at this scale** when the interval straddles the boundary (more data, a longer run or
a larger net would decide) or the run holds no data for it; the reason says which. The bounds
of "where the paper says" are this module's constants, since the paper gives none:

* *Symmetric about 0* (circuits, weights, gradients, Hessian entries): the mirror
  Kolmogorov–Smirnov distance :math:`D = \sup_t |F(t) - P(-v \le t)|` between the non-zero
  values and their mirror image is at most :data:`KS_TOL` (0.1: e.g. a 55:45 sign balance).
  Its interval is :math:`D \pm c/\sqrt m` over ``m`` non-zero values, with :math:`c` =
  :data:`KS_CRIT` the 95 % point of :math:`\sup_{[0,1]}|B|`, the null law of
  :math:`\sqrt m D` (:func:`umwelt.circuits.mirror_ks_test`); a sample of fewer than
  :math:`(c/0.1)^2 \approx 503` non-zero values cannot resolve 0.1 (*unresolved*).
* *About an order of magnitude below* (fig. 4b): a ratio in :data:`ORDER_BAND`
  :math:`= [10^{-1.5}, 10^{-0.5}]`; *at the loss's rate*: the slope of
  :math:`\log \eta\|\nabla R\|^2` against :math:`\log R` over the epochs in :data:`RATE_BAND`
  = [1/2, 2]. Both with moving-block bootstrap intervals over the epochs (serially correlated).
* *Reaches 0*: the last epoch's value at most :data:`ZERO_TOL` of the initial one.
* *A symmetric spectrum* (fig. 8a): :math:`\int|\rho(\lambda) - \rho(-\lambda)|\,d\lambda` (the
  Hessian rows' bias-corrected ``density_asymmetry``, 0 to 2) at most :data:`DENSITY_TOL`,
  ± 1.96 of its standard error.
* *Sparse* correlations (figs. 6b,c): at most :data:`SPARSE_TOL` of the pairs of uniformly
  sampled entries significantly correlated (the rows' ``coupling_set_fraction`` and its band).
* *About 3.39·10⁻⁴* (fig. 7c): within a factor :data:`ABOUT_FACTOR` of it.

A claim about a run that stopped while still learning (the plasticity phase) before the event
it predicts (zero risk) is *not measurable at this scale* at the ``cpu`` and ``quick`` scales,
and *does not hold* at the paper's own (``gpu``: 300 epochs).

The package, one concept per module: :mod:`~sim.reproduce.claims.rules` (the verdict rule, its
constants, the mirror KS test), :mod:`~sim.reproduce.claims.evidence` (:class:`Evidence`), and
the claims by what they are about: :mod:`~sim.reproduce.claims.symmetry` (circuits, weights,
gradients), :mod:`~sim.reproduce.claims.training` (the order parameter, zero error, the phases),
:mod:`~sim.reproduce.claims.spectrum` (the eigenvalue density),
:mod:`~sim.reproduce.claims.entries` (the sampled entries). This module puts them in the
report's order (:data:`CLAIMS`).
"""

from __future__ import annotations

from collections.abc import Callable

from sim.reproduce.claims.entries import _banded as _banded
from sim.reproduce.claims.entries import _means_claim as _means_claim
from sim.reproduce.claims.entries import (
    correlations_sparse,
    coupling_fraction,
    entries_symmetric,
    means_015_per_example,
    means_015_se,
)
from sim.reproduce.claims.evidence import Evidence
from sim.reproduce.claims.rules import (
    ABOUT_FACTOR,
    DENSITY_TOL,
    KS_CRIT,
    KS_TOL,
    ORDER_BAND,
    PAPER_COUPLING,
    RATE_BAND,
    SPARSE_TOL,
    ZERO_TOL,
    rules,
    within,
)
from sim.reproduce.claims.rules import BOOTSTRAP as BOOTSTRAP
from sim.reproduce.claims.rules import FAILS as FAILS
from sim.reproduce.claims.rules import HOLDS as HOLDS
from sim.reproduce.claims.rules import MEANS_END as MEANS_END
from sim.reproduce.claims.rules import MEANS_FLOOR as MEANS_FLOOR
from sim.reproduce.claims.rules import SE_CEILING as SE_CEILING
from sim.reproduce.claims.rules import UNDECIDED as UNDECIDED
from sim.reproduce.claims.rules import VERDICTS as VERDICTS
from sim.reproduce.claims.rules import Z95 as Z95
from sim.reproduce.claims.rules import _Cell as _Cell
from sim.reproduce.claims.rules import _combine as _combine
from sim.reproduce.claims.rules import _g as _g
from sim.reproduce.claims.rules import _num as _num
from sim.reproduce.claims.rules import _symmetry_claim as _symmetry_claim
from sim.reproduce.claims.rules import _with_reason as _with_reason
from sim.reproduce.claims.spectrum import _spectra as _spectra
from sim.reproduce.claims.spectrum import spectrum_contracts, spectrum_symmetric
from sim.reproduce.claims.symmetry import _layer_cells as _layer_cells
from sim.reproduce.claims.symmetry import _pooled_gradient_cells as _pooled_gradient_cells
from sim.reproduce.claims.symmetry import circuit_symmetry, gradient_symmetry, weight_symmetry
from sim.reproduce.claims.training import _block_bootstrap as _block_bootstrap
from sim.reproduce.claims.training import _final_phase as _final_phase
from sim.reproduce.claims.training import _loss_op as _loss_op
from sim.reproduce.claims.training import _not_reached as _not_reached
from sim.reproduce.claims.training import (
    order_parameter_rate,
    order_parameter_ratio,
    order_parameter_zero,
    phase_sequence,
    zero_training_error,
)
from sim.reproduce.report import Claim

__all__ = [
    "ABOUT_FACTOR",
    "CLAIMS",
    "DENSITY_TOL",
    "KS_CRIT",
    "KS_TOL",
    "ORDER_BAND",
    "PAPER_COUPLING",
    "RATE_BAND",
    "SPARSE_TOL",
    "ZERO_TOL",
    "Evidence",
    "evaluate",
    "rules",
    "within",
]


#: every claim, in the report's order: each a function of the :class:`Evidence`
CLAIMS: tuple[Callable[[Evidence], Claim], ...] = (
    circuit_symmetry,
    weight_symmetry,
    gradient_symmetry,
    order_parameter_ratio,
    order_parameter_rate,
    order_parameter_zero,
    zero_training_error,
    spectrum_symmetric,
    spectrum_contracts,
    entries_symmetric,
    means_015_se,
    means_015_per_example,
    correlations_sparse,
    coupling_fraction,
    phase_sequence,
)


def evaluate(ev: Evidence) -> list[Claim]:
    """One :class:`Claim` per entry of :data:`CLAIMS`."""
    return [claim(ev) for claim in CLAIMS]
