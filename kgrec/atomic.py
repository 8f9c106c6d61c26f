"""Atomic writes: build in a temporary sibling, then rename into place.

Used by the graph artifact writer and the exporters, so that a failed or
interrupted command never leaves a half-written output behind.

Overwriting replaces only what kgrec itself wrote: a writer names what its
output holds (``ours``: marker files, or a test on the directory), and an
existing ``out`` that is a plain file, or a non-empty directory without those
markers, is refused with :class:`~kgrec.errors.OutputError`, deleting nothing.

The temporary sibling is ``.NAME.tmp-PID-XXXXXXXX``; a later write to the same
``NAME`` removes the siblings whose process ``PID`` is gone (a killed write), or whose ``PID``
now belongs to a process started after the sibling was last written (the number was reused).
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Sequence, Union

from kgrec.errors import OutputError

#: What identifies an output directory as kgrec's: file names that must all be in it, or a test.
Ours = Union[Sequence[str], Callable[[Path], bool], None]


def _is_ours(path: Path, ours: Ours) -> bool:
    if ours is None:
        return False
    if callable(ours):
        try:
            return bool(ours(path))
        except (OSError, ValueError):
            return False
    return bool(ours) and all((path / name).exists() for name in ours)


def check_writable(out: str | Path) -> None:
    """Check that ``out`` can be created: its nearest existing ancestor is a writable directory.

    Raises:
        OutputError: an ancestor of ``out`` is a file, or the place is not writable.
    """
    out = Path(out)
    parent = out.absolute().parent
    while not parent.exists() and not parent.is_symlink() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{out}: cannot write here, {parent} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{out}: cannot write here, {parent} is not writable")
    try:  # the permission bits do not tell for root, read-only mounts or /proc: try it
        os.rmdir(tempfile.mkdtemp(prefix=f".kgrec-probe-{os.getpid()}-", dir=parent))
    except OSError as e:
        raise OutputError(f"{out}: cannot write here, {parent} is not writable ({e.strerror or e})") from None


def check_output(out: str | Path, *, overwrite: bool, ours: Ours, what: str = "output directory",
                 empty_ok: bool = False, hint: str = "pass --overwrite to replace it") -> bool:
    """Check that the directory ``out`` may be written; True when it holds a kgrec output to replace.

    ``out`` may be absent, an empty directory (with ``overwrite``, or always with
    ``empty_ok``), or, with ``overwrite``, a directory that ``ours`` recognises as
    kgrec's. Anything else is refused.

    Raises:
        OutputError: ``out`` is a file, holds files kgrec did not write, exists without
            ``overwrite`` (the message ends with ``hint``), or cannot be written.
    """
    out = Path(out)
    if not out.exists() and not out.is_symlink():
        check_writable(out)
        return False
    if not out.is_dir():
        raise OutputError(f"{out} is a file, not a kgrec {what}: kgrec replaces only what it wrote itself, so "
                          f"nothing was changed; choose another path or move the file away yourself")
    try:
        entries = sorted(p.name for p in out.iterdir())
    except OSError as e:
        raise OutputError(f"{out}: cannot read this directory ({e.strerror})") from None
    if not entries:
        if not (overwrite or empty_ok):
            raise OutputError(f"{what} {out} already exists; {hint}")
        check_writable(out / "x")
        return False
    if not _is_ours(out, ours):
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        raise OutputError(f"{out} holds files that are not a kgrec {what} ({shown}): kgrec replaces only what it "
                          f"wrote itself, so nothing was changed; choose another path or empty it yourself")
    if not overwrite:
        raise OutputError(f"{what} {out} already exists; {hint}")
    check_writable(out)
    return True


def check_directory(out: str | Path, what: str = "output directory") -> None:
    """Check that kgrec may write into the directory ``out`` (a report or study directory, written file by
    file and continued across runs): absent or a directory, in a writable place.

    Raises:
        OutputError: ``out`` is a file, lies under a file, or cannot be written.
    """
    out = Path(out)
    if (out.exists() or out.is_symlink()) and not out.is_dir():
        raise OutputError(f"{out} is a file, not a {what}: nothing was changed; choose another path")
    check_writable(out / "x" if out.is_dir() else out)


def check_file_output(out: str | Path, *, overwrite: bool, what: str = "output file",
                      hint: str = "pass --overwrite to replace it") -> None:
    """Check that the single file ``out`` may be written: absent, or (with ``overwrite``) an existing file.

    kgrec cannot tell its own single files from the user's, so an existing one is replaced only when asked
    (``overwrite``), and a directory never is.

    Raises:
        OutputError: ``out`` is a directory, exists without ``overwrite``, or cannot be written.
    """
    out = Path(out)
    if out.is_dir():
        raise OutputError(f"{out} is a directory, not a file: kgrec never replaces a directory with a file, so "
                          f"nothing was changed; give a file path")
    if (out.exists() or out.is_symlink()) and not overwrite:
        raise OutputError(f"{what} {out} already exists; {hint}")
    check_writable(out)


def remove_output(out: str | Path) -> None:
    """Remove ``out`` (after :func:`check_output` said it is kgrec's): a link is unlinked, not followed."""
    out = Path(out)
    if out.is_symlink() or not out.is_dir():
        out.unlink(missing_ok=True)
    else:
        shutil.rmtree(out)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return True  # not a pid this module writes; keep it
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


def _started(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), from ``/proc``; None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat[stat.rindex(")") + 2:].split()[19])  # field 22, after the (command name)
        boot = next(int(ln.split()[1]) for ln in Path("/proc/stat").read_text().splitlines() if ln.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _stale(path: Path, pid: int) -> bool:
    """Whether the temporary ``path`` written by ``pid`` is left over: that process is gone, or the
    process now holding the number started after ``path`` was last written (so did not write it)."""
    if not _alive(pid):
        return True
    if pid == os.getpid():
        return False
    started = _started(pid)
    try:
        return started is not None and path.lstat().st_mtime < started - 2  # btime has whole seconds
    except OSError:
        return False


def remove_stale_siblings(out: str | Path) -> list[Path]:
    """Remove ``.NAME.tmp-PID-*`` and ``.NAME.old-PID`` siblings of ``out`` left by a killed write (see
    :func:`_stale`).

    Only names of exactly kgrec's own temporary pattern for this ``NAME`` are touched. Returns
    what was removed.
    """
    out = Path(out)
    name = re.escape(out.name)
    pattern = re.compile(rf"\.{name}\.(?:tmp-(\d+)-[a-z0-9_]+|old-(\d+))")
    removed = []
    try:
        siblings = list(out.parent.iterdir())
    except OSError:
        return removed
    for p in siblings:
        m = pattern.fullmatch(p.name)
        if not m or not _stale(p, int(m.group(1) or m.group(2))):
            continue
        with contextlib.suppress(OSError):
            remove_output(p)
            removed.append(p)
    return removed


def _prepare_parent(out: Path) -> None:
    check_writable(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{out}: cannot create {out.parent} ({e.strerror})") from None
    remove_stale_siblings(out)


@contextlib.contextmanager
def atomic_directory(out: str | Path, overwrite: bool = True, ours: Ours = None,
                     what: str = "output directory") -> Iterator[Path]:
    """Yield a temporary directory that replaces ``out`` only if the block succeeds.

    Args:
        out: the directory to write.
        overwrite: replace an existing ``out`` that ``ours`` recognises as kgrec's (or an empty one).
        ours: marker file names that all lie in a directory this writer wrote, or a test on the
            directory; ``None``: only an empty directory is replaced.
        what: what ``out`` is, for messages (``"graph artifact"``).

    Raises:
        OutputError: ``out`` exists without ``overwrite``, is a file or a directory kgrec did not
            write, or cannot be written (nothing is changed).
    """
    out = Path(out)
    check_output(out, overwrite=overwrite, ours=ours, what=what)
    _prepare_parent(out)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
    except OSError as e:
        raise OutputError(f"{out}: cannot write in {out.parent} ({e.strerror})") from None
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    try:
        if out.exists() or out.is_symlink():
            check_output(out, overwrite=overwrite, ours=ours, what=what)  # still kgrec's, after the work
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        with contextlib.suppress(OSError):
            remove_output(old)


@contextlib.contextmanager
def atomic_file(out: str | Path, mode: str = "w", encoding: str | None = "utf-8", *, overwrite: bool = True,
                what: str = "output file") -> Iterator:
    """Open a temporary sibling of ``out`` for writing; rename it onto ``out`` on success.

    ``overwrite=False``: an existing ``out`` is refused, before and again after the block (see
    :func:`check_file_output`).

    Raises:
        OutputError: ``out`` is a directory, exists without ``overwrite``, lies under a file, or cannot be
            written.
    """
    out = Path(out)
    check_file_output(out, overwrite=overwrite, what=what)
    _prepare_parent(out)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent)
    except OSError as e:
        raise OutputError(f"{out}: cannot write in {out.parent} ({e.strerror})") from None
    os.close(fd)
    try:
        with open(tmp, mode, encoding=None if "b" in mode else encoding) as f:
            yield f
        check_file_output(out, overwrite=overwrite, what=what)  # nothing appeared there meanwhile
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
