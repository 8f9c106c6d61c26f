"""Sampled protocol, user groups, baselines, leakage, and the benchmark report."""
from __future__ import annotations

import copy
import math

import pandas as pd
import pytest
import torch

from kgrec.benchmark import transfer_gain
from kgrec.eval.groups import bucket_recall, coverage, popularity_bias, popularity_buckets, user_groups
from kgrec.eval.sampled import sampled_candidates, sampled_metrics
from kgrec.models.baselines import LightGCN
from kgrec.train.baselines import BASELINES, fit_baseline
from kgrec.train.config import LossConfig, StageConfig


def test_sampled_metrics_by_hand_with_ties_counting_against_the_item():
    # candidate 0 is the held-out item; rank = 1 + #negatives scoring >= it
    scores = torch.tensor([[0.5, 0.9, 0.7, 0.1, 0.2],    # two above -> rank 3
                           [0.5, 0.5, 0.1, 0.1, 0.1],    # one tie -> rank 2
                           [0.1, 0.9, 0.8, 0.7, 0.6]])   # rank 5
    m = sampled_metrics(lambda u, c: scores[u], torch.arange(3), torch.zeros(3, dtype=torch.long),
                        torch.ones(3, 4, dtype=torch.long), ks=(2, 10))
    assert m["sampled_hr@2"].tolist() == [0.0, 1.0, 0.0]
    assert m["sampled_ndcg@10"].tolist() == pytest.approx([1 / math.log2(4), 1 / math.log2(3), 1 / math.log2(6)])


def test_sampled_negatives_avoid_everything_the_user_has_and_are_seeded(example_graph):
    users, pos, neg = sampled_candidates(example_graph, "test", n=50, seed=3)
    inter = example_graph.interactions
    target = inter[inter["domain"] == "target"]
    for u, row in zip(users.tolist(), neg.tolist()):
        assert not set(row) & set(target[target["user"] == u]["item"])
    assert set(neg.flatten().tolist()) <= set(example_graph.items_of("target").tolist())
    assert torch.equal(neg, sampled_candidates(example_graph, "test", n=50, seed=3)[2])


def test_user_groups_follow_training_counts_and_the_cold_start_flag(example_graph):
    users = torch.arange(int(example_graph.data["user"].num_nodes))
    g = user_groups(example_graph, users)
    train = example_graph.split("train", "target")
    counts = torch.bincount(train[0], minlength=len(users))
    assert torch.equal(g["cold_start"], (counts == 0) | example_graph.data["user"].cold_start.bool())
    assert torch.equal(g["target 0"], counts == 0)
    for name in [k for k in g if k.startswith("target ")]:
        assert g[name].sum() > 0
    assert sum(int(g[k].sum()) for k in g if k.startswith("target ")) == len(users)


def test_popularity_buckets_coverage_and_arp_by_hand():
    pop = torch.tensor([10, 5, 3, 1, 1, 0])
    items = torch.arange(6)
    b = popularity_buckets(pop, items, shares=(0.5, 0.8))
    assert b["head"].tolist() == [True, False, False, False, False, False]
    assert b["mid"].tolist() == [False, True, False, False, False, False]
    assert (b["head"] | b["mid"] | b["tail"]).all()
    top = torch.tensor([[0, 1], [0, 2]])
    relevant = (torch.tensor([0, 1, 3]), torch.tensor([1, 2, 5]))
    r = bucket_recall(top, relevant, b, k=2)
    assert r["mid"] == 1.0 and r["tail"] == 0.5 and math.isnan(r["head"])
    assert coverage(top, 6, 2) == 3 / 6
    assert popularity_bias(top, pop, 2) == (10 + 5 + 10 + 3) / 4


def test_lightgcn_propagation_is_the_mean_of_normalised_powers():
    pairs = torch.tensor([[0, 0, 1], [0, 1, 1]])
    m = LightGCN(2, 2, 3, pairs, layers=2)
    A = torch.zeros(4, 4)
    for u, i in pairs.T.tolist():
        A[u, 2 + i] = A[2 + i, u] = 1
    d = A.sum(1).clamp(min=1).rsqrt()
    A = d[:, None] * A * d[None, :]
    e = torch.cat([m.users.weight, m.items.weight])
    ref = (e + A @ e + A @ A @ e) / 3
    u, i = m()
    torch.testing.assert_close(torch.cat([u, i]), ref)


