"""``extends = "parent.toml"``: a spec or config is its parent plus the few lines that differ.

The shipped ablations and Amazon configs used to be full copies; the copies are kept in
tests/fixtures/ and each rewritten file must parse to exactly what its copy did.
"""
from __future__ import annotations

import hashlib
import shutil
import tomllib
from pathlib import Path

import pytest

from kgrec.errors import SpecError
from kgrec.graph.build import build_graph
from kgrec.graph.spec import load_spec, parse_spec
from kgrec.tomlconfig import read_extended
from kgrec.train.config import load_config, make_config, parse_config

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXAMPLE = ROOT / "graphs" / "examples"


def write(folder: Path, name: str, text: str) -> Path:
    (folder / name).write_text(text, encoding="utf-8")
    return folder / name


@pytest.mark.parametrize("ablation, parent", [("art_office_no_kg", "art_office"), ("lastfm_no_kg", "lastfm_satori"),
                                              ("ml100k_genres_no_kg", "ml100k_genres")])
def test_each_ablation_spec_is_its_former_copy(ablation, parent):
    new = ROOT / "graphs" / f"{ablation}.toml"
    assert "extends" in tomllib.loads(new.read_text())
    copy = tomllib.loads((FIXTURES / "no_kg_copies" / f"{ablation}.toml").read_text())
    assert load_spec(new) == parse_spec(copy, str(new), new.parent)
    # and it is not its parent: the dropped sections are gone
    assert load_spec(ROOT / "graphs" / f"{parent}.toml").to_dict() | {"name": None, "description": None} \
        != load_spec(new).to_dict() | {"name": None, "description": None}


@pytest.mark.parametrize("name", ["amazon_sport_to_cloth", "amazon_electronic_to_phone",
                                  "amazon_cloth_to_sport_coldstart"])
def test_each_amazon_config_is_its_former_copy(name):
    new = ROOT / "configs" / f"{name}.toml"
    assert "extends" in tomllib.loads(new.read_text())
    copy = tomllib.loads((FIXTURES / "config_copies" / f"{name}.toml").read_text())
    assert load_config(new) == parse_config(copy, str(new), new.parent)


def _example_parent(folder: Path) -> Path:
    for f in ("movies.csv", "books.csv", "kg.ttl"):
        shutil.copy(EXAMPLE / f, folder / f)
    return write(folder, "full.toml", (EXAMPLE / "movies_books.toml").read_text())


