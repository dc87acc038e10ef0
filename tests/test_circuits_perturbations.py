"""Perturbations of circuits (umwelt.circuits.perturbations): derivatives as circuit sums.

Oracles, independent of the circuit code: torch autograd through ``GatedMLP.forward_with_gates``
in float64 (gradient, full Hessian with ``torch.func.hessian``), and finite differences of
``LayeredNetwork.output`` with the gates fixed. With the gates fixed ``f`` is affine in each
weight and bilinear in any two weights of different layers, so central differences with step 1
are exact up to rounding: the comparison holds to 1e-10.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from cases import inputs

from umwelt import ConfigError, LayeredNetwork
from umwelt.circuits import (
    PathIndex,
    circuit_derivative,
    circuit_stats,
    circuit_values,
    first_order,
    sample_circuits,
    sampled_circuit_values,
    sampled_first_order,
    sampled_second_order,
    second_order,
)
from umwelt.nn import GatedMLP

WIDTHS = [(3, 1), (2, 2, 1), (3, 4, 3, 1), (4, 3, 3, 2, 1), (2, 3, 2, 3, 2, 1)]


def setup(widths, seed=0):
    """A net, one input and one sampled gate configuration at T = 1 (1-D)."""
    net = LayeredNetwork.he_normal(widths, seed=seed)
    x = inputs(net, batch=1, seed=seed + 1)
    gates = [h[0] for h in net.sample(x, 1.0, np.random.default_rng(seed + 2)).gates]
    return net, x[0], gates


def all_weights(net):
    """Every weight ``(layer, a, b)``."""
    return [
        (l, a, b)
        for l, w in enumerate(net.weights, start=1)
        for a in range(w.shape[0])
        for b in range(w.shape[1])
    ]


def torch_derivatives(net, x, gates):
    """Gradient and Hessian of f w.r.t. the weights (paper orientation), gates fixed, float64."""
    ht = [torch.as_tensor(h[None]) for h in gates]

    class WithGates(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.mlp = GatedMLP.from_network(net, temperature=0.0, dtype=torch.float64)

        def forward(self, xt):
            return self.mlp.forward_with_gates(xt, ht)

    model = WithGates()
    names = [f"mlp.linears.{l}.weight" for l in range(net.depth)]
    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    xt = torch.as_tensor(x[None], dtype=torch.float64)

    def f(p):
        return torch.func.functional_call(model, p, (xt,))[0]

    grad = torch.func.grad(f)(params)
    hess = torch.func.jacrev(torch.func.jacrev(f))(params)  # reverse over reverse: no jvp
    g = [grad[n].T.numpy() for n in names]  # linear.weight is W^T
    H = {
        (l1, l2): hess[n1][n2].permute(1, 0, 3, 2).numpy()
        for (l1, n1), (l2, n2) in itertools.product(enumerate(names, 1), repeat=2)
    }
    return g, H  # g[l-1][a, b]; H[l, l'][a, b, c, d]


def fd_first(net, x, gates, l, a, b, eps=1.0):
    """Central difference and the magnitude of the outputs it subtracts (its round-off)."""
    out = []
    for s in (eps, -eps):
        ws = [w.copy() for w in net.weights]
        ws[l - 1][a, b] += s
        out.append(LayeredNetwork(ws).output(x, gates)[0])
    return (out[0] - out[1]) / (2 * eps), max(map(abs, out))


def fd_second(net, x, gates, w1, w2, eps=1.0):
    tot, mag = 0.0, 0.0
    for s1, s2 in itertools.product((1, -1), repeat=2):
        ws = [w.copy() for w in net.weights]
        ws[w1[0] - 1][w1[1], w1[2]] += s1 * eps
        ws[w2[0] - 1][w2[1], w2[2]] += s2 * eps
        f = LayeredNetwork(ws).output(x, gates)[0]
        tot += s1 * s2 * f
        mag = max(mag, abs(f))
    return tot / (4 * eps * eps), mag


def assert_close(got, want, scale):
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13 * (scale + 1e-300))


@pytest.mark.parametrize("widths", WIDTHS, ids=str)
def test_first_order_sums_are_the_gradient(widths):
    net, x, gates = setup(widths)
    g, _ = torch_derivatives(net, x, gates)
    for l, a, b in all_weights(net):
        om = first_order(net, x, gates, l, a, b)
        assert om.shape == (PathIndex.from_network(net).through((l, a, b)).count,)
        scale = float(np.abs(om).sum() + abs(g[l - 1][a, b]))
        assert_close(om.sum(), g[l - 1][a, b], scale)
        fd, mag = fd_first(net, x, gates, l, a, b)
        assert_close(om.sum(), fd, scale + mag)
        assert_close(circuit_derivative(net, x, gates, [(l, a, b)]), om.sum(), scale)
        np.testing.assert_array_equal(om, first_order(net, x, gates, l, a, b, backend="numpy"))


@pytest.mark.parametrize("widths", WIDTHS[1:], ids=str)
def test_second_order_sums_are_the_hessian(widths):
    net, x, gates = setup(widths, seed=3)
    _, H = torch_derivatives(net, x, gates)
    ws = all_weights(net)
    for w1, w2 in itertools.combinations(ws, 2):
        (l1, a, b), (l2, c, d) = w1, w2
        h = H[l1, l2][a, b, c, d]
        if l1 == l2:
            assert h == 0.0  # within-layer blocks are exactly zero
            with pytest.raises(ConfigError, match="distinct layers"):
                second_order(net, x, gates, l1, a, b, l2, c, d)
            assert PathIndex.from_network(net).through(w1, w2).count == 0
            continue
        om = second_order(net, x, gates, l1, a, b, l2, c, d)
        assert om.shape == (PathIndex.from_network(net).through(w1, w2).count,)
        scale = float(np.abs(om).sum() + abs(h))
        assert_close(om.sum(), h, scale)
        fd, mag = fd_second(net, x, gates, w1, w2)
        assert_close(om.sum(), fd, scale + mag)
        assert_close(om.sum(), H[l2, l1][c, d, a, b], scale)  # symmetric


@pytest.mark.parametrize("widths", WIDTHS[1:], ids=str)
def test_within_layer_hessian_blocks_are_exactly_zero(widths):
    net, x, gates = setup(widths, seed=4)
    _, H = torch_derivatives(net, x, gates)
    for l in range(1, net.depth + 1):
        assert not np.any(H[l, l])
    # every circuit uses one weight per layer: two weights of a layer share no circuit
    idx = PathIndex.from_network(net)
    for l, w in enumerate(net.weights, start=1):
        cells = list(itertools.product(range(w.shape[0]), range(w.shape[1])))
        counts = [idx.through((l, a, b)).count for a, b in cells]
        assert sum(counts) == idx.count  # a partition of all circuits
        for (a, b), (c, d) in itertools.combinations(cells, 2):
            assert idx.through((l, a, b), (l, c, d)).count == 0


def test_perturbations_are_circuits_with_a_factor_replaced():
    """Ω^{(l)}_i = Ψ_i / W^l_{ab} wherever the weight is non-zero; Ω^{(l,l')} likewise."""
    net, x, gates = setup((3, 4, 3, 2, 1), seed=5)
    psi = circuit_values(net, x, gates)
    full = PathIndex.from_network(net)
    for l, a, b in [(1, 2, 3), (2, 1, 0), (3, 2, 1), (4, 1, 0)]:
        t = full.through((l, a, b))
        om = first_order(net, x, gates, l, a, b)
        rows = full.indices(t.all_paths())  # ordered like om
        assert np.all(np.diff(rows) > 0)
        np.testing.assert_allclose(om * net.weights[l - 1][a, b], psi[rows], rtol=1e-14)
    t = full.through((1, 0, 1), (3, 2, 1))
    om2 = second_order(net, x, gates, 1, 0, 1, 3, 2, 1)
    prod = net.weights[0][0, 1] * net.weights[2][2, 1]
    np.testing.assert_allclose(om2 * prod, psi[full.indices(t.all_paths())], rtol=1e-14)


def test_disjoint_weights_have_no_common_circuit():
    net, x, gates = setup((3, 4, 3, 1), seed=6)
    om = second_order(net, x, gates, 1, 0, 1, 2, 2, 0)  # W^1 ends at unit 1, W^2 starts at 2
    assert om.shape == (0,)
    s = circuit_stats(net, x, gates, wrt=[(1, 0, 1), (2, 2, 0)], bins=4)
    assert s.count == 0 and s.sum == 0.0 and s.hist.tolist() == [0, 0, 0, 0]
    assert circuit_derivative(net, x, gates, [(1, 0, 1), (2, 2, 0)]) == 0.0


@pytest.mark.parametrize("widths", WIDTHS, ids=str)
def test_sampled_perturbations_equal_the_enumerated_ones(widths):
    net, x, gates = setup(widths, seed=7)
    L = net.depth
    full = PathIndex.from_network(net)
    paths = sample_circuits(net, 40, np.random.default_rng(0))
    for l in range(1, L + 1):
        got = sampled_first_order(net, x, gates, paths, l)
        np.testing.assert_array_equal(
            got, sampled_first_order(net, x, gates, paths, l, backend="numpy")
        )
        for s, p in enumerate(paths):
            w = (l, p[l - 1], p[l] if l < L else 0)
            t = full.through(w)
            om = first_order(net, x, gates, *w)
            assert got[s] == om[t.index(p)]
    for l1, l2 in itertools.combinations(range(1, L + 1), 2):
        got = sampled_second_order(net, x, gates, paths, l1, l2)
        np.testing.assert_array_equal(got, sampled_second_order(net, x, gates, paths, l2, l1))
        np.testing.assert_array_equal(
            got, sampled_second_order(net, x, gates, paths, l1, l2, backend="numpy")
        )
        for s, p in enumerate(paths[:10]):
            w1 = (l1, p[l1 - 1], p[l1])
            w2 = (l2, p[l2 - 1], p[l2] if l2 < L else 0)
            om = second_order(net, x, gates, *w1, *w2)
            assert got[s] == om[full.through(w1, w2).index(p)]


def test_sampled_perturbations_with_a_layer_per_circuit_and_a_batch():
    net = LayeredNetwork.he_normal((3, 4, 3, 2, 1), seed=8)
    x = inputs(net, batch=3)
    gates = net.sample(x, 1.0, np.random.default_rng(0)).gates
    rng = np.random.default_rng(1)
    paths = sample_circuits(net, 30, rng)
    layers = rng.integers(1, 5, size=30)
    got = sampled_first_order(net, x, gates, paths, layers)
    assert got.shape == (3, 30)
    for l in range(1, 5):
        sel = layers == l
        np.testing.assert_array_equal(
            got[:, sel], sampled_first_order(net, x, gates, paths[sel], l)
        )
    l2 = np.where(layers == 4, 1, 4)
    got2 = sampled_second_order(net, x, gates, paths, layers, l2)
    np.testing.assert_array_equal(
        got2, sampled_second_order(net, x, gates, paths, layers, l2, backend="numpy")
    )
    with pytest.raises(ConfigError, match="must differ, both are 2 for sample"):
        sampled_second_order(net, x, gates, paths, layers, 2)
    with pytest.raises(ConfigError, match=r"layers must be in \[1, 4\], got 5"):
        sampled_first_order(net, x, gates, paths, 5)


def test_first_order_streamed_stats_and_batches():
    net, x, gates = setup((4, 3, 3, 2, 1), seed=9)
    om = first_order(net, x, gates, 2, 1, 2)
    s = circuit_stats(net, x, gates, wrt=[(2, 1, 2)], bins=5)
    np.testing.assert_array_equal(s.hist, np.histogram(om, bins=5)[0])
    assert s.count == om.size and s.min == om.min() and s.max == om.max()
    xb = np.stack([x, 2 * x])
    gb = [np.stack([h, h]) for h in gates]
    both = first_order(net, xb, gb, 2, 1, 2)
    np.testing.assert_allclose(both, np.stack([om, 2 * om]), rtol=1e-15)
    np.testing.assert_allclose(
        circuit_derivative(net, xb, gb, [(2, 1, 2)]), [om.sum(), 2 * om.sum()], rtol=1e-12
    )


def test_bad_weights_name_the_values():
    net, x, gates = setup((3, 4, 3, 1))
    with pytest.raises(ConfigError, match=r"W\^1 has rows \[0, 3\), got a = 3"):
        first_order(net, x, gates, 1, 3, 0)
    with pytest.raises(ConfigError, match=r"weight layer must be in \[1, 3\], got 0"):
        first_order(net, x, gates, 0, 0, 0)
    with pytest.raises(ConfigError, match=r"W\^3 has columns \[0, 1\), got b = 2"):
        first_order(net, x, gates, 3, 0, 2)
    with pytest.raises(ConfigError, match="sequence of weights"):
        circuit_values(net, x, gates, wrt=(1, 0, 0))
    with pytest.raises(ConfigError, match="at most two layers"):
        sampled_circuit_values(net, x, gates, [0], wrt_layers=(1, 2, 3))
