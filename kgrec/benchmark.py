"""``kgrec benchmark``: every model, several seeds, one report a reviewer can trust.

For each seed, kgrec (target-only control, transfer in each fine-tune mode) and
the baselines (:data:`kgrec.train.baselines.BASELINES`) are trained with the
same budget and early stopping, then scored on the target's test split by full
ranking (train and validation items, and items the user has under another listing,
filtered), per user group and item popularity bucket, and by the sampled protocol
(labelled as such). The row ``kgrec`` is the model a user gets: per seed, the kgrec
variant best on validation (:func:`choose_kgrec`). The report's gain table opens with
kgrec against the best target-only model. The report directory holds::

    report.md            tables (mean ± std over seeds) and the transfer gain with its tests
    kgrec_choice.csv     per seed, the kgrec variant chosen and every candidate's validation NDCG@10
    results.csv          model, seed, group, metric, value (long format)
    per_user.parquet     model, seed, user and every full-ranking metric (test)
    metric_by_group.png  NDCG@20 per user group and model
    training_curves.png  validation NDCG per epoch (first seed)
    runs/                the kgrec run directories
"""
from __future__ import annotations

import dataclasses
import functools
import json
import multiprocessing
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd
import torch
from torch import Tensor

from kgrec.atomic import atomic_file
from kgrec.errors import KgrecError
from kgrec.eval.groups import (bucket_recall, coverage, item_popularity, popularity_bias, popularity_buckets,
                               user_groups)
from kgrec.eval.items import item_group_tasks
from kgrec.eval.ranking import RankingTask, evaluate, metrics_of_top, rank, ranking_task
from kgrec.eval.sampled import sampled_candidates, sampled_metrics
from kgrec.graph.artifact import TARGET, GraphArtifact
from kgrec.io import load_torch
from kgrec.memory import keep_freed_memory
from kgrec.models.paths import blend
from kgrec.train.baselines import BASELINES, CONTENT_BASELINES, fit_baseline
from kgrec.train.budget import check_memory
from kgrec.train.config import TrainConfig
from kgrec.train.trainer import TrainResult, resolve_device, train

# fine-tune variants: each fine-tunes kgrec_transfer's pre-trained model with these finetune settings
FINETUNE_VARIANTS = {"kgrec_transfer_upper": {"mode": "upper"}, "kgrec_transfer_frozen": {"mode": "frozen"},
                     "kgrec_transfer_target": {"graph": "target"}}
KGREC_MODELS = ("kgrec_target_only", "kgrec_transfer", *FINETUNE_VARIANTS)
#: the report's row for the model a user gets: per seed, the kgrec variant best on validation
KGREC = "kgrec"
DEFAULT_MODELS = BASELINES + ("kgrec_target_only", "kgrec_transfer")
TARGET_ONLY = ("mostpop", "bprmf", "lightgcn", "paths", "ease", "rp3beta", "kgrec_target_only")
TRAINED_CROSS_DOMAIN = ("lightgcn_merged", "cmf", "emcdr")
CROSS_DOMAIN = (*TRAINED_CROSS_DOMAIN, "paths_merged", "rp3beta_merged")
#: models that cannot train without a source domain (its training interactions)
SOURCE_MODELS = ("kgrec_transfer", *FINETUNE_VARIANTS)
#: models with no randomness: fitted with the first seed only, the same rows under every seed
DETERMINISTIC = ("mostpop", "paths", "paths_merged", "ease", "rp3beta", "rp3beta_merged")
KS = (10, 20)
#: the report's groups for the item cold-start protocol (kgrec.eval.items)
ITEM_GROUPS = {"warm": "warm items", "cold": "cold items", "cold_among_cold": "cold items among cold"}


