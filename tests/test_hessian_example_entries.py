"""Per-example Hessian entries by the gated passes (``GatedProducts.example_entries``), float64.

The oracles: each example's Hessian written out by hand with the gates fixed — the MLP's dense
per-example Hessians by ``torch.autograd.functional.hessian``; for the tiny VGG the columns of
each example's Hessian at the sampled columns (forward-over-reverse of the hand-written
``F.conv2d`` net; the dense per-example Hessians, seconds each, in a slow test) — and the
``torch.func`` per-example products that every ``ad`` mode took before (``ad="fwd-over-rev"``).
For the hinge, the quadratic hinge and the logistic loss, ReLU gates at T = 0 and sampled gates
at T > 0; with unequal example weights, one of them 0, so that a contribution weighted by
mistake (or an example left out for its weight) fails.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_hessian_operator import data, mlp, relu_gates_numpy, tiny_vgg
from torch.func import jacrev, jvp, vmap
from torch.nn import functional as F

from umwelt.errors import ConfigError, NonFiniteError, ShapeError
from umwelt.nn.hessian import EntrySample, ModelHessian, entry_contributions, sample_entries
from umwelt.nn.hessian import gated as G
from umwelt.nn.hessian.gated import entries as GE
from umwelt.nn.hessian.gated import maps as GM
from umwelt.nn.hessian.gated import products as GP

D = torch.float64
LOSSES = ("hinge", "quadratic-hinge", "logistic")
CASES = [(T, loss) for T in (0.0, 0.7) for loss in LOSSES]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def example_losses(f: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    u = 1 - y * f
    if loss == "hinge":
        return torch.clamp(u, min=0)
    if loss == "quadratic-hinge":
        return 0.5 * torch.clamp(u, min=0) ** 2
    return torch.log1p(torch.exp(-y * f))


def mlp_losses(model, X, y, gates, loss):
    """``(losses, theta)``: the MLP's per-example losses ``(n,)`` with fixed gates as a function
    of the flat weights, by hand, and the weights."""
    shapes = [lin.weight.shape for lin in model.linears]
    theta = torch.cat([lin.weight.detach().reshape(-1) for lin in model.linears])

    def losses(th):
        Ws = [p.reshape(s) for p, s in zip(th.split([math.prod(s) for s in shapes]), shapes)]
        a = X
        for l, W in enumerate(Ws):
            z = a @ W.T  # (n, n_l)
            a = z * gates[l].to(D) if l < len(Ws) - 1 else z
        return example_losses(a[:, 0], y, loss)

    return losses, theta


def vgg_losses(model, X, y, gates, loss):
    """``(losses, theta)`` of the VGG, from ``F.conv2d`` by hand."""
    ps = [m.weight for m in model.weight_layers]
    shapes = [p.shape for p in ps]
    theta = torch.cat([p.detach().reshape(-1) for p in ps])
    n_conv = len(model.convs)

    def losses(th):
        Ws = [p.reshape(s) for p, s in zip(th.split([math.prod(s) for s in shapes]), shapes)]
        a = X
        for l, pool in enumerate(model.arch.pool_after):
            a = F.conv2d(a, Ws[l], padding=1) * gates[l].to(D)
            a = F.max_pool2d(a, 2) if pool else a
        a = a.flatten(1)
        for l in range(n_conv, len(Ws)):
            a = a @ Ws[l].T
            a = a * gates[l].to(D) if l < len(Ws) - 1 else a
        return example_losses(a[:, 0], y, loss)

    return losses, theta


def dense_per_example(losses, theta, n: int) -> torch.Tensor:
    """Each example's Hessian, ``(n, N, N)``, by ``torch.autograd.functional.hessian``."""
    return torch.stack(
        [torch.autograd.functional.hessian(lambda th, i=i: losses(th)[i], theta) for i in range(n)]
    )


