"""How kgrec's costs grow with the graph: generated data from 1M to 30M+ edges.

For each size: ``kgrec synth`` (seed 0) -> ``kgrec build`` -> one pre-training epoch of kgrec
(the default config, transfer mode, over the merged graph) -> one epoch of merged LightGCN
(the same budget) -> one full validation pass as training makes it (the validation users, a seeded
sample of ``eval.valid_users`` = 10,000 where there are more, each ranked over every target item
by kgrec's score blended with the default path scores over the merged graph, weight 1).
Every phase runs in its own subprocess (it loads what the one before wrote), so each peak RSS
is that phase's own (``ru_maxrss`` of the process, about 0.4 GiB of it importing torch, and
the graph loaded from disk). The seconds are the phase's work alone (not the imports or the
loading).

The table has wall seconds and CPU seconds (user + system) per phase; on a shared machine the
CPU seconds are the steadier measure of work, and the slopes are fitted on them: the last line
is the least-squares slope of log(CPU s) against log(edges) per phase (1.0 = linear; on a GPU, of log(wall s)). Each
phase runs torch on one thread by default (``--threads``): on a loaded machine OpenMP's
spinning threads burn CPU while they wait (one epoch at 60k edges: 0.6 CPU s on one thread,
9.8 on two, at a load of 19 on 2 cores).

With ``--device cuda`` the phases train and score on the GPU, the table's memory column also
has the phase's ``torch.cuda.max_memory_allocated``, and a kernel line per size gives the
default layer's propagation (``A @ X``, both directions in one CSR product, ``X`` ``[N, 64]``):
seconds per product, bytes it must move (the CSR arrays, one ``X`` row gathered per edge, the
output written) divided by that time, against the device's peak memory bandwidth.

    python benchmarks/scale.py --edges 1M,3M,10M [--device cpu|cuda] [--work /tmp/kgrec-scale] [--json OUT.json]
    python benchmarks/scale.py --merge small.json large.json   # one table of sizes run separately
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PHASES = ("synth", "build", "epoch", "lightgcn", "validate")
SLOPES = ("build", "epoch", "validate")
# peak memory bandwidth (GB/s) of common parts, for when the driver does not report clock and bus width
KNOWN_PEAK_GBS = {"H200": 4800, "H100 SXM": 3350, "H100 PCIe": 2000, "H100": 3350, "A100-SXM4-80GB": 2039,
                  "A100 80GB PCIe": 1935, "A100": 1555, "L40S": 864, "L4": 300, "A10": 600, "V100": 900, "T4": 320,
                  "RTX 4090": 1008}


# --- the phases (each runs in a fresh process: scale.py --phase NAME) ----------------------
def _config(graph: Path, device: str):
    from kgrec.train.config import make_config
    return make_config(None, {"graph": str(graph), "device": device})


def _phase_synth(work: Path, edges: int, device: str) -> dict:
    from kgrec.data.synth import SynthConfig, synth
    with _Clock(device) as clock:
        res = synth(SynthConfig(edges=edges, seed=0), work / "data", overwrite=True)
    return {**clock.result, "edges_expected": res.counts["edges_expected"]}


def _phase_build(work: Path, edges: int, device: str) -> dict:
    from kgrec import build_graph, load_spec
    with _Clock(device) as clock:
        graph = build_graph(load_spec(work / "data" / "spec.toml"))
        graph.save(work / "graph", overwrite=True)
    data = graph.data
    return {**clock.result, "nodes": int(sum(data[t].num_nodes for t in data.node_types)),
            "edges": int(sum(data[t].edge_index.shape[1] for t in data.edge_types))}


def _phase_epoch(work: Path, edges: int, device: str) -> dict:
    import torch

    from kgrec.graph.artifact import SOURCE, TARGET, load_graph
    from kgrec.models import RelationalGraph, TransferModel
    from kgrec.train import trainer
    cfg = _config(work / "graph", device)
    artifact = load_graph(cfg.graph)
    dev = trainer.resolve_device(device)
    g = RelationalGraph.from_hetero(artifact.data, dev)
    torch.manual_seed(0)
    model = TransferModel(g.sizes, g.num_relations, cfg.model, {}).to(dev)
    data = trainer._batches(artifact, g, (SOURCE, TARGET), cfg)
    stage = cfg.pretrain.for_interactions(data.pairs[TARGET].shape[1])
    opt = trainer.adam(trainer._trainable(model, "pretrain", cfg), stage.lr)
    gen = torch.Generator().manual_seed(0)
    with _Clock(device) as clock:
        trainer._train_epoch("pretrain", 1, model, g, data, cfg, stage, opt, gen, False)
    torch.save(model.state_dict(), work / "model.pt")
    steps = math.ceil(data.pairs[TARGET].shape[1] / stage.batch_size)
    return {**clock.result, "steps": steps, "batch": stage.batch_size}


def _phase_lightgcn(work: Path, edges: int, device: str) -> dict:
    import dataclasses

    import torch

    from kgrec.graph.artifact import SOURCE, TARGET, load_graph
    from kgrec.models.baselines import LightGCN
    from kgrec.train import baselines, trainer
    cfg = _config(work / "graph", device)
    artifact = load_graph(cfg.graph)
    dev = trainer.resolve_device(device)
    n_users, n_items = int(artifact.data["user"].num_nodes), int(artifact.data["item"].num_nodes)
    pairs = torch.cat([artifact.split("train", d) for d in (SOURCE, TARGET)], 1)
    torch.manual_seed(0)
    model = LightGCN(n_users, n_items, cfg.model.dim, pairs, cfg.model.layers).to(dev)
    stage = dataclasses.replace(cfg.pretrain, epochs=1)
    gen = torch.Generator().manual_seed(0)
    with _Clock(device) as clock:
        baselines._fit_mf(model, artifact, (SOURCE, TARGET), stage, cfg.loss, gen, dev, None, cfg.eval.k,
                          "lightgcn_merged", lambda m: None)
    return clock.result


def _phase_validate(work: Path, edges: int, device: str) -> dict:
    import torch

    from kgrec.eval import ranking_task, sample_users
    from kgrec.graph.artifact import load_graph
    from kgrec.models import RelationalGraph, TransferModel
    from kgrec.models.paths import PathScorer
    from kgrec.train import trainer
    cfg = _config(work / "graph", device)
    artifact = load_graph(cfg.graph)
    dev = trainer.resolve_device(device)
    g = RelationalGraph.from_hetero(artifact.data, dev)
    model = TransferModel(g.sizes, g.num_relations, cfg.model, {}).to(dev)
    model.load_state_dict(torch.load(work / "model.pt", map_location=dev, weights_only=True))
    task = sample_users(ranking_task(artifact, "valid"), cfg.eval.valid_users, cfg.seed)  # as training validates
    with _Clock(device) as clock:
        paths = PathScorer(g, cfg.model.path_hops, cfg.model.path_alpha)
        metrics = trainer.validate(model, g, task, cfg.eval.ks, cfg.eval.memory_mb, paths, 1.0)
    out = {**clock.result, "users": len(task.users), "items": len(task.items),
           f"ndcg@{cfg.eval.k}": float(metrics[f"ndcg@{cfg.eval.k}"].mean())}
    if device.startswith("cuda"):
        out.update(_bandwidth(g, cfg.model.dim))
    return out


class _Clock:
    """Wall and CPU (user + system) seconds of a block; CUDA work waited for at both ends."""

    def __init__(self, device: str):
        self.device, self.result = device, {}

    def __enter__(self) -> "_Clock":
        _sync(self.device)
        self.t, self.ru = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
        return self

    def __exit__(self, *exc) -> None:
        _sync(self.device)
        ru = resource.getrusage(resource.RUSAGE_SELF)
        self.result = {"s": time.perf_counter() - self.t,
                       "cpu_s": (ru.ru_utime - self.ru.ru_utime) + (ru.ru_stime - self.ru.ru_stime)}


def _sync(device: str) -> None:
    import torch
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _bandwidth(g, dim: int, repeats: int = 20) -> dict:
    """The default layer's product ``A @ X`` on the GPU: seconds, bytes moved per product, GB/s."""
    import torch
    op = g.adjacency(None)
    a = op.a
    x = torch.randn(a.shape[1], dim, device=a.device)
    for _ in range(3):
        op(x)
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(repeats):
        op(x)
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - t) / repeats
    nnz, rows = a.values().numel(), a.shape[0]
    moved = (a.crow_indices().numel() * a.crow_indices().element_size() + nnz * a.col_indices().element_size()
             + nnz * a.values().element_size() + nnz * dim * x.element_size() + rows * dim * x.element_size())
    return {"spmm_s": seconds, "spmm_bytes": moved, "spmm_gbs": moved / seconds / 1e9, "peak_gbs": _peak_gbs()}


