"""What checking an artifact's checksums on every load costs, side by side in one process.

First the hash functions ``hashlib`` offers, over every file of an artifact (MB/s); kgrec records
SHA-256. Then :func:`kgrec.graph.load_graph` with and without ``verify`` (every file hashed and
compared with ``manifest.json``), best of ``--repeats`` each, interleaved, the files in the page
cache.

    python benchmarks/checksum_cost.py ARTIFACT_DIR [--repeats 10]

An artifact built before checksums were recorded is re-saved into a temporary copy first.
"""
from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
import warnings
from pathlib import Path

from kgrec.graph import load_graph


def _hash_seconds(files: list[Path], name: str) -> float:
    t = time.perf_counter()
    for p in files:
        h = hashlib.new(name)
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("artifact")
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.artifact)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            artifact = load_graph(path, verify=False)
        if "files" not in artifact.manifest:
            path = artifact.save(Path(tmp) / "a")
        files = [p for p in path.rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files) / 1e6
        print(f"{args.artifact}: {len(files)} files, {size:.1f} MB\n")
        print(f"{'hash':<10}{'ms':>8}{'MB/s':>8}")
        for name in ("sha256", "sha1", "blake2b", "md5"):
            s = min(_hash_seconds(files, name) for _ in range(args.repeats))
            print(f"{name:<10}{1000 * s:>8.1f}{size / s:>8.0f}")
        best = {False: float("inf"), True: float("inf")}
        for _ in range(args.repeats):
            for verify in (False, True):
                t = time.perf_counter()
                load_graph(path, verify=verify)
                best[verify] = min(best[verify], time.perf_counter() - t)
        print(f"\n{'load_graph':<22}{'ms':>8}")
        print(f"{'without the check':<22}{1000 * best[False]:>8.1f}")
        print(f"{'with it (default)':<22}{1000 * best[True]:>8.1f}")
        print(f"{'ratio':<22}{best[True] / best[False]:>8.2f}")


if __name__ == "__main__":
    main()
