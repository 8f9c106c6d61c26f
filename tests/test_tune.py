"""``kgrec tune``: an Optuna study of trainings, resumable, pruned and chosen on validation alone."""
from __future__ import annotations

import optuna
import pandas as pd
import pytest

from conftest import EXAMPLE_SPEC
from kgrec.cli import main
from kgrec.errors import SpecError
from kgrec.graph.artifact import GraphArtifact, load_graph
from kgrec.train.config import load_config, make_config
from kgrec.train.trainer import train
from kgrec.tune import Param, load_space, tune

TINY = {"model.dim": 8, "pretrain.epochs": 2, "finetune.epochs": 2, "pretrain.patience": 5,
        "finetune.patience": 5}
SPACE = {"loss.target_weight": Param(0.1, 2.0, log=True), "model.layers": Param(1, 2)}
SPACE_TOML = '"loss.target_weight" = { low = 0.1, high = 2.0, log = true }\nmodel.layers = [1, 2]\n'


@pytest.fixture(scope="module")
def graph_dir(tmp_path_factory, example_graph):
    out = tmp_path_factory.mktemp("tune") / "graph"
    example_graph.save(out)
    return out


def _config(graph_dir):
    return make_config(overrides={"graph": str(graph_dir), **TINY})


def _cli(out, trials, *extra):
    sets = [a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]
    space = out.parent / "space.toml"
    space.write_text(SPACE_TOML)
    return main(["tune", str(EXAMPLE_SPEC), "--out", str(out), "--trials", str(trials), "--space", str(space),
                 "--quiet", *sets, *extra])


@pytest.mark.slow
def test_a_study_of_three_trials_writes_the_study_the_trials_and_a_best_config_that_repeats_the_best(tmp_path):
    out = tmp_path / "study"
    assert _cli(out, 3) == 0
    assert (out / "study.db").is_file() and (out / "graph" / "manifest.json").is_file()
    trials = pd.read_csv(out / "trials.csv")
    assert list(trials["trial"]) == [0, 1, 2] and set(trials["state"]) == {"COMPLETE"}
    base = make_config(overrides={"graph": "g", **TINY})  # the first trial is the base config, to be beaten
    assert trials.loc[0, "loss.target_weight"] == base.loss.target_weight
    assert trials.loc[0, "model.layers"] == base.model.layers
    assert {"loss.target_weight", "model.layers", "valid_ndcg@10"} <= set(trials.columns)
    best = trials.loc[trials["valid_ndcg@10"].idxmax()]
    config = load_config(out / "best.toml")
    assert config.model.layers == best["model.layers"] and config.model.dim == 8
    assert config.loss.target_weight == pytest.approx(best["loss.target_weight"])
    # only the best trial keeps its weights
    assert [p.parent.name for p in sorted((out / "trials").glob("*/model.pt"))] == [f"{best['trial']:04d}"]
    from kgrec.serve.verify import verify  # and every trial's run.json records just the files it kept
    assert all(verify(t).ok for t in sorted((out / "trials").iterdir()))
    again = train(config, tmp_path / "again", progress=False, log=lambda _m: None)
    assert again.valid["ndcg@10"] == pytest.approx(best["valid_ndcg@10"], abs=1e-6)


@pytest.mark.slow
def test_running_again_continues_the_study_up_to_n_trials_in_total(tmp_path):
    out = tmp_path / "study"
    assert _cli(out, 3) == 0
    assert _cli(out, 5) == 0
    study = optuna.load_study(study_name="kgrec", storage=f"sqlite:///{out / 'study.db'}")
    assert len(study.trials) == 5
    assert len(pd.read_csv(out / "trials.csv")) == 5
    # the continued study draws new settings, not the first call's again
    params = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(params)) == 5
    assert _cli(out, 5) == 0  # nothing left to do
    assert len(optuna.load_study(study_name="kgrec", storage=f"sqlite:///{out / 'study.db'}").trials) == 5


def test_a_study_is_not_continued_with_another_base_config(tmp_path, capsys):
    out = tmp_path / "study"
    assert _cli(out, 1) == 0
    capsys.readouterr()
    assert _cli(out, 2, "--set", "loss.negatives=4") == 2
    assert "another graph, base config or search space" in capsys.readouterr().err


