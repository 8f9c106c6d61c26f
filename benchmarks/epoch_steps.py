"""What capping the steps per epoch (``max_steps``) buys on a shipped graph: one training epoch
per setting, side by side, each in a fresh process on one torch thread (CPU seconds are the
measure on a shared machine; wall seconds are printed too).

An epoch of ``n`` target training interactions takes ``ceil(n / batch)`` steps, each a full-graph
propagation; ``max_steps = m`` grows the batch to ``ceil(n / m)`` (and the learning rate by the
square root of the growth) so that an epoch is at most ``m`` propagations. The loss over the
``n`` interactions is the same work either way; what ``max_steps`` saves is propagations.

    python benchmarks/epoch_steps.py --graph graphs/amazon_cloth_to_sport.toml --max-steps 0,16,8
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time, torch
torch.set_num_threads(1)
from kgrec.graph.artifact import SOURCE, TARGET, load_graph
from kgrec.graph.views import target_only
from kgrec.models import RelationalGraph, TransferModel
from kgrec.train import trainer
from kgrec.train.config import make_config
graph, mode, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
stage_name = "pretrain" if mode == "transfer" else "target_only"
cfg = make_config(None, {"graph": graph, "mode": mode, f"{stage_name}.max_steps": steps})
artifact = load_graph(graph)
data_graph = artifact.data if mode == "transfer" else target_only(artifact.data)
g = RelationalGraph.from_hetero(data_graph, "cpu")
torch.manual_seed(0)
model = TransferModel(g.sizes, g.num_relations, cfg.model, {})
domains = (SOURCE, TARGET) if mode == "transfer" else (TARGET,)
data = trainer._batches(artifact, g, domains, cfg)
stage = getattr(cfg, stage_name).for_interactions(data.pairs[TARGET].shape[1])
opt = trainer.adam(trainer._trainable(model, stage_name, cfg), stage.lr)
gen = torch.Generator().manual_seed(0)
t, r = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
trainer._train_epoch(stage_name, 1, model, g, data, cfg, stage, opt, gen, False)
e = resource.getrusage(resource.RUSAGE_SELF)
n = data.pairs[TARGET].shape[1]
print(json.dumps({"s": time.perf_counter() - t, "cpu_s": e.ru_utime - r.ru_utime + e.ru_stime - r.ru_stime,
                  "steps": -(-n // stage.batch_size), "batch": stage.batch_size, "lr": stage.lr, "n": n,
                  "edges": int(g.edge_index.shape[1])}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--graph", required=True, help="a graph artifact directory, or a spec (built first)")
    ap.add_argument("--mode", default="target_only", choices=("target_only", "transfer"))
    ap.add_argument("--max-steps", default="0,16,8", help="comma-separated settings (0: no cap)")
    args = ap.parse_args()
    graph = Path(args.graph)
    if graph.suffix == ".toml":
        from kgrec import build_graph, load_spec
        out = Path("/tmp") / f"kgrec-epoch-steps-{graph.stem}"
        build_graph(load_spec(graph)).save(out, overwrite=True)
        graph = out
    print(f"graph {args.graph}, mode {args.mode}, one epoch per setting, fresh process, 1 torch thread\n")
    print(f"{'max_steps':>10}{'steps':>7}{'batch':>8}{'lr':>9}{'epoch s':>9}{'cpu s':>8}{'cpu vs first':>14}")
    first = None
    for m in args.max_steps.split(","):
        r = subprocess.run([sys.executable, "-c", CHILD, str(graph), args.mode, m], capture_output=True, text=True,
                           cwd=ROOT)
        if r.returncode:
            print(f"{m:>10}  failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
            continue
        d = json.loads(r.stdout.strip().splitlines()[-1])
        first = first or d["cpu_s"]
        print(f"{m:>10}{d['steps']:>7}{d['batch']:>8,}{d['lr']:>9.4f}{d['s']:>9.1f}{d['cpu_s']:>8.1f}"
              f"{d['cpu_s'] / first:>13.2f}x", flush=True)
    print(f"\n{d['n']:,} target training interactions, {d['edges']:,} edges in the graph trained on")


if __name__ == "__main__":
    main()
