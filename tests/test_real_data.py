"""Every shipped spec builds from the real datasets, and the counts match the
figures in the datasets' README. Skipped when KGREC_DATA_DIR is not set."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from kgrec import build_graph, graph_info, load_spec
from kgrec.data import read_atomic, read_disencdr, read_interactions

pytestmark = [pytest.mark.data, pytest.mark.slow]
GRAPHS = Path(__file__).resolve().parents[1] / "graphs"
SPECS = sorted(p.stem for p in GRAPHS.glob("*.toml"))
_cache: dict = {}


def built(name, real_data):
    if name not in _cache:
        _cache[name] = build_graph(load_spec(GRAPHS / f"{name}.toml"))
    return _cache[name]


@pytest.mark.parametrize("name", SPECS)
def test_shipped_spec_builds_and_summarises(name, real_data, tmp_path):
    g = built(name, real_data)
    info = graph_info(g)
    assert info["splits"]["target"]["train"] > 0
    assert info["splits"]["target"]["test"] > 0
    test = set(map(tuple, g.split("test").t().tolist()))
    mp = set(map(tuple, g.data["user", "interacts_target", "item"].edge_index.t().tolist()))
    assert not test & mp


def test_movielens_100k_files_match_the_readme(real_data):
    inter = read_interactions(real_data / "movielens-100k" / "ml-100k.inter")
    assert (len(inter), inter["user"].nunique(), inter["item"].nunique()) == (100_000, 943, 1_682)
    kg = read_atomic(real_data / "movielens-100k" / "ml-100k.kg")
    assert len(kg) == 91_631 and kg["relation_id"].nunique() == 24
    assert len(read_atomic(real_data / "movielens-100k" / "ml-100k.link")) == 1_598


def test_ml100k_genre_graph_accounts_for_every_rating_triple_link_and_user(real_data):
    g = built("ml100k_genres", real_data)
    acc = g.manifest["accounting"]
    for role in ("source", "target"):
        a = acc[role]
        assert a["rows_read"] == 100_000 and a["users_read"] == 943
        assert a["below_threshold"] + a["not_in_carved_domain"] + a["duplicates"] + a["kept"] == a["rows_read"]
    assert acc["kg"]["triples_read"] == 91_631 and acc["kg"]["kept"] + acc["kg"]["duplicates"] == 91_631
    assert acc["kg"]["relations"] == 24
    for link in acc["links"]:
        assert link["rows_read"] == 1_598
        assert link["rows_matched_by_title"] + link["rows_without_title_match"] == 1_598
    # ml-100k.link is keyed by ML-1M ids: read through ml-1m.item, every linked ML-100K movie
    # is linked at most once, and ML-1M's 313 (The Swan Princess, m.0b8l01, RecSysDatasets #130)
    # lands on ML-100K's Swan Princess (1409), not on ML-100K's 313 (Titanic)
    assert sum(link["links"] for link in acc["links"]) == 1_301
    items, entities = g.nodes["item"], g.nodes["entity"]
    linked = dict(zip(*g.data["item", "linked_to", "entity"].edge_index.tolist()))
    entity_of = {str(items.at[i, "id"]): str(entities.at[e, "id"]) for i, e in linked.items()}
    assert entity_of["1409"] == "m.0b8l01" and entity_of.get("313") != "m.0b8l01"
    assert acc["users"]["read"] == 943
    assert acc["users"]["in_graph"] + acc["users"]["dropped_no_kept_interaction"] == 943
    # Shared users and shared Freebase entities are what connects the two genre domains.
    info = graph_info(g)
    assert info["users_in_both_domains"] > 900 and info["shared_entities"] > 1_000


@pytest.mark.parametrize("name, ablation", [("ml100k_genres", "ml100k_genres_no_kg"), ("lastfm_satori", "lastfm_no_kg"),
                                            ("art_office", "art_office_no_kg")])
def test_no_kg_ablation_keeps_the_same_interactions_and_split(name, ablation, real_data):
    with_kg, without = built(name, real_data), built(ablation, real_data)

    def by_id(g):  # interactions keyed by the original user and item ids, not node indices
        t = g.interactions
        t = t.assign(user=g.nodes["user"]["id"].to_numpy()[t["user"]], item=g.nodes["item"]["id"].to_numpy()[t["item"]])
        key = ["domain", "user", "item", "split"]
        return t[key].sort_values(key).reset_index(drop=True)

    a, b = by_id(with_kg), by_id(without)
    assert len(a) > 0 and a.equals(b)
    assert "entity" not in without.data.node_types or without.data["entity"].num_nodes == 0
    assert with_kg.data["entity"].num_nodes > 0


def test_movielens_1m_matches_the_readme_and_links_by_title(real_data):
    inter = read_interactions(real_data / "movielens-1m" / "ml-1m.inter")
    assert (len(inter), inter["user"].nunique()) == (1_000_209, 6_040)
    assert len(read_atomic(real_data / "movielens-1m" / "ml-1m.item")) == 3_883
    g = built("ml1m_to_ml100k", real_data)
    matched = {a["domain"]: a["matched_by_title"] for a in g.manifest["accounting"]["links"]}
    assert matched["source"] > 1_400 and matched["target"] > 1_250
    assert graph_info(g)["shared_entities"] > 10_000


@pytest.mark.parametrize("pair,users,items", [("sport_cloth", 9_928, 32_310), ("cloth_sport", 9_928, 41_303),
                                              ("electronic_phone", 3_325, 39_463), ("phone_electronic", 3_325, 18_462)])
def test_disencdr_pairs_match_the_readme(real_data, pair, users, items):
    folder = real_data / "amazon-disencdr" / pair
    frame = read_disencdr(folder)
    original = read_interactions(folder / "test_original.txt", header=False, columns={"user": 0, "item": 1})
    # The README's item count is the id space, which test_original.txt completes.
    all_items = pd.concat([frame["item"], original["item"]]).astype(int)
    assert frame["user"].nunique() == users and all_items.max() + 1 == items


def test_disencdr_graph_shares_every_user(real_data):
    info = graph_info(built("amazon_cloth_to_sport", real_data))
    assert info["nodes"]["user"]["total"] == 9_928 == info["users_in_both_domains"]


def test_cdrib_cold_start_users_match_the_readme(real_data):
    g = built("amazon_cloth_to_sport_coldstart", real_data)
    inter, users = g.interactions, g.nodes["user"]
    tgt = inter[inter["domain"] == "target"]
    assert tgt.loc[tgt["split"] == "train", "user"].nunique() == 26_346
    assert tgt.loc[tgt["split"] == "valid", "user"].nunique() == 912
    assert tgt.loc[tgt["split"] == "test", "user"].nunique() == 897
    cold = users[users["cold_start"]]
    assert len(cold) == tgt.loc[tgt["split"] != "train", "user"].nunique()
    # every cold-start user has source history and only ids below 9,828 are shared
    assert (cold["domain"] == "both").all()
    assert (pd.to_numeric(users.loc[users["domain"] == "both", "id"]) < 9_828).all()
    # 27,328 sport users + 41,829 cloth users - 9,828 shared: CDRIB's "total user num 59329"
    assert len(users) == 59_329


def test_art_office_matches_the_readme(real_data):
    g = built("art_office", real_data)
    inter = g.interactions
    tgt = inter[inter["domain"] == "target"]
    assert tgt.loc[tgt["split"] == "valid", "user"].nunique() <= 577
    assert g.nodes["user"].shape[0] == 8_000 + 577 + 1_000
    items = g.nodes["item"]
    assert (items["domain"] == "source").sum() == 18_639
    assert (items.loc[items["domain"] == "target", "id"].astype(int) >= 18_639).all()
    assert graph_info(g)["shared_entities"] > 0
    assert items["text"].str.len().gt(0).all()


def test_lastfm_matches_the_readme(real_data):
    g = built("lastfm_satori", real_data)
    info = graph_info(g)
    assert info["nodes"]["user"]["total"] == 1_872 and info["nodes"]["item"]["total"] == 3_846
    assert info["nodes"]["entity"]["total"] == 9_366
    assert g.manifest["accounting"]["kg"]["kept"] == 15_518
    assert info["splits"]["target"] == {"train": 16_743, "valid": 2_215, "test": 2_215}


def test_kg_signal_finds_brands_satori_and_freebase_relations_above_chance(real_data):
    """The README's kg-signal table: Art-Office's brands, Last.FM's Satori KG and ML-100K's
    Freebase KG (its links read as ML-1M ids) agree with what users do."""
    from kgrec import kg_signal

    art = kg_signal(built("art_office", real_data), shuffles=5).set_index("relation")
    assert art.loc["has_brand", "lift"] > 5 * art.loc["has_brand", "shuffled"]
    lastfm = kg_signal(built("lastfm_satori", real_data), shuffles=5).set_index("relation")
    assert lastfm.loc["(any relation)", "lift"] > 3 * lastfm.loc["(any relation)", "shuffled"]
    ml = kg_signal(built("ml100k_genres", real_data), shuffles=5).set_index("relation")
    assert ml.loc["film_film_genre", "lift"] > 1.1 * ml.loc["film_film_genre", "shuffled"]
    assert ml.loc["film_film_genre", "p"] == pytest.approx(1 / 6)


def test_ml100k_link_read_as_ml100k_ids_points_at_other_films(real_data):
    """RecBole's ml-100k.link read with ML-100K's own ids (what RecBole does): no relation
    beats chance, which is how kg-signal found the link keyed by ML-1M ids."""
    from dataclasses import replace

    from kgrec import kg_signal
    from kgrec.graph.spec import LinkSpec

    spec = load_spec(GRAPHS / "ml100k_genres.toml")
    as_is = replace(spec, links=(LinkSpec(domain="both", by="id", file=spec.links[0].file),))
    ml = kg_signal(build_graph(as_is), shuffles=5).set_index("relation")
    for relation in ("(any relation)", "film_film_genre", "rev_film_director_film"):
        assert ml.loc[relation, "lift"] < 1.1 * ml.loc[relation, "shuffled"]


def test_kgcn_raw_files_read_with_the_generic_readers(real_data):
    from kgrec.data import read_links, read_triples

    folder = real_data / "lastfm-kgcn"
    plays = read_interactions(folder / "user_artists.dat")
    assert plays["rating"].notna().all() and plays["user"].nunique() == 1_892
    links = read_links(folder / "item_index2entity_id.txt")
    assert len(links) == 3_846 and links["entity"].astype(int).max() == 3_845
    kg = read_triples(folder / "kg.txt")
    assert len(kg) == 15_518 and kg["relation"].nunique() == 60


@pytest.mark.parametrize("name,overrides", [
    ("ml100k_genres", {}),
    # EASE stays on for ML-100K (943 users: a fit takes seconds); on Art -> Office its fits (an
    # eigendecomposition per source weight, eight lambdas) would take minutes of the suite for a smoke test
    ("art_office", {"model.item_features": "text", "model.text_dim": 16, "model.path_ease": False}),
])
def test_transfer_and_target_only_train_end_to_end_on_a_shipped_graph(name, overrides, real_data, tmp_path):
    from kgrec import fit, make_config

    graph = build_graph(load_spec(Path(__file__).resolve().parents[1] / "graphs" / f"{name}.toml"))
    graph.save(tmp_path / "graph")
    small = {"graph": str(tmp_path / "graph"), "model.dim": 16, "pretrain.epochs": 1, "finetune.epochs": 1,
             "target_only.epochs": 1, "eval.memory_mb": 64, **overrides}
    for mode in ("transfer", "target_only"):
        res = fit(make_config(None, {**small, "mode": mode}), tmp_path / mode, progress=False, log=lambda m: None)
        assert 0 < res.valid["ndcg@10"] < 1 and 0 < res.test["recall@20"] < 1
