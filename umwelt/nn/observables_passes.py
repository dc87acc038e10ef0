r"""Full-data passes: the risk, the accuracy and the gradient over the whole training set,
and the plasticity order parameter (THEORY.md §4, eq. 15).

:func:`full_gradient` makes one pass over the training set: the risk
:math:`R = \frac1n\sum_i \ell(y_i f(x_i))`, the accuracy (:math:`y f > 0`; an output of 0 is
wrong), in the model's gate mode (in ``"sample"`` mode each example's gates are drawn once: a
one-draw Monte Carlo estimate of the risk), and the gradient :math:`\nabla_\theta R` of that
same pass (and, if asked, every example's margin); :func:`order_parameter` is
:math:`\eta\|\nabla_\theta R\|^2` of it; :func:`evaluate` is the risk and accuracy alone,
without gradients.

Each takes a ``torch.distributed`` process ``group``: each rank works on its contiguous shard
of the examples and the sums and counts are all-reduced (:mod:`umwelt.nn.parallel`), so under
``torchrun`` they equal the single-process values, and alone (``group=None``, nothing
initialized) the same code runs on all examples.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from umwelt._checks import check_int, check_positive
from umwelt.nn.losses import LossFn
from umwelt.nn.observables_model import _check_data, _loss_fn, _output
from umwelt.nn.parallel import all_gather_shards, all_reduce_sum, local_batches

if TYPE_CHECKING:
    from torch.distributed import ProcessGroup

__all__ = ["evaluate", "full_gradient", "order_parameter"]


def full_gradient(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    loss: str | LossFn = "hinge",
    batch_size: int = 4096,
    group: ProcessGroup | None = None,
    margins: bool = False,
) -> tuple[list[torch.Tensor], dict[str, float]]:
    r"""The gradient of the risk over the whole training set, with its loss and accuracy.

    .. math::
        \nabla_\theta R = \sum_{\text{batches } b} \frac{|b|}{n}\,\nabla_\theta
        \bar\ell_b, \qquad \bar\ell_b = \frac1{|b|}\sum_{i\in b}\ell(y_i f(x_i)),

    each rank summing over the batches of its shard of ``range(n)``, then all ranks adding
    their sums (one all-reduce per dtype). The model's gates are used as they are (mode,
    generator); the model is put in eval mode; ``.grad`` is not touched
    (``torch.autograd.grad``).

    Args:
        model: maps ``(B, ...)`` to ``(B,)`` (or ``(B, 1)``).
        X: inputs ``(n, ...)`` on the model's device, the same on every rank.
        y: labels ``(n,)`` in ``{-1, +1}``.
        loss: a name of :data:`umwelt.nn.losses.LOSSES` or a mean loss ``(f, y) -> ()``.
        batch_size: examples per forward pass.
        group: the process group (``None``: the default one, or alone).
        margins: also return every example's margin :math:`y_i f(x_i)` of this pass (the
            same gates), gathered from all ranks, as ``stats["margins"]`` (float64, ``(n,)``).

    Returns:
        ``(grads, stats)``: one tensor per parameter with ``requires_grad`` (in
        ``model.parameters()`` order, zero for a parameter the loss does not reach), and
        ``{"loss": R, "acc": ..., "grad_sq": ‖∇R‖²}`` (``grad_sq`` summed in float64).

    Raises:
        ShapeError: for ``X``, ``y`` that are not ``(n, ...)``, ``(n,)`` with ``n > 0``.
        ConfigError: for an unknown loss or a batch size that is not a positive integer.

    >>> from umwelt.nn import build_mlp
    >>> model = build_mlp((2, 3, 1), temperature=0.0, seed=0, dtype=torch.float64)
    >>> X, y = torch.zeros(4, 2, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    >>> _, stats = full_gradient(model, X, y)  # f = 0: hinge loss 1, every example wrong
    >>> stats
    {'loss': 1.0, 'acc': 0.0, 'grad_sq': 0.0}
    """
    loss_fn = _loss_fn(loss)
    batch_size = check_int("batch size", batch_size)
    n = _check_data(X, y)
    params = [p for p in model.parameters() if p.requires_grad]
    grads = [torch.zeros_like(p) for p in params]
    stats = torch.zeros(2, dtype=torch.float64, device=X.device)  # loss sum, correct count
    kept: list[torch.Tensor] = []
    model.eval()
    with torch.enable_grad():
        for sl in local_batches(n, batch_size, group):
            xb, yb = X[sl], y[sl]
            f = _output(model, xb)  # (b,)
            if margins:
                kept.append((f.detach() * yb).double())  # (b,)
            batch = loss_fn(f, yb)
            for g, d in zip(
                grads,
                torch.autograd.grad(batch * (xb.shape[0] / n), params, allow_unused=True),
                strict=True,
            ):
                if d is not None:
                    g += d
            stats[0] += batch.detach().double() * xb.shape[0]
            stats[1] += (f.detach() * yb > 0).sum()
    all_reduce_sum([*grads, stats], group)
    sq = sum((g.double() ** 2).sum() for g in grads)
    out = {"loss": stats[0].item() / n, "acc": stats[1].item() / n, "grad_sq": float(sq)}
    if margins:
        local = torch.cat(kept) if kept else torch.zeros(0, dtype=torch.float64, device=X.device)
        out["margins"] = all_gather_shards(local, n, group).cpu().numpy()
    return grads, out


def order_parameter(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    lr: float,
    loss: str | LossFn = "hinge",
    batch_size: int = 4096,
    group: ProcessGroup | None = None,
) -> float:
    r"""The plasticity order parameter :math:`\eta\,\|\nabla_\theta R\|^2` (eq. 15).

    :math:`R` is the loss averaged over the whole of ``(X, y)``; its gradient is
    :func:`full_gradient`'s (minibatches weighted by their share of the examples, so an unequal
    last batch is exact; in ``"sample"`` mode each example's gates are drawn once; ``.grad``
    untouched).

    Args:
        lr: the step size :math:`\eta` that rescales the squared norm.
        loss, batch_size, group: as for :func:`full_gradient`.

    Returns:
        :math:`\eta \sum_\theta (\partial R / \partial\theta)^2` as a float.

    Raises:
        ConfigError: unless ``lr`` is finite and > 0; as :func:`full_gradient` otherwise.
    """
    lr = check_positive("learning rate", lr)
    _, stats = full_gradient(model, X, y, loss=loss, batch_size=batch_size, group=group)
    return lr * stats["grad_sq"]


@torch.no_grad()
def evaluate(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    loss: str | LossFn = "hinge",
    batch_size: int = 4096,
    group: ProcessGroup | None = None,
) -> dict[str, float]:
    r"""Mean loss and accuracy of ``model`` in its current gate mode, over all of ``(X, y)``.

    .. math::
        R = \frac1n\sum_i \ell(y_i f(x_i)), \qquad
        \mathrm{acc} = \frac1n\,\#\{i : y_i f(x_i) > 0\}

    (an output of exactly 0 is wrong). No gradients; the model is put in eval mode.

    Args:
        X: inputs ``(n, ...)``; y: labels ``(n,)`` in ``{-1, +1}``.
        loss, batch_size, group: as for :func:`full_gradient`.

    Returns:
        ``{"loss": R, "acc": ...}``.

    >>> from umwelt.nn import build_mlp
    >>> model = build_mlp((2, 3, 1), temperature=0.0, seed=0, dtype=torch.float64)
    >>> X, y = torch.zeros(4, 2, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    >>> round(evaluate(model, X, y, loss="logistic")["loss"], 12)  # f = 0: log 2
    0.69314718056
    """
    loss_fn = _loss_fn(loss)
    batch_size = check_int("batch size", batch_size)
    n = _check_data(X, y)
    stats = torch.zeros(2, dtype=torch.float64, device=X.device)  # loss sum, correct count
    model.eval()
    for sl in local_batches(n, batch_size, group):
        f = _output(model, X[sl])  # (b,)
        stats[0] += loss_fn(f, y[sl]).double() * f.shape[0]
        stats[1] += (f * y[sl] > 0).sum()
    all_reduce_sum([stats], group)
    return {"loss": stats[0].item() / n, "acc": stats[1].item() / n}
