"""The relational layers and the encoder: shapes, gradients, invariance, dense references."""
from __future__ import annotations

import pytest
import torch

from kgrec.models import CompGCNLayer, Encoder, ModelConfig, RelationalGraph, RGCNLayer
from kgrec.models.graph import sparse_op, spmm


def graph_of(example_graph) -> RelationalGraph:
    return RelationalGraph.from_hetero(example_graph.data)


def dense_adjacency(g: RelationalGraph, r: int, values: torch.Tensor) -> torch.Tensor:
    m = g.edge_type == r
    A = torch.zeros(g.num_nodes, g.num_nodes)
    A.index_put_((g.edge_index[1][m], g.edge_index[0][m]), values[m], accumulate=True)
    return A


def compgcn_reference(layer: CompGCNLayer, x, rel, g: RelationalGraph):
    """Sum over relations of dense normalised adjacency matrices: O(R·N²), for checking only."""
    out = layer.w_self(x) if layer.transform else 0
    for r in range(len(g.relations)):
        h = {"mult": x * rel[r], "sub": x - rel[r], "none": x}[layer.composition]
        if layer.transform:
            h = (layer.w_reverse if g.reverse[r] else layer.w_forward)(h)
        out = out + dense_adjacency(g, r, g.norm) @ h
    return out


def rgcn_reference(layer: RGCNLayer, x, g: RelationalGraph):
    out = layer.w_self(x)
    weights = layer.relation_weights()
    for r in range(len(g.relations)):
        A = dense_adjacency(g, r, torch.ones_like(g.norm))
        deg = A.sum(1, keepdim=True).clamp(min=1)
        out = out + (A / deg) @ x @ weights[r]
    return out


def make_layer(kind: str, g: RelationalGraph, d_in: int, d_out: int):
    if kind == "rgcn-bases":
        return RGCNLayer(d_in, d_out, len(g.relations), num_bases=3)
    if kind == "rgcn-full":
        return RGCNLayer(d_in, d_out, len(g.relations), num_bases=0)
    parts = kind.split("-")
    return CompGCNLayer(d_in, d_out, parts[1], init="xavier", transform=len(parts) < 3)


LAYERS = ["compgcn-sub", "compgcn-mult", "compgcn-mult-light", "compgcn-none-light", "rgcn-bases", "rgcn-full"]


@pytest.mark.parametrize("kind", LAYERS)
def test_layer_equals_its_dense_reference(example_graph, kind):
    torch.manual_seed(0)
    g = graph_of(example_graph)
    d_out = 8 if kind.endswith("light") else 6
    layer = make_layer(kind, g, 8, d_out)
    x, rel = torch.randn(g.num_nodes, 8), torch.randn(len(g.relations), 8)
    out, rel_out = layer(x, rel, g)
    assert out.shape == (g.num_nodes, d_out)
    if kind.startswith("compgcn"):
        assert rel_out.shape == (len(g.relations), 6 if layer.transform else 8)
        ref = compgcn_reference(layer, x, rel, g)
    else:
        ref = rgcn_reference(layer, x, g)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", LAYERS)
