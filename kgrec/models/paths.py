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

The walk is computed as ``first · op``: a user's first steps ``[F]`` (weights on every node a user
can step to) times :class:`ItemWalks`, the sparse ``[F, M]`` weight of the remaining ``hops - 1``
steps into each item, built once per walk by sparse products in chunks and saved with a run. The
same numbers as propagating ``[N, B]`` over the whole graph, with nothing the size of the node
count per user: memory is ``eval.memory_mb`` plus the operator, whose size is the number of
(node, item) pairs a walk joins (a few million at three hops on the shipped graphs; most of the
catalogue at five, which is why three is the default).

The model's final score is ``z(embedding score) + w · z(path score)``, each standardised
over the candidate items of a user, with ``w`` chosen on validation among
:data:`PATH_WEIGHTS` (``0`` keeps the embeddings alone; ``16`` all but the filter alone, the
embeddings breaking its ties).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor

from kgrec.models.graph import RelationalGraph, sparse_op, spmm

PATH_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 16.0)
#: the walk exponents a run chooses among: RP3beta's (alpha, each beta of FILTER_BETAS), and ``None`` for
#: the default walk at the config's ``path_alpha``
FILTER_ALPHAS = (0.25, 0.5, 1.0)
FILTER_BETAS = (0.0, 0.25, 0.5)


@dataclass
class ItemWalks:
    """The walks' last ``hops - 1`` steps as one sparse item–item operator, so that a user's path
    scores are their first steps times it: ``scores[b, m] = sum_f first[b, f] · op[f, m]``.

    Attributes:
        rows: ``[F]`` flat node indices a walk's first step can reach (every item, and whatever else
            a user has an edge to).
        items: ``[M]`` the items scored (type-local indices).
        op: sparse COO ``[F, M]``, coalesced: ``op[f, m] = (W^(hops-1))[items[m], rows[f]]``, the weight
            of the walks from ``rows[f]`` to ``items[m]``; no entry dropped. (COO because torch's CPU product
            of two CSR matrices keeps about 50 KiB to 0.5 MiB per call, measured on torch 2.13; the COO
            product keeps nothing.)
    """

    rows: Tensor
    items: Tensor
    op: Tensor

    @property
    def nbytes(self) -> int:
        """Bytes the operator holds (indices and values)."""
        return sum(t.numel() * t.element_size() for t in (self.rows, self.items, self.op.indices(), self.op.values()))


#: bytes one stored entry of a sparse product costs while it is built: row, column and value (20) in the
#: product, the same again while it is coalesced, with room for the sort's permutation
BYTES_PER_ENTRY = 48
#: bytes a user's score entry costs in :meth:`PathScorer.scores` besides the dense result: torch's COO
#: product (measured about 20 per entry of its result on CPU) and the scatter into the result (16)
PRODUCT_BYTES_PER_ENTRY = 40


