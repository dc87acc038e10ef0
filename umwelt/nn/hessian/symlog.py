r"""Densities on symmetric-log axes: the SLQ density smoothed in a symmetric-log coordinate.

In :math:`u = \mathrm{sign}(\lambda)\ln(1 + |\lambda|/c)` (:func:`symlog_coordinate`, the
coordinate in which :func:`~umwelt.nn.hessian.measure.symmetric_grid` with ``scale="symlog"``
is even) a Gaussian of one width :math:`\sigma_u` is a relative width :math:`\approx\sigma_u`
in :math:`\lambda` far from 0 and an absolute one near it, held above the quadrature's
resolution (:func:`~umwelt.nn.hessian.measure.quadrature_resolution`). :func:`symlog_density`
gives that density in :math:`\lambda`, with its band, and the spectral summary
(:mod:`~umwelt.nn.hessian.summary`) in :math:`u`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from umwelt.nn.hessian.measure import DensityBand, SLQResult
from umwelt.nn.hessian.summary import spectral_summary

__all__ = ["symlog_coordinate", "symlog_density"]


def symlog_coordinate(lam: np.ndarray, c: float) -> np.ndarray:
    r""":math:`u = \mathrm{sign}(\lambda)\ln(1 + |\lambda|/c)`, the coordinate in which
    :func:`symmetric_grid` with ``scale="symlog"`` is even.

    >>> float(symlog_coordinate(np.array([-(np.e - 1)]), 1.0)[0])
    -1.0
    """
    lam = np.asarray(lam, dtype=np.float64)
    return np.sign(lam) * np.log1p(np.abs(lam) / c)


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
        level: the band's level (:meth:`~umwelt.nn.hessian.measure.SLQResult.density_band`).

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
