"""Errors a user can act on: each names the file, the row and the problem."""

from __future__ import annotations

from pathlib import Path


class FewshotError(Exception):
    """Base class of every error the toolkit raises on purpose."""


class DataError(FewshotError, ValueError):
    """Something is wrong with an input file.

    The message reads ``<file>[, row N]: <problem>``; rows count data lines from 1 as a
    spreadsheet shows them (the header is line 1, so the first data row is row 2).
    """

    def __init__(self, path: str | Path | None, problem: str, row: int | None = None):
        self.path = None if path is None else Path(path)
        self.row = row
        self.problem = problem
        where = str(self.path) if self.path is not None else "<input>"
        if row is not None:
            where += f", row {row}"
        super().__init__(f"{where}: {problem}")


def missing_file(path: str | Path) -> str:
    """Why ``path``, which is not a regular file, cannot be read as one."""
    path = Path(path)
    if path.is_dir():
        return "a folder, not a file"
    return "not a regular file" if path.exists() else "no such file"


class ContentCheckError(DataError):
    """A data file's content does not match its dataset card."""


class CardError(FewshotError, ValueError):
    """A dataset card is missing, unknown or malformed."""


class DataMissingError(FewshotError, FileNotFoundError):
    """A data set is not in the data directory; the message says how to fetch it."""
