"""Cold-start splits: users into meta-train / valid / test, and "new items" by time.

Both are *split definitions*: they use who rated and when, never a rating's value. Everything
fitted afterwards (item statistics, tag vocabulary, the graph) sees meta-train users only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fewshot_apps.core.tasks import derive_seed
from fewshot_apps.domains.recsys.config import ColdStartConfig
from fewshot_apps.errors import DataError

SPLITS = ("train", "valid", "test")


def _sizes(n: int, fractions: tuple[float, float, float]) -> tuple[int, int, int]:
    n_train = int(round(n * fractions[0]))
    n_valid = int(round(n * fractions[1]))
    n_valid = min(n_valid, n - n_train)
    return n_train, n_valid, n - n_train - n_valid


def split_users(ratings: pd.DataFrame, config: ColdStartConfig) -> pd.Series:
    """Each rating user's split.

    ``"random"``: users sorted by id, shuffled with a seed derived from ``config.seed``.
    ``"time"``: users ordered by their first rating (ties by id): the earliest
    ``split_fractions[0]`` are meta-train, then valid, the latest are test.

    Returns:
        A str Series indexed by user id (sorted), values ``"train"``, ``"valid"``, ``"test"``.
    """
    users = np.sort(ratings["user"].unique())
    n_train, n_valid, _ = _sizes(len(users), config.split_fractions)
    if config.split_method == "random":
        rng = np.random.default_rng(derive_seed("recsys-user-split", config.seed))
        order = users[rng.permutation(len(users))]
    else:
        if ratings["timestamp"].isna().all():
            raise DataError(None, "a time-based user split needs timestamps; the ratings have none")
        first = ratings.groupby("user")["timestamp"].min().reindex(users)
        frame = pd.DataFrame({"user": users, "first": first.to_numpy()})
        order = frame.sort_values(["first", "user"], kind="stable")["user"].to_numpy()
    labels = np.empty(len(users), dtype=object)
    labels[:n_train] = "train"
    labels[n_train : n_train + n_valid] = "valid"
    labels[n_train + n_valid :] = "test"
    return pd.Series(labels, index=pd.Index(order, name="user"), name="split").sort_index()


@dataclass
class NewItems:
    """Item cold start.

    Attributes:
        cutoff: the time (Unix seconds) by which ``quantile`` of all ratings were made; None
            when item cold start is off or the data has no timestamps.
        mask: bool ``[n_items]`` over the item vocabulary: first rated after ``cutoff``.
        first_rated: float64 ``[n_items]``: each item's first rating time (NaN: unrated).
    """

    quantile: float | None
    cutoff: float | None
    mask: np.ndarray
    first_rated: np.ndarray

    @property
    def count(self) -> int:
        return int(self.mask.sum())


def find_new_items(
    item_index: np.ndarray, timestamps: np.ndarray, n_items: int, quantile: float | None
) -> NewItems:
    """Items whose first rating comes after the ``quantile`` time of all ratings.

    Args:
        item_index: int64 ``[n_ratings]``, the rated item of each rating.
        timestamps: float64 ``[n_ratings]`` (NaN when unknown).
        n_items: size of the item vocabulary.
    """
    first = np.full(n_items, np.nan)
    if len(item_index):
        s = pd.Series(timestamps).groupby(item_index).min()
        first[s.index.to_numpy()] = s.to_numpy()
    ts = timestamps[np.isfinite(timestamps)]
    if quantile is None or len(ts) == 0:
        return NewItems(quantile, None, np.zeros(n_items, dtype=bool), first)
    ordered = np.sort(ts)
    cutoff = float(ordered[max(int(np.ceil(quantile * len(ordered))) - 1, 0)])
    with np.errstate(invalid="ignore"):
        mask = np.isfinite(first) & (first > cutoff)
    return NewItems(quantile, cutoff, mask, first)
