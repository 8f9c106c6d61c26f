"""New items that arrive with their knowledge only: added to a trained run, ranked at once, no training.

A new target item comes as RDF (Turtle, N-Triples, ...: its triples) or as attribute rows (a CSV/TSV
with ``item``, ``relation``, ``entity`` and optionally ``label``). Each of its facts must use a
relation and an entity the graph already has (the model holds weights for those only):

* a row or triple whose relation is an item -> entity relation of the graph (``has_brand``,
  ``in_category``, a spec's attribute relation, ``linked_to``; by name or original predicate)
  becomes that edge from the new item;
* an RDF triple whose predicate is a KG relation, where the spec links target items to the KG by
  IRI (``by = "iri"`` or ``"identity"``), becomes what a build gives such an item: a ``linked_to``
  edge to a new entity (its IRI) and the KG edge from that entity.

Facts naming an unknown relation or entity are skipped and counted. The new items and entities get
a zero ID embedding (nothing trained them), are flagged ``cold_start``, and the trained layers
propagate over their edges: with ``model.cold_item_id = "zero"`` a new item is scored exactly as the
cold items the model was validated on. The new run directory holds the grown graph (``graph/``) and
weights; the trained parameters are unchanged.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import shutil
from pathlib import Path

import pandas as pd
import torch

from kgrec.atomic import atomic_directory
from kgrec.data.rdf import LABEL_PREDICATES, RDF_FORMATS, read_rdf
from kgrec.errors import InputError
from kgrec.graph.artifact import TARGET, GraphArtifact, reverse_relation
from kgrec.graph.build import relation_name
from kgrec.io import load_torch
from kgrec.serve.run import Run, load_run, read_run_record
from kgrec.train.config import to_toml
from kgrec.train.trainer import is_run_dir, write_run_record

LINKED = "linked_to"


def _target_link(run: Run) -> tuple[str, str] | None:
    """``(by, template)`` of the spec's IRI/identity link of the target items (``template`` with ``{id}``)."""
    for ln in run.artifact.manifest.get("spec", {}).get("links", []):
        if ln.get("domain") in (TARGET, "both") and ln.get("by") in ("iri", "identity"):
            return ln["by"], ln.get("entity_prefix", "") + ln.get("template", "{id}")
    return None


def _item_id(subject: str, template: str | None) -> str:
    if template:
        head, _, tail = template.partition("{id}")
        if subject.startswith(head) and subject.endswith(tail) and len(subject) > len(head) + len(tail):
            return subject[len(head):len(subject) - len(tail)]
    return subject


