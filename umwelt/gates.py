r"""The gate law: binary neuronal gates at temperature :math:`T` (THEORY.md §1, eq. 2–8).

Given the logits :math:`z` of a layer, its gates are independent Bernoulli variables

.. math::
    \mu(h \mid z) = \prod_i \frac{\exp(h_i z_i / T)}{1 + \exp(z_i / T)},
    \qquad p_i = \sigma(z_i / T),

and the layer outputs :math:`x = \mathrm{dg}(h)\, z`. Two limits hold exactly:

* :math:`T = 0`: :math:`h_i = 1[z_i > 0]` (a tie :math:`z_i = 0` gives 0, eq. 7), so a sampled
  network *is* the ReLU network;
* :math:`T = \infty`: :math:`p_i = 1/2` (maximum entropy).

The mean-field output is :math:`\mathbb{E}[h_i z_i] = z_i\,\sigma(z_i/T) = T\,\mathrm{SiLU}(z_i/T)`.

Everything here goes through :func:`scaled_logits`, which returns :math:`a = z/T` with the two
limits written out (:math:`\pm\infty` at :math:`T=0`, :math:`0` at :math:`T=\infty`), so every
function is exact and free of overflow warnings for all :math:`T \in [0, \infty]` and any finite
logits.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import expit

from umwelt.errors import ConfigError, ShapeError

__all__ = [
    "check_temperature",
    "gate_entropy_bits",
    "gate_log_prob",
    "gate_probabilities",
    "mean_field",
    "relu_gates",
    "sample_gates",
    "scaled_logits",
]

_LN2 = math.log(2.0)


def check_temperature(T: float) -> float:
    """Return ``T`` as a float, or raise :class:`ConfigError` unless ``0 ≤ T ≤ inf``.

    >>> check_temperature(0.1)
    0.1
    >>> check_temperature(float("inf"))
    inf
    """
    try:
        t = float(T)
    except (TypeError, ValueError):
        raise ConfigError(f"temperature must be a number ≥ 0 (or inf), got {T!r}") from None
    if math.isnan(t) or t < 0:
        raise ConfigError(f"temperature must be a number ≥ 0 (or inf), got {T!r}")
    return t


def scaled_logits(z: np.ndarray, T: float) -> np.ndarray:
    r"""The natural parameter :math:`a = z / T` of each gate, with the limits made exact.

    At ``T = 0`` this is :math:`+\infty` where :math:`z > 0` and :math:`-\infty` elsewhere (the
    tie goes to the closed gate); at ``T = inf`` it is 0.

    Args:
        z: logits, any shape.
        T: temperature in ``[0, inf]``.

    Returns:
        float64 array of the shape of ``z``.
    """
    T = check_temperature(T)
    z = np.asarray(z, dtype=np.float64)
    if T == 0.0:
        return np.where(z > 0, np.inf, -np.inf)
    if math.isinf(T):
        return np.zeros_like(z)
    with np.errstate(over="ignore"):  # z/T = ±inf for tiny T is the correct limit
        return z / T


def gate_probabilities(z: np.ndarray, T: float) -> np.ndarray:
    r"""Probability :math:`p = \sigma(z/T)` that each gate is open.

    >>> gate_probabilities(np.array([-1.0, 0.0, 2.0]), 0.0).tolist()
    [0.0, 0.0, 1.0]
    >>> gate_probabilities(np.array([-1e6, 1e6]), float("inf")).tolist()
    [0.5, 0.5]
    """
    return expit(scaled_logits(z, T))


def relu_gates(z: np.ndarray) -> np.ndarray:
    """The ``T = 0`` gates ``1[z > 0]`` as a bool array (ties closed, eq. 7)."""
    return np.asarray(z) > 0


def gate_log_prob(h: np.ndarray, z: np.ndarray, T: float) -> np.ndarray:
    r"""Log-probability of the gate vectors ``h`` given logits ``z``, summed over the last axis.

    .. math::
        \log \mu(h \mid z) = \sum_i h_i \log\sigma(a_i) + (1 - h_i) \log\sigma(-a_i),
        \qquad \log\sigma(a) = -\log(1 + e^{-a}).

    At ``T = 0`` an impossible configuration has log-probability ``-inf``.

    Args:
        h: gates in {0, 1} (bool or numbers), shape ``(..., n)``.
        z: logits, same shape.
        T: temperature.

    Returns:
        array of shape ``(...)``.
    """
    h = np.asarray(h)
    z = np.asarray(z, dtype=np.float64)
    if h.shape != z.shape:
        raise ShapeError(f"gates of shape {h.shape} do not match logits of shape {z.shape}")
    a = scaled_logits(z, T)
    on = h.astype(bool)
    # log σ(a) for open gates, log σ(−a) for closed ones; logaddexp is exact at ±inf.
    lp = -np.logaddexp(0.0, np.where(on, -a, a))
    return lp.sum(axis=-1)


def sample_gates(z: np.ndarray, T: float, rng: np.random.Generator) -> np.ndarray:
    r"""Draw gates :math:`h_i \sim \mathrm{Bernoulli}(\sigma(z_i/T))` independently.

    Uses :math:`h = 1[u < p]` with :math:`u \sim U[0,1)`, which is exact at both limits: at
    ``T = 0``, :math:`p \in \{0, 1\}` and the sample is the ReLU gate (no random numbers are
    drawn then).

    Args:
        z: logits, any shape.
        T: temperature.
        rng: the source of randomness.

    Returns:
        bool array of the shape of ``z``.
    """
    p = gate_probabilities(z, T)
    if T == 0.0:
        return p > 0.5
    return rng.random(p.shape) < p


def mean_field(z: np.ndarray, T: float) -> np.ndarray:
    r"""The mean-field layer output :math:`\mathbb{E}[h z] = z\,\sigma(z/T)`.

    Equals ReLU at ``T = 0`` and ``z / 2`` at ``T = inf``.

    >>> z = np.array([-2.0, 0.0, 3.0])
    >>> bool(np.array_equal(mean_field(z, 0.0), np.maximum(z, 0.0)))  # (−2·0 is −0.0)
    True
    >>> mean_field(z, np.inf).tolist()
    [-1.0, 0.0, 1.5]
    """
    z = np.asarray(z, dtype=np.float64)
    return z * gate_probabilities(z, T)


def gate_entropy_bits(z: np.ndarray, T: float) -> np.ndarray:
    r"""Entropy of each gate in bits.

    In nats, :math:`H = \log(1+e^{a}) - a\,\sigma(a)`, which is even in :math:`a`; it is
    evaluated as :math:`\log(1+e^{-|a|}) + |a|\,\sigma(-|a|)`, two non-negative terms without
    cancellation. 0 at ``T = 0``, 1 at ``T = inf``.
    """
    a = scaled_logits(z, T)
    finite = np.isfinite(a)
    m = np.where(finite, np.abs(a), 0.0)
    nats = np.log1p(np.exp(-m)) + m * expit(-m)
    return np.where(finite, nats / _LN2, 0.0)
