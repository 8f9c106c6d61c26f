"""Link-prediction heads: score (user, item) pairs of the target relation from
encoder embeddings.

Every head scores aligned pairs (``score``, ``[B]``), each user against its own
``K`` items (``score_each``, ``[B, K]``: a positive's sampled negatives) and a batch
of users against a set of items (``score_all``, ``[B, M]``) for full ranking.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


def dot_each(u: Tensor, items: Tensor) -> Tensor:
    """``[B, K]``: each row of ``u`` ``[B, d]`` dotted with its ``K`` rows of ``items`` ``[B, K, d]``, by one
    batched product: no ``[B, K, d]`` product is made, and forward and backward take less than half the
    time of multiplying and summing (2,048 x 32 x 64, one CPU thread: 4.3 against 10.0 ms,
    ``benchmarks/hot_paths.py``)."""
    return torch.bmm(items, u.unsqueeze(-1)).squeeze(-1)


class DotHead(nn.Module):
    r""":math:`s(u, i) = h_u^\top h_i`. No parameters."""

    def __init__(self, dim: int):
        super().__init__()

    def score(self, u: Tensor, i: Tensor) -> Tensor:
        return (u * i).sum(-1)

    def score_each(self, u: Tensor, items: Tensor) -> Tensor:
        """``u`` ``[B, d]`` against ``items`` ``[B, K, d]`` -> ``[B, K]``."""
        return dot_each(u, items)

    def score_all(self, u: Tensor, items: Tensor) -> Tensor:
        return u @ items.T


class DistMultHead(nn.Module):
    r""":math:`s(u, i) = h_u^\top \mathrm{diag}(w)\, h_i`, ``w`` ``[d]`` starting at ones."""

    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def score(self, u: Tensor, i: Tensor) -> Tensor:
        return (u * self.weight * i).sum(-1)

    def score_each(self, u: Tensor, items: Tensor) -> Tensor:
        return dot_each(u * self.weight, items)

    def score_all(self, u: Tensor, items: Tensor) -> Tensor:
        return (u * self.weight) @ items.T


class BilinearHead(nn.Module):
    r""":math:`s(u, i) = h_u^\top W h_i`, ``W`` ``[d, d]`` starting at the identity."""

    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.eye(dim))

    def score(self, u: Tensor, i: Tensor) -> Tensor:
        return ((u @ self.weight) * i).sum(-1)

    def score_each(self, u: Tensor, items: Tensor) -> Tensor:
        return dot_each(u @ self.weight, items)

    def score_all(self, u: Tensor, items: Tensor) -> Tensor:
        return (u @ self.weight) @ items.T


class MLPHead(nn.Module):
    r""":math:`s(u, i) = h_u^\top h_i + \mathrm{MLP}([h_u; h_i; h_u \odot h_i])`, the MLP's
    last layer starting at zero (so the head starts as the dot product).
    ``score_all`` materialises ``[B, M, 3d]``: rank with small user batches."""

    def __init__(self, dim: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or dim
        self.mlp = nn.Sequential(nn.Linear(3 * dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.zeros_(self.mlp[2].bias)

    def score(self, u: Tensor, i: Tensor) -> Tensor:
        return (u * i).sum(-1) + self.mlp(torch.cat([u, i, u * i], -1)).squeeze(-1)

    def score_each(self, u: Tensor, items: Tensor) -> Tensor:
        return self.score(u.unsqueeze(1).expand_as(items), items)

    def score_all(self, u: Tensor, items: Tensor) -> Tensor:
        uu = u.unsqueeze(1).expand(-1, items.shape[0], -1)
        ii = items.unsqueeze(0).expand(u.shape[0], -1, -1)
        return u @ items.T + self.mlp(torch.cat([uu, ii, uu * ii], -1)).squeeze(-1)


HEAD_CLASSES = {"dot": DotHead, "distmult": DistMultHead, "bilinear": BilinearHead, "mlp": MLPHead}


def make_head(name: str, dim: int) -> nn.Module:
    """The head called ``name`` (one of ``dot``, ``distmult``, ``bilinear``, ``mlp``) for width ``dim``."""
    if name not in HEAD_CLASSES:
        raise ValueError(f"unknown head {name!r}; expected one of {', '.join(HEAD_CLASSES)}")
    return HEAD_CLASSES[name](dim)
