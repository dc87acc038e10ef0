r"""Exact enumeration of gate configurations, and the Monte Carlo estimators it checks.

Given an input :math:`x`, the gates of all hidden layers of a :class:`LayeredNetwork` form one
joint configuration :math:`h = (h_1, \dots, h_{L-1})` with probability (THEORY.md §1)

.. math::
    \mu(h \mid x) = \prod_{l=1}^{L-1} \mu_l(h_l \mid O_{l-1}),
    \qquad \mu_l(h_l \mid O_{l-1}) = \prod_i \mathrm{Bern}\big(h_{l,i};\, \sigma(z_{l,i}/T)\big).

The exact marginal of one layer's gates given only :math:`x` sums over every configuration
below it (the equation before eq. 7 of Li, *Complexity from Adaptive-Symmetries Breaking*),

.. math::
    \mu_l(h_l \mid x) = \sum_{h_1..h_{l-1}} \prod_{k \le l} \mu_k(h_k \mid O_{k-1}),

and likewise :math:`\mathbb{E}[f(x)]` and :math:`\mathrm{Var}[f(x)]` sum over all
:math:`2^{n_1 + \dots + n_{L-1}}` configurations. This is feasible only for tiny networks
(:data:`MAX_CONFIGURATIONS` per input by default) and is the reference that Monte Carlo
estimates (:func:`monte_carlo`) and the ReLU shortcut (``T = 0``) are measured against.

Two implementations compute :func:`exact_enumeration`: a numba kernel
(:func:`umwelt._kernels.exact_moments`, depth-first, the last hidden layer summed in closed
form) and a plain-numpy twin that enumerates every configuration as a bit array and weighs
:meth:`LayeredNetwork.output` by :math:`\exp` :meth:`LayeredNetwork.log_prob`; the twin is the
oracle the kernel is tested against.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from umwelt import _kernels
from umwelt import gates as gl
from umwelt.errors import ConfigError, EnumerationLimitError
from umwelt.network import LayeredNetwork

__all__ = [
    "MAX_CONFIGURATIONS",
    "ExactResult",
    "MonteCarloResult",
    "exact_enumeration",
    "layer_distribution",
    "monte_carlo",
    "n_configurations",
]

MAX_CONFIGURATIONS: int = 2**22
"""Default limit on gate configurations per input (about a second of work)."""

_MAX_LAYER_WIDTH = 20  # layer_distribution returns 2^n probabilities per input
_BACKENDS = ("numba", "numpy")
_CHUNK = 1 << 15  # configurations per block in the numpy twin


@dataclass(frozen=True)
class ExactResult:
    r"""Exact gate marginals and output moments, summed over every gate configuration.

    Attributes:
        marginals: ``L-1`` arrays, ``marginals[l-1]`` of shape ``(B, n_l)``:
            :math:`P(h_{l,i} = 1 \mid x)`.
        mean: :math:`\mathbb{E}[f(x)]`, shape ``(B,)``.
        var: :math:`\mathrm{Var}[f(x)]` over the gate configurations, shape ``(B,)``.
        n_configurations: :math:`2^{n_1 + \dots + n_{L-1}}`, configurations per input.
    """

    marginals: list[np.ndarray]
    mean: np.ndarray
    var: np.ndarray
    n_configurations: int


@dataclass(frozen=True)
class MonteCarloResult:
    r"""Monte Carlo estimates of :class:`ExactResult`'s quantities, with standard errors.

    A standard error is exactly 0 only when every draw agreed (a gate never flipped, or ``f``
    never changed); that is "no variation seen in S draws", not a measured zero error, and the
    only statement the draws then support is :attr:`rule_of_three`.

    Attributes:
        marginals: ``L-1`` arrays ``(B, n_l)``, the fraction of samples with each gate open.
        marginals_se: their standard errors ``s / \sqrt{S}``, same shapes; exactly 0 where the
            gate took one value in every draw (the marginal is exactly 0 or 1).
        mean: sample mean of ``f(x)``, shape ``(B,)``.
        mean_se: its standard error, shape ``(B,)``; exactly 0 where :attr:`constant`.
        var: unbiased sample variance of ``f(x)``, shape ``(B,)``; exactly 0 where
            :attr:`constant`.
        var_se: its standard error, shape ``(B,)``; exactly 0 where :attr:`constant`.
        n_samples: samples per input ``S``.
        constant: shape ``(B,)``, bool: every draw of input ``b`` gave the same output (or the
            same gate configuration, which gives the same output up to round-off).
    """

    marginals: list[np.ndarray]
    marginals_se: list[np.ndarray]
    mean: np.ndarray
    mean_se: np.ndarray
    var: np.ndarray
    var_se: np.ndarray
    n_samples: int
    constant: np.ndarray

    @property
    def rule_of_three(self) -> float:
        r"""``3/S``: the 95 % upper bound on the probability of an outcome never seen in S draws.

        No draw out of :math:`S` showing an outcome of probability :math:`q` has chance
        :math:`(1-q)^S \le e^{-qS}`, below 5 % once :math:`q > 3/S`; the exact one-sided
        Clopper–Pearson bound :math:`1 - 0.05^{1/S}` is a little smaller, so ``3/S`` is safe.

        >>> net = LayeredNetwork([[[1.0]], [[1.0]]])
        >>> monte_carlo(net, np.array([[1.0]]), 0.0, 2000, seed=0).rule_of_three
        0.0015
        """
        return 3.0 / self.n_samples


def n_configurations(net: LayeredNetwork) -> int:
    r"""Number of joint gate configurations per input, :math:`2^{n_1 + \dots + n_{L-1}}`.

    >>> n_configurations(LayeredNetwork.he_normal((3, 4, 3, 1), seed=0))
    128
    """
    return 2**net.n_gates


def _check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int | np.integer) or limit < 1:
        raise ConfigError(f"limit must be a positive integer, got {limit!r}")
    return int(limit)


def _power_of_two(k: int) -> str:
    """``2^k`` as text: ``2^20 = 1048576``, ``2^20000 ≈ 3.98e6020`` (a long int is not printed)."""
    if k <= 64:
        return f"2^{k} = {2**k}"
    exponent = k * math.log10(2)
    e = math.floor(exponent)
    return f"2^{k} ≈ {10 ** (exponent - e):.3g}e{e}"


def _refuse_over_limit(n_bits: int, limit: int, what: str) -> None:
    if n_bits >= int(limit).bit_length():  # 2^n_bits > limit, without the long integer
        raise EnumerationLimitError(
            f"{what} needs {_power_of_two(n_bits)} gate configurations per input, "
            f"over the limit of {limit}; use monte_carlo() instead"
        )


def exact_enumeration(
    net: LayeredNetwork,
    x: np.ndarray,
    T: float,
    *,
    limit: int = MAX_CONFIGURATIONS,
    backend: str = "numba",
) -> ExactResult:
    r"""Gate marginals, :math:`\mathbb{E}[f]` and :math:`\mathrm{Var}[f]`, by exact enumeration.

    .. math::
        P(h_{l,i}=1 \mid x) = \sum_h \mu(h \mid x)\, h_{l,i}, \quad
        \mathbb{E}[f] = \sum_h \mu(h \mid x)\, f(x; h), \quad
        \mathrm{Var}[f] = \sum_h \mu(h \mid x)\, (f(x; h) - \mathbb{E}[f])^2.

    At ``T = 0`` exactly one configuration has probability 1 (the ReLU gates), so the marginals
    are the ReLU gates, the mean is the ReLU output and the variance is 0; at ``T = inf`` every
    layer-1 marginal is 1/2.

    The ``"numba"`` backend walks the configurations depth-first, one layer at a time, skips
    zero-probability branches and sums the last hidden layer in closed form (its gates are
    independent given the layers below); the ``"numpy"`` backend is the brute-force reference.

    Args:
        net: the network, ``L ≥ 1`` weight layers.
        x: inputs ``(B, n_0)`` (or one input ``(n_0,)``, treated as ``B = 1``).
        T: temperature in ``[0, inf]``.
        limit: refuse networks with more configurations per input than this.
        backend: ``"numba"`` (fast) or ``"numpy"`` (the reference twin).

    Returns:
        :class:`ExactResult` with marginals ``(B, n_l)`` per hidden layer, mean and var ``(B,)``.

    Raises:
        EnumerationLimitError: when :func:`n_configurations` exceeds ``limit``.
        ConfigError: for a bad temperature, limit or backend.
        ShapeError: when ``x`` does not fit the network.

    >>> net = LayeredNetwork([[[1.0], [2.0]], [[2.0]]])  # widths (2, 1, 1)
    >>> r = exact_enumeration(net, np.array([[1.0, 1.0]]), float("inf"))
    >>> r.marginals[0].tolist(), r.mean.tolist(), r.var.tolist()  # z = 3, f = 6 h
    ([[0.5]], [3.0], [9.0])
    """
    T = gl.check_temperature(T)
    limit = _check_limit(limit)
    if backend not in _BACKENDS:
        raise ConfigError(f"backend must be one of {_BACKENDS}, got {backend!r}")
    x = net._check_input(x)
    _refuse_over_limit(net.n_gates, limit, "exact enumeration")
    if backend == "numpy":
        return _exact_numpy(net, x, T)
    return _exact_numba(net, x, T)


def _pack(net: LayeredNetwork) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The weights as ``(wflat, woff, widths)`` for the kernels (see :mod:`umwelt._kernels`)."""
    wflat = np.concatenate([np.ascontiguousarray(w).ravel() for w in net.weights])
    woff = np.concatenate([[0], np.cumsum([w.size for w in net.weights])]).astype(np.int64)
    return wflat, woff, np.asarray(net.widths, dtype=np.int64)


