"""The terms a run adds for new items: a content kNN that orders them among themselves and a shift
that places them among the warm items, chosen on validation and reproduced when the run is served."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from kgrec import build_graph
from kgrec.eval import mean_metrics, ranking_task
from kgrec.models.content import ContentKNN, NewItemTerms, new_item_terms
from kgrec.models.encoder import items_with_interactions
from kgrec.models.paths import standardise
from kgrec.serve import evaluate_run, load_run
from kgrec.train import trainer
from kgrec.train.config import make_config


@pytest.fixture(scope="module")
def cold_graph(example_spec):
    return build_graph(replace(example_spec, cold_start=replace(example_spec.cold_start, items=0.25)))


def _train(artifact, out, **over):
    artifact.save(out.parent / f"{out.name}-graph")
    cfg = make_config(None, {"graph": str(out.parent / f"{out.name}-graph"), "mode": "target_only", "model.dim": 8, "target_only.epochs": 3,
                             "target_only.batch_size": 4, "model.cold_item_id": "zero", **over})
    return trainer.train(cfg, out, progress=False, log=lambda m: None, artifact=artifact)


def test_the_terms_add_content_and_a_shift_to_new_items_and_leave_warm_items_as_blended():
    scores = torch.tensor([[3.0, 1.0, 2.0, 0.0], [0.0, 2.0, 1.0, 4.0]])
    items = torch.tensor([0, 1, 2, 3])
    cold = torch.tensor([False, True, False, True])
    content = torch.tensor([[0.0, 1.0, 0.0, 3.0], [2.0, 0.0, 0.0, 1.0]])
    terms = NewItemTerms(None, {}, 0.5, cold, 2.0)
    terms.content = ContentKNN(sp.csr_matrix(np.eye(4, dtype=np.float32)), torch.tensor([[0], [0]]), 2)
    out = terms.apply(scores, items, content)
    z, zc = standardise(scores), standardise(content)
    assert torch.allclose(out[:, ~cold], z[:, ~cold])  # a warm item's score is the blend's
    assert torch.allclose(out[:, cold], z[:, cold] + 0.5 * zc[:, cold] + 2.0)
    # no term on: the blend itself, not even standardised
    assert NewItemTerms(None, {}, 0.0, cold, 0.0).apply(scores, items, content) is scores
    assert not NewItemTerms(None, {}, 1.0, cold, 0.0).active  # a weight without a kNN is off


def test_a_saved_state_rebuilds_the_same_terms(cold_graph, tmp_path):
    state = {"content": {"kind": "entities", "hops": 2, "history": "target"}, "content_weight": 0.5, "cold_shift": 1.0}
    cold = torch.zeros(int(cold_graph.data["item"].num_nodes), dtype=torch.bool)
    cold[cold_graph.cold_items()] = True
    terms = new_item_terms(state, cold_graph, cold)
    assert terms.state() == state and terms.content is not None
    users, items = torch.arange(int(cold_graph.data["user"].num_nodes)), cold_graph.items_of("target")
    c = terms.content_scores(users, items)
    assert c.shape == (len(users), len(items)) and bool((c[:, cold[items]] > 0).any())  # new items reached by their KG neighbours
    assert new_item_terms({"content": None, "content_weight": 0.0, "cold_shift": 0.0}, cold_graph, cold) is None


def test_a_run_chooses_the_terms_on_validation_and_serving_scores_as_training_did(cold_graph, tmp_path):
    res = _train(cold_graph, tmp_path / "run")
    results = json.loads((res.run_dir / "results.json").read_text())
    chosen, seen = results["new_item_terms"], results["new_item_terms_valid"]
    # every shift was scored on validation and the one kept is the best (the smaller in size on a tie)
    shifts = {float(k): v for k, v in seen["shift"].items()}
    best = max(shifts.values())
    assert chosen["cold_shift"] == min((s for s, v in shifts.items() if v == best), key=abs)
    assert min(shifts) < 0 < max(shifts)  # new items may be pushed down as well as up
    assert results["valid"]["ndcg@10"] == pytest.approx(best)
    # the choice scored validation as the run scores it afterwards
    valid = ranking_task(cold_graph, "valid")
    again = mean_metrics(trainer.validate(res.model, res.graph, valid, (10,), paths=res.paths,
                                          path_weight=res.path_weight, terms=res.terms))
    assert again["ndcg@10"] == pytest.approx(best, abs=1e-6)
    assert set(seen["content"]) >= {"entities hops=1 history=target"}
    assert res.terms is not None and torch.equal(res.terms.cold, ~items_with_interactions(res.graph))
    # new items ranked among new items by the scores the whole catalogue's ranking gives them: a pair can only
    # rank higher among fewer candidates, never lower
    items = results["test_items"]
    assert items["cold"]["ndcg@10"] <= items["cold_among_cold"]["ndcg@10"] + 1e-9
    # a loaded run scores its test split with the same terms: the same metrics as training reported
    run = load_run(res.run_dir)
    assert run.new_items == chosen
    served = evaluate_run(run, "test")
    assert served["all"]["ndcg@10"] == pytest.approx(results["test"]["ndcg@10"], abs=1e-6)
    for kind, m in results["test_items"].items():
        assert served[f"{kind}_items"]["ndcg@10"] == pytest.approx(m["ndcg@10"], abs=1e-6)


def test_a_run_with_the_terms_off_or_without_new_items_adds_none(cold_graph, example_graph, tmp_path):
    off = json.loads((_train(cold_graph, tmp_path / "off", **{"model.new_item_terms": False}).run_dir
                      / "results.json").read_text())
    assert off["new_item_terms"] == {"content": None, "content_weight": 0.0, "cold_shift": 0.0}
    assert off["new_item_terms_valid"] == {}
    res = _train(example_graph, tmp_path / "warm")  # no new item (a few items with no training pair are not)
    assert not len(example_graph.cold_items())
    warm = json.loads((res.run_dir / "results.json").read_text())
    assert warm["new_item_terms_valid"] == {} and warm["new_item_terms"]["cold_shift"] == 0.0


def test_a_new_users_content_scores_from_their_history_are_a_known_users_with_that_history():
    f = sp.csr_matrix(np.array([[1, 0, 0], [0.6, 0.8, 0], [0, 0.6, 0.8], [0, 0, 1]], dtype=np.float32))
    knn = ContentKNN(f, torch.tensor([[0, 0, 1], [0, 2, 3]]), num_users=2)
    items = torch.arange(4)
    assert torch.allclose(knn.history_scores(torch.tensor([2, 0, 2]), items), knn.scores(torch.tensor([0]), items))
    assert torch.allclose(knn.history_scores(torch.tensor([3]), items), knn.scores(torch.tensor([1]), items))
