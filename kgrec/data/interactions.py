"""Interaction logs: CSV / TSV / Parquet / RecBole ``.inter`` -> a user-item frame.

The frame every reader returns has string ``user`` and ``item`` columns (the
original ids, never re-indexed here) and float ``rating`` / ``timestamp``
columns (NaN when the file has none).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from kgrec.data.table import Table, read_table, to_float
from kgrec.errors import InputError

COLUMNS = ("user", "item", "rating", "timestamp")

#: Column names recognised when a file has a header and no mapping is given.
_CANDIDATES = {
    "user": ("user", "user_id", "userid", "uid", "u"),
    "item": ("item", "item_id", "itemid", "iid", "movieid", "artistid", "i"),
    "rating": ("rating", "weight", "score", "label", "r"),
    "timestamp": ("timestamp", "time", "ts", "t"),
}
_ATOMIC_TYPES = ("token", "token_seq", "float", "float_seq")


def infer_sep(path: str | Path) -> str | None:
    """Field separator implied by a file's suffix: ``,`` for .csv, tab otherwise."""
    suffix = Path(path).suffix.lower()
    return "," if suffix == ".csv" else "\t"


def strip_atomic_types(names: list[str]) -> list[str]:
    """``user_id:token`` -> ``user_id`` (RecBole atomic headers); other names unchanged."""
    out = []
    for n in names:
        base, _, typ = n.rpartition(":")
        out.append(base if base and typ in _ATOMIC_TYPES else n)
    return out


def _resolve_columns(path: Path, names: list[str], columns: Mapping[str, str | int] | None, header: bool) -> dict[str, str]:
    """Map kgrec's column roles to the file's columns; errors name the unknown column."""
    for role in columns or {}:
        if role not in COLUMNS:
            raise InputError(path, f"unknown column role '{role}' (expected one of {', '.join(COLUMNS)})")
    resolved: dict[str, str] = {}
    if columns:
        for role, col in columns.items():
            if col is None:
                continue
            if isinstance(col, int):
                if not 0 <= col < len(names):
                    raise InputError(path, f"column {role}={col} is out of range: the file has {len(names)} columns")
                resolved[role] = names[col]
            elif col in names:
                resolved[role] = col
            else:
                raise InputError(path, f"unknown column '{col}' for {role}; the file's columns are: {', '.join(names)}")
    elif header:
        lower = {n.lower(): n for n in names}
        for role, cands in _CANDIDATES.items():
            hit = next((lower[c] for c in cands if c in lower), None)
            if hit is not None:
                resolved[role] = hit
    else:
        for role, name in zip(COLUMNS, names):
            resolved[role] = name
    for role in ("user", "item"):
        if role not in resolved:
            raise InputError(path, f"no {role} column found; the file's columns are: {', '.join(names)} (map it with columns = {{{role} = \"...\"}})")
    return resolved


def _frame(path: Path, table: Table, resolved: dict[str, str]) -> pd.DataFrame:
    f = table.frame
    out = pd.DataFrame({
        "user": f[resolved["user"]].astype(str).str.strip().to_numpy(dtype=object),
        "item": f[resolved["item"]].astype(str).str.strip().to_numpy(dtype=object),
    })
    for role, what in (("rating", "a numeric rating"), ("timestamp", "a numeric timestamp")):
        out[role] = to_float(table, resolved[role], what) if role in resolved else np.full(len(f), np.nan)
    empty = (out["user"] == "") | (out["item"] == "")
    if empty.any():
        i = int(np.flatnonzero(empty.to_numpy())[0])
        raise InputError(path, "empty user or item id", table.line_of(i))
    return out


def read_interactions(
    path: str | Path,
    *,
    sep: str | None = "infer",
    header: bool = True,
    columns: Mapping[str, str | int] | None = None,
    threshold: float | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Read one interaction file into a ``user, item, rating, timestamp`` frame.

    Args:
        path: ``.csv``, ``.tsv``/``.txt``/``.dat``/``.inter`` or ``.parquet``.
        sep: field separator; ``"infer"`` picks it from the suffix, ``None``
            splits on whitespace.
        header: whether the first line names the columns (RecBole ``name:type``
            headers are understood).
        columns: role -> column name (or 0-based position), roles being
            ``user``, ``item``, ``rating``, ``timestamp``. Without it, common
            names (``user_id``, ``itemId``, ``rating``...) or, with no header,
            positions 0, 1, 2, 3 are used.
        threshold: keep only rows whose rating is ``>= threshold`` (implicit
            feedback); requires a rating column.

    Raises:
        InputError: missing file, wrong column count, unknown column,
            non-numeric rating or timestamp, empty id.
    """
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        table = _read_parquet(path)
    else:
        table = read_table(path, sep=infer_sep(path) if sep == "infer" else sep, header=header, progress=progress)
        table.frame.columns = strip_atomic_types(list(table.frame.columns))
    resolved = _resolve_columns(path, list(table.frame.columns), columns, header or path.suffix.lower() == ".parquet")
    out = _frame(path, table, resolved)
    if threshold is not None:
        if "rating" not in resolved:
            raise InputError(path, f"threshold = {threshold} needs a rating column, and none is mapped")
        out = out[out["rating"] >= threshold].reset_index(drop=True)
    return out


def _read_parquet(path: Path) -> Table:
    import pyarrow.parquet as pq

    if not path.exists():
        raise InputError(path, f"file not found ({path})")
    try:
        pf = pq.ParquetFile(path)
        frames = [b.to_pandas() for b in pf.iter_batches(batch_size=1_000_000)]
    except Exception as e:  # pyarrow raises many types for corrupt files
        raise InputError(path, f"not a readable Parquet file ({e})") from None
    frame = pd.concat(frames, ignore_index=True) if frames else pf.schema_arrow.empty_table().to_pandas()
    frame = frame.astype(object).where(frame.notna(), "nan").astype(str)
    # Parquet has no lines: report rows 1-based, like a header-less file.
    return Table(path, frame, np.arange(1, len(frame) + 1, dtype=np.int64))


def k_core(frame: pd.DataFrame, k: int) -> pd.DataFrame:
    """Iteratively drop users and items with fewer than ``k`` interactions."""
    if k <= 1:
        return frame
    while True:
        uc = frame["user"].map(frame["user"].value_counts())
        ic = frame["item"].map(frame["item"].value_counts())
        keep = (uc >= k) & (ic >= k)
        if keep.all():
            return frame.reset_index(drop=True)
        frame = frame[keep]