def test_edge_order_does_not_change_the_output(example_graph, kind):
    torch.manual_seed(0)
    g = graph_of(example_graph)
    layer = make_layer(kind, g, 8, 8)
    x, rel = torch.randn(g.num_nodes, 8), torch.randn(len(g.relations), 8)
    perm = torch.randperm(g.edge_index.shape[1])
    shuffled = RelationalGraph(g.num_nodes, g.offsets, g.edge_index[:, perm], g.edge_type[perm], g.reverse,
                               g.relations, g.norm[perm], g.sizes)
    torch.testing.assert_close(layer(x, rel, g)[0], layer(x, rel, shuffled)[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", LAYERS)
def test_gradients_reach_every_weight_and_input(example_graph, kind):
    g = graph_of(example_graph)
    layer = make_layer(kind, g, 4, 4)
    x = torch.randn(g.num_nodes, 4, requires_grad=True)
    rel = torch.randn(len(g.relations), 4, requires_grad=True)
    out, rel_out = layer(x, rel, g)
    (out.square().sum() + rel_out.sum()).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert rel.grad is not None and rel.grad.abs().sum() > 0
    if kind.endswith("light"):
        assert not list(layer.parameters())
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("composition,transform", [("mult", False), ("mult", True), ("sub", True), ("none", False)])
def test_the_default_encoder_starts_as_plain_normalised_propagation(example_graph, composition, transform):
    g = graph_of(example_graph)
    enc = Encoder(g.sizes, len(g.relations), ModelConfig(dim=5, layers=1, composition=composition,
                                                         transform=transform, combine="last"))
    A = sum(dense_adjacency(g, r, g.norm) for r in range(len(g.relations)))
    out = enc(g)
    torch.testing.assert_close(out.h, A @ out.h0, rtol=1e-5, atol=1e-6)


def test_flattening_keeps_every_edge_at_its_type_offset(example_graph):
    data = example_graph.data
    g = graph_of(example_graph)
    assert g.num_nodes == sum(data[t].num_nodes for t in data.node_types)
    assert g.edge_index.shape[1] == sum(data[et].edge_index.shape[1] for et in data.edge_types)
    r = g.relations.index(("user", "interacts_target", "item"))
    ei = g.edge_index[:, g.edge_type == r]
    assert torch.equal(ei[0] - g.offsets["user"], data["user", "interacts_target", "item"].edge_index[0])
    assert torch.equal(ei[1] - g.offsets["item"], data["user", "interacts_target", "item"].edge_index[1])
    assert g.node_slice("item") == slice(g.offsets["item"], g.offsets["item"] + data["item"].num_nodes)


@pytest.mark.parametrize("combine,width", [("mean", 8), ("last", 8), ("concat", 24)])
def test_encoder_combines_its_layers(example_graph, combine, width):
    g = graph_of(example_graph)
    enc = Encoder(g.sizes, len(g.relations), ModelConfig(dim=8, layers=2, combine=combine))
    out = enc(g)
    assert out.h.shape == (g.num_nodes, width) and enc.out_dim == width
    assert out.h0.shape == (g.num_nodes, 8) and out.z.shape == (len(g.relations), 8)
    layers = [out.h0, *out.hidden]
    expected = {"mean": torch.stack(layers).mean(0), "last": layers[-1], "concat": torch.cat(layers, 1)}[combine]
    assert torch.allclose(out.h, expected, atol=1e-6)


def test_noise_moves_every_layer_output_by_its_length_within_the_orthant(example_graph):
    g = graph_of(example_graph)
    enc = Encoder(g.sizes, len(g.relations), ModelConfig(dim=8, layers=2))
    clean = enc(g)
    assert len(clean.hidden) == 2
    torch.manual_seed(0)
    noisy = enc(g, noise=0.1)
    torch.testing.assert_close(noisy.h0, clean.h0)
    # layer 1 sees clean inputs: its output moves by exactly 0.1 per row, away from zero in each coordinate
    delta = noisy.hidden[0] - clean.hidden[0]
    nonzero = clean.hidden[0].abs().min(1).values > 0
    assert nonzero.any()
    torch.testing.assert_close(delta[nonzero].norm(dim=1), torch.full((int(nonzero.sum()),), 0.1))
    assert (delta[nonzero] * clean.hidden[0][nonzero] >= 0).all()
    assert not torch.allclose(noisy.h, clean.h)


def test_encoder_projects_input_features_into_the_embedding(example_graph):
    g = graph_of(example_graph)
    feats = {"item": torch.randn(g.sizes["item"], 5)}
    enc = Encoder(g.sizes, len(g.relations), ModelConfig(dim=8), feats)
    h0 = enc(g).h0
    items = h0[g.node_slice("item")]
    torch.testing.assert_close(items, enc.embeddings["item"].weight + feats["item"] @ enc.projections["item"].weight.T)
    with pytest.raises(ValueError, match="rows"):
        Encoder(g.sizes, len(g.relations), ModelConfig(dim=8), {"item": torch.randn(3, 5)})


def test_rgcn_encoder_runs_end_to_end(example_graph):
    g = graph_of(example_graph)
    enc = Encoder(g.sizes, len(g.relations), ModelConfig(dim=8, layer="rgcn", num_bases=2))
    enc(g).h.sum().backward()
    assert all(p.grad is not None for n, p in enc.named_parameters() if n.startswith("layers"))


@pytest.mark.parametrize("name", ["dot", "distmult", "bilinear", "mlp"])
def test_every_head_scores_a_pair_as_it_scores_it_in_full_ranking_and_among_a_users_negatives(name):
    from kgrec.models import make_head

    torch.manual_seed(0)
    head = make_head(name, 4)
    for p in head.parameters():  # away from the identity/zero start
        torch.nn.init.normal_(p)
    u, items = torch.randn(3, 4), torch.randn(5, 4)
    full = head.score_all(u, items)
    pairs = head.score(u.repeat_interleave(5, 0), items.repeat(3, 1)).view(3, 5)
    each = head.score_each(u, items.expand(3, 5, 4))  # each user against its own five (here the same)
    assert full.shape == each.shape == (3, 5)
    assert torch.allclose(full, pairs, atol=1e-5) and torch.allclose(each, pairs, atol=1e-5)


def test_rows_are_gathered_with_the_gradient_of_advanced_indexing():
    from kgrec.models.graph import gather_rows

    gen = torch.Generator().manual_seed(0)
    table = torch.randn(6, 3, generator=gen, requires_grad=True)
    index = torch.tensor([[5, 0, 5], [2, 2, 2]])  # any shape, repeats
    rows = gather_rows(table, index)
    assert rows.shape == (2, 3, 3) and torch.equal(rows, table[index])
    grad = torch.randn(2, 3, 3, generator=gen)
    assert torch.allclose(torch.autograd.grad(rows, table, grad)[0], torch.autograd.grad(table[index], table, grad)[0])


@pytest.mark.parametrize("rows,cols,width", [(7, 5, 3), (7, 5, 1), (0, 5, 3), (7, 5, 0)])
def test_sparse_product_and_its_gradient_equal_the_dense_ones(rows, cols, width):
    gen = torch.Generator().manual_seed(0)
    n = 12 if rows and cols else 0
    r, c = torch.randint(max(rows, 1), (n,), generator=gen), torch.randint(cols, (n,), generator=gen)
    v = torch.rand(n, generator=gen)
    dense = torch.zeros(rows, cols).index_put_((r, c), v, accumulate=True)  # duplicates summed
    op = sparse_op(r, c, v, (rows, cols))
    x = torch.randn(width, cols, generator=gen).T.requires_grad_(True)  # column-major, as a transposed grad can be
    assert torch.allclose(spmm(op.a, x.detach()), dense @ x.detach(), atol=1e-6)
    out = op(x)
    assert out.shape == (rows, width) and torch.allclose(out, dense @ x, atol=1e-6)
    out.square().sum().backward()
    assert torch.allclose(x.grad, dense.T @ (2 * dense @ x.detach()), atol=1e-5)
