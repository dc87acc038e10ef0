"""The losses against closed forms and autograd of hand-written formulas (float64)."""

from __future__ import annotations

import pytest
import torch

from umwelt.errors import ConfigError
from umwelt.nn.losses import (
    LOSSES,
    PER_EXAMPLE_LOSSES,
    get_loss,
    get_per_example_loss,
    hinge,
    hinge_loss,
    logistic,
    logistic_loss,
    quadratic_hinge,
    quadratic_hinge_loss,
)

D = torch.float64

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _points() -> tuple[torch.Tensor, torch.Tensor]:
    """Margins on both sides of 1, the boundary y f = 1 exactly among them, both labels."""
    g = torch.Generator().manual_seed(0)
    f = torch.cat([torch.randn(40, generator=g, dtype=D) * 2, torch.tensor([1.0, -1.0], dtype=D)])
    y = torch.where(torch.rand(42, generator=g, dtype=D) < 0.5, -1.0, 1.0).to(D)
    y[-2:] = torch.tensor([1.0, -1.0], dtype=D)  # y f = 1: on the boundary
    return f, y


def test_quadratic_hinge_is_half_the_squared_hinge():
    f, y = _points()
    u = 1 - y * f
    expected = torch.where(u > 0, u**2 / 2, torch.zeros_like(u))
    assert torch.equal(quadratic_hinge(f, y), expected)
    assert torch.allclose(quadratic_hinge(f, y), hinge(f, y) ** 2 / 2, rtol=1e-15, atol=0)
    assert quadratic_hinge(f, y).shape == (42,)
    assert (u <= 0).any() and (u > 0).any()  # both satisfied and unsatisfied examples


def test_quadratic_hinge_derivatives_against_autograd_and_closed_form():
    f, y = _points()
    fq = f.clone().requires_grad_()
    (d1,) = torch.autograd.grad(quadratic_hinge(fq, y).sum(), fq, create_graph=True)
    (d2,) = torch.autograd.grad(d1.sum(), fq)
    u = 1 - y * f
    active = u > 0
    # ℓ' = -y (1 - y f) and ℓ'' = y² = 1 on unsatisfied examples; 0 on satisfied ones,
    # the boundary u = 0 included
    assert torch.allclose(d1.detach(), torch.where(active, -y * u, 0.0), rtol=1e-15, atol=0)
    assert torch.equal(d2, active.to(D))
    assert d2[-2:].tolist() == [0.0, 0.0]
    # against autograd of an independent formula (the squared hinge of a clamp)
    fr = f.clone().requires_grad_()
    (g_ref,) = torch.autograd.grad((0.5 * torch.clamp(1 - y * fr, min=0) ** 2).sum(), fr)
    assert torch.allclose(d1.detach(), g_ref, rtol=1e-15, atol=0)
    # and by finite differences away from the kink
    h = 1e-6
    fd = (quadratic_hinge(f + h, y) - quadratic_hinge(f - h, y)) / (2 * h)
    far = (u - 0).abs() > 1e-3
    assert torch.allclose(d1.detach()[far], fd[far], rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize(
    ("name", "per", "mean"),
    [
        ("hinge", hinge, hinge_loss),
        ("logistic", logistic, logistic_loss),
        ("quadratic-hinge", quadratic_hinge, quadratic_hinge_loss),
    ],
)
def test_mean_loss_is_the_mean_of_the_per_example_loss(name, per, mean):
    f, y = _points()
    assert PER_EXAMPLE_LOSSES[name] is per and get_per_example_loss(name) is per
    assert LOSSES[name] is mean and get_loss(name) is mean
    assert torch.equal(mean(f, y), per(f, y).mean())
    fq = f.clone().requires_grad_()
    (g,) = torch.autograd.grad(mean(fq, y), fq)
    fr = f.clone().requires_grad_()
    (g_ref,) = torch.autograd.grad(per(fr, y).sum() / f.numel(), fr)
    assert torch.allclose(g, g_ref, rtol=1e-15, atol=1e-18)


def test_existing_losses_keep_their_formulas():
    f, y = _points()
    assert torch.equal(hinge(f, y), torch.clamp(1 - y * f, min=0))
    assert torch.equal(logistic(f, y), torch.nn.functional.softplus(-y * f))
    assert list(LOSSES) == ["hinge", "logistic", "quadratic-hinge"]
    assert list(PER_EXAMPLE_LOSSES) == list(LOSSES)


def test_unknown_losses_are_named():
    for get in (get_loss, get_per_example_loss):
        with pytest.raises(ConfigError, match="hinge, logistic, quadratic-hinge, got 'squared'"):
            get("squared")
