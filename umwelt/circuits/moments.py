r"""The assembly moments of one net, a planted broken weight symmetry, and eq. 20's prediction.

Li, *Complexity from Adaptive-Symmetries Breaking* (eq. 20; THEORY.md §3–4), bounds the means
of the assemblies — ``f``, the gradient entries :math:`\partial f/\partial W^l_{ab}` and the
Hessian entries :math:`\partial^2 f/\partial W^l_{ab}\partial W^{l'}_{cd}` (orders
``k = 0, 1, 2``) — of a net whose layers hold :math:`\sqrt n^{1-\mu}` weights of broken symmetry
each by

.. math::
    \mathbb E\Big[\sum_{i} \delta^k \Psi_i\Big] \le
    O\Big(\big(\tfrac{c^2}{2}\big)^L + \frac{c^L}{\sqrt n^{L\mu}}\Big),

and says the second moments stay near :math:`c^{2L}`. Its argument: a circuit is a product of
one weight per layer, so a circuit's mean vanishes unless **every** weight left in it (the
``L - k`` not differentiated out) has a non-zero mean; what survives is the assembly of the
broken weights (the :math:`\mu` term), plus a residual from the correlation of gates and
weights (the :math:`(c^2/2)^L` term).

**One net** (:func:`net_assembly_moments`). A trained net is one draw, not an ensemble, so its
moments are taken over **inputs** (the unit of replication; entries of one input are
correlated): per input the value of ``f`` and its square, the average over every gradient entry
and of its square, and over ``entries`` Hessian entries drawn uniformly among those with
``l ≠ l'`` (seeded, so that every epoch of a run is measured on the same entries); then the
mean over inputs and its standard error. The gates are ReLU (``T = 0``) or sampled at ``T``.

**A planted broken symmetry** (:func:`plant_mean`): in each layer ``l`` a seeded, uniformly
drawn ``⌊fraction · n_{l-1} n_l + ½⌋`` of the weights are shifted by ``shift`` times the
layer's RMS weight, :math:`W_l \to W_l + S_l`. The positions depend only on the seed and the
widths, so every epoch of a run is planted at the same weights.

**The prediction** (:class:`NetMoments`), from the net's weights and the planted shifts:

* the **mean** of order ``k`` (the :math:`\mu` term made exact): the same assembly of the net
  :math:`S = (S_1, \dots, S_L)` of the planted shifts alone, with the measured net's gates and
  inputs. By multilinearity it is exactly the mean of the measured assembly over the sign flips
  :math:`W_l = \pm A_l + S_l` of the symmetric part :math:`A_l` **with the gates held fixed**
  (every circuit carries one factor of each layer, so any circuit through an :math:`A` weight
  averages out) — and over nets whose symmetric part has a law symmetric about 0, whenever the
  gates do not depend on the weights (``T = ∞``). With no planting it is 0. ReLU gates follow
  the weights' signs, so there the measured means also carry the residual the paper bounds by
  :math:`(c^2/2)^L`: rectified activations are not symmetric (the output layer's gradient
  entries :math:`x_{L-1,a} \ge 0` have a positive mean in any net);
* the **second moment** of ``f``: :math:`\mathbb E[f^2] = 2\,\langle x^2\rangle \prod_l c_l^2`
  with :math:`c_l^2 = n_{l-1}\langle W_l^2\rangle / 2` (``c = 1`` at He initialization,
  :math:`\langle x^2 \rangle = \|x\|^2/n_0` averaged over the inputs), exact at every ``T`` for
  independent weights of a law symmetric about 0 (each layer's logits are symmetric given the
  layer below, and :math:`\sigma(u) + \sigma(-u) = 1`), the paper's :math:`c^{2L}`;
* the **terms of the bound**: :math:`\prod_l c_l^2/2` and :math:`c^L/\sqrt n^{L\mu} =
  \prod_l c_l K_l / \sqrt{n_{l-1}}`, with :math:`K_l = \sqrt{n_{l-1}}^{\,1-\mu_l}` the
  number of broken (planted) weights of layer ``l``, i.e. :math:`\mu_l = 1 - 2\ln K_l /
  \ln n_{l-1}` (``inf`` without planting). The paper gives no constants: these are scales.

>>> import numpy as np
>>> from umwelt import LayeredNetwork
>>> net = LayeredNetwork.he_normal((4, 4, 1), seed=0)
>>> planted, plant = plant_mean(net, 0.5, 1.0, seed=0)
>>> plant.counts
(8, 2)
>>> x = np.random.default_rng(1).normal(size=(3, 4))
>>> m = net_assembly_moments(planted, x, planted=plant)  # ReLU gates of the planted net
>>> S = LayeredNetwork(plant.shifts)  # the μ term: the shifts' own assembly, the same gates
>>> bool(np.isclose(m.predicted_mean["f"], S.output(x, planted.relu_sample(x).gates).mean()))
True
>>> net_assembly_moments(net, x).predicted_mean  # nothing planted: no μ term
{'f': 0.0, 'grad': 0.0, 'hess': 0.0}
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from umwelt._checks import check_fraction, check_int, check_real
from umwelt.circuits._chain import check_network
from umwelt.circuits.symmetry import _sample_hessian_entries, assembly_entries
from umwelt.errors import ConfigError, ShapeError
from umwelt.network import LayeredNetwork

__all__ = [
    "ASSEMBLY_ORDERS",
    "NetMoments",
    "PlantedMean",
    "moments_series",
    "net_assembly_moments",
    "plant_mean",
]

ASSEMBLY_ORDERS: tuple[str, ...] = ("f", "grad", "hess")
"""The assemblies of order 0, 1, 2: the output, gradient entries, Hessian entries."""

_CHUNK_VALUES = 2**22  # values of one chunk of inputs' gradients or Hessian rows (32 MiB)


@dataclass(frozen=True)
class PlantedMean:
    r"""A broken weight symmetry planted in a net (:func:`plant_mean`).

    Attributes:
        fraction: the share of each layer's weights shifted.
        shift: the shift, in units of each layer's RMS weight.
        seed: the seed of the positions.
        shifts: :math:`S_l` per layer, ``(n_{l-1}, n_l)``: the amount added (0 elsewhere).
        counts: :math:`K_l`, the number of weights shifted per layer.
    """

    fraction: float
    shift: float
    seed: int
    shifts: tuple[np.ndarray, ...]
    counts: tuple[int, ...]

    def as_dict(self) -> dict:
        """The settings and counts, for JSON (not the matrices)."""
        return {
            "fraction": self.fraction,
            "shift": self.shift,
            "seed": self.seed,
            "broken_weights": list(self.counts),
            "shift_per_layer": [float(np.max(np.abs(S), initial=0.0)) for S in self.shifts],
        }


def plant_mean(
    net: LayeredNetwork, fraction: float, shift: float, *, seed: int = 0
) -> tuple[LayeredNetwork, PlantedMean]:
    r"""Shift a seeded ``fraction`` of each layer's weights by ``shift`` × the layer's RMS weight.

    Layer ``l`` gets :math:`K_l = \lfloor \text{fraction} \cdot n_{l-1} n_l + \tfrac12 \rfloor`
    positions drawn uniformly without replacement by a generator seeded with ``(seed, l)`` (so
    they depend on the widths and the seed only), and :math:`W^l_{ab} \to W^l_{ab} + \text{shift}
    \cdot \sqrt{\langle W_l^2 \rangle}` there.

    Args:
        net: the network (unchanged).
        fraction: in ``[0, 1]``.
        shift: a finite number (negative: shifted down).
        seed: an integer ≥ 0.

    Returns:
        ``(the planted net, the PlantedMean)``.

    Raises:
        ConfigError: for a fraction outside ``[0, 1]``, a shift that is not a finite number or
            a bad seed.

    >>> from umwelt import LayeredNetwork
    >>> net = LayeredNetwork([np.ones((2, 2)), np.ones((2, 1))])
    >>> planted, p = plant_mean(net, 0.5, 2.0)
    >>> p.counts, float(planted.weights[0].sum()), float(planted.weights[1].sum())
    ((2, 1), 8.0, 4.0)
    """
    check_network(net)
    rho = check_fraction("plant fraction", fraction, closed_above=True)
    s = check_real("plant shift", shift)
    if not math.isfinite(s):
        raise ConfigError(f"plant shift must be a finite number, got {shift!r}")
    seed = check_int("seed", seed, 0)
    shifts, counts = [], []
    for l, W in enumerate(net.weights, start=1):
        k = math.floor(rho * W.size + 0.5)  # half up, not Python's half to even
        rng = np.random.default_rng(np.random.SeedSequence([seed, l]))
        S = np.zeros(W.size)
        S[rng.choice(W.size, size=k, replace=False)] = s * math.sqrt(float(np.mean(W * W)))
        shifts.append(S.reshape(W.shape))
        counts.append(k)
    planted = LayeredNetwork([W + S for W, S in zip(net.weights, shifts)])
    return planted, PlantedMean(float(rho), s, seed, tuple(shifts), tuple(counts))


@dataclass(frozen=True)
class NetMoments:
    r"""The assembly moments of one net over inputs, and eq. 20's prediction (module docstring).

    Dicts are keyed by :data:`ASSEMBLY_ORDERS` (``"hess"`` is NaN for ``L = 1``); standard
    errors are across inputs (NaN for one input).

    Attributes:
        mean, mean_se, second, second_se: measured mean and second moment, with standard errors.
        predicted_mean: the :math:`\mu` term: the planted shifts' assembly (0 without planting).
        predicted_second: :math:`2\langle x^2\rangle\prod_l c_l^2` for ``"f"``; NaN otherwise.
        c: :math:`c_l = \sqrt{n_{l-1}\langle W_l^2\rangle/2}` per layer.
        broken: :math:`K_l`, the planted weights per layer (0 without planting).
        mu: :math:`\mu_l = 1 - 2\ln K_l/\ln n_{l-1}` (``inf`` where :math:`K_l = 0`, NaN where
            :math:`n_{l-1} = 1`).
        bound_symmetric, bound_broken: :math:`\prod_l c_l^2/2` and :math:`\prod_l c_l K_l /
            \sqrt{n_{l-1}}`, the two terms of eq. 20's bound on the means.
        inputs, entries: inputs measured, Hessian entries sampled.
        temperature, seed: the gates' temperature (0: ReLU) and the seed of entries and gates.
        hessian_entries: the ``(entries, 6)`` rows ``(l, a, b, l', c, d)`` measured.
    """

    mean: dict[str, float]
    mean_se: dict[str, float]
    second: dict[str, float]
    second_se: dict[str, float]
    predicted_mean: dict[str, float]
    predicted_second: dict[str, float]
    c: tuple[float, ...]
    broken: tuple[int, ...]
    mu: tuple[float, ...]
    bound_symmetric: float
    bound_broken: float
    inputs: int
    entries: int
    temperature: float
    seed: int
    hessian_entries: np.ndarray

    def as_dict(self) -> dict:
        """Plain numbers and lists, for JSON (not the entries measured)."""
        return {
            "inputs": self.inputs,
            "entries": self.entries,
            "temperature": self.temperature,
            "mean": dict(self.mean),
            "mean_se": dict(self.mean_se),
            "second": dict(self.second),
            "second_se": dict(self.second_se),
            "eq20": {
                "mean": dict(self.predicted_mean),
                "second": dict(self.predicted_second),
                "c": list(self.c),
                "broken_weights": list(self.broken),
                "mu": list(self.mu),
                "bound_symmetric": self.bound_symmetric,
                "bound_broken": self.bound_broken,
            },
        }


def _entries_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, 0]))


def _gate_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, 1]))


def _per_input(net: LayeredNetwork, x: np.ndarray, gates, he) -> np.ndarray:
    """``(B, 3, 2)``: per input and order, the average value and the average square."""
    B, L = x.shape[0], net.depth
    P = sum(W.size for W in net.weights)
    E = 0 if he is None else he.shape[0]
    chunk = max(1, _CHUNK_VALUES // max(P, E * max(net.widths)))
    out = np.full((B, 3, 2), np.nan)
    for lo in range(0, B, chunk):
        sl = slice(lo, lo + chunk)
        f, grads, hess = assembly_entries(net, x[sl], [g[sl] for g in gates], he)
        g = np.concatenate([gr.reshape(gr.shape[0], -1) for gr in grads], axis=1)  # (b, P)
        out[sl, 0] = np.stack([f, f * f], axis=1)
        out[sl, 1] = np.stack([g.mean(1), (g * g).mean(1)], axis=1)
        if L >= 2:
            out[sl, 2] = np.stack([hess.mean(1), (hess * hess).mean(1)], axis=1)
    return out


def net_assembly_moments(
    net: LayeredNetwork,
    x: np.ndarray,
    *,
    temperature: float = 0.0,
    entries: int = 64,
    seed: int = 0,
    planted: PlantedMean | None = None,
) -> NetMoments:
    r"""Mean and second moment over inputs of one net's assemblies, beside eq. 20's prediction.

    Args:
        net: the network measured (for a planted one, the planted net of :func:`plant_mean`).
        x: inputs ``(B, n_0)`` (or one, ``(n_0,)``).
        temperature: the gates: ReLU at 0, else sampled at ``T`` (``inf``: fair coins).
        entries: Hessian entries drawn uniformly among those with ``l ≠ l'`` (seeded).
        seed: seed of the entries and of the sampled gates.
        planted: the broken symmetry planted in ``net``, whose shifts make the prediction's
            :math:`\mu` term; ``None``: nothing planted (the term is 0).

    Returns:
        :class:`NetMoments`.

    Raises:
        ConfigError: for a bad temperature, count or seed.
        ShapeError: for inputs or planted shifts that do not fit the net.
    """
    from umwelt.gates import check_temperature

    check_network(net)
    T = check_temperature(temperature)
    E = check_int("entries", entries, 1)
    seed = check_int("seed", seed, 0)
    xs = np.asarray(x, dtype=np.float64)
    xs = xs[None] if xs.ndim == 1 else xs
    if xs.ndim != 2 or xs.shape[1] != net.widths[0] or xs.shape[0] == 0:
        raise ShapeError(f"inputs must have shape (B, {net.widths[0]}), got {np.shape(x)}")
    if not np.all(np.isfinite(xs)):
        raise ShapeError("the inputs hold non-finite values")
    if planted is not None and [S.shape for S in planted.shifts] != [W.shape for W in net.weights]:
        raise ShapeError(
            f"the planted shifts {[S.shape for S in planted.shifts]} do not fit the net "
            f"{net.widths}"
        )
    L, B = net.depth, xs.shape[0]
    widths = net.widths
    he = _sample_hessian_entries(widths, E, _entries_rng(seed)) if L >= 2 else None
    sample = net.relu_sample(xs) if T == 0 else net.sample(xs, T, _gate_rng(seed))
    gates = [g.astype(np.float64) for g in sample.gates]

    measured = _per_input(net, xs, gates, he)  # (B, 3, 2)
    if planted is not None and any(k > 0 for k in planted.counts):
        broken = _per_input(LayeredNetwork(planted.shifts), xs, gates, he)[:, :, 0].mean(0)
    else:
        broken = np.array([0.0, 0.0, 0.0 if L >= 2 else np.nan])
    se = measured.std(0, ddof=1) / math.sqrt(B) if B > 1 else np.full((3, 2), np.nan)

    c = tuple(math.sqrt(W.shape[0] * float(np.mean(W * W)) / 2.0) for W in net.weights)
    counts = tuple(planted.counts) if planted is not None else (0,) * L
    mu = tuple(
        math.nan if n == 1 else math.inf if k == 0 else 1.0 - 2.0 * math.log(k) / math.log(n)
        for k, n in zip(counts, widths[:-1])
    )
    x2 = float(np.mean(np.sum(xs * xs, axis=1) / widths[0]))
    keys = ASSEMBLY_ORDERS
    return NetMoments(
        mean={k: float(measured[:, i, 0].mean()) for i, k in enumerate(keys)},
        mean_se={k: float(se[i, 0]) for i, k in enumerate(keys)},
        second={k: float(measured[:, i, 1].mean()) for i, k in enumerate(keys)},
        second_se={k: float(se[i, 1]) for i, k in enumerate(keys)},
        predicted_mean={k: float(broken[i]) for i, k in enumerate(keys)},
        predicted_second={
            "f": 2.0 * x2 * math.prod(v * v for v in c),
            "grad": math.nan,
            "hess": math.nan,
        },  # fmt: skip
        c=c,
        broken=counts,
        mu=mu,
        bound_symmetric=math.prod(v * v / 2.0 for v in c),
        bound_broken=math.prod(v * k / math.sqrt(n) for v, k, n in zip(c, counts, widths[:-1])),
        inputs=B,
        entries=E if L >= 2 else 0,
        temperature=T,
        seed=seed,
        hessian_entries=np.zeros((0, 6), dtype=np.int64) if he is None else he,
    )


def moments_series(moments: Sequence[NetMoments]) -> dict[str, dict[str, np.ndarray]]:
    """Moments of several nets (epochs) as ``{field: {order: (E,)}}``: ``mean``, ``mean_se``,
    ``second``, ``second_se``, ``predicted_mean``, ``predicted_second`` — the arrays a figure
    of the moments against epoch takes."""
    fields = ("mean", "mean_se", "second", "second_se", "predicted_mean", "predicted_second")
    return {
        f: {k: np.array([getattr(m, f)[k] for m in moments]) for k in ASSEMBLY_ORDERS}
        for f in fields
    }
