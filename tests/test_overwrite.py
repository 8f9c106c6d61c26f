"""``--overwrite`` replaces only what kgrec wrote; output paths that cannot be written fail cleanly.

Every writer that takes ``--overwrite`` (``build``, ``train``, ``export``, ``update``) replaces a
directory only when it recognises it as its own output (a graph artifact, a run, an export); a
plain file, or a directory holding anything else, is refused with one line naming the path, and
nothing is deleted. A write killed half-way leaves a ``.NAME.tmp-PID-*`` sibling that the next
write to ``NAME`` removes.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import EXAMPLE_SPEC, TINY, one_error_line
from kgrec.cli import main


def users_own_files(d: Path) -> dict:
    """A directory of a user's own files; returns what it holds, to check later that nothing changed."""
    d.mkdir(parents=True)
    (d / "notes.txt").write_text("my notes\n")
    (d / "photos").mkdir()
    (d / "photos" / "cat.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return snapshot(d)


def snapshot(d: Path) -> dict:
    return {str(p.relative_to(d)): p.read_bytes() if p.is_file() else None for p in sorted(d.rglob("*"))}


def refused(capsys, code: int, path: Path, *words: str) -> str:
    """Assert a clean refusal: exit 2, one line ``kgrec: error: ...`` naming ``path``, no traceback."""
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("kgrec: error:"), err
    assert "Traceback" not in err and str(path) in lines[0], err
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def no_temporaries(d: Path, name: str) -> None:
    assert not [p.name for p in d.iterdir() if p.name.startswith(f".{name}.")]


def build(out: Path, *extra: str) -> int:
    return main(["build", str(EXAMPLE_SPEC), "--out", str(out), "--quiet", *extra])


# -- the destructive bug: a directory of the user's own files, a plain file --------------------------------------

def test_build_overwrite_refuses_a_directory_of_the_users_own_files(tmp_path, capsys):
    out = tmp_path / "mine"
    before = users_own_files(out)
    refused(capsys, build(out, "--overwrite"), out, "not a kgrec graph artifact", "notes.txt")
    assert snapshot(out) == before
    no_temporaries(tmp_path, "mine")


def test_build_overwrite_refuses_a_directory_whose_manifest_is_not_json(tmp_path, capsys):
    out = tmp_path / "looks_like_ours"
    out.mkdir()
    (out / "manifest.json").write_bytes(b"\xff\xfe not json")
    (out / "graph.pt").write_bytes(b"my own bytes")
    before = snapshot(out)
    refused(capsys, build(out, "--overwrite"), out, "not a kgrec graph artifact")
    assert snapshot(out) == before


def test_build_overwrite_refuses_a_plain_file(tmp_path, capsys):
    out = tmp_path / "thesis.docx"
    out.write_bytes(b"years of work")
    refused(capsys, build(out, "--overwrite"), out, "is a file")
    assert out.is_file() and out.read_bytes() == b"years of work"
    no_temporaries(tmp_path, "thesis.docx")


def test_train_overwrite_refuses_a_directory_of_the_users_own_files(graph_dir, tmp_path, capsys):
    out = tmp_path / "mine"
    before = users_own_files(out)
    code = main(["train", "--graph", str(graph_dir), "--out", str(out), "--overwrite", *TINY])
    refused(capsys, code, out, "not a kgrec run directory")
    assert snapshot(out) == before


def test_train_overwrite_refuses_a_plain_file(graph_dir, tmp_path, capsys):
    out = tmp_path / "thesis.docx"
    out.write_bytes(b"years of work")
    code = main(["train", "--graph", str(graph_dir), "--out", str(out), "--overwrite", *TINY])
    refused(capsys, code, out, "is a file")
    assert out.read_bytes() == b"years of work"


def test_export_overwrite_refuses_a_directory_of_the_users_own_files(run_dir, tmp_path, capsys):
    out = tmp_path / "mine"
    before = users_own_files(out)
    code = main(["export", str(run_dir), "--format", "npy", "--out", str(out), "--overwrite"])
    refused(capsys, code, out, "not a kgrec embedding export")
    assert snapshot(out) == before


def test_update_overwrite_refuses_a_directory_of_the_users_own_files(run_dir, tmp_path, capsys):
    (tmp_path / "fb.csv").write_text("user,item\nu1,foundation\n")
    out = tmp_path / "mine"
    before = users_own_files(out)
    code = main(["update", str(run_dir), "--interactions", str(tmp_path / "fb.csv"), "--out", str(out),
                 "--epochs", "1", "--overwrite", "--quiet"])
    refused(capsys, code, out, "not a kgrec run directory")
    assert snapshot(out) == before


# -- what --overwrite does replace ---------------------------------------------------------------------------------

def test_overwrite_replaces_a_previous_kgrec_artifact_but_not_a_look_alike(tmp_path, capsys):
    out = tmp_path / "g"
    assert build(out) == 0
    (out / "graph.pt").write_bytes(b"stale")
    assert build(out, "--overwrite") == 0
    assert (out / "graph.pt").read_bytes() != b"stale"
    assert json.loads((out / "manifest.json").read_text())["format"]
    no_temporaries(tmp_path, "g")
    web = tmp_path / "webapp"  # a manifest.json, but no graph.pt: not a kgrec artifact
    web.mkdir()
    (web / "manifest.json").write_text('{"name": "my app"}')
    capsys.readouterr()
    refused(capsys, build(web, "--overwrite"), web, "manifest.json")
    assert (web / "manifest.json").read_text() == '{"name": "my app"}'
    empty = tmp_path / "empty"  # nothing to lose
    empty.mkdir()
    assert build(empty, "--overwrite") == 0 and (empty / "graph.pt").is_file()


def test_train_overwrite_replaces_a_previous_run_but_not_a_directory_with_only_a_config_toml(graph_dir, tmp_path,
                                                                                              capsys):
    killed = tmp_path / "killed"  # what a run killed in its first epoch leaves
    (killed / "events").mkdir(parents=True)
    (killed / "config.toml").write_text("mode = 'transfer'\n")
    assert main(["train", "--graph", str(graph_dir), "--out", str(killed), "--overwrite", *TINY]) == 0
    assert (killed / "model.pt").is_file() and (killed / "run.json").is_file()
    site = tmp_path / "site"  # a static site's config.toml: not a kgrec run
    site.mkdir()
    (site / "config.toml").write_text("baseURL = 'https://example.org/'\n")
    capsys.readouterr()
    code = main(["train", "--graph", str(graph_dir), "--out", str(site), "--overwrite", *TINY])
    refused(capsys, code, site, "not a kgrec run directory")
    assert [p.name for p in site.iterdir()] == ["config.toml"]


def test_export_overwrite_replaces_its_own_export(run_dir, tmp_path, capsys):
    out = tmp_path / "emb"
    assert main(["export", str(run_dir), "--format", "npy", "--out", str(out)]) == 0
    assert json.loads((out / "export.json").read_text())["format"] == "npy"
    assert main(["export", str(run_dir), "--format", "parquet", "--out", str(out), "--overwrite"]) == 0
    assert (out / "embeddings.parquet").is_file() and not (out / "embeddings.npy").exists()
    no_temporaries(tmp_path, "emb")


# -- a killed write's temporary sibling -------------------------------------------------------------------------------

def test_stale_temporary_sibling_is_removed(tmp_path):
    out = tmp_path / "g"
    killed = subprocess.Popen([sys.executable, "-c", (
        "import os, sys\nfrom kgrec.atomic import atomic_directory\n"
        "with atomic_directory(sys.argv[1]) as tmp:\n"
        "    (tmp / 'graph.pt').write_bytes(b'half written')\n"
        "    os.kill(os.getpid(), 9)\n"), str(out)])
    assert killed.wait() != 0
    stale = [p for p in tmp_path.iterdir() if p.name.startswith(".g.tmp-")]
    assert len(stale) == 1 and (stale[0] / "graph.pt").exists() and not out.exists()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        kept = [tmp_path / f".g.tmp-{live.pid}-abcd1234",  # a writer still running
                tmp_path / f".h.tmp-{killed.pid}-abcd1234",  # another output's
                tmp_path / ".g.tmp-notes",  # not kgrec's pattern
                tmp_path / "g.tmp-1-abcd1234"]
        for p in kept:
            p.mkdir()
            (p / "keep.txt").write_text("keep")
        assert build(out) == 0
        assert not stale[0].exists() and (out / "graph.pt").is_file()
        assert all((p / "keep.txt").exists() for p in kept)
    finally:
        live.kill()
        live.wait()


# -- output paths that cannot be written --------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["build", "train"])
def test_out_under_a_file_is_a_clear_error(command, graph_dir, tmp_path, capsys):
    (tmp_path / "file").write_text("mine")
    out = tmp_path / "file" / "sub" / "out"
    code = build(out) if command == "build" else main(["train", "--graph", str(graph_dir), "--out", str(out), *TINY])
    refused(capsys, code, out, "is a file")
    assert (tmp_path / "file").read_text() == "mine"


@pytest.mark.parametrize("command", ["build", "train"])
def test_out_that_is_an_existing_file_is_a_clear_error(command, graph_dir, tmp_path, capsys):
    out = tmp_path / "file"
    out.write_text("mine")
    code = build(out) if command == "build" else main(["train", "--graph", str(graph_dir), "--out", str(out), *TINY])
    line = refused(capsys, code, out, "is a file")
    assert "--overwrite" not in line  # it would not help
    assert out.read_text() == "mine"


def test_out_in_an_unwritable_place_is_a_clear_error(tmp_path, capsys):
    if os.geteuid() == 0:  # root writes anywhere writable at all: use a place nobody can create folders in
        out = Path("/proc/kgrec-no-such-dir/g")
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        out = locked / "sub" / "g"
    try:
        refused(capsys, build(out), out, "cannot")
        assert not out.exists()
    finally:
        if os.geteuid() != 0:
            (tmp_path / "locked").chmod(0o700)


def test_recommend_out_that_is_a_directory_is_a_clear_error(run_dir, tmp_path, capsys):
    (tmp_path / "users.txt").write_text("u1\n")
    out = tmp_path / "recs"
    out.mkdir()
    (out / "mine.txt").write_text("mine")
    code = main(["recommend", str(run_dir), "--users", str(tmp_path / "users.txt"), "--out", str(out)])
    refused(capsys, code, out, "is a directory")
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
