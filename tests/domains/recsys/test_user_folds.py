"""Cross-validation over users (``user_folds``): every user with enough ratings to be
evaluated is a test user in exactly one fold; a fold's test users are never meta-train or
validation users of that fold; a seed fixes the folds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fewshot_apps.core.domain import get_domain
from fewshot_apps.domains.recsys.config import ColdStartConfig
from fewshot_apps.domains.recsys.dataset import load_recsys_dataset
from fewshot_apps.domains.recsys.splits import split_users, user_folds
from fewshot_apps.errors import CardError, FewshotError

N_EVALUABLE, N_SMALL = 41, 12  # users with >= 30 ratings, and with 20-25


def ratings_frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(1, N_EVALUABLE + N_SMALL + 1):
        n = int(rng.integers(30, 41)) if u <= N_EVALUABLE else int(rng.integers(20, 26))
        for i in rng.choice(np.arange(1, 81), size=n, replace=False):
            rows.append((u, int(i), float(rng.integers(1, 6)), 1e9 + len(rows)))
    return pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])


EVALUABLE = set(range(1, N_EVALUABLE + 1))


@pytest.fixture(scope="module")
def ratings_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("folds") / "ratings.csv"
    ratings_frame().to_csv(path, index=False)
    return path


def test_folds_partition_the_users_with_enough_ratings():
    r = ratings_frame()
    folds = user_folds(r, ColdStartConfig(user_folds=4))
    assert set(folds.index) == set(r["user"]) and folds.index.is_monotonic_increasing
    assert set(folds[folds >= 0].index) == EVALUABLE  # users too small: never tested
    assert (folds[folds.index > N_EVALUABLE] == -1).all()
    sizes = folds[folds >= 0].value_counts()
    assert sorted(sizes.index) == [0, 1, 2, 3] and sizes.max() - sizes.min() <= 1
    tested = []
    for f in range(4):
        split = split_users(r, ColdStartConfig(user_folds=4, user_fold=f))
        test = set(split.index[split == "test"])
        assert test == set(folds.index[folds == f])
        valid = set(split.index[split == "valid"])
        assert valid <= EVALUABLE - test  # drawn from the other folds' users
        assert len(valid) == round(len(EVALUABLE - test) * 0.1 / 0.8)
        tested += sorted(test)
    assert sorted(tested) == sorted(EVALUABLE)  # each exactly once


def test_a_seed_fixes_the_folds():
    r = ratings_frame()
    a = user_folds(r, ColdStartConfig(user_folds=3, seed=0))
    assert a.equals(user_folds(r, ColdStartConfig(user_folds=3, seed=0)))
    assert not a.equals(user_folds(r, ColdStartConfig(user_folds=3, seed=1)))
    one = split_users(r, ColdStartConfig(user_folds=3, user_fold=1, seed=5))
    assert one.equals(split_users(r, ColdStartConfig(user_folds=3, user_fold=1, seed=5)))


def test_no_fold_tests_a_user_it_trains_or_validates_on(ratings_csv):
    tested = []
    for f in range(3):
        ds = load_recsys_dataset(ratings_csv, use_cache=False, user_folds=3, user_fold=f)
        test = {t.name for t in ds.taskset.test}
        seen = {t.name for t in ds.taskset.train} | {t.name for t in ds.taskset.valid}
        assert test and not test & seen
        train_users = {str(u) for u in ds.train_interactions()["user"]}
        assert not test & train_users  # nor do the graph and statistics see their ratings
        assert ds.config.user_folds == 3 and ds.config.user_fold == f
        assert ds.saved_model_config()["cold_start"]["user_fold"] == f
        tested += sorted(test)
    assert sorted(tested) == sorted(str(u) for u in EVALUABLE)


def test_fold_settings_are_checked():
    with pytest.raises(CardError, match="user_fold must be below user_folds \\(3\\), not 3"):
        ColdStartConfig(user_folds=3, user_fold=3)
    with pytest.raises(CardError, match="user_folds must be a whole number >= 2, not 1"):
        ColdStartConfig(user_folds=1)
    with pytest.raises(CardError, match="user_fold needs user_folds"):
        ColdStartConfig(user_fold=1)
    with pytest.raises(CardError, match="split_method 'time' does not go with it"):
        ColdStartConfig(user_folds=5, split_method="time")


def test_a_suite_passes_folds_as_dataset_options():
    domain = get_domain("recsys")
    assert domain.check_dataset_options({}) == {}
    assert domain.check_dataset_options({"folds": 5, "fold": 2}) == {"user_folds": 5,
                                                                     "user_fold": 2}
    with pytest.raises(FewshotError, match="'molecules': rating data sets accept none but "
                                           "folds and fold"):
        domain.check_dataset_options({"molecules": "disjoint"})
    with pytest.raises(FewshotError, match="folds and fold go together"):
        domain.check_dataset_options({"folds": 5})
    with pytest.raises(CardError, match="user_fold must be below user_folds"):
        domain.check_dataset_options({"folds": 5, "fold": 5})


def test_inspect_names_the_fold(ratings_csv):
    from fewshot_apps.domains.recsys.inspect import format_report

    ds = load_recsys_dataset(ratings_csv, use_cache=False, user_folds=3, user_fold=2)
    assert ("Cold-start protocol: cold-start (seed 0, user fold 2 of 3: its users tested, "
            "validation users drawn from the other folds'") in format_report(ds)
