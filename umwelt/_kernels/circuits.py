r"""Numba kernels for basis circuits: products along a chain of matrices, no validation.

The public wrappers in :mod:`umwelt.circuits` check their arguments, build the chain and call
these; each kernel has a plain-numpy twin in :mod:`umwelt.circuits.values` (its ``values_*``
modules) that is its oracle.

**The chain.** A circuit is a path of ``D`` digits ``(i_0, ..., i_{D-1})``, digit ``k`` in
``[0, r_k)``. Its value is a product of one entry of each of ``D`` matrices,

.. math::
    \Psi_i = \big(\cdots\big((1 \cdot G_0[0, i_0]) \cdot G_1[i_0, i_1]\big) \cdots\big)
    \cdot G_{D-1}[i_{D-2}, i_{D-1}],

evaluated left to right in exactly this order by every kernel and twin (so they agree bit for
bit). ``G_k`` has shape ``(r_{k-1}, r_k)`` with ``r_{-1} = 1`` and travels in one flat float64
array ``gflat`` with int64 offsets ``goff`` (``G_k = gflat[goff[k]:goff[k+1]]``, row-major) and
the int64 ``radices = (r_0, ..., r_{D-1})``. Circuits are numbered in mixed radix with ``i_0``
the most significant digit (C order): ``index = ((i_0 r_1 + i_1) r_2 + i_2) \cdots``.

Digits ``0..D-2`` select a *row*: a prefix product ``p`` and a parent ``a = i_{D-2}`` (``a = 0``
when ``D = 1``); the last digit runs along row ``a`` of ``C = G_{D-1}``, giving the ``r_{D-1}``
values ``p \cdot C[a, j]``. The streaming statistics use that rounding is monotone: for fixed
``p > 0``, ``fl(p c)`` is non-decreasing in ``c`` (non-increasing for ``p < 0``). With each row
of ``C`` sorted once, a row's minimum, maximum, sign counts and histogram counts follow from
its ends, binary searches and galloping searches, exactly as if every product were formed and
binned; sum, sum of squares, mean and centred second moment come from per-row aggregates of
``C`` (``Σ_j p C_aj = p Σ_j C_aj``, equal up to rounding).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# accumulator layout, float: sum, its Neumaier compensation, sum of squares, mean, M2, min, max
_F_SUM, _F_COMP, _F_SSQ, _F_MEAN, _F_M2, _F_MIN, _F_MAX = 0, 1, 2, 3, 4, 5, 6
N_FLOAT_ACC = 7
# int: count, positive, negative, zero
_I_CNT, _I_POS, _I_NEG, _I_ZERO = 0, 1, 2, 3
N_INT_ACC = 4


@njit(cache=True)
def _expand_row(cur, r, gflat, base, n, dst):
    """``dst[r n + j] = cur[r] G[a, j]`` for one row ``r`` (``base`` = offset of ``G[a, 0]``)."""
    pr = cur[r]
    for j in range(n):
        dst[r * n + j] = pr * gflat[base + j]


@njit(cache=True)
def chain_values(gflat, goff, radices, out):
    """Every circuit value of a chain, in index order (module docstring).

    Expands the prefix products one digit at a time, ``P_k[r r_k + j] = P_{k-1}[r] G_k[r mod
    r_{k-1}, j]``, the last expansion writing into ``out``.

    Args:
        gflat, goff, radices: the chain.
        out: output, float64 of size ``Π_k r_k``.
    """
    D = radices.size
    cur = np.ones(1)
    for k in range(D):
        n = radices[k]
        n_prev = 1 if k == 0 else radices[k - 1]
        dst = out if k == D - 1 else np.empty(cur.size * n)
        for r in range(cur.size):
            _expand_row(cur, r, gflat, goff[k] + (r % n_prev) * n, n, dst)
        cur = dst


@njit(cache=True, parallel=True)
def chain_values_parallel(gflat, goff, radices, out):
    """:func:`chain_values` with the rows of each expansion in parallel (same results)."""
    D = radices.size
    cur = np.ones(1)
    for k in range(D):
        n = radices[k]
        n_prev = 1 if k == 0 else radices[k - 1]
        dst = out if k == D - 1 else np.empty(cur.size * n)
        for r in prange(cur.size):
            _expand_row(cur, r, gflat, goff[k] + (r % n_prev) * n, n, dst)
        cur = dst


@njit(cache=True, inline="always")
def _sampled_one(xs, wflat, woff, widths, hs, hoff, paths, d1, d2, out, s):
    """The values of path ``s`` for every input (see :func:`sampled_values`)."""
    L = widths.size - 1
    for b in range(xs.shape[0]):
        v = xs[b, paths[s, 0]]
        last = 1.0
        for l in range(1, L + 1):
            if l < L:
                i_prev = paths[s, l - 1]
                i = paths[s, l]
                h = hs[b, hoff[l - 1] + i]
                if l == d1[s] or l == d2[s]:
                    f = h
                else:
                    f = wflat[woff[l - 1] + i_prev * widths[l] + i] * h
            else:
                if l == d1[s] or l == d2[s]:
                    f = 1.0
                else:
                    f = wflat[woff[L - 1] + paths[s, L - 1]]
            if l < L - 1 or L == 1:
                v = v * f
            elif l == L - 1:
                last = f  # f_{L-1}, multiplied with f_L before joining the prefix
            else:
                v = v * (last * f)
        out[b, s] = v


@njit(cache=True)
def sampled_values(xs, wflat, woff, widths, hs, hoff, paths, d1, d2, out):
    r"""Values of given circuits of a layered net, with up to two weight layers differentiated.

    For input ``b`` and path ``s`` the factors are ``f_0 = x_{i_0}``,
    ``f_l = W^l_{i_{l-1} i_l} H^l_{i_l}`` (``1 ≤ l < L``) and ``f_L = W^L_{i_{L-1} 0}``; a layer
    ``l = d1[s]`` or ``d2[s]`` has its weight differentiated out (``f_l = H^l_{i_l}``, or
    ``f_L = 1``). The product is formed like the chain's, ``((f_0 f_1) \cdots f_{L-2})
    (f_{L-1} f_L)`` (``f_0 f_1`` when ``L = 1``).

    Args:
        xs: inputs ``(B, n_0)``.
        wflat, woff, widths: the network (as in :mod:`umwelt._kernels.enumeration`).
        hs: gates as 0.0/1.0, ``(B, n_1 + ... + n_{L-1})``; layer ``l`` at ``hoff[l-1]:``.
        hoff: int64 offsets of the gate layers, length ``L``.
        paths: ``(S, L)`` int64 digits.
        d1, d2: ``(S,)`` int64 differentiated layers, ``-1`` for none.
        out: output ``(B, S)``.
    """
    for s in range(paths.shape[0]):
        _sampled_one(xs, wflat, woff, widths, hs, hoff, paths, d1, d2, out, s)


@njit(cache=True, parallel=True)
def sampled_values_parallel(xs, wflat, woff, widths, hs, hoff, paths, d1, d2, out):
    """:func:`sampled_values` with the paths in parallel (same results)."""
    for s in prange(paths.shape[0]):
        _sampled_one(xs, wflat, woff, widths, hs, hoff, paths, d1, d2, out, s)


# -- streaming statistics -------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _val(p, row, m, neg, j):
    """The ``j``-th smallest of ``fl(p row[k])`` for a row sorted ascending."""
    if neg:
        return p * row[m - 1 - j]
    return p * row[j]


@njit(cache=True)
def _first_ge(p, row, m, neg, lo, hi, t):
    """First ``j`` in ``[lo, hi)`` with ``v_j ≥ t`` (``hi`` if none), ``v`` ascending."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if _val(p, row, m, neg, mid) >= t:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(cache=True)
