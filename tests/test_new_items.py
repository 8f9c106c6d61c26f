"""Serving new items that arrive with their knowledge only: update adds them, recommend ranks them
at once (no training), explain shows the KG path that reaches them."""
from __future__ import annotations

import pytest
import torch

import kgrec
from kgrec.cli import main
from kgrec.errors import InputError
from kgrec.serve import add_items, explain, load_run, recommend

NEW_BOOKS = """@prefix ex: <http://example.org/> .
@prefix book: <http://example.org/book/> .
@prefix person: <http://example.org/person/> .
@prefix genre: <http://example.org/genre/> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
book:carrie rdfs:label "Carrie" ; ex:author person:stephen_king ; ex:genre genre:horror ;
            ex:publisher <http://example.org/publisher/doubleday> .
"""


@pytest.fixture(scope="module")
def run(example_graph, tmp_path_factory):
    root = tmp_path_factory.mktemp("new-items")
    example_graph.save(root / "graph")
    cfg = kgrec.make_config(None, {"graph": str(root / "graph"), "mode": "target_only", "model.dim": 16,
                                   "model.cold_item_id": "zero", "model.item_id_dropout": 0.2,
                                   "target_only.epochs": 20, "target_only.batch_size": 4})
    kgrec.fit(cfg, root / "run", progress=False, log=lambda m: None)
    return load_run(root / "run")


@pytest.fixture(scope="module")
def grown(run, tmp_path_factory):
    root = tmp_path_factory.mktemp("grown")
    (root / "new_books.ttl").write_text(NEW_BOOKS)
    report = add_items(run, root / "new_books.ttl", root / "run")
    return load_run(root / "run"), report


def test_update_adds_a_new_item_with_its_kg_triples_and_leaves_the_trained_weights(run, grown):
    new, report = grown
    assert report["new_items"] == 1 and report["new_entities"] == 1 and not report["retrained"]
    assert report["facts_skipped"] == 1  # the publisher: an entity the graph does not have
    i = new.item_index("carrie")
    assert new.label("item", i) == "Carrie" and bool(new.artifact.data["item"].cold_start[i])
    assert i in new.artifact.cold_items().tolist()
    # the trained parameters are those of the run; only the new rows were added (zeros)
    old, grown_state = run.model.state_dict(), new.model.state_dict()
    for k, v in old.items():
        assert torch.equal(grown_state[k][:v.shape[0]], v), k
    # no interaction edge at the new item
    g = new.graph
    at_item = (g.edge_index == g.offsets["item"] + i).any(0)
    names = {g.relations[r][1] for r in g.edge_type[at_item].tolist()}
    assert names == {"linked_to", "rev_linked_to"}


def test_the_new_item_gets_its_score_from_its_kg_neighbours(grown):
    new, _ = grown
    i = new.item_index("carrie")
    h = new.embeddings()
    assert h[new.graph.offsets["item"] + i].abs().sum() > 0  # its ID row is zero: this came through the KG
    king = new.graph.offsets["entity"] + new._ids("entity")["http://example.org/person/stephen_king"]
    before = recommend(new, "u1", k=100, exclude_seen=False).set_index("item")["score"]
    with torch.no_grad():
        new.model.encoder.embeddings["entity"].weight[king - new.graph.offsets["entity"]] += 1.0
    new._cache.clear()
    after = recommend(new, "u1", k=100, exclude_seen=False).set_index("item")["score"]
    with torch.no_grad():
        new.model.encoder.embeddings["entity"].weight[king - new.graph.offsets["entity"]] -= 1.0
    new._cache.clear()
    assert after["carrie"] != pytest.approx(before["carrie"])


def test_recommend_ranks_the_new_item_at_once_and_it_can_reach_the_top_k(grown):
    new, _ = grown
    users = new.artifact.nodes["user"]["id"].tolist()
    recs = kgrec.serve.recommend_many(new, users, k=3)
    assert "carrie" in set(recs["item"])  # in someone's top 3, with no interaction and no training
    full = recommend(new, users[0], k=100, exclude_seen=False)
    assert "carrie" in set(full["item"])


