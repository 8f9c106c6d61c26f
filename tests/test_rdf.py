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
