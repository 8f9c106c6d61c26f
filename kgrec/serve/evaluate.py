"""Scoring a trained run on its held-out target split, overall, for cold-start users and, with the
item cold-start protocol, for warm and cold (new) items (:mod:`kgrec.eval.items`)."""
from __future__ import annotations

from kgrec.eval import mean_metrics, ranking_task
from kgrec.eval.groups import user_groups
from kgrec.eval.items import item_group_tasks
from kgrec.serve.run import Run
from kgrec.train.trainer import validate


def evaluate_run(run: Run, split: str = "test", ks: tuple[int, ...] = (10, 20)) -> dict[str, dict[str, float]]:
    """Full-ranking metrics (train items filtered; at test, validation items too) for all users
    with held-out items and, when there are any, for the cold-start ones: ``{"all": {...}, "cold_start": {...}}``;
    with cold items, also ``"warm_items"``, ``"cold_items"`` (among all target items) and
    ``"cold_items_among_cold"``, each with its ``users`` and ``candidates``."""
    task = ranking_task(run.artifact, split, exclude=("train",) if split == "valid" else ("train", "valid"))
    per_user = validate(run.model, run.graph, task, tuple(ks), run.config.eval.memory_mb, run.paths(), run.path_weight,
                     terms=run.new_item_terms())
    out = {"all": {"users": len(task.users), **mean_metrics(per_user)}}
    cold = user_groups(run.artifact, task.users).get("cold_start")
    if cold is not None:
        out["cold_start"] = {"users": int(cold.sum()), **mean_metrics({k: v[cold] for k, v in per_user.items()})}
    for kind, sub in item_group_tasks(run.artifact, task).items():
        m = validate(run.model, run.graph, sub, tuple(ks), run.config.eval.memory_mb, run.paths(), run.path_weight,
                     terms=run.new_item_terms(), over=task.items)  # scored as the whole catalogue's ranking scores them
        out[f"{kind}_items"] = {"users": len(sub.users), "candidates": len(sub.items), **mean_metrics(m)}
    return out
