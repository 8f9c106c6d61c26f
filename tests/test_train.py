"""Transfer training: stages, fine-tune modes, resume, determinism, and no leakage."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from kgrec.errors import KgrecError, SpecError
from kgrec.graph.views import target_only
from kgrec.train import trainer
from kgrec.train.config import make_config, parse_config


@pytest.fixture(scope="module")
def artifact_dir(example_graph, tmp_path_factory):
    return example_graph.save(tmp_path_factory.mktemp("graph") / "example")


def config(graph, **overrides):
    base = {"graph": str(graph), "model.dim": 8, "pretrain.epochs": 3, "finetune.epochs": 3,
            "target_only.epochs": 3, "pretrain.batch_size": 4, "finetune.batch_size": 4, "target_only.batch_size": 4}
    base.update(overrides)
    return make_config(None, base)


def run(cfg, out, **kw):
    return trainer.train(cfg, out, progress=False, log=lambda m: None, **kw)


def test_a_transfer_run_writes_every_file_of_the_run_directory(artifact_dir, tmp_path):
    cfg = config(artifact_dir)
    res = run(cfg, tmp_path / "run")
    names = {p.name for p in res.run_dir.iterdir()}
    assert {"config.toml", "run.json", "metrics.csv", "events", "checkpoints", "model.pt", "results.json"} <= names
    hist = pd.read_csv(res.run_dir / "metrics.csv")
    assert list(hist["stage"].unique()) == ["pretrain", "finetune"]
    assert {"loss_source", "loss_target", "loss_kg", "valid_ndcg@10", "valid_recall@20"} <= set(hist.columns)
    results = json.loads((res.run_dir / "results.json").read_text())
    assert set(results) >= {"valid", "test"} and 0 <= results["test"]["ndcg@10"] <= 1
    assert any(p.name.startswith("events.out.tfevents") for p in (res.run_dir / "events").iterdir())
    # the saved config is the one trained with (its graph path made absolute), every key included
    assert make_config(res.run_dir / "config.toml") == dataclasses.replace(cfg, graph=str(Path(cfg.graph).resolve()))


def test_the_same_seed_gives_the_same_numbers(artifact_dir, tmp_path):
    a = run(config(artifact_dir), tmp_path / "a")
    b = run(config(artifact_dir), tmp_path / "b")
    assert a.valid == b.valid and a.test == b.test
    c = run(config(artifact_dir, seed=1), tmp_path / "c")
    assert not torch.equal(a.model.encoder.embeddings["user"].weight, c.model.encoder.embeddings["user"].weight)


def best_pretrain_state(run_dir):
    return torch.load(run_dir / "checkpoints" / "pretrain.pt", weights_only=True)["stage"]["best_state"]


def test_frozen_fine_tuning_leaves_the_encoder_bit_identical(artifact_dir, tmp_path):
    cfg = config(artifact_dir, **{"finetune.mode": "frozen", "model.head": "distmult", "finetune.lr": 0.1})
    res = run(cfg, tmp_path / "run")
    before = best_pretrain_state(res.run_dir)
    after = res.model.state_dict()
    enc = [k for k in after if k.startswith("encoder.")]
    assert enc and all(torch.equal(before[k], after[k]) for k in enc)
    finetuned = torch.load(res.run_dir / "checkpoints" / "finetune.pt", weights_only=True)["model"]
    assert not torch.equal(finetuned["heads.target.weight"], before["heads.target.weight"])


def test_upper_fine_tuning_trains_only_the_last_layers_and_the_head(artifact_dir, tmp_path):
    cfg = config(artifact_dir, **{"finetune.mode": "upper", "finetune.upper_layers": 1, "model.head": "distmult",
                                  "finetune.lr": 0.1, "model.transform": True})
    res = run(cfg, tmp_path / "run")
    before = best_pretrain_state(res.run_dir)
    last = torch.load(res.run_dir / "checkpoints" / "finetune.pt", weights_only=True)["model"]
    frozen = [k for k in last if k.startswith("encoder.") and not k.startswith("encoder.layers.1.")]
    assert all(torch.equal(before[k], last[k]) for k in frozen)
    assert not torch.equal(before["encoder.layers.1.w_forward.weight"], last["encoder.layers.1.w_forward.weight"])


def test_fine_tuning_on_the_target_graph_starts_from_pretraining_and_sends_no_source_message(
        artifact_dir, tmp_path, monkeypatch):
    from kgrec.models.encoder import Encoder
    from kgrec.serve import evaluate_run, load_run
    real = Encoder.forward
    source_edges_per_call = []

    def spy(self, graph, *args, **kwargs):
        rel = [i for i, (s, r, d) in enumerate(graph.relations) if "interacts_source" in r]
        source_edges_per_call.append(int(torch.isin(graph.edge_type, torch.tensor(rel)).sum()))
        return real(self, graph, *args, **kwargs)

    monkeypatch.setattr(Encoder, "forward", spy)
    res = run(config(artifact_dir, **{"finetune.graph": "target"}), tmp_path / "run")
    monkeypatch.setattr(Encoder, "forward", real)
    assert source_edges_per_call[0] > 0    # pre-training propagates over the merged graph
    assert source_edges_per_call[-1] == 0  # fine-tuning and the final scores do not
    loaded = load_run(res.run_dir)
    assert loaded.view == "target_only"
    assert evaluate_run(loaded, "test")["all"]["ndcg@10"] == pytest.approx(res.test["ndcg@10"])
    # with no fine-tuning epoch the model is the best pre-trained one, scored on the target graph
    res0 = run(config(artifact_dir, **{"finetune.graph": "target", "finetune.epochs": 0}), tmp_path / "run0")
    before = best_pretrain_state(res0.run_dir)
    assert all(torch.equal(before[k], v) for k, v in res0.model.state_dict().items())


def test_frozen_mode_needs_a_head_with_parameters(artifact_dir):
    with pytest.raises(SpecError, match="finetune.mode"):
        config(artifact_dir, **{"finetune.mode": "frozen", "model.head": "dot"})


def test_a_killed_run_resumes_to_the_same_result(artifact_dir, tmp_path, monkeypatch):
    full = run(config(artifact_dir), tmp_path / "full")
    real = trainer._train_epoch

    def killed(stage, epoch, *args, **kwargs):
        if stage == "finetune" and epoch == 2:
            raise KeyboardInterrupt
        return real(stage, epoch, *args, **kwargs)

    monkeypatch.setattr(trainer, "_train_epoch", killed)
    with pytest.raises(KeyboardInterrupt):
        run(config(artifact_dir), tmp_path / "killed")
    monkeypatch.setattr(trainer, "_train_epoch", real)
    with pytest.raises(KgrecError, match="resume"):
        run(config(artifact_dir), tmp_path / "killed")
    resumed = run(config(artifact_dir), tmp_path / "killed", resume=True)
    assert resumed.valid == full.valid and resumed.test == full.test
    a = pd.read_csv(full.run_dir / "metrics.csv").filter(like="valid_")
    b = pd.read_csv(resumed.run_dir / "metrics.csv").filter(like="valid_")
    pd.testing.assert_frame_equal(a, b)


def test_resume_refuses_another_config(artifact_dir, tmp_path):
    run(config(artifact_dir), tmp_path / "run")
    with pytest.raises(KgrecError, match="another config"):
        run(config(artifact_dir, seed=5), tmp_path / "run", resume=True)


@pytest.mark.parametrize("mode", ["transfer", "target_only"])
def test_no_held_out_target_interaction_reaches_message_passing_or_a_loss(artifact_dir, example_graph, tmp_path,
                                                                         monkeypatch, mode):
    held = torch.cat([example_graph.split("valid", "target"), example_graph.split("test", "target")], 1)
    held = {(u, i) for u, i in held.T.tolist()}
    assert held
    seen_pairs, seen_edges = set(), set()
    real_loss = trainer._interaction_loss
    from kgrec.models.encoder import Encoder
    real_encoder = Encoder.forward

    def spy_loss(model, h, domain, users, pos, *args):
        seen_pairs.update(zip(users.tolist(), pos.tolist()))
        return real_loss(model, h, domain, users, pos, *args)

    def spy_encoder(self, graph, *args, **kwargs):
        users, items = graph.node_slice("user"), graph.node_slice("item")
        for s, d in graph.edge_index.T.tolist():
            if users.start <= s < users.stop and items.start <= d < items.stop:
                seen_edges.add((s - users.start, d - items.start))
            if users.start <= d < users.stop and items.start <= s < items.stop:
                seen_edges.add((d - users.start, s - items.start))
        return real_encoder(self, graph, *args, **kwargs)

    monkeypatch.setattr(trainer, "_interaction_loss", spy_loss)
    monkeypatch.setattr(Encoder, "forward", spy_encoder)
    run(config(artifact_dir, mode=mode), tmp_path / "run")
    assert seen_pairs and seen_edges
    assert not held & seen_pairs
    assert not held & seen_edges


def test_the_target_only_view_has_no_source_interaction_or_source_item_edge(example_graph):
    data = target_only(example_graph.data)
    source_items = (example_graph.data["item"].domain == 0).nonzero().flatten().tolist()
    assert data.edge_types == example_graph.data.edge_types
    for (s, rel, d) in data.edge_types:
        ei = data[s, rel, d].edge_index
        assert "interacts_source" not in rel or ei.shape[1] == 0
        if s == "item":
            assert not set(ei[0].tolist()) & set(source_items)
        if d == "item":
            assert not set(ei[1].tolist()) & set(source_items)
    assert data["user", "interacts_target", "item"].edge_index.shape[1] > 0


def test_target_only_runs_one_stage_on_its_own_graph(artifact_dir, tmp_path):
    res = run(config(artifact_dir, mode="target_only"), tmp_path / "run")
    assert list(res.history["stage"].unique()) == ["target_only"]
    assert json.loads((res.run_dir / "run.json").read_text())["stages"].keys() == {"target_only"}


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(SpecError, match="pretrain.epoch.*did you mean 'epochs'"):
        parse_config({"graph": "g", "pretrain": {"epoch": 3}})
    with pytest.raises(SpecError, match="model.head.*expected one of"):
        parse_config({"graph": "g", "model": {"head": "cosine"}})
    with pytest.raises(SpecError, match="graph.*required"):
        parse_config({})
    with pytest.raises(SpecError, match="finetune.upper_layers"):
        parse_config({"graph": "g", "model": {"transform": True}, "finetune": {"mode": "upper", "upper_layers": 5}})
    with pytest.raises(SpecError, match="finetune.mode.*transform"):
        parse_config({"graph": "g", "finetune": {"mode": "upper"}})
    with pytest.raises(SpecError, match="loss.cl_layer.*exceeds model.layers"):
        parse_config({"graph": "g", "loss": {"cl_weight": 0.1, "cl_layer": 3}})


def test_a_missing_device_is_a_clear_error(artifact_dir, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(KgrecError, match="CUDA is not available"):
        run(config(artifact_dir, device="cuda"), tmp_path / "run")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_training_runs_on_cuda(artifact_dir, tmp_path):
    res = run(config(artifact_dir, device="cuda"), tmp_path / "run")
    assert json.loads((res.run_dir / "run.json").read_text())["device"].startswith("cuda")


def test_every_shipped_training_config_parses():
    from pathlib import Path

    configs = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.toml"))
    assert configs
    for path in configs:
        cfg = make_config(path)
        assert Path(cfg.graph).parent.name == "artifacts", path


@pytest.mark.parametrize("overrides", [
    {"loss.align": "mmd", "loss.align_weight": 0.5},
    {"loss.align": "adversarial", "loss.align_weight": 0.5},
    {"loss.loss": "bce", "loss.negatives": 3, "loss.sampler": "popularity", "loss.kg_loss": "distmult"},
    {"loss.loss": "bpr", "loss.negatives": 1, "loss.cl_weight": 0.2, "loss.cl_noise": 0.2},
    {"loss.cl_weight": 0.1, "model.combine": "concat", "model.layers": 1},
    {"model.layer": "rgcn", "model.num_bases": 2, "finetune.mode": "upper"},
    {"model.transform": True, "model.composition": "sub", "model.combine": "concat", "model.head": "bilinear"},
    {"model.head": "mlp", "model.dropout": 0.2, "model.activation": "tanh"},
    {"model.composition": "mult", "model.transform": True, "finetune.mode": "upper"},
], ids=["mmd", "adversarial", "bce-popularity-distmult", "bpr-contrastive", "contrastive-concat", "rgcn-upper",
        "sub-transform-concat", "mlp-dropout", "mult-transform-upper"])
def test_every_option_trains_and_logs_its_losses(artifact_dir, tmp_path, overrides):
    res = run(config(artifact_dir, **overrides), tmp_path / "run")
    hist = res.history.dropna(subset=["loss"])
    assert len(hist) > 0 and hist["loss"].notna().all() and 0 <= res.valid["ndcg@10"] <= 1
    if "loss.align" in overrides:
        assert hist["loss_align"].notna().any()
    if "loss.cl_weight" in overrides:
        assert (hist["loss_cl"] > 0).all()


def test_simulated_cold_start_hides_exactly_the_chosen_users_target_edges(example_graph):
    from kgrec.models import RelationalGraph
    graph = RelationalGraph.from_hetero(example_graph.data)
    users = example_graph.split("train", "target")[0].unique()
    hidden_graph = trainer.hide_target_edges(graph, users, 0.5, torch.Generator().manual_seed(0))
    target_rels = {r for r, (_, rel, _) in enumerate(graph.relations) if rel.endswith("interacts_target")}

    def user_edges(g):
        out = set()
        for (s, d), r in zip(g.edge_index.T.tolist(), g.edge_type.tolist()):
            out.add((s, d, r))
        return out

    before, after = user_edges(graph), user_edges(hidden_graph)
    removed = before - after
    assert after <= before and removed
    assert all(r in target_rels for _, _, r in removed)  # source and KG edges all stay
    lo = graph.offsets["user"]
    gone = {(s if lo <= s < lo + graph.sizes["user"] else d) - lo for s, d, _ in removed}
    assert len(gone) == round(0.5 * len(users))
    # every target edge of a chosen user is gone, in both directions; nobody else lost one
    for s, d, r in before:
        if r in target_rels:
            u = (s if lo <= s < lo + graph.sizes["user"] else d) - lo
            assert ((s, d, r) in removed) == (u in gone)
    # the degree normalisation is that of the graph that remains
    kept = RelationalGraph.from_hetero(example_graph.data)
    keep = torch.tensor([(s, d, r) in after for (s, d), r in zip(kept.edge_index.T.tolist(), kept.edge_type.tolist())])
    assert torch.allclose(kept.keep_edges(keep).norm, hidden_graph.norm)
    deg = torch.bincount(hidden_graph.edge_index[1], minlength=graph.num_nodes).float()
    s, d = hidden_graph.edge_index
    out_deg = torch.bincount(s, minlength=graph.num_nodes).float()
    assert torch.allclose(hidden_graph.norm, (out_deg[s] * deg[d]).rsqrt())


def test_simulated_cold_start_trains_and_leaves_the_scoring_graph_whole(artifact_dir, tmp_path, monkeypatch):
    sizes = []
    from kgrec.models.encoder import Encoder
    real = Encoder.forward

    def spy(self, graph, *args, **kwargs):
        sizes.append((self.training, graph.edge_index.shape[1]))
        return real(self, graph, *args, **kwargs)

    monkeypatch.setattr(Encoder, "forward", spy)
    res = run(config(artifact_dir, **{"pretrain.cold_users": 0.5, "finetune.epochs": 0}), tmp_path / "run")
    full = res.graph.edge_index.shape[1]
    assert {n for training, n in sizes if not training} == {full}  # validation and test see every edge
    assert all(n < full for training, n in sizes if training)
    assert 0 <= res.valid["ndcg@10"] <= 1
    with pytest.raises(SpecError, match="pretrain.cold_users.*<= 1"):
        parse_config({"graph": "g", "pretrain": {"cold_users": 1.5}})


def test_the_walk_graph_and_blend_weight_are_the_best_on_validation_and_score_the_run(artifact_dir, tmp_path):
    from kgrec.models.paths import PATH_WEIGHTS
    res = run(config(artifact_dir), tmp_path / "run")
    results = json.loads((res.run_dir / "results.json").read_text())
    by = {(view, float(w)): v for view, ws in results["path_weight_valid"].items() for w, v in ws.items()}
    assert by.keys() == {(view, w) for view in ("merged", "target") for w in PATH_WEIGHTS}
    best = max(by.values())  # ties: the merged graph first, then the smaller weight
    assert (results["path_graph"], results["path_weight"]) == min((k for k, v in by.items() if v == best),
                                                                   key=lambda k: (k[0] != "merged", k[1]))
    assert results["valid"]["ndcg@10"] == pytest.approx(best, abs=1e-9)
    from kgrec.eval import mean_metrics, ranking_task
    from kgrec.graph.artifact import load_graph
    valid = ranking_task(load_graph(artifact_dir), "valid")  # scored again, independently of the choice
    again = mean_metrics(trainer.validate(res.model, res.graph, valid, (10, 20), paths=res.paths,
                                          path_weight=res.path_weight))
    assert again == pytest.approx(results["valid"], abs=1e-9)
    assert (res.path_graph, res.path_weight) == (results["path_graph"], results["path_weight"])
    saved = torch.load(res.run_dir / "model.pt", weights_only=True)
    assert (saved["path_graph"], saved["path_weight"]) == (results["path_graph"], results["path_weight"])


@pytest.mark.parametrize("path_graph", ["merged", "target"])
def test_a_transfer_runs_walks_cross_the_graph_it_names_in_training_and_once_loaded(artifact_dir, tmp_path,
                                                                                     path_graph):
    from kgrec.graph.artifact import load_graph
    from kgrec.graph.views import target_only
    from kgrec.models import RelationalGraph
    from kgrec.serve import load_run
    from kgrec.serve.evaluate import evaluate_run
    res = run(config(artifact_dir, **{"model.path_graph": path_graph}), tmp_path / "run")
    results = json.loads((res.run_dir / "results.json").read_text())
    assert results["path_graph"] == res.path_graph == path_graph and set(results["path_weight_valid"]) == {path_graph}
    artifact = load_graph(artifact_dir)
    walked = RelationalGraph.from_hetero(artifact.data if path_graph == "merged" else target_only(artifact.data))
    assert torch.equal(res.paths.graph.edge_index, walked.edge_index)
    loaded = load_run(res.run_dir)
    assert loaded.path_graph == path_graph
    if res.path_weight:
        assert torch.equal(loaded.paths().graph.edge_index, walked.edge_index)
    assert evaluate_run(loaded, "valid")["all"]["ndcg@10"] == pytest.approx(results["valid"]["ndcg@10"], abs=1e-6)


def test_a_target_only_runs_walks_stay_on_the_target_graph(artifact_dir, tmp_path):
    res = run(config(artifact_dir, mode="target_only", **{"model.path_graph": "merged"}), tmp_path / "run")
    assert res.path_graph == "target" and torch.equal(res.paths.graph.edge_index, res.graph.edge_index)


def test_without_path_scores_the_embeddings_score_alone(artifact_dir, tmp_path):
    res = run(config(artifact_dir, **{"model.path_hops": 0}), tmp_path / "run")
    results = json.loads((res.run_dir / "results.json").read_text())
    assert results["path_weight"] == 0 and results["path_weight_valid"] == {} and res.paths is None
    assert results["path_graph"] == ""
    with pytest.raises(SpecError, match="model.path_hops.*odd"):
        parse_config({"graph": "g", "model": {"path_hops": 2}})


@pytest.mark.parametrize("ease", [False, True])
def test_the_chosen_filter_is_recorded_and_served(artifact_dir, tmp_path, ease):
    import json

    from kgrec.models.itemknn import EASEFilter
    from kgrec.serve import load_run
    from kgrec.serve.run import path_scorer

    res = run(config(artifact_dir, **{"pretrain.epochs": 2, "finetune.epochs": 1, "model.path_ease": ease}),
              tmp_path / "r")
    saved = json.loads((tmp_path / "r" / "results.json").read_text())
    chosen = res.paths.describe() if isinstance(res.paths, EASEFilter) else {"alpha": res.paths.alpha, "beta": res.paths.beta}
    assert saved["path_filter"] == chosen
    assert any(name.startswith("ease") for by in saved["path_filter_valid"].values() for name in by) == ease
    # the filter kept is the one whose blend with the embeddings is best, over both families when EASE is on
    blended = saved["path_filter_blended"]
    assert all(len(by) == (2 if ease else 1) for by in blended.values())
    assert saved["valid"]["ndcg@10"] == pytest.approx(max(v for by in blended.values() for v in by.values()), abs=1e-9)
    assert blended[saved["path_graph"]][trainer._filter_name(res.paths)] == pytest.approx(saved["valid"]["ndcg@10"], abs=1e-9)
    loaded = load_run(tmp_path / "r")
    assert loaded.path_filter == saved["path_filter"]
    walks = path_scorer(loaded.config, loaded.artifact, loaded.path_graph, "cpu", loaded.path_filter)
    assert type(walks) is type(res.paths)
    assert (tmp_path / "r" / "paths.pt").exists() == (res.path_weight > 0)  # the filter's operator, saved
    users, items = torch.arange(5), loaded.artifact.items_of("target")
    # served from paths.pt where the run saved it, recomputed from the record otherwise: the same scores
    torch.testing.assert_close(walks.scores(users, items), res.paths.scores(users, items))
    if res.path_weight:
        torch.testing.assert_close(loaded.paths().scores(users, items), res.paths.scores(users, items))


def test_a_stage_under_max_steps_batches_is_unchanged_and_above_it_the_batch_and_lr_grow():
    from kgrec.train.config import StageConfig
    stage = StageConfig(batch_size=100, lr=0.01, max_steps=4)
    assert stage.for_interactions(400) == stage
    big = stage.for_interactions(1_600)  # 4x the batch
    assert (big.batch_size, big.lr) == (400, pytest.approx(0.02))
    assert dataclasses.replace(stage, lr_scaling="linear").for_interactions(1_600).lr == pytest.approx(0.04)
    assert dataclasses.replace(stage, lr_scaling="none").for_interactions(1_601).batch_size == 401
    assert dataclasses.replace(stage, max_steps=0).for_interactions(10**9) == dataclasses.replace(stage, max_steps=0)


def test_an_epoch_takes_at_most_max_steps_propagations_and_still_sees_every_target_pair(artifact_dir, tmp_path,
                                                                                        monkeypatch):
    seen = []
    loss = trainer._interaction_loss

    def counting(model, h, domain, users, pos, *a):
        seen.append(len(users))
        return loss(model, h, domain, users, pos, *a)
    monkeypatch.setattr(trainer, "_interaction_loss", counting)
    cfg = config(artifact_dir, mode="target_only", **{"target_only.epochs": 1, "target_only.max_steps": 3,
                                                              "target_only.batch_size": 1})
    run(cfg, tmp_path / "run")
    n = trainer.load_graph(cfg.graph).split("train", "target").shape[1]
    assert n > 3  # the cap binds: without it, n steps of one pair
    assert len(seen) == 3 and sum(seen) == n