def per_example_columns(losses, theta, cols: np.ndarray) -> torch.Tensor:
    """Each example's Hessian at the columns ``cols``, ``(n, N, len(cols))``: the ``jvp`` of
    the per-example gradients (``jacrev``) in the unit vectors."""
    E = torch.eye(theta.numel(), dtype=D)[torch.as_tensor(cols)]  # (c, N)
    cols_ = vmap(lambda e: jvp(jacrev(losses), (theta,), (e,))[1])(E)  # (c, n, N)
    return cols_.permute(1, 2, 0)


def weights(n: int, zero: int = 1) -> torch.Tensor:
    """Unequal example weights, that of example ``zero`` 0."""
    w = torch.arange(1, n + 1, dtype=D) ** 2
    w[zero] = 0.0
    return w / w.sum()


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize(("T", "loss"), CASES)
def test_mlp_entries_equal_the_dense_per_example_hessians(T, loss):
    model = mlp("4-3-3-2-1", T)
    X, y = data(7, (4,))
    X = 2 * X  # some hinges inactive
    masks = ModelHessian(model, X, y).gate_masks  # (seeded per example: any operator's)
    gates = relu_gates_numpy(model, X) if T == 0 else masks
    losses, theta = mlp_losses(model, X, y, gates, loss)
    Hi = dense_per_example(losses, theta, 7).numpy()  # (n, N, N)
    zero = int(np.abs(Hi).max(axis=(1, 2)).argmax())  # weight 0 for an example with a share
    w = weights(7, zero)
    op = ModelHessian(model, X, y, loss=loss, batch_size=4, example_weights=w, gate_masks=masks)
    assert op.ad == "gated"
    s = sample_entries(op, 200, seed=1, within_layer=True)
    C = entry_contributions(op, s, column_chunk=3)
    ref = Hi[:, s.rows, s.cols]  # (n, K): unweighted
    assert C.shape == (7, 200) and np.abs(ref).max() > 0
    assert np.abs(C - ref).max() <= 1e-13 * np.abs(ref).max()
    H = np.einsum("i,ijk->jk", w.numpy(), Hi)
    np.testing.assert_allclose(w.numpy() @ C, H[s.rows, s.cols], rtol=0, atol=1e-14)
    np.testing.assert_allclose(op.dense().numpy()[s.rows, s.cols], H[s.rows, s.cols], atol=1e-14)
    assert np.abs(ref[zero]).max() > 0  # the example of weight 0 has its own contributions
    torch_func = ModelHessian(
        model, X, y, loss=loss, batch_size=4, example_weights=w, ad="fwd-over-rev",
        gate_masks=op.gate_masks,
    )  # fmt: skip
    assert _rel(C, entry_contributions(torch_func, s)) <= 1e-13
    if loss != "logistic":  # an inactive (quadratic) hinge has no share: exactly 0
        inactive = (1 - y * op.outputs() <= 0).numpy()
        assert inactive.any() and np.all(C[inactive] == 0.0)


