"""float32 products change what the analysis reports by less than its statistical error.

``umwelt hessian``'s dtype ``auto`` takes float32 beyond 50,000 parameters (about 8× faster
products on a CPU). Here the same SLQ run — the same Gaussian start vectors, drawn in float64
and rounded — is taken in float32 and in float64 on small gated nets, and every reported
quantity (the spectral summary, the density and its band) must move by less than a tenth of its
own standard error: the round-off is invisible next to the sampling noise. ``roundoff_row``,
the check a float32 epoch records, must measure the products' relative error and bound its
effect on ``m2`` below ``m2_se``.
"""

from __future__ import annotations

import copy
import json
import warnings

import numpy as np
import pytest
import torch
from cases import TINY_HESSIAN, tiny_train_run

from sim.hessian import HessianConfig, roundoff_row, run
from sim.hessian.analysis import BAND_LEVEL, SLQ_DIST, density_grid
from sim.runs import HessianSettings
from umwelt.nn import build_mlp
from umwelt.nn.hessian import (
    ModelHessian,
    quadrature_resolution,
    slq,
    spectral_summary,
    symlog_density,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

KEYS = ("trace", "m2", "asymmetry", "neg_mass", "neg_share")
DEFAULTS = HessianSettings()
SHARE = 0.1  # of a standard error: the most a float32 run may move a quantity


def _pair(widths, n: int, loss: str, temperature: float, seed: int):
    """The same net and data as float64 and float32 operators."""
    m64 = build_mlp(widths, temperature=temperature, seed=seed, dtype=torch.float64)
    g = torch.Generator().manual_seed(seed + 1)
    X = torch.randn(n, widths[0], generator=g, dtype=torch.float64)
    y = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0).double()
    m32 = copy.deepcopy(m64).float()
    op64 = ModelHessian(m64, X, y, loss=loss, gate_seed=3)
    op32 = ModelHessian(m32, X.float(), y.float(), loss=loss, gate_seed=3)
    return op64, op32


def _report(op, k: int, grid, c):
    res = slq(op, k, DEFAULTS.start_vectors, seed=11, dist=SLQ_DIST)
    delta = quadrature_resolution(res)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        summ = spectral_summary(res, grid=grid, sigma=grid[-1] / 50, resolution=delta)
        band, summ_u, _ = symlog_density(
            res, grid, c=c, sigma=DEFAULTS.smoothing, resolution=delta, level=BAND_LEVEL
        )
    return summ, summ_u, band


@pytest.mark.parametrize(
    "widths, n, loss, temperature",
    [
        ((12, 40, 30, 1), 300, "hinge", 0.0),  # N = 1,710, k = 80 < N
        ((10, 30, 30, 1), 200, "logistic", 0.5),  # sampled gates at T > 0
        ((10, 30, 30, 1), 200, "quadratic-hinge", 0.0),
    ],
)
def test_float32_moves_every_quantity_by_less_than_a_tenth_of_its_error(
    widths, n, loss, temperature
):
    op64, op32 = _pair(widths, n, loss, temperature, seed=5)
    assert op32.ad == op64.ad == "gated" and op32.dtype == torch.float32
    k = min(80, op64.n)
    lam = np.linalg.eigvalsh(op64.dense().numpy())
    grid, c = density_grid(DEFAULTS.grid_margin * float(np.abs(lam).max()), 201)
    s64, u64, b64 = _report(op64, k, grid, c)
    s32, u32, b32 = _report(op32, k, grid, c)
    for key in KEYS:
        se = s64[f"{key}_se"]
        assert se > 0, key
        assert abs(s32[key] - s64[key]) <= SHARE * se, (key, s32[key], s64[key], se)
    da = u64["density_asymmetry_se"]
    assert abs(u32["density_asymmetry"] - u64["density_asymmetry"]) <= SHARE * da
    live = b64.std > 1e-3 * b64.std.max()
    assert np.all(np.abs(b32.density - b64.density)[live] <= SHARE * b64.std[live])


