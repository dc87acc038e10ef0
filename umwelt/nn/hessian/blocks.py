r"""Per-layer-pair spectra: the blocks :math:`H_{ab}` of the Hessian between weight layers.

For parameter tensors (layers) :math:`a, b`, the block :math:`H_{ab} = P_a H P_b`. One
:meth:`~umwelt.nn.hessian.base.HessianOperator.matmat` of ``m`` Gaussian probes
:math:`\Omega_b` supported on layer :math:`b` gives :math:`Y_b = H \Omega_b`, whose rows of
layer :math:`a` are :math:`H_{ab}\Omega_b` for **every** :math:`a` at once; so ``L`` products of
``m`` columns (``L`` the number of layers) give all :math:`L^2` blocks:

* **Frobenius norms.** :math:`\mathbb E\|H_{ab}\omega\|^2 = \|H_{ab}\|_F^2` for a standard
  Gaussian :math:`\omega` (Hutchinson), so the mean over the ``m`` probes estimates it. Its
  standard error is the closed form :math:`\mathrm{Var}\,\omega^\top M\omega = 2\,\mathrm{tr}
  M^2` (:math:`M = H_{ab}^\top H_{ab}`), with :math:`\mathrm{tr} M^2` estimated without bias by
  the mean of :math:`(y_i^\top y_j)^2` over pairs of probes :math:`i \ne j` — a sample variance
  of ``m`` chi-square-like terms would be far too noisy. ``share``
  :math:`= \|H_{ab}\|_F^2 / \sum_{a'b'}\|H_{a'b'}\|_F^2`, the block's part of
  :math:`\mathrm{tr}\,H^2` (the delta method gives its standard error). The errors' own noise
  makes small estimates look surer than they are, so both are widened by Satterthwaite's
  :math:`\sqrt{\nu/(\nu - 2)}`, :math:`\nu = m(\mathrm{tr} M)^2/\mathrm{tr} M^2` (at least
  :data:`MIN_DOF`); measured on dense oracles over 200 seeds, the z-scores' SD is then 1.07–1.16
  at ``m = 16`` (:data:`PROBES`, the default) and 1.2–1.6 at 8.
  With the hinge loss and fixed gates the within-layer blocks are exactly 0 (one weight per layer
  on every circuit); with the quadratic hinge or the logistic loss their Gauss–Newton part is
  not.
* **Top singular values**, by the single-pass sketch of Tropp, Yurtsever, Udell & Cevher (2017):
  with :math:`Q = \mathrm{orth}(H_{ab}\Omega_b)` and the co-range sketch
  :math:`W = \Omega_a^\top H_{ab} = (H_{ba}\Omega_a)^\top` (rows of layer :math:`b` of
  :math:`Y_a`: :math:`H` is symmetric), :math:`H_{ab} \approx Q (\Omega_a^\top Q)^{+} W`, whose
  singular values are those of the small :math:`(\Omega_a^\top Q)^{+} W`. Exact for a block of
  rank below ``m``; for the leading values of a decaying spectrum close (tested against dense
  blocks), no product beyond the ``L`` above.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from umwelt._checks import check_int
from umwelt.errors import ConfigError
from umwelt.nn.hessian.base import HessianOperator
from umwelt.seeds import index_seed

__all__ = [
    "MAX_PROBES",
    "PROBES",
    "TOP_SINGULAR",
    "LayerBlocks",
    "check_blocks",
    "check_probes",
    "layer_blocks",
]

TOP_SINGULAR = 3  # singular values kept per block


@dataclass(frozen=True, eq=False)
class LayerBlocks:
    """The layer × layer blocks of a Hessian (module docstring).

    Attributes:
        frob2: ``(L, L)`` estimated :math:`\\|H_{ab}\\|_F^2`.
        frob2_se: ``(L, L)`` its standard error over the probes.
        share: ``(L, L)`` the blocks' shares of :math:`\\mathrm{tr}\\, H^2`.
        share_se: ``(L, L)`` their standard errors.
        singular: ``(L, L, TOP_SINGULAR)`` the leading singular values (descending; 0 beyond
            the block's rank or size).
        sizes: ``(L,)`` the layers' sizes.
        probes: ``m``.
    """

    frob2: np.ndarray
    frob2_se: np.ndarray
    share: np.ndarray
    share_se: np.ndarray
    singular: np.ndarray
    sizes: np.ndarray
    probes: int

    def arrays(self, prefix: str = "block") -> dict[str, np.ndarray]:
        """The fields as arrays for an ``.npz``."""
        return {
            f"{prefix}_frob2": self.frob2,
            f"{prefix}_frob2_se": self.frob2_se,
            f"{prefix}_share": self.share,
            f"{prefix}_share_se": self.share_se,
            f"{prefix}_singular": self.singular,
            f"{prefix}_sizes": self.sizes,
        }


MAX_PROBES = 64  # probes per layer, at most
MIN_DOF = 3.0  # the fewest degrees of freedom the Satterthwaite widening assumes


def check_probes(probes: int) -> int:
    """``probes`` per layer, checked: an integer from 2 to :data:`MAX_PROBES`
    (:class:`ConfigError` naming it)."""
    probes = check_int("block vectors", probes, 2)
    if probes > MAX_PROBES:
        raise ConfigError(f"block vectors must be at most {MAX_PROBES}, got {probes}")
    return probes


def check_blocks(offsets: np.ndarray, probes: int) -> int:
    """``probes`` checked against layers of these ``offsets``; :class:`ConfigError` naming the
    value (2 to :data:`MAX_PROBES` probes, at least 2 layers, the ``L × N × probes`` sketches
    within the memory budget)."""
    sizes = np.diff(np.asarray(offsets))
    if sizes.size < 2:
        raise ConfigError(
            f"--blocks needs at least two weight layers; the model has {sizes.size} parameter "
            "tensor(s)"
        )
    probes = check_probes(probes)
    from umwelt.memory import check_fits

    check_fits(
        f"the layer blocks ({sizes.size} × N × {probes} sketches)",
        8.0 * sizes.size * int(sizes.sum()) * probes,
    )
    return probes


PROBES = 16  # the default probes per layer (honest error bars from here, module docstring)


def layer_blocks(
    op: HessianOperator, offsets: np.ndarray, probes: int = PROBES, *, seed: int = 0
) -> LayerBlocks:
    """Frobenius shares and leading singular values of every layer-pair block of ``op``.

    Args:
        op: the operator.
        offsets: ``(L + 1,)`` the layers' first coordinates (``ModelHessian.param_offsets``).
        probes: Gaussian probes per layer (``L`` products of that many columns in all).
        seed: seed of the probes (layer ``b``'s from ``(seed, b)``).

    Raises:
        ConfigError: fewer than two layers, ``probes`` outside ``[2,`` :data:`MAX_PROBES` ``]``
            or sketches beyond the memory budget.
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    m = check_blocks(offsets, probes)
    sizes = np.diff(offsets)
    L = sizes.size
    Ys, Omegas = [], []
    for b in range(L):
        gen = torch.Generator().manual_seed(index_seed(seed, b, bits=32))
        om = torch.randn(int(sizes[b]), m, generator=gen, dtype=torch.float64)
        V = torch.zeros(op.n, m, dtype=op.dtype)
        V[offsets[b] : offsets[b + 1]] = om.to(op.dtype)
        Ys.append(op.matmat(V.to(op.device)).double().cpu())  # (N, m): H_{·b} Ω_b
        Omegas.append(om)
    frob2 = np.zeros((L, L))
    var = np.zeros((L, L))  # of the estimates frob2
    cov_t = np.zeros((L, L))  # with the estimate of the total
    var_t = 0.0
    singular = np.zeros((L, L, TOP_SINGULAR))
    off = ~np.eye(m, dtype=bool)
    for b in range(L):
        grams = []
        for a in range(L):
            Yab = Ys[b][offsets[a] : offsets[a + 1]]  # (n_a, m): H_{ab} Ω_b
            G = (Yab.T @ Yab).numpy()  # (m, m)
            grams.append(G)
            frob2[a, b] = np.trace(G) / m
            singular[a, b] = _sketch_singular(Yab, Omegas[a], Ys[a][offsets[b] : offsets[b + 1]])
        Gb = sum(grams)  # the whole column H_{·b}: its probes' Gram matrix
        for a in range(L):  # Var ωᵀMω = 2 tr M², Cov = 2 tr M M' (Gaussian ω), unbiased from i ≠ j
            var[a, b] = 2 * (grams[a][off] ** 2).mean() / m
            cov_t[a, b] = 2 * (grams[a][off] * Gb[off]).mean() / m
        var_t += 2 * (Gb[off] ** 2).mean() / m
    # Satterthwaite: a quadratic form's estimate has about ν = m (tr M)² / tr M² degrees of
    # freedom; its variance estimate shares them, so widen by the t SD √(ν / (ν - 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        nu = np.where(var > 0, 2 * frob2**2 / np.where(var > 0, var, 1.0), np.inf)
    nu = np.clip(nu, MIN_DOF, 1e12)  # (no variance: no widening)
    widen = np.sqrt(nu / (nu - 2))
    var = var * widen**2
    frob2_se = np.sqrt(np.maximum(var, 0.0))
    T = float(frob2.sum())
    if T > 0:  # the delta method for share = F_ab / T (the layers' probes independent)
        share = frob2 / T
        v = (var / widen**2 - 2 * share * cov_t + share**2 * var_t) * widen**2
        share_se = np.sqrt(np.maximum(v, 0.0)) / T
    else:
        share = share_se = np.full((L, L), math.nan)
    return LayerBlocks(frob2, frob2_se, share, share_se, singular, sizes, m)


def _sketch_singular(Y: torch.Tensor, omega_a: torch.Tensor, Yba: torch.Tensor) -> np.ndarray:
    """The leading singular values of :math:`H_{ab}` from its range sketch ``Y`` = H_ab Ω_b
    ``(n_a, m)`` and co-range sketch :math:`W = \\Omega_a^\\top H_{ab}` = ``Yba.T``
    (``Yba`` = H_ba Ω_a, ``(n_b, m)``)."""
    out = np.zeros(TOP_SINGULAR)
    if not bool(Y.abs().max() > 0):
        return out
    Q, _ = torch.linalg.qr(Y)  # (n_a, m)
    W = Yba.T  # (m, n_b)
    X = torch.linalg.lstsq(omega_a.T @ Q, W).solution  # (m, n_b): (Ω_aᵀ Q)⁺ W
    s = torch.linalg.svdvals(X).numpy()
    r = min(TOP_SINGULAR, s.size)
    out[:r] = s[:r]
    return out
