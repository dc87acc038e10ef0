r"""Circuit symmetry: how symmetric about 0 are circuit values and their perturbations?

Li, *Complexity from Adaptive-Symmetries Breaking* (eq. 14, fig. 3b; THEORY.md §4) measures
the **circuit symmetry** :math:`\mu(\psi) \approx \mu(-\psi)` on circuits sampled uniformly from
a network, and the same for the first- and second-order perturbations
:math:`\Omega^{(l)}` and :math:`\Omega^{(l,l')}` (eq. 16, 19). This module samples them and
summarizes each set of values by symmetry statistics; it also estimates the moments of the
*assemblies* (their sums: ``f``, gradient entries, Hessian entries) at initialization, to set
beside the paper's eq. 20.

**What is sampled** (:func:`sample_perturbations`). Each draw is an input, chosen uniformly
from the inputs given, and a circuit :math:`i`, chosen uniformly from all circuits. ``psi`` is
:math:`\Psi_i`; ``omega1`` is :math:`\Omega^{(l)}_i` for a layer :math:`l` drawn uniformly from
``1..L`` (the circuit's own weight of that layer differentiated out); ``omega2`` is
:math:`\Omega^{(l,l')}_i` for an unordered pair :math:`l \ne l'` drawn uniformly from the
:math:`\binom{L}{2}` pairs. A circuit carries exactly one weight per layer, so this is the
uniform law over (circuit, weight on it) and (circuit, pair of its weights): the weights
differentiated out are sampled the way the circuits carry them.

**The statistics** (:func:`symmetry_stats`), of a sample :math:`v_1..v_n`, zeros included
(a circuit through a closed gate has the value 0 exactly, and is a circuit like any other):

* ``mean_over_std``: :math:`\bar v / s` with :math:`s` the standard deviation (``ddof = 1``);
* ``skewness``: :math:`g_1 = m_3 / m_2^{3/2}`, central moments with ``1/n``
  (:func:`scipy.stats.skew` with ``bias=True``); ``excess_kurtosis``: :math:`m_4/m_2^2 - 3`;
* ``frac_positive``: the fraction of the **non-zero** values that are positive (1/2 under
  symmetry, whatever the share of exact zeros, which is ``frac_zero``);
* ``sym_test_pvalue``: the **mirror Kolmogorov–Smirnov test** of :math:`\psi` against
  :math:`-\psi` (below); with ``wilcoxon_pvalue`` (Wilcoxon's signed-rank test) and
  ``sign_test_pvalue`` (the exact binomial test of ``#positive = #negative``) beside it.

**The test of ψ against −ψ.** The two-sample KS distance between the sample and its own mirror
image, :math:`D = \sup_t |F_n(t) - \tilde F_n(t)|` with :math:`\tilde F_n` the empirical law
of :math:`-v`, is the natural statistic, but the two-sample KS *p-value* would be wrong: the
"two samples" are the same draws, not independent ones. The right null distribution comes from
the symmetry itself. Under :math:`H_0: v \overset{d}{=} -v` (for a continuous law) the signs of
the non-zero values are fair coins independent of their magnitudes, and

.. math::
    n D = \max_t \big|\#\{v > t\} - \#\{v < -t\}\big| = \max_k |S_k| ,

the largest excursion of the ±1 random walk :math:`S_k` of the signs taken in order of
decreasing :math:`|v|` (only at the ends of groups of tied :math:`|v|`). Its law given the
magnitudes is distribution-free: we compute :math:`P(\max_k |S_k| \ge nD)` exactly by dynamic
programming for up to :data:`EXACT_MIRROR_KS_MAX` non-zero values, and beyond by the Brownian
limit :math:`P(\sup_{[0,1]} |B| \ge nD/\sqrt m)` (``m`` non-zero values), which ignores ties and
so errs on the conservative side. Exact zeros carry no sign and are left out of all three
tests. The test is conditional on the network (and inputs): it asks whether *this* net's
population of circuit values is symmetric, with power against asymmetries of order
:math:`1/\sqrt n`. Sampling with replacement makes the draws independent and identically
distributed from that population, as the test requires.

**Assembly moments** (:func:`assembly_moments`): over seeded He-normal nets of widths
``(n, n, ..., n, 1)`` with ``L`` weight layers and standard-normal inputs, the mean and second
moment of ``f``, of uniformly drawn gradient entries :math:`\partial f/\partial W^l_{ab}` and of
uniformly drawn Hessian entries :math:`\partial^2 f/\partial W^l_{ab}\partial W^{l'}_{cd}`
(``l ≠ l'``; within-layer entries vanish identically), all with the gates fixed (ReLU gates, or
sampled at a temperature). These are the exact per-net assemblies, computed in closed form
(:func:`assembly_entries`: back-propagation with the gates fixed), which equal the circuit sums
(tested). The paper's eq. 20 bounds the means by :math:`O((c^2/2)^L + c^L/\sqrt n^{L\mu})` and
the second moments by :math:`O(c^{2L})`; He initialization is its edge of chaos, ``c ≈ 1``.
Two exact facts to read the estimates by: with ReLU gates and standard-normal inputs,
:math:`\mathbb E[f] = 0` and :math:`\mathbb E[f^2] = 2 (g^2/2)^L` (``= 2`` for He,
:math:`g = \sqrt 2`) at every width and depth, since each layer's logits are symmetric given the
layer below; and the output layer's gradient entries :math:`\partial f/\partial W^L_{a0} =
x_{L-1,a} \ge 0` are not symmetric at all, which gives the gradient entries a positive mean
where the output layer holds a visible share of the weights (narrow nets).

Conv nets: :func:`sample_conv_perturbations` draws the same three kinds of values from
:class:`~umwelt.circuits.ConvCircuits`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from umwelt._checks import check_int, check_positive
from umwelt.circuits._chain import check_inputs, check_network
from umwelt.circuits.index import PathIndex, _as_rng
from umwelt.circuits.values import sampled_circuit_values
from umwelt.errors import ConfigError, ShapeError
from umwelt.network import LayeredNetwork, parse_widths

__all__ = [
    "EXACT_MIRROR_KS_MAX",
    "ORDERS",
    "AssemblyMoments",
    "CircuitSample",
    "SymmetryStats",
    "assembly_entries",
    "assembly_moments",
    "mirror_ks_test",
    "sample_conv_perturbations",
    "sample_layers",
    "sample_perturbations",
    "symmetry_stats",
]

ORDERS: tuple[str, ...] = ("psi", "omega1", "omega2")
"""The three kinds of sampled values: circuits, first- and second-order perturbations."""

EXACT_MIRROR_KS_MAX: int = 2000
"""Up to this many non-zero values the mirror-KS p-value is exact; beyond, the Brownian limit."""


# -- the test of v against -v ---------------------------------------------------------------------


def _mirror_ks_statistic(nonzero: np.ndarray) -> tuple[int, list[int]]:
    """``(max_k |S_k|, group sizes)``: the sign walk in order of decreasing ``|v|``, evaluated at
    the ends of groups of equal ``|v|``."""
    mag = np.abs(nonzero)
    order = np.argsort(-mag, kind="stable")
    mag, sgn = mag[order], np.sign(nonzero[order]).astype(np.int64)
    ends = np.flatnonzero(np.diff(mag) != 0).tolist() + [mag.size - 1]
    walk = np.cumsum(sgn)[ends]
    groups = np.diff([-1, *ends]).tolist()
    return int(np.max(np.abs(walk))), groups


def _walk_tail_exact(groups: Sequence[int], d: int) -> float:
    r""":math:`P(\max_j |S_{c_j}| \ge d)` for a fair ±1 walk checked at the group ends
    :math:`c_j`, by dynamic programming over its position (mass leaving the band is absorbed)."""
    if d <= 0:
        return 1.0
    m = int(sum(groups))
    p = np.zeros(2 * m + 1)
    p[m] = 1.0
    for g in groups:
        for _ in range(g):
            q = np.zeros_like(p)
            q[1:] += 0.5 * p[:-1]
            q[:-1] += 0.5 * p[1:]
            p = q
        p[: m - d + 1] = 0.0
        p[m + d :] = 0.0
    return float(min(1.0, max(0.0, 1.0 - p.sum())))


def _brownian_tail(x: float) -> float:
    r""":math:`P(\sup_{0 \le t \le 1} |B_t| \ge x)`, by the series that converges fast at ``x``:

    .. math::
        1 - \frac4\pi \sum_{k \ge 0} \frac{(-1)^k}{2k+1} e^{-(2k+1)^2 \pi^2 / (8 x^2)}
        \;\; (x < 1), \qquad
        2 \sum_{k \ge 0} (-1)^k \operatorname{erfc}\!\big((2k+1)\,x/\sqrt2\big)
        \;\; (x \ge 1).
    """
    if x <= 0:
        return 1.0
    s = 0.0
    for k in range(1000):
        if x < 1.0:
            t = (-1) ** k / (2 * k + 1) * math.exp(-((2 * k + 1) ** 2) * math.pi**2 / (8 * x * x))
        else:
            t = (-1) ** k * math.erfc((2 * k + 1) * x / math.sqrt(2.0))
        s += t
        if abs(t) < 1e-18 * max(abs(s), 1e-300) or t == 0.0:
            break
    tail = 1.0 - 4.0 / math.pi * s if x < 1.0 else 2.0 * s
    return float(min(1.0, max(0.0, tail)))


def mirror_ks_test(values: np.ndarray) -> tuple[float, float]:
    r"""The mirror Kolmogorov–Smirnov test of :math:`v \overset{d}{=} -v` (module docstring).

    Args:
        values: a 1-D sample (exact zeros are left out).

    Returns:
        ``(D, p_value)``: the KS distance between the non-zero values and their mirror image
        (a fraction of the non-zero values), and the p-value from the sign-flip null —
        exact up to :data:`EXACT_MIRROR_KS_MAX` non-zero values, the Brownian limit beyond.
        ``(nan, nan)`` when there are no non-zero values.

    >>> D, p = mirror_ks_test(np.array([1.0, -2.0, 3.0, -4.0]))  # signs +, -, +, - by |v| desc.
    >>> D, p  # the walk -1, 0, -1, 0 reaches 1: certain under the null
    (0.25, 1.0)
    """
    v = np.asarray(values, dtype=float).ravel()
    nz = v[v != 0]
    m = nz.size
    if m == 0:
        return math.nan, math.nan
    d, groups = _mirror_ks_statistic(nz)
    if m <= EXACT_MIRROR_KS_MAX:
        p = _walk_tail_exact(groups, d)
    else:
        p = _brownian_tail(d / math.sqrt(m))
    return d / m, p


# -- summary statistics ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SymmetryStats:
    r"""Symmetry statistics of a sample of values (module docstring for the definitions).

    Attributes:
        n: sample size (zeros included).
        mean, std: sample mean and standard deviation (``ddof = 1``).
        mean_over_std: ``mean / std`` (NaN when ``std = 0``).
        skewness: :math:`m_3/m_2^{3/2}` (``1/n`` moments; NaN when ``m_2 = 0``).
        excess_kurtosis: :math:`m_4/m_2^2 - 3`.
        frac_positive: fraction of the non-zero values that are > 0 (NaN if none).
        frac_zero: fraction of values exactly 0.
        mirror_ks: the KS distance between the non-zero values and their mirror image.
        sym_test_pvalue: p-value of the mirror-KS test of ``v`` against ``-v``.
        wilcoxon_pvalue: p-value of Wilcoxon's signed-rank test (non-zero values).
        sign_test_pvalue: p-value of the exact binomial sign test (non-zero values).
    """

    n: int
    mean: float
    std: float
    mean_over_std: float
    skewness: float
    excess_kurtosis: float
    frac_positive: float
    frac_zero: float
    mirror_ks: float
    sym_test_pvalue: float
    wilcoxon_pvalue: float
    sign_test_pvalue: float

    sym_test: str = "mirror Kolmogorov-Smirnov of v against -v, sign-flip null"

    def as_dict(self) -> dict:
        """The fields as a plain dict (JSON-ready up to NaN)."""
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


def symmetry_stats(values: np.ndarray) -> SymmetryStats:
    r"""Symmetry statistics of a sample (module docstring).

    Args:
        values: 1-D float sample; at least 2 values.

    Raises:
        ShapeError: for a sample that is not 1-D.
        ConfigError: for fewer than 2 values or non-finite values.

    >>> s = symmetry_stats(np.array([-2.0, -1.0, 0.0, 1.0, 2.0]))
    >>> s.mean, s.skewness, s.frac_positive, s.frac_zero
    (0.0, 0.0, 0.5, 0.2)
    """
    from scipy import stats

    v = np.asarray(values, dtype=float)
    if v.ndim != 1:
        raise ShapeError(f"symmetry statistics take a 1-D sample, got shape {v.shape}")
    if v.size < 2:
        raise ConfigError(f"symmetry statistics need at least 2 values, got {v.size}")
    if not np.all(np.isfinite(v)):
        raise ConfigError("the sample contains non-finite values")
    n = v.size
    mean = float(v.mean())
    c = v - mean
    m2 = float(np.mean(c * c))
    std = float(math.sqrt(m2 * n / (n - 1)))
    if m2 > 0:
        skew = float(np.mean(c**3) / m2**1.5)
        kurt = float(np.mean(c**4) / m2**2 - 3.0)
    else:
        skew = kurt = math.nan
    nz = v[v != 0]
    n_pos = int(np.count_nonzero(nz > 0))
    m = nz.size
    if m:
        d, p_ks = mirror_ks_test(nz)
        p_sign = float(stats.binomtest(n_pos, m, 0.5).pvalue)
        ties = np.unique(np.abs(nz)).size < m
        method = "exact" if m <= 50 and not ties else "asymptotic"
        p_wil = float(stats.wilcoxon(nz, method=method).pvalue) if m >= 2 else math.nan
    else:
        d = p_ks = p_sign = p_wil = math.nan
    return SymmetryStats(
        n=n,
        mean=mean,
        std=std,
        mean_over_std=mean / std if std > 0 else math.nan,
        skewness=skew,
        excess_kurtosis=kurt,
        frac_positive=n_pos / m if m else math.nan,
        frac_zero=(n - m) / n,
        mirror_ks=d,
        sym_test_pvalue=p_ks,
        wilcoxon_pvalue=p_wil,
        sign_test_pvalue=p_sign,
    )


# -- sampled circuits and perturbations -----------------------------------------------------------


def sample_layers(L: int, n: int, order: int, rng: np.random.Generator) -> np.ndarray:
    """Layers to differentiate out, per draw: ``(n, order)`` ints in ``[1, L]``.

    ``order = 1``: one layer uniform in ``1..L``; ``order = 2``: an unordered pair ``l < l'``
    uniform among the ``L(L-1)/2`` pairs (needs ``L ≥ 2``); ``order = 0``: shape ``(n, 0)``.
    """
    if order == 0:
        return np.zeros((n, 0), dtype=np.int64)
    if order == 1:
        return rng.integers(1, L + 1, size=(n, 1))
    if order == 2:
        if L < 2:
            raise ConfigError(f"second-order perturbations need at least 2 layers, got L = {L}")
        pairs = np.array(list(itertools.combinations(range(1, L + 1), 2)), dtype=np.int64)
        return pairs[rng.integers(0, len(pairs), size=n)]
    raise ConfigError(f"order must be 0, 1 or 2, got {order!r}")


@dataclass(frozen=True)
class CircuitSample:
    """Sampled values of one order.

    Attributes:
        order: ``"psi"``, ``"omega1"`` or ``"omega2"``.
        values: ``(n,)`` the sampled values.
        inputs: ``(n,)`` the input each draw used.
        paths: ``(n, L)`` the circuits.
        layers: ``(n, k)`` the layers differentiated out (``k = 0, 1, 2``).
    """

    order: str
    values: np.ndarray
    inputs: np.ndarray
    paths: np.ndarray
    layers: np.ndarray

    @property
    def stats(self) -> SymmetryStats:
        """:func:`symmetry_stats` of the values."""
        return symmetry_stats(self.values)


def sample_perturbations(
    net: LayeredNetwork,
    x: np.ndarray,
    gates=None,
    *,
    n: int = 10_000,
    orders: Sequence[str] = ORDERS,
    rng: np.random.Generator | int | None = None,
) -> dict[str, CircuitSample]:
    r"""Uniformly sampled :math:`\Psi`, :math:`\Omega^{(l)}` and :math:`\Omega^{(l,l')}`.

    Each draw picks an input uniformly, a circuit uniformly and (for the perturbations) the
    layer(s) differentiated out uniformly (module docstring). The three orders use independent
    draws.

    Args:
        net: the network.
        x: inputs ``(B, n_0)`` (or one ``(n_0,)``).
        gates: ``L-1`` gate layers ``(B, n_l)``; ``None``: the ReLU gates of each input.
        n: draws per order.
        orders: any of :data:`ORDERS` (``omega2`` needs ``L ≥ 2``).
        rng: a numpy Generator or a seed.

    Returns:
        ``{order: CircuitSample}``.

    Raises:
        ConfigError: for an unknown order, ``n < 2``, ``omega2`` with one layer.
        ShapeError: for inputs or gates that do not fit.

    >>> net = LayeredNetwork.he_normal((3, 4, 3, 1), seed=0)
    >>> s = sample_perturbations(net, np.ones(3), n=5, rng=0)
    >>> sorted(s), s["omega2"].layers.shape
    (['omega1', 'omega2', 'psi'], (5, 2))
    """
    check_network(net)
    rng = _as_rng(rng)
    n = check_int("the number of sampled circuits", n, 2)
    for o in orders:
        if o not in ORDERS:
            raise ConfigError(f"unknown order {o!r}; choose from {', '.join(ORDERS)}")
    xs, hs, _ = check_inputs(net, x, gates)
    B = xs.shape[0]
    L = net.depth
    index = PathIndex.from_network(net)
    out = {}
    for o in orders:
        k = ORDERS.index(o)
        paths = index.sample_paths(int(n), rng)
        layers = sample_layers(L, int(n), k, rng)
        which = rng.integers(0, B, size=int(n))
        vals = np.empty(int(n))
        for b in np.unique(which):
            sel = np.flatnonzero(which == b)
            wl = tuple(layers[sel, j] for j in range(k))
            vals[sel] = sampled_circuit_values(
                net, xs[b], [h[b] for h in hs], paths[sel], wrt_layers=wl
            )
        out[o] = CircuitSample(o, vals, which, paths, layers)
    return out


def sample_conv_perturbations(
    circuits: Sequence,
    *,
    n: int = 10_000,
    orders: Sequence[str] = ORDERS,
    rng: np.random.Generator | int | None = None,
) -> dict[str, CircuitSample]:
    r"""The conv-net twin of :func:`sample_perturbations`: uniformly sampled :math:`\Psi`,
    :math:`\Omega^{(l)}`, :math:`\Omega^{(l,l')}` of a conv net.

    Each draw picks one of the inputs uniformly (its :class:`~umwelt.circuits.ConvCircuits`,
    which holds the input, gates and max-pool selections), a circuit of it uniformly
    (:meth:`~umwelt.circuits.ConvCircuits.sample_paths`) and the layer(s) differentiated out
    uniformly. Inputs are weighted equally even where their numbers of circuits differ.

    Args:
        circuits: one :class:`~umwelt.circuits.ConvCircuits` per input.
        n, orders, rng: as :func:`sample_perturbations`.

    Returns:
        ``{order: CircuitSample}`` (``paths`` are ``(n, D)`` units of each input's graph).
    """
    rng = _as_rng(rng)
    n = check_int("the number of sampled circuits", n, 2)
    if not circuits:
        raise ConfigError("no inputs to sample circuits of")
    for o in orders:
        if o not in ORDERS:
            raise ConfigError(f"unknown order {o!r}; choose from {', '.join(ORDERS)}")
    D = circuits[0].depth
    out = {}
    for o in orders:
        k = ORDERS.index(o)
        layers = sample_layers(D, int(n), k, rng)
        which = rng.integers(0, len(circuits), size=int(n))
        paths = np.zeros((int(n), D), dtype=np.int64)
        vals = np.empty(int(n))
        for b in np.unique(which):
            sel = np.flatnonzero(which == b)
            p = circuits[b].sample_paths(sel.size, rng)
            paths[sel] = p
            vals[sel] = circuits[b].values(p, tuple(layers[sel, j] for j in range(k)))
        out[o] = CircuitSample(o, vals, which, paths, layers)
    return out


# -- assemblies in closed form, and their moments over initializations ----------------------------


def assembly_entries(
    net: LayeredNetwork,
    x: np.ndarray,
    gates=None,
    hessian_entries: np.ndarray | None = None,
) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    r"""The assemblies of order 0, 1, 2 of a net, exactly, with the gates fixed.

    With :math:`x_l = \mathrm{dg}(h_l) z_l`, :math:`z_{l+1} = W_{l+1}^\top x_l` and
    :math:`\delta_l = \partial f/\partial z_l = \mathrm{dg}(h_l) W_{l+1} \delta_{l+1}`
    (:math:`\delta_L = 1`):

    .. math::
        \frac{\partial f}{\partial W^l_{ab}} = x_{l-1,a}\,\delta_{l,b}, \qquad
        \frac{\partial^2 f}{\partial W^l_{ab}\,\partial W^{l'}_{cd}}
        = x_{l-1,a}\, M^{l,l'}_{bc}\, \delta_{l',d} \quad (l < l'),

    with :math:`M^{l,l'} = \mathrm{dg}(h_l) W_{l+1} \mathrm{dg}(h_{l+1}) \cdots W_{l'-1}
    \mathrm{dg}(h_{l'-1})`. These are the sums of :math:`\Psi`, :math:`\Omega^{(l)}` and
    :math:`\Omega^{(l,l')}` over the circuits through the weights (eq. 11, 16, 19).

    Args:
        net: the network.
        x: inputs ``(B, n_0)``.
        gates: ``L-1`` layers ``(B, n_l)``; ``None``: ReLU gates.
        hessian_entries: ``(E, 6)`` int rows ``(l, a, b, l', c, d)`` with ``l ≠ l'``.

    Returns:
        ``(f (B,), [∂f/∂W^l (B, n_{l-1}, n_l)], hess (B, E))``.
    """
    xs, hs, _ = check_inputs(net, x, gates)
    L = net.depth
    B = xs.shape[0]
    acts = [xs]  # x_0 .. x_{L-1}, each (B, n_l)
    for l in range(1, L):
        acts.append(hs[l - 1] * (acts[-1] @ net.weights[l - 1]))
    f = (acts[-1] @ net.weights[L - 1])[:, 0]  # (B,)
    deltas = [None] * (L + 1)
    deltas[L] = np.ones((B, 1))
    for l in range(L - 1, 0, -1):
        deltas[l] = hs[l - 1] * (deltas[l + 1] @ net.weights[l].T)  # (B, n_l)
    grads = [acts[l - 1][:, :, None] * deltas[l][:, None, :] for l in range(1, L + 1)]
    if hessian_entries is None:
        return f, grads, np.zeros((B, 0))
    e = np.asarray(hessian_entries, dtype=np.int64).reshape(-1, 6)
    hess = np.zeros((B, e.shape[0]))
    lo = np.minimum(e[:, 0], e[:, 3])
    swap = e[:, 0] > e[:, 3]
    first = np.where(swap[:, None], e[:, 3:6], e[:, 0:3])  # (l, a, b) with l < l'
    second = np.where(swap[:, None], e[:, 0:3], e[:, 3:6])
    if np.any(e[:, 0] == e[:, 3]):
        raise ConfigError("Hessian entries must join weights of two different layers")
    for l in np.unique(lo):
        idx = np.flatnonzero(first[:, 0] == l)
        bs = first[idx, 2]
        V = np.zeros((B, idx.size, net.widths[l]))  # rows b of M^{l, l+1} = dg(h_l)
        V[:, np.arange(idx.size), bs] = hs[l - 1][:, bs]
        for lp in range(l + 1, L + 1):  # V = rows of M^{l, lp}
            here = np.flatnonzero(second[idx, 0] == lp)
            if here.size:
                j = idx[here]
                c, d = second[j, 1], second[j, 2]
                a = first[j, 1]
                hess[:, j] = acts[l - 1][:, a] * V[:, here, c] * deltas[lp][:, d]
            if lp < L:  # M^{l, lp+1} = M^{l, lp} W_lp dg(h_lp)
                V = (V @ net.weights[lp - 1]) * hs[lp - 1][:, None, :]
    return f, grads, hess


def _sample_hessian_entries(widths: Sequence[int], n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` entries ``(l, a, b, l', c, d)`` uniform over the Hessian entries with ``l ≠ l'``."""
    sizes = np.array([a * b for a, b in itertools.pairwise(widths)], dtype=float)
    L = sizes.size
    P = np.outer(sizes, sizes)
    np.fill_diagonal(P, 0.0)
    P = P.ravel() / P.sum()
    k = rng.choice(L * L, size=n, p=P)
    l1, l2 = k // L + 1, k % L + 1
    out = np.empty((n, 6), dtype=np.int64)
    for j, l in ((0, l1), (3, l2)):
        out[:, j] = l
        out[:, j + 1] = rng.integers(0, np.array(widths)[l - 1])
        out[:, j + 2] = rng.integers(0, np.array(widths)[l])
    return out


@dataclass(frozen=True)
class AssemblyMoments:
    r"""Moments of the assemblies over initializations, per depth and width.

    Arrays are ``(len(depths), len(widths))``; ``mean[k]``, ``second[k]`` for ``k`` in
    ``"f"``, ``"grad"``, ``"hess"`` (NaN for ``hess`` at ``L = 1``), with standard errors
    ``mean_se``/``second_se`` across the ``nets`` independent initializations (entries of one
    net are correlated, so nets are the unit of replication).

    Attributes:
        depths: weight layers ``L``.
        widths: ``n`` (every layer below the output, the input included).
        nets, inputs, entries: nets per cell, standard-normal inputs per net, Hessian entries
            sampled per net.
        gain, temperature: the He gain and the gates' temperature (0: ReLU gates).
    """

    depths: tuple[int, ...]
    widths: tuple[int, ...]
    mean: dict[str, np.ndarray]
    mean_se: dict[str, np.ndarray]
    second: dict[str, np.ndarray]
    second_se: dict[str, np.ndarray]
    nets: int
    inputs: int
    entries: int
    gain: float
    temperature: float

    def as_dict(self) -> dict:
        """Plain lists, for JSON."""
        return {
            "depths": list(self.depths),
            "widths": list(self.widths),
            "nets": self.nets,
            "inputs": self.inputs,
            "entries": self.entries,
            "gain": self.gain,
            "temperature": self.temperature,
            **{
                name: {k: v.tolist() for k, v in getattr(self, name).items()}
                for name in ("mean", "mean_se", "second", "second_se")
            },
        }


def assembly_moments(
    depths: Sequence[int] = (1, 2, 3, 4, 6, 8),
    widths: Sequence[int] = (8, 16, 32, 64),
    *,
    nets: int = 16,
    inputs: int = 4,
    entries: int = 64,
    gain: float = math.sqrt(2.0),
    temperature: float = 0.0,
    seed: int = 0,
) -> AssemblyMoments:
    r"""Mean and second moment of ``f``, gradient entries and Hessian entries at initialization.

    For each depth ``L`` and width ``n``: ``nets`` He-normal nets of widths ``(n, …, n, 1)``
    (seeded from ``seed``, ``L``, ``n`` and the net's number), each with ``inputs`` standard-normal
    inputs and gates (ReLU, or sampled at ``temperature``); per net the average over its inputs
    of ``f`` and ``f²``, of every gradient entry and its square, and of ``entries`` Hessian
    entries drawn uniformly among those with ``l ≠ l'`` and their squares; then the mean and
    standard error across nets (module docstring).

    Raises:
        ConfigError: for empty or non-positive depths or widths, counts < 1 (``nets`` < 2), a
            bad gain or temperature.

    >>> m = assembly_moments((1, 2), (4,), nets=2, inputs=2, entries=4)
    >>> m.second["f"].shape, bool(np.isnan(m.second["hess"][0, 0]))
    ((2, 1), True)
    """
    from umwelt.gates import check_temperature

    ds = parse_widths(depths, what="depths")
    ws = parse_widths(widths, what="widths")
    nets, inputs, entries = (
        check_int(name, v, low)
        for name, v, low in (("nets", nets, 2), ("inputs", inputs, 1), ("entries", entries, 1))
    )
    g = check_positive("gain", gain)
    T = check_temperature(temperature)
    keys = ("f", "grad", "hess")
    shape = (len(ds), len(ws))
    res = {n: {k: np.full(shape, np.nan) for k in keys} for n in ("m", "mse", "s", "sse")}
    for i, L in enumerate(ds):
        for j, n in enumerate(ws):
            per = {k: np.full((int(nets), 2), np.nan) for k in keys}  # (net, [mean, mean sq])
            for r in range(int(nets)):
                ss = np.random.SeedSequence([int(seed), int(L), int(n), r])
                net_seed, in_seed = (int(s) for s in ss.generate_state(2))
                widths_ = (n,) * L + (1,)
                net = LayeredNetwork.he_normal(widths_, seed=net_seed, gain=g)
                rng = np.random.default_rng(in_seed)
                x = rng.normal(size=(int(inputs), n))
                gates = None if T == 0 else net.sample(x, T, rng).gates
                he = _sample_hessian_entries(widths_, int(entries), rng) if L >= 2 else None
                f, grads, hess = assembly_entries(net, x, gates, he)
                gall = np.concatenate([gr.reshape(gr.shape[0], -1) for gr in grads], axis=1)
                per["f"][r] = f.mean(), np.mean(f * f)
                per["grad"][r] = gall.mean(), np.mean(gall * gall)
                if L >= 2:
                    per["hess"][r] = hess.mean(), np.mean(hess * hess)
            for k in keys:
                if np.isnan(per[k]).all():
                    continue
                res["m"][k][i, j] = per[k][:, 0].mean()
                res["mse"][k][i, j] = per[k][:, 0].std(ddof=1) / math.sqrt(int(nets))
                res["s"][k][i, j] = per[k][:, 1].mean()
                res["sse"][k][i, j] = per[k][:, 1].std(ddof=1) / math.sqrt(int(nets))
    return AssemblyMoments(
        depths=ds,
        widths=ws,
        mean=res["m"],
        mean_se=res["mse"],
        second=res["s"],
        second_se=res["sse"],
        nets=int(nets),
        inputs=int(inputs),
        entries=int(entries),
        gain=g,
        temperature=T,
    )
