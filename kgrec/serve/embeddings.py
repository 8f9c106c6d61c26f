"""Embedding export for downstream systems, and reading the exports back.

Every node of every type gets one row: ``type``, ``index`` (within its type),
``id`` (the original id / IRI), ``domain``, ``label`` and its vector (the
trained encoder's output). Formats (``kgrec export RUN --format F --out DIR``):

- ``parquet``: ``embeddings.parquet``, the columns above plus ``vector`` (list of floats);
- ``npy``: ``embeddings.npy`` ``[N, d]`` float32 and ``ids.tsv`` (the columns above, same row order);
- ``projector``: ``vectors.tsv`` + ``metadata.tsv`` for the TensorBoard embedding projector;
- ``word2vec``: ``embeddings.txt`` in word2vec text format, one token per node, ``type:id``
  with whitespace in ids replaced by ``_``;
- ``faiss``: ``items.faiss``, an inner-product index of the target items (``items.tsv``), and
  ``users.npy`` + ``users.tsv``, each user's query vector (the head folded in). The index is
  ``--faiss-index flat`` (default: ``faiss.IndexFlatIP``, exact: searching it with a user's
  vector gives the same top-K as ``kgrec recommend --include-seen`` ranks by the embeddings)
  or ``hnsw`` (``faiss.IndexHNSWFlat``, inner product, approximate: :class:`HnswConfig` has its
  settings and defaults; ``benchmarks/faiss_recall.py`` measures its recall against the exact
  top-K). An HNSW index searches with the ``ef_search`` stored in it and in ``export.json``;
  set another with ``index.hnsw.efSearch = 256`` or, per call,
  ``index.search(q, k, params=faiss.SearchParametersHNSW(efSearch=256))``.

Every export directory also holds ``export.json`` (format, run; for ``faiss`` the index kind and
the HNSW settings): the marker by which ``--overwrite`` knows the directory is a kgrec export it
may replace.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from kgrec.atomic import atomic_directory, check_output
from kgrec.errors import KgrecError
from kgrec.graph.artifact import TARGET
from kgrec.io import load_numpy, load_parquet
from kgrec.models.heads import BilinearHead, DistMultHead, DotHead
from kgrec.serve.run import Run

if TYPE_CHECKING:
    import faiss

FORMATS = ("parquet", "npy", "projector", "word2vec", "faiss")
#: the index kinds of the ``faiss`` export: exact (``flat``) or approximate (``hnsw``)
FAISS_INDEXES = ("flat", "hnsw")
_META = ["type", "index", "id", "domain", "label"]


def node_table(run: Run) -> tuple[pd.DataFrame, np.ndarray]:
    """All nodes (columns type, index, id, domain, label) and their ``[N, d]`` float32 vectors."""
    h = run.embeddings().cpu().numpy().astype(np.float32)
    frames = []
    for t, off in run.graph.offsets.items():
        nodes = run.artifact.nodes[t]
        frames.append(pd.DataFrame({
            "type": t, "index": nodes["index"].astype(int).to_numpy(), "id": nodes["id"].astype(str).to_numpy(),
            "domain": nodes["domain"].astype(str).to_numpy() if "domain" in nodes.columns else "",
            "label": run.labels(t)}))
    meta = pd.concat(frames, ignore_index=True)
    return meta, h[: len(meta)]


@torch.no_grad()
def query_vectors(run: Run, users: torch.Tensor) -> np.ndarray:
    """``[B, d]`` vectors q_u such that ``q_u · h_i`` is the target head's score of (u, i).

    Raises:
        KgrecError: the head is not an inner product (the ``mlp`` head).
    """
    head = run.model.heads["target"]
    hu = run.embeddings()[users.to(run.device) + run.graph.offsets["user"]]
    if isinstance(head, DotHead):
        q = hu
    elif isinstance(head, DistMultHead):
        q = hu * head.weight
    elif isinstance(head, BilinearHead):
        q = hu @ head.weight
    else:
        raise KgrecError(f"the '{run.model.config.head}' head is not an inner product, so it has no FAISS "
                         f"export: train with model.head = dot, distmult or bilinear")
    return q.cpu().numpy().astype(np.float32)


@dataclasses.dataclass(frozen=True)
class HnswConfig:
    """Settings of the ``hnsw`` FAISS export: ``faiss.IndexHNSWFlat(d, m, faiss.METRIC_INNER_PRODUCT)``.

    The defaults come from ``benchmarks/faiss_recall.py`` (``docs/benchmarks.md``, "FAISS at
    catalogue scale"), made for large catalogues, where HNSW pays: on 1M generated items (dim 64)
    they find 0.86 of the exact top-10 at 12× the exact search's speed (efSearch 512: 0.93 at 6×).
    At equal recall ``m = 64`` searched faster than 32 on every catalogue measured, and 16 recalled
    half as much as 32 at 1M; a bigger ``ef_construction`` (200) recalled no more and took about 4×
    as long to build.

    Args:
        m: neighbours per node on each upper layer (``2 m`` on the base layer); the links take about
            ``8 m`` bytes per item besides its ``4 d`` bytes of vector.
        ef_construction: candidates kept while inserting an item (faiss's default, 40).
        ef_search: candidates kept while searching; more recalls more and is slower (keep it at
            least K). Stored in the index and in ``export.json``; a reader may set another.

    Raises:
        KgrecError: a setting is not a positive integer.
    """

    m: int = 64
    ef_construction: int = 40
    ef_search: int = 256

    def __post_init__(self) -> None:
        for key, value in dataclasses.asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise KgrecError(f"HNSW setting {key} must be a positive integer, got {value!r}")


def _check_index(kind: str, hnsw: HnswConfig | None) -> None:
    if kind not in FAISS_INDEXES:
        raise KgrecError(f"unknown FAISS index {kind!r}; expected one of {', '.join(FAISS_INDEXES)}")
    if hnsw is not None and kind != "hnsw":
        raise KgrecError(f"HNSW settings were given for a {kind!r} FAISS index; they apply to 'hnsw' only")


def item_index(vectors: np.ndarray, kind: str = "flat", hnsw: HnswConfig | None = None) -> "faiss.Index":
    """An inner-product FAISS index over ``[M, d]`` item vectors: ``flat`` (exact) or ``hnsw``.

    Raises:
        KgrecError: unknown ``kind``, or ``hnsw`` settings given for a ``flat`` index.
    """
    import faiss

    _check_index(kind, hnsw)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if kind == "flat":
        index = faiss.IndexFlatIP(vectors.shape[1])
    else:
        hnsw = hnsw or HnswConfig()
        index = faiss.IndexHNSWFlat(vectors.shape[1], hnsw.m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = hnsw.ef_construction
        index.hnsw.efSearch = hnsw.ef_search
    index.add(vectors)
    return index


#: the file that marks a directory as a kgrec embedding export (what ``--overwrite`` may replace)
EXPORT_MARKER = "export.json"


def export_embeddings(run: Run, out: str | Path, fmt: str, overwrite: bool = False,
                      faiss_index: str | None = None, hnsw: HnswConfig | None = None) -> Path:
    """Write the ``fmt`` export of ``run`` into directory ``out`` (atomically).

    Args:
        run: a loaded run.
        out: the export directory (replaced only with ``overwrite``, and only if it is an export).
        fmt: one of :data:`FORMATS`.
        overwrite: replace an earlier export at ``out``.
        faiss_index: for ``fmt = "faiss"``: ``"flat"`` (the default; exact) or ``"hnsw"`` (approximate).
        hnsw: the ``hnsw`` index's settings (default :class:`HnswConfig()`).

    Raises:
        KgrecError: unknown format or index, an index or HNSW settings for a format other than
            ``faiss``, ``out`` exists without ``overwrite``, or no FAISS export for this head.
    """
    if fmt not in FORMATS:
        raise KgrecError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if fmt != "faiss" and (faiss_index is not None or hnsw is not None):
        raise KgrecError(f"a FAISS index (--faiss-index) applies to the faiss format only, not to {fmt!r}")
    faiss_index = faiss_index or "flat"
    _check_index(faiss_index, hnsw)
    if faiss_index == "hnsw":
        hnsw = hnsw or HnswConfig()
    out = Path(out)
    check_output(out, overwrite=overwrite, ours=(EXPORT_MARKER,), what="embedding export")
    meta, vec = node_table(run)
    with atomic_directory(out, overwrite=overwrite, ours=(EXPORT_MARKER,), what="embedding export") as tmp:
        marker = {"format": fmt, "run": str(run.path)}
        if fmt == "faiss":
            marker["faiss_index"] = faiss_index
            if hnsw is not None:
                marker["hnsw"] = dataclasses.asdict(hnsw)
        (tmp / EXPORT_MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")
        if fmt == "parquet":
            table = meta.copy()
            table["vector"] = list(vec)
            table.to_parquet(tmp / "embeddings.parquet", index=False)
        elif fmt == "npy":
            np.save(tmp / "embeddings.npy", vec)
            meta.to_csv(tmp / "ids.tsv", sep="\t", index=False)
        elif fmt == "projector":
            np.savetxt(tmp / "vectors.tsv", vec, delimiter="\t", fmt="%.8g")
            meta.drop(columns="index").assign(label=meta["label"].str.replace(r"[\t\n]", " ", regex=True)).to_csv(
                tmp / "metadata.tsv", sep="\t", index=False)
        elif fmt == "word2vec":
            tokens = (meta["type"] + ":" + meta["id"].str.replace(r"\s+", "_", regex=True)).tolist()
            with open(tmp / "embeddings.txt", "w", encoding="utf-8") as f:
                f.write(f"{vec.shape[0]} {vec.shape[1]}\n")
                for tok, row in zip(tokens, vec):
                    f.write(tok + " " + " ".join(f"{x:.8g}" for x in row) + "\n")
        else:
            import faiss

            items = run.artifact.items_of(TARGET)
            item_rows = meta.index[(meta["type"] == "item")].to_numpy()[items.numpy()]
            faiss.write_index(item_index(vec[item_rows], faiss_index, hnsw), str(tmp / "items.faiss"))
            meta.iloc[item_rows].to_csv(tmp / "items.tsv", sep="\t", index=False)
            users = torch.arange(run.graph.sizes["user"])
            np.save(tmp / "users.npy", query_vectors(run, users))
            meta[meta["type"] == "user"].to_csv(tmp / "users.tsv", sep="\t", index=False)
    return out


def read_embeddings(path: str | Path, fmt: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Read an export back: ``(rows, vectors)``; for ``faiss``, the item rows and the index's vectors
    (reconstructed from either index kind: an HNSW index keeps the exact vectors in its storage).

    Raises:
        KgrecError: unknown format.
    """
    path = Path(path)
    if fmt == "parquet":
        table = load_parquet(path / "embeddings.parquet")
        return table.drop(columns="vector"), np.stack(table["vector"].to_numpy()).astype(np.float32)
    if fmt == "npy":
        return pd.read_csv(path / "ids.tsv", sep="\t", dtype={"id": str, "label": str}, keep_default_na=False), \
            load_numpy(path / "embeddings.npy")
    if fmt == "projector":
        meta = pd.read_csv(path / "metadata.tsv", sep="\t", dtype=str, keep_default_na=False)
        return meta, np.loadtxt(path / "vectors.tsv", delimiter="\t", dtype=np.float32, ndmin=2)
    if fmt == "word2vec":
        with open(path / "embeddings.txt", encoding="utf-8") as f:
            n, d = map(int, f.readline().split())
            rows = [line.rstrip("\n").split(" ") for line in f]
        tokens = [r[0] for r in rows]
        vec = np.array([[float(x) for x in r[1:]] for r in rows], dtype=np.float32).reshape(n, d)
        return pd.DataFrame({"token": tokens}), vec
    if fmt == "faiss":
        import faiss

        index = faiss.read_index(str(path / "items.faiss"))
        vec = index.reconstruct_n(0, index.ntotal)
        return pd.read_csv(path / "items.tsv", sep="\t", dtype={"id": str, "label": str}, keep_default_na=False), vec
    raise KgrecError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
