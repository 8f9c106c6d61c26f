"""EASE and RP3beta: the closed forms against dense references, the cross-domain walk, and
their hyper-parameters chosen on validation."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch_geometric.data import HeteroData

from kgrec.eval import evaluate, mean_metrics, ranking_task
from kgrec.graph.artifact import GraphArtifact
from kgrec.models.itemknn import EASE, EASE_LAMBDAS, RP3BETA_ALPHAS, RP3BETA_BETAS, RP3beta
from kgrec.train.baselines import fit_baseline
from kgrec.train.config import LossConfig, StageConfig


def random_pairs(n_users: int, n_items: int, density: float, seed: int) -> torch.Tensor:
    """``[2, E]`` pairs of a random binary matrix, with user 0 and item 0 left empty."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n_users, n_items, generator=gen) < density
    x[0, :], x[:, 0] = False, False
    return x.nonzero().T


def dense(pairs: torch.Tensor, n_users: int, n_items: int) -> np.ndarray:
    x = np.zeros((n_users, n_items))
    x[pairs[0].numpy(), pairs[1].numpy()] = 1.0
    return x


def ease_reference(x: np.ndarray, lam: float) -> np.ndarray:
    """Steck's closed form, as written: B = I - P diag(1/diag(P)), P = (X^T X + lambda I)^-1, scores X B."""
    p = np.linalg.inv(x.T @ x + lam * np.eye(x.shape[1]))
    b = np.eye(x.shape[1]) - p / np.diag(p)
    return x @ b


@pytest.mark.parametrize("shape", [(12, 30), (30, 12)])
def test_ease_dual_and_primal_forms_give_the_closed_form_scores(shape):
    n_users, n_items = shape
    pairs = random_pairs(n_users, n_items, 0.3, seed=1)
    x = dense(pairs, n_users, n_items)
    users = torch.arange(n_users)
    dual, primal = EASE(pairs, n_users, n_items, dual=True), EASE(pairs, n_users, n_items, dual=False)
    for lam in (0.5, 10.0, 300.0):
        want = ease_reference(x, lam)
        np.testing.assert_allclose(dual.solve(lam)(users).numpy(), want, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(primal.solve(lam)(users).numpy(), want, rtol=1e-4, atol=1e-5)
        some = np.array([n_items - 1, 0, 3])  # scores on some columns alone: those columns of the full scores
        for form in (dual, primal):
            np.testing.assert_allclose(form.solve(lam)(users[1:5], some).numpy(), want[1:5][:, some], rtol=1e-4,
                                       atol=1e-5)
    assert EASE(pairs, n_users, n_items).dual == (n_items > n_users)


def test_ease_scores_a_user_without_history_zero_and_ignores_duplicate_pairs():
    pairs = random_pairs(10, 25, 0.3, seed=2)
    twice = torch.cat([pairs, pairs], 1)
    users = torch.arange(10)
    once = EASE(pairs, 10, 25).solve(20.0)(users)
    assert torch.equal(once[0], torch.zeros(25))
    torch.testing.assert_close(EASE(twice, 10, 25).solve(20.0)(users), once)


@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (0.5, 0.3), (0.75, 0.5)])
def test_rp3beta_matches_a_dense_reference(alpha, beta):
    n_users, n_items = 15, 20
    pairs = random_pairs(n_users, n_items, 0.25, seed=3)
    x = dense(pairs, n_users, n_items)
    d_u, d_i = np.maximum(x.sum(1), 1), np.maximum(x.sum(0), 1)
    w = np.diag(d_i ** -alpha) @ x.T @ np.diag(d_u ** -alpha) @ x @ np.diag(d_i ** -beta)  # [I, I]
    want = x @ w
    users = torch.tensor([3, 0, 7, 14])
    got = RP3beta(pairs, n_users, n_items, alpha).scores(users, beta)
    np.testing.assert_allclose(got.numpy(), want[users.numpy()], rtol=1e-5, atol=1e-7)
    some = torch.tensor([19, 2, 5])
    got = RP3beta(pairs, n_users, n_items, alpha, items=some).scores_each(users, (beta, 0.0))
    np.testing.assert_allclose(got[0].numpy(), want[np.ix_(users.numpy(), some.numpy())], rtol=1e-5, atol=1e-7)
    if beta > 0:  # beta divides by the candidate's popularity
        assert not np.allclose(got[0].numpy(), got[1].numpy())


