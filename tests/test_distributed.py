"""Training under torchrun (2 gloo processes on CPU) gives what one process gives."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from kgrec.train import trainer
from kgrec.train.config import make_config
from kgrec.train.distributed import SINGLE, World

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
