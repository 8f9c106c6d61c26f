"""Splits are deterministic under a seed and respect their method."""
from __future__ import annotations

import numpy as np
import pandas as pd

from kgrec.graph.spec import SplitSpec
from kgrec.graph.split import cold_start_users, split_frame


def frame(n_users=20, per_user=10, seed=0):
    rng = np.random.default_rng(seed)
    rows = [(f"u{u}", f"i{rng.integers(1000)}", 1.0, float(t)) for u in range(n_users) for t in range(per_user)]
    return pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])


def test_same_seed_same_split_other_seed_other_split():
    f = frame()
    spec = SplitSpec(method="ratio")
    assert (split_frame(f, spec, 1) == split_frame(f, spec, 1)).all()
    assert (split_frame(f, spec, 1) != split_frame(f, spec, 2)).any()


def test_ratio_split_sizes_per_user():
    f = frame()
    labels = split_frame(f, SplitSpec(method="ratio", ratios=(0.8, 0.1, 0.1)), 0)
    counts = pd.crosstab(f["user"], labels)
    assert (counts["train"] == 8).all() and (counts["valid"] == 1).all() and (counts["test"] == 1).all()


def test_loo_holds_out_the_latest_interactions():
    f = frame()
    labels = split_frame(f, SplitSpec(method="loo"), 0)
    assert (f["timestamp"][labels == "test"] == 9).all()
    assert (f["timestamp"][labels == "valid"] == 8).all()


def test_temporal_split_never_trains_on_the_future():
    f = frame()
    labels = split_frame(f, SplitSpec(method="temporal", ratios=(0.6, 0.2, 0.2)), 0)
    for _, g in f.assign(s=labels).groupby("user"):
        assert g.loc[g.s == "train", "timestamp"].max() < g.loc[g.s == "valid", "timestamp"].min()
        assert g.loc[g.s == "valid", "timestamp"].max() < g.loc[g.s == "test", "timestamp"].min()


def test_users_with_fewer_than_three_interactions_stay_in_train():
    f = frame(n_users=5, per_user=2)
    assert (split_frame(f, SplitSpec(method="loo"), 0) == "train").all()


def test_cold_start_picks_the_requested_share():
    users = np.array([f"u{i}" for i in range(100)], dtype=object)
    valid, test = cold_start_users(users, 0.2, 0.5, seed=3)
    assert len(valid) == 10 and len(test) == 10 and not valid & test
    assert (valid, test) == cold_start_users(users, 0.2, 0.5, seed=3)
