"""User groups, item-popularity buckets, coverage and popularity bias of ranked lists."""
from __future__ import annotations

import torch
from torch import Tensor

from kgrec.graph.artifact import SOURCE, TARGET, GraphArtifact

ACTIVITY_EDGES = (0, 2, 5, 10)


def _bucket_names(edges: tuple[int, ...]) -> list[tuple[str, int, float]]:
    out, lo = [], 0
    for e in edges:
        out.append((str(e) if lo == e else f"{lo}-{e}", lo, e))
        lo = e + 1
    out.append((f">{edges[-1]}", lo, float("inf")))
    return out


def train_counts(artifact: GraphArtifact, domain: str) -> Tensor:
    """``[n_users]`` training interactions per user in ``domain``."""
    train = artifact.split("train", domain)
    return torch.bincount(train[0], minlength=int(artifact.data["user"].num_nodes))


def user_groups(artifact: GraphArtifact, users: Tensor, cold_max: int = 0,
                edges: tuple[int, ...] = ACTIVITY_EDGES) -> dict[str, Tensor]:
    """``{group: [U] bool}`` over ``users``: ``all``; ``cold_start`` (marked by the spec's cold-start
    protocol, or with at most ``cold_max`` target training interactions); and activity buckets
    ``target 0``, ``target 1-2``, ... and ``source ...`` by training interactions. Empty groups are left out."""
    groups = {"all": torch.ones(len(users), dtype=torch.bool)}
    tc, sc = train_counts(artifact, TARGET)[users], train_counts(artifact, SOURCE)[users]
    cold = tc <= cold_max
    if "cold_start" in artifact.data["user"]:
        cold |= artifact.data["user"].cold_start.bool()[users]
    groups["cold_start"] = cold
    for name, counts in (("target", tc), ("source", sc)):
        for label, lo, hi in _bucket_names(edges):
            groups[f"{name} {label}"] = (counts >= lo) & (counts <= hi)
    return {k: v for k, v in groups.items() if bool(v.any())}


def item_popularity(artifact: GraphArtifact, domain: str = TARGET) -> Tensor:
    """``[n_items]`` training interactions per item (all item indices; other domains' items are 0)."""
    train = artifact.split("train", domain)
    return torch.bincount(train[1], minlength=int(artifact.data["item"].num_nodes))


def popularity_buckets(popularity: Tensor, items: Tensor, shares: tuple[float, ...] = (0.2, 0.6)) -> dict[str, Tensor]:
    """Split ``items`` by training popularity into ``head`` (the most popular items holding the first
    ``shares[0]`` of interactions), ``mid`` and ``tail``: ``{bucket: [M] bool}`` over ``items``."""
    pop = popularity[items].float()
    order = torch.argsort(pop, descending=True, stable=True)
    cum = torch.cumsum(pop[order], 0) / pop.sum().clamp(min=1)
    head, mid = torch.zeros(len(items), dtype=torch.bool), torch.zeros(len(items), dtype=torch.bool)
    head[order[cum <= shares[0]]] = True
    mid[order[(cum > shares[0]) & (cum <= shares[1])]] = True
    return {"head": head, "mid": mid, "tail": ~(head | mid)}


def bucket_recall(top: Tensor, relevant: tuple[Tensor, Tensor], buckets: dict[str, Tensor], k: int) -> dict[str, float]:
    """Share of held-out (user, item) pairs found in the user's top ``k``, per item bucket.
    ``top`` ``[U, K]`` and ``relevant`` CSR hold positions into the candidate items that ``buckets`` index."""
    indptr, items = relevant
    owner = torch.repeat_interleave(torch.arange(len(indptr) - 1), indptr[1:] - indptr[:-1])
    found = (top[owner, :k] == items.unsqueeze(1)).any(1)
    return {name: float(found[mask[items]].float().mean()) if bool(mask[items].any()) else float("nan")
            for name, mask in buckets.items()}


def coverage(top: Tensor, num_items: int, k: int) -> float:
    """Share of the candidate items that appear in at least one top-``k`` list."""
    return len(torch.unique(top[:, :k])) / max(num_items, 1)


def popularity_bias(top: Tensor, popularity: Tensor, k: int) -> float:
    """Average recommendation popularity (ARP): the mean training popularity of the top-``k`` items
    (``popularity`` indexed by candidate position)."""
    return float(popularity[top[:, :k]].float().mean()) if top.numel() else float("nan")
