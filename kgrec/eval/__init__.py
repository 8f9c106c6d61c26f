"""Evaluation: full-ranking top-K metrics over held-out target interactions."""
from kgrec.eval.metrics import METRICS, hit_matrix, ranking_metrics, top_k
from kgrec.eval.ranking import RankingTask, evaluate, mean_metrics, metrics_of_top, rank, ranking_task, sample_users

__all__ = ["METRICS", "RankingTask", "evaluate", "hit_matrix", "mean_metrics", "metrics_of_top", "rank", "ranking_metrics",
           "ranking_task", "sample_users", "top_k"]
