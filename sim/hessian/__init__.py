r"""``umwelt hessian RUN``: the risk's Hessian through training — spectra, sampled entries and
their statistics at the checkpoints of a run (THEORY.md §3–5, the paper's figs. 6–8).

**What is analysed.** A run directory of ``umwelt train`` (the weights
``checkpoints/model_epoch_XXXX.pt`` at its observed epochs) or of ``umwelt simulate``
(``checkpoints/init.pt`` as epoch 0 and ``finite_T.pt`` — or, with ``net="relu"``, the ReLU
twin's ``relu.pt`` — as the last epoch of ``metrics.jsonl``: a simulate run keeps only its
latest weights). Model and data are rebuilt from the run's ``config.json`` exactly as the run
built them (:meth:`sim.runs.Run.model`, :meth:`sim.runs.Run.data`), the training set (or a
fixed, seeded set of ``examples`` of it, the same examples at every epoch) makes the risk
:math:`R = \frac1n\sum_i \ell(y_i f(x_i))` with the run's loss, and
:class:`~umwelt.nn.hessian.ModelHessian` takes its Hessian at the run's temperature with the
gates held fixed, as in the M-step: sampling gates at :math:`T > 0` are drawn once per example
from ``(seed, example index)``, the same uniforms at every epoch.

**Per epoch** (``hessian/epoch_XXXX.npz`` and one row of ``hessian/hessian.jsonl``):

* **extremes** :math:`\lambda_{\min}, \lambda_{\max}` (``extremes_from`` says how): by
  default (``extremes="slq"``) the outermost Ritz values of the SLQ runs below, when their
  residual bounds (``extremes_residual_min``/``_max``) are at most
  :data:`~sim.hessian.analysis.EXTREME_RTOL` = 10⁻³ of the spectral radius (an eigenvalue lies
  that close to each, and Ritz values lie inside the spectrum) — no product more; otherwise a
  separate fully re-orthogonalized Lanczos run of ``extreme_steps`` steps too
  (``"slq+lanczos"``, the outermost of both). ``extremes="lanczos"`` always runs the
  separate pass, ``"eigsh"`` ARPACK's instead, both widened by the SLQ's Ritz values;
* **the eigenvalue density** by stochastic Lanczos quadrature (``lanczos_steps`` ×
  ``start_vectors`` products; :func:`~umwelt.nn.hessian.slq`) on **one grid shared by every
  epoch**: symmetric, ``grid_points`` points on :math:`[-b, b]`, evenly spaced in
  :math:`u_c(\lambda) = \mathrm{sign}(\lambda)\ln(1 + |\lambda|/c)`, :math:`c = 10^{-3} b`
  (:func:`~umwelt.nn.hessian.symmetric_grid` with ``scale="symlog"``), for plots on
  symmetric-log axes. The density is smoothed by a Gaussian of width :math:`\sigma_u` =
  ``smoothing`` in :math:`u_s = u_{c_s}` — a relative width :math:`\approx\sigma_u` far from 0
  and an absolute width :math:`\sigma_u c_s` near it —

  .. math::
      \hat\rho(\lambda) = \frac{1}{c_s + |\lambda|}\,\frac{1}{n_v}\sum_v\sum_m \tau^{(v)}_m\,
      \mathcal N\big(u_s(\lambda);\, u_s(\theta^{(v)}_m), \sigma_u^2\big), \qquad
      c_s = \max\big(c,\ \delta/\sigma_u\big),

  a density in :math:`\lambda` (mass 1) with a 90% band (± 1.645 closed-form SE over the
  Gaussian start vectors, :mod:`umwelt.nn.hessian.quadrature`). Here
  :math:`\delta = (\theta_{\max} - \theta_{\min})/k` is the quadrature's resolution: ``k``
  Gauss nodes cannot place eigenvalues closer than about that, and finer smoothing near 0 would
  draw the nodes' positions, not the spectrum (:math:`\delta = 0` when every start vector
  reached an invariant subspace: the nodes are then eigenvalues). The raw Ritz nodes and weights
  are saved, so any other smoothing needs no new products;
* **spectral summary** (:func:`~umwelt.nn.hessian.spectral_summary`, closed-form delta-method
  standard errors over the start vectors, null below 3 of them with ``se_reason``):
  ``neg_mass``, ``neg_share`` (the negative part of the weight beyond the resolution
  :math:`\delta`, also recorded as ``resolution``), the moment ``asymmetry``
  :math:`\int\lambda^3\rho/(\int\lambda^2\rho)^{3/2}`, ``density_asymmetry``
  :math:`\int|\rho(\lambda)-\rho(-\lambda)|d\lambda` of the smoothed density above, the
  Hutchinson ``trace``, ``m2`` :math:`= \mathrm{tr}H^2/N`, ``beyond_grid`` (quadrature weight
  outside :math:`[-b, b]`);
* **hinge checks** (hinge loss only; :func:`~umwelt.nn.hessian.hinge_checks`): exact diagonal
  entries at ``hinge_coords`` coordinates and a trace test — both vanish for a bias-free net;
  the trace test takes the density's Hutchinson estimate and its SE (16 probe vectors of its
  own only where that has no SE, and for the quadratic hinge's circuit part);
* **sampled entries** (figs. 6–7; :mod:`~umwelt.nn.hessian.entries`): ``entries`` = K
  entries :math:`H_{jk}` among the pairs some basis circuit joins (with the gates fixed, of two
  weights in adjacent layers only those sharing their unit, every pair further apart; with a loss
  of non-zero curvature every cross-layer pair; :mod:`umwelt.nn.hessian.pairs`), known from the
  layer shapes: min(``uniform_entries``, K/2) uniform ones (``corr_entries="uniform"``: the
  coupling set from all of them, the 100 × 100 correlation sub-matrix of figs. 6b,c from the
  first 100 live ones; ``"columns"`` takes both from the others) and the rest
  in ``entry_columns`` random columns (uniform pairs with ``entry_columns=None``). They are
  drawn once per run and kept in ``hessian/config.json`` (``entry_pairs``), so every epoch
  follows the same entries (``entry_rule`` says which rule; a model that is not a chain of
  layers falls back to the non-zero entries of the columns at each epoch). Per-example
  contributions take one gated pass per column
  (:meth:`~umwelt.nn.hessian.ModelHessian.per_example_entries`). Each entry is bootstrapped
  ``bootstrap`` times over the examples; ``frac_means_below_015`` (and
  ``..._per_example``) with 90 % bands over the entries (``_lo``, ``_hi``,
  :func:`~umwelt.nn.hessian.fraction_band`), ``coupling_exponent`` and the rest of
  :func:`~umwelt.nn.hessian.entry_summary` (Bonferroni at family level 0.05), the coupling
  set scaled to all the admissible entries of the Hessian (``coupling_set_*``,
  :func:`~umwelt.nn.hessian.coupling_set_from_pairs`, from the uniform entries) and Mardia's
  tests (``mardia_*``), ``n_entries``;
* **blocks** (``blocks=True``; :mod:`umwelt.nn.hessian.blocks`): every layer × layer block's
  share of :math:`\mathrm{tr}\,H^2` and its top singular values, ``block_vectors`` products per
  layer (``block_*`` arrays; ``blocks_within_share`` in the row);
* ``trace_exact``: :math:`\sum_i w_i\ell''_i\|\nabla f_i\|^2` from the structure
  (:func:`~umwelt.nn.hessian.exact_trace`; 0 for the hinge), beside Hutchinson's ``trace``;
* ``loss``: the risk of the analysed examples with the fixed gates (at :math:`T = 0` the run's
  training loss), ``active_fraction`` (examples with an active hinge), ``wall_s``, and
  ``hvp_mode``, how the products were taken (:class:`~umwelt.nn.hessian.ModelHessian`'s ``ad``:
  ``"gated"`` by hand for the gated nets, else ``torch.func``; only round-off differs);
* ``dtype`` of the products: ``auto`` takes float64 up to
  :data:`~sim.runs.hessian.AUTO_FLOAT64_LIMIT` = 50,000 parameters and float32 beyond (on a
  CPU about 8× faster: torch's float64 convolutions have no oneDNN kernels); a float32 epoch
  measures its round-off, ``roundoff`` (one product on 256 examples with a share in
  :math:`H`, against float64) and ``roundoff_m2``, a bound on the error it adds to ``m2``,
  warning when that is not below ``m2_se`` (on ``vgg12`` it is far below;
  tests/test_hessian_float32.py checks on dense oracles that float32 changes every reported
  quantity by less than a tenth of its standard error).

**The grid is chosen once.** The first analysis of a run fixes it, in
``hessian/config.json`` together with every setting that changes the numbers: ``grid_bound``
when given, else ``grid_margin`` × the largest :math:`|\lambda|` over the epochs analysed: of
the first epoch's extremes when it is analysed alone, else from a cheap first pass over all of
them (a Lanczos run of :data:`~sim.hessian.analysis.GRID_SCAN_STEPS` = 20 steps each; the
separate extremes with ``extremes="lanczos"``/``"eigsh"``). Later analyses of the same run
(more epochs; ``umwelt train --hessian-at``, where the first recorded epoch fixes it) reuse it
and must use the same settings (``fresh=True`` discards the old results instead).

**Failure.** Every setting, the run directory, the epochs, and every request that depends on the
dimension :math:`N` (``lanczos_steps`` ≤ N, ``entries`` ≤ the cross-layer pairs, ...) are
checked before anything is written. A non-finite product (a diverged checkpoint) stops the
analysis at that epoch with a :class:`~umwelt.errors.NonFiniteError` naming it; the epochs
before it are analysed and written first.

**Threads.** On a machine shared with other jobs, torch's default of one thread per core can
make products tens of times slower (threads wait on each other): set ``OMP_NUM_THREADS=1``.

**Processes.** Under ``torchrun`` each rank holds its shard of the examples
(:class:`~umwelt.nn.hessian.distributed.DistributedModelHessian`): products, the risk, the
active fraction and the entries' bootstrap sums are all-reduced, so the rows equal those of one
process up to round-off. Only rank 0 writes.

The package: :mod:`~sim.hessian.config` (:class:`HessianConfig`), :mod:`~sim.hessian.analysis`
(the passes over the epochs: :func:`run`, :func:`analyse`, :func:`record_epoch`),
:mod:`~sim.hessian.prepare` (the operator, the step counts checked against N, the seeds, the
grid, the settings record), :mod:`~sim.hessian.epoch` (one epoch's row and arrays,
:func:`analyse_epoch`), :mod:`~sim.hessian.spectrum` (an epoch's SLQ run and extremes, the grid
scan, the blocks, the round-off check), :mod:`~sim.hessian.hinges` (the hinge checks),
:mod:`~sim.hessian.entries` (an epoch's sampled entries and their statistics),
:mod:`~sim.hessian.store` (the analysis directory).
"""

from sim.hessian.analysis import (
    AUTO_FLOAT64_LIMIT,
    Progress,
    analyse,
    analyse_epoch,
    build_operator,
    density_grid,
    extreme_eigenvalues,
    grid_scan,
    load_epoch,
    record_epoch,
    resolve_steps,
    roundoff_examples,
    roundoff_row,
    run,
    settings_record,
    spectrum,
    stream_seeds,
)
from sim.hessian.config import HessianConfig, checkpoints_of
from sim.runs.hessian import DTYPES, EXTREMES, SETTINGS, HessianSettings, parse_settings

__all__ = [
    "AUTO_FLOAT64_LIMIT",
    "DTYPES",
    "EXTREMES",
    "SETTINGS",
    "HessianConfig",
    "HessianSettings",
    "Progress",
    "analyse",
    "analyse_epoch",
    "build_operator",
    "checkpoints_of",
    "density_grid",
    "extreme_eigenvalues",
    "grid_scan",
    "load_epoch",
    "parse_settings",
    "record_epoch",
    "resolve_steps",
    "roundoff_examples",
    "roundoff_row",
    "run",
    "settings_record",
    "spectrum",
    "stream_seeds",
]
