"""The skeleton the recommendation readers share.

* :class:`RecsysData`, what every reader returns, and :class:`RatingScale`;
* the checks on ratings, ids and items (bad rows go to the
  :class:`~fewshot_apps.core.table_reader.Sink`, which raises or counts them);
* :func:`read_movielens`, the read-validate-report flow of every MovieLens release: items,
  then users, then ratings (then tags). A :class:`MovieLensFormat` gives a release's files and
  the steps only it has.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fewshot_apps.core.table_reader import (
    Errors,
    ReadReport,
    Sink,
    Table,
    parse_numbers,
    read_table,
)
from fewshot_apps.errors import DataError

#: Genre markers that mean "no genre".
NO_GENRES = {"(no genres listed)", "unknown", ""}

YEAR_IN_TITLE = re.compile(r"\((\d{4})\)\s*$")

#: Added to the message of a file that is not valid UTF-8.
ENCODING_HINT = ' (a latin-1 file? a card\'s [options] encoding = "latin-1" reads it)'


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
        """``1-5 in steps of 1``; a scale that is not of whole numbers prints both bounds
        with the decimals the finer one needs, at least one (``0.5-5.0``, ``0.25-5.00``)."""
        whole = all(float(v).is_integer() for v in (self.low, self.high, self.step or 1))
        places = max(1, _decimals(self.low), _decimals(self.high))
        fmt = "{:g}" if whole else f"{{:.{places}f}}"
        text = f"{fmt.format(self.low)}-{fmt.format(self.high)}"
        return text + (f" in steps of {self.step:g}" if self.step else "")


def _decimals(value: float, most: int = 6) -> int:
    """The decimal places ``value`` needs to print as itself (at most ``most``)."""
    value = float(value)
    return next((d for d in range(most) if abs(float(f"{value:.{d}f}") - value)
                 <= 1e-9 * max(1.0, abs(value))), most)


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


def check_scale(
    table: Table, column: str, ratings: np.ndarray, scale: RatingScale, sink: Sink, dataset: str
) -> None:
    """Ratings off ``scale`` are bad rows (``dataset`` names the scale in messages)."""
    bad = table.keep & scale.invalid(np.nan_to_num(ratings, nan=scale.low))
    if bad.any():
        idx = np.flatnonzero(bad)
        details = [
            f"rating {table.cell(column, i)!r} is outside the {dataset} rating scale {scale}"
            for i in idx[:3]
        ]
        sink.bad(table.path, table.role, "rating outside the scale", table.lines[idx], details)
        table.drop(bad)


def drop_unknown(
    table: Table,
    ids: np.ndarray | pd.Series,
    known: pd.Index,
    what: str,
    where: str,
    sink: Sink,
) -> None:
    """Rows whose id is not in ``known`` (the ids listed in the file ``where``) are bad rows."""
    ids = pd.Series(np.asarray(ids, dtype=object) if not isinstance(ids, pd.Series) else ids)
    bad = table.keep & ~ids.isin(known).to_numpy()
    if bad.any():
        idx = np.flatnonzero(bad)
        details = [f"unknown {what} id {ids.iat[i]!r} (not in {where})" for i in idx[:3]]
        sink.bad(table.path, table.role, f"unknown {what} id", table.lines[idx], details)
        table.drop(bad)


def dedupe_ratings(ratings: pd.DataFrame, report: ReadReport, role: str, path: Path) -> pd.DataFrame:
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


def year_from_title(titles: pd.Series) -> np.ndarray:
    """The year a title ends with ("Heat (1995)"), NaN where it has none."""
    return pd.to_numeric(titles.str.extract(YEAR_IN_TITLE, expand=False), errors="coerce").to_numpy(
        dtype=np.float64
    )


def clean_genres(series: pd.Series) -> pd.Series:
    """'|'-joined genres with the "none" markers removed."""
    parts = series.str.strip()
    return parts.where(~parts.isin(NO_GENRES), "")


def note_years(items: pd.DataFrame, report: ReadReport) -> None:
    """Say how many items have no release year."""
    missing = int(items["year"].isna().sum())
    if missing:
        titles = ", ".join(repr(t) for t in items.loc[items["year"].isna(), "title"].head(3))
        report.note(
            f"{missing} of {len(items)} items have no release year (left missing, not guessed; "
            f"e.g. {titles})"
        )


def ratings_frame(
    table: Table,
    users: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    timestamps: np.ndarray,
) -> pd.DataFrame:
    """The kept rows as a ratings frame (``user, item, rating, timestamp, line``)."""
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


def dedupe_listed(table: Table, ids: np.ndarray, sink: Sink, what: str = "item") -> None:
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


def ratings_table(
    rt: Table,
    user_col: str,
    item_col: str,
    rating_col: str,
    ts_col: str | None,
    scale: RatingScale | None,
    sink: Sink,
    dataset: str,
) -> dict[str, np.ndarray]:
    """Integer ids, numeric ratings on the scale, numeric timestamps; bad rows dropped."""
    users = parse_numbers(rt, user_col, "user id", sink, integer=True)
    items = parse_numbers(rt, item_col, "item id", sink, integer=True)
    ratings = parse_numbers(rt, rating_col, "rating", sink)
    if scale is not None:
        check_scale(rt, rating_col, ratings, scale, sink, dataset)
    ts = (
        parse_numbers(rt, ts_col, "timestamp", sink, hint=" (expected Unix seconds)")
        if ts_col
        else np.full(len(rt.df), np.nan)
    )
    keep = rt.keep
    out_u = np.zeros(len(users), dtype=np.int64)
    out_i = np.zeros(len(items), dtype=np.int64)
    out_u[keep] = users[keep].astype(np.int64)
    out_i[keep] = items[keep].astype(np.int64)
    return {"user": out_u, "item": out_i, "rating": ratings, "timestamp": ts}




# --------------------------------------------------------------------------------------
# the MovieLens read-validate-report flow


@dataclass(frozen=True)
class FileLayout:
    """How one file of a format looks; :meth:`read` reads it with
    :func:`~fewshot_apps.core.table_reader.read_table`."""

    role: str  # what the file holds ("ratings", "movies" ...): the report's key
    description: str  # how the file should look, for messages
    sep: str
    required: tuple[str, ...]  # columns that must be present (header files) / non-empty
    columns: tuple[str, ...] | None = None  # a headerless file's fields; None: a header row
    encoding: str = "utf-8"
    quoting: int = csv.QUOTE_MINIMAL
    all_numeric: bool = False  # every field a number (ratings files): the fast parse first

    def read(self, path: str | Path, report: ReadReport, sink: Sink) -> Table:
        return read_table(
            Path(path), self.role, sep=self.sep, columns=self.columns, required=self.required,
            encoding=self.encoding, layout=self.description, report=report, sink=sink,
            quoting=self.quoting, all_numeric=self.all_numeric, encoding_hint=ENCODING_HINT,
        )  # fmt: skip


#: The fields of a headerless ratings file (MovieLens 100K and 1M).
RATING_FIELDS = ("user", "item", "rating", "timestamp")


def headerless_latin1(
    role: str,
    description: str,
    sep: str,
    columns: tuple[str, ...],
    required: tuple[str, ...] | None = None,
    *,
    all_numeric: bool = False,
) -> FileLayout:
    """A headerless, unquoted latin-1 file as MovieLens 100K and 1M ship them (``required``:
    every column unless given)."""
    return FileLayout(
        role=role, description=description, sep=sep, columns=columns,
        required=columns if required is None else required, encoding="latin-1",
        quoting=csv.QUOTE_NONE, all_numeric=all_numeric,
    )  # fmt: skip


def genres_column(table: Table, sink: Sink) -> pd.Series:
    """Every row's '|'-joined genres from the file's ``genres`` column."""
    return clean_genres(table.col("genres"))


def years_from_titles(table: Table, keep: np.ndarray, titles: pd.Series) -> np.ndarray:
    """The kept items' release years: the year each title ends with."""
    return year_from_title(titles)


