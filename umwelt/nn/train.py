r"""Generalized EM training of a gated network, and what is measured on the way (THEORY.md §2, §4).

One minibatch is one EM iteration (section II.2 of the paper):

* **E-step** — the forward pass of a :class:`~umwelt.nn.mlp.GatedMLP` in ``"sample"`` mode
  draws every hidden layer's gates :math:`h_l \sim \mathrm{Bern}(\sigma(z_l/T))`, weights fixed;
* **M-step** — ``loss.backward()`` differentiates :math:`f = W_L^\top \mathrm{dg}(h_{L-1})
  W_{L-1}^\top \cdots` with the sampled gates held constant, and ``optimizer.step()`` moves
  every :math:`W_l` (SGD with momentum, the feedback loop :math:`d\theta/dt = -\eta\nabla R`,
  eq. 13).

At :math:`T = 0` no gate draws anything, the forward pass is the ReLU network's and the loop is
plain SGD on it, step for step. Randomness is explicit: the data order comes from one seeded
CPU :class:`torch.Generator` (:func:`epoch_order`), gate noise from the model's own generator
(:meth:`GatedMLP.set_generator`), so changing :math:`T` never shifts the data order.

Also here: the losses (hinge, eq. 12, and logistic), :func:`evaluate`, the plasticity order
parameter :math:`\eta\|\nabla_\theta R\|^2` (eq. 15) and per-layer gate statistics.
"""

from __future__ import annotations

import torch
from torch import nn

from umwelt._checks import check_fraction, check_int, check_positive
from umwelt.errors import ConfigError, ShapeError
from umwelt.nn.gate import gate_entropy_bits
from umwelt.nn.losses import LOSSES, get_loss, hinge_loss, logistic_loss

__all__ = [
    "LOSSES",
    "epoch_order",
    "evaluate",
    "gate_statistics",
    "get_loss",
    "hinge_loss",
    "logistic_loss",
    "make_optimizer",
    "order_parameter",
    "train_epoch",
]


def _check_data(X: torch.Tensor, y: torch.Tensor) -> int:
    if X.ndim < 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise ShapeError(
            f"X must be (n, ...) and y (n,), got {tuple(X.shape)} and {tuple(y.shape)}"
        )
    if X.shape[0] == 0:
        raise ShapeError("the data set is empty")
    return X.shape[0]


def _output(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    f = model(x)
    return f[:, 0] if f.ndim == 2 else f  # (B,); a plain nn.Sequential gives (B, 1)


def make_optimizer(model: nn.Module, lr: float, momentum: float = 0.0) -> torch.optim.SGD:
    """SGD with momentum on all of ``model``'s parameters (no weight decay, no biases to skip).

    Raises:
        ConfigError: unless ``lr`` is finite and > 0 and ``0 ≤ momentum < 1``, naming the value.
    """
    lr = check_positive("learning rate", lr)
    m = check_fraction("momentum", momentum)
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=m)


