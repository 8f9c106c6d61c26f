"""New items: kgrec against the content baselines and kgrec without the KG, on the cold items of
benchmark reports (``kgrec benchmark`` on a ``*_new_items.toml`` spec and its ``_no_kg`` twin).

Re-scores what the reports trained, with :mod:`kgrec.eval.items` as it is now: the kgrec runs
(``runs/<model>-seed<s>``; ``kgrec`` is each seed's variant chosen on validation,
``kgrec_choice.csv``) are loaded and score as they serve (their new-item terms included), the content baselines refitted (closed form, their settings
chosen on validation again). Prints one Markdown table: test NDCG@10 on warm items, on cold items
among all target items and among cold items only, and Recall@20 among cold items; then kgrec
against the best content baseline (on validation) and against kgrec without the KG, on cold items
among cold items (Wilcoxon over users).

    python benchmarks/new_items.py reports/ml100k_genres_new_items reports/ml100k_genres_new_items_no_kg
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import torch

from kgrec.eval import ranking_task
from kgrec.benchmark import best_on_validation, transfer_gain
from kgrec.eval.items import item_group_tasks
from kgrec.eval.ranking import evaluate
from kgrec.graph.artifact import load_graph
from kgrec.serve import load_run
from kgrec.train.baselines import CONTENT_BASELINES, fit_baseline
from kgrec.train.config import LossConfig, StageConfig
from kgrec.train.trainer import validate

KINDS = ("warm", "cold", "cold_among_cold")


def score_report(report: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-user test metrics by item kind of every kgrec run and content baseline of ``report`` (columns
    model, seed, items, user, ndcg@10, recall@20), and the report's ``results.csv``."""
    settings = json.loads((report / "benchmark.json").read_text())
    artifact = load_graph(settings["graph"])
    test = ranking_task(artifact, "test", exclude=("train", "valid"))
    tasks = item_group_tasks(artifact, test)
    results = pd.read_csv(report / "results.csv")
    frames = []

    def add(model: str, seed: int, per_kind: dict) -> None:
        for kind, m in per_kind.items():
            frames.append(pd.DataFrame({"model": model, "seed": seed, "items": kind, "user": tasks[kind].users.numpy(),
                                        "ndcg@10": m["ndcg@10"].numpy(), "recall@20": m["recall@20"].numpy()}))

    for run_dir in sorted((report / "runs").glob("*-seed*")):
        model, seed = run_dir.name.rsplit("-seed", 1)
        run = load_run(run_dir)
        add(model, int(seed), {kind: validate(run.model, run.graph, task, (10, 20), run.config.eval.memory_mb,
                                              run.paths(), run.path_weight, terms=run.new_item_terms(), over=test.items)
                               for kind, task in tasks.items()})
    for name in [m for m in CONTENT_BASELINES if m in set(results["model"])]:
        fit = fit_baseline(name, artifact, StageConfig(), LossConfig())
        add(name, 0, {kind: evaluate(lambda u, t=task: fit.score(u)[:, t.items], task, (10, 20))
                      for kind, task in tasks.items()})
    out = pd.concat(frames, ignore_index=True)
    choice = pd.read_csv(report / "kgrec_choice.csv")
    chosen = [out[(out["model"] == r["chosen"]) & (out["seed"] == r["seed"])] for _, r in choice.iterrows()]
    return pd.concat([pd.concat(chosen).assign(model="kgrec"), out], ignore_index=True), results


def main(reports: list[str]) -> str:
    lines = ["| report | model | warm NDCG@10 | cold NDCG@10 (among all) | cold NDCG@10 (among cold) | "
             "cold Recall@20 (among cold) |", "|---|---|---|---|---|---|"]
    scored = {}
    for r in reports:
        per_user, results = score_report(Path(r))
        scored[Path(r).name] = (per_user, results)
        means = per_user.groupby(["model", "items"])[["ndcg@10", "recall@20"]].mean()
        for model in dict.fromkeys(per_user["model"]):
            get = lambda kind, metric: means.loc[(model, kind), metric] if (model, kind) in means.index else float("nan")
            lines.append(f"| {Path(r).name} | {model} | {get('warm', 'ndcg@10'):.4f} | {get('cold', 'ndcg@10'):.4f} | "
                         f"{get('cold_among_cold', 'ndcg@10'):.4f} | {get('cold_among_cold', 'recall@20'):.4f} |")
    lines += ["", "| report | kgrec vs | kind | users | kgrec | baseline | gain | p (users) |", "|---|---|---|---|---|---|---|---|"]
    for name, (per_user, results) in scored.items():
        content = best_on_validation(results, tuple(m for m in CONTENT_BASELINES if m in set(results["model"])))
        twin = scored.get(f"{name}_no_kg")
        for kind in ("cold", "cold_among_cold"):
            sub = per_user[per_user["items"] == kind]
            rows = []
            if content is not None:
                rows.append((f"{content} (best content, on validation)", transfer_gain(sub, "kgrec", content, "ndcg@10")))
            if twin is not None:
                other = twin[0][(twin[0]["items"] == kind) & (twin[0]["model"] == "kgrec")].assign(model="kgrec_no_kg")
                rows.append(("kgrec without the KG", transfer_gain(pd.concat([sub, other]), "kgrec", "kgrec_no_kg",
                                                                   "ndcg@10")))
            for label, t in rows:
                lines.append(f"| {name} | {label} | {kind} | {t['users']:,} | {t['model_mean']:.4f} | "
                             f"{t['baseline_mean']:.4f} | {t['gain']:+.1%} | {t['p_users']:.2g} |")
    return "\n".join(lines)


if __name__ == "__main__":
    torch.set_num_threads(max(1, torch.get_num_threads()))
    print(main(sys.argv[1:]))
