"""Print the README's results tables from ``kgrec benchmark`` report directories.

    python benchmarks/summarise_reports.py reports/amazon_cloth_to_sport reports/lastfm_satori ...

For each report: one row per model with test metrics (mean ± std over seeds;
full ranking, then the sampled protocol), the seconds per run, and the gains of
the report's table (kgrec, the variant chosen on validation, against the best
target-only model and the best cross-domain baseline; kgrec transfer alone
against the target-only models), every model chosen on validation NDCG@10 as
in the report. Nothing is recomputed: the numbers are
read from ``results.csv`` and ``benchmark.json``.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import pandas as pd

from kgrec.benchmark import gain_comparisons, transfer_gain
COLUMNS = [("all", "ndcg@10"), ("all", "recall@20"), ("all", "ndcg@20"), ("cold_start", "ndcg@20"),
           ("all", "sampled_hr@10"), ("all", "sampled_ndcg@10")]


def cell(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def summarise(report: Path) -> str:
    results = pd.read_csv(report / "results.csv")
    settings = json.loads((report / "benchmark.json").read_text())
    per_run = {}
    for line in (report / "report.md").read_text().splitlines():  # the report's own seconds table
        parts = [p.strip() for p in line.strip("|").split("|")]
        if len(parts) == 2 and parts[1].isdigit():
            per_run[parts[0]] = parts[1]
    models = list(dict.fromkeys(results["model"]))
    cols = [(g, m) for g, m in COLUMNS if ((results["group"] == g) & (results["metric"] == m)).any()]
    head = " | ".join(f"{m}" + (" (cold)" if g == "cold_start" else "") for g, m in cols)
    lines = [f"**{report.name}** — seeds {', '.join(map(str, settings['seeds']))}, "
             f"wall {settings['wall_seconds'] / 60:.1f} min", "",
             f"| model | {head} | s/run |", "|---|" + "---|" * (len(cols) + 1)]
    for model in models:
        vals = []
        for g, m in cols:
            v = results[(results["model"] == model) & (results["group"] == g) & (results["metric"] == m)]
            vals.append(cell(v.sort_values("seed")["value"].tolist()))
        lines.append(f"| {model} | " + " | ".join(vals) + f" | {per_run.get(model, '–')} |")
    lines.append("")
    for question, ours, base in gain_comparisons(results, tuple(models)):
        gains = []
        for g, m in cols:
            a = results[(results["model"] == ours) & (results["group"] == g) & (results["metric"] == m)]["value"]
            b = results[(results["model"] == base) & (results["group"] == g) & (results["metric"] == m)]["value"]
            if len(a) and len(b) and b.mean() > 0:
                gains.append(f"{m}{' (cold)' if g == 'cold_start' else ''} {a.mean() / b.mean() - 1:+.1%}")
        lines.append(f"- `{ours}` {question} (`{base}`, chosen on validation): " + ", ".join(gains))
    return "\n".join(lines) + "\n"


def headline(reports: list[Path], metric: str = "ndcg@10") -> str:
    """One row per report: kgrec against the best target-only model, the best cross-domain baseline,
    and the transfer model alone against the best target-only model (``metric``, mean over seeds,
    gain and Wilcoxon p over users), every model chosen on validation as in the reports."""
    lines = [f"| benchmark | seeds | kgrec {metric} | vs best target-only | vs best target-only baseline (when kgrec's "
             f"own was best) | vs best cross-domain | transfer alone vs best target-only |", "|---|---|---|---|---|---|---|"]
    for report in reports:
        results = pd.read_csv(report / "results.csv")
        users = pd.read_parquet(report / "per_user.parquet")
        rows = {q: (m, b) for q, m, b in gain_comparisons(results, tuple(dict.fromkeys(results["model"])))}
        cells = []
        for q in ("vs the best target-only model", "vs the best target-only baseline", "vs the best cross-domain baseline",
                  "transfer alone vs the best target-only model"):
            if q not in rows:
                cells.append("–")
                continue
            t = transfer_gain(users, *rows[q], metric)
            cells.append(f"{t['gain']:+.1%} vs `{t['baseline']}` {t['baseline_mean']:.4f} (p {t['p_users']:.2g})")
        kgrec = users[users["model"] == "kgrec"].groupby("seed")[metric].mean()
        seeds = ", ".join(str(s) for s in sorted(set(results["seed"])))
        lines.append(f"| {report.name} | {seeds} | {kgrec.mean():.4f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def new_items(reports: list[Path], metric: str = "ndcg@10") -> str:
    """One row per report of the item cold-start protocol (``per_user_items.parquet``): kgrec's ``metric`` on
    the test pairs on new items ranked among the new items and among all items, against the best content
    baseline on validation (gain, Wilcoxon p over users) and, where ``<report>_no_kg`` sits beside the
    report, against kgrec without the KG; then warm items and all held-out pairs, kgrec against the best
    target-only baseline."""
    from kgrec.benchmark import TARGET_ONLY, best_on_validation
    from kgrec.train.baselines import CONTENT_BASELINES
    lines = [f"| benchmark | seeds | new items among new: kgrec {metric} | vs best content baseline | vs kgrec without "
             f"the KG | new items among all: kgrec | vs best content baseline | warm items: kgrec | vs best "
             f"target-only baseline | all pairs: kgrec | vs best target-only baseline |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]

    def versus(users: pd.DataFrame, baseline: str | None) -> str:
        if baseline is None or not (users["model"] == baseline).any():
            return "–"
        t = transfer_gain(users, "kgrec", baseline, metric)
        return f"{t['gain']:+.1%} vs `{t['baseline']}` {t['baseline_mean']:.4f} (p {t['p_users']:.2g})"

    for report in reports:
        results = pd.read_csv(report / "results.csv")
        users = pd.read_parquet(report / "per_user_items.parquet")
        present = tuple(dict.fromkeys(results["model"]))
        content = best_on_validation(results, tuple(m for m in CONTENT_BASELINES if m in present))
        baseline = best_on_validation(results, tuple(m for m in TARGET_ONLY if m in present and not m.startswith("kgrec")))
        twin = report.parent / f"{report.name}_no_kg"
        kind = {k: users[users["items"] == k] for k in ("cold_among_cold", "cold", "warm")}
        mean = {k: u[u["model"] == "kgrec"].groupby("seed")[metric].mean().mean() for k, u in kind.items()}
        without = "–"
        if (twin / "per_user_items.parquet").is_file():
            other = pd.read_parquet(twin / "per_user_items.parquet")
            other = other[(other["items"] == "cold_among_cold") & (other["model"] == "kgrec")].assign(model="kgrec_no_kg")
            without = versus(pd.concat([kind["cold_among_cold"], other]), "kgrec_no_kg")
        every = pd.read_parquet(report / "per_user.parquet")
        every_mean = every[every["model"] == "kgrec"].groupby("seed")[metric].mean().mean()
        seeds = ", ".join(str(s) for s in sorted(set(results["seed"])))
        lines.append(f"| {report.name} | {seeds} | {mean['cold_among_cold']:.4f} | {versus(kind['cold_among_cold'], content)} | "
                     f"{without} | {mean['cold']:.4f} | {versus(kind['cold'], content)} | {mean['warm']:.4f} | "
                     f"{versus(kind['warm'], baseline)} | {every_mean:.4f} | {versus(every, baseline)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("reports", nargs="+", type=Path)
    p.add_argument("--headline", action="store_true", help="one row per report: kgrec's gains (the README's table)")
    p.add_argument("--metric", default="ndcg@10", help="the headline's metric")
    args = p.parse_args()
    if args.headline:
        print(headline(args.reports, args.metric))
        return
    for report in args.reports:
        print(summarise(report))


if __name__ == "__main__":
    main()
