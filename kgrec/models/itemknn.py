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

import hashlib
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from kgrec.models.graph import RelationalGraph, quiet_sparse_csr
from kgrec.models.paths import PRODUCT_BYTES_PER_ENTRY, ItemWalks, _coo, _dense

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

    def __init__(self, pairs: Tensor | sp.csr_matrix, n_users: int, n_items: int, dual: bool | None = None):
        # a CSR matrix is used as it is: weighted columns (the source's, in a merged EASE filter)
        self.x = pairs.tocsr() if sp.issparse(pairs) else binary_matrix(pairs, n_users, n_items)
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
        return EASEScorer(self.x, self._x_t, inverse, diag, self.dual, lam)


@dataclass
class EASEScorer:
    """EASE scores at one ``lambda``: ``scorer(users [B]) -> [B, n_items]`` (float32, CPU).

    Attributes:
        x: ``[U, I]`` the binary matrix; ``x_t`` its transpose (CSR).
        inverse: ``K`` ``[U, U]`` (dual) or ``P`` ``[I, I]`` (primal), float64.
        diag: ``[I]`` the diagonal of ``P``.
        dual: which of the two ``inverse`` is.
        lam: the L2 weight.
    """

    x: sp.csr_matrix
    x_t: sp.csr_matrix
    inverse: np.ndarray
    diag: np.ndarray
    dual: bool
    lam: float = 0.0

    def __call__(self, users: Tensor, items: np.ndarray | None = None) -> Tensor:
        """``[B, I]`` scores of ``users`` ``[B]``, or ``[B, M]`` on the columns ``items`` ``[M]`` alone."""
        u = users.cpu().numpy()
        rows = self.x[u]
        if self.dual:  # (X P)_u = (K X)_u
            xp = ((self.x_t if items is None else self.x_t[items]) @ self.inverse[u].T).T
        else:
            xp = rows @ (self.inverse if items is None else self.inverse[:, items])
        if items is not None:
            rows, diag = rows[:, items], self.diag[items]
        else:
            diag = self.diag
        return torch.from_numpy((rows.toarray() - xp / diag).astype(np.float32))

    def item_weights(self, items: np.ndarray, neighbours: int, chunk: int = 1024) -> tuple[Tensor, Tensor]:
        r"""The weights ``B[:, items]`` kept to the ``neighbours`` of largest magnitude per column, as
        COO ``(indices [2, nnz] (row = item, column = position in items), values [nnz])`` float32.

        :math:`B_{:j} = -P_{:j} / P_{jj}` off the diagonal (0 on it). In the dual form a chunk of
        columns is :math:`P_{:J} = (E_J - X^\top K X_J) / \lambda`: two products with the sparse
        ``X``, ``O(nnz(X_J) U + nnz(X) |J|)``, never a ``[I, I]`` matrix.
        """
        n = self.x.shape[1]
        rows, cols, vals = [], [], []
        keep = min(neighbours, n)
        scale = torch.from_numpy(-1.0 / self.diag).float()  # B_{:j} = -P_{:j} / P_jj
        if self.dual:  # X^T as a float32 torch CSR: the [I, c] products run in torch, in float32
            xt = self.x_t.astype(np.float32)
            with quiet_sparse_csr():
                x_t = torch.sparse_csr_tensor(torch.from_numpy(xt.indptr).long(), torch.from_numpy(xt.indices).long(),
                                              torch.from_numpy(xt.data), size=xt.shape, check_invariants=False)
        for lo in range(0, len(items), chunk):
            cols_j = items[lo:lo + chunk]
            j, at = torch.from_numpy(cols_j).long(), torch.arange(len(cols_j))
            if self.dual:
                kx = torch.from_numpy(np.asarray(self.x_t[cols_j] @ self.inverse).T).float()  # [U, c] = K X_J
                p = torch.sparse.mm(x_t, kx).mul_(-1.0 / self.lam)  # [I, c]: -X^T K X_J / lambda
                p[j, at] += 1.0 / self.lam
            else:
                p = torch.from_numpy(self.inverse[:, cols_j]).float()
            b = p.mul_(scale[j])
            b[j, at] = 0.0
            top = b.abs().topk(keep, dim=0).indices  # [keep, c]
            rows.append(top.T.reshape(-1))
            cols.append(torch.arange(lo, lo + len(cols_j)).repeat_interleave(keep))
            vals.append(b.gather(0, top).T.reshape(-1))
        if not vals:
            return torch.zeros(2, 0, dtype=torch.long), torch.zeros(0)
        return torch.stack([torch.cat(rows), torch.cat(cols)]), torch.cat(vals)


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


