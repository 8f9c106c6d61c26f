"""Spec -> graph artifact: read both domains and the knowledge, align, filter,
split, index, and assemble one ``HeteroData``.

Node types are ``user``, ``item`` and ``entity``. Items belong to exactly one
domain (``item.domain``: 0 source, 1 target); users are shared between the
domains per ``[align]``; entities are shared when their ids (IRIs) are equal
or ``owl:sameAs``. Edge types (each with a ``rev_`` reverse):

* ``(user, interacts_source|interacts_target, item)``: train interactions only;
* ``(item, same_as, item)``: a source and a target listing of one product (``[align] items``);
* ``(item, linked_to, entity)``: items linked to KG entities;
* ``(item, <attribute relation>, entity)``: genres, brands, categories;
* ``(entity, <kg relation>, entity)``: the knowledge graph.
"""
from __future__ import annotations

import re
import sys
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import HeteroData

from kgrec.data import formats
from kgrec.data.recbole import read_atomic
from kgrec.data.datasets import ensure_dataset, sha256
from kgrec.data.interactions import k_core, read_interactions
from kgrec.data.rdf import LABEL_PREDICATES, RDF_FORMATS, read_rdf
from kgrec.data.table import read_table
from kgrec.data.triples import read_links, read_triples
from kgrec.errors import InputError, KgrecWarning, SpecError
from kgrec.graph.align import duplicate_held_out, identical_user_sets
from kgrec.graph.artifact import (FORMAT_VERSION, INTERACTS, SAME_AS, SOURCE, TARGET, GraphArtifact, edge_key,
                                  reverse_relation)
from kgrec.graph.spec import AttributeSpec, DomainSpec, FileRef, GraphSpec, ItemsSpec, LinkSpec
from kgrec.graph.split import cold_start_items, cold_start_users, split_frame
from kgrec.progress import progress_bar

_FOLDER_FILES = {
    "disencdr": ("train.txt", "test.txt"),
    "cdrib": ("train.txt", "valid.txt", "test.txt"),
    "split_dir": ("train.tsv", "valid.tsv", "test.tsv"),
    "art_office": ("train_F2.txt", "valid_F2.txt", "test_F2.txt"),
}


@dataclass
class _Context:
    """Resolves paths and remembers every input file (for checksums) and every drop."""

    spec: GraphSpec
    progress: bool = False
    inputs: dict[str, dict] = field(default_factory=dict)
    accounting: dict = field(default_factory=dict)

    def resolve(self, ref: FileRef) -> Path:
        if ref.dataset:
            return ensure_dataset(ref.dataset) / ref.path
        p = Path(ref.path)
        return p if p.is_absolute() else Path(self.spec.root) / p

    def track(self, ref: FileRef, path: Path, names: tuple[str, ...] = ()) -> None:
        files = [path / n for n in names if (path / n).exists()] if names else [path]
        for f in files:
            shown = f"{ref.dataset}/{ref.path}" if ref.dataset else ref.path
            if names:
                shown = f"{shown}/{f.name}"
            if f.exists() and f.is_file():
                self.inputs[shown] = {"sha256": sha256(f), "bytes": f.stat().st_size}


# --- reading ---------------------------------------------------------------------
def _interaction_format(d: DomainSpec, path: Path, spec_path: str) -> str:
    if d.format != "auto":
        return d.format
    if path.is_dir():
        raise SpecError(spec_path, f"{d.name}.format", f"{path} is a folder: set format = \"disencdr\" | \"cdrib\" | \"split_dir\" | \"art_office\"")
    suffix = path.suffix.lower()
    return {".inter": "atomic", ".parquet": "parquet", ".csv": "csv"}.get(suffix, "tsv")


def _read_domain(ctx: _Context, d: DomainSpec) -> pd.DataFrame:
    path = ctx.resolve(d.file)
    fmt = _interaction_format(d, path, ctx.spec.path)
    ctx.track(d.file, path, _FOLDER_FILES.get(fmt, ()))
    columns = dict(d.columns) or None
    if fmt in ("csv", "tsv", "parquet", "atomic"):
        sep = d.sep if d.sep != "infer" else ("," if fmt == "csv" else "\t")
        return read_interactions(path, sep=sep, header=d.header, columns=columns, progress=ctx.progress)
    if d.threshold is not None:
        raise SpecError(ctx.spec.path, f"{d.name}.threshold", f"format {fmt!r} is implicit feedback; remove the threshold")
    if fmt == "art_office":
        return formats.read_art_office(path, d.subset or d.name, progress=ctx.progress)
    if fmt == "kgat":
        return formats.read_kgat(path, progress=ctx.progress)
    return {"disencdr": formats.read_disencdr, "cdrib": formats.read_cdrib,
            "split_dir": formats.read_split_dir}[fmt](path, progress=ctx.progress)


