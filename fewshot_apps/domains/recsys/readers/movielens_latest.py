"""MovieLens "latest" releases (ml-latest-small, ml-latest, ml-25m ...): ``ratings.csv``
(userId,movieId,rating,timestamp), ``movies.csv`` (movieId,title,genres) and an optional
``tags.csv`` (userId,movieId,tag,timestamp); UTF-8 with headers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fewshot_apps.core.table_reader import Errors, ReadReport, Sink, parse_numbers

from .base import (
    FORMAT_SCALES,
    FileLayout,
    MovieLensFormat,
    RatingScale,
    RecsysData,
    drop_unknown,
    read_movielens,
)

TAGS = FileLayout(
    role="tags", description="a CSV with header userId,movieId,tag,timestamp (UTF-8)", sep=",",
    required=("userId", "movieId", "tag"),
)  # fmt: skip


def read_tags(
    path: Path, ratings: pd.DataFrame, items: pd.DataFrame, report: ReadReport, sink: Sink
) -> pd.DataFrame:
    """``tags.csv``: tags of listed movies by users with ratings, lower-cased."""
    tt = TAGS.read(path, report, sink)
    users = parse_numbers(tt, "userId", "user id", sink, integer=True)
    movies = parse_numbers(tt, "movieId", "movie id", sink, integer=True)
    ts = (
        parse_numbers(tt, "timestamp", "timestamp", sink, hint=" (expected Unix seconds)",
                      optional=True)
        if "timestamp" in tt.df
        else np.full(len(tt.df), np.nan)
    )  # fmt: skip
    drop_unknown(tt, pd.Series(np.nan_to_num(movies, nan=-1).astype(np.int64)),
                 pd.Index(items["item"]), "movie", "the movies file", sink)  # fmt: skip
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
        report.skip("tags: tags of users with no ratings (no split to put them in)",
                    int(orphan.sum()))  # fmt: skip
        frame = frame.loc[~orphan].reset_index(drop=True)
    return frame



MOVIELENS_LATEST = MovieLensFormat(
    name="movielens-latest",
    items=FileLayout(
        role="movies", description="a CSV with header movieId,title,genres (UTF-8)", sep=",",
        required=("movieId", "title", "genres"),
    ),
    ratings=FileLayout(
        role="ratings", description="a CSV with header userId,movieId,rating,timestamp (UTF-8)",
        sep=",", required=("userId", "movieId", "rating", "timestamp"), all_numeric=True,
    ),
    item_word="movie",
    note_missing_genres=True,
    read_tags=read_tags,
)  # fmt: skip


def read_movielens_latest(
    ratings_path: str | Path,
    movies_path: str | Path,
    tags_path: str | Path | None = None,
    *,
    scale: RatingScale = FORMAT_SCALES["movielens-latest"],
    errors: Errors = "raise",
    name: str = "movielens-latest",
) -> RecsysData:
    """``ratings.csv`` + ``movies.csv`` (+ ``tags.csv``) of a MovieLens "latest" release."""
    return read_movielens(
        MOVIELENS_LATEST, ratings_path, movies_path, tags_path=tags_path, scale=scale,
        errors=errors, name=name,
    )  # fmt: skip
