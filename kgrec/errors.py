"""One exception family for everything a user can get wrong.

The CLI prints a :class:`KgrecError` as one line and exits non-zero; any other
exception is a bug in kgrec and keeps its traceback.
"""
from __future__ import annotations

from pathlib import Path


class KgrecError(Exception):
    """Base class of every error kgrec raises on purpose."""


class InputError(KgrecError):
    """A data file is missing or malformed.

    The message names the file (its name, or with ``full_path`` the path as given), the line
    (1-based, counting the header) when known, and what was expected.
    """

    def __init__(self, path: str | Path, message: str, line: int | None = None, *, full_path: bool = False):
        self.path = str(path)
        self.line = line
        self.detail = message
        name = self.path if full_path else Path(self.path).name
        where = name if line is None else f"{name} line {line}"
        super().__init__(f"{where}: {message}" if path else message)


class SpecError(KgrecError):
    """A graph spec or config file has a missing, misspelt or out-of-range key."""

    def __init__(self, path: str | Path, key: str, message: str):
        self.path = str(path)
        self.key = key
        self.detail = message
        super().__init__(f"{Path(self.path).name}: key '{key}': {message}")


class ArtifactError(KgrecError):
    """A graph artifact directory is missing, incomplete or from another version."""


class OutputError(KgrecError):
    """An output path cannot be written, or holds something kgrec did not write.

    The message names the path and why; nothing was changed.
    """


class KgrecWarning(UserWarning):
    """Something a user should know that does not stop the command (e.g. an artifact without checksums);
    the CLI prints it as one ``kgrec: warning:`` line."""


class DownloadError(KgrecError):
    """A dataset could not be fetched or failed its checksum."""