def _read_items(ctx: _Context, spec: ItemsSpec, subset: str | None) -> pd.DataFrame:
    """Item table -> frame indexed by item id with ``title``, ``text``, ``title_key`` and raw columns."""
    path = ctx.resolve(spec.file)
    fmt = spec.format
    if fmt == "auto":
        fmt = "atomic" if path.suffix.lower() == ".item" else ("csv" if path.suffix.lower() == ".csv" else "tsv")
    if fmt == "art_office":
        ctx.track(spec.file, path, ("item_listA_F.csv",) if subset == "art" else ("item_listO_AA_F.csv",))
        frame = formats.read_art_office_items(path, subset or "art")
        id_col, title_col = "item", "title"
    else:
        ctx.track(spec.file, path)
        frame = read_atomic(path) if fmt == "atomic" else read_table(path, sep="," if fmt == "csv" else "\t").frame
        id_col, title_col = spec.id, spec.title
    for col in [id_col, title_col, *spec.text]:
        if col is not None and col != "@position" and col not in frame.columns:
            raise InputError(path, f"unknown column '{col}'; the file's columns are: {', '.join(map(str, frame.columns))}")
    frame = frame.copy()
    ids = _position_ids(len(frame), spec.unused_ids) if id_col == "@position" else frame[id_col].astype(str).tolist()
    key = ids
    if spec.title_key:  # from the file's own columns, before the derived ones below can shadow them
        try:
            key = [spec.title_key.format(**{k: _fmt(v) for k, v in row.items()}) for row in frame.to_dict("records")]
        except KeyError as e:
            raise SpecError(ctx.spec.path, "items.title_key", f"names unknown column {e}; the file's columns are: "
                                                              f"{', '.join(map(str, frame.columns))}") from None
        except (ValueError, IndexError, AttributeError) as e:
            raise SpecError(ctx.spec.path, "items.title_key", f"{spec.title_key!r}: {e}") from None
    frame["item"] = ids
    frame["title"] = frame[title_col].astype(str) if title_col else frame["item"]
    text_cols = list(spec.text) or ([title_col] if title_col else [])
    frame["text"] = frame[text_cols].astype(str).agg(" ".join, axis=1) if text_cols else ""
    frame["title_key"] = key
    return frame.drop_duplicates("item").set_index("item", drop=False)


def _position_ids(n: int, unused: tuple[int, ...]) -> list[str]:
    """The first ``n`` positive integers not in ``unused``, as strings: the ids of a table that
    lists its items in id order without them (``id = "@position"``)."""
    skip, out, k = set(unused), [], 0
    while len(out) < n:
        k += 1
        if k not in skip:
            out.append(str(k))
    return out


def _fmt(v) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


# --- domains ---------------------------------------------------------------------
def _carve(ctx: _Context, frames: dict, items: dict, doms: dict) -> None:
    carved = {r: d for r, d in doms.items() if d.carve is not None}
    if not carved:
        return
    members = {}
    for role, d in carved.items():
        if role not in items:
            raise SpecError(ctx.spec.path, f"{role}.items", "a carved domain needs an item table with the carve attribute")
        col = d.carve.attribute
        if col not in items[role].columns:
            raise SpecError(ctx.spec.path, f"{role}.carve.attribute", f"unknown item column {col!r}")
        wanted = set(d.carve.values)
        values = items[role][col].astype(str).str.split(d.carve.sep)
        members[role] = set(items[role].index[values.map(lambda v: bool(wanted.intersection(v)))])
    if len(members) == 2:
        both = members[SOURCE] & members[TARGET]
        rule = ctx.spec.align.item_overlap
        if rule in ("target", "drop"):
            members[SOURCE] -= both
        if rule in ("source", "drop"):
            members[TARGET] -= both
        ctx.accounting["carve_overlap_items"] = {"count": len(both), "assigned_to": rule}
    for role, keep in members.items():
        f = frames[role]
        mask = f["item"].isin(keep)
        ctx.accounting[role]["not_in_carved_domain"] = int((~mask).sum())
        frames[role] = f[mask].reset_index(drop=True)


def _filter(ctx: _Context, role: str, d: DomainSpec, frame: pd.DataFrame) -> pd.DataFrame:
    acc = ctx.accounting[role]
    if d.threshold is not None:
        if frame["rating"].isna().all():
            raise SpecError(ctx.spec.path, f"{role}.threshold", "needs a rating column; map one with columns = { rating = \"...\" }")
        keep = frame["rating"] >= d.threshold
        acc["below_threshold"] = int((~keep).sum())
        frame = frame[keep]
    before = len(frame)
    frame = frame.drop_duplicates(["user", "item"], keep="first").reset_index(drop=True)
    acc["duplicates"] = before - len(frame)
    if len(frame) == 0 and d.threshold is not None and acc["below_threshold"]:
        raise SpecError(ctx.spec.path, f"{role}.threshold",
                        f"= {d.threshold} keeps none of the {d.name} domain's {acc['below_threshold']:,} interactions "
                        f"(every rating is below it); lower it")
    if d.k_core > 1:
        before = len(frame)
        frame = k_core(frame, d.k_core)
        acc["k_core_removed"] = before - len(frame)
        if len(frame) == 0 and before:
            raise SpecError(ctx.spec.path, f"{role}.k_core",
                            f"= {d.k_core} removes all {before:,} interactions of the {d.name} domain (no user and "
                            f"item keep {d.k_core} interactions each); lower it")
    if len(frame) == 0:
        raise SpecError(ctx.spec.path, f"{role}.carve.values" if d.carve else f"{role}.path",
                        f"the {d.name} domain has no interactions left to build from")
    return frame


