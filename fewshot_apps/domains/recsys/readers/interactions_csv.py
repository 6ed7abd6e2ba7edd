"""A user's own CSVs: an interactions CSV (``user,item,rating[,timestamp]``; column names,
delimiter and encoding configurable; no rating column = implicit feedback, each row a
positive; a ``split`` column, and optionally a ``role`` column, give a published fixed split:
:mod:`~fewshot_apps.domains.recsys.readers.fixed_split`) with optional item-feature and
user-feature CSVs, and a new user's ratings."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fewshot_apps.core.table_reader import Errors, ReadReport, Sink, delimiter_name, parse_numbers
from fewshot_apps.errors import DataError

from .base import (
    FileLayout,
    RatingScale,
    RecsysData,
    check_scale,
    clean_genres,
    dedupe_ratings,
    drop_unknown,
    note_years,
)
from .fixed_split import check_fixed_split, check_repeats, read_split_columns

#: The columns of a fixed split, used when the file has them (a card may name others).
SPLIT_COLUMN = "split"
ROLE_COLUMN = "role"


def _unify_ids(*series: pd.Series) -> list[pd.Series]:
    """All plain integers (no leading zeros: "007" stays a string id) -> int64 in every
    series; otherwise strings everywhere, so ratings and feature files agree."""
    present = [s for s in series if s is not None and len(s)]
    if present and all(s.str.fullmatch(r"-?(?:0|[1-9]\d{0,17})").all() for s in present):
        return [None if s is None else s.astype(np.int64) for s in series]
    return [None if s is None else s.astype(object) for s in series]


def _listed_once(
    df: pd.DataFrame, id_col: str, ids: pd.Series, path: str | Path, role: str, what: str,
    sink: Sink,
) -> pd.DataFrame:
    """A feature file's rows with ``id_col`` set to ``ids``; an id listed again on a later row
    is a bad row (the first listing is kept)."""
    df = df.assign(**{id_col: ids.to_numpy()})
    dup = df[id_col].duplicated()
    if dup.any():
        rows = df.loc[dup, "line"].to_numpy()
        sink.bad(Path(path), role, f"duplicate {what} id", rows,
                 [f"{what} id {v!r} is listed twice" for v in df.loc[dup, id_col]])  # fmt: skip
        df = df.loc[~dup]
    return df


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
    split_col: str | None = SPLIT_COLUMN,
    role_col: str | None = ROLE_COLUMN,
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
        split_col, role_col: a fixed split's columns (``train`` / ``valid`` / ``test``;
            ``support`` / ``query``), used when the file has them; another name than the
            default must be in the file; None: no fixed split. The ratings frame then has
            ``split`` and ``role`` columns (see
            :mod:`~fewshot_apps.domains.recsys.readers.fixed_split`).
    """
    report = ReadReport()
    sink = Sink(report, errors)
    ratings_path = Path(ratings_path)
    item_id_col = item_id_col or item_col
    user_id_col = user_id_col or user_col
    layout = f"{delimiter_name(delimiter)}-separated columns {user_col},{item_col}" + (
        f",{rating_col}" if rating_col and implicit is not True else ""
    ) + (f"[,{timestamp_col}]" if timestamp_col else "")

    rt = FileLayout("ratings", layout, delimiter, (user_col, item_col), encoding=encoding).read(
        ratings_path, report, sink
    )
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
    split_col, role_col = _split_columns(rt.df.columns, split_col, role_col, ratings_path)
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
        ratings = parse_numbers(rt, rating_col, "rating", sink)
        if rating_scale is not None:
            low, high = map(float, rating_scale)
            scale = RatingScale(low, high, rating_step)
            check_scale(rt, rating_col, ratings, scale, sink, "configured")
        else:
            live = ratings[rt.keep]
            if len(live) == 0:
                raise DataError(ratings_path, "no valid ratings")
            scale = RatingScale(float(np.nanmin(live)), float(np.nanmax(live)), rating_step)
            report.note(f"no rating scale configured: using the observed range {scale}")
    if split_col:
        split, role = read_split_columns(rt, split_col, role_col, sink)
    if timestamp_col and timestamp_col in rt.df.columns:
        ts = parse_numbers(rt, timestamp_col, "timestamp", sink, hint=" (expected Unix seconds)")
    else:
        ts = np.full(len(rt.df), np.nan)
        report.note(
            f"{ratings_path.name}: no timestamp column: no time-based split or item cold start; "
            "duplicates keep the later row"
        )

    def feature_file(path, what: str, id_col: str, article: str):
        """An optional item or user feature CSV: (its kept rows, their ids) or (None, None)."""
        if path is None:
            return None, None
        table = FileLayout(
            what, f"a CSV with {article} {id_col!r} column", delimiter, (id_col,),
            encoding=encoding,
        ).read(path, report, sink).kept()  # fmt: skip
        return table, table[id_col].str.strip()

    items_df, item_ids_file = feature_file(items_path, "items", item_id_col, "an")
    users_df, user_ids_file = feature_file(users_path, "users", user_id_col, "a")

    r_items, f_items = _unify_ids(rt.col(item_col).str.strip(), item_ids_file)
    r_users, f_users = _unify_ids(rt.col(user_col).str.strip(), user_ids_file)

    if items_df is not None:
        items_df = _listed_once(items_df, item_id_col, f_items, items_path, "items", "item", sink)
        drop_unknown(rt, r_items, pd.Index(items_df[item_id_col]), "item", Path(items_path).name, sink)
        extra, extra_names = _feature_columns(
            items_df, item_id_col, ("title", "genres", "year"), report, "items"
        )
        items = pd.DataFrame(
            {
                "item": items_df[item_id_col].to_numpy(),
                "title": items_df["title"].str.strip().to_numpy() if "title" in items_df else "",
                "genres": clean_genres(items_df["genres"]).to_numpy() if "genres" in items_df else "",
                "year": pd.to_numeric(items_df["year"], errors="coerce").to_numpy(dtype=np.float64)
                if "year" in items_df
                else np.nan,
            }
        )
        for col in extra_names:
            items[col] = extra[col].to_numpy()
        if "year" in items_df:
            note_years(items, report)
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
        users_df = _listed_once(users_df, user_id_col, f_users, users_path, "users", "user", sink)
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
    if split_col:
        frame["split"] = split[keep]
        frame["role"] = role[keep]
        check_repeats(frame, ratings_path)
    frame = dedupe_ratings(frame, report, "ratings", ratings_path)
    if split_col:
        check_fixed_split(frame, ratings_path)
        counts = frame.groupby("split")["user"].nunique()
        report.note(
            f"{ratings_path.name}: fixed split from column {split_col!r}: users with train / "
            f"valid / test rows {' / '.join(str(int(counts.get(s, 0))) for s in ('train', 'valid', 'test'))}"
            + (f"; supports and queries from column {role_col!r}" if role_col else
               "; no role column: test supports drawn from each test user's rows"))
    return RecsysData(
        name, "interactions-csv", frame, items, users, None, scale, report,
        item_feature_columns=extra_names, user_feature_columns=user_names,
    )  # fmt: skip


