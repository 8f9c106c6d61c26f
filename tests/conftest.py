"""Shared fixtures: the tiny example graph, and the real data when present."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_SPEC = ROOT / "graphs" / "examples" / "movies_books.toml"


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
