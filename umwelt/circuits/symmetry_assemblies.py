r"""Assemblies in closed form, and their moments over initializations (Li, eq. 20).

The assemblies are the sums of circuit values and perturbations over the circuits through
given weights: ``f``, the gradient entries and the between-layer Hessian entries (the sums
themselves are :mod:`umwelt.circuits.perturbations`).

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
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from umwelt._checks import check_int, check_positive
from umwelt.circuits._chain import check_inputs
from umwelt.errors import ConfigError
from umwelt.network import LayeredNetwork, parse_widths

__all__ = [
    "AssemblyMoments",
    "assembly_entries",
    "assembly_moments",
]


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
