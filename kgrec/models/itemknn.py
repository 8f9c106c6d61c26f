r"""Closed-form item-to-item baselines on the binary user-item matrix: EASE and RP3beta.

``X`` ``[U, I]`` is the binary matrix of the training pairs (duplicates counted once).

**EASE** (Steck, "Embarrassingly Shallow Autoencoders", WWW 2019): the item-item weights

.. math:: B = I - P\,\mathrm{diag}(1/\mathrm{diag}(P)), \qquad P = (X^\top X + \lambda I)^{-1},

the least-squares solution of :math:`\min_B \|X - XB\|^2 + \lambda\|B\|^2` under
:math:`\mathrm{diag}(B) = 0`; a user's scores are :math:`S_u = X_u B = X_u - (X_u P) / \mathrm{diag}(P)`
(columnwise), which is exact with the zero diagonal. When ``I > U`` the same numbers come
from the dual (Woodbury) form, with :math:`K = (X X^\top + \lambda I)^{-1}` ``[U, U]``:
:math:`X P = K X` and :math:`\mathrm{diag}(P)_i = (1 - x_i^\top K x_i) / \lambda`
(:math:`x_i` the item's column). The smaller Gram matrix (:math:`X X^\top` or
:math:`X^\top X`) is eigendecomposed once in float64, :math:`V \mathrm{diag}(\sigma) V^\top`,
so that each :math:`\lambda` costs one product :math:`V \mathrm{diag}(1/(\sigma+\lambda)) V^\top`.
Cost: :math:`O(\min(U, I)^3)` time for the eigendecomposition and again per :math:`\lambda`,
:math:`O(\min(U, I)^2)` memory (float64), plus :math:`O(\mathrm{nnz}(X) \cdot \min(U, I))`
per :math:`\lambda` for the diagonal and the scores. Measured on Amazon cloth -> sport
(target: 9,928 users x 30,796 items, 82,684 pairs; dual form), 2 CPU cores shared with
other jobs: eigendecomposition 253 s, then 24-28 s per :math:`\lambda` (inverse, diagonal
and full-ranking validation of all users), 455 s for the 8 of :data:`EASE_LAMBDAS`, 4.5 GB
peak memory.

**RP3beta** (Paudel et al., "Updatable, accurate, diverse, and scalable recommendations for
interactive applications", TiiS 2016; the tuned baseline of Dacrema et al., RecSys 2019): a
three-step walk user -> item -> user -> item with degree exponents,

.. math:: W_{ij} = \frac{1}{d_i^{\alpha}\, d_j^{\beta}} \sum_v \frac{x_{vi}\, x_{vj}}{d_v^{\alpha}},
          \qquad s_{uj} = \sum_i x_{ui} W_{ij},

(:math:`d` the degrees in ``X``; ``beta = 0`` is P3alpha, ``beta > 0`` pushes popular items
down). No item-item matrix is formed (nor pruned to a top-k neighbourhood, unlike Dacrema's
tuned variant): a batch of users is two sparse products, ``[B, I] @ [I, U]`` then
``[B, U] @ [U, M]``. Over both domains' pairs (``rp3beta_merged``) the walk reaches a target
item through any item, source ones included: user -> source item -> co-user -> target item.
Measured on cloth -> sport as above: 7-11 s per setting with validation, 137-169 s for the
18 of the grid (target only, and merged: 9,928 users x 69,804 items, 170,513 pairs).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

#: EASE's L2 weights tried on validation
EASE_LAMBDAS = (1.0, 10.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 3000.0)
#: RP3beta's degree exponents tried on validation: alpha x beta
RP3BETA_ALPHAS = (0.25, 0.5, 0.75, 1.0)  # 0.25: target-only sport chose the grid edge 0.5 with (0.5, 0.75, 1.0)
RP3BETA_BETAS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)


def binary_matrix(pairs: Tensor, n_users: int, n_items: int) -> sp.csr_matrix:
    """``[n_users, n_items]`` CSR float64 with a 1 at every distinct ``(user, item)`` of ``pairs`` ``[2, E]``."""
    u, i = pairs[0].cpu().numpy(), pairs[1].cpu().numpy()
    x = sp.csr_matrix((np.ones(len(u)), (u, i)), shape=(n_users, n_items), dtype=np.float64)
    x.sum_duplicates()
    x.data[:] = 1.0
    return x


class EASE:
    """EASE over the pairs ``[2, E]`` (user, item) with item indices in ``[0, n_items)``.

    Eigendecomposes the smaller Gram matrix at construction (see the module docstring);
    :meth:`solve` gives the scorer of one ``lambda``. ``dual``: force the dual (``True``) or
    primal (``False``) form; by default the dual one when ``n_items > n_users``.
    """

    def __init__(self, pairs: Tensor, n_users: int, n_items: int, dual: bool | None = None):
        self.x = binary_matrix(pairs, n_users, n_items)
        self.dual = n_items > n_users if dual is None else dual
        gram = (self.x @ self.x.T if self.dual else self.x.T @ self.x).toarray()
        sigma, self.vectors = np.linalg.eigh(gram)
        self.sigma = np.clip(sigma, 0.0, None)  # a Gram matrix is PSD; rounding can dip below 0
        self._x_t = self.x.T.tocsr()

    def solve(self, lam: float) -> "EASEScorer":
        """The scorer at L2 weight ``lam`` (> 0): one ``[min(U, I)]^2`` product."""
        if lam <= 0:
            raise ValueError(f"EASE needs lambda > 0, got {lam}")
        w = 1.0 / (self.sigma + lam)
        a = self.vectors * np.sqrt(w)
        inverse = a @ a.T  # K (dual) or P (primal); numpy computes a @ a.T as one SYRK
        if self.dual:
            # x_i^T K x_i = sum_k w_k (V^T x_i)_k^2, in chunks of items: exact in float64, no [U, I] matrix
            quad = np.empty(self.x.shape[1])
            for lo in range(0, len(quad), 4096):
                z = (self._x_t[lo:lo + 4096] @ self.vectors)  # [c, U]: rows (V^T x_i)^T
                quad[lo:lo + 4096] = (z * z) @ w
            diag = (1.0 - quad) / lam
        else:
            diag = np.einsum("ik,k,ik->i", self.vectors, w, self.vectors)
        return EASEScorer(self.x, self._x_t, inverse, diag, self.dual)


@dataclass
class EASEScorer:
    """EASE scores at one ``lambda``: ``scorer(users [B]) -> [B, n_items]`` (float32, CPU).

    Attributes:
        x: ``[U, I]`` the binary matrix; ``x_t`` its transpose (CSR).
        inverse: ``K`` ``[U, U]`` (dual) or ``P`` ``[I, I]`` (primal), float64.
        diag: ``[I]`` the diagonal of ``P``.
        dual: which of the two ``inverse`` is.
    """

    x: sp.csr_matrix
    x_t: sp.csr_matrix
    inverse: np.ndarray
    diag: np.ndarray
    dual: bool

    def __call__(self, users: Tensor) -> Tensor:
        u = users.cpu().numpy()
        rows = self.x[u]
        xp = (self.x_t @ self.inverse[u].T).T if self.dual else rows @ self.inverse  # (X P)_u = (K X)_u
        return torch.from_numpy((rows.toarray() - xp / self.diag).astype(np.float32))


class RP3beta:
    """RP3beta walk scores over the pairs ``[2, E]`` against the items ``items`` ``[M]`` (all by default).

    Args:
        pairs: ``(user, item)`` training pairs; items index ``[0, n_items)``.
        n_users: the matrix's rows.
        n_items: the matrix's columns.
        alpha: the degree exponent of the walk's item -> user and user -> item steps.
        items: the columns to score (say the target's items of a merged matrix).
    """

    def __init__(self, pairs: Tensor, n_users: int, n_items: int, alpha: float = 1.0, items: Tensor | None = None):
        x = binary_matrix(pairs, n_users, n_items)
        deg_u = np.maximum(np.asarray(x.sum(1)).ravel(), 1.0)
        deg_i = np.maximum(np.asarray(x.sum(0)).ravel(), 1.0)
        cols = np.arange(n_items) if items is None else items.cpu().numpy()
        self.alpha = alpha
        self._x = x
        self._back = (x @ sp.diags(deg_i ** -alpha)).T.tocsr()             # [I, U]: item i -> user v, d_i^-alpha
        self._forth_t = (sp.diags(deg_u ** -alpha) @ x[:, cols]).T.tocsr()  # [M, U]: user v -> item j, d_v^-alpha
        self._deg = deg_i[cols]

    def walks(self, users: Tensor) -> np.ndarray:
        """``[B, M]`` float64 walk weights before ``beta``:
        :math:`\\sum_i x_{ui} d_i^{-\\alpha} \\sum_v x_{vi} x_{vj} d_v^{-\\alpha}`."""
        co = (self._x[users.cpu().numpy()] @ self._back).toarray()  # [B, U]
        return (self._forth_t @ co.T).T

    def scores(self, users: Tensor, beta: float) -> Tensor:
        """``[B, M]`` float32 RP3beta scores of ``users`` ``[B]``."""
        return self.scores_each(users, (beta,))[0]

    def scores_each(self, users: Tensor, betas: tuple[float, ...]) -> list[Tensor]:
        """:meth:`scores` at each of ``betas``, walking once."""
        walks = self.walks(users)
        return [torch.from_numpy((walks * self._deg ** -b).astype(np.float32)) for b in betas]
