"""Per-layer-pair blocks of the Hessian (umwelt.nn.hessian.blocks) against dense Hessians."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cases import TINY_HESSIAN, tiny_train_run, torch_case

from umwelt.errors import ConfigError
from umwelt.nn.hessian import MatrixOperator, ModelHessian
from umwelt.nn.hessian.blocks import TOP_SINGULAR, layer_blocks

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _dense_blocks(H: np.ndarray, offsets: np.ndarray):
    L = len(offsets) - 1
    fro = np.zeros((L, L))
    sv = np.zeros((L, L, TOP_SINGULAR))
    for a in range(L):
        for b in range(L):
            B = H[offsets[a] : offsets[a + 1], offsets[b] : offsets[b + 1]]
            fro[a, b] = (B**2).sum()
            s = np.linalg.svd(B, compute_uv=False)[:TOP_SINGULAR]
            sv[a, b, : s.size] = s
    return fro, sv


@pytest.mark.parametrize("name", ["mlp-4-6-5-1-T0", "mlp-4-5-4-3-1-T0.5"])
def test_frobenius_shares_have_honest_error_bars_and_hinge_blocks_vanish_within_layers(name):
    c = torch_case(name)
    op = ModelHessian(c.model, c.X, c.y, loss=c.loss, batch_size=c.batch_size)
    H = op.dense().numpy()
    fro, _ = _dense_blocks(H, op.param_offsets)
    share = fro / fro.sum()
    z, zf = [], []
    for s in range(100):
        bl = layer_blocks(op, op.param_offsets, seed=s)  # 16 probes per layer
        live = share > 1e-12
        z.append((bl.share - share)[live] / bl.share_se[live])
        zf.append((bl.frob2 - fro)[live] / bl.frob2_se[live])
        if c.loss == "hinge":  # one weight per layer on every circuit: no within-layer block
            assert np.all(np.diag(bl.frob2) < 1e-20 * fro.sum())
    for v in (np.concatenate(z), np.concatenate(zf)):
        assert np.all(np.isfinite(v))
        assert 0.8 <= v.std() <= 1.25 and abs(v.mean()) < 0.4, (v.std(), v.mean())
    if c.loss != "hinge":
        assert np.all(np.diag(fro) > 0)  # the Gauss-Newton part fills them


def test_the_sketch_is_exact_for_low_rank_blocks_and_close_for_the_leading_value():
    rng = np.random.default_rng(0)
    offsets = np.array([0, 30, 70, 90])
    N = offsets[-1]
    U = rng.normal(size=(N, 3))  # rank 3 < probes: every block of rank ≤ 3
    H = U @ np.diag([5.0, 2.0, 1.0]) @ U.T
    bl = layer_blocks(MatrixOperator(torch.as_tensor(H)), offsets, 6, seed=1)
    fro, sv = _dense_blocks(H, offsets)
    np.testing.assert_allclose(bl.singular, sv, rtol=1e-8, atol=1e-10)
    # a full-rank decaying spectrum: the leading value within 10 %
    Q, _ = np.linalg.qr(rng.normal(size=(N, N)))
    H = (Q * 2.0 ** -np.arange(N)) @ Q.T
    bl = layer_blocks(MatrixOperator(torch.as_tensor(H)), offsets, 8, seed=2)
    _, sv = _dense_blocks(H, offsets)
    np.testing.assert_allclose(bl.singular[..., 0], sv[..., 0], rtol=0.1)


def test_bad_block_settings_are_refused_naming_them():
    op = MatrixOperator(torch.eye(5, dtype=torch.float64))
    with pytest.raises(ConfigError, match="at least two weight layers"):
        layer_blocks(op, np.array([0, 5]))
    with pytest.raises(ConfigError, match="block vectors must be at most 64, got 65"):
        layer_blocks(op, np.array([0, 2, 5]), 65)
    with pytest.raises(ConfigError, match="block vectors must be an integer ≥ 2, got 1"):
        layer_blocks(op, np.array([0, 2, 5]), 1)


def test_the_analysis_records_the_blocks_and_draws_them(tmp_path):
    import json

    from sim.hessian import HessianConfig, load_epoch, run

    d = tiny_train_run(tmp_path / "train", observe_at=(0, 1))
    small = TINY_HESSIAN
    rows = run(HessianConfig(run=d, blocks=True, block_vectors=16, **small))
    model, X, y, loss, _ = load_epoch(d, 1)
    op = ModelHessian(model, X, y, loss=loss)
    H = op.dense().numpy()
    fro, _ = _dense_blocks(H, op.param_offsets)
    r = rows[-1]
    with np.load(d / "hessian" / "epoch_0001.npz") as z:
        share, se = z["block_share"], z["block_share_se"]
        assert share.shape == (3, 3) and list(z["block_names"]) == list(op.param_names)
    live = fro > 0
    assert np.all(np.abs(share - fro / fro.sum())[live] <= 5 * se[live] + 1e-12)
    assert r["blocks_within_share"] == pytest.approx(0.0, abs=1e-12)  # hinge: none within
    assert (d / "figures" / "hessian_blocks.png").is_file()
    stored = json.loads((d / "hessian" / "config.json").read_text())["settings"]
    assert stored["blocks"] is True and stored["block_vectors"] == 16
