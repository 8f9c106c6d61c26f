"""One training step (forward + backward through a stack of relational layers) of
kgrec's default encoder layer (plain normalised propagation over every relation, one
CSR product), its options (relation gates ``mult``; with CompGCN's transforms, ``mult``
or ``sub``; R-GCN with bases), and PyG's RGCNConv and
FastRGCNConv, on the same real graph, width, depth and device, side by side, at
three graph sizes (a share of the edges kept).

Each (layer, size) runs in its own subprocess so its peak memory is its own;
on CPU the table reports the RSS growth over the process after loading the
graph, on CUDA ``torch.cuda.max_memory_allocated``.

    python benchmarks/encoder_speed.py --graph ml1m_to_ml100k --dim 64 --layers 2 [--device cuda]
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
from kgrec.models import CompGCNLayer, RGCNLayer, RelationalGraph
spec, name, share, dim, depth, device, steps = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6], int(sys.argv[7])
torch.manual_seed(0)
data = build_graph(load_spec(spec)).data
for et in data.edge_types:
    ei = data[et].edge_index
    keep = torch.rand(ei.shape[1]) < share
    data[et].edge_index = ei[:, keep]
g = RelationalGraph.from_hetero(data, device)
R, N, E = len(g.relations), g.num_nodes, g.edge_index.shape[1]
x = torch.nn.Parameter(torch.randn(N, dim, device=device) * 0.1)
rel = torch.nn.Parameter(torch.randn(R, dim, device=device) * 0.1)
if device.startswith("cuda"):
    torch.cuda.reset_peak_memory_stats()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
if name.startswith("kgrec"):
    if "R-GCN" in name:
        layers = [RGCNLayer(dim, dim, R, num_bases=8).to(device) for _ in range(depth)]
    else:
        comp = "none" if "none" in name else "sub" if "sub" in name else "mult"
        layers = [CompGCNLayer(dim, dim, comp, transform="+ W" in name).to(device) for _ in range(depth)]
    def step():
        h, z = x, rel
        for layer in layers:
            h, z = layer(h, z, g)
        return h
else:
    from torch_geometric.nn import FastRGCNConv, RGCNConv
    cls = RGCNConv if name == "PyG RGCNConv" else FastRGCNConv
    layers = [cls(dim, dim, R, num_bases=8).to(device) for _ in range(depth)]
    def step():
        h = x
        for layer in layers:
            h = layer(h, g.edge_index, g.edge_type)
        return h
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

LAYERS = ("kgrec default (none)", "kgrec mult", "kgrec mult + W", "kgrec sub + W", "kgrec R-GCN bases", "PyG RGCNConv",
          "PyG FastRGCNConv")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--graph", default="ml1m_to_ml100k", help="shipped spec name in graphs/")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2, help="depth of the stack")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--shares", default="0.25,0.5,1.0", help="shares of the edges to keep")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per (layer, size) before it is reported as timed out")
    args = ap.parse_args()
    spec = Path(__file__).resolve().parents[1] / "graphs" / f"{args.graph}.toml"
    print(f"graph {args.graph}, dim {args.dim}, {args.layers} layers, R-GCN layers with 8 bases, device {args.device},"
          f" mean of {args.steps} steps (forward + backward)\n")
    print(f"{'layer':<22}{'edges':>11}{'relations':>10}{'step s':>10}{'vs kgrec':>10}{'peak MiB':>10}")
    for share in args.shares.split(","):
        ref = None
        for name in LAYERS:
            try:
                r = subprocess.run([sys.executable, "-c", CHILD, str(spec), name, share, str(args.dim), str(args.layers),
                                    args.device, str(args.steps)], capture_output=True, text=True, timeout=args.timeout)
            except subprocess.TimeoutExpired:
                print(f"{name:<22}{'':>11}{'':>10}{'> ' + str(args.timeout):>10}")
                continue
            if r.returncode:
                why = (r.stderr.strip().splitlines() or [f"killed (exit {r.returncode}, likely out of memory)"])[-1]
                print(f"{name:<22} failed: {why}")
                continue
            m = json.loads(r.stdout)
            ref = ref or m["step_s"]
            print(f"{name:<22}{m['edges']:>11,}{m['relations']:>10}{m['step_s']:>10.3f}{m['step_s'] / ref:>9.1f}x"
                  f"{m['peak_mb']:>10.0f}")
        print()


if __name__ == "__main__":
    main()
