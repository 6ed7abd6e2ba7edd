"""domains/recsys/splits.py: the user split and item cold start ("new items" by time)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fewshot_apps.domains.recsys.config import ColdStartConfig
from fewshot_apps.domains.recsys.splits import SPLITS, find_new_items, split_users
from fewshot_apps.errors import DataError


def ratings(n_users: int = 40, per_user: int = 3, seed: int = 0) -> pd.DataFrame:
    """``per_user`` ratings per user; user u's first rating is at time 1000 - u (later users
    started earlier), ids are 10, 20, 30 ... (not contiguous)."""
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(1, n_users + 1) * 10, per_user)
    first = 1000.0 - users / 10
    return pd.DataFrame(
        {
            "user": users,
            "item": rng.integers(1, 30, size=len(users)),
            "rating": rng.integers(1, 6, size=len(users)).astype(np.float32),
            "timestamp": first + np.tile(np.arange(per_user) * 5000.0, n_users),
        }
    )


# ------------------------------------------------------------------ split_users


def test_every_rating_user_gets_exactly_one_split_of_the_configured_size():
    r = ratings(40)
    split = split_users(r, ColdStartConfig())
    assert split.name == "split" and split.index.name == "user"
    assert split.index.is_unique and split.index.is_monotonic_increasing
    assert set(split.index) == set(r["user"])
    assert set(split.unique()) <= set(SPLITS)
    assert split.value_counts().to_dict() == {"train": 28, "test": 8, "valid": 4}
    got = split_users(r, ColdStartConfig(split_fractions=(0.5, 0.25, 0.25)))
    assert got.value_counts().to_dict() == {"train": 20, "valid": 10, "test": 10}


@pytest.mark.parametrize(
    ("n", "fractions", "sizes"),
    [
        (10, (0.7, 0.1, 0.2), (7, 1, 2)),
        (3, (0.5, 0.5, 0.0), (2, 1, 0)),  # valid is cut so the shares never exceed the users
        (4, (1.0, 0.0, 0.0), (4, 0, 0)),
        (1, (0.7, 0.1, 0.2), (1, 0, 0)),
    ],
)
def test_split_sizes_round_and_never_exceed_the_users(n, fractions, sizes):
    split = split_users(ratings(n), ColdStartConfig(split_fractions=fractions))
    counts = split.value_counts()
    assert tuple(int(counts.get(s, 0)) for s in SPLITS) == sizes


def test_random_split_is_seeded_and_deterministic():
    r = ratings(40)
    cfg = ColdStartConfig(seed=3)
    a, b = split_users(r, cfg), split_users(r, cfg)
    pd.testing.assert_series_equal(a, b)
    others = [split_users(r, cfg.with_(seed=s)) for s in (0, 1, 2)]
    assert all(not o.equals(a) for o in others)


def test_random_split_is_stable_across_processes():
    """A saved model records its training users: the same seed must give the same split in
    every process and release (derive_seed, not Python's hash)."""
    r = pd.DataFrame({"user": np.arange(1, 11), "item": 1, "rating": 3.0, "timestamp": 0.0})
    split = split_users(r, ColdStartConfig(seed=0))
    assert split.to_dict() == {
        1: "train", 2: "test", 3: "train", 4: "train", 5: "test",
        6: "train", 7: "valid", 8: "train", 9: "train", 10: "train",
    }  # fmt: skip


def test_split_ignores_row_order_and_rating_values():
    r = ratings(30)
    for method in ("random", "time"):
        cfg = ColdStartConfig(split_method=method)
        base = split_users(r, cfg)
        shuffled = r.sample(frac=1.0, random_state=1).reset_index(drop=True)
        pd.testing.assert_series_equal(split_users(shuffled, cfg), base)
        other_values = r.assign(rating=6 - r["rating"])
        pd.testing.assert_series_equal(split_users(other_values, cfg), base)


def test_time_split_orders_users_by_first_rating():
    r = ratings(20)  # user 200 started first, user 10 last
    split = split_users(r, ColdStartConfig(split_method="time", split_fractions=(0.5, 0.25, 0.25)))
    first = r.groupby("user")["timestamp"].min()
    assert first[split == "train"].max() < first[split == "valid"].min()
    assert first[split == "valid"].max() < first[split == "test"].min()
    assert sorted(split.index[split == "test"]) == [10, 20, 30, 40, 50]
    # independent of the seed
    again = split_users(
        r,
        ColdStartConfig(split_method="time", split_fractions=(0.5, 0.25, 0.25), seed=9),
    )
    pd.testing.assert_series_equal(again, split)


def test_time_split_breaks_ties_by_user_id():
    r = pd.DataFrame({"user": [4, 2, 3, 1], "item": 1, "rating": 3.0, "timestamp": 100.0})
    split = split_users(r, ColdStartConfig(split_method="time", split_fractions=(0.5, 0.25, 0.25)))
    assert split.to_dict() == {1: "train", 2: "train", 3: "valid", 4: "test"}


def test_time_split_needs_timestamps():
    r = ratings(5).assign(timestamp=np.nan)
    with pytest.raises(DataError, match="needs timestamps"):
        split_users(r, ColdStartConfig(split_method="time"))
    # the random split does not
    assert len(split_users(r, ColdStartConfig())) == 5


# ------------------------------------------------------------------ find_new_items


def test_new_items_are_first_rated_after_the_time_quantile():
    # 10 ratings at times 1..10 of items 0..4 (item 4 is never rated)
    item = np.array([0, 1, 0, 2, 1, 0, 2, 3, 3, 1])
    ts = np.arange(1.0, 11.0)
    new = find_new_items(item, ts, n_items=5, quantile=0.7)
    assert new.cutoff == 7.0  # 70% of the ratings were made by time 7
    np.testing.assert_array_equal(new.first_rated, [1.0, 2.0, 4.0, 8.0, np.nan])
    assert new.mask.tolist() == [False, False, False, True, False]
    assert new.mask.dtype == bool and new.mask.shape == (5,)
    assert new.count == 1 and new.quantile == 0.7
    # an item first rated exactly at the cutoff is not new
    assert not find_new_items(np.array([0, 1]), np.array([1.0, 2.0]), 2, 0.99).mask.any()
    assert find_new_items(np.array([0, 1]), np.array([1.0, 2.0]), 2, 0.5).mask.tolist() == [
        False,
        True,
    ]


def test_the_cutoff_ignores_unknown_times_and_row_order():
    item = np.array([0, 1, 2, 3, 4, 0])
    ts = np.array([5.0, np.nan, 1.0, 9.0, 3.0, 7.0])
    new = find_new_items(item, ts, 6, quantile=0.6)
    # known times 1, 3, 5, 7, 9: 60% by time 5
    assert new.cutoff == 5.0
    assert new.mask.tolist() == [False, False, False, True, False, False]
    assert np.isnan(new.first_rated[1]) and np.isnan(new.first_rated[5])
    order = np.array([5, 3, 1, 0, 4, 2])
    again = find_new_items(item[order], ts[order], 6, quantile=0.6)
    assert again.cutoff == new.cutoff and again.mask.tolist() == new.mask.tolist()


def test_no_item_cold_start_without_a_quantile_or_timestamps():
    item = np.array([0, 1, 1])
    off = find_new_items(item, np.array([1.0, 2.0, 3.0]), 3, quantile=None)
    assert off.cutoff is None and off.count == 0 and off.mask.shape == (3,)
    np.testing.assert_array_equal(off.first_rated, [1.0, 2.0, np.nan])
    no_times = find_new_items(item, np.full(3, np.nan), 3, quantile=0.8)
    assert no_times.cutoff is None and no_times.count == 0
    empty = find_new_items(np.zeros(0, np.int64), np.zeros(0), 4, quantile=0.8)
    assert empty.count == 0 and np.isnan(empty.first_rated).all()