def _kgrec_scorer(res: TrainResult, target_items: Tensor) -> Callable[[Tensor], Tensor]:
    """Scores over all item indices; with path scores blended in or new-item terms, the target items'
    are the final scores (standardised over the target items) and the others -inf."""
    model, graph = res.model, res.graph
    with torch.no_grad():
        model.eval()
        h = model(graph)
    items = h[graph.node_slice("item")]
    head = model.heads["target"]
    cols = target_items.to(h.device)

    terms = res.terms if res.terms is not None and res.terms.active else None

    def score(users: Tensor) -> Tensor:
        e = head.score_all(h[users.to(h.device) + graph.offsets["user"]], items)
        if (res.paths is None or res.path_weight == 0) and terms is None:
            return e
        out = torch.full_like(e, float("-inf"))
        mine = e[:, cols]
        if res.paths is not None and res.path_weight:
            mine = blend(mine, res.paths.scores(users, target_items), res.path_weight)
        if terms is not None:
            mine = terms.apply(mine, target_items, terms.content_scores(users, target_items))
        out[:, cols] = mine
        return out
    return score


def _fit(name: str, artifact: GraphArtifact, config: TrainConfig, seed: int, out: Path, log) -> tuple:
    """Train one model; returns (scorer over all item indices, history frame, seconds)."""
    t0 = time.perf_counter()
    if name in BASELINES + CONTENT_BASELINES:
        fit = fit_baseline(name, artifact, config.target_only, config.loss, config.model.dim, config.model.layers,
                           seed, config.device, config.eval.k, log, config.model.path_hops or 3,
                           config.model.path_alpha)
        return fit.score, fit.history, fit.seconds
    cfg = dataclasses.replace(config, seed=seed, mode="target_only" if name == "kgrec_target_only" else "transfer")
    run_dir = out / "runs" / f"{name}-seed{seed}"
    init = None
    if name in FINETUNE_VARIANTS:
        ckpt = out / "runs" / f"kgrec_transfer-seed{seed}" / "checkpoints" / "pretrain.pt"
        if not ckpt.exists():
            raise KgrecError(f"{name} fine-tunes kgrec_transfer's pre-trained model: list kgrec_transfer before it")
        try:
            init = load_torch(ckpt, "checkpoint")["stage"]["best_state"]
        except (KeyError, TypeError) as e:
            raise KgrecError(f"{ckpt}: not a kgrec checkpoint (no {e} in it); rerun kgrec_transfer") from None
        cfg = dataclasses.replace(cfg, pretrain=dataclasses.replace(cfg.pretrain, epochs=0),
                                  finetune=dataclasses.replace(cfg.finetune, **FINETUNE_VARIANTS[name]))
    res = train(cfg, run_dir, overwrite=True, progress=False, log=log, artifact=artifact, init=init)
    hist = res.history.assign(model=name)
    return _kgrec_scorer(res, artifact.items_of(TARGET)), hist, time.perf_counter() - t0


@dataclass
class _Scoring:
    """What every model is scored against: the test and validation tasks, user groups,
    item popularity buckets and the sampled protocol's candidates."""

    task: RankingTask
    valid_task: RankingTask
    groups: dict[str, Tensor]
    pop: Tensor
    buckets: dict[str, Tensor]
    cand: tuple[Tensor, Tensor, Tensor] | None
    item_tasks: dict[str, RankingTask] = field(default_factory=dict)


@dataclass
class _Rows:
    """The report rows of some models trained with one seed."""

    per_user: list[pd.DataFrame] = field(default_factory=list)
    long_rows: list[tuple] = field(default_factory=list)
    curves: list[pd.DataFrame] = field(default_factory=list)
    seconds: list[dict] = field(default_factory=list)
    per_user_items: list[pd.DataFrame] = field(default_factory=list)  # per_user, with an "items" column