@pytest.mark.parametrize("name", ["lightgcn_merged", "cmf"])
def test_cross_domain_baselines_weight_each_domain_as_kgrec_does(example_graph, name):
    """loss.source_weight and loss.target_weight scale the baselines' two ranking losses: with both
    (and the L2 term) at zero nothing is learnt, and the weights change what is learnt."""
    from kgrec.models.baselines import MF

    stage = StageConfig(epochs=2, batch_size=4, patience=5)
    n_users, n_items = int(example_graph.data["user"].num_nodes), int(example_graph.data["item"].num_nodes)
    users = torch.arange(n_users)
    idle = fit_baseline(name, example_graph, stage, LossConfig(source_weight=0.0, target_weight=0.0, l2=0.0),
                        dim=8, layers=1, seed=0)
    pairs = torch.cat([example_graph.split("train", d) for d in ("source", "target")], 1)
    torch.manual_seed(0)  # the untrained model, initialised as fit_baseline initialises it
    init = MF(n_users, n_items, 8) if name == "cmf" else LightGCN(n_users, n_items, 8, pairs, layers=1)
    u, i = init()
    torch.testing.assert_close(idle.score(users), u @ i.T)
    one = fit_baseline(name, example_graph, stage, LossConfig(), dim=8, layers=1, seed=0)
    four = fit_baseline(name, example_graph, stage, LossConfig(source_weight=4.0), dim=8, layers=1, seed=0)
    assert not torch.allclose(one.score(users), four.score(users))


def without_test(artifact):
    a = copy.deepcopy(artifact)
    a.interactions = a.interactions[a.interactions["split"] != "test"].reset_index(drop=True)
    return a


@pytest.mark.parametrize("name", BASELINES)
def test_no_baseline_sees_a_test_interaction_while_training(example_graph, name):
    """Training on the graph, and on the graph with every test interaction deleted, gives the same model."""
    stage, loss = StageConfig(epochs=4, batch_size=4), LossConfig()
    a = fit_baseline(name, example_graph, stage, loss, dim=8, seed=0)
    b = fit_baseline(name, without_test(example_graph), stage, loss, dim=8, seed=0)
    users = torch.arange(int(example_graph.data["user"].num_nodes))
    torch.testing.assert_close(a.score(users), b.score(users))


def test_kgrec_never_sees_a_test_interaction_while_training(example_graph, tmp_path):
    from kgrec.train import train
    from kgrec.train.config import make_config

    cfg = make_config(None, {"graph": str(tmp_path / "g"), "model.dim": 8, "pretrain.epochs": 3,
                             "finetune.epochs": 2, "pretrain.batch_size": 4, "finetune.batch_size": 4})
    a = train(cfg, tmp_path / "a", artifact=example_graph, progress=False, log=lambda m: None)
    b = train(cfg, tmp_path / "b", artifact=without_test(example_graph), progress=False, log=lambda m: None)
    assert a.valid == b.valid
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k]), k


def test_transfer_gain_pairs_users_and_seeds():
    rows = []
    for seed in (0, 1, 2):
        for u in range(30):
            rows.append({"model": "x", "seed": seed, "user": u, "ndcg@10": 0.5 + 0.01 * (u % 3)})
            rows.append({"model": "y", "seed": seed, "user": u, "ndcg@10": 0.4})
    t = transfer_gain(pd.DataFrame(rows), "x", "y", "ndcg@10")
    assert t["gain"] == pytest.approx(0.51 / 0.4 - 1) and t["users"] == 30 and t["seeds"] == 3
    assert t["p_users"] < 1e-4 and t["p_seeds"] == pytest.approx(0.25)


