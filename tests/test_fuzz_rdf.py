"""Fuzzing ``kgrec build`` with knowledge graphs in Turtle and N-Triples: statements put together from
good and broken parts (IRIs with bad escapes or spaces, literal subjects and predicates, blank nodes,
missing dots, NUL bytes, bytes that are not UTF-8, a BOM). Every one builds a valid artifact or fails
with one line naming the file (see ``fuzzing.py``)."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import EXAMPLE_SPEC
from kgrec.data.rdf import read_rdf
from kgrec.errors import InputError
from fuzzing import Census, check_artifact, fuzz_settings, run_cli, violation

BOOKS = ["dune", "solaris", "jaws", "foundation", "neuromancer"]
IRIS = ([f"<http://example.org/book/{b}>" for b in BOOKS] + ["<http://example.org/movie/heat>",
        "<http://example.org/person/x>", "<http://example.org/genre/scifi>", "<http://example.org/p>"])
BROKEN_IRIS = ["<http://e.org/a b>", "<http://e.org/\\u00e9>", "<http://e.org/\\u12>", "<http://e.org/\\UFFFFFFFF>",
               "<http://e.org/\\U0010FFFF>", "<http://e.org/\\U00110000>", "<http://e.org/\\uD800>", "<>", "<relative>",
               "<http://e.org/a\x00b>", "<http://e.org/{id}>", "<http://e.org/a", "http://e.org/a>", "<http://e.org/\\n>",
               "<http://e.org/\"q\">", "<http://example.org/book/dune\\u0000>", "<\udcff>"]
LITERALS = ['"x"', '"Dune"@en', '"1995"^^<http://www.w3.org/2001/XMLSchema#gYear>', '""', '"a\\"b"', '"\\u00e9"',
            '"\\UFFFFFFFF"', '"\\q"', '"unterminated', '"x"@', '"x"^^', '"x"^^<bad iri>', '"""long"""', "'single'",
            '"x"@en-', '"\x00"', '"\\U0001F600"', "12", "true", "1e400"]
BNODES = ["_:b1", "_:b2", "_:", "_:a.b", "[]", "[ <http://e.org/p> <http://e.org/o> ]", "()"]
PREFIXED = ["ex:a", "book:dune", "nope:x", ":x", "ex:", "a"]
ENDS = [" .", " .", " .", "", " ;", " ,", " . .", ".", " .#c", " . # comment"]

terms = st.one_of(st.sampled_from(IRIS), st.sampled_from(BROKEN_IRIS), st.sampled_from(LITERALS),
                  st.sampled_from(BNODES), st.text(max_size=6))


@st.composite
def statements(draw, turtle: bool):
    s = draw(st.one_of(st.sampled_from(IRIS), terms) if draw(st.booleans()) else st.sampled_from(IRIS))
    p = draw(st.sampled_from(IRIS[-1:] + ["<http://www.w3.org/2000/01/rdf-schema#label>"]) if draw(st.booleans())
             else terms)
    o = draw(st.one_of(st.sampled_from(IRIS), terms))
    if turtle:
        s, p, o = (draw(st.sampled_from([x, x, draw(st.sampled_from(PREFIXED))])) for x in (s, p, o))
    return f"{s} {p} {o}{draw(st.sampled_from(ENDS))}"


@st.composite
def graphs(draw):
    """(file name, bytes) of a Turtle or an N-Triples file."""
    turtle = draw(st.booleans())
    lines = []
    if turtle and draw(st.integers(0, 4)):
        lines += ["@prefix ex: <http://example.org/> .", "@prefix book: <http://example.org/book/> ."]
        if draw(st.integers(0, 4)) == 0:
            lines.append(draw(st.sampled_from(["@prefix x <http://e.org/> .", "@prefix : <bad iri> .",
                                               "@base <http://e.org/> .", "PREFIX y: <http://e.org/>", "@prefix"])))
    good = [f"<http://example.org/book/{b}> <http://example.org/genre> <http://example.org/genre/g{i % 2}> ."
            for i, b in enumerate(BOOKS)]
    lines += draw(st.lists(st.sampled_from(good), max_size=5, unique=True))
    lines += draw(st.lists(statements(turtle), max_size=6))
    lines = draw(st.permutations(lines)) if draw(st.booleans()) else lines
    raw = "\n".join(lines).encode("utf-8", "surrogateescape") + b"\n"
    mangle = draw(st.sampled_from(["none"] * 6 + ["bom", "latin1", "nul", "cut", "crlf"]))
    if mangle == "bom":
        raw = b"\xef\xbb\xbf" + raw
    elif mangle == "latin1":
        raw += b'<http://e.org/caf\xe9> <http://e.org/p> "x" .\n'
    elif mangle == "nul":
        i = draw(st.integers(0, len(raw)))
        raw = raw[:i] + b"\x00" + raw[i:]
    elif mangle == "cut":
        raw = raw[:draw(st.integers(0, len(raw)))]
    elif mangle == "crlf":
        raw = raw.replace(b"\n", b"\r\n")
    return ("kg.ttl" if turtle else "kg.nt"), raw


def test_fuzzed_rdf_builds_or_fails_cleanly(monkeypatch):
    monkeypatch.setenv("KGREC_DATA_DIR", tempfile.mkdtemp(prefix="kgrec-fuzz-data-"))
    census = Census("rdf")

    @fuzz_settings(25)
    @given(graphs())
    def check(graph):
        name, raw = graph
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "in"
            shutil.copytree(EXAMPLE_SPEC.parent, src)
            (src / "kg.ttl").unlink()
            (src / name).write_bytes(raw)
            spec = src / "movies_books.toml"
            spec.write_text(spec.read_text(encoding="utf-8").replace('path = "kg.ttl"', f'path = "{name}"'),
                            encoding="utf-8")
            work = Path(tmp) / "work"
            work.mkdir()
            o = run_cli(["build", spec, "--out", work / "out", "--quiet"])
            census.record(o, violation(o, work, [name, "movies_books.toml"], lambda: check_artifact(work / "out")),
                          {"file": name, "rdf": raw, "stderr": o.err})

    check()
    census.finish()



@pytest.mark.parametrize("term", ["<http://e.org/\\uD800>", '"a\\uDC00"'], ids=["iri", "literal"])
def test_a_surrogate_escape_in_turtle_is_refused_naming_the_file(tmp_path, term):
    """Found by the fuzzing: rdflib decodes ``\\uD800`` into a lone surrogate, which no file can hold."""
    (tmp_path / "kg.ttl").write_text(f"<http://e.org/s> <http://e.org/p> {term} .\n")
    with pytest.raises(InputError, match=r"kg.ttl.*lone surrogate"):
        read_rdf(tmp_path / "kg.ttl", "turtle")
