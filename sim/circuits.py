r"""``umwelt circuits``: the basis circuits of a net, their identities and their symmetry.

For an MLP (``--widths``, a circuit graph file, or a checkpoint of ``umwelt simulate`` /
``umwelt train``) or a conv net (``--model tiny-conv`` or a VGG preset at a width multiplier, or
a VGG checkpoint of ``umwelt train``), at a few inputs with their gates (ReLU at ``T = 0``,
sampled at ``T > 0``) and max-pool selections, it

1. **verifies the identities on the spot** (THEORY.md §3), in float64, against torch autograd
   through the same net with the same gates fixed:

   * :math:`\sum_i \Psi_i = f(x)` for every input;
   * :math:`\sum_{i \ni W^l_{ab}} \Omega^{(l)}_i = \partial f/\partial W^l_{ab}` for **every**
     weight and input;
   * :math:`\sum_{i \ni W^l_{ab}, W^{l'}_{cd}} \Omega^{(l,l')}_i = \partial^2 f / \partial
     W^l_{ab} \partial W^{l'}_{cd}` for ``checks`` entries drawn along uniformly sampled
     circuits (a random circuit and two of its weights, so that each entry has circuits);

   by **enumerating** every circuit (``enumerated: true``) when ``inputs × circuits`` fits the
   budget ``max_circuits`` (``--enumerate`` insists on it, and fails beyond the budget), and
   otherwise by summing over every circuit with dynamic programming over the circuit graph
   (:class:`~umwelt.circuits.ConvCircuits`; an MLP is a conv net without convolutions). Each
   error is normwise relative: :math:`\max|a - b| / \max|b|` over everything compared;

2. **samples** ``samples`` circuits per order uniformly (an input, a circuit, and the weight(s)
   differentiated out; :mod:`umwelt.circuits.symmetry`) and reports the symmetry statistics of
   :math:`\psi`, :math:`\Omega^{(1)}`, :math:`\Omega^{(2)}` — for a checkpoint also those of
   its initialization, side by side;

3. with ``out``, writes the fig. 3b histograms (``circuit_histograms.png``), with ``moments``
   the assembly moments at initialization against depth and width
   (``assembly_moments.png``, eq. 20), and ``circuits.json``.

**Through training** (``run``, a run directory of ``umwelt train`` with an MLP, or of
``umwelt simulate``): instead of all this, the assembly moments of the net at each checkpointed
epoch (``epochs``, default all) over the inputs — the mean and second moment of ``f``, of every
gradient entry and of ``samples`` Hessian entries (the same at every epoch), with standard
errors across the inputs — beside eq. 20's prediction (:mod:`umwelt.circuits.moments`). With
``plant_mean = (fraction, shift)`` each epoch's net is measured a second time with a planted
broken weight symmetry: that fraction of each layer's weights (the same, seeded positions at
every epoch) shifted by ``shift`` times the layer's RMS weight, which makes the :math:`\mu`
term of eq. 20 non-zero. With ``out``: ``assembly_moments_training.png`` and ``circuits.json``.
Nothing is written into the run directory.

Inputs: ``x`` (one input given), else for a checkpoint the first examples of its training set
(when the dataset loads), else standard-normal vectors.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from fractions import Fraction
from numbers import Real
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from umwelt._checks import check_fraction, check_int, check_real
from umwelt.errors import ConfigError, EnumerationLimitError, ShapeError, UmweltError
from umwelt.gates import check_temperature
from umwelt.network import LayeredNetwork, parse_widths

if TYPE_CHECKING:  # umwelt.circuits (networkx) is imported where it is used: a quick --help
    from umwelt.circuits import ConvCircuits, ConvNetwork

__all__ = [
    "CircuitsConfig",
    "graph_from_json",
    "graph_to_json",
    "load_checkpoint_net",
    "parse_plant_mean",
    "run",
]

DEFAULT_WIDTHS = (16, 32, 32, 1)
TINY_CONV = "tiny-conv"
ORDER_LABELS = {"psi": "ψ (circuits)", "omega1": "Ω⁽¹⁾ (one weight out)", "omega2": "Ω⁽²⁾ (two)"}


def _check_width(width: Any) -> float:
    """A width multiplier, a number > 0 (a :class:`~fractions.Fraction` such as ``1/32`` is
    one; the CLI parses ``--width 1/32`` into it), as a float."""
    w = math.nan
    if isinstance(width, int | float | Fraction | np.number) and not isinstance(width, bool):
        w = float(width)
    if not (math.isfinite(w) and w > 0):
        shown = str(width) if isinstance(width, Fraction) else repr(width)
        raise ConfigError(f"width must be a number > 0 such as 0.25 or 1/32, got {shown}")
    return w


@dataclass(frozen=True)
class CircuitsConfig:
    """Settings of ``umwelt circuits``, typed (the CLI parses ``--widths 16,32,32,1``,
    ``--width 1/32``, ``--x 0.5,-1,2``); :func:`run` validates them once."""

    widths: tuple[int, ...] | None = None  # MLP widths, input first (default 16,32,32,1)
    checkpoint: Path | None = None  # a run directory of `umwelt simulate` or `umwelt train`
    which: str = "finite_T"  # simulate: init|finite_T|relu; train: init, last or an epoch
    model: str | None = None  # "tiny-conv" or a VGG preset: conv circuits
    width: float | Fraction = Fraction(1, 32)  # VGG width multiplier
    input_shape: tuple[int, int, int] = (3, 32, 32)  # VGG input shape
    graph: Path | None = None  # a circuit graph as JSON (see graph_to_json)
    x: tuple[float, ...] | Path | None = None  # one input: its values, or a .npy file of them
    seed: int = 0  # weights (seed), inputs (seed + 1), gates and samples (seed + 2)
    inputs: int = 4  # number of inputs (when x is not given)
    samples: int = 10_000  # sampled circuits per order for the symmetry statistics
    temperature: float = 0.0  # gates: ReLU at 0, sampled at T > 0
    pool: str = "select"  # max-pooling in the circuit graph: select (winner only) or gate
    force_enumerate: bool = False  # enumerate every circuit even beyond max_circuits: refuse
    max_circuits: int = 2**22  # enumerate when inputs × circuits ≤ this (memory budget)
    checks: int = 64  # Hessian entries checked against autograd
    circuit: int | None = None  # show this circuit of the first input (its index)
    moments: bool = False  # also the assembly moments at initialization (eq. 20)
    run: Path | None = None  # a run directory: the assembly moments through training instead
    epochs: tuple[int, ...] | None = None  # with run: the epochs measured (default every one)
    plant_mean: tuple[float, float] | None = None  # with run: (fraction, shift in layer RMS)
    out: Path | None = None  # write figures and circuits.json here

    def validated(self) -> CircuitsConfig:
        """A normalized copy, or :class:`ConfigError` naming the first bad value (values only:
        the checkpoint and graph files are read by :func:`run`)."""
        sources = [
            n
            for n in ("widths", "checkpoint", "model", "graph", "run")
            if getattr(self, n) is not None
        ]
        if len(sources) > 1:
            raise ConfigError(f"give one net: --{sources[0]} or --{sources[1]}, not both")
        run, epochs, plant = self._validated_training()

        for name in ("widths", "input_shape"):
            if isinstance(getattr(self, name), str):
                raise ConfigError(
                    f"{name} must be a tuple of integers, got {getattr(self, name)!r}"
                )
        widths = self.widths
        if widths is not None:
            widths = parse_widths(widths)
            if len(widths) < 2 or widths[-1] != 1:
                raise ConfigError(f"widths must be n_0,...,n_L with n_L = 1, got {self.widths!r}")
        model = self.model
        if model is not None:
            from umwelt.nn.vgg import VGG_PRESETS

            if model not in (TINY_CONV, *VGG_PRESETS):
                raise ConfigError(
                    f"unknown model {model!r}; choose {TINY_CONV} or a VGG preset "
                    f"({', '.join(VGG_PRESETS)})"
                )
        if self.pool not in ("select", "gate"):
            raise ConfigError(f"pool must be 'select' or 'gate', got {self.pool!r}")
        if self.circuit is not None and (
            isinstance(self.circuit, bool) or not isinstance(self.circuit, int)
        ):
            raise ConfigError(f"circuit must be an integer index, got {self.circuit!r}")
        x = self.x
        if x is not None and not isinstance(x, Path):
            numbers = isinstance(x, tuple | list) and len(x) > 0
            if not numbers or not all(isinstance(v, Real) and not isinstance(v, bool) for v in x):
                raise ConfigError(
                    f"x must be a tuple of numbers or the Path of a .npy file, got {x!r}"
                )
            x = tuple(float(v) for v in x)
            if not all(math.isfinite(v) for v in x):
                raise ConfigError(f"x must be finite numbers, got {self.x!r}")
        shape = tuple(int(s) for s in parse_widths(self.input_shape, what="input shape"))
        if len(shape) != 3:
            raise ConfigError(f"input shape must be C,H,W, got {self.input_shape!r}")
        return replace(
            self,
            widths=widths,
            width=_check_width(self.width),
            x=x,
            input_shape=shape,
            temperature=check_temperature(check_real("temperature", self.temperature)),
            seed=check_int("seed", self.seed, 0),
            inputs=check_int("inputs", self.inputs, 1),
            samples=check_int("samples", self.samples, 2),
            max_circuits=check_int("max_circuits", self.max_circuits, 1),
            checks=check_int("checks", self.checks, 0),
            run=run,
            epochs=epochs,
            plant_mean=plant,
        )

    def _validated_training(self) -> tuple[Path | None, tuple[int, ...] | None, tuple | None]:
        """``(run, epochs, plant_mean)`` checked: the last two only with a run."""
        run = self.run
        if run is not None and not isinstance(run, Path):
            if not isinstance(run, str) or not run:
                raise ConfigError(f"run must be the path of a run directory, got {run!r}")
            run = Path(run)
        for name, flag in (("epochs", "--epochs"), ("plant_mean", "--plant-mean")):
            if getattr(self, name) is not None and run is None:
                raise ConfigError(f"{flag} is for --run (the assembly moments through training)")
        if run is not None and self.moments:
            raise ConfigError("give --run (moments through training) or --moments, not both")
        epochs = self.epochs
        if epochs is not None:
            if isinstance(epochs, str | bytes) or not isinstance(epochs, tuple | list):
                raise ConfigError(f"epochs must be a tuple of integers, got {epochs!r}")
            if not epochs:
                raise ConfigError("epochs must name at least one epoch, got none")
            epochs = tuple(sorted({check_int("an epoch", e, 0) for e in epochs}))
        plant = self.plant_mean
        if plant is not None:
            if isinstance(plant, str | bytes) or not (
                isinstance(plant, tuple | list) and len(plant) == 2
            ):
                raise ConfigError(
                    f"plant_mean must be (fraction, shift), two numbers, got {plant!r}"
                )
            fraction = check_fraction("plant fraction", plant[0], closed_above=True)
            shift = check_real("plant shift", plant[1])
            if not math.isfinite(shift):
                raise ConfigError(f"plant shift must be a finite number, got {plant[1]!r}")
            plant = (fraction, shift)
        return run, epochs, plant


def parse_plant_mean(text: str) -> tuple[float, float]:
    """``"0.25:1"`` → ``(0.25, 1.0)`` (``--plant-mean FRACTION:SHIFT``); the Config checks the
    ranges.

    >>> parse_plant_mean("0.25:-1.5")
    (0.25, -1.5)

    Raises:
        ConfigError: ``"--plant-mean must be FRACTION:SHIFT, two numbers such as 0.25:1, got
            '…'"``.
    """
    head, sep, tail = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return float(head), float(tail)
    except ValueError:
        raise ConfigError(
            f"--plant-mean must be FRACTION:SHIFT, two numbers such as 0.25:1, got {text!r}"
        ) from None


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


# -- the torch oracle -----------------------------------------------------------------------------


def _torch_f(net: ConvNetwork, x, gates, params):
    """``f`` of ``net`` in torch with ``params`` (the weights, layer by layer) and the gates
    fixed; max-pooling by ``torch.nn.functional.max_pool2d``."""
    import torch
    import torch.nn.functional as F

    a = torch.as_tensor(x.reshape(net.input_shape), dtype=torch.float64)[None]
    K = len(net.convs)
    gi = iter(gates)
    for W, pool in zip(params[:K], net.pool_after):
        h = torch.as_tensor(next(gi)[None]) > 0
        a = torch.where(h, F.conv2d(a, W, padding=W.shape[-1] // 2), 0.0)
        if pool:
            a = F.max_pool2d(a, 2)
    a = a.flatten(1)
    for W in params[K:-1]:
        a = torch.where(torch.as_tensor(next(gi)[None]) > 0, a @ W, 0.0)
    return (a @ params[-1])[0, 0]


def _autograd(net: ConvNetwork, x, gates, hess_entries) -> tuple[float, list, np.ndarray]:
    """``(f, gradient per layer, Hessian entries)`` by torch autograd in float64, the gates
    fixed; the entries ``(l, p, l', q)`` (flat indices) come from Hessian-vector products with
    the unit vectors of the distinct ``(l, p)``, forward-over-reverse (``torch.func.jvp`` of
    ``torch.func.grad``, batched by ``torch.func.vmap``)."""
    import torch
    from torch.func import grad, jvp, vmap

    from umwelt.nn.hessian.model import load_forward_ad

    load_forward_ad()
    params = tuple(torch.tensor(W, dtype=torch.float64) for W in net.weights)

    def f(*ps):
        return _torch_f(net, x, gates, ps)

    g = grad(f, argnums=tuple(range(len(params))))
    f0 = float(f(*params))
    grads = [t.numpy() for t in g(*params)]
    out = np.zeros(len(hess_entries))
    if len(hess_entries):
        cols = sorted({(l1, p) for l1, p, _, _ in hess_entries})
        where = {c: i for i, c in enumerate(cols)}
        tangents = [torch.zeros((len(cols), *W.shape), dtype=torch.float64) for W in params]
        for i, (l1, p) in enumerate(cols):
            tangents[l1 - 1].view(len(cols), -1)[i, p] = 1.0

        def hvp(*v):
            return jvp(g, params, v)[1]

        H = vmap(hvp)(*tangents)  # per layer (n_cols, *W.shape)
        for k, (l1, p, l2, q) in enumerate(hess_entries):
            out[k] = float(H[l2 - 1].reshape(len(cols), -1)[where[(l1, p)], q])
    return f0, grads, out


# -- the circuit side -----------------------------------------------------------------------------


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    """Normwise relative error ``max|a - b| / max|b|`` (0 when both vanish)."""
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    if a.size == 0:
        return 0.0
    scale = max(float(np.max(np.abs(b))), float(np.max(np.abs(a))) if not np.any(b) else 0.0)
    err = float(np.max(np.abs(a - b)))
    return 0.0 if err == 0 else err / scale if scale > 0 else math.inf


def _mlp_weight_entry(path: np.ndarray, l: int) -> tuple[int, int]:
    """The weight ``(a, b)`` a circuit uses in layer ``l`` (``b = 0`` for the output layer)."""
    L = path.size
    return int(path[l - 1]), int(path[l]) if l < L else 0


def _check_identities(cfg, n: _Net, X, G, rng) -> dict:
    """Circuit sums vs autograd for every input (module docstring, step 1)."""
    from umwelt.circuits import ConvCircuits, ConvNetwork

    B = X.shape[0]
    conv = n.net if n.kind == "conv" else ConvNetwork.from_layered(n.net)
    circuits = [ConvCircuits(conv, X[b].reshape(-1), G[b], pool=cfg.pool) for b in range(B)]
    counts = [cc.count for cc in circuits]
    total = sum(counts)
    enumerate_ = cfg.force_enumerate or total <= cfg.max_circuits
    if cfg.force_enumerate and total > cfg.max_circuits:
        raise EnumerationLimitError(
            f"enumerating {total} circuits ({B} inputs × {counts[0]} circuits"
            f"{'' if len(set(counts)) == 1 else ' or so'}) is over the memory budget of "
            f"{cfg.max_circuits} (--max-circuits); drop --enumerate to sum by dynamic programming"
        )
    D = conv.depth
    if enumerate_:  # one input's circuits at a time: units, parameters, values per layer
        from umwelt import memory

        memory.check_fits(f"enumerating {total:,} circuits", 8 * max(counts) * (2 * D + 8))
    # Hessian entries along sampled circuits: (input, l, p, l', q)
    entries: list[tuple[int, int, int, int, int]] = []
    if D >= 2:
        for _ in range(cfg.checks):
            b = int(rng.integers(B))
            if counts[b] == 0:
                continue
            path = circuits[b].sample_paths(1, rng)
            prm = circuits[b].params(path)[0]
            l1, l2 = sorted(int(v) for v in rng.choice(np.arange(1, D + 1), 2, replace=False))
            entries.append((b, l1, int(prm[l1 - 1]), l2, int(prm[l2 - 1])))
    f_c, f_t, g_c, g_t, h_c, h_t = [], [], [], [], [], []
    for b, cc in enumerate(circuits):
        mine = [e[1:] for e in entries if e[0] == b]
        ft, gt, ht = _autograd(conv, X[b], cc.forward.gates, mine)
        f_t.append(ft)
        g_t.append(np.concatenate([g.ravel() for g in gt]))
        h_t.extend(ht)
        if enumerate_:
            fc, gc, hc = _enumerated_sums(n, cc, X[b], G[b], mine, cfg.max_circuits)
        else:
            fc = cc.path_sum()
            gc = cc.gradient()
            hc = cc.hessian_entries(mine) if mine else np.zeros(0)
        f_c.append(fc)
        g_c.append(np.concatenate([g.ravel() for g in gc]))
        h_c.extend(hc)
    return {
        "circuits": circuits,
        "n_circuits": counts[0],
        "n_circuits_per_input": counts,
        "enumerated": bool(enumerate_),
        "method": "enumeration" if enumerate_ else "dynamic programming over the circuit graph",
        "f_autograd": f_t,
        "f_circuits": f_c,
        "sum_rel_error": _rel(f_c, f_t),
        "grad_rel_error": _rel(np.concatenate(g_c), np.concatenate(g_t)),
        "hessian_rel_error": _rel(h_c, h_t) if h_t else None,
        "grad_entries_checked": int(sum(g.size for g in g_t)),
        "hessian_entries_checked": len(h_t),
    }


def _enumerated_sums(n: _Net, cc: ConvCircuits, x, gates, entries, budget):
    """Σψ, every Σ Ω⁽¹⁾ and the Σ Ω⁽²⁾ of ``entries`` by listing every circuit."""
    from umwelt.circuits import PathIndex, circuit_values, sampled_first_order, second_order

    if n.kind == "mlp":  # the numba kernels of umwelt.circuits
        net = n.net
        psi = circuit_values(net, x.reshape(-1), gates, limit=budget)
        paths = PathIndex.from_network(net).all_paths(limit=budget)
        grads = []
        for l in range(1, net.depth + 1):
            om = sampled_first_order(net, x.reshape(-1), gates, paths, l)
            g = np.zeros(net.weights[l - 1].shape)
            col = paths[:, l] if l < net.depth else np.zeros(len(paths), dtype=np.int64)
            np.add.at(g, (paths[:, l - 1], col), om)
            grads.append(g)
        hess = []
        for l1, p, l2, q in entries:
            a, b = divmod(p, net.weights[l1 - 1].shape[1])
            c, d = divmod(q, net.weights[l2 - 1].shape[1])
            hess.append(second_order(net, x.reshape(-1), gates, l1, a, b, l2, c, d).sum())
        return float(psi.sum()), grads, np.array(hess)
    paths = cc.all_paths(limit=budget)
    psi = cc.values(paths)
    prm = cc.params(paths)
    grads = []
    for l, W in enumerate(cc.net.weights, start=1):
        om = cc.values(paths, l)
        grads.append(np.bincount(prm[:, l - 1], weights=om, minlength=W.size).reshape(W.shape))
    hess = []
    for l1, p, l2, q in entries:
        m = (prm[:, l1 - 1] == p) & (prm[:, l2 - 1] == q)
        hess.append(cc.values(paths[m], (l1, l2)).sum())
    return float(psi.sum()), grads, np.array(hess)


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


# -- through training -----------------------------------------------------------------------------


def _open_mlp_run(path: Path, epochs: tuple[int, ...] | None):
    """``(Run, the epochs to measure)``, or :class:`ConfigError` for a directory that is not a
    training run of an MLP, one without checkpoints, or epochs it did not checkpoint."""
    from sim.runs import Run

    run = Run.open(path)
    if run.kind == "train" and not str(run.config.model).startswith("mlp:"):
        raise ConfigError(
            f"--run: the assembly moments through training are for MLPs; the train run "
            f"{str(run.path)!r} trains {run.config.model}"
        )
    found = run.require_checkpoints(purpose=" to measure")
    missing = [e for e in epochs or () if e not in found]
    if missing:
        raise ConfigError(
            f"epoch{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))} not in the "
            f"run {str(run.path)!r}: its checkpointed epochs are {', '.join(map(str, found))}"
        )
    return run, tuple(epochs or found)


def _run_inputs(cfg: CircuitsConfig, run, n0: int) -> tuple[np.ndarray, str]:
    """``(X (B, n_0), where they come from)``: ``x``, else the run's first training examples
    (when its dataset loads), else standard-normal vectors."""
    if cfg.x is not None:
        x = np.asarray(_load_input(cfg.x) if isinstance(cfg.x, Path) else cfg.x, dtype=np.float64)
        if x.size != n0:
            raise ShapeError(
                f"the input has {x.size} values (shape {x.shape}) but the net takes {n0}"
            )
        if not np.all(np.isfinite(x)):
            raise ConfigError(f"the input {str(cfg.x)!r} holds non-finite values")
        return x.reshape(1, n0), "given"
    try:
        X = np.asarray(run.data().X_train[: cfg.inputs], dtype=np.float64).reshape(-1, n0)
        return X, f"training set of the run ({run.config.dataset})"
    except (UmweltError, ValueError, OSError) as e:
        rng = np.random.default_rng(cfg.seed + 1)
        return rng.normal(size=(cfg.inputs, n0)), f"standard normal (the run's data: {e})"


def _through_training(cfg: CircuitsConfig, t0: float) -> dict:
    """The assembly moments at the run's epochs (module docstring, *Through training*)."""
    import torch

    from umwelt.circuits import net_assembly_moments, plant_mean

    run, epochs = _open_mlp_run(cfg.run, cfg.epochs)
    rows, planted_rows, plant = [], [], None
    X = where = net = None
    for e in epochs:
        kind, net = _to_net(run.model(e, dtype=torch.float64))
        if kind != "mlp":
            raise ConfigError(f"--run: the net of {str(run.path)!r} is not an MLP")
        if X is None:
            X, where = _run_inputs(cfg, run, net.widths[0])
        opts = {"temperature": cfg.temperature, "entries": cfg.samples, "seed": cfg.seed}
        rows.append((e, net_assembly_moments(net, X, **opts)))
        if cfg.plant_mean is not None:
            planted, plant = plant_mean(net, *cfg.plant_mean, seed=cfg.seed)
            planted_rows.append((e, net_assembly_moments(planted, X, planted=plant, **opts)))
    out: dict[str, Any] = {
        "mode": "training",
        "net": {
            "kind": "mlp",
            "description": f"MLP {'-'.join(map(str, net.widths))} from {cfg.run}",
            "run": str(cfg.run),
            "run_kind": run.kind,
        },
        "depth": net.depth,
        "n_parameters": int(sum(w.size for w in net.weights)),
        "temperature": cfg.temperature,
        "seed": cfg.seed,
        "inputs": int(X.shape[0]),
        "input_source": where,
        "entries": rows[0][1].entries,
        "epochs": list(epochs),
        "plant_mean": None if plant is None else plant.as_dict(),
        "moments": [{"epoch": e, **m.as_dict()} for e, m in rows],
        "moments_planted": [{"epoch": e, **m.as_dict()} for e, m in planted_rows] or None,
    }
    if cfg.out is not None:
        out["figures"] = [str(_training_figure(cfg, out, rows, planted_rows))]
    out["wall_s"] = time.perf_counter() - t0
    if cfg.out is not None:
        from sim.runs import write_json

        write_json(Path(cfg.out) / "circuits.json", out)
    return out


def _training_figure(cfg: CircuitsConfig, out: dict, rows, planted_rows) -> Path:
    from sim.runs import atomic_write
    from umwelt.circuits import moments_series
    from umwelt.plotting import plot_assembly_moments_training

    series = {"as trained": moments_series([m for _, m in rows])}
    if planted_rows:
        p = out["plant_mean"]
        label = f"planted: {p['fraction']:g} of each layer's weights {p['shift']:+g} RMS"
        series[label] = moments_series([m for _, m in planted_rows])
    T = f"T = {cfg.temperature:g}" if cfg.temperature else "ReLU gates"
    fig, _ = plot_assembly_moments_training(
        [e for e, _ in rows],
        series,
        labels={
            "f": "f (order 0)",
            "grad": "gradient entries ∂f/∂W (order 1)",
            "hess": f"{out['entries']} Hessian entries ∂²f/∂W∂W' (order 2)",
        },
        title=f"assemblies of {out['net']['description']}, {out['inputs']} inputs, {T}",
    )
    return atomic_write(
        Path(cfg.out) / "assembly_moments_training.png",
        lambda p: fig.savefig(p, format="png", dpi=120),
    )


def _note(s: dict) -> str:
    return (
        f"mean/std {s['mean_over_std']:+.3f}, skew {s['skewness']:+.2f}, "
        f"P(>0|≠0) {s['frac_positive']:.3f}, p(v vs −v) {s['sym_test_pvalue']:.2g}"
    )


def _figures(cfg, n: _Net, values, sym, compare, sym_init, moments) -> list[str]:
    from sim.runs import atomic_write
    from umwelt.plotting import plot_assembly_moments, plot_circuit_histograms

    out = Path(cfg.out)
    label = "trained" if compare is not None else "sampled"
    if cfg.checkpoint is not None:
        label = str(cfg.which)
    panels, notes = {}, {}
    for o, v in values.items():
        name = ORDER_LABELS[o]
        panels[name] = {label: v}
        notes[name] = {label: _note(sym[o])}
        if compare is not None and o in compare:
            panels[name]["init"] = compare[o]
            notes[name]["init"] = _note(sym_init[o])
    T = f"T = {cfg.temperature:g}" if cfg.temperature else "ReLU gates"
    fig, _ = plot_circuit_histograms(
        panels,
        notes=notes,
        title=f"uniformly sampled circuits of {n.description} ({T}, {cfg.samples} per panel)",
    )
    paths = [
        atomic_write(
            out / "circuit_histograms.png", lambda p: fig.savefig(p, format="png", dpi=120)
        )
    ]
    if moments is not None:
        ref = {"f": 2.0 * (moments.gain**2 / 2.0) ** np.asarray(moments.depths, float)}
        fig, _ = plot_assembly_moments(
            moments.depths,
            moments.widths,
            moments.mean,
            moments.mean_se,
            moments.second,
            moments.second_se,
            labels={
                "f": "f (order 0)",
                "grad": "gradient entries ∂f/∂W (order 1)",
                "hess": "Hessian entries ∂²f/∂W∂W' (order 2)",
            },
            references=ref if moments.temperature == 0 else None,
            title=(
                f"assemblies at He initialization, widths (n, …, n, 1), {moments.nets} nets × "
                f"{moments.inputs} inputs per point; dashed: E[f²] = 2c^(2L), c = g/√2 = "
                f"{moments.gain / math.sqrt(2):.3g}"
            ),
        )
        paths.append(
            atomic_write(
                out / "assembly_moments.png", lambda p: fig.savefig(p, format="png", dpi=120)
            )
        )
    return [str(p) for p in paths]
