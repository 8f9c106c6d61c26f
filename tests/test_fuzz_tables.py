"""Fuzzing ``kgrec build`` with interaction tables: the example's books.csv (and sometimes movies.csv)
rewritten with odd separators, quotes, empty fields, NUL bytes, bytes that are not UTF-8, a BOM, CR line
ends, huge or non-finite numbers and rows of the wrong width; sometimes with the spec naming a separator.
Every one builds a valid artifact or fails with one line naming the file (see ``fuzzing.py``)."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from conftest import EXAMPLE_SPEC
from fuzzing import Census, check_artifact, fuzz_settings, run_cli, violation

USERS = [f"u{i}" for i in range(1, 10)]
BOOKS = ["dune", "do_androids_dream", "neuromancer", "foundation", "solaris", "the_shining", "jaws"]
NUMBERS = ["5", "4", "4.5", "1", "0", "-1", "", " ", "1e400", "-1e400", "1e308", "nan", "inf", "-inf", "NaN",
           "99999999999999999999999999", "0x10", "5,0", "five", "٣", "１", "4 ", "+4", "4.0.0", "1_000"]
IDS = USERS + BOOKS + ["heat", "", " ", "u 1", "u,1", 'u"1', "u\t1", "u;1", "é", "日本", "\u200b", "a" * 300]
SEPARATORS = [",", "\t", ";", "|", " ", ", "]
# The spec's target.sep and the separator a file written for it uses (None: the spec names none, a .csv is read
# with commas); the last three are not separators.
SPEC_SEPS = {None: ",", ",": ",", "\\t": "\t", "tab": "\t", ";": ";", "|": "|", "whitespace": " ", ";;": ";",
             "": ",", "ab": ","}


DAMAGE = ["quoted", "open-quote", "nul", "latin1", "cr", "spaces", "empty", "odd-id", "odd-number", "width"]


def _damaged(kind: str, value: str) -> str:
    return {"quoted": f'"{value}"', "open-quote": f'"{value}', "nul": value + "\x00", "latin1": value + "\udce9",
            "cr": value + "\r", "spaces": f"  {value}  ", "empty": ""}.get(kind, value)


@st.composite
def tables(draw, header: str, item_pool: list[str], sep: str):
    """Bytes of a delimited file: a header (sometimes changed) and rows of user, item, rating, timestamp
    drawn from the example's ids, with one to three kinds of damage in some cells (or none), separated by
    ``sep`` or, now and then, another separator."""
    if draw(st.integers(0, 5)) == 0:
        sep = draw(st.sampled_from(SEPARATORS))
    names = header.split(",")
    if draw(st.integers(0, 5)) == 0:
        names = draw(st.lists(st.sampled_from(names + ["", "user ", "USER", "usr", "\ufeffuser"]), max_size=5))
    rows = [names] if draw(st.integers(0, 9)) else []
    for _ in range(draw(st.integers(1, 12))):
        rows.append([draw(st.sampled_from(USERS)), draw(st.sampled_from(item_pool)),
                     draw(st.sampled_from(["5", "4", "4.5", "3", "1"])), str(draw(st.integers(0, 999)))])
    for kind in draw(st.lists(st.sampled_from(DAMAGE), max_size=3)) if draw(st.booleans()) else []:
        r = draw(st.integers(0, len(rows) - 1))
        c = draw(st.integers(0, max(0, len(rows[r]) - 1))) if rows[r] else 0
        if not rows[r]:
            continue
        if kind == "odd-id":
            rows[r][c % 2] = draw(st.one_of(st.sampled_from(IDS), st.text(max_size=6)))
        elif kind == "odd-number":
            rows[r][(2 + c % 2) % len(rows[r])] = draw(  # a row cut short by "width" has fewer cells
                st.one_of(st.sampled_from(NUMBERS), st.text(max_size=6)))
        elif kind == "width":
            rows[r] = (rows[r] + ["extra"])[:draw(st.sampled_from([0, 1, 3, 5]))]
        else:
            rows[r][c] = _damaged(kind, rows[r][c])
    end = draw(st.sampled_from(["\n"] * 4 + ["\r\n", "\r", ""]))
    text = end.join(sep.join(r) for r in rows) + (end if draw(st.booleans()) else "")
    raw = text.encode("utf-8", "surrogateescape")
    if draw(st.integers(0, 5)) == 0:
        raw = b"\xef\xbb\xbf" + raw
    return raw


def test_fuzzed_tables_build_or_fail_cleanly(monkeypatch):
    monkeypatch.setenv("KGREC_DATA_DIR", tempfile.mkdtemp(prefix="kgrec-fuzz-data-"))
    census = Census("tables")

    @fuzz_settings(25)
    @given(st.data(), st.sampled_from([None] * 6 + list(SPEC_SEPS)))
    def check(data, spec_sep):
        books = data.draw(tables("user,book,rating,timestamp", BOOKS, SPEC_SEPS[spec_sep]), "books.csv")
        movies = data.draw(st.one_of(st.none(), tables("user,movie,rating,timestamp", ["heat", "alien", "dune"], ",")),
                           "movies.csv")
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "in"
            shutil.copytree(EXAMPLE_SPEC.parent, src)
            (src / "books.csv").write_bytes(books)
            if movies is not None:
                (src / "movies.csv").write_bytes(movies)
            spec = (src / "movies_books.toml").read_text(encoding="utf-8")
            if spec_sep is not None:
                spec = spec.replace('name = "books"', f'name = "books"\nsep = "{spec_sep}"')
                (src / "movies_books.toml").write_text(spec, encoding="utf-8")
            work = Path(tmp) / "work"
            work.mkdir()
            o = run_cli(["build", src / "movies_books.toml", "--out", work / "out", "--quiet"])
            census.record(o, violation(o, work, ["books.csv", "movies.csv", "movies_books.toml"],
                                       lambda: check_artifact(work / "out")),
                          {"books": books, "movies": movies and movies, "spec_sep": spec_sep, "stderr": o.err})

    check()
    census.finish()
