"""Progress bars and log lines on stderr: one place decides whether a bar is drawn.

A bar is drawn only when the caller asks for one, stderr is a terminal and the
environment does not say ``KGREC_PROGRESS=0``; redirected to a file or a pipe,
kgrec writes no bar at all, so logs hold only whole lines. Every bar is
transient (cleared when done), and :func:`close_bars` clears the ones an
exception left open, so that an error line never lands on a half-drawn bar.
"""
from __future__ import annotations

import os
import sys
import weakref
from collections.abc import Iterable
from typing import IO, Any

ENV = "KGREC_PROGRESS"
_OFF = {"0", "false", "no", "off"}
_open: weakref.WeakSet = weakref.WeakSet()


def bars_enabled(requested: bool = True, stream: IO | None = None) -> bool:
    """Whether a bar would be drawn: ``requested``, ``stream`` (default stderr) is a terminal, and
    ``KGREC_PROGRESS`` is not ``0`` (or ``false``, ``no``, ``off``)."""
    if not requested or os.environ.get(ENV, "").strip().lower() in _OFF:
        return False
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def progress_bar(iterable: Iterable | None = None, *, desc: str, enabled: bool, total: int | None = None,
                 unit: str = "it", unit_scale: bool = False) -> Any:
    """A transient tqdm bar on stderr, drawn only when :func:`bars_enabled` says so (otherwise a
    no-op bar that still iterates ``iterable``). Close it, or use it as a context manager."""
    from tqdm import tqdm

    bar = tqdm(iterable, desc=desc, total=total, unit=unit, unit_scale=unit_scale, leave=False,
               disable=not bars_enabled(enabled), file=sys.stderr, dynamic_ncols=True)
    _open.add(bar)
    return bar


def close_bars() -> None:
    """Clear every bar still open (one an exception interrupted), so the next line starts clean."""
    for bar in list(_open):
        bar.close()


def log_line(message: str) -> None:
    """Print one line on stderr, above any bar being drawn."""
    if any(not getattr(b, "disable", True) for b in list(_open)):
        from tqdm import tqdm

        tqdm.write(message, file=sys.stderr)
    else:
        print(message, file=sys.stderr)
