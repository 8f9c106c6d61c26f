"""Every command that writes fails cleanly on an output path it cannot use, before doing any work.

``--out`` under a plain file, in a place that cannot be written, or naming an existing file: exit
2, one line naming the path, nothing written or changed. Single-file outputs (``recommend --out``,
``kg-signal --csv``, ``export-graph`` to GraphML or an edge list) replace an existing file only
with ``--overwrite``, and never a directory. A killed write's temporary file is removed by the
next write to the same name. (Directory outputs and ``--overwrite`` of them: tests/test_overwrite.py.)
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import EXAMPLE_SPEC
from kgrec.cli import main

TINY = ["--quiet", "--set", "pretrain.epochs=1", "--set", "finetune.epochs=1", "--set", "model.dim=8"]


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("outputs")
    assert main(["build", str(EXAMPLE_SPEC), "--out", str(root / "g"), "--quiet"]) == 0
    assert main(["train", "--graph", str(root / "g"), "--out", str(root / "run"), *TINY]) == 0
    (root / "users.txt").write_text("u1\nu2\n")
    (root / "fb.csv").write_text("user,item\nu1,foundation\n")
    return root


#: command -> (argv for an output path, what an existing file there is refused as)
COMMANDS = {
    "build": (lambda m, out: ["build", str(EXAMPLE_SPEC), "--out", out, "--quiet"], "is a file"),
    "train": (lambda m, out: ["train", "--graph", str(m / "g"), "--out", out, *TINY], "is a file"),
    "export": (lambda m, out: ["export", str(m / "run"), "--format", "npy", "--out", out], "is a file"),
    "update": (lambda m, out: ["update", str(m / "run"), "--interactions", str(m / "fb.csv"), "--out", out,
                               "--epochs", "1", "--quiet"], "is a file"),
    "export-graph rdf": (lambda m, out: ["export-graph", str(m / "g"), "--format", "ntriples", "--out", out],
                         "is a file"),
    "export-graph file": (lambda m, out: ["export-graph", str(m / "g"), "--format", "graphml", "--out", out],
                          "already exists"),
    "recommend": (lambda m, out: ["recommend", str(m / "run"), "--users", str(m / "users.txt"), "--out", out],
                  "already exists"),
    "kg-signal": (lambda m, out: ["kg-signal", str(m / "g"), "--shuffles", "1", "--csv", out], "already exists"),
    "benchmark": (lambda m, out: ["benchmark", "--graph", str(m / "g"), "--out", out, "--models", "mostpop",
                                  "--seeds", "0", "--sampled", "0", "--quiet"], "is a file"),
    "tune": (lambda m, out: ["tune", "--graph", str(m / "g"), "--out", out, "--trials", "1", "--quiet"],
             "is a file"),
}


def refused(capsys, code: int, path: Path, *words: str) -> None:
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("kgrec: error:"), err
    assert str(path) in lines[0] and "Traceback" not in err, err
    for w in words:
        assert w in lines[0], lines[0]


def listing(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_out_under_a_plain_file(command, made, tmp_path, capsys):
    (tmp_path / "notes").write_text("mine")
    out = tmp_path / "notes" / "sub" / "out"
    refused(capsys, main(COMMANDS[command][0](made, str(out))), out, "is a file, not a directory")
    assert listing(tmp_path) == ["notes"] and (tmp_path / "notes").read_text() == "mine"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_out_that_is_an_existing_file(command, made, tmp_path, capsys):
    out = tmp_path / "notes"
    out.write_text("mine")
    refused(capsys, main(COMMANDS[command][0](made, str(out))), out, COMMANDS[command][1])
    assert listing(tmp_path) == ["notes"] and out.read_text() == "mine"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_out_in_a_place_that_cannot_be_written(command, made, tmp_path, capsys):
    out = Path("/proc/kgrec-no-such-dir/out")  # not writable, even by root
    refused(capsys, main(COMMANDS[command][0](made, str(out))), out, "cannot write here")


# -- single files: replaced only with --overwrite, never a directory ----------------------------------------------------

SINGLE = ["recommend", "kg-signal", "export-graph file"]


@pytest.mark.parametrize("command", SINGLE)
def test_a_single_file_output_replaces_a_file_only_with_overwrite(command, made, tmp_path, capsys):
    out = tmp_path / "mine.out"
    out.write_bytes(b"the user's own bytes")
    argv = COMMANDS[command][0](made, str(out))
    refused(capsys, main(argv), out, "already exists", "--overwrite")
    assert out.read_bytes() == b"the user's own bytes"
    assert main([*argv, "--overwrite"]) == 0
    assert out.read_bytes() != b"the user's own bytes"
    if command == "recommend":
        assert list(pd.read_parquet(out).columns)[:2] == ["user", "rank"]
    assert listing(tmp_path) == ["mine.out"]  # no temporary left


@pytest.mark.parametrize("command", SINGLE)
def test_a_single_file_output_never_replaces_a_directory(command, made, tmp_path, capsys):
    out = tmp_path / "folder"
    out.mkdir()
    (out / "keep.txt").write_text("keep")
    refused(capsys, main([*COMMANDS[command][0](made, str(out)), "--overwrite"]), out, "is a directory")
    assert listing(tmp_path) == ["folder", "folder/keep.txt"]


def test_a_killed_single_file_write_is_cleaned_up_by_the_next_one(made, tmp_path):
    out = tmp_path / "recs.parquet"
    killed = subprocess.Popen([sys.executable, "-c", (
        "import os, sys\nfrom kgrec.atomic import atomic_file\n"
        "with atomic_file(sys.argv[1], 'wb') as f:\n"
        "    f.write(b'half'); f.flush()\n"
        "    os.kill(os.getpid(), 9)\n"), str(out)])
    assert killed.wait() != 0
    stale = [p for p in tmp_path.iterdir() if p.name.startswith(".recs.parquet.tmp-")]
    assert len(stale) == 1 and not out.exists()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        running = tmp_path / f".recs.parquet.tmp-{live.pid}-abcd1234"  # another writer, still running
        running.write_text("keep")
        assert main(COMMANDS["recommend"][0](made, str(out))) == 0
        assert not stale[0].exists() and running.exists() and out.is_file()
    finally:
        live.kill()
        live.wait()


def test_a_temporary_whose_pid_was_reused_by_a_later_process_is_removed(made, tmp_path):
    out = tmp_path / "recs.parquet"
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        old = tmp_path / f".recs.parquet.tmp-{live.pid}-abcd1234"  # written an hour before that process began
        old.write_text("left by a killed write")
        os.utime(old, (time.time() - 3600, time.time() - 3600))
        new = tmp_path / f".recs.parquet.tmp-{live.pid}-efgh5678"  # written since: it may be that process's
        new.write_text("keep")
        assert main(COMMANDS["recommend"][0](made, str(out))) == 0
        assert not old.exists() and new.exists()
    finally:
        live.kill()
        live.wait()
