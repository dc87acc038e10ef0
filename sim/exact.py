r"""``umwelt exact``: the exact gate law of a tiny network beside its Monte Carlo estimate.

For a He-normal network of the given widths and a few standard-normal inputs, it sums over all
:math:`2^{n_1 + \dots + n_{L-1}}` gate configurations (THEORY.md §1) to get every layer's gate
marginals, :math:`\mathbb{E}[f(x)]` and :math:`\mathrm{Var}[f(x)]`, draws ``samples`` ancestral
Monte Carlo configurations, and reports how many standard errors apart the two are, next to the
ReLU (:math:`T = 0`) output.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from umwelt import memory
from umwelt._checks import check_int, check_real
from umwelt.errors import ConfigError
from umwelt.gates import check_temperature
from umwelt.network import LayeredNetwork, parse_widths

__all__ = ["ExactConfig", "run"]


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
    """Standard errors between estimate and exact value (0 where both agree exactly)."""
    diff = np.abs(est - exact)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(diff == 0, 0.0, diff / se)


def run(cfg: ExactConfig) -> dict:
    """Exact enumeration (and Monte Carlo) for ``cfg``; a JSON-ready dict.

    Raises:
        EnumerationLimitError: when the network has more configurations than ``cfg.limit``.
        ConfigError: for any other bad setting.
    """
    from umwelt.exact import exact_enumeration, monte_carlo, n_configurations

    cfg = cfg.validated()
    # the weights (and the kernel's copy), and per input the Monte Carlo draws' logits and gates
    need = 16 * memory.mlp_parameters(cfg.widths) + 32 * cfg.samples * sum(cfg.widths)
    memory.check_fits(
        f"exact (widths {'-'.join(map(str, cfg.widths))}, {cfg.samples:,} samples)", need
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
            "max_z_marginals_per_layer": [float(z.max()) for z in z_marg],
        }
    return out
