"""The torch backend against independent oracles: torch.relu, closed forms, the numpy engine,
the numpy gate law, and a plainly written SGD loop on an ``nn.Sequential`` ReLU net."""

from __future__ import annotations

import copy
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from cases import inputs

from umwelt import gates as gl
from umwelt.errors import ConfigError, ShapeError, UmweltError
from umwelt.network import LayeredNetwork
from umwelt.nn import (
    Gate,
    GatedMLP,
    build_mlp,
    epoch_order,
    evaluate,
    gate_entropy_bits,
    gate_statistics,
    get_loss,
    hinge_loss,
    logistic_loss,
    make_optimizer,
    order_parameter,
    relu_reference_mlp,
    train_epoch,
)

DTYPES = [torch.float32, torch.float64]
EXTREME_T = [0.0, 1e-300, 0.1, 1.0, 1e300, math.inf]
F64 = torch.float64


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.view(torch.int32 if t.dtype == torch.float32 else torch.int64)


def _logits(dtype: torch.dtype) -> torch.Tensor:
    """Random logits plus the edge cases 0, -0, ±1e-30, ±1, ±1e6."""
    edge = torch.tensor([0.0, -0.0, 1e-30, -1e-30, 1.0, -1.0, 1e6, -1e6], dtype=dtype)
    rnd = torch.randn(40, generator=torch.Generator().manual_seed(0), dtype=dtype)
    return torch.cat([edge, rnd]).reshape(6, 8)


def _synthetic(n: int, d: int, dtype: torch.dtype, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=dtype)  # (n, d)
    y = torch.where(X[:, 0] + 0.5 * X[:, 1] > 0, 1.0, -1.0).to(dtype)  # (n,)
    return X, y


# -- the gate ------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_gate_at_zero_temperature_is_relu_bitwise(dtype):
    z0 = _logits(dtype)
    up = torch.randn(z0.shape, generator=torch.Generator().manual_seed(1), dtype=dtype)
    g = torch.Generator().manual_seed(5)
    state = g.get_state()
    gate = Gate(0.0, "sample", generator=g, record=True)

    z1 = z0.clone().requires_grad_(True)
    out = gate(z1)
    out.backward(up)
    z2 = z0.clone().requires_grad_(True)
    ref = torch.relu(z2)
    ref.backward(up)

    assert torch.equal(_bits(out.detach()), _bits(ref.detach()))
    assert torch.equal(_bits(z1.grad), _bits(z2.grad))
    assert z1.grad[0, 0] == 0 and z1.grad[0, 1] == 0  # ties z = ±0 are closed gates
    assert torch.equal(gate.last_gates, z0 > 0)
    assert torch.equal(g.get_state(), state)  # no random draws at T = 0
    assert torch.equal(Gate(0.0, "mean")(z0), torch.relu(z0))


