"""Top-K ranking metrics from ranked lists.

Conventions (also in docs/guide/evaluation.md):
- ``hits[u, j]`` is true when the j-th ranked item of user u is relevant.
- Recall@K divides by the user's number of relevant items ``n_u``; NDCG@K's
  ideal DCG places ``min(n_u, K)`` relevant items first; MAP@K divides by
  ``min(n_u, K)``; HR@K is 1 if any hit; MRR@K is 1/rank of the first hit, 0 if none.
- Users without relevant items are not scored: the caller leaves them out.
- Ranking ties are broken by the lower item index (see :func:`top_k`), so
  lists and metrics are deterministic.
"""
from __future__ import annotations

import torch
from torch import Tensor

METRICS = ("recall", "ndcg", "hr", "precision", "mrr", "map")


def top_k(scores: Tensor, k: int) -> Tensor:
    """``[B, k]`` column indices of the k best scores per row, best first; equal
    scores are ordered by the lower index. ``-inf`` marks excluded items."""
    k = min(k, scores.shape[1])
    vals, idx = scores.topk(min(k + 1, scores.shape[1]), dim=1)
    # a tie straddles the cut when the (k+1)-th best equals the k-th (one more column, not a pass over scores)
    straddles = vals.shape[1] > k and bool((vals[:, k] == vals[:, k - 1]).any())
    vals, idx = vals[:, :k], idx[:, :k]
    thr = vals[:, -1:]
    if not straddles:
        # no tie straddles the cut: the top-k set is exact, only its order needs the tie rule
        idx = idx.sort(dim=1).values
    else:
        # everything above the threshold is in the top k already; the rest of the k are the
        # tied items of the lowest indices: a top-k of the reversed index over the tied ones
        above = vals > thr
        exact = torch.float32 if scores.shape[1] <= 2**24 else torch.float64  # every index exactly
        reverse = torch.arange(scores.shape[1], 0, -1, device=scores.device, dtype=exact)
        first_tied = torch.where(scores == thr, reverse, 0.0).topk(k, dim=1).indices
        keep = torch.cat([above, torch.arange(k, device=scores.device) < k - above.sum(1, keepdim=True)], 1)
        idx = torch.cat([idx, first_tied], 1)[keep].view(scores.shape[0], k).sort(dim=1).values
    order = scores.gather(1, idx).sort(dim=1, descending=True, stable=True).indices
    return idx.gather(1, order)


def hit_matrix(top: Tensor, relevant: list[Tensor] | tuple[Tensor, Tensor], num_items: int) -> Tensor:
    """``[U, K]`` bool: is ``top[u, j]`` among user u's relevant items.

    ``relevant`` is a CSR pair ``(indptr [U+1], items [nnz])`` or a list of U tensors.
    """
    indptr, items = _csr(relevant)
    counts = indptr[1:] - indptr[:-1]
    rows = torch.repeat_interleave(torch.arange(len(counts), device=items.device), counts)
    keys = rows * num_items + items
    cand = torch.arange(top.shape[0], device=top.device).unsqueeze(1) * num_items + top
    return torch.isin(cand, keys.to(top.device))


def ranking_metrics(hits: Tensor, num_relevant: Tensor, ks: list[int] | tuple[int, ...]) -> dict[str, Tensor]:
    """Per-user metrics ``{"ndcg@10": [U], ...}`` from ``hits`` ``[U, K_max]`` and
    ``num_relevant`` ``[U]`` (all > 0). A list shorter than K (fewer candidates) counts as misses."""
    hits = hits.float()
    n = num_relevant.to(hits.device).float()
    if bool((n <= 0).any()):
        raise ValueError("every scored user needs at least one relevant item")
    # a list shorter than K (fewer candidates) counts its missing places as misses; nothing of
    # length K is ever allocated, so a huge K costs what the candidate list costs
    width = hits.shape[1]
    longest = min(max(ks), max(width, int(n.max().item()) if len(n) else 0, 1))
    pos = torch.arange(1, longest + 1, device=hits.device, dtype=torch.float32)
    discount = 1.0 / torch.log2(pos + 1)
    ideal_gain = torch.cumsum(discount, 0)
    out: dict[str, Tensor] = {}
    for k in ks:
        kk = min(k, width)
        h = hits[:, :kk]
        nh = h.sum(1)
        ideal_n = torch.clamp(n, max=float(k))
        idcg = ideal_gain[(ideal_n - 1).long()]
        first = torch.where(h.any(1), h.argmax(1).float() + 1, torch.full_like(nh, float("inf")))
        prec_at = torch.cumsum(h, 1) / pos[:kk]
        out[f"recall@{k}"] = nh / n
        out[f"ndcg@{k}"] = (h * discount[:kk]).sum(1) / idcg
        out[f"hr@{k}"] = (nh > 0).float()
        out[f"precision@{k}"] = nh / k
        out[f"mrr@{k}"] = 1.0 / first
        out[f"map@{k}"] = (prec_at * h).sum(1) / ideal_n
    return out


def _csr(relevant: list[Tensor] | tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    if isinstance(relevant, tuple):
        return relevant
    counts = torch.tensor([len(r) for r in relevant], dtype=torch.long)
    indptr = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
    items = torch.cat([torch.as_tensor(r, dtype=torch.long) for r in relevant]) if relevant else torch.empty(0, dtype=torch.long)
    return indptr, items