def _run_models(artifact: GraphArtifact, config: TrainConfig, out: Path, models: tuple[str, ...], seed: int,
              sc: _Scoring, log: Callable[[str], None]) -> _Rows:
    """Train ``models`` (in order) with one seed and score each on the test split (and on validation,
    for model choice)."""
    device = resolve_device(config.device)  # where every scorer returns its scores
    task, valid_task = sc.task, sc.valid_task
    valid_items, test_items = valid_task.items.to(device), task.items.to(device)
    rows = _Rows()
    for name in models:
        log(f"== {name}, seed {seed}")
        scorer, hist, secs = _fit(name, artifact, config, seed, out, log)
        rows.seconds.append({"model": name, "seed": seed, "seconds": secs})
        if len(hist):
            rows.curves.append(hist.assign(model=name, seed=seed))
        if len(valid_task.users):  # model selection (best fine-tune mode, best baseline) looks at this only
            vm = evaluate(lambda u: scorer(u)[:, valid_items], valid_task, (10,), config.eval.memory_mb, device)
            rows.long_rows.append((name, seed, "valid", "ndcg@10", float(vm["ndcg@10"].mean())))
        top = rank(lambda u: scorer(u)[:, test_items], task, max(KS), config.eval.memory_mb, device)
        m = metrics_of_top(top, task, KS)
        frame = pd.DataFrame({k: v.numpy() for k, v in m.items()})
        frame.insert(0, "user", task.users.numpy())
        frame.insert(0, "seed", seed)
        frame.insert(0, "model", name)
        rows.per_user.append(frame)
        for g, mask in sc.groups.items():
            for metric, v in m.items():
                rows.long_rows.append((name, seed, g, metric, float(v[mask].mean())))
        for b, v in bucket_recall(top, task.relevant, sc.buckets, 20).items():
            rows.long_rows.append((name, seed, f"items {b}", "recall@20", v))
        for kind, sub in sc.item_tasks.items():
            m_sub = evaluate(lambda u: scorer(u)[:, sub.items.to(device)], sub, KS, config.eval.memory_mb, device)
            rows.per_user_items.append(pd.DataFrame({"model": name, "seed": seed, "items": kind,
                                                     "user": sub.users.numpy(),
                                                     **{k: v.numpy() for k, v in m_sub.items()}}))
            for metric, v in m_sub.items():
                rows.long_rows.append((name, seed, ITEM_GROUPS[kind], metric, float(v.mean())))
        rows.long_rows.append((name, seed, "all", "coverage@10", coverage(top, len(task.items), 10)))
        rows.long_rows.append((name, seed, "all", "arp@10", popularity_bias(top, sc.pop[task.items], 10)))
        if sc.cand is not None:
            users, pos, neg = sc.cand
            pairs = lambda u, c: scorer(u).gather(1, c.to(device))
            for metric, v in sampled_metrics(pairs, users, pos, neg, (10,)).items():
                rows.long_rows.append((name, seed, "all", metric, float(v.mean())))
    return rows


def _for_seed(rows: _Rows, seed: int) -> _Rows:
    """The rows of a deterministic model, labelled with another seed (the same numbers)."""
    return _Rows([f.assign(seed=seed) for f in rows.per_user], [(m, seed, *rest) for m, _, *rest in rows.long_rows],
                 [c.assign(seed=seed) for c in rows.curves], [{**t, "seed": seed} for t in rows.seconds],
                 [f.assign(seed=seed) for f in rows.per_user_items])


def _print_with_prefix(prefix: str, message: str) -> None:
    print(prefix + message, file=sys.stderr, flush=True)


def _worker_setup(threads: int) -> None:
    torch.set_num_threads(threads)
    keep_freed_memory()


