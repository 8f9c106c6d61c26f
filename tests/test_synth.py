"""kgrec synth: seeded, real-world-shaped two-domain data that kgrec build reads."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from kgrec.data.synth import SynthConfig, parse_edges, synth
from kgrec.errors import KgrecError

FILES = ("source.parquet", "target.parquet", "kg.nt", "spec.toml", "synth.json")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return synth(SynthConfig(edges=30_000, seed=0), tmp_path_factory.mktemp("synth") / "s0")


def test_the_same_seed_writes_byte_identical_files_and_another_seed_other_ones(small, tmp_path):
    again = synth(SynthConfig(edges=30_000, seed=0), tmp_path / "again")
    other = synth(SynthConfig(edges=30_000, seed=1), tmp_path / "other")
    for name in FILES:
        assert (small.out / name).read_bytes() == (again.out / name).read_bytes(), name
    for name in ("source.parquet", "target.parquet", "kg.nt"):
        assert (small.out / name).read_bytes() != (other.out / name).read_bytes(), name


def test_kgrec_build_reads_the_files_and_the_graph_has_about_the_edges_asked(small):
    from kgrec import build_graph, load_spec

    graph = build_graph(load_spec(small.spec))
    edges = sum(int(graph.data[t].edge_index.shape[1]) for t in graph.data.edge_types)
    assert abs(edges - 30_000) / 30_000 < 0.05
    assert abs(edges - small.counts["edges_expected"]) / edges < 0.03
    kinds = {rel for _, rel, _ in graph.data.edge_types}
    assert {"interacts_source", "interacts_target", "linked_to", "same_as", "category", "brand", "tag",
            "subCategoryOf", "country"} <= kinds
    assert int(graph.data["user"].in_source.logical_and(graph.data["user"].in_target).sum()) > 0
    assert len(graph.split("valid", "target")[0]) > 0 and len(graph.split("test", "target")[0]) > 0


def test_user_activity_and_item_popularity_have_heavy_tails(small):
    reviews = pd.read_parquet(small.out / "source.parquet")
    per_user = reviews.groupby("user").size().to_numpy()
    per_item = reviews.groupby("item").size().to_numpy()
    assert per_user.min() >= 1 and per_user.max() >= 10 * np.median(per_user)
    assert per_item.max() >= 20 * np.median(per_item)
    assert not reviews.duplicated(["user", "item"]).any()
    assert 0.05 < (reviews["rating"] < 4).mean() < 0.15  # below the spec's threshold, dropped by the build


def test_duplicate_listings_share_the_source_items_id_and_can_be_turned_off(small, tmp_path):
    src = set(pd.read_parquet(small.out / "source.parquet")["item"])
    tgt = set(pd.read_parquet(small.out / "target.parquet")["item"])
    assert src & tgt
    none = synth(SynthConfig(edges=30_000, seed=0, duplicates=0.0), tmp_path / "none")
    assert not set(pd.read_parquet(none.out / "source.parquet")["item"]) & \
        set(pd.read_parquet(none.out / "target.parquet")["item"])
    assert json.loads((none.out / "synth.json").read_text())["counts"]["duplicate_listings"] == 0


def test_edge_counts_read_like_people_write_them():
    assert parse_edges("10M") == 10_000_000 and parse_edges("1.5m") == 1_500_000
    assert parse_edges("500k") == 500_000 and parse_edges("2,000") == 2_000
    for bad in ("ten", "0", "-3M", ""):
        with pytest.raises(KgrecError, match="edges"):
            parse_edges(bad)


def test_bad_settings_and_foreign_directories_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(KgrecError, match="target_share"):
        synth(SynthConfig(edges=30_000, target_share=1.5), tmp_path / "x")
    assert not (tmp_path / "x").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(KgrecError):
        synth(SynthConfig(edges=30_000), tmp_path / "mine", overwrite=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_the_cli_writes_a_dataset_and_refuses_a_bad_count_in_one_line(tmp_path, capsys):
    from kgrec.cli import main
    assert main(["synth", "--edges", "20k", "--seed", "3", "--out", str(tmp_path / "d"), "--quiet"]) == 0
    assert {p.name for p in (tmp_path / "d").iterdir()} == set(FILES)
    assert main(["synth", "--edges", "lots", "--out", str(tmp_path / "e")]) == 2
    assert "edges" in capsys.readouterr().err and not (tmp_path / "e").exists()