def _warn_no_validation(ctx: _Context, frame: pd.DataFrame, d: DomainSpec) -> None:
    """Warn when the target's split leaves users who could hold an item out without a validation item."""
    if d.split.method not in ("ratio", "temporal"):
        return
    size = frame.groupby("user_key")["split"].transform("size")
    has_valid = (frame["split"] == "valid").groupby(frame["user_key"]).transform("any")
    users = frame.loc[(size >= 3) & ~has_valid, "user_key"].nunique()
    ctx.accounting[TARGET]["users_without_validation_item"] = int(users)
    if users:
        total = frame.loc[size >= 3, "user_key"].nunique()
        warnings.warn(KgrecWarning(
            f"{Path(ctx.spec.path).name}: {users:,} of the {total:,} target users with 3+ interactions get no "
            f"validation item from split method = \"{d.split.method}\" (ratios {'/'.join(map(str, d.split.ratios))} "
            f"round their share to 0); [target.split] method = \"loo\" gives each of them one"), stacklevel=2)


def _mapping_file(ctx: _Context, ref: FileRef, what: str) -> pd.DataFrame:
    """A two-column file with a header (CSV or TSV): source id, then target id, as ``source``, ``target``."""
    path = ctx.resolve(ref)
    ctx.track(ref, path)
    table = read_table(path, sep="," if path.suffix == ".csv" else "\t", header=True).frame
    if len(table.columns) < 2:
        raise InputError(path, f"expected two columns: source {what}, target {what}")
    return pd.DataFrame({"source": table[table.columns[0]].astype(str).to_numpy(),
                         "target": table[table.columns[1]].astype(str).to_numpy()})


def _user_keys(ctx: _Context, role: str, name: str, users: pd.Series) -> pd.Series:
    a = ctx.spec.align
    raw = users.astype(str)
    if ctx.spec.source is None:
        return raw
    if a.users == "none":
        return name + ":" + raw
    if a.users == "mapping":
        table = _mapping_file(ctx, a.user_mapping, "user")
        src_name = ctx.spec.source.name
        if role == SOURCE:
            return src_name + ":" + raw
        mapping = dict(zip(table["target"], table["source"]))
        mapped = raw.map(mapping)
        return mapped.map(lambda m: f"{src_name}:{m}", na_action="ignore").fillna(name + ":" + raw)
    if a.user_id_below is not None:
        numeric = pd.to_numeric(raw, errors="coerce")
        shared = numeric < a.user_id_below
        return raw.where(shared, name + ":" + raw)
    return raw


# --- knowledge -------------------------------------------------------------------
class _UnionFind:
    def __init__(self):
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        root = x
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        while self.parent.get(x, x) != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            lo, hi = sorted((ra, rb))
            self.parent[hi] = lo


def _read_knowledge(ctx: _Context) -> tuple[pd.DataFrame, pd.DataFrame, _UnionFind]:
    triples, literals = [], []
    uf = _UnionFind()
    ctx.accounting["knowledge"] = []
    for k in ctx.spec.knowledge:
        path = ctx.resolve(k.file)
        ctx.track(k.file, path)
        fmt = k.format
        if fmt == "auto":
            suffix = path.suffix.lower()
            fmt = "atomic" if suffix == ".kg" else (RDF_FORMATS[suffix] if suffix in RDF_FORMATS else "triples")
        acc = {"file": f"{k.file.dataset}/{k.file.path}" if k.file.dataset else k.file.path, "format": fmt}
        if fmt in ("triples", "atomic", "kgat"):
            sep = None if fmt == "kgat" else k.sep
            t = read_triples(path, sep=sep, header=k.header if fmt != "atomic" else True,
                             columns=dict(k.columns) or None, progress=ctx.progress)
            if k.entity_prefix:
                t["head"] = k.entity_prefix + t["head"]
                t["tail"] = k.entity_prefix + t["tail"]
            triples.append(t)
            acc["triples"] = len(t)
        else:
            r = read_rdf(path, fmt, progress=ctx.progress)
            triples.append(r.triples)
            literals.append(r.literals)
            for a, b in zip(r.same_as["a"], r.same_as["b"]):
                uf.union(a, b)
            acc.update(triples=len(r.triples), literals=len(r.literals), same_as=len(r.same_as))
        ctx.accounting["knowledge"].append(acc)
    t = pd.concat(triples, ignore_index=True) if triples else pd.DataFrame(columns=["head", "relation", "tail"], dtype=object)
    lit = (pd.concat(literals, ignore_index=True) if literals
           else pd.DataFrame(columns=["node", "predicate", "value", "datatype", "lang"], dtype=object))
    if uf.parent:
        t["head"] = t["head"].map(uf.find)
        t["tail"] = t["tail"].map(uf.find)
        lit["node"] = lit["node"].map(uf.find)
    before = len(t)
    t = t.drop_duplicates().reset_index(drop=True)
    ctx.accounting["kg"] = {"triples_read": before, "duplicates": before - len(t), "kept": len(t),
                            "relations": int(t["relation"].nunique()),
                            "entities_merged_by_same_as": len(uf.parent)}
    return t, lit, uf