def test_roundoff_row_measures_the_products_error_and_bounds_m2():
    op64, op32 = _pair((12, 40, 30, 1), 300, "hinge", 0.0, seed=5)
    lam = np.linalg.eigvalsh(op64.dense().numpy())
    row = {
        "lambda_min": float(lam[0]),
        "lambda_max": float(lam[-1]),
        "m2": float(np.mean(lam**2)),
        "m2_se": 1e-3 * float(np.mean(lam**2)),
    }
    got = roundoff_row((op32, op64), row, seed=2)
    v = torch.randn(op64.n, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    h64, h32 = op64.matvec(v), op32.matvec(v.float()).double()
    direct = float((h32 - h64).norm() / h64.norm())
    assert 1e-9 < got["roundoff"] < 1e-5  # float32's, not float64's nor a bug's
    assert got["roundoff"] == pytest.approx(direct, rel=2.0)  # another vector, same scale
    assert 0 < got["roundoff_m2"] < row["m2_se"]
    # a bound above the standard error warns
    with pytest.warns(RuntimeWarning, match="consider dtype float64"):
        roundoff_row((op32, op64), row | {"m2_se": 1e-12}, seed=2)


def test_roundoff_row_measures_nothing_when_the_examples_have_no_share():
    """Every hinge of the check's examples satisfied (late in training): Hv = 0 in both dtypes,
    so no round-off is measured (``None`` and the reason), not a round-off of 0."""
    m64 = build_mlp((6, 8, 1), temperature=0.0, seed=4, dtype=torch.float64)
    X = torch.randn(50, 6, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    with torch.no_grad():
        f = m64(X)
        m64.linears[-1].weight.mul_(3.0 / f.abs().min())  # every margin y f = 3 or more
        y = torch.sign(m64(X))
    m32 = copy.deepcopy(m64).float()
    op64 = ModelHessian(m64, X, y, loss="hinge")
    op32 = ModelHessian(m32, X.float(), y.float(), loss="hinge")
    row = {"lambda_min": 0.0, "lambda_max": 0.0, "m2": 0.0, "m2_se": 0.0}
    got = roundoff_row((op32, op64), row, seed=2)
    assert got["roundoff"] is None and got["roundoff_m2"] is None
    assert "50 examples have no share in H" in got["roundoff_reason"]


def test_the_roundoff_check_takes_examples_with_a_share_in_h():
    from sim.hessian.spectrum import ROUNDOFF_EXAMPLES, roundoff_examples

    ids = np.arange(1000, 1000 + 4 * ROUNDOFF_EXAMPLES)
    active = np.zeros(ids.size, dtype=bool)
    active[ROUNDOFF_EXAMPLES + 7 :: 2] = True  # none among the first ROUNDOFF_EXAMPLES
    got = roundoff_examples(ids, active)
    np.testing.assert_array_equal(got, ids[active][:ROUNDOFF_EXAMPLES])
    assert got.size == ROUNDOFF_EXAMPLES and got[0] == 1000 + ROUNDOFF_EXAMPLES + 7
    few = np.zeros(ids.size, dtype=bool)
    few[[5, 600]] = True
    np.testing.assert_array_equal(roundoff_examples(ids, few), ids[[5, 600]])
    # none active, or a loss where every example has a share: the first ones
    none = np.zeros(ids.size, dtype=bool)
    np.testing.assert_array_equal(roundoff_examples(ids, none), ids[:ROUNDOFF_EXAMPLES])
    np.testing.assert_array_equal(roundoff_examples(ids, None), ids[:ROUNDOFF_EXAMPLES])


def test_a_float32_analysis_records_its_roundoff(tmp_path):
    d = tiny_train_run(tmp_path / "train")
    small = TINY_HESSIAN
    (r32,) = run(HessianConfig(run=d, epochs=(0,), dtype="float32", figures=False, **small))
    (r64,) = run(HessianConfig(run=d, epochs=(0,), fresh=True, figures=False, **small))
    assert r32["dtype"] == "float32" and r64["dtype"] == "float64"  # auto: float64 when small
    assert 0 < r32["roundoff"] < 1e-5 and "roundoff" not in r64
    with np.load(d / "hessian" / "epoch_0000.npz") as z:  # the hinges active, per example
        assert z["active_hinges"].dtype == bool
        assert z["active_hinges"].mean() == pytest.approx(r64["active_fraction"])
    assert abs(r32["m2"] - r64["m2"]) <= SHARE * r64["m2_se"]
    stored = json.loads((d / "hessian" / "hessian.jsonl").read_text().splitlines()[0])
    assert stored["dtype"] == "float64"


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_a_coarse_dtype_is_refused_naming_it(dtype):
    from umwelt.errors import ConfigError

    with pytest.raises(ConfigError, match=f"dtype {dtype} is too coarse.*float32 or float64"):
        HessianSettings(dtype=dtype).validated()
