"""Streaming reader for delimited text files that remembers line numbers.

Every tabular reader in :mod:`kgrec.data` goes through :func:`read_table`, so
that a malformed row is always reported as ``file line N: what was expected``.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from kgrec.errors import InputError
from kgrec.io import decoding, open_text

csv.field_size_limit(2**31 - 1)


@dataclass
class Table:
    """Rows of a text file as strings, with the 1-based line each row came from."""

    path: Path
    frame: pd.DataFrame
    lines: np.ndarray

    def line_of(self, row: int) -> int:
        return int(self.lines[row])


class _Progress:
    """File wrapper that advances a tqdm bar by the bytes read."""

    def __init__(self, f, bar):
        self._f, self._bar = f, bar

    def __iter__(self):
        for line in self._f:
            self._bar.update(len(line.encode("utf-8", "surrogateescape")))
            yield line


def open_checked(path: str | Path):
    """Open a UTF-8 text file (a byte-order mark dropped), raising :class:`InputError` if it is missing or
    unreadable; iterate it inside :func:`kgrec.io.decoding`."""
    return open_text(path)


def _without_nul(path: Path, src):
    """The lines of ``src``, refusing a NUL byte: it would silently become part of an id."""
    for n, line in enumerate(src, 1):
        if "\x00" in line:
            raise InputError(path, f"a NUL byte (\\x00) at column {line.index(chr(0)) + 1}; is this a binary file?", n)
        yield line


def _rows(path: Path, src, sep: str | None, quoting: bool):
    src = _without_nul(path, src)
    if sep is None:
        for n, ln in enumerate(src, 1):
            yield n, ln.split()
        return
    reader = csv.reader(src, delimiter=sep, quoting=csv.QUOTE_MINIMAL if quoting else csv.QUOTE_NONE)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise InputError(path, f"malformed CSV: {e}", reader.line_num) from None
        yield reader.line_num, row


def read_table(
    path: str | Path,
    sep: str = ",",
    header: bool = True,
    ncols: int | None = None,
    min_cols: int | None = None,
    quoting: bool | None = None,
    progress: bool = False,
    comment: str | None = None,
) -> Table:
    """Read a delimited file into a frame of strings.

    Args:
        sep: field delimiter; ``None`` splits on runs of whitespace.
        header: whether the first non-blank line names the columns.
        ncols: exact number of fields every row must have (defaults to the
            header's width, or the first row's).
        min_cols: if set, rows may have more fields than this (extra fields
            are kept in the last column joined by ``sep``) but not fewer.
        quoting: honour ``"`` quotes; defaults to on for ``,`` and off otherwise.
        comment: lines starting with this prefix are skipped.

    Raises:
        InputError: missing file, undecodable bytes, or a row of the wrong width.
    """
    path = Path(path)
    if quoting is None:
        quoting = sep == ","
    rows: list[list[str]] = []
    lines: list[int] = []
    names: list[str] | None = None
    f = open_checked(path)
    size = os.path.getsize(path)
    bar = tqdm(total=size, unit="B", unit_scale=True, desc=f"read {path.name}", disable=not progress, leave=False)
    try:
        with f, decoding(path):
            src = _Progress(f, bar) if progress else f
            for line_no, row in _rows(path, src, sep, quoting):
                if not row or (len(row) == 1 and row[0].strip() == ""):
                    continue
                if comment and row[0].startswith(comment):
                    continue
                if header and names is None:
                    names = [c.strip() for c in row]
                    if ncols is None and min_cols is None:
                        ncols = len(names)
                    continue
                if ncols is None and min_cols is None:
                    ncols = len(row)
                if min_cols is not None:
                    if len(row) < min_cols:
                        raise InputError(path, f"expected at least {min_cols} columns, got {len(row)}", line_no)
                    if len(row) > min_cols:
                        row = row[: min_cols - 1] + [(sep or " ").join(row[min_cols - 1 :])]
                elif len(row) != ncols:
                    raise InputError(path, f"expected {ncols} columns, got {len(row)}", line_no)
                rows.append(row)
                lines.append(line_no)
    finally:
        bar.close()
    width = min_cols or ncols or (len(names) if names else 0)
    if names is None:
        names = [str(i) for i in range(width)]
    elif min_cols is not None and len(names) != min_cols:
        names = (names + [str(i) for i in range(len(names), min_cols)])[:min_cols]
    frame = pd.DataFrame(rows, columns=names, dtype=object) if rows else pd.DataFrame(columns=names, dtype=object)
    return Table(path, frame, np.asarray(lines, dtype=np.int64))


def to_float(table: Table, column: str, what: str = "a number") -> np.ndarray:
    """Convert one string column to float64, naming the first bad line on failure."""
    raw = table.frame[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.isnan(values) & ~raw.isin(["nan", "NaN"]).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(table.path, f"column '{column}': expected {what}, got {raw.iloc[i]!r}", table.line_of(i))
    return values