def test_benchmark_writes_a_report_and_reuses_the_graph(tmp_path):
    from conftest import EXAMPLE_SPEC
    from kgrec.cli import main

    args = ["benchmark", str(EXAMPLE_SPEC), "--out", str(tmp_path / "r"), "--seeds", "0,1", "--quiet",
            "--models", "mostpop,lightgcn,lightgcn_merged,kgrec_target_only,kgrec_transfer",
            "--set", "pretrain.epochs=3", "--set", "finetune.epochs=1", "--set", "target_only.epochs=3",
            "--set", "model.dim=8"]
    assert main(args) == 0
    out = tmp_path / "r"
    for name in ("report.md", "results.csv", "per_user.parquet", "metric_by_group.png", "training_curves.png",
                 "benchmark.json"):
        assert (out / name).exists(), name
    report = (out / "report.md").read_text()
    assert "## Does the source domain help?" in report and "cold-start" in report and "Sampled protocol" in report
    gains = [line for line in report.splitlines() if line.startswith("| vs ") or line.startswith("| transfer")]
    assert gains[0].startswith("| vs the best target-only model | kgrec |")  # the question a user asks, first
    results = pd.read_csv(out / "results.csv")
    assert set(results["model"]) == {"kgrec", "mostpop", "lightgcn", "lightgcn_merged", "kgrec_target_only",
                                     "kgrec_transfer"}
    choice = pd.read_csv(out / "kgrec_choice.csv")
    for _, row in choice.iterrows():  # kgrec is, per seed, the variant best on validation
        assert row["chosen"] == max(("kgrec_target_only", "kgrec_transfer"), key=lambda m: row[m])
        mine = results[(results["model"] == "kgrec") & (results["seed"] == row["seed"])]
        theirs = results[(results["model"] == row["chosen"]) & (results["seed"] == row["seed"])]
        assert mine["value"].fillna(-1).tolist() == theirs["value"].fillna(-1).tolist()
    assert set(results["seed"]) == {0, 1}
    stamp = (out / "graph" / "graph.pt").stat().st_mtime_ns
    assert main(args) == 0
    assert (out / "graph" / "graph.pt").stat().st_mtime_ns == stamp
    # the README's tables are printed from the report directory, not recomputed
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "summarise_reports.py"
    spec = importlib.util.spec_from_file_location("summarise_reports", script)
    summarise = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(summarise)
    table = summarise.summarise(out)
    mean = results[(results["model"] == "lightgcn") & (results["group"] == "all")
                   & (results["metric"] == "ndcg@10")]["value"].mean()
    row = next(line for line in table.splitlines() if line.startswith("| lightgcn |"))
    assert row.split("|")[2].strip().startswith(f"{mean:.4f}")
    assert "`kgrec` vs the best cross-domain baseline (`lightgcn_merged`" in table
    head = summarise.headline([out]).splitlines()
    assert head[2].startswith("| r | 0, 1 | ") and "vs `" in head[2]  # kgrec's gains, one row per report


def test_seeds_run_in_parallel_processes_give_the_same_report(example_graph, tmp_path):
    from kgrec.benchmark import run_benchmark
    from kgrec.train.config import make_config

    cfg = make_config(None, {"graph": str(tmp_path / "g"), "model.dim": 8, "pretrain.epochs": 2, "finetune.epochs": 1,
                             "target_only.epochs": 2, "model.head": "distmult"})
    # the fine-tune variants start from kgrec_transfer's pre-trained model: they must run after it
    models = ("mostpop", "lightgcn_merged", "kgrec_transfer", "kgrec_transfer_frozen", "kgrec_transfer_target")
    seeds = (0, 1)
    quiet = lambda m: None  # noqa: E731
    run_benchmark(example_graph, cfg, tmp_path / "one", models, seeds, sampled=20, log=quiet)
    run_benchmark(example_graph, cfg, tmp_path / "two", models, seeds, sampled=20, log=quiet, jobs=2)
    one, two = (pd.read_csv(tmp_path / d / "results.csv") for d in ("one", "two"))
    pd.testing.assert_frame_equal(one[["model", "seed", "group", "metric"]], two[["model", "seed", "group", "metric"]])
    assert one["value"].to_numpy() == pytest.approx(two["value"].to_numpy(), abs=1e-6, nan_ok=True)


