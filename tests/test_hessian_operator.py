"""The Hessian operator against independent dense Hessians (float64), and its error paths.

The oracle is ``torch.autograd.functional.hessian`` of the risk written out by hand as a
function of the flat parameter vector, with the gates fixed: the numpy engine's ReLU gates at
T = 0, the operator's stored sample at T > 0 (the oracle checks the products given the gates;
the sample's law is checked separately). Both ways of taking a product are checked against it:
``torch.func`` (``ad="fwd-over-rev"``, any model) and the fixed-gate product by hand
(``ad="gated"``, gated MLPs and VGGs, the default for them).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from cases import TINY_WIDTHS, tiny_network
from torch import nn
from torch.nn import functional as F

from umwelt.errors import ConfigError, NonFiniteError, ShapeError
from umwelt.nn import GatedMLP
from umwelt.nn.gate import Gate
from umwelt.nn.hessian import DENSE_LIMIT, MatrixOperator, ModelHessian
from umwelt.nn.models import build_model
from umwelt.nn.vgg import GatedVGG, build_vgg

D = torch.float64

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# -- shared helpers (also imported by the other test_hessian_* modules) ---------------------------


def per_example_loss(f: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    if loss == "hinge":
        return torch.clamp(1 - y * f, min=0)
    return torch.log1p(torch.exp(-y * f))


def data(n: int, shape: tuple[int, ...], seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, *shape, generator=g, dtype=D)
    y = torch.where(torch.rand(n, generator=g, dtype=D) < 0.5, -1.0, 1.0).to(D)
    return X, y


def mlp(name: str, T: float, seed: int = 0) -> GatedMLP:
    return GatedMLP.from_network(tiny_network(name, seed), temperature=T, dtype=D)


def mlp_oracle(model: GatedMLP, X, y, gates, loss, weights=None) -> torch.Tensor:
    """Dense Hessian of sum_i w_i loss_i with fixed ``gates`` ((n, n_l) each), by hand."""
    shapes = [lin.weight.shape for lin in model.linears]
    theta = torch.cat([lin.weight.detach().reshape(-1) for lin in model.linears])
    w = torch.full((X.shape[0],), 1.0 / X.shape[0], dtype=D) if weights is None else weights

    def risk(th):
        Ws = [p.reshape(s) for p, s in zip(th.split([math.prod(s) for s in shapes]), shapes)]
        a = X
        for l, W in enumerate(Ws):
            z = a @ W.T  # (n, n_l)
            a = z * gates[l].to(D) if l < len(Ws) - 1 else z
        return (w * per_example_loss(a[:, 0], y, loss)).sum()

    return torch.autograd.functional.hessian(risk, theta)


def relu_gates_numpy(model: GatedMLP, X: torch.Tensor) -> list[torch.Tensor]:
    """The T = 0 gates from the numpy engine (independent of the torch model)."""
    s = model.to_network().relu_sample(X.numpy())
    return [torch.as_tensor(h) for h in s.gates]


class TinyConv(nn.Module):
    """Bias-free conv net: conv 1→2, gate, 2×2 max-pool, conv 2→2, gate, flatten, linear 8→1."""

    def __init__(self, T: float, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv1 = nn.Conv2d(1, 2, 3, padding=1, bias=False, dtype=D)
        self.conv2 = nn.Conv2d(2, 2, 3, padding=1, bias=False, dtype=D)
        self.lin = nn.Linear(8, 1, bias=False, dtype=D)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g, dtype=D) * 0.8)
        self.g1 = Gate(T)
        self.g2 = Gate(T)

    def forward(self, x):
        a = F.max_pool2d(self.g1(self.conv1(x)), 2)  # (B, 2, 2, 2)
        a = self.g2(self.conv2(a))  # (B, 2, 2, 2)
        return self.lin(a.flatten(1))  # (B, 1)


def conv_oracle(model: TinyConv, X, y, gates, loss) -> torch.Tensor:
    """Dense Hessian of the conv net's risk with fixed gates, from F.conv2d by hand."""
    ps = [model.conv1.weight, model.conv2.weight, model.lin.weight]
    shapes = [p.shape for p in ps]
    theta = torch.cat([p.detach().reshape(-1) for p in ps])

    def risk(th):
        W1, W2, W3 = (
            p.reshape(s) for p, s in zip(th.split([math.prod(s) for s in shapes]), shapes)
        )
        a = F.max_pool2d(F.conv2d(X, W1, padding=1) * gates[0].to(D), 2)
        a = F.conv2d(a, W2, padding=1) * gates[1].to(D)
        f = a.flatten(1) @ W3.T
        return per_example_loss(f[:, 0], y, loss).mean()

    return torch.autograd.functional.hessian(risk, theta)