def epoch_order(n: int, generator: torch.Generator) -> torch.Tensor:
    """A random permutation of ``range(n)`` (int64, on the generator's device) for one epoch.

    Pass a seeded CPU generator that serves only the data order, so the order does not depend
    on how many gate samples were drawn.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"the number of examples must be a positive integer, got {n!r}")
    return torch.randperm(n, generator=generator, device=generator.device)


def train_epoch(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    *,
    batch_size: int,
    order: torch.Tensor,
    loss: str = "hinge",
) -> float:
    r"""One epoch of generalized EM: one E-step + M-step per minibatch of ``order``.

    Each minibatch: forward pass in the model's current mode (``"sample"``: the gates are drawn,
    the E-step), the loss, ``backward`` through the fixed gates and ``optimizer.step()`` (the
    M-step). In ``"relu"`` mode, or at ``T = 0``, this is plain minibatch SGD on the ReLU net.

    Args:
        model: maps ``(B, n_0)`` to ``(B,)`` (or ``(B, 1)``), e.g. a ``GatedMLP``.
        X: inputs ``(n, n_0)`` on the model's device.
        y: labels ``(n,)`` in ``{-1, +1}``, same dtype and device as ``X``.
        optimizer: e.g. from :func:`make_optimizer`.
        batch_size: examples per minibatch; the last one may be smaller.
        order: the epoch's permutation of ``range(n)`` (:func:`epoch_order`).
        loss: ``"hinge"`` or ``"logistic"``.

    Returns:
        The mean of the minibatch losses weighted by their sizes (each taken before its step).
    """
    loss_fn = get_loss(loss)
    batch_size = check_int("batch size", batch_size)
    n = _check_data(X, y)
    if order.shape != (n,):
        raise ShapeError(
            f"order must be a permutation of {n} indices, got shape {tuple(order.shape)}"
        )
    order = order.to(X.device)
    model.train()
    total = torch.zeros((), dtype=torch.float64, device=X.device)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        xb, yb = X[idx], y[idx]  # (B, n_0), (B,)
        optimizer.zero_grad(set_to_none=True)
        batch_loss = loss_fn(_output(model, xb), yb)  # E-step inside the forward pass
        batch_loss.backward()  # gradient with the sampled gates held fixed
        optimizer.step()  # M-step
        total += batch_loss.detach() * idx.shape[0]
    return total.item() / n


@torch.no_grad()
def evaluate(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    loss: str = "hinge",
    batch_size: int = 4096,
) -> dict[str, float]:
    """Mean loss and accuracy of ``model`` in its current mode (no gradients).

    Accuracy counts ``sign(f) == y``; an output of exactly 0 is counted as wrong.

    Returns:
        ``{"loss": ..., "acc": ...}``.
    """
    loss_fn = get_loss(loss)
    batch_size = check_int("batch size", batch_size)
    n = _check_data(X, y)
    total = torch.zeros((), dtype=torch.float64, device=X.device)
    correct = torch.zeros((), dtype=torch.int64, device=X.device)
    for start in range(0, n, batch_size):
        xb, yb = X[start : start + batch_size], y[start : start + batch_size]
        f = _output(model, xb)
        total += loss_fn(f, yb).double() * xb.shape[0]
        correct += (torch.sign(f) == yb).sum()
    return {"loss": total.item() / n, "acc": correct.item() / n}


def order_parameter(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    lr: float,
    loss: str = "hinge",
    batch_size: int = 4096,
) -> float:
    r"""The plasticity order parameter :math:`\eta\,\|\nabla_\theta R\|^2` (eq. 15).

    :math:`R` is the loss averaged over the whole of ``(X, y)``; its gradient is accumulated over
    minibatches, each weighted by its share of the examples (so an unequal last batch is exact).
    In ``"sample"`` mode each example's gates are drawn once. ``.grad`` of the parameters is
    left untouched (``torch.autograd.grad``).

    Args:
        lr: the step size :math:`\eta` that rescales the squared norm.

    Returns:
        :math:`\eta \sum_\theta (\partial R / \partial\theta)^2` as a float.
    """
    lr = check_positive("learning rate", lr)
    loss_fn = get_loss(loss)
    batch_size = check_int("batch size", batch_size)
    n = _check_data(X, y)
    params = [p for p in model.parameters() if p.requires_grad]
    grads = [torch.zeros_like(p) for p in params]
    with torch.enable_grad():
        for start in range(0, n, batch_size):
            xb, yb = X[start : start + batch_size], y[start : start + batch_size]
            part = loss_fn(_output(model, xb), yb) * (xb.shape[0] / n)  # this batch's share of R
            for g, d in zip(grads, torch.autograd.grad(part, params), strict=True):
                g += d
    sq = sum((g.double() ** 2).sum() for g in grads)
    return lr * float(sq)


@torch.no_grad()
def gate_statistics(
    model: nn.Module, X: torch.Tensor, *, batch_size: int = 4096
) -> dict[str, list[float]]:
    r"""Per hidden layer: mean gate entropy (bits) and agreement with the ReLU gates.

    One forward pass in ``"sample"`` mode (whatever the model's mode; it is restored after):

    * ``gate_entropy[l-1]`` — the entropy of :math:`\mathrm{Bern}(\sigma(z_l/T))` at the logits
      :math:`z_l` that pass reached, averaged over examples and units: 0 at ``T = 0``, 1 at
      ``T = inf``;
    * ``gate_agreement[l-1]`` — the fraction of sampled gates equal to the ``T = 0`` gates of the
      same weights (the model's ``relu_gates``): 1 at ``T = 0``, about 1/2 at ``T = inf``.

    Works for any model with ``gates``, ``set_mode``, ``set_record`` and ``relu_gates`` (the MLP
    and the VGG); a conv layer's gates count once per channel and position.

    Returns:
        ``{"gate_entropy": [...], "gate_agreement": [...]}``, ``L - 1`` floats each.
    """
    batch_size = check_int("batch size", batch_size)
    if X.ndim < 2 or X.shape[0] == 0:
        raise ShapeError(f"X must be a non-empty (n, ...) tensor, got shape {tuple(X.shape)}")
    n = X.shape[0]
    T = model.temperature
    mode = model.mode
    records = [g.record for g in model.gates]
    ent = [torch.zeros((), dtype=torch.float64, device=X.device) for _ in model.gates]
    agree = [torch.zeros((), dtype=torch.int64, device=X.device) for _ in model.gates]
    units = [0 for _ in model.gates]  # gates seen per layer (units × positions × examples)
    try:
        model.set_mode("sample").set_record(True)
        for start in range(0, n, batch_size):
            xb = X[start : start + batch_size]
            model(xb)
            relu = model.relu_gates(xb)
            for l, (gate, h0) in enumerate(zip(model.gates, relu, strict=True)):
                ent[l] += gate_entropy_bits(gate.last_logits, T).sum()
                agree[l] += (gate.last_gates == h0).sum()
                units[l] += h0.numel()
    finally:
        model.set_mode(mode)
        for gate, r in zip(model.gates, records, strict=True):
            gate.record = r
            if not r:
                gate.last_gates = gate.last_logits = None
    return {
        "gate_entropy": [e.item() / u for e, u in zip(ent, units, strict=True)],
        "gate_agreement": [a.item() / u for a, u in zip(agree, units, strict=True)],
    }