def _exact_numba(net: LayeredNetwork, x: np.ndarray, T: float) -> ExactResult:
    B = x.shape[0]
    hw = net.hidden_widths
    if not hw:  # no gates: f = x @ W_1 is deterministic
        return ExactResult([], (x @ net.weights[0])[:, 0], np.zeros(B), 1)
    wflat, woff, widths = _pack(net)
    marg = np.zeros((B, len(hw), max(hw)))
    mean = np.zeros(B)
    var = np.zeros(B)
    _kernels.exact_moments(np.ascontiguousarray(x), wflat, woff, widths, T, marg, mean, var)
    marginals = [marg[:, l, :n].copy() for l, n in enumerate(hw)]
    return ExactResult(marginals, mean, var, n_configurations(net))


def _config_gates(start: int, stop: int, hidden_widths: tuple[int, ...]) -> list[np.ndarray]:
    """Gates of configurations ``start..stop-1``: bit ``j`` of the index is global gate ``j``
    (layer 1's gates first), one bool array ``(C, n_l)`` per layer."""
    s = np.arange(start, stop, dtype=np.int64)
    bits = ((s[:, None] >> np.arange(sum(hidden_widths))) & 1).astype(bool)  # (C, S)
    bounds = np.cumsum((0, *hidden_widths))
    return [bits[:, a:b] for a, b in itertools.pairwise(bounds)]


