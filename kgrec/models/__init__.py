"""Models: the relational encoder over the merged graph, its layers and heads."""
from kgrec.models.encoder import Encoder, ModelConfig
from kgrec.models.graph import RelationalGraph
from kgrec.models.heads import BilinearHead, DistMultHead, DotHead, MLPHead, make_head
from kgrec.models.layers import CompGCNLayer, RGCNLayer
from kgrec.models.recommender import TransferModel

__all__ = ["BilinearHead", "CompGCNLayer", "DistMultHead", "DotHead", "Encoder", "MLPHead", "ModelConfig",
           "RGCNLayer", "RelationalGraph", "TransferModel", "make_head"]
