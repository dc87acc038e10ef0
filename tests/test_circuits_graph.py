"""The circuit graph (umwelt.circuits.graph): networkx reference, conversion, drawing.

Oracle: ``networkx.all_simple_paths`` on the graph, each path's value read off node and edge
attributes; the numba enumeration must give the same circuits, the same values and (through the
path index) the same order.
"""

from __future__ import annotations

import io

import networkx as nx
import numpy as np
import pytest
from cases import TINY_WIDTHS, inputs, tiny_network

from umwelt import ConfigError, EnumerationLimitError, LayeredNetwork, ShapeError
from umwelt.circuits import (
    OUTPUT,
    PathIndex,
    circuit_graph,
    circuit_values,
    draw_circuit_graph,
    network_from_graph,
    reference_circuits,
)

SMALL = [TINY_WIDTHS[k] for k in sorted(TINY_WIDTHS)] + [(3, 1), (1, 3, 1, 2, 1), (3, 3, 2, 1)]


@pytest.mark.parametrize("widths", SMALL, ids=str)
@pytest.mark.parametrize("kind", ["sampled", "relu"])
def test_enumeration_equals_networkx_all_simple_paths(widths, kind):
    net = LayeredNetwork.he_normal(widths, seed=1)
    x = inputs(net, batch=1, seed=2)
    if kind == "sampled":
        gates = [h[0] for h in net.sample(x, 1.0, np.random.default_rng(3)).gates]
    else:
        gates = [h[0] for h in net.relu_sample(x).gates]
    paths, ref = reference_circuits(net, x[0], gates)
    index = PathIndex.from_network(net)
    assert paths.shape == (index.count, net.depth)
    idx = index.indices(paths)
    assert sorted(idx.tolist()) == list(range(index.count))  # every circuit exactly once
    np.testing.assert_array_equal(idx, np.arange(index.count))  # and in index order
    psi = circuit_values(net, x[0], gates)
    np.testing.assert_allclose(psi[idx], ref, rtol=1e-13, atol=0)
    np.testing.assert_array_equal(psi[idx] == 0, ref == 0)
    np.testing.assert_allclose(ref.sum(), net.output(x, gates)[0], rtol=1e-10, atol=1e-14)


def test_graph_nodes_edges_and_attributes():
    net = tiny_network("3-4-3-1")
    x = inputs(net, batch=1)[0]
    gates = [np.array([True, False, True, True]), np.array([False, True, True])]
    G = circuit_graph(net, x, gates)
    assert G.number_of_nodes() == 3 + 4 + 3 + 1
    assert G.number_of_edges() == 12 + 12 + 3
    assert G.graph["widths"] == (3, 4, 3, 1)
    assert G.nodes[("x", 2)] == {"layer": 0, "index": 2, "kind": "input", "value": x[2]}
    assert G.nodes[(1, 1)] == {"layer": 1, "index": 1, "kind": "gate", "open": False}
    assert G.nodes[OUTPUT] == {"layer": 3, "index": 0, "kind": "output"}
    assert G.edges[(1, 3), (2, 0)] == {"weight": net.weights[1][3, 0], "layer": 2}
    assert nx.is_directed_acyclic_graph(G)
    bare = circuit_graph(net)
    assert "value" not in bare.nodes[("x", 0)] and "open" not in bare.nodes[(1, 0)]
    relu = circuit_graph(net, x)  # the ReLU gates of x
    assert [relu.nodes[(1, i)]["open"] for i in range(4)] == net.relu_sample(x).gates[0][0].tolist()


@pytest.mark.parametrize("widths", SMALL, ids=str)
def test_network_from_graph_round_trip(widths):
    net = LayeredNetwork.he_normal(widths, seed=4)
    back = network_from_graph(circuit_graph(net))
    assert back.widths == net.widths
    for a, b in zip(back.weights, net.weights, strict=True):
        np.testing.assert_array_equal(a, b)


