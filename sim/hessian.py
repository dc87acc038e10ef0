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

* **extremes** :math:`\lambda_{\min}, \lambda_{\max}`: a fully re-orthogonalized Lanczos run
  (``extremes="lanczos"``, ``extreme_steps`` steps) or ARPACK's ``eigsh``
  (``extremes="eigsh"``), widened by the SLQ's own extreme Ritz values (Ritz values lie inside
  the spectrum, so the widest is the best estimate);
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

  a density in :math:`\lambda` (mass 1) with a 90% bootstrap band over the start vectors. Here
  :math:`\delta = (\theta_{\max} - \theta_{\min})/k` is the quadrature's resolution: ``k``
  Gauss nodes cannot place eigenvalues closer than about that, and finer smoothing near 0 would
  draw the nodes' positions, not the spectrum (:math:`\delta = 0` when every start vector
  reached an invariant subspace: the nodes are then eigenvalues). The raw Ritz nodes and weights
  are saved, so any other smoothing needs no new products;
* **spectral summary** (:func:`~umwelt.nn.hessian.spectral_summary`, bootstrap standard errors
  over start vectors): ``neg_mass``, ``neg_share`` (the negative part of the weight beyond
  the resolution :math:`\delta`, also recorded as ``resolution``), the moment ``asymmetry``
  :math:`\int\lambda^3\rho/(\int\lambda^2\rho)^{3/2}`, ``density_asymmetry``
  :math:`\int|\rho(\lambda)-\rho(-\lambda)|d\lambda` of the smoothed density above, the Hutchinson
  ``trace``, ``m2`` :math:`= \mathrm{tr}H^2/N`, ``beyond_grid`` (quadrature weight outside
  :math:`[-b, b]`);
* **hinge checks** (hinge loss only; :func:`~umwelt.nn.hessian.hinge_checks`): exact diagonal
  entries at ``hinge_coords`` coordinates and a trace test — both vanish for a bias-free net;
* **sampled entries** (figs. 6–7; :mod:`~umwelt.nn.hessian.entries`): ``entries`` = K distinct
  entries :math:`H_{jk}` drawn uniformly among the **non-zero** cross-layer entries of
  ``entry_columns`` random columns (the columns the same at every epoch; one product per column
  finds the non-zero rows). With the gates fixed most pairs of weights are joined by no basis
  circuit (of two weights in adjacent layers only those sharing their unit, :math:`1/n_l` of
  them), so their entries are identically 0 and have no bootstrap variance; uniform pairs
  (``entry_columns=None``) would spend most of K on them. Per-example contributions cost one
  vectorized pass over the examples per column. Each entry is bootstrapped ``bootstrap`` times
  over the examples; ``frac_means_below_015``, ``coupling_exponent`` and the rest of
  :func:`~umwelt.nn.hessian.entry_summary` (Bonferroni at family level 0.05; see that module for
  the significance rules), ``n_entries`` (K, or all non-zero entries of the columns if fewer);
* ``loss``: the risk of the analysed examples with the fixed gates (at :math:`T = 0` the run's
  training loss), ``active_fraction`` (examples with an active hinge), ``wall_s``, and
  ``hvp_mode``, how the products were taken (:class:`~umwelt.nn.hessian.ModelHessian`'s ``ad``:
  ``"gated"`` by hand for the gated nets, else ``torch.func``; only round-off differs).

**The grid is chosen once.** The first analysis of a run fixes it, in
``hessian/config.json`` together with every setting that changes the numbers: ``grid_bound``
when given, else ``grid_margin`` × the largest :math:`|\lambda|` over the epochs analysed, from
the extremes computed first in a cheap pass over all of them. Later analyses of the same run
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
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from sim.figures import hessian_figures
from sim.runs import SETTINGS, HessianSettings, Run, io, parse_settings
from sim.runs.hessian import DTYPES, EXTREMES
from sim.runs.simulate import NETS
from umwelt.errors import ConfigError, NonFiniteError, UmweltError
from umwelt.seeds import streams

__all__ = [
    "DTYPES",
    "EXTREMES",
    "HessianConfig",
    "HessianSettings",
    "SETTINGS",
    "load_epoch",
    "parse_settings",
    "record_epoch",
    "run",
    "symlog_coordinate",
]

