"""Graph artifact -> networkx (GraphML, edge list) and RDF (N-Triples, Turtle).

The RDF export is a directory that ``kgrec build`` can rebuild the same graph
from: ``kg.nt`` (or ``kg.ttl``: the knowledge graph and its literals),
``{domain}_links.tsv`` (item -> entity edges with their relation),
``{domain}/{train,valid,test}.tsv`` (interactions with aligned user ids) and
``spec.toml``. ``graph.nt`` additionally holds every message-passing edge,
interactions included, for loading into a triple store.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import quote

import networkx as nx
import pandas as pd

from kgrec.atomic import atomic_directory, atomic_file, check_file_output
from kgrec.errors import KgrecError
from kgrec.graph.artifact import SAME_AS, SOURCE, TARGET, GraphArtifact

EXPORT_FORMATS = ("graphml", "edgelist", "ntriples", "turtle")
_URN = "urn:kgrec:"
_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
_IRI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]+$")


def to_networkx(g: GraphArtifact, reverse: bool = False) -> nx.MultiDiGraph:
    """The message-passing graph as a ``MultiDiGraph``.

    Nodes are ``"user:ID"``, ``"item:DOMAIN:ID"``, ``"entity:ID"`` with
    attributes ``type``, ``index``, ``domain``, ``label``; edges carry their
    ``relation``. ``rev_`` edges are left out unless ``reverse`` is true.
    """
    G = nx.MultiDiGraph(name=g.manifest.get("name", "kgrec"))
    keys = {}
    for t, frame in g.nodes.items():
        ks = [f"{t}:{d}:{i}" if t == "item" else f"{t}:{i}" for d, i in zip(frame["domain"], frame["id"])]
        keys[t] = ks
        G.add_nodes_from((k, {"type": t, "index": int(n), "domain": str(d), "label": str(lab)})
                         for k, n, d, lab in zip(ks, frame["index"], frame["domain"], frame["label"]))
    for s, rel, d in g.data.edge_types:
        if rel.startswith("rev_") and not reverse:
            continue
        ei = g.data[s, rel, d].edge_index.numpy()
        G.add_edges_from((keys[s][a], keys[d][b], {"relation": rel}) for a, b in zip(ei[0], ei[1]))
    return G


def _iri(value: str, kind: str) -> str:
    if kind == "entity" and _IRI_RE.match(value) and not value.startswith("_:"):
        return value
    return f"{_URN}{kind}#{quote(value, safe='')}"


def _literal(v: str) -> str:
    esc = v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{esc}"'


def _rdf_lines(g: GraphArtifact, everything: bool):
    ents = g.nodes.get("entity", pd.DataFrame(columns=["id", "label"]))
    ent_iri = [_iri(str(i), "entity") for i in ents["id"]]
    originals = dict(zip(g.relations["name"], g.relations["original"]))
    for s, rel, d in sorted(g.data.edge_types):
        if rel.startswith("rev_") or (s, d) != ("entity", "entity"):
            continue
        orig = originals.get(rel, rel)
        pred = orig if _IRI_RE.match(orig) and ("/" in orig or "#" in orig) else f"{_URN}relation#{quote(rel, safe='')}"
        ei = g.data[s, rel, d].edge_index.numpy()
        for a, b in zip(ei[0], ei[1]):
            yield f"<{ent_iri[a]}> <{pred}> <{ent_iri[b]}> ."
    lits = g.literals
    for node, pred, value, dt, lang in zip(lits.get("node", []), lits.get("predicate", []), lits.get("value", []),
                                           lits.get("datatype", []), lits.get("lang", [])):
        suffix = f"@{lang}" if isinstance(lang, str) and lang else (f"^^<{dt}>" if isinstance(dt, str) and dt else "")
        yield f"<{ent_iri[int(node)]}> <{pred}> {_literal(str(value))}{suffix} ."
    if not everything:
        return
    users, items = g.nodes["user"], g.nodes["item"]
    user_iri = [_iri(str(i), "user") for i in users["id"]]
    item_iri = [_iri(f"{d}:{i}", "item") for d, i in zip(items["domain"], items["id"])]
    iris = {"user": user_iri, "item": item_iri, "entity": ent_iri}
    for s, rel, d in sorted(g.data.edge_types):
        if rel.startswith("rev_") or (s, d) == ("entity", "entity"):
            continue
        ei = g.data[s, rel, d].edge_index.numpy()
        for a, b in zip(ei[0], ei[1]):
            yield f"<{iris[s][a]}> <{_URN}relation#{rel}> <{iris[d][b]}> ."
    for i, lab in zip(item_iri, items["label"]):
        yield f"<{i}> <{_LABEL}> {_literal(str(lab))} ."


def _write_bundle(g: GraphArtifact, out: Path, fmt: str) -> None:
    ext = "nt" if fmt == "ntriples" else "ttl"
    kg_lines = list(_rdf_lines(g, everything=False))
    if fmt == "ntriples":
        (out / "kg.nt").write_text("\n".join(kg_lines) + ("\n" if kg_lines else ""), encoding="utf-8")
    else:
        import rdflib

        rg = rdflib.Graph()
        rg.parse(data="\n".join(kg_lines), format="nt")
        rg.serialize(out / "kg.ttl", format="turtle")
    with open(out / "graph.nt", "w", encoding="utf-8") as f:
        for line in _rdf_lines(g, everything=True):
            f.write(line + "\n")
    users, items = g.nodes["user"], g.nodes["item"]
    ents = g.nodes.get("entity")
    names = g.manifest["domains"]
    spec = [f'name = "{g.manifest["name"]}-rebuilt"', f"seed = {int(g.manifest.get('seed', 0))}", ""]
    for role in (SOURCE, TARGET):
        if role not in names:
            continue
        part = g.interactions[g.interactions["domain"] == role]
        (out / role).mkdir()
        for split in ("train", "valid", "test"):
            rows = part[part["split"] == split]
            pd.DataFrame({"user": users["id"].to_numpy()[rows["user"].to_numpy()],
                          "item": items["id"].to_numpy()[rows["item"].to_numpy()]}).to_csv(
                out / role / f"{split}.tsv", sep="\t", index=False)
        spec += [f"[{role}]", f'name = {json.dumps(names[role])}', f'path = "{role}"', 'format = "split_dir"',
                 'split = { method = "given" }', ""]
        rows = []
        for s, rel, d in g.data.edge_types:
            if (s, d) == ("item", "entity"):
                ei = g.data[s, rel, d].edge_index.numpy()
                keep = items["domain"].to_numpy()[ei[0]] == role
                rows.append(pd.DataFrame({"item": items["id"].to_numpy()[ei[0][keep]],
                                          "entity": [_iri(str(e), "entity") for e in ents["id"].to_numpy()[ei[1][keep]]],
                                          "relation": rel}))
        if rows:
            pd.concat(rows).to_csv(out / f"{role}_links.tsv", sep="\t", index=False)
    spec += ["[align]", 'users = "id"']
    if ("item", SAME_AS, "item") in g.data.edge_types:  # the same products, so that the rebuild marks the same duplicates
        ei = g.data["item", SAME_AS, "item"].edge_index.numpy()
        pd.DataFrame({"source": items["id"].to_numpy()[ei[0]], "target": items["id"].to_numpy()[ei[1]]}).to_csv(
            out / "item_alignment.tsv", sep="\t", index=False)
        spec += ['items = "mapping"', 'item_mapping = "item_alignment.tsv"']
    spec += [""]
    if ents is not None and len(ents):
        spec += ["[[knowledge]]", f'path = "kg.{ext}"', ""]
    for role in (SOURCE, TARGET):
        if (out / f"{role}_links.tsv").exists():
            spec += ["[[links]]", f'domain = "{role}"', 'by = "id"', f'path = "{role}_links.tsv"', "header = true", ""]
    (out / "spec.toml").write_text("\n".join(spec), encoding="utf-8")


def export_graph(g: GraphArtifact, out: str | Path, fmt: str = "graphml", overwrite: bool = False) -> Path:
    """Write the graph in ``fmt`` (one of ``EXPORT_FORMATS``) to ``out``, atomically.

    ``graphml`` and ``edgelist`` write one file; ``ntriples`` and ``turtle``
    write a directory that ``kgrec build out/spec.toml`` rebuilds the graph from.

    Raises:
        OutputError: ``out`` exists without ``overwrite`` (a directory only when it is an earlier RDF
            export; a file is never replaced by a directory, nor a directory by a file).
    """
    out = Path(out)
    if fmt not in EXPORT_FORMATS:
        raise KgrecError(f"unknown export format {fmt!r}; expected one of {', '.join(EXPORT_FORMATS)}")
    if fmt in ("graphml", "edgelist"):
        check_file_output(out, overwrite=overwrite, what=f"{fmt} file")
        G = to_networkx(g)
        with atomic_file(out, "wb", overwrite=overwrite, what=f"{fmt} file") as f:
            if fmt == "graphml":
                nx.write_graphml(G, f)
            else:
                for a, b, rel in G.edges(data="relation"):
                    f.write(f"{a}\t{rel}\t{b}\n".encode("utf-8"))
        return out
    with atomic_directory(out, overwrite=overwrite, ours=("spec.toml", "graph.nt"), what="RDF export directory") as tmp:
        _write_bundle(g, tmp, fmt)
    return out
