"""One training epoch on 1 process x 1 thread against N processes x 1 thread under torchrun, same
global batch: does replicating the full-graph propagation and splitting only the loss buy anything?

    nice -n 10 python benchmarks/ddp_speed.py ARTIFACT [--procs 2] [--set KEY=VALUE ...]

Prints the training seconds of the epoch (validation excluded) and the ratio, side by side; then,
because wall time on a shared, oversubscribed machine rewards more processes with a bigger share
of the CPUs, the CPU seconds (one thread, one process) of a training step and of its full-graph
propagation alone (forward and backward), and the bound that propagation's share puts on any
speed-up of the replicated scheme (Amdahl: 1 / (p + (1 - p) / N)).
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
sys.path.insert(0, str(ROOT))  # this checkout's kgrec, as the torchrun children get it


def epoch_seconds(graph: str, procs: int, sets: list[str], out: Path) -> float:
    launch = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs)]
              if procs > 1 else [sys.executable])
    cmd = launch + ["-m", "kgrec", "train", "--graph", graph, "--out", str(out), "--set", "pretrain.epochs=1",
                    "--set", "finetune.epochs=0", "--set", "model.path_hops=0"] + [a for s in sets for a in ("--set", s)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
    return float(pd.read_csv(out / "metrics.csv").query("epoch == 1")["train_s"].iloc[0])


def step_cpu_seconds(graph: str, sets: list[str], steps: int = 3) -> tuple[float, float]:
    """CPU seconds of one training step (pre-training, one thread) and of its propagation alone."""
    import time

    import torch

    from kgrec.graph.artifact import TARGET, load_graph
    from kgrec.models import RelationalGraph, TransferModel
    from kgrec.train import trainer
    from kgrec.cli import parse_overrides
    from kgrec.train.config import make_config

    torch.set_num_threads(1)
    cfg = make_config(None, {"graph": graph, **parse_overrides(sets)})
    artifact = load_graph(graph)
    g = RelationalGraph.from_hetero(artifact.data, torch.device("cpu"))
    torch.manual_seed(0)
    model = TransferModel(g.sizes, g.num_relations, cfg.model, trainer.item_features(artifact, cfg.model, 0))
    data = trainer._batches(artifact, g, ("source", TARGET), cfg)
    data.pairs[TARGET] = data.pairs[TARGET][:, :steps * cfg.pretrain.batch_size]
    opt = torch.optim.Adam(trainer._trainable(model, "pretrain", cfg), lr=cfg.pretrain.lr)
    t0 = time.process_time()
    trainer._train_epoch("pretrain", 1, model, g, data, cfg, cfg.pretrain, opt, torch.Generator().manual_seed(0), False)
    step = (time.process_time() - t0) / steps
    t0 = time.process_time()
    for _ in range(steps):
        h = model.encoder(g).h
        h.backward(torch.ones_like(h))
    return step, (time.process_time() - t0) / steps


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
    step, propagation = step_cpu_seconds(args.graph, args.set)
    p = propagation / step
    print(f"\n{'one step, 1 thread':<22}{'CPU s':>8}{'share':>8}")
    print(f"{'whole step':<22}{step:>8.2f}{1.0:>8.2f}")
    print(f"{'propagation (f+b)':<22}{propagation:>8.2f}{p:>8.2f}")
    print(f"bound on the speed-up of {args.procs} ranks (replicated propagation): {1 / (p + (1 - p) / args.procs):.2f}")


if __name__ == "__main__":
    main()
