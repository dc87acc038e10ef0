r"""What ``umwelt circuits`` measures: the net, its inputs and their gates.

The net (:class:`_Net`: an MLP as :class:`~umwelt.network.LayeredNetwork`, a conv net as
:class:`~umwelt.circuits.ConvNetwork`) comes from the MLP widths, a circuit graph file
(:func:`graph_to_json`'s format), ``tiny-conv`` or a VGG preset, or a run's checkpoint
(:func:`load_checkpoint_net`); the inputs from ``x``, the run's training set or a standard
normal; the gates are ReLU at ``T = 0``, sampled at ``T > 0``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.circuits.config import DEFAULT_WIDTHS, TINY_CONV, CircuitsConfig
from umwelt.errors import ConfigError, ShapeError, UmweltError
from umwelt.network import LayeredNetwork

if TYPE_CHECKING:  # umwelt.circuits (networkx) is imported where it is used: a quick --help
    from umwelt.circuits import ConvNetwork

__all__ = ["graph_from_json", "graph_to_json", "load_checkpoint_net"]


# -- nets -----------------------------------------------------------------------------------------


@dataclass
class _Net:
    kind: str  # "mlp" or "conv"
    net: LayeredNetwork | ConvNetwork
    description: str
    source: dict
    input_shape: tuple[int, ...]
    dataset: dict | None = None  # the run's config, to load its inputs


def graph_to_json(G) -> dict:
    """A circuit graph (:func:`umwelt.circuits.circuit_graph`) as JSON:
    ``{"edges": [[u, v, weight], ...]}`` with node names as lists (``["x", 0]``, ``[1, 2]``,
    ``["f", 0]``)."""
    return {"edges": [[list(u), list(v), float(d["weight"])] for u, v, d in G.edges(data=True)]}


def graph_from_json(obj: Any):
    """The ``DiGraph`` of :func:`graph_to_json`'s format.

    Raises:
        ConfigError: for anything else, naming what is wrong.
    """
    import networkx as nx

    if not isinstance(obj, dict) or not isinstance(obj.get("edges"), list):
        raise ConfigError('a circuit graph file must hold {"edges": [[u, v, weight], ...]}')
    G = nx.DiGraph()
    for k, e in enumerate(obj["edges"]):
        if not (isinstance(e, list) and len(e) == 3 and all(isinstance(n, list) for n in e[:2])):
            raise ConfigError(f"edge {k} must be [u, v, weight] with nodes as lists, got {e!r}")
        u, v = (tuple(n) for n in e[:2])
        G.add_edge(u, v, weight=e[2])
    return G


def _load_graph(path: Path) -> LayeredNetwork:
    from sim.runs.untrusted import load_json
    from umwelt.circuits import network_from_graph

    try:
        obj = load_json(Path(path))
    except FileNotFoundError:
        raise ConfigError(f"no circuit graph file {str(path)!r}") from None
    except ConfigError as e:
        raise ConfigError(f"--graph: {e}") from None
    return network_from_graph(graph_from_json(obj))


def load_checkpoint_net(run_dir: Path, which: str) -> tuple[Any, dict, str]:
    """The torch model of a run directory's checkpoint: ``(model, config.json, file name)``.

    ``umwelt simulate`` runs: ``which`` is ``init``, ``finite_T`` or ``relu``. ``umwelt train``
    runs (``checkpoints/model_epoch_XXXX.pt``): an epoch, ``init`` (epoch 0) or ``last``; the
    model is returned in relu mode and float64 (the circuits take their gates separately).

    Raises:
        ConfigError: for a directory that is neither, or a missing checkpoint.
        ShapeError: when the checkpoint's weights do not fit the run's configuration.
    """
    import torch

    from sim.runs import Run

    run = Run.open(run_dir)
    path, _, _ = run.checkpoint(which)
    if run.kind == "simulate":
        model = run.model(which=which)
    else:
        model = run.model(which=which, dtype=torch.float64).set_mode("relu")
    return model, run.stored, path.name


def _to_net(model) -> tuple[str, LayeredNetwork | ConvNetwork]:
    from umwelt.circuits import ConvNetwork
    from umwelt.nn.mlp import GatedMLP

    if isinstance(model, GatedMLP):
        return "mlp", model.to_network()
    return "conv", ConvNetwork.from_torch(model)


def _resolve(cfg: CircuitsConfig, which: str | None = None) -> _Net:
    """The network the config names (``which`` overrides ``cfg.which`` for a checkpoint)."""
    from umwelt.circuits import ConvNetwork, tiny_conv_network

    if cfg.checkpoint is not None:
        w = which or cfg.which
        model, run_cfg, name = load_checkpoint_net(cfg.checkpoint, w)
        kind, net = _to_net(model)
        shape = tuple(run_cfg.get("input_shape") or (run_cfg["widths"][0],))
        what = run_cfg.get("model", "mlp")
        if kind == "mlp":
            what = "MLP " + "-".join(map(str, net.widths))
        return _Net(
            kind,
            net,
            f"{what} from {cfg.checkpoint} ({name})",
            {"checkpoint": str(cfg.checkpoint), "which": w, "file": name},
            shape,
            run_cfg,
        )
    if cfg.graph is not None:
        net = _load_graph(cfg.graph)
        return _Net("mlp", net, f"graph {cfg.graph}", {"graph": str(cfg.graph)}, (net.widths[0],))
    if cfg.model == TINY_CONV:
        net = tiny_conv_network(seed=cfg.seed)
        return _Net("conv", net, repr(net), {"model": TINY_CONV}, net.input_shape)
    if cfg.model is not None:
        import torch

        from umwelt.nn import build_vgg

        m = build_vgg(
            cfg.model,
            width=cfg.width,
            input_shape=cfg.input_shape,
            temperature=0.0,
            seed=cfg.seed,
            dtype=torch.float64,
        )
        net = ConvNetwork.from_torch(m)
        desc = f"{cfg.model} × {Fraction(cfg.width).limit_denominator(1024)}: {net!r}"
        return _Net("conv", net, desc, {"model": cfg.model, "width": cfg.width}, net.input_shape)
    widths = cfg.widths or DEFAULT_WIDTHS
    net = LayeredNetwork.he_normal(widths, seed=cfg.seed)
    return _Net(
        "mlp", net, "widths " + "-".join(map(str, widths)), {"widths": widths}, (widths[0],)
    )


# -- inputs and gates -----------------------------------------------------------------------------


def _load_input(path: Path) -> np.ndarray:
    from sim.runs.untrusted import load_npy

    try:
        return load_npy(path)
    except FileNotFoundError:
        raise ConfigError(f"no input file {str(path)!r}") from None
    except ConfigError as e:
        raise ConfigError(f"--x: {e}") from None


def _inputs(cfg: CircuitsConfig, n: _Net) -> tuple[np.ndarray, str]:
    """``(X (B, *input_shape), where they come from)``."""
    shape = n.input_shape
    if cfg.x is not None:
        x = np.asarray(_load_input(cfg.x) if isinstance(cfg.x, Path) else cfg.x, dtype=np.float64)
        if x.size != math.prod(shape) or x.ndim not in (1, len(shape)):
            raise ShapeError(
                f"the input has {x.size} values (shape {x.shape}) but the net takes "
                f"{math.prod(shape)} (shape {tuple(shape)})"
            )
        if not np.all(np.isfinite(x)):
            raise ConfigError(f"the input {str(cfg.x)!r} holds non-finite values")
        return x.reshape(1, *shape), "given"
    if n.dataset is not None and "dataset" in n.dataset:
        from umwelt.data import load_dataset

        try:
            rc = n.dataset
            data = load_dataset(
                rc["dataset"],
                seed=int(rc.get("seed", 0)),
                classes=rc.get("classes"),
                subset=rc.get("subset"),
            )
            X = data.X_train[: cfg.inputs].reshape(-1, *shape).astype(np.float64)
            return X, f"training set of the run ({rc['dataset']})"
        except (UmweltError, ValueError, OSError):
            pass
    rng = np.random.default_rng(cfg.seed + 1)
    return rng.normal(size=(cfg.inputs, *shape)), "standard normal"


def _gates(n: _Net, X: np.ndarray, T: float, rng: np.random.Generator) -> list:
    """Per input, the gates: ReLU (``T = 0``) or sampled at ``T``."""
    if n.kind == "mlp":
        Xf = X.reshape(X.shape[0], -1)
        s = n.net.relu_sample(Xf) if T == 0 else n.net.sample(Xf, T, rng)
        return [[g[b].astype(np.float64) for g in s.gates] for b in range(X.shape[0])]
    return [n.net.sample_gates(x, T, rng) for x in X]
