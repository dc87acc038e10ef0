r"""The losses of a binary classifier with labels :math:`y \in \{-1, +1\}` (THEORY.md §2).

Each loss exists once, per example: :data:`PER_EXAMPLE_LOSSES` maps a name to
``(f, y) -> (B,)``; the mean losses of training (:data:`LOSSES`, :func:`get_loss`) average it.

* **hinge** :math:`\ell = \max(0, 1 - y f)` (eq. 12, the theory's loss): :math:`\ell'' = 0`
  almost everywhere, so its Hessian is the traceless circuit part :math:`E[\ell' y \nabla^2 f]`;
* **quadratic-hinge** :math:`\ell = \tfrac12 \max(0, 1 - y f)^2`, the hinge-like loss of the
  jamming studies (Geiger, Spigler et al. 2019; THEORY.md §5): zero on satisfied examples
  (:math:`y f \ge 1`) like the hinge, but :math:`\ell' = -y (1 - y f)` and :math:`\ell'' = y^2 = 1`
  on the unsatisfied ones, so its Hessian adds a positive semi-definite Gauss–Newton part to the
  circuit part, :math:`H = E[\ell' y \nabla^2 f] + E[1_\mathrm{unsat} \nabla f \nabla f^\top]`;
* **logistic** :math:`\ell = \log(1 + e^{-y f})`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from umwelt.errors import ConfigError

__all__ = [
    "LOSSES",
    "PER_EXAMPLE_LOSSES",
    "LossFn",
    "get_loss",
    "get_per_example_loss",
    "hinge",
    "hinge_loss",
    "logistic",
    "logistic_loss",
    "quadratic_hinge",
    "quadratic_hinge_loss",
]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def hinge(f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""Per-example hinge loss :math:`\max(0, 1 - y_i f_i)` (eq. 12); ``f, y``: ``(B,)``.

    >>> hinge(torch.tensor([2.0, 0.5, -1.0]), torch.tensor([1.0, 1.0, 1.0])).tolist()
    [0.0, 0.5, 2.0]
    """
    return torch.clamp(1 - y * f, min=0)  # (B,)


def logistic(f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""Per-example logistic loss :math:`\log(1 + e^{-y_i f_i})`; ``f, y``: ``(B,)``."""
    return nn.functional.softplus(-y * f)  # (B,)


def quadratic_hinge(f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""Per-example quadratic hinge :math:`\tfrac12 \max(0, 1 - y_i f_i)^2`; ``f, y``: ``(B,)``.

    With :math:`u_i = 1 - y_i f_i`, an example is unsatisfied (active) iff :math:`u_i > 0`, and
    there

    .. math::
        \ell_i = \tfrac12 u_i^2, \qquad \frac{\partial \ell_i}{\partial f_i} = -y_i u_i,
        \qquad \frac{\partial^2 \ell_i}{\partial f_i^2} = y_i^2 = 1;

    on a satisfied example (:math:`u_i \le 0`, the margin reached) all three vanish, the
    boundary :math:`u_i = 0` included (autograd's second derivative there is 0, as
    :math:`\mathrm{relu}'(0) = 0`).

    >>> quadratic_hinge(torch.tensor([2.0, 0.5, -1.0]), torch.tensor([1.0, 1.0, 1.0])).tolist()
    [0.0, 0.125, 2.0]
    """
    return 0.5 * torch.relu(1 - y * f) ** 2  # (B,)


#: per-example losses ``(f, y) -> (B,)``
PER_EXAMPLE_LOSSES: dict[str, LossFn] = {
    "hinge": hinge,
    "logistic": logistic,
    "quadratic-hinge": quadratic_hinge,
}


def hinge_loss(f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""Mean hinge loss :math:`\frac1B\sum_i \max(0, 1 - y_i f_i)` (eq. 12); ``f, y``: ``(B,)``.

    >>> hinge_loss(torch.tensor([2.0, 0.5, -1.0]), torch.tensor([1.0, 1.0, 1.0])).item()
    0.8333333134651184
    """
    return hinge(f, y).mean()


def logistic_loss(f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""Mean logistic loss :math:`\frac1B\sum_i \log(1 + e^{-y_i f_i})`; ``f, y``: ``(B,)``.

    >>> round(logistic_loss(torch.tensor([0.0]), torch.tensor([1.0])).item(), 6)  # log 2
    0.693147
    """
    return logistic(f, y).mean()


def quadratic_hinge_loss(f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""Mean quadratic hinge loss :math:`\frac1B\sum_i \tfrac12 \max(0, 1 - y_i f_i)^2`;
    ``f, y``: ``(B,)``.

    >>> f, y = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([1.0, 1.0, 1.0])
    >>> round(quadratic_hinge_loss(f, y).item(), 6)  # (0 + 1/8 + 2) / 3
    0.708333
    """
    return quadratic_hinge(f, y).mean()


#: mean losses ``(f, y) -> ()``, the risk of a batch
LOSSES: dict[str, LossFn] = {
    "hinge": hinge_loss,
    "logistic": logistic_loss,
    "quadratic-hinge": quadratic_hinge_loss,
}


def get_loss(name: str) -> LossFn:
    """The mean loss called ``name`` (a key of :data:`LOSSES`), else :class:`ConfigError`."""
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        raise ConfigError(f"loss must be one of {', '.join(LOSSES)}, got {name!r}") from None


def get_per_example_loss(name: str) -> LossFn:
    """The per-example loss called ``name`` (:data:`PER_EXAMPLE_LOSSES`), else ConfigError."""
    try:
        return PER_EXAMPLE_LOSSES[name]
    except (KeyError, TypeError):
        raise ConfigError(f"loss must be one of {', '.join(LOSSES)}, got {name!r}") from None
