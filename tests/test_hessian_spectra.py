"""Spectra (Lanczos, SLQ, extremes, summaries) and the hinge checks against dense eigenvalues."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy.stats import wasserstein_distance
from test_hessian_operator import TinyConv, data, mlp

from umwelt.errors import ConfigError
from umwelt.nn import build_mlp
from umwelt.nn.hessian import (
    CountedOperator,
    HingeCheckWarning,
    MatrixOperator,
    ModelHessian,
    SLQResult,
    active_hinge_fraction,
    active_hinges,
    eigsh_extremes,
    gaussian_density,
    hessian_diagonal,
    hinge_checks,
    hutchinson_trace,
    hutchpp_trace,
    lanczos,
    lanczos_extremes,
    slq,
    spectral_summary,
    spectrum_symmetry_defect,
    symmetric_grid,
)

D = torch.float64

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _op(case: str) -> ModelHessian:
    if case == "conv":
        X, y = data(20, (1, 4, 4))
        return ModelHessian(TinyConv(0.0), X, y, loss="logistic")
    if case == "10-10-10-1":
        m = build_mlp((10, 10, 10, 1), temperature=0.5, seed=0, dtype=D)  # fixed sampled gates
        X, y = data(30, (10,))
        return ModelHessian(m, X, y, loss="logistic")
    m = mlp(case, 0.0)
    X, y = data(20, (m.widths[0],))
    return ModelHessian(m, X, y, loss="hinge")


CASES = ["5-5-1", "3-4-3-1", "4-3-3-2-1", "conv", "10-10-10-1"]


# -- Lanczos and SLQ vs dense eigenvalues ---------------------------------------------------------


def test_lanczos_on_a_known_matrix():
    lam = torch.tensor([-3.0, -1.0, 0.0, 0.5, 2.0, 4.0], dtype=D)
    Qm, _ = torch.linalg.qr(torch.randn(6, 6, dtype=D, generator=torch.Generator().manual_seed(0)))
    op = MatrixOperator(Qm @ torch.diag(lam) @ Qm.T)
    v0 = torch.arange(1.0, 7.0, dtype=D)
    res = lanczos(op, 6, v0=v0)
    nodes, weights = res.ritz()
    np.testing.assert_allclose(nodes, lam.numpy(), atol=1e-12)
    q = v0 / v0.norm()
    np.testing.assert_allclose(weights, ((Qm.T @ q) ** 2).numpy(), atol=1e-12)
    B = res.basis  # (6, 6) orthonormal rows, T = Q H Qᵀ
    np.testing.assert_allclose((B @ B.T).numpy(), np.eye(6), atol=1e-12)
    np.testing.assert_allclose((B @ op.matrix @ B.T).numpy(), res.tridiagonal(), atol=1e-12)
    assert lanczos(op, 6, v0=v0, reorth="none").basis is None
    zero = lanczos(MatrixOperator(torch.zeros(4, 4, dtype=D)), 4)
    assert zero.steps == 1 and zero.ritz()[0].tolist() == [0.0]  # H = 0: one node at 0


@pytest.mark.parametrize("reorth", ["full", "none"])
@pytest.mark.parametrize("case", CASES)
def test_slq_matches_dense_eigenvalues(case, reorth):
    op = _op(case)
    lam = np.linalg.eigvalsh(op.dense().numpy())
    width = lam[-1] - lam[0]
    res = slq(op, min(op.n, 20), 20, seed=0, reorth=reorth)
    nodes, weights = res.pooled()
    assert weights.sum() == pytest.approx(1.0)
    assert wasserstein_distance(nodes, lam, weights) <= 0.02 * width
    assert nodes[weights > 1e-12].min() >= lam[0] - 1e-9 * width  # Ritz values inside


def test_slq_does_not_depend_on_the_block_and_moments_are_exact_on_a_diagonal():
    op = _op("3-4-3-1")
    a, b = slq(op, 10, 6, seed=3, block=1), slq(op, 10, 6, seed=3, block=4)
    for p in (1, 2, 3):
        np.testing.assert_allclose(a.moments(p), b.moments(p), rtol=1e-10, atol=1e-14)
    # Rademacher q has q_i² = 1/N: the quadrature of a diagonal H is exact, every moment
    lam = np.array([-2.0, -0.5, 0.0, 0.0, 1.0, 3.0])
    res = slq(MatrixOperator(np.diag(lam)), 6, 3, seed=1)
    for p in (1, 2, 3, 4):
        np.testing.assert_allclose(res.moments(p), np.mean(lam**p), rtol=1e-12, atol=1e-13)
    trace, se = res.trace()
    assert trace == pytest.approx(lam.sum(), abs=1e-12)
    # exact with Rademacher vectors here; the closed-form SE is their upper bound
    # √(2 Var_ρ(Nλ) / (N n_v)) (widened by √(ν/(ν−2)) ≥ 1)
    bound = math.sqrt(2 * np.var(6 * lam) / (6 * 3) / (1 - 2 / 18))
    assert bound <= se <= math.sqrt(3) * bound


def test_extremes_by_eigsh_and_lanczos_match_dense():
    for case in ("4-3-3-2-1", "conv"):
        op = _op(case)
        lam = np.linalg.eigvalsh(op.dense().numpy())
        top = np.abs(lam).max()
        lo, hi = eigsh_extremes(op, 2)
        np.testing.assert_allclose(lo, lam[:2], atol=1e-10 * top)
        np.testing.assert_allclose(hi, lam[-2:], atol=1e-10 * top)
        a, b = lanczos_extremes(op, op.n)
        assert a == pytest.approx(lam[0], abs=1e-9 * top) and b == pytest.approx(
            lam[-1], abs=1e-9 * top
        )


def test_density_on_a_fixed_grid_resmoothing_and_error_bars(tmp_path):
    op = _op("5-5-1")
    res = slq(op, 20, 8, seed=0)
    grid = symmetric_grid(2.0, 401)
    assert np.array_equal(grid, -grid[::-1]) and 0.0 in grid
    rho = res.density(grid, 0.02)
    assert np.trapezoid(rho, grid) == pytest.approx(1.0, abs=1e-6)  # all mass inside [-2, 2]
    nodes, weights = res.pooled()
    np.testing.assert_allclose(rho, gaussian_density(nodes, weights, grid, 0.02), atol=1e-12)
    res.save(tmp_path / "slq.npz")
    back = SLQResult.load(tmp_path / "slq.npz")
    assert np.array_equal(back.nodes, res.nodes) and np.array_equal(back.weights, res.weights)
    assert (back.n, back.k, back.dist, back.reorth, back.seed) == (
        op.n,
        20,
        "rademacher",
        "full",
        0,
    )
    np.testing.assert_array_equal(back.density(grid, 0.05), res.density(grid, 0.05))
    band = res.density_band(grid, 0.02)
    assert np.all(band.lo <= band.density) and np.all(band.density <= band.hi)
    assert np.all(band.std >= 0) and np.all(band.lo >= 0) and band.reason is None
    np.testing.assert_allclose(band.hi - band.density, 1.6448536 * band.std, rtol=1e-6)
    sl = symmetric_grid(1.0, 11, scale="symlog")
    assert np.array_equal(sl, -sl[::-1]) and sl[-1] == 1.0 and np.all(np.diff(sl) > 0)
    assert sl[6] < 0.05  # finer near 0


def test_summary_statistics_on_known_spectra():
    lam = np.array([-2.0, -1.0, -1.0, 0.0, 0.5, 1.0, 3.0, 4.0])
    res = slq(MatrixOperator(np.diag(lam)), 8, 4, seed=0)  # exact quadrature (see above)
    grid = symmetric_grid(8.0, 1601)
    s = spectral_summary(res, grid=grid, sigma=0.1)
    assert s["neg_mass"] == pytest.approx(3 / 8)
    m2, m3 = np.mean(lam**2), np.mean(lam**3)
    assert s["asymmetry"] == pytest.approx(m3 / m2**1.5, rel=1e-10)
    assert s["trace"] == pytest.approx(lam.sum(), abs=1e-10)
    assert s["trace_se"] > 0 and s["se_reason"] is None  # an upper bound (Rademacher)
    # identical quadratures (exact, Rademacher, diagonal H): nothing is subtracted as noise
    assert s["density_asymmetry_bias"] == 0.0
    rho = gaussian_density(lam, np.full(8, 1 / 8), grid, 0.1)
    ref = np.trapezoid(np.abs(rho - rho[::-1]), grid)
    assert s["density_asymmetry"] == pytest.approx(ref, rel=1e-8)
    sym = np.array([-3.0, -1.0, 0.0, 0.0, 1.0, 3.0])
    t = spectral_summary(slq(MatrixOperator(np.diag(sym)), 6, 2), grid=grid, sigma=0.1)
    assert t["asymmetry"] == pytest.approx(0.0, abs=1e-12)
    assert t["density_asymmetry"] == pytest.approx(0.0, abs=1e-10)
    assert t["neg_mass"] == pytest.approx(2 / 6)


def test_hutchinson_trace_and_active_hinge_fraction():
    op = _op("10-10-10-1")
    exact = float(torch.trace(op.dense()))
    est, se = hutchinson_trace(op, 40, seed=0)
    assert abs(est - exact) <= 4 * se and se > 0
    hop = _op("3-4-3-1")
    X, y = data(20, (3,))
    f = hop.model(X).detach()
    assert active_hinge_fraction(hop) == pytest.approx(float(((1 - y * f) > 0).double().mean()))
    mask = active_hinges(hop)  # which ones, in the operator's order
    assert mask.dtype == bool and mask.tolist() == ((1 - y * f) > 0).tolist()
    assert 0 < mask.sum() < len(mask)  # the case has both kinds


def test_hutchpp_trace_unbiased_with_honest_se_and_better_than_hutchinson():
    """Against the dense trace over 300 seeds: the z-scores' mean ≈ 0 and SD in [0.8, 1.25]
    (the SE of 20 residual probes, t with 19 dof: SD 1.06), and at 30 products an RMS error
    well below Hutchinson's on a matrix whose few large eigenvalues carry the trace."""
    from scipy import stats

    rng = np.random.default_rng(0)
    U, _ = np.linalg.qr(rng.standard_normal((60, 60)))
    lam = np.concatenate([[40.0, -25.0, 18.0, 12.0, -9.0], rng.normal(0, 0.5, 55)])
    op = MatrixOperator((U * lam) @ U.T)
    exact = float(lam.sum())
    hpp = np.array([hutchpp_trace(op, 30, seed=k) for k in range(300)])
    hut = np.array([hutchinson_trace(op, 30, seed=k)[0] for k in range(300)])
    z = (hpp[:, 0] - exact) / hpp[:, 1]
    assert abs(stats.ttest_1samp(hpp[:, 0] - exact, 0.0).statistic) < 3.5  # unbiased
    assert 0.8 <= z.std() <= 1.25, z.std()
    rms = lambda e: float(np.sqrt(np.mean((e - exact) ** 2)))  # noqa: E731
    assert rms(hpp[:, 0]) < 0.5 * rms(hut), (rms(hpp[:, 0]), rms(hut))
    with pytest.raises(ConfigError, match="number of products must be an integer ≥ 6, got 5"):
        hutchpp_trace(op, 5)


