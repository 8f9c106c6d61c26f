"""Held-out pairs by item kind: warm items (with training interactions) and cold (new) items.

For the item cold-start protocol (``[cold_start] items``) a run is judged three ways on the same
ranking of the same users, each a :class:`~kgrec.eval.ranking.RankingTask`:

* ``warm``: the held-out pairs on warm items, ranked among all target items;
* ``cold``: the held-out pairs on cold items, ranked among all target items (does a new item
  make it into a list that warm items compete for?);
* ``cold_among_cold``: the same pairs ranked among the cold items only (a "new arrivals" shelf:
  is the *right* new item on top, whatever the warm ones score?).

Each task keeps only the users with at least one pair of its kind, and filters the user's held-out
items of the other kind out of the ranking, as the filtered setting filters any other true answer:
a warm held-out item then neither counts as a miss for the cold task nor pushes a cold item down.
Chance NDCG differs between the two cold rankings (about ``|relevant| / M`` scale), so compare
models within a column, never across.

Candidates are listed in a seeded random order. Ranking breaks equal scores by the lower
position (:func:`~kgrec.eval.metrics.top_k`), and item indices follow the order of first
appearance in the interaction files, held-out rows included, so an early index tends to be a
popular item: a model that gives every new item the same score (no knowledge of them: a zero
vector, no walk) would otherwise be ranked by that order, and look better than chance.
"""
from __future__ import annotations

import torch
from torch import Tensor

from kgrec.eval.ranking import RankingTask
from kgrec.graph.artifact import GraphArtifact

ITEM_GROUPS = ("warm", "cold", "cold_among_cold")


def _pairs(csr: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    indptr, pos = csr
    return torch.repeat_interleave(torch.arange(len(indptr) - 1), indptr[1:] - indptr[:-1]), pos


def _csr(rows: Tensor, pos: Tensor, n_rows: int) -> tuple[Tensor, Tensor]:
    order = torch.argsort(rows * (int(pos.max()) + 1 if len(pos) else 1) + pos)
    rows, pos = rows[order], pos[order]
    counts = torch.bincount(rows, minlength=n_rows)
    return torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)]), pos


def _restrict(task: RankingTask, keep_item: Tensor, items: Tensor, new_pos: Tensor) -> RankingTask:
    """``task`` with relevant pairs where ``keep_item[position]``; the other relevant pairs are filtered;
    candidates become ``items`` (``new_pos[old position]`` their positions, -1 for dropped)."""
    r_rows, r_pos = _pairs(task.relevant)
    e_rows, e_pos = _pairs(task.exclude)
    mine = keep_item[r_pos]
    users = torch.unique(r_rows[mine])
    row_of = torch.full((len(task.users),), -1, dtype=torch.long)
    row_of[users] = torch.arange(len(users))

    def regroup(rows: Tensor, pos: Tensor) -> tuple[Tensor, Tensor]:
        keep = (row_of[rows] >= 0) & (new_pos[pos] >= 0)
        return _csr(row_of[rows[keep]], new_pos[pos[keep]], len(users))
    relevant = regroup(r_rows[mine], r_pos[mine])
    exclude = regroup(torch.cat([e_rows, r_rows[~mine]]), torch.cat([e_pos, r_pos[~mine]]))
    return RankingTask(task.users[users], items, relevant, exclude, task.split)


def positions(items: Tensor, among: Tensor) -> Tensor:
    """``[len(items)]`` the position of each of ``items`` in ``among`` (item indices, on the CPU).

    Raises:
        ValueError: an item is not in ``among``.
    """
    at = torch.full((int(max(items.max(), among.max())) + 1 if len(items) and len(among) else 1,), -1, dtype=torch.long)
    at[among.cpu()] = torch.arange(len(among))
    out = at[items.cpu()]
    if bool((out < 0).any()):
        raise ValueError("every item must be among the candidates")
    return out


def item_group_tasks(artifact: GraphArtifact, task: RankingTask, seed: int = 0) -> dict[str, RankingTask]:
    """``{"warm", "cold", "cold_among_cold"}`` -> the task of that kind (module docstring), candidates in
    an order shuffled with ``seed``; empty when the graph has no cold items. ``task`` ranks the target
    items (:func:`ranking_task`)."""
    cold_items = artifact.cold_items()
    if not len(cold_items):
        return {}
    return kind_tasks(task, torch.isin(task.items, cold_items), seed)


def kind_tasks(task: RankingTask, is_cold: Tensor, seed: int = 0) -> dict[str, RankingTask]:
    """:func:`item_group_tasks` with the cold items given as ``is_cold`` ``[M]`` (bool, by position in
    ``task.items``); a kind without users is left out."""
    m = len(task.items)
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(m, generator=gen)  # new position p holds old position order[p]
    every = torch.empty(m, dtype=torch.long)
    every[order] = torch.arange(m)
    cold_order = order[is_cold[order]]  # the cold items, in the shuffled order
    among = torch.full((m,), -1, dtype=torch.long)
    among[cold_order] = torch.arange(len(cold_order))
    out = {"warm": _restrict(task, ~is_cold, task.items[order], every),
           "cold": _restrict(task, is_cold, task.items[order], every),
           "cold_among_cold": _restrict(task, is_cold, task.items[cold_order], among)}
    return {k: t for k, t in out.items() if len(t.users)}
