"""Item input features: TF-IDF + truncated SVD of item text, or vectors the user supplies.

Vector files are keyed by item id (the ``id`` column of ``nodes/item.parquet``):
a Parquet file with an ``id`` column and either one list column or numeric
columns, or an ``.npz`` with arrays ``ids`` and ``vectors``. A plain ``.npy``
must have one row per item in artifact order. Items without a vector get zeros.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from kgrec.errors import InputError
from kgrec.io import load_numpy, load_parquet


def text_features(texts: list[str], dim: int = 64, seed: int = 0) -> np.ndarray:
    """``[n, dim]`` float32 rows: TF-IDF (unigrams and bigrams, sublinear tf) reduced by
    truncated SVD and L2-normalised; an empty text gives a zero row."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = ["" if t is None or (isinstance(t, float) and np.isnan(t)) else str(t) for t in texts]
    out = np.zeros((len(texts), dim), dtype=np.float32)
    if not any(t.strip() for t in texts):
        return out
    tfidf = TfidfVectorizer(ngram_range=(1, 2), min_df=1 if len(texts) < 50 else 2, sublinear_tf=True,
                            max_features=100_000).fit_transform(texts)
    k = min(dim, tfidf.shape[1] - 1, tfidf.shape[0] - 1)
    if k < 1:
        return out
    z = TruncatedSVD(k, random_state=seed).fit_transform(tfidf)
    norms = np.linalg.norm(z, axis=1, keepdims=True)
    out[:, :k] = z / np.where(norms > 0, norms, 1)
    return out


def load_vectors(path: str | Path, item_ids: list[str]) -> np.ndarray:
    """``[len(item_ids), f]`` float32 vectors from ``path``, aligned to ``item_ids``.

    Raises:
        InputError: unreadable file, wrong shape, or no vector matching any item.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "vector file not found")
    if path.suffix == ".npy":
        vec = load_numpy(path, "vector file")
        if vec.ndim != 2 or vec.shape[0] != len(item_ids):
            raise InputError(path, f"expected a [{len(item_ids)}, f] array (one row per item in "
                                   f"nodes/item.parquet order), got shape {list(vec.shape)}")
        return vec.astype(np.float32)
    if path.suffix == ".npz":
        z = load_numpy(path, "vector file")
        if "ids" not in z or "vectors" not in z:
            raise InputError(path, f"expected arrays 'ids' and 'vectors', got {sorted(z.files)}")
        ids, vec = [str(i) for i in z["ids"]], z["vectors"]
    elif path.suffix in (".parquet", ".pq"):
        df = load_parquet(path, "vector file")
        if "id" not in df.columns:
            raise InputError(path, f"expected an 'id' column, got {list(df.columns)}")
        ids = df["id"].astype(str).tolist()
        rest = df.drop(columns="id")
        if rest.shape[1] == 1 and rest.iloc[:, 0].dtype == object:
            vec = np.stack(rest.iloc[:, 0].to_numpy())
        else:
            vec = rest.to_numpy()
    else:
        raise InputError(path, "expected a .parquet, .npz or .npy vector file")
    vec = np.asarray(vec, dtype=np.float32)
    if vec.ndim != 2 or vec.shape[0] != len(ids):
        raise InputError(path, f"expected one vector per id, got {len(ids)} ids and shape {list(vec.shape)}")
    index = {i: k for k, i in enumerate(ids)}
    out = np.zeros((len(item_ids), vec.shape[1]), dtype=np.float32)
    hits = [(r, index[i]) for r, i in enumerate(item_ids) if i in index]
    if not hits:
        raise InputError(path, f"none of its {len(ids)} ids is an item of the graph (e.g. {item_ids[:3]})")
    rows, src = map(list, zip(*hits))
    out[rows] = vec[src]
    return out
