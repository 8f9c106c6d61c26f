"""TOML config files read key by key, so that every error names the file and the dotted key.

Graph specs and training configs both go through :class:`TomlTable`.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
from pathlib import Path
from typing import Any

from kgrec.errors import SpecError

MAX_SEED = 2**32 - 1  #: numpy's and torch's seeds are 32-bit unsigned


def read_toml(path: str | Path, what: str = "config") -> dict:
    """Parse a TOML file.

    Raises:
        SpecError: the file is missing or is not valid TOML.
    """
    path = Path(path)
    if not path.is_file():
        raise SpecError(path, "<file>", f"{what} file not found ({path})")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
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


class TomlTable:
    """A TOML table being consumed key by key, so leftovers can be reported."""

    def __init__(self, path: str, prefix: str, data: Any):
        self.path, self.prefix = path, prefix
        if not isinstance(data, dict):
            raise SpecError(path, prefix or "<root>", f"expected a table, got {type(data).__name__}")
        self.data = dict(data)
        self.seen: set[str] = set()

    def key(self, k: str) -> str:
        return f"{self.prefix}.{k}" if self.prefix else k

    def err(self, k: str, msg: str) -> SpecError:
        return SpecError(self.path, self.key(k), msg)

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
        return TomlTable(self.path, self.key(k), self.data[k]) if k in self.data else None

    def subs(self, k: str) -> list["TomlTable"]:
        self.seen.add(k)
        items = self.data.get(k, [])
        if not isinstance(items, list):
            raise self.err(k, "expected an array of tables ([[...]])")
        return [TomlTable(self.path, f"{self.key(k)}[{i}]", t) for i, t in enumerate(items)]

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
