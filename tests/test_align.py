"""Item alignment across domains: one product listed in both catalogues under two ids.

A held-out target pair that repeats a source training interaction of the same user under the
other listing leaves valid/test, is filtered from rankings like a seen item, and is counted."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from kgrec import build_graph, graph_info, load_spec
from kgrec.eval.ranking import ranking_task
from kgrec.graph.align import duplicate_audit, identical_user_sets

GRAPHS = Path(__file__).resolve().parents[1] / "graphs"

# Source "clothing" and target "sport": the running shoe is listed in both (c_shoe, s_shoe), reviewed by
# ann, bob and cy in both. Ann has it in source training and her held-out sport item is s_shoe: the
# same review twice; her other held-out item, s_net, stays. Bob's held-out sport item is s_ball.
SOURCE = """user\titem\tsplit
ann\tc_shoe\ttrain
bob\tc_shoe\ttrain
cy\tc_shoe\ttrain
ann\tc_hat\ttrain
bob\tc_hat\ttrain
dee\tc_sock\ttrain
eve\tc_sock\ttrain
"""
TARGET = """user\titem\tsplit
ann\ts_ball\ttrain
ann\ts_shoe\ttest
bob\ts_shoe\ttrain
cy\ts_shoe\ttrain
bob\ts_net\ttrain
bob\ts_ball\ttest
dee\ts_net\ttrain
dee\ts_ball\ttrain
eve\ts_ball\ttest
eve\ts_net\ttrain
cy\ts_net\ttest
ann\ts_net\ttest
"""


def write_spec(tmp_path: Path, align: str, extra: str = "", target_split: str = 'method = "given"') -> Path:
    for role, text in (("source", SOURCE), ("target", TARGET)):
        (tmp_path / role).mkdir(exist_ok=True)
        frame = pd.read_csv(pd.io.common.StringIO(text), sep="\t")
        for split in ("train", "test"):
            frame[frame["split"] == split][["user", "item"]].to_csv(tmp_path / role / f"{split}.tsv", sep="\t",
                                                                  index=False)
    spec = tmp_path / f"spec_{align}.toml"
    spec.write_text(f"""name = "shoes"
