"""The operations a benchmark run spends its time in, as kgrec runs them against the
straightforward version, side by side in one process on a shipped graph, each row
checking that both give the same result:

- the encoder's CSR product ``A @ x`` (``[N, N] x [N, 64]``), written by ``kgrec.models.graph.spmm``
  (the path scores, which went through it too, are a sparse product now: ``benchmarks/path_scores.py``);
- top-k of a ``[B, M]`` score matrix with the lower-index tie rule (``kgrec.eval.top_k``): the
  tie check by one more column of ``topk`` against a pass over the whole matrix, and, where
  ties straddle the cut (most path scores are 0), the lowest tied indices by a ``topk`` of the
  reversed index against a cumulative count over the matrix;
- the six blends of the path-weight choice: each part standardised once per batch
  (``kgrec.models.paths.blends``) against once per weight;
- gathering a batch's rows of ``[N, 64]`` embeddings (2,048 pairs x 34 rows), forward and backward:
  ``kgrec.models.graph.gather_rows`` against advanced indexing (``same``: equal rows, gradients
  within 1e-6: the rows are added back in another order);
- scoring 2,048 users each against its 32 negatives (``[B, 32, 64]``), forward and backward:
  ``kgrec.models.heads.dot_each`` (one batched product) against multiplying and summing;
- one Adam step over the graph's ``[n_t, 64]`` embedding tables, fused (``kgrec.train.trainer.adam``)
  against ``torch.optim.Adam``'s default; the same update up to float rounding (``same`` then says
  whether the tables agree within 1e-6 after the same steps).

Then one pre-training epoch and one validation pass of the shipped config, each in a fresh
process, with and without ``kgrec.memory.keep_freed_memory``.

    python benchmarks/hot_paths.py [--graph amazon_cloth_to_sport] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from kgrec import build_graph, load_spec
from kgrec.eval import top_k
from kgrec.graph.artifact import TARGET
from kgrec.models import RelationalGraph
from kgrec.models.graph import gather_rows, sparse_op, spmm
from kgrec.models.heads import dot_each
from kgrec.models.paths import PATH_WEIGHTS, blends, standardise
from kgrec.train.trainer import adam

ROOT = Path(__file__).resolve().parents[1]

EPOCH = r"""
import json, sys, time, torch
from kgrec.memory import keep_freed_memory
spec, config, threads, keep = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
torch.set_num_threads(threads)
applied = keep_freed_memory() if keep else False
from kgrec import build_graph, load_spec
from kgrec.eval import ranking_task
from kgrec.graph.artifact import SOURCE, TARGET
from kgrec.models import RelationalGraph, TransferModel
from kgrec.train import trainer
from kgrec.train.config import load_config
cfg = load_config(config)
artifact = build_graph(load_spec(spec))
g = RelationalGraph.from_hetero(artifact.data, "cpu")
torch.manual_seed(0)
model = TransferModel(g.sizes, g.num_relations, cfg.model, {})
data = trainer._batches(artifact, g, (SOURCE, TARGET), cfg)
opt = torch.optim.Adam(model.parameters(), lr=cfg.pretrain.lr)
gen = torch.Generator().manual_seed(0)
valid = ranking_task(artifact, "valid")
epochs, checks = [], []
for epoch in range(1, 4):
    t = time.perf_counter()
    trainer._train_epoch("pretrain", epoch, model, g, data, cfg, cfg.pretrain, opt, gen, False)
    epochs.append(time.perf_counter() - t)
    t = time.perf_counter()
    trainer.validate(model, g, valid, cfg.eval.ks, cfg.eval.memory_mb)
    checks.append(time.perf_counter() - t)
print(json.dumps({"applied": applied, "epoch_s": epochs, "valid_s": checks}))
"""


def _seconds(fn, repeats: int) -> float:
    fn()
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t) / repeats


def _adam_steps(optimiser, tables: list[torch.nn.Parameter], grads: list[torch.Tensor]):
    """A function taking one ``optimiser`` step over ``tables`` with gradients ``grads``, returning the tables."""
    def step() -> list[torch.Tensor]:
        for t, g in zip(tables, grads):
            t.grad = g
        optimiser.step()
        return [t.detach() for t in tables]
    return step


def _gather_fwd_bwd(gather, table: torch.Tensor, index: torch.Tensor, grad: torch.Tensor):
    """A function gathering ``index``'s rows of ``table`` by ``gather`` and back-propagating ``grad``:
    returns the rows and the table's gradient."""
    def run() -> list[torch.Tensor]:
        rows = gather(table, index)
        return [rows.detach(), torch.autograd.grad(rows, table, grad)[0]]
    return run


def _top_k_full_pass(scores: torch.Tensor, k: int) -> torch.Tensor:
    """top_k with the tie check as a pass over every score (the straightforward version)."""
    vals, idx = scores.topk(k, dim=1)
    thr = vals[:, -1:]
    if not bool(((scores >= thr).sum(1) > k).any()):
        idx = idx.sort(dim=1).values
    else:
        chosen = (scores > thr) | ((scores == thr) & ((scores == thr).cumsum(1) <= k - (scores > thr).sum(1, keepdim=True)))
        idx = chosen.nonzero()[:, 1].view(scores.shape[0], k)
    return idx.gather(1, scores.gather(1, idx).sort(dim=1, descending=True, stable=True).indices)


