"""Deterministic train / valid / test splits and the cold-start protocol.

All functions take an explicit seed and return a new ``split`` label per row;
the same frame and seed always give the same labels.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from kgrec.errors import SpecError
from kgrec.graph.spec import SplitSpec

SPLITS = ("train", "valid", "test")


def _order_within_user(frame: pd.DataFrame, rng: np.random.Generator, by_time: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row order grouped by user (random, or by timestamp with random tie-breaks),
    the rank of each row inside its user, and each row's user size."""
    noise = rng.random(len(frame))
    user_codes = pd.factorize(frame["user"], sort=False)[0]
    # np.lexsort sorts by the last key first: user, then time, then random tie-break.
    keys = (noise, frame["timestamp"].to_numpy(), user_codes) if by_time else (noise, user_codes)
    order = np.lexsort(keys)
    ranked_users = user_codes[order]
    rank = np.empty(len(frame), dtype=np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(ranked_users)) + 1]
    sizes_sorted = np.diff(np.r_[starts, len(frame)])
    rank_sorted = np.arange(len(frame)) - np.repeat(starts, sizes_sorted)
    rank[order] = rank_sorted
    size = np.empty(len(frame), dtype=np.int64)
    size[order] = np.repeat(sizes_sorted, sizes_sorted)
    return order, rank, size


def split_frame(frame: pd.DataFrame, spec: SplitSpec, seed: int, where: str = "split",
                spec_path: str = "<spec>") -> np.ndarray:
    """Label each interaction ``train``, ``valid`` or ``test``.

    Methods: ``none`` (all train); ``given`` (the file's own ``split`` column,
    optionally carving valid out of train); ``ratio`` (random per user);
    ``loo`` (one valid and one test item per user, the latest when timestamps
    exist); ``temporal`` (per user by time, in ``ratios``). Users with fewer
    than 3 interactions keep all of them in train for ``ratio``/``loo``/``temporal``.

    Raises:
        SpecError: ``given`` without a shipped split, ``temporal`` without timestamps.
    """
    n = len(frame)
    labels = np.full(n, "train", dtype=object)
    if n == 0 or spec.method == "none":
        return labels
    rng = np.random.default_rng(seed)
    has_time = bool(frame["timestamp"].notna().all())
    if spec.method == "given":
        if "split" not in frame:
            raise SpecError(spec_path, f"{where}.split.method", "'given' needs a format that ships its split (disencdr, cdrib, split_dir, art_office)")
        labels = frame["split"].to_numpy(dtype=object).copy()
        if spec.valid_from_train != "none" and not (labels == "valid").any():
            train = np.flatnonzero(labels == "train")
            sub = frame.iloc[train]
            _, rank, size = _order_within_user(sub, rng, has_time)
            if spec.valid_from_train == "loo":
                move = (rank == size - 1) & (size > spec.min_train)
            else:
                n_valid = np.floor(size * spec.valid_ratio).astype(np.int64)
                move = (rank >= size - n_valid) & (size - n_valid >= spec.min_train)
            labels[train[move]] = "valid"
        return labels
    if spec.method == "temporal" and not has_time:
        raise SpecError(spec_path, f"{where}.split.method", "'temporal' needs a timestamp for every interaction")
    _, rank, size = _order_within_user(frame, rng, spec.method in ("temporal", "loo") and has_time)
    eligible = size >= 3
    if spec.method == "loo":
        labels[eligible & (rank == size - 1)] = "test"
        labels[eligible & (rank == size - 2)] = "valid"
        return labels
    r_train, r_valid, _ = spec.ratios
    n_train = np.maximum(np.round(size * r_train).astype(np.int64), spec.min_train)
    n_valid = np.round(size * r_valid).astype(np.int64)
    labels[eligible & (rank >= n_train) & (rank < n_train + n_valid)] = "valid"
    labels[eligible & (rank >= n_train + n_valid)] = "test"
    return labels


def cold_start_users(overlap: np.ndarray, share: float, valid_share: float, seed: int) -> tuple[set, set]:
    """Pick ``share`` of the overlapping users as cold-start, split into valid and test users.

    All target interactions of these users leave training; only their source
    history remains. ``overlap`` should be in a deterministic order.
    """
    if share <= 0 or len(overlap) == 0:
        return set(), set()
    rng = np.random.default_rng(seed + 7919)
    n = int(round(len(overlap) * share))
    chosen = rng.permutation(len(overlap))[:n]
    n_valid = int(round(n * valid_share))
    picked = [overlap[i] for i in chosen]
    return set(picked[:n_valid]), set(picked[n_valid:])


def cold_start_items(items: np.ndarray, share: float, ids: tuple[str, ...], valid_share: float,
                     seed: int) -> tuple[set, set]:
    """The target items held out entirely (new items), split into valid and test items.

    ``items``: the target's item ids (strings) in a deterministic order; ``share`` of them are
    picked at random, or exactly ``ids`` when given. Every interaction of a valid item goes to
    valid, of a test item to test: no cold item is a training interaction, and no test item
    is seen even by model selection. Unknown ``ids`` are the caller's to report.
    """
    if not ids and (share <= 0 or len(items) == 0):
        return set(), set()
    rng = np.random.default_rng(seed + 104729)
    if ids:
        picked = [ids[i] for i in rng.permutation(len(ids))]
    else:
        n = max(1, int(round(len(items) * share)))
        picked = [items[i] for i in rng.permutation(len(items))[:n]]
    n_valid = int(round(len(picked) * valid_share))
    return set(picked[:n_valid]), set(picked[n_valid:])
