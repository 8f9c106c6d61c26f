"""Item input features: TF-IDF + SVD of text, and user-supplied vectors keyed by item id."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kgrec.errors import InputError
from kgrec.models.features import load_vectors, text_features


def test_text_features_are_unit_rows_and_similar_texts_are_close():
    texts = ["red running shoes", "blue running shoes", "oil paint brush set", "", "acrylic paint brush"]
    f = text_features(texts, dim=3, seed=0)
    assert f.shape == (5, 3) and f.dtype == np.float32
    norms = np.linalg.norm(f, axis=1)
    assert np.allclose(norms[[0, 1, 2, 4]], 1.0, atol=1e-5) and norms[3] == 0
    assert f[0] @ f[1] > f[0] @ f[2]
    assert np.array_equal(f, text_features(texts, dim=3, seed=0))


def test_vectors_are_aligned_to_the_items_by_id(tmp_path):
    ids = ["b", "a", "c"]
    vec = np.array([[1, 2], [3, 4]], dtype=np.float32)
    pd.DataFrame({"id": ["a", "b"], "vector": list(vec)}).to_parquet(tmp_path / "v.parquet")
    pd.DataFrame({"id": ["a", "b"], "x": vec[:, 0], "y": vec[:, 1]}).to_parquet(tmp_path / "cols.parquet")
    np.savez(tmp_path / "v.npz", ids=np.array(["a", "b"]), vectors=vec)
    expected = np.array([[3, 4], [1, 2], [0, 0]], dtype=np.float32)
    for name in ("v.parquet", "cols.parquet", "v.npz"):
        assert np.array_equal(load_vectors(tmp_path / name, ids), expected), name
    np.save(tmp_path / "v.npy", expected)
    assert np.array_equal(load_vectors(tmp_path / "v.npy", ids), expected)


def test_bad_vector_files_say_what_was_expected(tmp_path):
    np.save(tmp_path / "short.npy", np.zeros((2, 4)))
    with pytest.raises(InputError, match=r"\[3, f\]"):
        load_vectors(tmp_path / "short.npy", ["a", "b", "c"])
    pd.DataFrame({"id": ["x"], "v": [1.0]}).to_parquet(tmp_path / "other.parquet")
    with pytest.raises(InputError, match="none of its 1 ids"):
        load_vectors(tmp_path / "other.parquet", ["a"])
    with pytest.raises(InputError, match="not found"):
        load_vectors(tmp_path / "missing.npz", ["a"])
