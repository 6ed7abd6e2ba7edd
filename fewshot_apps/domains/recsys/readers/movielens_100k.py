"""MovieLens 100K: ``u.data`` (user, item, rating, timestamp; tab-separated), ``u.item``
(id|title|release date|video release date|IMDb URL|19 genre flags) and an optional
``u.user`` (id|age|gender|occupation|zip); latin-1, no headers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fewshot_apps.core.table_reader import Errors, Sink, Table, parse_numbers

from .base import (
    FORMAT_SCALES,
    RATING_FIELDS,
    MovieLensFormat,
    RatingScale,
    RecsysData,
    headerless_latin1,
    read_movielens,
    year_from_title,
)

#: Genre flag order of MovieLens 100K's ``u.item`` (``u.genre``); "unknown" means none.
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip


def _genres(it: Table, sink: Sink) -> list[str]:
    """Each row's genres from its 19 flags (a flag that is not 0 or 1 is a bad row)."""
    flags = np.zeros((len(it.df), len(ML100K_GENRES)), dtype=np.float64)
    for j, g in enumerate(ML100K_GENRES):
        flags[:, j] = parse_numbers(it, g, f"genre flag {g!r}", sink, integer=True)
    bad = it.keep & ~np.isin(np.nan_to_num(flags, nan=0), (0, 1)).all(axis=1)
    if bad.any():
        idx = np.flatnonzero(bad)
        sink.bad(it.path, "items", "genre flag not 0/1", it.lines[idx],
                 ["a genre flag is not 0 or 1"] * len(idx))  # fmt: skip
        it.drop(bad)
    names = np.array(ML100K_GENRES[1:], dtype=object)
    on = flags[:, 1:] == 1
    return ["|".join(names[row]) for row in on]


def _years(it: Table, keep: np.ndarray, titles: pd.Series) -> np.ndarray:
    """The release date's year; no release date: the year in the title if it has one (a
    fact, not a guess)."""
    date = it.col("release_date").str.strip()[keep]
    year = pd.to_numeric(date.str.extract(r"(\d{4})\s*$", expand=False), errors="coerce")
    year = year.to_numpy(dtype=np.float64)
    return np.where(np.isfinite(year), year, year_from_title(titles))


def _user_fields(ut: Table, sink: Sink) -> dict[str, np.ndarray]:
    return {
        "age": parse_numbers(ut, "age", "age", sink),
        "occupation": ut.col("occupation").str.strip().to_numpy(),
    }


MOVIELENS_100K = MovieLensFormat(
    name="movielens-100k",
    items=headerless_latin1(
        "items",
        "u.item: id|title|release date|video release date|IMDb URL|19 genre flags (latin-1)",
        "|", ("item", "title", "release_date", "video_release_date", "url", *ML100K_GENRES),
        ("item", "title"),
    ),
    ratings=headerless_latin1(
        "ratings", "u.data: user id, item id, rating, timestamp (tab-separated)", "\t",
        RATING_FIELDS, all_numeric=True,
    ),
    item_word="item",
    genres=_genres,
    years=_years,
    users=headerless_latin1(
        "users", "u.user: id|age|gender|occupation|zip code (latin-1)", "|",
        ("user", "age", "gender", "occupation", "zip"), ("user", "age", "gender", "occupation"),
    ),
    user_fields=_user_fields,
)  # fmt: skip


def read_movielens_100k(
    data_path: str | Path,
    item_path: str | Path,
    user_path: str | Path | None = None,
    *,
    scale: RatingScale = FORMAT_SCALES["movielens-100k"],
    errors: Errors = "raise",
    name: str = "movielens-100k",
) -> RecsysData:
    """``u.data`` (tab-separated), ``u.item`` and ``u.user`` ('|'-separated, latin-1)."""
    return read_movielens(
        MOVIELENS_100K, data_path, item_path, users_path=user_path, scale=scale, errors=errors,
        name=name,
    )  # fmt: skip
