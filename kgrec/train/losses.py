"""Losses: ranking losses for interactions, KG losses for triples, L2, and domain alignment."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kgrec.models.graph import gather_rows


def bpr_loss(pos: Tensor, neg: Tensor) -> Tensor:
    r"""Bayesian personalised ranking: :math:`-\mathrm{mean}\,\log\sigma(s^+ - s^-)`.
    ``pos`` ``[B]``, ``neg`` ``[B, k]`` (or ``[B]``)."""
    if neg.dim() == 2:
        pos = pos.unsqueeze(1)
    return -F.logsigmoid(pos - neg).mean()


def bce_loss(pos: Tensor, neg: Tensor) -> Tensor:
    r"""Binary cross-entropy with negative sampling: positives labelled 1, negatives 0,
    :math:`-\mathrm{mean}_b [\log\sigma(s^+_b) + \mathrm{mean}_j \log\sigma(-s^-_{bj})]`."""
    neg_term = F.logsigmoid(-neg)
    if neg.dim() == 2:
        neg_term = neg_term.mean(1)
    return -(F.logsigmoid(pos) + neg_term).mean()


def softmax_loss(pos: Tensor, neg: Tensor) -> Tensor:
    r"""Sampled softmax: the positive against its ``k`` negatives,
    :math:`-\mathrm{mean}_b \log \frac{e^{s^+_b}}{e^{s^+_b} + \sum_j e^{s^-_{bj}}}`."""
    if neg.dim() == 1:
        neg = neg.unsqueeze(1)
    logits = torch.cat([pos.unsqueeze(1), neg], 1)
    return (torch.logsumexp(logits, 1) - pos).mean()


RANKING_LOSSES = {"bpr": bpr_loss, "bce": bce_loss, "softmax": softmax_loss}


def transe_score(h: Tensor, r: Tensor, t: Tensor) -> Tensor:
    r"""TransE plausibility :math:`-\lVert h + r - t\rVert_2^2`, ``[B]``."""
    return -(h + r - t).square().sum(-1)


def distmult_score(h: Tensor, r: Tensor, t: Tensor) -> Tensor:
    r"""DistMult plausibility :math:`\langle h, r, t\rangle`, ``[B]``."""
    return (h * r * t).sum(-1)


KG_SCORES = {"transe": transe_score, "distmult": distmult_score}


def kg_loss(h: Tensor, r: Tensor, t: Tensor, t_neg: Tensor, score: str = "transe") -> Tensor:
    """Triple loss: BPR between a true tail and a corrupted tail of the same (h, r), as in KGAT."""
    f = KG_SCORES[score]
    return bpr_loss(f(h, r, t), f(h, r, t_neg))


def l2_penalty(table: Tensor, rows: Tensor, batch_size: int) -> Tensor:
    r""":math:`\frac{1}{2B}\sum_{r \in rows} \lVert table_r\rVert^2` with ``B = batch_size`` (the
    number of training pairs). A row that ``rows`` repeats counts as often as it occurs, but is
    read once: the batch's negatives, users and items repeat a lot."""
    distinct, counts = torch.unique(rows, return_counts=True)
    return (gather_rows(table, distinct).square().sum(1) * counts).sum() / (2 * max(batch_size, 1))


def mmd(x: Tensor, y: Tensor, bandwidths: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)) -> Tensor:
    r"""Squared maximum mean discrepancy between samples ``x`` ``[n, d]`` and ``y`` ``[m, d]``
    under a sum of Gaussian kernels :math:`k(a, b) = \exp(-\lVert a-b\rVert^2 / (2\sigma^2 \bar{D}))`,
    with :math:`\bar{D}` the mean squared distance (biased estimator, >= 0)."""
    z = torch.cat([x, y])
    d2 = torch.cdist(z, z).square()
    scale = d2.detach().mean().clamp(min=1e-12)
    k = sum(torch.exp(-d2 / (2 * s * s * scale)) for s in bandwidths)
    n = x.shape[0]
    return k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean()


def info_nce(a: Tensor, b: Tensor, temperature: float = 0.2) -> Tensor:
    r"""InfoNCE between two views of the same rows: row i of ``a`` should be closer (cosine) to
    row i of ``b`` than to every other row of ``b``,
    :math:`-\mathrm{mean}_i \log \frac{\exp(\cos(a_i, b_i)/\tau)}{\sum_j \exp(\cos(a_i, b_j)/\tau)}`."""
    a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    logits = a @ b.T / temperature
    return F.cross_entropy(logits, torch.arange(len(a), device=a.device))


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, scale: float) -> Tensor:  # type: ignore[override]
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        return -ctx.scale * grad, None


def grad_reverse(x: Tensor, scale: float = 1.0) -> Tensor:
    """Identity forward; multiplies the gradient by ``-scale`` backward (Ganin & Lempitsky 2015)."""
    return _GradReverse.apply(x, scale)


def adversarial_loss(discriminator: nn.Module, source: Tensor, target: Tensor) -> Tensor:
    """Domain-classification BCE of ``discriminator`` on gradient-reversed embeddings: the
    discriminator learns to tell the domains apart, the encoder learns to make them alike."""
    z = grad_reverse(torch.cat([source, target]))
    labels = torch.cat([source.new_zeros(len(source)), source.new_ones(len(target))])
    return F.binary_cross_entropy_with_logits(discriminator(z).squeeze(-1), labels)
