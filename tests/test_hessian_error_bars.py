"""Honest error bars of stochastic Lanczos quadrature: z-scores against dense oracles.

Every quantity ``umwelt hessian`` reports with a standard error (trace, m2, the asymmetries, the
negative mass and share, points of the density band) is estimated over many seeds at the
driver's default settings (8 Gaussian start vectors, ``k = min(80, N)`` steps, symlog
smoothing 0.08) on Hessians whose eigenvalues are known exactly; ``z = (estimate − exact) / SE``
must have a standard deviation in [0.8, 1.25]. Below 3 start vectors the standard errors are
null, with the reason.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from cases import torch_case

from sim.hessian.analysis import BAND_LEVEL, SLQ_DIST, analyse_epoch, density_grid
from sim.runs import HessianSettings, to_jsonable
from umwelt.nn import build_mlp
from umwelt.nn.hessian import (
    MatrixOperator,
    ModelHessian,
    gaussian_density,
    quadrature_resolution,
    slq,
    spectral_summary,
    symlog_coordinate,
    symlog_density,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DEFAULTS = HessianSettings()
KEYS = ("trace", "m2", "asymmetry", "neg_mass", "neg_share", "density_asymmetry")
BAND_AT = (0.05, 0.3, 0.5, 0.7, 0.95)  # band points: at these quantiles of the eigenvalues
GRID_POINTS = 201  # coarser than the default 801 (time); the estimators do not depend on it
AD = "fwd-over-rev"  # the oracles by torch.func, independent of the hand-written gated product


def _dense(name: str) -> np.ndarray:
    c = torch_case(name)
    op = ModelHessian(c.model, c.X, c.y, loss=c.loss, batch_size=c.batch_size, ad=AD)
    return op.dense().numpy()


def _exact(lam: np.ndarray, grid, c_s: float, tol: float, delta: float) -> dict[str, float]:
    """The quantities of the spectrum ``lam`` itself, with the run's thresholds and smoothing."""
    N, m2 = lam.size, float(np.mean(lam**2))
    d = max(delta, tol)
    u, lu, w = symlog_coordinate(grid, c_s), symlog_coordinate(lam, c_s), np.full(lam.size, 1 / N)
    rho = gaussian_density(lu, w, u, DEFAULTS.smoothing)
    return {
        "trace": float(lam.sum()),
        "m2": m2,
        "asymmetry": float(np.mean(lam**3)) / m2**1.5,
        "neg_mass": float(np.mean(lam < -tol)),
        "neg_share": float((lam < -d).sum() / (np.abs(lam) > d).sum()),
        "density_asymmetry": float(
            np.trapezoid(np.abs(rho - gaussian_density(-lu, w, u, DEFAULTS.smoothing)), u)
        ),
        "density": rho / (c_s + np.abs(grid)),
    }


def _z_scores(H: np.ndarray, seeds: int) -> tuple[dict[str, np.ndarray], float]:
    """z-scores of every error bar over ``seeds`` SLQ runs as ``analyse_epoch`` makes them, and
    the mean coverage of the density band."""
    lam = np.linalg.eigvalsh(H)
    op = MatrixOperator(torch.as_tensor(H))
    k = min(80, op.n)
    grid, c = density_grid(DEFAULTS.grid_margin * float(np.abs(lam).max()), GRID_POINTS)
    pts = np.unique(np.searchsorted(grid, np.quantile(lam, BAND_AT)))
    z: dict[str, list] = {key: [] for key in KEYS}
    z |= {f"density({grid[p]:+.3g})": [] for p in pts}
    cover = []
    for s in range(seeds):
        res = slq(op, k, DEFAULTS.start_vectors, seed=100 + s, dist=SLQ_DIST)
        delta = quadrature_resolution(res)
        summ = spectral_summary(res, grid=grid, sigma=grid[-1] / 50, resolution=delta)
        band, summ_u, c_s = symlog_density(
            res, grid, c=c, sigma=DEFAULTS.smoothing, resolution=delta, level=BAND_LEVEL
        )
        tol = 1e-6 * float(np.abs(res.nodes[res.weights > 0]).max())
        ex = _exact(lam, grid, c_s, tol, delta)
        for key in KEYS:
            got = summ_u if key == "density_asymmetry" else summ  # the rows' sources
            z[key].append((got[key] - ex[key]) / got[f"{key}_se"])
        for p in pts:
            z[f"density({grid[p]:+.3g})"].append((band.density[p] - ex["density"][p]) / band.std[p])
        cover.append(np.mean((band.lo <= ex["density"]) & (ex["density"] <= band.hi)))
    return {key: np.array(v) for key, v in z.items()}, float(np.mean(cover))


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, seeds",
    [
        ("mlp-4-6-5-1-T0", 100),  # hinge, N = 59 (rank 21: a zero cluster), k = N
        ("mlp-4-5-4-3-1-T0.5", 100),  # logistic, N = 55, one eigenvalue 44% of tr H²
    ],
)
def test_z_scores_of_every_error_bar_have_unit_spread(name, seeds):
    z, cover = _z_scores(_dense(name), seeds)
    assert len(z) >= len(KEYS) + 3
    for key, v in z.items():
        assert np.all(np.isfinite(v)), key
        sd, mean = float(v.std()), float(v.mean())
        assert 0.8 <= sd <= 1.25, (key, sd, mean)
        if key == "density_asymmetry":  # a |·| of noise: a residual upward bias (docstring)
            assert -0.5 <= mean <= 1.0, (key, sd, mean)
        else:
            assert abs(mean) <= 0.5, (key, sd, mean)
    assert 0.85 <= cover <= 0.95  # the 90% band covers the exact density


