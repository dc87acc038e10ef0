r"""Gate statistics: per gate layer, the mean gate entropy, the agreement of the sampled gates
with the ReLU gates and the fraction open (:func:`gate_statistics`).

Two forward passes per batch, one with the :math:`T = 0` gates of the current weights and one
sampled at each gate's temperature, over the whole data set (sharded over a process ``group``
and all-reduced, as the full-data passes of :mod:`umwelt.nn.observables_passes`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from umwelt._checks import check_int
from umwelt.errors import ShapeError
from umwelt.nn.gate import gate_entropy_bits
from umwelt.nn.parallel import all_reduce_sum, local_batches

if TYPE_CHECKING:
    from torch.distributed import ProcessGroup

__all__ = ["gate_statistics"]


@torch.no_grad()
def gate_statistics(
    model: nn.Module,
    X: torch.Tensor,
    *,
    batch_size: int = 4096,
    group: ProcessGroup | None = None,
) -> dict[str, np.ndarray]:
    r"""Per gate layer: mean entropy (bits), agreement with the ReLU gates, fraction open.

    For each batch, two forward passes with every gate recording: one in ``"relu"`` mode (the
    :math:`T = 0` gates :math:`1[z > 0]` of these weights), one in ``"sample"`` mode at each
    gate's temperature (drawn from the gates' current generators). Per gate layer :math:`l`,
    averaged over examples and units (a convolution's gate layer has ``C·H·W`` units per
    example):

    * ``gate_entropy`` — the entropy of :math:`\mathrm{Bern}(\sigma(z/T))` at the sampled
      pass's logits (:func:`umwelt.nn.gate.gate_entropy_bits`): 0 at ``T = 0``, 1 at
      ``T = inf``;
    * ``gate_agreement`` — the fraction of sampled gates equal to the ReLU gates: 1 at
      ``T = 0``, about 1/2 at ``T = inf``;
    * ``gate_open`` — the fraction of sampled gates that are open.

    The gates' modes and recording are restored after (their ``last_gates`` / ``last_logits``
    are cleared); the model is put in eval mode.

    Args:
        X: inputs ``(n, ...)``, the same on every rank.
        batch_size, group: as for :func:`full_gradient`.

    Returns:
        ``{"gate_entropy", "gate_agreement", "gate_open"}``, float64 arrays ``(G,)``.

    >>> from umwelt.nn import build_mlp
    >>> model = build_mlp((2, 3, 4, 1), temperature=0.0, seed=0)
    >>> s = gate_statistics(model, torch.randn(5, 2))
    >>> s["gate_entropy"].tolist(), s["gate_agreement"].tolist()
    ([0.0, 0.0], [1.0, 1.0])
    """
    batch_size = check_int("batch size", batch_size)
    if X.ndim < 2 or X.shape[0] == 0:
        raise ShapeError(f"X must be a non-empty (n, ...) tensor, got shape {tuple(X.shape)}")
    gates = list(model.gates)
    G = len(gates)
    sums = torch.zeros(4, G, dtype=torch.float64, device=X.device)  # H, agree, open, units
    saved = [(g.mode, g.record) for g in gates]
    model.eval()
    try:
        for sl in local_batches(X.shape[0], batch_size, group):
            xb = X[sl]
            for g in gates:
                g.mode, g.record = "relu", True
            model(xb)
            relu = [g.last_gates for g in gates]
            for g in gates:
                g.mode = "sample"
            model(xb)
            for l, (g, h0) in enumerate(zip(gates, relu, strict=True)):
                sums[0, l] += gate_entropy_bits(g.last_logits, g.temperature).sum()
                sums[1, l] += (g.last_gates == h0).sum()
                sums[2, l] += g.last_gates.sum()
                sums[3, l] += g.last_gates.numel()
    finally:
        for g, (mode, record) in zip(gates, saved, strict=True):
            g.mode, g.record = mode, record
            g.last_gates = g.last_logits = None
    all_reduce_sum([sums], group)
    s = sums.cpu().numpy()
    units = np.where(s[3] > 0, s[3], np.nan)
    return {
        "gate_entropy": s[0] / units,
        "gate_agreement": s[1] / units,
        "gate_open": s[2] / units,
    }
