"""Knowledge as plain triple files and item -> entity link files."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import pandas as pd

from kgrec.data.interactions import infer_sep, strip_atomic_types
from kgrec.data.table import read_table
from kgrec.errors import InputError

TRIPLE_COLUMNS = ("head", "relation", "tail")


def _pick(path: Path, names: list[str], columns: Mapping[str, str | int] | None, roles: tuple[str, ...]) -> list[str]:
    if not columns:
        return names[: len(roles)]
    picked = []
    for role in roles:
        if role not in columns:
            raise InputError(path, f"columns mapping lacks '{role}' (expected keys {', '.join(roles)})")
        col = columns[role]
        if isinstance(col, int):
            if not 0 <= col < len(names):
                raise InputError(path, f"column {role}={col} is out of range: the file has {len(names)} columns")
            picked.append(names[col])
        elif col in names:
            picked.append(col)
        else:
            raise InputError(path, f"unknown column '{col}' for {role}; the file's columns are: {', '.join(names)}")
    return picked


def read_triples(
    path: str | Path,
    *,
    sep: str | None = "infer",
    header: bool | None = None,
    columns: Mapping[str, str | int] | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Read ``head, relation, tail`` string triples from a delimited file.

    ``header=None`` means: a header is present iff the file is a RecBole
    ``.kg`` file. KGAT's ``kg_final.txt`` (space-separated) works with
    ``sep=None``.

    Raises:
        InputError: missing file or a line without exactly the mapped columns.
    """
    path = Path(path)
    if header is None:
        header = path.suffix == ".kg"
    sep = infer_sep(path) if sep == "infer" else sep
    table = read_table(path, sep=sep, header=header, quoting=False, progress=progress)
    names = strip_atomic_types(list(table.frame.columns))
    table.frame.columns = names
    if len(names) < 3:
        raise InputError(path, f"expected at least 3 columns (head, relation, tail), got {len(names)}")
    picked = _pick(path, names, columns, TRIPLE_COLUMNS)
    out = table.frame[picked].copy()
    out.columns = list(TRIPLE_COLUMNS)
    return out.astype(str).reset_index(drop=True)


def read_links(
    path: str | Path,
    *,
    sep: str | None = "infer",
    header: bool | None = None,
    columns: Mapping[str, str | int] | None = None,
) -> pd.DataFrame:
    """Read an item -> entity link file into an ``item, entity`` frame of strings.

    With a header that has a ``relation`` column, that column is kept too.

    RecBole ``.link`` files (header ``item_id:token entity_id:token``) and
    KGCN's ``item_index2entity_id.txt`` (no header) both work.
    """
    path = Path(path)
    if header is None:
        header = path.suffix == ".link"
    sep = infer_sep(path) if sep == "infer" else sep
    table = read_table(path, sep=sep, header=header, quoting=False)
    names = strip_atomic_types(list(table.frame.columns))
    table.frame.columns = names
    if len(names) < 2:
        raise InputError(path, f"expected 2 columns (item, entity), got {len(names)}")
    picked = _pick(path, names, columns, ("item", "entity"))
    out = table.frame[picked].copy()
    out.columns = ["item", "entity"]
    if header and "relation" in names and not columns:
        # An optional third column names the item -> entity relation (kgrec's own export writes it).
        out["relation"] = table.frame["relation"]
    return out.astype(str).reset_index(drop=True)
