"""Cold-start splits: users into meta-train / valid / test, and "new items" by time.

Both are *split definitions*: they use who rated and when, never a rating's value. Everything
fitted afterwards (item statistics, tag vocabulary, the graph) sees meta-train users only.

A *fixed* split (a published one: the ratings' ``split`` column, see
:mod:`~fewshot_apps.domains.recsys.readers.fixed_split`) splits rows, not users:
:func:`fixed_user_split` gives each user the split its rows put it in (a user with train rows
is a meta-train user, even when it also has test rows: MeLU's item-cold state), and
:func:`fixed_new_items` makes the items no train row rates the new items.

Cross-validation over users (``user_folds``): :func:`user_folds` deals the users with enough
ratings to be evaluated into folds, and :func:`split_users` makes fold ``user_fold``'s users
the test users, draws validation users from the other folds' and leaves the rest meta-train;
over the folds, each such user is a test user exactly once.
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
    With ``user_folds``: :func:`fold_split`.

    Returns:
        A str Series indexed by user id (sorted), values ``"train"``, ``"valid"``, ``"test"``.
    """
    if config.user_folds:
        return fold_split(ratings, config)
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


def evaluable(counts: np.ndarray, config: ColdStartConfig) -> np.ndarray:
    """bool ``[n]``: users with ``counts`` ratings whom the protocol evaluates (at least
    ``min_eval_ratings``; MeLU: its range of ratings), as :mod:`~fewshot_apps.domains.recsys.tasks`
    decides for valid and test users."""
    counts = np.asarray(counts)
    if config.protocol == "melu":
        low = max(config.melu_min_ratings, config.melu_n_query + 1)
        return (counts >= low) & (counts <= config.melu_max_ratings)
    return counts >= config.min_eval_ratings


def user_folds(ratings: pd.DataFrame, config: ColdStartConfig) -> pd.Series:
    """Each rating user's fold (``0 .. user_folds - 1``), or -1 for a user with too few
    ratings to be evaluated (always meta-train). The evaluable users, sorted by id, are
    shuffled with a seed derived from ``config.seed`` and ``user_folds`` and cut into folds
    whose sizes differ by at most one. Indexed by user id (sorted)."""
    counts = ratings.groupby("user").size().sort_index()
    ok = evaluable(counts.to_numpy(), config)
    rng = np.random.default_rng(derive_seed("recsys-user-folds", config.seed, config.user_folds))
    where = np.flatnonzero(ok)[rng.permutation(int(ok.sum()))]
    fold = np.full(len(counts), -1, dtype=np.int64)
    for f, members in enumerate(np.array_split(where, config.user_folds)):
        fold[members] = f
    return pd.Series(fold, index=pd.Index(counts.index, name="user"), name="fold")


def fold_split(ratings: pd.DataFrame, config: ColdStartConfig) -> pd.Series:
    """The split of fold ``config.user_fold``: its users are test users; validation users are
    drawn (seeded by ``seed``, ``user_folds`` and the fold) from the other folds' users, a
    share ``split_fractions[1] / (split_fractions[0] + split_fractions[1])`` of them; every
    other user (the rest of the other folds, and users too small to be evaluated) is
    meta-train. Like :func:`split_users`, a str Series indexed by user id."""
    folds = user_folds(ratings, config)
    fold = folds.to_numpy()
    labels = np.full(len(fold), "train", dtype=object)
    labels[fold == config.user_fold] = "test"
    others = np.flatnonzero((fold >= 0) & (fold != config.user_fold))
    f_train, f_valid, _ = config.split_fractions
    share = f_valid / (f_train + f_valid) if f_train + f_valid > 0 else 0.0
    rng = np.random.default_rng(
        derive_seed("recsys-fold-valid", config.seed, config.user_folds, config.user_fold))
    labels[rng.choice(others, size=int(round(len(others) * share)), replace=False)] = "valid"
    return pd.Series(labels, index=folds.index, name="split")


def fixed_user_split(ratings: pd.DataFrame) -> pd.Series:
    """Each user's split in a fixed split (``ratings`` has a ``split`` column): ``"train"``
    when any of its rows is a train row, else ``"valid"`` when any is a valid row, else
    ``"test"``. Indexed by user id (sorted), like :func:`split_users`."""
    rank = ratings["split"].map({s: i for i, s in enumerate(SPLITS)}).to_numpy()
    best = pd.Series(rank, index=ratings["user"].to_numpy()).groupby(level=0).min().sort_index()
    return pd.Series(np.asarray(SPLITS, dtype=object)[best.to_numpy()],
                     index=pd.Index(best.index, name="user"), name="split")


@dataclass
class NewItems:
    """Item cold start.

    Attributes:
        cutoff: the time (Unix seconds) by which ``quantile`` of all ratings were made; None
            when item cold start is off or the data has no timestamps.
        mask: bool ``[n_items]`` over the item vocabulary: first rated after ``cutoff``.
        first_rated: float64 ``[n_items]``: each item's first rating time (NaN: unrated).
        fixed: the new items are those of a fixed split (rated, but in no train row), not
            those first rated after a time.
    """

    quantile: float | None
    cutoff: float | None
    mask: np.ndarray
    first_rated: np.ndarray
    fixed: bool = False

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


def fixed_new_items(
    item_index: np.ndarray, split: np.ndarray, timestamps: np.ndarray, n_items: int
) -> NewItems:
    """Item cold start of a fixed split: the items rated in valid or test rows only (no train
    row rates them). ``split``: object ``[n_ratings]``, each rating's split."""
    first = find_new_items(item_index, timestamps, n_items, None).first_rated
    rated = np.bincount(item_index, minlength=n_items) > 0
    trained = np.bincount(item_index[np.asarray(split) == "train"], minlength=n_items) > 0
    return NewItems(None, None, rated & ~trained, first, fixed=True)
