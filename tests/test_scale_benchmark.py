"""benchmarks/scale.py: every phase of each size runs, the slopes line comes last, and sizes run
apart (for instance side by side on one machine) merge into one table with the same numbers."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCALE = ROOT / "benchmarks" / "scale.py"
pytestmark = pytest.mark.slow


def _scale(*args: str) -> str:
    r = subprocess.run([sys.executable, str(SCALE), *args], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def test_the_scale_benchmark_runs_every_phase_and_merges_sizes_run_apart(tmp_path):
    small = _scale("--edges", "10k", "--work", str(tmp_path / "a"), "--json", str(tmp_path / "small.json"))
    large = _scale("--edges", "20k", "--work", str(tmp_path / "b"), "--json", str(tmp_path / "large.json"))
    for out in (small, large):
        assert out.strip().splitlines()[-1].startswith("slopes: build=n/a")  # one size: no slope
    for name, edges in (("small", 10_000), ("large", 20_000)):
        res = json.loads((tmp_path / f"{name}.json").read_text())
        assert res["device"] == "cpu" and list(res["results"]) == [str(edges)]
        phases = res["results"][str(edges)]
        assert set(phases) == {"synth", "build", "epoch", "lightgcn", "validate"}
        assert all(p["cpu_s"] >= 0 and p["peak_mib"] > 0 for p in phases.values())
        assert phases["validate"]["items"] > 0 and 0 <= phases["validate"]["ndcg@10"] <= 1
    assert not (tmp_path / "a" / "e10000").exists()  # the scratch data are removed without --keep

    merged = _scale("--merge", str(tmp_path / "large.json"), str(tmp_path / "small.json")).strip().splitlines()
    rows = [line for line in merged if line.lstrip()[:1].isdigit() and "edges" not in line and ":" not in line]
    assert [r.split()[0] for r in rows] == ["10,000", "20,000"]  # sorted by size, whatever the order given
    assert rows[0] in small and rows[1] in large  # the same figures as each run printed
    slopes = merged[-1]
    assert slopes.startswith("slopes: build=") and "n/a" not in slopes


def test_merging_measurements_of_different_devices_is_refused(tmp_path):
    for name, device in (("cpu", "cpu"), ("gpu", "cuda")):
        (tmp_path / f"{name}.json").write_text(json.dumps({"device": device, "results": {}}))
    r = subprocess.run([sys.executable, str(SCALE), "--merge", str(tmp_path / "cpu.json"), str(tmp_path / "gpu.json")],
                       capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 2 and "different devices" in r.stderr and r.stdout == ""
