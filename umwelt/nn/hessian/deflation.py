r"""Deflated stochastic Lanczos quadrature: converged extreme eigenpairs as exact point masses.

Stochastic Lanczos quadrature (:func:`~umwelt.nn.hessian.quadrature.slq`) weighs each
eigenvalue :math:`\lambda_i` by :math:`(q^\top u_i)^2`, a random weight of mean :math:`1/N`;
an outlier far from the bulk therefore moves the estimate a lot with little mass. Once a
Lanczos run has converged on an extreme eigenpair :math:`(\theta_i, y_i)` (residual bound
below ``rtol`` × the spectral radius), that pair is known: the density is

.. math::
    \rho = \frac1N \sum_{i \le r} \delta_{\theta_i} + \frac{N - r}{N}\, \rho_\perp,

with :math:`\rho_\perp` the density of :math:`H` on the complement of :math:`Y = [y_1 \dots
y_r]`, estimated by SLQ on :math:`P H P`, :math:`P = I - Y Y^\top`, from start vectors projected
by :math:`P` (Gaussian ones stay uniform on the complement's sphere). This is the deflation of
Lin, Saad & Yang (2016, SIAM Review 58) and of the variance-reduced SLQ of Bhattacharjee,
Jayaram, Musco, Musco & Ray (SODA 2025). The result is an ordinary
:class:`~umwelt.nn.hessian.quadrature.SLQResult` (each start vector's nodes are the ``r`` point
masses followed by its Ritz values), so every summary applies to it.

:func:`wasserstein1` measures a quadrature measure against exact eigenvalues; measured with it
on dense oracles at equal product counts: tests/test_hessian_deflation.py and the closing note.
"""

from __future__ import annotations

import numpy as np
import torch

from umwelt._checks import check_int
from umwelt.nn.hessian.base import HessianOperator
from umwelt.nn.hessian.krylov import LanczosResult, _lanczos_block, lanczos
from umwelt.nn.hessian.quadrature import SLQResult
from umwelt.nn.hessian.vectors import random_vectors
from umwelt.seeds import index_seed

__all__ = ["DEFLATION_RTOL", "converged_pairs", "deflated_slq", "wasserstein1"]

DEFLATION_RTOL = 1e-6  # a Ritz pair is an eigenpair when its residual is below this × radius


def converged_pairs(
    op: HessianOperator, k: int, *, seed: int = 0, rtol: float = DEFLATION_RTOL, most: int = 16
) -> tuple[np.ndarray, torch.Tensor]:
    """The converged Ritz pairs of one fully re-orthogonalized ``k``-step Lanczos run (``k``
    products): ``(theta (r,), Y (N, r))``, at most ``most`` of them, the outermost first."""
    run = lanczos(op, k, seed=seed, dist="gaussian", reorth="full")
    theta, _ = run.ritz()
    res = run.ritz_residuals()
    radius = float(np.abs(theta).max()) if theta.size else 0.0
    ok = np.nonzero(res <= rtol * max(radius, 1e-300))[0]
    ok = ok[np.argsort(-np.abs(theta[ok]))][:most]
    if ok.size == 0:
        return np.zeros(0), torch.zeros(op.n, 0, dtype=op.dtype, device=op.device)
    _, S = np.linalg.eigh(LanczosResult(run.alphas, run.betas, None).tridiagonal())
    Y = run.basis.T @ torch.as_tensor(S[:, ok], dtype=op.dtype, device=op.device)  # (N, r)
    Y, _ = torch.linalg.qr(Y)  # orthonormal to round-off
    return theta[ok], Y


class _Projected(HessianOperator):
    """:math:`P H P` with :math:`P = I - Y Y^\\top`."""

    def __init__(self, op: HessianOperator, Y: torch.Tensor):
        super().__init__(op.n, dtype=op.dtype, device=op.device)
        self.op, self.Y = op, Y

    def _project(self, V: torch.Tensor) -> torch.Tensor:
        return V - self.Y @ (self.Y.T @ V)

    def _matvec(self, v: torch.Tensor) -> torch.Tensor:
        return self._matmat(v[:, None])[:, 0]

    def _matmat(self, V: torch.Tensor) -> torch.Tensor:
        return self._project(self.op.matmat(self._project(V)))


def deflated_slq(
    op: HessianOperator,
    theta: np.ndarray,
    Y: torch.Tensor,
    k: int,
    n_v: int,
    *,
    seed: int = 0,
    block: int = 8,
) -> SLQResult:
    """SLQ of ``op`` with the eigenpairs ``(theta, Y)`` as exact point masses (module
    docstring): ``k · n_v`` products, Gaussian start vectors projected off ``Y``."""
    k = check_int("the number of Lanczos steps k", k)
    n_v = check_int("the number of start vectors n_v", n_v)
    N, r = op.n, int(np.size(theta))
    if r == 0:
        from umwelt.nn.hessian.quadrature import slq

        return slq(op, k, n_v, seed=seed, dist="gaussian", block=block)
    proj = _Projected(op, Y)
    k = min(k, N - r)
    nodes = np.zeros((n_v, r + k))
    weights = np.zeros((n_v, r + k))
    residuals = np.zeros((n_v, r + k))  # the point masses': below DEFLATION_RTOL × radius
    nodes[:, :r] = theta
    weights[:, :r] = 1.0 / N
    residuals[:, :r] = DEFLATION_RTOL * float(np.abs(theta).max())
    for s in range(0, n_v, block):
        idx = range(s, min(s + block, n_v))
        V0 = torch.stack(
            [
                random_vectors(N, 1, seed=index_seed(seed, i, bits=32), dist="gaussian")[0]
                for i in idx
            ],
            dim=1,
        ).to(device=op.device, dtype=op.dtype)
        V0 = proj._project(V0)
        for c, (a, b, _, last) in enumerate(_lanczos_block(proj, V0, k, True)):
            run = LanczosResult(alphas=a, betas=b, basis=None, last_beta=last)
            th, tau = run.ritz()
            nodes[s + c, r : r + th.size] = th
            weights[s + c, r : r + th.size] = (N - r) / N * tau
            residuals[s + c, r : r + th.size] = run.ritz_residuals()
    return SLQResult(
        nodes=nodes,
        weights=weights,
        n=N,
        k=k,
        dist="gaussian",
        reorth="full",
        seed=int(seed),
        residuals=residuals,
        point_masses=r,
    )


def wasserstein1(nodes: np.ndarray, weights: np.ndarray, eigenvalues: np.ndarray) -> float:
    r""":math:`W_1 = \int |\hat F - F|\,d\lambda` between the discrete measure of ``nodes`` with
    ``weights`` (summing to 1) and the uniform measure on ``eigenvalues``."""
    x = np.asarray(nodes, float).ravel()
    w = np.asarray(weights, float).ravel()
    lam = np.sort(np.asarray(eigenvalues, float).ravel())
    pts = np.concatenate([x, lam])
    mass = np.concatenate([w / w.sum(), -np.full(lam.size, 1.0 / lam.size)])
    order = np.argsort(pts, kind="stable")
    pts, cdf = pts[order], np.cumsum(mass[order])
    return float(np.sum(np.abs(cdf[:-1]) * np.diff(pts)))
