"""RecBole atomic files (``.inter``, ``.item``, ``.user``, ``.kg``, ``.link``).

The header is ``name:type`` per column, types ``token``, ``token_seq``,
``float``, ``float_seq``; fields are tab-separated and unquoted.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from kgrec.data.table import read_table, to_float
from kgrec.errors import InputError

ATOMIC_SUFFIXES = (".inter", ".item", ".user", ".kg", ".link", ".net")
_TYPES = ("token", "token_seq", "float", "float_seq")


def read_atomic(path: str | Path, progress: bool = False) -> pd.DataFrame:
    """Read an atomic file; ``float`` columns become float64, the rest stay strings.

    Column names lose their ``:type`` suffix.

    Raises:
        InputError: missing file, a header field without a valid type, a row of
            the wrong width or a non-numeric ``float`` field.
    """
    path = Path(path)
    table = read_table(path, sep="\t", header=True, quoting=False, progress=progress)
    names, types = [], []
    for col in table.frame.columns:
        name, _, typ = col.rpartition(":")
        if not name or typ not in _TYPES:
            raise InputError(path, f"header field {col!r}: expected name:type with type in {', '.join(_TYPES)}", 1)
        names.append(name)
        types.append(typ)
    for col, name, typ in zip(list(table.frame.columns), names, types):
        if typ == "float":
            table.frame[col] = to_float(table, col)
    table.frame.columns = names
    return table.frame
