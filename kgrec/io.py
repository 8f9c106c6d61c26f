"""Reading files: every way a read can fail becomes one :class:`~kgrec.errors.InputError` naming the file.

Every reader in kgrec (specs, configs, tables, histories, feedback, manifests, ``graph.pt``,
``model.pt``, checkpoints, Parquet) opens its file through this module, so that a missing,
unreadable, undecodable, truncated or hostile file is reported the same way everywhere::

    ratings.csv: not UTF-8 (byte 0xe9 at line 3); save the file as UTF-8
    runs/x/model.pt: not a readable PyTorch file (truncated or corrupt: ...)

Text is UTF-8; a leading UTF-8 byte-order mark (what Excel and Notepad write) is accepted and
dropped. PyTorch files are loaded with ``weights_only=True``: a file holding anything but tensors
and plain containers (a pickled exploit, or another program's objects) is refused, never run.
"""
from __future__ import annotations

import contextlib
import json
import pickle
import warnings
from pathlib import Path
from typing import Any, Iterator, TextIO

from kgrec.errors import InputError

BOM = "\ufeff"


def _error(path: Path, message: str, line: int | None = None) -> InputError:
    """An :class:`InputError` naming ``path`` as given (not only its name: ``graph.pt`` alone is ambiguous)."""
    err = InputError(path, message, full_path=True)
    err.line = line
    return err


def check_file(path: str | Path, what: str = "file", regular: bool = False) -> Path:
    """``path`` as a :class:`Path`, if it is an existing file (``regular``: a regular file, not a pipe or
    a device, which a binary loader would block on or read forever).

    Raises:
        InputError: it does not exist, or is a directory (or, with ``regular``, not a regular file).
    """
    path = Path(path)
    if path.is_dir():
        raise _error(path, f"expected a {what}, found a directory")
    if not path.exists():
        raise _error(path, f"{what} not found")
    if regular and not path.is_file():
        raise _error(path, f"expected a {what}, found a pipe or device")
    return path


def not_utf8(path: str | Path) -> InputError:
    """The error for a file that is not UTF-8: the first offending byte and its line (found by re-reading it)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            for n, raw in enumerate(f, 1):  # b"\n" never occurs inside a UTF-8 sequence, so lines decode alone
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    return _error(path, f"not UTF-8 (byte 0x{raw[e.start]:02x} at line {n}); save the file as UTF-8", n)
    except OSError as e:
        return _error(path, f"cannot read ({e.strerror})")
    return _error(path, "not UTF-8; save the file as UTF-8")


@contextlib.contextmanager
def decoding(path: str | Path) -> Iterator[None]:
    """Turn a :class:`UnicodeDecodeError` raised while reading ``path`` into :func:`not_utf8`'s error,
    and an :class:`OSError` into a "cannot read" one."""
    try:
        yield
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    except OSError as e:
        raise _error(Path(path), f"cannot read ({e.strerror or e})") from None


def read_text(path: str | Path, what: str = "file") -> str:
    """The whole UTF-8 text of ``path``, a leading byte-order mark dropped.

    Raises:
        InputError: missing, a directory, unreadable, or not UTF-8 (with the byte and line).
    """
    path = check_file(path, what)
    with decoding(path):
        return path.read_bytes().decode("utf-8-sig")


def open_text(path: str | Path, what: str = "file") -> TextIO:
    """Open ``path`` for reading UTF-8 text line by line (``newline=""``, as :mod:`csv` wants), a leading
    byte-order mark dropped, so a header's first column is ``user``, never ``\\ufeffuser``.

    Iterate it inside :func:`decoding` so that a bad byte further on names the file and line.

    Raises:
        InputError: missing, a directory, or unreadable.
    """
    path = check_file(path, what)
    with decoding(path):
        return open(path, newline="", encoding="utf-8-sig", errors="strict")


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    """Parse a UTF-8 JSON file.

    Raises:
        InputError: missing, unreadable, not UTF-8, or not JSON (with the line).
    """
    path = Path(path)
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise _error(path, f"not valid JSON ({e.msg} at line {e.lineno})", e.lineno) from None


def load_parquet(path: str | Path, what: str = "Parquet file", columns: list[str] | None = None):
    """A Parquet file as a :class:`pandas.DataFrame`.

    Raises:
        InputError: missing, unreadable, truncated or not Parquet.
    """
    import pyarrow.parquet as pq

    path = check_file(path, what, regular=True)
    try:
        return pq.read_table(path, columns=columns).to_pandas()
    except OSError as e:
        if e.strerror:
            raise _error(path, f"cannot read ({e.strerror})") from None
        raise _error(path, f"not a readable Parquet file ({_first_line(e)})") from None
    except Exception as e:  # pyarrow raises ArrowInvalid, ArrowTypeError, ... for corrupt files
        raise _error(path, f"not a readable Parquet file ({_first_line(e)})") from None


def load_torch(path: str | Path, what: str = "PyTorch file", map_location: Any = None) -> Any:
    """A file written by :func:`torch.save`, loaded with ``weights_only=True`` (tensors, numbers, strings
    and containers of them only; nothing in it can run code).

    Raises:
        InputError: missing, unreadable, empty, truncated, not a PyTorch file, or holding other objects
            (refused, not loaded).
    """
    import torch

    path = check_file(path, what, regular=True)
    try:
        open(path, "rb").close()
    except OSError as e:
        raise _error(path, f"cannot read ({e.strerror or e})") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Detected pickle protocol 4": the error below says it all
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if "GLOBAL" in str(e) or "Unsupported global" in str(e):
            raise _error(path, "refused: it holds Python objects other than tensors, which kgrec never writes "
                               "and will not load (loading them could run code)") from None
        raise _error(path, "not a readable PyTorch file (corrupt, or not written by torch.save)") from None
    except EOFError:
        raise _error(path, "not a readable PyTorch file (empty or truncated)") from None
    except Exception as e:  # a damaged file fails deep in torch's reader, with any of a dozen types
        why = "truncated or corrupt" if "PytorchStreamReader" in str(e) else f"corrupt: {_first_line(e)}"
        raise _error(path, f"not a readable PyTorch file ({why})") from None


def load_numpy(path: str | Path, what: str = "NumPy file") -> Any:
    """A ``.npy`` array or ``.npz`` archive, loaded without pickles.

    Raises:
        InputError: missing, unreadable, truncated, or holding pickled objects.
    """
    import numpy as np

    path = check_file(path, what, regular=True)
    try:
        return np.load(path, allow_pickle=False)
    except OSError as e:
        why = f"cannot read ({e.strerror})" if e.strerror else f"not a readable NumPy file ({_first_line(e)})"
        raise _error(path, why) from None
    except Exception as e:  # a damaged header fails in numpy's parser with ValueError, SyntaxError, TokenError...
        raise _error(path, f"not a readable NumPy file ({_first_line(e)})") from None


def check_utf8_arg(text: str, what: str) -> str:
    """``text`` from the command line, if it is valid UTF-8 (Python keeps undecodable argument bytes as
    lone surrogates, which would fail much later, when written).

    Raises:
        InputError: it holds bytes that are not UTF-8.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        code = ord(text[e.start])
        byte = f"byte 0x{code - 0xdc00:02x}" if 0xdc80 <= code <= 0xdcff else f"character U+{code:04X}"
        raise InputError("", f"{what}: not UTF-8 ({byte} at character {e.start + 1})") from None
    return text


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    line = text[0] if text else type(e).__name__
    return line if len(line) <= 160 else line[:157] + "..."
