"""The item cold-start protocol: new items reach training only through their knowledge."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from kgrec import build_graph
from kgrec.errors import SpecError
from kgrec.graph.info import format_info, graph_info
from kgrec.graph.spec import parse_spec
from kgrec.graph.views import target_only
from kgrec.models import RelationalGraph
from kgrec.train import trainer
from kgrec.train.config import make_config

MINIMAL = {"name": "x", "target": {"path": "t.csv"}}


@pytest.fixture(scope="module")
def cold_graph(example_spec):
    return build_graph(replace(example_spec, cold_start=replace(example_spec.cold_start, items=0.25)))


def interaction_edges_at(data_or_graph, items: set[int]) -> int:
    """Interaction edges (either direction) touching one of ``items`` in a HeteroData or RelationalGraph."""
    if isinstance(data_or_graph, RelationalGraph):
        g = data_or_graph
        lo, n = g.offsets["item"], g.sizes["item"]
        count = 0
        for (s, d), r in zip(g.edge_index.T.tolist(), g.edge_type.tolist()):
            _, rel, _ = g.relations[r]
            ends = {v - lo for v in (s, d) if lo <= v < lo + n}
            count += "interacts" in rel and bool(ends & items)
        return count
    count = 0
    for (s, rel, d) in data_or_graph.edge_types:
        if "interacts" not in rel:
            continue
        ei = data_or_graph[s, rel, d].edge_index
        col = ei[1] if d == "item" else ei[0]
        count += sum(int(i) in items for i in col.tolist())
    return count


def test_the_spec_takes_a_share_or_a_list_of_items():
    assert parse_spec({**MINIMAL, "cold_start": {"items": 0.2}}).cold_start.items == 0.2
    spec = parse_spec({**MINIMAL, "cold_start": {"items": ["dune", 7]}})
    assert spec.cold_start.item_ids == ("dune", "7") and spec.cold_start.items == 0.0
    for bad in (1.0, -0.1, [], [True], "dune"):
        with pytest.raises(SpecError, match="cold_start.items"):
            parse_spec({**MINIMAL, "cold_start": {"items": bad}})


def test_every_interaction_of_a_cold_item_is_held_out_and_its_knowledge_stays(cold_graph, example_graph):
    cold = set(cold_graph.cold_items().tolist())
    assert len(cold) == 2  # a quarter of the 8 books
    items = cold_graph.nodes["item"]
    assert (items.loc[list(cold), "domain"] == "target").all()
    inter = cold_graph.interactions
    on_cold = inter[inter["item"].isin(cold)]
    assert len(on_cold) and set(on_cold["split"]) <= {"valid", "test"}
    # split per item: all of one item's interactions in one split, both splits used
    assert on_cold.groupby("item")["split"].nunique().max() == 1 and on_cold["split"].nunique() == 2
    # the other items' splits are those of the build without the protocol
    warm = ~inter["item"].isin(cold)
    assert inter.loc[warm, "split"].tolist() == example_graph.interactions.loc[warm, "split"].tolist()
    # KG links of the cold items are unchanged
    ei = cold_graph.data["item", "linked_to", "entity"].edge_index
    ref = example_graph.data["item", "linked_to", "entity"].edge_index
    assert torch.equal(ei, ref) and bool(torch.isin(ei[0], torch.tensor(sorted(cold))).any())


def test_no_cold_item_has_an_interaction_edge_in_any_graph_the_encoder_sees(cold_graph):
    cold = set(cold_graph.cold_items().tolist())
    assert interaction_edges_at(cold_graph.data, cold) == 0
    assert interaction_edges_at(target_only(cold_graph.data), cold) == 0
    for data in (cold_graph.data, target_only(cold_graph.data)):
        assert interaction_edges_at(RelationalGraph.from_hetero(data), cold) == 0


@pytest.mark.parametrize("mode", ["transfer", "target_only"])
def test_no_cold_item_reaches_message_passing_or_a_loss_in_training(cold_graph, tmp_path, monkeypatch, mode):
    cold = set(cold_graph.cold_items().tolist())
    seen_graphs, loss_items = [], []
    from kgrec.models.encoder import Encoder
    real_forward, real_loss = Encoder.forward, trainer._interaction_loss

    def forward_spy(self, graph, *args, **kwargs):
        seen_graphs.append(graph)
        return real_forward(self, graph, *args, **kwargs)

    def loss_spy(model, h, domain, users, pos, data, graph, *args):
        loss, rows, h_items = real_loss(model, h, domain, users, pos, data, graph, *args)
        loss_items.append(rows[len(users):] - graph.offsets["item"])  # positives, then negatives
        return loss, rows, h_items

    monkeypatch.setattr(Encoder, "forward", forward_spy)
    monkeypatch.setattr(trainer, "_interaction_loss", loss_spy)
    cfg = make_config(None, {"graph": "unused", "mode": mode, "model.dim": 8, "pretrain.epochs": 2,
                             "finetune.epochs": 2, "target_only.epochs": 2, "pretrain.batch_size": 4,
                             "finetune.batch_size": 4, "target_only.batch_size": 4, "pretrain.cold_users": 0.5})
    trainer.train(cfg, tmp_path / "run", progress=False, log=lambda m: None, artifact=cold_graph)
    assert seen_graphs and loss_items
    assert all(interaction_edges_at(g, cold) == 0 for g in {id(g): g for g in seen_graphs}.values())
    drawn = torch.cat(loss_items).cpu()
    assert not bool(torch.isin(drawn, torch.tensor(sorted(cold))).any())


def test_a_list_of_items_holds_out_exactly_those(example_spec):
    cold = replace(example_spec.cold_start, item_ids=("dune", "neuromancer"))
    g = build_graph(replace(example_spec, cold_start=cold))
    items = g.nodes["item"]
    assert sorted(items.loc[g.cold_items().tolist(), "id"]) == ["dune", "neuromancer"]
    with pytest.raises(SpecError, match="cold_start.items.*not target items"):
        build_graph(replace(example_spec, cold_start=replace(example_spec.cold_start, item_ids=("heat",))))  # a movie


def test_the_choice_follows_the_seed(example_spec):
    def pick(seed: int) -> set[int]:
        cold = replace(example_spec.cold_start, items=0.5)
        return set(build_graph(replace(example_spec, seed=seed, cold_start=cold)).cold_items().tolist())

    assert pick(0) == pick(0)
    assert any(pick(s) != pick(0) for s in (1, 2, 3))


def test_info_reports_the_cold_items(cold_graph, example_graph):
    info = graph_info(cold_graph)
    c = info["cold_start_items"]
    assert c["items"] == 2 and c["train_interactions"] == 0
    assert c["valid_interactions"] + c["test_interactions"] == int(cold_graph.interactions["item"]
                                                                   .isin(cold_graph.cold_items().tolist()).sum())
    assert "cold-start items       2" in format_info(info)
    assert "cold-start items" not in format_info(graph_info(example_graph))


def test_with_zero_cold_ids_no_id_vector_decides_a_cold_items_score(cold_graph, tmp_path):
    cfg = make_config(None, {"graph": "unused", "mode": "target_only", "model.dim": 8, "target_only.epochs": 2,
                             "target_only.batch_size": 4, "model.cold_item_id": "zero", "model.item_id_dropout": 0.3})
    res = trainer.train(cfg, tmp_path / "run", progress=False, log=lambda m: None, artifact=cold_graph)
    model, graph = res.model.eval(), res.graph
    cold = cold_graph.cold_items()
    with torch.no_grad():
        before = model(graph)
        model.encoder.embeddings["item"].weight[cold] += 5.0  # whatever the untrained ID vector holds
        after = model(graph)
    assert torch.equal(before, after)
    assert before[cold + graph.offsets["item"]].abs().sum() > 0  # the KG neighbours give them a vector
    # "keep" keeps the ID vector in play
    keep = make_config(None, {"graph": "unused", "mode": "target_only", "model.dim": 8, "target_only.epochs": 1,
                              "target_only.batch_size": 4, "model.cold_item_id": "keep"})
    res = trainer.train(keep, tmp_path / "keep", progress=False, log=lambda m: None, artifact=cold_graph)
    with torch.no_grad():
        before = res.model.eval()(res.graph)
        res.model.encoder.embeddings["item"].weight[cold] += 5.0
        assert not torch.equal(before, res.model(res.graph))


def test_the_default_zeroes_cold_ids_on_a_graph_with_new_items_only(cold_graph, example_graph, tmp_path):
    cfg = make_config(None, {"graph": "unused", "mode": "target_only", "model.dim": 8, "target_only.epochs": 1,
                             "target_only.batch_size": 4})
    assert cfg.model.cold_item_id == "auto"
    for artifact, want in ((cold_graph, "zero"), (example_graph, "keep")):
        res = trainer.train(cfg, tmp_path / want, progress=False, log=lambda m: None, artifact=artifact)
        assert res.model.config.cold_item_id == want
        assert 'cold_item_id = "auto"' in (res.run_dir / "config.toml").read_text()  # the user's setting, resumable


def test_results_report_warm_and_cold_items_ranked_among_all_and_among_cold(cold_graph, tmp_path):
    import json

    from kgrec.eval import ranking_task
    from kgrec.eval.items import item_group_tasks
    test = ranking_task(cold_graph, "test", exclude=("train", "valid"))
    tasks = item_group_tasks(cold_graph, test)
    cold = cold_graph.cold_items()
    assert set(tasks) == {"warm", "cold", "cold_among_cold"}
    assert sorted(tasks["cold_among_cold"].items.tolist()) == sorted(cold.tolist())
    for kind, t in tasks.items():
        pos = t.relevant[1]
        on_cold = torch.isin(t.items[pos], cold)
        assert bool(on_cold.all()) if kind != "warm" else not bool(on_cold.any())
        # every held-out pair of the other kind is filtered from the user's ranking, not counted as a miss
        for r, u in enumerate(t.users.tolist()):
            mine = set(t.items[t.relevant[1][t.relevant[0][r]:t.relevant[0][r + 1]]].tolist())
            excluded = set(t.items[t.exclude[1][t.exclude[0][r]:t.exclude[0][r + 1]]].tolist())
            held = set(test.items[test.relevant[1][test.relevant[0][(test.users == u).nonzero()[0, 0]]:
                                                     test.relevant[0][(test.users == u).nonzero()[0, 0] + 1]]].tolist())
            assert mine | (excluded & held) == held & set(t.items.tolist()) and not mine & excluded
    cfg = make_config(None, {"graph": "unused", "mode": "target_only", "model.dim": 8, "target_only.epochs": 1,
                             "target_only.batch_size": 4})
    res = trainer.train(cfg, tmp_path / "run", progress=False, log=lambda m: None, artifact=cold_graph)
    out = json.loads((res.run_dir / "results.json").read_text())["test_items"]
    assert out["cold_among_cold"]["candidates"] == len(cold) and out["cold"]["candidates"] == 8
    assert {k: v["users"] for k, v in out.items()} == {k: len(t.users) for k, t in tasks.items()}


@pytest.mark.parametrize("name", ["kg_knn", "text_knn"])
def test_content_baselines_score_a_cold_item_from_its_content(cold_graph, name, example_spec):
    from kgrec.train.baselines import fit_baseline
    from kgrec.train.config import LossConfig, StageConfig
    g = cold_graph
    if name == "text_knn":  # the example's items have no text: give each its KG neighbours' names
        g = build_graph(replace(example_spec, cold_start=replace(example_spec.cold_start, items=0.25)))
        g.nodes["item"]["text"] = ["space desert" if i in ("dune", "solaris", "arrival", "story_of_your_life")
                                   else "horror shark" for i in g.nodes["item"]["id"]]
    fit = fit_baseline(name, g, StageConfig(), LossConfig(), seed=0)
    assert len(fit.history) >= 1 and "valid_ndcg@10" in fit.history
    users = torch.arange(int(g.data["user"].num_nodes))
    scores = fit.score(users)
    cold = g.cold_items()
    # a cold item gets a score from what it shares with the users' histories
    assert bool((scores[:, cold] > 1e-5).any())
    assert torch.isinf(scores[:, g.items_of("source")]).all()  # only target items are ranked


def test_content_knn_is_the_summed_cosine_to_the_history():
    import numpy as np
    import scipy.sparse as sp

    from kgrec.models.content import ContentKNN
    f = sp.csr_matrix(np.array([[1, 0], [0.6, 0.8], [0, 1]], dtype=np.float32))
    knn = ContentKNN(f, torch.tensor([[0, 0, 1], [0, 2, 1]]), num_users=2)
    s = knn.scores(torch.tensor([0, 1]), torch.tensor([0, 1, 2]))
    assert torch.allclose(s, torch.tensor([[1.0, 1.4, 1.0], [0.6, 1.0, 0.8]]))


def test_the_benchmark_reports_warm_and_cold_items_and_kgrec_against_the_content_baseline(cold_graph, tmp_path):
    import pandas as pd

    from kgrec.benchmark import run_benchmark
    cfg = make_config(None, {"graph": "unused", "model.dim": 8, "pretrain.epochs": 2, "finetune.epochs": 1,
                             "target_only.epochs": 2, "model.cold_item_id": "zero"})
    out = run_benchmark(cold_graph, cfg, tmp_path / "r", ("kg_knn", "kgrec_target_only", "kgrec_transfer"),
                        seeds=(0,), sampled=0, log=lambda m: None)
    report = (out / "report.md").read_text()
    assert "## New items (item cold start)" in report
    assert any(line.startswith("| cold items | kgrec | kg_knn |") for line in report.splitlines())
    results = pd.read_csv(out / "results.csv")
    for model in ("kgrec", "kg_knn", "kgrec_target_only"):
        groups = set(results.loc[results["model"] == model, "group"])
        assert {"warm items", "cold items", "cold items among cold"} <= groups
    by_items = pd.read_parquet(out / "per_user_items.parquet")
    assert set(by_items["items"]) == {"warm", "cold", "cold_among_cold"}


def test_simulated_new_items_lose_every_interaction_edge_and_keep_their_knowledge(example_graph):
    graph = RelationalGraph.from_hetero(example_graph.data)
    items = example_graph.split("train", "target")[1].unique()
    hidden = trainer.hide_item_edges(graph, items, 0.5, torch.Generator().manual_seed(0))
    lo, n = graph.offsets["item"], graph.sizes["item"]
    edges = lambda g: set(zip(g.edge_index[0].tolist(), g.edge_index[1].tolist(), g.edge_type.tolist()))
    removed = edges(graph) - edges(hidden)
    assert removed and edges(hidden) <= edges(graph)
    assert all("interacts_" in graph.relations[r][1] for _, _, r in removed)  # KG links all stay
    gone = {(s if lo <= s < lo + n else d) - lo for s, d, _ in removed}
    assert len(gone) == round(0.5 * len(items)) and gone <= set(items.tolist())
    assert interaction_edges_at(hidden, gone) == 0
    from kgrec.models.encoder import items_with_interactions
    assert not items_with_interactions(hidden)[sorted(gone)].any()  # so cold_item_id = "zero" drops their IDs


def test_simulated_new_items_hide_edges_in_training_only(cold_graph, tmp_path, monkeypatch):
    from kgrec.models.encoder import Encoder, items_with_interactions
    seen = []
    real = Encoder.forward

    def spy(self, graph, *args, **kwargs):
        seen.append((self.training, int(items_with_interactions(graph).sum())))
        return real(self, graph, *args, **kwargs)

    monkeypatch.setattr(Encoder, "forward", spy)
    cfg = make_config(None, {"graph": "unused", "mode": "target_only", "model.dim": 8, "target_only.epochs": 2,
                             "target_only.batch_size": 4, "model.cold_item_id": "zero", "target_only.cold_items": 0.5})
    trainer.train(cfg, tmp_path / "run", progress=False, log=lambda m: None, artifact=cold_graph)
    full = int(items_with_interactions(RelationalGraph.from_hetero(target_only(cold_graph.data))).sum())
    assert {n for training, n in seen if training} == {full - round(0.5 * full)}
    assert {n for training, n in seen if not training} == {full}  # validation and test score on the whole graph


def test_positions_says_where_each_item_sits_among_the_candidates_and_refuses_a_missing_one():
    from kgrec.eval.items import positions
    assert positions(torch.tensor([7, 2]), torch.tensor([2, 5, 7])).tolist() == [2, 0]
    with pytest.raises(ValueError):
        positions(torch.tensor([3]), torch.tensor([2, 5, 7]))
