"""Path scores: normalised walk counts over the graph, and their blend with the embedding scores."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from kgrec.eval import rank, ranking_task
from kgrec.eval.ranking import rank_each
from kgrec.models import RelationalGraph
from kgrec.models.paths import PathScorer, blend, blends, standardise


def out_degrees(graph: RelationalGraph) -> np.ndarray:
    return np.bincount(graph.edge_index[0].numpy(), minlength=graph.num_nodes).astype(float)


def dense_walks(graph: RelationalGraph, alpha: float, hops: int) -> np.ndarray:
    """The reference: W[v, u] = deg(u)^-alpha deg(v)^(alpha-1) for every edge u -> v, W^hops."""
    w, deg = np.zeros((graph.num_nodes, graph.num_nodes)), out_degrees(graph)
    for s, d in graph.edge_index.T.tolist():
        w[d, s] += deg[s] ** -alpha * deg[d] ** (alpha - 1)
    return np.linalg.matrix_power(w, hops)


@pytest.mark.parametrize("alpha,hops", [(0.5, 1), (0.75, 3), (1.0, 5)])
def test_path_scores_are_the_normalised_walk_counts(example_graph, alpha, hops):
    graph = RelationalGraph.from_hetero(example_graph.data)
    scorer = PathScorer(graph, hops, alpha)
    users = torch.arange(graph.sizes["user"])
    items = example_graph.items_of("target")
    got = scorer.scores(users, items).numpy()
    ref = dense_walks(graph, alpha, hops)
    want = ref[np.ix_(items.numpy() + graph.offsets["item"], users.numpy() + graph.offsets["user"])].T
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    assert got.max() > 0


def test_a_hand_computed_three_step_walk():
    from torch_geometric.data import HeteroData

    # u0 - i0 - u1 - i1, symmetric; alpha = 1: each step divides by the degree of the node it leaves
    data = HeteroData()
    data["user"].num_nodes, data["item"].num_nodes = 2, 2
    data["user", "interacts_target", "item"].edge_index = torch.tensor([[0, 1, 1], [0, 0, 1]])
    data["item", "rev_interacts_target", "user"].edge_index = torch.tensor([[0, 0, 1], [0, 1, 1]])
    scorer = PathScorer(RelationalGraph.from_hetero(data), hops=3, alpha=1.0)
    # to i1: u0 -> i0 (1/1) -> u1 (1/2) -> i1 (1/2) = 1/4; to i0: u0 -> i0 -> u0 -> i0 (1/2) + u0 -> i0 -> u1 -> i0 (1/4)
    assert scorer.scores(torch.tensor([0]), torch.tensor([0, 1])).tolist() == [[0.75, 0.25]]


def test_even_walks_are_refused(example_graph):
    with pytest.raises(ValueError, match="odd"):
        PathScorer(RelationalGraph.from_hetero(example_graph.data), hops=2)


def test_a_new_users_history_walks_like_a_user_with_those_edges(example_graph):
    graph = RelationalGraph.from_hetero(example_graph.data)
    scorer = PathScorer(graph, 3, 0.75)
    items = example_graph.items_of("target")
    train = torch.cat([example_graph.split("train", "source"), example_graph.split("train", "target")], 1)
    for u in train[0].unique().tolist():
        mine = train[1][train[0] == u].unique()
        torch.testing.assert_close(scorer.history_scores(mine, items), scorer.scores(torch.tensor([u]), items))


def test_standardised_rows_have_mean_zero_and_unit_spread():
    x = torch.tensor([[1.0, 2.0, 3.0, 6.0], [5.0, 5.0, 5.0, 5.0]])
    z = standardise(x)
    torch.testing.assert_close(z[0].mean(), torch.tensor(0.0))
    torch.testing.assert_close(z[0].pow(2).mean(), torch.tensor(1.0))
    assert z[1].tolist() == [0.0, 0.0, 0.0, 0.0]  # a constant row carries no preference


def test_the_blend_weighs_the_two_standardised_scores():
    e = torch.tensor([[3.0, 2.0, 1.0]])
    p = torch.tensor([[0.0, 0.1, 1.0]])
    assert blend(e, p, 0.0) is e and blend(e, None, 2.0) is e
    torch.testing.assert_close(blend(e, p, 2.0), standardise(e) + 2 * standardise(p))
    assert blend(e, p, 0.1).argmax().item() == 0 and blend(e, p, 10.0).argmax().item() == 2


def test_blending_at_several_weights_at_once_equals_blending_at_each():
    gen = torch.Generator().manual_seed(0)
    e, p = torch.randn(4, 9, generator=gen), torch.rand(4, 9, generator=gen)
    weights = (0.0, 0.25, 1.0, 3.0)
    many = blends(e, p, weights)
    assert many[0] is e and all(torch.equal(m, blend(e, p, w)) for m, w in zip(many, weights))


def test_ranking_several_scorings_at_once_equals_ranking_each(example_graph):
    task = ranking_task(example_graph, "test", exclude=("train", "valid"))
    gen = torch.Generator().manual_seed(0)
    tables = [torch.rand(int(example_graph.data["user"].num_nodes), len(task.items), generator=gen) for _ in range(3)]
    together = rank_each(lambda u: [t[u] for t in tables], task, 4, memory_mb=1)
    for t, top in zip(tables, together):
        assert torch.equal(top, rank(lambda u: t[u], task, 4, memory_mb=1))


def dense_rp3(graph: RelationalGraph, alpha: float, beta: float, hops: int) -> np.ndarray:
    """RP3beta's walk: W[v, u] = deg(u)^-alpha for every edge u -> v, W^hops, the node reached / deg^beta."""
    w, deg = np.zeros((graph.num_nodes, graph.num_nodes)), out_degrees(graph)
    for s, d in graph.edge_index.T.tolist():
        w[d, s] += deg[s] ** -alpha
    return np.diag(np.maximum(deg, 1) ** -beta) @ np.linalg.matrix_power(w, hops)