def test_the_explanation_of_a_new_item_is_a_kg_path_the_graph_holds(grown):
    new, _ = grown
    shining = new.item_index("the_shining")  # Stephen King's, a horror book like Carrie
    fans = [u for u in new.artifact.nodes["user"]["index"] if shining in new.seen_items(u, "target").tolist()]
    assert fans
    user = new.artifact.nodes["user"]["id"][fans[0]]
    assert "carrie" in set(recommend(new, user, k=3)["item"])
    paths = explain(new, user, "carrie")
    assert paths
    g = new.graph
    edges = set(zip(g.edge_index[0].tolist(), g.edge_index[1].tolist(), g.edge_type.tolist()))
    names = {name: r for r, (_, name, _) in enumerate(g.relations)}
    for p in paths:
        assert p.nodes[0] == ("user", new.user_index(user)) and p.nodes[-1] == ("item", new.item_index("carrie"))
        flat = [g.offsets[t] + k for t, k in p.nodes]
        for a, b, rel in zip(flat, flat[1:], p.relations):
            assert (a, b, names[rel]) in edges  # every step is an edge of the graph, in its direction
        assert any(t == "entity" for t, _ in p.nodes) and "Carrie" in p.text
    assert any("Stephen King" in p.text for p in paths)  # through the entity the two books share


def test_attribute_rows_add_items_and_bad_files_are_refused(run, tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_text("item,relation,entity,label\nsalem,linked_to,http://example.org/book/the_shining,Salem's Lot\n"
                    "salem,unknown_relation,http://example.org/genre/horror,Salem's Lot\n")
    report = add_items(run, rows, tmp_path / "a")
    assert report["new_items"] == 1 and report["new_entities"] == 0 and report["facts_skipped"] == 1
    new = load_run(tmp_path / "a")
    assert "salem" in set(recommend(new, "u1", k=100)["item"])
    (tmp_path / "old.csv").write_text("item,relation,entity\ndune,linked_to,http://example.org/genre/scifi\n")
    with pytest.raises(InputError, match="already in the graph"):
        add_items(run, tmp_path / "old.csv", tmp_path / "b")
    (tmp_path / "none.csv").write_text("item,relation,entity\nghost,likes,http://example.org/nowhere\n")
    with pytest.raises(InputError, match="new item 'ghost': none of its facts"):
        add_items(run, tmp_path / "none.csv", tmp_path / "c")
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_the_cli_adds_new_items_and_refuses_two_sources_at_once(run, tmp_path, capsys):
    (tmp_path / "new.ttl").write_text(NEW_BOOKS)
    assert main(["update", str(run.path), "--new-items", str(tmp_path / "new.ttl"), "--out", str(tmp_path / "r")]) == 0
    assert "added 1 new items" in capsys.readouterr().out
    assert main(["recommend", str(tmp_path / "r"), "--user", "u1", "--k", "10"]) == 0
    assert "carrie" in capsys.readouterr().out  # 10 of the 9 unseen books: every one is listed
    assert main(["update", str(run.path), "--new-items", str(tmp_path / "new.ttl"), "--interactions",
                 str(tmp_path / "new.ttl"), "--out", str(tmp_path / "s")]) == 2


def test_a_new_item_that_later_gets_interactions_is_new_no_longer(grown, tmp_path):
    new, _ = grown
    (tmp_path / "feedback.csv").write_text("user,item\nu1,carrie\n")
    from kgrec.serve import update
    update(new, tmp_path / "feedback.csv", tmp_path / "warm", epochs=1, progress=False, log=lambda m: None)
    warm = load_run(tmp_path / "warm")
    i = warm.item_index("carrie")
    assert i not in warm.artifact.cold_items().tolist() and not bool(warm.artifact.data["item"].cold_start[i])
    assert len(warm.artifact.data["item"].cold_start) == int(warm.artifact.data["item"].num_nodes)
