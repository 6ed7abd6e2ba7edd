"""The onboarding protocol (fewshot_apps.domains.recsys.onboarding): simulated interviews of
test users, scored on held-out ratings the same for every strategy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fewshot_apps.domains.recsys.baselines import build_rec_baseline
from fewshot_apps.domains.recsys.onboard import dataset_order
from fewshot_apps.domains.recsys.onboarding import (
    COMPARED,
    ONBOARDING_COLUMNS,
    evaluate_onboarding,
    heldout_positions,
)
from fewshot_apps.errors import FewshotError


class Recorder:
    """item-mean, remembering every episode's support and candidates."""

    def __init__(self, model):
        self.model, self.calls = model, []

    def fit_predict(self, support_ids, support_ratings, query_ids):
        self.calls.append((np.asarray(support_ids).copy(), np.asarray(support_ratings).copy(),
                           np.asarray(query_ids).copy()))
        return self.model.fit_predict(support_ids, support_ratings, query_ids)


@pytest.fixture(scope="module")
def small(ml_small):
    """ml-latest-small with its first 6 test users."""
    import copy

    ds = copy.copy(ml_small)
    ds.taskset = copy.copy(ml_small.taskset)
    ds.taskset.test = ml_small.taskset.test[:6]
    return ds


@pytest.fixture(scope="module")
def recorded(small):
    model = Recorder(build_rec_baseline("item-mean", small))
    results, skipped = evaluate_onboarding(model, small, seeds=(0, 1), draws=2)
    return model, results, skipped


def test_rows_and_columns(small, recorded):
    model, results, skipped = recorded
    assert list(results.columns) == ONBOARDING_COLUMNS
    assert skipped.empty and results["value"].notna().all()
    assert set(results["strategy"]) == set(COMPARED)
    assert set(results["support_size"]) == {5, 10} and set(results["item_split"]) == {"all"}
    assert set(results["metric"]) == {"mae", "rmse", "recall@10", "ndcg@10"}
    # every user x seed x draw x strategy x size once: 6 x 2 x 2 x 4 x 2 model calls
    assert len(model.calls) == 6 * 2 * 2 * 4 * 2
    key = ["task", "strategy", "seed", "draw", "support_size", "metric"]
    assert not results.duplicated(key).any()


def test_the_support_is_the_first_rated_items_of_the_ranking_and_never_scored(small, recorded):
    model, _, _ = recorded
    calls = iter(model.calls)
    n_items = len(small.item_vocab)
    for task in small.taskset.test:
        rated = dict(zip(task.examples.tolist(), task.labels.tolist()))
        for seed in (0, 1):
            for draw in (0, 1):
                heldout = task.examples[heldout_positions(task, seed, draw, 0.3)]
                pool = np.setdiff1d(task.examples, heldout)
                known = set(pool.tolist())
                for strategy in COMPARED:
                    if strategy != "random":  # the ranking's items the user rated, in turn
                        asked = [i for i in dataset_order(small, strategy) if i in known]
                    supports = []
                    for n in (5, 10):
                        support, ratings, candidates = next(calls)
                        supports.append(set(support.tolist()))
                        assert len(support) == n and len(set(support.tolist())) == n
                        # only items the user rated, with the user's ratings, from the pool
                        assert set(support.tolist()) <= set(pool.tolist())
                        assert ratings.tolist() == [rated[i] for i in support.tolist()]
                        # the held-out ratings are scored, never asked about
                        assert not set(support.tolist()) & set(heldout.tolist())
                        assert set(heldout.tolist()) <= set(candidates.tolist())
                        assert not set(candidates.tolist()) & set(pool.tolist())
                        assert len(candidates) == n_items - len(pool)
                        if strategy != "random":
                            assert set(support.tolist()) == set(asked[:n])
                    assert supports[0] < supports[1]  # the interview goes on: nested


def test_every_strategy_is_scored_on_the_same_heldout_ratings(small, recorded):
    """The candidates (every item but the interview's pool) are the same for every strategy of
    a user, seed and draw: the strategies differ only in what the model was told."""
    model, _, _ = recorded
    calls = model.calls
    per_user = len(COMPARED) * 2
    for start in range(0, len(calls), per_user):
        candidates = {tuple(c[2].tolist()) for c in calls[start:start + per_user]}
        assert len(candidates) == 1


def test_random_is_seeded(small):
    model = build_rec_baseline("item-mean", small)
    runs = [evaluate_onboarding(model, small, seeds=(s,), strategies=("random",))[0]
            for s in (0, 0, 1)]
    pd.testing.assert_frame_equal(runs[0], runs[1])
    assert not np.allclose(runs[0]["value"], runs[2]["value"])


def test_a_support_independent_ranking_scores_alike_after_any_interview(small):
    """popularity ranks all items by count whatever the support: its recall@10 and nDCG@10
    are the same after every strategy's interview, as the held-out ratings are."""
    model = build_rec_baseline("popularity", small)
    results, _ = evaluate_onboarding(model, small, seeds=(0,))
    ranking = results[results["metric"].isin(["recall@10", "ndcg@10"])]
    spread = ranking.groupby(["task", "support_size", "metric"])["value"].agg(np.ptp)
    assert (spread < 1e-12).all()


def test_too_few_ratings_are_skipped_and_bad_options_refused(small):
    model = build_rec_baseline("item-mean", small)
    results, skipped = evaluate_onboarding(model, small, support_sizes=(5, 400),
                                           strategies=("popular",))
    assert set(results["support_size"]) <= {5, 400}
    big = skipped[skipped["support_size"] == 400]
    assert len(big) + results[results["support_size"] == 400]["task"].nunique() == 6
    assert (big["reason"].str.contains("ratings to ask about")).all()
    with pytest.raises(FewshotError, match="onboarding strategies"):
        evaluate_onboarding(model, small, strategies=("best",))
    with pytest.raises(FewshotError, match="support sizes must be 1 or more"):
        evaluate_onboarding(model, small, support_sizes=(0,))


def test_the_data_set_runs_it_by_name(small):
    model = build_rec_baseline("item-mean", small)
    rows, skipped = small.evaluate("onboarding", model, support_sizes=[5],
                                   strategies=["random", "informative"])
    assert set(rows["strategy"]) == {"random", "informative"} and skipped == 0
    assert set(rows["support_size"]) == {5} and rows["shots"].isna().all()
    with pytest.raises(FewshotError, match="has no onboarding strategies"):
        small.evaluate("cold-start", model, strategies=["random"])
