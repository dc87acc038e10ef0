"""Deflated SLQ (umwelt.nn.hessian.deflation) on dense oracles: exact point masses, a valid
quadrature measure, and a smaller W1 error than plain SLQ at equal product counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cases import TINY_HESSIAN, tiny_train_run, torch_case

from umwelt.nn.hessian import MatrixOperator, ModelHessian, slq
from umwelt.nn.hessian.deflation import converged_pairs, deflated_slq, wasserstein1

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _outliers(N: int = 300, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lam = np.concatenate([0.1 * rng.normal(size=N - 6), [5, 4, 3, -3, -4, -5]])
    Q, _ = np.linalg.qr(rng.normal(size=(N, N)))
    return (Q * lam) @ Q.T


def test_wasserstein1_is_the_area_between_the_cdfs():
    assert wasserstein1(np.array([0.0]), np.array([1.0]), np.array([1.0])) == pytest.approx(1.0)
    lam = np.array([-1.0, 0.0, 2.0])
    assert wasserstein1(lam, np.full(3, 1 / 3), lam) == pytest.approx(0.0, abs=1e-15)
    # half the mass moved by 2: W1 = 1
    assert wasserstein1(np.array([0.0, 2.0]), np.array([0.5, 0.5]), np.zeros(2)) == 1.0


def test_converged_pairs_are_eigenpairs_and_the_result_is_a_quadrature_measure():
    H = _outliers()
    op = MatrixOperator(torch.as_tensor(H))
    theta, Y = converged_pairs(op, 40, seed=1)
    assert theta.size >= 6
    Hy = torch.as_tensor(H) @ Y
    np.testing.assert_allclose(Hy.numpy(), (Y * torch.as_tensor(theta)).numpy(), atol=1e-6)
    lam = np.linalg.eigvalsh(H)
    assert np.all(np.min(np.abs(theta[:, None] - lam[None, :]), axis=1) < 1e-6)
    res = deflated_slq(op, theta, Y, 20, 6, seed=2)
    np.testing.assert_allclose(res.weights.sum(axis=1), 1.0)
    # the second moment: exact masses plus an unbiased estimate of the rest
    m2 = float(np.mean(lam**2))
    assert res.moments(2).mean() == pytest.approx(m2, rel=0.05)


def test_deflated_error_bars_cover_over_many_seeds(tmp_path):
    """The point masses are not random: the SEs are the rest's (an SLQ in N - r dimensions);
    counting the masses as random made them 6.5x (trace) and 230x (m2) too wide. Over 200 seeds
    against the dense moments: the z-scores' SD within [0.8, 1.25]; saved and loaded alike."""
    from umwelt.nn.hessian.quadrature import SLQResult, spectral_summary

    H = _outliers()
    lam = np.linalg.eigvalsh(H)
    op = MatrixOperator(torch.as_tensor(H))
    theta, Y = converged_pairs(op, 40, seed=1)
    assert theta.size >= 6
    b = 1.5 * np.abs(lam).max()
    grid, sigma = np.linspace(-b, b, 401), 0.05 * np.abs(lam).max()
    z: dict[str, list[float]] = {"trace": [], "m2": []}
    for s in range(200):
        d = deflated_slq(op, theta, Y, 20, 8, seed=1000 + s)
        assert d.point_masses == theta.size
        out = spectral_summary(d, grid=grid, sigma=sigma)
        z["trace"].append((out["trace"] - lam.sum()) / out["trace_se"])
        z["m2"].append((out["m2"] - np.mean(lam**2)) / out["m2_se"])
    for key, v in z.items():
        assert 0.8 <= np.std(v) <= 1.25, (key, np.std(v))
        assert abs(np.mean(v)) < 4 * 1.25 / np.sqrt(len(v)), (key, np.mean(v))
    d.save(tmp_path / "d.npz")
    back = SLQResult.load(tmp_path / "d.npz")
    assert back.point_masses == d.point_masses and back.trace() == d.trace()


@pytest.mark.parametrize("name", ["outliers", "mlp-4-6-5-1-T0", "vgg11-w128-T0"])
def test_deflation_lowers_the_w1_error_at_equal_products(name):
    if name == "outliers":
        H = _outliers()
    else:
        c = torch_case(name)
        H = ModelHessian(c.model, c.X, c.y, loss=c.loss, batch_size=c.batch_size).dense().numpy()
    lam = np.linalg.eigvalsh(H)
    op = MatrixOperator(torch.as_tensor(H))
    K, n_v, k1 = min(30, lam.size // 3), 8, 40
    k2 = (K * n_v - k1) // n_v  # the deflation's Lanczos run paid from the same budget
    plain, defl = [], []
    for s in range(20):
        r = slq(op, K, n_v, seed=100 + s, dist="gaussian")
        plain.append(wasserstein1(r.nodes, r.weights, lam))
        theta, Y = converged_pairs(op, k1, seed=500 + s)
        d = deflated_slq(op, theta, Y, k2, n_v, seed=100 + s)
        defl.append(wasserstein1(d.nodes, d.weights, lam))
    assert np.mean(defl) < 0.8 * np.mean(plain), (np.mean(defl), np.mean(plain))


def test_the_analysis_deflates_on_request(tmp_path):
    from sim.hessian import HessianConfig, run

    d = tiny_train_run(tmp_path / "train")
    small = TINY_HESSIAN
    (r,) = run(HessianConfig(run=d, lanczos_steps=20, deflation_steps=30, figures=False, **small))
    with np.load(d / "hessian" / "epoch_0000.npz") as z:
        nodes, weights = z["slq_nodes"], z["slq_weights"]
    r_masses = int((weights[0] == 1 / r["n_params"]).sum())
    assert r_masses > 0 and np.allclose(nodes[:, :r_masses], nodes[0, :r_masses])
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    assert r["extremes_from"] == "slq"  # the deflated pairs are converged extremes
