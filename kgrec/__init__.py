"""kgrec: cross-domain recommendation over a knowledge graph.

The public API, used by the CLI and the notebooks alike::

    import kgrec
    spec = kgrec.load_spec("graphs/examples/movies_books.toml")
    graph = kgrec.build_graph(spec)
    graph.save("artifacts/example")
    graph = kgrec.load_graph("artifacts/example")
    kgrec.graph_info(graph)
"""
from kgrec.errors import KgrecError
from kgrec.graph.artifact import GraphArtifact, load_graph
from kgrec.graph.build import build_graph
from kgrec.graph.export import export_graph, to_networkx
from kgrec.graph.info import graph_info
from kgrec.graph.spec import GraphSpec, load_spec

__version__ = "0.1.0"
__all__ = ["GraphArtifact", "GraphSpec", "KgrecError", "build_graph", "export_graph", "graph_info", "load_graph",
           "load_spec", "to_networkx", "__version__"]
