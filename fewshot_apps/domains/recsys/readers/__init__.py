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

Modules: ``base`` (the shared skeleton: :class:`RecsysData`, the checks, the MovieLens
read-validate-report flow), one module per format (``movielens_latest``, ``movielens_100k``,
``movielens_1m``, ``interactions_csv``); the generic table reading is
:mod:`fewshot_apps.core.table_reader`.
"""

from fewshot_apps.core.table_reader import Errors, ReadReport

from .base import FORMAT_SCALES, RatingScale, RecsysData, declared_scale
from .interactions_csv import read_interactions_csv, read_new_user_ratings
from .movielens_1m import ML1M_AGE_CODES, ML1M_OCCUPATIONS, read_movielens_1m
from .movielens_100k import ML100K_GENRES, read_movielens_100k
from .movielens_latest import read_movielens_latest

__all__ = [
    "FORMAT_SCALES",
    "ML100K_GENRES",
    "ML1M_AGE_CODES",
    "ML1M_OCCUPATIONS",
    "Errors",
    "RatingScale",
    "ReadReport",
    "RecsysData",
    "declared_scale",
    "read_interactions_csv",
    "read_movielens_100k",
    "read_movielens_1m",
    "read_movielens_latest",
    "read_new_user_ratings",
]
