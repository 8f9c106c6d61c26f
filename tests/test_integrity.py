"""Artifacts and runs record the SHA-256 of their files, and refuse to load what no longer matches.

A file changed or copied in from another build, or a run pointed at another graph with the same
node counts, is refused with one line naming it; an artifact or run from before checksums were
recorded loads with a warning; ``kgrec verify DIR`` lists every file's state and exits 2 when
anything is wrong.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import EXAMPLE_SPEC, TINY, one_error_line
from kgrec.cli import main
from kgrec.graph import load_graph
from kgrec.integrity import sha256_file


def build(out: Path, *extra: str) -> int:
    return main(["build", str(EXAMPLE_SPEC), "--out", str(out), "--quiet", *extra])


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A graph artifact, a run on it, and the same graph built with another split seed (same node counts)."""
    root = tmp_path_factory.mktemp("integrity")
    assert build(root / "g") == 0
    assert build(root / "g_seed7", "--seed", "7") == 0
    assert main(["train", "--graph", str(root / "g"), "--out", str(root / "run"), *TINY]) == 0
    return root


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_build_records_the_checksum_of_every_file(built):
    g = built / "g"
    manifest = json.loads((g / "manifest.json").read_text())
    on_disk = sorted(p.relative_to(g).as_posix() for p in g.rglob("*") if p.is_file() and p.name != "manifest.json")
    assert sorted(manifest["files"]) == on_disk
    for name, rec in manifest["files"].items():
        assert rec == {"sha256": sha256_file(g / name), "bytes": (g / name).stat().st_size}
    other = json.loads((built / "g_seed7" / "manifest.json").read_text())
    assert manifest["checksum"] != other["checksum"]  # another split is another graph


def test_a_run_records_its_files_and_its_graph(built):
    record = json.loads((built / "run" / "run.json").read_text())
    assert record["graph_checksum"] == json.loads((built / "g" / "manifest.json").read_text())["checksum"]
    assert {"model.pt", "results.json", "metrics.csv"} <= set(record["files"])
    assert record["files"]["model.pt"]["sha256"] == sha256_file(built / "run" / "model.pt")


def test_a_graph_pt_from_another_build_is_refused(built, tmp_path, capsys):
    g = copy(built / "g", tmp_path / "g")
    shutil.copy(built / "g_seed7" / "graph.pt", g / "graph.pt")
    one_error_line(capsys, main(["info", str(g)]), str(g / "graph.pt"), "checksum mismatch", "kgrec verify")


def test_a_run_pointed_at_another_graph_with_the_same_node_counts_is_refused(built, tmp_path, capsys):
    g = copy(built / "g", tmp_path / "g")
    run = tmp_path / "run"
    assert main(["train", "--graph", str(g), "--out", str(run), *TINY]) == 0
    assert build(g, "--seed", "7", "--overwrite") == 0  # rebuilt in place: another split, same nodes
    before, after = load_graph(built / "g"), load_graph(g)
    assert {t: after.data[t].num_nodes for t in after.data.node_types} == \
        {t: before.data[t].num_nodes for t in before.data.node_types}
    capsys.readouterr()
    one_error_line(capsys, main(["recommend", str(run), "--user", "u1"]), str(run), str(g),
                   "is not the one this run was trained on")


def test_a_model_pt_from_another_run_is_refused(built, tmp_path, capsys):
    run = copy(built / "run", tmp_path / "run")
    other = tmp_path / "other"
    assert main(["train", "--graph", str(built / "g"), "--out", str(other), *TINY, "--seed", "3"]) == 0
    shutil.copy(other / "model.pt", run / "model.pt")
    capsys.readouterr()
    one_error_line(capsys, main(["recommend", str(run), "--user", "u1"]), str(run / "model.pt"), "checksum mismatch")


def strip_checksums(d: Path) -> None:
    for name, keys in (("manifest.json", ("files", "checksum")), ("run.json", ("files", "graph_checksum"))):
        if (d / name).exists():
            data = json.loads((d / name).read_text())
            for k in keys:
                data.pop(k, None)
            (d / name).write_text(json.dumps(data))


def test_an_artifact_and_a_run_from_before_checksums_load_with_a_warning(built, tmp_path, capsys):
    g = copy(built / "g", tmp_path / "g")
    strip_checksums(g)
    capsys.readouterr()
    assert main(["info", str(g)]) == 0
    err = capsys.readouterr().err
    assert err.count("kgrec: warning:") == 1 and "has no checksums" in err and str(g) in err
    run = copy(built / "run", tmp_path / "run")
    strip_checksums(run)
    config = (run / "config.toml").read_text().replace(str(built / "g"), str(g))
    (run / "config.toml").write_text(config)  # config.toml is the user's to edit: pointing it at a copy is fine
    assert main(["recommend", str(run), "--user", "u1"]) == 0
    err = capsys.readouterr().err
    assert "kgrec: warning:" in err and "Traceback" not in err