def test_gate_infinite_temperature_opens_half_the_gates():
    n = 200_000
    z = torch.cat([torch.full((n // 2,), 1e6, dtype=F64), torch.full((n // 2,), -1e6, dtype=F64)])
    gate = Gate(math.inf, "sample", generator=torch.Generator().manual_seed(0), record=True)
    out = gate(z)
    h = gate.last_gates.double()
    for part in (h[: n // 2], h[n // 2 :]):
        se = math.sqrt(0.25 / part.numel())
        assert abs(part.mean().item() - 0.5) < 4 * se
    assert torch.equal(out, torch.where(gate.last_gates, z, 0.0))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("T", [0.3, 1.0, 7.0])
def test_gate_sample_is_uniform_below_sigmoid(dtype, T):
    """h = 1[u < σ(z/T)] with u = torch.rand from the gate's generator; x = where(h, z, 0)."""
    z = _logits(dtype)
    gate = Gate(T, "sample", generator=torch.Generator().manual_seed(7), record=True)
    out = gate(z)
    u = torch.rand(z.shape, generator=torch.Generator().manual_seed(7), dtype=dtype)
    h = u < torch.sigmoid(z / T)
    assert torch.equal(gate.last_gates, h)
    assert torch.equal(out, torch.where(h, z, 0.0))


@pytest.mark.parametrize("T", [0.1, 1.0, 3.0])
def test_gate_mean_mode_closed_forms(T):
    z = _logits(F64)
    out = Gate(T, "mean")(z)
    torch.testing.assert_close(out, z * torch.sigmoid(z / T), rtol=1e-14, atol=0)
    torch.testing.assert_close(out, T * torch.nn.functional.silu(z / T), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(out.numpy(), gl.mean_field(z.numpy(), T), rtol=1e-14)
    assert torch.equal(Gate(math.inf, "mean")(z), z / 2)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("T", EXTREME_T)
@pytest.mark.parametrize("mode", ["sample", "mean", "relu"])
def test_gate_finite_at_extreme_logits_and_temperatures(dtype, T, mode):
    z = _logits(dtype).requires_grad_(True)
    out = Gate(T, mode, generator=torch.Generator().manual_seed(0))(z)
    out.sum().backward()
    assert out.dtype == dtype and out.shape == z.shape
    assert torch.isfinite(out).all() and torch.isfinite(z.grad).all()
    if mode in ("mean", "sample") and T == 1e-300:  # off the tie, p = 0 or 1 exactly
        assert torch.equal(out, torch.relu(z))
    if mode == "mean" and T == 1e300:
        assert torch.equal(out, z.detach() / 2)


def test_gate_relu_mode_ignores_temperature():
    z = _logits(F64)
    for T in (0.0, 1.0, math.inf):
        assert torch.equal(Gate(T, "relu")(z), torch.relu(z))


@pytest.mark.parametrize("T", EXTREME_T)
def test_gate_entropy_matches_numpy(T):
    # numpy's log(1 + e^a) − a σ(a) cancels for large |a| (absolute error ~ |a| ε); ours does not.
    z = _logits(F64)
    np.testing.assert_allclose(
        gate_entropy_bits(z, T).numpy(), gl.gate_entropy_bits(z.numpy(), T), rtol=1e-12, atol=1e-13
    )


# -- the MLP against the numpy engine -----------------------------------------------------------


def test_round_trip_is_exact(tiny_net):
    model = GatedMLP.from_network(tiny_net, temperature=1.0, dtype=F64)
    assert model.widths == tiny_net.widths
    back = model.to_network()
    assert all(np.array_equal(a, b) for a, b in zip(back.weights, tiny_net.weights, strict=True))
    lin0 = model.linears[0].weight
    assert np.array_equal(lin0.detach().numpy(), tiny_net.weights[0].T)


def test_build_mlp_shares_numpy_initialization():
    model = build_mlp((6, 5, 4, 1), temperature=0.5, seed=3, gain=1.5, dtype=F64)
    net = LayeredNetwork.he_normal((6, 5, 4, 1), seed=3, gain=1.5)
    assert all(
        np.array_equal(a, b) for a, b in zip(model.to_network().weights, net.weights, strict=True)
    )
    assert model.temperature == 0.5 and model.mode == "sample" and len(model.gates) == 2


def test_forward_with_gates_equals_numpy(tiny_net):
    model = GatedMLP.from_network(tiny_net, temperature=1.0, dtype=F64)
    x = inputs(tiny_net, batch=7)
    rng = np.random.default_rng(2)
    gates = [rng.random((7, n)) < 0.5 for n in tiny_net.hidden_widths]
    f = model.forward_with_gates(torch.from_numpy(x), [torch.from_numpy(h) for h in gates])
    np.testing.assert_allclose(
        f.detach().numpy(), tiny_net.output(x, gates), rtol=1e-13, atol=1e-14
    )


def test_relu_and_mean_modes_equal_numpy(tiny_net):
    model = GatedMLP.from_network(tiny_net, temperature=0.7, mode="relu", dtype=F64)
    x = inputs(tiny_net, batch=9)
    xt = torch.from_numpy(x)
    with torch.no_grad():
        f_relu = model(xt).numpy()
        f_sample0 = model.set_mode("sample").set_temperature(0.0)(xt).numpy()
        f_mean = model.set_mode("mean").set_temperature(0.7)(xt).numpy()
    np.testing.assert_allclose(f_relu, tiny_net.relu_forward(x), rtol=1e-13, atol=1e-14)
    assert np.array_equal(f_sample0, f_relu)
    np.testing.assert_allclose(f_mean, tiny_net.mean_field_forward(x, 0.7), rtol=1e-13, atol=1e-14)
    relu = model.relu_gates(xt)
    ref = tiny_net.relu_sample(x).gates
    assert all(np.array_equal(a.numpy(), b) for a, b in zip(relu, ref, strict=True))


def _numpy_weight_gradient(net: LayeredNetwork, x: np.ndarray, gates) -> list[np.ndarray]:
    """∂(Σ_b f_b)/∂W_l by hand-written backprop through fixed gates (numpy)."""
    acts, a = [x], x
    for l, w in enumerate(net.weights[:-1]):
        a = np.where(gates[l], a @ w, 0.0)
        acts.append(a)
    delta = np.ones((x.shape[0], 1))  # ∂f/∂z_L
    grads = [None] * net.depth
    for l in range(net.depth - 1, -1, -1):
        grads[l] = acts[l].T @ delta  # (n_{l-1}, n_l)
        if l > 0:
            delta = (delta @ net.weights[l].T) * gates[l - 1]
    return grads


def test_sample_mode_gradient_holds_gates_fixed(tiny_net):
    model = GatedMLP.from_network(tiny_net, temperature=1.0, dtype=F64)
    model.set_generator(torch.Generator().manual_seed(0)).set_record(True)
    x = torch.from_numpy(inputs(tiny_net, batch=11))
    model(x).sum().backward()
    gates = [g.last_gates for g in model.gates]
    got = [lin.weight.grad.clone() for lin in model.linears]

    model.zero_grad()
    model.forward_with_gates(x, gates).sum().backward()
    assert all(torch.equal(a, lin.weight.grad) for a, lin in zip(got, model.linears, strict=True))

    ref = _numpy_weight_gradient(tiny_net, x.numpy(), [h.numpy() for h in gates])
    for a, b in zip(got, ref, strict=True):
        np.testing.assert_allclose(a.numpy().T, b, rtol=1e-12, atol=1e-13)


# -- the sampler's law --------------------------------------------------------------------------


def test_sampled_marginals_match_gate_law():
    net = LayeredNetwork.he_normal((5, 6, 1), seed=4)
    model = GatedMLP.from_network(net, temperature=1.3, dtype=F64)
    model.set_generator(torch.Generator().manual_seed(1)).set_record(True)
    N = 40_000
    x = inputs(net, batch=2)
    with torch.no_grad():
        model(torch.from_numpy(np.repeat(x, N, axis=0)))
    h = model.gates[0].last_gates.double().numpy().reshape(2, N, 6)
    p = gl.gate_probabilities(x @ net.weights[0], 1.3)  # (2, 6)
    se = np.sqrt(p * (1 - p) / N)
    assert np.all(np.abs(h.mean(axis=1) - p) < 4 * se + 1e-12)


def test_deeper_layers_are_sampled_given_the_sampled_layer_below():
    """E[h_2 − σ(z_2/T)] = 0 where z_2 is computed from the sampled h_1 (ancestral sampling)."""
    net = LayeredNetwork.he_normal((4, 5, 5, 1), seed=6)
    T = 0.8
    model = GatedMLP.from_network(net, temperature=T, dtype=F64)
    model.set_generator(torch.Generator().manual_seed(2)).set_record(True)
    N = 40_000
    x = np.repeat(inputs(net, batch=1), N, axis=0)
    with torch.no_grad():
        model(torch.from_numpy(x))
    h1, h2 = (g.last_gates.numpy() for g in model.gates)
    z2 = model.gates[1].last_logits.numpy()
    np.testing.assert_allclose(
        z2, np.where(h1, x @ net.weights[0], 0.0) @ net.weights[1], rtol=1e-12
    )
    p2 = gl.gate_probabilities(z2, T)
    resid = (h2 - p2).mean(axis=0)
    se = np.sqrt((p2 * (1 - p2)).sum(axis=0)) / N
    assert np.all(np.abs(resid) < 4 * se + 1e-12)
    assert h1.std(axis=0).min() > 0  # layer 1 really is random here


# -- training ------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_em_at_zero_temperature_is_relu_sgd_step_for_step(dtype):
    widths, n, bs, lr, mom, epochs = (6, 12, 10, 1), 90, 16, 0.05, 0.9, 3
    X, y = _synthetic(n, widths[0], dtype)
    net = LayeredNetwork.he_normal(widths, seed=11)

    model = GatedMLP.from_network(net, temperature=0.0, mode="sample", dtype=dtype)
    noise = torch.Generator().manual_seed(99)
    noise_state = noise.get_state()
    model.set_generator(noise)
    opt = make_optimizer(model, lr=lr, momentum=mom)
    steps_em: list[list[torch.Tensor]] = []
    opt.register_step_post_hook(
        lambda *_: steps_em.append([lin.weight.detach().clone() for lin in model.linears])
    )
    order_gen = torch.Generator().manual_seed(5)
    em_losses = [
        train_epoch(model, X, y, opt, batch_size=bs, order=epoch_order(n, order_gen))
        for _ in range(epochs)
    ]

    # The oracle: a plain nn.Sequential ReLU net and a plainly written SGD loop.
    ref = relu_reference_mlp(net, dtype=dtype)
    ref_opt = torch.optim.SGD(ref.parameters(), lr=lr, momentum=mom)
    ref_gen = torch.Generator().manual_seed(5)
    steps_ref, ref_losses = [], []
    for _ in range(epochs):
        perm = torch.randperm(n, generator=ref_gen)
        total = 0.0
        for start in range(0, n, bs):
            idx = perm[start : start + bs]
            ref_opt.zero_grad()
            f = ref(X[idx])[:, 0]
            loss = (1 - y[idx] * f).clamp(min=0).mean()
            loss.backward()
            ref_opt.step()
            total += loss.item() * len(idx)
            steps_ref.append(
                [m.weight.detach().clone() for m in ref if isinstance(m, torch.nn.Linear)]
            )
        ref_losses.append(total / n)

    assert len(steps_em) == len(steps_ref) == epochs * math.ceil(n / bs)
    for a, b in zip(steps_em, steps_ref, strict=True):
        assert all(torch.equal(wa, wb) for wa, wb in zip(a, b, strict=True))
    np.testing.assert_allclose(
        em_losses, ref_losses, rtol=1e-6 if dtype == torch.float32 else 1e-14
    )
    assert torch.equal(noise.get_state(), noise_state)  # gates drew nothing at T = 0
    assert not torch.equal(steps_em[0][0], steps_em[-1][0])


def test_em_training_at_positive_temperature_learns():
    X, y = _synthetic(200, 4, torch.float32, seed=3)
    model = build_mlp((4, 16, 16, 1), temperature=0.1, seed=0)
    model.set_generator(torch.Generator().manual_seed(0))
    opt = make_optimizer(model, lr=0.05, momentum=0.9)
    order_gen = torch.Generator().manual_seed(0)
    before = evaluate(model, X, y)
    for _ in range(15):
        last = train_epoch(model, X, y, opt, batch_size=32, order=epoch_order(200, order_gen))
    after = evaluate(model, X, y)
    assert math.isfinite(last) and after["loss"] < 0.5 * before["loss"] and after["acc"] > 0.9
    lg = train_epoch(
        model, X, y, opt, batch_size=32, order=epoch_order(200, order_gen), loss="logistic"
    )
    assert math.isfinite(lg)


def test_evaluate_counts_zero_output_as_wrong():
    X, y = _synthetic(10, 3, F64)
    model = GatedMLP((3, 4, 1), temperature=1.0, dtype=F64)  # all weights zero: f = 0
    assert evaluate(model, X, y) == {"loss": 1.0, "acc": 0.0}
    assert evaluate(model, X, y, loss="logistic")["loss"] == pytest.approx(math.log(2))


def test_losses_closed_forms():
    f = torch.tensor([2.0, 0.5, -1.0, 0.0], dtype=F64)
    y = torch.tensor([1.0, 1.0, 1.0, -1.0], dtype=F64)
    assert hinge_loss(f, y).item() == pytest.approx((0 + 0.5 + 2 + 1) / 4, rel=1e-15)
    ref = np.mean(np.log1p(np.exp(-(y * f).numpy())))
    assert logistic_loss(f, y).item() == pytest.approx(ref, rel=1e-14)
    assert get_loss("hinge") is hinge_loss and get_loss("logistic") is logistic_loss


@pytest.mark.parametrize("loss", ["hinge", "logistic"])
def test_order_parameter_is_full_batch_gradient_norm(loss):
    X, y = _synthetic(50, 5, F64, seed=1)
    model = build_mlp((5, 8, 6, 1), temperature=0.0, mode="relu", seed=2, dtype=F64)
    model(X[:3]).sum().backward()  # some unrelated .grad that must survive
    before = [lin.weight.grad.clone() for lin in model.linears]
    got = order_parameter(model, X, y, lr=0.03, loss=loss, batch_size=16)  # 16 ∤ 50
    assert all(
        torch.equal(b, lin.weight.grad) for b, lin in zip(before, model.linears, strict=True)
    )

    ref = copy.deepcopy(model)
    ref.zero_grad()
    get_loss(loss)(ref(X), y).backward()
    want = 0.03 * sum((lin.weight.grad**2).sum().item() for lin in ref.linears)
    assert got == pytest.approx(want, rel=1e-12)
    assert got > 0
    model.set_mode("sample")  # T = 0: the same value
    assert order_parameter(model, X, y, lr=0.03, loss=loss, batch_size=7) == pytest.approx(
        want, rel=1e-12
    )


def test_order_parameter_leaves_missing_grads_missing():
    X, y = _synthetic(20, 3, torch.float32)
    model = build_mlp((3, 5, 1), temperature=0.5, seed=0)
    assert order_parameter(model, X, y, lr=0.1) >= 0
    assert all(lin.weight.grad is None for lin in model.linears)


def test_gate_statistics_limits_and_mode_restored():
    X, _ = _synthetic(300, 6, F64)
    model = build_mlp((6, 10, 8, 1), temperature=0.0, mode="relu", seed=1, dtype=F64)
    model.set_generator(torch.Generator().manual_seed(0))
    s0 = gate_statistics(model, X, batch_size=64)
    assert {k: v.tolist() for k, v in s0.items() if k != "gate_open"} == {
        "gate_entropy": [0.0, 0.0],
        "gate_agreement": [1.0, 1.0],
    }
    assert model.mode == "relu" and all(g.last_gates is None for g in model.gates)

    model.set_temperature(math.inf)
    s_inf = gate_statistics(model, X, batch_size=64)
    assert s_inf["gate_entropy"].tolist() == [1.0, 1.0]
    for a, width in zip(s_inf["gate_agreement"], (10, 8), strict=True):
        assert abs(a - 0.5) < 4 * math.sqrt(0.25 / (300 * width))

    T = 0.7
    model.set_temperature(T)
    s = gate_statistics(model, X, batch_size=64)
    z1 = X.numpy() @ model.to_network().weights[0]  # layer 1's logits do not depend on sampling
    assert s["gate_entropy"][0] == pytest.approx(gl.gate_entropy_bits(z1, T).mean(), rel=1e-12)
    assert all(0 < e < 1 for e in s["gate_entropy"]) and all(
        0.5 < a < 1 for a in s["gate_agreement"]
    )
    assert model.mode == "relu"


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "shown"),
    [
        (lambda: Gate(1.0, "dropout"), "dropout"),
        (lambda: Gate(-0.5), "-0.5"),
        (lambda: Gate(float("nan")), "nan"),
        (lambda: build_mlp((3, 4, 1), temperature=1.0, seed=0).set_mode("gibbs"), "gibbs"),
        (lambda: build_mlp((3, 4, 1), temperature=1.0, seed=0).set_temperature(-2), "-2"),
        (lambda: build_mlp((3, 4, 2), temperature=1.0, seed=0), "(3, 4, 2)"),
        (lambda: build_mlp("3,x,1", temperature=1.0, seed=0), "3,x,1"),
        (lambda: GatedMLP((3, 0, 1), temperature=1.0), "(3, 0, 1)"),
        (lambda: get_loss("mse"), "mse"),
        (lambda: make_optimizer(GatedMLP((2, 1), temperature=0), lr=0.0), "0.0"),
        (lambda: make_optimizer(GatedMLP((2, 1), temperature=0), lr=-1), "-1"),
        (lambda: make_optimizer(GatedMLP((2, 1), temperature=0), lr=float("inf")), "inf"),
        (lambda: make_optimizer(GatedMLP((2, 1), temperature=0), lr=0.1, momentum=1.0), "1.0"),
        (lambda: epoch_order(0, torch.Generator()), "0"),
    ],
)
def test_bad_input_raises_config_error_naming_the_value(make, shown):
    with pytest.raises(ConfigError) as info:
        make()
    assert isinstance(info.value, UmweltError)
    assert shown in str(info.value)


def test_bad_training_arguments():
    X, y = _synthetic(10, 3, torch.float32)
    model = build_mlp((3, 4, 1), temperature=1.0, seed=0)
    opt = make_optimizer(model, lr=0.1)
    order = epoch_order(10, torch.Generator().manual_seed(0))
    with pytest.raises(ConfigError, match="'l2'"):
        train_epoch(model, X, y, opt, batch_size=4, order=order, loss="l2")
    with pytest.raises(ConfigError, match="-4"):
        train_epoch(model, X, y, opt, batch_size=-4, order=order)
    with pytest.raises(ShapeError):
        train_epoch(model, X, y, opt, batch_size=4, order=order[:5])
    with pytest.raises(ConfigError, match="nan"):
        order_parameter(model, X, y, lr=float("nan"))
    with pytest.raises(ShapeError):
        model.forward_with_gates(X, [])


def test_import_umwelt_does_not_import_torch():
    code = "import sys, umwelt; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# -- CUDA ------------------------------------------------------------------------------------------


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_matches_cpu_and_trains(dtype):
    dev = "cuda"
    X, y = _synthetic(64, 4, dtype)
    net = LayeredNetwork.he_normal((4, 8, 8, 1), seed=0)
    cpu = GatedMLP.from_network(net, temperature=0.0, dtype=dtype)
    gpu = GatedMLP.from_network(net, temperature=0.0, dtype=dtype, device=dev)
    Xg, yg = X.to(dev), y.to(dev)
    with torch.no_grad():
        torch.testing.assert_close(gpu(Xg).cpu(), cpu(X))
    gpu.set_temperature(0.2).set_generator(torch.Generator(device=dev).manual_seed(0))
    opt = make_optimizer(gpu, lr=0.05, momentum=0.9)
    loss = train_epoch(gpu, Xg, yg, opt, batch_size=16, order=epoch_order(64, torch.Generator()))
    assert math.isfinite(loss)
    assert math.isfinite(order_parameter(gpu, Xg, yg, lr=0.05))
    s = gate_statistics(gpu, Xg)
    assert all(0 < e < 1 for e in s["gate_entropy"])
    assert gpu.linears[0].weight.device.type == "cuda"
    assert all(np.isfinite(w).all() for w in gpu.to_network().weights)
