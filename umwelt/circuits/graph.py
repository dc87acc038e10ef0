r"""The circuit graph: a layered network as a networkx ``DiGraph`` (THEORY.md §3).

Nodes are the input units ``("x", i)``, the gates ``(l, i)`` of the hidden layers
``1 ≤ l ≤ L-1``, and the output :data:`OUTPUT` ``= ("f", 0)``; every node carries ``layer``
(0 for inputs, ``L`` for the output), ``index`` and ``kind`` (``"input"``, ``"gate"``,
``"output"``), inputs their ``value`` and gates their state ``open`` when an input and gates
are given. Edges run from layer ``l-1`` to layer ``l`` and carry ``weight`` :math:`W^l_{ab}`
and ``layer`` ``l``. A basis circuit is a path from an input to the output,

.. math::
    ("x", i_0) \to (1, i_1) \to \cdots \to (L-1, i_{L-1}) \to ("f", 0),

whose value is the input times the edge weights times the gate states along it.
:func:`reference_circuits` enumerates them with :func:`networkx.all_simple_paths`: the slow,
obviously correct reference for :func:`~umwelt.circuits.circuit_values`.
:func:`network_from_graph` turns a complete layered graph back into a
:class:`~umwelt.network.LayeredNetwork`, and :func:`draw_circuit_graph` draws small nets with
their gates or one circuit highlighted.

>>> net = LayeredNetwork([[[1.0, 2.0]], [[3.0], [4.0]]])  # widths (1, 2, 1)
>>> G = circuit_graph(net)
>>> sorted(G.successors(("x", 0))), G.edges[(1, 1), OUTPUT]["weight"]
([(1, 0), (1, 1)], 4.0)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import networkx as nx
import numpy as np

from umwelt.circuits._chain import check_inputs, check_network
from umwelt.circuits.index import PathIndex
from umwelt.errors import ConfigError, EnumerationLimitError, ShapeError
from umwelt.network import LayeredNetwork

__all__ = [
    "MAX_REFERENCE_CIRCUITS",
    "OUTPUT",
    "circuit_graph",
    "draw_circuit_graph",
    "network_from_graph",
    "reference_circuits",
]

OUTPUT: tuple[str, int] = ("f", 0)
"""The output node."""

MAX_REFERENCE_CIRCUITS: int = 2**20
"""Default limit of :func:`reference_circuits` (networkx walks about 10^5 paths a second)."""


def _node(layer: int, i: int, L: int):
    if layer == 0:
        return ("x", i)
    if layer == L:
        return OUTPUT
    return (layer, i)


def circuit_graph(
    net: LayeredNetwork,
    x: np.ndarray | None = None,
    gates: Sequence[np.ndarray] | None = None,
) -> nx.DiGraph:
    """The network as a ``DiGraph`` (module docstring), nodes and edges in index order.

    Args:
        net: the network.
        x: one input ``(n_0,)``, stored as the inputs' ``value`` (optional).
        gates: one gate configuration, ``L-1`` arrays ``(n_l,)``, stored as the gates' ``open``;
            with ``x`` and no gates, the ReLU gates of ``x`` are stored.

    Raises:
        ShapeError: when ``x`` or the gates do not fit, or are a batch.
    """
    check_network(net)
    L = net.depth
    xs = hs = None
    if x is not None or gates is not None:
        x_in = np.zeros(net.widths[0]) if x is None else x
        xs, hs, _ = check_inputs(net, x_in, gates)
        if xs.shape[0] != 1:
            raise ShapeError(f"a circuit graph takes one input and gates, got a batch of {len(xs)}")
        if x is None:
            xs = None
    G = nx.DiGraph(widths=net.widths)
    for l, n in enumerate(net.widths):
        kind = "input" if l == 0 else "output" if l == L else "gate"
        for i in range(n):
            attrs: dict = {"layer": l, "index": i, "kind": kind}
            if kind == "input" and xs is not None:
                attrs["value"] = float(xs[0, i])
            if kind == "gate" and hs is not None:
                attrs["open"] = bool(hs[l - 1][0, i])
            G.add_node(_node(l, i, L), **attrs)
    for l, w in enumerate(net.weights, start=1):
        for a in range(w.shape[0]):
            for b in range(w.shape[1]):
                G.add_edge(_node(l - 1, a, L), _node(l, b, L), weight=float(w[a, b]), layer=l)
    return G


def _layer_of(node) -> int | None:
    """Layer of a well-formed node name, or None (the output's is resolved by the caller)."""
    if not (isinstance(node, tuple) and len(node) == 2):
        return None
    tag, i = node
    if isinstance(i, bool) or not isinstance(i, int | np.integer) or i < 0:
        return None
    if tag == "x":
        return 0
    if node == OUTPUT:
        return -1
    if isinstance(tag, int | np.integer) and not isinstance(tag, bool) and tag >= 1:
        return int(tag)
    return None


def network_from_graph(G: nx.DiGraph) -> LayeredNetwork:
    """The :class:`~umwelt.network.LayeredNetwork` of a complete layered circuit graph.

    The graph must have the node names of :func:`circuit_graph` (inputs ``("x", i)``, gates
    ``(l, i)``, output :data:`OUTPUT`), contiguous layers and indices, and exactly one edge with
    a finite ``weight`` from every unit of a layer to every unit of the next (a zero weight is
    an edge of weight 0).

    Raises:
        ConfigError: naming the node or edge that breaks this: an unknown node, a gap in the
            layers or indices, an edge that skips or goes back a layer, a missing edge or
            weight, a multigraph or undirected graph.
    """
    if not isinstance(G, nx.DiGraph) or G.is_multigraph():
        raise ConfigError(f"expected a networkx DiGraph, got {type(G).__name__}")
    if OUTPUT not in G:
        raise ConfigError(f"the graph has no output node {OUTPUT!r}")
    layers: dict[int, list[int]] = {}
    for node in G.nodes:
        lay = _layer_of(node)
        if lay is None:
            raise ConfigError(
                f"node {node!r} is not an input ('x', i), a gate (layer ≥ 1, i) or the output "
                f"{OUTPUT!r}"
            )
        if lay >= 0:
            layers.setdefault(lay, []).append(int(node[1]))
    if 0 not in layers:
        raise ConfigError("the graph has no input nodes ('x', i)")
    L = max(layers) + 1
    widths = []
    for l in range(L):
        if l not in layers:
            raise ConfigError(f"the graph has gates in layers up to {L - 1} but none in layer {l}")
        idx = sorted(layers[l])
        if idx != list(range(len(idx))):
            missing = sorted(set(range(max(idx) + 1)) - set(idx))
            name = "inputs" if l == 0 else f"layer {l}"
            raise ConfigError(f"the {name} must be numbered 0..{max(idx)}; missing {missing}")
        widths.append(len(idx))
    widths.append(1)

    def layer(node) -> int:
        return L if node == OUTPUT else _layer_of(node)

    weights = [np.full((a, b), np.nan) for a, b in itertools.pairwise(widths)]
    for u, v, data in G.edges(data=True):
        lu, lv = layer(u), layer(v)
        if lv != lu + 1:
            raise ConfigError(
                f"the graph is not layered: edge {u!r} → {v!r} goes from layer {lu} to layer {lv}"
            )
        w = data.get("weight")
        if (
            isinstance(w, bool)
            or not isinstance(w, int | float | np.number)
            or not math.isfinite(w)
        ):
            raise ConfigError(f"edge {u!r} → {v!r} needs a finite weight, got {w!r}")
        weights[lu][u[1], 0 if v == OUTPUT else v[1]] = float(w)
    for l, w in enumerate(weights, start=1):
        if np.isnan(w).any():
            a, b = (int(t) for t in np.argwhere(np.isnan(w))[0])
            raise ConfigError(
                f"the graph is not complete: edge {_node(l - 1, a, L)!r} → {_node(l, b, L)!r} is "
                "missing (add it with weight 0)"
            )
    return LayeredNetwork(weights)


def reference_circuits(
    net: LayeredNetwork,
    x: np.ndarray,
    gates: Sequence[np.ndarray] | None = None,
    *,
    max_circuits: int | None = None,
    limit: int = MAX_REFERENCE_CIRCUITS,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Every circuit and its value by :func:`networkx.all_simple_paths` (slow, obvious).

    Builds :func:`circuit_graph` and walks the simple paths from each input, in input order, to
    the output; a path's value is the input's ``value`` times its edges' weights times its
    gates' states, read off the graph.

    Args:
        net: the network.
        x: one input ``(n_0,)``.
        gates: one gate configuration (``None``: the ReLU gates of ``x``).
        max_circuits: stop after this many paths (for timing a subset).
        limit: refuse nets with more circuits than this, unless ``max_circuits`` is given.

    Returns:
        ``(paths, values)``: int64 ``(N, L)`` digits and float64 ``(N,)``, in networkx's order.

    Raises:
        EnumerationLimitError: when the net has more than ``limit`` circuits.
    """
    G = circuit_graph(net, x, gates)
    N = PathIndex.from_network(net).count
    if max_circuits is None and N > limit:
        raise EnumerationLimitError(
            f"networkx would walk {N} circuits, over the limit of {limit}; pass max_circuits="
        )
    stop = N if max_circuits is None else min(N, int(max_circuits))
    paths, values = [], []
    for i in range(net.widths[0]):
        if len(paths) >= stop:
            break
        for path in nx.all_simple_paths(G, ("x", i), OUTPUT):
            v = G.nodes[path[0]]["value"]
            for u, w in itertools.pairwise(path):
                v *= G.edges[u, w]["weight"]
                if G.nodes[w]["kind"] == "gate":
                    v *= 1.0 if G.nodes[w]["open"] else 0.0
            paths.append([node[1] for node in path[:-1]])
            values.append(v)
            if len(paths) >= stop:
                break
    return np.array(paths, dtype=np.int64).reshape(-1, net.depth), np.array(values, dtype=float)


def draw_circuit_graph(
    G: nx.DiGraph,
    *,
    circuit: Sequence[int] | int | None = None,
    ax=None,
    labels: bool = True,
    title: str | None = None,
):
    """Draw a (small) circuit graph, layers left to right, with gate states and a circuit.

    Edges are blue for positive and red for negative weights, their width proportional to
    ``|w|`` and faint into a closed gate; gates are green when open, grey when closed, white
    when unknown; the given circuit is drawn in black on top, with its value in the title when
    inputs and gates are known.

    Args:
        G: a graph from :func:`circuit_graph`.
        circuit: a path ``(i_0, ..., i_{L-1})`` or its index, to highlight.
        ax: matplotlib axes to draw on, else a new figure.
        labels: write each unit's index in its node.
        title: the axes' title (default: the widths, and the circuit's value if any).

    Returns:
        ``(fig, ax)``.

    Raises:
        ConfigError: for a circuit out of range (and as :func:`network_from_graph`).
    """
    from matplotlib.collections import LineCollection
    from matplotlib.colors import to_rgba
    from matplotlib.figure import Figure

    net = network_from_graph(G)
    widths = net.widths
    L = net.depth
    if ax is None:
        fig = Figure(figsize=(1.6 * (L + 1) + 1, 0.45 * max(widths) + 1.5), layout="constrained")
        ax = fig.subplots()
    else:
        fig = ax.figure
    pos = {
        node: (float(d["layer"]), (widths[d["layer"]] - 1) / 2 - d["index"])
        for node, d in G.nodes(data=True)
    }
    wmax = max((abs(d["weight"]) for _, _, d in G.edges(data=True)), default=1.0) or 1.0
    segs, colors, lws = [], [], []
    for u, v, d in G.edges(data=True):
        segs.append([pos[u], pos[v]])
        closed = G.nodes[v].get("open") is False  # an edge into a closed gate carries nothing
        colors.append(
            to_rgba("#3182bd" if d["weight"] >= 0 else "#de2d26", 0.15 if closed else 0.6)
        )
        lws.append(0.3 + 2.7 * abs(d["weight"]) / wmax)
    ax.add_collection(LineCollection(segs, colors=colors, linewidths=lws, zorder=1))

    path_nodes: list = []
    value = None
    if circuit is not None:
        index = PathIndex(widths[:-1])
        p = index.path(circuit if np.ndim(circuit) == 0 else index.index(circuit))
        path_nodes = [_node(l, i, L) for l, i in enumerate(p)] + [OUTPUT]
        hl = [[pos[u], pos[v]] for u, v in itertools.pairwise(path_nodes)]
        ax.add_collection(LineCollection(hl, colors="black", linewidths=3.5, zorder=2))
        if "value" in G.nodes[path_nodes[0]] and all(
            "open" in G.nodes[n] for n in path_nodes[1:-1]
        ):
            value = G.nodes[path_nodes[0]]["value"]
            for u, v in itertools.pairwise(path_nodes):
                value *= G.edges[u, v]["weight"]
                if G.nodes[v]["kind"] == "gate":
                    value *= float(G.nodes[v]["open"])

    face = {"input": "#9ecae1", "output": "#fd8d3c"}
    nodes = list(G.nodes(data=True))
    fc = []
    for _, d in nodes:
        if d["kind"] == "gate":
            fc.append("white" if "open" not in d else "#31a354" if d["open"] else "#d9d9d9")
        else:
            fc.append(face[d["kind"]])
    on_path = set(path_nodes)
    ax.scatter(
        [pos[n][0] for n, _ in nodes],
        [pos[n][1] for n, _ in nodes],
        s=260,
        c=fc,
        edgecolors=["black" if n in on_path else "#525252" for n, _ in nodes],
        linewidths=[2.5 if n in on_path else 0.8 for n, _ in nodes],
        zorder=3,
    )
    if labels:
        for n, d in nodes:
            ax.text(*pos[n], str(d["index"]), ha="center", va="center", fontsize=7, zorder=4)
    ax.set_xticks(range(L + 1), ["x"] + [f"h{l}" for l in range(1, L)] + ["f"])
    ax.set_yticks([])
    ax.set_xlim(-0.4, L + 0.4)
    ax.set_ylim(-(max(widths) - 1) / 2 - 0.6, (max(widths) - 1) / 2 + 0.6)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    if title is None:
        title = "widths " + "-".join(map(str, widths))
        if circuit is not None:
            title += f", circuit {tuple(p)}"
            if value is not None:
                title += f": Ψ = {value:.4g}"
    ax.set_title(title)
    return fig, ax
