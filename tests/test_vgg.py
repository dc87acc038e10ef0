"""The gated VGG and the model registry against independent oracles: parameter counts by hand,
a plain ``torch.nn`` ReLU VGG assembled here from its own configuration table, a linear net for
the infinite-temperature mean field, the numpy engine's He draws for MLPs, and sample
statistics for the initialization and the gate law."""

from __future__ import annotations

import copy
import math
import re

import numpy as np
import pytest
import torch
from torch import nn

from umwelt.errors import ConfigError, ShapeError, UmweltError
from umwelt.network import LayeredNetwork
from umwelt.nn import (
    MODEL_PRESETS,
    VGG_PRESETS,
    FlatMLP,
    GatedMLP,
    GatedVGG,
    build_mlp,
    build_model,
    build_vgg,
    count_parameters,
    hinge_loss,
    plain_relu_vgg,
    vgg_architecture,
)

F64 = torch.float64
W16 = 1 / 16  # every VGG layer divides by 16: channels 4, 8, 16, 32, hidden 32

# The oracle's own copy of the configurations (Simonyan & Zisserman 2015, table 1: A, B, D).
A = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]
B = [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]
D = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
ORACLE = {"vgg11": (A, [512, 512]), "vgg12": (B, [512]), "vgg13": (B, [512, 512])}
ORACLE["vgg16"] = (D, [512, 512])


