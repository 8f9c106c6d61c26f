"""The relational encoder: ID embeddings (plus optional input features) per node
type, L relational layers with parameters shared by both domains, layer
outputs combined."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import NamedTuple

import torch
from torch import Tensor, nn

from kgrec.models.graph import RelationalGraph
from kgrec.models.layers import COMPOSITIONS, INITS, CompGCNLayer, RGCNLayer

LAYERS = ("compgcn", "rgcn")
COMBINES = ("mean", "concat", "last")
ACTIVATIONS = {"none": nn.Identity, "tanh": nn.Tanh, "relu": nn.ReLU}
HEADS = ("dot", "distmult", "bilinear", "mlp")
PATH_GRAPHS = ("auto", "merged", "target")
COLD_ITEM_IDS = ("auto", "keep", "zero")


@dataclass(frozen=True)
class ModelConfig:
    """Encoder and head. ``item_features``: ``"none"``, ``"text"`` (TF-IDF + SVD of the
    items' text, ``text_dim`` wide) or the path of a vector file (see :mod:`kgrec.models.features`).
    ``path_hops``/``path_alpha``: the graph-filter scores blended with the head's
    (:mod:`kgrec.models.paths`; ``path_hops = 0`` leaves them out). ``path_graph``: what a
    transfer run's walks cross, ``"merged"`` (where the domains meet), ``"target"`` (the target's
    own graph) or ``"auto"`` (both, the one better on validation kept); a target-only run's
    walks always stay on the target's graph. ``path_ease``: EASE (closed form,
    :class:`~kgrec.models.itemknn.EASEFilter`, its weights kept to ``ease_neighbours`` per item)
    is a filter candidate too, over the target's interactions and, in the merged graph, with the
    source's weighted in.

    New items (:mod:`kgrec.eval.items`): ``cold_item_id = "zero"`` gives every item with no
    interaction edge in the graph propagated over a zero ID embedding, so that its score comes from
    its features and its KG neighbours through the layers, never from an ID vector no interaction
    trained; ``"keep"`` keeps every ID vector; ``"auto"`` (the default) is ``"zero"`` on a graph that
    holds new items (``[cold_start] items``) and ``"keep"`` elsewhere (:func:`resolve_cold_item_id`);
    ``item_id_dropout`` zeroes each item's ID embedding with that probability at every
    training step (DropoutNet, Volkovs et al. 2017), so that the layers learn to do without it.
    ``new_item_terms``: where the graph holds new items (``[cold_start] items``), the run chooses on
    validation a content kNN term and a shift for the items without an interaction edge, added to
    their blended scores
    (:class:`~kgrec.models.content.NewItemTerms`)."""

    dim: int = field(default=64, metadata={"lo": 1})
    layers: int = field(default=2, metadata={"lo": 0, "hi": 32})
    layer: str = field(default="compgcn", metadata={"choices": LAYERS})
    composition: str = field(default="none", metadata={"choices": COMPOSITIONS})
    init: str = field(default="identity", metadata={"choices": INITS})
    transform: bool = False
    num_bases: int = field(default=8, metadata={"lo": 0})
    combine: str = field(default="mean", metadata={"choices": COMBINES})
    activation: str = field(default="none", metadata={"choices": tuple(ACTIVATIONS)})
    dropout: float = field(default=0.0, metadata={"lo": 0.0, "hi": 0.9})
    head: str = field(default="dot", metadata={"choices": HEADS})
    item_features: str = "none"
    text_dim: int = field(default=64, metadata={"lo": 2})
    path_hops: int = field(default=3, metadata={"lo": 0, "hi": 15})
    path_alpha: float = field(default=0.75, metadata={"lo": 0.0, "hi": 1.0})
    path_graph: str = field(default="auto", metadata={"choices": PATH_GRAPHS})
    path_ease: bool = True
    ease_neighbours: int = field(default=128, metadata={"lo": 1, "hi": 100_000})
    cold_item_id: str = field(default="auto", metadata={"choices": COLD_ITEM_IDS})
    item_id_dropout: float = field(default=0.0, metadata={"lo": 0.0, "hi": 0.9})
    new_item_terms: bool = True


class EncoderOutput(NamedTuple):
    """Node embeddings ``h`` ``[N, out_dim]``, relation embeddings ``z`` ``[R, dim]`` after the
    last layer, the layer-0 inputs ``h0`` ``[N, dim]`` (what L2 regularisation acts on) and
    the outputs of layers 1..L (``hidden``, each ``[N, dim]``; the contrastive views)."""

    h: Tensor
    z: Tensor
    h0: Tensor
    hidden: tuple[Tensor, ...] = ()


class Encoder(nn.Module):
    r"""Node embeddings of the whole merged graph.

    .. math::
        h^{(0)}_v = e_v + P_{t(v)} f_v, \qquad
        (h^{(l+1)}, z^{(l+1)}) = \sigma(\mathrm{layer}_l(h^{(l)}, z^{(l)})), \qquad
        h_v = \mathrm{combine}(h^{(0)}_v, \dots, h^{(L)}_v)

    with :math:`e_v` the ID embedding of v, :math:`f_v` its optional input
    features (e.g. item text vectors) projected by its type's :math:`P_t`, and
    combine the mean, the concatenation or the last layer.

    Args:
        sizes: node type -> number of nodes, in the graph's flattening order.
        num_relations: R.
        config: a :class:`ModelConfig`.
        features: node type -> ``[n_t, f_t]`` float input features (optional).

    Shapes:
        forward(graph) -> :class:`EncoderOutput` ``(h [N, out_dim], z [R, dim], h0 [N, dim])``.
    """

    def __init__(self, sizes: dict[str, int], num_relations: int, config: ModelConfig,
                 features: dict[str, Tensor] | None = None):
        super().__init__()
        self.config = config
        self.sizes = dict(sizes)
        d = config.dim
        self.embeddings = nn.ModuleDict({t: nn.Embedding(n, d) for t, n in sizes.items()})
        features = features or {}
        for t, f in features.items():
            if f.shape[0] != sizes[t]:
                raise ValueError(f"features of {t!r} have {f.shape[0]} rows, the graph has {sizes[t]} nodes")
            self.register_buffer(f"features_{t}", f.float())
        self.projections = nn.ModuleDict({t: nn.Linear(f.shape[1], d, bias=False) for t, f in features.items()})
        self.relations = nn.Embedding(num_relations, d)
        if config.layer == "compgcn":
            self.layers = nn.ModuleList(CompGCNLayer(d, d, config.composition, config.init, config.transform) for _ in range(config.layers))
        else:
            self.layers = nn.ModuleList(RGCNLayer(d, d, num_relations, config.num_bases) for _ in range(config.layers))
        self.activation = ACTIVATIONS[config.activation]()
        self.dropout = nn.Dropout(config.dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for emb in self.embeddings.values():
            nn.init.normal_(emb.weight, std=0.1)
        if self.config.composition == "mult" and self.config.init == "identity":
            nn.init.ones_(self.relations.weight)  # h_u * z_r starts as h_u: plain propagation
        elif self.config.composition == "sub" and self.config.init == "identity":
            nn.init.zeros_(self.relations.weight)  # h_u - z_r starts as h_u
        else:
            nn.init.normal_(self.relations.weight, std=0.1)
        for m in list(self.projections.values()) + list(self.layers):
            m.reset_parameters()

    @property
    def out_dim(self) -> int:
        c = self.config
        return c.dim * (c.layers + 1) if c.combine == "concat" else c.dim

    def inputs(self, graph: RelationalGraph | None = None) -> Tensor:
        """``h^{(0)}``: ``[N, dim]``, node types in ``sizes`` order. With ``graph``, item ID embeddings are
        zeroed per ``cold_item_id`` (items without interactions in ``graph``) and, in training mode, per
        ``item_id_dropout``."""
        parts = []
        for t, emb in self.embeddings.items():
            x = emb.weight
            if t == "item" and graph is not None:
                keep = self._item_id_keep(graph)
                if keep is not None:
                    x = x * keep.unsqueeze(1)
            if t in self.projections:
                x = x + self.projections[t](getattr(self, f"features_{t}"))
            parts.append(x)
        return torch.cat(parts)

    def _item_id_keep(self, graph: RelationalGraph) -> Tensor | None:
        """``[n_items]`` float, 0 where the item's ID embedding is left out, or ``None`` for all kept."""
        c = self.config
        drop = c.item_id_dropout if self.training else 0.0
        if c.cold_item_id == "keep" and drop == 0:
            return None
        n = self.sizes["item"]
        keep = torch.ones(n, device=self.embeddings["item"].weight.device)
        if c.cold_item_id == "zero":
            keep = keep * items_with_interactions(graph).to(keep.device)
        if drop > 0:
            keep = keep * (torch.rand(n, device=keep.device) >= drop)
        return keep

    def forward(self, graph: RelationalGraph, inputs: Tensor | None = None, noise: float = 0.0) -> "EncoderOutput":
        """Propagate over ``graph``; ``inputs`` ``[N', dim]`` replaces :meth:`inputs` (e.g. for a
        graph with extra nodes, such as a new user). ``noise`` > 0 perturbs every layer's output
        by a random vector of that length in the output's orthant (SimGCL, Yu et al. 2022;
        XSimGCL, Yu et al. 2023): the augmented view the contrastive loss compares."""
        h0, z = (self.inputs(graph) if inputs is None else inputs), self.relations.weight
        h, outs = h0, [h0]
        for layer in self.layers:
            h, z = layer(self.dropout(h), z, graph)
            h = self.activation(h)
            if noise > 0:
                h = h + torch.sign(h) * nn.functional.normalize(torch.rand_like(h), dim=-1) * noise
            outs.append(h)
        if self.config.combine == "mean":
            # summed in place into one new tensor: every [N, d] temporary costs a pass over memory
            h = outs[0] if len(outs) == 1 else outs[0] + outs[1]
            for o in outs[2:]:
                h.add_(o)
            if len(outs) > 1:
                h.div_(len(outs))
        elif self.config.combine == "concat":
            h = torch.cat(outs, 1)
        return EncoderOutput(h, z, h0, tuple(outs[1:]))


def resolve_cold_item_id(config: ModelConfig, has_new_items: bool) -> ModelConfig:
    """``config`` with ``cold_item_id = "auto"`` made ``"zero"`` when the graph holds new items, else ``"keep"``."""
    if config.cold_item_id != "auto":
        return config
    return replace(config, cold_item_id="zero" if has_new_items else "keep")


def items_with_interactions(graph: RelationalGraph) -> Tensor:
    """``[n_items]`` bool: whether the item has an interaction edge (``interacts_*`` or its reverse)
    in ``graph``; computed once per graph."""
    if "items-interacting" not in graph._cache:
        lo, n = graph.offsets["item"], graph.sizes["item"]
        rels = torch.tensor([r for r, (_, rel, _) in enumerate(graph.relations) if "interacts_" in rel],
                            dtype=torch.long, device=graph.device)
        m = torch.isin(graph.edge_type, rels)
        ends = graph.edge_index[:, m].flatten()
        ends = ends[(ends >= lo) & (ends < lo + n)] - lo
        has = torch.zeros(n, dtype=torch.bool, device=graph.device)
        has[ends] = True
        graph._cache["items-interacting"] = has
    return graph._cache["items-interacting"]
