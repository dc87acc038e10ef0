"""The extremes from the SLQ runs: residual bounds against the Ritz vectors themselves, and
the analysis's rule (the Ritz values when converged, a separate pass when not)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sim.hessian import spectrum
from sim.hessian.analysis import EXTREME_RTOL
from sim.runs import HessianSettings
from umwelt.nn.hessian import CountedOperator, MatrixOperator, lanczos, slq

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _matrix(n: int, seed: int, gap: float) -> np.ndarray:
    """A symmetric matrix with eigenvalues spread in [-1, 1] and one outlier at each end."""
    rng = np.random.default_rng(seed)
    lam = np.concatenate([[-1.0 - gap], rng.uniform(-1, 1, n - 2), [1.0 + 2 * gap]])
    Q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return (Q * lam) @ Q.T


@pytest.mark.parametrize("k", [5, 20, 60])
def test_ritz_residuals_are_the_residual_norms_of_the_ritz_pairs(k):
    H = _matrix(120, 0, 0.5)
    op = MatrixOperator(torch.as_tensor(H))
    run = lanczos(op, k, seed=3, dist="gaussian", reorth="full")
    theta, _ = run.ritz()
    _, S = np.linalg.eigh(run.tridiagonal())
    Y = run.basis.numpy().T @ S  # (N, m) the Ritz vectors
    direct = np.linalg.norm(H @ Y - Y * theta, axis=0)
    np.testing.assert_allclose(run.ritz_residuals(), direct, rtol=1e-6, atol=1e-10)
    # and an eigenvalue of H lies within each bound of its Ritz value
    lam = np.linalg.eigvalsh(H)
    gaps = np.abs(lam[None, :] - theta[:, None]).min(axis=1)
    assert np.all(gaps <= run.ritz_residuals() * (1 + 1e-8) + 1e-12)


def test_slq_keeps_the_residuals_and_its_extremes_are_the_outermost():
    H = _matrix(80, 1, 0.3)
    res = slq(MatrixOperator(torch.as_tensor(H)), 15, 4, seed=2, dist="gaussian")
    lo, hi, r_lo, r_hi = res.extremes()
    live = res.weights > 0
    assert lo == res.nodes[live].min() and hi == res.nodes[live].max()
    assert r_lo == res.residuals[res.nodes == lo][0] and r_hi == res.residuals[res.nodes == hi][0]
    lam = np.linalg.eigvalsh(H)
    assert lam[0] <= lo and hi <= lam[-1]  # Ritz values lie inside the spectrum


def _spectrum(H: np.ndarray, k: int, extremes: str = "slq", separate=None):
    cfg = HessianSettings(start_vectors=4, extremes=extremes)
    counted = [0]
    op = CountedOperator(
        MatrixOperator(torch.as_tensor(H)), lambda m: counted.__setitem__(0, counted[0] + m)
    )
    steps = {"lanczos_steps": k, "extreme_steps": k}
    seeds = {"slq": 5, "extremes": 6}
    res, ext = spectrum(op, cfg, steps, seeds, lambda *a: None, separate=separate)
    return res, ext, counted[0]


def test_converged_ritz_values_are_the_extremes_with_no_product_more():
    H = _matrix(150, 2, 1.0)  # well-separated outliers: 60 steps converge on them
    lam = np.linalg.eigvalsh(H)
    _, ext, products = _spectrum(H, 60)
    assert ext["from"] == "slq" and products == 60 * 4
    radius = max(abs(ext["lo"]), abs(ext["hi"]))
    assert max(ext["residual_lo"], ext["residual_hi"]) <= EXTREME_RTOL * radius
    assert ext["lo"] == pytest.approx(lam[0], abs=ext["residual_lo"] + 1e-12)
    assert ext["hi"] == pytest.approx(lam[-1], abs=ext["residual_hi"] + 1e-12)


def test_unconverged_ritz_values_take_a_separate_pass():
    H = _matrix(150, 2, 0.01)  # no gap: 8 steps are far from converged
    _, ext, products = _spectrum(H, 8)
    assert ext["from"] == "slq+lanczos" and products == 8 * 4 + 8
    assert ext["lo"] <= ext["separate_lo"] and ext["hi"] >= ext["separate_hi"]
    # extremes="lanczos" always runs it
    _, ext, products = _spectrum(_matrix(150, 2, 1.0), 60, extremes="lanczos")
    assert ext["from"] == "lanczos" and products == 60 * 4 + 60
    # the grid scan's pass, handed over, is not taken again
    _, again, products = _spectrum(
        _matrix(150, 2, 1.0), 60, "lanczos", (ext["separate_lo"], ext["separate_hi"])
    )
    assert products == 60 * 4 and again == ext


@pytest.mark.parametrize(
    "name", ["mlp-4-6-5-1-T0", "mlp-4-5-4-3-1-T0.5", "vgg12-w128-T0.5", "vgg11-w128-T0"]
)
def test_the_exact_trace_is_the_dense_hessians(name):
    from cases import torch_case

    from umwelt.nn.hessian import ModelHessian, exact_trace

    c = torch_case(name)
    op = ModelHessian(c.model, c.X, c.y, loss=c.loss, batch_size=c.batch_size)
    assert op.ad == "gated"
    H = op.dense().numpy()
    scale = np.abs(H).sum()
    assert exact_trace(op) == pytest.approx(np.trace(H), abs=1e-10 * scale)
    if c.loss == "hinge":
        assert exact_trace(op) == 0.0
    else:
        assert abs(np.trace(H)) > 1e-3 * scale  # a real test: the trace is not 0 here
    # torch.func's products: no structure assumed, no exact trace
    assert exact_trace(ModelHessian(c.model, c.X, c.y, loss=c.loss, ad="fwd-over-rev")) is None