def _peak_gbs() -> float | None:
    """The device's peak memory bandwidth: 2 (DDR) x memory clock x bus width, else a known part's."""
    import torch
    p = torch.cuda.get_device_properties(0)
    clock, bus = getattr(p, "memory_clock_rate", 0), getattr(p, "memory_bus_width", 0)
    if clock and bus:
        return 2 * clock * 1e3 * bus / 8 / 1e9
    return next((v for k, v in KNOWN_PEAK_GBS.items() if k in p.name), None)


def run_phase(name: str, work: Path, edges: int, device: str, threads: int) -> None:
    """Run one phase in this process and print its JSON line (seconds, CPU seconds, peak RSS)."""
    import torch

    from kgrec.memory import keep_freed_memory
    keep_freed_memory()
    if threads:
        torch.set_num_threads(threads)
    out = globals()[f"_phase_{name}"](work, edges, device)
    out["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.startswith("cuda"):
        import torch
        out["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(out))


# --- the driver ---------------------------------------------------------------------
def slope(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of log(ys) on log(xs); ``None`` under two points."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x > 0 and y and y > 0]
    if len(pts) < 2:
        return None
    mx, my = sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts)
    var = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / var if var else None


def _child(name: str, work: Path, edges: int, device: str, timeout: int, threads: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--phase", name, "--work", str(work),
           "--edges", str(edges), "--device", device, "--threads", str(threads)]
    t = time.perf_counter()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"error": f"> {timeout} s", "wall_s": time.perf_counter() - t}
    if r.returncode:
        why = (r.stderr.strip().splitlines() or [f"killed (exit {r.returncode}, likely out of memory)"])[-1]
        return {"error": why[:60], "wall_s": time.perf_counter() - t}
    out = json.loads(r.stdout.strip().splitlines()[-1])
    out["wall_s"] = time.perf_counter() - t
    return out


def _run(res: dict, name: str, work: Path, edges: int, args: argparse.Namespace) -> None:
    """One phase in a child process; its line printed as soon as it ends (load average after it)."""
    work.mkdir(parents=True, exist_ok=True)
    res[name] = r = _child(name, work, edges, args.device, args.timeout, args.threads)
    what = r["error"] if "error" in r else f"{r['s']:.1f} s wall, {r['cpu_s']:.1f} s cpu, peak {r['peak_mib']:.0f} MiB"
    print(f"  {edges:,} edges, {name}: {what}  (load {_load()})", flush=True)


def _available_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--edges", default="1M,3M", help="comma-separated sizes: 1M,3M,10M,30M")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--work", default="/tmp/kgrec-scale", help="scratch directory (data and graphs; removed at the end)")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per phase before it is reported as timed out")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads per phase (0: torch's default); 1 keeps a shared machine's numbers honest")
    ap.add_argument("--gib-per-million", type=float, default=0.4,
                    help="skip a size when less memory than 1 GiB + this per million edges is available "
                         "(the machine is shared)")
    ap.add_argument("--keep", action="store_true", help="keep each size's data and graph")
    ap.add_argument("--json", help="also write every phase's measurements to this JSON file")
    ap.add_argument("--merge", nargs="+", metavar="JSON",
                    help="print one table (and slopes) of the sizes of several --json files, e.g. sizes run side by side")
    ap.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        run_phase(args.phase, Path(args.work), int(args.edges), args.device, args.threads)
        return
    if args.merge:
        files = [json.loads(Path(f).read_text()) for f in args.merge]
        if len({f["device"] for f in files}) > 1:
            ap.error("--merge: the files were measured on different devices: "
                     + ", ".join(f"{name} ({f['device']})" for name, f in zip(args.merge, files)))
        merged = {int(k): v for f in files for k, v in f["results"].items()}
        print_table(dict(sorted(merged.items())), files[0]["device"])
        return
    from kgrec.data.synth import parse_edges
    sizes = [parse_edges(s) for s in args.edges.split(",")]
    print(f"kgrec scale benchmark, device {args.device}, {platform.node()} ({platform.processor() or platform.machine()}, "
          f"{_cpus()} CPUs), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {_load()}")
    print(f"phases in fresh processes, {args.threads or 'default'} torch thread(s): s = wall seconds, "
          f"cpu = user + system seconds, peak = max RSS MiB\n", flush=True)
    results: dict[int, dict] = {}
    # every size's training phases first, then the validation passes (the slowest), smallest first,
    # so that a time limit costs the largest validation and not the rest of the table
    for edges in sizes:
        need, free = 1 + args.gib_per_million * edges / 1e6, _available_gib()
        if free is not None and free < need:
            print(f"{edges:>12,}  skipped: {free:.1f} GiB available, about {need:.1f} GiB needed "
                  f"(--gib-per-million)", flush=True)
            continue
        results[edges] = {}
        for name in PHASES[:-1]:
            _run(results[edges], name, Path(args.work) / f"e{edges}", edges, args)
            if "error" in results[edges][name] and name in ("synth", "build", "epoch"):
                break  # the later phases need what this one writes
    for edges, res in results.items():
        if "cpu_s" in res.get("epoch", {}):
            _run(res, "validate", Path(args.work) / f"e{edges}", edges, args)
        if not args.keep:
            shutil.rmtree(Path(args.work) / f"e{edges}", ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"device": args.device, "results": {str(k): v for k, v in results.items()}},
                                              indent=1))
    print_table(results, args.device)


