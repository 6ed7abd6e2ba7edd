"""Item and user features, and item statistics, fitted on meta-train users only.

* Item features: genres (multi-hot; "(no genres listed)" = none), release year (NaN where
  unknown, with a missing flag in the matrix: never guessed), tags (a bag of the most
  frequent tags of meta-train users), and any extra columns of a user's items CSV.
* User features where the data has them (age, gender, occupation): categories and scaling
  are fitted on meta-train users.
* Item statistics (rating mean, popularity): meta-train users' ratings of existing items only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class ItemFeatures:
    """Item attributes over the item vocabulary (``n_items`` rows, vocabulary order).

    Attributes:
        genre_names: ``[n_genres]``; genres: float32 ``[n_items, n_genres]`` multi-hot.
        year: float32 ``[n_items]`` release year, NaN where unknown.
        year_mean, year_std: scaling of ``year`` in :meth:`matrix` (over items with a year).
        tag_names: ``[n_tags]``; tags: float32 ``[n_items, n_tags]``: how often meta-train
            users applied each tag to each item.
        extra_names / extra: float32 ``[n_items, n_extra]`` from a user's items CSV.
    """

    genre_names: list[str]
    genres: np.ndarray
    year: np.ndarray
    year_mean: float
    year_std: float
    tag_names: list[str]
    tags: np.ndarray
    extra_names: list[str] = field(default_factory=list)
    extra: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def n_items(self) -> int:
        return len(self.year)

    def matrix(self) -> np.ndarray:
        """float32 ``[n_items, n_genres + 2 + n_tags + n_extra]``: genres, scaled year (0 where
        unknown), year-missing flag, log(1 + tag count), extras."""
        known = np.isfinite(self.year)
        year = np.where(known, (self.year - self.year_mean) / self.year_std, 0.0)
        parts = [
            self.genres,
            year[:, None],
            (~known).astype(np.float32)[:, None],
            np.log1p(self.tags),
        ]
        if self.extra is not None and self.extra.shape[1]:
            parts.append(self.extra)
        return np.concatenate(parts, axis=1).astype(np.float32)

    def names(self) -> list[str]:
        return [
            *(f"genre:{g}" for g in self.genre_names),
            "year",
            "year_missing",
            *(f"tag:{t}" for t in self.tag_names),
            *self.extra_names,
        ]

    def coverage(self) -> dict[str, int]:
        """How many items have each kind of feature."""
        out = {
            "genres": int((self.genres.sum(axis=1) > 0).sum()),
            "year": int(np.isfinite(self.year).sum()),
            "tags": int((self.tags.sum(axis=1) > 0).sum()),
        }
        if self.extra is not None and self.extra.shape[1]:
            out["extra"] = int((np.abs(self.extra).sum(axis=1) > 0).sum())
        out["any"] = int(
            ((self.genres.sum(axis=1) > 0) | np.isfinite(self.year) | (self.tags.sum(axis=1) > 0)).sum()
        )
        return out


def _multi_hot(values: pd.Series, max_categories: int | None = None) -> tuple[list[str], np.ndarray]:
    """'|'-separated categories -> (names, float32 ``[n, n_names]``); "" = none."""
    dummies = values.fillna("").astype(str).str.get_dummies(sep="|")
    dummies = dummies.loc[:, [c for c in dummies.columns if c.strip() != ""]]
    if max_categories is not None and dummies.shape[1] > max_categories:
        return [], np.zeros((len(values), 0), dtype=np.float32)
    return [str(c) for c in dummies.columns], dummies.to_numpy(dtype=np.float32)


def tag_vocabulary(train_tags: pd.DataFrame | None, max_tags: int, min_count: int) -> list[str]:
    """The ``max_tags`` most frequent tags (ties by name) applied at least ``min_count`` times
    by meta-train users."""
    if train_tags is None or train_tags.empty:
        return []
    counts = train_tags["tag"].value_counts()
    counts = counts[counts >= min_count]
    frame = pd.DataFrame({"tag": counts.index.astype(str), "n": counts.to_numpy()})
    frame = frame.sort_values(["n", "tag"], ascending=[False, True], kind="stable")
    return frame["tag"].head(max_tags).tolist()


def fit_item_features(
    items: pd.DataFrame,
    train_tags: pd.DataFrame | None,
    *,
    max_tags: int = 100,
    min_tag_count: int = 2,
    extra_columns: Sequence[str] = (),
    max_categories: int = 50,
) -> ItemFeatures:
    """Item features.

    Args:
        items: one row per vocabulary item in vocabulary order, with ``genres`` and ``year``.
        train_tags: tags of meta-train users only, with ``item_index`` (vocabulary index)
            and ``tag``.
        extra_columns: further item columns (numbers are scaled over items, strings
            multi-hot encoded).
    """
    n = len(items)
    genre_names, genres = _multi_hot(items["genres"])
    year = items["year"].to_numpy(dtype=np.float64)
    known = year[np.isfinite(year)]
    year_mean = float(known.mean()) if len(known) else 0.0
    year_std = float(known.std()) if len(known) > 1 and known.std() > 0 else 1.0

    names = tag_vocabulary(train_tags, max_tags, min_tag_count)
    tags = np.zeros((n, len(names)), dtype=np.float32)
    if names:
        col = pd.Index(names)
        t = train_tags.assign(col=col.get_indexer(train_tags["tag"]))
        t = t[t["col"] >= 0]
        np.add.at(tags, (t["item_index"].to_numpy(), t["col"].to_numpy()), 1.0)

    notes: list[str] = []
    extra_names: list[str] = []
    blocks: list[np.ndarray] = []
    for column in extra_columns:
        values = items[column]
        if pd.api.types.is_numeric_dtype(values):
            v = values.to_numpy(dtype=np.float64)
            ok = np.isfinite(v)
            mu = v[ok].mean() if ok.any() else 0.0
            sd = v[ok].std() if ok.sum() > 1 and v[ok].std() > 0 else 1.0
            blocks.append(np.where(ok, (v - mu) / sd, 0.0)[:, None])
            extra_names.append(column)
        else:
            cats, hot = _multi_hot(values, max_categories)
            if not cats:
                notes.append(
                    f"item column {column!r} has more than {max_categories} categories: not used"
                )
                continue
            blocks.append(hot)
            extra_names.extend(f"{column}:{c}" for c in cats)
    extra = (
        np.concatenate(blocks, axis=1).astype(np.float32)
        if blocks
        else np.zeros((n, 0), dtype=np.float32)
    )
    return ItemFeatures(
        genre_names, genres, year.astype(np.float32), year_mean, year_std, names, tags,
        extra_names, extra, notes,
    )  # fmt: skip


@dataclass
class UserFeatures:
    """User attributes over the user vocabulary.

    Attributes:
        names: ``[d]`` column names (``age``, ``gender:F``, ``occupation:writer`` ...).
        matrix: float32 ``[n_users, d]``: numbers scaled with meta-train users' mean and std,
            categories one-hot over the categories meta-train users have (others all zero).
    """

    names: list[str]
    matrix: np.ndarray
    notes: list[str] = field(default_factory=list)


def fit_user_features(
    users: pd.DataFrame,
    train_mask: np.ndarray,
    columns: Sequence[str],
    *,
    max_categories: int = 50,
) -> UserFeatures:
    """User features fitted on meta-train users.

    Args:
        users: one row per vocabulary user in vocabulary order (NaN rows for users missing
            from the users file).
        train_mask: bool ``[n_users]``: meta-train users.
    """
    n = len(users)
    names: list[str] = []
    blocks: list[np.ndarray] = []
    notes: list[str] = []
    for column in columns:
        values = users[column]
        if pd.api.types.is_numeric_dtype(values):
            v = values.to_numpy(dtype=np.float64)
            fit = v[train_mask & np.isfinite(v)]
            mu = fit.mean() if len(fit) else 0.0
            sd = fit.std() if len(fit) > 1 and fit.std() > 0 else 1.0
            blocks.append(np.where(np.isfinite(v), (v - mu) / sd, 0.0)[:, None])
            names.append(column)
            continue
        text = values.astype(object).where(values.notna(), "").astype(str)
        cats = sorted(
            {c for c in text[train_mask].str.split("|").explode().tolist() if c and c != "nan"}
        )
        if len(cats) > max_categories:
            notes.append(f"user column {column!r} has {len(cats)} categories: not used")
            continue
        hot = text.str.get_dummies(sep="|").reindex(columns=cats, fill_value=0)
        blocks.append(hot.to_numpy(dtype=np.float32))
        names.extend(f"{column}:{c}" for c in cats)
    matrix = (
        np.concatenate(blocks, axis=1).astype(np.float32)
        if blocks
        else np.zeros((n, 0), dtype=np.float32)
    )
    return UserFeatures(names, matrix, notes)


@dataclass
class ItemStats:
    """Statistics of meta-train ratings of existing items (what baselines use).

    Attributes:
        count: int64 ``[n_items]`` ratings per item (popularity).
        mean: float32 ``[n_items]`` mean rating, NaN for items without training ratings.
        global_mean: the mean of all those ratings.
    """

    count: np.ndarray
    mean: np.ndarray
    global_mean: float

    @property
    def n_ratings(self) -> int:
        return int(self.count.sum())


def fit_item_stats(item_index: np.ndarray, ratings: np.ndarray, n_items: int) -> ItemStats:
    """``item_index`` int64 ``[m]`` and ``ratings`` float ``[m]``: meta-train ratings only."""
    count = np.bincount(item_index, minlength=n_items).astype(np.int64)
    total = np.bincount(item_index, weights=ratings.astype(np.float64), minlength=n_items)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan).astype(np.float32)
    global_mean = float(ratings.mean()) if len(ratings) else float("nan")
    return ItemStats(count, mean, global_mean)
