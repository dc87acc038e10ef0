r"""The phase observables of a net: its unsatisfied constraints :math:`N_\Delta` (from the
margins of a full-data pass), its layer norms, and its gates' effective temperatures
(THEORY.md §5).

:func:`margin_statistics` counts the examples whose margin :math:`y_i f(x_i)` is below 1 (the
margins come from :func:`~umwelt.nn.observables.full_gradient` with ``margins=True``);
:func:`layer_norms` gives :math:`\|W_l\|_F` and the order parameter split by layer;
:func:`effective_temperatures` the temperature per gated layer in units of the weights' scale.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from umwelt.errors import ShapeError
from umwelt.nn.observables_model import weight_layers

__all__ = ["MARGIN_QUANTILES", "effective_temperatures", "layer_norms", "margin_statistics"]

#: the quantiles of the margins y·f that a row records (fractions)
MARGIN_QUANTILES: tuple[float, ...] = (0.01, 0.05, 0.25, 0.5)


def margin_statistics(margins: np.ndarray | torch.Tensor) -> dict:
    r"""The unsatisfied constraints of the margins :math:`m_i = y_i f(x_i)` (THEORY.md §5).

    :math:`N_\Delta = \#\{i : m_i < 1\}`, the examples with non-zero hinge (or quadratic-hinge)
    loss (Geiger et al. 2019, Spigler et al. 2019: a net has fitted its data when
    :math:`N_\Delta = 0`). For a stochastic net pass ``(S, n)`` margins of ``S`` gate draws:
    :math:`N_\Delta` is then the mean count over the draws.

    Args:
        margins: ``(n,)``, or ``(S, n)`` for ``S`` draws.

    Returns:
        ``n_unsatisfied`` (an int for one draw, else the mean), ``frac_unsatisfied``
        (:math:`N_\Delta / n`) and ``margin_quantiles`` (the 1, 5, 25, 50 % quantiles of all
        margins, of every draw pooled).

    >>> s = margin_statistics(np.array([2.0, 1.0, 0.5, -3.0]))
    >>> s["n_unsatisfied"], s["frac_unsatisfied"]
    (2, 0.5)
    >>> margin_statistics(np.array([[2.0, 0.5], [2.0, 2.0]]))["n_unsatisfied"]  # mean of 1, 0
    0.5
    """
    m = margins.detach().cpu().numpy() if isinstance(margins, torch.Tensor) else margins
    m = np.asarray(m, dtype=np.float64)
    if m.ndim not in (1, 2) or m.shape[-1] == 0:
        raise ShapeError(f"margins must be (n,) or (S, n) with n > 0, got {m.shape}")
    per_draw = (~(m.reshape(-1, m.shape[-1]) >= 1)).sum(axis=1)  # (S,); a NaN margin counts
    with np.errstate(invalid="ignore"):  # a diverged net's ±inf margins
        quantiles = np.quantile(m, MARGIN_QUANTILES).tolist()
    count = int(per_draw[0]) if m.ndim == 1 else float(per_draw.mean())
    return {
        "n_unsatisfied": count,
        "frac_unsatisfied": float(per_draw.mean() / m.shape[-1]),
        "margin_quantiles": quantiles,
    }


def layer_norms(model: nn.Module, grads: list[torch.Tensor] | None = None) -> dict:
    r"""Per weight layer (:func:`weight_layers` order): :math:`\|W_l\|_F` and, given the
    full-data gradient ``grads`` (one tensor per trainable parameter, as :func:`full_gradient`
    returns them), :math:`\|\partial R/\partial W_l\|_F` — the order parameter split by
    layer (eq. 16): their squares sum to :math:`\|\nabla_\theta R\|^2` for a bias-free net.

    Returns:
        ``{"weight_norms": [...]}`` and, with ``grads``, ``"layer_grad_norms": [...]``
        (float lists, one per weight layer).
    """
    layers = weight_layers(model)
    out = {"weight_norms": [float(m.weight.detach().double().norm()) for _, m in layers]}
    if grads is not None:
        params = [p for p in model.parameters() if p.requires_grad]
        if len(grads) != len(params):
            raise ShapeError(
                f"expected one gradient per parameter ({len(params)}), got {len(grads)}"
            )
        by_id = {id(p): g for p, g in zip(params, grads, strict=True)}
        out["layer_grad_norms"] = [float(by_id[id(m.weight)].double().norm()) for _, m in layers]
    return out


def effective_temperatures(model: nn.Module) -> list[float]:
    r"""Per gated layer :math:`l`, :math:`T_l / \|W_l\|_F`: the paper writes
    :math:`W = \hat W / T` with :math:`\|\hat W\|_F = 1`, so a layer whose weights grow during
    training is colder (0 at :math:`T = 0`). Gate :math:`l` follows weight layer :math:`l`
    (:func:`weight_layers` order); the output layer has no gate.

    >>> from umwelt.nn import build_mlp
    >>> m = build_mlp((2, 3, 1), temperature=0.5, seed=0, dtype=torch.float64)
    >>> t = effective_temperatures(m)
    >>> norm = float(weight_layers(m)[0][1].weight.detach().norm())
    >>> len(t) == 1 and abs(t[0] * norm - 0.5) < 1e-12
    True
    """
    layers = weight_layers(model)
    gates = list(getattr(model, "gates", ()))
    out = []
    for g, (_, m) in zip(gates, layers, strict=False):
        norm = float(m.weight.detach().double().norm())
        out.append(0.0 if g.temperature == 0 else (g.temperature / norm if norm > 0 else math.inf))
    return out
