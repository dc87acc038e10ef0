"""Block products of the gated path: ``matmat`` of ``k`` vectors in one tangent and one adjoint
pass, against independent oracles (float64).

The oracles are those of ``test_hessian_operator``: the dense Hessian of the MLP's risk written
out by hand, and for the VGG the Hessian-vector products of its risk written out by hand with
``F.conv2d`` (``torch.autograd.functional.hvp``, one column at a time: the dense VGG Hessian
costs seconds). Blocks of every size, the columns split into blocks and the examples into
chunks that do not divide them, the memory bound, and each way the float64 maps can take a
convolution are checked.
"""

from __future__ import annotations

import pytest
import torch
from test_hessian_operator import (
    data,
    mlp,
    mlp_oracle,
    relu_gates_numpy,
    tiny_vgg,
    vgg_risk,
)
from torch.nn import functional as F

from umwelt.nn.hessian import ModelHessian
from umwelt.nn.hessian import gated as G
from umwelt.nn.hessian.gated import maps as GM
from umwelt.nn.hessian.gated import products as GP

D = torch.float64

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# (k, MAX_BLOCK, BLOCK_ROWS): one column; 3 and 8 columns in one block; 8 columns in blocks of
# 3, 3, 2 with chunks of 2 examples (k = 3) and 3 (k = 2); 5 columns in blocks of 2, 2, 1 with
# chunks of 1 and of 3 examples — chunks and blocks that do not divide the batch or the columns
BLOCKS = [(1, 16, 256), (3, 16, 256), (8, 16, 256), (8, 3, 6), (5, 2, 3)]


def _vectors(n: int, k: int, seed: int = 3) -> torch.Tensor:
    return torch.randn(n, k, dtype=D, generator=torch.Generator().manual_seed(seed))


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.fixture(scope="module")
def vgg_cases():
    """The tiny VGG (vgg11 at width 1/64, N = 2,395) with ReLU gates and the hinge (inactive
    hinges left out), and with sampled gates at T = 0.7 and the logistic loss (both parts of
    H): ``[(op, risk, theta)]``."""
    out = []
    for T, loss in ((0.0, "hinge"), (0.7, "logistic")):
        model = tiny_vgg(T)
        X, y = data(5, (1, 32, 32))
        X = 10 * X  # |f| > 1: some hinges inactive
        op = ModelHessian(model, X, y, loss=loss, batch_size=3)  # batches of 3 and 2
        assert op.ad == "gated"
        gates = model.relu_gates(X) if T == 0 else op.gate_masks
        risk, theta = vgg_risk(model, X, y, gates, loss)
        out.append((op, risk, theta))
    return out


@pytest.mark.parametrize(("k", "max_block", "rows"), BLOCKS)
def test_mlp_block_equals_dense_oracle_and_the_columns(monkeypatch, k, max_block, rows):
    monkeypatch.setattr(GP, "MAX_BLOCK", max_block)
    monkeypatch.setattr(GP, "BLOCK_ROWS", rows)
    for T, loss in ((0.0, "hinge"), (0.5, "logistic")):
        model = mlp("4-3-3-2-1", T)
        X, y = data(7, (4,))
        op = ModelHessian(model, X, y, loss=loss, batch_size=4)  # batches of 4 and 3
        gates = relu_gates_numpy(model, X) if T == 0 else op.gate_masks
        H = mlp_oracle(model, X, y, gates, loss)
        V = _vectors(op.n, k)
        HV = op.matmat(V)
        assert _rel(HV, H @ V) <= 1e-12
        cols = torch.stack([op.matvec(V[:, j]) for j in range(k)], dim=1)
        assert _rel(HV, cols) <= 1e-13


@pytest.mark.parametrize(("k", "max_block", "rows"), BLOCKS)
def test_vgg_block_equals_the_oracle_and_the_columns(monkeypatch, vgg_cases, k, max_block, rows):
    monkeypatch.setattr(GP, "MAX_BLOCK", max_block)
    monkeypatch.setattr(GP, "BLOCK_ROWS", rows)
    for op, risk, theta in vgg_cases:
        V = _vectors(op.n, k)
        HV = op.matmat(V)
        ref = torch.stack(
            [torch.autograd.functional.hvp(risk, theta, V[:, j])[1] for j in range(k)], dim=1
        )
        assert _rel(HV, ref) <= 1e-10
        cols = torch.stack([op.matvec(V[:, j]) for j in range(k)], dim=1)
        assert _rel(HV, cols) <= 1e-12


def test_vgg_float32_block_follows_float64(vgg_cases):
    """The float32 product takes the oneDNN maps (not the float64 ones)."""
    op64, _, _ = vgg_cases[1]
    m32 = tiny_vgg(0.7).float()
    X, y = data(5, (1, 32, 32))
    op32 = ModelHessian(
        m32, 10 * X.float(), y.float(), loss="logistic", batch_size=3, gate_masks=op64.gate_masks
    )
    assert type(op32._gated._maps) is GM._OneDnnMaps and type(op64._gated._maps) is GM._SlowConvMaps
    V = _vectors(op64.n, 8)
    HV = op64.matmat(V)
    assert _rel(op32.matmat(V.float()).double(), HV) <= 1e-5


