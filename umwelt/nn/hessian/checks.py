r"""Checks that know the loss: the circuit part of the Hessian has zero diagonal and trace.

Every basis circuit uses exactly one weight per layer (THEORY.md §3), so with the gates fixed
the output :math:`f` is linear in each layer's weights separately and the within-layer blocks of
:math:`\nabla^2 f` are zero. The Hessian of the risk splits into a circuit part and a
Gauss–Newton part,

.. math::
    H = \underbrace{\textstyle\sum_i w_i\, \ell'_i\, \nabla^2 f_i}_{C:\ \mathrm{diag}\, C = 0,
    \ \mathrm{tr}\, C = 0}
    + \underbrace{\textstyle\sum_i w_i\, \ell''_i\, \nabla f_i \nabla f_i^\top}_{G \succeq 0
    \text{ when } \ell'' \ge 0},

so :math:`\mathrm{diag}(H) = \mathrm{diag}(G)` and :math:`\mathrm{tr}\, H = \mathrm{tr}\, G`
for any loss of :math:`f` alone.

* **Hinge loss**: :math:`\ell'' = 0` almost everywhere, so :math:`G = 0`,

  .. math::
      H = \mathbb E\big[\ell'(y f)\, y\, \nabla^2 f\big], \qquad \mathrm{diag}(H) = 0, \qquad
      \mathrm{tr}\, H = 0,

  and for a two-layer net :math:`H = \begin{pmatrix} 0 & B \\ B^\top & 0 \end{pmatrix}` has the
  exactly symmetric spectrum :math:`\pm\sigma_k(B)` (plus zeros). This holds for convolutions
  and max-pooling too (weight sharing keeps every path at one weight per layer; the pooling
  choice is fixed almost everywhere). A non-zero diagonal means biases, batch norm, a smooth
  loss or ``"mean"`` gates; :func:`hinge_checks` reports the numbers and warns
  (:class:`HingeCheckWarning`) when they are not :math:`\approx 0` relative to the spectral
  scale.
* **Quadratic hinge** :math:`\ell = \frac12 \max(0, 1 - y f)^2` (THEORY.md §5, the jamming
  studies): :math:`\ell'' = 1` on the unsatisfied examples (:math:`y_i f_i < 1`) and 0 on the
  others, so :math:`G = \sum_{i\ \mathrm{unsat}} w_i \nabla f_i \nabla f_i^\top` is positive
  semi-definite and the diagonal and trace of :math:`H` no longer vanish: they are those of
  :math:`G`. :func:`gauss_newton_part` computes :math:`\mathrm{diag}\, G` and
  :math:`\mathrm{tr}\, G` exactly from the per-example gradients :math:`\nabla f_i` of the
  fixed-gate net, and :func:`hinge_checks` then checks :math:`\mathrm{diag}(H - G) = 0` and
  :math:`\mathrm{tr}(H - G) = 0` instead, reporting both parts.

Only the examples whose hinge is active, :math:`1 - y_i f(x_i) > 0` (the unsatisfied
constraints :math:`N_\Delta` of the jamming picture), contribute to the gradient and Hessian of
either hinge loss; :func:`active_hinge_fraction` says how many there are.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np
import torch
from torch.func import functional_call, grad, vmap

from umwelt._checks import check_int
from umwelt.errors import ConfigError
from umwelt.nn.hessian.base import CountedOperator, HessianOperator
from umwelt.nn.hessian.model import ModelHessian
from umwelt.nn.hessian.traces import hutchinson_trace
from umwelt.nn.hessian.vectors import random_vectors
from umwelt.nn.losses import quadratic_hinge

__all__ = [
    "DIAGONAL_EXACT_LIMIT",
    "GaussNewtonPart",
    "HingeCheckWarning",
    "active_hinge_fraction",
    "active_hinges",
    "diagonal_entries",
    "exact_trace",
    "gauss_newton_part",
    "hessian_diagonal",
    "hinge_checks",
    "spectrum_symmetry_defect",
]

DIAGONAL_EXACT_LIMIT = 20_000  # the exact diagonal takes N products


class HingeCheckWarning(UserWarning):
    """The Hessian of a hinge-loss model has a diagonal or trace that is not ≈ 0 (or, with the
    quadratic hinge, not ≈ those of its Gauss–Newton part)."""


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


class GaussNewtonPart(NamedTuple):
    r"""The Gauss–Newton part :math:`G = \sum_i w_i \ell''_i \nabla f_i \nabla f_i^\top` of a
    :class:`~umwelt.nn.hessian.model.ModelHessian`, as :func:`gauss_newton_part` computes it.

    Attributes:
        diag: :math:`G_{jj} = \sum_i w_i \ell''_i (\partial f_i / \partial\theta_j)^2`,
            ``(N,)`` float64.
        trace: :math:`\mathrm{tr}\, G = \sum_i w_i \ell''_i \|\nabla f_i\|^2`.
        quadratic: :math:`v_k^\top G v_k = \sum_i w_i \ell''_i (\nabla f_i \cdot v_k)^2` for the
            columns of the ``V`` passed, ``(k,)`` float64; ``None`` without ``V``.
        n_active: the examples with :math:`w_i \ell''_i \ne 0` (for the quadratic hinge: the
            unsatisfied ones of non-zero weight).
    """

    diag: np.ndarray
    trace: float
    quadratic: np.ndarray | None
    n_active: int


def _model_operator(op: HessianOperator) -> ModelHessian | None:
    """The :class:`ModelHessian` ``op`` is, or counts the products of; else ``None``."""
    while isinstance(op, CountedOperator):
        op = op.op
    return op if isinstance(op, ModelHessian) else None


def _second_derivatives(op: ModelHessian) -> torch.Tensor:
    r""":math:`w_i \ell''(f_i)` per example, ``(n_examples,)``, by autograd of the loss."""
    f = op.outputs().detach().requires_grad_()  # (n,)
    y = torch.cat([b.y for b in op.batches()])
    with torch.enable_grad():
        (g,) = torch.autograd.grad(op.loss_fn(f, y).sum(), f, create_graph=True)
        d = None
        if g.requires_grad:
            (d,) = torch.autograd.grad(g.sum(), f, allow_unused=True)
    if d is None:
        return torch.zeros_like(op.example_weights)
    return op.example_weights * d.detach()


def gauss_newton_part(
    op: ModelHessian, V: torch.Tensor | None = None, *, example_chunk: int | None = None
) -> GaussNewtonPart:
    r"""The diagonal and trace of the Gauss–Newton part of ``op``'s Hessian, exactly.

    .. math::
        G = \sum_i w_i\, \ell''_i\, \nabla f_i \nabla f_i^\top = J^\top \mathrm{dg}(w \ell'') J,
        \qquad J_{ij} = \partial f(x_i) / \partial \theta_j \ \text{(gates fixed)},

    from the per-example gradients of the outputs (``torch.func.vmap`` of ``grad``, ``chunk ×
    N`` memory), only for the examples with :math:`w_i \ell''_i \ne 0`; :math:`\ell''_i` by
    autograd of the operator's loss. :math:`H - G` is the circuit part, with zero diagonal and
    trace (module docstring). With the examples sharded over processes, summed over all of
    them (collectives).

    Args:
        op: the model operator.
        V: optional ``(N, k)`` vectors whose quadratic forms :math:`v_k^\top G v_k` to return.
        example_chunk: examples per vectorized gradient call (default: 32, fewer where
            ``chunk × N`` would pass :math:`2^{25}`).

    Returns:
        a :class:`GaussNewtonPart`.

    >>> from umwelt.nn import build_mlp
    >>> m = build_mlp((2, 1), temperature=0.0, seed=0, dtype=torch.float64)  # f = w·x
    >>> X, y = torch.tensor([[1.0, 2.0], [3.0, 0.0]]), torch.tensor([1.0, -1.0])
    >>> with torch.no_grad():
    ...     _ = m.linears[0].weight.zero_()  # f = 0: both examples unsatisfied
    >>> gn = gauss_newton_part(ModelHessian(m, X, y, loss="quadratic-hinge"))
    >>> gn.diag.tolist(), gn.trace, gn.n_active  # mean of x_j², mean of ‖x‖²
    ([5.0, 2.0], 7.0, 2)
    """
    if not isinstance(op, ModelHessian):
        raise ConfigError(f"the Gauss–Newton part needs a ModelHessian, got {type(op).__name__}")
    if example_chunk is None:
        example_chunk = max(1, min(32, 2**25 // op.n))
    if isinstance(example_chunk, bool) or not isinstance(example_chunk, int) or example_chunk < 1:
        raise ConfigError(f"example_chunk must be a positive integer, got {example_chunk!r}")
    k = 0 if V is None else V.shape[1]
    if V is not None and (V.ndim != 2 or V.shape[0] != op.n):
        raise ConfigError(f"V must be ({op.n}, k), got {tuple(V.shape)}")
    wd = _second_derivatives(op)  # (n,)
    rows = (wd != 0).nonzero()[:, 0]
    diag = torch.zeros(op.n, dtype=torch.float64, device=op.device)
    quad = torch.zeros(k, dtype=torch.float64, device=op.device)
    trace = torch.zeros(1, dtype=torch.float64, device=op.device)
    model = op.model

    def output(p: dict[str, torch.Tensor], x: torch.Tensor, masks: tuple[torch.Tensor, ...]):
        with op.fixed_gates(tuple(m[None] for m in masks)):
            f = functional_call(model, p, (x[None],))
        return f.reshape(())  # one example's f

    per_example = vmap(grad(output), in_dims=(None, 0, 0))
    params = op.params
    batch = next(op.batches(op.n_examples))  # every example of this process, gates fixed
    for s in range(0, rows.numel(), example_chunk):
        r = rows[s : s + example_chunk]
        x, masks = batch.x[r], tuple(m[r] for m in batch.masks)
        Jb = op.flatten(per_example(params, x, masks)).double()  # (b, N)
        c = wd[r].double()  # (b,)
        sq = Jb**2
        diag += c @ sq
        trace += c @ sq.sum(dim=1)
        if V is not None:
            quad += c @ (Jb @ V.double()) ** 2  # (k,)
    diag_np = op.reduce_numpy(diag.cpu().numpy())
    quad_np = op.reduce_numpy(quad.cpu().numpy())
    trace_f = float(op.reduce_numpy(trace.cpu().numpy())[0])
    n_active = int(op.reduce_numpy(np.array([float(rows.numel())]))[0])
    return GaussNewtonPart(diag_np, trace_f, None if V is None else quad_np, n_active)


def exact_trace(op: HessianOperator) -> float | None:
    r""":math:`\mathrm{tr}\, H` exactly where the structure gives it, else ``None``.

    With the gates fixed a gated net's output is multilinear in its layers' weights, so the
    diagonal of :math:`\nabla^2 f` vanishes and :math:`\mathrm{tr}\, H = \mathrm{tr}\, G =
    \sum_i w_i \ell''_i \|\nabla_\theta f_i\|^2` (:func:`gauss_newton_part`: one pass of
    per-example gradients, no Hessian product): 0 for the hinge loss (:math:`\ell'' = 0`). Known
    only for operators whose products are the fixed-gate ones of :mod:`~umwelt.nn.hessian.gated`
    (``ad="gated"``: bias-free :class:`~umwelt.nn.mlp.GatedMLP` and
    :class:`~umwelt.nn.vgg.GatedVGG`); a batch norm or smooth gates have a diagonal, and there
    Hutchinson's estimate stays the number (``None`` here).
    """
    mop = _model_operator(op)
    if mop is None or mop.ad != "gated":
        return None
    return gauss_newton_part(mop).trace  # the hinge's: no example with ℓ'' ≠ 0, exactly 0


def _wants_gauss_newton(op: HessianOperator, gauss_newton: bool | None) -> ModelHessian | None:
    mop = _model_operator(op)
    if gauss_newton is None:
        named = mop is not None and (
            mop.loss_name == "quadratic-hinge" or mop.loss_fn is quadratic_hinge
        )
        return mop if named else None
    if not gauss_newton:
        return None
    if mop is None:
        raise ConfigError(
            "the Gauss–Newton comparison needs a ModelHessian (or a CountedOperator of one), got "
            f"{type(op).__name__}"
        )
    return mop


def _quadratic_forms(op: HessianOperator, V: torch.Tensor, chunk: int = 8) -> torch.Tensor:
    """:math:`v_k^\\top H v_k` for the columns of ``V`` (as :func:`hutchinson_trace` takes them)."""
    return torch.cat(
        [
            (V[:, s : s + chunk] * op.matmat(V[:, s : s + chunk])).sum(dim=0)
            for s in range(0, V.shape[1], chunk)
        ]
    ).double()  # (k,)


def hinge_checks(
    op: HessianOperator,
    *,
    n_coords: int | None = None,
    n_v: int = 32,
    seed: int = 0,
    rtol: float | None = None,
    z: float = 4.0,
    warn: bool = True,
    gauss_newton: bool | None = None,
    trace_estimate: tuple[float, float] | None = None,
) -> dict[str, float | int | bool | str]:
    r"""Check that the diagonal and the trace of the circuit part :math:`H - G` vanish.

    For hinge loss :math:`G = 0`, so the diagonal and trace of :math:`H` itself must vanish; for
    the quadratic hinge (or with ``gauss_newton=True``) :math:`G` is the Gauss–Newton part
    (:func:`gauss_newton_part`) and :math:`H` must have its diagonal and trace.

    * **Diagonal**: exact entries :math:`H_{jj}` at ``n_coords`` coordinates drawn uniformly
      without replacement (all ``N`` when ``n_coords`` is ``None`` and
      ``N ≤`` :data:`DIAGONAL_EXACT_LIMIT`, else 64). With hinge loss they are zero up to
      round-off (in fact exactly 0 by autodiff). Passes when
      :math:`\max_j |H_{jj} - G_{jj}| \le \mathrm{rtol} \cdot (s + \max_j G_{jj})`.
    * **Trace**: the sum of the diagonal when all of it was computed; else Hutchinson's estimate
      from ``n_v`` Rademacher vectors with its standard error :math:`\mathrm{se}`, passing when
      :math:`|\hat t - \mathrm{tr}\, G| \le z\,\mathrm{se} + \mathrm{rtol} (N s + \mathrm{tr}\,
      G)` (a two-sided z-test, false-alarm rate :math:`6\cdot10^{-5}` at :math:`z = 4`; with
      :math:`G`, the estimate and its error are those of :math:`v^\top (H - G) v`, the
      circuit part's, as :math:`v^\top G v` is computed exactly).

    The spectral scale :math:`s` is the root-mean-square eigenvalue
    :math:`\sqrt{\mathrm{tr} H^2 / N} = \sqrt{\|H\|_F^2 / N}`, estimated by the mean of
    :math:`\|He_j\|^2` over the same coordinates. ``rtol`` defaults to :math:`10^3\varepsilon`
    of the operator's dtype. A zero Hessian (converged hinge net) passes.

    Args:
        op: the operator (any loss: with a smooth loss and no Gauss–Newton comparison the check
            is expected to fail).
        n_coords: number of diagonal coordinates checked exactly.
        n_v: Hutchinson vectors for the trace (when not all coordinates are checked).
        seed: seed of the coordinates and vectors.
        rtol: relative tolerance (see above).
        z: z-score threshold of the trace test.
        warn: issue a :class:`HingeCheckWarning` when a check fails.
        gauss_newton: compare with the Gauss–Newton part (``True``; needs a
            :class:`~umwelt.nn.hessian.model.ModelHessian` or a
            :class:`~umwelt.nn.hessian.base.CountedOperator` of one), or with 0 (``False``);
            default: the Gauss–Newton part for the quadratic hinge, 0 otherwise.
        trace_estimate: ``(estimate, standard error)`` of :math:`\mathrm{tr}\, H` made from
            other products (an SLQ's Hutchinson estimate from its start vectors), taken for
            the trace test instead of ``n_v`` new products (``trace_method`` ``"given"``);
            without the Gauss–Newton comparison only (the circuit part needs its own forms),
            and only when not all coordinates are checked.

    Returns:
        ``{"diag_max_abs", "diag_rel", "n_coords", "trace", "trace_se", "trace_rel",
        "trace_method", "scale", "diag_ok", "trace_ok", "ok"}``: :math:`\max_j |H_{jj}|`,
        that over :math:`s`, the estimate of :math:`\mathrm{tr}\, H` and its error, ..., and
        whether the checks passed. With the Gauss–Newton part, also ``"gn_diag_max_abs"``
        (:math:`\max_j G_{jj}` over the coordinates), ``"gn_trace"`` (:math:`\mathrm{tr}\,G`,
        exact), ``"gn_active"`` (examples with :math:`\ell'' \ne 0`), and the circuit part's
        ``"circuit_diag_max_abs"`` (:math:`\max_j |H_{jj} - G_{jj}|`), ``"circuit_diag_rel"``
        (that over :math:`s`), ``"circuit_trace"``, ``"circuit_trace_se"`` (the estimate of
        :math:`\mathrm{tr}(H - G)` and its error) and ``"circuit_trace_rel"``; then
        ``diag_ok``/``trace_ok``/``ok`` say whether those vanish.
    """
    N = op.n
    eps = torch.finfo(op.dtype).eps
    rtol = 1e3 * eps if rtol is None else float(rtol)
    if n_coords is None:
        n_coords = N if N <= DIAGONAL_EXACT_LIMIT else 64
    if isinstance(n_coords, bool) or not isinstance(n_coords, int) or n_coords < 1:
        raise ConfigError(f"n_coords must be a positive integer, got {n_coords!r}")
    mop = _wants_gauss_newton(op, gauss_newton)
    n_coords = min(n_coords, N)
    rng = np.random.default_rng(seed)
    coords = np.arange(N) if n_coords == N else np.sort(rng.choice(N, n_coords, replace=False))
    diag, norm2 = diagonal_entries(op, coords)
    scale = math.sqrt(float(norm2.mean()))
    diag_max = float(np.abs(diag).max())
    if mop is not None:
        return _gauss_newton_checks(
            op, mop, coords, diag, scale, n_v=n_v, seed=seed, rtol=rtol, z=z, warn=warn
        )
    if n_coords == N:
        trace, trace_se, method = float(diag.sum()), 0.0, "exact"
    elif trace_estimate is not None:
        trace, trace_se = (float(t) for t in trace_estimate)
        if not (math.isfinite(trace) and math.isfinite(trace_se) and trace_se >= 0):
            raise ConfigError(f"trace_estimate must be finite with an SE ≥ 0, got {trace_estimate}")
        method = "given"
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


def _gauss_newton_checks(
    op: HessianOperator,
    mop: ModelHessian,
    coords: np.ndarray,
    diag: np.ndarray,
    scale: float,
    *,
    n_v: int,
    seed: int,
    rtol: float,
    z: float,
    warn: bool,
) -> dict[str, float | int | bool | str]:
    """:func:`hinge_checks` against the Gauss–Newton part :math:`G` (see there)."""
    N, n_coords = op.n, coords.size
    if n_coords == N:
        gn = gauss_newton_part(mop)
        trace, trace_se, method = float(diag.sum()), 0.0, "exact"
        c_trace, c_se = trace - gn.trace, 0.0
    else:
        n_v = check_int("the number of probe vectors n_v", n_v)
        V = random_vectors(N, n_v, seed=seed, dtype=op.dtype, device=op.device).T  # (N, n_v)
        qh = _quadratic_forms(op, V).cpu().numpy()  # (n_v,) vᵀHv
        gn = gauss_newton_part(mop, V)
        qc = qh - gn.quadratic  # vᵀ(H - G)v
        root = math.sqrt(n_v)
        trace = float(qh.mean())
        trace_se = float(qh.std(ddof=1) / root) if n_v > 1 else math.nan
        c_trace = float(qc.mean())
        c_se = float(qc.std(ddof=1) / root) if n_v > 1 else math.nan
        method = "hutchinson"
    gdiag = gn.diag[coords]
    diag_max = float(np.abs(diag).max())
    gn_max = float(np.abs(gdiag).max())
    c_max = float(np.abs(diag - gdiag).max())
    diag_ok = c_max <= rtol * (scale + gn_max)
    trace_ok = abs(c_trace) <= z * c_se + rtol * (N * scale + abs(gn.trace))
    rel = 1.0 / scale if scale > 0 else 0.0
    out: dict[str, float | int | bool | str] = {
        "diag_max_abs": diag_max,
        "diag_rel": diag_max * rel,
        "n_coords": n_coords,
        "trace": trace,
        "trace_se": trace_se,
        "trace_rel": abs(trace) * rel / N,
        "trace_method": method,
        "scale": scale,
        "gn_diag_max_abs": gn_max,
        "gn_trace": gn.trace,
        "gn_active": gn.n_active,
        "circuit_diag_max_abs": c_max,
        "circuit_diag_rel": c_max * rel,
        "circuit_trace": c_trace,
        "circuit_trace_se": c_se,
        "circuit_trace_rel": abs(c_trace) * rel / N,
        "diag_ok": bool(diag_ok),
        "trace_ok": bool(trace_ok),
        "ok": bool(diag_ok and trace_ok),
    }
    if warn and not out["ok"]:
        where = f" ({op.context})" if op.context else ""
        warnings.warn(
            f"the Hessian{where} should have the diagonal and trace of its Gauss–Newton part G "
            f"(loss: {mop.loss_name}; THEORY.md §3, §5), but max|H_jj - G_jj| = {c_max:.3g} "
            f"over {n_coords} coordinates ({out['circuit_diag_rel']:.2g} of the rms eigenvalue "
            f"{scale:.3g}; max G_jj = {gn_max:.3g}) and tr H - tr G = {c_trace:.4g} ± "
            f"{c_se:.2g} ({method}; tr G = {gn.trace:.4g}): the model has biases, batch norm "
            "or smooth gates",
            HingeCheckWarning,
            stacklevel=3,
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
def active_hinges(op: ModelHessian) -> np.ndarray:
    r"""Which of the operator's examples have an active hinge, :math:`1 - y_i f(x_i) > 0`:
    ``(n_total,)`` bool, in the operator's example order.

    Only these examples (the unsatisfied constraints) contribute to the gradient and Hessian of
    the hinge and of the quadratic hinge loss. With the examples sharded over processes
    (:class:`~umwelt.nn.hessian.distributed.DistributedModelHessian`), those of all of them on
    every process (a collective).
    """
    if not isinstance(op, ModelHessian):
        raise ConfigError(f"the active hinges need a ModelHessian, got {type(op).__name__}")
    with torch.no_grad():
        f = op.outputs()  # (n_shard,)
        y = torch.cat([b.y for b in op.batches()])
        mine = ((1 - y * f) > 0).cpu().numpy()
    every = np.zeros(op.n_total)
    every[op.shard] = mine
    return op.reduce_numpy(every) > 0


def active_hinge_fraction(op: ModelHessian) -> float:
    r"""Fraction of the operator's examples with an active hinge (:func:`active_hinges`)."""
    return float(active_hinges(op).mean())