def _exact_numpy(net: LayeredNetwork, x: np.ndarray, T: float) -> ExactResult:
    """The plain-numpy twin: every configuration, weighed by ``exp(net.log_prob)``.

    Blocks of configurations are combined with Chan's parallel update of the weighted mean and
    sum of squared deviations, so the variance never suffers ``E[f²] − E[f]²`` cancellation.
    """
    B, n0 = x.shape
    hw = net.hidden_widths
    total = n_configurations(net)
    marginals = [np.zeros((B, n)) for n in hw]
    mean = np.zeros(B)
    var = np.zeros(B)
    for b in range(B):
        w_tot, mu, m2 = 0.0, 0.0, 0.0
        for start in range(0, total, _CHUNK):
            stop = min(start + _CHUNK, total)
            gates = _config_gates(start, stop, hw)
            xr = np.broadcast_to(x[b], (stop - start, n0))
            prob = np.exp(net.log_prob(xr, gates, T))  # (C,)
            f = net.output(xr, gates)  # (C,)
            for l, h in enumerate(gates):
                marginals[l][b] += prob @ h
            wc = prob.sum()
            if wc == 0.0:
                continue
            mc = (prob @ f) / wc
            m2c = prob @ (f - mc) ** 2
            delta = mc - mu
            w_new = w_tot + wc
            mu += delta * wc / w_new
            m2 += m2c + delta**2 * w_tot * wc / w_new
            w_tot = w_new
        mean[b] = mu
        var[b] = m2 / w_tot
    return ExactResult(marginals, mean, var, total)


