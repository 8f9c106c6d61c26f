"""A trained run, loaded for use: the model, its graph, id lookups and readable labels.

``load_run(path)`` is what ``recommend``, ``explain``, ``export_embeddings``,
``evaluate_run`` and ``update`` start from, in the CLI and in notebooks alike.
``Run`` holds the state; those functions (``kgrec.serve.*``) take it as their
first argument, so the imports point one way: they import this module, never
the reverse.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from kgrec.errors import KgrecError, KgrecWarning
from kgrec.graph.artifact import SOURCE, TARGET, GraphArtifact, load_graph
from kgrec.integrity import check_file
from kgrec.io import load_torch, read_json
from kgrec.graph.views import target_only
from kgrec.models import ModelConfig, RelationalGraph, TransferModel
from kgrec.models.content import NewItemTerms, new_item_terms
from kgrec.models.encoder import items_with_interactions
from kgrec.models.itemknn import EASEFilter
from kgrec.models.paths import PathScorer, item_walks_from_state
from kgrec.train.config import TrainConfig, load_config
from kgrec.train.trainer import resolve_device


def path_scorer(config: TrainConfig, artifact: GraphArtifact, path_graph: str,
                device: torch.device | str = "cpu", path_filter: dict | None = None) -> PathScorer | EASEFilter:
    """A run's walk scorer over ``path_graph``, ``"merged"`` (where the domains meet) or ``"target"``
    (the target's own graph; always so for target-only runs), with the config's ``path_hops`` and the
    filter the run chose (``path_filter``: ``alpha``, ``beta``; or ``kind = "ease"`` with its
    ``lambda``, ``source_weight`` and ``neighbours``; the config's ``path_alpha`` and the default walk
    for runs that did not choose one)."""
    data = artifact.data if path_graph == "merged" and config.mode == "transfer" else target_only(artifact.data)
    chosen = path_filter or {}
    if chosen.get("kind") == "ease":
        return EASEFilter(RelationalGraph.from_hetero(data, device), artifact.items_of(TARGET),
                          chosen["source_weight"], chosen["neighbours"], chosen["lambda"])
    return PathScorer(RelationalGraph.from_hetero(data, device), config.model.path_hops,
                      chosen.get("alpha", config.model.path_alpha), chosen.get("beta"), config.eval.memory_mb)


def build_model(saved: dict, device: torch.device | str = "cpu") -> TransferModel:
    """Rebuild a :class:`TransferModel` from a ``model.pt`` payload and load its weights."""
    features = {t: torch.zeros(saved["sizes"][t], d) for t, d in saved["feature_dims"].items()}
    model = TransferModel(saved["sizes"], saved["num_relations"], ModelConfig(**saved["model_config"]), features,
                          discriminator=saved["discriminator"])
    model.load_state_dict(saved["state_dict"])
    return model.to(device).eval()


@dataclass
class Run:
    """A run directory, loaded.

    Attributes:
        path: the run directory.
        config: its resolved :class:`TrainConfig`.
        artifact: the graph artifact it was trained on.
        model: the trained model (eval mode).
        graph: the graph its encoder propagates over.
        view: ``"merged"`` (transfer runs) or ``"target_only"`` (the control, and transfer runs
            fine-tuned with ``finetune.graph = "target"``).
        path_weight: the weight of the walk scores blended with the head's (chosen on
            validation at training; 0: embeddings alone). See :mod:`kgrec.models.paths`.
        path_graph: what the walks cross, ``"merged"`` or ``"target"`` (chosen with the weight).
        path_filter: the filter the run chose: a walk's exponents ``{"alpha": a, "beta": b}`` (``beta``
            None: the default walk), or EASE's ``{"kind": "ease", "lambda": ..., "source_weight": ...,
            "neighbours": ...}``; empty for runs from before the choice existed.
        new_items: the new-item terms the run chose (:meth:`NewItemTerms.state
            <kgrec.models.content.NewItemTerms.state>`: ``content``, ``content_weight``, ``cold_shift``);
            empty for runs from before they existed.
    """

    path: Path
    config: TrainConfig
    artifact: GraphArtifact
    model: TransferModel
    graph: RelationalGraph
    view: str = "merged"
    path_weight: float = 0.0
    path_graph: str = "merged"
    path_filter: dict = field(default_factory=dict)
    new_items: dict = field(default_factory=dict)
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def device(self) -> torch.device:
        return self.graph.device

    @torch.no_grad()
    def embeddings(self) -> Tensor:
        """``[N, out_dim]`` embeddings of every node (flat index, see ``graph.offsets``), computed once."""
        if "h" not in self._cache:
            self._cache["h"] = self.model(self.graph)
        return self._cache["h"]

    def paths(self) -> PathScorer | EASEFilter | None:
        """The walk scorer blended in at ``path_weight``, over ``path_graph``; ``None`` when the
        weight is 0. Its item-item operator is the run's ``paths.pt`` where the run saved one
        (computed on first use otherwise).

        Raises:
            KgrecError: ``paths.pt`` is unreadable or belongs to another walk or graph.
        """
        if self.path_weight == 0:
            return None
        if "paths" not in self._cache:
            scorer = path_scorer(self.config, self.artifact, self.path_graph, self.device, self.path_filter)
            saved = self.path / "paths.pt"
            if saved.exists():
                state = load_torch(saved, "walks file", map_location="cpu")  # damaged: a one-line InputError
                try:
                    scorer.attach(item_walks_from_state(state, scorer, self.path_graph))
                except (ValueError, KeyError, TypeError, AttributeError) as e:  # a torch file of something else
                    raise KgrecError(f"{saved}: not the walks of this run ({e}); delete it and they are "
                                     f"recomputed") from None
            self._cache["paths"] = scorer
        return self._cache["paths"]

    def new_item_terms(self) -> NewItemTerms | None:
        """The run's :class:`~kgrec.models.content.NewItemTerms` over its graph (an item added by
        ``kgrec update --new-items`` has no interaction edge, so it is shifted as the run's new items
        were), or ``None`` when the run chose none."""
        if "terms" not in self._cache:
            self._cache["terms"] = new_item_terms(self.new_items, self.artifact, ~items_with_interactions(self.graph))
        return self._cache["terms"]

    def message_passing_data(self):
        """The ``HeteroData`` the encoder propagates over (the artifact's, or its target-only view)."""
        return self.artifact.data if self.view == "merged" else target_only(self.artifact.data)

    def user_index(self, user_id: str) -> int:
        """The index of user ``user_id``.

        Raises:
            KgrecError: unknown id; the message says where the valid ids are.
        """
        return _lookup(self._ids("user"), str(user_id), "user", self.config.graph,
                       "or give the user's history with --history FILE")

    def item_index(self, item_id: str, domain: str | None = None) -> int:
        """The index of item ``item_id`` (``domain:id`` or a bare id, looked up in the target domain first).

        Raises:
            KgrecError: unknown id.
        """
        given = item_id = str(item_id)
        items = self.artifact.nodes["item"]
        roles = [r for r in (TARGET, SOURCE) if (items["domain"] == r).any()]
        prefix = item_id.split(":", 1)[0] if ":" in item_id else None
        if domain is None and prefix is not None:
            for role in (SOURCE, TARGET):
                if prefix in (role, self.domain_name(role)):
                    domain, item_id = role, item_id.split(":", 1)[1]
        for role in ([domain] if domain else roles):
            if item_id in self._items(role):
                return self._items(role)[item_id]
        where = "; ".join(f"the {self.domain_name(r)} ({r}) domain has {len(self._items(r)):,} items"
                          + (f", e.g. {', '.join(repr(f'{self.domain_name(r)}:{k}') for k in list(self._items(r))[:3])}"
                             if self._items(r) else "") for r in roles)
        if domain is not None:
            what = f"item {item_id!r} is not in the {self.domain_name(domain)} ({domain}) domain"
        elif prefix is not None:
            what = (f"item {given!r} is not in the graph, and {prefix!r} is not a domain (the domains are "
                    f"{', '.join(repr(self.domain_name(r)) for r in roles)})")
        else:
            what = f"item {given!r} is not in the graph (a bare id is looked up in every domain)"
        raise KgrecError(f"{what}: {where}; the ids are the 'id' column of "
                         f"{Path(self.config.graph) / 'nodes' / 'item.parquet'}")

    def _items(self, role: str) -> dict[str, int]:
        """Item id -> index, for the items of domain ``role``."""
        key = f"item-{role}"
        if key not in self._cache:
            items = self.artifact.nodes["item"]
            sub = items[items["domain"] == role]
            self._cache[key] = dict(zip(sub["id"].astype(str), sub["index"].astype(int)))
        return self._cache[key]

    def _ids(self, node_type: str) -> dict[str, int]:
        key = f"ids-{node_type}"
        if key not in self._cache:
            t = self.artifact.nodes[node_type]
            self._cache[key] = dict(zip(t["id"].astype(str), t["index"].astype(int)))
        return self._cache[key]

    def label(self, node_type: str, index: int) -> str:
        """A readable name: the node's label; for an item labelled only by its id, the label of
        the KG entity it is linked to when that has one."""
        return self.labels(node_type)[index]

    def labels(self, node_type: str) -> list[str]:
        key = f"labels-{node_type}"
        if key not in self._cache:
            t = self.artifact.nodes[node_type]
            labels = t["label"].astype(str).tolist() if "label" in t.columns else t["id"].astype(str).tolist()
            if node_type == "item" and ("item", "linked_to", "entity") in self.artifact.data.edge_types:
                ent = self.labels("entity")
                ent_ids = self.artifact.nodes["entity"]["id"].astype(str).tolist()
                ids = t["id"].astype(str).tolist()
                ei = self.artifact.data["item", "linked_to", "entity"].edge_index
                for i, e in ei.T.tolist():
                    if labels[i] == ids[i] and ent[e] != ent_ids[e]:
                        labels[i] = ent[e]
            self._cache[key] = labels
        return self._cache[key]

    def domain_name(self, role: str) -> str:
        """:meth:`GraphArtifact.domain_name`."""
        return self.artifact.domain_name(role)

    def seen_items(self, user: int, domain: str = TARGET, splits: tuple[str, ...] = ("train",)) -> Tensor:
        """Items of ``domain`` the user interacted with in ``splits``, and those they already have under
        another listing (held-out duplicates, :mod:`kgrec.graph.align`)."""
        df = self.artifact.interactions
        rows = df[(df["domain"] == domain) & (df["split"].isin(splits) | df["duplicate"]) & (df["user"] == user)]
        return torch.tensor(rows["item"].to_numpy(), dtype=torch.long)

    def results(self) -> dict:
        """The run's ``results.json``."""
        return read_json(self.path / "results.json")


def _lookup(ids: dict[str, int], key: str, what: str, graph: str, hint: str) -> int:
    if key in ids:
        return ids[key]
    examples = ", ".join(repr(k) for k in list(ids)[:3])
    raise KgrecError(f"{what} {key!r} is not in the graph ({len(ids):,} {what}s"
                     + (f", e.g. {examples}" if examples else "") + f"); the valid ids are the 'id' column of "
                     f"{Path(graph) / 'nodes' / f'{what}.parquet'} {hint}")


def read_run_record(path: str | Path) -> dict | None:
    """A run's ``run.json`` (``None`` for a run killed before writing it).

    Raises:
        InputError: unreadable or not JSON. KgrecError: not a JSON object.
    """
    path = Path(path)
    if not (path / "run.json").exists():
        return None
    record = read_json(path / "run.json")
    if not isinstance(record, dict):
        raise KgrecError(f"{path / 'run.json'}: expected a JSON object, got {type(record).__name__}")
    return record


def verify_run(path: Path, record: dict | None, artifact: GraphArtifact, graph_dir: str | Path) -> bool:
    """Check ``model.pt`` against ``run.json``'s checksum, and that ``artifact`` is the graph the run
    was trained on; False for a run that recorded neither (trained before kgrec recorded them).

    Raises:
        KgrecError: a file changed, or the graph is another one (same node counts or not).
    """
    files = (record or {}).get("files")
    if isinstance(files, dict):
        check = check_file(path, "model.pt", files["model.pt"]) if "model.pt" in files else None
        if check is not None and not check.ok:
            raise KgrecError(f"{path / 'model.pt'}: {check.status}" + (f" ({check.detail})" if check.detail else "")
                             + f": the run changed since training wrote it, or mixes files of two runs; retrain it "
                             f"(`kgrec verify {path}` checks every file)")
    recorded, actual = (record or {}).get("graph_checksum"), artifact.manifest.get("checksum")
    if recorded and actual and recorded != actual:
        raise KgrecError(f"{path}: the graph at {graph_dir} is not the one this run was trained "
                         f"on (its checksum is {actual[:12]}..., run.json records {recorded[:12]}...); point "
                         f"config.toml's graph at the artifact it was trained on, or retrain on this one")
    return bool(recorded) and isinstance(files, dict)


def load_run(path: str | Path, device: str = "cpu") -> Run:
    """Load a run directory written by :func:`kgrec.train.train`, its files and graph checked against the
    checksums in ``run.json``.

    Raises:
        KgrecError: not a finished run directory, its graph artifact is gone or is another graph, or a
            file is changed, truncated or corrupt.
    """
    path = Path(path)
    if not (path / "model.pt").exists() or not (path / "config.toml").exists():
        raise KgrecError(f"{path} is not a finished run directory (no model.pt/config.toml): "
                         f"train one with 'kgrec train --graph DIR --out {path}'")
    record = read_run_record(path)
    config = load_config(path / "config.toml")
    dev = resolve_device(device)
    artifact = load_graph(config.graph)
    verified = verify_run(path, record, artifact, config.graph)
    saved = load_torch(path / "model.pt", "model file", map_location=dev)
    try:
        view = saved["graph_view"]
        data = artifact.data if view == "merged" else target_only(artifact.data)
        graph = RelationalGraph.from_hetero(data, dev)
        same = graph.sizes == saved["sizes"] and graph.relations == [tuple(r) for r in saved["relations"]]
    except (KeyError, TypeError, AttributeError) as e:
        raise KgrecError(f"{path / 'model.pt'}: not a kgrec model (no {e} in it); retrain the run") from None
    if not same:
        raise KgrecError(f"{path}: the graph at {config.graph} is not the one this run was trained on "
                         f"(node counts or relations differ)")
    try:
        model = build_model(saved, dev)
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise KgrecError(f"{path / 'model.pt'}: not a kgrec model of this graph "
                         f"({str(e).strip().splitlines()[0][:160]}); retrain the run") from None
    if not verified:  # said last, so that it never precedes an error about the same run
        warnings.warn(f"{path} has no checksums (trained before kgrec recorded them), so its files and graph "
                      f"cannot be verified; retrain it to add them", KgrecWarning, stacklevel=2)
    return Run(path, config, artifact, model, graph, view,
               float(saved.get("path_weight", 0.0)),
               saved.get("path_graph") or ("merged" if config.mode == "transfer" else "target"),
               dict(saved.get("path_filter") or {}), dict(saved.get("new_item_terms") or {}))
