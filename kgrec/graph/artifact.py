"""The graph artifact: one directory holding everything a model needs.

Layout::

    DIR/graph.pt            message-passing graph as plain tensors (loads with weights_only=True)
    DIR/nodes/{type}.parquet   index -> original id / IRI, domain, label (and item text)
    DIR/interactions.parquet   every kept interaction: domain, user, item, split, timestamp, duplicate
    DIR/relations.parquet      relation name -> original predicate, kind, edge count
    DIR/literals.parquet       RDF literals kept as node attributes
    DIR/manifest.json          spec, input checksums, counts, what was dropped and why, versions,
                               and the SHA-256 of every file above (``files``) with one ``checksum`` of them all

Only ``train`` interactions are message-passing edges of ``graph.pt``; valid
and test interactions live in ``interactions.parquet`` alone. A held-out row with
``duplicate`` true repeats a source training interaction of its user under another
listing of the same product (:mod:`kgrec.graph.align`): it is in no split, and ranking
filters its item like an item already seen.

Loading checks every file against the manifest's checksums (:mod:`kgrec.integrity`); an
artifact built before they were recorded loads with a warning.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from torch_geometric.data import HeteroData

from kgrec.atomic import atomic_directory
from kgrec.errors import ArtifactError, KgrecWarning
from kgrec.integrity import check_files, combined, record_files
from kgrec.io import load_parquet, load_torch, read_json

FORMAT_VERSION = 1
NODE_TYPES = ("user", "item", "entity")
SOURCE, TARGET = "source", "target"
#: the relation joining two listings of one product, source item -> target item (see kgrec.graph.align)
SAME_AS = "same_as"
#: interaction relations, by domain role
INTERACTS = {SOURCE: ("user", "interacts_source", "item"), TARGET: ("user", "interacts_target", "item")}


def is_artifact_dir(path: Path) -> bool:
    """Whether ``path`` is a graph artifact kgrec wrote: ``manifest.json`` with a ``format`` key, and ``graph.pt``
    (what ``--overwrite`` may replace)."""
    manifest = Path(path) / "manifest.json"
    if not manifest.is_file() or not (Path(path) / "graph.pt").is_file():
        return False
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # unreadable or not JSON: not something kgrec wrote, so never replaced
        return False
    return isinstance(data, dict) and "format" in data


def edge_key(edge_type: tuple[str, str, str]) -> str:
    return "|".join(edge_type)


def reverse_relation(rel: str) -> str:
    return rel[4:] if rel.startswith("rev_") else f"rev_{rel}"


@dataclass
class GraphArtifact:
    """A built graph: the message-passing ``HeteroData`` plus tables and manifest."""

    data: HeteroData
    nodes: dict[str, pd.DataFrame]
    interactions: pd.DataFrame
    relations: pd.DataFrame
    literals: pd.DataFrame
    manifest: dict = field(default_factory=dict)

    def split(self, name: str, domain: str = TARGET) -> torch.Tensor:
        """``[2, E]`` (user, item) indices of one split of one domain (duplicates left out)."""
        i = self.interactions
        rows = i[(i["domain"] == domain) & (i["split"] == name) & ~i["duplicate"]]
        return torch.as_tensor(rows[["user", "item"]].to_numpy().T.copy(), dtype=torch.long).reshape(2, -1)

    def duplicates(self, domain: str = TARGET) -> torch.Tensor:
        """``[2, E]`` (user, item): held-out pairs removed as duplicates of a source training
        interaction under another listing (filtered from rankings like seen items)."""
        i = self.interactions
        rows = i[(i["domain"] == domain) & i["duplicate"]]
        return torch.as_tensor(rows[["user", "item"]].to_numpy().T.copy(), dtype=torch.long).reshape(2, -1)

    def items_of(self, domain: str = TARGET) -> torch.Tensor:
        """Global indices of the items of one domain (``source`` or ``target``)."""
        t = self.nodes["item"]
        return torch.tensor(t.index[t["domain"] == domain].to_numpy(), dtype=torch.long)

    def cold_items(self) -> torch.Tensor:
        """Global indices of the target items held out by the item cold-start protocol (``[cold_start]
        items``) or added with knowledge alone (``kgrec update --knowledge``): items with no training
        interaction, by construction. Empty for graphs without them."""
        t = self.nodes["item"]
        if "cold_start" not in t.columns:
            return torch.empty(0, dtype=torch.long)
        return torch.tensor(t.index[t["cold_start"].fillna(False).astype(bool).to_numpy()].to_numpy(), dtype=torch.long)

    def training_items(self, domain: str = TARGET) -> torch.Tensor:
        """:meth:`items_of` less the :meth:`cold_items`: what a loss may draw as negatives (a new item
        does not exist when the model is trained)."""
        items, cold = self.items_of(domain), self.cold_items()
        return items[~torch.isin(items, cold)] if len(cold) else items

    def domain_name(self, role: str) -> str:
        """The name the spec gave domain ``role`` (``source`` or ``target``), e.g. ``books``."""
        t = self.nodes["item"]
        names = t.loc[t["domain"] == role, "domain_name"]
        return str(names.iloc[0]) if len(names) else role

    def save(self, out: str | Path, overwrite: bool = True) -> Path:
        """Write the artifact directory atomically (a temporary sibling renamed into place)."""
        with atomic_directory(out, overwrite=overwrite, ours=is_artifact_dir, what="graph artifact") as tmp:
            payload = {
                "format": FORMAT_VERSION,
                "num_nodes": {t: int(self.data[t].num_nodes) for t in self.data.node_types},
                "node_attrs": {t: {k: v for k, v in self.data[t].items() if torch.is_tensor(v)}
                               for t in self.data.node_types},
                "edge_index": {edge_key(et): self.data[et].edge_index for et in self.data.edge_types},
            }
            torch.save(payload, tmp / "graph.pt")
            (tmp / "nodes").mkdir()
            for t, frame in self.nodes.items():
                frame.to_parquet(tmp / "nodes" / f"{t}.parquet", index=False)
            self.interactions.to_parquet(tmp / "interactions.parquet", index=False)
            self.relations.to_parquet(tmp / "relations.parquet", index=False)
            self.literals.to_parquet(tmp / "literals.parquet", index=False)
            files = record_files(tmp, [p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file()])
            self.manifest = {**self.manifest, "files": files, "checksum": combined(files)}
            (tmp / "manifest.json").write_text(json.dumps(self.manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return Path(out)


def read_manifest(path: str | Path) -> dict:
    """The ``manifest.json`` of the artifact directory ``path``.

    Raises:
        ArtifactError: missing, or not a JSON object. InputError: unreadable, not UTF-8 or not JSON.
    """
    path = Path(path)
    if not (path / "manifest.json").exists():
        raise ArtifactError(f"{path} is not a kgrec graph artifact (missing manifest.json); build one with "
                            f"`kgrec build SPEC --out DIR`")
    manifest = read_json(path / "manifest.json")
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{path / 'manifest.json'}: expected a JSON object, got {type(manifest).__name__}")
    return manifest


def verify_artifact(path: str | Path, manifest: dict) -> bool:
    """Check the artifact's files against ``manifest``'s checksums; False when it records none (built
    before kgrec recorded them).

    Raises:
        ArtifactError: a recorded file is missing, unreadable or changed (the first such file).
    """
    path = Path(path)
    files = manifest.get("files")
    if not isinstance(files, dict):
        return False
    for check in check_files(path, files):
        if not check.ok:
            raise ArtifactError(f"{path / check.name}: {check.status}" + (f" ({check.detail})" if check.detail else "")
                                + f": the artifact changed since `kgrec build` wrote it, or mixes files of two builds; "
                                f"rebuild it (`kgrec verify {path}` checks every file)")
    return True


def load_graph(path: str | Path, verify: bool = True) -> GraphArtifact:
    """Load an artifact directory written by ``kgrec build``, its files checked against the manifest's
    checksums (``verify``).

    Raises:
        ArtifactError: the directory is missing a file, has another format version, or a file's checksum
            differs from the manifest's. InputError: a file is unreadable, truncated or corrupt.
    """
    path = Path(path)
    if not path.is_dir():
        raise ArtifactError(f"{path} is not a kgrec graph artifact (" + ("a file" if path.exists() else "not found")
                            + "); build one with `kgrec build SPEC --out DIR`")
    for name in ("graph.pt", "manifest.json", "interactions.parquet"):
        if not (path / name).exists():
            raise ArtifactError(f"{path} is not a kgrec graph artifact (missing {name}); build one with `kgrec build SPEC --out DIR`")
    manifest = read_manifest(path)
    if manifest.get("format") != FORMAT_VERSION:
        raise ArtifactError(f"{path}: artifact format {manifest.get('format')} is not {FORMAT_VERSION}; rebuild it")
    verified = verify_artifact(path, manifest) if verify else True
    payload = load_torch(path / "graph.pt", "graph file")
    data = HeteroData()
    try:
        for t, n in payload["num_nodes"].items():
            data[t].num_nodes = n
            for k, v in payload["node_attrs"].get(t, {}).items():
                data[t][k] = v
        for key, ei in payload["edge_index"].items():
            data[tuple(key.split("|"))].edge_index = ei
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise ArtifactError(f"{path / 'graph.pt'}: not a kgrec graph (no {e} in it); rebuild the artifact") from None
    nodes = {p.stem: load_parquet(p) for p in sorted((path / "nodes").glob("*.parquet"))}
    interactions = load_parquet(path / "interactions.parquet")
    for name, frame in (("nodes/item.parquet", nodes.get("item")), ("interactions.parquet", interactions)):
        need = {"nodes/item.parquet": ("index", "id", "domain"),
                "interactions.parquet": ("domain", "user", "item", "split")}[name]
        if frame is None or any(c not in frame.columns for c in need):
            raise ArtifactError(f"{path / name}: " + ("missing" if frame is None else
                                f"expected columns {', '.join(need)}, got {', '.join(map(str, frame.columns))}")
                                + "; rebuild the artifact")
    if "duplicate" not in interactions:  # built before item alignment existed
        interactions["duplicate"] = False
    artifact = GraphArtifact(data=data, nodes=nodes, interactions=interactions,
                             relations=load_parquet(path / "relations.parquet"),
                             literals=load_parquet(path / "literals.parquet"), manifest=manifest)
    if not verified:  # said last, so that it never precedes an error about the same artifact
        warnings.warn(f"{path} has no checksums (built before kgrec recorded them), so its files cannot be "
                      f"verified; rebuild it with `kgrec build` to add them", KgrecWarning, stacklevel=2)
    return artifact
