"""Each candidate filter blended with a trained run's embeddings: validation and test NDCG@10.

    python benchmarks/filter_choice.py RUN

For a run's trained model: RP3beta (alpha 0.25, beta 0) over the merged and the target graph, the
merged EASE (source weight 0.5, lambda 50) and the target's EASE (lambda 100), the settings chosen
alone on validation in the sport -> cloth seed-0 run of 4 December 2026; each blended at the weight
best on validation. It shows what keeping the filter best *alone* costs against keeping the one
whose *blend* is best (docs/results.md). Edit ``CANDIDATES`` for another run.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's kgrec

from kgrec.eval.ranking import mean_metrics, ranking_task  # noqa: E402
from kgrec.graph.views import target_only  # noqa: E402
from kgrec.models import RelationalGraph  # noqa: E402
from kgrec.models.itemknn import EASEFilter  # noqa: E402
from kgrec.models.paths import PathScorer  # noqa: E402
from kgrec.serve.run import load_run  # noqa: E402
from kgrec.train.trainer import choose_path_weight, validate  # noqa: E402
run = load_run(sys.argv[1])
art = run.artifact
valid, test = ranking_task(art, "valid"), ranking_task(art, "test", exclude=("train", "valid"))
merged = RelationalGraph.from_hetero(art.data); tgt = RelationalGraph.from_hetero(target_only(art.data))
CANDIDATES = {"merged rp3 a=0.25 b=0": PathScorer(merged, 3, 0.25, 0.0),
         "target rp3 a=0.25 b=0": PathScorer(tgt, 3, 0.25, 0.0),
         "merged ease w=0.5 lambda=50": EASEFilter(merged, valid.items, 0.5, 128, 50.0),
         "target ease w=0 lambda=100": EASEFilter(tgt, valid.items, 0.0, 128, 100.0)}
for name, f in CANDIDATES.items():
    t0 = time.time()
    w, by = choose_path_weight(run.model, run.graph, f, valid, (10,), 10, 256)
    t = mean_metrics(validate(run.model, run.graph, test, (10,), 256, f, w))["ndcg@10"]
    print(f"{name}: blend weight {w} valid {by[w]['ndcg@10']:.5f} test {t:.5f}  ({time.time()-t0:.0f}s)", flush=True)