@pytest.mark.parametrize("alpha,beta,hops", [(0.25, 0.0, 3), (0.5, 0.25, 3), (1.0, 0.5, 1)])
def test_rp3beta_walks_weigh_each_step_by_the_source_degree_and_the_item_by_its_popularity(example_graph, alpha,
                                                                                          beta, hops):
    graph = RelationalGraph.from_hetero(example_graph.data)
    scorer = PathScorer(graph, hops, alpha, beta)
    users = torch.arange(graph.sizes["user"])
    items = torch.arange(graph.sizes["item"])
    got = scorer.scores(users, items).numpy()
    ref = dense_rp3(graph, alpha, beta, hops)
    want = ref[np.ix_(items.numpy() + graph.offsets["item"], users.numpy() + graph.offsets["user"])].T
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_the_default_three_step_walk_ranks_like_rp3beta_at_alpha_one(example_graph):
    # deg(u)^-a deg(i)^-1 deg(v)^-1 deg(j)^(a-1): RP3beta at (1, 1 - a) times a factor per user
    graph = RelationalGraph.from_hetero(example_graph.data)
    users = torch.arange(graph.sizes["user"])
    items = torch.arange(graph.sizes["item"])
    default = PathScorer(graph, 3, 0.75).scores(users, items)
    rp3 = PathScorer(graph, 3, 1.0, 0.25).scores(users, items)
    ratio = default / rp3.where(rp3 > 0, torch.ones_like(rp3))
    for row, r in zip(ratio, rp3):
        assert torch.allclose(row[r > 0], row[r > 0][0].expand(int((r > 0).sum())), rtol=1e-4)


def test_a_run_chooses_its_filter_by_the_filters_own_validation_score(example_graph):
    from kgrec.eval import evaluate, mean_metrics
    from kgrec.train.trainer import choose_filter

    graph = RelationalGraph.from_hetero(example_graph.data)
    task = ranking_task(example_graph, "valid")
    scorer, scores = choose_filter(graph, 3, 0.75, task, 10)
    assert set(scores) == {"default"} | {f"rp3 a={a:g} b={b:g}" for a in (0.25, 0.5, 1.0) for b in (0.0, 0.25, 0.5)}
    assert max(scores.values()) == pytest.approx(
        mean_metrics(evaluate(lambda u: scorer.scores(u, task.items), task, (10,)))["ndcg@10"])


def test_another_beta_shares_the_walk_and_scores_like_a_fresh_scorer(example_graph):
    graph = RelationalGraph.from_hetero(example_graph.data)
    users, items = torch.arange(graph.sizes["user"]), example_graph.items_of("target")
    walk = PathScorer(graph, 3, 0.5, 0.0)
    walk.scores(users, items)
    other = walk.with_beta(0.25)
    assert other._operators is walk._operators and walk.beta == 0.0
    torch.testing.assert_close(other.scores(users, items), PathScorer(graph, 3, 0.5, 0.25).scores(users, items))
    with pytest.raises(ValueError):
        PathScorer(graph, 3, 0.75).with_beta(0.25)
