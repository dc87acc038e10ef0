"""The sampled entries of one epoch: which (:func:`draw_entries`), their per-example
contributions and bootstrap statistics (:func:`sampled_entries`), figs. 7b,c's bands
(:func:`entry_bands`), and the pairs a run keeps (:func:`entry_pairs`); the estimators live in
:mod:`umwelt.nn.hessian`."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from sim.runs.hessian import ENTRY_CHUNK_BYTES
from umwelt.errors import NonFiniteError

__all__ = ["draw_entries", "entry_bands", "entry_pairs", "sampled_entries"]

BAND_LEVEL = 0.9  # the bands: ± z_0.95 standard errors, 90 % (also the density's)
CORR_SUBMATRIX = 100  # size of the saved correlation sub-matrix (figs. 6b,c)
# fixed bins of H^(b)/std (fig. 6a) and of the signed H/std (fig. 7a): even in asinh(x), i.e.
# linear within ±1 and logarithmic beyond, up to ±10⁴ (values beyond are counted in the end bins)
ENTRY_EDGES = np.sinh(np.linspace(-np.arcsinh(1e4), np.arcsinh(1e4), 241))

#: the entry rules whose pairs depend on the shapes and seed alone (kept for the whole run)
FIXED_RULES = ("circuit", "gauss-newton", "uniform")


def draw_entries(op, cfg, K: int, n_columns: int | None, seeds, *, loss_name: str, stored=None):
    """The entries of an epoch: ``(sample, uniform, rule, total)``.

    ``uniform`` marks the entries drawn uniformly among all admissible pairs (the correlation
    sub-matrix's, figs. 6b,c); ``total`` is the number of pairs the rule admits in the whole
    Hessian (``"nonzero"``: in the sampled columns only); ``rule`` says how they were drawn:

    * ``"circuit"`` / ``"gauss-newton"`` — the pairs some basis circuit joins (every cross-layer
      pair for a loss with curvature; :mod:`umwelt.nn.hessian.pairs`), ``K`` in all: with
      ``corr_entries="uniform"`` min(``uniform_entries``, K/2) uniform ones (the correlation
      sub-matrix's first :data:`CORR_SUBMATRIX` live ones, the coupling set's all), the rest in
      ``entry_columns`` random columns — from the shapes and the seed alone, so the same
      pairs at every epoch (``stored``: those of the run's ``hessian/config.json``, reused);
    * ``"uniform"`` — ``entry_columns=None``: ``K`` uniform cross-layer pairs;
    * ``"nonzero"`` — a model whose weights are not a chain of layers: the non-zero entries of
      ``entry_columns`` columns at this epoch (:func:`~umwelt.nn.hessian.nonzero_entries`).
    """
    from umwelt.nn.hessian import EntrySample, nonzero_entries, sample_entries
    from umwelt.nn.hessian.pairs import circuit_entries, circuit_layout

    if stored is not None:
        rows, cols = np.asarray(stored["rows"], np.int64), np.asarray(stored["cols"], np.int64)
        sample = EntrySample(rows, cols, op.n, int(stored["population"]), False, seeds["entries"])
        return sample, np.asarray(stored["uniform"], bool), str(stored["rule"]), stored["total"]
    if n_columns is None:
        sample = sample_entries(op, K, seed=seeds["entries"])
        return sample, np.ones(sample.size, bool), "uniform", sample.population
    curvature = loss_name in ("logistic", "quadratic-hinge")
    layout = circuit_layout(op.param_shapes, gauss_newton=curvature)
    if layout is None:
        sample = nonzero_entries(op, K, n_columns, seed=seeds["entries"])
        return sample, np.zeros(sample.size, bool), "nonzero", sample.population
    # K in all: of them min(uniform_entries, K/2) uniform (correlations and coupling set)
    U = min(cfg.uniform_entries, K // 2) if cfg.corr_entries == "uniform" else 0
    (r, c, pop), (ur, uc, total) = circuit_entries(
        layout, K - U, n_columns, uniform=U, seed=seeds["entries"]
    )
    rows, cols = np.concatenate([r, ur]), np.concatenate([c, uc])
    uniform = np.concatenate([np.zeros(r.size, bool), np.ones(ur.size, bool)])
    sample = EntrySample(rows, cols, op.n, pop, False, seeds["entries"])
    return sample, uniform, "gauss-newton" if curvature else "circuit", total


def entry_bands(st, ratio_ex, uniform, total: int, samples, seeds) -> dict:
    """Fig. 7b's bands and fig. 7c's coupling set and joint shape, for the row.

    * ``frac_means_below_015_lo``/``_hi`` and ``..._per_example_lo``/``_hi``: a
      :data:`BAND_LEVEL` band over the sampled entries (``_band``: how it was taken)
      (:func:`~umwelt.nn.hessian.fraction_band`);
    * ``coupling_set_*``: the coupling set scaled to the ``total`` pairs of the whole Hessian
      (:func:`~umwelt.nn.hessian.coupling_set_from_pairs`), from the uniform entries when there
      are some (``coupling_set_sample``; column-confined entries share weights and correlate
      more), with its quasi-Poisson band;
    * ``mardia_*``: Mardia's multivariate skewness and kurtosis of the entries' bootstrap
      distribution (:func:`~umwelt.nn.hessian.mardia`).
    Each is left out (``NaN``) below the entries or resamples it needs.
    """
    from umwelt.nn.hessian import coupling_set_from_pairs, fraction_band, mardia
    from umwelt.nn.hessian.coupling import MIN_ENTRIES, MIN_SAMPLES, pair_significance

    out: dict[str, Any] = {}
    ratio = st.ratio[st.live]
    for key, r in (("frac_means_below_015", ratio), ("frac_means_below_015_per_example", ratio_ex)):
        lo, hi, how = fraction_band(r < st.threshold, level=BAND_LEVEL, seed=seeds["bootstrap"])
        out |= {f"{key}_lo": lo, f"{key}_hi": hi, f"{key}_band": how}
    idx, G = pair_significance(st)  # over the live entries
    use = uniform[idx] if uniform[idx].sum() >= MIN_ENTRIES else np.ones(idx.size, bool)
    out["coupling_set_sample"] = "uniform" if not use.all() or uniform.all() else "columns"
    if use.sum() >= MIN_ENTRIES and total >= use.sum():
        cs = coupling_set_from_pairs(
            G[np.ix_(use, use)], total, seed=seeds["bootstrap"], n=st.n, level=BAND_LEVEL
        )
        out |= cs.row()
    if samples.shape[0] >= MIN_SAMPLES and st.live.sum() >= 2:
        out |= mardia(samples[:, st.live], seed=seeds["corr"]).row()
    return out


def sampled_entries(op, cfg, K: int, n_columns: int | None, seeds, stage: Callable, **draw):
    """Sampled entries, their bootstrap over all examples (reduced over ranks), statistics."""
    from umwelt.nn.hessian import (
        correlation_submatrix,
        entry_contributions,
        entry_statistics,
        entry_summary,
        example_bootstrap,
    )

    sample, uniform, rule, total = draw_entries(op, cfg, K, n_columns, seeds, **draw)
    if sample.size == 0:  # no non-zero entry (e.g. a converged hinge net: H = 0)
        return {"frac_means_below_015": math.nan, "coupling_exponent": math.nan, "n_entries": 0}, {}
    err: NonFiniteError | None = None
    C = np.zeros((op.n_examples, sample.size))
    c_chunk = 8
    e_chunk = int(np.clip(ENTRY_CHUNK_BYTES // (8 * c_chunk * op.n), 8, 256))
    try:
        C = entry_contributions(
            op,
            sample,
            example_chunk=e_chunk,
            column_chunk=c_chunk,
            progress=lambda done, total: stage("entries", done, total),
        )  # (n_shard, K)
    except NonFiniteError as e:
        err = e
    if op.any_failed(err is not None):
        raise err or NonFiniteError(
            f"a per-example Hessian product ({op.context}) is not finite on another process"
        )
    if err is not None:
        raise err
    n = op.n_total
    samples, value = example_bootstrap(op, C, cfg.bootstrap, seed=seeds["bootstrap"])
    st = entry_statistics(samples, value, n=op.n)
    summary = entry_summary(st)
    # the other reading of the paper's "normalized by its standard deviation": the spread of the
    # entry's per-example contributions, √n times the bootstrap std of the mean
    ratio_ex = st.ratio[st.live] / math.sqrt(n)
    summary["frac_means_below_015_per_example"] = (
        float((ratio_ex < st.threshold).mean()) if ratio_ex.size else math.nan
    )
    summary["entry_rule"] = rule
    summary |= entry_bands(st, ratio_ex, uniform, total, samples, seeds)
    if uniform.any() and not uniform.all():  # the uniform ones' block (figs. 6b,c)
        sub_idx = np.nonzero(uniform & st.live)[0][:CORR_SUBMATRIX]
        sub = st.corr[np.ix_(sub_idx, sub_idx)]
        summary["corr_entries"] = "uniform"
    else:
        sub_idx, sub = correlation_submatrix(st, CORR_SUBMATRIX, seed=seeds["corr"])
        summary["corr_entries"] = "uniform" if uniform.all() else "columns"
    live = st.live
    norm = np.clip(st.normalized[:, live], ENTRY_EDGES[0], ENTRY_EDGES[-1])
    signed = np.where(live, st.value / np.where(live, st.std, 1.0), np.nan)
    arrays = {
        "entry_rows": sample.rows,
        "entry_cols": sample.cols,
        "entry_uniform": uniform,
        "entry_population": sample.population,
        "entry_total": total,
        "entry_rule": rule,
        "entry_value": st.value,
        "entry_std": st.std,
        "entry_mean_over_std": signed,
        "entry_live": live,
        "entry_n_corr": st.n_corr,
        "entry_skew": st.skew,
        "entry_kurt": st.kurt,
        "entry_skew_sig": st.skew_sig,
        "entry_kurt_sig": st.kurt_sig,
        "entry_samples": samples,
        "normalized_edges": ENTRY_EDGES,
        "normalized_hist": np.histogram(norm, ENTRY_EDGES)[0],
        "ratio_edges": ENTRY_EDGES,
        "ratio_hist": np.histogram(
            np.clip(signed[live], ENTRY_EDGES[0], ENTRY_EDGES[-1]), ENTRY_EDGES
        )[0],
        "corr_sub_index": sub_idx,
        "corr_sub": sub,
    }
    return summary, arrays


def entry_pairs(arrays: dict) -> dict:
    """The entries of an epoch as ``hessian/config.json`` keeps them for the run."""
    return {
        "rule": str(arrays["entry_rule"]),
        "rows": arrays["entry_rows"].tolist(),
        "cols": arrays["entry_cols"].tolist(),
        "uniform": arrays["entry_uniform"].tolist(),
        "population": int(arrays["entry_population"]),
        "total": int(arrays["entry_total"]),
    }
