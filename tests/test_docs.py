"""The documentation site: every public module has an API page, every API directive names
something that imports, and the results page's tables are regenerated from report directories
with the prose around them kept."""
from __future__ import annotations

import importlib
import importlib.util
import json
import re
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
API = ROOT / "docs" / "api"


def api_directives() -> list[str]:
    return [m for page in sorted(API.glob("*.md")) for m in re.findall(r"^::: (\S+)$", page.read_text(), re.M)]


def public_modules() -> list[str]:
    names = []
    for path in sorted((ROOT / "kgrec").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if any(p.startswith("_") for p in parts):  # __init__, __main__, private helpers
            continue
        names.append(".".join(parts))
    return names


def test_every_public_module_has_an_api_page():
    documented = set(api_directives())
    missing = [m for m in public_modules() if m not in documented]
    assert not missing, f"add these to a page under docs/api/: {missing}"


@pytest.mark.parametrize("target", api_directives())
def test_every_api_directive_names_a_module_or_object_that_imports(target):
    parts = target.split(".")
    for i in range(len(parts), 0, -1):  # the longest importable prefix, then attributes
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for name in parts[i:]:
            obj = getattr(obj, name)
        return
    pytest.fail(f"{target}: nothing of it imports")


def test_every_docs_page_is_in_the_site_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = sorted(str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md"))
    missing = [page for page in pages if f" {page}" not in nav]
    assert not missing, f"add these to the nav in mkdocs.yml (mkdocs build --strict fails without): {missing}"


def _results_page():
    spec = importlib.util.spec_from_file_location("results_page", ROOT / "benchmarks" / "results_page.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def report(tmp_path) -> Path:
    """A small report directory as ``kgrec benchmark`` writes it (one seed, four users)."""
    out = tmp_path / "reports" / "toy"
    out.mkdir(parents=True)
    per_user = {"kgrec": [0.5, 0.4, 0.3, 0.2], "kgrec_target_only": [0.4, 0.3, 0.2, 0.1],
                "kgrec_transfer": [0.5, 0.4, 0.3, 0.2], "mostpop": [0.1, 0.1, 0.0, 0.2],
                "lightgcn_merged": [0.3, 0.2, 0.2, 0.1]}
    valid = {"kgrec": 0.36, "kgrec_target_only": 0.3, "kgrec_transfer": 0.36, "mostpop": 0.1, "lightgcn_merged": 0.2}
    rows, users = [], []
    for model, scores in per_user.items():
        rows.append({"model": model, "seed": 0, "group": "all", "metric": "ndcg@10", "value": sum(scores) / 4})
        rows.append({"model": model, "seed": 0, "group": "valid", "metric": "ndcg@10", "value": valid[model]})
        users += [{"model": model, "seed": 0, "user": u, "ndcg@10": s} for u, s in enumerate(scores)]
    pd.DataFrame(rows).to_csv(out / "results.csv", index=False)
    pd.DataFrame(users).to_parquet(out / "per_user.parquet")
    (out / "benchmark.json").write_text(json.dumps({"seeds": [0], "wall_seconds": 90}))
    (out / "report.md").write_text("| model | s/run |\n|---|---|\n| kgrec | 12 |\n| mostpop | 0 |\n")
    return out


def test_results_page_rewrites_the_tables_and_keeps_the_prose(report, tmp_path):
    page = tmp_path / "results.md"
    page.write_text("Prose before.\n\n<!-- generated: headline ndcg@10 toy -->\nan old table\n<!-- /generated -->\n\n"
                    "Prose between.\n\n<!-- generated: report toy \"toy, one seed\" -->\n<!-- /generated -->\n\nEnd.\n")
    results_page = _results_page()
    assert results_page.main([str(report.parent), str(page), "--check"]) == 1  # out of date, left alone
    assert "an old table" in page.read_text()
    assert results_page.main([str(report.parent), str(page)]) == 0
    text = page.read_text()
    assert "an old table" not in text
    assert text.startswith("Prose before.\n") and "\nProse between.\n" in text and text.endswith("\nEnd.\n")
    assert "\n| toy | 0 | 0.3500 | +40.0% vs `kgrec_target_only` 0.2500 " in text  # kgrec's gain, the headline row
    assert "**toy, one seed** — seeds 0, wall 1.5 min" in text
    assert "\n| kgrec | 0.3500 | 12 |\n" in text and "\n| mostpop | 0.1000 | 0 |\n" in text
    assert results_page.main([str(report.parent), str(page), "--check"]) == 0  # now up to date


def test_results_page_refuses_an_unknown_directive_or_a_missing_report(report):
    results_page = _results_page()
    with pytest.raises(ValueError, match="unknown directive"):
        results_page.regenerate("<!-- generated: plot toy -->\n<!-- /generated -->\n", report.parent)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        results_page.regenerate("<!-- generated: report nowhere -->\n<!-- /generated -->\n", report.parent)


def test_results_page_keeps_the_rows_of_absent_reports_as_written_when_asked(report, tmp_path):
    page = tmp_path / "results.md"
    old_row = "| gone | 0, 1, 2 | 0.1234 | +1.0% vs `ease` 0.1222 (p 0.5) | – | – | – |"
    page.write_text("<!-- generated: headline ndcg@10 gone toy -->\n| benchmark | seeds |\n|---|---|\n"
                    f"{old_row}\n| toy | 0 | 0.9999 | stale |\n<!-- /generated -->\n")
    results_page = _results_page()
    with pytest.raises(FileNotFoundError, match="gone"):  # without the flag an absent report is an error
        results_page.main([str(report.parent), str(page)])
    assert results_page.main([str(report.parent), str(page), "--keep-missing"]) == 0
    rows = [line for line in page.read_text().splitlines() if line.startswith("| ")]
    assert rows[1] == old_row  # kept, in the directive's order
    assert rows[2].startswith("| toy | 0 | 0.3500 | +40.0% vs `kgrec_target_only`")  # regenerated
    with pytest.raises(FileNotFoundError, match="no row of it to keep"):
        results_page.regenerate("<!-- generated: headline ndcg@10 toy other -->\n<!-- /generated -->\n",
                                report.parent, keep_missing=True)
