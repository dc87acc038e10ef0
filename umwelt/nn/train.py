r"""Generalized EM training of a gated network, alone or data-parallel (THEORY.md §2).

One minibatch is one EM iteration (section II.2 of the paper):

* **E-step** — the forward pass of a :class:`~umwelt.nn.mlp.GatedMLP` (or a VGG) in
  ``"sample"`` mode draws every hidden layer's gates :math:`h_l \sim \mathrm{Bern}(\sigma(z_l/T))`,
  weights fixed;
* **M-step** — ``backward`` differentiates :math:`f = W_L^\top \mathrm{dg}(h_{L-1})
  W_{L-1}^\top \cdots` with the sampled gates held constant, and ``optimizer.step()`` moves
  every :math:`W_l` (SGD with momentum, the feedback loop :math:`d\theta/dt = -\eta\nabla R`,
  eq. 13).

At :math:`T = 0` no gate draws anything, the forward pass is the ReLU network's and the loop is
plain SGD on it, step for step. Randomness is explicit: the data order comes from one seeded
CPU :class:`torch.Generator` (:func:`epoch_order`), gate noise from the model's own generator
(:meth:`GatedMLP.set_generator`), so changing :math:`T` never shifts the data order.

:func:`em_steps` is the one loop: it runs the steps of an epoch from where an
:class:`EpochState` stands (so a driver can checkpoint mid-epoch and continue bit-identically)
and, given a ``torch.distributed`` process group, splits every global minibatch over the ranks
and all-reduces the gradients (:mod:`umwelt.nn.parallel`). :func:`train_epoch` is one whole
epoch through it. The measurements (:func:`evaluate`, :func:`order_parameter`,
:func:`gate_statistics`) live in :mod:`umwelt.nn.observables` and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from umwelt._checks import check_fraction, check_int, check_positive
from umwelt.errors import ConfigError, ShapeError
from umwelt.nn.losses import LOSSES, LossFn, get_loss, hinge_loss, logistic_loss
from umwelt.nn.observables import (
    _check_data,
    _loss_fn,
    _output,
    evaluate,
    gate_statistics,
    order_parameter,
)
from umwelt.nn.parallel import all_reduce_sum, shard

if TYPE_CHECKING:
    from torch.distributed import ProcessGroup

__all__ = [
    "LOSSES",
    "EpochState",
    "em_steps",
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
    on how many gate samples were drawn (and, data-parallel, is the same on every rank).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"the number of examples must be a positive integer, got {n!r}")
    return torch.randperm(n, generator=generator, device=generator.device)


@dataclass
class EpochState:
    r"""Where an epoch of :func:`em_steps` stands; enough to checkpoint it and continue.

    Attributes:
        order: the epoch's permutation of ``range(n)``, int64 ``(n,)``, on the data's device.
        pos: how many examples of ``order`` the steps so far consumed.
        step: optimizer steps taken in this epoch.
        loss_sum: float64 ``()`` on ``order``'s device, :math:`\sum_{\text{steps}} B\,\bar\ell_B`
            (each global minibatch's mean loss, taken before its step, times its size ``B``).
    """

    order: torch.Tensor
    pos: int = 0
    step: int = 0
    loss_sum: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.loss_sum is None:
            self.loss_sum = torch.zeros((), dtype=torch.float64, device=self.order.device)

    def state_dict(self) -> dict:
        """``{"order", "pos", "step", "loss_sum"}`` with the tensors on the CPU (for
        ``torch.save(..., weights_only=True)`` files)."""
        return {
            "order": self.order.cpu(),
            "pos": self.pos,
            "step": self.step,
            "loss_sum": self.loss_sum.cpu(),
        }

    @classmethod
    def from_state_dict(cls, state: dict, device: str | torch.device = "cpu") -> EpochState:
        """The state :meth:`state_dict` wrote, its tensors moved to ``device``."""
        return cls(
            order=state["order"].to(device),
            pos=int(state["pos"]),
            step=int(state["step"]),
            loss_sum=state["loss_sum"].to(device),
        )


def em_steps(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    state: EpochState,
    *,
    batch_size: int,
    loss: str | LossFn = "hinge",
    group: ProcessGroup | None = None,
    on_step: Callable[[EpochState, torch.Tensor], None] | None = None,
) -> float:
    r"""The remaining EM steps of an epoch: the minibatches of ``state.order`` from ``state.pos``.

    Each step takes the next global minibatch ``idx = order[pos : pos + B]`` (the last one may
    be smaller) and this rank's contiguous slice of it (:func:`umwelt.nn.parallel.shard`; all of
    it when alone), then

    1. **E-step** — the forward pass on the slice in the model's current mode (``"sample"``:
       gates drawn from the model's generator);
    2. backward of :math:`\frac{b_r}{B}\,\bar\ell_r = \frac1B\sum_{i \in r}\ell_i` through the
       fixed gates (a rank with an empty slice contributes zeros; a parameter the loss does not
       reach gets a zero gradient), then one all-reduce of the gradients and the loss, so every
       rank holds the global batch's gradient :math:`\frac1B\sum_i\nabla\ell_i`;
    3. **M-step** — ``optimizer.step()``;
    4. ``state.loss_sum += B·ℓ̄_B`` (in float64), ``state.pos += B``, ``state.step += 1``, and
       ``on_step(state, loss)`` with ``loss`` the global batch's mean loss (a float64 0-d
       tensor; call ``float`` on it only if needed, it waits for the device).

    ``state`` is updated in place, so ``on_step`` may checkpoint it (:meth:`EpochState.
    state_dict`); continuing from a saved state reproduces the uninterrupted run bit for bit,
    given the model, optimizer and generator states of the same moment. Alone, at :math:`T = 0`
    or in ``"relu"`` mode, this is plain minibatch SGD on the ReLU net.

    Args:
        model: maps ``(b, ...)`` to ``(b,)`` (or ``(b, 1)``); identical on every rank.
        X: inputs ``(n, ...)`` on the model's device, the same on every rank.
        y: labels ``(n,)`` in ``{-1, +1}``, same dtype and device as ``X``.
        optimizer: e.g. from :func:`make_optimizer`.
        state: the epoch's order and progress (a new one: ``EpochState(order)``).
        batch_size: the global minibatch size ``B``.
        loss: a name of :data:`LOSSES` or a mean loss ``(f, y) -> ()``.
        group: the process group (``None``: the default one, or alone).
        on_step: called after every step, as described above.

    Returns:
        The epoch's mean minibatch loss ``state.loss_sum / n`` (each taken before its step).

    Raises:
        ConfigError: for an unknown loss or a batch size that is not a positive integer.
        ShapeError: for data that are not ``(n, ...)``, ``(n,)``, or an order not of shape
            ``(n,)``.
    """
    loss_fn = _loss_fn(loss)
    batch_size = check_int("batch size", batch_size)
    n = _check_data(X, y)
    if state.order.shape != (n,):
        raise ShapeError(
            f"order must be a permutation of {n} indices, got shape {tuple(state.order.shape)}"
        )
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()
    while state.pos < n:
        idx = state.order[state.pos : state.pos + batch_size]  # the global minibatch (B,)
        local = shard(idx, group)  # this rank's slice (b_r,)
        optimizer.zero_grad(set_to_none=True)
        if local.numel():
            f = _output(model, X[local])  # (b_r,) E-step: the gates are drawn
            batch_loss = loss_fn(f, y[local]) * (local.numel() / idx.numel())
            batch_loss.backward()  # M-step gradient, gates held fixed
            loss_t = batch_loss.detach().double().reshape(1)
        else:
            loss_t = torch.zeros(1, dtype=torch.float64, device=X.device)
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        all_reduce_sum([*(p.grad for p in params), loss_t], group)
        optimizer.step()  # M-step
        state.loss_sum += loss_t[0] * idx.numel()
        state.pos += idx.numel()
        state.step += 1
        if on_step is not None:
            on_step(state, loss_t[0])
    return state.loss_sum.item() / n


def train_epoch(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    *,
    batch_size: int,
    order: torch.Tensor,
    loss: str | LossFn = "hinge",
) -> float:
    r"""One epoch of generalized EM in one process: :func:`em_steps` over all of ``order``.

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
        loss: ``"hinge"`` or ``"logistic"`` (or a mean loss ``(f, y) -> ()``).

    Returns:
        The mean of the minibatch losses weighted by their sizes (each taken before its step).
    """
    loss_fn = _loss_fn(loss)
    state = EpochState(order.to(X.device))
    return em_steps(model, X, y, optimizer, state, batch_size=batch_size, loss=loss_fn)
