"""N-Triples throughput: kgrec's streaming parser against rdflib on the same file.

Writes the MovieLens-100K Freebase KG (from KGREC_DATA_DIR) as N-Triples,
repeated ``--scale`` times with renamed entities, plus one label literal per
entity, then parses it with both and prints a table (triples/s, peak memory,
ratio). Each parser runs in its own subprocess so peak RSS is its own.

    python benchmarks/ntriples_throughput.py --scale 5
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
path, which = sys.argv[1], sys.argv[2]
t = time.perf_counter()
if which == "kgrec":
    from kgrec.data.rdf import iter_ntriples
    n = sum(1 for _ in iter_ntriples(path))
else:
    import rdflib
    g = rdflib.Graph(); g.parse(path, format="nt"); n = len(g)
dt = time.perf_counter() - t
print(json.dumps({"triples": n, "seconds": dt, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def write_file(out: Path, scale: int) -> int:
    from kgrec.data import read_triples

    root = Path(os.environ.get("KGREC_DATA_DIR", "../shared/data"))
    kg = read_triples(root / "movielens-100k" / "ml-100k.kg")
    ns, n = "http://rdf.freebase.com/ns/", 0
    with open(out, "w", encoding="utf-8") as f:
        for k in range(scale):
            sfx = f"_{k}" if k else ""
            for h, r, t in zip(kg["head"], kg["relation"], kg["tail"]):
                f.write(f"<{ns}{h}{sfx}> <{ns}{r}> <{ns}{t}{sfx}> .\n")
                n += 1
            for e in sorted(set(kg["head"])):
                f.write(f'<{ns}{e}{sfx}> <http://www.w3.org/2000/01/rdf-schema#label> "entity \\"{e}\\""@en .\n')
                n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=5, help="copies of the ML-100K KG to write")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "kg.nt"
        n = write_file(path, args.scale)
        size = path.stat().st_size / 2**20
        rows = {}
        for which in ("kgrec", "rdflib"):
            r = subprocess.run([sys.executable, "-c", CHILD, str(path), which], capture_output=True, text=True, check=True)
            rows[which] = json.loads(r.stdout)
    print(f"N-Triples file: {n:,} lines, {size:.1f} MiB\n")
    print(f"{'parser':<22}{'triples':>12}{'seconds':>10}{'triples/s':>14}{'peak MiB':>10}")
    for which, label in (("kgrec", "kgrec iter_ntriples"), ("rdflib", "rdflib Graph.parse")):
        r = rows[which]
        print(f"{label:<22}{r['triples']:>12,}{r['seconds']:>10.2f}{r['triples'] / r['seconds']:>14,.0f}{r['peak_mb']:>10.0f}")
    print(f"\nspeed-up (rdflib time / kgrec time): {rows['rdflib']['seconds'] / rows['kgrec']['seconds']:.2f}x")


if __name__ == "__main__":
    main()