def read_new_items(run: Run, path: str | Path) -> pd.DataFrame:
    """The facts of new items in ``path``: ``item``, ``relation`` (predicate IRI or relation name),
    ``entity`` (IRI or entity id), ``label``; RDF by its suffix, else a CSV/TSV of attribute rows.

    Raises:
        InputError: missing file, unreadable rows, a missing column, or an item the graph already has.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "new items file not found")
    link = _target_link(run)
    if path.suffix.lower() in RDF_FORMATS:
        kg = read_rdf(path)
        t, lit = kg.triples, kg.literals
        ids = t["head"].map(lambda s: _item_id(s, link[1] if link else None))
        facts = pd.DataFrame({"item": ids, "relation": t["relation"], "entity": t["tail"], "subject": t["head"]})
        labels = lit[lit["predicate"].isin(LABEL_PREDICATES)].drop_duplicates("node")
        facts["label"] = facts["subject"].map(dict(zip(labels["node"], labels["value"])))
    else:
        frame = pd.read_csv(path, sep=None, engine="python", dtype=str, keep_default_na=False)
        missing = [c for c in ("item", "relation", "entity") if c not in frame.columns]
        if missing:
            raise InputError(path, f"expected columns item, relation, entity (and optionally label); missing "
                                   f"{missing}, got {list(frame.columns)}")
        facts = frame.assign(subject=None, label=frame["label"] if "label" in frame else None)
    if not len(facts):
        raise InputError(path, "no facts about new items in the file")
    known = set(run.artifact.nodes["item"].loc[run.artifact.nodes["item"]["domain"] == TARGET, "id"].astype(str))
    old = sorted(set(facts["item"].astype(str)) & known)
    if old:
        raise InputError(path, f"{len(old)} item(s) are already in the graph, e.g. {old[:3]}: new items only "
                               f"(new interactions go through --interactions)")
    return facts[["item", "relation", "entity", "subject", "label"]].reset_index(drop=True)


def add_new_items(artifact: GraphArtifact, facts: pd.DataFrame, link: tuple[str, str] | None,
                  where: str = "new items") -> tuple[GraphArtifact, dict]:
    """A new artifact with the items of ``facts`` (:func:`read_new_items`) appended as cold target items,
    their facts as edges of the graph's existing relations (module docstring). Returns it and counts.

    Raises:
        InputError: a new item none of whose facts the graph can hold.
    """
    a = copy.deepcopy(artifact)
    rel = a.relations
    item_rel = {}
    for name, original, kind in zip(rel["name"], rel["original"], rel["kind"]):
        if kind == "item_entity" or name == LINKED:
            item_rel[name] = item_rel[str(original)] = name
    kg_rel = {str(o): n for n, o, k in zip(rel["name"], rel["original"], rel["kind"]) if k == "kg"}
    kg_rel.update({n: n for n in kg_rel.values()})
    entities = a.nodes["entity"]
    ent_index = dict(zip(entities["id"].astype(str), entities["index"].astype(int)))
    relation = facts["relation"].astype(str)
    local = relation.map(relation_name)  # an RDF predicate IRI names an item relation by its local name
    relation = relation.where(relation.isin(item_rel) | relation.isin(kg_rel) | ~local.isin(item_rel), local)
    facts = facts.assign(item=facts["item"].astype(str), entity=facts["entity"].astype(str), relation=relation)
    direct = facts["relation"].isin(item_rel) & facts["entity"].isin(ent_index)
    via_kg = (~direct & facts["relation"].isin(kg_rel) & facts["entity"].isin(ent_index)
              & facts["subject"].notna()) if link else pd.Series(False, index=facts.index)
    usable = direct | via_kg
    items_in = list(dict.fromkeys(facts["item"]))
    empty = [i for i in items_in if not usable[facts["item"] == i].any()]
    if empty:
        raise InputError(where, f"new item {empty[0]!r}: none of its facts names a relation and an entity the graph "
                                f"has (relations: {', '.join(sorted(set(item_rel.values()) | set(kg_rel.values())))})")
    n_items, n_ent = int(a.data["item"].num_nodes), int(a.data["entity"].num_nodes)
    item_index = {i: n_items + k for k, i in enumerate(items_in)}
    subjects = list(dict.fromkeys(facts.loc[via_kg, "subject"]))
    subjects = [s for s in subjects if s not in ent_index]
    for k, s in enumerate(subjects):
        ent_index[s] = n_ent + k
    labels = facts.dropna(subset=["label"]).drop_duplicates("item").set_index("item")["label"]
    items = a.nodes["item"]
    add = pd.DataFrame({"index": list(item_index.values()), "id": items_in, "domain": TARGET,
                        "domain_name": a.domain_name(TARGET), "label": [str(labels.get(i, i)) for i in items_in],
                        "text": "", "cold_start": True})
    a.nodes["item"] = pd.concat([items.assign(cold_start=items["cold_start"] if "cold_start" in items else False),
                                 add[[c for c in dict.fromkeys([*items.columns, "cold_start"]) if c in add.columns]]],
                                ignore_index=True)
    ent_labels = facts.dropna(subset=["label"]).drop_duplicates("subject").set_index("subject")["label"]
    a.nodes["entity"] = pd.concat([entities, pd.DataFrame({
        "index": [ent_index[s] for s in subjects], "id": subjects, "domain": TARGET,
        "label": [str(ent_labels.get(s, s)) for s in subjects]})[list(entities.columns)]], ignore_index=True)
    data = a.data
    data["item"].num_nodes, data["entity"].num_nodes = n_items + len(items_in), n_ent + len(subjects)
    data["item"].domain = torch.cat([data["item"].domain, torch.ones(len(items_in), dtype=torch.long)])
    old_cold = data["item"].cold_start if "cold_start" in data["item"] else torch.zeros(n_items, dtype=torch.bool)
    data["item"].cold_start = torch.cat([old_cold, torch.ones(len(items_in), dtype=torch.bool)])
    edges: dict[tuple[str, str, str], list[tuple[int, int]]] = {}
    for i, r, e in facts.loc[direct, ["item", "relation", "entity"]].itertuples(index=False):
        edges.setdefault(("item", item_rel[r], "entity"), []).append((item_index[i], ent_index[e]))
    for i, r, e, s in facts.loc[via_kg, ["item", "relation", "entity", "subject"]].itertuples(index=False):
        edges.setdefault(("item", LINKED, "entity"), []).append((item_index[i], ent_index[s]))
        edges.setdefault(("entity", kg_rel[r], "entity"), []).append((ent_index[s], ent_index[e]))
    added = 0
    for (s, r, d), pairs in edges.items():
        if (s, r, d) not in data.edge_types:
            raise InputError(where, f"the graph has no {s} -{r}-> {d} edges to add to")
        new = torch.tensor(sorted(set(pairs)), dtype=torch.long).T
        data[s, r, d].edge_index = torch.cat([data[s, r, d].edge_index, new], 1)
        back = (d, reverse_relation(r), s)
        data[back].edge_index = torch.cat([data[back].edge_index, new.flip(0)], 1)
        added += new.shape[1]
    counts = {"new_items": len(items_in), "new_entities": len(subjects), "edges_added": added,
              "facts": int(len(facts)), "facts_skipped": int((~usable).sum())}
    a.manifest = {**a.manifest, "new_items": counts}
    return a, counts


def _grown_state(run: Run, sizes: dict[str, int]) -> dict:
    """The run's weights with the item and entity tables (and feature buffers) grown by zero rows."""
    state = {k: v.detach().cpu().clone() for k, v in run.model.state_dict().items()}
    for t, n in sizes.items():
        for key in (f"encoder.embeddings.{t}.weight", f"encoder.features_{t}"):
            if key in state and n > state[key].shape[0]:
                state[key] = torch.cat([state[key], state[key].new_zeros(n - state[key].shape[0], state[key].shape[1])])
    return state


