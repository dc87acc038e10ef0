"""GateNoise: the law of its uniforms, reproducibility, state round trips, the gates it draws."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from umwelt import gates as gl
from umwelt.errors import ConfigError
from umwelt.network import LayeredNetwork
from umwelt.nn import Gate, GatedMLP, GateNoise

F64 = torch.float64


@pytest.mark.parametrize("dtype, grid", [(torch.float32, 2.0**-23), (torch.float64, 2.0**-52)])
def test_uniforms_lie_on_the_grid_in_unit_interval_and_are_uniform(dtype, grid):
    u = GateNoise(3).uniform((200_003,), dtype)  # odd: the last word is half used in float32
    assert u.dtype == dtype and u.shape == (200_003,)
    assert float(u.min()) >= 0.0 and float(u.max()) < 1.0
    k = u.double() / grid
    assert torch.equal(k, k.round())  # u = k 2^-m exactly
    # Kolmogorov–Smirnov against U[0, 1): a broken bit trick (wrong mask, sign bits) fails this
    assert stats.kstest(u.double().numpy(), "uniform").pvalue > 1e-4
    # neighbours are uncorrelated (the two halves of a word are independent in float32)
    a = u.double().numpy()
    assert abs(np.corrcoef(a[:-1], a[1:])[0, 1]) < 5 / np.sqrt(a.size)


def test_other_dtypes_get_float32_uniforms():
    assert GateNoise(0).uniform((4,), torch.float16).dtype == torch.float32


def test_same_seed_same_numbers_other_seed_other_numbers():
    a, b, c = GateNoise(11), GateNoise(11), GateNoise(12)
    ua, ub, uc = (g.uniform((5, 7)) for g in (a, b, c))
    assert torch.equal(ua, ub) and not torch.equal(ua, uc)
    assert not torch.equal(a.uniform((5, 7)), ua)  # the stream moves on
    a.manual_seed(11)
    assert torch.equal(a.uniform((5, 7)), ua)


def test_a_draw_continues_the_stream_word_by_word():
    """Drawing n then m numbers equals drawing n + m (an even n: float32 uses whole words)."""
    a, b = GateNoise(2), GateNoise(2)
    both = a.uniform((1000,))
    assert torch.equal(torch.cat([b.uniform((400,)), b.uniform((600,))]), both)
    u = GateNoise(2).uniform((1000,), F64)
    assert abs(np.corrcoef(u[:500].numpy(), u[500:].numpy())[0, 1]) < 5 / np.sqrt(500)


def test_state_round_trip_continues_the_stream_exactly():
    a = GateNoise(9)
    a.uniform((123,))
    state = a.get_state()
    assert state.dtype == torch.uint8 and state.device.type == "cpu"
    expected = a.uniform((1000,))
    b = GateNoise(0).set_state(state)
    assert torch.equal(b.uniform((1000,)), expected)
    # a checkpoint stores it; weights_only loading takes it back
    assert torch.equal(a.set_state(state).get_state(), state)


def test_bad_seed_and_foreign_state_are_config_errors():
    with pytest.raises(ConfigError, match="-1"):
        GateNoise(-1)
    with pytest.raises(ConfigError, match="1.5"):
        GateNoise(1.5)
    with pytest.raises(ConfigError, match="bytes"):
        GateNoise(0).set_state(torch.Generator().get_state())  # a torch CPU generator's state
    with pytest.raises(ConfigError, match="uint8"):
        GateNoise(0).set_state(torch.zeros(96))


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_gate_draws_h_equal_u_below_sigmoid(dtype):
    """The gate's rule with GateNoise: h = 1[u < σ(z/T)], u the source's next uniforms."""
    T = 0.7
    z = torch.randn(64, 33, generator=torch.Generator().manual_seed(0), dtype=dtype)
    noise = GateNoise(4)
    twin = GateNoise(0).set_state(noise.get_state())
    gate = Gate(T, "sample", generator=noise, record=True)
    out = gate(z)
    h = twin.uniform(z.shape, dtype) < torch.sigmoid(z / T)
    assert torch.equal(gate.last_gates, h)
    assert torch.equal(out, torch.where(h, z, 0.0))


def test_gate_keeps_half_precision_logits_half():
    z = torch.randn(10, 10, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    out = Gate(0.5, "sample", generator=GateNoise(0))(z)
    assert out.dtype == torch.bfloat16


def test_sampled_marginals_match_the_gate_law():
    """Binomial check of every unit's open-gate frequency against σ(z/T) (exact numpy law)."""
    net = LayeredNetwork.he_normal((5, 6, 1), seed=4)
    model = GatedMLP.from_network(net, temperature=1.3, dtype=torch.float32)
    model.set_generator(GateNoise(1)).set_record(True)
    N = 40_000
    x = np.random.default_rng(0).standard_normal((2, 5))
    with torch.no_grad():
        model(torch.from_numpy(np.repeat(x, N, axis=0)).float())
    h = model.gates[0].last_gates.double().numpy().reshape(2, N, 6)
    p = gl.gate_probabilities(x @ net.weights[0], 1.3)  # (2, 6)
    se = np.sqrt(p * (1 - p) / N)
    assert np.all(np.abs(h.mean(axis=1) - p) < 4 * se + 1e-6)


def test_model_refuses_noise_on_another_device():
    model = GatedMLP.from_network(LayeredNetwork.he_normal((3, 2, 1), seed=0), temperature=1.0)
    model.set_generator(GateNoise(0, "cpu"))
    assert all(isinstance(g.generator, GateNoise) for g in model.gates)
    if torch.cuda.is_available():
        with pytest.raises(ConfigError, match="cuda"):
            model.set_generator(GateNoise(0, "cuda"))
