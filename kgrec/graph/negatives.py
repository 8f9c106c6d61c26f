"""Negative sampling for link prediction: items a user has not interacted with in training."""
from __future__ import annotations

import torch
from torch import Tensor


class NegativeSampler:
    """Draws negative items for (user, positive item) pairs of one domain.

    Candidates are ``items`` (that domain's item indices); a draw equal to one
    of the user's training positives is redrawn (up to ``max_rounds`` times; the
    survivors are drawn from the user's complement; a user who has every item keeps
    a positive). ``distribution``: ``"uniform"`` or ``"popularity"``
    (probability proportional to training degree ** ``alpha``, each item at least once).

    Args:
        users, pos: ``[P]`` the training pairs (user and item indices).
        items: ``[M]`` candidate items.
        num_users: user index bound.
    """

    def __init__(self, users: Tensor, pos: Tensor, items: Tensor, num_users: int,
                 distribution: str = "uniform", alpha: float = 0.75, max_rounds: int = 20):
        if distribution not in ("uniform", "popularity"):
            raise ValueError(f"distribution must be 'uniform' or 'popularity', got {distribution!r}")
        self.items = items.cpu()
        self.num_items = int(items.max()) + 1 if len(items) else 0
        self.keys = torch.unique(users.cpu() * max(self.num_items, 1) + pos.cpu())
        self.max_rounds = max_rounds
        self.weights = None
        if distribution == "popularity":
            pos_of = torch.full((self.num_items,), -1, dtype=torch.long)
            pos_of[self.items] = torch.arange(len(self.items))
            deg = torch.bincount(pos_of[pos.cpu()], minlength=len(self.items)).float()
            self.weights = (deg + 1).pow(alpha)

    def known(self, users: Tensor, items: Tensor) -> Tensor:
        """``[B]`` bool: is ``(users[b], items[b])`` a training positive."""
        q = users * max(self.num_items, 1) + items
        i = torch.searchsorted(self.keys, q).clamp(max=max(len(self.keys) - 1, 0))
        return self.keys[i] == q if len(self.keys) else torch.zeros_like(q, dtype=torch.bool)

    def _draw(self, n: int, generator: torch.Generator) -> Tensor:
        if self.weights is None:
            return self.items[torch.randint(len(self.items), (n,), generator=generator)]
        return self.items[torch.multinomial(self.weights, n, replacement=True, generator=generator)]

    def sample(self, users: Tensor, k: int, generator: torch.Generator) -> Tensor:
        """``[B, k]`` negative items for ``users`` ``[B]`` (CPU tensors)."""
        u = users.cpu().repeat_interleave(k)
        neg = self._draw(len(u), generator)
        for _ in range(self.max_rounds):
            bad = self.known(u, neg)
            if not bool(bad.any()):
                return neg.view(len(users), k)
            neg[bad] = self._draw(int(bad.sum()), generator)
        # users who have most of the items: draw the few survivors from their complement directly
        for j in self.known(u, neg).nonzero().flatten().tolist():
            free = self.items[~self.known(u[j].expand(len(self.items)), self.items)]
            if len(free):
                neg[j] = free[torch.randint(len(free), (1,), generator=generator)]
        return neg.view(len(users), k)
