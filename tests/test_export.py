"""Exports: networkx formats reload, and the RDF bundle rebuilds the same graph."""
from __future__ import annotations

import networkx as nx
import pytest

from kgrec import build_graph, export_graph, load_spec, to_networkx


def edge_set(g):
    """(relation, src, dst) triples keyed by original ids, independent of node order."""
    G = to_networkx(g)
    def key(n):
        t, _, rest = n.partition(":")
        if t == "entity" and rest.startswith("urn:kgrec:entity#"):
            from urllib.parse import unquote
            rest = unquote(rest.split("#", 1)[1])
        return f"{t}:{rest}"
    return {(r, key(a), key(b)) for a, b, r in G.edges(data="relation")}


def test_graphml_reloads_with_the_same_nodes_and_edges(example_graph, tmp_path):
    export_graph(example_graph, tmp_path / "g.graphml", "graphml")
    G = nx.read_graphml(tmp_path / "g.graphml", force_multigraph=True)
    ref = to_networkx(example_graph)
    assert set(G.nodes) == set(ref.nodes)
    assert G.number_of_edges() == ref.number_of_edges()
    assert G.nodes["user:u1"]["domain"] == "both"


def test_edgelist_has_one_line_per_edge(example_graph, tmp_path):
    export_graph(example_graph, tmp_path / "g.tsv", "edgelist")
    lines = (tmp_path / "g.tsv").read_text().splitlines()
    assert len(lines) == to_networkx(example_graph).number_of_edges()


@pytest.mark.parametrize("fmt", ["ntriples", "turtle"])
def test_rdf_export_rebuilds_the_same_graph(example_graph, tmp_path, fmt):
    export_graph(example_graph, tmp_path / "rdf", fmt)
    rebuilt = build_graph(load_spec(tmp_path / "rdf" / "spec.toml"))
    assert rebuilt.manifest["counts"] == example_graph.manifest["counts"]
    assert edge_set(rebuilt) == edge_set(example_graph)
    key = lambda g: sorted(zip(g.interactions["domain"], g.nodes["user"]["id"][g.interactions["user"]],
                               g.nodes["item"]["id"][g.interactions["item"]], g.interactions["split"]))
    assert key(rebuilt) == key(example_graph)
