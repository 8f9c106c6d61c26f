"""Explanations: the graph paths (length <= 4, or up to 6 when there is none) from a user to a
recommended item, ranked by how much they carry under the trained model.

Paths are found meet-in-the-middle (up to two hops out of the user, up to two
hops into the item, joined on a shared node) over the graph the encoder
propagates on: training interactions, item-entity links and KG triples, in
both directions. A path ``u = v0 -> v1 -> ... -> vL = i`` scores

    contribution = prod_j c(v_j, v_j+1)  x  s(v1, i)

the product of the encoder's edge normalisations ``1/sqrt(d_out d_in)`` (how
much of one end's signal reaches the other along that path in one round of
propagation per hop) times the trained head's score between the user's first
hop ``v1`` and the item (how much the model relates what the user touched to
what it recommends). It is a ranking heuristic read off the trained model, not
an exact decomposition of the score.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from kgrec.graph.artifact import reverse_relation
from kgrec.serve.run import Run


@dataclass
class Explanation:
    """One path: ``nodes`` as ``(type, index)`` pairs, ``relations`` between them, its ``score`` and ``text``."""

    nodes: list[tuple[str, int]]
    relations: list[str]
    score: float
    text: str


def _adjacency(run: Run) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Out-edges by source, CSR: ``indptr``, ``dst``, ``relation id``, ``norm`` (CPU)."""
    if "adj-out" not in run._cache:
        g = run.graph
        src, dst = g.edge_index.cpu()
        order = torch.argsort(src, stable=True)
        counts = torch.bincount(src, minlength=g.num_nodes)
        indptr = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
        run._cache["adj-out"] = (indptr, dst[order], g.edge_type.cpu()[order], g.norm.cpu()[order])
    return run._cache["adj-out"]


def _node(run: Run, flat: int) -> tuple[str, int]:
    for t, off in sorted(run.graph.offsets.items(), key=lambda kv: -kv[1]):
        if flat >= off and run.graph.sizes[t] > flat - off:
            return t, flat - off
    raise IndexError(flat)


def _hops(run: Run, start: int, depth: int, fanout: int, relevance: torch.Tensor) -> dict[int, list[list[tuple]]]:
    """Walks of 1..depth hops out of ``start``: end node -> list of [(from, to, relation, norm), ...];
    at each node only the ``fanout`` neighbours with the highest ``relevance`` are followed."""
    indptr, dst, rel, norm = _adjacency(run)
    frontier = {start: [[]]}
    out: dict[int, list[list[tuple]]] = {}
    for _ in range(depth):
        nxt: dict[int, list[list[tuple]]] = {}
        for v, walks in frontier.items():
            lo, hi = int(indptr[v]), int(indptr[v + 1])
            if hi == lo:
                continue
            nb = dst[lo:hi]
            keep = torch.argsort(relevance[nb], descending=True, stable=True)[:fanout] + lo
            for e in keep.tolist():
                w = int(dst[e])
                for walk in walks:
                    if any(w == step[0] for step in walk) or w == start:
                        continue
                    nxt.setdefault(w, []).append(walk + [(v, w, int(rel[e]), float(norm[e]))])
        for w, walks in nxt.items():
            out.setdefault(w, []).extend(walks)
        frontier = nxt
    return out


def _reverse_walk(walk: list[tuple], graph) -> list[tuple]:
    """A walk found from the item outwards, turned around to run towards the item."""
    rels = graph.relations
    index = {r: k for k, r in enumerate(rels)}
    back = []
    for v, w, r, c in reversed(walk):
        s, name, d = rels[r]
        back.append((w, v, index.get((d, reverse_relation(name), s), r), c))
    return back