@pytest.mark.parametrize("graph", ["merged", "target"])
def test_kgrec_runs_are_scored_on_the_graph_they_were_fine_tuned_on(example_graph, tmp_path, graph):
    import json

    from kgrec.benchmark import run_benchmark
    from kgrec.train.config import make_config

    cfg = make_config(None, {"graph": str(tmp_path / "g"), "model.dim": 8, "pretrain.epochs": 2,
                             "finetune.epochs": 2, "finetune.graph": graph})
    run_benchmark(example_graph, cfg, tmp_path / "r", ("kgrec_transfer",), (0,), sampled=20, log=lambda m: None)
    results = pd.read_csv(tmp_path / "r" / "results.csv")
    ndcg = results[(results["model"] == "kgrec_transfer") & (results["group"] == "all")
                   & (results["metric"] == "ndcg@10")]["value"].item()
    run = json.loads((tmp_path / "r" / "runs" / "kgrec_transfer-seed0" / "results.json").read_text())
    assert ndcg == pytest.approx(run["test"]["ndcg@10"], abs=1e-6)


def test_the_target_graph_variant_starts_from_the_pretrained_model_and_scores_on_the_target_graph(
        example_graph, tmp_path):
    from kgrec.benchmark import run_benchmark
    from kgrec.serve import load_run
    from kgrec.train.config import make_config

    # no fine-tuning epoch: the variant is kgrec_transfer's best pre-trained model, on the target graph
    example_graph.save(tmp_path / "g")
    cfg = make_config(None, {"graph": str(tmp_path / "g"), "model.dim": 8, "pretrain.epochs": 2, "finetune.epochs": 0})
    run_benchmark(example_graph, cfg, tmp_path / "r", ("kgrec_transfer", "kgrec_transfer_target"), (0,), sampled=20,
                  log=lambda m: None)
    runs = tmp_path / "r" / "runs"
    pretrained = torch.load(runs / "kgrec_transfer-seed0" / "checkpoints" / "pretrain.pt",
                            weights_only=True)["stage"]["best_state"]
    variant = torch.load(runs / "kgrec_transfer_target-seed0" / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(pretrained[k], v) for k, v in variant.items())
    assert load_run(runs / "kgrec_transfer_target-seed0").view == "target_only"
    assert load_run(runs / "kgrec_transfer-seed0").view == "merged"


def test_a_model_without_randomness_is_fitted_once_and_reported_under_every_seed(example_graph, tmp_path):
    from kgrec.benchmark import run_benchmark
    from kgrec.train.config import make_config

    cfg = make_config(None, {"graph": "unused", "model.dim": 8, "target_only.epochs": 2})
    messages = []
    run_benchmark(example_graph, cfg, tmp_path / "r", ("paths", "kgrec_target_only"), (0, 1), sampled=0,
                  log=messages.append)
    assert "== paths, seed 0" in messages and "== paths, seed 1" not in messages
    assert "== kgrec_target_only, seed 1" in messages
    results = pd.read_csv(tmp_path / "r" / "results.csv")
    paths = results[results["model"] == "paths"]
    assert set(paths["seed"]) == {0, 1}
    by_seed = paths.pivot_table(index=["group", "metric"], columns="seed", values="value")
    assert (by_seed[0] == by_seed[1]).all()


def test_transfer_models_on_a_one_domain_graph_are_refused_before_any_training(tmp_path):
    from kgrec import build_graph, load_spec
    from kgrec.errors import KgrecError
    from kgrec.benchmark import run_benchmark
    from kgrec.train.config import make_config

    (tmp_path / "t.csv").write_text("user,item\n" + "".join(f"u{u},i{(u + k) % 7}\n" for u in range(8) for k in range(4)))
    (tmp_path / "s.toml").write_text('name = "one"\n[target]\npath = "t.csv"\nsplit = { method = "loo" }\n')
    g = build_graph(load_spec(tmp_path / "s.toml"))
    messages = []
    with pytest.raises(KgrecError, match="kgrec_transfer"):
        run_benchmark(g, make_config(None, {"graph": "unused"}), tmp_path / "r", ("mostpop", "kgrec_transfer"), (0,),
                      sampled=0, log=messages.append)
    assert messages == []  # refused before mostpop was fitted