def _links(ctx: _Context, ln: LinkSpec, role: str, domain_items: pd.Index, items_table: pd.DataFrame | None,
           kg_entities: set, uf: _UnionFind) -> pd.DataFrame:
    acc = {"domain": role, "by": ln.by}
    items = pd.Series(domain_items, dtype=object)
    if ln.by in ("id", "title"):
        path = ctx.resolve(ln.file)
        ctx.track(ln.file, path)
        links = read_links(path, sep=ln.sep, header=ln.header)
        links["entity"] = ln.entity_prefix + links["entity"]
        acc["rows_read"] = len(links)
        if ln.by == "title":
            other = _read_items(ctx, ln.titles, None)
            links["key"] = links["item"].map(other["title_key"])
            own = items_table["title_key"] if items_table is not None else pd.Series(items.values, index=items.values)
            own = own[own.index.isin(set(items))]
            by_key = pd.DataFrame({"item": own.index.astype(str), "key": own.values})
            matched = links["key"].isin(set(by_key["key"]))
            acc["rows_matched_by_title"] = int(matched.sum())
            acc["rows_without_title_match"] = int((~matched).sum())
            links = by_key.merge(links.loc[matched, ["key", "entity"]], on="key", how="inner")[["item", "entity"]]
            acc["matched_by_title"] = int(links["item"].nunique())
        in_domain = links["item"].isin(set(items))
        acc["item_not_in_domain"] = int((~in_domain).sum())
        links = links[in_domain]
    else:
        ents = items.map(lambda i: ln.entity_prefix + ln.template.format(id=i))
        links = pd.DataFrame({"item": items.values, "entity": ents.values})
    if uf.parent:
        links = links.assign(entity=links["entity"].map(uf.find))
    if ln.by in ("iri", "identity"):
        present = links["entity"].isin(kg_entities)
        acc["entity_not_in_kg"] = int((~present).sum())
        links = links[present]
    links = links.drop_duplicates()
    acc["linked_items"] = int(links["item"].nunique())
    acc["links"] = len(links)
    ctx.accounting.setdefault("links", []).append(acc)
    return links.reset_index(drop=True)


def split_category_brand(attributes: pd.Series) -> pd.DataFrame:
    """Split Amazon attribute strings (category words then brand words) into category and brand.

    The category is the longest proper token prefix that the string shares
    with another *distinct* attribute string; the brand is the rest. Returns a
    frame with ``category`` and ``brand`` aligned with ``attributes``.
    """
    distinct = sorted(set(attributes.astype(str)))
    counts: dict[tuple, int] = {}
    for s in distinct:
        tok = tuple(s.split())
        for n in range(1, len(tok)):
            counts[tok[:n]] = counts.get(tok[:n], 0) + 1
    split = {}
    for s in distinct:
        tok = tuple(s.split())
        n = max((k for k in range(1, len(tok)) if counts.get(tok[:k], 0) >= 2), default=0)
        split[s] = (" ".join(tok[:n]), " ".join(tok[n:]))
    pairs = attributes.astype(str).map(split)
    return pd.DataFrame({"category": pairs.str[0], "brand": pairs.str[1]}, index=attributes.index)


