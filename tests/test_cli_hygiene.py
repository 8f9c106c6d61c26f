"""What a user notices about the CLI besides its results: help without torch, progress bars only on a
terminal, and error lines that never share a line with a bar."""
from __future__ import annotations

import io
import shutil
import subprocess
import sys
import textwrap

import pytest

from conftest import EXAMPLE_SPEC, ROOT
from kgrec.cli import main
from kgrec.progress import bars_enabled, log_line, progress_bar


class Terminal(io.StringIO):
    """A stderr that says it is a terminal and keeps what was drawn on it."""

    def isatty(self) -> bool:
        return True


def imports_torch(argv: list[str]) -> tuple[bool, int]:
    """Parse ``argv`` with the CLI's parser in a fresh interpreter: (was torch imported, exit status)."""
    code = textwrap.dedent(f"""
        import sys
        from kgrec.cli import make_parser
        try:
            make_parser().parse_args({argv!r})
            status = 0
        except SystemExit as e:
            status = e.code
        print("torch" in sys.modules, status, file=sys.__stderr__)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    imported, status = r.stderr.strip().splitlines()[-1].split()
    return imported == "True", int(status)


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["recommend", "--help"], ["build"],
                                  ["recommend", "runs/x", "--k", "many"], ["nonsense"]],
                         ids=["help", "train-help", "recommend-help", "missing-args", "bad-int", "bad-command"])
def test_help_and_argument_errors_do_not_import_torch(argv):
    imported, status = imports_torch(argv)
    assert status in (0, 2)
    assert not imported


def test_importing_kgrec_is_light_and_its_api_loads_on_first_use():
    code = ("import sys, kgrec; light = 'torch' not in sys.modules; f = kgrec.build_graph; "
            "print(light, 'torch' in sys.modules, callable(f), 'fit' in dir(kgrec))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.stdout.split() == ["True", "True", "True", "True"], r.stderr


def test_bars_are_drawn_only_on_a_terminal_when_asked_and_not_turned_off(monkeypatch):
    monkeypatch.delenv("KGREC_PROGRESS", raising=False)
    assert bars_enabled(True, Terminal())
    assert not bars_enabled(False, Terminal())
    assert not bars_enabled(True, io.StringIO())  # a file or a pipe: a log
    for off in ("0", "off", "false"):
        monkeypatch.setenv("KGREC_PROGRESS", off)
        assert not bars_enabled(True, Terminal())


def test_a_log_line_goes_above_an_open_bar(monkeypatch):
    monkeypatch.delenv("KGREC_PROGRESS", raising=False)
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    with progress_bar(total=3, desc="work", enabled=True) as bar:
        bar.update()
        log_line("epoch 1 done")
    drawn = term.getvalue()
    assert "work" in drawn
    assert any(segment.startswith("epoch 1 done\n") for segment in drawn.split("\r"))


def failing_spec(tmp_path):
    """The example spec with a target file whose third line is malformed: the build fails mid-way."""
    d = tmp_path / "spec"
    shutil.copytree(EXAMPLE_SPEC.parent, d)
    (d / "books.csv").write_text("user,book,rating,timestamp\nu1,dune,5,1\nu2,dune\n")
    return d / "movies_books.toml"


def test_an_error_line_on_a_terminal_starts_after_the_bar_is_cleared(tmp_path, monkeypatch):
    monkeypatch.delenv("KGREC_PROGRESS", raising=False)
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    assert main(["build", str(failing_spec(tmp_path)), "--out", str(tmp_path / "g")]) == 2
    drawn = term.getvalue()
    assert "build example-movies-books" in drawn  # a bar was drawn ...
    last = drawn.split("\r")[-1]  # ... and what follows the last carriage return is the error alone
    assert last.startswith("kgrec: error: books.csv line 3") and last.count("\n") == 1


@pytest.mark.parametrize("how", ["log", "env", "global-quiet", "command-quiet"])
def test_no_bar_reaches_a_log_or_a_quiet_terminal(tmp_path, monkeypatch, how):
    monkeypatch.delenv("KGREC_PROGRESS", raising=False)
    stderr = io.StringIO() if how == "log" else Terminal()
    monkeypatch.setattr(sys, "stderr", stderr)
    argv = ["build", str(failing_spec(tmp_path)), "--out", str(tmp_path / "g")]
    if how == "env":
        monkeypatch.setenv("KGREC_PROGRESS", "0")
    elif how == "global-quiet":
        argv = ["--quiet", *argv]
    elif how == "command-quiet":
        argv = [*argv, "--quiet"]
    assert main(argv) == 2
    assert "\r" not in stderr.getvalue()
    assert stderr.getvalue().splitlines() == [stderr.getvalue().strip()]


def test_global_quiet_silences_a_successful_build(tmp_path, capsys):
    assert main(["--quiet", "build", str(EXAMPLE_SPEC), "--out", str(tmp_path / "g")]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_an_error_quoting_a_line_break_from_a_file_is_still_one_line(tmp_path, capsys):
    spec = failing_spec(tmp_path)
    # an unclosed quote in the header: the column names the error lists run over several lines of the file
    (spec.parent / "books.csv").write_text('user,"rating,book\nu1,dune,5,1\nu2,jaws,4,2\n')
    assert main(["build", str(spec), "--out", str(tmp_path / "g"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("kgrec: error: books.csv") and "\\n" in err
