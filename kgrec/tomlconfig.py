"""TOML config files read key by key, so that every error names the file and the dotted key.

Graph specs and training configs both go through :class:`TomlTable`, and both may
start from another file: ``extends = "parent.toml"`` (see :func:`read_extended`).
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
from pathlib import Path
from typing import Any, Mapping

from kgrec.errors import SpecError
from kgrec.io import read_text

MAX_SEED = 2**32 - 1  #: numpy's and torch's seeds are 32-bit unsigned; also the largest integer a config takes
FLOAT32_MAX = 3.4028234663852886e38  #: the largest float a config takes (parameters are float32)


def read_toml(path: str | Path, what: str = "config") -> dict:
    """Parse a TOML file.

    Raises:
        SpecError: the file is missing or is not valid TOML.
    """
    path = Path(path)
    if not path.is_file():
        raise SpecError(path, "<file>", f"{what} file not found ({path})")
    text = read_text(path, what)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpecError(path, "<toml>", f"invalid TOML: {e}") from None


def check_number(v: Any, fail, lo: float | None = None, hi: float | None = None, gt: float | None = None) -> None:
    """Raise ``fail(message)`` unless number ``v`` is finite, ``>= lo``, ``<= hi`` and ``> gt`` (each when
    given); anything that is not a number passes. The one place every config, spec and ``--set`` value's
    range is checked, so that ``nan`` (which compares false with everything) cannot slip through."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return
    if isinstance(v, float) and not math.isfinite(v):
        raise fail(f"must be a finite number, got {v}")
    if lo is not None and v < lo:
        raise fail(f"must be >= {lo}, got {v}")
    if hi is not None and v > hi:
        raise fail(f"must be <= {hi}, got {v}")
    if gt is not None and v <= gt:
        raise fail(f"must be > {gt}, got {v}")
    if isinstance(v, float) and abs(v) > FLOAT32_MAX:
        raise fail(f"must fit a 32-bit float (|x| <= {FLOAT32_MAX:.3g}), got {v}")
    if isinstance(v, int) and abs(v) > MAX_SEED:
        raise fail(f"must be at most {MAX_SEED} in size, got {v}")



def read_extended(path: str | Path, what: str = "config") -> tuple[dict, dict[str, str]]:
    """Parse a TOML file on top of the chain of files it ``extends``.

    ``extends = "parent.toml"`` names a file in the same folder (so relative paths in
    it mean the same from both). The parent is read first (it may extend another;
    a cycle is refused), then ``drop = ["knowledge", "align.items", ...]`` removes
    those dotted keys from it, then this file's keys go on top key by key: a table
    merges into the parent's table, any other value (a string, a number, an array,
    an array of tables such as ``[[knowledge]]``) replaces the parent's.

    Returns:
        ``(data, origins)``: the merged table and, per dotted key that holds a
        value, the file that set it (errors name that file).

    Raises:
        SpecError: a missing or invalid file, a bad ``extends`` or ``drop``, or a cycle.
    """
    return _read_extended(Path(path), what, ())


def _read_extended(path: Path, what: str, chain: tuple[Path, ...]) -> tuple[dict, dict[str, str]]:
    data = read_toml(path, what)
    parent_name, drop = data.pop("extends", None), data.pop("drop", None)
    own = {key: str(path) for key in _leaves(data)}
    if parent_name is None:
        if drop is not None:
            raise SpecError(path, "drop", "removes keys of the file named by 'extends', and there is none")
        return data, own
    if not isinstance(parent_name, str) or not parent_name:
        raise SpecError(path, "extends", f"expected the parent's file name, got {parent_name!r}")
    parent = path.parent / parent_name
    if parent.resolve().parent != path.resolve().parent:
        raise SpecError(path, "extends", f"{parent_name!r} is not in this file's folder (relative paths in it "
                                         f"would change meaning): keep a file and its parent side by side")
    chain = chain + (path.resolve(),)
    if parent.resolve() in chain:
        names = " -> ".join(p.name for p in chain + (parent.resolve(),))
        raise SpecError(path, "extends", f"files extend each other in a cycle: {names}")
    base, origins = _read_extended(parent, what, chain)
    if not isinstance(drop, (list, type(None))) or not all(isinstance(k, str) for k in drop or []):
        raise SpecError(path, "drop", f"expected an array of dotted key names, got {drop!r}")
    for key in drop or []:
        *parents, leaf = key.split(".")
        node = base
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or leaf not in node:
            raise SpecError(path, "drop", f"{key!r} is not set in {parent.name} (nothing to drop)")
        del node[leaf]
    _merge(base, data)
    return base, {key: own.get(key) or origins[key] for key in _leaves(base)}


