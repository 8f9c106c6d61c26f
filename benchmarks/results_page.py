"""Regenerate the benchmark tables of ``docs/results.md`` and the README from report directories.

    python benchmarks/results_page.py /path/to/reports            # rewrite the tables in place
    python benchmarks/results_page.py /path/to/reports --check    # exit 1 when a table is out of date
    python benchmarks/results_page.py /path/to/reports --keep-missing   # rows of absent reports stay as written

``REPORTS`` is the folder holding one directory per ``kgrec benchmark --out`` (``reports/`` in
the commands of ``docs/results.md``). A Markdown file marks each generated table with a pair of
comments naming what goes between them; everything outside the pairs is prose, kept as written::

    <!-- generated: headline ndcg@10 amazon_cloth_to_sport ml100k_genres -->
    ...table...
    <!-- /generated -->

    <!-- generated: report before_filter_amazon_cloth_to_sport "a title instead of the directory name" -->
    ...table...
    <!-- /generated -->

``headline METRIC REPORT...`` is one row per report: kgrec's gains (``summarise_reports.headline``);
``new_items METRIC REPORT...`` one row per report of the item cold-start protocol: kgrec on new and
warm items against the content and target-only baselines (``summarise_reports.new_items``);
``report NAME ["TITLE"]`` is every model of one report with its gains
(``summarise_reports.summarise``). Nothing is recomputed: the numbers are read from each report's
``results.csv``, ``per_user.parquet``, ``benchmark.json`` and ``report.md``.
"""
from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]  # this checkout's kgrec
from summarise_reports import headline, new_items, summarise  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PAGES = (ROOT / "docs" / "results.md", ROOT / "README.md")
REGION = re.compile(r"^<!-- generated: (?P<what>.+?) -->\n(?P<body>.*?)^<!-- /generated -->$", re.M | re.S)


def table(what: str, reports: Path, old: str | None = None) -> str:
    """The Markdown that the directive ``what`` stands for, read from the report directories under ``reports``.
    With ``old`` (the region's current body), a report directory that is absent keeps what ``old``
    says of it (its headline row, or the whole ``report`` table) instead of failing."""
    words = shlex.split(what)
    if not words:
        raise ValueError("an empty 'generated:' directive")
    kind, args = words[0], words[1:]
    rows_of = {"headline": headline, "new_items": new_items}  # one row per report
    missing = [name for name in (args[1:] if kind in rows_of else args[:1])
               if not (reports / name / "results.csv").is_file()]
    if missing and old is None:
        raise FileNotFoundError(f"{reports / missing[0]}: not a kgrec benchmark report (no results.csv)")
    if kind in rows_of and len(args) >= 2:
        present = [name for name in args[1:] if name not in missing]
        fresh = rows_of[kind]([reports / name for name in present], args[0]).splitlines() if present else []
        rows = {line.split("|")[1].strip(): line for line in (old or "").splitlines()[2:] if line.startswith("| ")}
        rows.update({line.split("|")[1].strip(): line for line in fresh[2:]})
        for name in missing:
            if name not in rows:
                raise FileNotFoundError(f"{reports / name}: not a kgrec benchmark report, and no row of it to keep")
            print(f"kept as written: the {args[0]} row of {name} (no report at {reports / name})")
        head = fresh[:2] if fresh else (old or "").strip().splitlines()[:2]
        return "\n".join(head + [rows[name] for name in args[1:]]) + "\n"
    if kind == "report" and len(args) in (1, 2):
        if missing:
            print(f"kept as written: the table of {args[0]} (no report at {reports / args[0]})")
            return old or ""
        text = summarise(reports / args[0])
        if len(args) == 2:  # the directory's name is the table's title unless one is given
            text = text.replace(f"**{args[0]}**", f"**{args[1]}**", 1)
        return text
    raise ValueError(f"unknown directive {what!r}: expected 'headline METRIC REPORT...', 'new_items METRIC REPORT...' "
                     f"or 'report NAME [\"TITLE\"]'")


def regenerate(text: str, reports: Path, keep_missing: bool = False) -> str:
    """``text`` with every generated region's body replaced by what its directive stands for
    (``keep_missing``: a region's part whose report is absent stays as written)."""
    return REGION.sub(lambda m: f"<!-- generated: {m['what']} -->\n\n"
                                f"{table(m['what'], reports, m['body'] if keep_missing else None).strip()}\n\n"
                                f"<!-- /generated -->", text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("reports", type=Path, help="folder with one directory per benchmark report")
    p.add_argument("pages", nargs="*", type=Path, default=list(PAGES), help="Markdown files to update "
                   "(default: docs/results.md and README.md)")
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if a page's tables are out of date")
    p.add_argument("--keep-missing", action="store_true", help="a report directory that is absent keeps its rows "
                   "and tables as written (say, after re-running one benchmark on a machine without the others)")
    args = p.parse_args(argv)
    stale = []
    for page in args.pages:
        old = page.read_text()
        new = regenerate(old, args.reports, args.keep_missing)
        if new != old:
            stale.append(page)
            if not args.check:
                page.write_text(new)
    verb = "out of date" if args.check else "rewritten"
    for page in stale:
        print(f"{page}: {verb}")
    if not stale:
        print("every generated table is up to date")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
