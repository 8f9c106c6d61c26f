"""One training epoch on 1 process x 1 thread against N processes x 1 thread under torchrun, same
global batch (and, for comparison, 1 process x N threads): what the replicated-graph, split-loss
scheme of ``kgrec.train.distributed`` buys, and why.

    python benchmarks/ddp_speed.py ARTIFACT [--procs 2] [--steps 16] [--set KEY=VALUE ...]

Run it on an otherwise idle machine: on a loaded one, N processes get N times the CPU share of one
and the wall-clock ratio measures the scheduler (docs/distributed.md). Prints, side by side in one
run:

1. the training seconds of one pre-training epoch (``kgrec train``, validation excluded) for
   1 x 1, N x 1 and 1 x N, the fastest of ``--rounds`` epochs each, run interleaved, and the ratios;
2. where a step's time goes (one process, one thread, ``--steps`` steps after one warm-up pass):
   the whole step; the part every rank repeats whatever its share (measured as a step whose share
   of the batch is empty: the propagation forward and backward over the whole graph, the combine,
   the global batch's negative sampling, the optimiser); the part the ranks split (the rest); and
   one all-reduce of the step's gradients between N processes (gloo, measured on the same tensors);
3. the step time that this arithmetic predicts for N ranks, ``replicated + split / N + all-reduce``,
   and its ratio, the ceiling of the scheme on this machine;
4. what splitting the propagation would trade: one ``[N, N] x [N, 64]`` sparse product against an
   all-gather and a reduce-scatter of the ``[N, 64]`` node table between N processes.

The epoch table also has N independent one-process epochs run side by side (each one's time):
what the machine gives parallel work that exchanges nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's kgrec, as the torchrun children get it


def epoch_seconds(graph: str, procs: int, threads: int, sets: list[str], out: Path) -> float:
    """Training seconds of one pre-training epoch of ``kgrec train`` on ``procs`` x ``threads``."""
    launch = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs)]
              if procs > 1 else [sys.executable])
    cmd = launch + ["-m", "kgrec", "train", "--graph", graph, "--out", str(out), "--set", "pretrain.epochs=1",
                    "--set", "finetune.epochs=0", "--set", "model.path_hops=0"] + [a for s in sets for a in ("--set", s)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
    return float(pd.read_csv(out / "metrics.csv").query("epoch == 1")["train_s"].iloc[0])


def side_by_side_seconds(graph: str, procs: int, sets: list[str], out: Path) -> float:
    """Mean training seconds of ``procs`` independent one-process, one-thread epochs run at once: what
    the machine gives parallel work that exchanges nothing."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(procs) as pool:
        runs = [pool.submit(epoch_seconds, graph, 1, 1, sets, out / str(i)) for i in range(procs)]
        return sum(r.result() for r in runs) / procs


def _setup(graph: str, sets: list[str], steps: int):
    """The model, graph, optimiser and batches of a pre-training epoch cut to ``steps`` steps."""
    import dataclasses

    import torch

    from kgrec.cli import parse_overrides
    from kgrec.graph.artifact import TARGET, load_graph
    from kgrec.memory import keep_freed_memory
    from kgrec.models import RelationalGraph, TransferModel
    from kgrec.models.encoder import resolve_cold_item_id
    from kgrec.train import trainer
    from kgrec.train.config import make_config

    torch.set_num_threads(1)
    keep_freed_memory()  # as the CLI's training does
    cfg = make_config(None, {"graph": graph, **parse_overrides(sets)})
    artifact = load_graph(graph)
    cfg = dataclasses.replace(cfg, model=resolve_cold_item_id(cfg.model, len(artifact.cold_items()) > 0))
    g = RelationalGraph.from_hetero(artifact.data, torch.device("cpu"))
    torch.manual_seed(0)
    model = TransferModel(g.sizes, g.num_relations, cfg.model, trainer.item_features(artifact, cfg.model, 0))
    data = trainer._batches(artifact, g, ("source", TARGET), cfg)
    data.pairs[TARGET] = data.pairs[TARGET][:, :steps * cfg.pretrain.batch_size]
    opt = trainer.adam(trainer._trainable(model, "pretrain", cfg), cfg.pretrain.lr)
    return cfg, model, g, data, opt


