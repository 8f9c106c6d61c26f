"""Build time and peak memory of every shipped graph spec.

Each spec is built in its own subprocess (so peak RSS is that build's own),
from KGREC_DATA_DIR, and the table is printed sorted by input size.

    python benchmarks/build_graphs.py [SPEC ...]
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from kgrec import build_graph, load_spec
t = time.perf_counter()
g = build_graph(load_spec(sys.argv[1]))
built = time.perf_counter() - t
g.save(sys.argv[2])
total = time.perf_counter() - t
edges = sum(int(g.data[et].edge_index.shape[1]) for et in g.data.edge_types)
nodes = sum(int(g.data[t].num_nodes) for t in g.data.node_types)
print(json.dumps({"build_s": built, "total_s": total, "nodes": nodes, "edges": edges,
                  "inputs_mb": sum(v["bytes"] for v in g.manifest["inputs"].values()) / 2**20,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    root = Path(__file__).resolve().parents[1] / "graphs"
    specs = [Path(s) for s in sys.argv[1:]] or sorted(root.glob("*.toml"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in specs:
            r = subprocess.run([sys.executable, "-c", CHILD, str(spec), str(Path(tmp) / spec.stem)],
                               capture_output=True, text=True)
            if r.returncode:
                print(f"{spec.stem}: failed\n{r.stderr.strip().splitlines()[-1]}", file=sys.stderr)
                continue
            rows.append((spec.stem, json.loads(r.stdout)))
    rows.sort(key=lambda r: r[1]["inputs_mb"])
    print(f"{'spec':<34}{'inputs MiB':>11}{'nodes':>10}{'edges':>11}{'build s':>9}{'+save s':>9}{'peak MiB':>10}")
    for name, r in rows:
        print(f"{name:<34}{r['inputs_mb']:>11.1f}{r['nodes']:>10,}{r['edges']:>11,}{r['build_s']:>9.2f}"
              f"{r['total_s']:>9.2f}{r['peak_mb']:>10.0f}")


if __name__ == "__main__":
    main()