def test_the_trials_never_read_the_test_split(graph_dir, monkeypatch, tmp_path):
    read = []
    split = GraphArtifact.split

    def recording(self, name, domain="target"):
        pairs = split(self, name, domain)
        read.append((name, pairs.shape[1]))
        return pairs
    monkeypatch.setattr(GraphArtifact, "split", recording)
    artifact = load_graph(graph_dir)
    assert artifact.split("test").shape[1] > 0  # there is a test split to leak
    read.clear()
    study = tune(artifact, _config(graph_dir), tmp_path / "study", 2, space=SPACE, log=lambda _m: None)
    assert len(study.trials) == 2 and {n for n, _ in read} >= {"train", "valid"}
    assert [rows for name, rows in read if name == "test"] == [0] * sum(name == "test" for name, _ in read)


class _AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return True


def test_a_trial_the_pruner_stops_is_recorded_as_pruned_after_its_first_epoch(graph_dir, tmp_path):
    out = tmp_path / "study"
    study = tune(load_graph(graph_dir), _config(graph_dir), out, 2, space=SPACE,
                 pruner=_AlwaysPrune(), log=lambda _m: None)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.PRUNED] * 2
    assert all(list(t.intermediate_values) == [1] for t in study.trials)
    assert list(pd.read_csv(out / "trials.csv")["state"]) == ["PRUNED", "PRUNED"]
    assert not (out / "best.toml").exists()  # no trial completed
    assert not list((out / "trials").glob("*/model.pt"))


def test_on_epoch_counts_epochs_over_both_stages_and_may_stop_the_run(graph_dir, tmp_path):
    seen = []
    result = train(_config(graph_dir), tmp_path / "run", progress=False, log=lambda _m: None,
                   on_epoch=lambda step, value: seen.append((step, value)))
    trained = result.history[result.history["epoch"] > 0]
    assert [s for s, _ in seen] == [1, 2, 3, 4]
    assert [v for _, v in seen] == pytest.approx(trained["valid_ndcg@10"].tolist())

    def stop(step, value):
        raise RuntimeError(f"stop at {step}")
    with pytest.raises(RuntimeError, match="stop at 1"):
        train(_config(graph_dir), tmp_path / "stopped", progress=False, log=lambda _m: None, on_epoch=stop)


