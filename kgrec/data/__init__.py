"""Readers: files -> frames of original ids. Nothing here re-indexes or merges."""
from kgrec.data.recbole import read_atomic
from kgrec.data.datasets import DATASETS, data_dir, ensure_dataset
from kgrec.data.formats import read_art_office, read_cdrib, read_disencdr, read_kgat, read_split_dir
from kgrec.data.interactions import read_interactions
from kgrec.data.rdf import iter_ntriples, read_rdf
from kgrec.data.triples import read_links, read_triples

__all__ = ["DATASETS", "data_dir", "ensure_dataset", "iter_ntriples", "read_art_office", "read_atomic", "read_cdrib",
           "read_disencdr", "read_interactions", "read_kgat", "read_links", "read_rdf", "read_split_dir", "read_triples"]
