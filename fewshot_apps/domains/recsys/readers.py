"""Readers: MovieLens (latest-small, 100K, 1M) and a user's own CSVs -> validated tables.

Every reader returns :class:`RecsysData`: an interactions table (one row per (user, item)),
the listed items with their attributes, user attributes where the data has them, tags where
it has them, the rating scale, and a :class:`ReadReport` of skipped rows by reason.

Bad input is never silent. With ``errors="raise"`` (the default) the first bad row raises a
:class:`~fewshot_apps.errors.DataError` naming the file, the row (the file's line number; a
header is line 1) and the problem; with ``errors="skip"`` bad rows are dropped and counted by
reason in the report. Some things are always counted rather than raised: a duplicate
(user, item) pair (the latest rating is kept), blank lines, tags of users with no ratings.
A wrong delimiter, a wrong encoding and an empty file always raise, saying what was expected.

Formats:

* ``movielens-latest``: ``ratings.csv`` (userId,movieId,rating,timestamp), ``movies.csv``
  (movieId,title,genres), optional ``tags.csv`` (userId,movieId,tag,timestamp); UTF-8.
* ``movielens-100k``: ``u.data`` (user, item, rating, timestamp; tab-separated),
  ``u.item`` (id|title|release date|video release date|IMDb URL|19 genre flags),
  ``u.user`` (id|age|gender|occupation|zip); latin-1, no headers.
* ``movielens-1m``: ``ratings.dat`` (UserID::MovieID::Rating::Timestamp), ``movies.dat``
  (MovieID::Title::Genres), ``users.dat`` (UserID::Gender::Age::Occupation::Zip-code);
  latin-1, no headers.
* ``interactions-csv``: a user's ``user,item,rating[,timestamp]`` CSV (column names
  configurable; no rating column = implicit feedback, each row a positive), with optional
  item-feature and user-feature CSVs.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from fewshot_apps.errors import DataError

Errors = Literal["raise", "skip"]

#: Genre flag order of MovieLens 100K's ``u.item`` (``u.genre``); "unknown" means none.
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip

#: MovieLens 1M ``users.dat`` occupation codes (its README).
ML1M_OCCUPATIONS = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
)  # fmt: skip

#: MovieLens 1M age codes: the lower bound of each age bracket.
ML1M_AGE_CODES = (1, 18, 25, 35, 45, 50, 56)

NO_GENRES = {"(no genres listed)", "unknown", ""}

_YEAR_IN_TITLE = re.compile(r"\((\d{4})\)\s*$")
_DELIMITERS = {",": "comma", "\t": "tab", "|": "pipe", "::": "'::'", ";": "semicolon"}


@dataclass(frozen=True)
class RatingScale:
    """Allowed explicit ratings: ``low <= r <= high``, on a grid of ``step`` when set."""

    low: float
    high: float
    step: float | None = None

    def invalid(self, ratings: np.ndarray) -> np.ndarray:
        """bool ``[n]``: ratings outside the scale (or off its step grid)."""
        r = np.asarray(ratings, dtype=np.float64)
        bad = (r < self.low - 1e-9) | (r > self.high + 1e-9)
        if self.step:
            steps = (r - self.low) / self.step
            bad |= np.abs(steps - np.round(steps)) > 1e-6
        return bad

    def __str__(self) -> str:
        whole = all(float(v).is_integer() for v in (self.low, self.high, self.step or 1))
        fmt = "{:g}" if whole else "{:.1f}"
        text = f"{fmt.format(self.low)}-{fmt.format(self.high)}"
        return text + (f" in steps of {self.step:g}" if self.step else "")


#: The rating scale of each MovieLens format (a card's ``rating_scale`` / ``rating_step``
#: override it).
FORMAT_SCALES = {
    "movielens-latest": RatingScale(0.5, 5.0, 0.5),
    "movielens-100k": RatingScale(1, 5, 1),
    "movielens-1m": RatingScale(1, 5, 1),
}


def declared_scale(fmt: str, reader: dict) -> RatingScale | None:
    """The rating scale of a MovieLens format with a card's reader settings, known before
    reading any file; None for ``interactions-csv`` (implicit feedback or an explicit scale
    depends on the file's columns, and without ``rating_scale`` the scale is the observed
    range)."""
    default = FORMAT_SCALES.get(fmt)
    if default is None:
        return None
    if "rating_scale" not in reader and "rating_step" not in reader:
        return default
    low, high = reader.get("rating_scale", (default.low, default.high))
    step = reader.get("rating_step", default.step) or None
    return RatingScale(float(low), float(high), step)


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


@dataclass
class RecsysData:
    """Validated tables of one recommendation data set.

    Attributes:
        ratings: one row per (user, item): ``user``, ``item`` (ids), ``rating`` (float32;
            1.0 for implicit feedback), ``timestamp`` (float64 Unix seconds, NaN when the data
            has none), ``line`` (the source line).
        items: every listed item: ``item``, ``title`` (str), ``genres`` ('|'-joined, "" for
            none), ``year`` (float64, NaN where unknown), then ``item_feature_columns``.
        users: ``user`` and ``user_feature_columns`` (age, gender, occupation ...), or None.
        tags: ``user``, ``item``, ``tag`` (lower-cased, stripped), ``timestamp``, or None.
        scale: the explicit rating scale, None for implicit feedback.
    """

    name: str
    format: str
    ratings: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame | None
    tags: pd.DataFrame | None
    scale: RatingScale | None
    report: ReadReport
    item_feature_columns: list[str] = field(default_factory=list)
    user_feature_columns: list[str] = field(default_factory=list)

    @property
    def implicit(self) -> bool:
        return self.scale is None

    def counts(self) -> dict[str, int]:
        """The content counts a card's ``[expected]`` table checks."""
        out = {
            "ratings": len(self.ratings),
            "users": int(self.ratings["user"].nunique()),
            "rated_items": int(self.ratings["item"].nunique()),
            "listed_items": len(self.items),
        }
        if self.tags is not None:
            out["tags"] = len(self.tags)
        return out


