"""Building the merged graph: structure, leakage, cold start, determinism."""
from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import torch

from kgrec import build_graph, load_graph
from kgrec.graph.build import split_category_brand
from kgrec.graph.spec import ColdStartSpec

import pandas as pd


def pairs(ei: torch.Tensor) -> set:
    return set(map(tuple, ei.t().tolist()))


def test_example_graph_has_all_node_and_edge_types(example_graph):
    data = example_graph.data
    assert set(data.node_types) == {"user", "item", "entity"}
    assert ("user", "interacts_target", "item") in data.edge_types
    assert ("entity", "rev_genre", "entity") in data.edge_types
    for s, rel, d in data.edge_types:
        ei = data[s, rel, d].edge_index
        assert ei.dtype == torch.long and ei.shape[0] == 2
        assert ei[0].max() < data[s].num_nodes and ei[1].max() < data[d].num_nodes


def test_every_edge_type_has_its_reverse(example_graph):
    data = example_graph.data
    for s, rel, d in data.edge_types:
        rev = rel[4:] if rel.startswith("rev_") else f"rev_{rel}"
        assert pairs(data[d, rev, s].edge_index) == pairs(data[s, rel, d].edge_index.flip(0))


def test_split_never_puts_a_valid_or_test_edge_in_the_graph(example_graph):
    g = example_graph
    mp = pairs(g.data["user", "interacts_target", "item"].edge_index)
    held = pairs(g.split("valid")) | pairs(g.split("test"))
    assert held and not (mp & held)
    assert pairs(g.split("train")) == mp


def test_cold_start_users_keep_only_their_source_history(example_spec):
    g = build_graph(replace(example_spec, cold_start=ColdStartSpec(share=0.5)))
    cold = g.data["user"].cold_start.nonzero().flatten().tolist()
    assert cold
    tgt_users = set(g.data["user", "interacts_target", "item"].edge_index[0].tolist())
    src_users = set(g.data["user", "interacts_source", "item"].edge_index[0].tolist())
    assert not set(cold) & tgt_users
    assert set(cold) <= src_users


def test_users_are_shared_and_items_belong_to_one_domain(example_graph):
    users = example_graph.nodes["user"]
    assert users.loc[users["id"] == "u1", "domain"].item() == "both"
    assert users.loc[users["id"] == "u9", "domain"].item() == "target"
    items = example_graph.nodes["item"]
    assert set(items["domain"]) == {"source", "target"}
    assert (example_graph.data["item"].domain.numpy() == (items["domain"] == "target").to_numpy()).all()


def test_same_as_merges_entities_and_labels_come_from_literals(example_graph):
    ents = example_graph.nodes["entity"]
    assert "http://dbpedia.org/resource/Philip_K._Dick" in set(ents["id"])
    assert "http://example.org/person/philip_k_dick" not in set(ents["id"])
    assert ents.loc[ents["id"] == "http://example.org/genre/scifi", "label"].item() == "Science fiction"
    assert ents.loc[ents["id"] == "http://example.org/genre/scifi", "domain"].item() == "both"
    assert not any(str(i).startswith('"') for i in ents["id"])