def test_spectral_error_paths():
    op = _op("2-2-1")  # N = 6
    with pytest.raises(ConfigError, match="k = 6 eigenvalues .* N = 6"):
        eigsh_extremes(op, 6)
    with pytest.raises(ConfigError, match="k = 7 exceed the dimension N = 6"):
        lanczos(op, 7)
    with pytest.raises(ConfigError, match="k = 7 exceed"):
        slq(op, 7, 2)
    with pytest.raises(ConfigError, match="rademacher, gaussian"):
        slq(op, 3, 2, dist="cauchy")
    with pytest.raises(ConfigError, match="reorth"):
        slq(op, 3, 2, reorth="partial")
    with pytest.raises(ConfigError, match="sigma"):
        gaussian_density(np.zeros(1), np.ones(1), np.zeros(3), 0.0)
    with pytest.raises(ConfigError, match="bound"):
        symmetric_grid(-1.0)


# -- checks that know the loss --------------------------------------------------------------------


@pytest.mark.parametrize("T", [0.0, 0.5])
@pytest.mark.parametrize("case", ["2-2-1", "5-5-1", "3-4-3-1", "4-3-3-2-1"])
def test_hinge_diagonal_and_trace_vanish(case, T):
    m = mlp(case, T)
    X, y = data(12, (m.widths[0],))
    op = ModelHessian(m, X, y, loss="hinge", batch_size=5)
    diag, se = hessian_diagonal(op)
    assert se is None and np.all(diag == 0.0)  # exactly: autodiff never forms them
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = hinge_checks(op)
    assert out["ok"] and out["trace"] == 0.0 and out["trace_method"] == "exact"
    assert out["scale"] > 0


