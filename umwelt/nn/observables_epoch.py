r"""One observed epoch: every per-layer array recorded at an epoch, by :func:`observe`.

Weight histograms on the fixed bins :data:`WEIGHT_EDGES` (in units of each layer's initial RMS
weight), gradient histograms on :data:`GRAD_EDGES` (in units of this epoch's RMS gradient entry),
the symmetry statistics and correlation spectra of :mod:`umwelt.nn.observables_entries`, and the
gate statistics and scalars given, as arrays for one ``.npz`` (written by the drivers).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from umwelt.errors import ShapeError
from umwelt.nn.observables_entries import (
    _STATS,
    correlation_spectra,
    fixed_histogram,
    symmetry_statistics,
)
from umwelt.nn.observables_model import weight_layers

__all__ = ["GRAD_EDGES", "WEIGHT_EDGES", "observe"]

#: Bin edges of the weight histograms, in units of each layer's initial RMS weight.
WEIGHT_EDGES = np.linspace(-8.0, 8.0, 161)
#: Bin edges of the gradient histograms, in units of each layer's RMS gradient entry.
GRAD_EDGES = np.linspace(-8.0, 8.0, 161)


def observe(
    epoch: int,
    model: nn.Module,
    layer_grads: list[torch.Tensor],
    weight_units: np.ndarray,
    gates: dict[str, np.ndarray],
    scalars: dict[str, float],
) -> dict[str, np.ndarray]:
    r"""Everything recorded at one observed epoch, as arrays (e.g. for one ``.npz``).

    Args:
        epoch: the epoch.
        model: the network (its weight layers in :func:`weight_layers` order).
        layer_grads: :math:`\partial R/\partial W_l` per weight layer, same order.
        weight_units: ``(L,)`` initial RMS weight per layer (the weight histograms' unit).
        gates: :func:`gate_statistics` of this epoch.
        scalars: e.g. ``loss``, ``order_parameter``, stored as 0-d arrays.

    Returns:
        ``{name: array}``: ``epoch``, ``layer_names`` ``(L,)``, ``layer_shapes`` ``(L, 4)``
        (padded with 1), ``weight_edges``, ``grad_edges``, ``weight_unit`` and ``grad_unit``
        ``(L,)``, ``weight_hist`` / ``grad_hist`` ``(L, 160)`` with ``*_under`` / ``*_over``
        ``(L,)``, ``weight_<stat>`` / ``grad_<stat>`` ``(L,)`` for each
        :func:`symmetry_statistics` key, ``corr_participation`` ``(L,)``, per layer
        ``corr_eigs_XX`` / ``gram_eigs_XX`` ``(n_out,)`` (``XX`` = layer index), the ``gates``
        arrays and the ``scalars``.
    """
    layers = weight_layers(model)
    L = len(layers)
    if len(layer_grads) != L or np.shape(weight_units) != (L,):
        raise ShapeError(
            f"need one gradient and one unit per weight layer ({L}), got {len(layer_grads)} "
            f"gradients and units of shape {np.shape(weight_units)}"
        )
    obs: dict[str, np.ndarray] = {
        "epoch": np.array(epoch),
        "layer_names": np.array([n for n, _ in layers], dtype=np.str_),
        "layer_shapes": np.array(
            [list(m.weight.shape) + [1] * (4 - m.weight.ndim) for _, m in layers], dtype=np.int64
        ),
        "weight_edges": WEIGHT_EDGES,
        "grad_edges": GRAD_EDGES,
        "weight_unit": np.asarray(weight_units, dtype=np.float64),
    }
    nb = len(WEIGHT_EDGES) - 1
    arrays = {key: np.zeros((L, nb), dtype=np.int64) for key in ("weight_hist", "grad_hist")} | {
        key: np.zeros(L, dtype=np.int64)
        for key in ("weight_under", "weight_over", "grad_under", "grad_over")
    }
    arrays["grad_unit"] = np.zeros(L)
    arrays["corr_participation"] = np.zeros(L)
    for kind in ("weight", "grad"):
        for s in _STATS:
            arrays[f"{kind}_{s}"] = np.zeros(L)
    for l, ((_, m), g) in enumerate(zip(layers, layer_grads, strict=True)):
        w = m.weight.detach().to("cpu", torch.float64).numpy()
        gv = g.detach().to("cpu", torch.float64).numpy().ravel()
        unit = float(weight_units[l])
        arrays["weight_hist"][l], arrays["weight_under"][l], arrays["weight_over"][l] = (
            fixed_histogram(w.ravel() / unit, WEIGHT_EDGES)
        )
        rms = float(np.sqrt(np.mean(gv**2)))
        arrays["grad_unit"][l] = rms
        scaled = gv / rms if rms > 0 else gv
        arrays["grad_hist"][l], arrays["grad_under"][l], arrays["grad_over"][l] = fixed_histogram(
            scaled, GRAD_EDGES
        )
        for kind, v in (("weight", w.ravel()), ("grad", gv)):
            for s, val in symmetry_statistics(v).items():
                arrays[f"{kind}_{s}"][l] = val
        spec = correlation_spectra(w)
        obs[f"corr_eigs_{l:02d}"] = spec["corr"]
        obs[f"gram_eigs_{l:02d}"] = spec["gram"]
        arrays["corr_participation"][l] = spec["participation"]
    obs.update(arrays)
    obs.update({k: np.asarray(v, dtype=np.float64) for k, v in gates.items()})
    obs.update({k: np.array(float(v)) for k, v in scalars.items()})
    return obs