@pytest.mark.slow
def test_error_bars_with_fewer_steps_than_parameters():
    """k = 80 < N = 210: the moments stay exact (Gauss quadrature of degree ≤ 2k − 1) and the
    smooth quantities calibrated; the negative mass, a step function at 0, carries the
    Chebyshev–Markov–Stieltjes bracket of the nodes next to the step: a bound."""
    m = build_mlp((10, 10, 10, 1), temperature=0.5, seed=0, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    X = torch.randn(30, 10, generator=g, dtype=torch.float64)
    y = torch.where(torch.rand(30, generator=g, dtype=torch.float64) < 0.5, -1.0, 1.0)
    H = ModelHessian(m, X, y.double(), loss="logistic", ad=AD).dense().numpy()
    z, _ = _z_scores(H, 40)
    for key, v in z.items():
        sd, mean = float(v.std()), float(v.mean())
        if key == "neg_mass":
            assert sd <= 1.25 and abs(mean) <= 0.5, (key, sd, mean)  # conservative
        else:
            assert 0.75 <= sd <= 1.3 and abs(mean) <= 0.5, (key, sd, mean)  # 40 seeds


def test_one_dominant_eigenvalue_widens_by_satterthwaite():
    """All of Var_ρ(b) on one eigenvalue: the plain closed form has E[z²] = n_v/(n_v − 2) = 3
    at n_v = 3; widened by √(ν/(ν − 2)), ν = n_v, E[z²] ≈ 1."""
    lam = np.concatenate([[10.0], np.full(49, 1e-3)])
    op = MatrixOperator(np.diag(lam))
    z = []
    for s in range(1000):
        t, se = slq(op, 3, 3, seed=s, dist="gaussian").trace()
        z.append((t - lam.sum()) / se)
    rms = math.sqrt(np.mean(np.square(z)))
    assert 0.85 <= rms <= 1.15, rms


def test_no_error_bars_below_three_start_vectors():
    H = np.diag(np.linspace(-1.0, 2.0, 12))
    res = slq(MatrixOperator(H), 6, 2, seed=0, dist="gaussian")
    grid, c = density_grid(3.0, 101)
    s = spectral_summary(res, grid=grid, sigma=0.06)
    for key in KEYS:
        assert math.isfinite(s[key]) and math.isnan(s[f"{key}_se"]), key
    assert "2 start vectors" in s["se_reason"] and "below 3" in s["se_reason"]
    band, su, _ = symlog_density(res, grid, c=c, sigma=0.08)
    assert np.all(np.isnan(band.std)) and band.reason == s["se_reason"]
    assert math.isnan(su["density_asymmetry_se"]) and math.isnan(res.trace()[1])
    three = spectral_summary(slq(MatrixOperator(H), 6, 3, seed=0), grid=grid, sigma=0.06)
    assert three["se_reason"] is None and all(three[f"{k}_se"] > 0 for k in KEYS)


def test_the_driver_writes_null_standard_errors_with_the_reason():
    c = torch_case("mlp-4-5-4-3-1-T0.5")
    op = ModelHessian(c.model, c.X, c.y, loss=c.loss, ad=AD)
    cfg = HessianSettings(start_vectors=2, grid_points=101).validated()
    grid, gc = density_grid(2.0, cfg.grid_points)
    steps = {"lanczos_steps": 10, "extreme_steps": 10, "entries": 0, "entry_columns": None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        row, arrays = analyse_epoch(
            op,
            cfg,
            grid=grid,
            c=gc,
            steps=steps,
            seeds={"slq": 0, "summary": 1, "extremes": 2},
            stage=lambda *a: None,
            loss_name=c.loss,
        )
    row = to_jsonable(row)
    for key in KEYS:
        assert row[key] is not None and row[f"{key}_se"] is None, key
    assert "2 start vectors" in row["se_reason"] and arrays["slq_dist"] == "gaussian"
    assert np.all(np.isnan(arrays["density_std"]))