[source]
name = "clothing"
path = "source"
format = "split_dir"
split = {{ method = "given" }}
[target]
name = "sport"
path = "target"
format = "split_dir"
split = {{ {target_split} }}
[align]
users = "id"
items = "{align}"
{extra}
""")
    return spec


def held_out(g, split: str = "test") -> set:
    users, items = g.nodes["user"]["id"], g.nodes["item"]["id"]
    return {(users[u], items[i]) for u, i in g.split(split).t().tolist()}


def test_identical_user_sets_pair_the_two_listings_of_one_product():
    src = pd.DataFrame({"user": ["a", "b", "a", "c"], "item": ["s1", "s1", "s2", "s3"]})
    tgt = pd.DataFrame({"user": ["b", "a", "a", "c"], "item": ["t1", "t1", "t2", "t3"]})
    pairs = identical_user_sets(src, tgt, min_users=2)
    assert pairs.to_dict("records") == [{"source": "s1", "target": "t1"}]  # one-user sets are not evidence
    assert len(identical_user_sets(src, tgt, min_users=1)) == 3


def test_a_held_out_pair_repeating_a_source_training_review_leaves_the_test(tmp_path):
    g = build_graph(load_spec(write_spec(tmp_path, "interactions")))
    assert held_out(g) == {("bob", "s_ball"), ("eve", "s_ball"), ("cy", "s_net"), ("ann", "s_net")}
    acc = g.manifest["accounting"]["item_alignment"]
    assert acc["pairs"] == 1 and acc["duplicates_removed"] == {"valid": 0, "test": 1}
    assert acc["users_with_a_removed_test_pair"] == 1
    dup = g.duplicates()
    assert [(g.nodes["user"]["id"][u], g.nodes["item"]["id"][i]) for u, i in dup.t().tolist()] == [("ann", "s_shoe")]


def test_aligned_listings_are_joined_by_a_same_as_edge_and_keep_their_domains(tmp_path):
    g = build_graph(load_spec(write_spec(tmp_path, "interactions")))
    items = g.nodes["item"]
    (s, t), = g.data["item", "same_as", "item"].edge_index.t().tolist()
    assert (items["id"][s], items["domain"][s]) == ("c_shoe", "source")
    assert (items["id"][t], items["domain"][t]) == ("s_shoe", "target")
    assert g.data["item", "rev_same_as", "item"].edge_index.t().tolist() == [[t, s]]


def test_ranking_filters_the_product_a_user_already_has_under_another_listing(tmp_path):
    g = build_graph(load_spec(write_spec(tmp_path, "interactions")))
    task = ranking_task(g, "test", exclude=())
    users, items = g.nodes["user"]["id"].tolist(), g.nodes["item"]["id"].tolist()
    shoe = int((task.items == items.index("s_shoe")).nonzero())
    ptr, ex = task.exclude
    excluded = {users[int(u)]: set(ex[ptr[r]:ptr[r + 1]].tolist()) for r, u in enumerate(task.users)}
    assert shoe in excluded["ann"]
    assert shoe not in excluded["eve"]


def test_turning_alignment_off_brings_the_duplicate_back_and_the_audit_finds_it(tmp_path):
    off = build_graph(load_spec(write_spec(tmp_path, "none")))
    on = build_graph(load_spec(write_spec(tmp_path, "interactions")))
    assert ("ann", "s_shoe") in held_out(off)
    assert ("item", "same_as", "item") not in off.data.edge_types
    assert duplicate_audit(off)["test"] == {"pairs": 5, "duplicates": 1, "users": 1}
    assert duplicate_audit(on)["test"] == {"pairs": 4, "duplicates": 0, "users": 0}


def test_alignment_by_equal_ids_and_by_a_mapping_file(tmp_path):
    mapping = tmp_path / "same.tsv"
    mapping.write_text("source\ttarget\nc_shoe\ts_shoe\n")
    by_file = build_graph(load_spec(write_spec(tmp_path, "mapping", f'item_mapping = "{mapping.name}"')))
    assert ("ann", "s_shoe") not in held_out(by_file)
    by_id = build_graph(load_spec(write_spec(tmp_path, "id")))  # no equal ids here: nothing aligned
    assert ("ann", "s_shoe") in held_out(by_id)
    assert by_id.manifest["accounting"]["item_alignment"]["pairs"] == 0


def test_info_reports_the_aligned_items_and_the_removed_pairs(tmp_path):
    info = graph_info(build_graph(load_spec(write_spec(tmp_path, "interactions"))))
    assert info["item_alignment"]["method"] == "interactions"
    assert info["item_alignment"]["duplicates_removed"]["test"] == 1
    assert info["duplicate_audit"]["test"]["duplicates"] == 0
    assert info["splits"]["target"]["test"] == 4


def test_a_mapping_alignment_needs_its_file(tmp_path):
    from kgrec.errors import SpecError

    with pytest.raises(SpecError, match="item_mapping"):
        load_spec(write_spec(tmp_path, "mapping"))


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.parametrize("name, duplicates_without", [("amazon_cloth_to_sport", (1529, 8326)),
                                                      ("amazon_electronic_to_phone", (292, 2559)),
                                                      ("amazon_cloth_to_sport_coldstart", (444, 3546))])
def test_shipped_amazon_specs_hold_under_one_percent_duplicate_test_pairs(name, duplicates_without, real_data):
    from dataclasses import replace

    spec = load_spec(GRAPHS / f"{name}.toml")
    assert spec.align.items == "interactions"
    on = duplicate_audit(build_graph(spec))["test"]
    assert on["duplicates"] < 0.01 * on["pairs"]
    off = duplicate_audit(build_graph(replace(spec, align=replace(spec.align, items="none"))))["test"]
    assert (off["duplicates"], off["pairs"]) == duplicates_without


def test_a_model_trains_on_a_graph_with_aligned_items(tmp_path):
    from kgrec import fit, make_config

    g = build_graph(load_spec(write_spec(tmp_path, "interactions",
                                         target_split='method = "given", valid_from_train = "loo"')))
    g.save(tmp_path / "graph")
    cfg = make_config(None, {"graph": str(tmp_path / "graph"), "pretrain.epochs": 1, "finetune.epochs": 1,
                             "model.dim": 8})
    res = fit(cfg, tmp_path / "run", progress=False)
    assert ("item", "same_as", "item") in res.graph.relations  # the encoder passes messages along it
    assert len(res.history) >= 2  # a pre-training and a fine-tuning epoch


def test_an_rdf_export_of_an_aligned_graph_rebuilds_the_same_duplicates(tmp_path):
    from kgrec import export_graph

    g = build_graph(load_spec(write_spec(tmp_path, "interactions")))
    export_graph(g, tmp_path / "rdf", "ntriples")
    again = build_graph(load_spec(tmp_path / "rdf" / "spec.toml"))
    assert held_out(again) == held_out(g)
    assert again.manifest["accounting"]["item_alignment"]["duplicates_removed"] == {"valid": 0, "test": 1}
    assert g.data["item", "same_as", "item"].edge_index.shape == again.data["item", "same_as", "item"].edge_index.shape