def step_seconds(graph: str, sets: list[str], steps: int) -> tuple[float, float, list[int]]:
    """Wall seconds of one step (one process, one thread) and of one whose share of the batch is empty
    (what every rank repeats), and the shapes of the gradients a step sums over the ranks."""
    import torch

    from kgrec.train import trainer
    from kgrec.train.distributed import World

    class NoShare(World):  # rank 0 of a world so large that its share of any batch is empty
        def sum_gradients(self, params, values):
            return values

    cfg, model, g, data, opt = _setup(graph, sets, steps)
    out = []
    for world in (World(), NoShare(0, 1 << 40)):
        run = lambda: trainer._train_epoch("pretrain", 1, model, g, data, cfg, cfg.pretrain, opt,  # noqa: E731
                                           torch.Generator().manual_seed(0), False, world)
        run()  # warm-up: CSR operators, allocator
        t0 = time.perf_counter()
        run()
        out.append((time.perf_counter() - t0) / steps)
    return out[0], out[1], [p.numel() for p in model.parameters() if p.requires_grad]


def collective_seconds(procs: int, numels: list[int], rows: int, dim: int, repeats: int = 10) -> dict[str, float]:
    """Median wall seconds, between ``procs`` gloo processes of one thread each, of one
    :meth:`World.sum_gradients` of tensors of ``numels`` elements, and of an all-gather and a
    reduce-scatter of a ``[rows, dim]`` table in ``procs`` blocks (what sharding the propagation
    would add per layer, forward and backward)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "s.json"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs),
               __file__, "--_collectives", ",".join(map(str, numels)), "--_table", f"{rows},{dim}",
               "--_out", str(out), "--_repeats", str(repeats)]
        subprocess.run(cmd, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)},
                       check=True, capture_output=True)
        return json.loads(out.read_text())


def _collectives_child(numels: list[int], rows: int, dim: int, out: str, repeats: int) -> None:
    import torch
    import torch.distributed as dist

    from kgrec.train.distributed import init_from_env, shutdown

    torch.set_num_threads(1)
    world = init_from_env("cpu")
    params = [torch.nn.Parameter(torch.zeros(n)) for n in numels]
    rows -= rows % world.size  # equal blocks, as the collectives want
    table, block = torch.randn(rows, dim), torch.randn(rows // world.size, dim)

    for p in params:
        p.grad = torch.randn(p.shape) / 1e3  # summed in place again each repeat: 2 ** 11 times at most

    def gradients() -> None:
        world.sum_gradients(params, torch.zeros(7))

    times: dict[str, float] = {}
    for name, fn, fresh in (("all-reduce of the gradients", gradients, True),
                            ("all-gather of the node table", lambda: dist.all_gather_into_tensor(table, block), False),
                            ("reduce-scatter of the node table", lambda: dist.reduce_scatter_tensor(block, table), False)):
        seen = []
        for _ in range(repeats + 1):
            dist.barrier()
            t0 = time.perf_counter()
            fn()
            seen.append(time.perf_counter() - t0)
        times[name] = sorted(seen[1:])[len(seen[1:]) // 2]  # the median, after a warm-up
    if world.is_main:
        Path(out).write_text(json.dumps(times))
    shutdown(world)


def product_seconds(graph: str, repeats: int = 10) -> tuple[float, int, int]:
    """Wall seconds of one ``[N, N] x [N, 64]`` sparse product over the graph (one thread), N and E."""
    import torch

    from kgrec.graph.artifact import load_graph
    from kgrec.models import RelationalGraph

    torch.set_num_threads(1)
    g = RelationalGraph.from_hetero(load_graph(graph).data, "cpu")
    adjacency, x = g.adjacency(None), torch.randn(g.num_nodes, 64)
    adjacency(x)
    t0 = time.perf_counter()
    for _ in range(repeats):
        adjacency(x)
    return (time.perf_counter() - t0) / repeats, g.num_nodes, g.edge_index.shape[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("graph", nargs="?")
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--steps", type=int, default=16, help="steps timed for the breakdown")
    p.add_argument("--rounds", type=int, default=2, help="epochs of each line, interleaved; the fastest is printed")
    p.add_argument("--set", action="append", default=[])
    p.add_argument("--_collectives", help=argparse.SUPPRESS)
    p.add_argument("--_table", help=argparse.SUPPRESS)
    p.add_argument("--_out", help=argparse.SUPPRESS)
    p.add_argument("--_repeats", type=int, default=10, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._collectives:
        rows, dim = map(int, args._table.split(","))
        return _collectives_child([int(n) for n in args._collectives.split(",")], rows, dim, args._out, args._repeats)
    if not args.graph:
        p.error("the graph artifact is required")
    n = args.procs
    load = os.getloadavg()[0]
    runs: dict[str, list[float]] = {"one": [], "many": [], "threads": [], "apart": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):  # interleaved, so that drift and a cold first run hit every line alike
            runs["one"].append(epoch_seconds(args.graph, 1, 1, args.set, Path(tmp) / f"one{r}"))
            runs["many"].append(epoch_seconds(args.graph, n, 1, args.set, Path(tmp) / f"many{r}"))
            runs["threads"].append(epoch_seconds(args.graph, 1, n, args.set, Path(tmp) / f"threads{r}"))
            runs["apart"].append(side_by_side_seconds(args.graph, n, args.set, Path(tmp) / f"apart{r}"))
    one, many, threads, apart = (min(runs[k]) for k in ("one", "many", "threads", "apart"))
    step, replicated, numels = step_seconds(args.graph, args.set, args.steps)
    product, nodes, edges = product_seconds(args.graph)
    coll = collective_seconds(n, numels, nodes, 64)
    comm = coll["all-reduce of the gradients"]
    split = max(step - replicated, 0.0)
    predicted = replicated + split / n + comm
    print(f"load average before the run: {load:.2f} (the figures mean little on a loaded machine)\n")
    print(f"{'processes x threads':<34}{'epoch train s':>14}{'speed-up':>10}  (fastest of {args.rounds} epochs)")
    for name, s in (("1 x 1", one), (f"{n} x 1 (torchrun)", many), (f"1 x {n} (threads)", threads)):
        print(f"{name:<34}{s:>14.1f}{one / s:>10.2f}")
    print(f"{f'{n} independent 1 x 1, side by side':<34}{apart:>14.1f}{'':>10}  (each; the cores' own limit)")
    print(f"\n{'one step, 1 thread':<44}{'ms':>8}{'share':>8}")
    print(f"{'whole step':<44}{step * 1e3:>8.0f}{1.0:>8.2f}")
    print(f"{'repeated by every rank (an empty share)':<44}{replicated * 1e3:>8.0f}{replicated / step:>8.2f}")
    print(f"{'split over the ranks (the rest)':<44}{split * 1e3:>8.0f}{split / step:>8.2f}")
    print(f"{f'all-reduce of the gradients, {n} ranks':<44}{comm * 1e3:>8.0f}{comm / step:>8.2f}")
    print(f"\npredicted step on {n} ranks: replicated + split / {n} + all-reduce = {predicted * 1e3:.0f} ms, "
          f"speed-up at most {step / predicted:.2f} (without the all-reduce {step / (replicated + split / n):.2f})")
    print(f"\n{f'what sharding the propagation would trade ({nodes:,} nodes, {edges:,} edges, d 64)':<64}{'ms':>8}")
    print(f"{'one [N, N] x [N, 64] sparse product, 1 thread':<64}{product * 1e3:>8.1f}")
    for name, t in coll.items():
        print(f"{f'{name}, {n} ranks':<64}{t * 1e3:>8.1f}")


if __name__ == "__main__":
    main()
