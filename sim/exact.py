r"""``umwelt exact``: the exact gate law of a tiny network beside its Monte Carlo estimate.

For a He-normal network of the given widths and a few standard-normal inputs, it sums over all
:math:`2^{n_1 + \dots + n_{L-1}}` gate configurations (THEORY.md §1) to get every layer's gate
marginals, :math:`\mathbb{E}[f(x)]` and :math:`\mathrm{Var}[f(x)]`, draws ``samples`` ancestral
Monte Carlo configurations, and reports how many standard errors apart the two are, next to the
ReLU (:math:`T = 0`) output.

Where every draw agreed, the Monte Carlo standard error is exactly 0 and a z-score is not
defined (NaN here, ``null`` in JSON): the draws only bound the probability of the outcome they
never showed by the rule of three, ``3/S`` (95 %). That bound is checked against the exact law:
the exact probability ``q`` of the unseen outcome (a gate's flip, or a draw's gate
configuration differing from the one seen) and the chance ``(1 - q)^S`` that ``S`` draws all
agree. ``q > 3/S`` means that chance is below 5 %: a real disagreement between the sampler and
the exact law, reported as such (``disagrees``), never as a z-score of ``diff / 0``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from umwelt import memory
from umwelt._checks import check_int, check_real
from umwelt.errors import ConfigError
from umwelt.gates import check_temperature
from umwelt.network import LayeredNetwork, parse_widths

if TYPE_CHECKING:
    from umwelt.exact import MonteCarloResult

__all__ = ["ExactConfig", "run"]

_MAX_LAW_WIDTH = 20  # umwelt.exact.layer_distribution tabulates 2^n_l probabilities, n_l ≤ 20


@dataclass(frozen=True)
class ExactConfig:
    """Settings of ``umwelt exact``, typed (the CLI parses ``--widths 3,4,3,1``);
    :func:`run` validates them once."""

    widths: tuple[int, ...] = (3, 4, 3, 1)  # input first, output width 1
    temperature: float = 1.0  # gate temperature T
    inputs: int = 4  # standard-normal inputs, one row each
    samples: int = 10_000  # Monte Carlo configurations per input (0: exact only)
    seed: int = 0  # weights from seed, inputs from seed + 1, Monte Carlo from seed + 2
    limit: int | None = None  # refuse more configurations per input (None: MAX_CONFIGURATIONS)

    def validated(self) -> ExactConfig:
        """A normalized copy, or :class:`ConfigError` naming the first bad value (pure)."""
        from umwelt.exact import MAX_CONFIGURATIONS

        inputs = check_int("inputs", self.inputs, 1)
        samples = check_int("samples", self.samples, 0)
        seed = check_int("seed", self.seed, 0)
        limit = MAX_CONFIGURATIONS if self.limit is None else check_int("limit", self.limit, 1)
        if samples == 1:
            raise ConfigError("samples must be 0 (exact only) or at least 2, got 1")
        if isinstance(self.widths, str):
            raise ConfigError(f"widths must be a tuple of integers, got {self.widths!r}")
        return replace(
            self,
            widths=parse_widths(self.widths),
            temperature=check_temperature(check_real("temperature", self.temperature)),
            inputs=inputs,
            samples=samples,
            seed=seed,
            limit=limit,
        )


def _z(exact: np.ndarray, est: np.ndarray, se: np.ndarray) -> np.ndarray:
    """Standard errors between estimate and exact value; NaN where ``se = 0`` (every draw
    agreed, so no standard error was measured: see :func:`_unseen`)."""
    diff = np.abs(est - exact)
    pos = se > 0
    return np.where(pos, diff / np.where(pos, se, 1.0), np.nan)


def _unseen(q: float | None, S: int, event: str) -> dict:
    """What ``S`` draws that all agreed say about ``event``, against its exact probability ``q``
    (``None`` where the exact law was not asked for it)."""
    bound = 3.0 / S
    out = {"reason": f"no variation seen in {S} draws", "event": event, "upper_bound": bound}
    if q is None:
        return {**out, "exact_probability": None, "exact_chance_all_agree": None, "disagrees": None}
    return {
        **out,
        "exact_probability": q,
        "exact_chance_all_agree": math.exp(S * math.log1p(-q)) if q < 1 else 0.0,
        "disagrees": q > bound,
    }


def _no_variation(
    net: LayeredNetwork, x: np.ndarray, T: float, mc: MonteCarloResult, limit: int
) -> list[dict | None]:
    """Per input, ``None`` where the draws of ``f`` varied, else :func:`_unseen` of the widest
    event the draws never showed whose exact probability is at hand:

    * every gate constant (configuration ``h⁰``): a draw's configuration differs,
      ``q = 1 − μ(h⁰ | x)`` from :meth:`LayeredNetwork.log_prob`;
    * some gates flipped without changing ``f`` (a layer shut in every draw gives ``f = 0``
      whatever the other layers do): a draw's gates of a constant layer ``l`` differ,
      ``q = 1 − μ_l(h_l⁰ | x)`` from
      :func:`~umwelt.exact.layer_distribution`, the largest over the constant layers (the
      union of these unseen events is at least that likely, so ``q > 3/S`` still disagrees);
    * no layer constant (or none narrow enough for its law): the event is the output
      differing, and its exact probability is not computed.
    """
    from umwelt.exact import layer_distribution

    S = mc.n_samples
    out: list[dict | None] = []
    for b in range(x.shape[0]):
        if not mc.constant[b]:
            out.append(None)
            continue
        xb = x[b : b + 1]
        seen = [m[b] == 1.0 for m in mc.marginals]  # (n_l,) each: the gates, where constant
        still = [bool(np.all((m[b] == 0.0) | (m[b] == 1.0))) for m in mc.marginals]
        if all(still):
            h0 = [h[None, :] for h in seen]  # (1, n_l) each
            q = 0.0 - math.expm1(float(net.log_prob(xb, h0, T)[0]))  # 1 − μ(h⁰ | x)
            out.append(_unseen(q, S, "a draw's gate configuration differs from the one seen"))
            continue
        best: tuple[float, int] | None = None
        for l, (h, c) in enumerate(zip(seen, still, strict=True), start=1):
            if not c or h.size > _MAX_LAW_WIDTH:
                continue
            row = layer_distribution(net, xb, T, l, limit=limit)[0]  # (2^n_l,)
            k0 = int(h.astype(np.int64) @ (1 << np.arange(h.size)))  # bit i = gate i
            q = float(row[np.arange(row.size) != k0].sum())  # 1 − μ_l(h_l⁰ | x), no cancellation
            if best is None or q > best[0]:
                best = (q, l)
        if best is None:
            out.append(_unseen(None, S, "a draw's output differs from the one seen"))
        else:
            out.append(
                _unseen(best[0], S, f"a draw's layer-{best[1]} gates differ from the ones seen")
            )
    return out


def _constant_gates(exact: np.ndarray, est: np.ndarray, S: int) -> dict:
    """The gates (over inputs) that never flipped in ``S`` draws, against the rule of three:
    their count, the largest exact flip probability among them and how many exceed ``3/S``."""
    seen = (est == 0.0) | (est == 1.0)
    q = np.where(est == 1.0, 1.0 - exact, exact)[seen]  # exact P(the value never drawn)
    return {
        "reason": f"no variation seen in {S} draws",
        "gates": int(seen.sum()),
        "max_exact_flip_probability": float(q.max()) if q.size else None,
        "over_rule_of_three": int(np.sum(q > 3.0 / S)),
    }


def _nanmax(z: np.ndarray) -> float:
    """The largest defined z-score, NaN when none is (no gate of the layer varied)."""
    z = z[~np.isnan(z)]
    return float(z.max()) if z.size else math.nan


def run(cfg: ExactConfig) -> dict:
    """Exact enumeration (and Monte Carlo) for ``cfg``; a JSON-ready dict.

    Raises:
        EnumerationLimitError: when the network has more configurations than ``cfg.limit``.
        ConfigError: for any other bad setting.
    """
    from umwelt.exact import exact_enumeration, monte_carlo, n_configurations

    cfg = cfg.validated()
    # the weights (and the kernel's copy), per input the Monte Carlo draws' logits and gates,
    # the inputs, and per input the enumerated configurations' probabilities and outputs
    hidden = sum(cfg.widths[1:-1])
    configs = cfg.limit if hidden >= 62 else min(2**hidden, cfg.limit)
    need = 16 * memory.mlp_parameters(cfg.widths) + 32 * cfg.samples * sum(cfg.widths)
    need += 8 * cfg.inputs * (sum(cfg.widths) + 4 * configs)
    memory.check_fits(
        f"exact (widths {'-'.join(map(str, cfg.widths))}, {cfg.inputs:,} inputs, "
        f"{cfg.samples:,} samples)",
        need,
    )
    net = LayeredNetwork.he_normal(cfg.widths, seed=cfg.seed)
    x = np.random.default_rng(cfg.seed + 1).normal(size=(cfg.inputs, net.widths[0]))
    ex = exact_enumeration(net, x, cfg.temperature, limit=cfg.limit)
    out = {
        "widths": list(net.widths),
        "temperature": cfg.temperature,
        "seed": cfg.seed,
        "n_configurations": n_configurations(net),
        "relu_output": net.relu_forward(x).tolist(),
        "mean": ex.mean.tolist(),
        "var": ex.var.tolist(),
        "marginals": [m.tolist() for m in ex.marginals],
    }
    if cfg.samples:
        mc = monte_carlo(net, x, cfg.temperature, cfg.samples, seed=cfg.seed + 2)
        z_marg = [_z(e, m, s) for e, m, s in zip(ex.marginals, mc.marginals, mc.marginals_se)]
        out["monte_carlo"] = {
            "samples": cfg.samples,
            "mean": mc.mean.tolist(),
            "mean_se": mc.mean_se.tolist(),
            "var": mc.var.tolist(),
            "var_se": mc.var_se.tolist(),
            "z_mean": _z(ex.mean, mc.mean, mc.mean_se).tolist(),
            "z_var": _z(ex.var, mc.var, mc.var_se).tolist(),
            "max_z_marginals_per_layer": [_nanmax(z) for z in z_marg],
            "rule_of_three": mc.rule_of_three,
            "no_variation": _no_variation(net, x, cfg.temperature, mc, cfg.limit),
            "constant_gates_per_layer": [
                _constant_gates(e, m, cfg.samples)
                for e, m in zip(ex.marginals, mc.marginals, strict=True)
            ],
        }
    return out
