"""The sampled protocol of the Amazon cross-domain papers (DisenCDR, CDRIB, ...):
each held-out (user, item) pair is ranked against ``n`` items sampled uniformly
among the domain's items the user never interacted with (in any split).

It is reported apart from, and labelled differently to, full ranking: sampled
metrics are much higher and can order models differently (Krichene & Rendle,
KDD 2020). Ties count against the held-out item (rank = 1 + #negatives scoring
>= it), so a constant scorer gets no credit.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from kgrec.graph.artifact import TARGET, GraphArtifact
from kgrec.graph.negatives import NegativeSampler


def sampled_candidates(artifact: GraphArtifact, split: str = "test", n: int = 999, seed: int = 0,
                       domain: str = TARGET) -> tuple[Tensor, Tensor, Tensor]:
    """``(users [P], positives [P], negatives [P, n])`` item indices for every held-out pair of ``split``;
    the negatives of a pair avoid every item the user has in ``domain`` (any split). Seeded."""
    held = artifact.split(split, domain)
    every = artifact.interactions[artifact.interactions["domain"] == domain]
    users = torch.tensor(every["user"].to_numpy(), dtype=torch.long)
    items = torch.tensor(every["item"].to_numpy(), dtype=torch.long)
    sampler = NegativeSampler(users, items, artifact.items_of(domain), int(artifact.data["user"].num_nodes))
    return held[0], held[1], sampler.sample(held[0], n, torch.Generator().manual_seed(seed))


def sampled_metrics(score_pairs: Callable[[Tensor, Tensor], Tensor], users: Tensor, positives: Tensor,
                    negatives: Tensor, ks: tuple[int, ...] = (10,), batch: int = 1024) -> dict[str, Tensor]:
    """Per-pair ``{"sampled_hr@10": [P], "sampled_ndcg@10": [P]}``; ``score_pairs(users [B], items [B, c])``
    returns ``[B, c]`` scores."""
    ranks = []
    for s in range(0, len(users), batch):
        u = users[s:s + batch]
        cand = torch.cat([positives[s:s + batch, None], negatives[s:s + batch]], 1)
        sc = score_pairs(u, cand).float().cpu()
        ranks.append(1 + (sc[:, 1:] >= sc[:, :1]).sum(1))
    rank = torch.cat(ranks).float() if ranks else torch.empty(0)
    out = {}
    for k in ks:
        hit = rank <= k
        out[f"sampled_hr@{k}"] = hit.float()
        out[f"sampled_ndcg@{k}"] = torch.where(hit, 1.0 / torch.log2(rank + 1), torch.zeros_like(rank))
    return out
