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


def test_a_download_over_the_size_limit_is_refused_and_leaves_nothing(fake_dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "MAX_DOWNLOAD_BYTES", 5)
    with pytest.raises(DownloadError, match="5-byte limit"):
        ensure_dataset("toy")
    folder = tmp_path / "cache" / "data" / "toy"
    assert not folder.exists() or not any(folder.iterdir())


def test_a_download_is_streamed_in_blocks_not_read_whole(fake_dataset, monkeypatch):
    reads = []

    class Response:
        def __init__(self, payload):
            self.payload, self.headers = payload, {}

        def read(self, n=-1):
            reads.append(n)
            assert n > 0, "the whole response was asked for at once"
            block, self.payload = self.payload[:n], self.payload[n:]
            return block

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(datasets, "_open_url", lambda url: Response(fake_dataset.read_bytes()))
    folder = ensure_dataset("toy")
    assert (folder / "ratings.csv").read_bytes() == fake_dataset.read_bytes() and reads


def test_an_archive_member_is_extracted_and_verified(tmp_path, monkeypatch):
    import zipfile

    archive = tmp_path / "remote" / "bundle.zip"
    archive.parent.mkdir()
    payload = b"user\titem\n1\t2\n"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("deep/folder/ratings.tsv", payload)
    ds = Dataset("zipped", "a zipped toy", "none", {"ratings.tsv": Source(archive.as_uri(), "folder/ratings.tsv")})
    monkeypatch.setitem(datasets.DATASETS, "zipped", ds)
    monkeypatch.setitem(datasets.CHECKSUMS, "zipped/ratings.tsv", hashlib.sha256(payload).hexdigest())
    monkeypatch.delenv("KGREC_DATA_DIR", raising=False)
    monkeypatch.setenv("KGREC_CACHE_DIR", str(tmp_path / "cache"))
    folder = ensure_dataset("zipped")
    assert (folder / "ratings.tsv").read_bytes() == payload
    assert sorted(p.name for p in folder.iterdir()) == ["ratings.tsv"]  # no archive or temporary file left


def test_a_damaged_file_in_the_cache_is_fetched_again(fake_dataset, tmp_path):
    folder = ensure_dataset("toy")
    (folder / "ratings.csv").write_text("user,item\n1,99\n")  # truncated or edited since
    assert ensure_dataset("toy") == folder
    assert (folder / "ratings.csv").read_text() == "user,item\n1,2\n"


def test_a_damaged_file_in_the_users_data_dir_is_never_replaced_and_is_named(fake_dataset, tmp_path, monkeypatch):
    mine = tmp_path / "mine" / "toy"
    mine.mkdir(parents=True)
    (mine / "ratings.csv").write_text("user,item\n1,99\n")
    monkeypatch.setenv("KGREC_DATA_DIR", str(tmp_path / "mine"))
    with pytest.raises(DownloadError, match=r"ratings.csv: fails its checksum"):
        ensure_dataset("toy")
    assert (mine / "ratings.csv").read_text() == "user,item\n1,99\n"


def test_the_shared_data_folder_passes_its_checksums(real_data):
    for name, ds in datasets.DATASETS.items():
        if all((real_data / name / rel).exists() for rel in ds.files):
            assert ensure_dataset(name, download=False) == real_data / name
