"""The linear-cost relational layer: shapes, gradients, invariance, dense reference."""
from __future__ import annotations

import pytest
import torch

from kgrec.models import CompGCNLayer, RelationalGraph


def graph_of(example_graph) -> RelationalGraph:
    return RelationalGraph.from_hetero(example_graph.data)


def dense_reference(layer: CompGCNLayer, x, rel, g: RelationalGraph):
    """Sum over relations of dense normalised adjacency matrices: O(R·N²), for checking only."""
    out = layer.w_self(x)
    for r in range(len(g.relations)):
        m = g.edge_type == r
        A = torch.zeros(g.num_nodes, g.num_nodes)
        A.index_put_((g.edge_index[1][m], g.edge_index[0][m]), g.norm[m], accumulate=True)
        h = x * rel[r] if layer.composition == "mult" else x - rel[r]
        w = layer.w_reverse if g.reverse[r] else layer.w_forward
        out = out + A @ w(h)
    return out


@pytest.mark.parametrize("composition", ["mult", "sub"])
def test_layer_equals_the_dense_reference(example_graph, composition):
    torch.manual_seed(0)
    g = graph_of(example_graph)
    layer = CompGCNLayer(8, 6, composition)
    x, rel = torch.randn(g.num_nodes, 8), torch.randn(len(g.relations), 8)
    out, rel_out = layer(x, rel, g)
    assert out.shape == (g.num_nodes, 6) and rel_out.shape == (len(g.relations), 6)
    torch.testing.assert_close(out, dense_reference(layer, x, rel, g), rtol=1e-5, atol=1e-5)


def test_edge_order_does_not_change_the_output(example_graph):
    torch.manual_seed(0)
    g = graph_of(example_graph)
    layer = CompGCNLayer(8, 8)
    x, rel = torch.randn(g.num_nodes, 8), torch.randn(len(g.relations), 8)
    perm = torch.randperm(g.edge_index.shape[1])
    shuffled = RelationalGraph(g.num_nodes, g.offsets, g.edge_index[:, perm], g.edge_type[perm], g.reverse,
                               g.relations, g.norm[perm])
    torch.testing.assert_close(layer(x, rel, g)[0], layer(x, rel, shuffled)[0], rtol=1e-5, atol=1e-6)


def test_gradients_reach_every_weight_and_input(example_graph):
    g = graph_of(example_graph)
    layer = CompGCNLayer(4, 4)
    x = torch.randn(g.num_nodes, 4, requires_grad=True)
    rel = torch.randn(len(g.relations), 4, requires_grad=True)
    out, rel_out = layer(x, rel, g)
    (out.square().sum() + rel_out.sum()).backward()
    assert x.grad is not None and rel.grad is not None and rel.grad.abs().sum() > 0
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_flattening_keeps_every_edge_at_its_type_offset(example_graph):
    data = example_graph.data
    g = graph_of(example_graph)
    assert g.num_nodes == sum(data[t].num_nodes for t in data.node_types)
    assert g.edge_index.shape[1] == sum(data[et].edge_index.shape[1] for et in data.edge_types)
    r = g.relations.index(("user", "interacts_target", "item"))
    ei = g.edge_index[:, g.edge_type == r]
    assert torch.equal(ei[0] - g.offsets["user"], data["user", "interacts_target", "item"].edge_index[0])
    assert torch.equal(ei[1] - g.offsets["item"], data["user", "interacts_target", "item"].edge_index[1])
