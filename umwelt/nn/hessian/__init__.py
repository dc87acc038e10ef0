r"""Hessian phase analysis of gated networks: operators, spectra, loss checks, sampled entries.

THEORY.md §3–5: with the gates held fixed (the M-step), the risk's Hessian
:math:`H = \nabla^2_\theta R` tells the plasticity phase (a symmetric spectrum: every stationary
point a saddle) from the frustration phase (nearly positive semi-definite).

* :mod:`~umwelt.nn.hessian.base` — :class:`HessianOperator` (the base class: checks,
  ``matmat``, ``to_scipy()``, ``dense()``), :class:`MatrixOperator`, :class:`Batch`;
* :mod:`~umwelt.nn.hessian.fixed_gates` — the seeded per-example gate sample, and the model run
  with its gates held fixed;
* :mod:`~umwelt.nn.hessian.gated` — the products written out by hand for gated MLPs and VGGs
  with fixed gates, the primal pass kept between products (``ad="gated"``, the default for
  them);
* :mod:`~umwelt.nn.hessian.ad_modes` — how :class:`ModelHessian` takes its products: one
  strategy per ``ad`` mode (``torch.func`` forward-over-reverse or reverse-over-forward, the
  hand-written gated product), in a table;
* :mod:`~umwelt.nn.hessian.model` — :class:`ModelHessian` (forward-over-reverse products of a
  model's risk with a fixed, seeded gate sample), its ``ad`` modes a table of strategies;
* :mod:`~umwelt.nn.hessian.vectors` — seeded Rademacher and Gaussian probe vectors;
* :mod:`~umwelt.nn.hessian.krylov` — Lanczos and its Ritz values, extremes (``eigsh`` and
  Lanczos);
* :mod:`~umwelt.nn.hessian.error_bars` — closed-form standard errors of an SLQ estimate over
  its start vectors (the delta method, Satterthwaite's widening);
* :mod:`~umwelt.nn.hessian.measure` — :class:`SLQResult`, the raw quadrature measure: its
  moments, trace, and densities on a fixed grid with their band;
* :mod:`~umwelt.nn.hessian.summary` — :func:`spectral_summary`: negative mass, asymmetries and
  trace, with their standard errors;
* :mod:`~umwelt.nn.hessian.symlog` — densities and summaries on symmetric-log axes;
* :mod:`~umwelt.nn.hessian.quadrature` — stochastic Lanczos quadrature (:func:`slq`),
  re-exporting the four modules above;
* :mod:`~umwelt.nn.hessian.traces` — Hutchinson's and Hutch++'s trace estimators;
* :mod:`~umwelt.nn.hessian.deflation` — deflated SLQ: converged extreme eigenpairs as exact
  point masses, the Wasserstein-1 error against exact eigenvalues;
* :mod:`~umwelt.nn.hessian.blocks` — per-layer-pair blocks: shares of tr H², top singular values;
* :mod:`~umwelt.nn.hessian.checks` — the hinge loss's zero diagonal and trace (the quadratic
  hinge's: those of its Gauss–Newton part), spectral symmetry, the fraction of active hinges;
* :mod:`~umwelt.nn.hessian.entries` — sampled entries, per-example contributions, bootstrap
  over examples, correlations, significance, coupling exponents (figs. 6–7);
* :mod:`~umwelt.nn.hessian.coupling` — coupling set sizes scaled to the population of entries,
  with bands over the sampled entries, and Mardia's multivariate skewness and kurtosis (fig. 7c),
  the fraction band of fig. 7b;
* :mod:`~umwelt.nn.hessian.pairs` — which entries a basis circuit joins (from the shapes alone),
  the samples of them a run follows through training;
* :mod:`~umwelt.nn.hessian.distributed` — the examples sharded over a process group.

Each module imports only modules listed before it (no import cycle).

``import umwelt.nn.hessian`` loads torch and SciPy.
"""

from umwelt.nn.hessian.base import (
    DENSE_LIMIT,
    Batch,
    CountedOperator,
    HessianOperator,
    MatrixOperator,
)
from umwelt.nn.hessian.checks import (
    DIAGONAL_EXACT_LIMIT,
    GaussNewtonPart,
    HingeCheckWarning,
    active_hinge_fraction,
    active_hinges,
    diagonal_entries,
    exact_trace,
    gauss_newton_part,
    hessian_diagonal,
    hinge_checks,
    spectrum_symmetry_defect,
)
from umwelt.nn.hessian.coupling import (
    COUPLING_INTERVALS,
    CouplingSet,
    MardiaTest,
    coupling_set,
    coupling_set_from_pairs,
    fraction_band,
    mardia,
    pair_density_variance,
    pair_significance,
)
from umwelt.nn.hessian.entries import (
    CORRECTIONS,
    EntrySample,
    EntryStatistics,
    bootstrap_counts,
    bootstrap_entries,
    correlation_submatrix,
    count_exponent,
    entry_contributions,
    entry_statistics,
    entry_summary,
    example_bootstrap,
    nonzero_entries,
    sample_entries,
    significant,
)
from umwelt.nn.hessian.krylov import LanczosResult, eigsh_extremes, lanczos, lanczos_extremes
from umwelt.nn.hessian.model import AD_MODES, PER_EXAMPLE_LOSSES, ModelHessian
from umwelt.nn.hessian.quadrature import (
    DensityBand,
    SLQResult,
    gaussian_density,
    quadrature_resolution,
    slq,
    spectral_summary,
    symlog_coordinate,
    symlog_density,
    symmetric_grid,
)
from umwelt.nn.hessian.traces import hutchinson_trace, hutchpp_trace
from umwelt.nn.hessian.vectors import DISTRIBUTIONS, random_vectors

__all__ = [
    "AD_MODES",
    "CORRECTIONS",
    "DENSE_LIMIT",
    "DIAGONAL_EXACT_LIMIT",
    "DISTRIBUTIONS",
    "COUPLING_INTERVALS",
    "PER_EXAMPLE_LOSSES",
    "Batch",
    "CountedOperator",
    "CouplingSet",
    "DensityBand",
    "EntrySample",
    "EntryStatistics",
    "GaussNewtonPart",
    "HessianOperator",
    "HingeCheckWarning",
    "LanczosResult",
    "MardiaTest",
    "MatrixOperator",
    "ModelHessian",
    "SLQResult",
    "active_hinge_fraction",
    "active_hinges",
    "bootstrap_counts",
    "bootstrap_entries",
    "correlation_submatrix",
    "count_exponent",
    "coupling_set",
    "coupling_set_from_pairs",
    "fraction_band",
    "diagonal_entries",
    "eigsh_extremes",
    "entry_contributions",
    "entry_statistics",
    "entry_summary",
    "example_bootstrap",
    "exact_trace",
    "gauss_newton_part",
    "gaussian_density",
    "hessian_diagonal",
    "hinge_checks",
    "hutchinson_trace",
    "hutchpp_trace",
    "lanczos",
    "lanczos_extremes",
    "mardia",
    "nonzero_entries",
    "pair_density_variance",
    "pair_significance",
    "quadrature_resolution",
    "random_vectors",
    "sample_entries",
    "significant",
    "slq",
    "spectral_summary",
    "spectrum_symmetry_defect",
    "symlog_coordinate",
    "symlog_density",
    "symmetric_grid",
]