def layer_distribution(
    net: LayeredNetwork,
    x: np.ndarray,
    T: float,
    layer: int,
    *,
    limit: int = MAX_CONFIGURATIONS,
) -> np.ndarray:
    r"""The exact joint law :math:`\mu_l(h_l \mid x)` of one hidden layer's gate vector.

    .. math::
        \mu_l(h_l \mid x) = \sum_{h_1..h_{l-1}} \Big[\prod_{k < l} \mu_k(h_k \mid O_{k-1})\Big]
        \prod_i \sigma(z_{l,i}/T)^{h_{l,i}}\, \sigma(-z_{l,i}/T)^{1 - h_{l,i}}.

    Configuration index ``k`` stands for the gate vector whose gate ``i`` is bit ``i`` of ``k``
    (``h_{l,i} = (k >> i) & 1``; gate 0 is the least significant bit).

    Args:
        net: the network.
        x: inputs ``(B, n_0)`` (or ``(n_0,)``).
        T: temperature in ``[0, inf]``.
        layer: which hidden layer, ``1 ≤ layer ≤ L-1`` (1-based, as in the paper).
        limit: refuse when :math:`2^{n_1 + \dots + n_l}` exceeds it.

    Returns:
        probabilities of shape ``(B, 2^{n_l})``; each row sums to 1.

    Raises:
        ConfigError: for a bad layer index, a layer wider than 20 gates, or a bad ``T``.
        EnumerationLimitError: when the layers up to ``layer`` have too many configurations.

    >>> net = LayeredNetwork([[[1.0, -1.0]], [[1.0], [1.0]]])  # widths (1, 2, 1)
    >>> layer_distribution(net, np.array([[2.0]]), 0.0, 1).tolist()  # z = (2, -2): h = (1, 0)
    [[0.0, 1.0, 0.0, 0.0]]
    """
    T = gl.check_temperature(T)
    limit = _check_limit(limit)
    n_hidden = net.depth - 1
    if isinstance(layer, bool) or not isinstance(layer, int | np.integer):
        raise ConfigError(f"layer must be an integer in 1..{n_hidden}, got {layer!r}")
    if not 1 <= layer <= n_hidden:
        raise ConfigError(f"layer must be in 1..{n_hidden} (the hidden layers), got {layer}")
    layer = int(layer)
    hw = net.hidden_widths
    n = hw[layer - 1]
    if n > _MAX_LAYER_WIDTH:
        raise ConfigError(
            f"layer {layer} has {n} gates, so 2^{n} joint probabilities per input; "
            f"at most {_MAX_LAYER_WIDTH} gates are supported"
        )
    x = net._check_input(x)
    _refuse_over_limit(sum(hw[:layer]), limit, f"the law of layer {layer}")

    B, n0 = x.shape
    prefix_widths = hw[: layer - 1]
    n_prefix = 2 ** sum(prefix_widths)
    chunk = max(1, (1 << 20) >> n)  # prefixes per block, so a block holds ≤ 2^20 numbers
    out = np.zeros((B, 2**n))
    for b in range(B):
        for start in range(0, n_prefix, chunk):
            stop = min(start + chunk, n_prefix)
            C = stop - start
            prefix = _config_gates(start, stop, prefix_widths)
            rest = [np.zeros((C, m), dtype=bool) for m in hw[layer - 1 :]]  # do not affect z_l
            zs = net.logits(np.broadcast_to(x[b], (C, n0)), prefix + rest)
            logp = sum(
                (gl.gate_log_prob(h, z, T) for h, z in zip(prefix, zs[: layer - 1], strict=True)),
                start=np.zeros(C),
            )
            a = gl.scaled_logits(zs[layer - 1], T)  # (C, n)
            p, q = expit(a), expit(-a)  # q = σ(−a) exactly, also at the T = 0 tie
            table = np.ones((C, 1))
            for i in range(n):  # doubling: after step i, bit i of the column index is gate i
                table = np.concatenate([table * q[:, i : i + 1], table * p[:, i : i + 1]], axis=1)
            out[b] += np.exp(logp) @ table
    return out