def tiny_artifact() -> GraphArtifact:
    """Items 0, 3: source; 1 (t), 2 (t2): target. User 0 has only the source item 0, which
    user 1 shares and user 1 has t; t2 is the more popular target item (users 2 and 3)."""
    inter = pd.DataFrame(
        [("source", 0, 0, "train"), ("source", 1, 0, "train"), ("source", 2, 3, "train"), ("source", 3, 3, "train"),
         ("target", 1, 1, "train"), ("target", 2, 2, "train"), ("target", 3, 2, "train"),
         ("target", 3, 1, "valid"), ("target", 0, 1, "test")],
        columns=["domain", "user", "item", "split"]).assign(duplicate=False)
    data = HeteroData()
    data["user"].num_nodes, data["item"].num_nodes, data["entity"].num_nodes = 4, 4, 0
    items = pd.DataFrame({"domain": ["source", "target", "target", "source"]})
    return GraphArtifact(data=data, nodes={"item": items}, interactions=inter, relations=pd.DataFrame(),
                         literals=pd.DataFrame())


def random_artifact(seed: int = 0, n_users: int = 80, n_source: int = 30, n_target: int = 40) -> GraphArtifact:
    """Items ``[0, n_source)`` source, the rest target; a few pairs per user and domain, drawn with
    a popularity skew; one target pair per user held out for validation, one for test."""
    gen = np.random.default_rng(seed)
    rows = []
    for domain, lo, n, k in (("source", 0, n_source, 4), ("target", n_source, n_target, 6)):
        weights = 1.0 / np.arange(1, n + 1)
        for u in range(n_users):
            picked = lo + gen.choice(n, size=k, replace=False, p=weights / weights.sum())
            splits = ["train"] * k if domain == "source" else ["train"] * (k - 2) + ["valid", "test"]
            rows += [(domain, u, int(i), sp) for i, sp in zip(picked, splits)]
    data = HeteroData()
    data["user"].num_nodes, data["item"].num_nodes, data["entity"].num_nodes = n_users, n_source + n_target, 0
    items = pd.DataFrame({"domain": ["source"] * n_source + ["target"] * n_target})
    inter = pd.DataFrame(rows, columns=["domain", "user", "item", "split"]).assign(duplicate=False)
    return GraphArtifact(data=data, nodes={"item": items}, interactions=inter, relations=pd.DataFrame(),
                         literals=pd.DataFrame())


def fit(name: str, artifact: GraphArtifact, **kw):
    return fit_baseline(name, artifact, StageConfig(), LossConfig(), **kw)


def test_rp3beta_merged_reaches_a_target_item_only_through_the_source():
    a = tiny_artifact()
    user0 = torch.tensor([0])
    merged = fit("rp3beta_merged", a).score(user0)[0]
    assert merged[1] > merged[2]  # user 0 -> source item 0 -> user 1 -> t, above the more popular t2
    assert torch.isinf(merged[[0, 3]]).all()  # source items are never candidates
    alone = fit("rp3beta", a).score(user0)[0]
    assert alone[2] > alone[1] > 0  # no target history: MostPop order
    raw = RP3beta(torch.cat([a.split("train", "source"), a.split("train", "target")], 1), 4, 4, 1.0,
                  items=a.items_of("target")).scores(user0, 0.0)
    assert raw[0, 0] > 0 and raw[0, 1] == 0


@pytest.mark.parametrize("name", ["ease", "rp3beta"])
def test_a_user_without_target_history_falls_back_to_popularity(name):
    scores = fit(name, tiny_artifact()).score(torch.tensor([0]))[0]
    assert scores[2] > scores[1]


@pytest.mark.parametrize("name,grid", [("ease", len(EASE_LAMBDAS)),
                                       ("rp3beta", len(RP3BETA_ALPHAS) * len(RP3BETA_BETAS)),
                                       ("rp3beta_merged", len(RP3BETA_ALPHAS) * len(RP3BETA_BETAS))])
def test_fit_baseline_keeps_the_best_setting_on_validation(name, grid):
    artifact = random_artifact()
    logs = []
    f = fit(name, artifact, k=5, log=logs.append)
    h = f.history
    assert len(h) == grid and h["setting"].is_unique and (h["model"] == name).all()
    assert h["valid_ndcg@5"].nunique() > 1  # the grid matters here, so the choice is tested
    task = ranking_task(artifact, "valid")
    valid = mean_metrics(evaluate(lambda us: f.score(us)[:, task.items], task, (5,)))["ndcg@5"]
    assert valid == pytest.approx(h["valid_ndcg@5"].max())
    chosen = h.loc[h["valid_ndcg@5"].idxmax(), "setting"]
    assert any(f"chose {chosen} " in m for m in logs)


@pytest.mark.parametrize("name", ["ease", "rp3beta", "rp3beta_merged"])
def test_fit_baseline_on_the_example_graph_scores_every_target_item(example_graph, name):
    f = fit(name, example_graph)
    n_users, n_items = int(example_graph.data["user"].num_nodes), int(example_graph.data["item"].num_nodes)
    users = torch.arange(n_users)
    scores = f.score(users)
    assert scores.shape == (n_users, n_items)
    target, source = example_graph.items_of("target"), example_graph.items_of("source")
    assert torch.isfinite(scores[:, target]).all() and torch.isinf(scores[:, source]).all()
    assert "valid_ndcg@10" in f.history and len(f.history) > 1


