"""Knowledge in RDF: Turtle, RDF/XML, N-Triples and JSON-LD through rdflib,
plus a streaming N-Triples parser for files of millions of triples.

IRIs (and blank nodes) become entity ids; literals never become entities:
label-like literals (``rdfs:label``, ``skos:prefLabel``, ``schema:name``,
``foaf:name``, ``dc:title``) become the node's label, every other literal is
kept as a node attribute row.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pandas as pd

from kgrec.data.table import open_checked
from kgrec.io import decoding, not_utf8
from kgrec.errors import InputError
from kgrec.progress import progress_bar

OWL_SAME_AS = "http://www.w3.org/2002/07/owl#sameAs"
LABEL_PREDICATES = frozenset({
    "http://www.w3.org/2000/01/rdf-schema#label",
    "http://www.w3.org/2004/02/skos/core#prefLabel",
    "http://schema.org/name",
    "https://schema.org/name",
    "http://xmlns.com/foaf/0.1/name",
    "http://purl.org/dc/elements/1.1/title",
    "http://purl.org/dc/terms/title",
})
#: file suffix -> rdflib format name
RDF_FORMATS = {".ttl": "turtle", ".turtle": "turtle", ".nt": "nt", ".ntriples": "nt", ".rdf": "xml",
               ".xml": "xml", ".owl": "xml", ".jsonld": "json-ld", ".json": "json-ld", ".n3": "n3"}
_FORMAT_ALIASES = {"turtle": "turtle", "ttl": "turtle", "nt": "nt", "ntriples": "nt", "n-triples": "nt",
                   "xml": "xml", "rdfxml": "xml", "rdf/xml": "xml", "json-ld": "json-ld", "jsonld": "json-ld", "n3": "n3"}


@dataclass
class RdfKnowledge:
    """What an RDF file contributes to the graph.

    ``triples``: ``head, relation, tail`` (IRIs, or ``_:label`` blank nodes);
    ``literals``: ``node, predicate, value, datatype, lang``;
    ``same_as``: ``a, b`` pairs from ``owl:sameAs``, to be merged.
    """

    triples: pd.DataFrame
    literals: pd.DataFrame
    same_as: pd.DataFrame


# --- streaming N-Triples -----------------------------------------------------
_IRI = r"<([^>]*)>"
_BNODE = r"_:([A-Za-z0-9_](?:[A-Za-z0-9_.\-]*[A-Za-z0-9_\-])?)"
_LIT = r'"((?:[^"\\\n\r]|\\.)*)"(?:@([A-Za-z]+(?:-[A-Za-z0-9]+)*)|\^\^<([^>]*)>)?'
_LINE = re.compile(
    rf"^[ \t]*(?:{_IRI}|{_BNODE})[ \t]*{_IRI}[ \t]*(?:{_IRI}|{_BNODE}|{_LIT})[ \t]*\.[ \t]*(?:#.*)?$"
)
_ESC = re.compile(r"\\(?:u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|(.))")
_SIMPLE = {"t": "\t", "b": "\b", "n": "\n", "r": "\r", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


def _unescape(s: str, path: Path, line: int) -> str:
    if "\\" not in s:
        return s

    def sub(m: re.Match) -> str:
        if m.group(1) or m.group(2):
            code = int(m.group(1) or m.group(2), 16)
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise InputError(path, f"escape '{m.group(0)}' is not a Unicode character (above U+10FFFF "
                                       f"or a surrogate)", line)
            return chr(code)
        c = m.group(3)
        if c not in _SIMPLE:
            raise InputError(path, f"invalid escape '\\{c}' in N-Triples", line)
        return _SIMPLE[c]

    return _ESC.sub(sub, s)


_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")  # and lone surrogates: rdflib decodes \uD800 into one
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _iri(iri: str, path: Path, line: int | None) -> str:
    """``iri``, unless it is empty or holds a NUL or another control character (never part of an
    IRI; it would silently become part of an entity id, or an entity without one)."""
    if not iri:
        raise InputError(path, "an empty IRI <>: N-Triples needs absolute IRIs (in Turtle, <> is the "
                               "document's base IRI, which a local file does not have)", line)
    m = None if iri.isprintable() else _CONTROL.search(iri)  # the fast path for the millions of clean IRIs
    if m:
        raise InputError(path, f"IRI {iri[:80]!r} holds " + (
            f"control character {m.group(0)!r}" if m.group(0) < "\ud800" else f"lone surrogate {m.group(0)!r}") +
                         ", which no IRI may contain",
                         line)
    return iri


def _line_of(path: Path, text: str) -> int | None:
    """The first line of ``path`` that contains ``text`` (rdflib does not say where a term came from)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                if text in line:
                    return n
    except OSError:
        pass
    return None