def _images(n: int, dtype=torch.float32, seed: int = 0, shape=(3, 32, 32)) -> torch.Tensor:
    return torch.randn(n, *shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _labels(n: int, dtype=torch.float32) -> torch.Tensor:
    return torch.tensor([1.0, -1.0] * (n // 2), dtype=dtype)


def _oracle_relu_vgg(model: GatedVGG, preset: str, div: int, act=nn.ReLU) -> nn.Sequential:
    """A plain ReLU VGG built from ``ORACLE`` with channels ``c // div``, weights of ``model``."""
    stack, hidden = ORACLE[preset]
    layers: list[nn.Module] = []
    c_in = 3
    for item in stack:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(c_in, item // div, 3, padding=1, bias=False), act()]
            c_in = item // div
    layers.append(nn.Flatten())
    n_in = c_in
    for n in hidden:
        layers += [nn.Linear(n_in, n // div, bias=False), act()]
        n_in = n // div
    layers.append(nn.Linear(n_in, 1, bias=False))
    seq = nn.Sequential(*layers).to(model.convs[0].weight.dtype)
    mine = [m for m in seq if isinstance(m, nn.Conv2d | nn.Linear)]
    theirs = [*model.convs, *model.linears]
    assert len(mine) == len(theirs)
    with torch.no_grad():
        for a, b in zip(mine, theirs, strict=True):
            assert a.weight.shape == b.weight.shape
            a.weight.copy_(b.weight)
    return seq


class _Half(nn.Module):
    def forward(self, z):
        return z * 0.5


# -- architecture and parameter counts ----------------------------------------------------------


def test_vgg12_has_9664704_weights_by_hand():
    # convolutions 3→64→64 | →128→128 | →256→256 | →512→512 | →512→512, each 3·3·c_in·c_out:
    conv = 9 * (
        3 * 64 + 64 * 64 + 64 * 128 + 128 * 128 + 128 * 256 + 256 * 256 + 256 * 512 + 3 * 512 * 512
    )
    assert conv == 9_402_048
    assert conv + 512 * 512 + 512 * 1 == 9_664_704  # + linear 512→512→1
    model = build_model("vgg12", input_shape=(3, 32, 32), temperature=0.0, seed=0)
    assert count_parameters(model) == 9_664_704
    assert len(model.convs) == 10 and len(model.linears) == 2 and model.depth == 12


@pytest.mark.parametrize(
    ("preset", "count"),
    [("vgg11", 9_742_528), ("vgg12", 9_664_704), ("vgg13", 9_926_848), ("vgg16", 15_235_264)],
)
def test_preset_parameter_counts_match_the_formula(preset, count):
    stack, hidden = ORACLE[preset]
    convs = [c for c in stack if c != "M"]
    formula = sum(9 * a * b for a, b in zip([3, *convs[:-1]], convs, strict=True))
    lin = [512, *hidden, 1]  # 32 / 2^5 = 1: the last map is 512 × 1 × 1
    formula += sum(a * b for a, b in zip(lin[:-1], lin[1:], strict=True))
    assert formula == count
    model = GatedVGG(preset, temperature=0.0)  # zero weights, nothing drawn
    assert count_parameters(model) == count == vgg_architecture(preset).parameter_count()
    assert model.depth == int(preset[3:]) == len(convs) + len(hidden) + 1
    assert len(model.gates) == model.depth - 1


@pytest.mark.parametrize("preset", VGG_PRESETS)
def test_no_bias_and_no_batch_norm_anywhere(preset):
    for model in (
        GatedVGG(preset, width=W16, temperature=0.5),
        plain_relu_vgg(preset, W16, seed=0),
    ):
        assert all(name.endswith("weight") for name, _ in model.named_parameters())
        assert list(model.buffers()) == []
        for m in model.modules():
            assert not isinstance(m, nn.modules.batchnorm._NormBase | nn.GroupNorm | nn.Dropout)
            if isinstance(m, nn.Conv2d):
                assert m.bias is None and m.kernel_size == (3, 3) and m.padding == (1, 1)
            if isinstance(m, nn.Linear):
                assert m.bias is None


def test_presets_are_listed():
    assert set(VGG_PRESETS) == set(MODEL_PRESETS) == {"vgg11", "vgg12", "vgg13", "vgg16"}


# -- T = 0 is the plain ReLU VGG ------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("preset", ["vgg11", "vgg12"])
def test_zero_temperature_equals_plain_relu_vgg_with_gradients_and_sgd(preset, dtype):
    model = build_vgg(preset, width=W16, temperature=0.0, mode="sample", seed=3, dtype=dtype)
    model.set_generator(torch.Generator().manual_seed(0))
    oracle = _oracle_relu_vgg(model, preset, 16)
    plain = plain_relu_vgg(preset, W16, seed=3, dtype=dtype)
    relu_mode = copy.deepcopy(model).set_mode("relu").set_temperature(1.0)
    nets = [model, relu_mode, plain, model.relu_reference()]
    X, y = _images(6, dtype), _labels(6, dtype)

    opts = [torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9) for m in [oracle, *nets]]
    for step in range(3):
        xb = X[2 * step : 2 * step + 2]
        yb = y[2 * step : 2 * step + 2]
        ref = oracle(xb)[:, 0]
        hinge = torch.clamp(1 - yb * ref, min=0).mean()
        opts[0].zero_grad()
        hinge.backward()
        ref_grads = [p.grad.clone() for p in oracle.parameters()]
        for net, opt in zip(nets, opts[1:], strict=True):
            opt.zero_grad()
            out = net(xb)
            assert out.shape == (2,) and out.dtype == dtype
            assert torch.equal(out, ref)
            hinge_loss(out, yb).backward()
            for g, r in zip([p.grad for p in net.parameters()], ref_grads, strict=True):
                assert torch.equal(g, r)
            opt.step()
        opts[0].step()
    assert any(p.grad.abs().sum() > 0 for p in oracle.parameters())
    for net in nets:
        for a, b in zip(net.parameters(), oracle.parameters(), strict=True):
            assert torch.equal(a, b)


def test_plain_relu_vgg_has_build_vgg_weights():
    model = build_vgg("vgg13", width=1 / 8, temperature=1.0, seed=11, gain=1.7)
    plain = plain_relu_vgg("vgg13", 1 / 8, seed=11, gain=1.7)
    ws = [m.weight for m in plain if isinstance(m, nn.Conv2d | nn.Linear)]
    assert all(torch.equal(a, b.weight) for a, b in zip(ws, model.weight_layers, strict=True))
    assert sum(isinstance(m, nn.MaxPool2d) for m in plain) == 5
    assert not any(isinstance(m, type(model.gates[0])) for m in plain.modules())


# -- the gate law on conv feature maps ----------------------------------------------------------


def test_infinite_temperature_opens_about_half_of_every_layers_gates():
    model = build_vgg("vgg12", width=W16, temperature=math.inf, seed=0, dtype=F64)
    model.set_generator(torch.Generator().manual_seed(1)).set_record(True)
    X = _images(8, F64)
    f = model(X)
    recorded = [g.last_gates for g in model.gates]
    for h, shape in zip(recorded, model.gate_shapes, strict=True):
        assert h.shape == (8, *shape) and h.dtype == torch.bool
        se = math.sqrt(0.25 / h.numel())
        assert abs(h.double().mean().item() - 0.5) < 4.5 * se
    # the recorded gates reproduce the output when held fixed
    torch.testing.assert_close(model.forward_with_gates(X, recorded), f, rtol=0, atol=0)


@pytest.mark.parametrize("T", [1e300, math.inf])
def test_mean_mode_at_huge_temperature_halves_every_logit(T):
    model = build_vgg("vgg11", width=W16, temperature=T, mode="mean", seed=2, dtype=F64)
    model.set_record(True)
    X = _images(3, F64)
    f = model(X)
    # closed form: maxpool(z/2) = maxpool(z)/2, so f = 2^{-#gates} × the linear (identity) net
    linear = _oracle_relu_vgg(model, "vgg11", 16, act=nn.Identity)
    with torch.no_grad():
        torch.testing.assert_close(
            f, linear(X)[:, 0] * 2.0 ** -len(model.gates), rtol=1e-12, atol=0
        )
    # per layer: each layer's logits are the previous layer's logits halved (then pooled)
    halved = _oracle_relu_vgg(model, "vgg11", 16, act=_Half)
    z = []
    hooks = [m.register_forward_hook(lambda m, i, o: z.append(o)) for m in halved[:-1]]
    with torch.no_grad():
        halved(X)
    for h in hooks:
        h.remove()
    logits = [
        o for o, m in zip(z, halved[:-1], strict=True) if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    for gate, ref in zip(model.gates, logits, strict=True):
        assert gate.last_gates is None  # mean mode has no gates
        torch.testing.assert_close(gate.last_logits, ref, rtol=1e-13, atol=1e-300)


def test_sample_mode_is_reproducible_from_the_generator_and_differentiable():
    model = build_vgg("vgg12", width=W16, temperature=0.1, seed=0, dtype=F64)
    X = _images(4, F64)
    outs = []
    for _ in range(2):
        model.set_generator(torch.Generator().manual_seed(9))
        outs.append(model(X))
    assert torch.equal(outs[0], outs[1])
    outs[0].sum().backward()
    assert all(torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0 for p in model.parameters())
    relu = model.relu_gates(X)
    model.set_generator(torch.Generator().manual_seed(10)).set_record(True)
    model(X)
    agree = [(g.last_gates == h).double().mean().item() for g, h in zip(model.gates, relu)]
    assert all(0.5 < a < 1 for a in agree[1:])  # T = 0.1: mostly, not always, the ReLU gates


def test_relu_gates_shapes_and_values():
    model = build_vgg("vgg12", width=W16, temperature=0.3, seed=4)
    X = _images(2)
    gates = model.relu_gates(X)
    expected = [(4, 32, 32), (4, 32, 32), (8, 16, 16), (8, 16, 16), (16, 8, 8), (16, 8, 8)]
    expected += [(32, 4, 4), (32, 4, 4), (32, 2, 2), (32, 2, 2), (32,)]
    assert [tuple(h.shape[1:]) for h in gates] == expected == list(model.gate_shapes)
    assert all(h.dtype == torch.bool and h.shape[0] == 2 for h in gates)
    # oracle: the plain net's pre-activations, > 0
    oracle = _oracle_relu_vgg(model, "vgg12", 16)
    z = []
    for m in oracle:
        if isinstance(m, nn.Conv2d | nn.Linear):
            m.register_forward_hook(lambda m, i, o: z.append(o > 0))
    with torch.no_grad():
        f = oracle(X)[:, 0]
    assert all(torch.equal(a, b) for a, b in zip(gates, z[:-1], strict=True))
    assert torch.equal(model.forward_with_gates(X, gates), f)


# -- width multiplier -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "channels", "hidden"),
    [
        (1 / 8, (8, 8, 16, 16, 32, 32, 64, 64, 64, 64), (64,)),
        (0.3, (19, 19, 38, 38, 77, 77, 154, 154, 154, 154), (154,)),  # 19.2 38.4 76.8 153.6
        (1 / 128, (1, 1, 1, 1, 2, 2, 4, 4, 4, 4), (4,)),  # 0.5 rounds up
        (2.0, (128, 128, 256, 256, 512, 512, 1024, 1024, 1024, 1024), (1024,)),
    ],
)
def test_width_multiplier_rounds_to_nearest(width, channels, hidden):
    arch = vgg_architecture("vgg12", width)
    assert arch.channels == channels and arch.hidden == hidden
    if width < 1:
        model = GatedVGG("vgg12", width=width, temperature=0.0)
        assert tuple(c.out_channels for c in model.convs) == channels
        assert tuple(lin.out_features for lin in model.linears) == (*hidden, 1)
        assert model(torch.zeros(1, 3, 32, 32)).shape == (1,)


@pytest.mark.parametrize("preset", VGG_PRESETS)
def test_width_that_empties_a_layer_is_refused_naming_width_and_layer(preset):
    w = 1 / 129  # 64/129 < 0.5 rounds to 0
    with pytest.raises(ConfigError, match=re.escape(repr(w))) as info:
        build_vgg(preset, width=w, temperature=0.0, seed=0)
    assert "conv1" in str(info.value) and "empty" in str(info.value)
    with pytest.raises(ConfigError, match="hidden layer 1"):
        build_model("mlp:1,100", input_shape=(4,), width=0.4, temperature=0.0, seed=0)


@pytest.mark.parametrize("width", [0, -0.5, float("nan"), float("inf"), "wide", True])
def test_bad_width_is_refused(width):
    with pytest.raises(ConfigError, match=re.escape(repr(width))):
        GatedVGG("vgg12", width=width, temperature=0.0)


# -- initialization ------------------------------------------------------------------------------


def test_seeded_init_is_reproducible_and_dtype_independent():
    a = build_vgg("vgg16", width=W16, temperature=0.0, seed=7)
    b = build_vgg("vgg16", width=W16, temperature=0.0, seed=7)
    c = build_vgg("vgg16", width=W16, temperature=0.0, seed=8)
    d = build_vgg("vgg16", width=W16, temperature=0.0, seed=7, dtype=F64)
    for pa, pb, pc, pd in zip(a.parameters(), b.parameters(), c.parameters(), d.parameters()):
        assert torch.equal(pa, pb) and not torch.equal(pa, pc)
        assert pd.dtype == F64 and torch.equal(pd.float(), pa)  # float32 = float64 draws rounded


@pytest.mark.parametrize("gain", [math.sqrt(2.0), 0.8])
def test_init_has_the_he_variance(gain):
    model = build_vgg("vgg12", width=0.5, temperature=0.0, seed=1, gain=gain, dtype=F64)
    checked = 0
    for layer in model.weight_layers:
        w = layer.weight.detach()
        fan_in = w.shape[1] * (9 if w.ndim == 4 else 1)
        if w.numel() < 100_000:
            continue
        checked += 1
        var = gain**2 / fan_in
        n = w.numel()
        assert abs(w.mean().item()) < 5 * math.sqrt(var / n)
        assert abs(w.var().item() / var - 1) < 5 * math.sqrt(2 / n)  # var of a sample variance
        kurt = ((w - w.mean()) ** 4).mean().item() / w.var().item() ** 2
        assert abs(kurt - 3) < 5 * math.sqrt(24 / n)  # normal, not uniform
    assert checked >= 5


# -- build_model -----------------------------------------------------------------------------------


def test_build_model_mlp_matches_build_mlp_and_the_numpy_engine():
    model = build_model(
        "mlp:12,5", input_shape=(3, 4, 4), temperature=0.4, seed=5, gain=1.3, dtype=F64
    )
    ref = build_mlp((48, 12, 5, 1), temperature=0.4, seed=5, gain=1.3, dtype=F64)
    net = LayeredNetwork.he_normal((48, 12, 5, 1), seed=5, gain=1.3)
    assert isinstance(model, FlatMLP) and isinstance(model, GatedMLP)
    assert model.widths == (48, 12, 5, 1) and model.input_shape == (3, 4, 4)
    assert all(torch.equal(a.weight, b.weight) for a, b in zip(model.linears, ref.linears))
    assert all(np.array_equal(a, b) for a, b in zip(model.to_network().weights, net.weights))
    X = _images(5, F64, shape=(3, 4, 4))
    ref.set_mode("relu")
    assert model.set_mode("relu") is model
    assert torch.equal(model(X), ref(X.reshape(5, 48)))
    assert torch.equal(model(X.reshape(5, 48)), ref(X.reshape(5, 48)))  # flat inputs are fine
    assert [h.shape for h in model.relu_gates(X)] == [(5, 12), (5, 5)]
    assert model.temperature == 0.4 and len(model.gates) == 2


def test_build_model_mlp_width_multiplier_and_vgg_dispatch():
    half = build_model("mlp:32,15", input_shape=(8,), width=0.5, temperature=0.0, seed=0)
    assert half.widths == (8, 16, 8, 1)  # 7.5 rounds up
    vgg = build_model(
        " vgg12 ", input_shape=(3, 32, 32), width=W16, temperature=0.2, mode="relu", seed=3
    )
    ref = build_vgg("vgg12", width=W16, temperature=0.2, mode="relu", seed=3)
    assert isinstance(vgg, GatedVGG) and vgg.mode == "relu" and vgg.temperature == 0.2
    assert all(torch.equal(a, b) for a, b in zip(vgg.parameters(), ref.parameters()))
    big = build_model("vgg11", input_shape=(1, 64, 96), width=W16, temperature=0.0, seed=0)
    assert big.arch.flat_features == 32 * 2 * 3 and big(torch.zeros(2, 1, 64, 96)).shape == (2,)


@pytest.mark.parametrize(
    "spec",
    ["vgg19", "VGG12", "mlp", "mlp:", "mlp:a", "mlp:0", "mlp:3,,4", "mlp:-2", "resnet18", ""],
)
def test_bad_model_spec_raises_config_error_naming_it(spec):
    with pytest.raises(ConfigError) as info:
        build_model(spec, input_shape=(3, 32, 32), temperature=0.0, seed=0)
    assert isinstance(info.value, UmweltError)
    assert repr(spec) in str(info.value)
    if not spec.startswith("mlp:"):
        assert all(p in str(info.value) for p in VGG_PRESETS)


def test_unknown_vgg_preset_lists_the_presets():
    with pytest.raises(ConfigError, match=r"'vgg19'.*vgg11, vgg12, vgg13, vgg16"):
        GatedVGG("vgg19", temperature=0.0)


@pytest.mark.parametrize(
    ("make", "shown"),
    [
        (lambda: build_vgg("vgg12", input_shape=(3, 28, 28), temperature=0, seed=0), "28"),
        (lambda: build_vgg("vgg12", input_shape=(32, 32), temperature=0, seed=0), "(32, 32)"),
        (lambda: build_vgg("vgg12", width=W16, temperature=-1, seed=0), "-1"),
        (lambda: build_vgg("vgg12", width=W16, temperature=0, mode="gibbs", seed=0), "gibbs"),
        (lambda: build_vgg("vgg12", width=W16, temperature=0, seed=0, gain=0.0), "0.0"),
        (lambda: build_vgg("vgg12", width=W16, temperature=0, seed=-3), "-3"),
        (lambda: build_model("mlp:4", input_shape=(), temperature=0, seed=0), "()"),
        (lambda: build_model("mlp:4", input_shape=(4,), temperature=0, seed=0, dtype="f16"), "f16"),
        (
            lambda: build_model("mlp:4", input_shape=(4,), temperature=0, seed=0, device="tpu"),
            "tpu",
        ),
        (lambda: GatedVGG("vgg12", width=W16, temperature=0).set_mode("x"), "'x'"),
    ],
)
def test_bad_arguments_raise_config_error_naming_the_value(make, shown):
    with pytest.raises(ConfigError) as info:
        make()
    assert shown in str(info.value)


def test_wrong_input_shapes_raise_shape_error():
    model = build_vgg("vgg12", width=W16, temperature=0.0, seed=0)
    with pytest.raises(ShapeError, match=r"\(2, 3, 28, 28\)"):
        model(torch.zeros(2, 3, 28, 28))
    with pytest.raises(ShapeError, match="11 gate layers"):
        model.forward_with_gates(torch.zeros(2, 3, 32, 32), [])
    bad = [torch.ones(4, 32, 32, dtype=torch.bool)] * 11
    with pytest.raises(ShapeError, match="conv3"):
        model.forward_with_gates(torch.zeros(2, 3, 32, 32), bad)
    mlp = build_model("mlp:4", input_shape=(2, 3), temperature=0.0, seed=0)
    with pytest.raises(ShapeError, match=r"\(5, 7\)"):
        mlp(torch.zeros(5, 7))


def test_interface_setters_return_self_and_reach_every_gate():
    model = GatedVGG("vgg13", width=W16, temperature=0.5, mode="mean")
    assert model.temperature == 0.5 and model.mode == "mean"
    gen = torch.Generator().manual_seed(0)
    assert model.set_mode("sample") is model
    assert model.set_temperature(math.inf) is model
    assert model.set_generator(gen) is model
    assert model.set_record(True) is model
    assert all(
        g.mode == "sample" and g.temperature == math.inf and g.generator is gen and g.record
        for g in model.gates
    )
    assert len(model.gates) == 12 and isinstance(model.gates, nn.ModuleList)
    model.set_generator(None).set_record(False)
    assert all(g.generator is None and not g.record for g in model.gates)


# -- devices --------------------------------------------------------------------------------------


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_cuda_gets_the_cpu_weights_and_trains(dtype):
    cpu = build_vgg("vgg12", width=W16, temperature=0.0, seed=5, dtype=dtype)
    gpu = build_model(
        "vgg12",
        input_shape=(3, 32, 32),
        width=W16,
        temperature=0.0,
        seed=5,
        dtype=dtype,
        device="cuda",
    )
    assert all(torch.equal(a, b.cpu()) for a, b in zip(cpu.parameters(), gpu.parameters()))
    X = _images(4, dtype)
    with torch.no_grad():
        torch.testing.assert_close(gpu(X.cuda()).cpu(), cpu(X))
    with pytest.raises(ConfigError, match="cpu"):
        gpu.set_generator(torch.Generator())
    gpu.set_temperature(0.1).set_generator(torch.Generator(device="cuda").manual_seed(0))
    hinge_loss(gpu(X.cuda()), _labels(4, dtype).cuda()).backward()
    assert all(torch.isfinite(p.grad).all() for p in gpu.parameters())


def test_training_helpers_accept_images_and_conv_gates():
    """train_epoch, order_parameter and gate_statistics work on a VGG and image batches."""
    from umwelt.nn.train import epoch_order, gate_statistics, make_optimizer, order_parameter
    from umwelt.nn.train import train_epoch as em_epoch

    g = torch.Generator().manual_seed(0)
    X = torch.randn(12, 3, 32, 32, generator=g, dtype=torch.float64)
    y = torch.where(torch.randn(12, generator=g) > 0, 1.0, -1.0).double()
    model = build_vgg("vgg11", width=1 / 32, temperature=0.0, seed=0, dtype=torch.float64)
    stats = gate_statistics(model, X, batch_size=5)
    assert stats["gate_entropy"].tolist() == [0.0] * len(model.gates)
    assert stats["gate_agreement"].tolist() == [1.0] * len(model.gates)
    op = order_parameter(model, X, y, lr=0.1, batch_size=5)
    assert op > 0
    opt = make_optimizer(model, 0.01, 0.9)
    loss = em_epoch(model, X, y, opt, batch_size=4, order=epoch_order(12, g))
    assert loss > 0
    hot = build_vgg("vgg11", width=1 / 32, temperature=math.inf, seed=0, dtype=torch.float64)
    hot.set_generator(torch.Generator().manual_seed(1))
    stats = gate_statistics(hot, X, batch_size=12)
    assert all(h == 1.0 for h in stats["gate_entropy"])
    assert all(0.4 < a < 0.6 for a in stats["gate_agreement"])
