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
  ``users.npy`` + ``users.tsv``, each user's query vector: searching the index with it gives
  the same top-K as ``kgrec recommend --all-items`` (``--include-seen``) for that user.

Every export directory also holds ``export.json`` (format, run): the marker by which
``--overwrite`` knows the directory is a kgrec export it may replace.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from kgrec.atomic import atomic_directory, check_output
from kgrec.errors import KgrecError
from kgrec.graph.artifact import TARGET
from kgrec.io import load_numpy, load_parquet
from kgrec.models.heads import BilinearHead, DistMultHead, DotHead
from kgrec.serve.run import Run

FORMATS = ("parquet", "npy", "projector", "word2vec", "faiss")
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


#: the file that marks a directory as a kgrec embedding export (what ``--overwrite`` may replace)
EXPORT_MARKER = "export.json"


def export_embeddings(run: Run, out: str | Path, fmt: str, overwrite: bool = False) -> Path:
    """Write the ``fmt`` export of ``run`` into directory ``out`` (atomically).

    Raises:
        KgrecError: unknown format, ``out`` exists without ``overwrite``, or no FAISS export for this head.
    """
    if fmt not in FORMATS:
        raise KgrecError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    out = Path(out)
    check_output(out, overwrite=overwrite, ours=(EXPORT_MARKER,), what="embedding export")
    meta, vec = node_table(run)
    with atomic_directory(out, overwrite=overwrite, ours=(EXPORT_MARKER,), what="embedding export") as tmp:
        (tmp / EXPORT_MARKER).write_text(json.dumps({"format": fmt, "run": str(run.path)}) + "\n", encoding="utf-8")
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
            index = faiss.IndexFlatIP(vec.shape[1])
            index.add(np.ascontiguousarray(vec[item_rows]))
            faiss.write_index(index, str(tmp / "items.faiss"))
            meta.iloc[item_rows].to_csv(tmp / "items.tsv", sep="\t", index=False)
            users = torch.arange(run.graph.sizes["user"])
            np.save(tmp / "users.npy", query_vectors(run, users))
            meta[meta["type"] == "user"].to_csv(tmp / "users.tsv", sep="\t", index=False)
    return out


def read_embeddings(path: str | Path, fmt: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Read an export back: ``(rows, vectors)``; for ``faiss``, the item rows and the index's vectors.

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