def test_block_memory_stays_within_the_cache_setting(monkeypatch):
    """Columns per block and examples per chunk keep a block within ``block_bytes``."""
    monkeypatch.setattr(GP, "MIN_BLOCK_BYTES", 0)
    model = tiny_vgg(0.0)
    X, y = data(6, (1, 32, 32))
    probe = ModelHessian(model, X, y)
    primal = probe._gated.primal(probe._params, next(probe.batches()))
    per = primal.tangent_bytes + probe._gated.vector_bytes  # one vector on one example
    assert primal.tangent_bytes > 0 and probe._gated.vector_bytes == 6 * 8 * probe.n
    V = _vectors(probe.n, 7)
    ref = probe.matmat(V)
    for budget in (per, 3 * per, 10 * per):
        op = ModelHessian(model, X, y, cache_bytes=budget, gate_masks=probe.gate_masks)
        P = op._gated._primal(op._params, next(op.batches()))
        k = op._gated.columns(P)
        assert k == min(GP.MAX_BLOCK, budget // per)
        assert op._gated.block_memory(P, 7) <= op._gated.block_bytes == budget
        assert op.block_memory(7) <= budget
        assert _rel(op.matmat(V), ref) <= 1e-13
    assert ModelHessian(model, X, y, cache_bytes=0)._gated.block_bytes == 0  # blocks of 1
    monkeypatch.undo()
    assert ModelHessian(model, X, y, cache_bytes=0)._gated.block_bytes == GP.MIN_BLOCK_BYTES
    assert ModelHessian(model, X, y, ad="fwd-over-rev").block_memory(4) is None


@pytest.mark.parametrize(
    ("shape", "c_out", "conv"),
    [
        ((4, 3, 8, 8), 5, ((1, 1), (1, 1), (1, 1), 1)),  # same: transposed paths, 64 positions
        ((4, 3, 8, 8), 80, ((1, 1), (1, 1), (1, 1), 1)),  # same and wide: the library's forward
        ((6, 5, 2, 2), 70, ((1, 1), (1, 1), (1, 1), 1)),  # same, 4 positions: unfolded GEMMs
        ((6, 70, 2, 2), 5, ((1, 1), (1, 1), (1, 1), 1)),  # unfolded, the roles exchanged
        ((4, 3, 8, 8), 5, ((2, 2), (1, 1), (1, 1), 1)),  # stride 2: the library's calls
        ((4, 3, 8, 8), 5, ((1, 1), (0, 0), (1, 1), 1)),  # no padding: the library's calls
    ],
)
def test_maps_equal_the_library_calls(shape, c_out, conv):
    layer = G.GatedLayer("w", conv, None)
    g = torch.Generator().manual_seed(0)
    a = torch.randn(shape, dtype=D, generator=g)
    W = torch.randn(c_out, shape[1], 3, 3, dtype=D, generator=g)
    z = F.conv2d(a, W, None, *conv)
    dz = torch.randn(z.shape, dtype=D, generator=g)
    a.requires_grad_(True)
    W.requires_grad_(True)
    ga, gW = torch.autograd.grad(F.conv2d(a, W, None, *conv), (a, W), dz)
    a, W = a.detach(), W.detach()
    for maps in (GM._Maps(), GM._SlowConvMaps(), GM._OneDnnMaps()):
        assert _rel(maps.forward(layer, a, W), z) <= 1e-14
        assert _rel(maps.input_grad(layer, dz, W, a.shape), ga) <= 1e-14
        assert _rel(maps.weight_grad(layer, dz, a, W.shape), gW) <= 1e-14
        # a batch of no examples (every hinge satisfied: nothing kept) maps to empty tensors
        # (the cpu reproduction's last epoch once stopped here: a view of 0 elements with -1)
        a0, dz0 = a[:0], dz[:0]
        assert maps.forward(layer, a0, W).shape == z[:0].shape
        assert maps.input_grad(layer, dz0, W, a0.shape).shape == a0.shape
        assert torch.equal(maps.weight_grad(layer, dz0, a0, W.shape), torch.zeros_like(W))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_every_hinge_satisfied_gives_a_zero_product(dtype):
    """No example has a share in H: the kept pass is empty and every product is 0 (the
    float64 unfolded maps once failed on it)."""
    model = tiny_vgg(0.0).to(dtype)
    X, _ = data(6, (1, 32, 32))
    X = X.to(dtype)
    with torch.no_grad():
        f = model(X)
        model.weight_layers[-1].weight.mul_(3.0 / f.abs().min())  # every margin y f = 3
        y = torch.sign(model(X))
    op = ModelHessian(model, X, y, loss="hinge", batch_size=4)
    V = _vectors(op.n, 3).to(dtype)
    assert torch.equal(op.matmat(V), torch.zeros_like(V))
    assert torch.equal(op.matvec(V[:, 0]), torch.zeros_like(V[:, 0]))


def test_quick_block_benchmark_reports_ratios_and_memory():
    from sim.benchmarks.hessian import block_products

    r = block_products(quick=True)
    (row,) = r["rows"]
    assert set(row["speedup"]) == {1, 4} and all(x > 0 for x in row["speedup"].values())
    assert row["max_rel_diff"] <= 1e-5 and row["stated_MB"][4] > 0
