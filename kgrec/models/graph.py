"""The merged ``HeteroData`` flattened for relational message passing.

Node types sit at offsets in one index space ``[0, N)`` and every edge type is
a relation id, so that a layer is a handful of sparse-dense matrix products
(CSR, rows = destinations) whatever the number of relations: time and memory
linear in the number of edges.
"""
from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field
from typing import Iterator

import torch
from torch import Tensor
from torch_geometric.data import HeteroData


@contextlib.contextmanager
def quiet_sparse_csr() -> Iterator[None]:
    """Silence torch's "Sparse CSR tensor support is in beta" warning, which every CSR tensor built
    (or made inside a sparse product) raises, and the "Sparse invariant checks are implicitly disabled"
    one that some torch versions (2.11) raise even for ``check_invariants=False``; kgrec's CSR use is
    tested, and the warnings are noise."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")
        yield


def spmm(a: Tensor, x: Tensor) -> Tensor:
    """``a @ x`` for a CSR ``a`` and a dense ``x`` ``[K, d]``. On CPU the product is written by
    ``addmm`` into a fresh output given as its own input (``beta = 0``), which skips the output
    copies that ``a @ x`` makes: the same numbers, faster by what the copies cost, so more with
    more nodes per edge (1.3-4x on cloth -> sport, 1.0x on ml1m_to_ml100k: ``benchmarks/hot_paths.py``)."""
    if x.device.type != "cpu" or x.dim() != 2 or not x.dtype.is_floating_point:
        return a @ x
    out = torch.empty(a.shape[0], x.shape[1], dtype=x.dtype)
    return torch.addmm(out, a, x, beta=0, out=out)


def gather_rows(table: Tensor, index: Tensor) -> Tensor:
    """``table[index]`` for a long ``index`` of any shape: ``[*index.shape, *table.shape[1:]]``. On CPU by
    ``index_select``, whose backward adds the rows back with ``index_add_``: advanced indexing's backward
    goes through an accumulating ``index_put_``, and forward and backward together take 2.3x as long
    (a batch's 69,632 rows of cloth -> sport's ``[N, 64]``, one thread: 29.8 against 13.1 ms,
    ``benchmarks/hot_paths.py``). Elsewhere by advanced indexing: CUDA's ``index_add_`` adds with
    atomics, in an order that changes from run to run."""
    if table.device.type != "cpu":
        return table[index]
    return table.index_select(0, index.reshape(-1)).view(*index.shape, *table.shape[1:])


class _SpMM(torch.autograd.Function):
    """``A @ x`` for a constant CSR ``A``; the backward uses the precomputed ``A^T`` (CSR too)."""

    @staticmethod
    def forward(ctx, a: Tensor, a_t: Tensor, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.a_t = a_t
        return spmm(a, x)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        return None, None, spmm(ctx.a_t, grad)


def _csr(rows: Tensor, cols: Tensor, values: Tensor, shape: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """CSR matrix and its transpose (duplicates summed), both on ``rows.device``."""
    def build(r, c, s):
        with quiet_sparse_csr():
            m = torch.sparse_coo_tensor(torch.stack([r, c]), values, s, check_invariants=False).coalesce()
            return m.to_sparse_csr()
    return build(rows, cols, shape), build(cols, rows, (shape[1], shape[0]))


@dataclass
class SparseOp:
    """A constant sparse matrix ``A`` ``[M, K]`` that multiplies dense ``[K, d]`` inputs, with autograd."""

    a: Tensor
    a_t: Tensor

    def __call__(self, x: Tensor) -> Tensor:
        return _SpMM.apply(self.a, self.a_t, x)


def sparse_op(rows: Tensor, cols: Tensor, values: Tensor, shape: tuple[int, int]) -> SparseOp:
    """The sparse operator with ``A[rows[e], cols[e]] += values[e]``, shape ``shape``."""
    return SparseOp(*_csr(rows, cols, values, shape))


@dataclass
class StackedRelations:
    """All (relation, destination) pairs of one direction stacked: ``gather`` ``[P, N]`` sums each
    pair's normalised incoming messages, ``relation`` ``[P]`` says whose, ``scatter`` ``[N, P]``
    adds the pairs back onto their destinations. P <= E."""

    gather: SparseOp
    relation: Tensor
    scatter: SparseOp


@dataclass
class RelationBlock:
    """The edges of one relation: ``rows`` ``[n_r]`` (their distinct destinations) and
    ``op``, the ``[n_r, N]`` normalised adjacency from all nodes to those rows."""

    relation: int
    rows: Tensor
    op: SparseOp


def _symmetric_norm(edge_index: Tensor, num_nodes: int) -> Tensor:
    """``[E]``: ``1 / sqrt(out_deg(src) * in_deg(dst))`` (degrees over all edges, at least 1)."""
    ones = torch.ones(edge_index.shape[1], device=edge_index.device)
    out_deg = torch.zeros(num_nodes, device=edge_index.device).index_add_(0, edge_index[0], ones)
    in_deg = torch.zeros(num_nodes, device=edge_index.device).index_add_(0, edge_index[1], ones)
    return (out_deg[edge_index[0]] * in_deg[edge_index[1]]).clamp(min=1).rsqrt()


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
        norm: ``[E]`` float, ``1 / sqrt(out_deg(src) * in_deg(dst))`` over all relations.
        sizes: node type -> number of nodes.
    """

    num_nodes: int
    offsets: dict[str, int]
    edge_index: Tensor
    edge_type: Tensor
    reverse: Tensor
    relations: list[tuple[str, str, str]]
    norm: Tensor
    sizes: dict[str, int] = field(default_factory=dict)
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_hetero(cls, data: HeteroData, device: torch.device | str = "cpu") -> "RelationalGraph":
        """Flatten ``data`` (node types in ``data.node_types`` order) onto ``device``."""
        offsets, sizes, n = {}, {}, 0
        for t in data.node_types:
            offsets[t], sizes[t] = n, int(data[t].num_nodes)
            n += sizes[t]
        relations = list(data.edge_types)
        eis, ets = [], []
        for r, (s, rel, d) in enumerate(relations):
            ei = data[s, rel, d].edge_index
            eis.append(torch.stack([ei[0] + offsets[s], ei[1] + offsets[d]]))
            ets.append(torch.full((ei.shape[1],), r, dtype=torch.long))
        edge_index = torch.cat(eis, 1) if eis else torch.empty(2, 0, dtype=torch.long)
        edge_type = torch.cat(ets) if ets else torch.empty(0, dtype=torch.long)
        reverse = torch.tensor([rel.startswith("rev_") for _, rel, _ in relations], dtype=torch.bool)
        return cls(n, offsets, edge_index.to(device), edge_type.to(device), reverse.to(device), relations,
                   _symmetric_norm(edge_index, n).to(device), sizes)

    def keep_edges(self, keep: Tensor) -> "RelationalGraph":
        """The same nodes and relations with only the edges where ``keep`` ``[E]`` is true, the
        degree normalisation recomputed over them."""
        edge_index = self.edge_index[:, keep]
        return RelationalGraph(self.num_nodes, self.offsets, edge_index, self.edge_type[keep], self.reverse,
                               self.relations, _symmetric_norm(edge_index, self.num_nodes), self.sizes)

    @property
    def num_relations(self) -> int:
        return len(self.relations)

    @property
    def device(self) -> torch.device:
        return self.edge_index.device

    def _direction(self, reverse: bool | None) -> Tensor:
        if reverse is None:
            return torch.ones_like(self.edge_type, dtype=torch.bool)
        return self.reverse[self.edge_type] == reverse

    def adjacency(self, reverse: bool | None = False) -> SparseOp:
        """``[N, N]``: row ``v`` sums ``c_uv h_u`` over v's incoming forward (or reverse, or with
        ``None`` all) edges."""
        key = f"adj-{reverse}"
        if key not in self._cache:
            m = self._direction(reverse)
            self._cache[key] = sparse_op(self.edge_index[1][m], self.edge_index[0][m], self.norm[m],
                                         (self.num_nodes, self.num_nodes))
        return self._cache[key]

    def relation_incidence(self, reverse: bool = False) -> SparseOp:
        """``[N, R]``: row ``v`` sums ``c_uv`` per relation over v's incoming forward (or reverse) edges."""
        key = f"inc-{reverse}"
        if key not in self._cache:
            m = self._direction(reverse)
            self._cache[key] = sparse_op(self.edge_index[1][m], self.edge_type[m], self.norm[m],
                                         (self.num_nodes, self.num_relations))
        return self._cache[key]

    def relation_rows(self, reverse: bool = False) -> StackedRelations:
        """The (relation, destination) pairs of the forward (or reverse) edges, for relation-gated messages."""
        key = f"stacked-{reverse}"
        if key not in self._cache:
            m = self._direction(reverse)
            src, dst, rel = self.edge_index[0][m], self.edge_index[1][m], self.edge_type[m]
            pairs, row = torch.unique(rel * self.num_nodes + dst, return_inverse=True)
            p = len(pairs)
            gather = sparse_op(row, src, self.norm[m], (p, self.num_nodes))
            dest = pairs % self.num_nodes
            scatter = sparse_op(dest, torch.arange(p, device=self.device), torch.ones(p, device=self.device),
                                (self.num_nodes, p))
            self._cache[key] = StackedRelations(gather, pairs // self.num_nodes, scatter)
        return self._cache[key]

    def relation_blocks(self) -> list[RelationBlock]:
        """One block per non-empty relation, mean-normalised (``1 / in_deg_r(v)``, as in R-GCN)."""
        key = "blocks-mean"
        if key not in self._cache:
            blocks = []
            src, dst = self.edge_index
            for r in range(self.num_relations):
                m = self.edge_type == r
                if not bool(m.any()):
                    continue
                rows, local = torch.unique(dst[m], return_inverse=True)
                deg = torch.zeros(len(rows), device=self.device).index_add_(0, local, self.norm[m].new_ones(len(local)))
                values = 1.0 / deg[local]
                op = sparse_op(local, src[m], values, (len(rows), self.num_nodes))
                blocks.append(RelationBlock(r, rows, op))
            self._cache[key] = blocks
        return self._cache[key]

    def node_slice(self, node_type: str) -> slice:
        """The rows of ``node_type`` in the flat index space."""
        start = self.offsets[node_type]
        return slice(start, start + self.sizes[node_type])
