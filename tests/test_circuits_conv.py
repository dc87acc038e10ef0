"""Circuits of conv nets (umwelt.circuits.conv): counting, numbering, uniform sampling, values
and sums over every circuit.

Oracles, independent of the circuit graph: torch (``F.conv2d``, ``F.max_pool2d``, autograd) in
float64 with the gates fixed; a plain recursive enumeration of paths written from the
definitions below; the mixed-radix :class:`PathIndex` and the numba kernels for nets without
convolutions; a chi-square test for the uniformity of the sampler.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from umwelt import ConfigError, EnumerationLimitError, LayeredNetwork, ShapeError
from umwelt.circuits import (
    ConvCircuits,
    ConvNetwork,
    PathIndex,
    circuit_values,
    sample_conv_perturbations,
    tiny_conv_network,
)
from umwelt.circuits.conv import _randbelow

# (net kwargs, seed): every one with a non-zero output at its input, to compare something
NETS = {
    "1x4x4-c2M-3": (dict(), 0),
    "1x8x8-c2M-c2M-3": (dict(input_shape=(1, 8, 8), channels=(2, 2), pool_after=(1, 1)), 0),
    "2x4x4-c2-c2M-2-3": (
        dict(input_shape=(2, 4, 4), channels=(2, 2), pool_after=(0, 1), hidden=(2, 3)),
        8,
    ),
}


def make(name: str, temperature: float = 0.0):
    kw, seed = NETS[name]
    net = tiny_conv_network(seed=seed, **kw)
    rng = np.random.default_rng(1)
    x = rng.normal(size=net.input_shape)
    gates = net.sample_gates(x, temperature, rng) if temperature else None
    return net, x, gates


def torch_f(net: ConvNetwork, x, gates, params=None):
    """The forward pass in torch with the gates fixed (max-pooling by torch)."""
    params = params or [torch.as_tensor(W) for W in net.weights]
    a = torch.as_tensor(x, dtype=torch.float64).reshape(1, *net.input_shape)
    K = len(net.convs)
    hs = iter(gates)
    for W, pool in zip(params[:K], net.pool_after):
        a = torch.where(torch.as_tensor(next(hs))[None] > 0, F.conv2d(a, W, padding=1), 0.0)
        if pool:
            a = F.max_pool2d(a, 2)
    a = a.flatten(1)
    for W in params[K:-1]:
        a = torch.where(torch.as_tensor(next(hs))[None] > 0, a @ W, 0.0)
    return (a @ params[-1])[0, 0]


def naive_circuits(net: ConvNetwork, x, gates, selections, pool: str):
    """Every circuit and its value, by recursion over the levels, from the definitions."""
    K = len(net.convs)
    levels = [net.input_shape, *net.gate_shapes]
    D = net.depth

    def pooled_sources(t, c, ys, xs):
        """Units of level t behind position (c, ys, xs) of its (pooled) map, with factors."""
        if t == 0 or not net.pool_after[t - 1]:
            return [((c, ys, xs), 1.0)]
        win = [(c, 2 * ys + dy, 2 * xs + dx) for dy in range(2) for dx in range(2)]
        k = int(selections[t - 1][c, ys, xs])
        if pool == "select":
            return [(win[k], 1.0)]
        return [(u, float(i == k)) for i, u in enumerate(win)]

    def edges_into(t, v):
        """(source unit, weight, factor) of edges from level t into unit v of level t + 1."""
        out = []
        if t < K:
            W = net.convs[t]
            co, y, xx = v
            h, w = net.conv_shapes[t][1:]
            for c, i, j in itertools.product(range(W.shape[1]), range(3), range(3)):
                ys, xs = y + i - 1, xx + j - 1
                if 0 <= ys < h and 0 <= xs < w:
                    for u, s in pooled_sources(t, c, ys, xs):
                        out.append((u, W[co, c, i, j], s))
        else:
            W = net.linears[t - K]
            if t == K:  # flatten the (pooled) map of the last convolution or the input
                shape = net.conv_shapes[-1] if K else net.input_shape
                if K and net.pool_after[-1]:
                    shape = (shape[0], shape[1] // 2, shape[2] // 2)
                for f in range(W.shape[0]):
                    c, ys, xs = np.unravel_index(f, shape)
                    for u, s in pooled_sources(t, int(c), int(ys), int(xs)):
                        out.append((u, W[f, v[0]], s))
            else:
                for a in range(W.shape[0]):
                    out.append(((a,), W[a, v[0]], 1.0))
        return out

    found = []

    def walk(t, v, suffix, value):  # backwards from unit v of level t + 1
        for u, w, s in edges_into(t, v):
            g = x[u] if t == 0 else gates[t - 1][u]
            val = value * w * s * g
            path = ((t, u), *suffix)
            if t == 0:
                found.append((path, val))
            else:
                walk(t - 1, u, path, val)

    walk(D - 1, (0,), (), 1.0)
    flat = [tuple(int(np.ravel_multi_index(u, levels[t])) for t, u in path) for path, _ in found]
    return flat, np.array([v for _, v in found])


# -- the network ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(NETS))
@pytest.mark.parametrize("temperature", [0.0, 0.7])
def test_numpy_forward_is_torchs(name, temperature):
    net, x, gates = make(name, temperature)
    fw = net.forward(x, gates)
    assert fw.output == pytest.approx(float(torch_f(net, x, fw.gates)), rel=1e-12, abs=1e-14)
    if temperature == 0:  # the ReLU gates are 1[z > 0]
        for z, h in zip(fw.logits, fw.gates):
            np.testing.assert_array_equal(h, (z > 0).astype(float))


def test_a_gated_vgg_converts_exactly():
    from umwelt.nn import build_vgg

    m = build_vgg("vgg11", width=1 / 32, temperature=0.0, seed=0, dtype=torch.float64)
    net = ConvNetwork.from_torch(m)
    x = np.random.default_rng(0).normal(size=(3, 32, 32))
    fw = net.forward(x)
    xt = torch.as_tensor(x)[None]
    with torch.no_grad():
        assert fw.output == pytest.approx(float(m(xt)[0]), rel=1e-12)
    for h, ht in zip(fw.gates, m.relu_gates(xt)):
        np.testing.assert_array_equal(h, ht[0].numpy().astype(float))
    assert net.parameter_count() == sum(p.numel() for p in m.parameters())


# -- every circuit --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "pool"),
    [
        ("1x4x4-c2M-3", "select"),
        ("1x4x4-c2M-3", "gate"),
        ("1x8x8-c2M-c2M-3", "select"),
        pytest.param("1x8x8-c2M-c2M-3", "gate", marks=pytest.mark.slow),  # 37,632 circuits
    ],
)
@pytest.mark.parametrize("temperature", [0.0, 0.7])
def test_circuits_are_the_naive_paths_and_sum_to_the_forward_pass(name, temperature, pool):
    net, x, gates = make(name, temperature)
    cc = ConvCircuits(net, x, gates, pool=pool)
    fw = cc.forward
    want_paths, want_vals = naive_circuits(net, x, fw.gates, fw.selections, pool)
    paths = cc.all_paths()
    assert cc.count == len(want_paths) == len(set(want_paths)) == paths.shape[0]
    got = {tuple(int(u) for u in p): v for p, v in zip(paths, cc.values(paths))}
    assert set(got) == set(want_paths)
    for p, v in zip(want_paths, want_vals):
        assert got[p] == pytest.approx(v, rel=1e-12, abs=1e-300)
    f = float(torch_f(net, x, fw.gates))
    scale = np.abs(want_vals).sum()
    assert abs(sum(got.values()) - f) <= 1e-12 * scale
    assert abs(cc.path_sum() - f) <= 1e-12 * scale
    # path counts per unit multiply to the circuits through it
    for t in range(cc.depth):
        through = np.bincount(paths[:, t], minlength=cc.level_sizes[t])
        assert through.tolist() == [cc.through(t, u) for u in range(cc.level_sizes[t])]


def test_the_pool_gate_mode_keeps_every_window_unit_and_does_not_depend_on_the_input():
    net, x, _ = make("1x8x8-c2M-c2M-3")
    counts = {ConvCircuits(net, x * s, pool="gate").count for s in (1.0, -1.0, 0.3)}
    assert len(counts) == 1
    sel, gate = ConvCircuits(net, x, pool="select"), ConvCircuits(net, x, pool="gate")
    assert sel.count < gate.count == counts.pop()
    assert gate.n_edges == gate._edge_count() > sel.n_edges == sel._edge_count()


@pytest.mark.parametrize("name", sorted(NETS))
def test_numbering_is_a_bijection(name):
    net, x, gates = make(name)
    cc = ConvCircuits(net, x, gates)
    assert cc.n_edges == cc._edge_count()  # the budget check counts the edges exactly
    paths = cc.all_paths()
    assert list(cc.indices(paths)) == list(range(cc.count))
    assert len({tuple(p) for p in paths.tolist()}) == cc.count
    rng = np.random.default_rng(0)
    for i in rng.integers(0, cc.count, size=10).tolist():
        assert cc.index(cc.path(i)) == i


def test_a_net_without_convolutions_has_the_mlp_circuits_in_the_same_order():
    net = LayeredNetwork.he_normal((3, 4, 3, 2, 1), seed=1)
    rng = np.random.default_rng(2)
    x = rng.normal(size=3)
    gates = [h[0] for h in net.sample(x[None], 1.0, rng).gates]
    cc = ConvCircuits(ConvNetwork.from_layered(net), x, gates)
    paths = cc.all_paths()
    np.testing.assert_array_equal(paths, PathIndex.from_network(net).all_paths())
    np.testing.assert_allclose(cc.values(paths), circuit_values(net, x, gates), rtol=1e-14)


# -- uniform sampling -----------------------------------------------------------------------------


@pytest.mark.parametrize("pool", ["select", "gate"])
def test_sampling_is_uniform(pool):
    net, x, _ = make("1x4x4-c2M-3")
    cc = ConvCircuits(net, x, pool=pool)
    n = 40 * cc.count
    idx = np.array(list(cc.indices(cc.sample_paths(n, np.random.default_rng(3)))), dtype=np.int64)
    counts = np.bincount(idx, minlength=cc.count)
    assert stats.chisquare(counts).pvalue > 1e-3


def test_sampling_is_uniform_on_two_convolutions_and_per_level():
    net, x, _ = make("1x8x8-c2M-c2M-3")
    cc = ConvCircuits(net, x)
    S = cc.sample_paths(30 * cc.count, np.random.default_rng(4))
    counts = np.bincount(np.array(list(cc.indices(S)), dtype=np.int64), minlength=cc.count)
    assert stats.chisquare(counts).pvalue > 1e-3
    for t in range(cc.depth):  # a unit is hit in proportion to the circuits through it
        want = np.array([cc.through(t, u) for u in range(cc.level_sizes[t])], float)
        obs = np.bincount(S[:, t], minlength=cc.level_sizes[t])
        assert np.all(obs[want == 0] == 0)
        m = want > 0
        assert stats.chisquare(obs[m], want[m] / cc.count * len(S)).pvalue > 1e-3


def test_counts_beyond_int64_are_python_ints_and_sampling_still_works():
    from umwelt.nn import build_vgg

    m = build_vgg("vgg11", width=1 / 16, temperature=0.0, seed=0, dtype=torch.float64)
    net = ConvNetwork.from_torch(m)
    x = np.random.default_rng(0).normal(size=(3, 32, 32))
    cc = ConvCircuits(net, x)
    assert isinstance(cc.count, int) and cc.count > 2**63
    assert cc.count == int(cc.to_output[0].sum())
    paths = cc.sample_paths(200, np.random.default_rng(1))
    cc.edges(paths)  # every step an edge of the graph
    big = cc.count - 12345
    assert cc.index(cc.path(big)) == big
    with torch.no_grad():
        f = float(m(torch.as_tensor(x)[None])[0])
    assert cc.path_sum() == pytest.approx(f, rel=1e-12)
    v = cc.values(paths)
    assert np.all(np.isfinite(v))


def test_randbelow_is_exact_and_in_range():
    rng = np.random.default_rng(0)
    highs = np.array([2**70 + 3] * 4000 + [7] * 4000, dtype=object)
    r = _randbelow(highs, rng)
    assert all(0 <= a < h for a, h in zip(r, highs))
    top = np.array([float(a) / 2**70 for a in r[:4000]])
    assert stats.kstest(top, "uniform").pvalue > 1e-3
    assert stats.chisquare(np.bincount(r[4000:].astype(np.int64), minlength=7)).pvalue > 1e-3


# -- sums over every circuit vs autograd ----------------------------------------------------------


def autograd(net, x, gates):
    params = [torch.tensor(W, requires_grad=True) for W in net.weights]
    f = torch_f(net, x, gates, params)
    grads = torch.autograd.grad(f, params)
    flat = torch.cat([p.detach().reshape(-1) for p in params])
    offs = np.concatenate([[0], np.cumsum([W.size for W in net.weights])])

    def ff(v):
        ps = [v[offs[i] : offs[i + 1]].reshape(W.shape) for i, W in enumerate(net.weights)]
        return torch_f(net, x, gates, ps)

    H = torch.func.jacrev(torch.func.jacrev(ff))(flat).numpy()  # reverse over reverse: no jvp
    return [g.numpy() for g in grads], H, offs


@pytest.mark.parametrize("pool", ["select", "gate"])
@pytest.mark.parametrize("temperature", [0.0, 0.5])
def test_gradient_and_hessian_as_circuit_sums(pool, temperature):
    net, x, gates = make("2x4x4-c2-c2M-2-3", temperature)
    cc = ConvCircuits(net, x, gates, pool=pool)
    g_t, H, offs = autograd(net, x, cc.forward.gates)
    paths, _ = cc.enumerate()
    prm = cc.params(paths)
    scale = max(np.abs(g).max() for g in g_t)
    for l, (gd, gt) in enumerate(zip(cc.gradient(), g_t), start=1):
        np.testing.assert_allclose(gd, gt, rtol=0, atol=1e-12 * scale)
        om = cc.values(paths, l)
        ge = np.bincount(prm[:, l - 1], weights=om, minlength=gt.size).reshape(gt.shape)
        np.testing.assert_allclose(ge, gt, rtol=0, atol=1e-12 * scale)
    rng = np.random.default_rng(0)
    entries = []
    for _ in range(40):  # entries along circuits (they have circuits) and at random
        p = paths[rng.integers(len(paths))]
        l1, l2 = sorted(rng.choice(np.arange(1, net.depth + 1), 2, replace=False).tolist())
        q = cc.params(p[None])[0]
        entries.append((l1, int(q[l1 - 1]), l2, int(q[l2 - 1])))
        entries.append((l1, int(rng.integers(net.weights[l1 - 1].size)), l2, 0))
    want = np.array([H[offs[a - 1] + p, offs[b - 1] + q] for a, p, b, q in entries])
    got = cc.hessian_entries(entries)
    hs = np.abs(want).max()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * hs)
    for (a, p, b, q), w in zip(entries, want):
        m = (prm[:, a - 1] == p) & (prm[:, b - 1] == q)
        assert cc.values(paths[m], (a, b)).sum() == pytest.approx(w, abs=1e-12 * hs)
    # within-layer entries vanish: no circuit carries two weights of one layer
    assert np.all(cc.hessian_entries([(2, 0, 2, 5), (1, 3, 1, 3)]) == 0)
    assert np.all(H[offs[1] : offs[2], offs[1] : offs[2]] == 0)


def test_sampled_conv_perturbations():
    net, x, _ = make("1x8x8-c2M-c2M-3")
    ccs = [ConvCircuits(net, x), ConvCircuits(net, -x)]
    s = sample_conv_perturbations(ccs, n=500, rng=0)
    for order, k in (("psi", 0), ("omega1", 1), ("omega2", 2)):
        c = s[order]
        for b in (0, 1):
            m = c.inputs == b
            wl = tuple(c.layers[m, j] for j in range(k))
            np.testing.assert_array_equal(c.values[m], ccs[b].values(c.paths[m], wl))


# -- bad input ------------------------------------------------------------------------------------


def test_bad_paths_indices_and_inputs_are_refused():
    net, x, _ = make("1x4x4-c2M-3")
    cc = ConvCircuits(net, x)
    p = cc.path(0)
    with pytest.raises(ConfigError, match="not a circuit"):
        cc.edges([[15, p[1], p[2]]])  # input pixel (0, 3, 3) is not next to every unit
    with pytest.raises(ConfigError, match="out of range"):
        cc.path(cc.count)
    with pytest.raises(ConfigError, match="out of range"):
        cc.paths([-1])
    with pytest.raises(ConfigError, match="outside"):
        cc.values([[99, 0, 0]])
    with pytest.raises(ShapeError, match="shape"):
        cc.values([[0, 0]])
    with pytest.raises(ShapeError, match="input must have shape"):
        ConvCircuits(net, np.ones(15))
    with pytest.raises(ShapeError, match="gates of conv1"):
        ConvCircuits(net, x, [np.ones((2, 4, 3)), np.ones(3)])
    with pytest.raises(ShapeError, match="gate layers"):
        ConvCircuits(net, x, [np.ones((2, 4, 4))])
    with pytest.raises(ConfigError, match="pool"):
        ConvCircuits(net, x, pool="average")
    with pytest.raises(EnumerationLimitError, match="edges, over the budget"):
        ConvCircuits(net, x, max_edges=10)
    with pytest.raises(EnumerationLimitError, match="over the limit"):
        cc.enumerate(limit=10)
    with pytest.raises(ConfigError, match="differ"):
        cc.values(cc.all_paths(), (2, 2))


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (((1, 4, 4), [np.ones((2, 1, 2, 2))], [False], [np.ones((32, 1))]), "k odd"),
        (((1, 4, 4), [np.ones((2, 3, 3, 3))], [False], [np.ones((32, 1))]), "takes 3 channels"),
        (((1, 5, 5), [np.ones((2, 1, 3, 3))], [True], [np.ones((8, 1))]), "odd"),
        (((1, 4, 4), [np.ones((2, 1, 3, 3))], [True], [np.ones((8, 2))]), "output width"),
        (((1, 4, 4), [np.ones((2, 1, 3, 3))], [True], [np.ones((9, 1))]), "fc1"),
        (((1, 4, 4), [np.ones((2, 1, 3, 3))], [], [np.ones((8, 1))]), "one flag"),
    ],
)
def test_malformed_conv_nets_are_refused(args, match):
    with pytest.raises(ShapeError, match=match):
        ConvNetwork(*args)


def test_dead_nets_have_zero_sums():
    net, x, _ = make("1x4x4-c2M-3")
    cc = ConvCircuits(net, x, [np.zeros((2, 4, 4)), np.zeros(3)])
    assert cc.path_sum() == 0.0 and cc.count > 0 and math.isfinite(cc.count)
