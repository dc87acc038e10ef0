r"""Hessian phase analysis of gated networks: operators, spectra, loss checks, sampled entries.

THEORY.md §3–5: with the gates held fixed (the M-step), the risk's Hessian
:math:`H = \nabla^2_\theta R` tells the plasticity phase (a symmetric spectrum: every stationary
point a saddle) from the frustration phase (nearly positive semi-definite).

* :mod:`~umwelt.nn.hessian.operator` — :class:`HessianOperator` (the base class: checks,
  ``matmat``, ``to_scipy()``, ``dense()``), :class:`ModelHessian` (forward-over-reverse products
  of a model's risk with a fixed, seeded gate sample), :class:`MatrixOperator`;
* :mod:`~umwelt.nn.hessian.gated` — the same products written out by hand for gated MLPs and
  VGGs with fixed gates, the primal pass kept between products (``ad="gated"``, the default
  for them);
* :mod:`~umwelt.nn.hessian.spectra` — Lanczos, stochastic Lanczos quadrature on a fixed grid
  with bootstrap error bars, extremes (``eigsh`` and Lanczos), summary statistics, Hutchinson;
* :mod:`~umwelt.nn.hessian.checks` — the hinge loss's zero diagonal and trace, spectral symmetry;
* :mod:`~umwelt.nn.hessian.entries` — sampled entries, per-example contributions, bootstrap
  over examples, correlations, significance, coupling exponents (figs. 6–7).

``import umwelt.nn.hessian`` loads torch and SciPy.
"""

from umwelt.nn.hessian.checks import (
    DIAGONAL_EXACT_LIMIT,
    HingeCheckWarning,
    diagonal_entries,
    hessian_diagonal,
    hinge_checks,
    spectrum_symmetry_defect,
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
    sample_entries,
    significant,
)
from umwelt.nn.hessian.operator import (
    AD_MODES,
    DENSE_LIMIT,
    PER_EXAMPLE_LOSSES,
    Batch,
    HessianOperator,
    MatrixOperator,
    ModelHessian,
)
from umwelt.nn.hessian.spectra import (
    DISTRIBUTIONS,
    DensityBand,
    LanczosResult,
    SLQResult,
    active_hinge_fraction,
    eigsh_extremes,
    gaussian_density,
    hutchinson_trace,
    lanczos,
    lanczos_extremes,
    random_vectors,
    slq,
    spectral_summary,
    symmetric_grid,
)

__all__ = [
    "AD_MODES",
    "CORRECTIONS",
    "DENSE_LIMIT",
    "DIAGONAL_EXACT_LIMIT",
    "DISTRIBUTIONS",
    "PER_EXAMPLE_LOSSES",
    "Batch",
    "DensityBand",
    "EntrySample",
    "EntryStatistics",
    "HessianOperator",
    "HingeCheckWarning",
    "LanczosResult",
    "MatrixOperator",
    "ModelHessian",
    "SLQResult",
    "active_hinge_fraction",
    "bootstrap_counts",
    "bootstrap_entries",
    "correlation_submatrix",
    "count_exponent",
    "diagonal_entries",
    "eigsh_extremes",
    "entry_contributions",
    "entry_statistics",
    "entry_summary",
    "gaussian_density",
    "hessian_diagonal",
    "hinge_checks",
    "hutchinson_trace",
    "lanczos",
    "lanczos_extremes",
    "random_vectors",
    "sample_entries",
    "significant",
    "slq",
    "spectral_summary",
    "spectrum_symmetry_defect",
    "symmetric_grid",
]
