"""One training epoch on 1 process x 1 thread against N processes x 1 thread under torchrun, same
global batch: does replicating the full-graph propagation and splitting only the loss buy anything?

    nice -n 10 python benchmarks/ddp_speed.py ARTIFACT [--procs 2] [--set KEY=VALUE ...]

Prints the training seconds of the epoch (validation excluded) and the ratio, side by side.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def epoch_seconds(graph: str, procs: int, sets: list[str], out: Path) -> float:
    launch = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs)]
              if procs > 1 else [sys.executable])
    cmd = launch + ["-m", "kgrec", "train", "--graph", graph, "--out", str(out), "--set", "pretrain.epochs=1",
                    "--set", "finetune.epochs=0", "--set", "model.path_hops=0"] + [a for s in sets for a in ("--set", s)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
    return float(pd.read_csv(out / "metrics.csv").query("epoch == 1")["train_s"].iloc[0])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("graph")
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--set", action="append", default=[])
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one = epoch_seconds(args.graph, 1, args.set, Path(tmp) / "one")
        many = epoch_seconds(args.graph, args.procs, args.set, Path(tmp) / "many")
    print(f"{'processes x threads':<22}{'epoch train s':>14}{'speed-up':>10}")
    print(f"{'1 x 1':<22}{one:>14.1f}{1.0:>10.2f}")
    print(f"{f'{args.procs} x 1':<22}{many:>14.1f}{one / many:>10.2f}")


if __name__ == "__main__":
    main()