def iter_ntriples(path: str | Path, progress: bool = False) -> Iterator[tuple]:
    """Stream an N-Triples file, one parsed triple at a time, in constant memory.

    Yields ``(subject, predicate, object, kind, datatype, lang)`` where ``kind``
    is ``"iri"``, ``"bnode"`` or ``"literal"``; blank nodes come as ``_:label``.

    Raises:
        InputError: the first line that is not a valid N-Triples statement.
    """
    path = Path(path)
    f = open_checked(path)
    bar = progress_bar(total=os.path.getsize(path), unit="B", unit_scale=True, desc=f"parse {path.name}",
                       enabled=progress)
    progress = not bar.disable
    match = _LINE.match
    try:
        with f, decoding(path):
            for n, line in enumerate(f, 1):
                if progress:
                    bar.update(len(line.encode("utf-8")))
                m = match(line.rstrip("\r\n"))
                if m is None:
                    stripped = line.strip()
                    if not stripped or stripped.startswith("#"):
                        continue
                    raise InputError(path, "expected an N-Triples statement '<s> <p> <o> .'", n)
                s_iri, s_b, p, o_iri, o_b, lit, lang, dt = m.groups()
                s = _iri(_unescape(s_iri, path, n), path, n) if s_iri is not None else "_:" + s_b
                p = _iri(_unescape(p, path, n), path, n)
                if o_iri is not None:
                    yield s, p, _iri(_unescape(o_iri, path, n), path, n), "iri", None, None
                elif o_b is not None:
                    yield s, p, "_:" + o_b, "bnode", None, None
                else:
                    yield s, p, _unescape(lit, path, n), "literal", dt, lang
    finally:
        bar.close()


def _rdflib_triples(path: Path, fmt: str) -> Iterator[tuple]:
    import rdflib

    g = rdflib.Graph()
    try:
        g.parse(str(path), format=fmt)
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    except Exception as e:  # rdflib's parsers raise many exception types
        msg = " ".join(str(e).split())
        m = re.search(r"line (\d+)", msg)
        raise InputError(path, f"invalid {fmt} RDF: {msg[:300]}", int(m.group(1)) if m else None) from None

    def term(t) -> tuple[str, str]:
        if isinstance(t, rdflib.BNode):
            return "_:" + str(t), "bnode"
        if isinstance(t, rdflib.Literal):
            return str(t), "literal"
        return str(t), "iri"

    # Sorted so that the graph built from the file does not depend on rdflib's set order.
    rows = []
    for s, p, o in g:
        for role, t in (("subject", s), ("predicate", p)):
            if isinstance(t, rdflib.Literal) or (role == "predicate" and isinstance(t, rdflib.BNode)):
                shown = f'"{t}"' if isinstance(t, rdflib.Literal) else f"_:{t}"
                raise InputError(path, f"{shown} is a {'literal' if isinstance(t, rdflib.Literal) else 'blank node'} "
                                       f"in {role} position; a {role} must be an IRI" +
                                       (" or a blank node" if role == "subject" else ""), _line_of(path, str(t)))
        for t in (s, p, o):
            if isinstance(t, rdflib.URIRef):
                _iri(str(t), path, None)
            elif isinstance(t, rdflib.Literal) and _SURROGATE.search(str(t)):  # rdflib decodes "\uD800" so
                raise InputError(path, f"literal {str(t)[:80]!r} holds a lone surrogate (an escape such as "
                                       f"\\uD800), which is not a Unicode character", _line_of(path, "\\u"))
        sv, _ = term(s)
        ov, kind = term(o)
        dt = str(o.datatype) if kind == "literal" and o.datatype is not None else None
        lang = o.language if kind == "literal" else None
        rows.append((sv, str(p), ov, kind, dt, lang))
    rows.sort(key=lambda r: tuple("" if x is None else x for x in r))
    yield from rows


def rdf_format(path: str | Path, fmt: str | None = None) -> str:
    """The rdflib format name for ``fmt`` (an alias) or, if ``None``, the file suffix."""
    if fmt is not None:
        if fmt.lower() not in _FORMAT_ALIASES:
            raise InputError(path, f"unknown RDF format {fmt!r} (expected one of {', '.join(sorted(set(_FORMAT_ALIASES)))})")
        return _FORMAT_ALIASES[fmt.lower()]
    suffix = Path(path).suffix.lower()
    if suffix not in RDF_FORMATS:
        raise InputError(path, f"cannot tell the RDF format from suffix {suffix!r}; set format = \"turtle\" | \"nt\" | \"xml\" | \"json-ld\"")
    return RDF_FORMATS[suffix]


def read_rdf(path: str | Path, fmt: str | None = None, *, streaming: bool | None = None,
             progress: bool = False) -> RdfKnowledge:
    """Read an RDF file into entity triples, literal attributes and sameAs pairs.

    N-Triples go through the streaming parser unless ``streaming=False``;
    other syntaxes through rdflib. Blank nodes are prefixed with the file's
    stem (``_:stem:label``) so that two files' blank nodes never collide.

    Raises:
        InputError: missing file, unknown format, or a syntax error (with its line).
    """
    path = Path(path)
    fmt = rdf_format(path, fmt)
    if not path.exists():
        raise InputError(path, f"file not found ({path})")
    stream = fmt == "nt" if streaming is None else (streaming and fmt == "nt")
    it = iter_ntriples(path, progress=progress) if stream else _rdflib_triples(path, fmt)
    triples, literals, same = [], [], []
    bprefix = f"_:{path.stem}:"
    for s, p, o, kind, dt, lang in it:
        if s.startswith("_:"):
            s = bprefix + s[2:]
        if kind == "literal":
            literals.append((s, p, o, dt, lang))
            continue
        if kind == "bnode":
            o = bprefix + o[2:]
        if p == OWL_SAME_AS:
            same.append((s, o))
        else:
            triples.append((s, p, o))
    return RdfKnowledge(
        triples=pd.DataFrame(triples, columns=["head", "relation", "tail"], dtype=object),
        literals=pd.DataFrame(literals, columns=["node", "predicate", "value", "datatype", "lang"], dtype=object),
        same_as=pd.DataFrame(same, columns=["a", "b"], dtype=object),
    )
