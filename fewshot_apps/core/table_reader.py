"""A robust reader of delimited text tables, for any domain's files.

:func:`read_text` reads a file (gunzipped when it is gzip) and decodes it, saying clearly
what is wrong with a missing, empty, corrupt, binary or wrongly encoded file (the file and,
for a bad byte, the row). :func:`read_table` reads a delimited table as strings on top of
it: it refuses a wrong delimiter (guessing the one the file uses), counts blank lines, and
sends rows with too few fields or missing values to a :class:`Sink`, which raises a
:class:`~fewshot_apps.errors.DataError` naming the file and row on the first bad row
(``errors="raise"``) or counts bad rows by reason in a :class:`ReadReport`
(``errors="skip"``). :func:`parse_numbers` parses a column the same way.

Rows are the file's line numbers (a header is line 1).
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from fewshot_apps.errors import DataError, missing_file

#: What a reader does with a bad row: raise a DataError, or skip it and count it.
Errors = Literal["raise", "skip"]

_DELIMITERS = {",": "comma", "\t": "tab", "|": "pipe", "::": "'::'", ";": "semicolon"}


@dataclass
class ReadReport:
    """What the readers read and what they skipped.

    ``skipped`` maps ``"<role>: <reason>"`` to a row count; ``examples`` holds the first few
    ``"file, row N: detail"`` lines per reason; ``notes`` are facts worth telling (a file read
    as UTF-8 although latin-1 was expected, a missing optional column, ...).
    """

    files: dict[str, str] = field(default_factory=dict)
    rows_read: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def skip(self, reason: str, count: int, examples: Sequence[str] = ()) -> None:
        if count <= 0:
            return
        self.skipped[reason] = self.skipped.get(reason, 0) + int(count)
        kept = self.examples.setdefault(reason, [])
        kept.extend(list(examples)[: max(0, 3 - len(kept))])

    def note(self, message: str) -> None:
        if message not in self.notes:
            self.notes.append(message)

    @property
    def total_skipped(self) -> int:
        return sum(self.skipped.values())

    def merge(self, other: ReadReport) -> None:
        self.files.update(other.files)
        self.rows_read.update(other.rows_read)
        for reason, count in other.skipped.items():
            self.skip(reason, count, other.examples.get(reason, []))
        for note in other.notes:
            self.note(note)


class Sink:
    """Raise on the first bad row, or count bad rows by reason (``errors="skip"``)."""

    def __init__(self, report: ReadReport, errors: Errors):
        if errors not in ("raise", "skip"):
            raise ValueError(f"errors must be 'raise' or 'skip', not {errors!r}")
        self.report = report
        self.errors = errors

    def bad(
        self,
        path: Path,
        role: str,
        reason: str,
        lines: np.ndarray,
        details: Sequence[str],
        *,
        always_raise: bool = False,
    ) -> None:
        """``lines`` [m]: the bad rows' line numbers; ``details`` [m or more]: one problem each."""
        if len(lines) == 0:
            return
        if self.errors == "raise" or always_raise:
            raise DataError(path, details[0], row=int(lines[0]))
        self.report.skip(
            f"{role}: {reason}",
            len(lines),
            [f"{path.name}, row {int(n)}: {d}" for n, d in zip(lines[:3], details[:3])],
        )


@dataclass
class Table:
    """A file read as strings (or, when every cell parsed as a number, as float64):
    ``df`` (one column per field), each row's line number, the file's physical lines."""

    path: Path
    role: str
    df: pd.DataFrame
    lines: np.ndarray
    keep: np.ndarray
    physical: list[str]
    sep: str

    def col(self, name: str) -> pd.Series:
        return self.df[name]

    def cell(self, name: str, i: int) -> str:
        """Row ``i``'s ``name`` field as the file spells it (for messages)."""
        value = self.df[name].iat[i]
        if isinstance(value, str):
            return value.strip()
        fields = self.physical[int(self.lines[i]) - 1].rstrip("\r").split(self.sep)
        j = self.df.columns.get_loc(name)
        return fields[j].strip() if j < len(fields) else str(value)

    def drop(self, mask: np.ndarray) -> None:
        self.keep &= ~mask

    def kept(self) -> pd.DataFrame:
        out = self.df.loc[self.keep].copy()
        out["line"] = self.lines[self.keep]
        return out.reset_index(drop=True)