def _blends_per_weight(e: torch.Tensor, p: torch.Tensor) -> list[torch.Tensor]:
    return [e if w == 0 else standardise(e) + w * standardise(p) for w in PATH_WEIGHTS]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--graph", default="amazon_cloth_to_sport", help="shipped spec name in graphs/ (and configs/)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (a benchmark worker of --jobs 2 has 1)")
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    spec = ROOT / "graphs" / f"{args.graph}.toml"
    artifact = build_graph(load_spec(spec))
    g = RelationalGraph.from_hetero(artifact.data, "cpu")
    src, dst = g.edge_index
    deg = torch.bincount(dst, minlength=g.num_nodes).float().clamp(min=1)
    adj = sparse_op(dst, src, deg[src].rsqrt() * deg[dst].rsqrt(), (g.num_nodes, g.num_nodes)).a
    items = artifact.items_of(TARGET)
    gen = torch.Generator().manual_seed(0)
    batch = 745
    x64 = torch.randn(g.num_nodes, 64, generator=gen)
    scores = torch.randn(batch, len(items), generator=gen)
    tied = (torch.rand(batch, len(items), generator=gen) < 0.01).float()  # walk-like: most items at 0
    e, p = torch.randn(batch, len(items), generator=gen), torch.rand(batch, len(items), generator=gen)
    shapes = [(n, 64) for n in g.sizes.values() if n]
    grads = [torch.randn(sh, generator=gen) for sh in shapes]
    plain_tables = [torch.nn.Parameter(torch.randn(sh, generator=gen)) for sh in shapes]
    fused_tables = [torch.nn.Parameter(t.detach().clone()) for t in plain_tables]
    plain_adam = _adam_steps(torch.optim.Adam(plain_tables, lr=0.005), plain_tables, grads)
    fused_adam = _adam_steps(adam(fused_tables, 0.005), fused_tables, grads)
    table = torch.randn(g.num_nodes, 64, generator=gen, requires_grad=True)
    index = torch.randint(g.num_nodes, (2048 * 34,), generator=gen)
    grad = torch.randn(len(index), 64, generator=gen)
    plain_gather = _gather_fwd_bwd(lambda t, i: t[i], table, index, grad)
    users = torch.randn(2048, 64, generator=gen, requires_grad=True)
    negatives = torch.randn(2048, 32, 64, generator=gen, requires_grad=True)
    score_grad = torch.randn(2048, 32, generator=gen)

    def scores_fwd_bwd(score):
        return lambda: list(torch.autograd.grad(score(users, negatives), (users, negatives), score_grad))
    plain_scores = scores_fwd_bwd(lambda u, n: (u.unsqueeze(1).expand_as(n) * n).sum(-1))
    cases = [
        ("adjacency x [N, 64]", lambda: adj @ x64, lambda: spmm(adj, x64)),
        (f"top-20 of [{batch}, {len(items)}]", lambda: _top_k_full_pass(scores, 20), lambda: top_k(scores, 20)),
        (f"top-20, most tied, [{batch}, {len(items)}]", lambda: _top_k_full_pass(tied, 20), lambda: top_k(tied, 20)),
        (f"6 blends of [{batch}, {len(items)}]", lambda: _blends_per_weight(e, p), lambda: blends(e, p, PATH_WEIGHTS)),
        (f"gather {len(index)} rows, fwd + bwd", plain_gather, _gather_fwd_bwd(gather_rows, table, index, grad)),
        ("2048 users x 32 negatives, fwd + bwd", plain_scores, scores_fwd_bwd(dot_each)),
        (f"Adam step, tables [{g.num_nodes}, 64]", plain_adam, fused_adam),
    ]
    print(f"graph {args.graph}: {g.num_nodes:,} nodes, {g.edge_index.shape[1]:,} edges, {args.threads} thread(s), "
          f"mean of {args.repeats}\n")
    print(f"{'operation':<38}{'plain ms':>10}{'kgrec ms':>10}{'speed-up':>10}  same")
    for name, plain_fn, ours_fn in cases:
        plain, ours = _seconds(plain_fn, args.repeats), _seconds(ours_fn, args.repeats)
        a, b = plain_fn(), ours_fn()
        if plain_fn in (plain_adam, plain_gather, plain_scores):  # the same sums in another order
            same = all(torch.allclose(u, v, rtol=0, atol=1e-5 if plain_fn is plain_scores else 1e-6)
                       for u, v in zip(a, b))
        else:
            same = all(torch.equal(u, v) for u, v in zip(a, b)) if isinstance(a, list) else torch.equal(a, b)
        print(f"{name:<38}{plain * 1e3:>10.1f}{ours * 1e3:>10.1f}{plain / ours:>9.1f}x  {same}")

    config = ROOT / "configs" / f"{args.graph}.toml"
    if not config.exists():
        print(f"\n(no configs/{args.graph}.toml: the epoch comparison needs a training config)")
        return
    print(f"\none pre-training epoch and one validation pass, configs/{args.graph}.toml, fresh process each "
          f"(epochs 1-3)\n")
    print(f"{'allocator':<34}{'epoch s':>24}{'validation s':>24}")
    for keep in (False, True):
        r = subprocess.run([sys.executable, "-c", EPOCH, str(spec), str(config),
                            str(args.threads), "1" if keep else "0"], capture_output=True, text=True)
        if r.returncode:
            print(f"failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
            continue
        m = json.loads(r.stdout.strip().splitlines()[-1])
        name = "freed memory kept for reuse" if m["applied"] else "glibc default"
        print(f"{name:<34}{' '.join(f'{v:.2f}' for v in m['epoch_s']):>24}"
              f"{' '.join(f'{v:.2f}' for v in m['valid_s']):>24}")


if __name__ == "__main__":
    main()
