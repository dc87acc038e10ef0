r"""Symmetry statistics of a sample of values, and the test of :math:`v` against :math:`-v`.

The statistics by which :mod:`umwelt.circuits.symmetry` summarizes sampled circuit values and
perturbations (Li, *Complexity from Adaptive-Symmetries Breaking*, eq. 14, fig. 3b; THEORY.md
§4): :func:`symmetry_stats` (:class:`SymmetryStats`) and the mirror Kolmogorov–Smirnov test
:func:`mirror_ks_test` with its exact and Brownian null distributions. Nothing here knows of
networks: the input is a 1-D sample.

**The statistics** (:func:`symmetry_stats`), of a sample :math:`v_1..v_n`, zeros included
(a circuit through a closed gate has the value 0 exactly, and is a circuit like any other):

* ``mean_over_std``: :math:`\bar v / s` with :math:`s` the standard deviation (``ddof = 1``);
* ``skewness``: :math:`g_1 = m_3 / m_2^{3/2}`, central moments with ``1/n``
  (:func:`scipy.stats.skew` with ``bias=True``); ``excess_kurtosis``: :math:`m_4/m_2^2 - 3`;
* ``frac_positive``: the fraction of the **non-zero** values that are positive (1/2 under
  symmetry, whatever the share of exact zeros, which is ``frac_zero``);
* ``sym_test_pvalue``: the **mirror Kolmogorov–Smirnov test** of :math:`\psi` against
  :math:`-\psi` (below); with ``wilcoxon_pvalue`` (Wilcoxon's signed-rank test) and
  ``sign_test_pvalue`` (the exact binomial test of ``#positive = #negative``) beside it.

**The test of ψ against −ψ.** The two-sample KS distance between the sample and its own mirror
image, :math:`D = \sup_t |F_n(t) - \tilde F_n(t)|` with :math:`\tilde F_n` the empirical law
of :math:`-v`, is the natural statistic, but the two-sample KS *p-value* would be wrong: the
"two samples" are the same draws, not independent ones. The right null distribution comes from
the symmetry itself. Under :math:`H_0: v \overset{d}{=} -v` (for a continuous law) the signs of
the non-zero values are fair coins independent of their magnitudes, and

.. math::
    n D = \max_t \big|\#\{v > t\} - \#\{v < -t\}\big| = \max_k |S_k| ,

the largest excursion of the ±1 random walk :math:`S_k` of the signs taken in order of
decreasing :math:`|v|` (only at the ends of groups of tied :math:`|v|`). Its law given the
magnitudes is distribution-free: we compute :math:`P(\max_k |S_k| \ge nD)` exactly by dynamic
programming for up to :data:`EXACT_MIRROR_KS_MAX` non-zero values, and beyond by the Brownian
limit :math:`P(\sup_{[0,1]} |B| \ge nD/\sqrt m)` (``m`` non-zero values), which ignores ties and
so errs on the conservative side. Exact zeros carry no sign and are left out of all three
tests. The test is conditional on the network (and inputs): it asks whether *this* net's
population of circuit values is symmetric, with power against asymmetries of order
:math:`1/\sqrt n`. Sampling with replacement makes the draws independent and identically
distributed from that population, as the test requires.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from umwelt.errors import ConfigError, ShapeError

__all__ = [
    "EXACT_MIRROR_KS_MAX",
    "SymmetryStats",
    "mirror_ks_test",
    "symmetry_stats",
]

EXACT_MIRROR_KS_MAX: int = 2000
"""Up to this many non-zero values the mirror-KS p-value is exact; beyond, the Brownian limit."""


# -- the test of v against -v ---------------------------------------------------------------------


def _mirror_ks_statistic(nonzero: np.ndarray) -> tuple[int, list[int]]:
    """``(max_k |S_k|, group sizes)``: the sign walk in order of decreasing ``|v|``, evaluated at
    the ends of groups of equal ``|v|``."""
    mag = np.abs(nonzero)
    order = np.argsort(-mag, kind="stable")
    mag, sgn = mag[order], np.sign(nonzero[order]).astype(np.int64)
    ends = np.flatnonzero(np.diff(mag) != 0).tolist() + [mag.size - 1]
    walk = np.cumsum(sgn)[ends]
    groups = np.diff([-1, *ends]).tolist()
    return int(np.max(np.abs(walk))), groups


def _walk_tail_exact(groups: Sequence[int], d: int) -> float:
    r""":math:`P(\max_j |S_{c_j}| \ge d)` for a fair ±1 walk checked at the group ends
    :math:`c_j`, by dynamic programming over its position (mass leaving the band is absorbed)."""
    if d <= 0:
        return 1.0
    m = int(sum(groups))
    p = np.zeros(2 * m + 1)
    p[m] = 1.0
    for g in groups:
        for _ in range(g):
            q = np.zeros_like(p)
            q[1:] += 0.5 * p[:-1]
            q[:-1] += 0.5 * p[1:]
            p = q
        p[: m - d + 1] = 0.0
        p[m + d :] = 0.0
    return float(min(1.0, max(0.0, 1.0 - p.sum())))


def _brownian_tail(x: float) -> float:
    r""":math:`P(\sup_{0 \le t \le 1} |B_t| \ge x)`, by the series that converges fast at ``x``:

    .. math::
        1 - \frac4\pi \sum_{k \ge 0} \frac{(-1)^k}{2k+1} e^{-(2k+1)^2 \pi^2 / (8 x^2)}
        \;\; (x < 1), \qquad
        2 \sum_{k \ge 0} (-1)^k \operatorname{erfc}\!\big((2k+1)\,x/\sqrt2\big)
        \;\; (x \ge 1).
    """
    if x <= 0:
        return 1.0
    s = 0.0
    for k in range(1000):
        if x < 1.0:
            t = (-1) ** k / (2 * k + 1) * math.exp(-((2 * k + 1) ** 2) * math.pi**2 / (8 * x * x))
        else:
            t = (-1) ** k * math.erfc((2 * k + 1) * x / math.sqrt(2.0))
        s += t
        if abs(t) < 1e-18 * max(abs(s), 1e-300) or t == 0.0:
            break
    tail = 1.0 - 4.0 / math.pi * s if x < 1.0 else 2.0 * s
    return float(min(1.0, max(0.0, tail)))


def mirror_ks_test(values: np.ndarray) -> tuple[float, float]:
    r"""The mirror Kolmogorov–Smirnov test of :math:`v \overset{d}{=} -v` (module docstring).

    Args:
        values: a 1-D sample (exact zeros are left out).

    Returns:
        ``(D, p_value)``: the KS distance between the non-zero values and their mirror image
        (a fraction of the non-zero values), and the p-value from the sign-flip null —
        exact up to :data:`EXACT_MIRROR_KS_MAX` non-zero values, the Brownian limit beyond.
        ``(nan, nan)`` when there are no non-zero values.

    >>> D, p = mirror_ks_test(np.array([1.0, -2.0, 3.0, -4.0]))  # signs +, -, +, - by |v| desc.
    >>> D, p  # the walk -1, 0, -1, 0 reaches 1: certain under the null
    (0.25, 1.0)
    """
    v = np.asarray(values, dtype=float).ravel()
    nz = v[v != 0]
    m = nz.size
    if m == 0:
        return math.nan, math.nan
    d, groups = _mirror_ks_statistic(nz)
    if m <= EXACT_MIRROR_KS_MAX:
        p = _walk_tail_exact(groups, d)
    else:
        p = _brownian_tail(d / math.sqrt(m))
    return d / m, p


# -- summary statistics ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SymmetryStats:
    r"""Symmetry statistics of a sample of values (module docstring for the definitions).

    Attributes:
        n: sample size (zeros included).
        mean, std: sample mean and standard deviation (``ddof = 1``).
        mean_over_std: ``mean / std`` (NaN when ``std = 0``).
        skewness: :math:`m_3/m_2^{3/2}` (``1/n`` moments; NaN when ``m_2 = 0``).
        excess_kurtosis: :math:`m_4/m_2^2 - 3`.
        frac_positive: fraction of the non-zero values that are > 0 (NaN if none).
        frac_zero: fraction of values exactly 0.
        mirror_ks: the KS distance between the non-zero values and their mirror image.
        sym_test_pvalue: p-value of the mirror-KS test of ``v`` against ``-v``.
        wilcoxon_pvalue: p-value of Wilcoxon's signed-rank test (non-zero values).
        sign_test_pvalue: p-value of the exact binomial sign test (non-zero values).
    """

    n: int
    mean: float
    std: float
    mean_over_std: float
    skewness: float
    excess_kurtosis: float
    frac_positive: float
    frac_zero: float
    mirror_ks: float
    sym_test_pvalue: float
    wilcoxon_pvalue: float
    sign_test_pvalue: float

    sym_test: str = "mirror Kolmogorov-Smirnov of v against -v, sign-flip null"

    def as_dict(self) -> dict:
        """The fields as a plain dict (JSON-ready up to NaN)."""
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


def symmetry_stats(values: np.ndarray) -> SymmetryStats:
    r"""Symmetry statistics of a sample (module docstring).

    Args:
        values: 1-D float sample; at least 2 values.

    Raises:
        ShapeError: for a sample that is not 1-D.
        ConfigError: for fewer than 2 values or non-finite values.

    >>> s = symmetry_stats(np.array([-2.0, -1.0, 0.0, 1.0, 2.0]))
    >>> s.mean, s.skewness, s.frac_positive, s.frac_zero
    (0.0, 0.0, 0.5, 0.2)
    """
    from scipy import stats

    v = np.asarray(values, dtype=float)
    if v.ndim != 1:
        raise ShapeError(f"symmetry statistics take a 1-D sample, got shape {v.shape}")
    if v.size < 2:
        raise ConfigError(f"symmetry statistics need at least 2 values, got {v.size}")
    if not np.all(np.isfinite(v)):
        raise ConfigError("the sample contains non-finite values")
    n = v.size
    mean = float(v.mean())
    c = v - mean
    m2 = float(np.mean(c * c))
    std = float(math.sqrt(m2 * n / (n - 1)))
    if m2 > 0:
        skew = float(np.mean(c**3) / m2**1.5)
        kurt = float(np.mean(c**4) / m2**2 - 3.0)
    else:
        skew = kurt = math.nan
    nz = v[v != 0]
    n_pos = int(np.count_nonzero(nz > 0))
    m = nz.size
    if m:
        d, p_ks = mirror_ks_test(nz)
        p_sign = float(stats.binomtest(n_pos, m, 0.5).pvalue)
        ties = np.unique(np.abs(nz)).size < m
        method = "exact" if m <= 50 and not ties else "asymptotic"
        p_wil = float(stats.wilcoxon(nz, method=method).pvalue) if m >= 2 else math.nan
    else:
        d = p_ks = p_sign = p_wil = math.nan
    return SymmetryStats(
        n=n,
        mean=mean,
        std=std,
        mean_over_std=mean / std if std > 0 else math.nan,
        skewness=skew,
        excess_kurtosis=kurt,
        frac_positive=n_pos / m if m else math.nan,
        frac_zero=(n - m) / n,
        mirror_ks=d,
        sym_test_pvalue=p_ks,
        wilcoxon_pvalue=p_wil,
        sign_test_pvalue=p_sign,
    )