def _digest(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_an_ablation_by_drop_builds_the_graph_its_copy_built(tmp_path):
    _example_parent(tmp_path)
    child = write(tmp_path, "no_kg.toml", 'extends = "full.toml"\ndrop = ["knowledge", "links"]\n'
                                          'name = "example-no-kg"\n')
    copy = write(tmp_path, "copy.toml", """
name = "example-no-kg"
description = "Toy movies -> books graph with a Turtle KG (kgrec's README example)"
seed = 0
[source]
name = "movies"
path = "movies.csv"
columns = { user = "user", item = "movie", rating = "rating", timestamp = "timestamp" }
threshold = 4.0
[target]
name = "books"
path = "books.csv"
columns = { user = "user", item = "book", rating = "rating", timestamp = "timestamp" }
threshold = 4.0
split = { method = "loo" }
[cold_start]
share = 0.2
""")
    build_graph(load_spec(child)).save(tmp_path / "a")
    build_graph(load_spec(copy)).save(tmp_path / "b")
    build_graph(load_spec(tmp_path / "full.toml")).save(tmp_path / "full")
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a")["graph.pt"] != _digest(tmp_path / "full")["graph.pt"]


def test_tables_merge_key_by_key_and_other_values_replace(tmp_path):
    write(tmp_path, "base.toml", 'graph = "g"\n[model]\ndim = 32\nlayers = 3\n[eval]\nks = [5, 10]\n')
    child = write(tmp_path, "child.toml", 'extends = "base.toml"\n[model]\nlayers = 1\n[eval]\nks = [20]\n')
    data, origins = read_extended(child)
    assert data == {"graph": "g", "model": {"dim": 32, "layers": 1}, "eval": {"ks": [20]}}
    assert origins == {"graph": str(tmp_path / "base.toml"), "model.dim": str(tmp_path / "base.toml"),
                       "model.layers": str(child), "eval.ks": str(child)}
    cfg = load_config(child)
    assert (cfg.model.dim, cfg.model.layers, cfg.graph) == (32, 1, str(tmp_path / "g"))


def test_chains_apply_in_order_and_drop_then_redefine_replaces_a_table(tmp_path):
    write(tmp_path, "a.toml", 'graph = "g"\nseed = 1\n[model]\ndim = 16\nlayers = 3\n')
    write(tmp_path, "b.toml", 'extends = "a.toml"\nseed = 2\n[model]\ndim = 8\n')
    c = write(tmp_path, "c.toml", 'extends = "b.toml"\ndrop = ["model"]\n[model]\nlayers = 1\n')
    cfg = load_config(c)
    assert (cfg.seed, cfg.model.dim, cfg.model.layers) == (2, 64, 1)  # dim back to its default


def test_a_dotted_drop_removes_one_key(tmp_path):
    write(tmp_path, "a.toml", 'graph = "g"\n[model]\ndim = 16\nlayers = 3\n')
    cfg = load_config(write(tmp_path, "b.toml", 'extends = "a.toml"\ndrop = ["model.layers"]\n'))
    assert (cfg.model.dim, cfg.model.layers) == (16, 2)


def test_overrides_apply_after_the_chain(tmp_path):
    write(tmp_path, "a.toml", 'graph = "g"\n[model]\ndim = 16\n')
    b = write(tmp_path, "b.toml", 'extends = "a.toml"\n')
    assert make_config(b, {"model.dim": 4}).model.dim == 4


@pytest.mark.parametrize("files, match", [
    ({"a.toml": 'extends = "b.toml"\n', "b.toml": 'extends = "a.toml"\n'}, "cycle: a.toml -> b.toml -> a.toml"),
    ({"a.toml": 'extends = "a.toml"\n'}, "cycle: a.toml -> a.toml"),
    ({"a.toml": 'extends = "missing.toml"\n'}, "missing.toml.*not found"),
    ({"a.toml": 'extends = 3\n'}, "key 'extends': expected the parent's file name"),
    ({"a.toml": 'extends = "../a.toml"\n'}, "key 'extends': .*not in this file's folder"),
    ({"a.toml": 'drop = ["model"]\ngraph = "g"\n'}, "key 'drop': .*there is none"),
    ({"a.toml": 'extends = "b.toml"\ndrop = ["modle"]\n', "b.toml": 'graph = "g"\n[model]\ndim = 8\n'},
     "key 'drop': 'modle' is not set in b.toml"),
    ({"a.toml": 'extends = "b.toml"\ndrop = "model"\n', "b.toml": 'graph = "g"\n[model]\ndim = 8\n'},
     "key 'drop': expected an array"),
])
def test_bad_extends_and_drop_are_refused(tmp_path, files, match):
    for name, text in files.items():
        write(tmp_path, name, text)
    with pytest.raises(SpecError, match=match):
        load_config(tmp_path / "a.toml")


def test_the_merged_file_is_validated_and_errors_name_the_file_that_set_the_key(tmp_path):
    write(tmp_path, "base.toml", 'graph = "g"\n[model]\ndim = 0\n')
    child = write(tmp_path, "child.toml", 'extends = "base.toml"\n[model]\nlayers = 1\n')
    with pytest.raises(SpecError, match=r"^base.toml: key 'model.dim': must be >= 1") as e:
        load_config(child)
    assert e.value.path == str(tmp_path / "base.toml")
    with pytest.raises(SpecError, match=r"^child.toml: key 'model.layers': must be >= 0"):
        load_config(write(tmp_path, "child.toml", 'extends = "base.toml"\n[model]\ndim = 8\nlayers = -1\n'))
    with pytest.raises(SpecError, match=r"^child.toml: key 'model.dimm': unknown key \(did you mean 'dim'"):
        load_config(write(tmp_path, "child.toml", 'extends = "base.toml"\n[model]\ndim = 8\ndimm = 8\n'))


def test_a_spec_error_inside_an_inherited_array_of_tables_names_the_parent(tmp_path):
    _example_parent(tmp_path)
    text = (tmp_path / "full.toml").read_text().replace('path = "kg.ttl"', 'path = "kg.ttl"\nformat = "rdf"')
    write(tmp_path, "full.toml", text)
    child = write(tmp_path, "child.toml", 'extends = "full.toml"\nname = "child"\n')
    with pytest.raises(SpecError, match=r"^full.toml: key 'knowledge\[0\].format': expected one of"):
        load_spec(child)
