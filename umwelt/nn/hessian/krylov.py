r"""Lanczos: the tridiagonal :math:`T_k` of :math:`H`, its Ritz values, and the extremes.

**Lanczos** (Lanczos 1950; ``k`` steps from a unit start vector :math:`q_1`) builds the
tridiagonal :math:`T_k = Q_k^\top H Q_k` with diagonal :math:`\alpha` and off-diagonal
:math:`\beta`. Its eigenvalues (Ritz values) :math:`\theta_m` and the squared first components
:math:`\tau_m = (s_m)_1^2` of its eigenvectors are the nodes and weights of the ``k``-point
Gauss quadrature of the spectral measure of :math:`H` seen from :math:`q_1`:

.. math::
    q_1^\top g(H)\, q_1 \approx \sum_{m=1}^{k} \tau_m\, g(\theta_m).

Averaged over random start vectors this is stochastic Lanczos quadrature
(:mod:`~umwelt.nn.hessian.quadrature`).

**Re-orthogonalization and memory.** ``reorth="full"`` keeps the ``k`` Lanczos vectors
(``k × N`` numbers of the operator's dtype, e.g. 80 × 10⁷ float32 = 3.2 GB) and orthogonalizes
each new vector against all of them twice (classical Gram–Schmidt, "twice is enough"): Ritz
values are those of exact arithmetic. ``reorth="none"`` keeps three vectors (``3 × N``): the
Ritz values lose orthogonality and duplicate ("ghost" eigenvalues), which moves weight between
copies of a node but leaves the quadrature of low-degree moments, hence the smoothed density,
accurate (Ghorbani et al. 2019, section 3).

**Extremes** come from SciPy's ``eigsh`` on
:meth:`~umwelt.nn.hessian.base.HessianOperator.to_scipy` (:func:`eigsh_extremes`) or from the
extreme Ritz values of one long Lanczos run (:func:`lanczos_extremes`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.linalg import eigh_tridiagonal
from scipy.sparse.linalg import eigsh

from umwelt._checks import check_int
from umwelt.errors import ConfigError, ShapeError
from umwelt.nn.hessian.base import HessianOperator
from umwelt.nn.hessian.vectors import random_vectors

__all__ = ["LanczosResult", "eigsh_extremes", "lanczos", "lanczos_extremes"]

_REORTH: tuple[str, ...] = ("full", "none")


# -- Lanczos -------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LanczosResult:
    r"""The outcome of :func:`lanczos`.

    Attributes:
        alphas: diagonal of :math:`T`, ``(m,)`` float64, ``m ≤ k`` steps taken (fewer when an
            invariant subspace was found: :math:`\beta_j` below the tolerance).
        betas: off-diagonal of :math:`T`, ``(m - 1,)`` float64.
        basis: the Lanczos vectors ``(m, N)`` (``reorth="full"`` only, else ``None``).
        last_beta: :math:`\beta_m`, the norm of the residual after the last step (0 at an
            invariant subspace; ``None`` when unknown): the Ritz pairs' residual bounds
            (:meth:`ritz_residuals`).
    """

    alphas: np.ndarray
    betas: np.ndarray
    basis: torch.Tensor | None
    last_beta: float | None = None

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

    def ritz_residuals(self) -> np.ndarray:
        r"""The residual norm :math:`\|H y_i - \theta_i y_i\| = \beta_m |s_{mi}|` of each Ritz
        pair (ascending, as :meth:`ritz`): some eigenvalue of :math:`H` lies within it of
        :math:`\theta_i` (in exact arithmetic; with full re-orthogonalization to round-off).
        ``(m,)``; ``NaN`` when :attr:`last_beta` is unknown."""
        if self.last_beta is None:
            return np.full(self.steps, np.nan)
        if self.steps == 1:
            return np.full(1, abs(self.last_beta))
        _, vecs = eigh_tridiagonal(self.alphas, self.betas)
        return abs(self.last_beta) * np.abs(vecs[-1])


def _unit_start(op: HessianOperator, V0: torch.Tensor) -> torch.Tensor:
    norms = torch.linalg.vector_norm(V0, dim=0)  # (b,)
    if not bool((norms > 0).all()):
        raise ShapeError("a start vector has zero norm")
    return V0 / norms


def _lanczos_block(op: HessianOperator, V0: torch.Tensor, k: int, full: bool):
    """Independent Lanczos recurrences from the ``b`` columns of ``V0`` ``(N, b)``, in step.

    One :meth:`~HessianOperator.matmat` of ``b`` columns per step. A column that reaches an
    invariant subspace stops (its vector is zeroed from then on). Returns
    ``[(alphas, betas, basis | None, last_beta), ...]`` per column (``last_beta``: the residual
    norm after its last step, 0 at an invariant subspace).
    """
    N, b = V0.shape
    q = _unit_start(op, V0)  # (N, b)
    eps = torch.finfo(op.dtype).eps
    Q = torch.empty((k, N, b), dtype=op.dtype, device=op.device) if full else None
    alphas = np.zeros((k, b))
    betas = np.zeros((max(k - 1, 0), b))
    steps = np.full(b, k)
    last = np.zeros(b)  # β after each column's last step (0: an invariant subspace)
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
        beta_new = torch.linalg.vector_norm(w, dim=0)  # (b,)
        bn = beta_new.double().cpu().numpy()
        if j == k - 1:
            last[active] = bn[active]  # the residual of the last step (no product)
            break
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
        out.append((alphas[:m, c].copy(), betas[: m - 1, c].copy(), basis, float(last[c])))
    return out


def _check_steps(k: int, n: int) -> int:
    k = check_int("the number of Lanczos steps k", k)
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

    >>> from umwelt.nn.hessian.base import MatrixOperator
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
    ((a, b, basis, last),) = _lanczos_block(op, q[:, None], k, full)
    return LanczosResult(alphas=a, betas=b, basis=basis, last_beta=last)


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
    k = check_int("the number of eigenvalues k", k)
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
