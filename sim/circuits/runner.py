r"""``umwelt circuits``' :func:`run`: the identities, the symmetry, one circuit, the files.

At a net's inputs and gates (:mod:`sim.circuits.nets`) it checks the identities
(:mod:`sim.circuits.identities`), samples the symmetry statistics (:func:`_symmetry`; for a
checkpoint also at its initialization), shows one circuit, computes the assembly moments at
initialization and writes the figures (:mod:`sim.circuits.figures`) and ``circuits.json``;
with a run directory it measures the moments through training instead
(:mod:`sim.circuits.training`). The memory budget is checked first (:func:`_check_memory`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.circuits.config import DEFAULT_WIDTHS, TINY_CONV, CircuitsConfig
from sim.circuits.figures import ORDER_LABELS, _figures
from sim.circuits.identities import _check_identities
from sim.circuits.nets import _gates, _inputs, _Net, _resolve
from sim.circuits.training import _through_training

if TYPE_CHECKING:  # umwelt.circuits (networkx) is imported where it is used: a quick --help
    from umwelt.circuits import ConvCircuits

__all__ = ["run"]


# -- the symmetry and one circuit -----------------------------------------------------------------


def _symmetry(n: _Net, X, G, circuits, cfg, rng) -> tuple[dict, dict]:
    """Sampled values per order and their statistics."""
    from umwelt.circuits import ORDERS, sample_conv_perturbations, sample_perturbations

    L = n.net.depth
    orders = [o for o in ORDERS if not (o == "omega2" and L < 2)]
    if n.kind == "mlp":
        Xf = X.reshape(X.shape[0], -1)
        gates = [np.stack([G[b][l] for b in range(len(G))]) for l in range(L - 1)]
        s = sample_perturbations(n.net, Xf, gates, n=cfg.samples, orders=orders, rng=rng)
    else:
        live = [cc for cc in circuits if cc.count > 0]
        s = sample_conv_perturbations(live, n=cfg.samples, orders=orders, rng=rng)
    return {o: v.values for o, v in s.items()}, {o: v.stats.as_dict() for o, v in s.items()}


def _show_circuit(n: _Net, cc: ConvCircuits, index: int) -> dict:
    """One circuit of the first input: its units and value."""
    path = cc.path(index)  # ConfigError when out of range
    names = cc.net.level_names
    units = []
    for t, u in enumerate(path):
        shape = cc.net.level_shapes[t]
        if n.kind == "mlp":
            units.append(f"{names[t] if t else 'x'}[{u}]")
        else:
            units.append(f"{names[t]}{tuple(int(v) for v in np.unravel_index(u, shape))}")
    p = np.array([path])
    return {
        "index": int(index),
        "path": [int(u) for u in path],
        "units": units,
        "value": float(cc.values(p)[0]) + 0.0,  # no "-0"
    }


# -- the driver -----------------------------------------------------------------------------------


def _check_memory(cfg: CircuitsConfig) -> None:
    """Refuse a net or a sample that cannot fit, before either is built: an MLP's or a VGG's
    weights (numpy, the circuit graph of each input, torch, the gradient, and the Hessian
    checks' tangents and products, one parameter-sized array per column) and the ``samples``
    circuits of each order (their units and values; twice for a checkpoint and its init)."""
    from umwelt import memory

    P, D = 0, 16  # a graph or checkpoint: its weights exist already; depth at most vgg16's
    if cfg.model not in (None, TINY_CONV):
        P = memory.vgg_sizes(cfg.model, cfg.width, cfg.input_shape)[0]
    elif cfg.model is None and cfg.graph is None and cfg.checkpoint is None:
        widths = cfg.widths or DEFAULT_WIDTHS
        P, D = memory.mlp_parameters(widths), len(widths) - 1
    need = 8 * P * (4 + 3 * cfg.inputs + 2 * min(cfg.checks, P))
    need += 8 * cfg.samples * len(ORDER_LABELS) * (D + 5) * (4 if cfg.checkpoint else 2)
    memory.check_fits(f"circuits ({P:,} weights, {cfg.samples:,} sampled circuits per order)", need)


def run(cfg: CircuitsConfig) -> dict:
    """Verify the identities, sample the symmetry, draw the figures; a JSON-ready dict.

    Raises:
        UmweltError: for any bad setting, an unknown or unfitting checkpoint or graph, a
            circuit index out of range, an input of the wrong shape, or ``force_enumerate``
            over the budget.
    """
    from umwelt.circuits import ConvCircuits, ConvNetwork

    t0 = time.perf_counter()
    cfg = cfg.validated()
    _check_memory(cfg)
    if cfg.out is not None:
        from sim.runs.io import check_out_place

        check_out_place(Path(cfg.out))  # before the computation, not after it
    if cfg.run is not None:
        return _through_training(cfg, t0)
    n = _resolve(cfg)
    X, where = _inputs(cfg, n)
    rng = np.random.default_rng(cfg.seed + 2)
    G = _gates(n, X, cfg.temperature, rng)
    ident = _check_identities(cfg, n, X, G, rng)
    circuits = ident.pop("circuits")
    values, sym = _symmetry(n, X, G, circuits, cfg, rng)
    out: dict[str, Any] = {
        "net": {"kind": n.kind, "description": n.description, **n.source},
        "depth": n.net.depth,
        "n_parameters": int(sum(w.size for w in n.net.weights)),
        "temperature": cfg.temperature,
        "seed": cfg.seed,
        "inputs": int(X.shape[0]),
        "input_source": where,
        "pool": cfg.pool if n.kind == "conv" else None,
        **ident,
        "samples": cfg.samples,
        "symmetry": sym,
    }
    compare = None
    if cfg.checkpoint is not None and cfg.which not in ("init", "0"):
        ni = _resolve(cfg, "init")
        Gi = _gates(ni, X, cfg.temperature, np.random.default_rng(cfg.seed + 2))
        conv = ni.net if ni.kind == "conv" else ConvNetwork.from_layered(ni.net)
        ci = (
            [ConvCircuits(conv, X[b].reshape(-1), Gi[b], pool=cfg.pool) for b in range(len(X))]
            if ni.kind == "conv"
            else []
        )
        vi, si = _symmetry(ni, X, Gi, ci, cfg, np.random.default_rng(cfg.seed + 3))
        out["symmetry_init"] = si
        compare = vi
    if cfg.circuit is not None:
        out["circuit"] = _show_circuit(n, circuits[0], cfg.circuit)
    moments = None
    if cfg.moments:
        from umwelt.circuits import assembly_moments

        moments = assembly_moments(seed=cfg.seed, temperature=cfg.temperature)
        out["assembly_moments"] = moments.as_dict()
    if cfg.out is not None:
        out["figures"] = _figures(cfg, n, values, sym, compare, out.get("symmetry_init"), moments)
    out["wall_s"] = time.perf_counter() - t0
    if cfg.out is not None:
        from sim.runs import write_json

        write_json(Path(cfg.out) / "circuits.json", out)
    return out
