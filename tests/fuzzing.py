"""The fuzz tests' shared contract: every input the CLI is given ends one of two ways.

* exit 0, and what it wrote is valid (an artifact loads and its counts agree), or
* exit 2, exactly one line on stderr that names the input (a file, a line or a key), and
  nothing written where the output was to go.

Anything else is a violation: a traceback, another exit status, a second stderr line, a
message naming nothing, a half-written output, a hang. ``KGREC_FUZZ_EXAMPLES`` sets the
examples each fuzz test tries (small by default, so the suite stays fast);
``KGREC_FUZZ_LOG=FILE`` makes each test try them all and append one JSON line per
violation and a summary per test to FILE, then fail if there was any (a long run's
census, instead of stopping at the first and shrinking it). The examples are the same on every
run (derandomised, so that a CI run cannot fail on an input no earlier run tried);
``KGREC_FUZZ_RANDOM=1`` draws new ones each run, for hunting.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import signal
import sys
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch
from hypothesis import HealthCheck, settings

from kgrec.cli import main

HANG_SECONDS = 60
MEMORY_HEADROOM = 4 << 30  # bytes of address space one CLI call may add


def fuzz_settings(default_examples: int) -> settings:
    """Hypothesis settings for one fuzz test: ``KGREC_FUZZ_EXAMPLES`` or ``default_examples`` examples."""
    n = int(os.environ.get("KGREC_FUZZ_EXAMPLES", default_examples))
    return settings(max_examples=n, deadline=None, database=None, print_blob=True,
                    derandomize=os.environ.get("KGREC_FUZZ_RANDOM") != "1",
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])


@dataclass
class Outcome:
    status: int | None
    out: str
    err: str
    crash: str | None = None  # "ExceptionType: message (kgrec/file.py:line)" of an uncaught exception


class _Hang(Exception):
    pass


@contextlib.contextmanager
def _guarded():
    """Raise :class:`_Hang` after HANG_SECONDS, and cap the address space so a runaway allocation
    fails (and is reported) instead of taking the machine's memory."""
    def on_alarm(*_):
        raise _Hang()

    old_handler = signal.signal(signal.SIGALRM, on_alarm)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as f:
        used = int(f.read().split()[0]) * resource.getpagesize()
    cap = used + MEMORY_HEADROOM
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    signal.alarm(HANG_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old_handler)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _where(exc: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/kgrec/" in f.filename]
    f = frames[-1] if frames else traceback.extract_tb(exc.__traceback__)[-1]
    return f"{Path(f.filename).parent.name}/{Path(f.filename).name}:{f.lineno}"


def run_cli(argv: list[str]) -> Outcome:
    """``kgrec ARGV`` in this process: exit status, stdout, stderr, and the crash if it raised."""
    out, err = io.StringIO(), io.StringIO()
    status, crash = None, None
    threads = torch.get_num_threads()
    try:
        with _guarded(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main([str(a) for a in argv])
    except SystemExit as e:  # argparse
        status = e.code if isinstance(e.code, int) else 2
    except _Hang:
        crash = f"hang: no answer in {HANG_SECONDS}s"
    except Exception as e:  # noqa: BLE001 - any other exception is what the fuzzing looks for
        crash = f"{type(e).__name__}: {' '.join(str(e).split())[:200]} ({_where(e)})"
    finally:
        torch.set_num_threads(threads)
    return Outcome(status, out.getvalue(), err.getvalue(), crash)


def violation(o: Outcome, out_dir: Path, names: list[str], check_output=None) -> str | None:
    """What is wrong with outcome ``o`` (None: nothing). ``out_dir``: a folder that must be empty after a
    failure (the output was to go inside it); ``names``: strings of which the error line must contain one;
    ``check_output()``: raises AssertionError when a success's output is not valid."""
    if o.crash:
        return f"traceback {o.crash}"
    if o.status == 0:
        if check_output is not None:
            try:
                check_output()
            except AssertionError as e:
                return f"exit 0 with an invalid output: {' '.join(str(e).split())[:200]}"
        return None
    if o.status != 2:
        return f"exit {o.status}: {o.err.strip()[-200:]!r}"
    lines = o.err.splitlines()
    argparse_error = len(lines) >= 2 and lines[0].startswith("usage: ") and ": error: argument" in lines[-1]
    if not argparse_error:
        if len(lines) != 1 or not lines[0].startswith("kgrec: error: "):
            return f"exit 2 with {len(lines)} stderr lines: {o.err.strip()[:300]!r}"
        if not any(n and n in lines[0] for n in names):
            return f"exit 2 naming none of the inputs: {lines[0][:300]!r}"
    left = sorted(p.name for p in out_dir.iterdir()) if out_dir.exists() else []
    if left:
        return f"exit 2 but wrote {left} ({lines[-1][:200]!r})"
    return None


@dataclass
class Census:
    """Counts of one fuzz test's outcomes; with ``KGREC_FUZZ_LOG``, violations are logged, not raised."""

    test: str
    log: Path | None = field(default_factory=lambda: Path(p) if (p := os.environ.get("KGREC_FUZZ_LOG")) else None)
    counts: Counter = field(default_factory=Counter)
    violations: list[dict] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)  # the clean errors' lines, for the census

    def record(self, o: Outcome, problem: str | None, example: dict) -> None:
        """Count one example; raise AssertionError on a violation unless logging."""
        self.counts["examples"] += 1
        self.counts["violation" if problem else "exit 0" if o.status == 0 else "clean error"] += 1
        if problem is None:
            if o.status == 2:
                self.errors[o.err.strip().splitlines()[-1][:90]] += 1
            return
        entry = {"test": self.test, "problem": problem, **{k: repr(v)[:2000] for k, v in example.items()}}
        if self.log is None:
            raise AssertionError(json.dumps(entry, indent=1))
        self.violations.append(entry)
        with open(self.log, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    def finish(self) -> None:
        """Write the summary (when logging) and fail if any example violated the contract."""
        if self.log is not None:
            with open(self.log, "a", encoding="utf-8") as f:
                f.write(json.dumps({"test": self.test, "summary": dict(self.counts),
                                    "errors": self.errors.most_common(25)}) + "\n")
        print(f"{self.test}: {dict(self.counts)}", file=sys.__stderr__)
        assert not self.violations, f"{len(self.violations)} violations, e.g. {self.violations[0]}"


def check_artifact(path: Path) -> None:
    """An artifact directory loads and its counts agree: manifest, tensors, tables and edge indices."""
    from kgrec.graph.artifact import SOURCE, TARGET, load_graph

    g = load_graph(path)
    counts = g.manifest["counts"]
    for t in g.data.node_types:
        n = g.data[t].num_nodes
        assert counts["nodes"][t] == n == len(g.nodes[t]), f"{t}: manifest, tensor and table disagree"
    assert set(counts["edges"]) == {"|".join(et) for et in g.data.edge_types}
    for et in g.data.edge_types:
        ei = g.data[et].edge_index
        assert counts["edges"]["|".join(et)] == ei.shape[1], f"{et}: manifest count"
        if ei.numel():
            assert int(ei[0].min()) >= 0 and int(ei[0].max()) < g.data[et[0]].num_nodes, f"{et}: source index"
            assert int(ei[1].min()) >= 0 and int(ei[1].max()) < g.data[et[2]].num_nodes, f"{et}: destination index"
    inter = g.interactions
    assert inter["user"].between(0, g.data["user"].num_nodes - 1).all(), "interaction user index"
    assert inter["item"].between(0, g.data["item"].num_nodes - 1).all(), "interaction item index"
    for role in (SOURCE, TARGET):
        key = ("user", f"interacts_{role}", "item")
        train = int(((inter["domain"] == role) & (inter["split"] == "train")).sum())
        edges = g.data[key].edge_index.shape[1] if key in g.data.edge_types else 0
        assert train == edges, f"{role}: {train} training interactions but {edges} edges"
    for t, key in (("user", ["id"]), ("item", ["domain", "id"]), ("entity", ["id"])):
        ids = g.nodes[t]["id"].astype(str)
        assert not ids.str.contains("\x00").any(), f"{t}: an id holds a NUL byte"
        assert not ids.eq("").any(), f"{t}: an empty id"
        assert not g.nodes[t].duplicated(key).any(), f"{t}: duplicate ids"
    assert g.split("train", TARGET).shape[1] > 0, "the target has no training interaction"


def _toml_key(k: str) -> str:
    return _toml_value(str(k))


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if v != v else ("inf" if v > 0 else "-inf") if v in (float("inf"), float("-inf")) else repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(type(v))


def to_toml(data: dict) -> str:
    """``data`` as TOML text: top-level tables as ``[name]``, lists of tables as ``[[name]]``, deeper ones inline."""
    def is_tables(v):
        return isinstance(v, list) and v and all(isinstance(x, dict) for x in v)

    lines = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict) and not is_tables(v)]
    for k, v in data.items():
        for table, header in ([(v, f"[{_toml_key(k)}]")] if isinstance(v, dict) else
                              [(x, f"[[{_toml_key(k)}]]") for x in v] if is_tables(v) else []):
            lines += ["", header] + [f"{_toml_key(a)} = {_toml_value(b)}" for a, b in table.items()]
    return "\n".join(lines) + "\n"
