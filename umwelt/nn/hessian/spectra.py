r"""Hessian spectra: Lanczos, stochastic Lanczos quadrature, extremes and summary statistics.

**Lanczos** (``k`` steps from a unit start vector :math:`q_1`) builds the tridiagonal
:math:`T_k = Q_k^\top H Q_k` with diagonal :math:`\alpha` and off-diagonal :math:`\beta`.
Its eigenvalues (Ritz values) :math:`\theta_m` and the squared first components
:math:`\tau_m = (s_m)_1^2` of its eigenvectors are the nodes and weights of the ``k``-point
Gauss quadrature of the spectral measure of :math:`H` seen from :math:`q_1`:

.. math::
    q_1^\top g(H)\, q_1 \approx \sum_{m=1}^{k} \tau_m\, g(\theta_m).

**Stochastic Lanczos quadrature** (SLQ; Lin, Saad & Yang 2016; Ghorbani et al. 2019) averages
this over :math:`n_v` random start vectors :math:`v/\|v\|` (Rademacher or Gaussian): since
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

**Re-orthogonalization and memory.** ``reorth="full"`` keeps the ``k`` Lanczos vectors
(``k × N`` numbers of the operator's dtype, e.g. 80 × 10⁷ float32 = 3.2 GB) and orthogonalizes
each new vector against all of them twice (classical Gram–Schmidt, "twice is enough"): Ritz
values are those of exact arithmetic. ``reorth="none"`` keeps three vectors (``3 × N``): the
Ritz values lose orthogonality and duplicate ("ghost" eigenvalues), which moves weight between
copies of a node but leaves the quadrature of low-degree moments, hence the smoothed density,
accurate (Ghorbani et al. 2019, section 3).

**Summary statistics** (:func:`spectral_summary`) say where the spectrum stands (THEORY.md §5):
negative mass, moment asymmetry :math:`\int\lambda^3\rho / (\int\lambda^2\rho)^{3/2}` and density
asymmetry :math:`\int|\rho(\lambda) - \rho(-\lambda)|\,d\lambda`, the trace (Hutchinson:
:math:`\mathbb E[v^\top H v] = \mathrm{tr}\,H`), and the fraction of examples whose hinge is
active (:func:`active_hinge_fraction`). Extremes come from SciPy's ``eigsh`` on
:meth:`~umwelt.nn.hessian.operator.HessianOperator.to_scipy` (:func:`eigsh_extremes`) or from
the extreme Ritz values of one long Lanczos run (:func:`lanczos_extremes`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.linalg import eigh_tridiagonal
from scipy.sparse.linalg import eigsh

from umwelt.errors import ConfigError, ShapeError
from umwelt.nn.hessian.operator import HessianOperator, ModelHessian

__all__ = [
    "BLOCK_STATE_BYTES",
    "DISTRIBUTIONS",
    "DensityBand",
    "LanczosResult",
    "SLQResult",
    "active_hinge_fraction",
    "eigsh_extremes",
    "gaussian_density",
    "hutchinson_trace",
    "lanczos",
    "lanczos_extremes",
    "random_vectors",
    "slq",
    "spectral_summary",
    "symmetric_grid",
]

DISTRIBUTIONS: tuple[str, ...] = ("rademacher", "gaussian")
BLOCK_STATE_BYTES = 256 * 2**20  # Lanczos state that slq's automatic block size stays within
_REORTH: tuple[str, ...] = ("full", "none")


def _check_int(value: int, what: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ConfigError(f"{what} must be an integer ≥ {low}, got {value!r}")
    return int(value)


def _check_dist(dist: str) -> str:
    if dist not in DISTRIBUTIONS:
        raise ConfigError(f"start vectors must be one of {', '.join(DISTRIBUTIONS)}, got {dist!r}")
    return dist


def random_vectors(
    n: int,
    count: int,
    *,
    seed: int,
    dist: str = "rademacher",
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """``count`` random vectors of length ``n``, ``(count, n)``: Rademacher (±1) or Gaussian.

    Drawn on the CPU from a :class:`torch.Generator` seeded with ``seed`` and then moved, so a
    seed gives the same vectors on every device.
    """
    _check_dist(dist)
    gen = torch.Generator().manual_seed(int(seed))
    if dist == "rademacher":
        v = torch.randint(0, 2, (count, n), generator=gen, dtype=torch.int8).to(dtype) * 2 - 1
    else:
        v = torch.randn(count, n, generator=gen, dtype=torch.float64).to(dtype)
    return v.to(device)  # (count, n)


# -- Lanczos -------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LanczosResult:
    r"""The outcome of :func:`lanczos`.

    Attributes:
        alphas: diagonal of :math:`T`, ``(m,)`` float64, ``m ≤ k`` steps taken (fewer when an
            invariant subspace was found: :math:`\beta_j` below the tolerance).
        betas: off-diagonal of :math:`T`, ``(m - 1,)`` float64.
        basis: the Lanczos vectors ``(m, N)`` (``reorth="full"`` only, else ``None``).
    """

    alphas: np.ndarray
    betas: np.ndarray
    basis: torch.Tensor | None

    @property
    def steps(self) -> int:
        """Number of steps taken, ``m``."""
        return len(self.alphas)

    def tridiagonal(self) -> np.ndarray:
        """:math:`T` as a dense ``(m, m)`` array."""
        return np.diag(self.alphas) + np.diag(self.betas, 1) + np.diag(self.betas, -1)

    def ritz(self) -> tuple[np.ndarray, np.ndarray]:
        r"""Gauss quadrature nodes (Ritz values, ascending) and weights (sum 1), ``(m,)`` each."""
        if self.steps == 1:
            return self.alphas.copy(), np.ones(1)
        nodes, vecs = eigh_tridiagonal(self.alphas, self.betas)
        return nodes, vecs[0] ** 2


def _unit_start(op: HessianOperator, V0: torch.Tensor) -> torch.Tensor:
    norms = torch.linalg.vector_norm(V0, dim=0)  # (b,)
    if not bool((norms > 0).all()):
        raise ShapeError("a start vector has zero norm")
    return V0 / norms


def _lanczos_block(op: HessianOperator, V0: torch.Tensor, k: int, full: bool):
    """Independent Lanczos recurrences from the ``b`` columns of ``V0`` ``(N, b)``, in step.

    One :meth:`~HessianOperator.matmat` of ``b`` columns per step. A column that reaches an
    invariant subspace stops (its vector is zeroed from then on). Returns
    ``[(alphas, betas, basis | None), ...]`` per column.
    """
    N, b = V0.shape
    q = _unit_start(op, V0)  # (N, b)
    eps = torch.finfo(op.dtype).eps
    Q = torch.empty((k, N, b), dtype=op.dtype, device=op.device) if full else None
    alphas = np.zeros((k, b))
    betas = np.zeros((max(k - 1, 0), b))
    steps = np.full(b, k)
    active = np.ones(b, dtype=bool)
    scale = np.zeros(b)
    q_prev = torch.zeros_like(q)
    beta = torch.zeros(b, dtype=op.dtype, device=op.device)
    for j in range(k):
        if full:
            Q[j] = q
        w = op.matmat(q) - beta * q_prev  # (N, b)
        alpha = (w * q).sum(dim=0)  # (b,)
        w = w - alpha * q
        if full:
            for _ in range(2):  # classical Gram–Schmidt against the basis, twice
                B = Q[: j + 1]  # (j+1, N, b)
                w = w - torch.einsum("jnb,jb->nb", B, torch.einsum("jnb,nb->jb", B, w))
        alphas[j] = alpha.double().cpu().numpy()
        if j == k - 1:
            break
        beta_new = torch.linalg.vector_norm(w, dim=0)  # (b,)
        bn = beta_new.double().cpu().numpy()
        scale = np.maximum(scale, np.abs(alphas[j]) + bn)
        stop = active & (bn <= 10 * eps * math.sqrt(N) * scale)
        steps[stop] = j + 1
        active &= ~stop
        if not active.any():
            break
        betas[j] = bn
        keep = torch.as_tensor(active, device=op.device).to(op.dtype)  # (b,)
        q_prev, q = q, w / torch.where(beta_new > 0, beta_new, 1.0) * keep
        beta = beta_new * keep
    out = []
    for c in range(b):
        m = int(steps[c])
        basis = Q[:m, :, c] if full else None
        out.append((alphas[:m, c].copy(), betas[: m - 1, c].copy(), basis))
    return out


def _check_steps(k: int, n: int) -> int:
    k = _check_int(k, "the number of Lanczos steps k")
    if k > n:
        raise ConfigError(f"Lanczos steps k = {k} exceed the dimension N = {n}")
    return k


def _check_reorth(reorth: str) -> bool:
    if reorth not in _REORTH:
        raise ConfigError(f"reorth must be one of {', '.join(_REORTH)}, got {reorth!r}")
    return reorth == "full"


def lanczos(
    op: HessianOperator,
    k: int,
    *,
    v0: torch.Tensor | np.ndarray | None = None,
    seed: int = 0,
    dist: str = "rademacher",
    reorth: str = "full",
) -> LanczosResult:
    r"""``k`` Lanczos steps on ``op`` from ``v0`` (or a seeded random vector), normalized.

    Args:
        op: the symmetric operator.
        k: number of steps, ``1 ≤ k ≤ N``.
        v0: start vector ``(N,)``; default: one vector of ``dist`` from ``seed``.
        seed: seed of the default start vector.
        dist: ``"rademacher"`` or ``"gaussian"`` (default start vector only).
        reorth: ``"full"`` (keep the ``k × N`` basis, orthogonalize twice against it) or
            ``"none"`` (keep 3 vectors of ``N``); see the module docstring.

    Returns:
        :class:`LanczosResult`; stops early (fewer than ``k`` steps) at an invariant subspace:
        :math:`\beta_j \le 10\,\varepsilon\,\sqrt N \max_i(|\alpha_i| + \beta_i)` (exactly 0 for
        :math:`H = 0`).

    Raises:
        ConfigError: for ``k`` outside ``[1, N]``, an unknown ``reorth`` or ``dist``.
        ShapeError: for a start vector of the wrong shape or zero norm.

    >>> from umwelt.nn.hessian.operator import MatrixOperator
    >>> op = MatrixOperator(torch.diag(torch.tensor([-1.0, 0.5, 2.0], dtype=torch.float64)))
    >>> nodes, weights = lanczos(op, 3).ritz()
    >>> [round(x, 12) for x in nodes.tolist()]
    [-1.0, 0.5, 2.0]
    """
    N = op.n
    k = _check_steps(k, N)
    full = _check_reorth(reorth)
    if v0 is None:
        q = random_vectors(N, 1, seed=seed, dist=dist, dtype=op.dtype, device=op.device)[0]
    else:
        q = torch.as_tensor(np.asarray(v0) if not isinstance(v0, torch.Tensor) else v0)
        if q.shape != (N,):
            raise ShapeError(f"the start vector must have shape ({N},), got {tuple(q.shape)}")
        q = q.to(device=op.device, dtype=op.dtype)
    ((a, b, basis),) = _lanczos_block(op, q[:, None], k, full)
    return LanczosResult(alphas=a, betas=b, basis=basis)


# -- stochastic Lanczos quadrature ---------------------------------------------------------------


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
    n = _check_int(n_points, "the number of grid points", low=3)
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
        n_boot = _check_int(n_boot, "the number of bootstrap resamples", low=2)
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
    :meth:`~umwelt.nn.hessian.operator.HessianOperator.matmat` of ``block`` columns per step:
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
    n_v = _check_int(n_v, "the number of start vectors n_v")
    full = _check_reorth(reorth)
    if block is None:
        per_vector = (k if full else 3) * op.n * torch.finfo(op.dtype).bits // 8
        block = max(1, min(16, n_v, BLOCK_STATE_BYTES // per_vector))
    block = _check_int(block, "the block size")
    _check_dist(dist)
    nodes = np.zeros((n_v, k))
    weights = np.zeros((n_v, k))
    for s in range(0, n_v, block):
        V0 = torch.stack(
            [
                random_vectors(op.n, 1, seed=_vector_seed(seed, i), dist=dist, dtype=op.dtype)[0]
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


def _vector_seed(seed: int, i: int) -> int:
    return int(np.random.SeedSequence((int(seed), i)).generate_state(1)[0])


def hutchinson_trace(
    op: HessianOperator, n_v: int, *, seed: int = 0, dist: str = "rademacher", chunk: int = 8
) -> tuple[float, float]:
    r"""Hutchinson's :math:`\mathrm{tr}\,H = \mathbb E[v^\top H v]`: estimate and standard error.

    ``n_v`` products (in batches of ``chunk``), Rademacher or Gaussian :math:`v`.
    """
    n_v = _check_int(n_v, "the number of probe vectors n_v")
    V = random_vectors(op.n, n_v, seed=seed, dist=dist, dtype=op.dtype, device=op.device).T
    q = torch.cat(
        [
            (V[:, s : s + chunk] * op.matmat(V[:, s : s + chunk])).sum(dim=0)
            for s in range(0, n_v, chunk)
        ]
    ).double()  # (n_v,) v·Hv
    se = float(q.std() / math.sqrt(n_v)) if n_v > 1 else math.nan
    return float(q.mean()), se


# -- extremes ------------------------------------------------------------------------------------


def eigsh_extremes(
    op: HessianOperator,
    k: int = 1,
    *,
    tol: float = 0.0,
    seed: int = 0,
    maxiter: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` smallest and ``k`` largest eigenvalues by SciPy's ``eigsh`` (ARPACK) on ``op``.

    Args:
        k: how many at each end, ``1 ≤ k < N`` (ARPACK's limit).
        tol: ARPACK's relative tolerance (0: machine precision).
        seed: seed of the start vector (deterministic runs).
        maxiter: ARPACK's iteration limit (default ``10 N``).

    Returns:
        ``(smallest, largest)``, ``(k,)`` each, ascending.

    Raises:
        ConfigError: for ``k`` outside ``[1, N)``, naming ``k`` and ``N``.
    """
    k = _check_int(k, "the number of eigenvalues k")
    if k >= op.n:
        raise ConfigError(
            f"asked for k = {k} eigenvalues at each end of an N = {op.n} Hessian; eigsh needs "
            f"k < N (use dense() for small nets)"
        )
    A = op.to_scipy()
    v0 = random_vectors(op.n, 1, seed=seed, dist="gaussian", dtype=torch.float64)[0].numpy()
    v0 = v0.astype(A.dtype)
    lo = eigsh(A, k, which="SA", tol=tol, v0=v0, maxiter=maxiter, return_eigenvectors=False)
    hi = eigsh(A, k, which="LA", tol=tol, v0=v0, maxiter=maxiter, return_eigenvectors=False)
    return np.sort(lo).astype(np.float64), np.sort(hi).astype(np.float64)


def lanczos_extremes(
    op: HessianOperator, k: int, *, seed: int = 0, dist: str = "rademacher"
) -> tuple[float, float]:
    """Smallest and largest Ritz values of one ``k``-step fully re-orthogonalized Lanczos run.

    Ritz values lie inside the spectrum and converge first at its ends; with ``k = N`` they are
    the eigenvalues.
    """
    nodes, _ = lanczos(op, k, seed=seed, dist=dist, reorth="full").ritz()
    return float(nodes[0]), float(nodes[-1])


# -- summary statistics --------------------------------------------------------------------------


@torch.no_grad()
def active_hinge_fraction(op: ModelHessian) -> float:
    r"""Fraction of the operator's examples with an active hinge, :math:`1 - y_i f(x_i) > 0`.

    Only these examples contribute to the hinge-loss gradient and Hessian.
    """
    if not isinstance(op, ModelHessian):
        raise ConfigError(
            f"the active-hinge fraction needs a ModelHessian, got {type(op).__name__}"
        )
    f = op.outputs()  # (n,)
    y = torch.cat([b.y for b in op.batches()])
    return float(((1 - y * f) > 0).double().mean())


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
    n_boot = _check_int(n_boot, "the number of bootstrap resamples", low=2)
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