# --------------------------------------------------------------------------------------
# low-level table reading


class _Sink:
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
class _Table:
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


def _decode(path: Path, raw: bytes, encoding: str, report: ReadReport) -> str:
    if b"\x00" in raw[:4096]:
        raise DataError(
            path, f"the file has NUL bytes (UTF-16 or binary?); expected {encoding} text"
        )
    enc = encoding.lower().replace("_", "-")
    if enc in ("utf-8", "utf8"):
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            raise DataError(
                path,
                f"byte 0x{raw[exc.start]:02x} is not valid UTF-8; expected UTF-8 text "
                "(a latin-1 file? a card's [options] encoding = \"latin-1\" reads it)",
                row=line,
            ) from None
    if enc in ("latin-1", "latin1", "iso-8859-1"):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("latin-1")
        if not text.isascii():
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


def _guess_delimiter(line: str, expected: str) -> str | None:
    best, best_n = None, 1
    for sep in _DELIMITERS:
        if sep == expected:
            continue
        n = len(line.split(sep))
        if n > best_n:
            best, best_n = sep, n
    return best


def _delimiter_name(sep: str) -> str:
    return _DELIMITERS.get(sep, repr(sep))


def _read_table(
    path: Path,
    role: str,
    *,
    sep: str,
    columns: Sequence[str] | None,
    required: Sequence[str],
    encoding: str,
    layout: str,
    report: ReadReport,
    sink: _Sink,
    quoting: int = csv.QUOTE_MINIMAL,
    all_numeric: bool = False,
) -> _Table:
    """Read ``path`` as strings.

    Args:
        columns: the field names of a headerless file (None: the file has a header row).
        required: columns that must be present (header files) / non-empty (all files).
        layout: how the file should look, for error messages.
        all_numeric: every field should be a number (ratings files): try a fast float64
            parse first; any problem falls back to the string parse and its messages.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, f"no such file (expected {layout})")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":  # gzipped (ratings.csv.gz)
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as exc:
            raise DataError(path, f"truncated or corrupt gzip file ({exc})") from None
    if not raw.strip():
        raise DataError(path, f"the file is empty; expected {layout}")
    text = _decode(path, raw, encoding, report)
    report.files[role] = str(path)
    physical = text.split("\n")
    first = next((ln.rstrip("\r") for ln in physical if ln.strip()), "")
    parse_sep = sep
    if sep == "::":
        text = text.replace("::", "\x1f")
        parse_sep = "\x1f"
    header = columns is None
    n_expected = len(required) if header else len(columns)

    def wrong_delimiter(found_fields: int) -> DataError:
        guess = _guess_delimiter(first, sep)
        hint = f"; line 1 looks {_delimiter_name(guess)}-separated" if guess else ""
        return DataError(
            path,
            f"expected {_delimiter_name(sep)}-separated fields ({layout}), found "
            f"{found_fields} field(s){hint}",
            row=1,
        )

    if len(first.split(sep)) < min(n_expected, 2):
        raise wrong_delimiter(len(first.split(sep)))
    fast = _read_numeric(text, parse_sep, columns, required) if all_numeric else None
    if fast is not None:
        lines = np.arange(len(fast), dtype=np.int64) + (2 if header else 1)
        report.rows_read[role] = len(fast)
        if len(fast) == 0:
            raise DataError(path, f"the file has no data rows; expected {layout}")
        return _Table(path, role, fast, lines, np.ones(len(fast), dtype=bool), physical, sep)
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
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if m:
            raise DataError(
                path,
                f"expected {m.group(1)} {_delimiter_name(sep)}-separated fields, found "
                f"{m.group(3)} ({layout})",
                row=int(m.group(2)),
            ) from None
        raise DataError(path, f"cannot parse the file ({layout}): {exc}") from None
    offset = 2 if header else 1
    lines = np.arange(len(df), dtype=np.int64) + offset
    if header:
        df.columns = [str(c).strip() for c in df.columns]
        missing = [c for c in required if c not in df.columns]
        if missing:
            if len(df.columns) == 1:
                raise wrong_delimiter(1)
            raise DataError(
                path,
                f"no column {missing[0]!r} (columns: {', '.join(map(str, df.columns))}); "
                f"expected {layout}",
                row=1,
            )
    else:
        if df.shape[1] < len(columns):
            raise wrong_delimiter(df.shape[1])
        if df.shape[1] > len(columns):
            raise DataError(
                path,
                f"expected {len(columns)} {_delimiter_name(sep)}-separated fields, found "
                f"{df.shape[1]} ({layout})",
                row=1,
            )
        df.columns = list(columns)
    df = df.fillna("")
    table = _Table(path, role, df, lines, np.ones(len(df), dtype=bool), physical, sep)
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
                short.append((r, f"expected {n_cols} {_delimiter_name(sep)}-separated fields, "
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


def _numbers(
    table: _Table,
    column: str,
    what: str,
    sink: _Sink,
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


def _check_scale(
    table: _Table, column: str, ratings: np.ndarray, scale: RatingScale, sink: _Sink, dataset: str
) -> None:
    bad = table.keep & scale.invalid(np.nan_to_num(ratings, nan=scale.low))
    if bad.any():
        idx = np.flatnonzero(bad)
        details = [
            f"rating {table.cell(column, i)!r} is outside the {dataset} rating scale {scale}"
            for i in idx[:3]
        ]
        sink.bad(table.path, table.role, "rating outside the scale", table.lines[idx], details)
        table.drop(bad)


def _unknown(
    table: _Table,
    ids: np.ndarray | pd.Series,
    known: pd.Index,
    what: str,
    where: str,
    sink: _Sink,
) -> None:
    ids = pd.Series(np.asarray(ids, dtype=object) if not isinstance(ids, pd.Series) else ids)
    bad = table.keep & ~ids.isin(known).to_numpy()
    if bad.any():
        idx = np.flatnonzero(bad)
        details = [f"unknown {what} id {ids.iat[i]!r} (not in {where})" for i in idx[:3]]
        sink.bad(table.path, table.role, f"unknown {what} id", table.lines[idx], details)
        table.drop(bad)


def _dedupe(ratings: pd.DataFrame, report: ReadReport, role: str, path: Path) -> pd.DataFrame:
    """Keep the latest rating of each (user, item) pair (by timestamp, then file order)."""
    if ratings.empty:
        raise DataError(path, "no valid rows left (see the skipped rows: " + (
            ", ".join(f"{k} {v}" for k, v in report.skipped.items()) or "none") + ")")
    order = ratings.sort_values(["user", "item", "timestamp", "line"], na_position="first")
    dup = order.duplicated(["user", "item"], keep="last")
    if dup.any():
        examples = [
            f"{path.name}, row {int(r.line)}: user {r.user!r} rated item {r.item!r} again "
            "later; this rating was dropped"
            for r in order.loc[dup].head(3).itertuples()
        ]
        report.skip(
            f"{role}: duplicate (user, item), kept the latest rating", int(dup.sum()), examples
        )
        order = order.loc[~dup]
    return order.sort_values("line").reset_index(drop=True)


def _ints(values: np.ndarray) -> np.ndarray:
    return values.astype(np.int64)


def _year_from_title(titles: pd.Series) -> np.ndarray:
    return pd.to_numeric(titles.str.extract(_YEAR_IN_TITLE, expand=False), errors="coerce").to_numpy(
        dtype=np.float64
    )


def _genres(series: pd.Series) -> pd.Series:
    """'|'-joined genres with the "none" markers removed."""
    parts = series.str.strip()
    return parts.where(~parts.isin(NO_GENRES), "")


def _note_years(items: pd.DataFrame, report: ReadReport) -> None:
    missing = int(items["year"].isna().sum())
    if missing:
        titles = ", ".join(repr(t) for t in items.loc[items["year"].isna(), "title"].head(3))
        report.note(
            f"{missing} of {len(items)} items have no release year (left missing, not guessed; "
            f"e.g. {titles})"
        )


# --------------------------------------------------------------------------------------
# shared ratings / items assembly


def _ratings_frame(
    table: _Table,
    users: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    timestamps: np.ndarray,
) -> pd.DataFrame:
    keep = table.keep
    return pd.DataFrame(
        {
            "user": users[keep],
            "item": items[keep],
            "rating": ratings[keep].astype(np.float32),
            "timestamp": timestamps[keep].astype(np.float64),
            "line": table.lines[keep],
        }
    )


def _dedupe_items(table: _Table, ids: np.ndarray, sink: _Sink, what: str = "item") -> None:
    """A listed id seen again on a later row is a bad row (the first listing is kept)."""
    kept = np.flatnonzero(table.keep)
    again = pd.Series(np.asarray(ids)[kept]).duplicated(keep="first").to_numpy()
    if again.any():
        idx = kept[again]
        details = [f"{what} id {ids[i]:.0f} is listed twice" for i in idx[:3]]
        sink.bad(table.path, table.role, f"duplicate {what} id", table.lines[idx], details)
        dup = np.zeros(len(table.keep), dtype=bool)
        dup[idx] = True
        table.drop(dup)


# --------------------------------------------------------------------------------------
# MovieLens latest (ml-latest-small, ml-latest, ml-25m ...)


def read_movielens_latest(
    ratings_path: str | Path,
    movies_path: str | Path,
    tags_path: str | Path | None = None,
    *,
    scale: RatingScale = RatingScale(0.5, 5.0, 0.5),
    errors: Errors = "raise",
    name: str = "movielens-latest",
) -> RecsysData:
    """``ratings.csv`` + ``movies.csv`` (+ ``tags.csv``) of a MovieLens "latest" release."""
    report = ReadReport()
    sink = _Sink(report, errors)
    mt = _read_table(
        Path(movies_path), "movies", sep=",", columns=None,
        required=["movieId", "title", "genres"], encoding="utf-8",
        layout="a CSV with header movieId,title,genres (UTF-8)", report=report, sink=sink,
    )  # fmt: skip
    mid = _numbers(mt, "movieId", "movie id", sink, integer=True)
    _dedupe_items(mt, mid, sink, "movie")
    movies = mt.kept()
    items = pd.DataFrame(
        {
            "item": _ints(mid[mt.keep]),
            "title": movies["title"].str.strip().to_numpy(),
            "genres": _genres(movies["genres"]).to_numpy(),
        }
    )
    items["year"] = _year_from_title(items["title"])
    _note_years(items, report)
    no_genre = int((items["genres"] == "").sum())
    if no_genre:
        report.note(f"{no_genre} items list no genres ('(no genres listed)': no genre features)")

    rt = _read_table(
        Path(ratings_path), "ratings", sep=",", columns=None,
        required=["userId", "movieId", "rating", "timestamp"], encoding="utf-8",
        layout="a CSV with header userId,movieId,rating,timestamp (UTF-8)", report=report,
        sink=sink, all_numeric=True,
    )  # fmt: skip
    ratings = _ratings_table(rt, "userId", "movieId", "rating", "timestamp", scale, sink, name)
    _unknown(rt, ratings["item"], pd.Index(items["item"]), "movie", Path(movies_path).name, sink)
    frame = _ratings_frame(rt, ratings["user"], ratings["item"], ratings["rating"], ratings["timestamp"])
    frame = _dedupe(frame, report, "ratings", rt.path)

    tags = None
    if tags_path is not None:
        tags = _read_tags(Path(tags_path), frame, items, report, sink)
    return RecsysData(name, "movielens-latest", frame, items, None, tags, scale, report)


def _ratings_table(
    rt: _Table,
    user_col: str,
    item_col: str,
    rating_col: str,
    ts_col: str | None,
    scale: RatingScale | None,
    sink: _Sink,
    dataset: str,
) -> dict[str, np.ndarray]:
    """Integer ids, numeric ratings on the scale, numeric timestamps; bad rows dropped."""
    users = _numbers(rt, user_col, "user id", sink, integer=True)
    items = _numbers(rt, item_col, "item id", sink, integer=True)
    ratings = _numbers(rt, rating_col, "rating", sink)
    if scale is not None:
        _check_scale(rt, rating_col, ratings, scale, sink, dataset)
    ts = (
        _numbers(rt, ts_col, "timestamp", sink, hint=" (expected Unix seconds)")
        if ts_col
        else np.full(len(rt.df), np.nan)
    )
    keep = rt.keep
    out_u = np.zeros(len(users), dtype=np.int64)
    out_i = np.zeros(len(items), dtype=np.int64)
    out_u[keep] = users[keep].astype(np.int64)
    out_i[keep] = items[keep].astype(np.int64)
    return {"user": out_u, "item": out_i, "rating": ratings, "timestamp": ts}


def _read_tags(
    path: Path, ratings: pd.DataFrame, items: pd.DataFrame, report: ReadReport, sink: _Sink
) -> pd.DataFrame:
    tt = _read_table(
        path, "tags", sep=",", columns=None, required=["userId", "movieId", "tag"],
        encoding="utf-8", layout="a CSV with header userId,movieId,tag,timestamp (UTF-8)",
        report=report, sink=sink,
    )  # fmt: skip
    users = _numbers(tt, "userId", "user id", sink, integer=True)
    movies = _numbers(tt, "movieId", "movie id", sink, integer=True)
    ts = (
        _numbers(tt, "timestamp", "timestamp", sink, hint=" (expected Unix seconds)", optional=True)
        if "timestamp" in tt.df
        else np.full(len(tt.df), np.nan)
    )
    _unknown(tt, pd.Series(np.nan_to_num(movies, nan=-1).astype(np.int64)), pd.Index(items["item"]),
             "movie", "the movies file", sink)  # fmt: skip
    tag = tt.col("tag").str.strip().str.lower()
    keep = tt.keep
    frame = pd.DataFrame(
        {
            "user": users[keep].astype(np.int64),
            "item": movies[keep].astype(np.int64),
            "tag": tag[keep].to_numpy(),
            "timestamp": ts[keep],
        }
    )
    raters = pd.Index(ratings["user"].unique())
    orphan = ~frame["user"].isin(raters)
    if orphan.any():
        report.skip("tags: tags of users with no ratings (no split to put them in)", int(orphan.sum()))
        frame = frame.loc[~orphan].reset_index(drop=True)
    return frame


# --------------------------------------------------------------------------------------
# MovieLens 100K


def read_movielens_100k(
    data_path: str | Path,
    item_path: str | Path,
    user_path: str | Path | None = None,
    *,
    scale: RatingScale = RatingScale(1, 5, 1),
    errors: Errors = "raise",
    name: str = "movielens-100k",
) -> RecsysData:
    """``u.data`` (tab-separated), ``u.item`` and ``u.user`` ('|'-separated, latin-1)."""
    report = ReadReport()
    sink = _Sink(report, errors)
    item_cols = ["item", "title", "release_date", "video_release_date", "url", *ML100K_GENRES]
    it = _read_table(
        Path(item_path), "items", sep="|", columns=item_cols, required=["item", "title"],
        encoding="latin-1", quoting=csv.QUOTE_NONE,
        layout="u.item: id|title|release date|video release date|IMDb URL|19 genre flags "
        "(latin-1)", report=report, sink=sink,
    )  # fmt: skip
    ids = _numbers(it, "item", "item id", sink, integer=True)
    flags = np.zeros((len(it.df), len(ML100K_GENRES)), dtype=np.float64)
    for j, g in enumerate(ML100K_GENRES):
        flags[:, j] = _numbers(it, g, f"genre flag {g!r}", sink, integer=True)
    bad = it.keep & ~np.isin(np.nan_to_num(flags, nan=0), (0, 1)).all(axis=1)
    if bad.any():
        idx = np.flatnonzero(bad)
        sink.bad(it.path, "items", "genre flag not 0/1", it.lines[idx],
                 ["a genre flag is not 0 or 1"] * len(idx))  # fmt: skip
        it.drop(bad)
    _dedupe_items(it, ids, sink)
    keep = it.keep
    names = np.array(ML100K_GENRES[1:], dtype=object)
    on = flags[keep][:, 1:] == 1
    genres = ["|".join(names[row]) for row in on]
    date = it.col("release_date").str.strip()[keep]
    year = pd.to_numeric(date.str.extract(r"(\d{4})\s*$", expand=False), errors="coerce")
    titles = it.col("title").str.strip()[keep]
    year = year.to_numpy(dtype=np.float64)
    # no release date: the year in the title if it has one (a fact, not a guess)
    year = np.where(np.isfinite(year), year, _year_from_title(titles))
    items = pd.DataFrame(
        {
            "item": ids[keep].astype(np.int64),
            "title": titles.to_numpy(),
            "genres": genres,
            "year": year,
        }
    )
    _note_years(items, report)

    users = None
    if user_path is not None:
        ut = _read_table(
            Path(user_path), "users", sep="|", columns=["user", "age", "gender", "occupation", "zip"],
            required=["user", "age", "gender", "occupation"], encoding="latin-1",
            quoting=csv.QUOTE_NONE, layout="u.user: id|age|gender|occupation|zip code (latin-1)",
            report=report, sink=sink,
        )  # fmt: skip
        uid = _numbers(ut, "user", "user id", sink, integer=True)
        age = _numbers(ut, "age", "age", sink)
        _dedupe_items(ut, uid, sink, "user")
        k = ut.keep
        users = pd.DataFrame(
            {
                "user": uid[k].astype(np.int64),
                "age": age[k],
                "gender": ut.col("gender").str.strip()[k].to_numpy(),
                "occupation": ut.col("occupation").str.strip()[k].to_numpy(),
                "zip": ut.col("zip").str.strip()[k].to_numpy(),
            }
        )

    rt = _read_table(
        Path(data_path), "ratings", sep="\t", columns=["user", "item", "rating", "timestamp"],
        required=["user", "item", "rating", "timestamp"], encoding="latin-1",
        quoting=csv.QUOTE_NONE, layout="u.data: user id, item id, rating, timestamp "
        "(tab-separated)", report=report, sink=sink, all_numeric=True,
    )  # fmt: skip
    r = _ratings_table(rt, "user", "item", "rating", "timestamp", scale, sink, name)
    _unknown(rt, r["item"], pd.Index(items["item"]), "item", Path(item_path).name, sink)
    if users is not None:
        _unknown(rt, r["user"], pd.Index(users["user"]), "user", Path(user_path).name, sink)
    frame = _dedupe(_ratings_frame(rt, r["user"], r["item"], r["rating"], r["timestamp"]),
                    report, "ratings", rt.path)  # fmt: skip
    return RecsysData(
        name, "movielens-100k", frame, items, users, None, scale, report,
        user_feature_columns=["age", "gender", "occupation"] if users is not None else [],
    )  # fmt: skip


# --------------------------------------------------------------------------------------
# MovieLens 1M


def read_movielens_1m(
    ratings_path: str | Path,
    movies_path: str | Path,
    users_path: str | Path | None = None,
    *,
    scale: RatingScale = RatingScale(1, 5, 1),
    errors: Errors = "raise",
    name: str = "movielens-1m",
) -> RecsysData:
    """``ratings.dat``, ``movies.dat``, ``users.dat`` ('::'-separated, latin-1)."""
    report = ReadReport()
    sink = _Sink(report, errors)
    mt = _read_table(
        Path(movies_path), "movies", sep="::", columns=["item", "title", "genres"],
        required=["item", "title"], encoding="latin-1", quoting=csv.QUOTE_NONE,
        layout="movies.dat: MovieID::Title::Genres (latin-1)", report=report, sink=sink,
    )  # fmt: skip
    ids = _numbers(mt, "item", "movie id", sink, integer=True)
    _dedupe_items(mt, ids, sink, "movie")
    k = mt.keep
    items = pd.DataFrame(
        {
            "item": ids[k].astype(np.int64),
            "title": mt.col("title").str.strip()[k].to_numpy(),
            "genres": _genres(mt.col("genres"))[k].to_numpy(),
        }
    )
    items["year"] = _year_from_title(items["title"])
    _note_years(items, report)

    users = None
    if users_path is not None:
        ut = _read_table(
            Path(users_path), "users", sep="::",
            columns=["user", "gender", "age", "occupation", "zip"],
            required=["user", "gender", "age", "occupation"], encoding="latin-1",
            quoting=csv.QUOTE_NONE,
            layout="users.dat: UserID::Gender::Age::Occupation::Zip-code (latin-1)",
            report=report, sink=sink,
        )  # fmt: skip
        uid = _numbers(ut, "user", "user id", sink, integer=True)
        age = _numbers(ut, "age", "age", sink, integer=True)
        occ = _numbers(ut, "occupation", "occupation code", sink, integer=True)
        bad = ut.keep & ~np.isin(np.nan_to_num(occ, nan=-1), np.arange(len(ML1M_OCCUPATIONS)))
        if bad.any():
            idx = np.flatnonzero(bad)
            sink.bad(ut.path, "users", "unknown occupation code", ut.lines[idx],
                     [f"occupation code {ut.col('occupation').iat[i]!r} is not 0-20" for i in idx])  # fmt: skip
            ut.drop(bad)
        _dedupe_items(ut, uid, sink, "user")
        k = ut.keep
        users = pd.DataFrame(
            {
                "user": uid[k].astype(np.int64),
                "age": age[k],
                "gender": ut.col("gender").str.strip()[k].to_numpy(),
                "occupation": np.array(ML1M_OCCUPATIONS, dtype=object)[occ[k].astype(np.int64)],
                "zip": ut.col("zip").str.strip()[k].to_numpy(),
            }
        )
        odd_age = ~users["age"].isin(ML1M_AGE_CODES)
        if odd_age.any():
            report.note(f"users.dat: {int(odd_age.sum())} ages are not 1M age codes {ML1M_AGE_CODES}")

    rt = _read_table(
        Path(ratings_path), "ratings", sep="::", columns=["user", "item", "rating", "timestamp"],
        required=["user", "item", "rating", "timestamp"], encoding="latin-1",
        quoting=csv.QUOTE_NONE, layout="ratings.dat: UserID::MovieID::Rating::Timestamp",
        report=report, sink=sink, all_numeric=True,
    )  # fmt: skip
    r = _ratings_table(rt, "user", "item", "rating", "timestamp", scale, sink, name)
    _unknown(rt, r["item"], pd.Index(items["item"]), "movie", Path(movies_path).name, sink)
    if users is not None:
        _unknown(rt, r["user"], pd.Index(users["user"]), "user", Path(users_path).name, sink)
    frame = _dedupe(_ratings_frame(rt, r["user"], r["item"], r["rating"], r["timestamp"]),
                    report, "ratings", rt.path)  # fmt: skip
    return RecsysData(
        name, "movielens-1m", frame, items, users, None, scale, report,
        user_feature_columns=["age", "gender", "occupation"] if users is not None else [],
    )  # fmt: skip


# --------------------------------------------------------------------------------------
# a user's own CSVs


def _unify_ids(*series: pd.Series) -> list[pd.Series]:
    """All plain integers (no leading zeros: "007" stays a string id) -> int64 in every
    series; otherwise strings everywhere, so ratings and feature files agree."""
    present = [s for s in series if s is not None and len(s)]
    if present and all(s.str.fullmatch(r"-?(?:0|[1-9]\d{0,17})").all() for s in present):
        return [None if s is None else s.astype(np.int64) for s in series]
    return [None if s is None else s.astype(object) for s in series]


def _feature_columns(
    df: pd.DataFrame, id_col: str, skip: Sequence[str], report: ReadReport, role: str
) -> tuple[pd.DataFrame, list[str]]:
    """Columns of a feature CSV: numbers stay numbers, other columns stay strings."""
    out = pd.DataFrame(index=df.index)
    names = []
    for col in df.columns:
        if col in (id_col, "line", *skip):
            continue
        text = df[col].str.strip()
        num = pd.to_numeric(text.replace("", np.nan), errors="coerce")
        filled = text != ""
        if filled.any() and num[filled].notna().all():
            out[col] = num.to_numpy(dtype=np.float64)
        else:
            out[col] = text.to_numpy(dtype=object)
        names.append(col)
    if not names:
        report.note(f"{role}: no feature columns besides the id")
    return out, names


def read_interactions_csv(
    ratings_path: str | Path,
    *,
    items_path: str | Path | None = None,
    users_path: str | Path | None = None,
    user_col: str = "user",
    item_col: str = "item",
    rating_col: str | None = "rating",
    timestamp_col: str | None = "timestamp",
    item_id_col: str | None = None,
    user_id_col: str | None = None,
    implicit: bool | None = None,
    rating_scale: Sequence[float] | None = None,
    rating_step: float | None = None,
    delimiter: str = ",",
    encoding: str = "utf-8",
    errors: Errors = "raise",
    name: str = "interactions",
) -> RecsysData:
    """A user's interactions CSV (``user,item,rating[,timestamp]``) and feature CSVs.

    Args:
        rating_col: None or a column the file lacks (with ``implicit`` None) means implicit
            feedback: every row is a positive (rating 1.0); the report says so.
        rating_scale: ``(low, high)``; ratings outside it are bad rows. Without it the scale is
            the observed range (noted in the report).
        items_path: a CSV with ``item_id_col`` (default ``item_col``) and any of ``title``,
            ``genres`` ('|'-separated), ``year``; other columns are item features (numbers
            as numbers, strings as categories, '|' separating several).
        users_path: a CSV with ``user_id_col`` (default ``user_col``) and user features.
    """
    report = ReadReport()
    sink = _Sink(report, errors)
    ratings_path = Path(ratings_path)
    item_id_col = item_id_col or item_col
    user_id_col = user_id_col or user_col
    layout = f"{_delimiter_name(delimiter)}-separated columns {user_col},{item_col}" + (
        f",{rating_col}" if rating_col and implicit is not True else ""
    ) + (f"[,{timestamp_col}]" if timestamp_col else "")

    rt = _read_table(
        ratings_path, "ratings", sep=delimiter, columns=None, required=[user_col, item_col],
        encoding=encoding, layout=layout, report=report, sink=sink,
    )  # fmt: skip
    if implicit is None:
        implicit = not rating_col or rating_col not in rt.df.columns
        if implicit:
            report.note(
                f"{ratings_path.name}: no {rating_col or 'rating'!r} column: implicit feedback, "
                "every row is a positive"
            )
    if not implicit and rating_col not in rt.df.columns:
        raise DataError(
            ratings_path, f"no column {rating_col!r} (columns: {', '.join(rt.df.columns)})", row=1
        )
    for col, what in ((user_col, "user id"), (item_col, "item id")):
        empty = rt.keep & (rt.col(col).str.strip() == "").to_numpy()
        if empty.any():
            idx = np.flatnonzero(empty)
            sink.bad(rt.path, "ratings", f"missing {what}", rt.lines[idx], [f"missing {what}"] * len(idx))
            rt.drop(empty)
    if implicit:
        ratings = np.ones(len(rt.df), dtype=np.float64)
        scale = None
    else:
        ratings = _numbers(rt, rating_col, "rating", sink)
        if rating_scale is not None:
            low, high = map(float, rating_scale)
            scale = RatingScale(low, high, rating_step)
            _check_scale(rt, rating_col, ratings, scale, sink, "configured")
        else:
            live = ratings[rt.keep]
            if len(live) == 0:
                raise DataError(ratings_path, "no valid ratings")
            scale = RatingScale(float(np.nanmin(live)), float(np.nanmax(live)), rating_step)
            report.note(f"no rating scale configured: using the observed range {scale}")
    if timestamp_col and timestamp_col in rt.df.columns:
        ts = _numbers(rt, timestamp_col, "timestamp", sink, hint=" (expected Unix seconds)")
    else:
        ts = np.full(len(rt.df), np.nan)
        report.note(
            f"{ratings_path.name}: no timestamp column: no time-based split or item cold start; "
            "duplicates keep the later row"
        )

    items_df = users_df = None
    item_ids_file = user_ids_file = None
    if items_path is not None:
        itab = _read_table(
            Path(items_path), "items", sep=delimiter, columns=None, required=[item_id_col],
            encoding=encoding, layout=f"a CSV with an {item_id_col!r} column", report=report,
            sink=sink,
        )  # fmt: skip
        items_df = itab.kept()
        item_ids_file = items_df[item_id_col].str.strip()
    if users_path is not None:
        utab = _read_table(
            Path(users_path), "users", sep=delimiter, columns=None, required=[user_id_col],
            encoding=encoding, layout=f"a CSV with a {user_id_col!r} column", report=report,
            sink=sink,
        )  # fmt: skip
        users_df = utab.kept()
        user_ids_file = users_df[user_id_col].str.strip()

    r_items, f_items = _unify_ids(rt.col(item_col).str.strip(), item_ids_file)
    r_users, f_users = _unify_ids(rt.col(user_col).str.strip(), user_ids_file)

    if items_df is not None:
        items_df = items_df.assign(**{item_id_col: f_items.to_numpy()})
        dup = items_df[item_id_col].duplicated()
        if dup.any():
            rows = items_df.loc[dup, "line"].to_numpy()
            sink.bad(Path(items_path), "items", "duplicate item id", rows,
                     [f"item id {v!r} is listed twice" for v in items_df.loc[dup, item_id_col]])  # fmt: skip
            items_df = items_df.loc[~dup]
        _unknown(rt, r_items, pd.Index(items_df[item_id_col]), "item", Path(items_path).name, sink)
        extra, extra_names = _feature_columns(
            items_df, item_id_col, ("title", "genres", "year"), report, "items"
        )
        items = pd.DataFrame(
            {
                "item": items_df[item_id_col].to_numpy(),
                "title": items_df["title"].str.strip().to_numpy() if "title" in items_df else "",
                "genres": _genres(items_df["genres"]).to_numpy() if "genres" in items_df else "",
                "year": pd.to_numeric(items_df["year"], errors="coerce").to_numpy(dtype=np.float64)
                if "year" in items_df
                else np.nan,
            }
        )
        for col in extra_names:
            items[col] = extra[col].to_numpy()
        if "year" in items_df:
            _note_years(items, report)
    else:
        live = pd.Series(r_items[rt.keep].to_numpy())
        items = pd.DataFrame({"item": sorted(live.unique())})
        items["title"] = ""
        items["genres"] = ""
        items["year"] = np.nan
        extra_names = []
        report.note("no items file: the items are those rated, with no attributes")

    users = None
    user_names: list[str] = []
    if users_df is not None:
        users_df = users_df.assign(**{user_id_col: f_users.to_numpy()})
        dup = users_df[user_id_col].duplicated()
        if dup.any():
            rows = users_df.loc[dup, "line"].to_numpy()
            sink.bad(Path(users_path), "users", "duplicate user id", rows,
                     [f"user id {v!r} is listed twice" for v in users_df.loc[dup, user_id_col]])  # fmt: skip
            users_df = users_df.loc[~dup]
        feats, user_names = _feature_columns(users_df, user_id_col, (), report, "users")
        users = pd.concat(
            [pd.DataFrame({"user": users_df[user_id_col].to_numpy()}), feats.reset_index(drop=True)],
            axis=1,
        )
        unknown_users = rt.keep & ~pd.Series(r_users).isin(pd.Index(users["user"])).to_numpy()
        if unknown_users.any():
            report.note(
                f"{int(unknown_users.sum())} ratings are by users missing from the users file "
                "(their user features are zero)"
            )

    keep = rt.keep
    frame = pd.DataFrame(
        {
            "user": r_users[keep].to_numpy(),
            "item": r_items[keep].to_numpy(),
            "rating": ratings[keep].astype(np.float32),
            "timestamp": ts[keep].astype(np.float64),
            "line": rt.lines[keep],
        }
    )
    frame = _dedupe(frame, report, "ratings", ratings_path)
    return RecsysData(
        name, "interactions-csv", frame, items, users, None, scale, report,
        item_feature_columns=extra_names, user_feature_columns=user_names,
    )  # fmt: skip


def read_new_user_ratings(
    path: str | Path,
    item_ids: Callable[[pd.Series], np.ndarray],
    *,
    item_col: str = "item",
    rating_col: str | None = "rating",
    timestamp_col: str | None = "timestamp",
    scale: RatingScale | None = None,
    delimiter: str = ",",
    encoding: str = "utf-8",
    errors: Errors = "raise",
    vocabulary_name: str = "the item vocabulary",
) -> tuple[pd.DataFrame, ReadReport]:
    """A new user's ratings (``item,rating[,timestamp]``) mapped to item indices.

    Args:
        item_ids: maps a Series of item ids to int64 indices, -1 where unknown (e.g.
            ``Vocabulary.indices``).

    Returns:
        A frame with ``item``, ``item_index`` (int64), ``rating`` (float32; 1.0 with no rating
        column), ``timestamp``, ``line``; and the report. An item id the vocabulary does not
        know is a bad row (raised, or counted with ``errors="skip"``).
    """
    report = ReadReport()
    sink = _Sink(report, errors)
    path = Path(path)
    layout = f"{_delimiter_name(delimiter)}-separated columns {item_col}" + (
        f",{rating_col}" if rating_col else ""
    )
    t = _read_table(path, "ratings", sep=delimiter, columns=None, required=[item_col],
                    encoding=encoding, layout=layout, report=report, sink=sink)  # fmt: skip
    if rating_col and rating_col in t.df.columns:
        ratings = _numbers(t, rating_col, "rating", sink)
        if scale is not None:
            _check_scale(t, rating_col, ratings, scale, sink, "model's")
    else:
        ratings = np.ones(len(t.df))
        report.note(f"{path.name}: no {rating_col!r} column: implicit feedback")
    ts = (
        _numbers(t, timestamp_col, "timestamp", sink, hint=" (expected Unix seconds)")
        if timestamp_col and timestamp_col in t.df.columns
        else np.full(len(t.df), np.nan)
    )
    ids = t.col(item_col).str.strip()
    index = np.asarray(item_ids(ids), dtype=np.int64)
    bad = t.keep & (index < 0)
    if bad.any():
        idx = np.flatnonzero(bad)
        sink.bad(path, "ratings", "unknown item id", t.lines[idx],
                 [f"unknown item id {ids.iat[i]!r} (not in {vocabulary_name})" for i in idx[:3]])  # fmt: skip
        t.drop(bad)
    k = t.keep
    frame = pd.DataFrame(
        {
            "item": ids[k].to_numpy(),
            "item_index": index[k],
            "rating": ratings[k].astype(np.float32),
            "timestamp": ts[k],
            "line": t.lines[k],
        }
    )
    frame["user"] = 0  # one user: duplicates are repeated items
    frame = _dedupe(frame, report, "ratings", path).drop(columns="user")
    return frame, report
