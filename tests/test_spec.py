"""Graph specs are validated key by key, with errors that name the key."""
from __future__ import annotations

import re

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


@pytest.mark.parametrize("where", ["source", "target", "knowledge"])
@pytest.mark.parametrize("path", ["", " "])
def test_an_empty_path_names_its_key_not_the_spec_folder(where, path):
    # found by the spec fuzzer: path = "" once read the spec's own folder ("expected a file, found a directory")
    spec = {"name": "t", "source": {"path": "a.csv"}, "target": {"path": "b.csv"}, "knowledge": [{"path": "kg.nt"}]}
    if where == "knowledge":
        spec["knowledge"][0]["path"] = path
    else:
        spec[where]["path"] = path
    key = "knowledge[0].path" if where == "knowledge" else f"{where}.path"
    with pytest.raises(SpecError, match=re.escape(f"key '{key}': expected a file path")):
        parse_spec(spec)


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


@pytest.mark.parametrize("word, char", [("tab", "\t"), ("\\t", "\t"), ("comma", ","), ("space", " "),
                                        ("semicolon", ";"), ("pipe", "|"), ("TAB", "\t"), (";", ";")])
def test_a_separator_may_be_a_character_or_a_known_word(word, char):
    assert parse_spec({"name": "t", "target": {"path": "x.csv", "sep": word}}).target.sep == char


@pytest.mark.parametrize("word", ["tabs", ";;", "", "colon"])
def test_any_other_separator_word_is_refused_with_the_words_that_work(word):
    with pytest.raises(SpecError, match=r"key 'target.sep': expected one character or one of whitespace, tab, comma"):
        parse_spec({"name": "t", "target": {"path": "x.csv", "sep": word}})


@pytest.mark.parametrize("template, message", [
    ("http://e.org/{iid}", r"names unknown field\(s\) iid; the only field is \{id\}"),
    ("http://e.org/{id", r"malformed template"),
    ("http://e.org/{id}}", r"malformed template"),
    ("http://e.org/{}", r"positional field"),
    ("http://e.org/{id.real}", r"a field is a plain name"),
    ("http://e.org/movie", r"has no '\{id\}', so every item would map to the same entity"),
])
def test_a_link_template_is_checked_when_the_spec_is_read(template, message):
    spec = {**MINIMAL, "links": [{"by": "iri", "template": template}]}
    with pytest.raises(SpecError, match=rf"key 'links\[0\].template': .*{message}"):
        parse_spec(spec)


def test_a_link_template_may_hold_literal_braces():
    spec = parse_spec({**MINIMAL, "links": [{"by": "iri", "template": "http://e.org/{{x}}/{id}"}]})
    assert spec.links[0].template.format(id=7) == "http://e.org/{x}/7"


def test_a_broken_title_key_is_refused_naming_the_key():
    items = {"path": "items.csv", "title_key": "{title} ({year)"}
    with pytest.raises(SpecError, match=r"key 'target.items.title_key': malformed template"):
        parse_spec({"name": "t", "target": {"path": "x.csv", "items": items}})


@pytest.mark.parametrize("table, key, value", [
    ("cold_start", "share", float("nan")), ("cold_start", "valid_share", float("inf")),
    ("target", "threshold", float("nan")), ("target.split", "valid_ratio", float("nan")),
    ("target.split", "ratios", [float("nan"), 0.5, 0.5]), ("", "seed", 2**32), ("target", "k_core", -1),
    ("align", "item_min_users", 0),
])
def test_every_numeric_spec_key_must_be_finite_and_in_range(table, key, value):
    spec = {"name": "t", "target": {"path": "x.csv", "split": {}}}
    node = spec
    for part in filter(None, table.split(".")):
        node = node.setdefault(part, {})
    node[key] = value
    dotted = f"{table}.{key}" if table else key
    with pytest.raises(SpecError, match=rf"key '{dotted}': (must be|expected)"):
        parse_spec(spec)


def test_a_misspelt_required_key_is_named_as_unknown_with_a_suggestion():
    with pytest.raises(SpecError, match=r"key 'nmae': unknown key \(did you mean 'name'\?\)"):
        parse_spec({"nmae": "t", "target": {"path": "x.csv"}})
    with pytest.raises(SpecError, match=r"key 'target.pth': unknown key \(did you mean 'path'\?\)"):
        parse_spec({"name": "t", "target": {"pth": "x.csv"}})