def test_hinge_checks_on_a_conv_net_and_by_sampling():
    X, y = data(10, (1, 4, 4))
    op = ModelHessian(TinyConv(0.6), X, y, loss="hinge")
    out = hinge_checks(op, n_coords=16, n_v=16)
    assert out["ok"] and out["diag_max_abs"] == 0.0 and out["trace_method"] == "hutchinson"
    diag, se = hessian_diagonal(op, method="hutchinson", n_v=8)
    assert diag.shape == (op.n,) and np.all(np.abs(diag) <= 5 * se + 1e-15)


def test_hinge_trace_test_takes_a_given_estimate_without_products_of_its_own():
    X, y = data(10, (1, 4, 4))
    op = ModelHessian(TinyConv(0.6), X, y, loss="hinge")
    counted = []
    cop = CountedOperator(op, counted.append)
    out = hinge_checks(cop, n_coords=16, n_v=16, trace_estimate=(0.3, 0.2))
    assert sum(counted) == 16  # the diagonal's 16 coordinates, no probe vector
    assert out["trace_method"] == "given" and (out["trace"], out["trace_se"]) == (0.3, 0.2)
    assert out["ok"]  # |0.3| ≤ 4 × 0.2
    far = hinge_checks(op, n_coords=16, trace_estimate=(1.0, 0.2), warn=False)
    assert far["diag_ok"] and not far["trace_ok"] and not far["ok"]  # a bias would show so
    with pytest.raises(ConfigError, match="trace_estimate"):
        hinge_checks(op, n_coords=16, trace_estimate=(0.0, math.nan))
    exact = hinge_checks(op, trace_estimate=(1.0, 0.2))  # every coordinate: the exact sum
    assert exact["trace_method"] == "exact" and exact["ok"]


