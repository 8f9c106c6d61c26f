"""Duplicate listings across domains: the tables of ``docs/duplicate_listings.md``.

    KGREC_DATA_DIR=../shared/data python benchmarks/duplicate_listings.py [SPEC ...]

For each two-domain spec (default: the shipped Amazon specs), built with its item alignment
and with ``[align] items = "none"``: the listings with identical reviewer sets (>= 2 users),
the same under 5 random permutations of the source users (the chance level), the held-out pairs
that repeat a source training review (:func:`kgrec.graph.align.duplicate_audit`), and the
full-ranking NDCG@10/20 of a scorer that learns nothing and ranks first the target listings of
the products in the user's source training history (then MostPop), against MostPop.
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from kgrec import build_graph, load_spec
from kgrec.eval.ranking import evaluate, mean_metrics, ranking_task
from kgrec.graph.align import duplicate_audit, identical_user_sets
from kgrec.graph.artifact import SOURCE, TARGET, GraphArtifact
from kgrec.models.baselines import most_popular

GRAPHS = Path(__file__).resolve().parents[1] / "graphs"
SPECS = ("amazon_cloth_to_sport", "amazon_sport_to_cloth", "amazon_electronic_to_phone",
         "amazon_cloth_to_sport_coldstart", "art_office")


def lookup_vs_mostpop(g: GraphArtifact) -> dict[str, float]:
    """Test NDCG@10/20 of the duplicate lookup and of MostPop (full ranking, train and valid filtered)."""
    i = g.interactions
    s, t = i[i["domain"] == SOURCE], i[i["domain"] == TARGET]
    pairs = identical_user_sets(s, t, 2)
    n, nu = int(g.data["item"].num_nodes), int(g.data["user"].num_nodes)
    same = sp.csr_matrix((np.ones(len(pairs)), (pairs["source"].astype(int), pairs["target"].astype(int))), (n, n))
    st = s[(s["split"] == "train") & ~s["duplicate"]]
    history = sp.csr_matrix((np.ones(len(st)), (st["user"], st["item"])), (nu, n))
    lookup = (history @ same).tocsr()
    pop = most_popular(g)
    pop = pop / pop.max()
    task = ranking_task(g, "test", exclude=("train", "valid"))
    cols = task.items
    out = {}
    for name, fn in (("lookup", lambda u: (torch.from_numpy(lookup[u.numpy()].toarray()).float() + 1e-3 * pop)[:, cols]),
                     ("mostpop", lambda u: pop.expand(len(u), -1)[:, cols])):
        m = mean_metrics(evaluate(fn, task, (10, 20)))
        out[f"{name} ndcg@10"], out[f"{name} ndcg@20"] = m["ndcg@10"], m["ndcg@20"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("specs", nargs="*", default=[str(GRAPHS / f"{s}.toml") for s in SPECS])
    args = p.parse_args()
    print("| spec | alignment | identical sets | permuted (5 seeds) | test pairs repeating a source review "
          "| valid likewise | lookup NDCG@10 | MostPop NDCG@10 | lookup NDCG@20 | MostPop NDCG@20 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for path in args.specs:
        spec = load_spec(path)
        for align in dict.fromkeys((spec.align.items, "none")):
            g = build_graph(replace(spec, align=replace(spec.align, items=align)))
            i = g.interactions
            s, t = i[i["domain"] == SOURCE], i[i["domain"] == TARGET]
            perm = [len(identical_user_sets(s, t, 2, permute_seed=k)) for k in range(5)]
            a = duplicate_audit(g)
            m = lookup_vs_mostpop(g)
            test, valid = a["test"], a["valid"]
            print(f"| {Path(path).stem} | {align} | {a['listings']:,} | {', '.join(map(str, perm))} | "
                  f"{test['duplicates']:,} of {test['pairs']:,} ({test['duplicates'] / max(test['pairs'], 1):.1%}), "
                  f"{test['users']:,} users | {valid['duplicates']:,} of {valid['pairs']:,} | "
                  f"{m['lookup ndcg@10']:.4f} | {m['mostpop ndcg@10']:.4f} | {m['lookup ndcg@20']:.4f} | "
                  f"{m['mostpop ndcg@20']:.4f} |", flush=True)


if __name__ == "__main__":
    main()
