"""Models: relational encoders over the merged graph."""
from kgrec.models.encoder import CompGCNLayer, RelationalGraph

__all__ = ["CompGCNLayer", "RelationalGraph"]
