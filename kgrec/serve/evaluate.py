"""Scoring a trained run on its held-out target split, overall and for cold-start users."""
from __future__ import annotations

import torch

from kgrec.eval import mean_metrics, ranking_task
from kgrec.graph.artifact import TARGET
from kgrec.serve.run import Run
from kgrec.train.trainer import validate


def cold_start_mask(run: Run, users: torch.Tensor, max_train: int = 0) -> torch.Tensor:
    """``[U]`` bool: users the spec marked cold-start, or with at most ``max_train`` target training interactions."""
    marked = run.artifact.data["user"].cold_start.bool() if "cold_start" in run.artifact.data["user"] else None
    train = run.artifact.split("train", TARGET)
    counts = torch.bincount(train[0], minlength=int(run.artifact.data["user"].num_nodes))
    cold = counts[users] <= max_train
    return cold | marked[users] if marked is not None else cold


def evaluate_run(run: Run, split: str = "test", ks: tuple[int, ...] = (10, 20)) -> dict[str, dict[str, float]]:
    """Full-ranking metrics (train items filtered; at test, validation items too) for all users
    with held-out items and, when there are any, for the cold-start ones: ``{"all": {...}, "cold_start": {...}}``."""
    task = ranking_task(run.artifact, split, exclude=("train",) if split == "valid" else ("train", "valid"))
    per_user = validate(run.model, run.graph, task, tuple(ks), run.config.eval.memory_mb)
    out = {"all": {"users": len(task.users), **mean_metrics(per_user)}}
    cold = cold_start_mask(run, task.users)
    if bool(cold.any()):
        out["cold_start"] = {"users": int(cold.sum()), **mean_metrics({k: v[cold] for k, v in per_user.items()})}
    return out
