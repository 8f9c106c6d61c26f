"""kgrec: cross-domain recommendation over a knowledge graph.

The public API, used by the CLI and the notebooks alike::

    import kgrec
    graph = kgrec.build_graph(kgrec.load_spec("graphs/examples/movies_books.toml"))
    graph.save("artifacts/example")
    kgrec.kg_signal(graph)                                 # does the KG say anything? (per relation)
    config = kgrec.make_config(overrides={"graph": "artifacts/example"})
    result = kgrec.fit(config, "runs/example")            # pre-train -> fine-tune
    run = kgrec.load_run("runs/example")
    kgrec.recommend(run, "u1", k=5)
    kgrec.explain(run, "u1", "books:solaris")
    kgrec.export_embeddings(run, "exports/example", "parquet")
    kgrec.evaluate_run(run)
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from kgrec.errors import KgrecError
from kgrec.version import __version__

# Imported on first use (PEP 562), so that `kgrec --help` and the CLI's argument errors need no torch.
_LAZY = {
    "GraphArtifact": "kgrec.graph.artifact", "load_graph": "kgrec.graph.artifact",
    "build_graph": "kgrec.graph.build",
    "export_graph": "kgrec.graph.export", "to_networkx": "kgrec.graph.export",
    "graph_info": "kgrec.graph.info", "kg_signal": "kgrec.graph.signal",
    "GraphSpec": "kgrec.graph.spec", "load_spec": "kgrec.graph.spec",
    **{name: "kgrec.serve" for name in ("Explanation", "Run", "add_items", "evaluate_run", "explain", "export_embeddings",
                                        "load_run", "read_embeddings", "read_history", "recommend",
                                        "recommend_from_history", "recommend_many", "update")},
    "TrainConfig": "kgrec.train.config", "load_config": "kgrec.train.config", "make_config": "kgrec.train.config",
    "TrainResult": "kgrec.train.trainer", "fit": "kgrec.train.trainer",
}
_RENAMED = {"fit": "train"}

if TYPE_CHECKING:
    from kgrec.graph.artifact import GraphArtifact, load_graph
    from kgrec.graph.build import build_graph
    from kgrec.graph.export import export_graph, to_networkx
    from kgrec.graph.info import graph_info
    from kgrec.graph.signal import kg_signal
    from kgrec.graph.spec import GraphSpec, load_spec
    from kgrec.serve import (Explanation, Run, add_items, evaluate_run, explain, export_embeddings, load_run, read_embeddings,
                             read_history, recommend, recommend_from_history, recommend_many, update)
    from kgrec.train.config import TrainConfig, load_config, make_config
    from kgrec.train.trainer import TrainResult
    from kgrec.train.trainer import train as fit


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'kgrec' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), _RENAMED.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["Explanation", "GraphArtifact", "GraphSpec", "KgrecError", "Run", "TrainConfig", "TrainResult",
           "add_items", "build_graph", "evaluate_run", "explain", "export_embeddings", "export_graph", "fit",
           "graph_info",
           "kg_signal", "load_config", "load_graph", "load_run", "load_spec", "make_config", "read_embeddings",
           "read_history",
           "recommend", "recommend_from_history", "recommend_many", "to_networkx", "update", "__version__"]
