"""Graph-filter scores: normalised walk counts from a user to each item, blended with the
embedding scores.

A user's path score for item ``i`` is the weight of all walks of length ``hops`` from the
user to ``i`` over the graph, each edge ``u -> v`` weighted ``deg(u)^-alpha · deg(v)^(alpha-1)``
(``alpha = 0.5`` is the symmetric normalisation of LightGCN's propagation). On the merged
graph three hops hold the transfer route (user -> source item -> shared user -> target
item) and, where there is a KG, item -> entity -> item; no parameter is learned, so
nothing is compressed into 64 dimensions. It is the non-parametric filter of GF-CF
(Shen et al., CIKM 2021) and LinkProp-style link prediction, and is sharpest where
interactions are few per user, as on the Amazon sets.

The model's final score is ``z(embedding score) + w · z(path score)``, each standardised
over the candidate items of a user, with ``w`` chosen on validation among
:data:`PATH_WEIGHTS` (``0`` keeps the embeddings alone).
"""
from __future__ import annotations

import torch
from torch import Tensor

from kgrec.models.graph import RelationalGraph, sparse_op

PATH_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)


class PathScorer:
    """Walk-count scores over ``graph`` (every edge, both directions as the graph holds them).

    Args:
        graph: the graph to walk.
        hops: walk length (odd, so that user -> ... -> item).
        alpha: degree exponent of the walk's source end (see the module docstring).
    """

    def __init__(self, graph: RelationalGraph, hops: int = 3, alpha: float = 0.75):
        if hops < 1 or hops % 2 == 0:
            raise ValueError(f"hops must be odd (user -> item takes 1, 3, 5 ... steps), got {hops}")
        self.graph, self.hops, self.alpha = graph, hops, alpha
        src, dst = graph.edge_index
        deg = torch.bincount(src, minlength=graph.num_nodes).float().clamp(min=1)
        self._deg = deg
        values = deg[src].pow(-alpha) * deg[dst].pow(alpha - 1)
        self._walk = sparse_op(dst, src, values, (graph.num_nodes, graph.num_nodes)).a  # row v sums over u -> v

    @torch.no_grad()
    def propagate(self, start: Tensor, hops: int | None = None) -> Tensor:
        """``[N, B]`` walk weights after ``hops`` steps from ``start`` ``[N, B]`` (one column per walk)."""
        x = start.to(self.graph.device)
        for _ in range(self.hops if hops is None else hops):
            x = self._walk @ x
        return x

    def scores(self, users: Tensor, items: Tensor) -> Tensor:
        """``[B, M]`` path scores of ``users`` ``[B]`` against ``items`` ``[M]`` (type-local indices)."""
        g = self.graph
        start = torch.zeros(g.num_nodes, len(users), device=g.device)
        start[users.to(g.device) + g.offsets["user"], torch.arange(len(users), device=g.device)] = 1.0
        return self.propagate(start)[items.to(g.device) + g.offsets["item"]].T

    def history_scores(self, items: Tensor, candidates: Tensor) -> Tensor:
        """``[1, M]`` path scores of a new user who interacted with ``items`` (distinct), against
        ``candidates``: the first step of a user with those edges, then the graph's walks (the same
        as :meth:`scores` for a user of the graph whose edges are ``items``)."""
        g = self.graph
        rows = items.to(g.device) + g.offsets["item"]
        start = torch.zeros(g.num_nodes, 1, device=g.device)
        start[rows, 0] = float(max(len(items), 1)) ** -self.alpha * self._deg[rows].pow(self.alpha - 1)
        return self.propagate(start, self.hops - 1)[candidates.to(g.device) + g.offsets["item"]].T


def standardise(scores: Tensor) -> Tensor:
    """Each row shifted to mean 0 and scaled to standard deviation 1 (a constant row becomes 0)."""
    centred = scores - scores.mean(1, keepdim=True)
    std = centred.pow(2).mean(1, keepdim=True).sqrt()
    return centred / torch.where(std > 0, std, torch.ones_like(std))


def blend(embedding_scores: Tensor, path_scores: Tensor | None, weight: float) -> Tensor:
    """``z(embedding_scores) + weight · z(path_scores)`` row by row; the embedding scores
    unchanged when ``weight`` is 0 or there are no path scores."""
    if path_scores is None or weight == 0:
        return embedding_scores
    return standardise(embedding_scores) + weight * standardise(path_scores.to(embedding_scores.device))
