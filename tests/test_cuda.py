"""The GPU path: a run trained on CUDA serves, ranks and exports as the same run does on the CPU.

Every test here needs a GPU and is skipped without one; the scale benchmark's CUDA line
(`python benchmarks/scale.py --device cuda`) is the measurement.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import kgrec
from kgrec.serve import evaluate_run, export_embeddings, load_run, recommend_many

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU (CUDA)")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cuda_run(example_graph, tmp_path_factory):
    root = tmp_path_factory.mktemp("cuda")
    example_graph.save(root / "graph")
    cfg = kgrec.make_config(None, {"graph": str(root / "graph"), "device": "cuda", "model.dim": 16,
                                   "model.head": "distmult", "pretrain.epochs": 5, "pretrain.batch_size": 8,
                                   "finetune.epochs": 2, "finetune.batch_size": 8})
    res = kgrec.fit(cfg, root / "run", progress=False, log=lambda m: None)
    assert res.model.encoder.embeddings["user"].weight.is_cuda and res.graph.edge_index.is_cuda
    return root / "run"


def test_a_cuda_run_loads_to_the_gpu_and_recommends_what_the_cpu_recommends(cuda_run):
    gpu, cpu = load_run(cuda_run, "cuda"), load_run(cuda_run, "cpu")
    assert gpu.graph.edge_index.is_cuda and next(gpu.model.parameters()).is_cuda
    users = gpu.artifact.nodes["user"]["id"].astype(str).tolist()
    a, b = recommend_many(gpu, users, k=5), recommend_many(cpu, users, k=5)
    assert list(a["user"]) == list(b["user"]) and list(a["item"]) == list(b["item"])
    assert a["score"].to_numpy() == pytest.approx(b["score"].to_numpy(), abs=1e-4)


def test_ranking_on_the_gpu_gives_the_cpus_metrics(cuda_run):
    gpu = evaluate_run(load_run(cuda_run, "cuda"), "test", (10,))
    cpu = evaluate_run(load_run(cuda_run, "cpu"), "test", (10,))
    assert gpu.keys() == cpu.keys()
    for group in gpu:
        assert gpu[group] == pytest.approx(cpu[group], abs=1e-4)


def test_a_cuda_run_exports_its_embeddings(cuda_run, tmp_path):
    out = export_embeddings(load_run(cuda_run, "cuda"), tmp_path / "export", "parquet")
    assert Path(out).exists()


def test_the_scale_benchmark_measures_the_propagation_bandwidth_on_the_gpu(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scale.py"), "--edges", "20k,40k", "--device", "cuda",
                        "--work", str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "GB/s" in r.stdout and r.stdout.strip().splitlines()[-1].startswith("slopes: build=")


def test_a_cuda_run_on_new_items_chooses_and_serves_its_new_item_terms_as_the_cpu_does(example_spec, tmp_path):
    from dataclasses import replace
    cold = kgrec.build_graph(replace(example_spec, cold_start=replace(example_spec.cold_start, items=0.25)))
    cold.save(tmp_path / "graph")
    cfg = kgrec.make_config(None, {"graph": str(tmp_path / "graph"), "device": "cuda", "mode": "target_only",
                                   "model.dim": 8, "target_only.epochs": 3, "target_only.batch_size": 4})
    res = kgrec.fit(cfg, tmp_path / "run", progress=False, log=lambda m: None)
    assert res.terms is not None and res.terms.cold.is_cuda
    gpu = evaluate_run(load_run(tmp_path / "run", "cuda"), "test", (10,))
    cpu = evaluate_run(load_run(tmp_path / "run", "cpu"), "test", (10,))
    assert gpu.keys() == cpu.keys() and "cold_items" in gpu
    for group in gpu:
        assert gpu[group] == pytest.approx(cpu[group], abs=1e-4)
    assert gpu["all"]["ndcg@10"] == pytest.approx(res.test["ndcg@10"], abs=1e-4)
