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

With ``beta`` given the walk is RP3beta's instead (Paudel et al. 2016; the tuned item-kNN of
Dacrema et al. 2019): each step ``u -> v`` weighted ``deg(u)^-alpha`` (the transition
probability raised to ``alpha``) and the item reached divided by ``deg(i)^beta``. For three
hops the default above is RP3beta at ``(alpha, beta) = (1, 1 - alpha)`` up to a factor per user.
A run chooses its filter among :data:`FILTERS` by the filter's own validation NDCG.

The model's final score is ``z(embedding score) + w · z(path score)``, each standardised
over the candidate items of a user, with ``w`` chosen on validation among
:data:`PATH_WEIGHTS` (``0`` keeps the embeddings alone; ``16`` all but the filter alone, the
embeddings breaking its ties).
"""
from __future__ import annotations

import copy

import torch
from torch import Tensor

from kgrec.models.graph import RelationalGraph, sparse_op, spmm

PATH_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 16.0)
#: the walk exponents a run chooses among: RP3beta's (alpha, each beta of FILTER_BETAS), and ``None`` for
#: the default walk at the config's ``path_alpha``
FILTER_ALPHAS = (0.25, 0.5, 1.0)
FILTER_BETAS = (0.0, 0.25, 0.5)


class PathScorer:
    """Walk-count scores over ``graph`` (every edge, both directions as the graph holds them).

    Args:
        graph: the graph to walk.
        hops: walk length (odd, so that user -> ... -> item).
        alpha: degree exponent of the walk's source end (see the module docstring).
        beta: ``None`` for the default walk; else RP3beta's popularity exponent of the item reached
            (and every step weighted ``deg(u)^-alpha`` alone).
    """

    def __init__(self, graph: RelationalGraph, hops: int = 3, alpha: float = 0.75, beta: float | None = None):
        if hops < 1 or hops % 2 == 0:
            raise ValueError(f"hops must be odd (user -> item takes 1, 3, 5 ... steps), got {hops}")
        self.graph, self.hops, self.alpha, self.beta = graph, hops, alpha, beta
        src, dst = graph.edge_index
        deg = torch.bincount(src, minlength=graph.num_nodes).float().clamp(min=1)
        self._deg = deg
        into = 0.0 if beta is not None else alpha - 1
        self._edges = (src, dst, deg[src].pow(-alpha) * deg[dst].pow(into))
        self._walk = sparse_op(dst, src, self._edges[2], (graph.num_nodes, graph.num_nodes))  # row v: u -> v
        self._towards: dict[bytes, tuple] = {}

    def _last_steps(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        """The walk's last two steps, restricted to what reaches ``rows`` (flat node indices): ``[K, N]``
        into the K nodes with an edge to ``rows``, then ``[M, K]`` from them into ``rows``. Cached."""
        key = rows.cpu().numpy().tobytes()
        if key not in self._towards:
            src, dst, values = self._edges
            n = self.graph.num_nodes
            pos = torch.full((n,), -1, dtype=torch.long, device=rows.device)
            pos[rows] = torch.arange(len(rows), device=rows.device)
            into = pos[dst] >= 0
            mid = torch.unique(src[into])
            mpos = torch.full((n,), -1, dtype=torch.long, device=rows.device)
            mpos[mid] = torch.arange(len(mid), device=rows.device)
            before = mpos[dst] >= 0
            self._towards[key] = (sparse_op(mpos[dst[before]], src[before], values[before], (len(mid), n)).a,
                                  sparse_op(pos[dst[into]], mpos[src[into]], values[into], (len(rows), len(mid))).a)
        return self._towards[key]

    @torch.no_grad()
    def _walks(self, first: Tensor, rows: Tensor) -> Tensor:
        """``[M, B]``: the walks after their first step ``first`` ``[N, B]``, finished at ``rows``."""
        x = first
        if self.hops == 1:
            return x[rows]
        for _ in range(self.hops - 3):
            x = spmm(self._walk.a, x)
        before, last = self._last_steps(rows)
        return spmm(last, spmm(before, x))

    @torch.no_grad()
    def scores(self, users: Tensor, items: Tensor) -> Tensor:
        """``[B, M]`` path scores of ``users`` ``[B]`` against ``items`` ``[M]`` (type-local indices)."""
        g = self.graph
        out = self._walk.a_t  # row u: the steps out of u
        start = users.to(g.device) + g.offsets["user"]
        crow, col, val = out.crow_indices(), out.col_indices(), out.values()
        lo, counts = crow[start], crow[start + 1] - crow[start]
        column = torch.repeat_interleave(torch.arange(len(users), device=g.device), counts)
        idx = torch.arange(int(counts.sum()), device=g.device) - torch.repeat_interleave(counts.cumsum(0) - counts, counts) \
            + torch.repeat_interleave(lo, counts)
        first = torch.zeros(g.num_nodes, len(users), device=g.device)
        first[col[idx], column] = val[idx]
        return self._popularity(self._walks(first, items.to(g.device) + g.offsets["item"]).T, items)

    def with_beta(self, beta: float) -> "PathScorer":
        """The same RP3beta walk with another popularity exponent, sharing this scorer's operators and
        cache (the exponent only scales the items reached)."""
        if self.beta is None:
            raise ValueError("with_beta applies to an RP3beta walk (beta given), not the default walk")
        other = copy.copy(self)
        other.beta = beta
        return other

    def popularity_penalty(self, items: Tensor, beta: float) -> Tensor:
        """``[M]``: ``deg(i)^-beta`` of ``items`` (type-local indices)."""
        return self._deg[items.to(self.graph.device) + self.graph.offsets["item"]].pow(-beta)

    def _popularity(self, scores: Tensor, items: Tensor) -> Tensor:
        return scores if not self.beta else scores * self.popularity_penalty(items, self.beta)

    def history_scores(self, items: Tensor, candidates: Tensor) -> Tensor:
        """``[1, M]`` path scores of a new user who interacted with ``items`` (distinct), against
        ``candidates``: the first step of a user with those edges, then the graph's walks (the same
        as :meth:`scores` for a user of the graph whose edges are ``items``)."""
        g = self.graph
        rows = items.to(g.device) + g.offsets["item"]
        first = torch.zeros(g.num_nodes, 1, device=g.device)
        into = 0.0 if self.beta is not None else self.alpha - 1
        first[rows, 0] = float(max(len(items), 1)) ** -self.alpha * self._deg[rows].pow(into)
        return self._popularity(self._walks(first, candidates.to(g.device) + g.offsets["item"]).T, candidates)


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
    return blends(embedding_scores, path_scores, (weight,))[0]


def blends(embedding_scores: Tensor, path_scores: Tensor, weights: tuple[float, ...]) -> list[Tensor]:
    """:func:`blend` at each of ``weights``, standardising each part once."""
    if all(w == 0 for w in weights):
        return [embedding_scores for _ in weights]
    z_embedding, z_paths = standardise(embedding_scores), standardise(path_scores.to(embedding_scores.device))
    return [embedding_scores if w == 0 else z_embedding + w * z_paths for w in weights]