class PathScorer:
    """Walk-count scores over ``graph`` (every edge, both directions as the graph holds them).

    The walk's last ``hops - 1`` steps are computed once per set of items scored, as an
    :class:`ItemWalks` operator (sparse products over the graph, in chunks of first-step nodes that
    fit in ``memory_mb``); a batch of ``B`` users then costs one sparse product, their first steps
    ``[B, F]`` times the operator, into ``[B, M]`` scores, whatever the number of nodes.

    Args:
        graph: the graph to walk.
        hops: walk length (odd, so that user -> ... -> item).
        alpha: degree exponent of the walk's source end (see the module docstring).
        beta: ``None`` for the default walk; else RP3beta's popularity exponent of the item reached
            (and every step weighted ``deg(u)^-alpha`` alone).
        memory_mb: what building the operator may hold beyond the operator itself.
    """

    def __init__(self, graph: RelationalGraph, hops: int = 3, alpha: float = 0.75, beta: float | None = None,
                 memory_mb: int = 256):
        if hops < 1 or hops % 2 == 0:
            raise ValueError(f"hops must be odd (user -> item takes 1, 3, 5 ... steps), got {hops}")
        self.graph, self.hops, self.alpha, self.beta, self.memory_mb = graph, hops, alpha, beta, memory_mb
        src, dst = graph.edge_index
        deg = torch.bincount(src, minlength=graph.num_nodes).float().clamp(min=1)
        self._deg = deg
        into = 0.0 if beta is not None else alpha - 1
        self._edges = (src, dst, deg[src].pow(-alpha) * deg[dst].pow(into))
        self._walk = sparse_op(dst, src, self._edges[2], (graph.num_nodes, graph.num_nodes))  # row v: u -> v
        self._rows = self._first_rows()
        self._operators: dict[bytes, ItemWalks] = {}

    @property
    def walk_key(self) -> dict:
        """What the operator depends on besides the graph and the items: the walk, not ``beta``'s value."""
        return {"hops": self.hops, "alpha": self.alpha, "rp3": self.beta is not None}

    def _first_rows(self) -> Tensor:
        """``[F]`` flat indices of the nodes a first step can reach: every item, and every other node
        a user has an edge to."""
        g = self.graph
        src, dst = g.edge_index
        users = (src >= g.offsets["user"]) & (src < g.offsets["user"] + g.sizes["user"])
        items = torch.arange(g.sizes.get("item", 0), device=g.device) + g.offsets.get("item", 0)
        return torch.unique(torch.cat([items, dst[users]]))

    def item_walks(self, items: Tensor) -> ItemWalks:
        """The :class:`ItemWalks` operator of ``items`` ``[M]`` (type-local), computed once and cached."""
        items = items.to(self.graph.device)
        key = items.cpu().numpy().tobytes()
        if key not in self._operators:
            self._operators[key] = ItemWalks(self._rows, items,
                                             self._operator(items + self.graph.offsets["item"], self._rows))
        return self._operators[key]

    def attach(self, walks: ItemWalks) -> None:
        """Use a saved operator (:func:`item_walks_from_state`) for its items instead of computing it."""
        self._operators[walks.items.cpu().numpy().tobytes()] = walks

    def _operator(self, targets: Tensor, rows: Tensor) -> Tensor:
        """Coalesced COO ``[F, M]``: the walks of ``hops - 1`` steps from ``rows`` to ``targets`` (flat indices), by
        sparse products forwards from the rows, a chunk of rows at a time, each chunk's widest product
        within ``memory_mb``."""
        g, dev = self.graph, self.graph.device
        n, m = g.num_nodes, len(targets)
        col = torch.full((n,), -1, dtype=torch.long, device=dev)
        col[targets] = torch.arange(m, device=dev)
        if self.hops == 1:  # no step: each first-step node that is a target reaches itself
            hit = col[rows] >= 0
            return _coo(torch.arange(len(rows), device=dev)[hit], col[rows][hit],
                        torch.ones(int(hit.sum()), device=dev), (len(rows), m))
        src, dst, values = self._edges
        out = self._walk.a_t  # row u: the steps out of u
        steps = out.to_sparse_coo()
        into = col[dst] >= 0
        last = _coo(src[into], col[dst[into]], values[into], (n, m))  # the last step, into the targets
        indices, values = [], []
        for chunk in _chunks(self._row_sizes(rows), self.memory_mb * 2**20 // BYTES_PER_ENTRY):
            x = _csr_rows(out, rows[chunk]).to_sparse_coo()
            for _ in range(self.hops - 3):
                x = torch.sparse.mm(x, steps)
            part = torch.sparse.mm(x, last).coalesce()
            at = part.indices()
            at[0] += chunk.start  # the chunk's rows in place (the part is dropped), still in order
            indices.append(at)
            values.append(part.values())
        if not values:
            return _coo(torch.zeros(0, dtype=torch.long, device=dev), torch.zeros(0, dtype=torch.long, device=dev),
                        torch.zeros(0, device=dev), (len(rows), m))
        return torch.sparse_coo_tensor(torch.cat(indices, 1), torch.cat(values), (len(rows), m), is_coalesced=True,
                                       check_invariants=False)

    def _row_sizes(self, rows: Tensor) -> Tensor:
        """``[F]`` a bound on the entries a row holds at the widest step of :meth:`_operator`: row u of
        ``(W^T)^s`` has at most ``sum_v nnz(row v of (W^T)^(s-1))`` over u's out-edges ``u -> v``."""
        g, out = self.graph, self._walk.a_t
        pattern = torch.sparse_csr_tensor(out.crow_indices(), out.col_indices(), torch.ones_like(out.values()),
                                          out.shape, check_invariants=False)  # float: counts past 2^24 round, a bound all the same
        size = torch.ones(g.num_nodes, 1, device=g.device)
        widest = size
        for _ in range(self.hops - 1):
            step = spmm(pattern, size).clamp(max=g.num_nodes)
            widest, size = torch.maximum(widest, size + step), step  # a step's input and output live together
        return widest[rows, 0]

    @torch.no_grad()
    def scores(self, users: Tensor, items: Tensor) -> Tensor:
        """``[B, M]`` path scores of ``users`` ``[B]`` against ``items`` ``[M]`` (type-local indices)."""
        g = self.graph
        walks = self.item_walks(items)
        first = _csr_rows(self._walk.a_t, users.to(g.device) + g.offsets["user"])  # row b: user b's steps
        first = _coo(torch.repeat_interleave(torch.arange(len(users), device=g.device), first.crow_indices().diff()),
                     torch.searchsorted(walks.rows, first.col_indices()), first.values(), (len(users), len(walks.rows)))
        return self._popularity(_dense(torch.sparse.mm(first, walks.op)), items)

    def batch_bytes(self, items: Tensor) -> int:
        """Bytes per user that :meth:`scores` holds besides its ``[B, M]`` result, at most: the sparse
        product's (at most ``M`` entries a user), and a second ``[B, M]`` when the popularity exponent
        scales the result."""
        return PRODUCT_BYTES_PER_ENTRY * len(items) + (4 * len(items) if self.beta else 0)

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

    @torch.no_grad()
    def history_scores(self, items: Tensor, candidates: Tensor) -> Tensor:
        """``[1, M]`` path scores of a new user who interacted with ``items`` (distinct), against
        ``candidates``: the first step of a user with those edges, then the graph's walks (the same
        as :meth:`scores` for a user of the graph whose edges are ``items``)."""
        g = self.graph
        walks = self.item_walks(candidates)
        rows = torch.sort(items.to(g.device) + g.offsets["item"]).values
        into = 0.0 if self.beta is not None else self.alpha - 1
        steps = float(max(len(items), 1)) ** -self.alpha * self._deg[rows].pow(into)
        first = _coo(torch.zeros(len(rows), dtype=torch.long, device=g.device), torch.searchsorted(walks.rows, rows),
                     steps, (1, len(walks.rows)))
        return self._popularity(_dense(torch.sparse.mm(first, walks.op)), candidates)


def item_walks_state(scorer: PathScorer, items: Tensor, path_graph: str) -> dict:
    """What a run saves of its walks (``paths.pt``): ``scorer``'s operator of ``items``, the walk it
    belongs to and the graph it crosses, as plain tensors."""
    walks = scorer.item_walks(items)
    return {**scorer.walk_key, "path_graph": path_graph, "rows": walks.rows.cpu(), "items": walks.items.cpu(),
            "indices": walks.op.indices().cpu(), "values": walks.op.values().cpu()}


def item_walks_from_state(state: dict, scorer: PathScorer, path_graph: str) -> ItemWalks:
    """The operator of :func:`item_walks_state`, on ``scorer``'s device, checked against ``scorer``'s walk.

    Raises:
        ValueError: the state belongs to another walk, graph or node set (the message says which).
    """
    want = {**scorer.walk_key, "path_graph": path_graph}
    saved = {k: state.get(k) for k in want}
    if saved != want:
        raise ValueError(f"saved for the walk {saved}, the run's is {want}")
    dev = scorer.graph.device
    rows, items = state["rows"].to(dev), state["items"].to(dev)
    if not torch.equal(rows, scorer._rows):
        raise ValueError(f"saved for {len(rows):,} first-step nodes, the graph has {len(scorer._rows):,}")
    indices, values = state["indices"].to(dev), state["values"].to(dev)
    if indices.dim() != 2 or indices.shape != (2, len(values)) or (len(values) and (
            int(indices.min()) < 0 or int(indices[0].max()) >= len(rows) or int(indices[1].max()) >= len(items))):
        raise ValueError("the operator's indices do not fit its shape")
    return ItemWalks(rows, items, torch.sparse_coo_tensor(indices, values, (len(rows), len(items)),
                                                              check_invariants=True).coalesce())


def _chunks(sizes: Tensor, budget: int) -> list[slice]:
    """Consecutive slices of ``sizes`` whose sums stay within ``budget`` (a single larger one alone)."""
    out, start, total = [], 0, 0.0
    for i, s in enumerate(sizes.tolist()):
        if total + s > budget and i > start:
            out.append(slice(start, i))
            start, total = i, 0.0
        total += s
    if start < len(sizes):
        out.append(slice(start, len(sizes)))
    return out


def _dense(a: Tensor) -> Tensor:
    """The coalesced COO ``a`` as a dense tensor, holding 16 bytes per entry on the way (torch's
    ``to_dense`` holds more)."""
    n_rows, n_cols = a.shape
    out = torch.zeros(n_rows * n_cols, dtype=a.values().dtype, device=a.device)
    rows, cols = a.indices()
    out[rows * n_cols + cols] = a.values()
    return out.view(n_rows, n_cols)


def _csr_rows(a: Tensor, rows: Tensor) -> Tensor:
    """CSR ``[len(rows), K]``: the rows ``rows`` of the CSR ``a`` (torch has no index_select for CSR)."""
    crow, col, val = a.crow_indices(), a.col_indices(), a.values()
    lo, counts = crow[rows], crow[rows + 1] - crow[rows]
    idx = torch.arange(int(counts.sum()), device=a.device) - torch.repeat_interleave(counts.cumsum(0) - counts, counts) \
        + torch.repeat_interleave(lo, counts)
    indptr = torch.cat([torch.zeros(1, dtype=torch.long, device=a.device), counts.cumsum(0)])
    return torch.sparse_csr_tensor(indptr, col[idx], val[idx], (len(rows), a.shape[1]), check_invariants=False)


def _coo(rows: Tensor, cols: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
    """Coalesced COO with ``A[rows[e], cols[e]] += values[e]``."""
    return torch.sparse_coo_tensor(torch.stack([rows, cols]), values, shape, check_invariants=False).coalesce()


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
