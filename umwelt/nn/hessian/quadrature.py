r"""Stochastic Lanczos quadrature: the eigenvalue density, its error bars and a summary.

**Stochastic Lanczos quadrature** (SLQ; Lin, Saad & Yang 2016; Ghorbani et al. 2019) averages
the Gauss quadrature of one Lanczos run (:mod:`~umwelt.nn.hessian.krylov`) over :math:`n_v`
random start vectors :math:`q = v/\|v\|` (Rademacher or Gaussian): since
:math:`\mathbb E[q^\top g(H) q] = \frac1N \mathrm{tr}\, g(H)`, the averaged nodes and weights
estimate the eigenvalue density :math:`\rho(\lambda) = \frac1N \sum_i \delta(\lambda - \lambda_i)`.
The raw nodes and weights are kept (:class:`SLQResult`, savable as ``.npz``), so a density can
be re-smoothed on any grid and with any width without new products; the density is evaluated on
a grid the caller fixes (:func:`symmetric_grid`), so densities of different epochs are
comparable point by point:

.. math::
    \hat\rho(\lambda) = \frac{1}{n_v} \sum_{v} \sum_m \tau^{(v)}_m\,
    \mathcal N(\lambda;\, \theta^{(v)}_m, \sigma^2).

**Error bars in closed form.** A bootstrap over the start vectors under-covers: with 8 vectors
the z-scores of the second moment had a standard deviation of 1.5 against dense Hessians, and
with 2 vectors a reported error was 64 times too small, because one vector that happens to see
a dominant eigenvector inflates the estimate *and* its spread together. The error bars here use
the law of the start vectors instead. For :math:`q` uniform on the unit sphere (a normalized
Gaussian vector) and a spectral function :math:`B = b(H)`, the fourth moments
:math:`\mathbb E[q_i q_j q_k q_l] = (\delta_{ij}\delta_{kl} + \delta_{ik}\delta_{jl} +
\delta_{il}\delta_{jk}) / (N(N+2))` give

.. math::
    \mathrm{Var}\big[q^\top B q\big] = \frac{2\,(N\,\mathrm{tr}B^2 - (\mathrm{tr}B)^2)}{N^2(N+2)}
    = \frac{2}{N+2}\,\mathrm{Var}_\rho(b),

the variance of :math:`b` under the eigenvalue density itself. For Rademacher
:math:`q = v/\sqrt N` it is :math:`\frac{2}{N^2}\sum_{i\ne j} B_{ij}^2 = \frac2N
\mathrm{Var}_\rho(b) - \frac{2}{N^2}\sum_i (B_{ii} - \bar b)^2`: the same formula with
:math:`N` for :math:`N + 2` is an *upper bound*, tight when the diagonal of :math:`b(H)` is flat
(delocalized eigenvectors), loose when a coordinate is nearly an eigenvector (the weights of a
dead unit): Rademacher error bars are conservative, Gaussian ones exact in law.

Every reported quantity is a smooth function :math:`Q = \varphi(\mathbb E[q^\top f(H) q])` of
such quadratic forms (the trace: :math:`f = N\lambda`; the moment asymmetry:
:math:`\varphi = m_3/m_2^{3/2}`; a density point: a kernel), so to first order its estimate
errs by the mean over the start vectors of :math:`q^\top b(H) q - \mathbb E`, with the
*influence function* :math:`b = \nabla\varphi \cdot f` evaluated at the estimate (the delta
method). Hence

.. math::
    \hat\sigma^2 = \frac{a\,\hat V}{1 - a}, \qquad a = \frac{2}{(N+2)\,n_v}, \qquad
    \hat V = \hat\rho(\beta^2), \quad \beta = b - \hat\rho(b),

with :math:`\hat\rho` the pooled quadrature measure (exact for the polynomial :math:`b^2` of
the moments, degree :math:`\le 6 \le 2k - 1`); :math:`1/(1-a)` removes the bias
:math:`\mathbb E[\hat\rho(b^2) - \hat\rho(b)^2] = V - \sigma^2`. :math:`\hat V` is random with
the same weights as the estimate. Modelling :math:`N (u_i^\top q)^2` as independent
:math:`\chi^2_1`, :math:`\hat V \approx V \chi^2_\nu/\nu` with Satterthwaite's (1946)

.. math::
    \nu = n_v N\,\frac{\rho(\beta^2)^2}{\rho(\beta^4)} \in [n_v,\ n_v N],

and :math:`z = (\hat Q - Q)/\hat\sigma` has :math:`\mathbb E[z^2] \approx \nu/(\nu - 2)` (a
Student *t*; exactly :math:`n_v/(n_v - 2)` when one eigenvalue carries all of
:math:`\mathrm{Var}_\rho(b)`: then :math:`z = (X - 1)/\sqrt{2X/n_v}`, :math:`X = \chi^2_{n_v}/
n_v`). The reported standard error is :math:`\hat\sigma\sqrt{\hat\nu/(\hat\nu - 2)}` (the
estimate :math:`\hat\nu` clipped to :math:`[n_v, n_v N]`), so that :math:`\mathbb E[z^2]
\approx 1`. With 2 start vectors and one dominant direction :math:`\nu = 2` and
:math:`\mathbb E[z^2] = \infty`: no finite error bar is honest, and below
:data:`MIN_ERROR_VECTORS` = 3 start vectors every standard error is ``NaN`` (``None`` in JSON)
with the reason :func:`error_bar_reason`.

Two quantities need more than the delta method. ``neg_mass`` counts the weight below a step
:math:`x = -\epsilon`: with :math:`k < N` steps (and no early exit) a Gauss node near the step
carries weight of both sides, an error shared by all start vectors. For nodes
:math:`\theta_1 < \dots < \theta_k` with :math:`j` of them below :math:`x`, the
Chebyshev–Markov–Stieltjes inequalities (Golub & Meurant 2010, *Matrices, Moments and
Quadrature with Applications*) bracket the true weight below :math:`x` by
:math:`[\sum_{m<j}\tau_m,\ \sum_{m\le j+1}\tau_m]`; the estimate is the midpoint of each
vector's bracket, and half its width (averaged over the vectors) is added to the standard error
in quadrature. That is a bound, not a standard deviation: with :math:`k < N` and weight near 0
the ``neg_mass`` error bar is conservative (``neg_share``, whose steps sit at the resolution, is
the resolved statistic). ``density_asymmetry`` integrates :math:`|\bar D(u)|` of the noisy
difference :math:`D = \rho(u) - \rho(-u)`; where :math:`\bar D \approx \mathcal N(D, s^2)`,
:math:`\mathbb E|\bar D| = |D| + s\,g(|D|/s)` with :math:`g(t) = 2\phi(t) - 2t\,\Phi(-t)`, so
the plain integral is biased upwards by the noise (by :math:`0.80\,s` per point of an exactly
symmetric spectrum). The reported value subtracts :math:`s\,g(|\bar D|/s)` point by point
(``density_asymmetry_bias``: what was subtracted), with :math:`s` the closed form; what remains
is a bias of at most :math:`+0.48\,s` at :math:`D = 0` and within :math:`\pm 0.1\,s` for
:math:`|D| \ge s/2`. No estimator removes it at 0: the mean of any estimator is an analytic
(even) function of :math:`D`, and :math:`|D|` is not.

The density's band is :math:`\hat\rho \pm z_{(1+\ell)/2}\,\mathrm{SE}` at level :math:`\ell`
(the lower edge clipped at 0).

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
    "BLOCK_STATE_SHARE",
    "block_state_bytes",
    "MIN_ERROR_VECTORS",
    "DensityBand",
    "SLQResult",
    "error_bar_reason",
    "gaussian_density",
    "quadrature_resolution",
    "slq",
    "spectral_summary",
    "symlog_coordinate",
    "symlog_density",
    "symmetric_grid",
]

BLOCK_STATE_BYTES = 256 * 2**20  # Lanczos state slq's automatic block size may always take
BLOCK_STATE_SHARE = 0.25  # and up to this share of the memory available (umwelt.memory)
MIN_ERROR_VECTORS = 3  # fewer start vectors: no honest error bar (module docstring)
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
        std: the standard error of each point, ``(G,)`` (module docstring; ``NaN`` with fewer
            than :data:`MIN_ERROR_VECTORS` start vectors).
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
        r"""The density with closed-form error bars (module docstring): at each grid point the
        influence function is the kernel :math:`\mathcal N(\lambda; \theta, \sigma^2)` itself.

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
        closed form of the module docstring (influence :math:`N\lambda`; an upper bound with
        Rademacher vectors, ``NaN`` below :data:`MIN_ERROR_VECTORS` start vectors).
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