def _attributes(ctx: _Context, a: AttributeSpec, items: dict, frames: dict) -> list[pd.DataFrame]:
    roles = [r for r in (SOURCE, TARGET) if r in frames and a.domain in (r, "both")]
    out = []
    tables = {}
    for r in roles:
        if r not in items or a.column not in items[r].columns:
            raise SpecError(ctx.spec.path, "attributes.column", f"the {r} item table has no column {a.column!r}")
        t = items[r]
        tables[r] = t[t.index.isin(set(frames[r]["item"]))]
    if a.parser == "category_brand":
        every = pd.concat([t[a.column] for t in tables.values()]) if tables else pd.Series(dtype=object)
        cb = split_category_brand(every)
        for r, t in tables.items():
            part = cb.loc[t.index] if len(t) else cb.iloc[:0]
            part = part[~part.index.duplicated()]
            for col, rel in (("category", "in_category"), ("brand", "has_brand")):
                vals = part[col][part[col] != ""]
                out.append(pd.DataFrame({"role": r, "item": vals.index.astype(str), "relation": rel,
                                         "entity": a.prefix + col + ":" + vals.values}))
        return out
    for r, t in tables.items():
        vals = t[a.column].astype(str).str.split(a.sep) if a.sep is not None else t[a.column].astype(str).map(lambda v: [v])
        ex = vals.explode()
        ex = ex[ex.notna() & (ex != "")]
        out.append(pd.DataFrame({"role": r, "item": ex.index.astype(str), "relation": a.relation,
                                 "entity": a.prefix + ex.values}))
    return out


def relation_name(raw: str) -> str:
    """A short identifier for a predicate: its IRI's local name, non-word characters as ``_``."""
    local = re.split(r"[#/]", raw.rstrip("/#"))[-1] if ("/" in raw or "#" in raw) else raw
    return re.sub(r"\W+", "_", local).strip("_") or "relation"


def _edges(src: np.ndarray, dst: np.ndarray) -> torch.Tensor:
    """Deduplicated, sorted ``[2, E]`` edge index."""
    if len(src) == 0:
        return torch.empty(2, 0, dtype=torch.long)
    pairs = np.unique(np.stack([src.astype(np.int64), dst.astype(np.int64)], axis=1), axis=0)
    return torch.from_numpy(np.ascontiguousarray(pairs.T))


def _versions() -> dict:
    out = {"python": sys.version.split()[0]}
    for pkg in ("kgrec", "torch", "torch_geometric", "pandas", "pyarrow", "rdflib", "networkx", "numpy"):
        try:
            out[pkg] = metadata.version(pkg.replace("_", "-"))
        except metadata.PackageNotFoundError:
            out[pkg] = "unknown"
    return out


# --- items across domains -------------------------------------------------------
def _align_items(ctx: _Context, frames: dict, item_ent: pd.DataFrame) -> pd.DataFrame:
    """``(source, target)`` raw item id pairs that are the same product (``[align] items``), and the
    target's held-out rows that repeat a source training interaction marked ``duplicate``."""
    a = ctx.spec.align
    for f in frames.values():
        f["duplicate"] = False
    if a.items == "none" or SOURCE not in frames:
        return pd.DataFrame({"source": pd.Series(dtype=object), "target": pd.Series(dtype=object)})
    src, tgt = frames[SOURCE], frames[TARGET]
    src_items, tgt_items = pd.unique(src["item"].astype(str)), pd.unique(tgt["item"].astype(str))
    if a.items == "id":
        both = np.intersect1d(src_items, tgt_items)
        pairs = pd.DataFrame({"source": both, "target": both})
    elif a.items == "mapping":
        pairs = _mapping_file(ctx, a.item_mapping, "item")
    elif a.items == "linked":
        links = item_ent[item_ent["relation"] == "linked_to"]
        s = links[links["role"] == SOURCE][["item", "entity"]].astype(str)
        t = links[links["role"] == TARGET][["item", "entity"]].astype(str)
        pairs = s.merge(t, on="entity", suffixes=("_s", "_t"))
        pairs = pd.DataFrame({"source": pairs["item_s"].to_numpy(), "target": pairs["item_t"].to_numpy()})
    else:
        pairs = identical_user_sets(src.assign(user=src["user_key"], item=src["item"].astype(str)),
                                    tgt.assign(user=tgt["user_key"], item=tgt["item"].astype(str)), a.item_min_users)
    known = pairs["source"].isin(set(src_items)) & pairs["target"].isin(set(tgt_items))
    pairs = pairs[known].drop_duplicates().sort_values(["source", "target"]).reset_index(drop=True)
    keyed = lambda f: pd.DataFrame({"user": f["user_key"].to_numpy(), "item": f["item"].astype(str).to_numpy(),
                                    "split": f["split"].to_numpy()})
    dup = duplicate_held_out(keyed(tgt), keyed(src[src["split"] == "train"]), pairs)
    tgt["duplicate"] = dup
    ctx.accounting["item_alignment"] = {
        "method": a.items, "min_users": a.item_min_users if a.items == "interactions" else None,
        "pairs": int(len(pairs)), "source_items": int(pairs["source"].nunique()),
        "target_items": int(pairs["target"].nunique()), "rows_not_in_the_domains": int((~known).sum()),
        "duplicates_removed": {s: int((dup & (tgt["split"] == s).to_numpy()).sum()) for s in ("valid", "test")},
        "users_with_a_removed_test_pair": int(tgt.loc[dup & (tgt["split"] == "test").to_numpy(), "user_key"].nunique()),
    }
    return pairs