def conv_relu_gates(model: TinyConv, X) -> list[torch.Tensor]:
    with torch.no_grad():
        z1 = F.conv2d(X, model.conv1.weight, padding=1)
        z2 = F.conv2d(F.max_pool2d(torch.relu(z1), 2), model.conv2.weight, padding=1)
    return [z1 > 0, z2 > 0]


# -- products equal the dense oracle --------------------------------------------------------------


@pytest.mark.parametrize("ad", ["gated", "fwd-over-rev"])
@pytest.mark.parametrize("loss", ["hinge", "logistic"])
@pytest.mark.parametrize("T", [0.0, 0.5])
@pytest.mark.parametrize("name", sorted(TINY_WIDTHS))
def test_mlp_products_equal_dense_oracle(name, T, loss, ad):
    model = mlp(name, T)
    X, y = data(5, (model.widths[0],))
    op = ModelHessian(model, X, y, loss=loss, batch_size=2, ad=ad)  # batches of 2, 2, 1
    gates = relu_gates_numpy(model, X) if T == 0 else op.gate_masks
    H = mlp_oracle(model, X, y, gates, loss)
    assert op.n == H.shape[0]
    scale = H.abs().max().item() + 1e-300
    assert (op.dense() - H).abs().max().item() <= 1e-12 * scale
    v = torch.randn(op.n, dtype=D, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(op.matvec(v), H @ v, rtol=0, atol=1e-12 * scale * op.n)


@pytest.mark.parametrize("loss", ["hinge", "logistic"])
@pytest.mark.parametrize("T", [0.0, 0.7])
def test_conv_products_equal_dense_oracle(T, loss):
    model = TinyConv(T)
    X, y = data(6, (1, 4, 4))
    op = ModelHessian(model, X, y, loss=loss, batch_size=4)
    gates = conv_relu_gates(model, X) if T == 0 else op.gate_masks
    if T > 0:
        assert [tuple(m.shape) for m in gates] == [(6, 2, 4, 4), (6, 2, 2, 2)]
    H = conv_oracle(model, X, y, gates, loss)
    assert op.n == 18 + 36 + 8
    scale = H.abs().max().item()
    assert scale > 0
    assert (op.dense() - H).abs().max().item() <= 1e-12 * scale


@pytest.mark.parametrize("T", [0.0, 0.6])
def test_reverse_over_forward_gives_the_same_hessian(T):
    X, y = data(5, (1, 4, 4))
    a = ModelHessian(TinyConv(T), X, y, loss="logistic", batch_size=3)
    b = ModelHessian(TinyConv(T), X, y, loss="logistic", ad="rev-over-fwd", batch_size=2)
    Ha = a.dense()
    assert (b.dense() - Ha).abs().max() <= 1e-13 * Ha.abs().max()
    v = torch.linspace(-1, 1, a.n, dtype=D)
    assert torch.allclose(b.matvec(v), a.matvec(v), rtol=0, atol=1e-13 * Ha.abs().max())
    with pytest.raises(ConfigError, match="ad must be one of"):
        ModelHessian(TinyConv(T), X, y, ad="double-backward")


def tiny_vgg(T: float) -> GatedVGG:
    """vgg11 at width 1/64 on 1×32×32 images: channels 1, 2, 4, 4, 8, 8, 8, 8; N = 2,395."""
    return build_vgg("vgg11", width=1 / 64, input_shape=(1, 32, 32), temperature=T, seed=0, dtype=D)


def vgg_risk(model: GatedVGG, X, y, gates, loss):
    """``(risk, theta)``: the VGG's mean risk with fixed gates as a function of the flat
    weights, from F.conv2d by hand, and the weights."""
    ps = [m.weight for m in model.weight_layers]
    shapes = [p.shape for p in ps]
    theta = torch.cat([p.detach().reshape(-1) for p in ps])
    n_conv = len(model.convs)

    def risk(th):
        Ws = [p.reshape(s) for p, s in zip(th.split([math.prod(s) for s in shapes]), shapes)]
        a = X
        for l, pool in enumerate(model.arch.pool_after):
            a = F.conv2d(a, Ws[l], padding=1) * gates[l].to(D)
            a = F.max_pool2d(a, 2) if pool else a
        a = a.flatten(1)
        for l in range(n_conv, len(Ws)):
            a = a @ Ws[l].T
            a = a * gates[l].to(D) if l < len(Ws) - 1 else a
        return per_example_loss(a[:, 0], y, loss).mean()

    return risk, theta


def vgg_oracle(model: GatedVGG, X, y, gates, loss) -> torch.Tensor:
    """Dense Hessian of the VGG's mean risk with fixed gates, from F.conv2d by hand."""
    risk, theta = vgg_risk(model, X, y, gates, loss)
    return torch.autograd.functional.hessian(risk, theta, vectorize=True)


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["hinge", "logistic"])
@pytest.mark.parametrize("T", [0.0, 0.7])
def test_gated_vgg_products_equal_dense_oracle(T, loss):
    model = tiny_vgg(T)
    X, y = data(5, (1, 32, 32))
    X = 10 * X  # |f| > 1: examples 1 and 3 have an inactive hinge
    op = ModelHessian(model, X, y, loss=loss, batch_size=3)
    assert op.ad == "gated" and op.n == 2395
    gates = model.relu_gates(X) if T == 0 else op.gate_masks
    H = vgg_oracle(model, X, y, gates, loss)
    if loss == "hinge":  # some examples have no share in H (inactive hinge): both cases run
        active = 1 - y * op.outputs() > 0
        assert 0 < int(active.sum()) < 5
    v = torch.randn(op.n, dtype=D, generator=torch.Generator().manual_seed(3))
    Hv = H @ v
    bound = 1e-12 * (H.abs() @ v.abs()).max()  # round-off of the sum H v
    assert Hv.abs().max() > 1e3 * bound
    assert (op.matvec(v) - Hv).abs().max() <= bound
    cols = [0, 9, 100, 2000, op.n - 1]  # conv1, conv2, a middle conv, conv8, the output layer
    assert (op.matmat(torch.eye(op.n, dtype=D)[:, cols]) - H[:, cols]).abs().max() <= 1e-12 * (
        H.abs().max()
    )