def two_domain_graph(n_users: int, n_target: int, n_source: int, seed: int):
    """A RelationalGraph of users and items (targets first), interactions both ways, and its dense ``X``."""
    from kgrec.models.graph import RelationalGraph
    pairs = random_pairs(n_users, n_target + n_source, 0.3, seed)
    data = HeteroData()
    data["user"].num_nodes, data["item"].num_nodes = n_users, n_target + n_source
    data["user", "interacts", "item"].edge_index = pairs
    data["item", "rev_interacts", "user"].edge_index = pairs.flip(0)
    return RelationalGraph.from_hetero(data), dense(pairs, n_users, n_target + n_source)


@pytest.mark.parametrize("weight", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("n_users", [8, 40])  # the dual and the primal form
def test_the_ease_filter_scores_are_ease_over_the_source_weighted_matrix(weight, n_users):
    from kgrec.models.itemknn import EASEFilter
    graph, x = two_domain_graph(n_users, 18, 12, seed=4)
    targets = torch.arange(18)
    x[:, 18:] *= weight  # the source's columns at their weight (0: left out)
    lam = 7.0
    p = np.linalg.inv(x.T @ x + lam * np.eye(x.shape[1]))
    b = np.eye(x.shape[1]) - p / np.diag(p)
    want = (x @ b)[:, :18]
    ease = EASEFilter(graph, targets, weight, neighbours=1_000, lam=lam)  # nothing truncated
    users = torch.arange(n_users)
    np.testing.assert_allclose(ease.scores(users, targets).numpy(), want, rtol=1e-4, atol=1e-5)
    # a new user with user 3's items scores as user 3 does
    np.testing.assert_allclose(ease.history_scores(torch.from_numpy(np.flatnonzero(x[3])), targets).numpy()[0],
                               want[3], rtol=1e-4, atol=1e-5)
    # truncated: each target item keeps its 4 weights of largest magnitude, so a user's score is theirs alone
    kept = EASEFilter(graph, targets, weight, neighbours=4, lam=lam).item_walks(targets).op.to_dense().numpy()
    assert ((kept != 0).sum(0) <= 4).all()
    np.fill_diagonal(b, 0.0)
    for j in range(18):  # the magnitudes kept are the 4 largest of the column (which of a tie: either)
        np.testing.assert_allclose(np.sort(np.abs(kept[:, j]))[-4:], np.sort(np.abs(b[:, j]))[-4:], rtol=1e-4, atol=1e-6)
        assert set(np.flatnonzero(np.abs(kept[:, j]) > 1e-6)) <= set(np.flatnonzero(np.abs(b[:, j]) > 1e-6))


def test_the_ease_filter_chooses_lambda_on_validation_and_reuses_a_fit(monkeypatch):
    from kgrec.eval.ranking import RankingTask, _group
    from kgrec.models import itemknn
    from kgrec.train.trainer import fit_ease
    graph, x = two_domain_graph(30, 18, 12, seed=5)
    users = torch.arange(1, 30)
    held = torch.tensor([[u, int(np.flatnonzero(x[u, :18] == 0)[0])] for u in users.tolist()]).T  # one unseen item each
    seen = torch.from_numpy(np.stack(np.nonzero(x[:, :18])))
    task = RankingTask(users, torch.arange(18), _group(held[0], held[1], users), _group(seen[0], seen[1], users))
    ease = itemknn.EASEFilter(graph, torch.arange(18), 0.5)
    lambdas = (1.0, 10.0, 50.0, 1000.0)
    value, found = fit_ease(ease, task, k=5, lambdas=lambdas)
    exact = {lam: found[f"ease w=0.5 lambda={lam:g} exact"] for lam in lambdas}  # every lambda scored exactly
    shortlist = sorted(lambdas, key=lambda lam: (-exact[lam], lam))[:itemknn.EASE_SHORTLIST]
    truncated = {lam: found[f"ease w=0.5 lambda={lam:g}"] for lam in shortlist}  # the best few truncated
    assert len(found) == len(lambdas) + len(shortlist)
    assert ease.lam == max(shortlist, key=lambda lam: (truncated[lam], -lam))
    assert value == truncated[ease.lam]  # the kept operator's own score
    again = itemknn.EASEFilter(graph, torch.arange(18), 0.5)
    monkeypatch.setattr(itemknn.EASEFilter, "fits", lambda *a, **kw: pytest.fail("refitted"))
    assert fit_ease(again, task, k=5, lambdas=lambdas) == (value, found) and again.lam == ease.lam  # the earlier fit
    torch.testing.assert_close(again.scores(users, torch.arange(18)), ease.scores(users, torch.arange(18)))
