r"""Random probe vectors of the stochastic estimators: Rademacher (±1) or Gaussian.

Both laws have :math:`\mathbb E[v v^\top] = I`, so :math:`v^\top H v` estimates
:math:`\mathrm{tr}\, H` without bias (Hutchinson 1989; :mod:`~umwelt.nn.hessian.traces`), and
:math:`v/\|v\|` are the start vectors of stochastic Lanczos quadrature
(:mod:`~umwelt.nn.hessian.quadrature`). A normalized Gaussian vector is uniform on the unit
sphere, where the variance of :math:`q^\top g(H) q` has a closed form in the eigenvalue density
alone (the SLQ error bars); for a Rademacher one that form is only an upper bound. They are
drawn on the CPU from a seeded :class:`torch.Generator` and then moved, so a seed gives the same
vectors on every device (and on every rank of a
:class:`~umwelt.nn.hessian.distributed.DistributedModelHessian`).

>>> random_vectors(4, 2, seed=0).abs().unique().tolist()
[1.0]
"""

from __future__ import annotations

import torch

from umwelt.errors import ConfigError

__all__ = ["DISTRIBUTIONS", "random_vectors"]

DISTRIBUTIONS: tuple[str, ...] = ("rademacher", "gaussian")


def _check_dist(dist: str) -> str:
    if dist not in DISTRIBUTIONS:
        raise ConfigError(f"start vectors must be one of {', '.join(DISTRIBUTIONS)}, got {dist!r}")
    return dist


def random_vectors(
    n: int,
    count: int,
    *,
    seed: int,
    dist: str = "rademacher",
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """``count`` random vectors of length ``n``, ``(count, n)``: Rademacher (±1) or Gaussian.

    Drawn on the CPU from a :class:`torch.Generator` seeded with ``seed`` and then moved, so a
    seed gives the same vectors on every device.
    """
    _check_dist(dist)
    gen = torch.Generator().manual_seed(int(seed))
    if dist == "rademacher":
        v = torch.randint(0, 2, (count, n), generator=gen, dtype=torch.int8).to(dtype) * 2 - 1
    else:
        v = torch.randn(count, n, generator=gen, dtype=torch.float64).to(dtype)
    return v.to(device)  # (count, n)
