"""Graph construction: spec -> merged, split, indexed HeteroData artifact."""
from kgrec.graph.artifact import GraphArtifact, load_graph
from kgrec.graph.build import build_graph
from kgrec.graph.spec import GraphSpec, load_spec

__all__ = ["GraphArtifact", "GraphSpec", "build_graph", "load_graph", "load_spec"]
