"""MovieLens 1M: ``ratings.dat`` (UserID::MovieID::Rating::Timestamp), ``movies.dat``
(MovieID::Title::Genres) and an optional ``users.dat``
(UserID::Gender::Age::Occupation::Zip-code); latin-1, no headers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fewshot_apps.core.table_reader import Errors, ReadReport, Sink, Table, parse_numbers

from .base import (
    FORMAT_SCALES,
    RATING_FIELDS,
    MovieLensFormat,
    RatingScale,
    RecsysData,
    headerless_latin1,
    read_movielens,
)

#: MovieLens 1M ``users.dat`` occupation codes (its README).
ML1M_OCCUPATIONS = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
)  # fmt: skip

#: MovieLens 1M age codes: the lower bound of each age bracket.
ML1M_AGE_CODES = (1, 18, 25, 35, 45, 50, 56)


def _user_fields(ut: Table, sink: Sink) -> dict[str, np.ndarray]:
    """Age codes and occupation names (an occupation code that is not 0-20 is a bad row)."""
    age = parse_numbers(ut, "age", "age", sink, integer=True)
    occ = parse_numbers(ut, "occupation", "occupation code", sink, integer=True)
    bad = ut.keep & ~np.isin(np.nan_to_num(occ, nan=-1), np.arange(len(ML1M_OCCUPATIONS)))
    if bad.any():
        idx = np.flatnonzero(bad)
        sink.bad(ut.path, "users", "unknown occupation code", ut.lines[idx],
                 [f"occupation code {ut.col('occupation').iat[i]!r} is not 0-20" for i in idx])  # fmt: skip
        ut.drop(bad)
    occupation = np.full(len(ut.df), "", dtype=object)
    k = ut.keep
    occupation[k] = np.array(ML1M_OCCUPATIONS, dtype=object)[occ[k].astype(np.int64)]
    return {"age": age, "occupation": occupation}


def _note_ages(users: pd.DataFrame, report: ReadReport) -> None:
    odd_age = ~users["age"].isin(ML1M_AGE_CODES)
    if odd_age.any():
        report.note(f"users.dat: {int(odd_age.sum())} ages are not 1M age codes {ML1M_AGE_CODES}")


MOVIELENS_1M = MovieLensFormat(
    name="movielens-1m",
    items=headerless_latin1(
        "movies", "movies.dat: MovieID::Title::Genres (latin-1)", "::",
        ("item", "title", "genres"), ("item", "title"),
    ),
    ratings=headerless_latin1(
        "ratings", "ratings.dat: UserID::MovieID::Rating::Timestamp", "::", RATING_FIELDS,
        all_numeric=True,
    ),
    item_word="movie",
    users=headerless_latin1(
        "users", "users.dat: UserID::Gender::Age::Occupation::Zip-code (latin-1)", "::",
        ("user", "gender", "age", "occupation", "zip"), ("user", "gender", "age", "occupation"),
    ),
    user_fields=_user_fields,
    note_users=_note_ages,
)  # fmt: skip


def read_movielens_1m(
    ratings_path: str | Path,
    movies_path: str | Path,
    users_path: str | Path | None = None,
    *,
    scale: RatingScale = FORMAT_SCALES["movielens-1m"],
    errors: Errors = "raise",
    name: str = "movielens-1m",
) -> RecsysData:
    """``ratings.dat``, ``movies.dat``, ``users.dat`` ('::'-separated, latin-1)."""
    return read_movielens(
        MOVIELENS_1M, ratings_path, movies_path, users_path=users_path, scale=scale,
        errors=errors, name=name,
    )  # fmt: skip