def print_table(results: dict[int, dict], device: str) -> None:
    """The table of every size's phases, the kernel lines, and the slopes line last."""
    print()
    head = f"{'edges asked':>12}{'edges':>12}{'nodes':>11}" + "".join(f"{p + ' s':>11}{'cpu':>8}{'peak':>7}"
                                                                        for p in PHASES)
    print(head + ("  cuda peak MiB (epoch/val)" if device.startswith("cuda") else ""))
    rows = []
    for edges, res in results.items():
        b = res.get("build", {})
        line = f"{edges:>12,}{b.get('edges', 0):>12,}{b.get('nodes', 0):>11,}"
        for name in PHASES:
            r = res.get(name, {})
            if "error" in r:
                line += f"{r['error'][:26]:>26}"
            elif r:
                line += f"{r['s']:>11.1f}{r['cpu_s']:>8.1f}{r['peak_mib']:>7.0f}"
            else:
                line += f"{'-':>26}"
        if device.startswith("cuda"):
            line += f"  {res.get('epoch', {}).get('cuda_peak_mib', 0):.0f}/{res.get('validate', {}).get('cuda_peak_mib', 0):.0f}"
        print(line)
        rows.append((edges, b.get("edges", edges), res))
    print()
    for edges, _, res in rows:
        e, v = res.get("epoch", {}), res.get("validate", {})
        if "steps" in e:
            print(f"{edges:>12,}: epoch {e['steps']} steps of {e['batch']:,} target pairs; validation "
                  f"{v.get('users', 0):,} users x {v.get('items', 0):,} items, ndcg@10 {v.get('ndcg@10', float('nan')):.4f}")
        if "spmm_gbs" in v:
            peak = v["peak_gbs"]
            print(f"{'':>12}  propagation A @ X [N, 64]: {v['spmm_s'] * 1e3:.2f} ms, {v['spmm_bytes'] / 1e9:.2f} GB moved,"
                  f" {v['spmm_gbs']:.0f} GB/s" + (f" = {v['spmm_gbs'] / peak:.0%} of the device's {peak:.0f} GB/s"
                                                  if peak else " (device peak unknown)"))
    # on the CPU the slopes are fitted on CPU seconds (the steadier measure on a shared machine); on a GPU on wall
    # seconds, since the host's CPU seconds there are mostly waiting for the device
    key = "s" if device.startswith("cuda") else "cpu_s"
    parts = []
    for name in SLOPES:
        xs = [real for _, real, res in rows if key in res.get(name, {})]
        ys = [res[name][key] for _, _, res in rows if key in res.get(name, {})]
        s = slope(xs, ys)
        parts.append(f"{name}={s:.2f}" if s is not None else f"{name}=n/a")
    print("slopes: " + " ".join(parts) + f"  (log {'wall' if key == 's' else 'CPU'} seconds against log edges)")


def _cpus() -> int:
    import os
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


if __name__ == "__main__":
    main()