def test_auto_takes_the_gated_product_where_it_applies():
    X, y = data(6, (3,))
    v = torch.linspace(-1, 1, 27, dtype=D)
    for model in (
        mlp("3-4-3-1", 0.0),
        mlp("3-4-3-1", 0.5),
        mlp("3-4-3-1", 0.5).set_mode("relu"),
        mlp("3-4-3-1", math.inf).set_mode("mean"),  # z/2: a fixed factor
    ):
        op = ModelHessian(model, X, y, loss="logistic", batch_size=4)
        ref = ModelHessian(model, X, y, loss="logistic", ad="fwd-over-rev")
        assert (op.ad, op.ad_fallback, ref.ad) == ("gated", None, "fwd-over-rev")
        assert torch.allclose(op.matvec(v), ref.matvec(v), rtol=0, atol=1e-15)
    flat = build_model("mlp:4", input_shape=(1, 3), temperature=0.0, seed=0, dtype=D)
    op = ModelHessian(flat, X[:, None], y)
    ref = ModelHessian(flat, X[:, None], y, ad="rev-over-fwd")
    w = torch.linspace(-1, 1, op.n, dtype=D)
    assert op.ad == "gated" and torch.allclose(op.matvec(w), ref.matvec(w), rtol=0, atol=1e-15)


