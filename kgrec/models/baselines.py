"""Baselines on the user-item interactions alone: MostPop, MF (BPR-MF; CMF when trained on both
domains with shared user factors), LightGCN (target only or both domains), EMCDR-style mapping.

Each embedding model returns ``(users [n_users, d], items [n_items, d])`` for the whole graph
(item indices of both domains); the score of (u, i) is their inner product.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from kgrec.graph.artifact import GraphArtifact
from kgrec.models.graph import SparseOp, sparse_op


class MF(nn.Module):
    """Matrix factorisation: :math:`s(u, i) = e_u^\\top e_i`."""

    def __init__(self, num_users: int, num_items: int, dim: int):
        super().__init__()
        self.users = nn.Embedding(num_users, dim)
        self.items = nn.Embedding(num_items, dim)
        nn.init.normal_(self.users.weight, std=0.1)
        nn.init.normal_(self.items.weight, std=0.1)

    def inputs(self) -> tuple[Tensor, Tensor]:
        """Layer-0 embeddings (what L2 regularisation acts on)."""
        return self.users.weight, self.items.weight

    def forward(self) -> tuple[Tensor, Tensor]:
        return self.users.weight, self.items.weight


class LightGCN(MF):
    r"""LightGCN (He et al. 2020): :math:`E^{(l+1)} = \hat A E^{(l)}`, :math:`E = \frac{1}{L+1}\sum_l E^{(l)}`,
    with :math:`\hat A = D^{-1/2} A D^{-1/2}` the normalised user-item adjacency of the given
    ``(user, item)`` training pairs (one domain, or both through the shared users). One CSR
    product per layer."""

    def __init__(self, num_users: int, num_items: int, dim: int, pairs: Tensor, layers: int = 2):
        super().__init__(num_users, num_items, dim)
        self.layers = layers
        n = num_users + num_items
        u, i = pairs[0], pairs[1] + num_users
        src, dst = torch.cat([u, i]), torch.cat([i, u])
        deg = torch.bincount(dst, minlength=n).float().clamp(min=1)
        norm = (deg[src] * deg[dst]).rsqrt()
        self.adj = sparse_op(dst, src, norm, (n, n))
        self.num_users = num_users

    def to(self, *args, **kwargs):  # the sparse operator follows the module
        out = super().to(*args, **kwargs)
        dev = self.users.weight.device
        self.adj = SparseOp(self.adj.a.to(dev), self.adj.a_t.to(dev))
        return out

    def forward(self) -> tuple[Tensor, Tensor]:
        e = torch.cat([self.users.weight, self.items.weight])
        acc = e
        for _ in range(self.layers):
            e = self.adj(e)
            acc = acc + e
        acc = acc / (self.layers + 1)
        return acc[: self.num_users], acc[self.num_users:]


class Mapping(nn.Module):
    """EMCDR's mapping function: an MLP from source to target user embeddings."""

    def __init__(self, dim: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or 2 * dim
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp(x)


def most_popular(artifact: GraphArtifact, domain: str = "target") -> Tensor:
    """``[n_items]`` training popularity of every item in ``domain`` (the MostPop score)."""
    train = artifact.split("train", domain)
    return torch.bincount(train[1], minlength=int(artifact.data["item"].num_nodes)).float()
