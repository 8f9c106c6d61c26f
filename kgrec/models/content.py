"""Content-based item kNN: the baselines a new item can be ranked by without any interaction.

A user's score for item ``i`` is the summed cosine similarity between ``i`` and the items of the
user's training history ``H(u)``::

    s(u, i) = sum_{j in H(u)} cos(f_j, f_i) = (H F)_u · F_i        (rows of F L2-normalised)

with ``f_i`` the item's content vector: for ``kg_knn`` the entities the item is linked to (KG
links, attribute entities such as brands and categories, and with ``hops = 2`` those entities'
KG neighbours), IDF-weighted; for ``text_knn`` the TF-IDF vector of the item's text (unigrams and
bigrams, sublinear tf). It is the classic content-based neighbourhood recommender (Lops et al.,
*Content-based Recommender Systems*, 2011); a new item is scored as soon as it has content.

kgrec itself uses the same scores for new items: :class:`NewItemTerms` adds a content kNN term and
a shift for items without interactions to a run's blended scores, both chosen on validation.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from kgrec.errors import KgrecError
from kgrec.graph.artifact import SOURCE, TARGET, GraphArtifact
from kgrec.models.paths import standardise

#: the content a run's :class:`NewItemTerms` may use: entity features at 1 or 2 hops, or item text
CONTENT_KINDS = ("entities", "text")


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

    def history_scores(self, items: Tensor, candidates: Tensor) -> Tensor:
        """``[1, M]`` scores of a user the kNN never saw, whose history is ``items``, against ``candidates``."""
        profile = sp.csr_matrix(np.asarray(self.features[np.unique(items.cpu().numpy())].sum(0)))
        s = profile @ self.features[candidates.cpu().numpy()].T
        return torch.from_numpy(np.asarray(s.todense(), dtype=np.float32))


def item_content(artifact: GraphArtifact, kind: str, hops: int = 1) -> sp.csr_matrix:
    """The content rows of every item: ``kind = "entities"`` (:func:`entity_features` of the items'
    KG links and attribute entities, ``hops``) or ``"text"`` (:func:`text_features` of the items' text).

    Raises:
        KgrecError: the graph has no item-entity edges (entities) or no item text (text).
    """
    n_items = int(artifact.data["item"].num_nodes)
    if kind == "text":
        if not _has_text(artifact):
            raise KgrecError("text content needs item text: give the spec's items a title/text column")
        return text_features(artifact.nodes["item"]["text"].tolist())
    if kind != "entities":
        raise ValueError(f"content kind must be one of {CONTENT_KINDS}, got {kind!r}")
    data = artifact.data
    links = [data[et].edge_index for et in data.edge_types if et[0] == "item" and et[2] == "entity"]
    if not links:
        raise KgrecError("entity content needs items linked to KG or attribute entities ([[links]] or [[attributes]])")
    ie = torch.cat(links, 1).numpy()
    kg = [data[et].edge_index for et in data.edge_types
          if et[0] == "entity" and et[2] == "entity" and not et[1].startswith("rev_")]
    kg = torch.cat(kg, 1).numpy() if kg else np.empty((2, 0), dtype=np.int64)
    return entity_features((ie[0], ie[1]), (kg[0], kg[1]), n_items, int(data["entity"].num_nodes), hops)


def _has_text(artifact: GraphArtifact) -> bool:
    """Whether any item of ``artifact`` has a non-blank text."""
    items = artifact.nodes["item"]
    return "text" in items and any(isinstance(t, str) and t.strip() for t in items["text"])


def content_settings(artifact: GraphArtifact) -> list[dict]:
    """Every content kNN the artifact allows, as ``{"kind", "hops", "history"}`` settings: entities at
    1 hop (and 2 where the KG has entity-entity edges) when items link to entities, text when items
    have text; each with the target history, and both domains' where there is a source."""
    data = artifact.data
    kinds = []
    if any(et[0] == "item" and et[2] == "entity" for et in data.edge_types):
        kinds.append(("entities", 1))
        if any(et[0] == "entity" and et[2] == "entity" for et in data.edge_types):
            kinds.append(("entities", 2))
    if _has_text(artifact):
        kinds.append(("text", 1))
    has_source = artifact.split("train", SOURCE).shape[1] > 0
    return [{"kind": k, "hops": h, "history": hist} for k, h in kinds
            for hist in (("target", "both") if has_source else ("target",))]


def content_knn(artifact: GraphArtifact, setting: dict, features: sp.csr_matrix | None = None) -> ContentKNN:
    """The :class:`ContentKNN` of a :func:`content_settings` setting over ``artifact``'s training pairs
    (``features`` when already computed for its kind and hops)."""
    if features is None:
        features = item_content(artifact, setting["kind"], setting["hops"])
    domains = (TARGET,) if setting["history"] == "target" else (SOURCE, TARGET)
    pairs = torch.cat([artifact.split("train", d) for d in domains], 1)
    return ContentKNN(features, pairs, int(artifact.data["user"].num_nodes))


@dataclass
class NewItemTerms:
    """What a run adds to its blended scores of new items (items without an interaction edge), both
    chosen on validation (:func:`kgrec.train.trainer.choose_new_item_terms`)::

        s(u, i) = z(blend)(u, i) + [i is new] · (content_weight · z(content kNN)(u, i) + cold_shift)

    ``z`` standardises each user's row over the candidate items. The content term reaches a new
    item through its entities or words (user -> item -> entity or word -> new item) and orders the
    new items among themselves; the shift then places them among the warm ones, whose blended
    scores carry interactions a new item cannot have. A warm item's score, and so the order of the
    warm items, is the blend's. Both 0 (the default) leave the blend as it is.

    Attributes:
        content: the content kNN, or ``None``.
        setting: its :func:`content_settings` setting (``{}`` without one).
        content_weight: the weight of its standardised scores.
        cold: ``[n_items]`` bool over every item index: no interaction edge in the graph scored.
        cold_shift: added to the standardised scores of those items.
    """

    content: ContentKNN | None = None
    setting: dict = field(default_factory=dict)
    content_weight: float = 0.0
    cold: Tensor | None = None
    cold_shift: float = 0.0

    @property
    def active(self) -> bool:
        return self.cold is not None and (bool(self.content_weight and self.content is not None) or bool(self.cold_shift))

    def content_scores(self, users: Tensor, items: Tensor) -> Tensor | None:
        """``[B, M]`` content kNN scores, or ``None`` when the content term is off."""
        return self.content.scores(users, items) if self.content is not None and self.content_weight else None

    def apply(self, scores: Tensor, items: Tensor, content: Tensor | None = None) -> Tensor:
        """The final ``[B, M]`` scores from the blended ``scores`` against ``items`` (indices) and the users'
        ``content`` scores (:meth:`content_scores`); ``scores`` unchanged when no term is on."""
        if not self.active:
            return scores
        z_content = standardise(content.to(scores.device)) if content is not None and self.content_weight else None
        return self.combine(standardise(scores), z_content, self.new_of(items, scores.device))

    def new_of(self, items: Tensor, device: torch.device | str) -> Tensor:
        """``[M]`` float: 1 for the new items among ``items``, else 0."""
        return self.cold.to(device)[items.to(device)].float()

    def combine(self, z_scores: Tensor, z_content: Tensor | None, new: Tensor) -> Tensor:
        """:meth:`apply` from its standardised parts (``z_content`` ``None``: no content term) and
        :meth:`new_of`: what a choice among many weights computes once per batch."""
        out = z_scores
        if z_content is not None and self.content_weight:
            out = out + self.content_weight * z_content * new.to(out.dtype)
        return out + self.cold_shift * new.to(out.dtype)

    def state(self) -> dict:
        """What a run saves of the terms (``model.pt``, ``results.json``); :func:`new_item_terms` rebuilds them."""
        return {"content": dict(self.setting) if self.content_weight else None,
                "content_weight": self.content_weight, "cold_shift": self.cold_shift}


def new_item_terms(state: dict, artifact: GraphArtifact, cold: Tensor) -> NewItemTerms | None:
    """The :class:`NewItemTerms` of a saved :meth:`NewItemTerms.state` over ``artifact`` (its content kNN
    refitted on the artifact's training pairs), ``cold`` ``[n_items]`` marking the items without
    interaction edges in the graph scored; ``None`` when the state has no term on."""
    weight, shift = float(state.get("content_weight") or 0.0), float(state.get("cold_shift") or 0.0)
    setting = state.get("content") or {}
    terms = NewItemTerms(content_knn(artifact, setting) if weight and setting else None, dict(setting), weight,
                         cold, shift)
    return terms if terms.active else None