# --- the build -------------------------------------------------------------------
def _cold_items(spec: GraphSpec, tgt: pd.DataFrame) -> tuple[set, set]:
    """The item cold-start protocol (``[cold_start] items``): every interaction of the chosen target
    items moves to valid or test (per item, :func:`~kgrec.graph.split.cold_start_items`), so none is a
    training edge or a loss term; their KG, attribute and text edges stay. Returns (valid, test) ids."""
    cs = spec.cold_start
    if cs.items <= 0 and not cs.item_ids:
        return set(), set()
    raw = tgt["item"].astype(str)
    items = pd.unique(raw)
    known = set(items)
    unknown = [i for i in cs.item_ids if i not in known]
    if unknown:
        raise SpecError(spec.path, "cold_start.items", f"{len(unknown)} of {len(cs.item_ids)} ids are not target items "
                                                       f"with an interaction, e.g. {unknown[:3]}")
    valid, test = cold_start_items(np.asarray(items, dtype=object), cs.items, cs.item_ids, cs.valid_share, spec.seed)
    tgt.loc[raw.isin(valid).to_numpy(), "split"] = "valid"
    tgt.loc[raw.isin(test).to_numpy(), "split"] = "test"
    return valid, test


def build_graph(spec: GraphSpec, progress: bool = False) -> GraphArtifact:
    """Build the merged graph described by ``spec`` (see the module docstring).

    Deterministic: the same spec, seed and input files give identical tensors
    and tables. Raises :class:`~kgrec.errors.KgrecError` subclasses for bad
    input or spec.
    """
    ctx = _Context(spec, progress)
    doms = {r: d for r, d in ((SOURCE, spec.source), (TARGET, spec.target)) if d is not None}
    steps = progress_bar(total=6, desc=f"build {spec.name}", enabled=progress)

    frames, items, user_key_of = {}, {}, {}
    for role, d in doms.items():
        frame = _read_domain(ctx, d)
        raw = pd.Series(pd.unique(frame["user"]), dtype=object)
        user_key_of[role] = pd.Series(_user_keys(ctx, role, d.name, raw).to_numpy(), index=raw.astype(str).to_numpy())
        ctx.accounting[role] = {"name": d.name, "rows_read": len(frame), "users_read": int(frame["user"].nunique()),
                                "items_read": int(frame["item"].nunique())}
        if d.items is not None:
            items[role] = _read_items(ctx, d.items, d.subset or d.name)
        frames[role] = frame
    steps.update()
    _carve(ctx, frames, items, doms)
    for role, d in doms.items():
        f = _filter(ctx, role, d, frames[role])
        f = f.assign(user_key=f["user"].astype(str).map(user_key_of[role]).to_numpy())
        frames[role] = f

    # Splits: every domain, then the cold-start protocol on the target.
    for i, (role, d) in enumerate(doms.items()):
        frames[role]["split"] = split_frame(frames[role], d.split, spec.seed + i, where=role, spec_path=spec.path)
    tgt = frames[TARGET]
    _warn_no_validation(ctx, tgt, doms[TARGET])
    cold_valid, cold_test = set(), set()
    if SOURCE in frames and spec.cold_start.share > 0:
        src_users = set(frames[SOURCE].loc[frames[SOURCE]["split"] == "train", "user_key"])
        overlap = pd.unique(tgt["user_key"][tgt["user_key"].isin(src_users)])
        cold_valid, cold_test = cold_start_users(np.asarray(overlap, dtype=object), spec.cold_start.share,
                                                 spec.cold_start.valid_share, spec.seed)
        tgt.loc[tgt["user_key"].isin(cold_valid), "split"] = "valid"
        tgt.loc[tgt["user_key"].isin(cold_test), "split"] = "test"
    cold_items_valid, cold_items_test = _cold_items(spec, tgt)
    steps.update()

    # Knowledge, links, attributes.
    kg, literals, uf = _read_knowledge(ctx)
    kg_entities = set(kg["head"]) | set(kg["tail"])
    item_links = []
    for ln in spec.links:
        for role in [r for r in (SOURCE, TARGET) if r in frames and ln.domain in (r, "both")]:
            l = _links(ctx, ln, role, pd.Index(pd.unique(frames[role]["item"])), items.get(role), kg_entities, uf)
            l = l.assign(role=role)
            if "relation" not in l:
                l["relation"] = "linked_to"
            item_links.append(l)
    attr_links = [p for a in spec.attributes for p in _attributes(ctx, a, items, frames)]
    item_ent = pd.concat(item_links + attr_links, ignore_index=True) if (item_links or attr_links) else \
        pd.DataFrame(columns=["item", "entity", "role", "relation"], dtype=object)
    same = _align_items(ctx, frames, item_ent)
    steps.update()

    # Indexing: order of first appearance, source before target.
    all_rows = pd.concat([frames[r].assign(role=r) for r in doms], ignore_index=True)
    user_codes, user_keys = pd.factorize(all_rows["user_key"])
    all_rows["u"] = user_codes
    item_keys = all_rows["role"] + "\x00" + all_rows["item"].astype(str)
    item_codes, item_uniques = pd.factorize(item_keys)
    all_rows["i"] = item_codes
    item_index = pd.Series(np.arange(len(item_uniques)), index=item_uniques)
    lit_nodes = literals["node"][~literals["node"].isin(item_ent["entity"])] if len(literals) else pd.Series(dtype=object)
    ent_codes, ent_keys = pd.factorize(pd.concat([item_ent["entity"], kg["head"], kg["tail"], lit_nodes], ignore_index=True))
    ent_index = pd.Series(np.arange(len(ent_keys)), index=ent_keys)

    nu, ni, ne = len(user_keys), len(item_uniques), len(ent_keys)
    data = HeteroData()
    data["user"].num_nodes = nu
    data["item"].num_nodes = ni
    item_role = np.array([k.split("\x00", 1)[0] for k in item_uniques], dtype=object)
    item_raw = np.array([k.split("\x00", 1)[1] for k in item_uniques], dtype=object)
    data["item"].domain = torch.as_tensor(item_role == TARGET, dtype=torch.long)
    cold_item = (item_role == TARGET) & np.isin(item_raw, list(cold_items_valid | cold_items_test))
    data["item"].cold_start = torch.from_numpy(cold_item)
    if ne:
        data["entity"].num_nodes = ne

    edge_counts: dict[str, int] = {}
    relation_rows = []
    train = all_rows[all_rows["split"] == "train"]
    for role in doms:
        part = train[train["role"] == role]
        ei = _edges(part["u"].to_numpy(), part["i"].to_numpy())
        s, rel, d = INTERACTS[role]
        data[s, rel, d].edge_index = ei
        data[d, reverse_relation(rel), s].edge_index = ei.flip(0).contiguous()
        relation_rows.append((rel, f"{doms[role].name} interactions", "interaction", ei.shape[1]))
    if len(same):
        ei = _edges((SOURCE + "\x00" + same["source"]).map(item_index).to_numpy(),
                    (TARGET + "\x00" + same["target"]).map(item_index).to_numpy())
        data["item", SAME_AS, "item"].edge_index = ei
        data["item", reverse_relation(SAME_AS), "item"].edge_index = ei.flip(0).contiguous()
        relation_rows.append((SAME_AS, f"same product ({spec.align.items})", "item_item", ei.shape[1]))
    if len(item_ent):
        ie = item_ent.assign(i=(item_ent["role"] + "\x00" + item_ent["item"].astype(str)).map(item_index),
                             e=item_ent["entity"].map(ent_index))
        ie = ie.dropna(subset=["i"])
        for rel in sorted(ie["relation"].unique()):
            part = ie[ie["relation"] == rel]
            ei = _edges(part["i"].to_numpy(), part["e"].to_numpy())
            data["item", rel, "entity"].edge_index = ei
            data["entity", reverse_relation(rel), "item"].edge_index = ei.flip(0).contiguous()
            relation_rows.append((rel, rel, "item_entity", ei.shape[1]))
    names: dict[str, str] = {}
    for raw in sorted(kg["relation"].unique()):
        base = relation_name(raw)
        if base in ("linked_to", "interacts_source", "interacts_target", SAME_AS) or base.startswith("rev_"):
            base = f"kg_{base}"
        name, n = base, 2
        while name in names.values():
            name, n = f"{base}_{n}", n + 1
        names[raw] = name
    if len(kg):
        kg_h = kg["head"].map(ent_index).to_numpy()
        kg_t = kg["tail"].map(ent_index).to_numpy()
        rels = kg["relation"].to_numpy()
        for raw, name in names.items():
            m = rels == raw
            ei = _edges(kg_h[m], kg_t[m])
            data["entity", name, "entity"].edge_index = ei
            data["entity", f"rev_{name}", "entity"].edge_index = ei.flip(0).contiguous()
            relation_rows.append((name, raw, "kg", ei.shape[1]))
    for et in data.edge_types:
        edge_counts[edge_key(et)] = int(data[et].edge_index.shape[1])
    steps.update()

    # Node tables.
    user_domains = all_rows.groupby("u")["role"].agg(lambda r: "both" if r.nunique() > 1 else r.iloc[0])
    held = all_rows[(all_rows["role"] == TARGET)]
    tgt_train_users = set(held.loc[held["split"] == "train", "u"])
    tgt_held_users = set(held.loc[held["split"] != "train", "u"])
    cold = np.zeros(nu, dtype=bool)
    cold[list(tgt_held_users - tgt_train_users)] = True
    data["user"].cold_start = torch.from_numpy(cold)
    data["user"].in_source = torch.from_numpy(np.isin(np.arange(nu), all_rows.loc[all_rows["role"] == SOURCE, "u"].unique()))
    data["user"].in_target = torch.from_numpy(np.isin(np.arange(nu), held["u"].unique()))
    users = pd.DataFrame({"index": np.arange(nu), "id": np.asarray(user_keys, dtype=object),
                          "domain": user_domains.reindex(range(nu)).to_numpy(dtype=object), "cold_start": cold})
    users["label"] = users["id"]
    titles, texts = [], []
    for role, raw in zip(item_role, item_raw):
        table = items.get(role)
        if table is not None and raw in table.index:
            titles.append(str(table.at[raw, "title"]))
            texts.append(str(table.at[raw, "text"]))
        else:
            titles.append(raw)
            texts.append("")
    item_tab = pd.DataFrame({"index": np.arange(ni), "id": item_raw, "domain": item_role,
                             "domain_name": [doms[r].name for r in item_role], "label": titles, "text": texts,
                             "cold_start": cold_item})
    # Entity domains: linked from a domain's items directly or through one KG hop.
    ent_mask = np.zeros(ne, dtype=np.int64)
    if len(item_ent):
        for role, bit in ((SOURCE, 1), (TARGET, 2)):
            direct = ie.loc[ie["role"] == role, "e"].to_numpy(dtype=np.int64)
            ent_mask[direct] |= bit
    if len(kg):
        reach = ent_mask.copy()
        np.bitwise_or.at(reach, kg_t, ent_mask[kg_h])
        np.bitwise_or.at(reach, kg_h, ent_mask[kg_t])
        ent_mask = reach
    ent_labels = pd.Series(np.asarray(ent_keys, dtype=object), index=np.arange(ne))
    lits_out = pd.DataFrame(columns=["node", "predicate", "value", "datatype", "lang"])
    if len(literals):
        lit = literals[literals["node"].isin(ent_index.index)].copy()
        lit["node"] = lit["node"].map(ent_index).astype(np.int64)
        lab = lit[lit["predicate"].isin(LABEL_PREDICATES)].sort_values(["node", "lang", "value"], na_position="first")
        first = lab.drop_duplicates("node")
        ent_labels.loc[first["node"].to_numpy()] = first["value"].to_numpy()
        lits_out = lit.sort_values(["node", "predicate", "value"]).reset_index(drop=True)
    entities = pd.DataFrame({"index": np.arange(ne), "id": np.asarray(ent_keys, dtype=object),
                             "domain": np.array(["none", SOURCE, TARGET, "both"], dtype=object)[ent_mask],
                             "label": ent_labels.to_numpy(dtype=object)})
    interactions = pd.DataFrame({"domain": all_rows["role"].to_numpy(dtype=object), "user": all_rows["u"].to_numpy(),
                                 "item": all_rows["i"].to_numpy(), "split": all_rows["split"].to_numpy(dtype=object),
                                 "timestamp": all_rows["timestamp"].to_numpy(),
                                 "duplicate": all_rows["duplicate"].to_numpy(dtype=bool)})
    relations = pd.DataFrame(relation_rows, columns=["name", "original", "kind", "edges"])
    steps.update()

    # Accounting.
    for role in doms:
        part = all_rows[all_rows["role"] == role]
        acc = ctx.accounting[role]
        live = part[~part["duplicate"]]
        acc.update(kept=len(part), users=int(part["u"].nunique()), items=int(part["i"].nunique()),
                   **{s: int((live["split"] == s).sum()) for s in ("train", "valid", "test")})
    read_users = set().union(*(keys.to_numpy() for keys in user_key_of.values()))
    ctx.accounting["users"] = {"read": len(read_users), "in_graph": nu,
                               "dropped_no_kept_interaction": len(read_users - set(user_keys))}
    ctx.accounting[TARGET]["cold_start_users"] = int(cold.sum())
    ctx.accounting[TARGET]["cold_start_protocol_users"] = {"valid": len(cold_valid), "test": len(cold_test)}
    ctx.accounting[TARGET]["cold_start_protocol_items"] = {"valid": len(cold_items_valid), "test": len(cold_items_test)}
    manifest = {
        "format": FORMAT_VERSION,
        "name": spec.name,
        "description": spec.description,
        "seed": spec.seed,
        "domains": {r: d.name for r, d in doms.items()},
        "spec": spec.to_dict(),
        "inputs": dict(sorted(ctx.inputs.items())),
        "counts": {"nodes": {"user": nu, "item": ni, "entity": ne}, "edges": edge_counts},
        "accounting": ctx.accounting,
        "versions": _versions(),
    }
    steps.update()
    steps.close()
    nodes = {"user": users, "item": item_tab}
    nodes["entity"] = entities
    return GraphArtifact(data=data, nodes=nodes, interactions=interactions, relations=relations,
                         literals=lits_out.astype({"node": np.int64}) if len(lits_out) else lits_out.astype(object),
                         manifest=manifest)