def _leaves(table: dict, prefix: str = "") -> list[str]:
    """Dotted names of the values in ``table``, descending into tables but not arrays."""
    out = []
    for k, v in table.items():
        key = f"{prefix}{k}"
        out += _leaves(v, key + ".") if isinstance(v, dict) and v else [key]
    return out


def _merge(base: dict, top: dict) -> None:
    for k, v in top.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v


class TomlTable:
    """A TOML table being consumed key by key, so leftovers can be reported.

    ``origins`` (from :func:`read_extended`) maps dotted keys to the file that set
    them, so an error in an inherited key names the parent file.
    """

    def __init__(self, path: str, prefix: str, data: Any, origins: Mapping[str, str] | None = None):
        self.path, self.prefix, self.origins = path, prefix, origins or {}
        if not isinstance(data, dict):
            raise SpecError(self.origin(prefix), prefix or "<root>", f"expected a table, got {type(data).__name__}")
        self.data = dict(data)
        self.seen: set[str] = set()

    def key(self, k: str) -> str:
        return f"{self.prefix}.{k}" if self.prefix else k

    def origin(self, key: str) -> str:
        """The file that set ``key`` (``"a.b"``, ``"a[0].b"``): the longest matching origin, else this file."""
        plain = key.replace("[", ".[")
        while plain:
            name = plain.replace(".[", "[")
            if name in self.origins:
                return self.origins[name]
            plain = plain.rpartition(".")[0]
        return self.path

    def err(self, k: str, msg: str) -> SpecError:
        return SpecError(self.origin(self.key(k)), self.key(k), msg)

    def get(self, k: str, typ: type | tuple, default: Any = ..., choices: tuple | None = None,
            lo: float | None = None, hi: float | None = None, gt: float | None = None) -> Any:
        """The value of key ``k``: of type ``typ``, one of ``choices``, in ``[lo, hi]`` and above ``gt``
        when given; a float must be finite. Raises :class:`SpecError` naming the dotted key."""
        self.seen.add(k)
        if k not in self.data:
            if default is ...:
                self._misspelt(k)
                raise self.err(k, "is required")
            return default
        v = self.data[k]
        types = typ if isinstance(typ, tuple) else (typ,)
        if float in types and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if int in types and float not in types and isinstance(v, float) and v.is_integer():
            v = int(v)  # 1e6 or 5.0 where a count is wanted
        if not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
            names = " or ".join(t.__name__ for t in types)
            raise self.err(k, f"expected {names}, got {v!r}")
        if choices is not None and v not in choices:
            close = difflib.get_close_matches(str(v), [str(c) for c in choices], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise self.err(k, f"expected one of {', '.join(map(str, choices))}, got {v!r}{hint}")
        check_number(v, lambda msg: self.err(k, msg), lo, hi, gt)
        return v

    def _misspelt(self, k: str) -> None:
        """A required key is absent: if an unknown key of the table looks like it, name that one."""
        unknown = [x for x in self.data if x not in self.seen]
        close = difflib.get_close_matches(k, unknown, n=1, cutoff=0.6)
        if close:
            raise self.err(close[0], f"unknown key (did you mean '{k}'?)")

    def sub(self, k: str) -> "TomlTable | None":
        self.seen.add(k)
        return TomlTable(self.path, self.key(k), self.data[k], self.origins) if k in self.data else None

    def subs(self, k: str) -> list["TomlTable"]:
        self.seen.add(k)
        items = self.data.get(k, [])
        if not isinstance(items, list):
            raise self.err(k, "expected an array of tables ([[...]])")
        return [TomlTable(self.path, f"{self.key(k)}[{i}]", t, self.origins) for i, t in enumerate(items)]

    def done(self) -> None:
        for k in self.data:
            if k not in self.seen:
                close = difflib.get_close_matches(k, sorted(self.seen), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else f" (known keys: {', '.join(sorted(self.seen))})"
                raise self.err(k, f"unknown key{hint}")


def read_dataclass(cls: type, t: "TomlTable | None", **overrides: Any) -> Any:
    """Fill the flat dataclass ``cls`` from table ``t``; a field's default gives its type.

    A field's ``metadata`` may hold ``choices`` (allowed values), ``lo`` and
    ``hi`` (inclusive bounds) and ``gt`` (an exclusive lower bound); a default of
    ``None`` means an optional string. Floats must be finite.
    """
    values = {}
    for f in dataclasses.fields(cls):
        default = f.default
        if f.name in overrides:
            default = overrides[f.name]
        if t is None:
            values[f.name] = default
            continue
        typ = str if default is None else (float if isinstance(default, float) else type(default))
        if typ is float:
            typ = (float,)
        v = t.get(f.name, typ, default, choices=f.metadata.get("choices"), lo=f.metadata.get("lo"),
                  hi=f.metadata.get("hi"), gt=f.metadata.get("gt"))
        values[f.name] = v
    if t is not None:
        t.done()
    return cls(**values)