@pytest.mark.parametrize("widths", [(2, 2, 1), (5, 5, 1), (6, 8, 1)])
def test_two_layer_hinge_spectrum_is_symmetric(widths):
    m = build_mlp(widths, temperature=0.3, seed=1, dtype=D)
    X, y = data(15, (widths[0],))
    lam = torch.linalg.eigvalsh(ModelHessian(m, X, y, loss="hinge").dense())
    assert lam.abs().max() > 0
    assert spectrum_symmetry_defect(lam) <= 1e-13


def test_hinge_warning_fires_for_logistic_loss():
    m = mlp("3-4-3-1", 0.0)
    X, y = data(12, (3,))
    op = ModelHessian(m, X, y, loss="logistic", context="epoch 3")
    with pytest.warns(HingeCheckWarning, match=r"epoch 3.*loss: logistic"):
        out = hinge_checks(op)
    assert not out["ok"] and not out["diag_ok"]
    with pytest.warns(HingeCheckWarning):
        hinge_checks(op, n_coords=8, n_v=16)
    lam = torch.linalg.eigvalsh(op.dense())
    assert spectrum_symmetry_defect(lam) > 1e-3


def test_zero_hessian_passes_the_hinge_checks():
    out = hinge_checks(MatrixOperator(torch.zeros(5, 5, dtype=D)))
    assert out["ok"] and out["scale"] == 0.0
    assert math.isclose(spectrum_symmetry_defect(np.zeros(3)), 0.0)


def test_neg_share_counts_only_weight_beyond_the_resolution():
    """A zero cluster smeared into ± nodes moves neg_mass but not neg_share (exact quadrature)."""
    lam = np.array([-3.0, -2.0, -1e-3, -1e-3, -1e-3, 1e-3, 2.0, 4.0, 5.0])
    res = slq(MatrixOperator(np.diag(lam)), 9, 3, seed=0)
    grid = symmetric_grid(8.0, 801)
    s = spectral_summary(res, grid=grid, sigma=0.1, resolution=0.01)
    assert s["neg_mass"] == pytest.approx(5 / 9)
    assert s["neg_share"] == pytest.approx(2 / 5)
    sym = spectral_summary(
        slq(MatrixOperator(np.diag([-2.0, -1.0, 1.0, 2.0])), 4, 2),
        grid=grid,
        sigma=0.1,
        resolution=0.5,
    )
    assert sym["neg_share"] == pytest.approx(0.5)
    psd = slq(MatrixOperator(np.diag([0.0, 1.0, 2.0])), 3, 2)
    assert spectral_summary(psd, grid=grid, sigma=0.1, resolution=0.1)["neg_share"] == 0
    zero = slq(MatrixOperator(np.zeros((3, 3))), 3, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        z = spectral_summary(zero, grid=grid, sigma=0.1, resolution=0.1)
    assert math.isnan(z["neg_share"])
    with pytest.raises(ConfigError, match="resolution"):
        spectral_summary(res, grid=grid, sigma=0.1, resolution=-1.0)