def test_a_run_whose_artifact_moved_loads_once_config_toml_points_there(built, tmp_path, capsys):
    g = copy(built / "g", tmp_path / "moved")
    run = copy(built / "run", tmp_path / "run")
    (run / "config.toml").write_text((run / "config.toml").read_text().replace(str(built / "g"), str(g)))
    assert main(["recommend", str(run), "--user", "u1"]) == 0
    assert "warning" not in capsys.readouterr().err


# -- kgrec verify -------------------------------------------------------------------------------------------------------

def verify(capsys, d: Path) -> tuple[int, list[str]]:
    code = main(["verify", str(d)])
    return code, capsys.readouterr().out.splitlines()


def test_verify_a_good_artifact_and_run(built, capsys):
    code, lines = verify(capsys, built / "g")
    assert code == 0 and "graph.pt: ok" in [ln.strip() for ln in lines]
    assert lines[-1] == f"{built / 'g'}: all 7 files ok"
    code, lines = verify(capsys, built / "run")
    assert code == 0 and "model.pt: ok" in [ln.strip() for ln in lines]
    assert any(ln.strip() == f"graph {built / 'g'}/graph.pt: ok" for ln in lines)


def test_verify_reports_each_kind_of_damage(built, tmp_path, capsys):
    g = copy(built / "g", tmp_path / "g")
    (g / "literals.parquet").unlink()
    shutil.copy(built / "g_seed7" / "interactions.parquet", g / "interactions.parquet")
    (g / "relations.parquet").unlink()
    (g / "relations.parquet").mkdir()  # something that cannot be read as the file
    code, lines = verify(capsys, g)
    found = {ln.strip().split(":")[0]: ln.strip() for ln in lines[1:-1]}
    assert code == 2
    assert found["graph.pt"] == "graph.pt: ok"
    assert found["literals.parquet"] == "literals.parquet: missing"
    assert found["interactions.parquet"].startswith("interactions.parquet: checksum mismatch (")
    assert found["relations.parquet"].startswith("relations.parquet: unreadable (")
    assert lines[-1] == f"{g}: 3 problems (7 files checked)"


def test_verify_a_run_on_another_graph(built, tmp_path, capsys):
    run = copy(built / "run", tmp_path / "run")
    (run / "config.toml").write_text((run / "config.toml").read_text().replace(str(built / "g"),
                                                                               str(built / "g_seed7")))
    code, lines = verify(capsys, run)
    assert code == 2
    assert any("another graph than the run was trained on" in ln for ln in lines), lines


def test_verify_an_artifact_without_checksums_or_a_directory_that_is_neither(built, tmp_path, capsys):
    g = copy(built / "g", tmp_path / "g")
    strip_checksums(g)
    code, lines = verify(capsys, g)
    assert code == 2 and any("no checksums recorded" in ln for ln in lines)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    one_error_line(capsys, main(["verify", str(tmp_path / "mine")]), str(tmp_path / "mine"), "neither")


def test_update_records_the_graph_it_wrote(built, tmp_path, capsys):
    (tmp_path / "fb.csv").write_text("user,item\nu1,foundation\nnewbie,dune\n")
    out = tmp_path / "updated"
    assert main(["update", str(built / "run"), "--interactions", str(tmp_path / "fb.csv"), "--out", str(out),
                 "--epochs", "1", "--quiet"]) == 0
    record = json.loads((out / "run.json").read_text())
    assert record["graph_checksum"] == json.loads((out / "graph" / "manifest.json").read_text())["checksum"]
    code, lines = verify(capsys, out)
    assert code == 0, lines
    assert main(["recommend", str(out), "--user", "newbie"]) == 0


def test_resume_on_a_graph_rebuilt_since_the_checkpoints_is_refused(built, tmp_path, capsys):
    g = copy(built / "g", tmp_path / "g")
    run = tmp_path / "run"
    assert main(["train", "--graph", str(g), "--out", str(run), *TINY]) == 0
    assert build(g, "--seed", "7", "--overwrite") == 0  # same node counts, so the weights would fit
    before = (run / "checkpoints" / "pretrain.pt").read_bytes()
    capsys.readouterr()
    code = main(["train", "--graph", str(g), "--out", str(run), "--resume", *TINY])
    one_error_line(capsys, code, str(run / "checkpoints" / "pretrain.pt"), "trained on another graph")
    assert (run / "checkpoints" / "pretrain.pt").read_bytes() == before