AUTO_FLOAT64_LIMIT = 1_000_000  # dtype "auto": float64 up to this many parameters
SYMLOG_C = 1e-3  # the symlog grid's linear scale c, a fraction of the bound (symmetric_grid's)
EIGSH_TOL = 1e-6  # ARPACK's relative tolerance for extremes="eigsh"
BAND_LEVEL = 0.9  # the density's bootstrap band: 5th to 95th percentile
SUMMARY_BOOT = 200  # bootstrap resamples of the start vectors for the summary's standard errors
CORR_SUBMATRIX = 100  # size of the saved correlation sub-matrix (figs. 6b,c)
# fixed bins of H^(b)/std (fig. 6a) and of the signed H/std (fig. 7a): even in asinh(x), i.e.
# linear within ±1 and logarithmic beyond, up to ±10⁴ (values beyond are counted in the end bins)
ENTRY_EDGES = np.sinh(np.linspace(-np.arcsinh(1e4), np.arcsinh(1e4), 241))
ENTRY_CHUNK_BYTES = 64 * 2**20  # per-example products held at once (examples × 8 columns × N)

Progress = Callable[[str, int, int, str], None]


@dataclass(frozen=True)
class HessianConfig(HessianSettings):
    """A Hessian analysis of a run: its :class:`~sim.runs.HessianSettings` (inherited: every
    setting that changes the numbers) and which run, epochs and device; :meth:`validated`
    checks them all (and the run)."""

    run: Path | None = None  # required: a run directory of umwelt train or umwelt simulate
    epochs: tuple[int, ...] | str | None = None  # None: every checkpointed epoch
    net: str = "finite_T"  # simulate runs: finite_T (the net at T) or relu (the ReLU twin)
    device: str = "cpu"  # cpu, cuda, cuda:N (torchrun: cuda:LOCAL_RANK)
    fresh: bool = False  # discard the run's earlier Hessian results (other settings)
    figures: bool = True  # write figures/hessian_*.png at the end (rank 0)

    @classmethod
    def of(cls, run: Path | str, settings: HessianSettings | None = None, **kw) -> HessianConfig:
        """The analysis of ``run`` with ``settings`` (default: the defaults) and ``kw``."""
        base = {} if settings is None else asdict(settings)
        return cls(run=Path(run), **base, **kw)

    @property
    def settings(self) -> HessianSettings:
        """The settings alone (the fields :data:`~sim.runs.SETTINGS`)."""
        return HessianSettings(**{k: getattr(self, k) for k in SETTINGS})

    def validated(self) -> HessianConfig:
        """A copy with normalized values, or :class:`ConfigError` naming the first bad one.

        Reads the run directory (nothing is written): it must be a run with checkpoints, and
        every requested epoch one of them.
        """
        from umwelt.nn.device import resolve_device

        if self.run is None:
            raise ConfigError("a run directory is required (umwelt hessian RUN)")
        if self.net not in NETS:
            raise ConfigError(f"net must be one of {', '.join(NETS)}, got {self.net!r}")
        run = Run.open(self.run)
        found = _checkpoints(run, self.net)
        epochs = _parse_epochs(self.epochs)
        if epochs is None:
            epochs = tuple(found)
        for e in epochs:
            if e not in found:
                raise ConfigError(
                    f"epoch {e} is not in the run {str(run.path)!r}: its checkpointed epochs "
                    f"are {', '.join(map(str, found))}"
                )
        resolve_device(self.device)
        checked = asdict(self.settings.validated())
        return replace(self, **checked, run=run.path, epochs=epochs)


def _checkpoints(run: Run, net: str) -> dict[int, Path]:
    """The run's checkpoints of ``net``; :class:`ConfigError` when it has none."""
    found = run.checkpoints(net)
    if not found:
        what = "model_epoch_XXXX.pt" if run.kind == "train" else f"init.pt or {net}.pt"
        raise ConfigError(
            f"the {run.kind} run {str(run.path)!r} has no checkpoints to analyse (no {what} in "
            f"{str(run.path / 'checkpoints')!r})"
        )
    return found