@dataclass(frozen=True)
class MovieLensFormat:
    """What :func:`read_movielens` needs to know about one MovieLens release.

    Attributes:
        name: the format (``RecsysData.format``).
        items: the items file; ``required`` starts with the id column, then ``title``.
        ratings: the ratings file; ``required`` is the user, item, rating and timestamp
            columns, in that order.
        item_word: what messages call an item ("movie", "item").
        genres: every items row's '|'-joined genres (bad rows go to the sink); by default
            the ``genres`` column.
        years: the kept items' release years (from the table, the kept rows, their titles).
        note_missing_genres: say how many items list no genres.
        users: the users file, if the release has one: ``user, age, gender, occupation,
            zip`` fields.
        user_fields: every users row's ``age`` and ``occupation`` (bad rows go to the sink).
        note_users: notes on the kept users.
        read_tags: reads a tags file given the kept ratings and items.
    """

    name: str
    items: FileLayout
    ratings: FileLayout
    item_word: str
    genres: Callable[[Table, Sink], Sequence[str] | pd.Series] = genres_column
    years: Callable[[Table, np.ndarray, pd.Series], np.ndarray] = years_from_titles
    note_missing_genres: bool = False
    users: FileLayout | None = None
    user_fields: Callable[[Table, Sink], dict[str, np.ndarray]] | None = None
    note_users: Callable[[pd.DataFrame, ReadReport], None] | None = None
    read_tags: (
        Callable[[Path, pd.DataFrame, pd.DataFrame, ReadReport, Sink], pd.DataFrame] | None
    ) = None


