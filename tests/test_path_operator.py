"""The path scores' item-item operator: the same walk as the dense ``[N, batch]`` propagation it
replaced, the same rankings, and scoring that stays within ``eval.memory_mb`` however many nodes."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.data import HeteroData

from kgrec.eval.metrics import top_k
from kgrec.eval.ranking import RankingTask, rank
from kgrec.models import RelationalGraph
from kgrec.models.paths import PathScorer, item_walks_from_state, item_walks_state

ROOT = Path(__file__).resolve().parents[1]


def random_graph(seed: int, users: int = 40, source: int = 25, target: int = 20, entities: int = 8) -> HeteroData:
    """Two domains of interactions, items linked to KG entities, entities linked to each other and
    users following entities: walks that leave the items and come back through other node types."""
    gen = torch.Generator().manual_seed(seed)
    data = HeteroData()
    data["user"].num_nodes, data["item"].num_nodes, data["entity"].num_nodes = users, source + target, entities

    def pairs(n: int, rows: int, cols: int, offset: int = 0) -> torch.Tensor:
        ei = torch.stack([torch.randint(rows, (n,), generator=gen), torch.randint(cols, (n,), generator=gen) + offset])
        return torch.unique(ei, dim=1)

    for rel, ei in (("interacts_source", pairs(4 * users, users, source)),
                    ("interacts_target", pairs(3 * users, users, target, source))):
        data["user", rel, "item"].edge_index = ei
        data["item", f"rev_{rel}", "user"].edge_index = ei.flip(0)
    for (s, rel, d), ei in ((("item", "linked_to", "entity"), pairs(source + target, source + target, entities)),
                            (("entity", "related", "entity"), pairs(entities, entities, entities)),
                            (("user", "follows", "entity"), pairs(users // 4, users, entities))):
        data[s, rel, d].edge_index = ei
        data[d, f"rev_{rel}", s].edge_index = ei.flip(0)
    return data


def dense_walks(graph: RelationalGraph, alpha: float, beta: float | None, hops: int) -> np.ndarray:
    """The walk before the operator, as a dense matrix power: ``W[v, u]`` per edge ``u -> v`` (the
    default walk's ``deg(u)^-alpha deg(v)^(alpha-1)``, RP3beta's ``deg(u)^-alpha``), ``W^hops``, and
    RP3beta's ``deg^-beta`` of the node reached."""
    deg = np.maximum(np.bincount(graph.edge_index[0].numpy(), minlength=graph.num_nodes), 1).astype(float)
    w = np.zeros((graph.num_nodes, graph.num_nodes))
    for s, d in graph.edge_index.T.tolist():
        w[d, s] += deg[s] ** -alpha * (deg[d] ** (alpha - 1) if beta is None else 1.0)
    walks = np.linalg.matrix_power(w, hops)
    return walks if beta is None else np.diag(deg ** -beta) @ walks


WALKS = [(1, 0.5, None), (3, 0.75, None), (3, 1.0, 0.25), (5, 0.5, None), (5, 0.25, 0.5)]


@pytest.mark.parametrize("hops,alpha,beta", WALKS)
def test_the_item_item_operator_scores_and_ranks_exactly_the_walk_it_replaced(hops, alpha, beta):
    graph = RelationalGraph.from_hetero(random_graph(hops))
    users, items = torch.arange(graph.sizes["user"]), torch.arange(25, 45)
    scorer = PathScorer(graph, hops, alpha, beta, memory_mb=1)
    got = scorer.scores(users, items)
    ref = dense_walks(graph, alpha, beta, hops)
    want = ref[np.ix_(items.numpy() + graph.offsets["item"], users.numpy() + graph.offsets["user"])].T
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-8)
    assert (want > 0).mean() > 0.1  # walks reach many items: the comparison is not between zeros
    # the same rankings, batched one user at a time or all at once; the reference rounded as the scorer does
    reference = torch.tensor(want, dtype=torch.float32)
    task = RankingTask(users, items, (torch.zeros(len(users) + 1, dtype=torch.long), torch.empty(0, dtype=torch.long)),
                       (torch.zeros(len(users) + 1, dtype=torch.long), torch.empty(0, dtype=torch.long)))
    for memory_mb in (1, 256):
        top = rank(lambda u: scorer.scores(u, items), task, 10, memory_mb, user_bytes=scorer.batch_bytes(items))
        assert torch.equal(top, top_k(reference, 10))


