"""Ranking metrics against hand-computed cases, ties included, and the full-ranking task."""
from __future__ import annotations

import math

import pytest
import torch

from kgrec.eval import evaluate, hit_matrix, mean_metrics, rank, ranking_metrics, ranking_task, top_k


def test_top_k_breaks_ties_by_the_lower_index():
    scores = torch.tensor([[0.5, 0.9, 0.9, 0.1, 0.9],
                           [1.0, 1.0, 1.0, 1.0, 1.0]])
    assert top_k(scores, 2).tolist() == [[1, 2], [0, 1]]
    assert top_k(scores, 4).tolist() == [[1, 2, 4, 0], [0, 1, 2, 3]]


def test_top_k_matches_a_sort_on_random_ties():
    gen = torch.Generator().manual_seed(0)
    for _ in range(100):
        s = torch.randint(0, 4, (5, 9), generator=gen).float()
        s[torch.rand(5, 9, generator=gen) < 0.2] = float("-inf")  # excluded items tie at the bottom
        k = int(torch.randint(1, 10, (), generator=gen))
        ref = [sorted(range(9), key=lambda j: (-row[j], j))[:k] for row in s.tolist()]
        assert top_k(s, k).tolist() == ref


def test_top_k_matches_a_sort_when_most_items_tie_at_the_cut():
    gen = torch.Generator().manual_seed(1)
    s = torch.zeros(6, 300)  # unreachable items score 0, as the path scores leave most items
    s[torch.rand(6, 300, generator=gen) < 0.03] = 1.0
    s[torch.rand(6, 300, generator=gen) < 0.02] = 2.0
    s[:, :5] = float("-inf")  # filtered
    for k in (1, 5, 20, 295, 300):
        ref = [sorted(range(300), key=lambda j: (-row[j], j))[:k] for row in s.tolist()]
        assert top_k(s, k).tolist() == ref


def test_metrics_of_one_user_by_hand():
    # ranked list [a, b, c, d], relevant {b, d, x} (x never ranked): hits at ranks 2 and 4
    hits = torch.tensor([[False, True, False, True]])
    m = ranking_metrics(hits, torch.tensor([3]), ks=(2, 4))
    dcg4 = 1 / math.log2(3) + 1 / math.log2(5)
    idcg4 = 1 + 1 / math.log2(3) + 1 / math.log2(4)  # min(3, 4) = 3 ideal hits
    assert m["recall@4"].item() == pytest.approx(2 / 3)
    assert m["precision@4"].item() == pytest.approx(2 / 4)
    assert m["hr@4"].item() == 1.0
    assert m["mrr@4"].item() == pytest.approx(1 / 2)
    assert m["ndcg@4"].item() == pytest.approx(dcg4 / idcg4)
    assert m["map@4"].item() == pytest.approx((1 / 2 + 2 / 4) / 3)
    # at K=2 the ideal DCG has min(3, 2) = 2 terms
    assert m["ndcg@2"].item() == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    assert m["map@2"].item() == pytest.approx((1 / 2) / 2)
    assert m["recall@2"].item() == pytest.approx(1 / 3)


def test_a_k_beyond_the_list_counts_the_missing_places_as_misses():
    hits = torch.tensor([[False, True, True], [True, False, False]])
    padded = torch.cat([hits, torch.zeros(2, 5, dtype=torch.bool)], 1)
    short, full = ranking_metrics(hits, torch.tensor([4, 1]), ks=(8,)), ranking_metrics(padded, torch.tensor([4, 1]), ks=(8,))
    for name in full:
        assert torch.allclose(short[name], full[name]), name


def test_a_huge_k_allocates_nothing_of_its_length():
    # found by the CLI fuzzer: `evaluate --ks 2147483648` once padded every list to K
    m = ranking_metrics(torch.tensor([[False, True]]), torch.tensor([1]), ks=(2**31,))
    assert m["recall@2147483648"].item() == 1.0
    assert m["ndcg@2147483648"].item() == pytest.approx(1 / math.log2(3))
    assert m["precision@2147483648"].item() == pytest.approx(2.0**-31)


def test_a_user_without_hits_scores_zero_everywhere():
    m = ranking_metrics(torch.zeros(1, 5, dtype=torch.bool), torch.tensor([2]), ks=(5,))
    assert all(v.item() == 0.0 for v in m.values())


def test_users_without_relevant_items_are_refused():
    with pytest.raises(ValueError, match="relevant"):
        ranking_metrics(torch.zeros(2, 3, dtype=torch.bool), torch.tensor([1, 0]), ks=(3,))


def test_hit_matrix_looks_up_each_users_own_relevant_items():
    top = torch.tensor([[0, 1], [0, 1]])
    hits = hit_matrix(top, [torch.tensor([1]), torch.tensor([0, 2])], num_items=3)
    assert hits.tolist() == [[False, True], [True, False]]


def test_full_ranking_filters_training_items_and_finds_the_held_out_one(example_graph):
    task = ranking_task(example_graph, "valid")
    train = example_graph.split("train", "target")
    pos_of = {int(i): p for p, i in enumerate(task.items.tolist())}
    indptr, rel_items = task.relevant

    # an oracle that scores each user's held-out items highest, their training items next
    def oracle(users):
        s = torch.zeros(len(users), len(task.items))
        for r, u in enumerate(users.tolist()):
            row = task.users.tolist().index(u)
            s[r, rel_items[indptr[row]:indptr[row + 1]]] = 1.0
            for i in train[1][train[0] == u].tolist():
                s[r, pos_of[i]] = 2.0
        return s

    top = rank(oracle, task, 3)
    ex_ptr, ex_items = task.exclude
    for row in range(len(task.users)):
        assert not set(top[row].tolist()) & set(ex_items[ex_ptr[row]:ex_ptr[row + 1]].tolist())
    m = mean_metrics(evaluate(oracle, task, ks=(1, 3)))
    assert m["ndcg@3"] == pytest.approx(1.0) and m["hr@1"] == pytest.approx(1.0)


def test_test_task_filters_train_and_valid_items(example_graph):
    task = ranking_task(example_graph, "test", exclude=("train", "valid"))
    seen = torch.cat([example_graph.split("train", "target"), example_graph.split("valid", "target")], 1)
    ex_ptr, ex_items = task.exclude
    for row, u in enumerate(task.users.tolist()):
        expected = {task.items.tolist().index(i) for i in seen[1][seen[0] == u].tolist()}
        assert set(ex_items[ex_ptr[row]:ex_ptr[row + 1]].tolist()) == expected


def test_validation_on_a_sample_of_users_is_seeded_and_keeps_each_users_items(example_graph):
    from kgrec.eval import sample_users
    task = ranking_task(example_graph, "valid")
    assert sample_users(task, 0) is task and sample_users(task, len(task.users)) is task  # 0: all; fewer: all
    half = sample_users(task, len(task.users) // 2, seed=3)
    assert len(half.users) == len(task.users) // 2
    assert torch.equal(half.users, sample_users(task, len(task.users) // 2, seed=3).users)  # seeded
    assert set(half.users.tolist()) <= set(task.users.tolist()) and torch.equal(half.items, task.items)
    for row, user in enumerate(half.users.tolist()):  # each kept user keeps their own relevant and excluded items
        full_row = task.users.tolist().index(user)
        for csr, whole in ((half.relevant, task.relevant), (half.exclude, task.exclude)):
            assert torch.equal(csr[1][csr[0][row]:csr[0][row + 1]], whole[1][whole[0][full_row]:whole[0][full_row + 1]])