@pytest.mark.parametrize("text, key", [
    ("model.dimm = [8, 16]", "model.dimm"),
    ("loss.l2 = { low = 0, high = 1e-3, log = true }", "loss.l2"),
    ("model.layers = [1.5, 3]", "model.layers"),
    ("loss.kg_weight = [-1, 0.5]", "loss.kg_weight"),
    ('model.head = { choices = ["dot", "nope"] }', "model.head"),
    ("loss.source_weight = [1, 0.5]", "loss.source_weight"),
    ('model.dim = "big"', "model.dim"),
    ("seed = [0, 3]", "seed"),
])
def test_a_bad_space_file_is_a_clean_error_naming_the_key(graph_dir, tmp_path, capsys, text, key):
    space = tmp_path / "space.toml"
    space.write_text(text + "\n")
    with pytest.raises(SpecError) as e:
        load_space(space, _config(graph_dir))
    assert e.value.key == key
    assert main(["tune", "--graph", str(graph_dir), "--out", str(tmp_path / "study"), "--trials", "1",
                 "--space", str(space)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kgrec: error: space.toml: key ") and f"'{key}'" in err and "Traceback" not in err
    assert not (tmp_path / "study" / "study.db").exists()


def test_a_space_file_reads_ranges_log_ranges_and_choices(graph_dir, tmp_path):
    space = tmp_path / "space.toml"
    space.write_text('"model.layers" = [1, 3]\npretrain.lr = { low = 1e-3, high = 1e-2, log = true }\n'
                     '[loss]\nkg_weight = [0, 1]\n[model]\nhead = { choices = ["dot", "distmult"] }\n')
    assert load_space(space, _config(graph_dir)) == {
        "model.layers": Param(1, 3), "pretrain.lr": Param(1e-3, 1e-2, log=True),
        "model.head": Param(choices=("dot", "distmult")), "loss.kg_weight": Param(0, 1)}


def test_a_trial_left_running_by_a_killed_run_is_failed_and_not_counted(graph_dir, tmp_path):
    out = tmp_path / "study"
    tune(load_graph(graph_dir), _config(graph_dir), out, 1, space=SPACE, log=lambda _m: None)
    killed = optuna.load_study(study_name="kgrec", storage=f"sqlite:///{out / 'study.db'}")
    killed.ask()  # what a process killed mid-trial leaves behind
    study = tune(load_graph(graph_dir), _config(graph_dir), out, 2, space=SPACE, log=lambda _m: None)
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "FAIL", "COMPLETE"]


def test_a_combination_the_config_refuses_fails_its_trial_and_the_study_goes_on(graph_dir, tmp_path):
    config = make_config(overrides={"graph": str(graph_dir), **TINY, "finetune.mode": "upper", "model.transform": True})
    space = {"model.layers": Param(choices=(1,)), "finetune.upper_layers": Param(choices=(1, 2))}
    study = tune(load_graph(graph_dir), config, tmp_path / "study", 4, space=space, log=lambda _m: None)
    states = [(t.params["finetune.upper_layers"], t.state.name) for t in study.trials]
    assert len(states) == 4 and set(states) <= {(1, "COMPLETE"), (2, "FAIL")} and (2, "FAIL") in states
    refused = [t for t in study.trials if t.state.name == "FAIL"]
    assert all("finetune.upper_layers" in t.user_attrs["error"] for t in refused)


@pytest.mark.slow
def test_a_study_over_two_graphs_scores_each_trial_by_the_geometric_mean_of_their_validation(tmp_path):
    # the example spec, and a copy that splits with another seed: the same settings score differently
    other = tmp_path / "specs" / "reseeded.toml"
    other.parent.mkdir()
    text = EXAMPLE_SPEC.read_text().replace("seed = 0 ", "seed = 1 ")
    assert text != EXAMPLE_SPEC.read_text()
    other.write_text(text.replace('path = "', f'path = "{EXAMPLE_SPEC.parent}/'))
    out = tmp_path / "study"
    sets = [a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]
    (tmp_path / "space.toml").write_text(SPACE_TOML)
    assert main(["tune", str(EXAMPLE_SPEC), str(other), "--out", str(out), "--trials", "2", "--space",
                 str(tmp_path / "space.toml"), "--quiet", *sets]) == 0
    trials = pd.read_csv(out / "trials.csv")
    names = ["movies_books", "reseeded"]
    each = trials[[f"valid_ndcg@10 {n}" for n in names]]
    assert not each.isna().any().any()
    assert trials["valid_ndcg@10"].to_numpy() == pytest.approx((each.prod(axis=1) ** 0.5).to_numpy())
    for trial in trials["trial"]:  # each graph's run, trained with the trial's settings on that graph
        for name in names:
            run = out / "trials" / f"{trial:04d}" / name
            assert load_config(run / "config.toml").graph == str((out / "graphs" / name).resolve())
            recorded = pd.read_json(run / "results.json", typ="series")["valid"]["ndcg@10"]
            assert recorded == pytest.approx(trials.loc[trial, f"valid_ndcg@10 {name}"])
    best = int(trials.loc[trials["valid_ndcg@10"].idxmax(), "trial"])
    assert sorted(p.parent.relative_to(out / "trials").as_posix() for p in (out / "trials").glob("*/*/model.pt")) \
        == [f"{best:04d}/{n}" for n in names]  # only the best trial keeps its weights, on every graph
    assert load_config(out / "best.toml").graph == str((out / "graphs" / "movies_books").resolve())
    # continued with the graphs in another order, it is another study
    assert main(["tune", str(other), str(EXAMPLE_SPEC), "--out", str(out), "--trials", "3", "--space",
                 str(tmp_path / "space.toml"), "--quiet", *sets]) != 0


def test_the_first_trial_takes_the_base_values_the_space_holds_and_draws_the_others(graph_dir, tmp_path):
    config = make_config(overrides={"graph": str(graph_dir), **TINY, "model.layers": 3, "loss.target_weight": 0.5})
    study = tune(load_graph(graph_dir), config, tmp_path / "study", 1, space=SPACE, log=lambda _m: None)
    first = study.trials[0].params
    assert first["loss.target_weight"] == 0.5  # in the space: the base config's own value
    assert first["model.layers"] in (1, 2)  # the base's 3 is outside model.layers = [1, 2]: drawn
