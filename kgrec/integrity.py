"""Checksums of kgrec's own outputs, recorded when written and checked when read.

A graph artifact's ``manifest.json`` records the SHA-256 and size of each of its files
(``files``) and one ``checksum`` of them all, the graph's identity; a run's ``run.json``
records its own files the same way and the ``graph_checksum`` it was trained on. Loading
checks them, so a file changed, truncated or copied in from another build, or a run pointed
at another graph with the same node counts, is refused instead of silently used.

SHA-256 (as for the datasets) hashes the 14.7 MB cloth -> sport artifact in 34 ms (438 MB/s;
SHA-1 799, BLAKE2b 289, MD5 239 MB/s): ``load_graph`` takes 67 ms with the check, 42 ms without
(``benchmarks/checksum_cost.py``, best of 10, warm page cache).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

#: the states :func:`check_files` reports, one per recorded file
OK, MISSING, MISMATCH, UNREADABLE = "ok", "missing", "checksum mismatch", "unreadable"


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks (raises :class:`OSError`)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def record_files(root: str | Path, names: Iterable[str]) -> dict[str, dict]:
    """``{relative name: {"sha256": ..., "bytes": ...}}`` of the files ``names`` under ``root``."""
    root = Path(root)
    return {name: {"sha256": sha256_file(root / name), "bytes": (root / name).stat().st_size}
            for name in sorted(names)}


def combined(files: dict[str, dict]) -> str:
    """One checksum of a set of recorded files (names and contents): an artifact's identity."""
    text = json.dumps({k: v["sha256"] for k, v in sorted(files.items())}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class FileCheck:
    """One recorded file, checked: ``status`` is ``ok``, ``missing``, ``checksum mismatch`` or ``unreadable``."""

    name: str
    status: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == OK

    def line(self) -> str:
        return f"{self.name}: {self.status}" + (f" ({self.detail})" if self.detail else "")


def check_file(root: str | Path, name: str, recorded: dict) -> FileCheck:
    """Check the file ``root/name`` against its record (``sha256``, and ``bytes`` when recorded)."""
    if not isinstance(recorded, dict) or not isinstance(recorded.get("sha256"), str):
        return FileCheck(name, MISMATCH, "no checksum recorded for it")
    if Path(name).is_absolute() or ".." in Path(name).parts:
        return FileCheck(name, UNREADABLE, "not a path inside the directory")
    path = Path(root) / name
    if not path.exists():
        return FileCheck(name, MISSING)
    if not path.is_file():  # a directory, a pipe or a device: never read (a pipe would block)
        return FileCheck(name, UNREADABLE, "not a regular file")
    try:
        size = path.stat().st_size
        if "bytes" in recorded and size != recorded["bytes"]:
            return FileCheck(name, MISMATCH, f"{size:,} bytes, {recorded['bytes']:,} recorded")
        found = sha256_file(path)
    except OSError as e:
        return FileCheck(name, UNREADABLE, e.strerror or str(e))
    if found != recorded.get("sha256"):
        return FileCheck(name, MISMATCH, f"sha256 {found[:12]}..., {str(recorded.get('sha256'))[:12]}... recorded")
    return FileCheck(name, OK)


def check_files(root: str | Path, files: dict[str, dict]) -> list[FileCheck]:
    """Check every recorded file under ``root``, in name order."""
    return [check_file(root, str(name), rec) for name, rec in sorted(files.items(), key=lambda kv: str(kv[0]))]
