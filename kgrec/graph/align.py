"""Item alignment across domains: the same product listed in both catalogues.

Two listings ``s`` (source) and ``t`` (target) are one product when the spec says so
(``[align] items``):

* ``"id"``: equal item ids;
* ``"mapping"``: a two-column file, source item then target item;
* ``"linked"``: both are linked (``linked_to``) to the same KG entity (equal IRIs, or IRIs joined
  by ``owl:sameAs``);
* ``"interactions"``: for anonymised benchmarks, identical sets of at least ``item_min_users``
  users over all the interactions the build reads (both domains, every split):

  .. math:: U(s) = U(t), \\qquad |U(s)| \\ge k.

A held-out target pair ``(u, t)`` whose ``t`` is aligned with a source item ``s`` that ``u``
has in *source training* repeats a review the graph already holds as the edge ``(u, s)``:
it is marked ``duplicate`` and leaves valid/test, and ranking filters ``t`` for ``u`` like an
item already seen. Aligned listings stay two item nodes, one per domain, joined by an
``(item, same_as, item)`` edge, so that every item keeps one domain (its catalogue, its
candidates, its metrics) and the product is still recommendable in the target under its
target id.

Why all interactions for ``"interactions"`` and not training alone: the held-out review is
exactly what makes the two training sets differ. On Amazon cloth -> sport (DisenCDR),
identical *training* sets of >= 2 users find 1,062 listings and catch 0 of the 1,529 held-out
pairs that repeat a source training review; Jaccard >= 0.5 on training catches 1,244 and
leaves 288 (3.5 % of test). Identity of the sets over all interactions is a property of the
catalogue (a platform knows its whole history); it only *labels* pairs and adds ``same_as``
edges, never a held-out edge. Chance level: with the source users randomly permuted, identical
sets of >= 2 users all but vanish (:func:`identical_user_sets` with ``permute_seed``; measured
in ``docs``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from kgrec.graph.artifact import SOURCE, TARGET, GraphArtifact


def identical_user_sets(source: pd.DataFrame, target: pd.DataFrame, min_users: int = 2,
                        permute_seed: int | None = None) -> pd.DataFrame:
    """``(source, target)`` item pairs whose sets of users are identical and hold ``min_users`` or more.

    ``source`` and ``target`` have columns ``user`` (ids comparable across the two: the same person,
    the same id) and ``item``. ``permute_seed``: first relabel the source users by a random
    permutation (the chance level of the statistic). Returns columns ``source``, ``target``.
    """
    src = source[["user", "item"]].drop_duplicates()
    tgt = target[["user", "item"]].drop_duplicates()
    codes, _ = pd.factorize(pd.concat([src["user"], tgt["user"]], ignore_index=True))
    su, tu = codes[:len(src)], codes[len(src):]
    if permute_seed is not None:
        su = np.random.default_rng(permute_seed).permutation(int(codes.max()) + 1 if len(codes) else 0)[su]
    keys = [_set_keys(su, src["item"].to_numpy(), min_users), _set_keys(tu, tgt["item"].to_numpy(), min_users)]
    pairs = keys[0].merge(keys[1], on="key", suffixes=("_s", "_t"))
    return pd.DataFrame({"source": pairs["item_s"].to_numpy(), "target": pairs["item_t"].to_numpy()})


def _set_keys(users: np.ndarray, items: np.ndarray, min_users: int) -> pd.DataFrame:
    """One row per item with at least ``min_users`` users: the item and a key of its sorted user set."""
    f = pd.DataFrame({"user": users, "item": items}).sort_values(["item", "user"], kind="stable")
    sizes = f.groupby("item", sort=False)["user"].transform("size")
    f = f[sizes >= max(min_users, 1)]
    if f.empty:
        return pd.DataFrame({"item": pd.Series(dtype=object), "key": pd.Series(dtype=object)})
    keys = f.groupby("item", sort=False)["user"].agg(lambda u: u.to_numpy().tobytes())
    return pd.DataFrame({"item": keys.index.to_numpy(), "key": keys.to_numpy()})


def duplicate_held_out(target: pd.DataFrame, source_train: pd.DataFrame, pairs: pd.DataFrame) -> np.ndarray:
    """``[len(target)]`` bool: held-out target rows ``(u, t)`` (``split`` valid or test) whose ``t`` is
    aligned (``pairs``: ``source``, ``target``) with a source item that ``u`` has in ``source_train``.
    Columns: ``user``, ``item`` (and ``split`` for ``target``)."""
    if pairs.empty or target.empty:
        return np.zeros(len(target), dtype=bool)
    held = target["split"].isin(("valid", "test")).to_numpy()
    cand = pd.DataFrame({"row": np.flatnonzero(held), "user": target["user"].to_numpy()[held],
                         "target": target["item"].to_numpy()[held]})
    cand = cand.merge(pairs, on="target")
    seen = source_train[["user", "item"]].drop_duplicates().rename(columns={"item": "source"})
    hit = cand.merge(seen, on=["user", "source"])
    out = np.zeros(len(target), dtype=bool)
    out[hit["row"].to_numpy(dtype=np.int64)] = True
    return out


def duplicate_audit(g: GraphArtifact, min_users: int = 2) -> dict:
    """How many target held-out pairs repeat a source training interaction of the same user under
    another listing, by identical user sets (>= ``min_users``) over *all* the artifact's
    interactions, whatever alignment the spec used: the figure to check a build against.

    Returns ``{"listings": pairs of identical sets, "test": {"pairs", "duplicates", "users"},
    "valid": {...}}`` counted over the held-out pairs still in each split.
    """
    inter = g.interactions
    if SOURCE not in set(inter["domain"]):
        return {"listings": 0, "min_users": min_users}
    src, tgt = inter[inter["domain"] == SOURCE], inter[inter["domain"] == TARGET]
    pairs = identical_user_sets(src, tgt, min_users)
    source_train = src[src["split"] == "train"]
    out: dict = {"listings": int(len(pairs)), "min_users": min_users}
    live = tgt[~tgt["duplicate"]]
    dup = duplicate_held_out(live, source_train, pairs)
    for split in ("valid", "test"):
        m = (live["split"] == split).to_numpy()
        out[split] = {"pairs": int(m.sum()), "duplicates": int((dup & m).sum()),
                      "users": int(live.loc[dup & m, "user"].nunique())}
    return out