def monte_carlo(
    net: LayeredNetwork,
    x: np.ndarray,
    T: float,
    n_samples: int,
    *,
    seed: int | np.random.Generator,
) -> MonteCarloResult:
    r"""Estimate gate marginals and the moments of ``f(x)`` from ancestral samples.

    Draws ``S = n_samples`` configurations per input with :meth:`LayeredNetwork.sample` and
    returns, with standard errors,

    .. math::
        \hat p_{l,i} = \bar h_{l,i}, \quad \mathrm{se} = \sqrt{\hat p (1 - \hat p)/(S-1)}
        = s_h/\sqrt S; \qquad
        \hat m = \bar f, \quad \mathrm{se} = s_f/\sqrt S; \qquad
        \hat v = s_f^2, \quad \mathrm{se} = \sqrt{\big(m_4 - \tfrac{S-3}{S-1} s_f^4\big)/S},

    with :math:`s` the sample standard deviation (``ddof=1``) and :math:`m_4` the fourth
    central sample moment. The moments of ``f`` are taken about the first draw
    :math:`f^{(1)}` (deviations :math:`f - f^{(1)}`, then about their mean), so draws that
    agree cancel exactly: identical draws give standard errors of exactly 0, never the
    ``1e-18`` that ``f - mean(f)`` leaves in floating point.

    **When every draw agrees** a standard error of 0 says nothing about the error of the
    estimate; what the draws support is the rule of three (:attr:`MonteCarloResult.rule_of_three`):
    the outcome never seen has probability at most ``3/S`` (95 %). It applies to

    * a gate whose marginal is exactly 0 or 1: its flip probability
      :math:`P(h_{l,i} \ne \hat p_{l,i} \mid x) \le 3/S`;
    * an input where :attr:`~MonteCarloResult.constant`: the probability that a draw's output
      differs from the one seen, :math:`q = P(f \ne f^{(1)} \mid x) \le 3/S`, and, where every
      gate was constant too, the probability :math:`1 - \mu(h^{(1)} \mid x)` that a draw's gate
      configuration differs from the one seen. It bounds a probability, not the error of the
      mean: :math:`|\mathbb{E}[f] - f^{(1)}| \le q \max_h |f(x; h) - f^{(1)}|`.

    The same caveat holds in part when the draws do vary: configurations of probability
    below about ``3/S`` are likely unseen, and when they carry most of :math:`\mathrm{Var}[f]`
    both the variance and its standard error come out too small.

    Args:
        net: the network.
        x: inputs ``(B, n_0)`` (or ``(n_0,)``).
        T: temperature in ``[0, inf]``.
        n_samples: samples per input, at least 2.
        seed: an integer seed or a generator (used as is).

    Returns:
        :class:`MonteCarloResult`, arrays ``(B, n_l)`` and ``(B,)``.

    Raises:
        ConfigError: for ``n_samples < 2`` or a bad temperature.
        ShapeError: when ``x`` does not fit the network.

    >>> net = LayeredNetwork([[[1.0, -1.0]], [[1.0], [1.0]]])  # z = (x, -x), f = h_1 x - h_2 x
    >>> r = monte_carlo(net, np.array([[0.3]]), 0.01, 1000, seed=0)  # |z|/T = 30: no flips
    >>> r.constant.tolist(), r.mean_se.tolist(), r.var_se.tolist(), r.marginals_se[0].tolist()
    ([True], [0.0], [0.0], [[0.0, 0.0]])
    """
    T = gl.check_temperature(T)
    if isinstance(n_samples, bool) or not isinstance(n_samples, int | np.integer):
        raise ConfigError(f"n_samples must be an integer ≥ 2, got {n_samples!r}")
    if n_samples < 2:
        raise ConfigError(f"n_samples must be an integer ≥ 2, got {n_samples}")
    S = int(n_samples)
    x = net._check_input(x)
    rng = np.random.default_rng(seed)
    B = x.shape[0]
    hw = net.hidden_widths
    marg = [np.zeros((B, n)) for n in hw]
    marg_se = [np.zeros((B, n)) for n in hw]
    mean, mean_se, var, var_se = (np.zeros(B) for _ in range(4))
    constant = np.zeros(B, dtype=bool)
    for b in range(B):
        s = net.sample(np.broadcast_to(x[b], (S, x.shape[1])), T, rng)
        for l, h in enumerate(s.gates):
            p = np.count_nonzero(h, axis=0) / S  # (n_l,), exactly 0 or 1 for a constant gate
            marg[l][b] = p
            marg_se[l][b] = np.sqrt(p * (1.0 - p) / (S - 1))
        f = s.output  # (S,)
        same_gates = all(bool(np.all(h == h[0])) for h in s.gates)
        g = f - f[0]  # exactly 0 for every draw equal to the first
        g_mean = float(np.mean(g))
        mean[b] = f[0] + g_mean
        if same_gates or np.ptp(g) == 0.0:  # no variation seen: any spread left is round-off
            constant[b] = True
            continue  # mean_se, var and var_se stay exactly 0
        d = g - g_mean
        s2 = float(d @ d) / (S - 1)
        m4 = float(np.mean(d**4))
        mean_se[b] = math.sqrt(s2 / S)
        var[b] = s2
        var_se[b] = math.sqrt(max(m4 - (S - 3) / (S - 1) * s2**2, 0.0) / S)
    return MonteCarloResult(marg, marg_se, mean, mean_se, var, var_se, S, constant)
