"""Fuzzing ``kgrec build`` with graph specs: the example spec with keys removed, misspelt, added or
given odd values, or its text cut short or mangled. Every one builds a valid artifact or fails with one
line naming the spec (or the file it points at), and writes nothing (see ``fuzzing.py``)."""
from __future__ import annotations

import copy
import shutil
import tempfile
import tomllib
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from conftest import EXAMPLE_SPEC
from fuzzing import Census, check_artifact, fuzz_settings, run_cli, to_toml, violation

BASE = tomllib.loads(EXAMPLE_SPEC.read_text(encoding="utf-8"))
INPUTS = ["movies_books.toml", "movies.csv", "books.csv", "kg.ttl"]

# Every key a spec may hold (graphs/README.md), so that additions hit real code paths, not only "unknown key".
KEYS = ["name", "description", "seed", "dataset", "source", "target", "knowledge", "links", "attributes", "align",
        "cold_start", "path", "format", "sep", "header", "columns", "threshold", "k_core", "subset", "items", "carve",
        "split", "method", "ratios", "valid_from_train", "valid_ratio", "min_train", "id", "title", "text",
        "title_key", "unused_ids", "attribute", "values", "entity_prefix", "domain", "by", "titles", "template",
        "column", "relation", "parser", "prefix", "users", "user_id_below", "user_mapping", "item_overlap",
        "item_mapping", "item_min_users", "share", "valid_share", "user", "item", "rating", "timestamp"]
ODD_STRINGS = ["", " ", "\t", "\\t", "tab", "whitespace", ",", ";;", "ab", "{id}", "{", "}", "{nope}", "{id",
               "x{id}{id}", "{0}", "{id!r}", "{id:>5}", "..", "/", ".", "books.csv", "movies.csv", "kg.ttl",
               "missing.csv", "none", "loo", "ratio", "temporal", "given", "id", "iri", "title", "identity", "both",
               "source", "target", "auto", "csv", "tsv", "parquet", "atomic", "kgat", "turtle", "nt", "mapping",
               "interactions", "@position", "nan", "\x00", "é", "user", "book", "movie", "rating", "timestamp"]
NUMBERS = [0, 1, -1, 2, 3, 2**31, 2**63 - 1, -(2**63), 10**6, 0.0, -0.0, 0.5, 1.5, -1e-9, 1e300, float("nan"),
           float("inf"), float("-inf")]
scalars = st.one_of(st.sampled_from(ODD_STRINGS), st.sampled_from(NUMBERS), st.booleans(), st.text(max_size=10),
                    st.integers(), st.floats())
odd_values = st.one_of(scalars, st.lists(scalars, max_size=4), st.dictionaries(st.sampled_from(KEYS), scalars, max_size=3))


def _tables(data, path=()):
    """(path, table) of every table in ``data``, lists of tables included."""
    yield path, data
    for k, v in data.items():
        if isinstance(v, dict):
            yield from _tables(v, path + (k,))
        elif isinstance(v, list):
            for i, x in enumerate(v):
                if isinstance(x, dict):
                    yield from _tables(x, path + (k, i))


def _misspell(key: str, how: int, where: int) -> str:
    if not key:
        return "x"
    i = where % len(key)
    return [key[:i] + key[i + 1:], key[:i] + key[i] + key[i:], key[:i] + key[i:].upper(),
            key[:i] + key[i + 1:i + 2] + key[i:i + 1] + key[i + 2:], key + "s", " " + key][how % 6] or "x"


@st.composite
def specs(draw):
    """(TOML text or bytes, what was changed) from one to three edits of the example spec."""
    data = copy.deepcopy(BASE)
    edits = []
    for _ in range(draw(st.integers(1, 3))):
        tables = list(_tables(data))
        path, table = draw(st.sampled_from(tables))
        kind = draw(st.sampled_from(["delete", "misspell", "set", "set", "add"]))
        if kind in ("delete", "misspell", "set") and table:
            key = draw(st.sampled_from(sorted(table)))
            if kind == "delete":
                del table[key]
            elif kind == "misspell":
                table[_misspell(key, draw(st.integers(0, 5)), draw(st.integers(0, 30)))] = table.pop(key)
            else:
                table[key] = draw(odd_values)
        else:
            key = draw(st.sampled_from(KEYS))
            table[key] = draw(odd_values)
        edits.append((kind, ".".join(map(str, path + (key,)))))
    text = to_toml(data)
    mangle = draw(st.sampled_from(["none"] * 6 + ["cut", "bom", "latin1", "nul"]))
    raw = text.encode("utf-8")
    if mangle == "cut":
        raw = raw[:draw(st.integers(0, len(raw)))]
    elif mangle == "bom":
        raw = b"\xef\xbb\xbf" + raw
    elif mangle == "latin1":
        raw = raw.replace(b"Toy", b"Toy \xe9t\xe9", 1)
    elif mangle == "nul":
        i = draw(st.integers(0, len(raw)))
        raw = raw[:i] + b"\x00" + raw[i:]
    return raw, edits + [("mangle", mangle)], data


def test_fuzzed_specs_build_or_fail_cleanly(monkeypatch):
    monkeypatch.setenv("KGREC_DATA_DIR", tempfile.mkdtemp(prefix="kgrec-fuzz-data-"))
    census = Census("spec")

    @fuzz_settings(25)
    @given(specs())
    def check(example):
        raw, edits, data = example
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "in"
            shutil.copytree(EXAMPLE_SPEC.parent, src)
            (src / "movies_books.toml").write_bytes(raw)
            work = Path(tmp) / "work"
            work.mkdir()
            o = run_cli(["build", src / "movies_books.toml", "--out", work / "out", "--quiet"])
            names = INPUTS + [v for _, t in _tables(data) for v in t.values() if isinstance(v, str) and v.strip()]
            census.record(o, violation(o, work, names, lambda: check_artifact(work / "out")),
                          {"edits": edits, "spec": raw.decode("utf-8", "replace"), "stderr": o.err})

    check()
    census.finish()
