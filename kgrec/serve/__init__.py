"""Using a trained run: recommend, explain, export embeddings, evaluate, update."""
from kgrec.serve.embeddings import (FAISS_INDEXES, FORMATS, HnswConfig, export_embeddings, query_vectors,
                                    read_embeddings)
from kgrec.serve.evaluate import evaluate_run
from kgrec.serve.explain import Explanation, explain
from kgrec.serve.new_items import add_items
from kgrec.serve.recommend import (history_embedding, read_history, recommend, recommend_from_history,
                                   recommend_many)
from kgrec.serve.run import Run, load_run
from kgrec.serve.update import update

__all__ = ["FAISS_INDEXES", "FORMATS", "Explanation", "HnswConfig", "Run", "add_items", "evaluate_run", "explain",
           "export_embeddings", "history_embedding", "load_run", "query_vectors", "read_embeddings", "read_history",
           "recommend", "recommend_from_history", "recommend_many", "update"]