def run_benchmark(artifact: GraphArtifact, config: TrainConfig, out: str | Path, models: tuple[str, ...] = DEFAULT_MODELS,
                  seeds: tuple[int, ...] = (0, 1, 2), sampled: int = 999, log: Callable[[str], None] = print,
                  jobs: int = 1) -> Path:
    """Train and score ``models`` over ``seeds`` on ``artifact``; write the report into ``out``.

    ``config`` gives kgrec's settings and the shared budget (baselines use ``config.target_only``,
    ``config.loss`` and ``config.model.dim``/``layers``). ``jobs`` > 1 trains that many
    (seed, model) pairs at once, each in a worker process with an equal share of the CPU threads
    (their messages go to stderr, prefixed with the seed); the report is the same as with one job.

    Raises:
        KgrecError: unknown model names, or an artifact without test interactions.
    """
    known = BASELINES + CONTENT_BASELINES + KGREC_MODELS
    unknown = [m for m in models if m not in known]
    if unknown:
        raise KgrecError(f"unknown model(s) {unknown}; known: {', '.join(known)}")
    if "kgrec_transfer_upper" in models and config.model.layer == "compgcn" and not config.model.transform:
        raise KgrecError("kgrec_transfer_upper fine-tunes the last layers' weights; CompGCN layers have none "
                         "without model.transform = true (--set model.transform=true) — leave that model out")
    if "kgrec_transfer_frozen" in models and config.model.head == "dot":
        raise KgrecError("kgrec_transfer_frozen trains the head only; the 'dot' head has none: "
                         "set model.head = 'distmult' (--set model.head=distmult) or leave that model out")
    needs_source = [m for m in models if m in SOURCE_MODELS]
    if needs_source and not len(artifact.split("train", "source")[0]):
        raise KgrecError(f"{', '.join(needs_source)} need(s) source training interactions, and this graph has one "
                         f"domain: leave them out of --models")
    if jobs < 1:
        raise KgrecError(f"jobs must be at least 1, got {jobs}")
    check_memory(config, {t: int(artifact.data[t].num_nodes) for t in artifact.data.node_types},
                 resolve_device(config.device))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    task = ranking_task(artifact, "test", exclude=("train", "valid"))
    if not len(task.users):
        raise KgrecError("the graph's target domain has no test interactions to score")
    pop = item_popularity(artifact)
    sc = _Scoring(task, ranking_task(artifact, "valid"), user_groups(artifact, task.users), pop,
                  popularity_buckets(pop, task.items),
                  sampled_candidates(artifact, "test", sampled, seed=0) if sampled else None,
                  item_group_tasks(artifact, task))
    # one task per (seed, model); a fine-tune variant goes with the kgrec_transfer run it starts from
    chained = [m for m in models if m in FINETUNE_VARIANTS]
    groups_of = [(m,) + (tuple(chained) if m == "kgrec_transfer" else ()) for m in models if m not in chained]
    # a model without randomness (walks, closed forms, popularity) is fitted once and its rows repeated per seed
    tasks = [(seed, group) for seed in seeds for group in groups_of
             if not (group[0] in DETERMINISTIC and seed != seeds[0])]
    if jobs == 1 or len(tasks) == 1:
        parts = [_run_models(artifact, config, out, group, seed, sc, log) for seed, group in tasks]
    else:
        jobs = min(jobs, len(tasks))
        threads = max(1, torch.get_num_threads() // jobs)
        # the long trainings first, so that no core idles at the end; the report keeps the canonical order
        order = sorted(range(len(tasks)), key=lambda i: tasks[i][1][0] not in ("kgrec_transfer", "lightgcn_merged"))
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_worker_setup, initargs=(threads,)) as pool:
            futures = {i: pool.submit(_run_models, artifact, config, out, tasks[i][1], tasks[i][0], sc,
                                      functools.partial(_print_with_prefix, f"[seed {tasks[i][0]}] "))
                       for i in order}
            parts = [futures[i].result() for i in range(len(tasks))]
    parts += [_for_seed(p, seed) for (first, group), p in zip(tasks, parts) if group[0] in DETERMINISTIC
              for seed in seeds[1:]]
    per_user = [f for p in parts for f in p.per_user]
    per_item_kind = [f for p in parts for f in p.per_user_items]
    long_rows = [r for p in parts for r in p.long_rows]
    curves = [c for p in parts for c in p.curves]
    seconds = [t for p in parts for t in p.seconds]
    groups = sc.groups
    results = pd.DataFrame(long_rows, columns=["model", "seed", "group", "metric", "value"])
    users = pd.concat(per_user, ignore_index=True)
    times = pd.DataFrame(seconds)
    by_items = pd.concat(per_item_kind, ignore_index=True) if per_item_kind else pd.DataFrame()
    choice = choose_kgrec(results)
    if not choice.empty:  # the model a user gets: per seed, the kgrec variant best on validation
        if not by_items.empty:
            by_items = _with_chosen(results, by_items, times, choice)[1]
        results, users, times = _with_chosen(results, users, times, choice)
        models = (KGREC, *models)
    if not by_items.empty:
        with atomic_file(out / "per_user_items.parquet", "wb") as f:
            by_items.to_parquet(f, index=False)
    with atomic_file(out / "results.csv") as f:
        results.to_csv(f, index=False)
    with atomic_file(out / "per_user.parquet", "wb") as f:
        users.to_parquet(f, index=False)
    curves_df = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()
    cold_users = task.users[groups["cold_start"]].tolist() if "cold_start" in groups else None
    with atomic_file(out / "kgrec_choice.csv") as f:
        choice.to_csv(f, index=False)
    report = format_report(results, users, times, groups, models, seeds, artifact, cold_users, choice, by_items)
    with atomic_file(out / "report.md") as f:
        f.write(report)
    _plots(results, curves_df, out, seeds[0])
    return out


