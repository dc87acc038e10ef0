r"""Stochastic Lanczos quadrature: the eigenvalue density, its error bars and a summary.

**Stochastic Lanczos quadrature** (SLQ; Lin, Saad & Yang 2016; Ghorbani et al. 2019) averages
the Gauss quadrature of one Lanczos run (:mod:`~umwelt.nn.hessian.krylov`) over :math:`n_v`
random start vectors :math:`v/\|v\|` (Rademacher or Gaussian): since
:math:`\mathbb E[q^\top g(H) q] = \frac1N \mathrm{tr}\, g(H)`, the averaged nodes and weights
estimate the eigenvalue density :math:`\rho(\lambda) = \frac1N \sum_i \delta(\lambda - \lambda_i)`.
The raw nodes and weights are kept (:class:`SLQResult`, savable as ``.npz``), so a density can
be re-smoothed on any grid and with any width without new products; the density is evaluated on
a grid the caller fixes (:func:`symmetric_grid`), so densities of different epochs are
comparable point by point:

.. math::
    \hat\rho(\lambda) = \frac{1}{n_v} \sum_{v} \sum_m \tau^{(v)}_m\,
    \mathcal N(\lambda;\, \theta^{(v)}_m, \sigma^2).

Error bars come from a bootstrap over the start vectors.

**Summary statistics** (:func:`spectral_summary`) say where the spectrum stands (THEORY.md §5):
negative mass, moment asymmetry :math:`\int\lambda^3\rho / (\int\lambda^2\rho)^{3/2}` and density
asymmetry :math:`\int|\rho(\lambda) - \rho(-\lambda)|\,d\lambda`, and the trace (Hutchinson:
:math:`\mathbb E[v^\top H v] = \mathrm{tr}\,H`, here from the quadrature's first moments).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from umwelt._checks import check_int
from umwelt.errors import ConfigError
from umwelt.nn.hessian.base import HessianOperator
from umwelt.nn.hessian.krylov import LanczosResult, _check_reorth, _check_steps, _lanczos_block
from umwelt.nn.hessian.vectors import _check_dist, random_vectors
from umwelt.seeds import index_seed

__all__ = [
    "BLOCK_STATE_BYTES",
    "DensityBand",
    "SLQResult",
    "gaussian_density",
    "quadrature_resolution",
    "slq",
    "spectral_summary",
    "symlog_coordinate",
    "symlog_density",
    "symmetric_grid",
]

BLOCK_STATE_BYTES = 256 * 2**20  # Lanczos state that slq's automatic block size stays within


def gaussian_density(
    nodes: np.ndarray, weights: np.ndarray, grid: np.ndarray, sigma: float
) -> np.ndarray:
    r""":math:`\sum_m \tau_m \mathcal N(\lambda; \theta_m, \sigma^2)` at each grid point.

    Args:
        nodes, weights: ``(..., m)`` (leading dimensions are kept; zero weights are padding).
        grid: ``(G,)`` points :math:`\lambda`.
        sigma: the Gaussian width, ``> 0``.

    Returns:
        ``(..., G)`` densities (each integrates to ``Σ τ`` over the real line).
    """
    if not (math.isfinite(sigma) and sigma > 0):
        raise ConfigError(f"the smoothing width sigma must be a finite number > 0, got {sigma!r}")
    nodes = np.asarray(nodes, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    grid = np.asarray(grid, dtype=np.float64)
    d = grid - nodes[..., None]  # (..., m, G)
    kern = np.exp(-0.5 * (d / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    return np.einsum("...m,...mg->...g", weights, kern)


def symmetric_grid(bound: float, n_points: int = 801, *, scale: str = "linear") -> np.ndarray:
    r"""A grid on :math:`[-b, b]`, symmetric about 0 and containing it, for densities.

    Fix it once (e.g. from the largest :math:`|\lambda|` at initialization times a margin) and
    use it for every epoch, so densities are comparable point by point.

    Args:
        bound: :math:`b > 0`.
        n_points: number of points; made odd (rounded up) so that 0 is on the grid.
        scale: ``"linear"`` (evenly spaced) or ``"symlog"`` (evenly spaced in
            :math:`\mathrm{sign}(\lambda)\log(1 + |\lambda|/c)` with :math:`c = 10^{-3} b`: finer
            near 0, for symmetric-log plots).

    Returns:
        ``(n_points,)`` float64 with ``grid[i] == -grid[-1 - i]`` exactly.

    >>> symmetric_grid(2.0, 5).tolist()
    [-2.0, -1.0, 0.0, 1.0, 2.0]
    """
    if not (math.isfinite(bound) and bound > 0):
        raise ConfigError(f"the grid bound must be a finite number > 0, got {bound!r}")
    n = check_int("the number of grid points", n_points, minimum=3)
    half = n // 2  # points on each side of 0
    if scale == "linear":
        pos = bound * np.arange(1, half + 1) / half
    elif scale == "symlog":
        c = 1e-3 * bound
        t = np.arange(1, half + 1) / half * math.log1p(bound / c)
        pos = c * np.expm1(t)
        pos[-1] = bound
    else:
        raise ConfigError(f"grid scale must be 'linear' or 'symlog', got {scale!r}")
    return np.concatenate([-pos[::-1], [0.0], pos])


@dataclass(frozen=True, eq=False)
class DensityBand:
    """A density on a grid with bootstrap error bars over the start vectors.

    Attributes:
        grid: ``(G,)``.
        density: the SLQ estimate (mean over all start vectors), ``(G,)``.
        std: bootstrap standard deviation, ``(G,)``.
        lo, hi: the ``level`` percentile band, ``(G,)`` each.
        level: e.g. 0.9 for the 5th–95th percentiles.
    """

    grid: np.ndarray
    density: np.ndarray
    std: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    level: float


@dataclass(frozen=True, eq=False)
class SLQResult:
    r"""Raw stochastic Lanczos quadrature: nodes and weights per start vector.

    Attributes:
        nodes: ``(n_v, k)`` Ritz values per start vector (a run that stopped early is padded
            with nodes 0 of weight 0).
        weights: ``(n_v, k)``; each row sums to 1.
        n: the dimension :math:`N`.
        k: Lanczos steps requested.
        dist: start-vector distribution.
        reorth: ``"full"`` or ``"none"``.
        seed: seed of the start vectors.
    """

    nodes: np.ndarray
    weights: np.ndarray
    n: int
    k: int
    dist: str
    reorth: str
    seed: int

    @property
    def n_vectors(self) -> int:
        """Number of start vectors :math:`n_v`."""
        return self.nodes.shape[0]

    def pooled(self) -> tuple[np.ndarray, np.ndarray]:
        """All nodes and weights as one discrete measure, ``(n_v k,)`` each, weights sum to 1."""
        return self.nodes.reshape(-1), self.weights.reshape(-1) / self.n_vectors

    def densities(self, grid: np.ndarray, sigma: float) -> np.ndarray:
        """Each start vector's smoothed density, ``(n_v, G)``."""
        return gaussian_density(self.nodes, self.weights, grid, sigma)

    def density(self, grid: np.ndarray, sigma: float) -> np.ndarray:
        r"""The SLQ density estimate :math:`\hat\rho` on ``grid``, ``(G,)``."""
        return self.densities(grid, sigma).mean(axis=0)

    def density_band(
        self,
        grid: np.ndarray,
        sigma: float,
        *,
        n_boot: int = 1000,
        level: float = 0.9,
        seed: int = 0,
    ) -> DensityBand:
        """The density with bootstrap error bars: resample the start vectors with replacement.

        Raises:
            ConfigError: for ``n_boot < 2`` or ``level`` outside ``(0, 1)``.
        """
        n_boot = check_int("the number of bootstrap resamples", n_boot, minimum=2)
        if not 0 < level < 1:
            raise ConfigError(f"the band level must be in (0, 1), got {level!r}")
        per = self.densities(grid, sigma)  # (n_v, G)
        boot = _bootstrap_means(per, n_boot, seed)  # (n_boot, G)
        a = (1 - level) / 2
        return DensityBand(
            grid=np.asarray(grid, dtype=np.float64),
            density=per.mean(axis=0),
            std=boot.std(axis=0, ddof=1),
            lo=np.quantile(boot, a, axis=0),
            hi=np.quantile(boot, 1 - a, axis=0),
            level=level,
        )

    def moments(self, p: int) -> np.ndarray:
        r"""Per start vector :math:`\sum_m \tau_m \theta_m^p \approx \frac1N \mathrm{tr} H^p`.

        Returns ``(n_v,)``.

        Exact in exact arithmetic for :math:`p \le 2k - 1` (Gauss quadrature).
        """
        return (self.weights * self.nodes**p).sum(axis=1)

    def trace(self) -> tuple[float, float]:
        r"""Hutchinson trace :math:`N \cdot \overline{q^\top H q}` and its standard error.

        For Rademacher vectors :math:`N q^\top H q = v^\top H v` exactly; for Gaussian ones
        :math:`v/\|v\|` is uniform on the sphere, also unbiased.
        """
        t = self.n * self.moments(1)
        se = t.std(ddof=1) / math.sqrt(len(t)) if len(t) > 1 else math.nan
        return float(t.mean()), float(se)

    def save(self, path: str | Path) -> None:
        """Write the raw nodes and weights (and the settings) to an ``.npz`` file."""
        np.savez(
            path,
            nodes=self.nodes,
            weights=self.weights,
            n=self.n,
            k=self.k,
            dist=self.dist,
            reorth=self.reorth,
            seed=self.seed,
        )

    @classmethod
    def load(cls, path: str | Path) -> SLQResult:
        """Read what :meth:`save` wrote."""
        with np.load(path) as z:
            return cls(
                nodes=z["nodes"],
                weights=z["weights"],
                n=int(z["n"]),
                k=int(z["k"]),
                dist=str(z["dist"]),
                reorth=str(z["reorth"]),
                seed=int(z["seed"]),
            )


