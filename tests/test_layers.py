"""The package's imports point down the layers, and no modules import each other in a circle.

data -> graph -> models -> eval -> train -> (serve, benchmark, tune) -> the public API
(kgrec/__init__.py) -> cli. Every import is read with ``ast`` from the source, the ones
inside functions included, so a lazy import cannot hide an upward dependency.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "kgrec"

# Longest prefix wins. A module may import lower layers, and its own unit (the
# package or module named here) at its own layer; never a sibling unit at the same layer.
LAYERS = {
    "kgrec.errors": 0,
    "kgrec.version": 0,
    "kgrec.io": 0.5,  # reading files: below everything that reads one
    "kgrec.integrity": 0.5,
    "kgrec.argtypes": 1.5,  # the CLI's argument types
    "kgrec.atomic": 1,
    "kgrec.memory": 1,
    "kgrec.tomlconfig": 1,
    "kgrec.data": 2,
    "kgrec.graph": 3,
    "kgrec.models": 4,
    "kgrec.eval": 5,
    "kgrec.train": 6,
    "kgrec.serve": 7,
    "kgrec.benchmark": 7,
    "kgrec.tune": 7,
    "kgrec": 8,  # kgrec/__init__.py, the public API
    "kgrec.cli": 9,
    "kgrec.__main__": 10,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The kgrec modules ``name`` imports anywhere in its source (``from pkg import sub`` names ``pkg.sub``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known}
    return {m for m in found if m == "kgrec" or m.startswith("kgrec.")}


def unit(name: str) -> str:
    """The ``LAYERS`` key that places ``name``."""
    keys = [k for k in LAYERS if name == k or name.startswith(k + ".")]
    return max(keys, key=len)


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports(name, path, set(mods)) for name, path in mods.items()}


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for name, deps in graph.items():
        for dep in sorted(deps):
            mine, theirs = unit(name), unit(dep)
            if LAYERS[theirs] > LAYERS[mine] or (LAYERS[theirs] == LAYERS[mine] and theirs != mine):
                bad.append(f"{name} (layer {LAYERS[mine]}) imports {dep} (layer {LAYERS[theirs]})")
    return bad


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle, each once, as the modules around it. Edges to a package's
    ``__init__`` from its own modules are import-order quirks, not dependencies, so a
    package re-exporting its modules is not a cycle."""
    edges = {m: {d for d in deps if d in graph and not (m.startswith(d + ".") and d != m)} for m, deps in graph.items()}
    found, seen = [], set()

    def walk(node: str, stack: list[str]) -> None:
        for nxt in sorted(edges[node]):
            if nxt in stack:
                loop = stack[stack.index(nxt):]
                key = frozenset(loop)
                if key not in seen:
                    seen.add(key)
                    found.append(loop + [nxt])
            elif nxt not in done:
                walk(nxt, stack + [nxt])
        done.add(node)

    done: set[str] = set()
    for start in sorted(edges):
        if start not in done:
            walk(start, [start])
    return found


def test_every_module_has_a_layer():
    assert all(unit(m) in LAYERS for m in modules())
    assert "kgrec.benchmark" in modules() and "kgrec.eval.benchmark" not in modules()
    assert "kgrec.data.recbole" in modules() and "kgrec.data.atomic" not in modules()


def test_no_import_points_up():
    assert upward_imports(import_graph()) == []


def test_no_import_cycle():
    assert cycles(import_graph()) == []


def test_serve_functions_use_run_and_run_uses_none_of_them():
    graph = import_graph()
    for name in ("recommend", "explain", "embeddings", "evaluate", "update"):
        assert "kgrec.serve.run" in graph[f"kgrec.serve.{name}"]
    assert not {d for d in graph["kgrec.serve.run"] if d.startswith("kgrec.serve")}


def test_eval_imports_nothing_above_models():
    graph = import_graph()
    above = {d for m, deps in graph.items() if unit(m) == "kgrec.eval"
             for d in deps if unit(d) != "kgrec.eval" and LAYERS[unit(d)] > LAYERS["kgrec.models"]}
    assert above == set()


# The checker itself, on made-up import graphs.
def test_an_upward_import_inside_a_function_is_found(tmp_path):
    src = tmp_path / "metrics.py"
    src.write_text("def f():\n    from kgrec.train.trainer import train\n    return train\n")
    deps = imports("kgrec.eval.metrics", src, {"kgrec.train.trainer"})
    assert deps == {"kgrec.train.trainer"}
    assert upward_imports({"kgrec.eval.metrics": deps}) == [
        "kgrec.eval.metrics (layer 5) imports kgrec.train.trainer (layer 6)"]


def test_relative_and_submodule_imports_resolve(tmp_path):
    src = tmp_path / "explain.py"
    src.write_text("from . import run\nfrom .recommend import seen\nimport kgrec.graph.artifact as a\n")
    deps = imports("kgrec.serve.explain", src, {"kgrec.serve.run", "kgrec.serve.recommend"})
    assert deps == {"kgrec.serve", "kgrec.serve.run", "kgrec.serve.recommend", "kgrec.graph.artifact"}


def test_a_sibling_at_the_same_layer_is_refused():
    assert upward_imports({"kgrec.benchmark": {"kgrec.serve.run"}}) == [
        "kgrec.benchmark (layer 7) imports kgrec.serve.run (layer 7)"]


@pytest.mark.parametrize("graph, expected", [
    ({"kgrec.serve.run": {"kgrec.serve.explain"}, "kgrec.serve.explain": {"kgrec.serve.run"}},
     [["kgrec.serve.explain", "kgrec.serve.run", "kgrec.serve.explain"]]),
    ({"kgrec.serve": {"kgrec.serve.run"}, "kgrec.serve.run": {"kgrec.serve"}}, []),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
])
def test_cycles_are_found_and_package_reexports_are_not_cycles(graph, expected):
    assert cycles(graph) == expected
