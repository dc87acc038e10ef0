r"""Numba kernels: plain ``@njit`` functions on arrays, no validation (STYLE.md).

The public wrappers in :mod:`umwelt.exact` check their arguments and call these; every kernel
here has a plain-numpy twin there that is its test oracle.

Weights travel as one flat float64 array ``wflat`` (``W_1..W_L`` row-major, concatenated) with
offsets ``woff`` (``W_l = wflat[woff[l-1]:woff[l]].reshape(n_{l-1}, n_l)``) and the widths
``widths = (n_0, ..., n_L)`` as int64, because numba has no cheap list of 2-D arrays.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange


@njit(cache=True)
def _gate_pq(z: float, T: float) -> tuple[float, float]:
    """``(p, q) = (σ(z/T), σ(−z/T))``, each computed without cancellation, exact at T=0, inf."""
    if T == 0.0:
        if z > 0.0:  # the tie z = 0 closes the gate (eq. 7)
            return 1.0, 0.0
        return 0.0, 1.0
    if math.isinf(T):
        return 0.5, 0.5
    a = z / T  # ±inf for tiny T is the right limit: exp(−inf) = 0 below
    if a >= 0.0:
        e = math.exp(-a)
        return 1.0 / (1.0 + e), e / (1.0 + e)
    e = math.exp(a)
    return e / (1.0 + e), 1.0 / (1.0 + e)


@njit(cache=True)
def _build_tables(z, p, q, w, start, m, tp, tz, n_next):
    """Probabilities and next-layer logit contributions of the ``2^m`` patterns of bits
    ``start..start+m-1`` of one layer, built by doubling.

    ``tp[k] = Π_j (p_j if bit j of k else q_j)`` and ``tz[k, :] = Σ_{j on in k} z_j W[j, :]``
    over ``j = start + (bit index)``. Exact zeros (``T = 0``) propagate as zeros.
    """
    tp[0] = 1.0
    for c in range(n_next):
        tz[0, c] = 0.0
    size = 1
    for b in range(m):
        j = start + b
        pj = p[j]
        qj = q[j]
        zj = z[j]
        for k in range(size):
            tp[k + size] = tp[k] * pj
            tp[k] *= qj
            for c in range(n_next):
                tz[k + size, c] = tz[k, c] + zj * w[j, c]
        size *= 2


@njit(cache=True)
def _enumerate_one(x, wflat, woff, widths, T, marg):
    r"""Exact moments for one input ``x`` (shape ``(n_0,)``), depth-first over gate layers.

    Layers ``1..L-2`` are enumerated: at each node (a prefix ``h_1..h_{l-1}`` of probability
    ``P``, with logits ``z_l``) the ``2^{n_l}`` patterns of layer ``l`` are visited, their
    probabilities and the next logits ``z_{l+1}`` read off two half-width tables (so a pattern
    costs ``O(n_{l+1})``), and zero-probability branches are skipped. The last hidden layer
    ``L-1`` is summed in closed form, since its gates are independent given ``z_{L-1}``:

    .. math::
        \mathbb{E}[f \mid \cdot] = \sum_i p_i c_i, \quad
        \mathrm{Var}[f \mid \cdot] = \sum_i p_i q_i c_i^2, \quad c_i = z_{L-1,i} W_{L,i}.

    Gate marginals are accumulated at the parents, ``P(h_{l,i}=1) += P \cdot p_{l,i}``. The
    mean and variance combine the leaves with the weighted Welford/West update plus the law of
    total variance, so no ``E[f^2] - E[f]^2`` cancellation occurs.

    Args:
        marg: ``(H, n_max)`` output, filled with the gate marginals (``H = L - 1 ≥ 1``).

    Returns:
        ``(mean, var)`` of ``f(x)``.
    """
    L = widths.size - 1
    H = L - 1
    nmax = 1
    for l in range(1, L):
        if widths[l] > nmax:
            nmax = widths[l]
    for l in range(H):
        for i in range(nmax):
            marg[l, i] = 0.0

    n_enum = 0  # widest enumerated layer (1..L-2); the last hidden layer needs no tables
    for l in range(1, L - 1):
        if widths[l] > n_enum:
            n_enum = widths[l]
    half = (n_enum + 1) // 2
    zbuf = np.zeros((H, nmax))  # z_l of the current node at each level
    pbuf = np.zeros((H, nmax))
    qbuf = np.zeros((H, nmax))
    P = np.zeros(H)  # probability of the prefix h_1..h_{l-1} at level l
    kcur = np.zeros(H, dtype=np.int64)  # next pattern to visit at each enumerated level
    tp_lo = np.zeros((H, 1 << half))
    tp_hi = np.zeros((H, 1 << half))
    tz_lo = np.zeros((H, 1 << half, nmax))
    tz_hi = np.zeros((H, 1 << half, nmax))

    # z_1 = x @ W_1
    n0 = widths[0]
    n1 = widths[1]
    w1 = wflat[woff[0] : woff[1]].reshape(n0, n1)
    for c in range(n1):
        s = 0.0
        for r in range(n0):
            s += x[r] * w1[r, c]
        zbuf[0, c] = s
    P[0] = 1.0

    wL = wflat[woff[L - 1] : woff[L]]  # W_L[:, 0], length n_{L-1}
    w_sum = 0.0
    mean = 0.0
    m2 = 0.0  # Σ P (m − mean)² (West)
    vin = 0.0  # Σ P Var[f | prefix]

    level = 0
    descend = True  # set up the node at `level` (its gate probabilities, tables, marginals)
    while True:
        if descend:
            descend = False
            n = widths[level + 1]
            for i in range(n):
                p, q = _gate_pq(zbuf[level, i], T)
                pbuf[level, i] = p
                qbuf[level, i] = q
                marg[level, i] += P[level] * p
            if level == H - 1:
                # the last hidden layer, in closed form
                m = 0.0
                v = 0.0
                for i in range(n):
                    ci = zbuf[level, i] * wL[i]
                    m += pbuf[level, i] * ci
                    v += pbuf[level, i] * qbuf[level, i] * ci * ci
                wt = P[level]
                w_sum += wt
                d = m - mean
                mean += (wt / w_sum) * d
                m2 += wt * d * (m - mean)
                vin += wt * v
                if level == 0:
                    break
                level -= 1
            else:
                n_next = widths[level + 2]
                wn = wflat[woff[level + 1] : woff[level + 2]].reshape(n, n_next)
                m_lo = (n + 1) // 2
                zl, pl, ql = zbuf[level], pbuf[level], qbuf[level]
                _build_tables(zl, pl, ql, wn, 0, m_lo, tp_lo[level], tz_lo[level], n_next)
                _build_tables(zl, pl, ql, wn, m_lo, n - m_lo, tp_hi[level], tz_hi[level], n_next)
                kcur[level] = 0
            continue

        # visit the next pattern of the enumerated layer at `level`
        n = widths[level + 1]
        k = kcur[level]
        if k == (1 << n):
            if level == 0:
                break
            level -= 1
            continue
        kcur[level] = k + 1
        m_lo = (n + 1) // 2
        lo = k & ((1 << m_lo) - 1)
        hi = k >> m_lo
        pc = P[level] * tp_lo[level, lo] * tp_hi[level, hi]
        if pc == 0.0:
            continue  # impossible branch (T = 0), or below the smallest double
        n_next = widths[level + 2]
        for c in range(n_next):
            zbuf[level + 1, c] = tz_lo[level, lo, c] + tz_hi[level, hi, c]
        P[level + 1] = pc
        level += 1
        descend = True

    return mean, m2 / w_sum + vin / w_sum


@njit(cache=True, parallel=True)
def exact_moments(xs, wflat, woff, widths, T, marg, mean, var):
    """Exact gate marginals and mean/variance of ``f`` for every input row, in parallel.

    Args:
        xs: inputs ``(B, n_0)``.
        wflat, woff, widths: the network (module docstring).
        T: temperature in ``[0, inf]``.
        marg: output ``(B, H, n_max)``, ``marg[b, l-1, i] = P(h_{l,i} = 1 | x_b)``.
        mean, var: outputs ``(B,)``.
    """
    for b in prange(xs.shape[0]):
        m, v = _enumerate_one(xs[b], wflat, woff, widths, T, marg[b])
        mean[b] = m
        var[b] = v
