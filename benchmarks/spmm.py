"""CSR x dense products as kgrec runs them (``kgrec.models.graph.spmm``) against the plain
``a @ x``, side by side in one process, on a shipped graph: the encoder's normalised
adjacency at the model's width, and the path scorer's last two walk steps at a user
batch's width. Each row also checks that both give the same numbers.

    python benchmarks/spmm.py [--graph amazon_cloth_to_sport] [--threads 1]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from kgrec import build_graph, load_spec
from kgrec.graph.artifact import TARGET
from kgrec.models import RelationalGraph
from kgrec.models.graph import sparse_op, spmm
from kgrec.models.paths import PathScorer


def _seconds(fn, repeats: int) -> float:
    fn()
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t) / repeats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--graph", default="amazon_cloth_to_sport", help="shipped spec name in graphs/")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (a benchmark worker of --jobs 2 has 1)")
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    spec = Path(__file__).resolve().parents[1] / "graphs" / f"{args.graph}.toml"
    artifact = build_graph(load_spec(spec))
    g = RelationalGraph.from_hetero(artifact.data, "cpu")
    src, dst = g.edge_index
    deg = torch.bincount(dst, minlength=g.num_nodes).float().clamp(min=1)
    adj = sparse_op(dst, src, deg[src].rsqrt() * deg[dst].rsqrt(), (g.num_nodes, g.num_nodes)).a
    before, last = PathScorer(g)._last_steps(artifact.items_of(TARGET) + g.offsets["item"])
    gen = torch.Generator().manual_seed(0)
    cases = [("adjacency x [N, 64]", adj, torch.randn(g.num_nodes, 64, generator=gen)),
             ("walk step x [N, 745]", before, torch.rand(g.num_nodes, 745, generator=gen)),
             ("last step x [K, 745]", last, torch.rand(before.shape[0], 745, generator=gen))]
    print(f"graph {args.graph}: {g.num_nodes:,} nodes, {g.edge_index.shape[1]:,} edges, {args.threads} thread(s), "
          f"mean of {args.repeats}\n")
    print(f"{'product':<24}{'shape of A':>18}{'a @ x ms':>11}{'spmm ms':>10}{'speed-up':>10}  same")
    for name, a, x in cases:
        plain = _seconds(lambda: a @ x, args.repeats)
        ours = _seconds(lambda: spmm(a, x), args.repeats)
        same = torch.equal(a @ x, spmm(a, x))
        shape = f"{a.shape[0]:,} x {a.shape[1]:,}"
        print(f"{name:<24}{shape:>18}{plain * 1e3:>11.1f}{ours * 1e3:>10.1f}{plain / ours:>9.1f}x  {same}")


if __name__ == "__main__":
    main()
