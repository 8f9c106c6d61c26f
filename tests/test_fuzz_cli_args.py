"""Fuzzing the CLI's numeric options and ``--set`` overrides: zero, negative, huge (past 64 bits),
non-finite and non-numeric values for ``--seed``, ``--k``, ``--paths``, ``--ks``, ``--shuffles``,
``--epochs`` and the training config's numbers, on the example graph and a tiny run trained once.
Every call succeeds with a valid output or fails with one line naming the option or key, and writes
nothing (see ``fuzzing.py``)."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import EXAMPLE_SPEC
from fuzzing import Census, check_artifact, fuzz_settings, run_cli, violation

TINY = ["--set", "pretrain.epochs=1", "--set", "finetune.epochs=1", "--set", "model.dim=8", "--set",
        "model.path_hops=1"]
INTS = st.one_of(st.sampled_from([0, 1, 2, 3, 10, -1, -5, 2**31, 2**63 - 1, 2**63, -(2**63), 2**64, 10**30]),
                 st.integers(-3, 50))
INT_TEXT = st.one_of(INTS.map(str), st.sampled_from(["nan", "inf", "1e3", "1.5", "", "abc", "٣"]))
NUMBERS = ["0", "-1", "1", "0.5", "1e-12", "1e300", "-1e300", "nan", "inf", "-inf", "2", "3", "9223372036854775808",
           "18446744073709551616", "1e11", '"abc"', "true", "[1, 2]", "{a = 1}", "abc", ""]
# Keys whose values only change numbers, so a fuzzed run stays tiny (no 10**9 epochs or dims: a bound on
# those is a judgment call, not a crash; what matters here is nan, inf, negative, zero and mistyped values).
SET_KEYS = ["pretrain.lr", "finetune.lr", "target_only.lr", "pretrain.weight_decay", "pretrain.cold_users",
            "pretrain.patience", "finetune.upper_layers", "loss.negatives", "loss.source_weight",
            "loss.target_weight", "loss.kg_weight", "loss.kg_batch_size", "loss.align_weight", "loss.l2",
            "loss.cl_weight", "loss.cl_noise", "loss.cl_temperature", "loss.cl_layer", "model.num_bases",
            "model.dropout", "model.path_alpha", "model.text_dim", "eval.k", "eval.memory_mb", "seed",
            "pretrain.batch_size", "device", "mode", "model.head", "model.nope", "nope"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(graph dir, run dir) of the example graph and a run trained for one epoch per stage."""
    root = tmp_path_factory.mktemp("fuzz-run")
    assert run_cli(["build", EXAMPLE_SPEC, "--out", root / "graph", "--quiet"]).status == 0
    o = run_cli(["train", "--graph", root / "graph", "--out", root / "run", "--quiet", *TINY])
    assert o.status == 0, o
    return root / "graph", root / "run"


def _names(argv: list[str]) -> list[str]:
    """What an error line may name: the options given, the keys set and the ids given (not numbers)."""
    names = [a for a in argv if a.startswith("--")]
    names += [v for a, v in zip(argv, argv[1:]) if a in ("--user", "--item") and len(v) > 1]
    names += [v.partition("=")[0] for a, v in zip(argv, argv[1:]) if a == "--set"]
    return names + [n.rpartition(".")[2] for n in names if "." in n]


def _check_json_rows(out: str, k: int):
    rows = json.loads(out)
    assert isinstance(rows, list) and len(rows) <= max(k, 0), f"{len(rows)} rows for k={k}"


@st.composite
def calls(draw, graph: Path, run: Path, out: Path):
    """(argv, check of a success) for one CLI call with fuzzed numbers."""
    cmd = draw(st.sampled_from(["build", "kg-signal", "recommend", "recommend-explain", "explain", "evaluate",
                                "update", "train", "train"]))
    if cmd == "build":
        return ["build", EXAMPLE_SPEC, "--out", out, "--quiet", "--seed", draw(INT_TEXT)], lambda: check_artifact(out)
    if cmd == "kg-signal":
        # --shuffles stays small: 10**30 shuffles is a long job, not a crash
        shuffles = draw(st.one_of(st.integers(-3, 30).map(str), st.sampled_from(["nan", "1e3", "", "abc", "-9223372036854775808"])))
        return ["kg-signal", graph, "--shuffles", shuffles, "--seed", draw(INT_TEXT), "--json"], None
    if cmd.startswith("recommend"):
        k = draw(INT_TEXT)
        argv = ["recommend", run, "--user", draw(st.sampled_from(["u1", "u2", "nobody", ""])), "--k", k, "--json"]
        if cmd == "recommend-explain":
            argv += ["--explain", "--paths", draw(INT_TEXT)]
        return argv, lambda: _check_json_rows(OUTPUT[0], int(k))
    if cmd == "explain":
        return ["explain", run, "--user", "u1", "--item", draw(st.sampled_from(["books:dune", "dune", "movies:heat"])),
                "--paths", draw(INT_TEXT), "--json"], lambda: json.loads(OUTPUT[0])
    if cmd == "evaluate":
        ks = draw(st.one_of(INT_TEXT, st.lists(INT_TEXT, min_size=1, max_size=3).map(",".join),
                            st.sampled_from(["10,,20", ",", "10,", " 5", "5 ,10"])))
        return ["evaluate", run, "--ks", ks, "--json"], lambda: json.loads(OUTPUT[0])
    if cmd == "update":
        feedback = out.parent.parent / "feedback.csv"
        return (["update", run, "--interactions", feedback, "--out", out, "--quiet", "--json",
                 "--epochs", draw(st.one_of(st.integers(-3, 1).map(str), st.sampled_from(["-9223372036854775808",
                                                                                          "abc", "1.5"])))],
                lambda: json.loads(OUTPUT[0]) and (out / "model.pt").is_file())
    sets = draw(st.lists(st.tuples(st.sampled_from(SET_KEYS), st.sampled_from(NUMBERS)), min_size=1, max_size=2))
    argv = ["train", "--graph", graph, "--out", out, "--quiet", "--seed", draw(INT_TEXT), *TINY]
    for key, value in sets:
        argv += ["--set", f"{key}={value}"]
    return argv, lambda: json.loads(OUTPUT[0]) and (out / "model.pt").is_file()


OUTPUT = [""]  # the stdout of the call being checked


@pytest.mark.slow  # trains a run first
def test_fuzzed_cli_numbers_succeed_or_fail_cleanly(trained):
    graph, run = trained
    census = Census("cli-args")

    @fuzz_settings(20)
    @given(st.data())
    def check(data):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp) / "work"
            work.mkdir()
            (Path(tmp) / "feedback.csv").write_text("user,item\nu1,dune\nnewbie,solaris\nnewbie,dune\n")
            argv, check_output = data.draw(calls(graph, run, work / "out"))
            o = run_cli(argv)
            OUTPUT[0] = o.out
            checker = (lambda: _assert_ok(check_output)) if check_output else None
            census.record(o, violation(o, work, _names([str(a) for a in argv]), checker),
                          {"argv": [str(a) for a in argv], "stderr": o.err})

    check()
    census.finish()


def _assert_ok(check_output):
    try:
        result = check_output()
    except (ValueError, KeyError, OSError) as e:
        raise AssertionError(f"{type(e).__name__}: {e}") from None
    assert result is not False, "output missing"