def read_text(
    path: str | Path,
    encoding: str = "utf-8",
    *,
    layout: str | None = None,
    report: ReadReport | None = None,
    encoding_hint: str = "",
) -> str:
    """The text of ``path`` (gunzipped when it is gzip), decoded from ``encoding``.

    A missing, empty (or blank), corrupt gzip, binary or wrongly encoded file is a
    :class:`DataError` naming the file (and, for a bad byte, its row).

    Args:
        layout: how the file should look, for error messages (None: not said).
        report: where to note a file read as UTF-8 although latin-1 was expected.
        encoding_hint: appended to the message of a file that is not valid UTF-8 (what to do
            about it).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, missing_file(path) + (f" (expected {layout})" if layout else ""))
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":  # gzipped (ratings.csv.gz)
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as exc:
            raise DataError(path, f"truncated or corrupt gzip file ({exc})") from None
    if not raw.strip():
        raise DataError(path, "the file is empty" + (f"; expected {layout}" if layout else ""))
    return _decode(path, raw, encoding, report, encoding_hint)


def _decode(
    path: Path, raw: bytes, encoding: str, report: ReadReport | None, hint: str
) -> str:
    # The whole file, not only its start: a binary file may begin with a text header.
    # bytes.find is a memchr, far cheaper than the decode that follows.
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise DataError(
            path, f"the file has NUL bytes (UTF-16 or binary?); expected {encoding} text",
            row=raw.count(b"\n", 0, nul) + 1,
        )
    enc = encoding.lower().replace("_", "-")
    if enc in ("utf-8", "utf8"):
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            raise DataError(
                path,
                f"byte 0x{raw[exc.start]:02x} is not valid UTF-8; expected UTF-8 text{hint}",
                row=line,
            ) from None
    if enc in ("latin-1", "latin1", "iso-8859-1"):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("latin-1")
        if report is not None and not text.isascii():
            report.note(
                f"{path.name}: expected latin-1 (as MovieLens ships it) but the file is valid "
                "UTF-8; read as UTF-8"
            )
        return text
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(path, f"not valid {encoding} text; expected {encoding}", row=line) from None
    except LookupError:
        raise DataError(path, f"unknown encoding {encoding!r}") from None


def guess_delimiter(line: str, expected: str) -> str | None:
    """The delimiter other than ``expected`` that splits ``line`` into the most fields (None:
    none splits it)."""
    best, best_n = None, 1
    for sep in _DELIMITERS:
        if sep == expected:
            continue
        n = len(line.split(sep))
        if n > best_n:
            best, best_n = sep, n
    return best


def delimiter_name(sep: str) -> str:
    """``","`` -> ``"comma"``, ``"\\t"`` -> ``"tab"`` ... (for messages)."""
    return _DELIMITERS.get(sep, repr(sep))


def delimiter_error(path: Path, first_line: str, sep: str, layout: str, found: int) -> DataError:
    """The error for a file whose first line has ``found`` ``sep``-separated fields (too few),
    naming the delimiter the line seems to use."""
    guess = guess_delimiter(first_line, sep)
    hint = f"; line 1 looks {delimiter_name(guess)}-separated" if guess else ""
    return DataError(
        path,
        f"expected {delimiter_name(sep)}-separated fields ({layout}), found {found} field(s)"
        f"{hint}",
        row=1,
    )


def parser_error(path: Path, exc: Exception, sep: str, layout: str) -> DataError:
    """The error for a file pandas cannot parse: the row and field counts when pandas says
    them."""
    m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
    if m:
        return DataError(
            path,
            f"expected {m.group(1)} {delimiter_name(sep)}-separated fields, found "
            f"{m.group(3)} ({layout})",
            row=int(m.group(2)),
        )
    return DataError(path, f"cannot parse the file ({layout}): {exc}")


def read_table(
    path: Path,
    role: str,
    *,
    sep: str,
    columns: Sequence[str] | None,
    required: Sequence[str],
    encoding: str,
    layout: str,
    report: ReadReport,
    sink: Sink,
    quoting: int = csv.QUOTE_MINIMAL,
    all_numeric: bool = False,
    encoding_hint: str = "",
) -> Table:
    """Read ``path`` as strings.

    Args:
        columns: the field names of a headerless file (None: the file has a header row).
        required: columns that must be present (header files) / non-empty (all files).
        layout: how the file should look, for error messages.
        all_numeric: every field should be a number (ratings files): try a fast float64
            parse first; any problem falls back to the string parse and its messages.
        encoding_hint: see :func:`read_text`.
    """
    path = Path(path)
    text = read_text(path, encoding, layout=layout, report=report, encoding_hint=encoding_hint)
    report.files[role] = str(path)
    physical = text.split("\n")
    first = next((ln.rstrip("\r") for ln in physical if ln.strip()), "")
    parse_sep = sep
    if sep == "::":
        text = text.replace("::", "\x1f")
        parse_sep = "\x1f"
    header = columns is None
    n_expected = len(required) if header else len(columns)

    if len(first.split(sep)) < min(n_expected, 2):
        raise delimiter_error(path, first, sep, layout, len(first.split(sep)))
    fast = _read_numeric(text, parse_sep, columns, required) if all_numeric else None
    if fast is not None:
        lines = np.arange(len(fast), dtype=np.int64) + (2 if header else 1)
        report.rows_read[role] = len(fast)
        if len(fast) == 0:
            raise DataError(path, f"the file has no data rows; expected {layout}")
        return Table(path, role, fast, lines, np.ones(len(fast), dtype=bool), physical, sep)
    try:
        df = pd.read_csv(
            io.StringIO(text),
            sep=parse_sep,
            header=0 if header else None,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            quoting=quoting,
            engine="c",
        )
    except pd.errors.EmptyDataError:
        raise DataError(path, f"the file is empty; expected {layout}") from None
    except pd.errors.ParserError as exc:
        raise parser_error(path, exc, sep, layout) from None
    offset = 2 if header else 1
    lines = np.arange(len(df), dtype=np.int64) + offset
    if header:
        _refuse_index_column(path, df, sep, layout)
        df.columns = [str(c).strip() for c in df.columns]
        missing = [c for c in required if c not in df.columns]
        if missing:
            if len(df.columns) == 1:
                raise delimiter_error(path, first, sep, layout, 1)
            raise DataError(
                path,
                f"no column {missing[0]!r} (columns: {', '.join(map(str, df.columns))}); "
                f"expected {layout}",
                row=1,
            )
    else:
        if df.shape[1] < len(columns):
            raise delimiter_error(path, first, sep, layout, df.shape[1])
        if df.shape[1] > len(columns):
            raise DataError(
                path,
                f"expected {len(columns)} {delimiter_name(sep)}-separated fields, found "
                f"{df.shape[1]} ({layout})",
                row=1,
            )
        df.columns = list(columns)
    df = df.fillna("")
    table = Table(path, role, df, lines, np.ones(len(df), dtype=bool), physical, sep)
    # blank lines and rows with too few fields
    values = df.to_numpy(dtype=object)
    empty = values == ""
    all_empty = empty.all(axis=1)
    if all_empty.any():
        report.skip(f"{role}: blank line", int(all_empty.sum()))
        table.drop(all_empty)
    req_idx = [list(df.columns).index(c) for c in required if c in df.columns]
    some_empty = empty[:, req_idx].any(axis=1) & ~all_empty if req_idx else np.zeros(len(df), bool)
    if some_empty.any():
        rows = np.flatnonzero(some_empty)
        n_cols = df.shape[1]
        short, missing_value = [], []
        for r in rows:
            ln = lines[r] - 1
            raw_line = physical[ln].rstrip("\r") if ln < len(physical) else ""
            n_fields = len(raw_line.split(sep))
            if n_fields < n_cols:
                short.append((r, f"expected {n_cols} {delimiter_name(sep)}-separated fields, "
                                 f"found {n_fields} ({layout})"))
            else:
                col = next(c for c in required if c in df.columns and df.iat[r, df.columns.get_loc(c)] == "")
                missing_value.append((r, f"missing {col}"))
        groups = [("too few fields", short), ("missing value", missing_value)]
        groups.sort(key=lambda g: g[1][0][0] if g[1] else len(df))  # the first bad row first
        for reason, found in groups:
            if found:
                idx = np.array([r for r, _ in found])
                sink.bad(path, role, reason, lines[idx], [d for _, d in found])
                table.drop(np.isin(np.arange(len(df)), idx))
    report.rows_read[role] = int((~all_empty).sum())
    if report.rows_read[role] == 0:
        raise DataError(path, f"the file has no data rows; expected {layout}")
    return table


def _refuse_index_column(path: Path, df: pd.DataFrame, sep: str, layout: str) -> None:
    """When the first data row has more fields than the header, pandas silently makes the
    extra leading fields the index (every column then holds its neighbour's values): refuse
    it, naming that row."""
    if isinstance(df.index, pd.RangeIndex):
        return
    n_header = df.shape[1]
    name = delimiter_name(sep)
    raise DataError(
        path,
        f"the row has {n_header + df.index.nlevels} {name}-separated fields, the header has "
        f"{n_header} (a missing column name, or an unquoted {name} inside a value?); "
        f"expected {layout}",
        row=2,
    )


def _read_numeric(
    text: str, sep: str, columns: Sequence[str] | None, required: Sequence[str]
) -> pd.DataFrame | None:
    """The file as float64 columns if every cell is a finite number, else None."""
    try:
        df = pd.read_csv(
            io.StringIO(text), sep=sep, header=None if columns else 0, dtype=np.float64,
            skip_blank_lines=False, quoting=csv.QUOTE_NONE, engine="c",
        )  # fmt: skip
    except (ValueError, pd.errors.ParserError):
        return None
    if not isinstance(df.index, pd.RangeIndex):  # extra fields became the index: the string
        return None  # parse says which row
    if columns is not None:
        if df.shape[1] != len(columns):
            return None
        df.columns = list(columns)
    else:
        df.columns = [str(c).strip() for c in df.columns]
        if any(c not in df.columns for c in required):
            return None
    if not np.isfinite(df.to_numpy()).all():
        return None
    return df


def parse_numbers(
    table: Table,
    column: str,
    what: str,
    sink: Sink,
    *,
    integer: bool = False,
    hint: str = "",
    optional: bool = False,
) -> np.ndarray:
    """float64 ``[n]`` of ``column`` (NaN on dropped rows); non-numbers are bad rows, and so
    are blanks unless ``optional`` (then NaN)."""
    raw = table.col(column)
    if pd.api.types.is_float_dtype(raw.dtype):  # the numeric fast path
        values = raw.to_numpy(dtype=np.float64, copy=True)
    else:
        values = np.array(pd.to_numeric(raw, errors="coerce"), dtype=np.float64)  # " 4 " is 4
    ok = np.isfinite(values) | ~table.keep
    if integer:
        ok &= (values == np.floor(values)) | ~table.keep
    if ok.all():
        values[~table.keep] = np.nan
        return values
    text = raw.astype(str).str.strip()
    blank = table.keep & (text == "").to_numpy()
    if blank.any() and not optional:
        idx = np.flatnonzero(blank)
        sink.bad(table.path, table.role, f"missing {what}", table.lines[idx],
                 [f"missing {what}"] * len(idx))  # fmt: skip
        table.drop(blank)
    live = table.keep & (text != "").to_numpy()
    bad = live & ~np.isfinite(values)
    if integer:
        bad |= live & np.isfinite(values) & (values != np.floor(values))
    if bad.any():
        idx = np.flatnonzero(bad)
        kind = "an integer" if integer else "a number"
        details = [f"{what} {table.cell(column, i)!r} is not {kind}{hint}" for i in idx[:3]]
        sink.bad(table.path, table.role, f"non-numeric {what}", table.lines[idx], details)
        table.drop(bad)
    values[~table.keep] = np.nan
    return values