def _first_gt(p, row, m, neg, lo, hi, t):
    """First ``j`` in ``[lo, hi)`` with ``v_j > t`` (``hi`` if none), ``v`` ascending."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if _val(p, row, m, neg, mid) > t:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(cache=True)
def _gallop_ge(p, row, m, neg, j, hi, t):
    """First ``j' > j`` below ``hi`` with ``v_{j'} ≥ t`` (``hi`` if none), given ``v_j < t``.

    Exponential then binary search: ``O(log (j' - j))`` comparisons.
    """
    prev = j
    step = 1
    while True:
        nxt = prev + step
        if nxt >= hi:
            return _first_ge(p, row, m, neg, prev + 1, hi, t)
        if _val(p, row, m, neg, nxt) >= t:
            return _first_ge(p, row, m, neg, prev + 1, nxt, t)
        prev = nxt
        step *= 2


@njit(cache=True)
def _bin_of(v, edges, nb):
    """Bin of ``edges[0] ≤ v ≤ edges[nb]``: the largest ``k ≤ nb - 1`` with ``edges[k] ≤ v``
    (numpy's rule: half-open bins, the last one closed)."""
    lo = 0
    hi = nb
    while lo < hi:
        mid = (lo + hi + 1) >> 1
        if edges[mid] <= v:
            lo = mid
        else:
            hi = mid - 1
    if lo > nb - 1:
        lo = nb - 1
    return lo


@njit(cache=True)
def _add_zeros(k, accf, acci, hist, zbin):
    """Add ``k`` circuits of value exactly 0 (a closed gate or zero factor in their prefix)."""
    n0 = acci[_I_CNT]
    tot = n0 + k
    delta = -accf[_F_MEAN]
    accf[_F_MEAN] += delta * (k / tot)
    accf[_F_M2] += delta * delta * (n0 / tot) * k
    acci[_I_CNT] = tot
    acci[_I_ZERO] += k
    if accf[_F_MIN] > 0.0:
        accf[_F_MIN] = 0.0
    if accf[_F_MAX] < 0.0:
        accf[_F_MAX] = 0.0
    if zbin >= 0:
        hist[zbin] += k


@njit(cache=True, inline="always")
def _add_row(p, row, m, rsum, rsumsq, rmean, rm2, edges, nb, accf, acci, hist):
    """Add the ``m`` values ``fl(p row[j])`` of one row (``p ≠ 0``, ``row`` sorted ascending)."""
    neg = p < 0.0
    # sum (Neumaier), sum of squares
    y = p * rsum
    s = accf[_F_SUM]
    t = s + y
    if abs(s) >= abs(y):
        accf[_F_COMP] += (s - t) + y
    else:
        accf[_F_COMP] += (y - t) + s
    accf[_F_SUM] = t
    accf[_F_SSQ] += p * p * rsumsq
    # mean and M2 (Chan et al.'s pairwise update with the row's block)
    n0 = acci[_I_CNT]
    tot = n0 + m
    delta = p * rmean - accf[_F_MEAN]
    accf[_F_MEAN] += delta * (m / tot)
    accf[_F_M2] += p * p * rm2 + delta * delta * (n0 / tot) * m
    acci[_I_CNT] = tot
    # min, max, signs: exact, by monotonicity of fl(p c) in c
    vmin = _val(p, row, m, neg, 0)
    vmax = _val(p, row, m, neg, m - 1)
    if vmin < accf[_F_MIN]:
        accf[_F_MIN] = vmin
    if vmax > accf[_F_MAX]:
        accf[_F_MAX] = vmax
    if vmin > 0.0:
        n_neg, n_pos = 0, m
    elif vmax < 0.0:
        n_neg, n_pos = m, 0
    else:
        n_neg = _first_ge(p, row, m, neg, 0, m, 0.0)
        n_pos = m - _first_gt(p, row, m, neg, n_neg, m, 0.0)
    acci[_I_NEG] += n_neg
    acci[_I_POS] += n_pos
    acci[_I_ZERO] += m - n_neg - n_pos
    # histogram: O(1) for a row within one bin, else one galloping search per run in a bin
    if nb == 0 or vmax < edges[0] or vmin > edges[nb]:
        return
    j = 0 if vmin >= edges[0] else _first_ge(p, row, m, neg, 0, m, edges[0])
    jend = m if vmax <= edges[nb] else _first_gt(p, row, m, neg, j, m, edges[nb])
    if j >= jend:
        return
    k = _bin_of(_val(p, row, m, neg, j), edges, nb)
    while True:
        if k == nb - 1 or _val(p, row, m, neg, jend - 1) < edges[k + 1]:
            hist[k] += jend - j  # the rest of the row is in bin k
            return
        j2 = _gallop_ge(p, row, m, neg, j, jend, edges[k + 1])
        hist[k] += j2 - j
        j = j2
        v = _val(p, row, m, neg, j)  # v ≥ edges[k + 1]: usually in the next bin
        k += 1
        if k < nb - 1 and v >= edges[k + 1]:
            k = _bin_of(v, edges, nb)


@njit(cache=True)
def _stats_task(
    t,
    gflat,
    goff,
    radices,
    csort,
    rsum,
    rsumsq,
    rmean,
    rm2,
    edges,
    nb,
    zbin,
    sub,
    n_split,
    af,
    ai,
    ht,
):
    """One task of :func:`chain_stats`: the subtree below prefix number ``t``."""
    D = radices.size
    nrd = D - 1
    m = radices[D - 1]
    dig = np.zeros(max(D, 1), dtype=np.int64)
    pre = np.ones(max(D, 1))
    rem = t
    for k in range(n_split - 1, -1, -1):
        dig[k] = rem % radices[k]
        rem //= radices[k]
    p = 1.0
    for k in range(n_split):
        parent = 0 if k == 0 else dig[k - 1]
        p = p * gflat[goff[k] + parent * radices[k] + dig[k]]
        pre[k] = p
    if p == 0.0:
        _add_zeros(sub[n_split - 1], af, ai, ht, zbin)
        return
    if n_split == nrd:
        a = 0 if nrd == 0 else dig[nrd - 1]
        _add_row(p, csort[a], m, rsum[a], rsumsq[a], rmean[a], rm2[a], edges, nb, af, ai, ht)
        return
    level = n_split
    dig[level] = 0
    while True:
        if dig[level] == radices[level]:
            if level == n_split:
                break
            level -= 1
            dig[level] += 1
            continue
        parent = 0 if level == 0 else dig[level - 1]
        pp = 1.0 if level == 0 else pre[level - 1]
        q = pp * gflat[goff[level] + parent * radices[level] + dig[level]]
        if q == 0.0:
            _add_zeros(sub[level], af, ai, ht, zbin)
            dig[level] += 1
            continue
        if level == nrd - 1:
            a = dig[level]
            c = csort[a]
            _add_row(q, c, m, rsum[a], rsumsq[a], rmean[a], rm2[a], edges, nb, af, ai, ht)
            dig[level] += 1
            continue
        pre[level] = q
        level += 1
        dig[level] = 0


@njit(cache=True)
def _stats_setup(radices, edges, n_split):
    """``(nb, zbin, sub, T)``: bins, the bin of 0 (-1: none), circuits below a prefix of
    digits ``0..k``, tasks."""
    D = radices.size
    nb = edges.size - 1 if edges.size >= 2 else 0
    zbin = -1
    if nb > 0 and edges[0] <= 0.0 <= edges[nb]:
        zbin = _bin_of(0.0, edges, nb)
    sub = np.ones(D, dtype=np.int64)
    for k in range(D - 2, -1, -1):
        sub[k] = sub[k + 1] * radices[k + 1]
    T = 1
    for k in range(n_split):
        T *= radices[k]
    return nb, zbin, sub, T


@njit(cache=True)
def chain_stats(
    gflat, goff, radices, csort, rsum, rsumsq, rmean, rm2, edges, n_split, accf, acci, hist
):
    r"""Streaming statistics of every circuit value of a chain, without storing them.

    The first ``n_split`` row digits are split into ``T = r_0 \cdots r_{n\_split - 1}`` tasks
    (run one after another here, in parallel by :func:`chain_stats_parallel`), each walking its
    subtree of prefixes depth-first; a prefix that is exactly 0 adds its whole subtree as zeros
    in ``O(1)``. Each task writes its own accumulators, which the caller reduces in task order,
    so results do not depend on the number of threads.

    Args:
        gflat, goff, radices: the chain (module docstring).
        csort: ``C = G_{D-1}`` with each row sorted ascending, ``(r_{D-2}, r_{D-1})``.
        rsum, rsumsq, rmean, rm2: per row of ``C``: ``Σ_j C_aj``, ``Σ_j C_aj^2``, the mean and
            ``Σ_j (C_aj - mean)^2``.
        edges: histogram edges (increasing), or an empty array for no histogram.
        n_split: number of leading row digits split into tasks (``0 ≤ n_split ≤ D - 1``).
        accf: output ``(T, 7)``: sum, its compensation, sum of squares, mean, M2, min, max;
            ``min``/``max`` must come initialized to ``+inf``/``-inf``, the rest to 0.
        acci: output ``(T, 4)``, zeroed: count, positive, negative, zero.
        hist: output ``(T, max(len(edges) - 1, 1))``, zeroed.
    """
    nb, zbin, sub, T = _stats_setup(radices, edges, n_split)
    for t in range(T):
        _stats_task(
            t,
            gflat,
            goff,
            radices,
            csort,
            rsum,
            rsumsq,
            rmean,
            rm2,
            edges,
            nb,
            zbin,
            sub,
            n_split,
            accf[t],
            acci[t],
            hist[t],
        )


@njit(cache=True, parallel=True)
def chain_stats_parallel(
    gflat, goff, radices, csort, rsum, rsumsq, rmean, rm2, edges, n_split, accf, acci, hist
):
    """:func:`chain_stats` with the tasks in parallel (same results, bit for bit)."""
    nb, zbin, sub, T = _stats_setup(radices, edges, n_split)
    for t in prange(T):
        _stats_task(
            t,
            gflat,
            goff,
            radices,
            csort,
            rsum,
            rsumsq,
            rmean,
            rm2,
            edges,
            nb,
            zbin,
            sub,
            n_split,
            accf[t],
            acci[t],
            hist[t],
        )