def error_bar_reason(n_v: int) -> str | None:
    """Why ``n_v`` start vectors give no error bars (``None``: they do).

    >>> error_bar_reason(8) is None
    True
    """
    if n_v >= MIN_ERROR_VECTORS:
        return None
    return (
        f"{n_v} start vector{'s' if n_v != 1 else ''}: below {MIN_ERROR_VECTORS} no standard "
        "error is honest (when one eigen-direction dominates, the z-score of a mean over 2 "
        "vectors has infinite variance)"
    )


def _normal_quantile(p: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(p))


def _kernel(d: np.ndarray, sigma: float) -> np.ndarray:
    return np.exp(-0.5 * (d / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))


def _influence_se(
    weights: np.ndarray,
    b: np.ndarray,
    n: int,
    dist: str,
    *,
    widen: bool = True,
    fixed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Standard error of :math:`\frac{1}{n_v}\sum_v \sum_m \tau^{(v)}_m b(\theta^{(v)}_m)` in
    closed form (module docstring): ``(se, sigma)``, ``sigma`` without Satterthwaite's widening.
    ``fixed`` = :math:`r`: the first ``r`` nodes of each row are the same exact point masses of
    weight :math:`1/n` (:attr:`SLQResult.point_masses`); the error is that of the rest, an SLQ
    in :math:`n - r` dimensions with weights :math:`\tau n/(n - r)`, times :math:`(n - r)/n`.

    Args:
        weights: ``(n_v, k)``.
        b: the influence function at the nodes, ``(n_v, k)`` or ``(n_v, k, G)``.
        n: the dimension :math:`N`.
        dist: ``"gaussian"`` (exact in law) or ``"rademacher"`` (an upper bound).
        widen: multiply by :math:`\sqrt{\hat\nu/(\hat\nu - 2)}` (``NaN`` below
            :data:`MIN_ERROR_VECTORS` start vectors).

    Returns:
        ``(b.shape[2:])`` each (a 0-d array for ``(n_v, k)``).
    """
    if fixed:
        scale = (n - fixed) / n
        rest = weights[:, fixed:] / scale, b[:, fixed:], n - fixed, dist
        se, sigma = _influence_se(*rest, widen=widen)
        return se * scale, sigma * scale
    n_v = weights.shape[0]
    w = weights.reshape(weights.shape + (1,) * (b.ndim - 2)) / n_v
    beta2 = (b - (w * b).sum(axis=(0, 1))) ** 2
    v2 = (w * beta2).sum(axis=(0, 1))
    v4 = (w * beta2 * beta2).sum(axis=(0, 1))
    a = (2.0 / (n + 2) if dist == "gaussian" else 2.0 / n) / n_v
    sigma = np.sqrt(a * v2 / (1 - a))
    if not widen:
        return sigma, sigma
    if n_v < MIN_ERROR_VECTORS:
        return np.full_like(sigma, math.nan), sigma
    ratio = np.divide(v2**2, v4, out=np.ones_like(v2), where=v4 > 0)
    nu = np.clip(n_v * n * ratio, n_v, n_v * n)
    return sigma * np.sqrt(nu / (nu - 2)), sigma


def _chunked_se(weights: np.ndarray, make_b, G: int, n: int, dist: str, **kw):
    """:func:`_influence_se` of ``make_b(slice)`` ``(n_v, k, g)`` over ``G`` grid points, a
    chunk of the grid at a time (at most :data:`_CHUNK_NUMBERS` kernel values held)."""
    step = max(1, _CHUNK_NUMBERS // max(1, weights.size))
    se, sig = np.empty(G), np.empty(G)
    for s in range(0, G, step):
        sl = slice(s, min(s + step, G))
        se[sl], sig[sl] = _influence_se(weights, make_b(sl), n, dist, **kw)
    return se, sig


def _trapezoid_weights(grid: np.ndarray) -> np.ndarray:
    """``w`` with ``w @ f == np.trapezoid(f, grid)``."""
    w = np.zeros_like(grid)
    d = np.diff(grid)
    w[:-1] += d / 2
    w[1:] += d / 2
    return w


def _step_bracket(nodes: np.ndarray, weights: np.ndarray, x: float, exact: np.ndarray):
    r"""Each vector's weight below ``x``: the midpoint of its Chebyshev–Markov–Stieltjes
    bracket and the bracket's half-width, ``(n_v,)`` each.

    For Gauss nodes :math:`\theta_1 < \dots < \theta_k` with :math:`j` of them below :math:`x`,
    the true :math:`F(x) \in [\sum_{m < j} \tau_m,\ \sum_{m \le j+1} \tau_m]`; a vector whose
    quadrature is exact (``exact``: an invariant Krylov space or :math:`k = N`) has width 0 and
    its plain count.
    """
    n_v, k = nodes.shape
    order = np.argsort(nodes, axis=1)
    th = np.take_along_axis(nodes, order, axis=1)
    tw = np.take_along_axis(weights, order, axis=1)
    cum = np.concatenate([np.zeros((n_v, 1)), np.cumsum(tw, axis=1)], axis=1)  # (n_v, k + 1)
    j = (th < x).sum(axis=1)
    rows = np.arange(n_v)
    lo, up = cum[rows, np.maximum(j - 1, 0)], cum[rows, np.minimum(j + 1, k)]
    plain = cum[rows, j]
    mid = np.where(exact, plain, (lo + up) / 2)
    half = np.where(exact, 0.0, (up - lo) / 2)
    return mid, half


def _fold_bias(d: np.ndarray, s: np.ndarray) -> np.ndarray:
    r""":math:`s\,g(|d|/s)`, :math:`g(t) = 2\phi(t) - 2t\Phi(-t)`: the first-order excess of
    :math:`\mathbb E|\bar D|` over :math:`|D|` for :math:`\bar D \sim \mathcal N(D, s^2)`, at the
    estimate (0 where ``s == 0``)."""
    from scipy.stats import norm

    t = np.divide(np.abs(d), s, out=np.full_like(d, np.inf), where=s > 0)
    g = 2 * norm.pdf(t) - 2 * np.where(np.isfinite(t), t, 0.0) * norm.cdf(-t)
    return np.where(s > 0, s * g, 0.0)


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
            :func:`block_state_bytes` (:data:`BLOCK_STATE_SHARE` of the memory available, at
            least :data:`BLOCK_STATE_BYTES`), at most 16 and at most ``n_v``.

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
        block = max(1, min(16, n_v, block_state_bytes() // per_vector))
    block = check_int("the block size", block)
    _check_dist(dist)
    nodes = np.zeros((n_v, k))
    weights = np.zeros((n_v, k))
    residuals = np.zeros((n_v, k))
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
        for c, (a, b, _, last) in enumerate(_lanczos_block(op, V0, k, full)):
            run = LanczosResult(alphas=a, betas=b, basis=None, last_beta=last)
            th, tau = run.ritz()
            nodes[s + c, : len(th)] = th
            weights[s + c, : len(th)] = tau
            residuals[s + c, : len(th)] = run.ritz_residuals()
    return SLQResult(
        nodes=nodes,
        weights=weights,
        n=op.n,
        k=k,
        dist=dist,
        reorth=reorth,
        seed=int(seed),
        residuals=residuals,
    )


def block_state_bytes() -> int:
    """The Lanczos state :func:`slq` lets its start vectors take together by default:
    :data:`BLOCK_STATE_SHARE` of the memory available (:func:`umwelt.memory.available_bytes`),
    at least :data:`BLOCK_STATE_BYTES` (also when the available memory is unknown)."""
    from umwelt.memory import available_bytes

    room = available_bytes()
    return max(BLOCK_STATE_BYTES, int(BLOCK_STATE_SHARE * room) if room else 0)


# -- summary statistics --------------------------------------------------------------------------


def _density_asymmetry(res: SLQResult, grid: np.ndarray, sigma: float):
    r""":math:`\int |\bar D|` less its noise excess (module docstring), the excess, the SE.

    :math:`D(x) = \rho(x) - \rho(-x)` on ``grid``; per node the influence of
    :math:`\int|\bar D|` is :math:`\int \mathrm{sign}(\bar D(x))\,[K(x - \theta) -
    K(x + \theta)]\,dx`. The pointwise noise :math:`s(x)` is the closed form (with Rademacher
    vectors the smaller of its bound and the sample variance over the vectors, so that identical
    quadratures, e.g. of a diagonal :math:`H`, are not corrected).
    """
    nodes, weights, n_v = res.nodes, res.weights, res.n_vectors
    tw = _trapezoid_weights(grid)
    total = excess = 0.0
    b = np.zeros_like(nodes)  # (n_v, k) the influence of each node
    step = max(1, _CHUNK_NUMBERS // max(1, nodes.size))
    for a in range(0, grid.size, step):  # D at x needs the kernels at x only: one pass
        x = grid[a : a + step]
        dk = _kernel(x - nodes[..., None], sigma) - _kernel(x + nodes[..., None], sigma)
        per = np.einsum("vm,vmg->vg", weights, dk)  # (n_v, g) each vector's D
        D = per.mean(axis=0)
        _, s = _influence_se(weights, dk, res.n, res.dist, widen=False, fixed=res.point_masses)
        if res.dist != "gaussian" and n_v > 1:
            s = np.minimum(s, per.std(axis=0, ddof=1) / math.sqrt(n_v))
        e = _fold_bias(D, s)
        w = tw[a : a + step]
        total += float(w @ (np.abs(D) - e))
        excess += float(w @ e)
        b += dk @ (w * np.sign(D))
    se = _influence_se(weights, b, res.n, res.dist, fixed=res.point_masses)[0]
    return total, excess, float(se)


def spectral_summary(
    res: SLQResult,
    *,
    grid: np.ndarray,
    sigma: float,
    zero_tol: float = 1e-6,
    resolution: float = 0.0,
) -> dict[str, float | str | None]:
    r"""Where the spectrum stands, from an SLQ run, with closed-form standard errors.

    * ``neg_mass`` — :math:`\int_{\lambda < -\epsilon} \rho`, the quadrature weight on nodes
      below :math:`-\epsilon`, :math:`\epsilon` = ``zero_tol`` × the largest :math:`|\theta|`
      (so round-off around a zero eigenvalue cluster is not counted as negative); with
      :math:`k < N` the midpoint of each vector's Chebyshev–Markov–Stieltjes bracket, whose
      half-width enters the standard error (module docstring);
    * ``neg_share`` — the negative part of the *resolved* weight,
      :math:`\int_{\lambda < -\delta}\rho \,/\, \int_{|\lambda| > \delta}\rho` with
      :math:`\delta` = max(``resolution``, :math:`\epsilon`) (``resolution``: e.g. the
      quadrature's node spacing): 1/2 for a symmetric spectrum, 0 for a positive
      semi-definite one, and not inflated by a cluster of eigenvalues at 0 that ``k`` Lanczos
      steps smear into nodes of both signs (``NaN`` when no weight lies beyond :math:`\delta`);
    * ``asymmetry`` — :math:`\int\lambda^3\rho / (\int\lambda^2\rho)^{3/2}`, from the quadrature
      moments (exact moments of the SLQ measure, no smoothing; 0 for a symmetric spectrum);
    * ``density_asymmetry`` — :math:`\int |\rho(\lambda) - \rho(-\lambda)|\,d\lambda` of the
      smoothed density on ``grid`` (trapezoid; 0 for a symmetric spectrum; mass beyond the
      grid is not counted), less its noise excess ``density_asymmetry_bias`` (module
      docstring; so it may be slightly negative for a symmetric spectrum);
    * ``trace`` — Hutchinson :math:`N\,\overline{q^\top H q}`;
      ``m2`` — :math:`\frac1N\mathrm{tr} H^2`;
    * ``ritz_min``, ``ritz_max`` — extreme nodes (inside the spectrum);
    * each of the first six with ``<name>_se``, its standard error (module docstring; an upper
      bound with Rademacher start vectors), ``NaN`` below :data:`MIN_ERROR_VECTORS` start
      vectors with ``se_reason`` saying so (``None`` otherwise).

    Raises:
        ConfigError: for a bad ``sigma`` or ``resolution``.
    """
    grid = np.asarray(grid, dtype=np.float64)
    if not (math.isfinite(resolution) and resolution >= 0):
        raise ConfigError(f"the resolution must be a finite number ≥ 0, got {resolution!r}")
    if not (math.isfinite(sigma) and sigma > 0):
        raise ConfigError(f"the smoothing width sigma must be a finite number > 0, got {sigma!r}")
    nodes, weights, N, n_v = res.nodes, res.weights, res.n, res.n_vectors
    live = weights > 0
    tol = zero_tol * float(np.abs(nodes[live]).max()) if live.any() else 0.0

    def mean(f: np.ndarray) -> float:  # the pooled quadrature of f(θ)
        return float((weights * f).sum() / n_v)

    def se(b: np.ndarray) -> float:
        return float(_influence_se(weights, b, N, res.dist, fixed=res.point_masses)[0])

    out: dict[str, float | str | None] = {}
    exact = (live.sum(axis=1) < res.k) | (res.k >= N)  # invariant Krylov space or k = N
    below, half = _step_bracket(nodes, weights, -tol, exact)
    out["neg_mass"] = float(below.mean())
    out["neg_mass_se"] = math.hypot(se((nodes < -tol).astype(float)), float(half.mean()))
    d = max(resolution, tol)
    neg, pos = (nodes < -d).astype(float), (nodes > d).astype(float)
    Nn, Pp = mean(neg), mean(pos)
    if Nn + Pp > 0:
        out["neg_share"] = Nn / (Nn + Pp)
        out["neg_share_se"] = se((neg * Pp - pos * Nn) / (Nn + Pp) ** 2)
    else:
        out["neg_share"] = out["neg_share_se"] = math.nan
    M2, M3 = mean(nodes**2), mean(nodes**3)
    if M2 > 0:
        out["asymmetry"] = M3 / M2**1.5
        out["asymmetry_se"] = se(nodes**3 / M2**1.5 - 1.5 * M3 / M2**2.5 * nodes**2)
    else:
        out["asymmetry"] = out["asymmetry_se"] = math.nan
    da, excess, da_se = _density_asymmetry(res, grid, sigma)
    out |= {"density_asymmetry": da, "density_asymmetry_se": da_se}
    out["density_asymmetry_bias"] = excess
    out["trace"], out["trace_se"] = res.trace()
    out["m2"], out["m2_se"] = M2, se(nodes**2)
    out["se_reason"] = error_bar_reason(n_v)
    out["ritz_min"] = float(nodes[live].min()) if live.any() else 0.0
    out["ritz_max"] = float(nodes[live].max()) if live.any() else 0.0
    out["n_params"] = N
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
) -> tuple[DensityBand, dict[str, float | str | None], float]:
    r"""The SLQ density smoothed by a Gaussian of width :math:`\sigma_u` in the symmetric-log
    coordinate :math:`u_s = u_{c_s}` (:func:`symlog_coordinate`), as a density in
    :math:`\lambda` with its closed-form band over the start vectors:

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
        level: the band's level (:meth:`SLQResult.density_band`).

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
        summary = spectral_summary(res_u, grid=u_grid, sigma=sigma)
    band = res_u.density_band(u_grid, sigma, level=level)
    jac = 1.0 / (c_s + np.abs(grid))  # du/dλ: densities in u → densities in λ
    in_lambda = dataclasses.replace(
        band,
        grid=np.asarray(grid),
        density=band.density * jac,
        std=band.std * jac,
        lo=band.lo * jac,
        hi=band.hi * jac,
    )
    return in_lambda, summary, c_s