def test_building_the_operator_in_chunks_gives_the_one_built_at_once(monkeypatch):
    from kgrec.models import paths

    graph = RelationalGraph.from_hetero(random_graph(7, users=60, source=40, target=30, entities=10))
    items = torch.arange(40, 70)
    whole = PathScorer(graph, 3, 0.75, memory_mb=4096).item_walks(items).op
    chunks = []
    split = paths._chunks
    monkeypatch.setattr(paths, "_chunks", lambda sizes, budget: chunks.append(split(sizes, budget)) or chunks[-1])
    monkeypatch.setattr(paths, "BYTES_PER_ENTRY", 2**20 // 200)  # 1 MB holds 200 entries: many chunks
    chunked = PathScorer(graph, 3, 0.75, memory_mb=1).item_walks(items).op
    assert len(chunks[-1]) > 5
    assert torch.equal(chunked.indices(), whole.indices())
    torch.testing.assert_close(chunked.values(), whole.values())


def test_a_saved_operator_is_used_as_saved_and_another_walks_is_refused():
    graph = RelationalGraph.from_hetero(random_graph(3))
    users, items = torch.arange(10), torch.arange(25, 45)
    scorer = PathScorer(graph, 3, 0.75)
    state = item_walks_state(scorer, items, "merged")
    state["values"] = state["values"] * 2  # told apart from a recomputed one
    fresh = PathScorer(graph, 3, 0.75)
    fresh.attach(item_walks_from_state(state, fresh, "merged"))
    torch.testing.assert_close(fresh.scores(users, items), 2 * scorer.scores(users, items))
    with pytest.raises(ValueError, match="walk"):
        item_walks_from_state(state, PathScorer(graph, 3, 0.5), "merged")
    with pytest.raises(ValueError, match="walk"):
        item_walks_from_state(state, scorer, "target")
    other = RelationalGraph.from_hetero(random_graph(4))
    with pytest.raises(ValueError, match="first-step nodes"):
        item_walks_from_state(state, PathScorer(other, 3, 0.75), "merged")


# Scoring in a process of its own, on a graph whose nodes are mostly users (as at catalogue scale):
# before the operator, one batch held a dense [N, B] of first steps, 25x what memory_mb allows here.
MEASURE = textwrap.dedent("""
    import ctypes, json, sys
    import torch
    sys.path.insert(0, sys.argv[1])
    sys.path.insert(0, sys.argv[2])
    from test_path_operator import random_graph
    from kgrec.eval.ranking import RankingTask, rank
    from kgrec.models import RelationalGraph
    from kgrec.models.paths import PathScorer

    torch.set_num_threads(1)
    memory_mb, users = int(sys.argv[3]), 30_000
    graph = RelationalGraph.from_hetero(random_graph(0, users=users, source=600, target=400, entities=50))
    items = torch.arange(600, 1000)
    scorer = PathScorer(graph, 3, 0.75, memory_mb=memory_mb)
    libc = ctypes.CDLL("libc.so.6")

    def rss_mb(field):
        for line in open("/proc/self/status"):
            if line.startswith(field):
                return int(line.split()[1]) / 1024

    def since_reset(fn):
        libc.malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # the peak (VmHWM) starts again from the current size
        before = rss_mb("VmRSS")
        fn()
        return rss_mb("VmHWM") - before

    build = since_reset(lambda: scorer.item_walks(items))
    nbytes = scorer.item_walks(items).nbytes / 2**20
    ranked = torch.arange(0, users, 20)  # every 20th user: the batches, not the count, set the peak
    empty = (torch.zeros(len(ranked) + 1, dtype=torch.long), torch.empty(0, dtype=torch.long))
    task = RankingTask(ranked, items, empty, empty)
    score = since_reset(lambda: rank(lambda u: scorer.scores(u, items), task, 20, memory_mb,
                                     user_bytes=scorer.batch_bytes(items)))
    print(json.dumps({"nodes": graph.num_nodes, "edges_mb": graph.edge_index.nbytes / 2**20, "build_mb": build,
                      "operator_mb": nbytes, "score_mb": score}))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the peak from /proc/self/status")
def test_scoring_stays_within_memory_mb_plus_the_operator_whatever_the_number_of_users():
    memory_mb = 16
    out = subprocess.run([sys.executable, "-c", MEASURE, str(ROOT), str(ROOT / "tests"), str(memory_mb)],
                         capture_output=True, text=True, check=True, timeout=600)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    slack = 8  # the interpreter's and torch's own small allocations along the way
    # building: the chunks within memory_mb, the operator twice while its chunks are joined, and
    # temporaries the size of the graph's edge list (a bound per node, the last step's matrix)
    assert got["build_mb"] <= memory_mb + 2 * got["operator_mb"] + got["edges_mb"] + slack, got
    assert got["score_mb"] <= memory_mb + slack, got
    dense_first_steps = got["nodes"] * (memory_mb * 2**20 // (4 * 400 * 3)) * 4 / 2**20  # what one batch held before
    assert dense_first_steps > 20 * memory_mb
