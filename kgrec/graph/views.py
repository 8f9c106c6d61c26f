"""Views of a merged graph: what a target-only model is allowed to see."""
from __future__ import annotations

import torch
from torch_geometric.data import HeteroData

from kgrec.graph.artifact import INTERACTS, SOURCE, reverse_relation


def target_only(data: HeteroData) -> HeteroData:
    """The merged graph minus the source domain: no source interactions and no
    edges at source items. Node sets, edge types and their order are unchanged
    (some edge types become empty), so the same model fits both graphs."""
    out = data.clone()
    source_item = data["item"].domain == 0
    skip = {INTERACTS[SOURCE][1], reverse_relation(INTERACTS[SOURCE][1])}
    for et in data.edge_types:
        s, rel, d = et
        ei = data[et].edge_index
        keep = torch.ones(ei.shape[1], dtype=torch.bool)
        if rel in skip:
            keep[:] = False
        if s == "item":
            keep &= ~source_item[ei[0]]
        if d == "item":
            keep &= ~source_item[ei[1]]
        out[et].edge_index = ei[:, keep]
    return out
