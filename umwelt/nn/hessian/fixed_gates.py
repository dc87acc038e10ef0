r"""Gates held fixed, as in the M-step: the seeded per-example gate sample and its use.

The Hessian is that of the network whose gates are constants, :math:`x_l = h_l \odot z_l`
(THEORY.md §2):

* gates at :math:`T = 0` (and ``"relu"``/``"mean"`` gates) need nothing: the ReLU's second
  derivative vanishes almost everywhere, so :math:`Hv` of the ReLU net *is* :math:`Hv` with the
  ReLU gates :math:`1[z > 0]` fixed (and ``"mean"`` gates are a smooth function, differentiated
  as such);
* gates in ``"sample"`` mode at :math:`T > 0` are drawn **once per example** on construction
  and stored (bool, per :class:`~umwelt.nn.gate.Gate` module, over all examples); every later
  product replaces each such gate's forward by :math:`z \mapsto z \odot h` with the stored
  :math:`h` of the batch. So two products with the same vector are bitwise equal and :math:`H`
  is exactly the Hessian of one fixed function.

The gate sample is drawn by ancestral sampling in a recording pass: example :math:`i` (its
index in the full data set, whatever subset or batching is used) owns a CPU generator seeded
from ``(gate_seed, i)``, which draws :math:`u \sim U[0,1)` for each of its units layer after
layer, and :math:`h = 1[u < \sigma(z/T)]` (:math:`p = 1/2` at :math:`T = \infty`), the law of
:class:`~umwelt.nn.gate.Gate`. Hence the sample of an example does not depend on the batch size
or on which other examples are in the set, and
:attr:`~umwelt.nn.hessian.model.ModelHessian.gate_masks` can be handed to another operator
(``gate_masks=``) to reuse it, e.g. the gates the M-step itself drew.

:class:`FixedGates` holds a model's gates for :class:`~umwelt.nn.hessian.model.ModelHessian`:
which of them are sampling gates, how their sample is drawn (:meth:`FixedGates.draw`) or
checked (:meth:`FixedGates.checked`), and the model run with them fixed
(:meth:`FixedGates.fixed`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from umwelt.errors import ConfigError, ShapeError
from umwelt.nn.gate import Gate, scaled_logits
from umwelt.seeds import index_seed

__all__ = ["FixedGates"]


class FixedGates:
    """A model's :class:`~umwelt.nn.gate.Gate` modules, the sampling ones held to a sample.

    Args:
        model: the operator's model.

    Attributes:
        model: the model.
        all: every gate module, in module order.
        sampling: the gates held fixed to a stored sample (``"sample"`` mode at
            :math:`T > 0`), in the order of the masks.
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.all = [m for m in model.modules() if isinstance(m, Gate)]
        self.sampling = [g for g in self.all if g.mode == "sample" and g.temperature > 0.0]

    @contextmanager
    def fixed(self, masks: Sequence[torch.Tensor]) -> Iterator[None]:
        """Run the model with the sampling gates fixed to ``masks`` (and no gate recording)."""
        with (
            _not_recording(self.all),
            _replaced_forwards(self.sampling, [_masked(m) for m in masks]),
        ):
            yield

    def draw(
        self,
        X: torch.Tensor,
        ids: torch.Tensor,
        slices: Sequence[slice],
        seed: int,
    ) -> list[torch.Tensor]:
        """Draw the fixed gate sample, one seeded CPU generator per example (module docstring).

        Args:
            X: the operator's inputs ``(n, ...)``.
            ids: each input's index in the full data set, ``(n,)`` (the seeds).
            slices: the batches of the recording pass.
            seed: the gate seed.

        Returns:
            One bool ``(n, ...)`` tensor per sampling gate (none, and no pass, without them).
        """
        gates = self.sampling
        if not gates:
            return []
        parts: list[list[torch.Tensor]] = [[] for _ in gates]
        for sl in slices:
            gens = [torch.Generator().manual_seed(index_seed(seed, int(i))) for i in ids[sl]]
            calls = [0] * len(gates)

            def sampler(l: int, gate: Gate, gens=gens, calls=calls):
                def forward(z: torch.Tensor) -> torch.Tensor:
                    if calls[l]:
                        raise ConfigError(
                            f"gate {l} ({gate}) is called more than once per forward pass; a "
                            "fixed gate sample needs one call per gate module"
                        )
                    calls[l] += 1
                    u = torch.stack(
                        [torch.rand(z.shape[1:], generator=g, dtype=torch.float64) for g in gens]
                    ).to(z.device)  # (B, ...) ~ U[0, 1)
                    T = gate.temperature
                    if math.isinf(T):
                        h = u < 0.5
                    else:
                        h = u < torch.sigmoid(scaled_logits(z.detach(), T).double())
                    parts[l].append(h)
                    return z * h.to(z.dtype)

                return forward

            xb = X[sl]
            with (
                torch.no_grad(),
                _replaced_forwards(gates, [sampler(l, g) for l, g in enumerate(gates)]),
                _not_recording(self.all),
            ):
                self.model(xb)
            missing = [l for l, c in enumerate(calls) if c == 0]
            if missing:
                raise ConfigError(
                    f"sampling gates {missing} are never called in the model's forward pass"
                )
        return [torch.cat(p) for p in parts]

    def checked(
        self, masks: Sequence[torch.Tensor], n: int, device: torch.device
    ) -> list[torch.Tensor]:
        """A given gate sample, one bool ``(n, ...)`` tensor per sampling gate, on ``device``.

        Raises:
            ShapeError: for the wrong number of masks or a mask that is not ``(n, ...)``.
        """
        masks = list(masks)
        if len(masks) != len(self.sampling):
            raise ShapeError(
                f"expected {len(self.sampling)} gate masks (one per sampling gate), got "
                f"{len(masks)}"
            )
        out = []
        for l, m in enumerate(masks):
            if not isinstance(m, torch.Tensor) or m.ndim < 1 or m.shape[0] != n:
                shape = tuple(m.shape) if isinstance(m, torch.Tensor) else type(m).__name__
                raise ShapeError(f"gate mask {l} must be a tensor ({n}, ...), got {shape}")
            out.append(m.detach().to(device=device, dtype=torch.bool))
        return out


def _masked(mask: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    def forward(z: torch.Tensor) -> torch.Tensor:
        return z * mask.to(z.dtype)  # x = dg(h) z, h a constant

    return forward


@contextmanager
def _not_recording(gates: Sequence[Gate]) -> Iterator[None]:
    """Turn every gate's ``record`` off, so that no transformed (``torch.func``) tensor leaks
    into ``last_gates``."""
    records = [g.record for g in gates]
    try:
        for g in gates:
            g.record = False
        yield
    finally:
        for g, r in zip(gates, records, strict=True):
            g.record = r


@contextmanager
def _replaced_forwards(
    gates: Sequence[Gate], forwards: Sequence[Callable[[torch.Tensor], torch.Tensor]]
) -> Iterator[None]:
    """Temporarily make each gate's forward ``forwards[i]`` (an instance attribute)."""
    saved = [g.__dict__.get("forward") for g in gates]
    try:
        for g, fwd in zip(gates, forwards, strict=True):
            g.forward = fwd
        yield
    finally:
        for g, old in zip(gates, saved, strict=True):
            if old is None:
                g.__dict__.pop("forward", None)
            else:
                g.forward = old
