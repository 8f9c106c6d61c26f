"""Using a trained run: recommend, new users, explanations, exports, FAISS, update, evaluate."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

import kgrec
from kgrec.errors import InputError, KgrecError
from kgrec.serve import (evaluate_run, explain, export_embeddings, history_embedding, load_run, read_embeddings,
                         read_history, recommend, recommend_from_history, recommend_many, update)
from kgrec.serve.embeddings import FORMATS, node_table, query_vectors
from kgrec.serve.recommend import score_items


@pytest.fixture(scope="module")
def run(example_graph, tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    example_graph.save(root / "graph")
    cfg = kgrec.make_config(None, {"graph": str(root / "graph"), "model.dim": 16, "model.head": "distmult",
                                   "pretrain.epochs": 20, "pretrain.batch_size": 8, "finetune.epochs": 3,
                                   "finetune.batch_size": 8})
    kgrec.fit(cfg, root / "run", progress=False, log=lambda m: None)
    return load_run(root / "run")


def target_train(run, user: int) -> set[int]:
    return set(run.seen_items(user, "target", ("train", "valid")).tolist())


def test_recommend_excludes_every_item_the_user_has_seen(run):
    for uid in run.artifact.nodes["user"]["id"]:
        u = run.user_index(uid)
        recs = recommend(run, uid, k=20)
        assert not set(recs["item_index"]) & target_train(run, u)
        assert set(recs["item_index"]) <= set(run.artifact.items_of("target").tolist())
        assert recs["score"].is_monotonic_decreasing and list(recs["rank"]) == list(range(1, len(recs) + 1))
    everything = recommend(run, "u1", k=100, exclude_seen=False)
    assert len(everything) == len(run.artifact.items_of("target"))


def test_batch_recommendations_equal_one_user_at_a_time(run):
    users = list(run.artifact.nodes["user"]["id"])
    batch = recommend_many(run, users, k=3, batch_size=4)
    single = pd.concat([recommend(run, u, k=3) for u in users], ignore_index=True)
    pd.testing.assert_frame_equal(batch, single)


def test_an_unknown_user_gets_a_message_saying_where_valid_ids_are(run):
    with pytest.raises(KgrecError, match=r"user 'nobody' is not in the graph.*nodes/user.parquet.*--history"):
        recommend(run, "nobody")


def test_a_new_users_own_history_reproduces_their_trained_scores(run):
    h = run.embeddings()
    trained = score_items(run, h[run.graph.node_slice("user")])
    train = torch.cat([run.artifact.split("train", "source"), run.artifact.split("train", "target")], 1)
    own, others = [], []
    for u in range(run.graph.sizes["user"]):
        s = score_items(run, history_embedding(run, train[1][train[0] == u].tolist()).unsqueeze(0))[0]
        corr = torch.stack([torch.corrcoef(torch.stack([s, trained[v]]))[0, 1] for v in range(len(trained))])
        own.append(float(corr[u]))
        others.append(float(torch.cat([corr[:u], corr[u + 1:]]).mean()))
    assert all(o > m for o, m in zip(own, others))
    assert np.mean(own) > 0.8 > np.mean(others) + 0.3


def test_new_user_recommendations_leave_out_their_target_history(run, tmp_path):
    (tmp_path / "h.txt").write_text("movies:heat\nbooks:dune\nsolaris\n")
    items = read_history(run, tmp_path / "h.txt")
    recs = recommend_from_history(run, items, k=20)
    assert not {run.item_index("books:dune"), run.item_index("books:solaris")} & set(recs["item_index"])
    (tmp_path / "bad.txt").write_text("movies:heat\nno_such_item\n")
    with pytest.raises(InputError, match="bad.txt line 2"):
        read_history(run, tmp_path / "bad.txt")


def assert_valid_path(run, e, user: int, item: int):
    g = run.graph
    edges = {(s, d, r) for s, d, r in zip(*g.edge_index.tolist(), g.edge_type.tolist())}
    flat = [g.offsets[t] + k for t, k in e.nodes]
    assert e.nodes[0] == ("user", user) and e.nodes[-1] == ("item", item)
    assert 1 <= len(e.relations) <= 6 and len(set(flat)) == len(flat)
    names = [rel for _, rel, _ in g.relations]
    for a, b, rel in zip(flat, flat[1:], e.relations):
        assert any((a, b, r) in edges for r, n in enumerate(names) if n == rel), (e.text, rel)


def test_explanations_are_paths_of_the_graph_from_the_user_to_the_item(run):
    found = 0
    for uid in run.artifact.nodes["user"]["id"]:
        for item in recommend(run, uid, k=3)["item"]:
            paths = explain(run, uid, f"books:{item}", max_paths=5)
            found += len(paths)
            scores = [p.score for p in paths]
            assert scores == sorted(scores, reverse=True)
            # paths longer than 4 edges only where there is none of 4 or fewer
            assert all(len(p.relations) <= 4 for p in paths) or all(len(p.relations) > 4 for p in paths)
            for e in paths:
                assert_valid_path(run, e, run.user_index(uid), run.item_index(f"books:{item}"))
                assert e.text.startswith("you ")
    assert found > 0


def test_an_explanation_through_a_shared_entity_reads_naturally(run):
    # u6 liked the movie Dune; the book Dune is linked to it through the KG (basedOn)
    paths = explain(run, "u6", "books:dune", max_paths=20)
    texts = [p.text for p in paths]
    assert any("'Dune' (movies)" in t and "basedOn" in t for t in texts), texts


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_export_format_round_trips(run, tmp_path, fmt):
    out = export_embeddings(run, tmp_path / fmt, fmt)
    meta, vec = node_table(run)
    rows, back = read_embeddings(out, fmt)
    if fmt == "faiss":
        items = run.artifact.items_of("target").numpy()
        expected = vec[(meta["type"] == "item").to_numpy()][items]
        np.testing.assert_allclose(back, expected, rtol=1e-6)
        assert rows["id"].tolist() == meta[meta["type"] == "item"]["id"].to_numpy()[items].tolist()
        return
    np.testing.assert_allclose(back, vec, rtol=1e-6, atol=1e-7)
    if fmt == "word2vec":
        assert rows["token"].tolist() == (meta["type"] + ":" + meta["id"]).tolist()
    else:
        assert rows["id"].tolist() == meta["id"].tolist() and rows["type"].tolist() == meta["type"].tolist()
    with pytest.raises(KgrecError, match="exists"):
        export_embeddings(run, out, fmt)


def test_faiss_search_returns_the_models_top_k(run, tmp_path):
    import faiss

    run = dataclasses.replace(run, path_weight=0.0)  # the exported vectors are the embedding part of the score
    out = export_embeddings(run, tmp_path / "faiss", "faiss")
    index = faiss.read_index(str(out / "items.faiss"))
    items = pd.read_csv(out / "items.tsv", sep="\t", dtype={"id": str})
    queries = np.load(out / "users.npy")
    users = pd.read_csv(out / "users.tsv", sep="\t", dtype={"id": str})
    k = 5
    _, found = index.search(queries, k)
    for row, uid in enumerate(users["id"]):
        model = recommend(run, uid, k=k, exclude_seen=False)["item"].tolist()
        assert items["id"].to_numpy()[found[row]].tolist() == model, uid
    np.testing.assert_allclose(queries[:1], query_vectors(run, torch.tensor([0])))


def test_update_keeps_old_ids_and_adds_new_users_and_items(run, tmp_path):
    (tmp_path / "new.csv").write_text("user,item,domain\nnewbie,dune,books\nnewbie,heat,movies\n"
                                      "u1,brand_new_book,books\n")
    result, report = update(run, tmp_path / "new.csv", tmp_path / "updated", epochs=1, progress=False,
                            log=lambda m: None)
    assert report["new_users"] == 1 and report["new_items"] == 1 and report["new_interactions"] == 3
    assert set(report["before"]) == {"valid", "test"} and set(report["after"]) == {"valid", "test"}
    new = load_run(tmp_path / "updated")
    old_users = run.artifact.nodes["user"]["id"].tolist()
    assert new.artifact.nodes["user"]["id"].tolist() == old_users + ["newbie"]
    assert new.artifact.nodes["item"]["id"].tolist()[:len(run.artifact.nodes["item"])] == \
        run.artifact.nodes["item"]["id"].tolist()
    assert "brand_new_book" in set(recommend(new, "newbie", k=20)["item"])
    assert new.item_index("books:brand_new_book") in new.seen_items(new.user_index("u1")).tolist()
    (tmp_path / "bad.csv").write_text("user,item,domain\nu1,dune,music\n")
    with pytest.raises(InputError, match="bad.csv line 2: unknown domain 'music'"):
        update(run, tmp_path / "bad.csv", tmp_path / "x")


def test_updating_a_run_fine_tuned_on_the_target_graph_only_fine_tunes_again(run, tmp_path):
    cfg = kgrec.make_config(None, {"graph": str(run.config.graph), "model.dim": 8, "pretrain.epochs": 2,
                                   "finetune.epochs": 1, "finetune.graph": "target"})
    kgrec.fit(cfg, tmp_path / "run", progress=False, log=lambda m: None)
    tuned = load_run(tmp_path / "run")
    assert tuned.view == "target_only"
    (tmp_path / "new.csv").write_text("user,item,domain\nnewbie,dune,books\n")
    result, _ = update(tuned, tmp_path / "new.csv", tmp_path / "updated", epochs=2, progress=False,
                       log=lambda m: None)
    assert list(result.history.dropna(subset=["loss"])["stage"].unique()) == ["finetune"]  # no pre-training again
    assert load_run(tmp_path / "updated").view == "target_only"


def test_evaluate_reports_all_users_and_the_cold_start_ones(run):
    res = evaluate_run(run, "test")
    assert res["all"]["users"] > 0 and 0 <= res["all"]["ndcg@10"] <= 1
    assert res["cold_start"]["users"] == int(run.artifact.data["user"].cold_start.sum())
    assert res["all"]["ndcg@10"] == pytest.approx(run.results()["test"]["ndcg@10"], abs=1e-6)


def test_with_path_scores_recommendations_rank_by_the_blend(run):
    from kgrec.models.paths import blend
    # the default walk (the run chose no blend, so saved no operator): on this tiny graph its blend moves a
    # test metric, which EASE's does not
    blended = dataclasses.replace(run, path_weight=1.0, path_filter={}, _cache={})
    items = run.artifact.items_of("target")
    h = run.embeddings()
    for uid in run.artifact.nodes["user"]["id"]:
        u = run.user_index(uid)
        emb = run.model.heads["target"].score_all(h[[u + run.graph.offsets["user"]]], h[items + run.graph.offsets["item"]])
        want = blend(emb, blended.paths().scores(torch.tensor([u]), items), 1.0)[0].detach()
        recs = recommend(blended, uid, k=len(items), exclude_seen=False)
        np.testing.assert_allclose(recs["score"].to_numpy(), want.sort(descending=True).values.numpy(), rtol=1e-5)
    assert run.paths() is None and blended.paths() is not None
    # evaluate scores the blend too: it differs from the embeddings alone
    assert evaluate_run(blended, "test") != evaluate_run(run, "test")


def test_a_run_saves_its_walks_and_serves_them_and_a_foreign_file_is_refused(run, tmp_path):
    import shutil

    from kgrec.models.paths import item_walks_state
    from kgrec.serve.run import path_scorer

    assert (run.path / "paths.pt").exists() == (run.path_weight > 0)
    copy = tmp_path / "run"
    shutil.copytree(run.path, copy)
    loaded = dataclasses.replace(load_run(copy), path_weight=1.0)
    items, users = loaded.artifact.items_of("target"), torch.arange(4)
    fresh = path_scorer(loaded.config, loaded.artifact, loaded.path_graph, "cpu", loaded.path_filter)
    state = item_walks_state(fresh, items, loaded.path_graph)
    torch.save({**state, "values": state["values"] * 2}, copy / "paths.pt")  # told apart from a recomputed one
    torch.testing.assert_close(loaded.paths().scores(users, items), 2 * fresh.scores(users, items))
    setting = "alpha" if "alpha" in state else "lambda"  # the walk's exponent, or EASE's L2 weight
    torch.save({**state, setting: state[setting] + 0.5}, copy / "paths.pt")
    with pytest.raises(KgrecError, match="paths.pt: not the walks of this run"):
        dataclasses.replace(loaded, _cache={}).paths()
    (copy / "paths.pt").write_bytes(b"not a torch file")
    with pytest.raises(KgrecError, match="paths.pt"):
        dataclasses.replace(loaded, _cache={}).paths()


@pytest.mark.parametrize("item, message", [
    ("movies:nope", r"item 'nope' is not in the movies \(source\) domain: the books \(target\) domain has \d+ items, "
                    r"e.g. 'books:.*'; the movies \(source\) domain has \d+ items"),
    ("films:heat", r"'films' is not a domain \(the domains are 'books', 'movies'\)"),
    ("nope", r"item 'nope' is not in the graph \(a bare id is looked up in every domain\): the books"),
])
def test_an_unknown_item_says_what_was_not_found_and_what_the_domains_hold(run, item, message):
    with pytest.raises(KgrecError, match=message) as e:
        run.item_index(item)
    assert "(0 items" not in str(e.value) and "item.parquet" in str(e.value)


@pytest.mark.parametrize("rows, line", [("user,item\nu1,dune\n,dune\n", 3), ("user,item\nu1,\n", 2),
                                        ("user,item\nu1,dune\nu2,  \n", 3)])
def test_feedback_with_an_empty_user_or_item_is_refused_with_its_line(run, tmp_path, rows, line):
    from kgrec.serve.update import read_feedback

    path = tmp_path / "feedback.csv"
    path.write_text(rows)
    with pytest.raises(InputError, match=rf"feedback.csv line {line}: column '(user|item)' is empty"):
        read_feedback(path, run)
