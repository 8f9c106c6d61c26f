"""RDF readers: rdflib formats and the streaming N-Triples parser."""
from __future__ import annotations

import string

import pytest
import rdflib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kgrec.data.rdf import iter_ntriples, read_rdf
from kgrec.errors import InputError

TTL = """@prefix ex: <http://example.org/> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix owl: <http://www.w3.org/2002/07/owl#> .
ex:heat ex:director ex:mann ; rdfs:label "Heat"@en ; ex:year 1995 .
ex:mann owl:sameAs ex:michael_mann .
"""


def test_literals_become_attributes_never_entities(tmp_path):
    f = tmp_path / "kg.ttl"
    f.write_text(TTL)
    kg = read_rdf(f)
    assert kg.triples.values.tolist() == [["http://example.org/heat", "http://example.org/director", "http://example.org/mann"]]
    assert sorted(kg.literals["value"]) == ["1995", "Heat"]
    assert kg.same_as.values.tolist() == [["http://example.org/mann", "http://example.org/michael_mann"]]


@pytest.mark.parametrize("fmt,suffix", [("xml", ".rdf"), ("json-ld", ".jsonld"), ("nt", ".nt")])
def test_every_rdflib_syntax_gives_the_same_knowledge(tmp_path, fmt, suffix):
    g = rdflib.Graph().parse(data=TTL, format="turtle")
    f = tmp_path / f"kg{suffix}"
    g.serialize(f, format=fmt)
    kg = read_rdf(f)
    assert len(kg.triples) == 1 and len(kg.literals) == 2 and len(kg.same_as) == 1


def test_broken_turtle_names_file_and_line(tmp_path):
    f = tmp_path / "bad.ttl"
    f.write_text("@prefix ex: <http://example.org/> .\nex:a ex:b ex:c .\nex:a ex:b \"unterminated .\n")
    with pytest.raises(InputError, match=r"bad.ttl.*invalid turtle"):
        read_rdf(f)


def test_broken_ntriples_line_is_reported(tmp_path):
    f = tmp_path / "bad.nt"
    f.write_text("<http://a> <http://b> <http://c> .\n# comment\n<http://a> <http://b> .\n")
    with pytest.raises(InputError, match=r"bad.nt line 3: expected an N-Triples statement"):
        list(iter_ntriples(f))


iri = st.text(alphabet=string.ascii_letters + string.digits + "/#_.-~", min_size=1, max_size=10).map(lambda s: f"http://x.org/{s}")
lit = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
obj = st.one_of(iri.map(rdflib.URIRef), lit.map(rdflib.Literal),
                st.tuples(lit, st.sampled_from(["en", "de-CH"])).map(lambda t: rdflib.Literal(t[0], lang=t[1])),
                st.integers(-5, 5).map(rdflib.Literal))


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(triples=st.lists(st.tuples(iri, iri, obj), max_size=15))
def test_streaming_parser_agrees_with_rdflib(tmp_path, triples):
    g = rdflib.Graph()
    for s, p, o in triples:
        g.add((rdflib.URIRef(s), rdflib.URIRef(p), o))
    f = tmp_path / "g.nt"
    g.serialize(f, format="nt", encoding="utf-8")
    ours = read_rdf(f, streaming=True)
    theirs = read_rdf(f, streaming=False)
    key = lambda df: sorted(map(tuple, df.fillna("").values.tolist()))
    assert key(ours.triples) == key(theirs.triples)
    assert key(ours.literals) == key(theirs.literals)


@pytest.mark.parametrize("line", ['<http://e.org/a\x00b> <http://e.org/p> <http://e.org/c> .',
                                  '<http://e.org/a> <http://e.org/p> <http://e.org/c\\u0000> .',
                                  '<http://e.org/a> <http://e.org/p\\u0007> <http://e.org/c> .'])
def test_a_control_character_in_an_iri_is_refused_with_file_and_line(tmp_path, line):
    path = tmp_path / "kg.nt"
    path.write_text('<http://e.org/x> <http://e.org/p> <http://e.org/y> .\n' + line + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"kg.nt line 2: IRI .* holds control character"):
        read_rdf(path)


@pytest.mark.parametrize("line", ['<http://e.org/a> <http://e.org/p> <> .', '<> <http://e.org/p> <http://e.org/c> .'])
def test_an_empty_iri_is_refused_not_read_as_an_entity_without_an_id(tmp_path, line):
    # found by the RDF fuzzer: `<>` once became an entity with an empty id
    path = tmp_path / "kg.nt"
    path.write_text('<http://e.org/x> <http://e.org/p> <http://e.org/y> .\n' + line + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"kg.nt line 2: an empty IRI <>"):
        read_rdf(path)


@pytest.mark.parametrize("escape", ["\\UFFFFFFFF", "\\U00110000", "\\uD800"])
def test_an_escape_outside_unicode_is_an_input_error_not_an_overflow(tmp_path, escape):
    path = tmp_path / "kg.nt"
    path.write_text(f'<http://e.org/a> <http://e.org/p> "x{escape}" .\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"kg.nt line 1: escape .* is not a Unicode character"):
        read_rdf(path)


@pytest.mark.parametrize("body, role, line", [('"lit" ex:p ex:b .', "subject", 3), ('ex:a "lit" ex:b .', "predicate", 3)])
def test_turtle_with_a_literal_subject_or_predicate_is_refused_with_its_line(tmp_path, body, role, line):
    path = tmp_path / "kg.ttl"
    path.write_text(f"@prefix ex: <http://e.org/> .\nex:x ex:p ex:y .\n{body}\n", encoding="utf-8")
    with pytest.raises(InputError, match=rf'kg.ttl line {line}: "lit" is a literal in {role} position'):
        read_rdf(path)


def test_a_control_character_in_a_turtle_iri_is_refused(tmp_path):
    path = tmp_path / "kg.ttl"
    path.write_text("@prefix ex: <http://e.org/> .\nex:a ex:p <http://e.org/b\\u0000> .\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"kg.ttl: IRI .* holds control character"):
        read_rdf(path)
