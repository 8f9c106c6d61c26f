"""Losses against hand-computed values; negative sampling never returns a known positive."""
from __future__ import annotations

import math

import pytest
import torch

from kgrec.train.losses import (adversarial_loss, bce_loss, bpr_loss, distmult_score, grad_reverse, info_nce, kg_loss,
                                l2_penalty, mmd, softmax_loss, transe_score)
from kgrec.graph.negatives import NegativeSampler


def sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_bpr_by_hand():
    pos, neg = torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0])
    expected = -(math.log(sig(1.0)) + math.log(sig(-1.0))) / 2
    assert bpr_loss(pos, neg).item() == pytest.approx(expected)
    # several negatives per positive: mean over all pairs
    assert bpr_loss(torch.tensor([1.0]), torch.tensor([[0.0, 1.0]])).item() == pytest.approx(
        -(math.log(sig(1.0)) + math.log(sig(0.0))) / 2)


def test_bce_by_hand():
    pos, neg = torch.tensor([2.0]), torch.tensor([[1.0, -1.0]])
    expected = -(math.log(sig(2.0)) + (math.log(sig(-1.0)) + math.log(sig(1.0))) / 2)
    assert bce_loss(pos, neg).item() == pytest.approx(expected)


def test_sampled_softmax_by_hand():
    pos, neg = torch.tensor([2.0, 0.0]), torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    expected = (-math.log(math.exp(2) / (math.exp(2) + math.exp(1) + 1)) - math.log(1 / 3)) / 2
    assert softmax_loss(pos, neg).item() == pytest.approx(expected)
    # one negative per positive: the logistic loss of the difference, as BPR
    p1, n1 = torch.tensor([1.5]), torch.tensor([0.5])
    assert softmax_loss(p1, n1).item() == pytest.approx(bpr_loss(p1, n1).item())


def test_info_nce_by_hand_uses_cosine_and_temperature():
    a = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[1.0, 0.0], [1.0, 1.0]])  # cos: a0·b0 = 1, a0·b1 = .7071, a1·b0 = 0, a1·b1 = .7071
    t = 0.5
    c = 1 / math.sqrt(2)
    row0 = -math.log(math.exp(1 / t) / (math.exp(1 / t) + math.exp(c / t)))
    row1 = -math.log(math.exp(c / t) / (math.exp(0) + math.exp(c / t)))
    assert info_nce(a, b, t).item() == pytest.approx((row0 + row1) / 2, rel=1e-5)
    # scaling a view changes nothing (cosine)
    assert info_nce(3 * a, b, t).item() == pytest.approx(info_nce(a, b, t).item(), rel=1e-5)


def test_kg_scores_and_loss_by_hand():
    h, r, t = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 1.0]])
    t_neg = torch.tensor([[0.0, 0.0]])
    assert transe_score(h, r, t).item() == 0.0
    assert transe_score(h, r, t_neg).item() == -2.0
    assert distmult_score(h, torch.tensor([[2.0, 3.0]]), t).item() == 2.0
    assert kg_loss(h, r, t, t_neg, "transe").item() == pytest.approx(-math.log(sig(2.0)))


def test_l2_is_half_the_squared_norm_per_row():
    table = torch.tensor([[1.0, 2.0], [0.0, 1.0]])
    assert l2_penalty(table, torch.arange(2), batch_size=2).item() == pytest.approx((5 + 1) / 4)


def test_l2_counts_a_repeated_row_as_often_as_it_occurs():
    table = torch.randn(6, 3, requires_grad=True)
    rows = torch.tensor([4, 0, 4, 4, 2, 0, 5])
    every_row = table[rows].square().sum() / (2 * 3)
    distinct = l2_penalty(table, rows, batch_size=3)
    torch.testing.assert_close(every_row, distinct)
    ga, = torch.autograd.grad(every_row, table)
    gb, = torch.autograd.grad(distinct, table)
    torch.testing.assert_close(ga, gb)


def test_mmd_is_zero_for_identical_samples_and_grows_with_the_shift():
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
    assert mmd(x, x).item() == pytest.approx(0.0, abs=1e-6)
    assert mmd(x, x + 0.5).item() < mmd(x, x + 3.0).item()


def test_gradient_reversal_flips_the_gradient():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    (grad_reverse(x, 0.5) * torch.tensor([3.0, 4.0])).sum().backward()
    assert x.grad.tolist() == [-1.5, -2.0]


def test_adversarial_loss_trains_the_discriminator_and_confuses_the_encoder():
    disc = torch.nn.Linear(2, 1)
    src = torch.randn(8, 2, requires_grad=True)
    tgt = torch.randn(8, 2, requires_grad=True)
    loss = adversarial_loss(disc, src, tgt)
    loss.backward()
    # the embeddings' gradient is the reverse of the discriminator loss's gradient
    z = torch.cat([src, tgt]).detach().requires_grad_(True)
    labels = torch.cat([torch.zeros(8), torch.ones(8)])
    torch.nn.functional.binary_cross_entropy_with_logits(disc(z).squeeze(-1), labels).backward()
    torch.testing.assert_close(torch.cat([src.grad, tgt.grad]), -z.grad)


def test_negatives_are_never_training_positives():
    users = torch.tensor([0, 0, 0, 1])
    pos = torch.tensor([10, 11, 12, 10])
    items = torch.tensor([10, 11, 12, 13, 14])
    gen = torch.Generator().manual_seed(0)
    for dist in ("uniform", "popularity"):
        s = NegativeSampler(users, pos, items, 2, dist)
        neg = s.sample(torch.tensor([0] * 50 + [1] * 50), 3, gen)
        assert neg.shape == (100, 3)
        assert set(neg[:50].flatten().tolist()) <= {13, 14}
        assert set(neg[50:].flatten().tolist()) <= {11, 12, 13, 14}


def test_popularity_sampling_prefers_popular_items():
    users = torch.arange(20)
    pos = torch.tensor([0] * 19 + [1])
    s = NegativeSampler(users, pos, torch.arange(4), 100, "popularity")
    neg = s.sample(torch.full((4000,), 99), 1, torch.Generator().manual_seed(0)).flatten()
    counts = torch.bincount(neg, minlength=4)
    assert counts[0] > counts[1] > 0 and counts[0] > counts[2]
