"""Relational message passing over the merged graph, linear in the number of edges.

The heterogeneous graph is viewed as one homogeneous graph (node types at
offsets, one relation id per edge type) so that a layer is a gather by source,
a relation composition, one matmul per direction and a scatter by
destination, whatever the number of relations.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch_geometric.data import HeteroData


@dataclass
class RelationalGraph:
    """A ``HeteroData`` flattened for relational message passing.

    Attributes:
        num_nodes: total nodes N over all node types.
        offsets: node type -> index of its first node in ``[0, N)``.
        edge_index: ``[2, E]`` long, global node indices.
        edge_type: ``[E]`` long, relation id in ``[0, R)``.
        reverse: ``[R]`` bool, whether relation r is a ``rev_`` relation.
        relations: the ``(src, rel, dst)`` edge type of each relation id.
        norm: ``[E]`` float, ``1 / sqrt(out_deg(src) * in_deg(dst))``.
    """

    num_nodes: int
    offsets: dict[str, int]
    edge_index: Tensor
    edge_type: Tensor
    reverse: Tensor
    relations: list[tuple[str, str, str]]
    norm: Tensor

    @classmethod
    def from_hetero(cls, data: HeteroData, device: torch.device | str = "cpu") -> "RelationalGraph":
        """Flatten ``data`` (node types in ``data.node_types`` order) onto ``device``."""
        offsets, n = {}, 0
        for t in data.node_types:
            offsets[t] = n
            n += int(data[t].num_nodes)
        relations = list(data.edge_types)
        eis, ets = [], []
        for r, (s, rel, d) in enumerate(relations):
            ei = data[s, rel, d].edge_index
            eis.append(torch.stack([ei[0] + offsets[s], ei[1] + offsets[d]]))
            ets.append(torch.full((ei.shape[1],), r, dtype=torch.long))
        edge_index = torch.cat(eis, 1) if eis else torch.empty(2, 0, dtype=torch.long)
        edge_type = torch.cat(ets) if ets else torch.empty(0, dtype=torch.long)
        ones = torch.ones(edge_index.shape[1])
        out_deg = torch.zeros(n).index_add_(0, edge_index[0], ones)
        in_deg = torch.zeros(n).index_add_(0, edge_index[1], ones)
        norm = (out_deg[edge_index[0]] * in_deg[edge_index[1]]).clamp(min=1).rsqrt()
        reverse = torch.tensor([rel.startswith("rev_") for _, rel, _ in relations], dtype=torch.bool)
        return cls(n, offsets, edge_index.to(device), edge_type.to(device), reverse.to(device), relations,
                   norm.to(device))


class CompGCNLayer(nn.Module):
    r"""Composition-based relational graph convolution (CompGCN, Vashishth et al. 2020).

    .. math::
        h_v' = W_{self} h_v + \sum_{(u, r, v) \in E} c_{uv}\, W_{dir(r)}\, \phi(h_u, z_r),
        \qquad z_r' = W_{rel} z_r

    with :math:`\phi(h, z) = h \odot z` (``"mult"``) or :math:`h - z` (``"sub"``),
    :math:`dir(r)` forward or reverse (``rev_`` relations), and
    :math:`c_{uv} = 1/\sqrt{d^{out}_u d^{in}_v}`. Cost: O(E·d + N·d²) time,
    O(E·d) memory; no per-relation loop (messages are summed per direction
    before the direction's weight is applied, which is exact since it is linear).

    Args:
        in_dim, out_dim: feature sizes.
        composition: ``"mult"`` or ``"sub"``.

    Shapes:
        x ``[N, in_dim]``, rel ``[R, in_dim]`` -> ``[N, out_dim]``, ``[R, out_dim]``.
    """

    def __init__(self, in_dim: int, out_dim: int, composition: str = "mult"):
        super().__init__()
        if composition not in ("mult", "sub"):
            raise ValueError(f"composition must be 'mult' or 'sub', got {composition!r}")
        self.composition = composition
        self.w_forward = nn.Linear(in_dim, out_dim, bias=False)
        self.w_reverse = nn.Linear(in_dim, out_dim, bias=False)
        self.w_self = nn.Linear(in_dim, out_dim, bias=True)
        self.w_rel = nn.Linear(in_dim, out_dim, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in (self.w_forward, self.w_reverse, self.w_self, self.w_rel):
            lin.reset_parameters()

    def forward(self, x: Tensor, rel: Tensor, graph: RelationalGraph) -> tuple[Tensor, Tensor]:
        src, dst = graph.edge_index
        z = rel[graph.edge_type]
        msg = x[src] * z if self.composition == "mult" else x[src] - z
        # W_dir is linear, so aggregate per direction first and transform N rows, not E.
        rev = graph.reverse[graph.edge_type]
        msg = msg * graph.norm.unsqueeze(1).to(x.dtype)
        agg = x.new_zeros(2 * x.shape[0], x.shape[1]).index_add_(0, dst + rev.long() * x.shape[0], msg)
        out = self.w_self(x) + self.w_forward(agg[: x.shape[0]]) + self.w_reverse(agg[x.shape[0]:])
        return out, self.w_rel(rel)
