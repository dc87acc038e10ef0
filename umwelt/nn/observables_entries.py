r"""Statistics of one layer's entries (weights or gradient entries), as numpy arrays.

* :func:`fixed_histogram`: counts on fixed bins, with the counts below and above them;
* :func:`symmetry_statistics`: mean, std, skewness, fraction of positive entries among the
  non-zero ones, the sign test's p-value (binomial, :math:`P(+) = 1/2`) and the two-sample
  Kolmogorov–Smirnov p-value of :math:`\{g\}` against :math:`\{-g\}` (a descriptive symmetry
  score: the two samples are not independent, so read it as a distance, not an exact test);
* :func:`correlation_spectra`: the within-layer weight correlation spectra (Fok et al., seed
  001; THEORY.md §7): the eigenvalues of the Gram matrix :math:`W W^\top/\mathrm{fan_{in}}`
  and of the correlation-coefficient matrix between the layer's neurons, largest first, and
  the correlation spectrum's participation ratio.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["correlation_spectra", "fixed_histogram", "symmetry_statistics"]

_STATS = ("mean", "std", "skewness", "frac_zero", "frac_pos", "sign_p", "ks_stat", "ks_p")


def fixed_histogram(v: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Counts of ``v`` in the bins ``edges`` and the numbers below and above them.

    >>> counts, under, over = fixed_histogram(np.array([-2.0, 0.5, 0.5, 3.0]), np.arange(3.0))
    >>> counts.tolist(), under, over
    ([2, 0], 1, 1)
    """
    counts, _ = np.histogram(v, bins=edges)
    return counts.astype(np.int64), int(np.sum(v < edges[0])), int(np.sum(v > edges[-1]))


def symmetry_statistics(v: np.ndarray) -> dict[str, float]:
    r"""How symmetric about 0 the entries ``v`` are.

    Returns:
        ``mean``, ``std``, ``skewness`` (:math:`m_3/m_2^{3/2}`, NaN when all entries are
        equal), ``frac_zero``, ``frac_pos`` (positive among the non-zero), ``sign_p`` (two-sided
        binomial test of ``frac_pos = 1/2``), ``ks_stat`` and ``ks_p`` (two-sample KS of
        ``v`` against ``-v``, asymptotic); NaN where undefined (no non-zero entries), and all
        NaN when ``v`` has a non-finite entry.

    >>> s = symmetry_statistics(np.array([-2.0, -1.0, 0.0, 1.0, 2.0]))
    >>> (s["mean"], s["skewness"], s["frac_pos"], s["ks_stat"])
    (0.0, 0.0, 0.5, 0.0)
    """
    from scipy import stats

    v = np.asarray(v, dtype=np.float64).ravel()
    if not np.all(np.isfinite(v)):  # a diverged net: nothing meaningful to test
        return dict.fromkeys(_STATS, math.nan)
    n = v.size
    mean = float(v.mean()) if n else math.nan
    c = v - mean
    m2 = float(np.mean(c**2)) if n else math.nan
    m3 = float(np.mean(c**3)) if n else math.nan
    pos, neg = int(np.sum(v > 0)), int(np.sum(v < 0))
    out = {
        "mean": mean,
        "std": math.sqrt(m2) if n else math.nan,
        "skewness": m3 / m2**1.5 if n and m2 > 0 else math.nan,
        "frac_zero": (n - pos - neg) / n if n else math.nan,
        "frac_pos": pos / (pos + neg) if pos + neg else math.nan,
        "sign_p": float(stats.binomtest(pos, pos + neg, 0.5).pvalue) if pos + neg else math.nan,
        "ks_stat": math.nan,
        "ks_p": math.nan,
    }
    if pos + neg and n > 1:  # (one entry: no distribution to compare)
        ks = stats.ks_2samp(v, -v, method="asymp")
        out["ks_stat"], out["ks_p"] = float(ks.statistic), float(ks.pvalue)
    return out


def correlation_spectra(weight: np.ndarray) -> dict[str, np.ndarray | float]:
    r"""Spectra of the within-layer weight correlations (Fok et al.; THEORY.md §7).

    With :math:`W` the weight reshaped to ``(n_out, fan_in)`` (row :math:`i`: the incoming
    weights of neuron / output channel :math:`i`):

    * ``gram``: eigenvalues of :math:`W W^\top / \mathrm{fan_{in}}`, ``(n_out,)``;
    * ``corr``: eigenvalues of the correlation-coefficient matrix :math:`C_{ij}` of the rows
      (each centred and scaled to unit norm; a row that is constant counts as zero),
      ``(n_out,)``;
    * ``participation``: :math:`(\sum\lambda)^2 / (n_{\rm out}\sum\lambda^2)` of ``corr``, 1 for
      an isotropic (permutation-symmetric, uncorrelated) layer, about :math:`1/n_{\rm out}` when
      one direction dominates.

    Eigenvalues are sorted, largest first; all NaN for a non-finite weight. Independent
    Gaussian rows give a Marchenko–Pastur ``corr`` spectrum with ratio
    :math:`n_{\rm out}/\mathrm{fan_{in}}`.

    >>> s = correlation_spectra(np.eye(3))
    >>> np.round(s["corr"], 6).tolist(), round(s["participation"], 6)
    ([1.5, 1.5, 0.0], 0.666667)
    """
    W = np.asarray(weight, dtype=np.float64)
    W = W.reshape(W.shape[0], -1)  # (n_out, fan_in)
    n_out, fan_in = W.shape
    if not np.all(np.isfinite(W)):  # a diverged net
        nan = np.full(n_out, math.nan)
        return {"gram": nan, "corr": nan.copy(), "participation": math.nan}
    gram = np.linalg.eigvalsh(W @ W.T / fan_in)[::-1]  # (n_out,)
    Wc = W - W.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(Wc, axis=1, keepdims=True)
    U = np.divide(Wc, norm, out=np.zeros_like(Wc), where=norm > 0)
    corr = np.clip(np.linalg.eigvalsh(U @ U.T)[::-1], 0.0, None)  # (n_out,)
    sq = float(np.sum(corr**2))
    part = float(np.sum(corr) ** 2 / (n_out * sq)) if sq > 0 and n_out > 1 else math.nan
    return {"gram": gram.copy(), "corr": corr.copy(), "participation": part}