#: the weight of the source's interactions in the merged EASE filter (0: the target's alone); each is a
#: candidate on validation (0.5 helped sport -> cloth by 11 % and was neutral on electronic -> phone,
#: docs/results.md)
EASE_SOURCE_WEIGHTS = (0.0, 0.5)
#: the largest ``min(users, items)`` an EASE filter is offered at: its eigendecomposition costs that cubed
#: in time and three float64 matrices of that squared in memory (6.4 GB at 16,384)
EASE_MAX_SIDE = 16_384
#: the ``lambda`` best by their exact scores whose truncated weights are computed and scored: truncation
#: can move the best ``lambda`` (electronic -> phone, source weight 0.5: exact best at 100, truncated at
#: 50, which was second exactly), and a truncation costs several times an exact scoring
EASE_SHORTLIST = 2


class EASEFilter:
    """EASE as a graph filter (:mod:`kgrec.models.paths`): a user's scores are their interactions
    ``x_u`` (target items 1, source items ``source_weight``) times EASE's item–item weights ``B``
    into the target items, kept to the ``neighbours`` largest in magnitude per item, so that a run
    saves them as the same sparse :class:`~kgrec.models.paths.ItemWalks` operator as a walk's.

    The user–item edges of ``graph`` (its training interactions) make ``X``; a run chooses ``lambda``
    on validation among :data:`EASE_LAMBDAS` (:meth:`fits`): the exact scores shortlist
    :data:`EASE_SHORTLIST` of them, and the truncated weights it serves choose among those.

    Args:
        graph: the graph whose user -> item edges are the interactions.
        targets: ``[M]`` the target items (type-local); every other item is the source's.
        source_weight: the source interactions' weight (0 leaves them out).
        neighbours: the weights kept per target item.
        lam: EASE's L2 weight, when already chosen (a saved run's).
    """

    def __init__(self, graph: RelationalGraph, targets: Tensor, source_weight: float = 0.0, neighbours: int = 128,
                 lam: float | None = None):
        self.graph, self.source_weight, self.neighbours, self.lam = graph, source_weight, neighbours, lam
        uo, un = graph.offsets["user"], graph.sizes["user"]
        io, n_items = graph.offsets["item"], graph.sizes.get("item", 0)
        src, dst = graph.edge_index
        edge = (src >= uo) & (src < uo + un) & (dst >= io) & (dst < io + n_items)
        users, items = (src[edge] - uo).cpu().numpy(), (dst[edge] - io).cpu().numpy()
        is_target = np.zeros(n_items, dtype=bool)
        is_target[targets.cpu().numpy()] = True
        self._item_weight = np.where(is_target, 1.0, source_weight)
        keep = self._item_weight[items] > 0
        x = sp.csr_matrix((np.ones(int(keep.sum())), (users[keep], items[keep])), shape=(un, n_items))
        x.sum_duplicates()
        x.data = self._item_weight[x.indices]  # each distinct pair once, at its domain's weight
        self.x = x
        self._rows = torch.arange(n_items, device=graph.device) + io
        self._operators: dict[bytes, ItemWalks] = {}

    @property
    def side(self) -> int:
        """``min(users, items)`` with interactions: what the eigendecomposition's cost grows with."""
        return int(min((np.diff(self.x.indptr) > 0).sum(), (np.bincount(self.x.indices, minlength=1) > 0).sum()))

    @property
    def walk_key(self) -> dict:
        """What the saved operator depends on besides the graph and the items."""
        return {"kind": "ease", "source_weight": self.source_weight, "lambda": self.lam, "neighbours": self.neighbours}

    def describe(self) -> dict:
        """The filter's settings, as a run records them (``path_filter``)."""
        return dict(self.walk_key)

    def _ease(self) -> EASE:
        return EASE(self.x, *self.x.shape)

    def truncate(self, scorer: "EASEScorer", items: Tensor) -> ItemWalks:
        """The operator of ``scorer``'s weights into ``items`` ``[M]``, kept to the neighbours."""
        indices, values = scorer.item_weights(items.cpu().numpy(), self.neighbours)
        dev = self.graph.device
        indices = indices.to(dev)
        return ItemWalks(self._rows, items.to(dev), _coo(indices[0], indices[1], values.to(dev),
                                                           (len(self._rows), len(items))))

    def fits(self, items: Tensor, lambdas: tuple[float, ...] = EASE_LAMBDAS):
        """``(lambda, scorer)`` for each of ``lambdas``, one eigendecomposition for all: the exact
        scorer (call it with ``items`` ``[M]``); :meth:`truncate` gives the operator a run serves."""
        ease = self._ease()
        for lam in lambdas:
            yield lam, ease.solve(lam)

    def use(self, lam: float, walks: ItemWalks) -> None:
        """Score with ``walks``, the weights at ``lam`` (from :meth:`fits`, or saved)."""
        self.lam = lam
        self._operators = {walks.items.cpu().numpy().tobytes(): walks}

    def fingerprint(self, items: Tensor) -> bytes:
        """What a fit depends on: the weighted interactions, the items scored and the neighbours kept."""
        h = hashlib.blake2b(digest_size=16)
        for part in (self.x.indptr, self.x.indices, self.x.data, items.cpu().numpy(),
                     np.array([self.neighbours], dtype=np.int64)):
            h.update(np.ascontiguousarray(part).tobytes())
        return h.digest()

    def item_walks(self, items: Tensor) -> ItemWalks:
        """The operator of ``items`` ``[M]`` (type-local) at the chosen ``lambda``, computed once."""
        key = items.cpu().numpy().tobytes()
        if key not in self._operators:
            if self.lam is None:
                raise ValueError("EASEFilter has no lambda yet: fit it on validation first")
            self._operators[key] = self.truncate(self._ease().solve(self.lam), items)
        return self._operators[key]

    def attach(self, walks: ItemWalks) -> None:
        """Use a saved operator for its items instead of computing it."""
        self._operators[walks.items.cpu().numpy().tobytes()] = walks

    def _first(self, rows: sp.csr_matrix, walks: ItemWalks) -> Tensor:
        coo, dev = rows.tocoo(), self.graph.device
        return _coo(torch.from_numpy(coo.row).long().to(dev), torch.from_numpy(coo.col).long().to(dev),
                    torch.from_numpy(coo.data).float().to(dev), (rows.shape[0], len(walks.rows)))

    @torch.no_grad()
    def scores(self, users: Tensor, items: Tensor) -> Tensor:
        """``[B, M]`` EASE scores of ``users`` ``[B]`` against ``items`` ``[M]`` (type-local)."""
        walks = self.item_walks(items)
        with quiet_sparse_csr():  # torch's sparse product of two COO matrices goes through CSR
            return _dense(torch.sparse.mm(self._first(self.x[users.cpu().numpy()], walks), walks.op))

    @torch.no_grad()
    def history_scores(self, items: Tensor, candidates: Tensor) -> Tensor:
        """``[1, M]`` scores of a new user who interacted with ``items`` (distinct, type-local)."""
        walks = self.item_walks(candidates)
        i = np.unique(items.cpu().numpy())
        row = sp.csr_matrix((self._item_weight[i], (np.zeros(len(i), dtype=np.int64), i)), shape=(1, self.x.shape[1]))
        row.eliminate_zeros()
        return _dense(torch.sparse.mm(self._first(row, walks), walks.op))

    def batch_bytes(self, items: Tensor) -> int:
        """Bytes per user :meth:`scores` holds besides its ``[B, M]`` result, at most."""
        return PRODUCT_BYTES_PER_ENTRY * len(items)
