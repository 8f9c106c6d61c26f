"""Graph specs are validated key by key, with errors that name the key."""
from __future__ import annotations

import pytest

from kgrec.errors import SpecError
from kgrec.graph.spec import load_spec, parse_spec

MINIMAL = {"name": "t", "target": {"path": "x.csv"}}


def test_minimal_spec_gets_defaults():
    spec = parse_spec(MINIMAL)
    assert spec.target.split.method == "ratio" and spec.source is None and spec.seed == 0


def test_misspelt_key_is_named_with_a_suggestion():
    with pytest.raises(SpecError, match=r"key 'target.treshold': unknown key \(did you mean 'threshold'\?\)"):
        parse_spec({"name": "t", "target": {"path": "x.csv", "treshold": 4}})


def test_out_of_range_value_is_rejected():
    with pytest.raises(SpecError, match=r"key 'cold_start.share': must be <= 1.0"):
        parse_spec({**MINIMAL, "cold_start": {"share": 1.5}})


def test_wrong_type_is_rejected():
    with pytest.raises(SpecError, match=r"key 'seed': expected int"):
        parse_spec({**MINIMAL, "seed": "zero"})


def test_unknown_choice_lists_the_valid_ones():
    with pytest.raises(SpecError, match=r"key 'target.split.method': expected one of none, given, ratio"):
        parse_spec({"name": "t", "target": {"path": "x.csv", "split": {"method": "random"}}})


def test_ratios_must_sum_to_one():
    with pytest.raises(SpecError, match="summing to 1"):
        parse_spec({"name": "t", "target": {"path": "x.csv", "split": {"ratios": [0.5, 0.1, 0.1]}}})


def test_invalid_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(SpecError, match="bad.toml.*invalid TOML"):
        load_spec(bad)
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "none.toml")


def test_every_shipped_spec_parses():
    from pathlib import Path

    specs = sorted(Path(__file__).resolve().parents[1].joinpath("graphs").rglob("*.toml"))
    assert len(specs) >= 9
    for p in specs:
        load_spec(p)


def test_a_split_the_format_cannot_give_names_the_spec_key(tmp_path):
    from kgrec import build_graph

    (tmp_path / "r.csv").write_text("user,item\na,x\n")
    (tmp_path / "s.toml").write_text("name='t'\n[target]\npath='r.csv'\nsplit={method='given'}\n")
    with pytest.raises(SpecError, match=r"s.toml: key 'target.split.method': 'given' needs"):
        build_graph(load_spec(tmp_path / "s.toml"))


def test_unused_ids_need_position_ids_and_must_be_positive():
    link = {"domain": "target", "by": "title", "path": "l.tsv"}
    with pytest.raises(SpecError, match=r"key 'links\[0\].titles.unused_ids': only applies with id = \"@position\""):
        parse_spec({**MINIMAL, "links": [{**link, "titles": {"path": "t.csv", "unused_ids": [3]}}]})
    with pytest.raises(SpecError, match=r"unused_ids': expected positive integers"):
        parse_spec({**MINIMAL, "links": [{**link, "titles": {"path": "t.csv", "id": "@position", "unused_ids": [0]}}]})