def add_items(run: Run, path: str | Path, out: str | Path, overwrite: bool = False) -> dict:
    """Add the new items of ``path`` (:func:`read_new_items`) to ``run`` and write the new run ``out``:
    its graph, its weights (the trained ones, tables grown by zero rows) and the run's results.
    No training: ``load_run(out).recommend(...)`` ranks the new items at once. Returns the counts
    (also in ``out/update.json``).

    Raises:
        InputError: a bad file or an item the graph cannot hold. OutputError: ``out`` exists.
    """
    out = Path(out)
    facts = read_new_items(run, path)
    artifact, counts = add_new_items(run.artifact, facts, _target_link(run), str(path))
    saved = load_torch(run.path / "model.pt", "model file", map_location="cpu")
    sizes = {t: int(artifact.data[t].num_nodes) for t in artifact.data.node_types}
    saved = {**saved, "state_dict": _grown_state(run, sizes), "sizes": sizes}
    with atomic_directory(out, overwrite=overwrite, ours=is_run_dir, what="run directory") as tmp:
        artifact.save(tmp / "graph")
        config = dataclasses.replace(run.config, graph=str((out / "graph").resolve()))
        (tmp / "config.toml").write_text(to_toml(config), encoding="utf-8")
        torch.save(saved, tmp / "model.pt")
        if (run.path / "results.json").exists():
            shutil.copy(run.path / "results.json", tmp / "results.json")
        report = {**counts, "from_run": str(run.path), "retrained": False, "source": str(path)}
        (tmp / "update.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
        record = {k: v for k, v in (read_run_record(run.path) or {}).items() if k not in ("files", "graph_checksum")}
        write_run_record(tmp, {**record, "new_items": report}, artifact.manifest.get("checksum"))
    load_run(out)  # refuse now, not at the first recommend, if the run does not load
    return report
