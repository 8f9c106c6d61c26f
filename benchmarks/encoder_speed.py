"""One training step (forward + backward of one layer) of kgrec's CompGCN layer
against PyG's RGCNConv and FastRGCNConv, on the same real graph, width and
device, side by side, at three graph sizes (a share of the edges kept).

Each (layer, size) runs in its own subprocess so its peak RSS is its own; the
table reports the RSS growth over the process after loading the graph.

    python benchmarks/encoder_speed.py --graph ml1m_to_ml100k --dim 64 [--device cuda]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, resource, sys, time, torch
from kgrec import build_graph, load_spec
from kgrec.models import CompGCNLayer, RelationalGraph
spec, layer_name, share, dim, device, steps = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5], int(sys.argv[6])
torch.manual_seed(0)
data = build_graph(load_spec(spec)).data
for et in data.edge_types:
    ei = data[et].edge_index
    keep = torch.rand(ei.shape[1]) < share
    data[et].edge_index = ei[:, keep]
g = RelationalGraph.from_hetero(data, device)
R, N, E = len(g.relations), g.num_nodes, g.edge_index.shape[1]
x = torch.nn.Parameter(torch.randn(N, dim, device=device) * 0.1)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
if layer_name == "kgrec CompGCNLayer":
    layer = CompGCNLayer(dim, dim).to(device)
    rel = torch.nn.Parameter(torch.randn(R, dim, device=device))
    step = lambda: layer(x, rel, g)[0]
else:
    from torch_geometric.nn import FastRGCNConv, RGCNConv
    cls = RGCNConv if layer_name == "PyG RGCNConv" else FastRGCNConv
    layer = cls(dim, dim, R).to(device)
    step = lambda: layer(x, g.edge_index, g.edge_type)
def run():
    out = step(); out.square().mean().backward()
    if device.startswith("cuda"): torch.cuda.synchronize()
run()
t = time.perf_counter()
for _ in range(steps): run()
dt = (time.perf_counter() - t) / steps
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base
if device.startswith("cuda"): peak = torch.cuda.max_memory_allocated() / 2**20
print(json.dumps({"edges": E, "nodes": N, "relations": R, "step_s": dt, "peak_mb": peak}))
"""

LAYERS = ("kgrec CompGCNLayer", "PyG FastRGCNConv", "PyG RGCNConv")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--graph", default="ml1m_to_ml100k", help="shipped spec name in graphs/")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--shares", default="0.25,0.5,1.0", help="shares of the edges to keep")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per (layer, size) before it is reported as timed out")
    args = ap.parse_args()
    spec = Path(__file__).resolve().parents[1] / "graphs" / f"{args.graph}.toml"
    print(f"graph {args.graph}, dim {args.dim}, device {args.device}, mean of {args.steps} steps (forward + backward)\n")
    print(f"{'layer':<22}{'edges':>11}{'relations':>10}{'step s':>10}{'vs kgrec':>10}{'peak MiB':>10}")
    for share in args.shares.split(","):
        ref = None
        for name in LAYERS:
            try:
                r = subprocess.run([sys.executable, "-c", CHILD, str(spec), name, share, str(args.dim), args.device,
                                    str(args.steps)], capture_output=True, text=True, timeout=args.timeout)
            except subprocess.TimeoutExpired:
                print(f"{name:<22}{'':>11}{'':>10}{'> ' + str(args.timeout):>10}")
                continue
            if r.returncode:
                why = (r.stderr.strip().splitlines() or [f"killed (exit {r.returncode}, likely out of memory)"])[-1]
                print(f"{name:<22} failed: {why}")
                continue
            m = json.loads(r.stdout)
            ref = ref or m["step_s"]
            print(f"{name:<22}{m['edges']:>11,}{m['relations']:>10}{m['step_s']:>10.3f}{m['step_s'] / ref:>9.1f}x{m['peak_mb']:>10.0f}")
        print()


if __name__ == "__main__":
    main()