def _parse_epochs(at: Any) -> tuple[int, ...] | None:
    if at is None:
        return None
    if isinstance(at, str):
        items = [s.strip() for s in at.split(",") if s.strip()]
        try:
            at = [int(s) for s in items]
        except ValueError:
            raise ConfigError(f"epochs must be comma-separated integers, got {at!r}") from None
    try:
        at = list(at)
    except TypeError:
        raise ConfigError(f"epochs must be a list of integers, got {at!r}") from None
    if not at:
        raise ConfigError("no epochs given")
    for e in at:
        if isinstance(e, bool) or not isinstance(e, int | np.integer) or e < 0:
            raise ConfigError(f"an epoch must be an integer ≥ 0, got {e!r}")
    return tuple(sorted({int(e) for e in at}))


# -- the run directory -----------------------------------------------------------------------------


def load_epoch(run_dir: Path | str, epoch: int, *, net: str = "finite_T", dtype="float64"):
    """``(model, X, y, loss, temperature)`` of a run at ``epoch``, rebuilt as :func:`run` does.

    For notebooks and tests: the model at that checkpoint in ``dtype`` on the CPU, and the
    whole training set.
    """
    import torch

    from umwelt.nn.device import resolve_dtype

    run = Run.open(run_dir)
    found = _checkpoints(run, net)
    if epoch not in found:
        raise ConfigError(f"epoch {epoch} is not in the run; it has {list(found)}")
    dt = resolve_dtype(dtype)
    data = run.data()
    X = torch.as_tensor(np.ascontiguousarray(data.X_train), dtype=dt)
    y = torch.as_tensor(np.ascontiguousarray(data.y_train), dtype=dt)
    return run.model(epoch, net=net, dtype=dt), X, y, run.loss, run.temperature(net)


# -- seeds, grid, settings ------------------------------------------------------------------------


_STREAMS = (
    "examples",
    "gates",
    "extremes",
    "slq",
    "summary",
    "checks",
    "entries",
    "bootstrap",
    "corr",
)


def _seeds(seed: int) -> dict[str, int]:
    """Independent seeds of every random draw, from the one ``seed``."""
    return streams(seed, _STREAMS)


def symlog_coordinate(lam: np.ndarray, c: float) -> np.ndarray:
    r""":math:`u = \mathrm{sign}(\lambda)\ln(1 + |\lambda|/c)`, the coordinate the grid is even in.

    >>> float(symlog_coordinate(np.array([-(np.e - 1)]), 1.0)[0])
    -1.0
    """
    lam = np.asarray(lam, dtype=np.float64)
    return np.sign(lam) * np.log1p(np.abs(lam) / c)


def _grid(bound: float, points: int) -> tuple[np.ndarray, float]:
    from umwelt.nn.hessian import symmetric_grid

    return symmetric_grid(bound, points, scale="symlog"), SYMLOG_C * bound


def _settings(cfg: HessianConfig, n: int, dtype: str, steps: dict[str, int | None]) -> dict:
    """Every setting that changes the numbers (must match across analyses of one run)."""
    return {
        "net": cfg.net,
        "examples": cfg.examples,
        "dtype": dtype,
        "lanczos_steps": steps["lanczos_steps"],
        "start_vectors": cfg.start_vectors,
        "reorth": cfg.reorth,
        "extremes": cfg.extremes,
        "extreme_steps": steps["extreme_steps"],
        "entries": steps["entries"],
        "entry_columns": steps["entry_columns"],
        "bootstrap": cfg.bootstrap,
        "hinge_coords": cfg.hinge_coords,
        "grid_points": cfg.grid_points,
        "smoothing": cfg.smoothing,
        "seed": cfg.seed,
        "n_params": n,
    }


# -- the operator ----------------------------------------------------------------------------------


def _operator(model, X, y, *, ids, loss, batch_size, gate_seed, epoch, world):
    from umwelt.nn.hessian import ModelHessian

    kw = {
        "loss": loss,
        "batch_size": batch_size,
        "gate_seed": gate_seed,
        "context": f"epoch {epoch}",
    }
    if world is not None and world.distributed:
        from umwelt.nn.hessian.distributed import DistributedModelHessian

        return DistributedModelHessian(model, X, y, indices=ids, **kw)
    return ModelHessian(model, X, y, indices=ids, **kw)


def _reduce(op, a: np.ndarray) -> np.ndarray:
    """Sum a per-shard numpy array over the ranks (as is for one process)."""
    if not getattr(op, "distributed", False):
        return a
    import torch

    t = torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float64, device=op.device)
    return op.all_reduce(t).cpu().numpy()


