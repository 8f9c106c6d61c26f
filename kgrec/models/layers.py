"""Relational message-passing layers over a :class:`RelationalGraph`.

Both layers take and return ``(x, rel)``: node features ``[N, d]`` and relation
embeddings ``[R, d]``, so they stack in one :class:`~kgrec.models.Encoder`.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from kgrec.models.graph import RelationalGraph

COMPOSITIONS = ("sub", "mult", "none")
INITS = ("identity", "xavier")


class CompGCNLayer(nn.Module):
    r"""Composition-based relational graph convolution (CompGCN, Vashishth et al. 2020).

    .. math::
        h_v' = W_{self} h_v + b + \sum_{(u, r, v) \in E} c_{uv}\, W_{dir(r)}\, \phi(h_u, z_r),
        \qquad z_r' = W_{rel} z_r

    with :math:`\phi(h, z) = h - z` (``"sub"``) or :math:`h \odot z` (``"mult"``),
    :math:`dir(r)` forward or reverse (``rev_`` relations), and
    :math:`c_{uv} = 1/\sqrt{d^{out}_u d^{in}_v}`.

    Since :math:`W_{dir}` is linear, messages are summed per direction before it
    is applied. ``"sub"`` is two CSR products per direction,
    :math:`A_{dir} H - B_{dir} Z` (:math:`B` sums :math:`c_{uv}` per relation);
    ``"mult"`` gathers per (relation, destination) pair with one CSR product,
    gates each row by its :math:`z_r` and scatters with another; ``"none"``
    ignores the relation (plain normalised propagation; without transforms both
    directions are one CSR product).
    Cost: O(E·d + N·d²) time (O(E·d) without transforms), O(E + N·d) memory.

    With ``transform=False`` the weights are left out:
    :math:`h_v' = \sum c_{uv} \phi(h_u, z_r)` and :math:`z_r' = z_r`.

    Args:
        in_dim: input feature size.
        out_dim: output feature size.
        composition: ``"sub"``, ``"mult"`` or ``"none"``.
        transform: apply :math:`W_{self}, W_{dir}, W_{rel}`; without them the layer has no parameters.
        init: ``"identity"`` (square layers start at :math:`W_{dir} = W_{rel} = I`,
            :math:`W_{self} = 0`, i.e. as normalised propagation) or ``"xavier"``.

    Shapes:
        x ``[N, in_dim]``, rel ``[R, in_dim]`` -> ``[N, out_dim]``, ``[R, out_dim]``.
    """

    def __init__(self, in_dim: int, out_dim: int, composition: str = "sub", init: str = "identity",
                 transform: bool = True):
        super().__init__()
        if not transform and in_dim != out_dim:
            raise ValueError("a layer without transforms needs in_dim == out_dim")
        self.transform = transform
        if composition not in COMPOSITIONS:
            raise ValueError(f"composition must be one of {COMPOSITIONS}, got {composition!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        self.composition, self.init = composition, init
        if transform:
            self.w_forward = nn.Linear(in_dim, out_dim, bias=False)
            self.w_reverse = nn.Linear(in_dim, out_dim, bias=False)
            self.w_self = nn.Linear(in_dim, out_dim, bias=True)
            self.w_rel = nn.Linear(in_dim, out_dim, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if not self.transform:
            return
        for lin in (self.w_forward, self.w_reverse, self.w_self, self.w_rel):
            lin.reset_parameters()
        if self.init == "identity" and self.w_forward.weight.shape[0] == self.w_forward.weight.shape[1]:
            # start as plain normalised propagation (LightGCN-like), learn the relational part from there
            for lin in (self.w_forward, self.w_reverse, self.w_rel):
                nn.init.eye_(lin.weight)
            nn.init.zeros_(self.w_self.weight)
            nn.init.zeros_(self.w_self.bias)

    def forward(self, x: Tensor, rel: Tensor, graph: RelationalGraph) -> tuple[Tensor, Tensor]:
        if self.composition == "none" and not self.transform:
            return graph.adjacency(None)(x), rel  # both directions in one product
        out = self.w_self(x) if self.transform else 0
        for reverse in (False, True):
            if self.composition == "none":
                agg = graph.adjacency(reverse)(x)
            elif self.composition == "sub":
                agg = graph.adjacency(reverse)(x) - graph.relation_incidence(reverse)(rel)
            else:
                stacked = graph.relation_rows(reverse)
                agg = stacked.scatter(stacked.gather(x) * rel[stacked.relation])
            if self.transform:
                agg = (self.w_reverse if reverse else self.w_forward)(agg)
            out = out + agg
        return out, (self.w_rel(rel) if self.transform else rel)


class RGCNLayer(nn.Module):
    r"""Relational GCN with basis decomposition (Schlichtkrull et al. 2018).

    .. math::
        h_v' = W_0 h_v + b + \sum_r \frac{1}{|N_r(v)|} \sum_{u \in N_r(v)} W_r h_u,
        \qquad W_r = \sum_{b=1}^{B} a_{rb} V_b

    Each relation's neighbours are averaged by one CSR product over that
    relation's edges, then transformed: O(E·d + Σ_r n_r·d²) time, where n_r is
    the number of nodes with an incoming r edge. Relation embeddings pass
    through unchanged.

    Args:
        in_dim: input feature size.
        out_dim: output feature size.
        num_relations: R.
        num_bases: B; ``0`` gives every relation its own full matrix.

    Shapes:
        x ``[N, in_dim]``, rel ``[R, d]`` -> ``[N, out_dim]``, ``[R, d]``.
    """

    def __init__(self, in_dim: int, out_dim: int, num_relations: int, num_bases: int = 8):
        super().__init__()
        self.in_dim, self.out_dim, self.num_bases = in_dim, out_dim, num_bases
        shape = (num_bases if num_bases else num_relations, in_dim, out_dim)
        self.bases = nn.Parameter(torch.empty(shape))
        self.coefficients = nn.Parameter(torch.empty(num_relations, num_bases)) if num_bases else None
        self.w_self = nn.Linear(in_dim, out_dim, bias=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for b in range(self.bases.shape[0]):
            nn.init.xavier_uniform_(self.bases.data[b])
        if self.coefficients is not None:
            nn.init.xavier_uniform_(self.coefficients)
        self.w_self.reset_parameters()

    def relation_weights(self) -> Tensor:
        """``[R, in_dim, out_dim]``."""
        if self.coefficients is None:
            return self.bases
        return torch.einsum("rb,bio->rio", self.coefficients, self.bases)

    def forward(self, x: Tensor, rel: Tensor, graph: RelationalGraph) -> tuple[Tensor, Tensor]:
        weights = self.relation_weights()
        out = self.w_self(x)
        for block in graph.relation_blocks():
            out = out.index_add(0, block.rows, block.op(x) @ weights[block.relation])
        return out, rel