def broken(what: str) -> nx.DiGraph:
    G = circuit_graph(tiny_network("3-4-3-1"))
    if what == "skip":
        G.add_edge(("x", 0), (2, 1), weight=1.0)
    elif what == "back":
        G.add_edge((2, 1), (1, 0), weight=1.0)
    elif what == "missing":
        G.remove_edge((1, 2), (2, 0))
    elif what == "unknown":
        G.add_node("bias")
    elif what == "gap":
        G.remove_node((1, 2))
    elif what == "weight":
        G.edges[(1, 2), (2, 0)]["weight"] = float("nan")
    elif what == "no_output":
        G.remove_node(OUTPUT)
    elif what == "empty_layer":
        G.remove_nodes_from([(1, i) for i in range(4)])
    return G


@pytest.mark.parametrize(
    "what, message",
    [
        ("skip", r"not layered: edge \('x', 0\) → \(2, 1\) goes from layer 0 to layer 2"),
        ("back", r"not layered: edge \(2, 1\) → \(1, 0\) goes from layer 2 to layer 1"),
        ("missing", r"not complete: edge \(1, 2\) → \(2, 0\) is missing"),
        ("unknown", r"node 'bias' is not an input"),
        ("gap", r"layer 1 must be numbered 0..3; missing \[2\]"),
        ("weight", r"edge \(1, 2\) → \(2, 0\) needs a finite weight, got nan"),
        ("no_output", r"no output node \('f', 0\)"),
        ("empty_layer", r"gates in layers up to 2 but none in layer 1"),
    ],
)
def test_non_layered_graphs_are_refused_by_name(what, message):
    with pytest.raises(ConfigError, match=message):
        network_from_graph(broken(what))


def test_other_graph_types_are_refused():
    G = circuit_graph(tiny_network("2-2-1"))
    with pytest.raises(ConfigError, match="expected a networkx DiGraph, got Graph"):
        network_from_graph(nx.Graph(G))
    with pytest.raises(ConfigError, match="MultiDiGraph"):
        network_from_graph(nx.MultiDiGraph(G))


def test_reference_refuses_big_nets_and_stops_early():
    net = LayeredNetwork.he_normal((16, 32, 32, 32, 1), seed=0)
    x = np.ones(16)
    with pytest.raises(EnumerationLimitError, match="524288 circuits, over the limit of 1048"):
        reference_circuits(net, x, limit=1048)
    paths, values = reference_circuits(net, x, max_circuits=100)
    assert paths.shape == (100, 4) and values.shape == (100,)
    psi = circuit_values(net, x)
    np.testing.assert_allclose(values, psi[:100], rtol=1e-13)
    with pytest.raises(ShapeError, match="batch of 2"):
        circuit_graph(net, np.ones((2, 16)))


def test_draw_with_gates_and_a_highlighted_circuit():
    net = LayeredNetwork.he_normal((3, 3, 2, 1), seed=0)
    x = np.array([1.0, -0.5, 2.0])
    gates = [np.array([True, False, True]), np.array([True, True])]
    G = circuit_graph(net, x, gates)
    fig, ax = draw_circuit_graph(G, circuit=(2, 0, 1))
    psi = circuit_values(net, x, gates)[PathIndex.from_network(net).index((2, 0, 1))]
    assert f"Ψ = {psi:.4g}" in ax.get_title() and "(2, 0, 1)" in ax.get_title()
    assert len(ax.collections) == 3  # edges, the circuit, nodes
    fig.savefig(io.BytesIO(), format="png")
    fig2, ax2 = draw_circuit_graph(circuit_graph(net), circuit=5, labels=False, title="t")
    assert ax2.get_title() == "t"
    fig3, _ = draw_circuit_graph(G, ax=ax2)
    assert fig3 is fig2
    with pytest.raises(ConfigError, match=r"circuit index 18 is out of range \[0, 18\)"):
        draw_circuit_graph(G, circuit=18)