def read_movielens(
    fmt: MovieLensFormat,
    ratings_path: str | Path,
    items_path: str | Path,
    *,
    users_path: str | Path | None = None,
    tags_path: str | Path | None = None,
    scale: RatingScale,
    errors: Errors,
    name: str,
) -> RecsysData:
    """Read one MovieLens release: the items, the users (if given), the ratings (integer ids
    of listed items and users, ratings on ``scale``, the latest of a repeated (user, item)
    kept), the tags (if given)."""
    report = ReadReport()
    sink = Sink(report, errors)
    items = _read_items(fmt, items_path, report, sink)
    users = None
    if users_path is not None:
        users = _read_users(fmt, users_path, report, sink)

    rt = fmt.ratings.read(ratings_path, report, sink)
    user_col, item_col, rating_col, ts_col = fmt.ratings.required
    r = ratings_table(rt, user_col, item_col, rating_col, ts_col, scale, sink, name)
    drop_unknown(rt, r["item"], pd.Index(items["item"]), fmt.item_word, Path(items_path).name,
                 sink)  # fmt: skip
    if users is not None:
        drop_unknown(rt, r["user"], pd.Index(users["user"]), "user", Path(users_path).name, sink)
    frame = dedupe_ratings(ratings_frame(rt, r["user"], r["item"], r["rating"], r["timestamp"]),
                           report, "ratings", rt.path)  # fmt: skip

    tags = None
    if tags_path is not None:
        tags = fmt.read_tags(Path(tags_path), frame, items, report, sink)
    return RecsysData(
        name, fmt.name, frame, items, users, tags, scale, report,
        user_feature_columns=["age", "gender", "occupation"] if users is not None else [],
    )  # fmt: skip


def _read_items(
    fmt: MovieLensFormat, path: str | Path, report: ReadReport, sink: Sink
) -> pd.DataFrame:
    """``item, title, genres, year`` of every validly listed item (the first listing of an id)."""
    t = fmt.items.read(path, report, sink)
    ids = parse_numbers(t, fmt.items.required[0], f"{fmt.item_word} id", sink, integer=True)
    genres = np.asarray(fmt.genres(t, sink), dtype=object)
    dedupe_listed(t, ids, sink, fmt.item_word)
    k = t.keep
    titles = t.col("title").str.strip()[k]
    items = pd.DataFrame(
        {
            "item": ids[k].astype(np.int64),
            "title": titles.to_numpy(),
            "genres": genres[k],
            "year": fmt.years(t, k, titles),
        }
    )
    note_years(items, report)
    if fmt.note_missing_genres:
        no_genre = int((items["genres"] == "").sum())
        if no_genre:
            report.note(f"{no_genre} items list no genres ('(no genres listed)': no genre features)")
    return items


def _read_users(
    fmt: MovieLensFormat, path: str | Path, report: ReadReport, sink: Sink
) -> pd.DataFrame:
    """``user, age, gender, occupation, zip`` of every validly listed user."""
    t = fmt.users.read(path, report, sink)
    uid = parse_numbers(t, "user", "user id", sink, integer=True)
    fields = fmt.user_fields(t, sink)
    dedupe_listed(t, uid, sink, "user")
    k = t.keep
    users = pd.DataFrame(
        {
            "user": uid[k].astype(np.int64),
            "age": fields["age"][k],
            "gender": t.col("gender").str.strip()[k].to_numpy(),
            "occupation": fields["occupation"][k],
            "zip": t.col("zip").str.strip()[k].to_numpy(),
        }
    )
    if fmt.note_users is not None:
        fmt.note_users(users, report)
    return users
