"""Training under torchrun (2 gloo processes on CPU) gives what one process gives."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from kgrec.graph.artifact import SOURCE, TARGET
from kgrec.models import RelationalGraph, TransferModel
from kgrec.train import trainer
from kgrec.train.config import make_config
from kgrec.train.distributed import BUCKET_NUMEL, SINGLE, World

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"model.dim": 8, "pretrain.epochs": 3, "finetune.epochs": 3, "pretrain.batch_size": 4,
         "finetune.batch_size": 4}


@pytest.fixture(scope="module")
def artifact_dir(example_graph, tmp_path_factory):
    return example_graph.save(tmp_path_factory.mktemp("graph") / "example")


def torchrun(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def one_process(graph: Path, out: Path, **overrides) -> trainer.TrainResult:
    cfg = make_config(None, {"graph": str(graph), **SMALL, **overrides})
    return trainer.train(cfg, out, progress=False, log=lambda m: None)


def close(a: dict[str, float], b: dict[str, float]) -> bool:
    return a.keys() == b.keys() and all(abs(a[k] - b[k]) <= 1e-4 for k in a)


def test_shares_of_a_batch_cover_it_once_in_order():
    for n in (0, 1, 5, 2048):
        for size in (1, 2, 3):
            shares = [World(rank, size).share(n) for rank in range(size)]
            assert [i for s in shares for i in range(n)[s]] == list(range(n))
    assert SINGLE.share(7) == slice(0, 7)


#: shares of unequal length (5 pairs, 7 KG triples a batch on 2 ranks), and the terms rank 0 computes
#: whole (adversarial alignment: the discriminator has no gradient on rank 1; the contrastive loss)
UNEVEN = {"pretrain.batch_size": 5, "finetune.batch_size": 5, "loss.kg_batch_size": 7,
          "loss.align": "adversarial", "loss.cl_weight": 0.1}


def test_two_gloo_processes_score_what_one_process_scores(artifact_dir, tmp_path):
    one = one_process(artifact_dir, tmp_path / "one", **UNEVEN)
    sets = [a for k, v in {**SMALL, **UNEVEN}.items() for a in ("--set", f"{k}={v}")]
    done = torchrun("-m", "kgrec", "train", "--graph", str(artifact_dir), "--out", str(tmp_path / "two"), *sets)
    assert done.returncode == 0, done.stderr[-2000:]
    printed = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(printed) == 1  # rank 0 alone reports
    two = json.loads((tmp_path / "two" / "results.json").read_text())
    # the same early stopping, path filter and blend weight, and metrics equal up to float summation order
    assert close(two["valid"], one.valid) and close(two["test"], one.test)
    assert (two["path_weight"], two["path_filter"]) == (one.path_weight, trainer._filter_dict(one.paths))
    a = pd.read_csv(one.run_dir / "metrics.csv")
    b = pd.read_csv(tmp_path / "two" / "metrics.csv")
    assert list(a.columns) == list(b.columns)
    numeric = a.columns.drop(["stage", "train_s", "epoch_s"], errors="ignore")
    pd.testing.assert_frame_equal(a[numeric], b[numeric], rtol=0, atol=1e-4)
    run = json.loads((tmp_path / "two" / "run.json").read_text())
    assert (run["world_size"], run["backend"]) == (2, "gloo")
    assert json.loads((one.run_dir / "run.json").read_text())["world_size"] == 1


def test_a_dead_rank_stops_the_job_and_resume_reaches_the_same_metrics(artifact_dir, tmp_path):
    script = str(ROOT / "tests" / "ddp_rank_dies.py")
    full = one_process(artifact_dir, tmp_path / "one", **{"model.path_hops": 0})
    killed = torchrun(script, str(artifact_dir), str(tmp_path / "run"), "2")
    assert killed.returncode != 0
    assert "exitcode  : 3" in killed.stderr or "exitcode: 3" in killed.stderr.replace(" ", ""), killed.stderr[-2000:]
    assert not (tmp_path / "run" / "results.json").exists()
    assert (tmp_path / "run" / "checkpoints" / "pretrain.pt").exists()
    resumed = torchrun(script, str(artifact_dir), str(tmp_path / "run"), "0", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    metrics = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert close(metrics["valid"], full.valid) and close(metrics["test"], full.test)


def _sum_on_rank(rank: int, store: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    big, small, mine, nobody = (torch.nn.Parameter(torch.zeros(n)) for n in (BUCKET_NUMEL + 3, 5, 4, 2))
    big.grad = torch.arange(BUCKET_NUMEL + 3.0) * (rank + 1)  # all-reduced where it lies
    small.grad = torch.full((5,), rank + 1.0)  # rides in the shared buffer
    mine.grad = torch.ones(4) if rank == 0 else None  # one rank's gradient: the other counts as zero
    at = big.grad.data_ptr()
    values = World(rank, 2, backend="gloo").sum_gradients([big, small, mine, nobody], torch.tensor([rank + 0.5]))
    torch.save({"big": big.grad, "in_place": big.grad.data_ptr() == at, "small": small.grad, "mine": mine.grad,
                "nobody": nobody.grad, "values": values}, f"{out}.{rank}")
    dist.destroy_process_group()


def test_summed_gradients_are_the_sum_over_ranks_and_one_nobody_touched_stays_none(tmp_path):
    mp.spawn(_sum_on_rank, args=(str(tmp_path / "store"), str(tmp_path / "out")), nprocs=2)
    for rank in (0, 1):
        got = torch.load(tmp_path / f"out.{rank}")
        assert torch.equal(got["big"], torch.arange(BUCKET_NUMEL + 3.0) * 3) and got["in_place"]
        assert torch.equal(got["small"], torch.full((5,), 3.0))
        assert torch.equal(got["mine"], torch.ones(4))  # rank 1 had none: it gets rank 0's
        assert got["nobody"] is None  # as on one process: Adam skips it
        assert torch.equal(got["values"], torch.tensor([2.0]))


def test_a_rank_whose_share_of_the_kg_batch_is_empty_still_steps(example_graph):
    """Two ranks and a KG batch of one triple: rank 0's share is empty (rank 1 scores the triple), and its
    step goes on."""
    cfg = make_config(None, {"graph": "unused", **SMALL, "loss.kg_batch_size": 1})
    graph = RelationalGraph.from_hetero(example_graph.data)
    model = TransferModel(graph.sizes, graph.num_relations, cfg.model)
    data = trainer._batches(example_graph, graph, (SOURCE, TARGET), cfg)
    assert data.kg.shape[1] > 0
    opt = trainer.adam(trainer._trainable(model, "pretrain", cfg), cfg.pretrain.lr)

    class Rank0Alone(World):  # rank 0 of 2 with its peer's gradients left out: no process group needed
        def sum_gradients(self, params, values):
            return values

    losses = trainer._train_epoch("pretrain", 1, model, graph, data, cfg, cfg.pretrain, opt,
                                  torch.Generator().manual_seed(0), False, Rank0Alone(0, 2))
    assert losses["loss_kg"] == 0.0 and losses["loss"] > 0