def explain(run: Run, user: str, item: str, max_paths: int = 3, max_length: int = 4,
            fanout: int = 30) -> list[Explanation]:
    """The top ``max_paths`` paths of at most ``max_length`` (<= 4) edges from ``user`` to ``item``;
    when there is none, of up to 6 edges (a new item reaches a user's items only through its KG
    entity: user -> item -> entity -> entity <- new item's entity <- new item).

    Raises:
        KgrecError: unknown user or item id.
    """
    max_length = min(max_length, 4)
    g = run.graph
    u = g.offsets["user"] + run.user_index(user)
    i = g.offsets["item"] + run.item_index(item)
    h = run.embeddings().cpu()
    head = run.model.heads["target"]
    with torch.no_grad():
        relevance = head.score(h, h[i].expand_as(h)).float()
    ranked = _search(run, u, i, relevance, max_length, min(2, max_length), min(2, max_length - 1), fanout)
    if not ranked and max_length == 4:
        ranked = _search(run, u, i, relevance, 6, 3, 3, fanout)
    return [_explanation(run, walk, score) for walk, score in ranked[:max_paths]]


def _search(run: Run, u: int, i: int, relevance: torch.Tensor, max_length: int, out_depth: int, in_depth: int,
            fanout: int) -> list[tuple[list[tuple], float]]:
    """Paths ``u`` -> ``i`` of at most ``max_length`` edges, met in the middle, best first."""
    g = run.graph
    forward = _hops(run, u, out_depth, fanout, relevance)
    backward = _hops(run, i, in_depth, fanout, relevance)
    candidates: dict[tuple, tuple[list[tuple], float]] = {}

    def add(walk: list[tuple]) -> None:
        nodes = [walk[0][0]] + [step[1] for step in walk]
        if len(walk) > max_length or len(set(nodes)) != len(nodes) or nodes[-1] != i:
            return
        weight = 1.0
        for step in walk:
            weight *= step[3]
        score = weight * float(relevance[walk[0][1]])
        key = tuple((s[0], s[1], s[2]) for s in walk)
        if key not in candidates or candidates[key][1] < score:
            candidates[key] = (walk, score)

    for walk in forward.get(i, []):
        add(walk)
    for mid, back_walks in backward.items():
        for walk in forward.get(mid, []):
            for back in back_walks:
                add(walk + _reverse_walk(back, g))
    return sorted(candidates.values(), key=lambda ws: -ws[1])


def _explanation(run: Run, walk: list[tuple], score: float) -> Explanation:
    nodes = [_node(run, walk[0][0])] + [_node(run, s[1]) for s in walk]
    rels = [run.graph.relations[s[2]][1] for s in walk]
    return Explanation(nodes, rels, score, describe(run, nodes, rels))


def _relation_text(run: Run, name: str) -> tuple[str, bool]:
    """Readable relation name and whether the edge runs against it (a ``rev_`` relation)."""
    reverse = name.startswith("rev_")
    base = name[4:] if reverse else name
    if base.startswith("interacts_"):
        return "liked", reverse
    table = run.artifact.relations
    row = table[table["name"] == base]
    text = str(row["original"].iloc[0]) if len(row) else base
    text = text.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1]
    return text.replace("_", " "), reverse


def describe(run: Run, nodes: list[tuple[str, int]], rels: list[str]) -> str:
    """One line, e.g. ``you liked 'Heat' (movies) -director-> Michael Mann <-director- 'Collateral' (books)``."""
    def name(t: str, k: int) -> str:
        if t == "user":
            return f"user {run.artifact.nodes['user']['id'].iloc[k]}"
        label = run.label(t, k)
        if t == "item":
            role = "target" if int(run.artifact.data["item"].domain[k]) == 1 else "source"
            return f"'{label}' ({run.domain_name(role)})"
        return label

    parts = ["you" if nodes[0][0] == "user" else name(*nodes[0])]
    for (t, k), rel in zip(nodes[1:], rels):
        text, reverse = _relation_text(run, rel)
        parts.append(f"<-{text}-" if reverse else f"-{text}->")
        parts.append(name(t, k))
    return " ".join(parts)