def choose_kgrec(results: pd.DataFrame, metric: str = "ndcg@10") -> pd.DataFrame:
    """Per seed, the kgrec variant (transfer in each fine-tune mode, or kgrec's own target-only model)
    with the best *validation* ``metric``: the model ``kgrec`` gives a user, who does not know in
    advance whether the source domain helps. Columns ``seed``, ``chosen`` and one per candidate
    (its validation score); empty when no kgrec model ran."""
    sub = results[(results["group"] == "valid") & (results["metric"] == metric)
                  & results["model"].isin(KGREC_MODELS)]
    if sub.empty:
        return pd.DataFrame()
    table = sub.pivot_table(index="seed", columns="model", values="value")
    table = table[[m for m in KGREC_MODELS if m in table.columns]]
    chosen = table.idxmax(axis=1)
    return table.assign(chosen=chosen).reset_index()[["seed", "chosen", *table.columns]]


def _with_chosen(results: pd.DataFrame, users: pd.DataFrame, times: pd.DataFrame,
                 choice: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``results``, ``users`` and ``times`` with rows for :data:`KGREC`: each seed's chosen variant's
    scores (its training time: every candidate's, since all are trained to choose)."""
    pick = dict(zip(choice["seed"], choice["chosen"]))
    take = lambda f: pd.concat([f[(f["seed"] == s) & (f["model"] == m)] for s, m in pick.items()]).assign(model=KGREC)
    cands = [c for c in choice.columns if c not in ("seed", "chosen")]
    spent = times[times["model"].isin(cands)].groupby("seed", as_index=False)["seconds"].sum().assign(model=KGREC)
    return (pd.concat([take(results), results], ignore_index=True), pd.concat([take(users), users], ignore_index=True),
            pd.concat([spent[["model", "seed", "seconds"]], times], ignore_index=True))


def _mean_std(values: list[float]) -> str:
    values = [v for v in values if v == v]  # NaN: an empty bucket
    if not values:
        return "–"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {sd:.4f}"


def transfer_gain(users: pd.DataFrame, model: str, baseline: str, metric: str, mask: pd.Series | None = None) -> dict:
    """Relative gain of ``model`` over ``baseline`` on ``metric`` with two paired tests: Wilcoxon
    signed-rank over users (each user's metric averaged over seeds) and over seeds (each seed's mean)."""
    from scipy.stats import wilcoxon

    sub = users if mask is None else users[mask]
    a = sub[sub["model"] == model].groupby("user")[metric].mean()
    b = sub[sub["model"] == baseline].groupby("user")[metric].mean()
    a, b = a.align(b, join="inner")
    seeds_a = sub[sub["model"] == model].groupby("seed")[metric].mean()
    seeds_b = sub[sub["model"] == baseline].groupby("seed")[metric].mean()
    seeds_a, seeds_b = seeds_a.align(seeds_b, join="inner")
    p_users = float(wilcoxon(a, b).pvalue) if len(a) and (a != b).any() else float("nan")
    p_seeds = float(wilcoxon(seeds_a, seeds_b).pvalue) if len(seeds_a) > 1 and (seeds_a != seeds_b).any() else float("nan")
    gain = a.mean() / b.mean() - 1 if b.mean() > 0 else float("nan")
    return {"model": model, "baseline": baseline, "metric": metric, "users": len(a), "model_mean": float(a.mean()),
            "baseline_mean": float(b.mean()), "gain": float(gain), "p_users": p_users, "p_seeds": p_seeds,
            "seeds": len(seeds_a)}


def best_on_validation(results: pd.DataFrame, candidates: tuple[str, ...], metric: str = "ndcg@10") -> str | None:
    """The candidate with the best mean *validation* ``metric`` (never chosen on test)."""
    group = "valid" if ((results["group"] == "valid") & results["model"].isin(candidates)).any() else "all"
    sub = results[(results["group"] == group) & (results["metric"] == metric) & results["model"].isin(candidates)]
    return None if sub.empty else sub.groupby("model")["value"].mean().idxmax()


def format_report(results: pd.DataFrame, users: pd.DataFrame, times: pd.DataFrame, groups: dict[str, Tensor],
                  models: tuple[str, ...], seeds: tuple[int, ...], artifact: GraphArtifact,
                  cold_users: list[int] | None = None, choice: pd.DataFrame | None = None,
                  by_items: pd.DataFrame | None = None) -> str:
    """The Markdown report (see the module docstring); ``by_items``: per-user metrics by item kind
    (:mod:`kgrec.eval.items`), for the new-items section."""
    def cell(model: str, group: str, metric: str) -> str:
        v = results[(results["model"] == model) & (results["group"] == group) & (results["metric"] == metric)]
        return _mean_std(v.sort_values("seed")["value"].tolist())

    name = artifact.manifest.get("name", "graph")
    lines = [f"# kgrec benchmark: {name}", "",
             f"Seeds {', '.join(map(str, seeds))}; {len(groups.get('all', []))} test users; test split, "
             f"**full ranking** over all target items with training and validation items filtered; "
             f"mean ± std over seeds.", ""]
    full = ["recall@10", "ndcg@10", "hr@10", "recall@20", "ndcg@20", "mrr@20", "map@20"]
    lines += ["## Full ranking, all test users", "", "| model | " + " | ".join(full) + " |",
              "|---|" + "---|" * len(full)]
    lines += [f"| {m} | " + " | ".join(cell(m, "all", k) for k in full) + " |" for m in models]
    lines += ["", "## NDCG@20 by user group", "",
              "| group | users | " + " | ".join(models) + " |", "|---|---|" + "---|" * len(models)]
    for g, mask in groups.items():
        lines.append(f"| {g} | {int(mask.sum()):,} | " + " | ".join(cell(m, g, "ndcg@20") for m in models) + " |")
    lines += ["", "## Item popularity: Recall@20 of held-out items by popularity bucket, coverage, ARP", "",
              "| model | head | mid | tail | coverage@10 | ARP@10 |", "|---|---|---|---|---|---|"]
    lines += [f"| {m} | {cell(m, 'items head', 'recall@20')} | {cell(m, 'items mid', 'recall@20')} | "
              f"{cell(m, 'items tail', 'recall@20')} | {cell(m, 'all', 'coverage@10')} | {cell(m, 'all', 'arp@10')} |"
              for m in models]
    if (results["metric"] == "sampled_ndcg@10").any():
        lines += ["", "## Sampled protocol (each test item among 999 unseen items sampled uniformly, with "
                  "replacement; NOT full ranking)", "",
                  "| model | sampled HR@10 | sampled NDCG@10 |", "|---|---|---|"]
        lines += [f"| {m} | {cell(m, 'all', 'sampled_hr@10')} | {cell(m, 'all', 'sampled_ndcg@10')} |" for m in models]
    lines += _gain_section(results, users, models, cold_users, choice)
    if by_items is not None and not by_items.empty:
        lines += _new_items_section(results, by_items, models, cell)
    lines += ["", "## Training time (seconds per run, mean over seeds)", "", "| model | seconds |", "|---|---|"]
    lines += [f"| {m} | {times[times['model'] == m]['seconds'].mean():.0f} |" for m in models]
    return "\n".join(lines) + "\n"


def gain_comparisons(results: pd.DataFrame, models: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """The transfer-gain table's rows ``(question, model, baseline)``, every model and baseline
    chosen on validation. First the question a user asks (does kgrec, the model they get, beat the
    best model of the target alone?), then the best cross-domain baseline, then the transfer model
    itself against the target-only models (the gain the source brings, whether or not kgrec chose it)."""
    pick = lambda pool: best_on_validation(results, tuple(m for m in models if m in pool))
    best_target, best_cross = pick(TARGET_ONLY), pick(CROSS_DOMAIN)
    trained = pick(TRAINED_CROSS_DOMAIN)
    transfer = best_on_validation(results, tuple(m for m in models if m.startswith("kgrec_transfer")))
    ours = KGREC if KGREC in models else transfer
    rows = [("vs the best target-only model", ours, best_target),
            ("vs the best cross-domain baseline", ours, best_cross)]
    if best_target is not None and best_target.startswith("kgrec"):  # kgrec's own won: the best other one too
        rows.append(("vs the best target-only baseline", ours,
                     pick(tuple(m for m in TARGET_ONLY if not m.startswith("kgrec")))))
    if trained is not None and trained != best_cross:  # the walks won: show the best trained one too
        rows.append(("vs the best trained cross-domain baseline", ours, trained))
    if ours == KGREC and transfer is not None:
        rows.append(("transfer alone vs the best target-only model", transfer, best_target))
        if "kgrec_target_only" in models and best_target != "kgrec_target_only":
            rows.append(("transfer alone vs kgrec's own target-only model", transfer, "kgrec_target_only"))
    return [(q, m, b) for q, m, b in rows if m is not None and b is not None and m != b]


def _gain_section(results: pd.DataFrame, users: pd.DataFrame, models: tuple[str, ...],
                  cold_users: list[int] | None, choice: pd.DataFrame | None) -> list[str]:
    lines = ["", "## Does the source domain help?", ""]
    if choice is not None and not choice.empty:
        cands = [c for c in choice.columns if c not in ("seed", "chosen")]
        lines += ["`kgrec` is the model a user gets: for each seed, the kgrec variant with the best *validation* "
                  "NDCG@10 among the transfer models and kgrec's own target-only model, so that where the "
                  "source does not help it falls back instead of losing.", "",
                  "| seed | chosen | " + " | ".join(f"{c} (valid NDCG@10)" for c in cands) + " |",
                  "|---|---|" + "---|" * len(cands)]
        lines += [f"| {int(r['seed'])} | {r['chosen']} | " + " | ".join(f"{r[c]:.4f}" for c in cands) + " |"
                  for _, r in choice.iterrows()]
        lines.append("")
    rows = gain_comparisons(results, models)
    if not rows:
        return lines + ["No kgrec model was compared."]
    lines += ["Every baseline compared is the best of its kind on *validation* NDCG@10. Wilcoxon signed-rank "
              "tests, paired over users (each user's metric averaged over seeds) and over seeds (with 3 seeds "
              "the smallest possible two-sided p is 0.25).", "",
              "| question | model | baseline | users | metric | model | baseline | gain | p (users) | p (seeds) |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    cold = users["user"].isin(cold_users) if cold_users else None
    for question, model, base in rows:
        for metric in ("ndcg@10", "ndcg@20", "recall@20"):
            for who, mask in (("all", None), ("cold-start", cold)):
                if who == "cold-start" and mask is None:
                    continue
                t = transfer_gain(users, model, base, metric, mask)
                lines.append(f"| {question} | {model} | {base} | {who} {t['users']:,} | {metric} | "
                             f"{t['model_mean']:.4f} | {t['baseline_mean']:.4f} | {t['gain']:+.1%} | "
                             f"{t['p_users']:.2g} | {t['p_seeds']:.2g} |")
    return lines


def _new_items_section(results: pd.DataFrame, by_items: pd.DataFrame, models: tuple[str, ...], cell) -> list[str]:
    """Warm and cold items of the same run (:mod:`kgrec.eval.items`), and kgrec against the best content
    baseline (chosen on validation) on cold items."""
    counts = by_items[by_items["model"] == by_items["model"].iloc[0]].groupby("items")["user"].nunique()
    cols = [("warm items", "ndcg@10"), ("cold items", "ndcg@10"), ("cold items", "recall@20"),
            ("cold items among cold", "ndcg@10"), ("cold items among cold", "recall@20")]
    lines = ["", "## New items (item cold start)", "",
             f"Held-out pairs on warm items ({counts.get('warm', 0):,} users), and on cold items (no training "
             f"interaction; {counts.get('cold', 0):,} users) ranked among all target items and among the cold "
             f"items only; each ranking filters the user's held-out items of the other kind (kgrec.eval.items).", "",
             "| model | " + " | ".join(f"{g} {m}" for g, m in cols) + " |", "|---|" + "---|" * len(cols)]
    lines += [f"| {m} | " + " | ".join(cell(m, g, k) for g, k in cols) + " |" for m in models]
    content = best_on_validation(results, tuple(m for m in models if m in CONTENT_BASELINES))
    ours = KGREC if KGREC in models else next((m for m in models if m.startswith("kgrec")), None)
    if content is None or ours is None:
        return lines
    lines += ["", "| kind | model | baseline (best content, on validation) | users | metric | model | baseline | "
              "gain | p (users) | p (seeds) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for kind in ("cold", "cold_among_cold", "warm"):
        sub = by_items[by_items["items"] == kind]
        if sub.empty:
            continue
        t = transfer_gain(sub, ours, content, "ndcg@10")
        lines.append(f"| {ITEM_GROUPS[kind]} | {ours} | {content} | {t['users']:,} | ndcg@10 | {t['model_mean']:.4f} | "
                     f"{t['baseline_mean']:.4f} | {t['gain']:+.1%} | {t['p_users']:.2g} | {t['p_seeds']:.2g} |")
    return lines


def _plots(results: pd.DataFrame, curves: pd.DataFrame, out: Path, seed: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sub = results[(results["metric"] == "ndcg@20") & ~results["group"].str.startswith("items")]
    table = sub.groupby(["group", "model"])["value"].mean().unstack("model")
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(table)), 4))
    table.plot.bar(ax=ax, width=0.85)
    ax.set_ylabel("test NDCG@20 (full ranking)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "metric_by_group.png", dpi=120)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 4))
    if not curves.empty:
        first = curves[curves["seed"] == seed]
        col = next((c for c in first.columns if c.startswith("valid_ndcg@")), None)
        for model, h in first.groupby("model", sort=False):
            if col and col in h:
                h = h.dropna(subset=[col])
                ax.plot(range(1, len(h) + 1), h[col].to_numpy(), marker=".", label=model)
        ax.set_xlabel("epoch (kgrec transfer: pre-train then fine-tune)")
        ax.set_ylabel(col or "")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "training_curves.png", dpi=120)
    plt.close(fig)


def save_settings(out: Path, settings: dict) -> None:
    """Record how the benchmark was run (``benchmark.json``)."""
    with atomic_file(out / "benchmark.json") as f:
        json.dump(settings, f, indent=2, default=str)
