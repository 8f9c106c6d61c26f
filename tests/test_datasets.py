"""The dataset registry downloads into the cache and refuses a bad checksum."""
from __future__ import annotations

import hashlib

import pytest

from kgrec.data import datasets
from kgrec.data.datasets import Dataset, Source, ensure_dataset
from kgrec.errors import DownloadError


@pytest.fixture
def fake_dataset(tmp_path, monkeypatch):
    src = tmp_path / "remote" / "ratings.csv"
    src.parent.mkdir()
    src.write_text("user,item\n1,2\n")
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    ds = Dataset("toy", "a toy", "none", {"ratings.csv": Source(src.as_uri())})
    monkeypatch.setitem(datasets.DATASETS, "toy", ds)
    monkeypatch.setitem(datasets.CHECKSUMS, "toy/ratings.csv", digest)
    monkeypatch.delenv("KGREC_DATA_DIR", raising=False)
    monkeypatch.setenv("KGREC_CACHE_DIR", str(tmp_path / "cache"))
    return src


def test_missing_dataset_is_downloaded_into_the_cache_and_verified(fake_dataset, tmp_path):
    folder = ensure_dataset("toy")
    assert folder == tmp_path / "cache" / "data" / "toy"
    assert (folder / "ratings.csv").read_text() == "user,item\n1,2\n"


def test_a_checksum_mismatch_leaves_nothing_in_the_cache(fake_dataset, tmp_path):
    fake_dataset.write_text("user,item\n1,3\n")
    with pytest.raises(DownloadError, match="checksum mismatch"):
        ensure_dataset("toy")
    assert not (tmp_path / "cache" / "data" / "toy" / "ratings.csv").exists()


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(DownloadError, match="movielens-100k"):
        ensure_dataset("no-such-set")


def test_every_registered_file_has_a_checksum():
    for ds in datasets.DATASETS.values():
        for rel in ds.files:
            assert len(ds.checksum(rel)) == 64
