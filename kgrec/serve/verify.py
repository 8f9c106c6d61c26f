"""``kgrec verify DIR``: check a graph artifact's or a run's files against the checksums recorded when
they were written (:mod:`kgrec.integrity`), and a run's graph against the one it was trained on.

Every recorded file gets one line, ``NAME: ok``, ``missing``, ``checksum mismatch (...)`` or
``unreadable (...)``; the last line sums up. Nothing is loaded beyond the manifests, so a corrupt
file is reported, never a traceback.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kgrec.errors import KgrecError
from kgrec.integrity import FileCheck, check_files


@dataclass
class Report:
    """What :func:`verify` found: ``entries`` are ``(label, check)`` lines; ``ok`` when every check is."""

    path: Path
    kind: str
    entries: list[tuple[str, FileCheck]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what is wrong beyond single files

    @property
    def ok(self) -> bool:
        return not self.problems and all(c.ok for _, c in self.entries)

    def lines(self) -> list[str]:
        out = [f"{self.path} ({self.kind})"]
        out += [f"  {prefix}{c.line()}" for prefix, c in self.entries]
        out += [f"  {p}" for p in self.problems]
        bad = sum(not c.ok for _, c in self.entries) + len(self.problems)
        out.append(f"{self.path}: all {len(self.entries)} files ok" if self.ok else
                   f"{self.path}: {bad} problem{'s' if bad > 1 else ''} ({len(self.entries)} files checked)")
        return out


def _artifact(path: Path, report: Report, prefix: str = "") -> str | None:
    """Check the artifact at ``path`` into ``report``; returns its recorded checksum."""
    from kgrec.graph.artifact import read_manifest

    try:
        manifest = read_manifest(path)
    except KgrecError as e:
        report.problems.append(f"{prefix}manifest.json: unreadable ({e})")
        return None
    files = manifest.get("files")
    if not isinstance(files, dict):
        report.problems.append(f"{prefix}manifest.json: no checksums recorded (built before kgrec recorded them); "
                               f"rebuild it with `kgrec build` to make it verifiable")
        return None
    report.entries += [(prefix, c) for c in check_files(path, files)]
    return manifest.get("checksum")


def _run(path: Path, report: Report) -> None:
    from kgrec.serve.run import read_run_record
    from kgrec.train.config import load_config

    try:
        record = read_run_record(path)
    except KgrecError as e:
        report.problems.append(f"run.json: unreadable ({e})")
        return
    if record is None:
        report.problems.append("run.json: missing (the run did not finish); train it again with --resume")
        return
    files = record.get("files")
    if not isinstance(files, dict):
        report.problems.append("run.json: no checksums recorded (trained before kgrec recorded them); retrain "
                               "it to make it verifiable")
    else:
        report.entries += [("", c) for c in check_files(path, files)]
    try:
        graph = Path(load_config(path / "config.toml").graph)
    except KgrecError as e:
        report.problems.append(f"config.toml: unreadable ({e})")
        return
    recorded = _artifact(graph, report, f"graph {graph}/")
    wanted = record.get("graph_checksum")
    if recorded and wanted and recorded != wanted:
        report.problems.append(f"graph {graph}: another graph than the run was trained on (its checksum is "
                               f"{recorded[:12]}..., run.json records {wanted[:12]}...)")
    elif recorded and not wanted:
        report.problems.append("run.json: no graph checksum recorded, so the graph cannot be matched to the run")


def verify(path: str | Path) -> Report:
    """Check the graph artifact or run directory ``path``.

    Raises:
        KgrecError: ``path`` is neither a graph artifact nor a run directory.
    """
    from kgrec.train.trainer import is_run_dir

    path = Path(path)
    if not path.is_dir():
        raise KgrecError(f"{path}: " + ("not a directory" if path.exists() else "not found")
                         + "; give a graph artifact or a run directory")
    if (path / "manifest.json").exists():
        report = Report(path, "graph artifact")
        _artifact(path, report)
    elif is_run_dir(path):
        report = Report(path, "run")
        _run(path, report)
    else:
        raise KgrecError(f"{path} is neither a kgrec graph artifact (manifest.json) nor a run directory "
                         f"(config.toml with run.json or model.pt)")
    return report