def _bootstrap_means(per: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Means over rows of ``per`` ``(n_v, ...)`` for ``n_boot`` resamples of the rows."""
    rng = np.random.default_rng(seed)
    n_v = per.shape[0]
    idx = rng.integers(0, n_v, size=(n_boot, n_v))
    counts = np.zeros((n_boot, n_v))
    np.add.at(counts, (np.arange(n_boot)[:, None], idx), 1.0)
    return np.tensordot(counts / n_v, per, axes=(1, 0))  # (n_boot, ...)


def slq(
    op: HessianOperator,
    k: int,
    n_v: int,
    *,
    seed: int = 0,
    dist: str = "rademacher",
    reorth: str = "full",
    block: int | None = None,
) -> SLQResult:
    r"""Stochastic Lanczos quadrature: ``k`` Lanczos steps from each of ``n_v`` start vectors.

    Costs ``k · n_v`` Hessian-vector products, ``block`` start vectors advancing together (one
    :meth:`~umwelt.nn.hessian.base.HessianOperator.matmat` of ``block`` columns per step:
    faster for small models, ``block`` times the activation memory for large ones). The result
    does not depend on ``block``. Lanczos state: ``k × N × block`` numbers of the operator's
    dtype with full re-orthogonalization, ``3 × N × block`` without.

    Args:
        op: the operator.
        k: Lanczos steps per start vector, ``1 ≤ k ≤ N``.
        n_v: number of start vectors, ``≥ 1`` (``≥ 2`` for error bars).
        seed: seed of the start vectors (vector ``i`` from ``(seed, i)``).
        dist: ``"rademacher"`` or ``"gaussian"``.
        reorth: ``"full"`` or ``"none"``.
        block: start vectors run together; default: as many as keep the Lanczos state within
            :data:`BLOCK_STATE_BYTES` (256 MiB), at most 16 and at most ``n_v``.

    Returns:
        :class:`SLQResult` with the raw nodes and weights.

    Raises:
        ConfigError: for ``k`` outside ``[1, N]``, ``n_v < 1``, ``block < 1``, unknown
            ``dist`` or ``reorth``.
    """
    k = _check_steps(k, op.n)
    n_v = check_int("the number of start vectors n_v", n_v)
    full = _check_reorth(reorth)
    if block is None:
        per_vector = (k if full else 3) * op.n * torch.finfo(op.dtype).bits // 8
        block = max(1, min(16, n_v, BLOCK_STATE_BYTES // per_vector))
    block = check_int("the block size", block)
    _check_dist(dist)
    nodes = np.zeros((n_v, k))
    weights = np.zeros((n_v, k))
    for s in range(0, n_v, block):
        V0 = torch.stack(
            [
                random_vectors(
                    op.n, 1, seed=index_seed(seed, i, bits=32), dist=dist, dtype=op.dtype
                )[0]
                for i in range(s, min(s + block, n_v))
            ],
            dim=1,
        ).to(op.device)  # (N, b)
        for c, (a, b, _) in enumerate(_lanczos_block(op, V0, k, full)):
            th, tau = LanczosResult(alphas=a, betas=b, basis=None).ritz()
            nodes[s + c, : len(th)] = th
            weights[s + c, : len(th)] = tau
    return SLQResult(
        nodes=nodes, weights=weights, n=op.n, k=k, dist=dist, reorth=reorth, seed=int(seed)
    )


# -- summary statistics --------------------------------------------------------------------------


def _stats(
    nodes: np.ndarray,
    weights: np.ndarray,
    grid: np.ndarray,
    sigma: float,
    tol: float,
    resolution: float,
):
    """Per-vector statistics: negative mass, resolved negative and positive masses, m1, m2, m3
    (each ``(n_v,)``) and densities."""
    neg = (weights * (nodes < -tol)).sum(axis=1)
    neg_r = (weights * (nodes < -resolution)).sum(axis=1)
    pos_r = (weights * (nodes > resolution)).sum(axis=1)
    m = [(weights * nodes**p).sum(axis=1) for p in (1, 2, 3)]
    rho = gaussian_density(nodes, weights, grid, sigma)  # (n_v, G)
    rho_reflected = gaussian_density(-nodes, weights, grid, sigma)  # ρ(−λ) on the grid
    return neg, (neg_r, pos_r), m, rho, rho_reflected


def _asymmetries(m2: float, m3: float, rho: np.ndarray, rho_r: np.ndarray, grid: np.ndarray):
    moment = m3 / m2**1.5 if m2 > 0 else math.nan
    density = float(np.trapezoid(np.abs(rho - rho_r), grid))
    return moment, density


def spectral_summary(
    res: SLQResult,
    *,
    grid: np.ndarray,
    sigma: float,
    zero_tol: float = 1e-6,
    resolution: float = 0.0,
    n_boot: int = 200,
    seed: int = 0,
) -> dict[str, float]:
    r"""Where the spectrum stands, from an SLQ run, with bootstrap standard errors.

    * ``neg_mass`` — :math:`\int_{\lambda < -\epsilon} \rho`, the quadrature weight on nodes
      below :math:`-\epsilon`, :math:`\epsilon` = ``zero_tol`` × the largest :math:`|\theta|`
      (so round-off around a zero eigenvalue cluster is not counted as negative);
    * ``neg_share`` — the negative part of the *resolved* weight,
      :math:`\int_{\lambda < -\delta}\rho \,/\, \int_{|\lambda| > \delta}\rho` with
      :math:`\delta` = ``resolution`` (e.g. the quadrature's node spacing): 1/2 for a symmetric
      spectrum, 0 for a positive semi-definite one, and not inflated by a cluster of
      eigenvalues at 0 that ``k`` Lanczos steps smear into nodes of both signs (``NaN`` when no
      weight lies beyond :math:`\delta`);
    * ``asymmetry`` — :math:`\int\lambda^3\rho / (\int\lambda^2\rho)^{3/2}`, from the quadrature
      moments (exact moments of the SLQ measure, no smoothing; 0 for a symmetric spectrum);
    * ``density_asymmetry`` — :math:`\int |\rho(\lambda) - \rho(-\lambda)|\,d\lambda` of the
      smoothed density on ``grid`` (trapezoid; in :math:`[0, 2]`, 0 for a symmetric spectrum;
      mass beyond the grid is not counted);
    * ``trace`` — Hutchinson :math:`N\,\overline{q^\top H q}`;
      ``m2`` — :math:`\frac1N\mathrm{tr} H^2`;
    * ``ritz_min``, ``ritz_max`` — extreme nodes (inside the spectrum);
    * each with ``<name>_se``: the bootstrap standard deviation over start vectors.

    Raises:
        ConfigError: for a bad ``sigma``, ``resolution`` or ``n_boot``.
    """
    n_boot = check_int("the number of bootstrap resamples", n_boot, minimum=2)
    grid = np.asarray(grid, dtype=np.float64)
    nodes, weights = res.nodes, res.weights
    live = weights > 0
    tol = zero_tol * float(np.abs(nodes[live]).max()) if live.any() else 0.0
    if not (math.isfinite(resolution) and resolution >= 0):
        raise ConfigError(f"the resolution must be a finite number ≥ 0, got {resolution!r}")
    neg, (neg_r, pos_r), (m1, m2, m3), rho, rho_r = _stats(
        nodes, weights, grid, sigma, tol, resolution
    )

    def stat(sel_or_counts: np.ndarray) -> dict[str, float]:
        c = sel_or_counts  # (n_v,) weights of the start vectors
        M2, M3 = float(c @ m2), float(c @ m3)
        mom, den = _asymmetries(M2, M3, c @ rho, c @ rho_r, grid)
        resolved = float(c @ (neg_r + pos_r))
        return {
            "neg_mass": float(c @ neg),
            "neg_share": float(c @ neg_r) / resolved if resolved > 0 else math.nan,
            "asymmetry": mom,
            "density_asymmetry": den,
            "trace": res.n * float(c @ m1),
            "m2": M2,
        }

    n_v = res.n_vectors
    out = stat(np.full(n_v, 1.0 / n_v))
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        counts = np.bincount(rng.integers(0, n_v, n_v), minlength=n_v) / n_v
        boots.append(stat(counts))
    for key in list(out):
        vals = np.array([b[key] for b in boots])
        out[f"{key}_se"] = float(np.nanstd(vals, ddof=1)) if n_v > 1 else math.nan
    out["ritz_min"] = float(nodes[live].min()) if live.any() else 0.0
    out["ritz_max"] = float(nodes[live].max()) if live.any() else 0.0
    out["n_params"] = res.n
    out["n_vectors"] = n_v
    out["lanczos_steps"] = res.k
    return out


# -- densities on symmetric-log axes ---------------------------------------------------------------


def symlog_coordinate(lam: np.ndarray, c: float) -> np.ndarray:
    r""":math:`u = \mathrm{sign}(\lambda)\ln(1 + |\lambda|/c)`, the coordinate in which
    :func:`symmetric_grid` with ``scale="symlog"`` is even.

    >>> float(symlog_coordinate(np.array([-(np.e - 1)]), 1.0)[0])
    -1.0
    """
    lam = np.asarray(lam, dtype=np.float64)
    return np.sign(lam) * np.log1p(np.abs(lam) / c)


def quadrature_resolution(res: SLQResult) -> float:
    r"""The quadrature's resolution near 0, :math:`\delta = (\theta_{\max} - \theta_{\min})/k`.

    ``k`` Gauss nodes cannot place eigenvalues closer than about that, so finer smoothing near 0
    would draw the nodes' positions, not the spectrum. :math:`\delta = 0` when every start
    vector reached an invariant subspace (fewer than ``k`` live nodes): the nodes are then
    eigenvalues, exactly.
    """
    live = res.weights > 0
    exact = bool(np.all(live.sum(axis=1) < res.k))
    return 0.0 if exact or not live.any() else float(np.ptp(res.nodes[live])) / res.k


def symlog_density(
    res: SLQResult,
    grid: np.ndarray,
    *,
    c: float,
    sigma: float,
    resolution: float = 0.0,
    level: float = 0.9,
    n_boot: int = 200,
    seed: int = 0,
) -> tuple[DensityBand, dict[str, float], float]:
    r"""The SLQ density smoothed by a Gaussian of width :math:`\sigma_u` in the symmetric-log
    coordinate :math:`u_s = u_{c_s}` (:func:`symlog_coordinate`), as a density in
    :math:`\lambda` with its bootstrap band over the start vectors:

    .. math::
        \hat\rho(\lambda) = \frac{1}{c_s + |\lambda|}\,\frac{1}{n_v}\sum_v\sum_m
        \tau^{(v)}_m\,\mathcal N\big(u_s(\lambda);\, u_s(\theta^{(v)}_m),
        \sigma_u^2\big), \qquad c_s = \max\big(c,\ \delta/\sigma_u\big),

    a relative width :math:`\approx\sigma_u` far from 0 and an absolute width
    :math:`\sigma_u c_s` near it (:math:`\delta`: :func:`quadrature_resolution`).

    Args:
        res: the raw quadrature.
        grid: ``(G,)`` points in :math:`\lambda`.
        c: the grid's linear scale (a fraction of its bound).
        sigma: :math:`\sigma_u`.
        resolution: :math:`\delta`.
        level, n_boot, seed: the band's percentiles, and the bootstrap of the summary.

    Returns:
        ``(band, summary, c_s)``: the density and band in :math:`\lambda` on ``grid``;
        :func:`spectral_summary` in :math:`u` (its ``density_asymmetry`` is the symmetric-log
        one); the smoothing scale used.
    """
    import warnings

    c_s = max(c, resolution / sigma)
    res_u = dataclasses.replace(res, nodes=symlog_coordinate(res.nodes, c_s))
    u_grid = symlog_coordinate(grid, c_s)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        summary = spectral_summary(res_u, grid=u_grid, sigma=sigma, n_boot=n_boot, seed=seed)
    band = res_u.density_band(u_grid, sigma, level=level, seed=seed)
    jac = 1.0 / (c_s + np.abs(grid))  # du/dλ: densities in u → densities in λ
    in_lambda = DensityBand(
        grid=np.asarray(grid),
        density=band.density * jac,
        std=band.std * jac,
        lo=band.lo * jac,
        hi=band.hi * jac,
        level=band.level,
    )
    return in_lambda, summary, c_s