def test_auto_falls_back_to_torch_func_and_says_why():
    X, y = data(4, (3,))
    Xc, yc = data(4, (1, 4, 4))
    frozen = mlp("3-4-3-1", 0.0)
    frozen.linears[0].weight.requires_grad_(False)
    cases = [
        (mlp("3-4-3-1", 0.3).set_mode("mean"), X, y, "hinge", "not fixed factors"),
        (TinyConv(0.0), Xc, yc, "hinge", "TinyConv is not a GatedMLP or GatedVGG"),
        (frozen, X, y, "hinge", "not exactly the weight layers"),
        (mlp("3-4-3-1", 0.0), X, y, per_example_loss_hinge, "not a named one"),
    ]
    for model, Xi, yi, loss, why in cases:
        op = ModelHessian(model, Xi, yi, loss=loss)
        assert op.ad == "fwd-over-rev" and why in op.ad_fallback
        if isinstance(loss, str):
            with pytest.raises(ConfigError, match=f"ad='gated' does not apply.*{why}"):
                ModelHessian(model, Xi, yi, loss=loss, ad="gated")
    model = mlp("3-4-3-1", 0.0)  # a callable per-example loss, asked for by name
    mine = ModelHessian(model, X, y, loss=per_example_loss_hinge, ad="gated")
    ref = ModelHessian(model, X, y, loss="hinge")
    assert (ref.dense() - mine.dense()).abs().max() <= 1e-15


