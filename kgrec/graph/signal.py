"""Does the knowledge graph say anything about what users consume? Measured per relation,
from the graph artifact alone, before any model is trained.

Items ``i`` and ``j`` *share a neighbour* ``e`` through relation ``r`` when both reach ``e`` by
``r``: directly (``item -has_brand-> brand``) or from the entity the item is linked to
(``item -linked_to-> entity -r-> e``; ``rev_r`` reaches the heads that point at the item's
entity). Over one domain's training interactions, with ``n_ue`` the items of group ``e`` that
user ``u`` has, ``pop_i`` item ``i``'s users and ``U`` the users with a training interaction:

    observed_e = sum_u n_ue (n_ue - 1)
    expected_e = ((sum_{i in e} pop_i)^2 - sum_{i in e} pop_i^2) / U
    lift_r     = sum_e w_e observed_e / sum_e w_e expected_e,    w_e = 1 / (|e| - 1)

``observed_e`` counts the (ordered) pairs of the group's items that one user has both of;
``expected_e`` is that count if users picked items by popularity alone, regardless of ``e``.
``w_e`` weighs each item equally in every group it joins, so that one neighbour shared by
thousands of items (a country) does not drown the rest. A lift of 1 means the relation tells
nothing popularity does not; the ``shuffled`` column is the lift with each item's neighbours
dealt to a random item of the domain instead (same group sizes; mean over ``shuffles`` deals):
what chance gives on this data, since heavy users alone move the lift from 1 (to about 2 on
MovieLens-100K); ``p`` is the share of deals reaching the observed lift, ``(hits + 1) /
(shuffles + 1)``, so 20 deals cannot show p below 0.048. ``held_out``: the share of held-out
(user, item) pairs whose item shares a neighbour with one of the user's training items, what
the relation could point users to, against the same share over the deals.

A high lift says the relation agrees with what users do; it does not say a model will gain from
it, since the interactions may already say the same (docs/findings.md, Last.FM, measures both).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from kgrec.errors import KgrecError
from kgrec.graph.artifact import TARGET, GraphArtifact

ANY = "(any relation)"
COLUMNS = ["relation", "items", "groups", "pairs", "lift", "shuffled", "p", "held_out", "held_out_shuffled"]


def _measure(inter: sp.csr_matrix, pop: np.ndarray, n_users: int, reach: sp.csr_matrix,
             held: np.ndarray | None) -> tuple[float, float]:
    """``(lift, held-out share)`` of one ``[items, neighbours]`` reach matrix over ``inter``
    ``[users, items]``; ``held`` ``[2, H]`` (user, item) pairs, or None."""
    size = np.asarray(reach.sum(0)).ravel()
    shared = size >= 2
    counts = inter @ reach                                # n_ue
    share = float("nan")
    if held is not None and held.shape[1]:
        share = float((np.asarray(counts[held[0]].multiply(reach[held[1]]).sum(1)).ravel() > 0).mean())
    if not shared.any() or n_users == 0:
        return float("nan"), share
    counts = counts.tocsc()
    sq = np.asarray(counts.multiply(counts).sum(0)).ravel()
    total = np.asarray(counts.sum(0)).ravel()             # sum_{i in e} pop_i
    observed = sq - total
    expected = (total ** 2 - reach.T @ (pop ** 2)) / n_users
    w = np.where(shared, 1.0 / np.maximum(size - 1, 1), 0.0)
    denominator = float(w @ expected)
    return (float(w @ observed) / denominator if denominator > 0 else float("nan")), share


def relation_lift(pairs: np.ndarray, n_users: int, reach: dict[str, sp.csr_matrix], shuffles: int = 20,
                  seed: int = 0, held_out: np.ndarray | None = None) -> pd.DataFrame:
    """Lift of each relation (module docstring): ``pairs`` ``[2, E]`` (user, item) training pairs,
    item indices ``0..M-1``; ``reach[name]`` the ``[M, neighbours]`` 0/1 matrix of which neighbours
    each item reaches by that relation. One row per relation, in ``reach``'s order: ``items``
    (items reaching a neighbour), ``groups`` (neighbours reached by two items or more), ``pairs``
    (item pairs in one group, summed over groups), ``lift``, ``shuffled``, ``p``; with ``held_out``
    ``[2, H]`` (user, item) pairs, ``held_out``: the share of them whose item shares a neighbour
    with one of the user's ``pairs`` items (what the relation could point a user to), and
    ``held_out_shuffled``, the same over the deals."""
    if not reach:
        return pd.DataFrame(columns=COLUMNS)
    m = next(iter(reach.values())).shape[0]
    inter = sp.csr_matrix((np.ones(pairs.shape[1]), (pairs[0], pairs[1])), shape=(n_users, m))
    inter.data[:] = 1.0                                   # repeated pairs count once
    active = int((np.diff(inter.indptr) > 0).sum())
    pop = np.asarray(inter.sum(0)).ravel()
    rng = np.random.default_rng(seed)
    rows = []
    for name, r in reach.items():
        r = sp.csr_matrix(r, dtype=np.float64)
        r.data[:] = 1.0
        size = np.asarray(r.sum(0)).ravel()
        lift, share = _measure(inter, pop, active, r, held_out)
        dealt = [_measure(inter, pop, active, r[rng.permutation(m)], held_out) for _ in range(shuffles)]
        ok = [d for d, _ in dealt if not np.isnan(d)]
        rows.append({
            "relation": name,
            "items": int((np.diff(r.indptr) > 0).sum()),
            "groups": int((size >= 2).sum()),
            "pairs": int((size * (size - 1) / 2).sum()),
            "lift": lift,
            "shuffled": float(np.mean(ok)) if ok else float("nan"),
            "p": (sum(d >= lift for d in ok) + 1) / (len(ok) + 1) if ok and not np.isnan(lift) else float("nan"),
            "held_out": share,
            "held_out_shuffled": float(np.mean([h for _, h in dealt])) if dealt else float("nan"),
        })
    return pd.DataFrame(rows, columns=COLUMNS)


def _coo(edge_index, rows: int, cols: int) -> sp.csr_matrix:
    ei = edge_index.numpy()
    out = sp.csr_matrix((np.ones(ei.shape[1]), (ei[0], ei[1])), shape=(rows, cols))
    out.data[:] = 1.0
    return out


def item_reach(graph: GraphArtifact, domain: str = TARGET) -> dict[str, sp.csr_matrix]:
    """``{relation: [domain items, neighbours]}``: what each item of ``domain`` reaches by each
    relation of the graph, directly from the item or from its linked entity (module docstring).
    Rows follow ``graph.items_of(domain)``."""
    data = graph.data
    items = graph.items_of(domain).numpy()
    n_items = int(data["item"].num_nodes)
    reach: dict[str, sp.csr_matrix] = {}
    linked = None
    for src, rel, dst in data.edge_types:
        if src != "item" or dst == "user":
            continue
        r = _coo(data[src, rel, dst].edge_index, n_items, int(data[dst].num_nodes))
        reach[rel] = r[items]
        if rel == "linked_to" and dst == "entity":
            linked = r
    if linked is not None:
        n_ent = int(data["entity"].num_nodes)
        for src, rel, dst in data.edge_types:
            if src == "entity" and dst == "entity":
                step = linked @ _coo(data[src, rel, dst].edge_index, n_ent, n_ent)
                step.data[:] = 1.0
                reach[rel] = step[items]
    return reach


def kg_signal(graph: GraphArtifact, domain: str = TARGET, shuffles: int = 20, seed: int = 0,
              held_out: str = "valid") -> pd.DataFrame:
    """:func:`relation_lift` of every relation of ``graph`` over ``domain``'s training
    interactions, with the ``held_out`` split's pairs for the held-out share (``""`` for none),
    plus a first row for every relation's groups taken together (``(any relation)``). Rows with no
    group of two items are kept (``groups`` 0, ``lift`` NaN)."""
    domains = graph.manifest.get("domains", {})
    if domain not in domains:
        raise KgrecError(f"the graph has no {domain} domain; it has {', '.join(domains)}")
    if held_out not in ("", "valid", "test"):
        raise KgrecError(f"held-out split {held_out!r}: expected valid, test or '' (none)")
    items = graph.items_of(domain).numpy()
    pos = np.full(int(graph.data["item"].num_nodes), -1)
    pos[items] = np.arange(len(items))

    def pairs_of(split: str) -> np.ndarray:
        p = graph.split(split, domain).numpy()
        return np.stack([p[0], pos[p[1]]])

    reach = item_reach(graph, domain)
    if reach:                                             # none without a KG or attributes: an empty table
        reach = {ANY: sp.hstack(list(reach.values()), format="csr"), **reach}
    return relation_lift(pairs_of("train"), int(graph.data["user"].num_nodes), reach, shuffles, seed,
                         pairs_of(held_out) if held_out else None)


def format_signal(table: pd.DataFrame) -> str:
    """The table as text: relations with a shared neighbour by decreasing ``pairs``, then how many have none."""
    if table.empty:
        return "no relation leaves the domain's items: the graph links them to no entity"
    some = table[table["groups"] > 0]
    some = pd.concat([some[some["relation"] == ANY], some[some["relation"] != ANY].sort_values("pairs", ascending=False)])
    width = max([len("relation")] + [len(r) for r in some["relation"]])
    lines = [f"{'relation':<{width}}  {'items':>7}  {'groups':>7}  {'pairs':>10}  {'lift':>6}  {'shuffled':>8}  {'p':>6}"
             f"  {'held-out':>8}  {'shuffled':>8}"]
    def share(x: float) -> str:
        return f"{'-':>8}" if np.isnan(x) else f"{x:>8.1%}"

    for row in some.itertuples():
        lines.append(f"{row.relation:<{width}}  {row.items:>7,}  {row.groups:>7,}  {row.pairs:>10,}  {row.lift:>6.2f}  "
                     f"{row.shuffled:>8.2f}  {row.p:>6.3f}  {share(row.held_out)}  {share(row.held_out_shuffled)}")
    none = int((table["groups"] == 0).sum())
    if none:
        lines.append(f"({none} relation{'s' if none > 1 else ''} link no two items of the domain)")
    return "\n".join(lines)
