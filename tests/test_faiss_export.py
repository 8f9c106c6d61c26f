"""The FAISS export's two indexes: ``flat`` (exact) and ``hnsw`` (approximate; exact in practice on the
tiny example graph), read back, searched with the exported user vectors, and refused when misnamed."""
from __future__ import annotations

import dataclasses
import json

import faiss
import numpy as np
import pandas as pd
import pytest

from conftest import one_error_line
from kgrec.cli import main
from kgrec.errors import KgrecError
from kgrec.serve import FAISS_INDEXES, export_embeddings, load_run, read_embeddings, recommend
from kgrec.serve.embeddings import HnswConfig, item_index


@pytest.fixture(scope="module")
def run(run_dir):
    # the exported vectors are the embedding part of the score, so rank by that part alone
    return dataclasses.replace(load_run(run_dir), path_weight=0.0)


@pytest.fixture(scope="module")
def exports(run_dir, tmp_path_factory):
    """The example run exported through the CLI with each index: {kind: export dir}."""
    root = tmp_path_factory.mktemp("faiss")
    for kind in ("flat", "hnsw"):
        assert main(["export", str(run_dir), "--format", "faiss", "--faiss-index", kind,
                     "--out", str(root / kind)]) == 0
    return {kind: root / kind for kind in ("flat", "hnsw")}


def search(export_dir, k: int) -> tuple[pd.DataFrame, np.ndarray]:
    """(users.tsv, the item ids of each user's top-k) from an export's index and query vectors."""
    index = faiss.read_index(str(export_dir / "items.faiss"))
    items = pd.read_csv(export_dir / "items.tsv", sep="\t", dtype={"id": str})
    users = pd.read_csv(export_dir / "users.tsv", sep="\t", dtype={"id": str})
    _, found = index.search(np.load(export_dir / "users.npy"), k)
    return users, items["id"].to_numpy()[found]


def test_an_hnsw_export_is_an_inner_product_hnsw_index_with_its_settings_recorded(exports):
    index = faiss.read_index(str(exports["hnsw"] / "items.faiss"))
    assert isinstance(index, faiss.IndexHNSWFlat) and index.metric_type == faiss.METRIC_INNER_PRODUCT
    marker = json.loads((exports["hnsw"] / "export.json").read_text())
    assert marker["faiss_index"] == "hnsw" and marker["hnsw"] == dataclasses.asdict(HnswConfig())
    assert index.hnsw.efSearch == marker["hnsw"]["ef_search"]
    assert isinstance(faiss.read_index(str(exports["flat"] / "items.faiss")), faiss.IndexFlatIP)
    assert json.loads((exports["flat"] / "export.json").read_text())["faiss_index"] == "flat"


def test_an_hnsw_export_reads_back_the_same_items_and_vectors_as_the_flat_one(exports):
    flat_rows, flat_vec = read_embeddings(exports["flat"], "faiss")
    hnsw_rows, hnsw_vec = read_embeddings(exports["hnsw"], "faiss")
    pd.testing.assert_frame_equal(hnsw_rows, flat_rows)
    np.testing.assert_array_equal(hnsw_vec, flat_vec)
    assert len(flat_rows) > 0 and flat_vec.shape[1] == 8


def test_hnsw_search_gives_every_users_flat_and_recommend_top_k_on_the_example(run, exports):
    n_items = len(run.artifact.items_of("target"))
    for k in (5, n_items):
        users, hnsw_top = search(exports["hnsw"], k)
        _, flat_top = search(exports["flat"], k)
        np.testing.assert_array_equal(hnsw_top, flat_top)
        for row, uid in enumerate(users["id"]):
            assert hnsw_top[row].tolist() == recommend(run, uid, k=k, exclude_seen=False)["item"].tolist(), uid


def test_an_index_built_with_other_hnsw_settings_keeps_them():
    vectors = np.random.default_rng(0).standard_normal((50, 4)).astype(np.float32)
    index = item_index(vectors, "hnsw", HnswConfig(m=8, ef_construction=20, ef_search=64))
    assert (index.hnsw.efConstruction, index.hnsw.efSearch, index.ntotal) == (20, 64, 50)
    np.testing.assert_array_equal(index.reconstruct_n(0, 50), vectors)


def test_a_bad_faiss_index_value_is_one_argparse_error_line(run_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as refused:
        main(["export", str(run_dir), "--format", "faiss", "--faiss-index", "ivf", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert refused.value.code == 2 and "Traceback" not in err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "argument --faiss-index: invalid choice: 'ivf'" in errors[0], err
    assert "'flat', 'hnsw'" in errors[0] and not (tmp_path / "x").exists()


def test_a_faiss_index_for_another_format_is_one_kgrec_error_line(run_dir, tmp_path, capsys):
    code = main(["export", str(run_dir), "--format", "npy", "--faiss-index", "hnsw", "--out", str(tmp_path / "x")])
    one_error_line(capsys, code, "--faiss-index", "'npy'")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("kwargs, message", [
    ({"faiss_index": "ivf"}, "unknown FAISS index 'ivf'; expected one of flat, hnsw"),
    ({"faiss_index": "flat", "hnsw": HnswConfig()}, "apply to 'hnsw' only"),
])
def test_the_python_api_refuses_a_bad_index_before_writing(run, tmp_path, kwargs, message):
    with pytest.raises(KgrecError, match=message):
        export_embeddings(run, tmp_path / "x", "faiss", **kwargs)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "32"])
def test_hnsw_settings_must_be_positive_integers(value):
    with pytest.raises(KgrecError, match="HNSW setting m must be a positive integer"):
        HnswConfig(m=value)


def test_the_cli_offers_exactly_the_exports_index_kinds():
    from kgrec.cli import make_parser

    export = make_parser()._subparsers._group_actions[0].choices["export"]
    option = next(a for a in export._actions if "--faiss-index" in a.option_strings)
    assert tuple(option.choices) == FAISS_INDEXES and option.default is None
