"""Every number a user gives, on the command line, in a config or through ``--set``, is checked
(finite, in range, the right type) before any work starts or anything is written."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch

from conftest import EXAMPLE_SPEC
from kgrec.cli import main
from kgrec.errors import KgrecError, SpecError
from kgrec.models.encoder import ModelConfig
from kgrec.train.budget import check_memory, estimate_bytes
from kgrec.train.config import EvalConfig, FinetuneConfig, LossConfig, StageConfig, make_config

SECTIONS = {"model": ModelConfig, "loss": LossConfig, "pretrain": StageConfig, "finetune": FinetuneConfig,
            "target_only": StageConfig}


def numeric_fields():
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            if type(f.default) in (int, float):
                yield section, f


@pytest.fixture(scope="module")
def graph_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("values") / "g"
    assert main(["build", str(EXAMPLE_SPEC), "--out", str(out), "--quiet"]) == 0
    return out


def refused(argv, capsys) -> str:
    """Run the CLI; it must exit 2 and say why in its last line, which is returned."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse refuses a bad argument type before any command runs
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize("argv, named", [
    (["build", EXAMPLE_SPEC, "--seed", "-5"], "--seed"),
    (["build", EXAMPLE_SPEC, "--seed", str(2**32)], "--seed"),
    (["build", EXAMPLE_SPEC, "--seed", "1e3"], "--seed"),
    (["recommend", "RUN", "--user", "u1", "--k", "0"], "--k"),
    (["recommend", "RUN", "--user", "u1", "--k", "-1"], "--k"),
    (["evaluate", "RUN", "--ks", "abc"], "--ks"),
    (["evaluate", "RUN", "--ks", "0"], "--ks"),
    (["evaluate", "RUN", "--ks", "10,-5"], "--ks"),
    (["evaluate", "RUN", "--ks", "10,,20"], "--ks"),
    (["update", "RUN", "--interactions", "f.csv", "--out", "OUT", "--epochs", "-1"], "--epochs"),
    (["train", "--graph", "G", "--out", "OUT", "--seed", str(2**40)], "--seed"),
    (["benchmark", "--graph", "G", "--out", "OUT", "--seeds", "0,x"], "--seeds"),
    (["benchmark", "--graph", "G", "--out", "OUT", "--jobs", "0"], "--jobs"),
    (["tune", "--graph", "G", "--out", "OUT", "--trials", "0"], "--trials"),
    (["kg-signal", "G", "--shuffles", "0"], "--shuffles"),
    (["evaluate", "RUN", "--ks", "9223372036854775808"], "--ks"),  # was an overflow or a 51 GB allocation
    (["recommend", "RUN", "--user", "u1", "--k", str(2**40)], "--k"),
])
def test_a_bad_number_on_the_command_line_exits_2_naming_the_argument_and_writes_nothing(argv, named, tmp_path,
                                                                                        capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = refused(argv, capsys)
    assert f"argument {named}" in line and "expected" in line
    assert not list(tmp_path.iterdir())


def test_evaluate_ks_are_parsed_once_into_distinct_positive_ints():
    from kgrec.cli import make_parser

    args = make_parser().parse_args(["evaluate", "RUN", "--ks", "20,10,20"])
    assert args.ks == (20, 10)


@pytest.mark.parametrize("section, f", list(numeric_fields()), ids=lambda x: getattr(x, "name", x))
def test_every_numeric_config_field_refuses_nan_and_infinity(section, f):
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(SpecError, match=rf"key '{section}.{f.name}': (must be a finite number|expected int)"):
            make_config(None, {"graph": "g", f"{section}.{f.name}": bad})


@pytest.mark.parametrize("section, f", list(numeric_fields()), ids=lambda x: getattr(x, "name", x))
def test_every_numeric_config_field_has_a_lower_bound_and_refuses_what_is_below_it(section, f):
    lo = f.metadata.get("lo", f.metadata.get("gt"))
    assert lo is not None, f"{section}.{f.name} declares no lower bound"
    below = lo - 1 if isinstance(f.default, int) else lo - 0.5
    with pytest.raises(SpecError, match=rf"key '{section}.{f.name}': must be"):
        make_config(None, {"graph": "g", f"{section}.{f.name}": below})


@pytest.mark.parametrize("key, value, message", [
    ("pretrain.lr", 0.0, "must be > 0.0"),
    ("loss.cl_temperature", 0.0, "must be > 0.0"),
    ("seed", -5, "must be >= 0"),
    ("seed", 2**32, "must be <= 4294967295"),
    ("eval.ks", [10, 0], "positive integers"),
    ("eval.k", float("nan"), "expected int"),
    ("device", "tpu", "expected cpu, cuda, cuda:N, mps or auto"),
    ("model.path_hops", 99, "must be <="),
    ("pretrain.lr", 1e300, "must fit a 32-bit float"),  # overflowed in training, half a run written
    ("pretrain.weight_decay", 1e300, "must fit a 32-bit float"),
    ("loss.negatives", 2**64, "must be at most 4294967295"),
])
def test_config_values_out_of_range_are_refused_naming_the_key(key, value, message):
    with pytest.raises(SpecError, match=rf"key '{key}'.*{message}"):
        make_config(None, {"graph": "g", key: value})


def test_an_integral_float_is_accepted_where_a_count_is_wanted():
    assert make_config(None, {"graph": "g", "model.dim": 32.0}).model.dim == 32


def test_a_misspelt_config_key_gets_a_did_you_mean():
    with pytest.raises(SpecError, match=r"key 'model.heda': unknown key \(did you mean 'head'\?\)"):
        make_config(None, {"graph": "g", "model.heda": "dot"})
    with pytest.raises(SpecError, match=r"got 'dto' \(did you mean 'dot'\?\)"):
        make_config(None, {"graph": "g", "model.head": "dto"})


def test_a_misspelt_required_key_is_named_as_unknown_with_a_suggestion(tmp_path):
    with pytest.raises(SpecError, match=r"key 'grpah': unknown key \(did you mean 'graph'\?\)"):
        make_config(None, {"grpah": "g"})


@pytest.mark.parametrize("setting", ["pretrain.lr=nan", "pretrain.lr=inf", "model.path_alpha=nan",
                                     "loss.kg_weight=nan", "loss.cl_weight=nan", "device=\"tpu\""])
def test_train_with_a_bad_setting_exits_2_and_writes_no_run_directory(graph_dir, tmp_path, capsys, setting):
    out = tmp_path / "run"
    line = refused(["train", "--graph", graph_dir, "--out", out, "--quiet", "--set", setting], capsys)
    assert f"key '{setting.split('=')[0]}'" in line
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_train_on_a_missing_cuda_device_fails_before_replacing_the_old_run(graph_dir, tmp_path, capsys):
    out = tmp_path / "run"
    (out / "events").mkdir(parents=True)
    (out / "config.toml").write_text("graph = 'x'\n")  # a run directory kgrec wrote (what --overwrite replaces)
    line = refused(["train", "--graph", graph_dir, "--out", out, "--quiet", "--device", "cuda", "--overwrite"], capsys)
    assert "CUDA is not available" in line
    assert (out / "config.toml").read_text() == "graph = 'x'\n" and (out / "events").is_dir()


def test_a_model_too_large_for_memory_is_refused_with_an_estimate_before_anything_is_written(graph_dir, tmp_path,
                                                                                            capsys):
    out = tmp_path / "run"
    line = refused(["train", "--graph", graph_dir, "--out", out, "--quiet", "--set", "model.dim=1e9"], capsys)
    assert "model.dim = 1000000000" in line and "GiB" in line and "free on cpu" in line
    assert not out.exists()


def test_the_memory_estimate_counts_the_embedding_tables_and_their_optimiser_state():
    cfg = make_config(None, {"graph": "g", "model.dim": 64, "model.layers": 2})
    assert estimate_bytes(cfg, 1000) == 4 * 1000 * 64 * (4 + 2 * 3)
    check_memory(cfg, {"user": 500, "item": 500}, torch.device("cpu"), available=estimate_bytes(cfg, 1000))
    with pytest.raises(KgrecError, match=r"model.dim = 64: the run needs at least .* GiB .* free on cpu"):
        check_memory(cfg, {"user": 500, "item": 501}, torch.device("cpu"), available=estimate_bytes(cfg, 1000))


def test_evalconfig_keeps_its_own_bounds():
    assert {f.name for f in dataclasses.fields(EvalConfig)} == {"k", "ks", "memory_mb", "valid_users"}
    with pytest.raises(SpecError, match=r"key 'eval.memory_mb': must be >= 1"):
        make_config(None, {"graph": "g", "eval.memory_mb": 0})
    with pytest.raises(SpecError, match=r"key 'eval.valid_users': must be >= 0"):
        make_config(None, {"graph": "g", "eval.valid_users": -1})
    assert make_config(None, {"graph": "g", "eval.valid_users": 0}).eval.valid_users == 0  # 0: every user


@pytest.mark.parametrize("command", ["benchmark", "tune"])
def test_benchmark_and_tune_refuse_a_model_too_large_for_memory_before_writing(graph_dir, tmp_path, capsys, command):
    out = tmp_path / "out"
    extra = ["--trials", "1"] if command == "tune" else ["--models", "bprmf", "--seeds", "0"]
    line = refused([command, "--graph", graph_dir, "--out", out, "--quiet", "--set", "model.dim=1e9", *extra], capsys)
    assert "model.dim = 1000000000" in line and "GiB" in line
    assert not out.exists()