def per_example_loss_hinge(f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return per_example_loss(f, y, "hinge")


def test_gated_cache_budget_and_parameter_changes():
    model = mlp("4-3-3-2-1", 0.7)
    X, y = data(9, (4,))
    g = torch.Generator().manual_seed(5)
    op = ModelHessian(model, X, y, loss="logistic", batch_size=4)  # batches of 4, 4, 1
    v = torch.randn(op.n, dtype=D, generator=g)
    assert op.cached_bytes == 0
    Hv = op.matvec(v)
    full = op.cached_bytes
    assert full > 0 and torch.equal(op.matvec(v), Hv)  # from the kept passes, bitwise
    kw = {"loss": "logistic", "batch_size": 4, "gate_masks": op.gate_masks}
    none = ModelHessian(model, X, y, cache_bytes=0, **kw)
    some = ModelHessian(model, X, y, cache_bytes=full // 2, **kw)  # the first batch fits
    for other in (none, some):
        assert torch.equal(other.matvec(v), Hv)
    assert none.cached_bytes == 0 and 0 < some.cached_bytes <= full // 2
    with torch.no_grad():  # an in-place change (an optimizer step) drops the kept passes
        model.linears[1].weight.mul_(1.5)
    moved = op.matvec(v)
    fresh = ModelHessian(model, X, y, ad="fwd-over-rev", **kw).matvec(v)
    assert not torch.allclose(moved, Hv) and torch.allclose(moved, fresh, rtol=0, atol=1e-15)
    with pytest.raises(ConfigError, match="cache_bytes must be an integer ≥ 0, got -1"):
        ModelHessian(model, X, y, cache_bytes=-1)


def test_gated_product_skips_inactive_hinges_exactly():
    model = mlp("5-5-1", 0.0)
    X, _ = data(8, (5,))
    f = model(X).detach()
    y = torch.where(torch.arange(8) % 3 == 0, -1.0, 1.0).to(D) * torch.sign(f)
    active = 1 - y * f > 0
    assert 0 < int(active.sum()) < 8
    op = ModelHessian(model, X, y, batch_size=5)
    ref = ModelHessian(model, X, y, batch_size=5, ad="fwd-over-rev")
    assert (op.dense() - ref.dense()).abs().max() <= 1e-15
    X2, y2 = 3 * X[~active], y[~active]  # every hinge inactive: H = 0
    assert torch.equal(ModelHessian(model, X2, y2).dense(), torch.zeros(op.n, op.n, dtype=D))
    with torch.no_grad():  # but a NaN is no inactive hinge (its clamp has gradient 0)
        model.linears[1].weight[0, 0] = math.nan
    with pytest.raises(NonFiniteError, match="contain NaN"):
        ModelHessian(model, X2, y2).matvec(torch.ones(op.n, dtype=D))


def test_operator_is_symmetric_and_deterministic():
    model = mlp("4-3-3-2-1", 0.8)
    X, y = data(9, (4,))
    op = ModelHessian(model, X, y, loss="logistic", batch_size=4)
    g = torch.Generator().manual_seed(0)
    u, v = torch.randn(op.n, dtype=D, generator=g), torch.randn(op.n, dtype=D, generator=g)
    Hu, Hv = op.matvec(u), op.matvec(v)
    assert abs(u @ Hv - v @ Hu) <= 1e-13 * (u.norm() * Hv.norm())
    assert torch.equal(op.matvec(v), Hv)  # bitwise: the gates are a fixed sample
    V = torch.stack([u, v], dim=1)
    assert torch.allclose(op.matmat(V), torch.stack([Hu, Hv], dim=1), rtol=0, atol=1e-14)
    H = op.dense()
    assert (H - H.T).abs().max() <= 1e-14 * H.abs().max()


def test_unequal_batches_equal_one_batch_and_gate_sample_is_per_example():
    model = mlp("3-4-3-1", 0.6)
    X, y = data(7, (3,))
    one = ModelHessian(model, X, y, loss="hinge")
    three = ModelHessian(model, X, y, loss="hinge", batch_size=3)  # 3, 3, 1
    for a, b in zip(one.gate_masks, three.gate_masks, strict=True):
        assert torch.equal(a, b)  # the sample does not depend on the batching
    assert (one.dense() - three.dense()).abs().max() <= 1e-14 * one.dense().abs().max()
    sub = ModelHessian(model, X, y, indices=[5, 1, 2])
    for a, b in zip(one.gate_masks, sub.gate_masks, strict=True):
        assert torch.equal(a[[5, 1, 2]], b)  # nor on the other examples
    other = ModelHessian(model, X, y, gate_seed=1)
    assert any(not torch.equal(a, b) for a, b in zip(one.gate_masks, other.gate_masks))
    again = ModelHessian(model, X, y, gate_masks=one.gate_masks, batch_size=2)
    assert (again.dense() - one.dense()).abs().max() <= 1e-14 * one.dense().abs().max()


def test_gate_sample_follows_the_gate_law():
    model = mlp("5-5-1", 1e-12)  # T → 0: the sampled gates are the ReLU gates
    X, y = data(40, (5,))
    op = ModelHessian(model, X, y)
    assert torch.equal(op.gate_masks[0], relu_gates_numpy(model, X)[0])
    hot = ModelHessian(mlp("5-5-1", math.inf), X, y)  # T = ∞: p = 1/2
    frac = hot.gate_masks[0].double().mean().item()
    assert abs(frac - 0.5) < 4 * math.sqrt(0.25 / 200)


def test_relu_gates_need_no_fixing_and_recording_state_is_kept():
    model = mlp("3-4-3-1", 0.0)
    model.set_record(True)
    X, y = data(4, (3,))
    model(X)
    before = [g.last_gates.clone() for g in model.gates]
    op = ModelHessian(model, X[:2], y[:2])
    assert op.gate_masks == () and op.sampling_gates == ()
    op.dense()
    assert all(g.record for g in model.gates)
    assert all(torch.equal(g.last_gates, b) for g, b in zip(model.gates, before))
    assert all("forward" not in g.__dict__ for g in model.gates)


def test_risk_gradient_outputs_and_per_example_products():
    model = mlp("5-5-1", 0.4)
    X, y = data(6, (5,))
    op = ModelHessian(model, X, y, loss="logistic", batch_size=4)
    gates = op.gate_masks
    f_ref = model.forward_with_gates(X, gates)
    assert torch.allclose(op.outputs(), f_ref, atol=1e-14)
    assert op.risk() == pytest.approx(per_example_loss(f_ref, y, "logistic").mean().item())
    theta = torch.cat([lin.weight.detach().reshape(-1) for lin in model.linears]).requires_grad_()
    W1, W2 = theta[:25].reshape(5, 5), theta[25:].reshape(1, 5)
    f = ((X @ W1.T) * gates[0].to(D)) @ W2.T
    (g_ref,) = torch.autograd.grad(per_example_loss(f[:, 0], y, "logistic").mean(), theta)
    assert torch.allclose(op.gradient(), g_ref, atol=1e-14)
    E = torch.eye(op.n, dtype=D)[:, [0, 7, 29]]
    total = torch.zeros(op.n, 3, dtype=D)
    for sl, P in op.per_example_hvp(E, example_chunk=4):  # (B, 3, N)
        total += torch.einsum("b,bkn->nk", op.example_weights[sl], P)
    assert torch.allclose(total, op.matmat(E), atol=1e-14)


def test_scipy_export_and_float32():
    model = mlp("3-4-3-1", 0.0)
    X, y = data(5, (3,))
    op = ModelHessian(model, X, y, loss="logistic")
    A = op.to_scipy()
    v = np.linspace(-1, 1, op.n)
    assert A.shape == (op.n, op.n) and A.dtype == np.float64
    np.testing.assert_allclose(A @ v, op.dense().numpy() @ v, atol=1e-14)
    np.testing.assert_allclose(A.matmat(np.eye(op.n)[:, :2]), op.dense().numpy()[:, :2], atol=1e-14)
    m32 = GatedMLP.from_network(model.to_network(), temperature=0.0, dtype=torch.float32)
    op32 = ModelHessian(m32, X.float(), y.float(), loss="logistic")
    assert op32.dtype == torch.float32 and op32.to_scipy().dtype == np.float32
    H32 = op32.dense().double()
    assert (H32 - H32.T).abs().max() <= 1e-6 * H32.abs().max()
    assert (H32 - op.dense()).abs().max() <= 1e-5 * H32.abs().max()


def test_matrix_operator_doctest_value():
    op = MatrixOperator(np.array([[2.0, 1.0], [1.0, 3.0]]))
    assert op.shape == (2, 2) and op.dtype == D
    np.testing.assert_array_equal(op @ np.array([1.0, 1.0]), [3.0, 4.0])


# -- error paths ---------------------------------------------------------------------------------


def test_no_trainable_parameters_is_refused():
    model = mlp("2-2-1", 0.0).requires_grad_(False)
    X, y = data(3, (2,))
    with pytest.raises(ConfigError, match="no trainable parameters"):
        ModelHessian(model, X, y)
    with pytest.raises(ConfigError, match="no trainable parameters"):
        ModelHessian(nn.ReLU(), X, y)


def test_dense_over_the_limit_names_the_count():
    model = GatedMLP((80, 64, 1), temperature=0.0, dtype=D)  # N = 5,184 > 5,000
    X, y = data(2, (80,))
    op = ModelHessian(model, X, y)
    assert op.n > DENSE_LIMIT
    with pytest.raises(ConfigError, match="5,184 parameters, above the limit 5,000"):
        op.dense()


def test_non_finite_product_is_a_specific_error():
    model = mlp("3-4-3-1", 0.0)
    X, y = data(4, (3,))
    with torch.no_grad():
        model.linears[1].weight[0, 0] = float("nan")
    op = ModelHessian(model, X, y, loss="logistic", context="epoch 12")
    with pytest.raises(NonFiniteError, match=r"epoch 12.*linears\.1\.weight contain NaN"):
        op.matvec(torch.ones(op.n, dtype=D))
    assert issubclass(NonFiniteError, FloatingPointError)
    good = ModelHessian(mlp("3-4-3-1", 0.0), X, y)
    with pytest.raises(NonFiniteError, match="vector"):
        good.matvec(torch.full((good.n,), math.inf, dtype=D))
    with pytest.raises(NonFiniteError, match="not finite"):
        MatrixOperator(torch.tensor([[math.inf]], dtype=D)).matvec(torch.ones(1, dtype=D))


@pytest.mark.parametrize("ad", ["gated", "fwd-over-rev"])
def test_non_finite_product_of_finite_parameters_quotes_the_risk(ad):
    """Finite but huge weights overflow float32 products: the message says so, quoting R."""
    model = mlp("3-4-3-1", 0.0).float()
    X, y = data(4, (3,))
    with torch.no_grad():
        for lin in model.linears:
            lin.weight.mul_(1e20)  # products of two layers ~ 1e40 > float32 max: Hv overflows
    op = ModelHessian(model, X.float(), y.float(), loss="logistic", ad=ad)
    with pytest.raises(NonFiniteError, match=r"parameters are finite and the risk is (inf|nan)"):
        op.matvec(torch.ones(op.n))


def test_bad_inputs_are_named():
    model = mlp("3-4-3-1", 0.5)
    X, y = data(4, (3,))
    op = ModelHessian(model, X, y)
    with pytest.raises(ShapeError, match=r"\(N,\) array with N = 27"):
        op.matvec(torch.ones(5, dtype=D))
    with pytest.raises(ConfigError, match="loss must be one of hinge, logistic"):
        ModelHessian(model, X, y, loss="mse")
    with pytest.raises(ShapeError, match="X must be"):
        ModelHessian(model, X, y[:3])
    with pytest.raises(ConfigError, match=r"labels must be -1 or \+1, got \[0.0\]"):
        ModelHessian(model, X, y * 0 + torch.tensor([1.0, 0.0, 1.0, -1.0], dtype=D))
    with pytest.raises(ConfigError, match="batch size"):
        ModelHessian(model, X, y, batch_size=0)
    with pytest.raises(ConfigError, match=r"indices must lie in \[0, 4\)"):
        ModelHessian(model, X, y, indices=[0, 4])
    with pytest.raises(ShapeError, match="expected 2 gate masks"):
        ModelHessian(model, X, y, gate_masks=op.gate_masks[:1])
    with pytest.raises(ConfigError, match="example_weights must be finite"):
        ModelHessian(model, X, y, example_weights=torch.tensor([1.0, -1.0, 0.0, 0.0]))


def test_each_hessian_module_imports_only_those_listed_before_it():
    """The order of the package docstring's module list is a dependency order (no cycle)."""
    import ast
    import re
    from pathlib import Path

    import umwelt.nn.hessian as package

    order = re.findall(r":mod:`~umwelt\.nn\.hessian\.(\w+)`", package.__doc__)
    folder = Path(package.__file__).parent
    modules = {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}
    packages = {p.parent.name for p in folder.glob("*/__init__.py")}  # (gated)
    assert sorted(order) == sorted(modules | packages)
    for i, name in enumerate(order):
        files = (
            sorted((folder / name).glob("*.py")) if name in packages else [folder / f"{name}.py"]
        )
        imported = set()
        for f in files:
            for n in ast.walk(ast.parse(f.read_text())):
                if isinstance(n, ast.ImportFrom) and n.module:
                    imported |= {n.module, *(f"{n.module}.{a.name}" for a in n.names)}
                elif isinstance(n, ast.Import):
                    imported |= {a.name for a in n.names}
        inside = {m.split(".")[3] for m in imported if m.startswith("umwelt.nn.hessian.")}
        assert inside - {name} <= set(order[:i]), (name, inside - {name} - set(order[:i]))
