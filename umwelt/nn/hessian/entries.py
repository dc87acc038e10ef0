r"""Sampled Hessian entries and their bootstrap statistics (THEORY.md §4, eq. 18, figs. 6–7).

An entry of the Hessian is an average over training examples,

.. math::
    H_{jk} = \sum_i w_i\, c_{ijk}, \qquad c_{ijk} = \frac{\partial^2 \ell_i}{\partial\theta_j
    \partial\theta_k}, \qquad w_i = 1/n,

so its sampling distribution over data sets is estimated by a **bootstrap over the examples**:
resample the ``n`` examples with replacement ``B`` times, :math:`w^{(b)}_i = m^{(b)}_i / n`
with multinomial counts :math:`m^{(b)}`, and :math:`H^{(b)}_{jk} = \sum_i w^{(b)}_i c_{ijk}`.
The per-example contributions :math:`c_{ijk}` are computed once (:func:`entry_contributions`),
so a resample is one matrix product — no Hessian is recomputed.

**Which entries.** :func:`sample_entries` draws ``K`` distinct unordered pairs
:math:`\{j, k\}`, :math:`j \ne k`, seeded. By default pairs *within* one parameter tensor are
**excluded** (``within_layer=False``): with hinge loss they are exactly zero (every circuit uses
one weight per layer), their bootstrap variance is 0 and the normalization by the standard
deviation is undefined. Without ``n_columns`` the pairs are uniform over the admissible ones;
with ``n_columns = C`` they are confined to ``C`` random columns (rows uniform), which bounds
the cost below.

**Cost.** Each distinct column :math:`k` needs every example's :math:`\nabla^2\ell_i\, e_k` at
the rows of its entries: with the gated nets one fixed-gate tangent and adjoint pass of the
unit vectors, each example's rows read off before the batch sum
(:meth:`~umwelt.nn.hessian.ModelHessian.per_example_entries`; measured 0.27 ms per example and
column on ``vgg12`` at width 1/8, float64, one thread, against 7.8 ms by ``torch.func.vmap``,
which the other models take). So the cost is (number of distinct columns) × (about one product
over the data), and memory ``n × K`` for the contributions. Which pairs to sample:
:mod:`~umwelt.nn.hessian.pairs` (the pairs a basis circuit joins, known from the shapes).

**Statistics** (:func:`entry_statistics`), all over the ``B`` bootstrap samples:

* ``value`` — :math:`H_{jk}` on the full data (the bootstrap's expectation, no resampling noise);
  ``std`` — its bootstrap standard deviation; ``ratio`` — :math:`|H_{jk}|/\mathrm{std}`;
  ``normalized`` — :math:`H^{(b)}_{jk}/\mathrm{std}` (fig. 6a); ``frac_below`` — the fraction of
  entries with ratio < 0.15 (fig. 7a,b). Entries with zero variance (e.g. of dead units) are
  *degenerate*: reported as ``NaN`` and left out of every fraction and count. *Two readings of
  the paper's normalization.* Dividing by the bootstrap std of the mean (the standard error)
  makes the ratio of an entry whose expectation is exactly 0 a :math:`|\mathcal N(0, 1)|`
  variable, so at most :math:`\mathrm{erf}(0.15/\sqrt 2) = 11.9\%` of such entries fall below
  0.15 — the paper's ≥ 95% cannot be reached under this reading by any network. Dividing by
  the spread of the per-example contributions (:math:`\sqrt n` times the standard error; the
  driver :mod:`sim.hessian` reports it as ``frac_means_below_015_per_example``) is the reading
  under which the paper's numbers are attainable; both are recorded and plotted.
* ``corr`` — the ``K × K`` correlation matrix of the entries across bootstrap samples (fig. 6b,c;
  :func:`correlation_submatrix` for a 100 × 100 block). **Significance rule**: Fisher's
  :math:`z = \mathrm{artanh}(r)\sqrt{B - 3}` is :math:`\mathcal N(0, 1)` when the true
  correlation is 0; two-sided p-values are corrected over the :math:`K_\mathrm{live}(K_\mathrm{live}
  - 1)/2` pairs by Bonferroni (``p < α/m``, default) or Benjamini–Hochberg (false-discovery rate
  α), α = 0.05 by default. ``n_corr`` counts, per entry, the other entries it is significantly
  correlated with.
* ``skew`` and ``kurt`` — the sample skewness and excess kurtosis of each entry's bootstrap
  distribution; **significance** by D'Agostino's skewness test and Anscombe–Glynn's kurtosis
  test (``scipy.stats.skewtest``/``kurtosistest``, which need ``B ≥ 20``) with the same
  correction over the ``K_live`` entries.
* **Exponents of N** (fig. 7c): a count :math:`c` is reported as :math:`\log c / \log N`
  (``NaN`` for 0): per entry for ``n_corr`` (``corr_exponent``), and for the number of entries
  with significant skewness or kurtosis. :func:`entry_summary` gives the per-epoch numbers, with
  ``coupling_exponent`` = :math:`\log(\overline{n_\mathrm{corr}})/\log N` and the fraction of the
  others an entry correlates with, ``coupling_fraction`` (the paper's 3.4·10⁻⁴ at the end of
  training).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

from umwelt._checks import check_int
from umwelt.errors import ConfigError
from umwelt.nn.hessian.model import ModelHessian

__all__ = [
    "CORRECTIONS",
    "EntrySample",
    "EntryStatistics",
    "bootstrap_counts",
    "bootstrap_entries",
    "correlation_submatrix",
    "count_exponent",
    "entry_contributions",
    "entry_statistics",
    "entry_summary",
    "example_bootstrap",
    "nonzero_entries",
    "sample_entries",
    "significant",
]

CORRECTIONS: tuple[str, ...] = ("bonferroni", "bh")


@dataclass(frozen=True, eq=False)
class EntrySample:
    """``K`` sampled Hessian entries :math:`(j, k)`.

    Attributes:
        rows: :math:`j`, ``(K,)`` int64 flat parameter indices.
        cols: :math:`k`, ``(K,)`` int64; sorted by column (then row), so columns group.
        n: the Hessian dimension :math:`N`.
        population: number of admissible unordered pairs the sample is drawn from.
        within_layer: whether pairs inside one parameter tensor were admissible.
        seed: the sampling seed.
    """

    rows: np.ndarray
    cols: np.ndarray
    n: int
    population: int
    within_layer: bool
    seed: int

    @property
    def size(self) -> int:
        """``K``."""
        return len(self.rows)


def sample_entries(
    op: ModelHessian,
    K: int,
    *,
    seed: int = 0,
    within_layer: bool = False,
    n_columns: int | None = None,
) -> EntrySample:
    """Draw ``K`` distinct off-diagonal entries of ``op``'s Hessian (see the module docstring).

    Args:
        op: the operator (its ``layer_of`` defines the parameter tensors).
        K: number of entries.
        seed: seed of the draw (``numpy.random.default_rng``).
        within_layer: admit pairs inside one parameter tensor (exactly 0 for hinge loss).
        n_columns: confine the entries to this many random columns (cheaper); default: pairs
            uniform over all admissible ones.

    Raises:
        ConfigError: ``K`` larger than the number of admissible pairs (e.g. a model with one
            parameter tensor and ``within_layer=False``), or a bad ``n_columns``.
    """
    K = check_int("the number of entries K", K)
    N = op.n
    sizes = np.diff(op.param_offsets)
    total = N * (N - 1) // 2
    population = total if within_layer else total - int((sizes * (sizes - 1) // 2).sum())
    if K > population:
        raise ConfigError(
            f"asked for K = {K:,} entries but only {population:,} admissible pairs exist "
            f"(N = {N:,}, {len(sizes)} parameter tensors, within_layer={within_layer})"
        )
    rng = np.random.default_rng(seed)
    if n_columns is not None:
        n_columns = check_int("n_columns", n_columns)
        if n_columns > N:
            raise ConfigError(f"n_columns = {n_columns} exceeds N = {N}")
        col_pool = rng.choice(N, n_columns, replace=False)
        # admissible rows per column: N - 1, or N - (size of its tensor); an unordered pair with
        # both ends among the columns is counted by both, so subtract those pairs once
        pool_layers = op.layer_of(col_pool)
        per_col = N - (np.ones(n_columns, np.int64) if within_layer else sizes[pool_layers])
        inside = n_columns * (n_columns - 1) // 2
        if not within_layer:
            per_tensor = np.unique(pool_layers, return_counts=True)[1]
            inside -= int((per_tensor * (per_tensor - 1) // 2).sum())
        capacity = int(per_col.sum()) - inside
        if K > capacity:
            raise ConfigError(
                f"K = {K:,} entries do not fit in {n_columns} columns ({capacity:,} "
                "admissible entries)"
            )
    seen: set[tuple[int, int]] = set()
    rows: list[int] = []
    cols: list[int] = []
    while len(rows) < K:
        m = 2 * (K - len(rows)) + 16
        if n_columns is None:
            j = rng.integers(0, N, m)
            k = rng.integers(0, N, m)
        else:
            k = col_pool[rng.integers(0, n_columns, m)]
            j = rng.integers(0, N, m)
        ok = j != k
        if not within_layer:
            ok &= op.layer_of(j) != op.layer_of(k)
        for a, b in zip(j[ok].tolist(), k[ok].tolist()):
            key = (a, b) if n_columns is not None else (min(a, b), max(a, b))
            if n_columns is not None and (b, a) in seen:
                continue
            if key in seen:
                continue
            seen.add(key)
            rows.append(a)
            cols.append(b)
            if len(rows) == K:
                break
    r = np.asarray(rows, dtype=np.int64)
    c = np.asarray(cols, dtype=np.int64)
    if n_columns is None:  # orient each pair so that columns repeat as little as possible
        r, c = np.maximum(r, c), np.minimum(r, c)
    order = np.lexsort((r, c))
    return EntrySample(
        rows=r[order],
        cols=c[order],
        n=N,
        population=population,
        within_layer=within_layer,
        seed=int(seed),
    )


def entry_contributions(
    op: ModelHessian,
    sample: EntrySample,
    *,
    example_chunk: int = 32,
    column_chunk: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    r"""Per-example contributions :math:`c_{ijk} = \partial^2\ell_i / \partial\theta_j
    \partial\theta_k` of the sampled entries.

    :meth:`~umwelt.nn.hessian.ModelHessian.per_example_entries` of the entries, the distinct
    columns in chunks within one parameter tensor. With ``ad="gated"`` (the default for the
    gated nets) it takes the fixed-gate tangent and adjoint passes of the columns' unit vectors
    and reads each example's rows off them
    (:meth:`~umwelt.nn.hessian.gated.GatedProducts.example_entries`): measured on ``vgg12`` at
    width 1/8 (512 CIFAR-10 images, hinge, float64, one thread;
    ``sim.benchmarks.hessian_examples``) 0.27 ms per example and column against 7.8 ms for the
    per-example products of ``torch.func`` (``vmap`` over examples and columns), which the other
    ``ad`` modes take (logistic loss: 0.52 against 9.0 ms).
    :math:`H_{jk} = \sum_i w_i c_{ijk}` (``op.example_weights @ C``).

    Args:
        op: the operator (its examples, gates and loss).
        sample: the entries.
        example_chunk: examples per vectorized call (``torch.func`` modes; the gated passes
            take the examples in chunks of their own memory rule).
        column_chunk: distinct columns per chunk, at most (a chunk lies in one parameter
            tensor).
        progress: called as ``progress(done, total)`` after each chunk of columns: the columns
            done of the distinct columns (with ``ad="gated"`` counted once per batch of the
            operator, which goes outer there).

    Returns:
        ``C``, ``(n_examples, K)`` float64.

    Raises:
        ConfigError: the entries were drawn for another ``N``.
        NonFiniteError: a contribution is NaN or inf.
    """
    if sample.n != op.n:
        raise ConfigError(f"the entries were drawn for N = {sample.n}, the operator has N = {op.n}")
    C = op.per_example_entries(
        sample.rows,
        sample.cols,
        column_chunk=column_chunk,
        example_chunk=example_chunk,
        progress=progress,
    )  # (n_examples, K)
    return C.double().cpu().numpy()


def nonzero_entries(op: ModelHessian, K: int, n_columns: int, *, seed: int) -> EntrySample:
    r"""``K`` entries drawn uniformly among the **non-zero** cross-layer entries of
    ``n_columns`` random columns (the columns fixed by ``seed``, the same at every epoch).

    With the gates fixed, :math:`\partial^2 f/\partial\theta_j\partial\theta_k` is identically 0
    unless some basis circuit runs through both weights (THEORY.md §3): of two weights in
    adjacent layers only those sharing their unit, :math:`1/n_l` of the pairs. Such structural
    zeros (and the entries of units no example opens) have no bootstrap variance, so uniform
    pairs (:func:`sample_entries`) would spend most of ``K`` on them. One product per column,
    :math:`H e_k` on the full data, finds the non-zero rows; the unordered pairs
    :math:`\{j, k\}` with :math:`H_{jk} \ne 0` and :math:`j, k` in different parameter tensors
    form the population (fewer than ``K``: all of them).

    Returns:
        the sample, sorted by column then row; ``population`` is the number of such pairs.
    """
    N = op.n
    rng = np.random.default_rng(seed)
    cols = np.sort(rng.choice(N, n_columns, replace=False))
    E = torch.zeros((N, n_columns), dtype=op.dtype, device=op.device)
    E[torch.as_tensor(cols, device=op.device), torch.arange(n_columns, device=op.device)] = 1.0
    H = op.matmat(E).double().cpu().numpy()  # (N, C): the columns H e_k
    layer = op.layer_of(np.arange(N))
    ok = (H != 0) & (layer[:, None] != layer[cols][None, :])  # (N, C)
    j, c = np.nonzero(ok)
    k = cols[c]
    # {j, k} twice when j is a sampled column too: keep the copy in the smaller column
    in_cols = np.isin(j, cols)
    keep = ~in_cols | (k < j)
    j, k = j[keep], k[keep]
    take = rng.choice(j.size, min(K, j.size), replace=False) if j.size else np.zeros(0, int)
    r, cc = j[take], k[take]
    order = np.lexsort((r, cc))
    return EntrySample(
        rows=r[order].astype(np.int64),
        cols=cc[order].astype(np.int64),
        n=N,
        population=int(j.size),
        within_layer=False,
        seed=int(seed),
    )


def example_bootstrap(
    op: ModelHessian, C: np.ndarray, n_boot: int, *, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    r"""Bootstrap the sampled entries over the examples, whichever process holds them.

    With per-example contributions :math:`C_{ik}` (``(n_shard, K)``, :func:`entry_contributions`
    of this process's examples) and multinomial counts :math:`m^{(b)}` of all ``n`` examples
    (:func:`bootstrap_counts`, the same on every process), resample :math:`b` of entry
    :math:`k` is :math:`H^{(b)}_k = \sum_i rac{m^{(b)}_i}{n} C_{ik}`, each process summing
    its examples and the sums added over the processes.

    Returns:
        ``(samples (n_boot, K), value (K,))``: the resamples and the entries
        :math:`\sum_i w_i C_{ik}`.
    """
    n = op.n_total
    counts = bootstrap_counts(n, n_boot, seed=seed)  # (B, n)
    samples = op.reduce_numpy((counts[:, op.shard] / n) @ C)  # (B, K)
    value = op.reduce_numpy(op.example_weights.double().cpu().numpy() @ C)  # (K,)
    return samples, value


def bootstrap_counts(n: int, n_boot: int, *, seed: int = 0) -> np.ndarray:
    """Multinomial resample counts ``(n_boot, n)``: example ``i`` drawn ``m_i`` times, Σ m = n."""
    n = check_int("the number of examples", n)
    n_boot = check_int("the number of bootstrap resamples", n_boot, minimum=2)
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)


def bootstrap_entries(
    contributions: np.ndarray, n_boot: int, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    r"""Bootstrap the entries over examples: :math:`H^{(b)} = (m^{(b)}/n)\, C`.

    Args:
        contributions: ``C``, ``(n, K)`` from :func:`entry_contributions` (the operator's
            default weights :math:`1/n` are assumed).
        n_boot: number of resamples ``B``.
        seed: seed of the resampling.

    Returns:
        ``(samples, counts)``: ``(B, K)`` bootstrap entries and the ``(B, n)`` counts used.
    """
    C = np.asarray(contributions, dtype=np.float64)
    if C.ndim != 2:
        raise ConfigError(f"contributions must be (n, K), got shape {C.shape}")
    counts = bootstrap_counts(C.shape[0], n_boot, seed=seed)
    return (counts / C.shape[0]) @ C, counts


def significant(
    pvalues: np.ndarray, alpha: float = 0.05, correction: str = "bonferroni"
) -> np.ndarray:
    r"""Which of ``pvalues`` (any shape, NaN = not tested) are significant at family level α.

    ``"bonferroni"``: :math:`p < \alpha/m`; ``"bh"``: Benjamini–Hochberg step-up at false
    discovery rate α, i.e. the adjusted p-values of ``scipy.stats.false_discovery_control``
    (:math:`\min_{j \ge i} m\, p_{(j)}/j`) at most α; ``m`` = the number of non-NaN p-values.

    >>> p = np.array([0.01, 0.02, 0.03, 0.04, np.nan])
    >>> significant(p, 0.05, "bonferroni").tolist(), significant(p, 0.05, "bh").tolist()
    ([True, False, False, False, False], [True, True, True, True, False])

    Raises:
        ConfigError: an unknown correction, α outside (0, 1), or p-values outside [0, 1].
    """
    if correction not in CORRECTIONS:
        raise ConfigError(f"correction must be one of {', '.join(CORRECTIONS)}, got {correction!r}")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be in (0, 1), got {alpha!r}")
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.zeros(p.shape, dtype=bool)
    tested = ~np.isnan(p)
    m = int(tested.sum())
    if m == 0:
        return out
    flat = p[tested]
    if flat.min() < 0 or flat.max() > 1:
        raise ConfigError(
            f"p-values must lie in [0, 1], got values in [{flat.min():g}, {flat.max():g}]"
        )
    if correction == "bonferroni":
        out[tested] = flat < alpha / m
    else:
        out[tested] = stats.false_discovery_control(flat, method="bh") <= alpha
    return out


def count_exponent(count: np.ndarray | float, n: int) -> np.ndarray | float:
    r""":math:`\log c / \log N` (``NaN`` where :math:`c = 0`).

    >>> count_exponent(100, 10_000)
    0.5
    """
    c = np.asarray(count, dtype=np.float64)
    with np.errstate(divide="ignore"):
        e = np.where(c > 0, np.log(np.where(c > 0, c, 1.0)) / math.log(n), np.nan)
    return float(e) if e.ndim == 0 else e


@dataclass(frozen=True, eq=False)
class EntryStatistics:
    """Bootstrap statistics of ``K`` sampled entries (see the module docstring for each rule).

    Attributes:
        value: :math:`H_{jk}` on the full data, ``(K,)``.
        boot_mean: mean over bootstrap samples, ``(K,)``.
        std: bootstrap standard deviation (``ddof=1``), ``(K,)``.
        ratio: :math:`|H_{jk}|/\\mathrm{std}`, ``NaN`` for degenerate entries, ``(K,)``.
        normalized: bootstrap samples over std, ``(B, K)``.
        live: entries with non-zero std, ``(K,)`` bool.
        frac_below: fraction of live entries with ``ratio < threshold``.
        threshold: 0.15 by default.
        corr: ``(K, K)`` correlation matrix (``NaN`` rows/columns for degenerate entries, 1 on
            the diagonal of live ones).
        n_corr: per entry, the number of other entries significantly correlated with it.
        skew, kurt: sample skewness and excess kurtosis per entry, ``(K,)``.
        skew_sig, kurt_sig: significance of each (corrected over live entries), ``(K,)`` bool.
        n: the Hessian dimension :math:`N`.
        n_boot: ``B``.
        alpha, correction: the significance level and the multiple-testing correction.
    """

    value: np.ndarray
    boot_mean: np.ndarray
    std: np.ndarray
    ratio: np.ndarray
    normalized: np.ndarray
    live: np.ndarray
    frac_below: float
    threshold: float
    corr: np.ndarray
    n_corr: np.ndarray
    skew: np.ndarray
    kurt: np.ndarray
    skew_sig: np.ndarray
    kurt_sig: np.ndarray
    n: int
    n_boot: int
    alpha: float
    correction: str

    @property
    def corr_exponent(self) -> np.ndarray:
        r"""Per entry :math:`\log n_\mathrm{corr} / \log N` (``NaN`` for 0)."""
        return count_exponent(self.n_corr, self.n)


def entry_statistics(
    samples: np.ndarray,
    value: np.ndarray,
    *,
    n: int,
    threshold: float = 0.15,
    alpha: float = 0.05,
    correction: str = "bonferroni",
) -> EntryStatistics:
    """All statistics of figs. 6–7 from bootstrap samples ``(B, K)`` and full-data values ``(K,)``.

    Args:
        samples: :func:`bootstrap_entries`'s samples.
        value: the entries on the full data (``op.example_weights @ C``).
        n: the Hessian dimension :math:`N` (for the exponents).
        threshold: the ratio threshold of ``frac_below``.
        alpha: family-wise level (Bonferroni) or false-discovery rate (BH).
        correction: ``"bonferroni"`` or ``"bh"``.

    Raises:
        ConfigError: for fewer than 4 bootstrap samples, mismatched shapes, bad α or correction.
    """
    S = np.asarray(samples, dtype=np.float64)
    v = np.asarray(value, dtype=np.float64)
    if S.ndim != 2 or v.shape != (S.shape[1],):
        raise ConfigError(f"samples must be (B, K) and value (K,), got {S.shape} and {v.shape}")
    B, K = S.shape
    if B < 4:
        raise ConfigError(f"need at least 4 bootstrap samples, got {B}")
    significant(np.array([np.nan]), alpha, correction)  # validates alpha and correction
    mean = S.mean(axis=0)
    std = S.std(axis=0, ddof=1)
    scale = np.abs(S).max(axis=0)
    live = std > 1e-12 * np.where(scale > 0, scale, 1.0)  # round-off-only spread = degenerate
    safe = np.where(live, std, 1.0)
    ratio = np.where(live, np.abs(v) / safe, np.nan)
    normalized = np.where(live, S / safe, np.nan)
    frac_below = float((ratio[live] < threshold).mean()) if live.any() else math.nan

    corr = np.full((K, K), np.nan)
    idx = np.nonzero(live)[0]
    n_corr = np.zeros(K, dtype=np.int64)
    if idx.size >= 2:
        Z = (S[:, idx] - mean[idx]) / std[idx]  # (B, K_live)
        R = np.clip(Z.T @ Z / (B - 1), -1.0, 1.0)
        np.fill_diagonal(R, 1.0)
        corr[np.ix_(idx, idx)] = R
        iu = np.triu_indices(idx.size, 1)
        r = R[iu]
        with np.errstate(divide="ignore"):
            zf = np.arctanh(np.clip(r, -1 + 1e-15, 1 - 1e-15)) * math.sqrt(max(B - 3, 1))
        p = 2 * stats.norm.sf(np.abs(zf))
        sig = significant(p, alpha, correction)
        counts = np.zeros(idx.size, dtype=np.int64)
        np.add.at(counts, iu[0][sig], 1)
        np.add.at(counts, iu[1][sig], 1)
        n_corr[idx] = counts
    elif idx.size == 1:
        corr[idx[0], idx[0]] = 1.0

    skew = np.full(K, np.nan)
    kurt = np.full(K, np.nan)
    skew_sig = np.zeros(K, dtype=bool)
    kurt_sig = np.zeros(K, dtype=bool)
    if idx.size:
        skew[idx] = stats.skew(S[:, idx], axis=0, bias=True)
        kurt[idx] = stats.kurtosis(S[:, idx], axis=0, fisher=True, bias=True)
        if B >= 20:
            skew_sig[idx] = significant(stats.skewtest(S[:, idx], axis=0).pvalue, alpha, correction)
            kurt_sig[idx] = significant(
                stats.kurtosistest(S[:, idx], axis=0).pvalue, alpha, correction
            )
    return EntryStatistics(
        value=v,
        boot_mean=mean,
        std=std,
        ratio=ratio,
        normalized=normalized,
        live=live,
        frac_below=frac_below,
        threshold=threshold,
        corr=corr,
        n_corr=n_corr,
        skew=skew,
        kurt=kurt,
        skew_sig=skew_sig,
        kurt_sig=kurt_sig,
        n=int(n),
        n_boot=B,
        alpha=alpha,
        correction=correction,
    )


def correlation_submatrix(
    st: EntryStatistics, size: int = 100, *, seed: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A ``size × size`` block of the correlation matrix among live entries (fig. 6b,c).

    The first ``size`` live entries, or ``size`` random ones when ``seed`` is given (fewer when
    fewer are live).

    Returns:
        ``(indices, block)``: entry indices ``(s,)`` and the ``(s, s)`` correlations.
    """
    size = check_int("the sub-matrix size", size)
    idx = np.nonzero(st.live)[0]
    if seed is not None and idx.size > size:
        idx = np.sort(np.random.default_rng(seed).choice(idx, size, replace=False))
    idx = idx[:size]
    return idx, st.corr[np.ix_(idx, idx)]


def entry_summary(st: EntryStatistics) -> dict[str, float]:
    r"""Per-epoch numbers of figs. 6–7 from :class:`EntryStatistics`.

    ``frac_means_below_015`` (fraction of live entries with :math:`|H|/\mathrm{std} < 0.15`),
    ``n_live``, ``mean_n_corr``, ``coupling_fraction``
    (mean :math:`n_\mathrm{corr}/(K_\mathrm{live}-1)`),
    ``coupling_exponent`` (:math:`\log \overline{n_\mathrm{corr}} / \log N`), ``frac_skew_sig``,
    ``frac_kurt_sig`` and ``skew_exponent``, ``kurt_exponent`` (:math:`\log(\#\text{significant})
    / \log N`). ``coupling_fraction`` is also the density of significant off-diagonal pairs.
    """
    live = st.live
    k_live = int(live.sum())
    ncorr = st.n_corr[live].astype(np.float64)
    mean_n = float(ncorr.mean()) if k_live else math.nan
    frac = mean_n / (k_live - 1) if k_live > 1 else math.nan
    n_skew = int(st.skew_sig.sum())
    n_kurt = int(st.kurt_sig.sum())
    return {
        "frac_means_below_015": st.frac_below,
        "n_entries": int(live.size),
        "n_live": k_live,
        "mean_n_corr": mean_n,
        "coupling_fraction": frac,
        "coupling_exponent": count_exponent(mean_n, st.n) if k_live else math.nan,
        "frac_skew_sig": n_skew / k_live if k_live else math.nan,
        "frac_kurt_sig": n_kurt / k_live if k_live else math.nan,
        "skew_exponent": count_exponent(n_skew, st.n),
        "kurt_exponent": count_exponent(n_kurt, st.n),
    }
