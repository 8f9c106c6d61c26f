"""Content-based item kNN: the baselines a new item can be ranked by without any interaction.

A user's score for item ``i`` is the summed cosine similarity between ``i`` and the items of the
user's training history ``H(u)``::

    s(u, i) = sum_{j in H(u)} cos(f_j, f_i) = (H F)_u · F_i        (rows of F L2-normalised)

with ``f_i`` the item's content vector: for ``kg_knn`` the entities the item is linked to (KG
links, attribute entities such as brands and categories, and with ``hops = 2`` those entities'
KG neighbours), IDF-weighted; for ``text_knn`` the TF-IDF vector of the item's text (unigrams and
bigrams, sublinear tf). It is the classic content-based neighbourhood recommender (Lops et al.,
*Content-based Recommender Systems*, 2011); a new item is scored as soon as it has content.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor


def entity_features(item_entity: tuple[np.ndarray, np.ndarray], kg: tuple[np.ndarray, np.ndarray],
                    n_items: int, n_entities: int, hops: int = 1) -> sp.csr_matrix:
    """``[n_items, n_entities]`` IDF-weighted, row-normalised item-entity incidence; ``hops = 2`` adds each
    linked entity's KG neighbours (either direction) at half weight."""
    ones = np.ones(len(item_entity[0]), dtype=np.float32)
    m = sp.csr_matrix((ones, item_entity), shape=(n_items, n_entities))
    m.data[:] = 1.0  # an item linked twice to one entity counts once
    if hops >= 2 and len(kg[0]):
        a = sp.csr_matrix((np.ones(len(kg[0]), dtype=np.float32), kg), shape=(n_entities, n_entities))
        a = ((a + a.T) > 0).astype(np.float32)
        reach = sp.csr_matrix(((m @ a) > 0).astype(np.float32))
        m = sp.csr_matrix(m + 0.5 * (reach - reach.multiply(m > 0)))
    df = np.asarray((m > 0).sum(0)).ravel()
    idf = np.log((1 + n_items) / (1 + df)).astype(np.float32) + 1.0
    return _normalise_rows(m @ sp.diags(idf))


def text_features(texts: list[str]) -> sp.csr_matrix:
    """``[n, vocabulary]`` TF-IDF rows (unigrams and bigrams, sublinear tf), L2-normalised; an empty
    text gives an empty row."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = ["" if not isinstance(t, str) else t for t in texts]
    if not any(t.strip() for t in texts):
        return sp.csr_matrix((len(texts), 1), dtype=np.float32)
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=1 if len(texts) < 50 else 2, sublinear_tf=True,
                          max_features=200_000, dtype=np.float32)
    return sp.csr_matrix(vec.fit_transform(texts))


def _normalise_rows(m: sp.spmatrix) -> sp.csr_matrix:
    m = sp.csr_matrix(m, dtype=np.float32)
    norms = np.sqrt(np.asarray(m.multiply(m).sum(1)).ravel())
    return sp.csr_matrix(sp.diags(1.0 / np.where(norms > 0, norms, 1.0)).astype(np.float32) @ m)


class ContentKNN:
    """Summed cosine similarity to the user's history (module docstring).

    Args:
        features: ``[n_items, f]`` sparse content rows, L2-normalised (all item indices).
        history: ``[2, P]`` (user, item) training pairs (any domain).
        num_users: user index bound.
    """

    def __init__(self, features: sp.csr_matrix, history: Tensor, num_users: int):
        n_items = features.shape[0]
        users, items = history[0].numpy(), history[1].numpy()
        h = sp.csr_matrix((np.ones(len(users), dtype=np.float32), (users, items)), shape=(num_users, n_items))
        h.data[:] = 1.0
        self.profiles = sp.csr_matrix(h @ features)  # [U, f]
        self.features = features

    def scores(self, users: Tensor, items: Tensor) -> Tensor:
        """``[B, M]`` scores of ``users`` against ``items`` (indices)."""
        f_items = self.features[items.cpu().numpy()]
        s = self.profiles[users.cpu().numpy()] @ f_items.T
        return torch.from_numpy(np.asarray(s.todense(), dtype=np.float32))