def _split_columns(columns, split_col, role_col, path: Path) -> tuple[str | None, str | None]:
    """The fixed split's columns the file has: the default names when present, a name a card
    gives (not the default) must be there, and a role column needs a split column."""
    found = []
    for name, default, what in ((split_col, SPLIT_COLUMN, "split"), (role_col, ROLE_COLUMN, "role")):
        if name and name not in columns and name != default:
            raise DataError(path, f"no {what} column {name!r} (columns: {', '.join(columns)})",
                            row=1)
        found.append(name if name and name in columns else None)
    if found[1] and not found[0]:
        raise DataError(path, f"a {found[1]!r} column (support / query) but no "
                        f"{split_col or SPLIT_COLUMN!r} column: a fixed split needs a split "
                        "column (train, valid or test) on every row", row=1)
    return found[0], found[1]


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
    sink = Sink(report, errors)
    path = Path(path)
    layout = f"{delimiter_name(delimiter)}-separated columns {item_col}" + (
        f",{rating_col}" if rating_col else ""
    )
    t = FileLayout("ratings", layout, delimiter, (item_col,), encoding=encoding).read(
        path, report, sink
    )
    if rating_col and rating_col in t.df.columns:
        ratings = parse_numbers(t, rating_col, "rating", sink)
        if scale is not None:
            check_scale(t, rating_col, ratings, scale, sink, "model's")
    else:
        ratings = np.ones(len(t.df))
        report.note(f"{path.name}: no {rating_col!r} column: implicit feedback")
    ts = (
        parse_numbers(t, timestamp_col, "timestamp", sink, hint=" (expected Unix seconds)")
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
    frame = dedupe_ratings(frame, report, "ratings", path).drop(columns="user")
    return frame, report
