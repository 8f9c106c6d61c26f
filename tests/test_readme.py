"""The README as a specification: every ``kgrec`` command in it parses with the CLI's own parser,
the spec it shows is the shipped example's, its headline table is the results page's, and the
own-data walk-through runs as shown on the example files."""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from kgrec.cli import main, make_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
WALK_THROUGH = "Your own data in five minutes"
BLOCK = re.compile(r"^```(?P<lang>\w*)\n(?P<body>.*?)^```$", re.M | re.S)


def code_blocks(text: str) -> list[tuple[str, str, str]]:
    """``(section, language, body)`` of every fenced block; the section is the ``## `` heading above it."""
    blocks = []
    for m in BLOCK.finditer(text):
        headings = re.findall(r"^## (.+)$", text[:m.start()], re.M)
        blocks.append((headings[-1] if headings else "", m["lang"], m["body"]))
    return blocks


def shell_lines(lang: str, body: str) -> list[str]:
    """The command lines of a ``console`` block (after ``$ ``) or a ``bash`` block (every line)."""
    if lang == "console":
        return [line[2:] for line in body.splitlines() if line.startswith("$ ")]
    if lang in ("bash", "sh", "shell"):
        return [line for line in body.splitlines() if line.strip() and not line.startswith("#")]
    return []


def kgrec_argvs(line: str) -> list[list[str]]:
    """The ``kgrec ...`` commands of one shell line (split at ``&&``, ``;`` and ``|``), comments dropped."""
    words = shlex.split(line, comments=True)
    commands, current = [], []
    for word in words + [";"]:
        if word in ("&&", ";", "|", "||"):
            if current and current[0] == "kgrec":
                commands.append(current[1:])
            current = []
        else:
            current.append(word)
    return commands


def readme_commands() -> list[list[str]]:
    return [argv for _, lang, body in code_blocks(README) for line in shell_lines(lang, body)
            for argv in kgrec_argvs(line)]


def parses(argv: list[str]) -> bool:
    """Whether the real ``kgrec`` parser accepts ``argv`` (subcommand, options, choices, required ones);
    nothing runs."""
    try:
        args = make_parser().parse_args(argv)
    except SystemExit:
        return False
    return callable(getattr(args, "func", None))


def test_the_check_refuses_what_the_parser_refuses(capsys):
    assert parses(["build", "spec.toml", "--out", "g"])
    assert not parses(["build", "spec.toml", "--out", "g", "--no-such-option"])
    assert not parses(["build", "spec.toml"])  # --out is required
    assert not parses(["export", "run", "--format", "png", "--out", "x"])  # not a choice
    assert not parses(["no-such-command"])
    assert kgrec_argvs("pip install x && kgrec info a --json  # a comment") == [["info", "a", "--json"]]


def test_the_readme_shows_every_step_of_the_walk_through_as_a_command():
    subcommands = {argv[0] for argv in readme_commands()}
    assert {"build", "info", "kg-signal", "train", "recommend", "export", "benchmark"} <= subcommands


@pytest.mark.parametrize("argv", readme_commands(), ids=" ".join)
def test_every_kgrec_command_in_the_readme_parses_with_the_cli_parser(argv, capsys):
    assert parses(argv), f"kgrec {' '.join(argv)}: {capsys.readouterr().err.strip()}"


def test_the_readme_stays_short():
    assert len(README.splitlines()) <= 250


def test_the_readme_test_command_is_the_one_ci_runs():
    tests = [body for section, lang, body in code_blocks(README) if "pytest" in body]
    assert tests and tests[0].strip() == "KGREC_DATA_DIR=../shared/data python -m pytest -q"
    assert tests[0].strip() in (ROOT / ".ci" / "run").read_text().splitlines()


def test_the_spec_in_the_readme_is_the_shipped_example_verbatim():
    specs = [body for section, lang, body in code_blocks(README) if section == WALK_THROUGH and lang == "toml"]
    assert specs == [(ROOT / "graphs" / "examples" / "movies_books.toml").read_text()]


def test_the_readme_result_tables_are_the_results_pages():
    region = re.compile(r"<!-- generated: ((headline|new_items) [^>]*?) -->\n(.*?)<!-- /generated -->", re.S)
    readme = {directive: (kind, table) for directive, kind, table in region.findall(README)}
    page = {directive: table for directive, _, table in region.findall((ROOT / "docs" / "results.md").read_text())}
    assert sorted(kind for kind, _ in readme.values()) == ["headline", "new_items"]  # one of each
    for directive, (kind, table) in readme.items():
        assert ("| kgrec ndcg@10 |" if kind == "headline" else "| new items among new: kgrec ndcg@10 |") in table
        assert table == page[directive]


def test_the_own_data_walk_through_runs_as_shown(tmp_path, monkeypatch, capsys):
    shutil.copytree(ROOT / "graphs" / "examples", tmp_path / "graphs" / "examples")
    monkeypatch.chdir(tmp_path)
    lines = [line for section, lang, body in code_blocks(README) if section == WALK_THROUGH
             for line in shell_lines(lang, body)]
    assert lines[0].startswith("cp ") and len(lines) >= 6
    outputs = {}
    for line in lines:
        argvs = kgrec_argvs(line)
        if not argvs:  # cp and the like: the shell, in the same folder
            subprocess.run(line, shell=True, check=True, cwd=tmp_path)
            continue
        for argv in argvs:
            capsys.readouterr()
            assert main(argv) == 0, f"kgrec {' '.join(argv)}: {capsys.readouterr().err}"
            outputs[argv[0]] = capsys.readouterr().out
    assert (tmp_path / "artifacts" / "mine" / "graph.pt").is_file()
    assert (tmp_path / "runs" / "mine" / "model.pt").is_file()
    assert (tmp_path / "exports" / "mine" / "items.faiss").is_file()
    rows = [line for line in outputs["recommend"].splitlines() if line.split()[:1] == ["u4"]]
    assert [int(row.split()[1]) for row in rows] == [1, 2, 3, 4, 5]  # --k 5, ranked


def test_every_link_in_the_readme_leads_to_a_file_of_the_repository():
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README)
    assert links
    assert [link for link in links if not (ROOT / link).exists()] == []
