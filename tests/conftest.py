"""Shared fixtures: the tiny example graph, and the real data when present."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_SPEC = ROOT / "graphs" / "examples" / "movies_books.toml"
#: CLI options of the shortest training run on the example graph
TINY = ["--quiet", "--set", "pretrain.epochs=1", "--set", "finetune.epochs=1", "--set", "model.dim=8"]


def one_error_line(capsys, code: int, *words: str) -> str:
    """Assert exit 2 and exactly one stderr line ``kgrec: error: ...`` holding ``words``; no traceback."""
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("kgrec: error:"), err
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def graph_dir(tmp_path_factory) -> Path:
    """The example graph built through the CLI, once per test module."""
    from kgrec.cli import main
    out = tmp_path_factory.mktemp("cli") / "g"
    assert main(["build", str(EXAMPLE_SPEC), "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def run_dir(graph_dir) -> Path:
    """A tiny training run on :func:`graph_dir`, once per test module."""
    from kgrec.cli import main
    out = graph_dir.parent / "run"
    assert main(["train", "--graph", str(graph_dir), "--out", str(out), *TINY]) == 0
    return out


@pytest.fixture(scope="session")
def example_spec():
    from kgrec import load_spec

    return load_spec(EXAMPLE_SPEC)


@pytest.fixture(scope="session")
def example_graph(example_spec):
    from kgrec import build_graph

    return build_graph(example_spec)


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The shared datasets folder (``KGREC_DATA_DIR``); skips the test when absent."""
    root = os.environ.get("KGREC_DATA_DIR")
    if not root or not Path(root).is_dir():
        pytest.skip("KGREC_DATA_DIR is not set to the datasets folder")
    return Path(root)
