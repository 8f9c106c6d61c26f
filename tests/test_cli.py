"""The CLI: the commands work, and bad input fails cleanly (one line, exit 2, nothing written)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from conftest import EXAMPLE_SPEC
from kgrec.cli import main


def run(*args):
    return subprocess.run([sys.executable, "-m", "kgrec", *map(str, args)], capture_output=True, text=True)


def test_build_then_info_json(tmp_path, capsys):
    assert main(["build", str(EXAMPLE_SPEC), "--out", str(tmp_path / "g"), "--quiet"]) == 0
    assert main(["info", str(tmp_path / "g"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["domains"] == {"source": "movies", "target": "books"}
    assert info["users_in_both_domains"] == 6 and info["shared_entities"] > 0
    assert info["splits"]["target"]["test"] > 0


def test_build_refuses_to_overwrite_without_the_flag(tmp_path, capsys):
    (tmp_path / "g").mkdir()
    assert main(["build", str(EXAMPLE_SPEC), "--out", str(tmp_path / "g"), "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def copy_example(tmp_path):
    d = tmp_path / "spec"
    shutil.copytree(EXAMPLE_SPEC.parent, d)
    return d


BAD_INPUTS = {
    "missing file": ("books.csv", None, r"books.csv: file not found"),
    "wrong column count": ("books.csv", "user,book,rating,timestamp\nu1,dune,5,1\nu2,dune\n", r"books.csv line 3: expected 4 columns, got 2"),
    "non-numeric rating": ("books.csv", "user,book,rating,timestamp\nu1,dune,five,1\n", r"books.csv line 2: column 'rating'"),
    "broken turtle": ("kg.ttl", "@prefix ex: <http://e.org/> .\nex:a ex:b \n", r"kg.ttl.*invalid turtle"),
    "misspelt key": ("movies_books.toml", "name='x'\n[target]\npath='books.csv'\nthreshhold=4\n", r"key 'target.threshhold': unknown key \(did you mean 'threshold'"),
    "out of range": ("movies_books.toml", "name='x'\n[target]\npath='books.csv'\n[cold_start]\nshare=2.0\n", r"key 'cold_start.share': must be <= 1.0"),
    "unknown column": ("movies_books.toml", "name='x'\n[target]\npath='books.csv'\ncolumns={user='usr', item='book'}\n", r"unknown column 'usr'"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_exits_nonzero_with_one_line_and_no_output(tmp_path, case):
    name, content, pattern = BAD_INPUTS[case]
    d = copy_example(tmp_path)
    if content is None:
        (d / name).unlink()
    else:
        (d / name).write_text(content)
    out = tmp_path / "out"
    r = run("build", d / "movies_books.toml", "--out", out, "--quiet")
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("kgrec: error:"), r.stderr
    assert "Traceback" not in r.stderr
    import re
    assert re.search(pattern, lines[0]), lines[0]
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_debug_flag_shows_the_traceback(tmp_path):
    r = run("--debug", "build", tmp_path / "none.toml", "--out", tmp_path / "o")
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_every_command_has_help_with_an_example():
    for cmd in ("build", "info", "export-graph", "datasets", "train", "recommend", "explain", "export", "update",
                "evaluate"):
        r = run(cmd, "--help")
        assert r.returncode == 0 and ("example: kgrec" in r.stdout or "examples:\n  kgrec" in r.stdout), cmd


def test_info_on_a_folder_that_is_not_an_artifact_says_how_to_make_one(tmp_path):
    r = run("info", tmp_path)
    assert r.returncode == 2 and "kgrec build SPEC --out DIR" in r.stderr and "Traceback" not in r.stderr


def test_train_from_a_graph_with_overrides_writes_a_run_and_prints_its_scores(tmp_path, capsys):
    assert main(["build", str(EXAMPLE_SPEC), "--out", str(tmp_path / "g"), "--quiet"]) == 0
    capsys.readouterr()
    args = ["train", "--graph", str(tmp_path / "g"), "--out", str(tmp_path / "run"), "--quiet", "--seed", "3",
            "--set", "pretrain.epochs=2", "--set", "finetune.epochs=1", "--set", "model.dim=8"]
    assert main(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["run"] == str(tmp_path / "run") and "ndcg@10" in printed["valid"]
    cfg = (tmp_path / "run" / "config.toml").read_text()
    assert "seed = 3" in cfg and "dim = 8" in cfg
    assert main(args) == 2  # the run exists: neither --resume nor --overwrite
    assert "--resume" in capsys.readouterr().err


def test_train_without_a_graph_or_with_a_bad_key_fails_in_one_line(tmp_path):
    r = run("train")
    assert r.returncode == 2 and "--graph" in r.stderr and "Traceback" not in r.stderr
    r = run("train", "--graph", tmp_path, "--set", "pretrain.epoch=2")
    assert r.returncode == 2 and "did you mean 'epochs'" in r.stderr


def test_the_run_commands_work_from_the_shell(tmp_path):
    assert run("build", EXAMPLE_SPEC, "--out", tmp_path / "g", "--quiet").returncode == 0
    r = run("train", "--graph", tmp_path / "g", "--out", tmp_path / "run", "--quiet", "--set", "pretrain.epochs=3",
            "--set", "finetune.epochs=1")
    assert r.returncode == 0, r.stderr
    r = run("recommend", tmp_path / "run", "--user", "u1", "--k", "3", "--json", "--explain")
    recs = json.loads(r.stdout)
    assert r.returncode == 0 and len(recs) == 3 and all("paths" in x for x in recs)
    (tmp_path / "users.txt").write_text("u1\nu2\n")
    r = run("recommend", tmp_path / "run", "--users", tmp_path / "users.txt", "--out", tmp_path / "recs.parquet")
    assert r.returncode == 0 and (tmp_path / "recs.parquet").exists()
    r = run("explain", tmp_path / "run", "--user", "u6", "--item", "books:dune", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)
    r = run("export", tmp_path / "run", "--format", "npy", "--out", tmp_path / "emb")
    assert r.returncode == 0 and (tmp_path / "emb" / "embeddings.npy").exists()
    r = run("evaluate", tmp_path / "run", "--json")
    assert r.returncode == 0 and "ndcg@10" in json.loads(r.stdout)["all"]
    (tmp_path / "fb.csv").write_text("user,item\nu1,foundation\nzed,dune\n")
    r = run("update", tmp_path / "run", "--interactions", tmp_path / "fb.csv", "--out", tmp_path / "run2", "--quiet",
            "--epochs", "1", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["new_users"] == 1
    r = run("recommend", tmp_path / "run", "--user", "nobody")
    assert r.returncode == 2 and "user.parquet" in r.stderr and "Traceback" not in r.stderr
    r = run("recommend", tmp_path / "nothing", "--user", "u1")
    assert r.returncode == 2 and "kgrec train" in r.stderr


def test_a_threshold_that_empties_the_target_exits_2_naming_the_key_and_writes_nothing(tmp_path, capsys):
    d = copy_example(tmp_path)
    spec = d / "movies_books.toml"
    spec.write_text(spec.read_text().replace("threshold = 4.0\nsplit", "threshold = 9.0\nsplit"))
    assert main(["build", str(spec), "--out", str(tmp_path / "g"), "--quiet"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "key 'target.threshold'" in lines[0]
    assert not (tmp_path / "g").exists()


def test_a_build_warning_is_one_line_on_stderr(tmp_path, capsys):
    d = copy_example(tmp_path)
    spec = d / "movies_books.toml"
    spec.write_text(spec.read_text().replace('split = { method = "loo" }', 'split = { method = "ratio" }'))
    assert main(["build", str(spec), "--out", str(tmp_path / "g"), "--quiet"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kgrec: warning: movies_books.toml:") and "loo" in err[0]