def _n_total(op) -> int:
    return getattr(op, "n_total", op.n_examples)


def _shard(op) -> slice:
    return getattr(op, "shard", slice(0, op.n_examples))


def _active_fraction(op) -> float:
    """Fraction of all examples with an active hinge :math:`1 - y f > 0` (reduced)."""
    import torch

    with torch.no_grad():
        f = op.outputs()  # (n_shard,)
        y = torch.cat([b.y for b in op.batches()])
        active = float(((1 - y * f) > 0).double().sum())
    return float(_reduce(op, np.array([active]))[0]) / _n_total(op)


class _Counted:
    """Factory of a :class:`~umwelt.nn.hessian.HessianOperator` that counts products."""

    @staticmethod
    def wrap(op, tick: Callable[[int], None]):
        from umwelt.nn.hessian import HessianOperator

        class Counted(HessianOperator):
            def __init__(self):
                super().__init__(op.n, dtype=op.dtype, device=op.device, context=op.context)

            def _matvec(self, v):
                out = op.matvec(v)
                tick(1)
                return out

            def _matmat(self, V):
                out = op.matmat(V)
                tick(V.shape[1])
                return out

        return Counted()


# -- one epoch -------------------------------------------------------------------------------------


def _extremes(op, cfg: HessianConfig, steps: int, seed: int) -> tuple[float, float]:
    from umwelt.nn.hessian import eigsh_extremes, lanczos_extremes

    if cfg.extremes == "eigsh":
        lo, hi = eigsh_extremes(op, 1, tol=EIGSH_TOL, seed=seed)
        return float(lo[0]), float(hi[0])
    return lanczos_extremes(op, steps, seed=seed)


def _nonzero_entries(op, K: int, n_columns: int, seed: int):
    r"""``K`` entries drawn uniformly among the **non-zero** cross-layer entries of
    ``n_columns`` random columns (the columns fixed by ``seed``, the same at every epoch).

    With the gates fixed, :math:`\partial^2 f/\partial\theta_j\partial\theta_k` is identically 0
    unless some basis circuit runs through both weights (THEORY.md §3): of two weights in
    adjacent layers only those sharing their unit, :math:`1/n_l` of the pairs. Such structural
    zeros (and the entries of units no example opens) have no bootstrap variance, so uniform
    pairs would spend most of ``K`` on them. One product per column,
    :math:`H e_k` on the full data, finds the non-zero rows; the unordered pairs
    :math:`\{j, k\}` with :math:`H_{jk} \ne 0` and :math:`j, k` in different parameter tensors
    form the population (fewer than ``K``: all of them).
    """
    import torch

    from umwelt.nn.hessian import EntrySample

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


