"""Every reader turns a file it cannot read into one line naming the file (and the line), exit 2.

Each kind of text input kgrec reads (a graph spec, a training config, ``--set``, a CSV/TSV table,
RDF, a history, ``--users``, feedback, a manifest) is tried with bytes that are not UTF-8, and
with a UTF-8 byte-order mark, which is accepted; each binary file (``graph.pt``, ``model.pt``, a
checkpoint, Parquet) is tried empty, truncated, as garbage and, for PyTorch files, as a pickled
exploit, which is refused without running it.
"""
from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from conftest import EXAMPLE_SPEC, TINY, one_error_line
from kgrec.cli import main
from kgrec.errors import InputError
from kgrec.io import load_parquet, load_torch, read_json, read_text

LATIN1 = "user,book,rating,timestamp\nu1,dune,5,1\nu2,caf\xe9,4,2\n".encode("latin-1")  # 0xe9 on line 3


def copy_example(tmp_path: Path) -> Path:
    d = tmp_path / "spec"
    shutil.copytree(EXAMPLE_SPEC.parent, d)
    return d


# -- the readers themselves ------------------------------------------------------------------------------------------

def test_read_text_names_the_first_bad_byte_and_its_line(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_bytes(b"fine\nstill fine\nbad \xff here\n")
    with pytest.raises(InputError, match=r"notes.txt: not UTF-8 \(byte 0xff at line 3\)") as e:
        read_text(p)
    assert e.value.line == 3 and str(p) in str(e.value)


def test_read_text_drops_a_byte_order_mark(tmp_path):
    p = tmp_path / "bom.txt"
    p.write_bytes("\ufeffu1\nu2\n".encode("utf-8"))
    assert read_text(p) == "u1\nu2\n"


def test_read_json_reports_the_line_of_a_syntax_error(tmp_path):
    p = tmp_path / "m.json"
    p.write_text('{\n  "a": 1,\n  oops\n}\n')
    with pytest.raises(InputError, match=r"m.json: not valid JSON \(.* at line 3\)"):
        read_json(p)


@pytest.mark.parametrize("content", [b"", b"PAR1 not really", b"\x00" * 100])
def test_load_parquet_of_a_corrupt_file_is_an_input_error(tmp_path, content):
    p = tmp_path / "t.parquet"
    p.write_bytes(content)
    with pytest.raises(InputError, match=r"t.parquet: not a readable Parquet file"):
        load_parquet(p)


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch EXPLOITED",))


@pytest.mark.parametrize("kind", ["empty", "truncated", "garbage", "pickle", "exploit"])
def test_load_torch_refuses_what_is_not_a_torch_file_of_tensors(tmp_path, kind, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "w.pt"
    torch.save({"w": torch.ones(100)}, p)
    good = p.read_bytes()
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "truncated":
        p.write_bytes(good[: len(good) // 2])
    elif kind == "garbage":
        p.write_bytes(bytes(range(256)) * 8)
    elif kind == "pickle":
        p.write_bytes(pickle.dumps(Exploit()))
    else:
        torch.save({"w": Exploit()}, p)
    with pytest.raises(InputError) as e:
        load_torch(p)
    assert str(p) in str(e.value)
    # a bare pickle is not even a PyTorch file; one inside torch.save's zip is refused for what it holds
    expected = "refused: it holds Python objects" if kind == "exploit" else "not a readable PyTorch file"
    assert expected in str(e.value), str(e.value)
    assert not (tmp_path / "EXPLOITED").exists()


# -- through the CLI: text inputs ------------------------------------------------------------------------------------

def test_a_spec_that_is_not_utf8(tmp_path, capsys):
    d = copy_example(tmp_path)
    spec = d / "movies_books.toml"
    spec.write_bytes(b"# r\xe4ting\n" + spec.read_bytes())
    code = main(["build", str(spec), "--out", str(tmp_path / "out"), "--quiet"])
    one_error_line(capsys, code, str(spec), "not UTF-8 (byte 0xe4 at line 1)")
    assert not (tmp_path / "out").exists()


def test_a_spec_and_its_tables_with_a_byte_order_mark_build(tmp_path, capsys):
    d = copy_example(tmp_path)
    for name in ("movies_books.toml", "books.csv", "movies.csv"):
        (d / name).write_bytes(b"\xef\xbb\xbf" + (d / name).read_bytes())
    assert main(["build", str(d / "movies_books.toml"), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    users = load_parquet(tmp_path / "out" / "nodes" / "user.parquet")
    assert not any(str(u).startswith("\ufeff") for u in users["id"])


def test_a_table_that_is_not_utf8(tmp_path, capsys):
    d = copy_example(tmp_path)
    (d / "books.csv").write_bytes(LATIN1)
    code = main(["build", str(d / "movies_books.toml"), "--out", str(tmp_path / "out"), "--quiet"])
    one_error_line(capsys, code, "books.csv", "not UTF-8 (byte 0xe9 at line 3)")
    assert not (tmp_path / "out").exists()


def test_rdf_that_is_not_utf8(tmp_path, capsys):
    d = copy_example(tmp_path)
    (d / "kg.ttl").write_bytes((d / "kg.ttl").read_bytes() + b"\n# caf\xe9\n")
    code = main(["build", str(d / "movies_books.toml"), "--out", str(tmp_path / "out"), "--quiet"])
    one_error_line(capsys, code, "kg.ttl", "not UTF-8 (byte 0xe9")
    assert not (tmp_path / "out").exists()


def test_a_config_that_is_not_utf8(graph_dir, tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_bytes(f'graph = "{graph_dir}"\n# r\xe9sum\xe9\n'.encode("latin-1"))
    code = main(["train", str(cfg), "--out", str(tmp_path / "run"), *TINY])
    one_error_line(capsys, code, str(cfg), "not UTF-8 (byte 0xe9 at line 2)")
    assert not (tmp_path / "run").exists()


def test_a_config_with_a_byte_order_mark_trains(graph_dir, tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_bytes(b"\xef\xbb\xbf" + f'graph = "{graph_dir}"\n'.encode())
    assert main(["train", str(cfg), "--out", str(tmp_path / "run"), *TINY]) == 0


def test_a_set_value_that_is_not_utf8(graph_dir, tmp_path, capsys):
    value = os.fsdecode(b"model.head=dot\xff")  # how Python hands over argument bytes that are not UTF-8
    code = main(["train", "--graph", str(graph_dir), "--out", str(tmp_path / "run"), *TINY, "--set", value])
    one_error_line(capsys, code, "--set", "not UTF-8 (byte 0xff")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("flag", ["--users", "--history"])
def test_users_and_history_files_that_are_not_utf8(run_dir, tmp_path, capsys, flag):
    f = tmp_path / "in.txt"
    f.write_bytes(b"u1\nu\xe92\n")
    out = tmp_path / "recs.parquet"
    code = main(["recommend", str(run_dir), flag, str(f)] + (["--out", str(out)] if flag == "--users" else []))
    one_error_line(capsys, code, str(f), "not UTF-8 (byte 0xe9 at line 2)")
    assert not out.exists()


def test_users_and_history_files_with_a_byte_order_mark(run_dir, tmp_path, capsys):
    users = tmp_path / "users.txt"
    users.write_bytes(b"\xef\xbb\xbfu1\n")
    assert main(["recommend", str(run_dir), "--users", str(users), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["user"] == "u1"
    history = tmp_path / "history.csv"
    history.write_bytes(b"\xef\xbb\xbfitem\nmovies:alien\n")
    assert main(["recommend", str(run_dir), "--history", str(history), "--json"]) == 0


def test_feedback_that_is_not_utf8_or_has_a_byte_order_mark(run_dir, tmp_path, capsys):
    bad = tmp_path / "fb.csv"
    bad.write_bytes(b"user,item\nu1,foundation\nu\xe9,dune\n")
    out = tmp_path / "new"
    code = main(["update", str(run_dir), "--interactions", str(bad), "--out", str(out), "--epochs", "1", "--quiet"])
    one_error_line(capsys, code, str(bad), "not UTF-8 (byte 0xe9 at line 3)")
    assert not out.exists()
    bom = tmp_path / "fb_bom.csv"
    bom.write_bytes(b"\xef\xbb\xbfuser,item\nu1,foundation\n")
    assert main(["update", str(run_dir), "--interactions", str(bom), "--out", str(out), "--epochs", "1",
                 "--quiet"]) == 0


@pytest.mark.parametrize("content", [b"", b"user,item\n\"u1,foundation\n"])
def test_feedback_that_is_empty_or_malformed(run_dir, tmp_path, capsys, content):
    bad = tmp_path / "fb.csv"
    bad.write_bytes(content)
    out = tmp_path / "new"
    code = main(["update", str(run_dir), "--interactions", str(bad), "--out", str(out), "--epochs", "1", "--quiet"])
    one_error_line(capsys, code, "fb.csv")
    assert not out.exists()


def copy_dir(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("content,words", [(b'{"format": 1, "name": "caf\xe9"}', ["not UTF-8 (byte 0xe9 at line 1)"]),
                                           (b'{"format": 1,', ["not valid JSON"])])
def test_a_manifest_that_is_not_utf8_or_not_json(graph_dir, tmp_path, capsys, content, words):
    g = copy_dir(graph_dir, tmp_path / "g")
    (g / "manifest.json").write_bytes(content)
    one_error_line(capsys, main(["info", str(g)]), str(g / "manifest.json"), *words)


# -- through the CLI: corrupt binary files, in an artifact or run without checksums (so the loaders see them) ---------

def without_checksums(d: Path) -> None:
    """Make ``d`` look like an artifact or run from before checksums were recorded."""
    if (d / "manifest.json").exists():
        m = json.loads((d / "manifest.json").read_text())
        m.pop("files", None), m.pop("checksum", None)
        (d / "manifest.json").write_text(json.dumps(m))
    if (d / "run.json").exists():
        r = json.loads((d / "run.json").read_text())
        r.pop("files", None), r.pop("graph_checksum", None)
        (d / "run.json").write_text(json.dumps(r))


def corrupt(p: Path, kind: str) -> None:
    good = p.read_bytes()
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "truncated":
        p.write_bytes(good[: len(good) // 2])
    elif kind == "garbage":
        p.write_bytes(os.urandom(len(good)))
    else:
        torch.save({"x": Exploit()}, p)


@pytest.mark.parametrize("name", ["graph.pt", "interactions.parquet", "nodes/item.parquet"])
@pytest.mark.parametrize("kind", ["empty", "truncated", "garbage"])
def test_a_corrupt_artifact_file_is_one_line_naming_it(graph_dir, tmp_path, capsys, name, kind):
    g = copy_dir(graph_dir, tmp_path / "g")
    without_checksums(g)
    corrupt(g / name, kind)
    one_error_line(capsys, main(["info", str(g)]), str(g / name), "not a readable")


@pytest.mark.parametrize("kind", ["empty", "truncated", "garbage", "exploit"])
def test_a_corrupt_model_is_one_line_naming_it(run_dir, tmp_path, capsys, kind, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = copy_dir(run_dir, tmp_path / "run")
    without_checksums(r)
    corrupt(r / "model.pt", kind)
    line = one_error_line(capsys, main(["recommend", str(r), "--user", "u1"]), str(r / "model.pt"))
    assert ("refused" if kind == "exploit" else "not a readable PyTorch file") in line
    assert not (tmp_path / "EXPLOITED").exists()


@pytest.mark.parametrize("kind", ["empty", "truncated", "exploit"])
def test_a_corrupt_checkpoint_on_resume_is_one_line_naming_it(run_dir, tmp_path, capsys, kind, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = copy_dir(run_dir, tmp_path / "run")
    corrupt(r / "checkpoints" / "pretrain.pt", kind)
    graph = json.loads((r / "run.json").read_text())["graph"]
    code = main(["train", "--graph", graph, "--out", str(r), "--resume", *TINY])
    one_error_line(capsys, code, str(r / "checkpoints" / "pretrain.pt"))
    assert not (tmp_path / "EXPLOITED").exists()


# -- any bytes at all: loaded, or one InputError naming the file -----------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from kgrec.io import load_numpy  # noqa: E402


def _valid_files(tmp: Path) -> dict[str, bytes]:
    import numpy as np
    torch.save({"w": torch.arange(50)}, tmp / "v.pt")
    pd_frame = __import__("pandas").DataFrame({"a": range(50), "b": [str(i) for i in range(50)]})
    pd_frame.to_parquet(tmp / "v.parquet")
    np.save(tmp / "v.npy", np.arange(50.0))
    return {s: (tmp / f"v{s}").read_bytes() for s in (".pt", ".parquet", ".npy")}


READERS = {".txt": read_text, ".json": read_json, ".pt": load_torch, ".parquet": load_parquet, ".npy": load_numpy}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(suffix=st.sampled_from(sorted(READERS)), data=st.data())
def test_any_bytes_are_loaded_or_refused_with_one_input_error(tmp_path, suffix, data):
    """Random bytes, and valid files cut short or with one byte changed: never another exception."""
    valid = _valid_files(tmp_path)
    base = valid.get(suffix, b'{"a": [1, 2, "caf\xc3\xa9"]}\n')
    how = data.draw(st.sampled_from(["random", "cut", "flip"]))
    if how == "random":
        content = data.draw(st.binary(max_size=300))
    elif how == "cut":
        content = base[: data.draw(st.integers(0, max(len(base) - 1, 0)))]
    else:
        i = data.draw(st.integers(0, len(base) - 1))
        content = base[:i] + bytes([base[i] ^ data.draw(st.integers(1, 255))]) + base[i + 1:]
    p = tmp_path / f"x{suffix}"
    p.write_bytes(content)
    try:
        READERS[suffix](p)
    except InputError as e:
        assert str(e).startswith(str(p)) and "\n" not in str(e), str(e)
