r"""Coupling set sizes of Hessian entries and the entries' joint shape (THEORY.md §4, fig. 7c).

**Coupling set.** The paper's fig. 7c reports, per Hessian entry, the number of entries *of the
whole Hessian* it is statistically correlated with, as an exponent of :math:`N`, and at the end
of training the fraction of all entries an entry correlates with (3.39·10⁻⁴). Only ``K``
entries are sampled, so the count over the sample, ``n_corr`` of
:func:`~umwelt.nn.hessian.entries.entry_statistics`, is at most ``K - 1`` and its exponent at
most :math:`\log K / \log N`. Scaled to the population of ``P`` entries the sample was drawn
from uniformly (e.g. the cross-layer pairs, ``EntrySample.population``), entry :math:`i`'s

.. math::
    f_i = \frac{n_{\mathrm{corr}, i}}{K_\mathrm{live} - 1}, \qquad
    c_i = f_i\,(P - 1), \qquad e_i = \frac{\log c_i}{\log N}

are its estimated **coupling fraction** (among the other entries), **coupling count** and its
exponent of :math:`N`; :math:`f_i` is unbiased for the fraction of the :math:`P - 1` other
entries that entry :math:`i` is significant with. The summary is the mean fraction
:math:`\bar f = \sum_i n_{\mathrm{corr}, i} / (K_\mathrm{live}(K_\mathrm{live} - 1))` — the
density of significant pairs among the sampled ones, the paper's 3.39·10⁻⁴ — its count
:math:`\bar f (P - 1)` and the exponent :math:`\log(\bar f (P - 1)) / \log N` (the log of the
mean, as the paper averages the counts over entries before taking the exponent).

*Confidence band over the sampled entries.* :math:`\bar f` is a U-statistic of order 2 over
the sampled entries (the mean of the pair indicator :math:`G_{ij}`, the ``K × K`` significance
matrix), so by Hoeffding's decomposition

.. math::
    \mathrm{Var}\,\bar f = \frac{4(K-2)\,\zeta_1 + 2\,\zeta_2}{K(K-1)}, \qquad
    \zeta_1 = \mathrm{Cov}(G_{ij}, G_{ik}), \quad \zeta_2 = \mathrm{Var}\, G_{ij},

estimated without bias from the degrees :math:`d_i` (:func:`pair_density_variance`). Two ways
of resampling entries miss it. Resampling the entries' own :math:`f_i` as if independent gives
about :math:`4\zeta_1/K + 4\zeta_2/K^2`: too small by up to 4× where entries differ (measured on
planted block populations: 62–75% coverage at nominal 90%). Resampling *entries* and recomputing
the pair density of the resample (the vertex bootstrap of a network's density,
:math:`\bar f^{*} = w^\top G w / (K^2 - \lVert w\rVert^2)`, multinomial counts :math:`w`, pairs
of an entry with its own copies left out) gives about :math:`4\zeta_1/K + 6\zeta_2/K^2`: too
large by up to √3 in standard error where couplings are sparse (the paper's regime; measured:
standard errors 1.2–1.6× too large, 94–98% coverage at nominal 90%), and a band of width 0
when no sampled pair is significant. So the default band (``method="quasi-poisson"``) treats the
number :math:`E = \bar f M` of significant pairs among the :math:`M = K(K-1)/2` sampled ones
as over- (or under-) dispersed Poisson, :math:`E/\phi \sim \mathrm{Poisson}`, with dispersion
:math:`\phi = M^2\,\widehat{\mathrm{Var}}\,\bar f / E` (1 when :math:`E = 0`), and takes
Garwood's exact limits: about nominal coverage once :math:`E \gtrsim 10`, conservative below
(as Garwood's), and a finite upper limit when :math:`E = 0`. ``method="BCa"``, ``"percentile"``
or ``"basic"`` give the vertex bootstrap through ``scipy.stats.bootstrap`` (resampling entry
indices), seeded, for comparison. ``fraction_se`` is always :math:`\sqrt{\widehat{\mathrm{Var}}
\,\bar f}`. The count's and the exponent's bands are the fraction's mapped through the monotone
maps above. The band is over the **sampling of entries** at fixed significance calls: the
calls' own errors (power, false discoveries; they depend on ``B``, ``K`` and the correction)
enter only as noise in :math:`G`, so fig. 7c's estimate inherits their bias.

**Joint shape: Mardia's multivariate skewness and kurtosis** (Mardia 1970, *Biometrika* 57, 519)
of the entries' bootstrap distribution, from ``B`` samples :math:`x_b` of ``p`` entries with
mean :math:`\bar x` and covariance :math:`S = \frac1B\sum_b (x_b - \bar x)(x_b - \bar x)^\top`,
:math:`D_{ab} = (x_a - \bar x)^\top S^{-1} (x_b - \bar x)`:

.. math::
    b_{1,p} = \frac{1}{B^2} \sum_{a,b} D_{ab}^3, \qquad b_{2,p} = \frac1B \sum_a D_{aa}^2 .

Under normality :math:`B\, b_{1,p}/6 \sim \chi^2_{p(p+1)(p+2)/6}` and
:math:`(b_{2,p} - p(p+2)) / \sqrt{8p(p+2)/B} \sim \mathcal N(0, 1)` as :math:`B \to \infty`.
``S`` must be invertible, and the asymptotics need :math:`p \ll B`: so ``p`` is a **random
subset** of the live entries, at most ``B // 5`` of them, drawn from ``seed``. At that size the
asymptotic kurtosis test is far off: :math:`\mathbb E\, b_{2,p} = p(p+2)(B-1)/(B+1)` sits
about :math:`\sqrt{p(p+2)/2B}` standard deviations below :math:`p(p+2)`, and at ``p = B/5``
the test rejects about half of Gaussian samples at ``B = 200``, nearly all at ``B ≥ 500``. So
by default (``small_sample=True``) the tests use Mardia's (1974, *Sankhyā B* 36, 115)
finite-sample forms: the kurtosis standardized by the exact mean and variance of
:math:`b_{2,p}` under normality, the skewness statistic multiplied by
:math:`k = (p+1)(B+1)(B+3) / (B[(B+1)(p+1) - 6])`. They reduce to the asymptotic forms as
:math:`B \to \infty` and give uniform p-values on Gaussian samples at ``p = B/5`` (tested);
``small_sample=False`` gives the asymptotic forms above. Mardia's statistics are affine
invariant, so the normalized samples (``EntryStatistics.normalized``) give the same values as
the raw ones. When the subset's covariance is singular (entries that are exact linear
combinations of others, or fewer examples than entries) the statistics are those of its
``rank``-dimensional projection, and the tests use ``p = rank``.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

from umwelt._checks import check_int
from umwelt.errors import ConfigError
from umwelt.nn.hessian.entries import EntryStatistics, count_exponent, significant

__all__ = [
    "COUPLING_INTERVALS",
    "CouplingSet",
    "MardiaTest",
    "coupling_set",
    "coupling_set_from_pairs",
    "fraction_band",
    "mardia",
    "pair_density_variance",
    "pair_significance",
]

#: the band's methods: Garwood's limits with Hoeffding's dispersion, or ``scipy.stats.bootstrap``
#: resampling entries (conservative, see the module docstring)
COUPLING_INTERVALS: tuple[str, ...] = ("quasi-poisson", "BCa", "percentile", "basic")
#: fewest live entries a band over the sampled entries is computed from
MIN_ENTRIES = 5
#: fewest entry resamples of the band
MIN_RESAMPLES = 100
#: fewest bootstrap samples of Mardia's tests (as ``scipy.stats.skewtest``)
MIN_SAMPLES = 20
#: relative eigenvalue below which the subset's correlation matrix counts as singular
RANK_TOL = 1e-10
#: elements of one block of the ``B × B`` matrix :math:`D`
BLOCK_ELEMENTS = 2**22


@dataclass(frozen=True, eq=False)
class CouplingSet:
    r"""Coupling set sizes of sampled entries, scaled to their population (module docstring).

    Attributes:
        fraction: :math:`f_i`, per entry the fraction of the other live sampled entries it is
            significantly correlated with; ``NaN`` for degenerate entries, ``(K,)``.
        count: :math:`c_i = f_i (P - 1)`, the estimated number of entries of the population it
            is correlated with, ``(K,)``.
        exponent: :math:`\log c_i / \log N` (``NaN`` for 0), ``(K,)``.
        mean_fraction: :math:`\bar f` (the paper's 3.39·10⁻⁴).
        fraction_lo, fraction_hi: its confidence band over the sampled entries.
        fraction_se: the standard error of :math:`\bar f` (Hoeffding, unbiased variance).
        mean_count, count_lo, count_hi: :math:`\bar f (P - 1)` and its band.
        mean_exponent, exponent_lo, exponent_hi: :math:`\log(\bar f (P-1)) / \log N` and its
            band (``NaN`` where the count is 0).
        n_live: :math:`K_\mathrm{live}`.
        population: :math:`P`.
        n: :math:`N`, the base of the exponents.
        level: the confidence level.
        method: the band's method (``"BCa"`` falls back to ``"percentile"`` where BCa is
            undefined; a bootstrap band of a constant is the constant).
        n_resamples: the number of entry resamples (0 for ``"quasi-poisson"``).
    """

    fraction: np.ndarray
    count: np.ndarray
    exponent: np.ndarray
    mean_fraction: float
    fraction_lo: float
    fraction_hi: float
    fraction_se: float
    mean_count: float
    count_lo: float
    count_hi: float
    mean_exponent: float
    exponent_lo: float
    exponent_hi: float
    n_live: int
    population: int
    n: int
    level: float
    method: str
    n_resamples: int

    def row(self, prefix: str = "coupling_set") -> dict[str, float | int]:
        r"""The summary as row fields ``{prefix}_fraction``, ``{prefix}_fraction_lo``, ...

        The default prefix keeps them apart from :func:`~umwelt.nn.hessian.entries.entry_summary`'s
        ``coupling_fraction`` (the same :math:`\bar f`, without band) and ``coupling_exponent``
        (of the count over the sample).
        """
        keys = ("fraction", "fraction_lo", "fraction_hi", "fraction_se", "count", "count_lo")
        keys += ("count_hi", "exponent", "exponent_lo", "exponent_hi")
        values = (self.mean_fraction, self.fraction_lo, self.fraction_hi, self.fraction_se)
        values += (self.mean_count, self.count_lo, self.count_hi, self.mean_exponent)
        values += (self.exponent_lo, self.exponent_hi)
        out: dict[str, float | int] = {f"{prefix}_{k}": float(v) for k, v in zip(keys, values)}
        out[f"{prefix}_n_live"] = self.n_live
        out[f"{prefix}_population"] = self.population
        return out


def pair_significance(st: EntryStatistics) -> tuple[np.ndarray, np.ndarray]:
    r"""The ``K_live × K_live`` matrix of significant correlations behind ``st.n_corr``.

    The rule of :func:`~umwelt.nn.hessian.entries.entry_statistics`, applied to ``st.corr``:
    Fisher's :math:`z = \mathrm{artanh}(r)\sqrt{B - 3}`, two-sided p-values, ``st.correction``
    at ``st.alpha`` over the live pairs.

    Returns:
        ``(live indices (K_live,), G (K_live, K_live) bool)`` with a zero diagonal.

    Raises:
        RuntimeError: the row sums differ from ``st.n_corr`` (the two rules have drifted apart).
    """
    idx = np.nonzero(st.live)[0]
    k = idx.size
    G = np.zeros((k, k), dtype=bool)
    if k >= 2:
        iu = np.triu_indices(k, 1)
        r = st.corr[np.ix_(idx, idx)][iu]
        z = np.arctanh(np.clip(r, -1 + 1e-15, 1 - 1e-15)) * math.sqrt(max(st.n_boot - 3, 1))
        G[iu] = significant(2 * stats.norm.sf(np.abs(z)), st.alpha, st.correction)
        G |= G.T
    if not np.array_equal(G.sum(axis=1), st.n_corr[idx]):
        raise RuntimeError(
            "the significance matrix disagrees with EntryStatistics.n_corr: the rule of "
            "pair_significance has drifted from entry_statistics'"
        )
    return idx, G


def coupling_set(
    st: EntryStatistics,
    population: int,
    *,
    seed: int | np.random.Generator = 0,
    n: int | None = None,
    level: float = 0.95,
    n_resamples: int = 2000,
    method: str = "quasi-poisson",
) -> CouplingSet:
    r"""Fig. 7c's coupling set sizes of the sampled entries in ``st``, scaled to ``population``.

    Args:
        st: the sampled entries' statistics (:func:`~umwelt.nn.hessian.entries.entry_statistics`).
        population: :math:`P`, the number of entries the sample was drawn from uniformly
            (``EntrySample.population``: the cross-layer pairs for
            :func:`~umwelt.nn.hessian.entries.sample_entries`).
        seed: seed or generator of the entry resampling (the bootstrap methods).
        n: the base :math:`N` of the exponents; default ``st.n``, the Hessian dimension.
        level: confidence level of the bands.
        n_resamples: number of entry resamples (the bootstrap methods).
        method: ``"quasi-poisson"`` (default), or ``"BCa"``, ``"percentile"``, ``"basic"``
            (the vertex bootstrap, ``scipy.stats.bootstrap``).

    Returns:
        the :class:`CouplingSet`, per entry and summarized with bands.

    Raises:
        ConfigError: fewer than 5 live entries, a population smaller than the live sample,
            fewer than 100 resamples, a bad level or method.
    """
    idx, G = pair_significance(st)
    out = coupling_set_from_pairs(
        G,
        population,
        seed=seed,
        n=st.n if n is None else n,
        level=level,
        n_resamples=n_resamples,
        method=method,
    )
    per_entry = {}
    for name in ("fraction", "count", "exponent"):
        full = np.full(st.live.size, np.nan)  # (K,)
        full[idx] = getattr(out, name)
        per_entry[name] = full
    return dataclasses.replace(out, **per_entry)


def coupling_set_from_pairs(
    significant_pairs: np.ndarray,
    population: int,
    *,
    seed: int | np.random.Generator = 0,
    n: int,
    level: float = 0.95,
    n_resamples: int = 2000,
    method: str = "quasi-poisson",
) -> CouplingSet:
    r"""Coupling set sizes from a symmetric ``K × K`` matrix of significant pairs.

    The engine of :func:`coupling_set` (whose per-entry arrays are these, placed among all
    ``K`` entries); the diagonal is ignored. Two blocks of 5 entries, each entry correlated with
    the 4 others of its block, drawn from a population of 1000:

    >>> G = np.kron(np.eye(2, dtype=bool), np.ones((5, 5), dtype=bool))
    >>> cs = coupling_set_from_pairs(G, 1000, seed=0, n=100)
    >>> round(cs.mean_fraction, 4), round(cs.mean_count, 1), round(cs.mean_exponent, 4)
    (0.4444, 444.0, 1.3237)

    Args:
        significant_pairs: ``G``, ``(K, K)`` bool, symmetric.
        population, seed, level, n_resamples, method: as for :func:`coupling_set`.
        n: the base :math:`N` of the exponents.

    Raises:
        ConfigError: as for :func:`coupling_set`, and for a non-square or asymmetric ``G``.
    """
    G = np.asarray(significant_pairs)
    if G.ndim != 2 or G.shape[0] != G.shape[1]:
        raise ConfigError(f"the significant pairs must be a square matrix, got shape {G.shape}")
    k = G.shape[0]
    if k < MIN_ENTRIES:
        raise ConfigError(
            f"a band over the sampled entries needs at least {MIN_ENTRIES} live entries, got {k}"
        )
    population = check_int("the population of entries", population, minimum=2)
    if population < k:
        raise ConfigError(
            f"the population ({population:,} entries) is smaller than the sample ({k} entries)"
        )
    n = check_int("the Hessian dimension N", n, minimum=2)
    n_resamples = check_int("the number of entry resamples", n_resamples, minimum=MIN_RESAMPLES)
    if not 0 < level < 1:
        raise ConfigError(f"the confidence level must be in (0, 1), got {level!r}")
    if method not in COUPLING_INTERVALS:
        raise ConfigError(f"method must be one of {', '.join(COUPLING_INTERVALS)}, got {method!r}")
    G = G.astype(bool)
    if not np.array_equal(G, G.T):
        raise ConfigError("the matrix of significant pairs must be symmetric")
    G = G.copy()
    np.fill_diagonal(G, False)
    fraction = G.sum(axis=1) / (k - 1)  # (k,)
    mean = float(fraction.mean())

    var = pair_density_variance(G)
    se = math.sqrt(max(var, 0.0))
    if method == "quasi-poisson":
        lo, hi = _garwood(mean, var, k * (k - 1) // 2, level)
        used, n_resamples = method, 0
    else:
        lo, hi, used = _vertex_bootstrap(G, mean, seed, level, n_resamples, method)
    scale = population - 1
    count = fraction * scale
    return CouplingSet(
        fraction=fraction,
        count=count,
        exponent=np.asarray(count_exponent(count, n), dtype=np.float64),
        mean_fraction=mean,
        fraction_lo=lo,
        fraction_hi=hi,
        fraction_se=se,
        mean_count=mean * scale,
        count_lo=lo * scale,
        count_hi=hi * scale,
        mean_exponent=float(count_exponent(mean * scale, n)),
        exponent_lo=float(count_exponent(lo * scale, n)),
        exponent_hi=float(count_exponent(hi * scale, n)),
        n_live=k,
        population=population,
        n=n,
        level=float(level),
        method=used,
        n_resamples=n_resamples,
    )


def pair_density_variance(significant_pairs: np.ndarray) -> float:
    r"""Hoeffding's unbiased estimate of :math:`\mathrm{Var}\,\bar f`, :math:`\bar f` the density
    of a symmetric 0/1 matrix ``G`` (zero diagonal) over ``K`` sampled entries.

    With degrees :math:`d_i`, :math:`S = \sum_i d_i` and :math:`T = \sum_i d_i(d_i - 1)`, the
    U-statistics :math:`\bar f = S / K_{(2)}`, :math:`\widehat{\theta\zeta} = T / K_{(3)}`
    (:math:`\mathbb E\, G_{ij}G_{ik}`) and :math:`\widehat{\theta^2} = (S^2 - 2S - 4T)/K_{(4)}`
    (:math:`\mathbb E\, G_{ij}G_{kl}`, four distinct entries) are unbiased, :math:`K_{(r)}` the
    falling factorials; then :math:`\zeta_1 = \widehat{\theta\zeta} - \widehat{\theta^2}`,
    :math:`\zeta_2 = \bar f - \widehat{\theta^2}` in the module docstring's variance. It can be
    slightly negative in small samples.

    Raises:
        ConfigError: fewer than 4 entries.
    """
    G = np.asarray(significant_pairs).astype(bool)
    k = G.shape[0]
    if k < 4:
        raise ConfigError(f"the variance of a pair density needs at least 4 entries, got {k}")
    d = (G.sum(axis=1) - np.diag(G)).astype(np.float64)  # (k,) degrees
    S = float(d.sum())
    T = float((d * (d - 1)).sum())
    k2 = k * (k - 1)
    k3 = k2 * (k - 2)
    k4 = k3 * (k - 3)
    theta = S / k2
    theta2 = (S * S - 2 * S - 4 * T) / k4
    zeta1 = T / k3 - theta2
    zeta2 = theta - theta2
    return (4 * (k - 2) * zeta1 + 2 * zeta2) / k2


def _garwood(mean: float, var: float, m: int, level: float) -> tuple[float, float]:
    r"""Garwood's limits of :math:`E = \bar f m` pairs as :math:`\phi\,\mathrm{Poisson}`,
    :math:`\phi = m^2 \mathrm{Var}/E`, mapped back to fractions (module docstring)."""
    E = mean * m
    phi = var * m * m / E if E > 0 else 1.0
    if phi <= 0:  # no spread (every pair significant, or a negative estimate): the point
        return mean, mean
    a = (1 - level) / 2
    lo = phi * stats.chi2.ppf(a, 2 * E / phi) / 2 if E > 0 else 0.0
    hi = phi * stats.chi2.ppf(1 - a, 2 * E / phi + 2) / 2
    return float(lo) / m, min(float(hi) / m, 1.0)


def _vertex_bootstrap(
    G: np.ndarray,
    mean: float,
    seed: int | np.random.Generator,
    level: float,
    n_resamples: int,
    method: str,
) -> tuple[float, float, str]:
    """The vertex bootstrap band of the pair density (``scipy.stats.bootstrap`` on entry
    indices) and the method used."""
    k = G.shape[0]
    Gf = G.astype(np.float64)

    def density(ix: np.ndarray, axis: int = -1) -> np.ndarray:
        r""":math:`w^\top G w / (m^2 - \lVert w \rVert^2)` of resampled entries ``(..., m)``."""
        ix = np.moveaxis(np.asarray(ix), axis, -1)
        lead, m = ix.shape[:-1], ix.shape[-1]
        flat = ix.reshape(-1, m)
        R = flat.shape[0]
        cell = (np.arange(R)[:, None] * k + flat).ravel()
        W = np.bincount(cell, minlength=R * k).reshape(R, k).astype(np.float64)  # (R, k) counts
        num = np.einsum("rk,rk->r", W @ Gf, W)
        den = m * m - np.einsum("rk,rk->r", W, W)
        out = np.divide(num, den, out=np.full(num.shape, np.nan), where=den > 0)
        return out.reshape(lead)

    if not G.any() or G.sum() == k * (k - 1):  # a constant: every resample gives it back
        return mean, mean, method
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    kwargs = dict(confidence_level=level, vectorized=True, batch=max(1, 2**22 // k), rng=rng)
    used = method
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        res = stats.bootstrap(
            (np.arange(k),), density, n_resamples=n_resamples, method=method, **kwargs
        )
        lo, hi = res.confidence_interval
        if not (np.isfinite(lo) and np.isfinite(hi)):  # BCa undefined: keep the percentiles
            used = "percentile"
            res = stats.bootstrap(
                (np.arange(k),), density, n_resamples=0, method=used, bootstrap_result=res, **kwargs
            )
            lo, hi = res.confidence_interval
    return float(lo), float(hi), used


@dataclass(frozen=True, eq=False)
class MardiaTest:
    r"""Mardia's multivariate skewness and kurtosis of ``dim`` entries (module docstring).

    Attributes:
        b1: :math:`b_{1,p}`.
        b2: :math:`b_{2,p}` (:math:`p(p+2)` for a Gaussian, asymptotically).
        skew_stat: :math:`B\,b_{1,p}/6` (times :math:`k` with ``small_sample``).
        skew_dof: :math:`p(p+1)(p+2)/6`.
        skew_pvalue: its upper-tail :math:`\chi^2` p-value.
        kurt_z: the standardized :math:`b_{2,p}`.
        kurt_pvalue: its two-sided normal p-value.
        entries: indices (into the columns given) of the subset, ``(dim,)``.
        dim: the subset size.
        rank: the rank of its covariance, the :math:`p` of the statistics and tests.
        n_samples: :math:`B`.
        small_sample: whether Mardia's finite-sample forms were used.
    """

    b1: float
    b2: float
    skew_stat: float
    skew_dof: float
    skew_pvalue: float
    kurt_z: float
    kurt_pvalue: float
    entries: np.ndarray
    dim: int
    rank: int
    n_samples: int
    small_sample: bool

    def row(self, prefix: str = "mardia") -> dict[str, float | int]:
        """The test as row fields ``{prefix}_b1``, ``{prefix}_skew_pvalue``, ..."""
        keys = ("b1", "b2", "skew_stat", "skew_dof", "skew_pvalue", "kurt_z", "kurt_pvalue")
        out: dict[str, float | int] = {f"{prefix}_{k}": float(getattr(self, k)) for k in keys}
        out |= {f"{prefix}_dim": self.dim, f"{prefix}_rank": self.rank}
        return out | {f"{prefix}_n_samples": self.n_samples}


def mardia(
    samples: np.ndarray,
    *,
    seed: int | np.random.Generator,
    max_dim: int | None = None,
    small_sample: bool = True,
) -> MardiaTest:
    r"""Mardia's multivariate skewness and kurtosis tests of ``B`` samples of entries.

    Columns with a non-finite value or no spread (degenerate entries: pass
    ``st.normalized`` or the raw ``(B, K)`` bootstrap samples) are left out; of the rest a
    random subset of ``min(K_live, max_dim)`` columns, drawn from ``seed``, is tested. For one
    column :math:`b_{1,1}` and :math:`b_{2,1}` are the squared skewness and the kurtosis; a
    symmetric two-point sample has :math:`b_1 = 0`, :math:`b_2 = 1`:

    >>> t = mardia(np.tile([[1.0], [-1.0]], (10, 1)), seed=0)
    >>> round(t.b1, 12), round(t.b2, 12), t.dim
    (0.0, 1.0, 1)

    Args:
        samples: ``(B, K)``.
        seed: seed or generator of the subset.
        max_dim: the largest subset; default ``B // 5`` (at most ``B // 2``).
        small_sample: use Mardia's finite-sample forms of the tests (module docstring).

    Returns:
        the :class:`MardiaTest`.

    Raises:
        ConfigError: not a 2-d array, fewer than 20 samples, no live column, or a bad
            ``max_dim``.
    """
    X = np.asarray(samples, dtype=np.float64)
    if X.ndim != 2:
        raise ConfigError(f"samples must be (B, K), got shape {X.shape}")
    B = X.shape[0]
    if B < MIN_SAMPLES:
        raise ConfigError(f"Mardia's tests need at least {MIN_SAMPLES} samples, got B = {B}")
    cap = B // 5 if max_dim is None else check_int("max_dim", max_dim)
    if cap > B // 2:
        raise ConfigError(
            f"max_dim = {cap} entries is too many for B = {B} samples (at most B // 2 = {B // 2})"
        )
    finite = np.isfinite(X).all(axis=0)
    std = np.where(finite, np.nan_to_num(X).std(axis=0), 0.0)
    scale = np.abs(np.nan_to_num(X)).max(axis=0)
    live = np.nonzero(finite & (std > 1e-12 * np.where(scale > 0, scale, 1.0)))[0]
    if live.size == 0:
        raise ConfigError("no column of the samples is finite with a non-zero spread")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    dim = min(live.size, max(cap, 1))
    entries = np.sort(rng.choice(live, dim, replace=False)) if live.size > dim else live
    Z = (X[:, entries] - X[:, entries].mean(axis=0)) / std[entries]  # (B, dim)
    lam, V = np.linalg.eigh(Z.T @ Z / B)  # the correlation matrix
    keep = lam > RANK_TOL * lam.max()
    Y = (Z @ V[:, keep]) / np.sqrt(lam[keep])  # (B, p) whitened: D = Y Yᵀ
    p = int(keep.sum())
    step = max(1, BLOCK_ELEMENTS // B)
    b1 = sum(float(((Y[s : s + step] @ Y.T) ** 3).sum()) for s in range(0, B, step)) / B**2
    b2 = float(((Y * Y).sum(axis=1) ** 2).mean())
    dof = p * (p + 1) * (p + 2) / 6
    pp2 = p * (p + 2)
    if small_sample:
        k = (p + 1) * (B + 1) * (B + 3) / (B * ((B + 1) * (p + 1) - 6))
        skew_stat = B * b1 * k / 6
        mean_b2 = pp2 * (B - 1) / (B + 1)
        var_b2 = 8 * pp2 * (B - 3) * (B - p - 1) * (B - p + 1) / ((B + 1) ** 2 * (B + 3) * (B + 5))
    else:
        skew_stat = B * b1 / 6
        mean_b2, var_b2 = pp2, 8 * pp2 / B
    kurt_z = (b2 - mean_b2) / math.sqrt(var_b2)
    return MardiaTest(
        b1=b1,
        b2=b2,
        skew_stat=float(skew_stat),
        skew_dof=float(dof),
        skew_pvalue=float(stats.chi2.sf(skew_stat, dof)),
        kurt_z=float(kurt_z),
        kurt_pvalue=float(2 * stats.norm.sf(abs(kurt_z))),
        entries=entries,
        dim=int(dim),
        rank=p,
        n_samples=B,
        small_sample=bool(small_sample),
    )


def fraction_band(
    inside: np.ndarray,
    *,
    level: float = 0.9,
    n_resamples: int = 2000,
    seed: int | np.random.Generator = 0,
) -> tuple[float, float, str]:
    r"""A confidence band over the sampled entries for the fraction of them ``inside`` (fig. 7b:
    :math:`|\mathrm{mean}|/\mathrm{std} < 0.15`): ``(lo, hi, method)``.

    The percentile bootstrap resampling entries (``scipy.stats.bootstrap``, seeded) while both
    outcomes occur; when every entry is inside (or none is) a resample cannot vary, and the band
    is Clopper–Pearson's exact one (``scipy.stats.binomtest``), so it is never of width 0. Both
    treat the entries as drawn independently (their coverage is checked on independent
    indicators in tests/test_hessian_coupling.py). ``(NaN, NaN, "none")`` for no entries.
    """
    if not 0 < level < 1:
        raise ConfigError(f"the band level must be in (0, 1), got {level!r}")
    if n_resamples < MIN_RESAMPLES:
        raise ConfigError(f"n_resamples must be ≥ {MIN_RESAMPLES}, got {n_resamples!r}")
    x = np.asarray(inside, dtype=np.float64).ravel()
    if x.size == 0:
        return math.nan, math.nan, "none"
    k = int(x.sum())
    if k in (0, x.size):
        ci = stats.binomtest(k, x.size).proportion_ci(level, method="exact")
        return float(ci.low), float(ci.high), "clopper-pearson"
    res = stats.bootstrap(
        (x,),
        np.mean,
        confidence_level=level,
        n_resamples=n_resamples,
        method="percentile",
        random_state=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high), "percentile"