def _entry_statistics(op, cfg, K: int, n_columns: int | None, seeds, stage: Callable):
    """Sampled entries, their bootstrap over all examples (reduced over ranks), statistics."""
    from umwelt.nn.hessian import (
        bootstrap_counts,
        correlation_submatrix,
        entry_contributions,
        entry_statistics,
        entry_summary,
        sample_entries,
    )

    if n_columns is None:
        sample = sample_entries(op, K, seed=seeds["entries"])
    else:
        sample = _nonzero_entries(op, K, n_columns, seeds["entries"])
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
    if hasattr(op, "any_failed") and op.any_failed(err is not None):
        raise err or NonFiniteError(
            f"a per-example Hessian product ({op.context}) is not finite on another process"
        )
    if err is not None:
        raise err
    n = _n_total(op)
    counts = bootstrap_counts(n, cfg.bootstrap, seed=seeds["bootstrap"])  # (B, n)
    samples = _reduce(op, (counts[:, _shard(op)] / n) @ C)  # (B, K)
    value = _reduce(op, op.example_weights.double().cpu().numpy() @ C)  # (K,)
    st = entry_statistics(samples, value, n=op.n)
    summary = entry_summary(st)
    # the other reading of the paper's "normalized by its standard deviation": the spread of the
    # entry's per-example contributions, √n times the bootstrap std of the mean
    ratio_ex = st.ratio[st.live] / math.sqrt(n)
    summary["frac_means_below_015_per_example"] = (
        float((ratio_ex < st.threshold).mean()) if ratio_ex.size else math.nan
    )
    sub_idx, sub = correlation_submatrix(st, CORR_SUBMATRIX, seed=seeds["corr"])
    live = st.live
    norm = np.clip(st.normalized[:, live], ENTRY_EDGES[0], ENTRY_EDGES[-1])
    signed = np.where(live, st.value / np.where(live, st.std, 1.0), np.nan)
    arrays = {
        "entry_rows": sample.rows,
        "entry_cols": sample.cols,
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


def _analyse_epoch(op, cfg, *, grid, c, steps, extremes, seeds, stage, loss_name):
    """Everything of one epoch: ``(row, arrays)``."""
    from umwelt.nn.hessian import SLQResult, hinge_checks, slq, spectral_summary

    t0 = time.perf_counter()
    N = op.n
    row: dict[str, Any] = {"n_params": N, "n_examples": _n_total(op), "loss": op.risk()}
    row["hvp_mode"] = op.ad  # how the products were taken (changes only round-off)
    if loss_name == "hinge":
        row["active_fraction"] = _active_fraction(op)

    k, n_v = steps["lanczos_steps"], cfg.start_vectors
    total, done = k * n_v, [0]

    def tick(m: int) -> None:
        done[0] += m
        stage("slq", min(done[0], total), total)

    res = slq(_Counted.wrap(op, tick), k, n_v, seed=seeds["slq"], reorth=cfg.reorth)
    stage("slq", total, total)
    # moments, negative mass, trace from the raw nodes (the grid here only feeds the λ-smoothed
    # density asymmetry, which is replaced by the symlog-smoothed one below)
    # the quadrature's resolution δ = (θ_max − θ_min)/k near 0 (δ = 0 when every start vector
    # reached an invariant subspace: the nodes are then eigenvalues, exactly)
    live = res.weights > 0
    exact = bool(np.all(live.sum(axis=1) < k))
    resolution = 0.0 if exact or not live.any() else float(np.ptp(res.nodes[live])) / k
    with warnings.catch_warnings():  # H = 0 (a converged hinge net): NaN asymmetries, quietly
        warnings.simplefilter("ignore", RuntimeWarning)
        summ = spectral_summary(
            res,
            grid=grid,
            sigma=grid[-1] / 50,
            resolution=resolution,
            n_boot=SUMMARY_BOOT,
            seed=seeds["summary"],
        )
    # smoothing scale: the grid's c, or the resolution δ if that is coarser
    c_s = max(c, resolution / cfg.smoothing)
    res_u = SLQResult(
        nodes=symlog_coordinate(res.nodes, c_s),
        weights=res.weights,
        n=res.n,
        k=res.k,
        dist=res.dist,
        reorth=res.reorth,
        seed=res.seed,
    )
    u_grid = symlog_coordinate(grid, c_s)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        summ_u = spectral_summary(
            res_u, grid=u_grid, sigma=cfg.smoothing, n_boot=SUMMARY_BOOT, seed=seeds["summary"]
        )
    band = res_u.density_band(u_grid, cfg.smoothing, level=BAND_LEVEL, seed=seeds["summary"])
    jac = 1.0 / (c_s + np.abs(grid))  # du/dλ: densities in u → densities in λ
    nodes, weights = res.pooled()
    bound = float(grid[-1])
    lam_min = min(extremes[0], summ["ritz_min"])
    lam_max = max(extremes[1], summ["ritz_max"])
    row |= {
        "lambda_min": lam_min,
        "lambda_max": lam_max,
        "extremes_lambda_min": extremes[0],
        "extremes_lambda_max": extremes[1],
        "ritz_min": summ["ritz_min"],
        "ritz_max": summ["ritz_max"],
        "neg_mass": summ["neg_mass"],
        "neg_mass_se": summ["neg_mass_se"],
        "neg_share": summ["neg_share"],
        "neg_share_se": summ["neg_share_se"],
        "resolution": resolution,
        "asymmetry": summ["asymmetry"],
        "asymmetry_se": summ["asymmetry_se"],
        "density_asymmetry": summ_u["density_asymmetry"],
        "density_asymmetry_se": summ_u["density_asymmetry_se"],
        "trace": summ["trace"],
        "trace_se": summ["trace_se"],
        "m2": summ["m2"],
        "m2_se": summ["m2_se"],
        "beyond_grid": float(weights[np.abs(nodes) > bound].sum()),
    }
    if loss_name == "hinge":
        hc_total = min(cfg.hinge_coords, N) + (16 if cfg.hinge_coords < N else 0)
        hc_done = [0]

        def tick_checks(m: int) -> None:
            hc_done[0] += m
            stage("checks", min(hc_done[0], hc_total), hc_total)

        hc = hinge_checks(
            _Counted.wrap(op, tick_checks),
            n_coords=min(cfg.hinge_coords, N),
            n_v=16,
            seed=seeds["checks"],
            warn=False,
        )
        row |= {
            "hinge_diag_max_abs": hc["diag_max_abs"],
            "hinge_diag_rel": hc["diag_rel"],
            "hinge_trace": hc["trace"],
            "hinge_trace_se": hc["trace_se"],
            "hinge_ok": hc["ok"],
        }
    arrays: dict[str, Any] = {
        "grid": grid,
        "grid_c": c,
        "smoothing": cfg.smoothing,
        "smoothing_c": c_s,
        "density": band.density * jac,
        "density_std": band.std * jac,
        "density_lo": band.lo * jac,
        "density_hi": band.hi * jac,
        "density_level": band.level,
        "slq_nodes": res.nodes,
        "slq_weights": res.weights,
        "slq_seed": res.seed,
        "reorth": res.reorth,
    }
    K = steps["entries"]
    if K:
        es, entry_arrays = _entry_statistics(op, cfg, K, steps["entry_columns"], seeds, stage)
        row |= es
        arrays |= entry_arrays
    else:
        row |= {"frac_means_below_015": math.nan, "coupling_exponent": math.nan}
    row["wall_s"] = time.perf_counter() - t0
    return row, arrays


# -- the analysis ----------------------------------------------------------------------------------


def run(cfg: HessianConfig, *, progress: Progress | None = None) -> list[dict]:
    """Analyse the checkpoints of a run; write ``RUN/hessian/`` (rank 0) and the figures.

    Args:
        cfg: the settings; validated here before anything is read or written.
        progress: called as ``progress(stage, done, total, info)``: stages ``"extremes"`` and
            ``"epochs"`` (the two passes over the epochs), ``"slq"``, ``"checks"`` (products)
            and ``"entries"`` (columns) within an epoch.

    Returns:
        the rows of the epochs analysed now (every rank).

    Raises:
        UmweltError: a bad setting, run directory or epoch, a request larger than the Hessian
            (before anything is written); :class:`~umwelt.errors.NonFiniteError` naming the
            first epoch whose products are not finite (after writing the epochs before it).
    """
    from sim import distributed

    cfg = cfg.validated()
    world, device = distributed.setup(cfg.device)
    completed = False
    try:
        result = analyse(cfg, world=world, device=device, progress=progress)
        completed = True
        return result
    finally:
        distributed.teardown(world, completed=completed)


def record_epoch(
    run_dir: Path | str,
    epoch: int,
    *,
    settings: HessianSettings | None = None,
    world=None,
    device: str = "cpu",
):
    """The analysis of one epoch of a training run in progress (``umwelt train --hessian-at``).

    Called on every rank right after rank 0 wrote ``checkpoints/model_epoch_XXXX.pt``; uses
    :class:`HessianConfig` with ``settings`` (``None``: the defaults), the
    grid of an earlier recorded epoch if there is one, and does not touch torch's global random
    state (a resumed training stays exact). A failure does not stop the training: it becomes a
    warning.

    Returns:
        the row, or ``None`` after a failure.
    """
    import torch

    if world is not None and world.distributed:
        import torch.distributed as dist

        dist.barrier()  # rank 0 has written the checkpoint
    devices = [torch.device(device)] if torch.device(device).type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            cfg = HessianConfig.of(run_dir, settings, epochs=(epoch,), device=device, figures=False)
            rows = analyse(cfg.validated(), world=world, device=device)
        return rows[0]
    except UmweltError as e:
        warnings.warn(
            f"--hessian-at: the Hessian of epoch {epoch} was not recorded: {e}",
            RuntimeWarning,
            stacklevel=2,
        )
        return None


def analyse(
    cfg: HessianConfig, *, world=None, device: str = "cpu", progress: Progress | None = None
) -> list[dict]:
    """:func:`run` inside an existing process group (``world``: :class:`sim.distributed.World`).

    ``cfg`` must be validated. Every rank calls it; rank 0 writes.
    """
    import torch

    from umwelt.nn.device import resolve_device, resolve_dtype

    def stage(name: str, done: int, total: int, info: str = "") -> None:
        if progress is not None:
            progress(name, done, total, info)

    main = world is None or world.is_main
    run = Run.open(cfg.run)
    found = _checkpoints(run, cfg.net)
    out = run.hessian_dir(cfg.net)
    dev = resolve_device(device)
    seeds = _seeds(cfg.seed)
    epochs = list(cfg.epochs)
    temperature = run.temperature(cfg.net)

    # -- what depends on the model: dtype, N and the requests that must fit in it
    first = run.build_model(cfg.net, dtype=torch.float32)
    N = sum(p.numel() for p in first.parameters() if p.requires_grad)
    del first
    dtype_name = cfg.dtype
    if dtype_name == "auto":
        dtype_name = "float64" if N <= AUTO_FLOAT64_LIMIT else run.config.dtype
    dtype = resolve_dtype(dtype_name)
    data = run.data()
    X = torch.as_tensor(np.ascontiguousarray(data.X_train))  # (n_train, ...) on the CPU
    y = torch.as_tensor(np.ascontiguousarray(data.y_train))
    n_train = int(X.shape[0])
    if cfg.examples is not None and cfg.examples > n_train:
        raise ConfigError(
            f"--examples {cfg.examples} exceeds the {n_train} training examples of the run"
        )
    if cfg.examples is None:
        ids = np.arange(n_train)
    else:
        rng = np.random.default_rng(seeds["examples"])
        ids = np.sort(rng.choice(n_train, cfg.examples, replace=False))

    def build(epoch: int):
        m = run.model(epoch, net=cfg.net, dtype=dtype, device=dev)
        return _operator(
            m,
            X,
            y,
            ids=ids,
            loss=run.loss,
            batch_size=cfg.batch_size,
            gate_seed=seeds["gates"],
            epoch=epoch,
            world=world,
        )

    # -- pass 1: the extremes of every epoch (cheap), which also checks every request
    extremes: dict[int, tuple[float, float]] = {}
    failed: tuple[int, NonFiniteError] | None = None
    steps: dict[str, int | None] = {}
    for i, e in enumerate(epochs):
        stage("extremes", i, len(epochs), f"epoch {e}")
        op = build(e)
        if i == 0:
            steps = _resolve_steps(cfg, op)
            settings = _settings(cfg, op.n, dtype_name, steps)
            stored = _stored(out, settings, cfg)
        try:
            extremes[e] = _extremes(op, cfg, steps["extreme_steps"], seeds["extremes"])
        except NonFiniteError as err:
            if i == 0:
                raise NonFiniteError(f"epoch {e}: {err}; nothing was written") from None
            failed = (e, err)
            break
        del op
    stage("extremes", len(extremes), len(epochs), "")
    done_epochs = [e for e in epochs if e in extremes]

    # -- the grid: stored with the run's first analysis, else from these extremes
    if stored is not None:
        bound, points = float(stored["grid_bound"]), int(stored["grid_points"])
    else:
        top = max((max(abs(a), abs(b)) for a, b in extremes.values()), default=0.0)
        bound = cfg.grid_bound or (cfg.grid_margin * top if top > 0 else 1.0)
        points = cfg.grid_points
    grid, c = _grid(bound, points)
    if main:
        if cfg.fresh:
            _clear(out)
        io.write_json(
            out / "config.json",
            {
                "run": str(run.path),
                "kind": run.kind,
                "temperature": temperature,
                "loss": run.loss,
                "settings": settings,
                "grid_bound": bound,
                "grid_points": points,
                "grid_scale": "symlog",
                "grid_c": c,
                "band_level": BAND_LEVEL,
                "seeds": seeds,
                "versions": io.versions(),
            },
        )

    # -- pass 2: everything, epoch by epoch, each written as soon as it exists
    rows: list[dict] = []
    for i, e in enumerate(done_epochs):
        stage("epochs", i, len(done_epochs), f"epoch {e}")
        try:
            op = build(e)
            row, arrays = _analyse_epoch(
                op,
                cfg,
                grid=grid,
                c=c,
                steps=steps,
                extremes=extremes[e],
                seeds=seeds,
                stage=stage,
                loss_name=run.loss,
            )
        except NonFiniteError as err:
            failed = (e, err)
            break
        row = {
            "epoch": e,
            "checkpoint": found[e].name,
            "net": cfg.net,
            "temperature": temperature,
            **row,
            "lanczos_steps": steps["lanczos_steps"],
            "start_vectors": cfg.start_vectors,
            "grid_bound": bound,
            "world_size": 1 if world is None else world.size,
        }
        rows.append(row)
        if main:
            _write_epoch(out, row, arrays | {"example_ids": ids})
    stage("epochs", len(rows), len(done_epochs), "")
    if main and cfg.figures and rows:
        hessian_figures(run, subdir=out.name)
    if failed is not None:
        e, err = failed
        kept = ", ".join(str(r["epoch"]) for r in rows) or "none"
        raise NonFiniteError(
            f"epoch {e}: {err}; stopped there (epochs analysed before it: {kept}, in {str(out)!r})"
        )
    return rows


def _resolve_steps(cfg: HessianConfig, op) -> dict[str, int | None]:
    """The defaults that depend on N, and a check of every request against N."""
    N = op.n
    k = cfg.lanczos_steps or min(80, N)
    if k > N:
        raise ConfigError(
            f"--lanczos-steps {k} exceeds the Hessian's dimension N = {N} (the model's trainable "
            "parameters)"
        )
    ek = cfg.extreme_steps or min(80, N)
    if ek > N:
        raise ConfigError(f"--extreme-steps {ek} exceeds the Hessian's dimension N = {N}")
    if cfg.extremes == "eigsh" and N < 2:
        raise ConfigError(f"eigsh needs a Hessian of dimension N ≥ 2, got N = {N}")
    cols = None if cfg.entry_columns is None else min(cfg.entry_columns, N)
    sizes = np.diff(op.param_offsets)
    population = N * (N - 1) // 2 - int((sizes * (sizes - 1) // 2).sum())  # cross-layer pairs
    K = min(1000, population) if cfg.entries is None else cfg.entries
    if K > population:
        raise ConfigError(
            f"--entries {K} exceeds the {population:,} cross-layer entries of the Hessian (N = "
            f"{N:,}, {len(sizes)} parameter tensors)"
        )
    # with entry columns, the non-zero entries of those columns are the population of each epoch
    # (fewer than K there: all of them, see _nonzero_entries)
    return {"lanczos_steps": k, "extreme_steps": ek, "entries": K, "entry_columns": cols}


def _stored(out: Path, settings: dict, cfg: HessianConfig) -> dict | None:
    """The stored analysis settings and grid, checked against these (``None``: none stored)."""
    path = out / "config.json"
    if cfg.fresh or not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text())
        old = stored["settings"]
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"unreadable {str(path)!r} ({e!r}); pass --fresh to replace it") from None
    for key, value in settings.items():
        if old.get(key) != value:
            raise ConfigError(
                f"{str(out)!r} holds results computed with {key} = {old.get(key)!r}, not "
                f"{value!r}; use the same settings, or --fresh to replace them"
            )
    if cfg.grid_bound is not None and not math.isclose(cfg.grid_bound, stored["grid_bound"]):
        raise ConfigError(
            f"{str(out)!r} holds densities on the grid bound {stored['grid_bound']:g}, not "
            f"{cfg.grid_bound:g}; leave out --grid-bound, or --fresh to replace them"
        )
    return stored


def _clear(out: Path) -> None:
    for p in [*out.glob("epoch_*.npz"), out / "hessian.jsonl", out / "config.json"]:
        p.unlink(missing_ok=True)


def _write_epoch(out: Path, row: dict, arrays: dict) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, epoch=row["epoch"], row=json.dumps(io.to_jsonable(row)), **arrays)

    io.atomic_write(out / f"epoch_{row['epoch']:04d}.npz", write)
    path = out / "hessian.jsonl"
    old = io.read_jsonl(path) if path.is_file() else []
    merged = {r["epoch"]: r for r in old} | {row["epoch"]: io.to_jsonable(row)}
    io.write_jsonl(path, [merged[k] for k in sorted(merged)])
