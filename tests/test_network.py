"""The layered network as a graphical model: sampling, log-probabilities, limits."""

import itertools
import math

import numpy as np
import pytest
from cases import inputs, tiny_network

from umwelt.errors import ConfigError, ShapeError
from umwelt.network import LayeredNetwork, parse_widths


def test_he_normal_is_seeded_and_scaled():
    a = LayeredNetwork.he_normal((400, 300, 1), seed=3)
    b = LayeredNetwork.he_normal("400,300,1", seed=3)
    for wa, wb in zip(a.weights, b.weights):
        np.testing.assert_array_equal(wa, wb)
    assert a.widths == (400, 300, 1)
    # variance gain²/n_in within sampling error (120k draws)
    assert a.weights[0].var() * 400 == pytest.approx(2.0, rel=0.02)
    c = LayeredNetwork.he_normal((400, 300, 1), seed=4)
    assert not np.array_equal(a.weights[0], c.weights[0])


def test_zero_temperature_sample_is_the_relu_network(tiny_net):
    x = inputs(tiny_net, batch=7)
    s = tiny_net.sample(x, 0.0, np.random.default_rng(0))
    # independent ReLU forward written out
    a = x
    for w in tiny_net.weights[:-1]:
        a = np.maximum(a @ w, 0.0)
    np.testing.assert_array_equal(s.output, (a @ tiny_net.weights[-1])[:, 0])
    np.testing.assert_array_equal(tiny_net.relu_forward(x), s.output)
    np.testing.assert_array_equal(tiny_net.log_prob(x, s.gates, 0.0), 0.0)
    np.testing.assert_allclose(tiny_net.mean_field_forward(x, 0.0), s.output, rtol=0, atol=0)


def test_output_for_gates_matches_the_sample(tiny_net):
    x = inputs(tiny_net, batch=5)
    s = tiny_net.sample(x, 0.7, np.random.default_rng(1))
    np.testing.assert_array_equal(tiny_net.output(x, s.gates), s.output)
    zs = tiny_net.logits(x, s.gates)
    for z, zs_sampled in zip(zs, s.logits):
        np.testing.assert_array_equal(z, zs_sampled)


def test_log_prob_normalizes_over_all_configurations():
    net = tiny_network("3-4-3-1")
    x = inputs(net, batch=2)
    n1, n2 = net.hidden_widths
    total = np.zeros(2)
    for bits in itertools.product([0, 1], repeat=n1 + n2):
        h1 = np.broadcast_to(np.array(bits[:n1], bool), (2, n1))
        h2 = np.broadcast_to(np.array(bits[n1:], bool), (2, n2))
        total += np.exp(net.log_prob(x, [h1, h2], 0.8))
    np.testing.assert_allclose(total, 1.0, rtol=1e-12)


def test_infinite_temperature_and_mean_field_halves():
    net = tiny_network("5-5-1")
    x = inputs(net)
    # at T = inf every hidden unit outputs z/2 in mean field
    a = x @ net.weights[0] / 2
    np.testing.assert_allclose(net.mean_field_forward(x, math.inf), (a @ net.weights[1])[:, 0])


def test_sampling_frequencies_match_log_prob():
    net = tiny_network("2-2-1")
    x = inputs(net, batch=1)
    n = 40_000
    s = net.sample(np.repeat(x, n, axis=0), 1.0, np.random.default_rng(5))
    codes = s.gates[0] @ np.array([1, 2])
    for k, bits in enumerate([(0, 0), (1, 0), (0, 1), (1, 1)]):
        p = math.exp(net.log_prob(x, [np.array([bits], bool)], 1.0)[0])
        freq = np.mean(codes == k)
        assert abs(freq - p) < 4 * math.sqrt(p * (1 - p) / n) + 1e-12


@pytest.mark.parametrize("bad", ["", " ", "32,", "a,b", "0,3", "-1", ",", "3,,4", "2.5"])
def test_bad_widths_are_named(bad):
    with pytest.raises(ConfigError, match="positive integers|must not be empty"):
        parse_widths(bad)


def test_shape_errors_name_the_shapes():
    with pytest.raises(ShapeError, match="W_2 has 3 inputs but W_1 has 4 outputs"):
        LayeredNetwork([np.zeros((2, 4)), np.zeros((3, 1))])
    with pytest.raises(ShapeError, match="width 1, got 2"):
        LayeredNetwork([np.zeros((2, 2))])
    net = tiny_network("2-2-1")
    with pytest.raises(ShapeError, match=r"\(B, 2\), got \(3, 5\)"):
        net.relu_forward(np.zeros((3, 5)))
    with pytest.raises(ShapeError, match="expected 1 gate layers"):
        net.output(np.zeros((1, 2)), [])
    with pytest.raises(ConfigError, match="output width must be 1"):
        LayeredNetwork.he_normal((3, 2), seed=0)
