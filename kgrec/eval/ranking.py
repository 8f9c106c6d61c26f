"""Full-ranking evaluation: every user with held-out items is ranked against all
items of the domain, with their own training (and, at test time, validation)
items filtered out, as in PyKEEN's filtered setting.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from kgrec.eval.metrics import hit_matrix, ranking_metrics, top_k
from kgrec.graph.artifact import TARGET, GraphArtifact


@dataclass
class RankingTask:
    """Who is ranked against what.

    Attributes:
        users: ``[U]`` user indices (``user`` node type) with at least one relevant item.
        items: ``[M]`` candidate item indices (``item`` node type).
        relevant: CSR ``(indptr [U+1], positions into items)``: the held-out items.
        exclude: CSR, same layout: the items filtered out of each user's ranking.
        split: the held-out split's name.
    """

    users: Tensor
    items: Tensor
    relevant: tuple[Tensor, Tensor]
    exclude: tuple[Tensor, Tensor]
    split: str = "valid"

    def subset(self, mask: Tensor) -> "RankingTask":
        """The same task restricted to the users where ``mask`` ``[U]`` is true."""
        return RankingTask(self.users[mask], self.items, _rows(self.relevant, mask), _rows(self.exclude, mask), self.split)


def _group(users: Tensor, positions: Tensor, order_users: Tensor) -> tuple[Tensor, Tensor]:
    """CSR of ``positions`` grouped by ``users``, one row per entry of ``order_users``."""
    row_of = {int(u): r for r, u in enumerate(order_users.tolist())}
    rows = torch.tensor([row_of.get(int(u), -1) for u in users.tolist()], dtype=torch.long)
    keep = rows >= 0
    rows, positions = rows[keep], positions[keep]
    order = torch.argsort(rows * (positions.max().item() + 1 if len(positions) else 1) + positions)
    rows, positions = rows[order], positions[order]
    counts = torch.bincount(rows, minlength=len(order_users))
    return torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)]), positions


def _rows(csr: tuple[Tensor, Tensor], mask: Tensor) -> tuple[Tensor, Tensor]:
    indptr, items = csr
    counts = (indptr[1:] - indptr[:-1])
    owner = torch.repeat_interleave(torch.arange(len(counts)), counts)
    keep = mask[owner]
    new_counts = counts[mask]
    return torch.cat([torch.zeros(1, dtype=torch.long), new_counts.cumsum(0)]), items[keep]


def ranking_task(artifact: GraphArtifact, split: str = "valid", domain: str = TARGET,
                 exclude: tuple[str, ...] = ("train",)) -> RankingTask:
    """The ranking task of one held-out split of ``domain``: users with held-out
    items, ranked over all the domain's items, with the ``exclude`` splits filtered, and the
    items a user already has under another listing (the graph's duplicates) filtered too."""
    items = artifact.items_of(domain)
    pos_of = torch.full((int(artifact.data["item"].num_nodes),), -1, dtype=torch.long)
    pos_of[items] = torch.arange(len(items))
    held = artifact.split(split, domain)
    held = torch.unique(held, dim=1)
    users = torch.unique(held[0])
    relevant = _group(held[0], pos_of[held[1]], users)
    seen = [artifact.split(s, domain) for s in exclude] + [artifact.duplicates(domain)]
    seen = torch.cat(seen, 1) if seen else torch.empty(2, 0, dtype=torch.long)
    return RankingTask(users, items, relevant, _group(seen[0], pos_of[seen[1]], users), split)


def sample_users(task: RankingTask, n: int, seed: int = 0) -> RankingTask:
    """``task`` restricted to ``n`` of its users drawn without replacement by ``seed`` (kept in their
    order); the whole task when it has at most ``n`` users or ``n`` is 0. Early stopping on a fixed
    number of users keeps a validation pass from growing with the square of the catalogue."""
    if n <= 0 or len(task.users) <= n:
        return task
    pick = torch.randperm(len(task.users), generator=torch.Generator().manual_seed(seed))[:n]
    mask = torch.zeros(len(task.users), dtype=torch.bool)
    mask[pick] = True
    return task.subset(mask)


def rank(score_fn: Callable[[Tensor], Tensor], task: RankingTask, k: int, memory_mb: int = 256,
         device: torch.device | str = "cpu", user_bytes: int = 0) -> Tensor:
    """``[U, k]`` positions into ``task.items`` of each user's top k, excluded items filtered.

    ``score_fn(users [B])`` returns ``[B, M]`` scores; users go in batches whose score matrices,
    and ``user_bytes`` per user of whatever else ``score_fn`` holds, fit in ``memory_mb``.
    """
    return rank_each(lambda users: [score_fn(users)], task, k, memory_mb, device, user_bytes=user_bytes)[0]


def users_per_batch(memory_mb: int, items: int, matrices: int = 3, user_bytes: int = 0) -> int:
    """Users per batch such that ``matrices`` float ``[B, items]`` matrices and ``user_bytes`` per
    user fit in ``memory_mb`` (at least 1)."""
    return max(1, (memory_mb * 2**20) // (4 * max(items, 1) * matrices + user_bytes))


def rank_each(score_fn: Callable[[Tensor], list[Tensor]], task: RankingTask, k: int, memory_mb: int = 256,
              device: torch.device | str = "cpu", matrices: int = 3, user_bytes: int = 0) -> list[Tensor]:
    """:func:`rank` for several scorings at once: ``score_fn(users [B])`` returns a list of ``[B, M]``
    score matrices (say, one per blend weight of shared parts computed once per batch); one
    ``[U, k]`` ranking per scoring. ``matrices``: how many ``[B, M]`` matrices a batch holds at
    once, and ``user_bytes``: what else ``score_fn`` holds per user (a path scorer's first steps,
    :meth:`~kgrec.models.paths.PathScorer.batch_bytes`), for the batch size."""
    batch = users_per_batch(memory_mb, len(task.items), matrices, user_bytes)
    ex_ptr, ex_items = task.exclude
    out: list[list[Tensor]] = []
    for start in range(0, len(task.users), batch):
        end = min(start + batch, len(task.users))
        lo, hi = int(ex_ptr[start]), int(ex_ptr[end])
        rows = torch.repeat_interleave(torch.arange(end - start), ex_ptr[start + 1:end + 1] - ex_ptr[start:end])
        tops = []
        for scores in score_fn(task.users[start:end].to(device)):
            scores = scores.float()
            scores[rows.to(scores.device), ex_items[lo:hi].to(scores.device)] = float("-inf")
            tops.append(top_k(scores, k).cpu())
        out.append(tops)
    if not out:
        return [torch.empty(0, k, dtype=torch.long) for _ in score_fn(task.users[:0].to(device))]
    return [torch.cat(col) for col in zip(*out)]


def evaluate(score_fn: Callable[[Tensor], Tensor], task: RankingTask, ks: tuple[int, ...] = (10, 20),
             memory_mb: int = 256, device: torch.device | str = "cpu", user_bytes: int = 0) -> dict[str, Tensor]:
    """Per-user metrics ``{"ndcg@10": [U], ...}`` (see :mod:`kgrec.eval.metrics`) of ``task``; ``user_bytes``
    as in :func:`rank`."""
    return metrics_of_top(rank(score_fn, task, max(ks), memory_mb, device, user_bytes), task, ks)


def metrics_of_top(top: Tensor, task: RankingTask, ks: tuple[int, ...]) -> dict[str, Tensor]:
    """Per-user metrics of ranked lists ``top`` ``[U, K]`` (positions into ``task.items``)."""
    indptr, _ = task.relevant
    hits = hit_matrix(top, task.relevant, len(task.items))
    return ranking_metrics(hits, indptr[1:] - indptr[:-1], ks)


def mean_metrics(per_user: dict[str, Tensor]) -> dict[str, float]:
    """The mean over users of each metric."""
    return {k: float(v.mean()) if len(v) else float("nan") for k, v in per_user.items()}
