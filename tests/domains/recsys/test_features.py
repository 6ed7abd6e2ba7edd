"""domains/recsys/features.py: item / user features and item statistics, fitted on
meta-train users only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fewshot_apps.domains.recsys.config import ColdStartConfig
from fewshot_apps.domains.recsys.dataset import build_recsys_dataset
from fewshot_apps.domains.recsys.features import (
    fit_item_features,
    fit_item_stats,
    fit_user_features,
    tag_vocabulary,
)
from fewshot_apps.domains.recsys.readers import RatingScale, ReadReport, RecsysData


def items_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item": [1, 2, 3, 4],
            "genres": ["Action|Comedy", "Comedy", "", None],
            "year": [1990.0, np.nan, 2000.0, 2010.0],
            "budget": [1.0, 2.0, np.nan, 5.0],
            "lang": ["en", "fr|en", "", None],
        }
    )


def train_tags() -> pd.DataFrame:
    # fun x3, dark x2, rare x1 (below min_count 2)
    return pd.DataFrame(
        {"item_index": [0, 0, 1, 2, 2, 3], "tag": ["fun", "fun", "dark", "fun", "dark", "rare"]}
    )


# ------------------------------------------------------------------ items


def test_item_matrix_shape_and_column_names():
    f = fit_item_features(items_table(), train_tags(), extra_columns=["budget", "lang"])
    m = f.matrix()
    assert f.n_items == 4
    assert m.dtype == np.float32
    assert f.names() == [
        "genre:Action", "genre:Comedy", "year", "year_missing", "tag:fun", "tag:dark",
        "budget", "lang:en", "lang:fr",
    ]  # fmt: skip
    assert m.shape == (4, len(f.names()))
    assert f.genres.shape == (4, 2) and f.tags.shape == (4, 2) and f.extra.shape == (4, 3)


def test_genres_multi_hot_with_blank_meaning_none():
    f = fit_item_features(items_table(), None)
    assert f.genre_names == ["Action", "Comedy"]
    np.testing.assert_array_equal(f.genres, [[1, 1], [0, 1], [0, 0], [0, 0]])


def test_unknown_year_stays_unknown_with_a_flag():
    f = fit_item_features(items_table(), None)
    assert np.isnan(f.year[1]) and f.year[0] == 1990.0
    assert f.year_mean == pytest.approx(2000.0)
    assert f.year_std == pytest.approx(np.std([1990.0, 2000.0, 2010.0]))
    m, names = f.matrix(), f.names()
    year, missing = m[:, names.index("year")], m[:, names.index("year_missing")]
    np.testing.assert_allclose(year, [-1.2247449, 0.0, 0.0, 1.2247449], rtol=1e-6)
    assert missing.tolist() == [0.0, 1.0, 0.0, 0.0]  # never guessed: the flag tells them apart


def test_no_known_year_and_a_single_year_do_not_divide_by_zero():
    none = fit_item_features(items_table().assign(year=np.nan), None)
    assert (none.year_mean, none.year_std) == (0.0, 1.0)
    assert np.isfinite(none.matrix()).all()
    one = fit_item_features(items_table().assign(year=[1999.0, np.nan, np.nan, np.nan]), None)
    assert one.year_std == 1.0 and np.isfinite(one.matrix()).all()


def test_tag_vocabulary_most_frequent_first_ties_by_name():
    tags = pd.DataFrame({"tag": ["b", "a", "b", "a", "c", "c", "d", "e", "e", "e"]})
    assert tag_vocabulary(tags, max_tags=10, min_count=2) == ["e", "a", "b", "c"]
    assert tag_vocabulary(tags, max_tags=2, min_count=2) == ["e", "a"]
    assert tag_vocabulary(tags, max_tags=10, min_count=1)[-1] == "d"
    assert tag_vocabulary(None, 10, 1) == []
    assert tag_vocabulary(tags.iloc[:0], 10, 1) == []


def test_item_tags_count_only_the_given_tags_in_the_vocabulary():
    f = fit_item_features(items_table(), train_tags(), max_tags=10, min_tag_count=2)
    assert f.tag_names == ["fun", "dark"]
    np.testing.assert_array_equal(f.tags, [[2, 0], [0, 1], [1, 1], [0, 0]])  # "rare" dropped
    m = f.matrix()
    cols = [f.names().index("tag:fun"), f.names().index("tag:dark")]
    np.testing.assert_allclose(m[:, cols], np.log1p(f.tags))


def test_extra_columns_numbers_scaled_strings_multi_hot_and_too_many_categories_reported():
    items = items_table().assign(code=[f"c{i}" for i in range(4)])
    f = fit_item_features(items, None, extra_columns=["budget", "lang", "code"], max_categories=3)
    assert f.extra_names == ["budget", "lang:en", "lang:fr"]
    v = np.array([1.0, 2.0, 5.0])
    np.testing.assert_allclose(
        f.extra[:, 0], [(1 - v.mean()) / v.std(), (2 - v.mean()) / v.std(), 0.0, (5 - v.mean()) / v.std()],
        rtol=1e-6,
    )  # fmt: skip
    np.testing.assert_array_equal(f.extra[:, 1:], [[1, 0], [1, 1], [0, 0], [0, 0]])
    assert f.notes == ["item column 'code' has more than 3 categories: not used"]


def test_coverage_counts_items_with_each_kind_of_feature():
    f = fit_item_features(items_table(), train_tags(), extra_columns=["budget"])
    assert f.coverage() == {"genres": 2, "year": 3, "tags": 3, "extra": 3, "any": 4}
    bare = fit_item_features(items_table().assign(genres="", year=np.nan), None)
    assert bare.coverage() == {"genres": 0, "year": 0, "tags": 0, "any": 0}
    assert bare.matrix().shape == (4, 2)  # year + missing flag only


# ------------------------------------------------------------------ users


def test_user_features_are_fitted_on_meta_train_users():
    users = pd.DataFrame(
        {
            "age": [20.0, 30.0, np.nan, 60.0],
            "gender": ["F", "M", "X", None],
            "occ": ["a|b", "b", "c", "a"],
        }
    )
    train = np.array([True, True, False, False])
    uf = fit_user_features(users, train, ["age", "gender", "occ"])
    # categories only meta-train users have: "X" and "c" (test users only) get no column
    assert uf.names == ["age", "gender:F", "gender:M", "occ:a", "occ:b"]
    assert uf.matrix.shape == (4, 5) and uf.matrix.dtype == np.float32
    # age scaled with the meta-train users' mean 25 and std 5; unknown -> 0
    np.testing.assert_allclose(uf.matrix[:, 0], [-1.0, 1.0, 0.0, 7.0])
    np.testing.assert_array_equal(uf.matrix[2, 1:], [0, 0, 0, 0])  # unseen categories: all zero
    np.testing.assert_array_equal(uf.matrix[0, 3:], [1, 1])  # multi-valued
    # a non-train user's values change nothing in the fit
    changed = users.assign(age=[20.0, 30.0, 99.0, 1.0], gender=["F", "M", "Y", "Z"])
    again = fit_user_features(changed, train, ["age", "gender", "occ"])
    assert again.names == uf.names
    np.testing.assert_array_equal(again.matrix[:2], uf.matrix[:2])


def test_user_columns_with_too_many_categories_are_reported_not_used():
    users = pd.DataFrame({"zip": [f"{i:05d}" for i in range(6)], "age": np.arange(6.0)})
    uf = fit_user_features(users, np.ones(6, bool), ["zip", "age"], max_categories=4)
    assert uf.names == ["age"]
    assert uf.notes == ["user column 'zip' has 6 categories: not used"]
    empty = fit_user_features(users, np.ones(6, bool), [])
    assert empty.matrix.shape == (6, 0)


# ------------------------------------------------------------------ statistics


def test_item_stats_count_mean_and_global_mean():
    s = fit_item_stats(np.array([0, 0, 2]), np.array([4.0, 2.0, 5.0]), 4)
    assert s.count.tolist() == [2, 0, 1, 0] and s.count.dtype == np.int64
    assert s.mean.dtype == np.float32 and s.mean.shape == (4,)
    np.testing.assert_array_equal(s.mean, [3.0, np.nan, 5.0, np.nan])
    assert s.global_mean == pytest.approx(11 / 3) and s.n_ratings == 3
    empty = fit_item_stats(np.zeros(0, np.int64), np.zeros(0), 2)
    assert empty.count.tolist() == [0, 0] and np.isnan(empty.global_mean)


# ------------------------------------------------------------------ meta-train only, end to end


def tiny_data() -> RecsysData:
    """12 users rating 12-16 of 20 items; every user tags one item with ``own-<user>`` and
    one with ``shared``; every user is 25 years old but user 12, who is 90."""
    rng = np.random.default_rng(0)
    rows, t = [], 1_000_000_000.0
    for u in range(1, 13):
        for i in rng.choice(np.arange(1, 21), size=12 + u % 5, replace=False):
            t += 10.0
            rows.append((u, int(i), float(rng.integers(1, 6)), t))
    ratings = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    ratings = ratings.assign(
        rating=ratings["rating"].astype(np.float32), line=np.arange(len(rows)) + 2
    )
    items = pd.DataFrame(
        {"item": np.arange(1, 21), "title": [f"m{i}" for i in range(1, 21)],
         "genres": ["Drama" if i % 2 else "Comedy" for i in range(1, 21)], "year": 2000.0}
    )  # fmt: skip
    tags = pd.DataFrame(
        [(u, 1 + u % 20, f"own-{u}", 0.0) for u in range(1, 13)]
        + [(u, 2, "shared", 0.0) for u in range(1, 13)],
        columns=["user", "item", "tag", "timestamp"],
    )
    users = pd.DataFrame({"user": np.arange(1, 13), "age": [25.0] * 11 + [90.0]})
    return RecsysData(
        "tiny", "interactions-csv", ratings, items, users, tags, RatingScale(1, 5, 1),
        ReadReport(), user_feature_columns=["age"],
    )  # fmt: skip


def test_a_built_data_set_fits_every_feature_on_meta_train_users_only():
    config = ColdStartConfig(
        split_fractions=(0.5, 0.25, 0.25), support_sizes=(3,), n_query=2, min_eval_ratings=5,
        new_item_quantile=None, min_tag_count=1,
    )  # fmt: skip
    ds = build_recsys_dataset(tiny_data(), config)
    train_users = set(ds.user_split.index[ds.user_split == "train"])
    other_users = set(ds.user_split.index) - train_users
    assert len(train_users) == 6 and other_users
    # tags: every meta-train user's own tag, no other user's
    own = {t for t in ds.item_features.tag_names if t.startswith("own-")}
    assert own == {f"own-{u}" for u in train_users}
    shared = ds.item_features.tags[:, ds.item_features.tag_names.index("shared")]
    assert shared.sum() == len(train_users)  # counted over meta-train users only
    # item statistics: meta-train ratings only
    i = ds.interactions
    train = i[i["split"] == "train"]
    expected = np.bincount(train["item_index"], minlength=len(ds.item_vocab))
    np.testing.assert_array_equal(ds.item_stats.count, expected)
    assert ds.item_stats.global_mean == pytest.approx(train["rating"].mean())
    # user features: scaled with meta-train users' ages only
    ages = np.array([90.0 if u == 12 else 25.0 for u in ds.user_vocab.ids])
    is_train = np.array([u in train_users for u in ds.user_vocab.ids])
    fit = ages[is_train]
    sd = fit.std() if fit.std() > 0 else 1.0
    np.testing.assert_allclose(ds.user_features.matrix[:, 0], (ages - fit.mean()) / sd, rtol=1e-5)
