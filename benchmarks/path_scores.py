"""Path scores through the item-item operator (``kgrec.models.paths.ItemWalks``) against the dense
walk they replaced, side by side on a trained run: one full validation pass of the run
(``kgrec.serve.evaluate_run(run, "valid")``: embeddings, walk scores, blend, ranking), each in a
fresh process, its time and peak memory, and whether the metrics are the same.

The dense walk (kept here as the reference, :class:`DenseWalks`) held a ``[N, B]`` matrix of each
user batch's first steps and ``[K, B]`` after the next one, over every node N; the operator holds
the walk's last ``hops - 1`` steps from each first-step node to each target item, built once (in
chunks within ``eval.memory_mb``), and a batch is one sparse product into ``[B, M]``.

    python benchmarks/path_scores.py RUN_DIR [--threads 1] [--memory-mb MB]

Peak memory is the process's peak resident size (``VmHWM``) during the pass above what it held
before it (the run loaded; the pass includes the encoder's forward pass over the graph), then the
same for ranking the validation users by the walk scores alone, as a run's choice of walk does: what
the walks add to the model and the graph. A first row measures the pass without path scores (the
embeddings alone), for what the model and the graph take by themselves.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from torch import Tensor

from kgrec.models.graph import RelationalGraph, sparse_op, spmm

WORKER = r"""
import ctypes, dataclasses, json, sys, time, torch
run_dir, variant, threads, memory_mb, here, tops = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), \
    sys.argv[5], sys.argv[6]
torch.set_num_threads(threads)
sys.path.insert(0, here)
from path_scores import DenseWalks
from kgrec.graph.artifact import TARGET
from kgrec.serve import load_run
from kgrec.serve.evaluate import evaluate_run
from kgrec.serve.run import path_scorer

libc = ctypes.CDLL("libc.so.6")
def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024

run = load_run(run_dir)
if memory_mb:
    run = dataclasses.replace(run, config=dataclasses.replace(
        run.config, eval=dataclasses.replace(run.config.eval, memory_mb=memory_mb)), _cache={})
def measure(fn):
    libc.malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before, t = status("VmRSS"), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t, status("VmHWM") - before

# the pass without path scores: what the encoder's forward pass and the embedding scores take
_, plain_s, plain_mb = measure(lambda: evaluate_run(dataclasses.replace(run, path_weight=0.0, _cache={}), "valid"))
scorer = path_scorer(run.config, run.artifact, run.path_graph, run.device, run.path_filter)
if variant == "dense":
    scorer = DenseWalks(scorer.graph, scorer.hops, scorer.alpha, scorer.beta)
run._cache["paths"] = scorer
items = run.artifact.items_of(TARGET)

def validation_pass():  # the operator, where there is one, is built inside it (timed apart too)
    t = time.perf_counter()
    entries = scorer.item_walks(items).op._nnz() if variant == "operator" else 0
    build = time.perf_counter() - t
    return evaluate_run(run, "valid"), entries, build

(metrics, entries, build), seconds, peak = measure(validation_pass)
# the walks alone, ranked as choose_filter ranks them: what scoring adds without the encoder's forward pass
from kgrec.eval import rank, ranking_task
task = ranking_task(run.artifact, "valid")
top, walk_s, walk_mb = measure(lambda: rank(lambda u: scorer.scores(u, task.items), task, 20,
                                            run.config.eval.memory_mb, user_bytes=scorer.batch_bytes(task.items)))
print(json.dumps({"seconds": seconds, "build_s": build, "peak_mb": peak, "entries": entries, "walk_s": walk_s,
                  "walk_peak_mb": walk_mb, "plain_s": plain_s, "plain_mb": plain_mb,
                  "memory_mb": run.config.eval.memory_mb, "metrics": metrics["all"]}))
