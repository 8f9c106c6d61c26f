"""Readers for the public benchmark layouts in ``KGREC_DATA_DIR``.

Each returns the interaction frame of :mod:`kgrec.data.interactions` plus a
``split`` column (``train`` / ``valid`` / ``test``) carrying the split the
benchmark ships.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kgrec.data.interactions import read_interactions
from kgrec.data.table import read_table
from kgrec.errors import InputError

#: Art-Office: item ids from this value up are Office products.
ART_OFFICE_FIRST_OFFICE_ID = 18639


def _split_files(folder: Path, names: dict[str, str], columns: dict, header: bool, progress: bool) -> pd.DataFrame:
    parts = []
    for split, name in names.items():
        f = folder / name
        if split != "train" and not f.exists():
            continue
        frame = read_interactions(f, sep="\t", header=header, columns=columns, progress=progress)
        frame["split"] = split
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


def read_disencdr(folder: str | Path, progress: bool = False) -> pd.DataFrame:
    """A DisenCDR domain folder ``X_Y/``: ``train.txt`` and ``test.txt`` (``uid iid 1``).

    ``test_original.txt`` is not read: ``test.txt`` is the file the paper
    evaluates on (held-out items that also occur in training).
    """
    folder = Path(folder)
    return _split_files(folder, {"train": "train.txt", "test": "test.txt"},
                        {"user": 0, "item": 1, "rating": 2}, False, progress)


def read_cdrib(folder: str | Path, progress: bool = False) -> pd.DataFrame:
    """A CDRIB domain folder ``X_Y/``: ``train.txt``, ``valid.txt``, ``test.txt`` (``uid iid``)."""
    folder = Path(folder)
    return _split_files(folder, {"train": "train.txt", "valid": "valid.txt", "test": "test.txt"},
                        {"user": 0, "item": 1}, False, progress)


def read_split_dir(folder: str | Path, progress: bool = False) -> pd.DataFrame:
    """A folder with ``train.tsv``, ``valid.tsv``, ``test.tsv`` (header ``user item``), e.g. Last.FM's ``split/``."""
    folder = Path(folder)
    return _split_files(folder, {"train": "train.tsv", "valid": "valid.tsv", "test": "test.tsv"},
                        None, True, progress)


def read_kgat(path: str | Path, progress: bool = False) -> pd.DataFrame:
    """KGAT's adjacency lists: each line ``user item item ...`` (space-separated)."""
    table = read_table(path, sep=None, header=False, min_cols=1, progress=progress)
    users: list[str] = []
    items: list[str] = []
    for text in table.frame.iloc[:, 0]:
        user, *liked = text.split()
        users.extend([user] * len(liked))
        items.extend(liked)
    n = len(users)
    return pd.DataFrame({"user": np.asarray(users, dtype=object), "item": np.asarray(items, dtype=object),
                         "rating": np.full(n, np.nan), "timestamp": np.full(n, np.nan)})


def read_art_office(folder: str | Path, domain: str, progress: bool = False) -> pd.DataFrame:
    """One domain (``art`` or ``office``) of the Amazon Art-Office sequence files.

    ``train_F2.txt`` / ``valid_F2.txt`` / ``test_F2.txt`` hold, per user, two
    time-ordered mixed-domain sequences identical but for the last item: the
    next Art item and the next Office item. Items before the last are the
    user's history (``train``); the last item of the line whose last item is in
    ``domain`` is the held-out interaction of a valid or test user (``train``
    for training users). ``timestamp`` is the position in the sequence.
    """
    if domain not in ("art", "office"):
        raise InputError(folder, f"domain must be 'art' or 'office', got {domain!r}")
    folder = Path(folder)
    in_domain = (lambda i: i < ART_OFFICE_FIRST_OFFICE_ID) if domain == "art" else (lambda i: i >= ART_OFFICE_FIRST_OFFICE_ID)
    users, items, pos, splits = [], [], [], []
    seen: set[tuple[str, int]] = set()
    for split, name in (("train", "train_F2.txt"), ("valid", "valid_F2.txt"), ("test", "test_F2.txt")):
        table = read_table(folder / name, sep="\t", header=False, min_cols=3, progress=progress)
        for uid, seq, line in zip(table.frame["0"], table.frame["2"], table.lines):
            fields = [f for f in seq.split("\t") if f]
            try:
                seq_items = [int(f.split("|", 1)[0]) for f in fields]
            except ValueError:
                raise InputError(folder / name, "expected items as 'item|pos|pos'", int(line)) from None
            *history, last = seq_items
            for p, it in enumerate(history):
                if in_domain(it) and (uid, p) not in seen:
                    seen.add((uid, p))
                    users.append(uid); items.append(str(it)); pos.append(p); splits.append("train")
            if in_domain(last):
                users.append(uid); items.append(str(last)); pos.append(len(history)); splits.append(split)
    n = len(users)
    return pd.DataFrame({"user": np.asarray(users, dtype=object), "item": np.asarray(items, dtype=object),
                         "rating": np.full(n, np.nan), "timestamp": np.asarray(pos, dtype=np.float64),
                         "split": splits})


def read_art_office_items(folder: str | Path, domain: str) -> pd.DataFrame:
    """Art-Office item lists -> ``item, title, attribute`` (item = ``idAfter``)."""
    name = "item_listA_F.csv" if domain == "art" else "item_listO_AA_F.csv"
    table = read_table(Path(folder) / name, sep=",", header=True)
    f = table.frame
    for col in ("item_title", "idAfter", "item_attribute"):
        if col not in f.columns:
            raise InputError(Path(folder) / name, f"missing column '{col}'")
    return pd.DataFrame({"item": f["idAfter"].astype(str).to_numpy(), "title": f["item_title"].to_numpy(),
                         "attribute": f["item_attribute"].to_numpy()})
