"""`kgrec kg-signal`: the lift of each relation equals its definition, finds a planted signal,
reads chance as chance, and runs on a built graph from the CLI."""
from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from kgrec.cli import main
from kgrec.errors import KgrecError
from kgrec.graph.signal import ANY, COLUMNS, item_reach, kg_signal, relation_lift


def reach_of(groups: list[list[int]], n_items: int) -> sp.csr_matrix:
    rows = [i for g in groups for i in g]
    cols = [e for e, g in enumerate(groups) for _ in g]
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_items, len(groups)))


def lift_by_definition(pairs: np.ndarray, groups: list[list[int]], n_items: int) -> float:
    """Every ordered pair (i, j), i != j, of every group with two items or more: users having
    both, against pop_i pop_j / U, each group weighted 1 / (|e| - 1)."""
    have = {}
    for u, i in pairs.T:
        have.setdefault(int(u), set()).add(int(i))
    pop = np.zeros(n_items)
    for items in have.values():
        for i in items:
            pop[i] += 1
    users = len(have)
    observed = expected = 0.0
    for g in groups:
        if len(g) < 2:
            continue
        w = 1 / (len(g) - 1)
        for i, j in itertools.permutations(g, 2):
            observed += w * sum(i in s and j in s for s in have.values())
            expected += w * pop[i] * pop[j] / users
    return observed / expected


def test_lift_of_a_hand_worked_case():
    # users 0 and 1 both have items 0 and 1 (group a); users 2 and 3 one item each of group b
    pairs = np.array([[0, 0, 1, 1, 2, 3], [0, 1, 0, 1, 2, 3]])
    held = np.array([[2, 3], [3, 0]])  # user 2's item 3 shares group b with item 2; user 3's item 0 shares nothing
    row = relation_lift(pairs, 4, {"r": reach_of([[0, 1], [2, 3]], 4)}, shuffles=3, held_out=held).iloc[0]
    # group a: observed 2 + 2 = 4, expected ((2 + 2)^2 - (4 + 4)) / 4 = 2; group b: 0 against ((1 + 1)^2 - 2) / 4 = 0.5
    assert row["lift"] == pytest.approx(4 / 2.5)
    assert row["held_out"] == 0.5
    assert (row["items"], row["groups"], row["pairs"]) == (4, 2, 2)


def test_lift_equals_its_definition_on_random_groups_of_mixed_sizes():
    rng = np.random.default_rng(3)
    n_users, n_items = 30, 25
    pairs = np.stack([rng.integers(0, n_users, 300), rng.integers(0, n_items, 300)])
    groups = [sorted(rng.choice(n_items, size, replace=False).tolist()) for size in (2, 3, 5, 8, 1)]
    got = relation_lift(pairs, n_users + 5, {"r": reach_of(groups, n_items)}, shuffles=1)  # 5 users with nothing
    assert got.loc[0, "lift"] == pytest.approx(lift_by_definition(pairs, groups, n_items))


def clustered_interactions(rng, n_users=200, n_items=100, clusters=10, per_user=6):
    """Each user draws items from one cluster of ``n_items / clusters`` items."""
    size = n_items // clusters
    users = np.repeat(np.arange(n_users), per_user)
    home = rng.integers(0, clusters, n_users)
    items = home[users] * size + rng.integers(0, size, len(users))
    return np.stack([users, items]), [list(range(c * size, (c + 1) * size)) for c in range(clusters)]


def test_a_relation_that_follows_the_users_clusters_stands_out_and_a_random_one_does_not():
    rng = np.random.default_rng(0)
    pairs, clusters = clustered_interactions(rng)
    random_groups = [sorted(rng.choice(100, 10, replace=False).tolist()) for _ in range(10)]
    table = relation_lift(pairs, 200, {"clusters": reach_of(clusters, 100), "random": reach_of(random_groups, 100)},
                          shuffles=20, seed=1).set_index("relation")
    assert table.loc["clusters", "lift"] > 5 * table.loc["clusters", "shuffled"]
    assert table.loc["clusters", "p"] == pytest.approx(1 / 21)
    assert table.loc["random", "lift"] < 2 * table.loc["random", "shuffled"]
    assert table.loc["random", "p"] > 0.05


def test_the_same_seed_gives_the_same_table_and_columns_are_as_documented():
    rng = np.random.default_rng(0)
    pairs, clusters = clustered_interactions(rng)
    a = relation_lift(pairs, 200, {"c": reach_of(clusters, 100)}, shuffles=5, seed=4)
    b = relation_lift(pairs, 200, {"c": reach_of(clusters, 100)}, shuffles=5, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == COLUMNS


def test_item_reach_goes_through_the_linked_entity(example_graph):
    reach = item_reach(example_graph, "target")
    data = example_graph.data
    books = example_graph.items_of("target").tolist()
    entity_of = dict(zip(*data["item", "linked_to", "entity"].edge_index.tolist()))
    genre = data["entity", "genre", "entity"].edge_index.tolist()
    expected = {(row, t) for row, b in enumerate(books) for h, t in zip(*genre) if entity_of.get(b) == h}
    got = reach["genre"].tocoo()
    assert set(zip(got.row.tolist(), got.col.tolist())) == expected
    assert reach["genre"].shape[0] == len(books)


def test_kg_signal_lists_every_relation_after_the_union(example_graph):
    table = kg_signal(example_graph, "target", shuffles=3)
    assert table.loc[0, "relation"] == ANY
    relations = set(table["relation"])
    assert {"genre", "rev_genre", "linked_to"} <= relations
    assert table.loc[0, "groups"] == table["groups"].iloc[1:].sum()
    with pytest.raises(KgrecError, match="no cinema domain"):
        kg_signal(example_graph, "cinema")


def test_cli_prints_the_table_and_writes_every_relation_to_csv(tmp_path, capsys):
    from conftest import EXAMPLE_SPEC

    assert main(["build", str(EXAMPLE_SPEC), "--out", str(tmp_path / "g"), "--quiet"]) == 0
    assert main(["kg-signal", str(tmp_path / "g"), "--shuffles", "3", "--csv", str(tmp_path / "s.csv")]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:2] == ["relation", "items"] and "(any relation)" in out
    written = pd.read_csv(tmp_path / "s.csv")
    assert list(written.columns) == COLUMNS and written["relation"].iloc[0] == ANY
    with pytest.raises(SystemExit) as refused:  # argparse checks --shuffles before the command runs
        main(["kg-signal", str(tmp_path / "g"), "--shuffles", "0"])
    assert refused.value.code == 2 and "argument --shuffles: expected a positive integer" in capsys.readouterr().err


def test_a_graph_without_kg_gives_an_empty_table_and_the_cli_says_so(example_spec, tmp_path, capsys):
    from kgrec import build_graph

    bare = build_graph(dataclasses.replace(example_spec, knowledge=(), links=()))
    table = kg_signal(bare, "target", shuffles=3)
    assert table.empty and list(table.columns) == COLUMNS
    bare.save(tmp_path / "g")
    assert main(["kg-signal", str(tmp_path / "g"), "--shuffles", "3", "--csv", str(tmp_path / "s.csv")]) == 0
    assert "links them to no entity" in capsys.readouterr().out
    assert list(pd.read_csv(tmp_path / "s.csv").columns) == COLUMNS