torch.save(top, tops)
"""


class DenseWalks:
    """The path scorer before the item-item operator (kgrec 260ea12), the reference here: a user
    batch's first steps as a dense ``[N, B]``, the walk's middle steps over every node, and its last
    two restricted to what reaches the items scored."""

    def __init__(self, graph: RelationalGraph, hops: int = 3, alpha: float = 0.75, beta: float | None = None):
        self.graph, self.hops, self.alpha, self.beta = graph, hops, alpha, beta
        src, dst = graph.edge_index
        deg = torch.bincount(src, minlength=graph.num_nodes).float().clamp(min=1)
        self._deg = deg
        into = 0.0 if beta is not None else alpha - 1
        self._edges = (src, dst, deg[src].pow(-alpha) * deg[dst].pow(into))
        self._walk = sparse_op(dst, src, self._edges[2], (graph.num_nodes, graph.num_nodes))
        self._towards: dict[bytes, tuple] = {}

    def batch_bytes(self, items: Tensor) -> int:
        return 0  # the batch was sized from the [B, M] matrices alone

    def _last_steps(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        key = rows.cpu().numpy().tobytes()
        if key not in self._towards:
            src, dst, values = self._edges
            n = self.graph.num_nodes
            pos = torch.full((n,), -1, dtype=torch.long)
            pos[rows] = torch.arange(len(rows))
            into = pos[dst] >= 0
            mid = torch.unique(src[into])
            mpos = torch.full((n,), -1, dtype=torch.long)
            mpos[mid] = torch.arange(len(mid))
            before = mpos[dst] >= 0
            self._towards[key] = (sparse_op(mpos[dst[before]], src[before], values[before], (len(mid), n)).a,
                                  sparse_op(pos[dst[into]], mpos[src[into]], values[into], (len(rows), len(mid))).a)
        return self._towards[key]

    @torch.no_grad()
    def scores(self, users: Tensor, items: Tensor) -> Tensor:
        g = self.graph
        out = self._walk.a_t
        start = users + g.offsets["user"]
        crow, col, val = out.crow_indices(), out.col_indices(), out.values()
        lo, counts = crow[start], crow[start + 1] - crow[start]
        column = torch.repeat_interleave(torch.arange(len(users)), counts)
        idx = torch.arange(int(counts.sum())) - torch.repeat_interleave(counts.cumsum(0) - counts, counts) \
            + torch.repeat_interleave(lo, counts)
        x = torch.zeros(g.num_nodes, len(users))
        x[col[idx], column] = val[idx]
        rows = items + g.offsets["item"]
        if self.hops == 1:
            walks = x[rows]
        else:
            for _ in range(self.hops - 3):
                x = spmm(self._walk.a, x)
            before, last = self._last_steps(rows)
            walks = spmm(last, spmm(before, x))
        walks = walks.T
        return walks if not self.beta else walks * self._deg[rows].pow(-self.beta)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="a trained run directory (kgrec train) whose path weight is not 0")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--memory-mb", type=int, default=0, help="eval.memory_mb (default: the run's)")
    args = ap.parse_args()
    here = str(Path(__file__).resolve().parent)
    rows, tops = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in ("dense", "operator"):
            r = subprocess.run([sys.executable, "-c", WORKER, args.run, variant, str(args.threads), str(args.memory_mb),
                                here, f"{tmp}/{variant}.pt"], capture_output=True, text=True, cwd=str(Path(here).parent))
            if r.returncode:
                sys.exit(f"{variant}: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
            rows[variant] = json.loads(r.stdout.strip().splitlines()[-1])
            tops[variant] = torch.load(f"{tmp}/{variant}.pt")
    dense, op = rows["dense"], rows["operator"]
    print(f"run {args.run}: one validation pass, {args.threads} thread(s), eval.memory_mb {op['memory_mb']}, "
          f"fresh process each\n")
    print(f"{'':<30}{'validation pass':>22}{'walk scores alone':>22}")
    print(f"{'path scores':<30}{'seconds':>11}{'peak MiB':>11}{'seconds':>11}{'peak MiB':>11}")
    print(f"{'none (the embeddings alone)':<30}{op['plain_s']:>11.1f}{op['plain_mb']:>11.0f}{'':>11}{'':>11}")
    for name, r in (("dense [N, B] walk (before)", dense), ("item-item operator (after)", op)):
        print(f"{name:<30}{r['seconds']:>11.1f}{r['peak_mb']:>11.0f}{r['walk_s']:>11.1f}{r['walk_peak_mb']:>11.0f}")
    print(f"{'after / before':<30}" + "".join(f"{op[k] / dense[k]:>10.2f}x" for k in
                                                ("seconds", "peak_mb", "walk_s", "walk_peak_mb")))
    same = (tops["dense"] == tops["operator"]).all(1)
    print(f"\nbuilding the operator: {op['build_s']:.1f} s (in the pass), {op['entries']:,} entries; "
          f"top-20 lists of the walks alone identical for {int(same.sum()):,} of {len(same):,} users (the others "
          f"order near-ties, equal to float precision, otherwise: the sums run in another order)")
    keys = [k for k in dense["metrics"] if k != "users"]
    diff = max(abs(dense["metrics"][k] - op["metrics"][k]) for k in keys)
    print(f"\nmetrics ({', '.join(keys)}): {'identical' if diff == 0 else f'largest difference {diff:.2e}'}; "
          f"ndcg@10 {dense['metrics']['ndcg@10']:.5f} before, {op['metrics']['ndcg@10']:.5f} after")


if __name__ == "__main__":
    main()
