"""Transfer (pre-train on the merged graph, fine-tune on the target) against the
target-only control, same model and budget, over several seeds; prints mean ±
std of validation and test NDCG/Recall@10 and the epoch times.

The graph is built from the shipped spec unless ``--artifact`` names one.

    python benchmarks/transfer_vs_target_only.py --graph amazon_cloth_to_sport --seeds 0,1,2 [--set key=value ...]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _stats(xs: list[float]) -> str:
    if not xs:
        return "-"
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.mean(xs):.4f} ± {sd:.4f}"


def main() -> None:
    from kgrec import build_graph, load_graph, load_spec
    from kgrec.cli import parse_overrides
    from kgrec.train import train
    from kgrec.train.config import make_config

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--graph", default="amazon_cloth_to_sport", help="shipped spec name in graphs/")
    ap.add_argument("--artifact", help="an existing graph artifact to use instead of building the spec")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", default="runs/transfer-vs-target-only")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config overrides for both modes")
    args = ap.parse_args()
    out = Path(args.out) / args.graph
    artifact = Path(args.artifact) if args.artifact else out / "graph"
    if not args.artifact and not (artifact / "manifest.json").exists():
        build_graph(load_spec(ROOT / "graphs" / f"{args.graph}.toml")).save(artifact)
    load_graph(artifact)  # fail early on a bad artifact
    overrides = parse_overrides(args.set)
    rows = {}
    for mode in ("target_only", "transfer"):
        for seed in map(int, args.seeds.split(",")):
            cfg = make_config(None, {"graph": str(artifact), "mode": mode, "seed": seed, "device": args.device,
                                     **overrides})
            t0 = time.perf_counter()
            res = train(cfg, out / f"{mode}-seed{seed}", overwrite=True, progress=False,
                        log=lambda m: print(m, file=sys.stderr))
            run = json.loads((res.run_dir / "run.json").read_text())
            epoch_s = [s["mean_epoch_s"] for s in run["stages"].values() if s["mean_epoch_s"]]
            epochs = sum(s["epochs"] for s in run["stages"].values())
            rows.setdefault(mode, []).append({"valid": res.valid, "test": res.test, "epoch_s": epoch_s,
                                              "epochs": epochs, "wall_s": time.perf_counter() - t0})
    print(f"\ngraph {args.graph}, seeds {args.seeds}, overrides {overrides or 'none'}, device {args.device}\n")
    print("| mode | valid NDCG@10 | valid Recall@10 | test NDCG@10 | test Recall@10 | epochs | s/epoch | wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for mode, rs in rows.items():
        col = lambda split, m: _stats([r[split][m] for r in rs])
        eps = [e for r in rs for e in r["epoch_s"]]
        print(f"| {mode} | {col('valid', 'ndcg@10')} | {col('valid', 'recall@10')} | {col('test', 'ndcg@10')} | "
              f"{col('test', 'recall@10')} | {statistics.mean(r['epochs'] for r in rs):.0f} | "
              f"{statistics.mean(eps):.1f} | {statistics.mean(r['wall_s'] for r in rs):.0f} |")
    base = statistics.mean(r["valid"]["ndcg@10"] for r in rows["target_only"])
    gain = statistics.mean(r["valid"]["ndcg@10"] for r in rows["transfer"]) / base - 1 if base else float("nan")
    print(f"\ntransfer gain, valid NDCG@10: {gain:+.1%}")


if __name__ == "__main__":
    main()
