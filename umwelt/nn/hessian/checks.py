r"""Checks that know the loss: with the hinge loss the Hessian's diagonal and trace vanish.

Every basis circuit uses exactly one weight per layer (THEORY.md §3), so with the gates fixed
the output :math:`f` is linear in each layer's weights separately and the within-layer blocks of
:math:`\nabla^2 f` are zero. The hinge loss has :math:`\ell'' = 0` almost everywhere, so

.. math::
    H = \mathbb E\big[\ell'(y f)\, y\, \nabla^2 f\big], \qquad \mathrm{diag}(H) = 0, \qquad
    \mathrm{tr}\, H = 0,

and for a two-layer net :math:`H = \begin{pmatrix} 0 & B \\ B^\top & 0 \end{pmatrix}` has the
exactly symmetric spectrum :math:`\pm\sigma_k(B)` (plus zeros). This holds for convolutions and
max-pooling too (weight sharing keeps every path at one weight per layer; the pooling choice is
fixed almost everywhere). A non-zero diagonal means biases, batch norm, a smooth loss or
``"mean"`` gates; :func:`hinge_checks` reports the numbers and warns
(:class:`HingeCheckWarning`) when they are not :math:`\approx 0` relative to the spectral scale.

Only the examples whose hinge is active, :math:`1 - y_i f(x_i) > 0`, contribute to the
hinge-loss gradient and Hessian; :func:`active_hinge_fraction` says how many there are.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from umwelt.errors import ConfigError
from umwelt.nn.hessian.base import HessianOperator
from umwelt.nn.hessian.model import ModelHessian
from umwelt.nn.hessian.traces import hutchinson_trace
from umwelt.nn.hessian.vectors import random_vectors

__all__ = [
    "DIAGONAL_EXACT_LIMIT",
    "HingeCheckWarning",
    "active_hinge_fraction",
    "diagonal_entries",
    "hessian_diagonal",
    "hinge_checks",
    "spectrum_symmetry_defect",
]

DIAGONAL_EXACT_LIMIT = 20_000  # the exact diagonal takes N products


class HingeCheckWarning(UserWarning):
    """The Hessian of a hinge-loss model has a diagonal or trace that is not ≈ 0."""


def diagonal_entries(
    op: HessianOperator, coords: np.ndarray, *, chunk: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    r"""Exact diagonal entries :math:`H_{jj} = e_j^\top H e_j` at ``coords``, and
    :math:`\|He_j\|^2`.

    One product per coordinate, in batches of ``chunk``.

    Returns:
        ``(diag, col_norm2)``, ``(s,)`` float64 each.
    """
    coords = np.asarray(coords, dtype=np.int64).reshape(-1)
    if coords.size and (coords.min() < 0 or coords.max() >= op.n):
        raise ConfigError(
            f"coordinates must lie in [0, {op.n}), got {coords.min()}..{coords.max()}"
        )
    diag = np.zeros(coords.size)
    norm2 = np.zeros(coords.size)
    for s in range(0, coords.size, chunk):
        c = torch.as_tensor(coords[s : s + chunk], device=op.device)
        slot = torch.arange(c.numel(), device=op.device)
        E = torch.zeros((op.n, c.numel()), dtype=op.dtype, device=op.device)
        E[c, slot] = 1.0
        cols = op.matmat(E)  # (N, c)
        diag[s : s + c.numel()] = cols[c, slot].double().cpu()
        norm2[s : s + c.numel()] = (cols.double() ** 2).sum(dim=0).cpu()
    return diag, norm2


def hessian_diagonal(
    op: HessianOperator,
    *,
    method: str = "exact",
    n_v: int = 64,
    seed: int = 0,
    max_params: int = DIAGONAL_EXACT_LIMIT,
    chunk: int = 32,
) -> tuple[np.ndarray, np.ndarray | None]:
    r"""The Hessian's diagonal: exact (``N`` products) or Hutchinson's estimate.

    Hutchinson (Bekas, Kokiopoulou & Saad 2007): :math:`\mathrm{diag}(H) \approx
    \overline{v \odot Hv}` over ``n_v`` Rademacher vectors, with per-entry standard errors
    (for Rademacher :math:`v`, the error of entry :math:`j` comes from the off-diagonal of row
    :math:`j` only).

    Returns:
        ``(diag, se)``: ``(N,)`` float64; ``se`` is ``None`` for the exact method.

    Raises:
        ConfigError: for an unknown method, or ``method="exact"`` with ``N > max_params``.
    """
    if method == "exact":
        if op.n > max_params:
            raise ConfigError(
                f"the exact diagonal needs N = {op.n:,} products, above the limit {max_params:,} "
                "(pass max_params= or method='hutchinson')"
            )
        diag, _ = diagonal_entries(op, np.arange(op.n), chunk=chunk)
        return diag, None
    if method == "hutchinson":
        if isinstance(n_v, bool) or not isinstance(n_v, int) or n_v < 2:
            raise ConfigError(f"the number of probe vectors must be an integer ≥ 2, got {n_v!r}")
        V = random_vectors(op.n, n_v, seed=seed, dtype=op.dtype, device=op.device).T  # (N, n_v)
        prod = torch.cat(
            [V[:, s : s + chunk] * op.matmat(V[:, s : s + chunk]) for s in range(0, n_v, chunk)],
            dim=1,
        ).double()  # (N, n_v)
        return prod.mean(dim=1).cpu().numpy(), (prod.std(dim=1) / math.sqrt(n_v)).cpu().numpy()
    raise ConfigError(f"diagonal method must be 'exact' or 'hutchinson', got {method!r}")


def hinge_checks(
    op: HessianOperator,
    *,
    n_coords: int | None = None,
    n_v: int = 32,
    seed: int = 0,
    rtol: float | None = None,
    z: float = 4.0,
    warn: bool = True,
) -> dict[str, float | int | bool | str]:
    r"""Check that the diagonal and the trace of :math:`H` vanish, as they must for hinge loss.

    * **Diagonal**: exact entries :math:`H_{jj}` at ``n_coords`` coordinates drawn uniformly
      without replacement (all ``N`` when ``n_coords`` is ``None`` and
      ``N ≤`` :data:`DIAGONAL_EXACT_LIMIT`, else 64). With hinge loss they are zero up to
      round-off (in fact exactly 0 by autodiff). Passes when
      :math:`\max_j |H_{jj}| \le \mathrm{rtol} \cdot s`.
    * **Trace**: the sum of the diagonal when all of it was computed; else Hutchinson's estimate
      from ``n_v`` Rademacher vectors with its standard error :math:`\mathrm{se}`, passing when
      :math:`|\hat t| \le z\,\mathrm{se} + \mathrm{rtol}\, N s` (a two-sided z-test,
      false-alarm rate :math:`6\cdot10^{-5}` at :math:`z = 4`).

    The spectral scale :math:`s` is the root-mean-square eigenvalue
    :math:`\sqrt{\mathrm{tr} H^2 / N} = \sqrt{\|H\|_F^2 / N}`, estimated by the mean of
    :math:`\|He_j\|^2` over the same coordinates. ``rtol`` defaults to :math:`10^3\varepsilon`
    of the operator's dtype. A zero Hessian (converged hinge net) passes.

    Args:
        op: the operator (any loss: with another loss the check is expected to fail).
        n_coords: number of diagonal coordinates checked exactly.
        n_v: Hutchinson vectors for the trace (when not all coordinates are checked).
        seed: seed of the coordinates and vectors.
        rtol: relative tolerance (see above).
        z: z-score threshold of the trace test.
        warn: issue a :class:`HingeCheckWarning` when a check fails.

    Returns:
        ``{"diag_max_abs", "diag_rel", "n_coords", "trace", "trace_se", "trace_rel",
        "trace_method", "scale", "diag_ok", "trace_ok", "ok"}``.
    """
    N = op.n
    eps = torch.finfo(op.dtype).eps
    rtol = 1e3 * eps if rtol is None else float(rtol)
    if n_coords is None:
        n_coords = N if N <= DIAGONAL_EXACT_LIMIT else 64
    if isinstance(n_coords, bool) or not isinstance(n_coords, int) or n_coords < 1:
        raise ConfigError(f"n_coords must be a positive integer, got {n_coords!r}")
    n_coords = min(n_coords, N)
    rng = np.random.default_rng(seed)
    coords = np.arange(N) if n_coords == N else np.sort(rng.choice(N, n_coords, replace=False))
    diag, norm2 = diagonal_entries(op, coords)
    scale = math.sqrt(float(norm2.mean()))
    diag_max = float(np.abs(diag).max())
    if n_coords == N:
        trace, trace_se, method = float(diag.sum()), 0.0, "exact"
    else:
        trace, trace_se = hutchinson_trace(op, n_v, seed=seed)
        method = "hutchinson"
    diag_ok = diag_max <= rtol * scale
    trace_ok = abs(trace) <= z * trace_se + rtol * N * scale
    out: dict[str, float | int | bool | str] = {
        "diag_max_abs": diag_max,
        "diag_rel": diag_max / scale if scale > 0 else 0.0,
        "n_coords": n_coords,
        "trace": trace,
        "trace_se": trace_se,
        "trace_rel": abs(trace) / (N * scale) if scale > 0 else 0.0,
        "trace_method": method,
        "scale": scale,
        "diag_ok": bool(diag_ok),
        "trace_ok": bool(trace_ok),
        "ok": bool(diag_ok and trace_ok),
    }
    if warn and not out["ok"]:
        where = f" ({op.context})" if op.context else ""
        loss = getattr(op, "loss_name", None)
        warnings.warn(
            f"the Hessian{where} should have a zero diagonal and trace with hinge loss "
            f"(THEORY.md §3), but max|H_jj| = {diag_max:.3g} over {n_coords} coordinates "
            f"({out['diag_rel']:.2g} of the rms eigenvalue {scale:.3g}) and trace = "
            f"{trace:.4g} ± {trace_se:.2g} ({method}): the model has biases, batch norm or a "
            f"smooth loss{f' (loss: {loss})' if loss else ''}",
            HingeCheckWarning,
            stacklevel=2,
        )
    return out


def spectrum_symmetry_defect(eigenvalues: np.ndarray | torch.Tensor) -> float:
    r"""The asymmetry :math:`\max_i |\lambda_{(i)} + \lambda_{(N+1-i)}| / \max_i |\lambda_i|`.

    :math:`\lambda_{(i)}` are the eigenvalues in ascending order.

    0 exactly for a spectrum symmetric about 0 (:math:`\lambda` and :math:`-\lambda` with equal
    multiplicity), as for any two-layer hinge net; 0 for an all-zero spectrum.

    >>> spectrum_symmetry_defect(np.array([-2.0, 0.0, 2.0]))
    0.0
    """
    lam = np.sort(np.asarray(torch.as_tensor(eigenvalues).double().cpu()))
    top = float(np.abs(lam).max()) if lam.size else 0.0
    if top == 0.0:
        return 0.0
    return float(np.abs(lam + lam[::-1]).max() / top)


@torch.no_grad()
def active_hinge_fraction(op: ModelHessian) -> float:
    r"""Fraction of the operator's examples with an active hinge, :math:`1 - y_i f(x_i) > 0`.

    Only these examples contribute to the hinge-loss gradient and Hessian. With the examples
    sharded over processes (:class:`~umwelt.nn.hessian.distributed.DistributedModelHessian`),
    the fraction of all of them (a collective).
    """
    if not isinstance(op, ModelHessian):
        raise ConfigError(
            f"the active-hinge fraction needs a ModelHessian, got {type(op).__name__}"
        )
    with torch.no_grad():
        f = op.outputs()  # (n_shard,)
        y = torch.cat([b.y for b in op.batches()])
        active = float(((1 - y * f) > 0).double().sum())
    return float(op.reduce_numpy(np.array([active]))[0]) / op.n_total
