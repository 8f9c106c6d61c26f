"""Scoring a trained run on its held-out target split, overall and for cold-start users."""
from __future__ import annotations

from kgrec.eval import mean_metrics, ranking_task
from kgrec.eval.groups import user_groups
from kgrec.serve.run import Run
from kgrec.train.trainer import validate


def evaluate_run(run: Run, split: str = "test", ks: tuple[int, ...] = (10, 20)) -> dict[str, dict[str, float]]:
    """Full-ranking metrics (train items filtered; at test, validation items too) for all users
    with held-out items and, when there are any, for the cold-start ones: ``{"all": {...}, "cold_start": {...}}``."""
    task = ranking_task(run.artifact, split, exclude=("train",) if split == "valid" else ("train", "valid"))
    per_user = validate(run.model, run.graph, task, tuple(ks), run.config.eval.memory_mb, run.paths(), run.path_weight)
    out = {"all": {"users": len(task.users), **mean_metrics(per_user)}}
    cold = user_groups(run.artifact, task.users).get("cold_start")
    if cold is not None:
        out["cold_start"] = {"users": int(cold.sum()), **mean_metrics({k: v[cold] for k, v in per_user.items()})}
    return out