@pytest.fixture(scope="module")
def vgg_columns():
    """Columns of the tiny VGG (vgg11 at width 1/64, N = 2,395) in every weight layer, two in
    conv 1 and conv 8, and their offsets."""
    op = ModelHessian(tiny_vgg(0.0), *data(2, (1, 32, 32)))
    off = op.param_offsets
    cols = [int(off[t] + (off[t + 1] - off[t]) // 3) for t in range(len(off) - 1)]
    return np.array(sorted({*cols, 1, 5, int(off[7]) + 3, int(off[-1]) - 1}))


@pytest.mark.parametrize(("T", "loss"), CASES)
def test_vgg_entries_equal_the_per_example_hessian_columns(vgg_columns, T, loss):
    model = tiny_vgg(T)
    X, y = data(5, (1, 32, 32))
    X = 10 * X  # |f| > 1: some (quadratic) hinges inactive
    masks = ModelHessian(model, X, y).gate_masks  # (seeded per example: any operator's)
    gates = model.relu_gates(X) if T == 0 else masks
    losses, theta = vgg_losses(model, X, y, gates, loss)
    cols = vgg_columns
    Hc = per_example_columns(losses, theta, cols).numpy()  # (n, N, c)
    zero = int(np.abs(Hc).max(axis=(1, 2)).argmax())  # weight 0 for an example with a share
    w = weights(5, zero)
    op = ModelHessian(model, X, y, loss=loss, batch_size=3, example_weights=w, gate_masks=masks)
    assert op.ad == "gated" and op.n == 2395
    # per column: every row some example's Hessian has non-zero there, and 30 random rows
    rng = np.random.default_rng(0)
    rows, at = [], []
    for c in range(len(cols)):
        live = np.nonzero(np.abs(Hc[:, :, c]).max(axis=0) > 0)[0]
        r = np.unique(np.concatenate([live, rng.integers(0, op.n, 30)]))
        rows.append(r)
        at.append(np.full(len(r), c))
    rows, at = np.concatenate(rows), np.concatenate(at)
    s = EntrySample(rows=rows, cols=cols[at], n=op.n, population=0, within_layer=True, seed=0)
    C = entry_contributions(op, s, column_chunk=3)
    ref = Hc[:, rows, at]  # (n, K)
    scale = np.abs(ref).max()
    assert scale > 0 and np.abs(C - ref).max() <= 1e-12 * scale
    np.testing.assert_allclose(w.numpy() @ C, w.numpy() @ ref, rtol=0, atol=1e-13 * scale)
    assert np.abs(ref[zero]).max() > 0  # the example of weight 0 has its own contributions
    torch_func = ModelHessian(
        model, X, y, loss=loss, batch_size=3, example_weights=w, ad="fwd-over-rev",
        gate_masks=op.gate_masks,
    )  # fmt: skip
    assert _rel(C, entry_contributions(torch_func, s, example_chunk=2)) <= 1e-12
    if loss != "logistic":
        inactive = (1 - y * op.outputs() <= 0).numpy()
        assert 0 < inactive.sum() < 5 and np.all(C[inactive] == 0.0)


@pytest.mark.slow
def test_vgg_entries_equal_the_dense_per_example_hessians():
    """The dense per-example Hessians by ``torch.autograd.functional.hessian`` (seconds each):
    all sampled entries, and their weighted sum against the dense Hessian of the risk."""
    model = tiny_vgg(0.7)
    X, y = data(3, (1, 32, 32))
    w = weights(3)
    op = ModelHessian(model, X, y, loss="logistic", batch_size=2, example_weights=w)
    losses, theta = vgg_losses(model, X, y, op.gate_masks, "logistic")
    Hi = dense_per_example(losses, theta, 3).numpy()
    s = sample_entries(op, 400, seed=2, n_columns=12, within_layer=True)
    C = entry_contributions(op, s)
    ref = Hi[:, s.rows, s.cols]
    assert np.abs(C - ref).max() <= 1e-12 * np.abs(ref).max()
    H = np.einsum("i,ijk->jk", w.numpy(), Hi)
    np.testing.assert_allclose(w.numpy() @ C, H[s.rows, s.cols], atol=1e-13 * np.abs(H).max())


def test_chunks_of_columns_examples_and_rows_do_not_change_the_entries(monkeypatch):
    """Blocks of 2 columns, chunks of 1 example (BLOCK_ROWS 3 // 2) and gathers of a few rows,
    none dividing the rest, give the entries of one block; columns group by parameter tensor
    and the progress counts the columns."""
    model = tiny_vgg(0.7)
    X, y = data(5, (1, 32, 32))
    op = ModelHessian(model, X, y, loss="quadratic-hinge", batch_size=3)
    s = sample_entries(op, 300, seed=4, n_columns=9, within_layer=True)
    seen = []
    C = entry_contributions(op, s, column_chunk=4, progress=lambda d, t: seen.append((d, t)))
    ucols, m = np.unique(s.cols), len(np.unique(s.cols))
    assert seen[-1] == (2 * m, 2 * m)  # every column once per batch (of 3 and 2 examples)
    assert all(a[0] < b[0] for a, b in zip(seen, seen[1:])) and {t for _, t in seen} == {2 * m}
    ends = [d for d, _ in seen if d <= m]
    assert len(ends) > -(-m // 4) and ends[-1] == m
    for a, b in zip([0, *ends[:-1]], ends):  # a chunk of columns in one tensor
        assert len(set(op.layer_of(ucols[a:b]))) == 1 and b - a <= 4
    monkeypatch.setattr(GP, "MAX_BLOCK", 2)
    monkeypatch.setattr(GP, "BLOCK_ROWS", 3)
    monkeypatch.setattr(GE, "_GATHER", 700)  # < one example's positions × rows in conv 1
    fresh = ModelHessian(
        model, X, y, loss="quadratic-hinge", batch_size=3, gate_masks=op.gate_masks
    )
    P = fresh._gated.primal(fresh._params, next(fresh.batches()), weighted=False)
    assert fresh._gated.columns(P) == 2 and fresh._gated.chunk_examples(P, 2) == 1
    assert _rel(entry_contributions(fresh, s, column_chunk=4), C) <= 1e-14


@pytest.mark.parametrize(
    "conv",
    [
        ((1, 1), (1, 1), (1, 1), 1),  # same (the VGG's)
        ((2, 2), (1, 1), (1, 1), 1),  # stride 2
        ((1, 2), (0, 2), (2, 1), 1),  # no padding in height, dilation 2 in height
    ],
)
def test_patches_are_the_unfolded_input(conv):
    """The strided view of the patches (the rows of a conv weight's per-example gradient) is
    ``F.unfold``'s, and its entries are the per-example weight gradients of ``F.conv2d``."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 7, 6, dtype=D, generator=g)
    W = torch.randn(4, 3, 3, 2, dtype=D, generator=g)
    stride, padding, dilation, _ = conv
    z = F.conv2d(x, W, None, stride, padding, dilation)
    layer = G.GatedLayer("w", conv, None)
    P = GE._patches(x, layer, (3, 2), z.shape[-2:])  # (B, c, kh, kw, h, w)
    U = F.unfold(x, (3, 2), dilation=dilation, padding=padding, stride=stride)
    assert torch.equal(P.reshape(2, 3 * 3 * 2, -1), U)
    dz = torch.randn(z.shape, dtype=D, generator=g)
    rows = GE._EntryRows.of(layer, W.shape, torch.zeros(24, dtype=torch.long), torch.arange(24))
    grads = torch.einsum("bohw,bcpqhw->bocpq", dz, P).reshape(2, -1)  # (B, |W|)
    for b in range(2):
        (ref,) = torch.autograd.grad(
            F.conv2d(x[b : b + 1], W.requires_grad_(), None, *conv[:3]), W, dz[b : b + 1]
        )
        assert torch.allclose(grads[b], ref.reshape(-1), atol=1e-13)
    assert torch.equal(rows.o * 18 + rows.c * 6 + rows.p * 2 + rows.q, torch.arange(24))


@pytest.mark.parametrize(
    "conv",
    [
        ((1, 1), (1, 1), (1, 1), 1),
        ((2, 2), (1, 1), (1, 1), 1),
        ((1, 2), (0, 2), (2, 1), 1),
        None,  # a linear layer
    ],
)
def test_unit_vectors_act_as_their_weights(conv):
    """``e_k a`` and ``e_kᵀ δ`` of unit vectors not multiplied out (:class:`_Units`) equal the
    maps of the unit weights (:class:`_Dense`)."""
    g = torch.Generator().manual_seed(1)
    shape = (4, 3, 3, 2) if conv is not None else (5, 6)
    a = torch.randn((2, 3, 7, 6) if conv is not None else (2, 6), dtype=D, generator=g)
    layer = G.GatedLayer("w", conv, None)
    index = torch.tensor([0, 17, 17, 71] if conv is not None else [0, 13, 29, 13])
    E = torch.zeros(4, math.prod(shape), dtype=D)
    E[torch.arange(4), index] = 1.0
    V = E.view(4, *shape)
    maps = GM._Maps()
    dense = GP._Dense(maps, {"w": V.reshape(-1, *shape[1:])}, {"w": GM._side_by_side(V)}, 4)
    units = GE._Units("w", GE._EntryRows.of(layer, shape, torch.arange(4), index))
    zd = dense.forward(layer, a, shape)
    assert torch.equal(units.forward(layer, a, shape), zd)
    delta = torch.randn(zd.shape[:1] + zd.shape[2:], dtype=D, generator=g)
    assert torch.equal(
        units.transposed(layer, delta, a.shape), dense.transposed(layer, delta, a.shape)
    )


def test_float32_entries_follow_float64():
    """In float32 the passes take the oneDNN maps (not the float64 ones)."""
    model = tiny_vgg(0.7)
    X, y = data(5, (1, 32, 32))
    op64 = ModelHessian(model, X, y, loss="logistic", batch_size=3)
    op32 = ModelHessian(
        tiny_vgg(0.7).float(), X.float(), y.float(), loss="logistic", batch_size=3,
        gate_masks=op64.gate_masks,
    )  # fmt: skip
    assert type(op32._gated._maps) is GM._OneDnnMaps and type(op64._gated._maps) is GM._SlowConvMaps
    s = sample_entries(op64, 200, seed=3, n_columns=6, within_layer=True)
    C64 = entry_contributions(op64, s)
    assert np.abs(C64).max() > 0 and _rel(entry_contributions(op32, s), C64) <= 1e-5


def test_the_unweighted_pass_is_kept_apart_from_the_weighted_one():
    """Entries after products and products after entries: each takes its own primal pass."""
    model = mlp("4-3-3-2-1", 0.5)
    X, y = data(7, (4,))
    op = ModelHessian(model, X, y, loss="logistic", batch_size=4, example_weights=weights(7))
    v = torch.linspace(-1, 1, op.n, dtype=D)
    H = op.dense()
    Hv = op.matvec(v)
    s = sample_entries(op, 50, seed=0, within_layer=True)
    C = entry_contributions(op, s)
    assert torch.equal(op.matvec(v), Hv) and torch.allclose(Hv, H @ v, atol=1e-14)
    np.testing.assert_allclose(
        op.example_weights.numpy() @ C, H.numpy()[s.rows, s.cols], atol=1e-14
    )
    assert {key[2] for key in op._gated._cache} == {True, False}


def test_non_finite_entries_are_a_specific_error():
    model = mlp("3-4-3-1", 0.0)
    X, y = data(4, (3,))
    with torch.no_grad():
        model.linears[1].weight[0, 0] = float("nan")
    op = ModelHessian(model, X, y, loss="logistic", context="epoch 3")
    assert op.ad == "gated"
    s = sample_entries(op, 10, seed=0)
    with pytest.raises(NonFiniteError, match=r"epoch 3.*linears\.1\.weight contain NaN"):
        entry_contributions(op, s)
    # a finite net whose f overflows: the examples' entries are NaN, not silently 0
    big = mlp("3-4-3-1", 0.0).float()
    with torch.no_grad():
        for lin in big.linears:
            lin.weight.mul_(1e20)
    op32 = ModelHessian(big, X.float(), y.float(), loss="hinge")
    with pytest.raises(NonFiniteError, match="parameters are finite"):
        entry_contributions(op32, sample_entries(op32, 10, seed=0))


def test_bad_rows_and_columns_are_named():
    op = ModelHessian(mlp("3-4-3-1", 0.0), *data(4, (3,)))
    with pytest.raises(ShapeError, match="one length, got 2 and 1"):
        op.per_example_entries([0, 1], [2])
    with pytest.raises(ShapeError, match=r"cols must lie in \[0, 27\), got min 0 and max 27"):
        op.per_example_entries([0, 1], [0, 27])
    with pytest.raises(ConfigError, match="column_chunk must be a positive integer, got 0"):
        op.per_example_entries([0], [3], column_chunk=0)
    assert op.per_example_entries([], []).shape == (4, 0)


def test_quick_example_entries_benchmark_reports_the_ratio():
    from sim.benchmarks.hessian_examples import per_example_entries

    r = per_example_entries(quick=True, repeats=1)
    assert r["speedup"] > 0 and r["gated_ms"] > 0 and r["vmap_ms"] > 0
    assert r["max_rel_diff"] <= 1e-12 and r["entries"] > 0