def _digest(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_spec_and_seed_give_a_byte_identical_artifact(example_spec, tmp_path):
    build_graph(example_spec).save(tmp_path / "a")
    build_graph(example_spec).save(tmp_path / "b")
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")


def test_a_different_seed_gives_a_different_split(example_spec):
    a = build_graph(replace(example_spec, seed=0)).interactions
    b = build_graph(replace(example_spec, seed=5)).interactions
    assert (a["split"] != b["split"]).any()


def test_artifact_roundtrips_and_loads_without_pickle(example_graph, tmp_path):
    example_graph.save(tmp_path / "g")
    payload = torch.load(tmp_path / "g" / "graph.pt", weights_only=True)
    assert payload["format"] == 1
    g = load_graph(tmp_path / "g")
    for et in example_graph.data.edge_types:
        assert torch.equal(g.data[et].edge_index, example_graph.data[et].edge_index)
    pd.testing.assert_frame_equal(g.nodes["entity"], example_graph.nodes["entity"])
    assert g.manifest["counts"] == example_graph.manifest["counts"]
    assert set(g.manifest["inputs"]) == {"movies.csv", "books.csv", "kg.ttl"}


def test_category_brand_split_takes_the_longest_shared_prefix():
    attrs = pd.Series(["office tape scotch", "office tape duck brand", "office pens pilot", "office pens bic"])
    out = split_category_brand(attrs)
    assert out["category"].tolist() == ["office tape", "office tape", "office pens", "office pens"]
    assert out["brand"].tolist() == ["scotch", "duck brand", "pilot", "bic"]


def test_a_user_mapping_file_joins_users_with_different_ids(tmp_path):
    from kgrec import load_spec

    (tmp_path / "a.csv").write_text("user,item\nalice,x\nbob,y\n")
    (tmp_path / "b.csv").write_text("user,item\nA-1,p\nZ-9,q\n")
    (tmp_path / "map.csv").write_text("source_user,target_user\nalice,A-1\n")
    (tmp_path / "s.toml").write_text(
        "name='m'\n[source]\npath='a.csv'\n[target]\npath='b.csv'\nsplit={method='none'}\n"
        "[align]\nusers='mapping'\nuser_mapping='map.csv'\n")
    users = build_graph(load_spec(tmp_path / "s.toml")).nodes["user"].set_index("id")["domain"].to_dict()
    assert users == {"source:alice": "both", "source:bob": "source", "target:Z-9": "target"}


def test_a_link_file_keyed_by_another_tables_position_ids_reaches_items_by_title(tmp_path):
    """``titles = {id = "@position", unused_ids = [...]}``: the link file's ids number the rows of
    a table without ids, skipping the unused ids; items then match on their title."""
    from kgrec import load_spec

    (tmp_path / "books.csv").write_text("user,item\nu1,x\nu1,y\nu2,z\n")
    (tmp_path / "books_items.csv").write_text("book,title\nx,Dune\ny,Emma\nz,Solaris\n")
    (tmp_path / "other.csv").write_text("title\nEmma\nSolaris\nDune\n")          # ids 1, 3, 4 (2 unused)
    (tmp_path / "link.tsv").write_text("1\te:emma\n3\te:solaris\n4\te:dune\n2\te:nothing\n9\te:unknown\n")
    (tmp_path / "kg.tsv").write_text("e:emma\tauthor\te:austen\ne:dune\tauthor\te:herbert\n")
    (tmp_path / "s.toml").write_text(
        "name='p'\n[target]\npath='books.csv'\nsplit={method='none'}\n"
        "items={path='books_items.csv', format='csv', id='book', title='title', title_key='{title}'}\n"
        "[[knowledge]]\npath='kg.tsv'\n"
        "[[links]]\ndomain='target'\nby='title'\npath='link.tsv'\n"
        "titles={path='other.csv', format='csv', id='@position', unused_ids=[2], title_key='{title}'}\n")
    g = build_graph(load_spec(tmp_path / "s.toml"))
    items, entities = g.nodes["item"], g.nodes["entity"]
    linked = dict(zip(*g.data["item", "linked_to", "entity"].edge_index.tolist()))
    assert {items.at[i, "id"]: entities.at[e, "id"] for i, e in linked.items()} == {
        "x": "e:dune", "y": "e:emma", "z": "e:solaris"}
    acc = g.manifest["accounting"]["links"][0]
    assert (acc["rows_matched_by_title"], acc["rows_without_title_match"]) == (3, 2)


# --- filters and splits that leave a domain without what training needs -------------
import warnings  # noqa: E402

import pytest  # noqa: E402

from kgrec.errors import KgrecWarning, SpecError  # noqa: E402
from kgrec.graph.spec import SplitSpec  # noqa: E402
from kgrec.train.trainer import no_validation_hint  # noqa: E402


def test_a_threshold_that_keeps_nothing_is_refused_naming_it(example_spec):
    spec = replace(example_spec, target=replace(example_spec.target, threshold=100.0))
    with pytest.raises(SpecError, match=r"key 'target.threshold': = 100.0 keeps none of the books domain's"):
        build_graph(spec)


def test_a_k_core_that_removes_everything_is_refused_naming_it(example_spec):
    spec = replace(example_spec, source=replace(example_spec.source, k_core=50))
    with pytest.raises(SpecError, match=r"key 'source.k_core': = 50 removes all .* interactions of the movies domain"):
        build_graph(spec)


def test_a_ratio_split_that_gives_small_users_no_validation_item_warns_at_build(example_spec):
    spec = replace(example_spec, target=replace(example_spec.target, split=SplitSpec(method="ratio")))
    with pytest.warns(KgrecWarning, match=r"target users with 3\+ interactions get no validation item from split "
                                          r"method = \"ratio\".*method = \"loo\" gives each of them one"):
        g = build_graph(spec)
    assert g.manifest["accounting"]["target"]["users_without_validation_item"] > 0
    hint = no_validation_hint(g)
    assert 'method = "ratio"' in hint and 'rebuild with [target.split] method = "loo"' in hint


def test_a_loo_split_builds_without_a_warning(example_spec):
    with warnings.catch_warnings():
        warnings.simplefilter("error", KgrecWarning)
        build_graph(example_spec)
