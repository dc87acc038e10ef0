r"""The quadrature measure of SLQ: nodes and weights per start vector, and its densities.

Stochastic Lanczos quadrature (:mod:`~umwelt.nn.hessian.quadrature`) gives, for each of
:math:`n_v` start vectors, the Gauss nodes :math:`\theta^{(v)}_m` and weights
:math:`\tau^{(v)}_m` of one Lanczos run; averaged over the vectors they estimate the eigenvalue
density :math:`\rho(\lambda) = \frac1N \sum_i \delta(\lambda - \lambda_i)`. The raw nodes and
weights are kept (:class:`SLQResult`, savable as ``.npz``), so a density can be re-smoothed on
any grid and with any width without new products; the density is evaluated on a grid the
caller fixes (:func:`symmetric_grid`), so densities of different epochs are comparable point by
point:

.. math::
    \hat\rho(\lambda) = \frac{1}{n_v} \sum_{v} \sum_m \tau^{(v)}_m\,
    \mathcal N(\lambda;\, \theta^{(v)}_m, \sigma^2).

The measure's moments are those of :math:`H` (:meth:`SLQResult.moments`; the trace, Hutchinson's
:math:`\mathbb E[v^\top H v] = \mathrm{tr}\,H`, from the first ones), with the closed-form
standard errors of :mod:`~umwelt.nn.hessian.error_bars`. The density's band is
:math:`\hat\rho \pm z_{(1+\ell)/2}\,\mathrm{SE}` at level :math:`\ell` (the lower edge clipped
at 0). :func:`quadrature_resolution` says how finely ``k`` nodes can resolve the spectrum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from umwelt._checks import check_int
from umwelt.errors import ConfigError
from umwelt.nn.hessian.error_bars import _influence_se, _normal_quantile, error_bar_reason

__all__ = [
    "DensityBand",
    "SLQResult",
    "gaussian_density",
    "quadrature_resolution",
    "symmetric_grid",
]

_CHUNK_NUMBERS = 2**21  # kernel values (start vectors × nodes × grid points) held at once


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
    r"""A density on a grid with its standard errors and band over the start vectors.

    Attributes:
        grid: ``(G,)``.
        density: the SLQ estimate (mean over all start vectors), ``(G,)``.
        std: the standard error of each point, ``(G,)`` (:mod:`~umwelt.nn.hessian.error_bars`;
            ``NaN`` with fewer than :data:`~umwelt.nn.hessian.error_bars.MIN_ERROR_VECTORS`
            start vectors).
        lo, hi: :math:`\hat\rho \mp z_{(1+\ell)/2}\,\mathrm{SE}`, the lower edge clipped at 0,
            ``(G,)`` each.
        level: :math:`\ell`, e.g. 0.9.
        reason: why there are no error bars (``None`` when there are).
    """

    grid: np.ndarray
    density: np.ndarray
    std: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    level: float
    reason: str | None = None


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
        residuals: ``(n_v, k)`` the residual bound of each node
            (:meth:`~umwelt.nn.hessian.krylov.LanczosResult.ritz_residuals`; 0 for padding),
            or ``None`` (results saved before they were kept).
        point_masses: the first this many nodes of every row are exact eigenvalues of weight
            :math:`1/N`, the same in every row (deflated SLQ,
            :mod:`~umwelt.nn.hessian.deflation`): not random, so the standard errors are those
            of the rest, an SLQ in :math:`N - r` dimensions scaled by :math:`(N - r)/N`.
    """

    nodes: np.ndarray
    weights: np.ndarray
    n: int
    k: int
    dist: str
    reorth: str
    seed: int
    residuals: np.ndarray | None = None
    point_masses: int = 0

    @property
    def n_vectors(self) -> int:
        """Number of start vectors :math:`n_v`."""
        return self.nodes.shape[0]

    def pooled(self) -> tuple[np.ndarray, np.ndarray]:
        """All nodes and weights as one discrete measure, ``(n_v k,)`` each, weights sum to 1."""
        return self.nodes.reshape(-1), self.weights.reshape(-1) / self.n_vectors

    def extremes(self) -> tuple[float, float, float, float]:
        r"""``(lo, hi, lo_residual, hi_residual)``: the smallest and largest Ritz values over
        all start vectors and their residual bounds (some eigenvalue lies within the bound of
        each; ``NaN`` bounds when :attr:`residuals` is ``None``). ``(0, 0, 0, 0)`` when every
        weight is 0 (:math:`H = 0`)."""
        live = self.weights > 0
        if not live.any():
            return 0.0, 0.0, 0.0, 0.0
        nodes = np.where(live, self.nodes, np.nan)
        i_lo = np.unravel_index(np.nanargmin(nodes), nodes.shape)
        i_hi = np.unravel_index(np.nanargmax(nodes), nodes.shape)
        res = self.residuals
        r_lo = math.nan if res is None else float(res[i_lo])
        r_hi = math.nan if res is None else float(res[i_hi])
        return float(nodes[i_lo]), float(nodes[i_hi]), r_lo, r_hi

    def densities(self, grid: np.ndarray, sigma: float) -> np.ndarray:
        """Each start vector's smoothed density, ``(n_v, G)``."""
        return gaussian_density(self.nodes, self.weights, grid, sigma)

    def density(self, grid: np.ndarray, sigma: float) -> np.ndarray:
        r"""The SLQ density estimate :math:`\hat\rho` on ``grid``, ``(G,)``."""
        return self.densities(grid, sigma).mean(axis=0)

    def density_band(self, grid: np.ndarray, sigma: float, *, level: float = 0.9) -> DensityBand:
        r"""The density with closed-form error bars (:mod:`~umwelt.nn.hessian.error_bars`): at
        each grid point the influence function is the kernel
        :math:`\mathcal N(\lambda; \theta, \sigma^2)` itself.

        Raises:
            ConfigError: for ``level`` outside ``(0, 1)`` or a bad ``sigma``.
        """
        if not 0 < level < 1:
            raise ConfigError(f"the band level must be in (0, 1), got {level!r}")
        grid = np.asarray(grid, dtype=np.float64)
        rho = self.density(grid, sigma)
        se, _ = _chunked_se(
            self.weights,
            lambda sl: _kernel(grid[sl] - self.nodes[..., None], sigma),
            grid.size,
            self.n,
            self.dist,
            fixed=self.point_masses,
        )
        half = _normal_quantile((1 + level) / 2) * se
        return DensityBand(
            grid=grid,
            density=rho,
            std=se,
            lo=np.maximum(rho - half, 0.0),
            hi=rho + half,
            level=level,
            reason=error_bar_reason(self.n_vectors),
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
        :math:`v/\|v\|` is uniform on the sphere, also unbiased. The standard error is the
        closed form of :mod:`~umwelt.nn.hessian.error_bars` (influence :math:`N\lambda`; an upper
        bound with Rademacher vectors, ``NaN`` below
        :data:`~umwelt.nn.hessian.error_bars.MIN_ERROR_VECTORS` start vectors).
        """
        t = self.n * self.moments(1)
        se = _influence_se(
            self.weights, self.n * self.nodes, self.n, self.dist, fixed=self.point_masses
        )[0]
        return float(t.mean()), float(se)

    def save(self, path: str | Path) -> None:
        """Write the raw nodes and weights (and the settings) to an ``.npz`` file."""
        extra = {} if self.residuals is None else {"residuals": self.residuals}
        if self.point_masses:
            extra["point_masses"] = self.point_masses
        np.savez(
            path,
            nodes=self.nodes,
            weights=self.weights,
            n=self.n,
            k=self.k,
            dist=self.dist,
            reorth=self.reorth,
            seed=self.seed,
            **extra,
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
                residuals=z["residuals"] if "residuals" in z.files else None,
                point_masses=int(z["point_masses"]) if "point_masses" in z.files else 0,
            )


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


def _kernel(d: np.ndarray, sigma: float) -> np.ndarray:
    return np.exp(-0.5 * (d / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))


def _chunked_se(weights: np.ndarray, make_b, G: int, n: int, dist: str, **kw):
    """:func:`~umwelt.nn.hessian.error_bars._influence_se` of ``make_b(slice)`` ``(n_v, k, g)``
    over ``G`` grid points, a chunk of the grid at a time (at most :data:`_CHUNK_NUMBERS` kernel
    values held)."""
    step = max(1, _CHUNK_NUMBERS // max(1, weights.size))
    se, sig = np.empty(G), np.empty(G)
    for s in range(0, G, step):
        sl = slice(s, min(s + step, G))
        se[sl], sig[sl] = _influence_se(weights, make_b(sl), n, dist, **kw)
    return se, sig
