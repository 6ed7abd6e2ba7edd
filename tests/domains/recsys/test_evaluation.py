"""The cold-start protocol: hand-made episodes, a tiny data set with an oracle, ml-latest-small."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fewshot_apps.core.evaluation import FrozenTrunk
from fewshot_apps.core.tasks import Episode, Task
from fewshot_apps.domains.recsys.baselines import build_rec_baseline
from fewshot_apps.domains.recsys.config import ColdStartConfig
from fewshot_apps.domains.recsys.dataset import build_recsys_dataset
from fewshot_apps.domains.recsys.episodes import graded_gain, relevant
from fewshot_apps.domains.recsys.evaluation import (
    ALL_ITEM_METRICS,
    ITEM_SPLITS,
    QUERY_METRICS,
    RESULT_COLUMNS,
    SKIPPED_COLUMNS,
    candidate_items,
    episode_metrics,
    evaluate_cold_start,
    summarize_cold_start,
)
from fewshot_apps.domains.recsys.readers import RatingScale, ReadReport, RecsysData
from fewshot_apps.errors import FewshotError

METRICS = set(QUERY_METRICS + ALL_ITEM_METRICS)


# ----------------------------------------------------------------------------------------
# hand-made episodes


def make_episode(items, ratings, support, query, new_mask) -> Episode:
    """An episode with the sampler's extras; held-out = every non-support rating."""
    task = Task("u", np.asarray(items), np.asarray(ratings, dtype=np.float32))
    heldout = np.setdiff1d(np.arange(len(items)), support)
    labels = task.labels
    return Episode.from_positions(
        task, support, query,
        heldout_examples=task.examples[heldout],
        heldout_relevant=relevant(labels[heldout]),
        query_relevant=relevant(labels[query]),
        query_gain=graded_gain(labels[query]),
        query_new_item=np.asarray(new_mask)[task.examples[query]],
    )  # fmt: skip


def as_dict(values) -> dict:
    return {(split, metric): v for split, metric, v in values}


def test_all_item_recall_of_a_model_that_finds_the_held_out_items():
    n_items = 50
    items = np.arange(20)
    ratings = np.r_[np.full(8, 4.5), np.full(12, 2.0)]  # items 0..7 relevant
    ep = make_episode(items, ratings, [8, 9], np.arange(10, 20), np.zeros(n_items, bool))
    cand = candidate_items(n_items, ep.support_examples)
    assert len(cand) == 48 and not np.isin([8, 9], cand).any()
    oracle = np.where(np.isin(cand, np.arange(8)), 1.0, 0.0)  # relevant held-out on top
    values, skipped = episode_metrics(ep, cand, oracle, np.zeros(n_items, bool), ["all"])
    got = as_dict(values)
    assert got["all", "recall@10"] == 1.0 and got["all", "ndcg@10"] == pytest.approx(1.0)
    # The 10-item query holds no relevant item: precision@5 is skipped, the rest is scored.
    assert ("all", "precision@5", "no relevant query item") in skipped
    assert got["all", "mae"] == pytest.approx(2.0) and got["all", "rmse"] == pytest.approx(2.0)
    # Items the user never rated count as irrelevant: ranking them first finds nothing.
    unrated_first = np.where(cand >= 20, 1.0, 0.0)
    got = as_dict(episode_metrics(ep, cand, unrated_first, np.zeros(n_items, bool), ["all"])[0])
    assert got["all", "recall@10"] == 0.0 and got["all", "ndcg@10"] == 0.0


def test_all_item_recall_with_more_relevant_items_than_the_cut_off():
    n_items = 30
    items = np.arange(16)
    ratings = np.r_[np.full(14, 5.0), 1.0, 1.0]  # 14 relevant, 2 of them in the support
    ep = make_episode(items, ratings, [0, 1], np.arange(2, 12), np.zeros(n_items, bool))
    cand = candidate_items(n_items, ep.support_examples)
    oracle = np.where(np.isin(cand, np.arange(14)), 1.0, 0.0) + 0.01 * (cand < 16)
    got = as_dict(episode_metrics(ep, cand, oracle, np.zeros(n_items, bool), ["all"])[0])
    assert got["all", "recall@10"] == pytest.approx(10 / 12)
    assert got["all", "ndcg@10"] == pytest.approx(1.0)
    assert got["all", "precision@5"] == 1.0 and got["all", "ndcg@5"] == pytest.approx(1.0)


def test_existing_and_new_items_are_scored_apart():
    n_items = 30
    new = np.zeros(n_items, bool)
    new[20:] = True
    items = np.r_[np.arange(10), [20, 21, 22]]
    ratings = np.r_[np.full(10, 3.0), 5.0, 4.0, 2.0]  # only new items 20, 21 are relevant
    query = np.r_[np.arange(2, 8), 10, 11, 12]
    ep = make_episode(items, ratings, [0, 1], query, new)
    cand = candidate_items(n_items, ep.support_examples)
    # Every existing item above every new one; among new items the relevant ones first.
    scores = np.where(~new[cand], 10.0, np.where(np.isin(cand, [20, 21]), 5.0, 0.0))
    values, skipped = episode_metrics(ep, cand, scores, new)
    got = as_dict(values)
    assert got["all", "recall@10"] == 0.0  # 28 existing candidates fill the top 10
    assert got["new", "recall@10"] == 1.0 and got["new", "ndcg@10"] == pytest.approx(1.0)
    assert ("existing", "recall@10", "no relevant held-out item") in skipped
    assert ("existing", "precision@5", "no relevant query item") in skipped
    # The query restricted to new items: 3 items, ratings 5 / 4 / 2 predicted 5 / 5 / 0.
    assert got["new", "mae"] == pytest.approx((0 + 1 + 2) / 3)
    assert got["new", "precision@5"] == pytest.approx(2 / 3)
    assert got["existing", "mae"] == pytest.approx(7.0)
    n_scored = sum(1 for s, _, _ in values if s == "existing")
    assert n_scored + sum(1 for s, _, _ in skipped if s == "existing") == len(METRICS)


def test_episode_metrics_rejects_support_items_among_the_candidates():
    ep = make_episode(np.arange(12), np.full(12, 4.0), [0, 1], np.arange(2, 12), np.zeros(20, bool))
    with pytest.raises(FewshotError, match="support item"):
        episode_metrics(ep, np.arange(20), np.zeros(20), np.zeros(20, bool))
    with pytest.raises(FewshotError, match="query item"):
        episode_metrics(ep, np.arange(12, 20), np.zeros(8), np.zeros(20, bool))


# ----------------------------------------------------------------------------------------
# a tiny data set, end to end


def tiny_dataset():
    """12 users rating 15-24 of 40 items in turn (user 1 first); items 41-45 are rated by
    the last three users only, so they are new items. 3 test users; support sizes 5 and 18
    (users with fewer than 18 + 5 ratings cannot serve the latter)."""
    rng = np.random.default_rng(3)
    rows, t = [], 1_000_000_000
    for u in range(1, 13):
        rated = rng.choice(np.arange(1, 41), size=15 + u % 10, replace=False)
        if u >= 10:
            rated = np.r_[rated, np.arange(41, 46)]
        for i in rated:
            t += int(rng.integers(1, 100))
            rows.append((u, int(i), float(rng.integers(1, 11)) / 2, float(t)))
    ratings = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    ratings = ratings.assign(rating=ratings["rating"].astype(np.float32), line=np.arange(len(rows)) + 2)
    items = pd.DataFrame({"item": np.arange(1, 46), "title": [f"m{i}" for i in range(1, 46)],
                          "genres": ["Drama"] * 45, "year": np.full(45, 2000.0)})
    data = RecsysData("tiny", "interactions-csv", ratings, items, None, None,
                      RatingScale(0.5, 5.0, 0.5), ReadReport())
    config = ColdStartConfig(split_fractions=(0.5, 0.25, 0.25), support_sizes=(5, 18),
                             n_query=5, min_eval_ratings=15, new_item_quantile=0.7)
    return build_recsys_dataset(data, config)


class Oracle:
    """Knows every user's ratings; finds the user from the support, predicts the truth (0 for
    unrated items), so it ranks the user's best items first."""

    name = "oracle"

    def __init__(self, ds):
        i = ds.interactions
        self.truth = {u: dict(zip(g["item_index"], g["rating"])) for u, g in i.groupby("user")}

    def fit_predict(self, support_ids, support_ratings, query_ids):
        users = [u for u, r in self.truth.items()
                 if all(r.get(int(i)) == y for i, y in zip(support_ids, support_ratings))]
        assert len(users) == 1
        return np.array([self.truth[users[0]].get(int(i), 0.0) for i in query_ids])


def test_protocol_on_a_tiny_data_set_with_an_oracle():
    ds = tiny_dataset()
    results, skipped = evaluate_cold_start(Oracle(ds), ds, "test", seeds=(0, 1), draws=2)
    assert list(results.columns) == RESULT_COLUMNS and list(skipped.columns) == SKIPPED_COLUMNS
    assert set(results["seed"]) == {0, 1} and set(results["draw"]) == {0, 1}
    assert {"all", "existing", "new"} == set(results["item_split"])
    v = results.set_index(["item_split", "metric"])["value"]
    assert (v.loc[:, "mae"] == 0).all() and (v.loc[:, "rmse"] == 0).all()
    for metric in ("ndcg@5", "ndcg@10"):
        np.testing.assert_allclose(v.loc[:, metric], 1.0)
    # Recall@10 of a perfect ranking: min(10, R) / R with R relevant held-out items.
    for ep in ds.evaluation_episodes("test", seed=0, n_draws=1):
        n_rel = int(ep.extras["heldout_relevant"].sum())
        if n_rel:
            row = results.query(
                "task == @ep.task and support_size == @ep.support_size and seed == 0 and "
                "draw == 0 and item_split == 'all' and metric == 'recall@10'"
            )
            assert row["value"].item() == pytest.approx(min(10, n_rel) / n_rel)
    # Users too small for an 18-shot support (18 + 5 query ratings) are counted, not scored.
    small = [t.name for t in ds.taskset.test if len(t) < 23]
    assert small
    whole = skipped[skipped["metric"] == "*"]
    assert sorted(set(whole["task"])) == sorted(small)
    assert len(whole) == len(small) * 2 * 2  # seeds x draws
    summary = summarize_cold_start(results)
    assert list(summary.columns) == ["support_size", "item_split", "metric", "mean", "std", "n_users"]
    assert summary["n_users"].max() <= len(ds.taskset.test)


class TinyEncoder(torch.nn.Module):
    out_dim = 1

    def __init__(self, n_items: int):
        super().__init__()
        self.emb = torch.nn.Embedding(n_items, 1)

    def forward(self, ids):
        return self.emb(ids)


class TinyLearner(torch.nn.Module):
    """A learner whose score is its encoder's output; records which encoder answered."""

    name = "tiny"

    def __init__(self, n_items: int):
        super().__init__()
        self.encoder = TinyEncoder(n_items)
        self.seen: list[str] = []

    def fit_predict(self, support_ids, support_labels, query_ids):
        self.seen.append(type(self.encoder).__name__)
        with torch.no_grad():
            return self.encoder(torch.as_tensor(query_ids))[:, 0]


def test_learners_with_an_encoder_are_encoded_once():
    ds = tiny_dataset()
    learner = TinyLearner(len(ds.item_vocab))
    original = learner.encoder
    results, _ = evaluate_cold_start(learner, ds, "test")
    assert set(learner.seen) == {FrozenTrunk.__name__}
    assert learner.encoder is original and learner.training
    assert len(results) and np.isfinite(results["value"]).all()
    learner.seen.clear()
    evaluate_cold_start(learner, ds, "test", encode_once=False)
    assert set(learner.seen) == {"TinyEncoder"}


# ----------------------------------------------------------------------------------------
# ml-latest-small


class Recording:
    """Wraps a model and keeps every (support, query) it is asked about."""

    def __init__(self, model):
        self.model, self.calls = model, []

    def fit_predict(self, support_ids, support_labels, query_ids):
        self.calls.append((np.asarray(support_ids).copy(), np.asarray(query_ids).copy()))
        return self.model.fit_predict(support_ids, support_labels, query_ids)


@pytest.fixture(scope="module")
def ml_run(ml_small):
    model = Recording(build_rec_baseline("item-mean", ml_small))
    results, skipped = evaluate_cold_start(model, ml_small, "test")
    return model, results, skipped


def test_protocol_columns_metrics_and_ranges(ml_run, ml_small):
    _, results, skipped = ml_run
    assert list(results.columns) == RESULT_COLUMNS and list(skipped.columns) == SKIPPED_COLUMNS
    assert set(results["metric"]) == METRICS
    assert set(results["item_split"]) == set(ITEM_SPLITS)
    assert set(results["support_size"]) == {5, 10, 20}
    assert np.isfinite(results["value"]).all()
    errors = results[results["metric"].isin(["mae", "rmse"])]["value"]
    assert (errors >= 0).all() and (errors <= 4.5).all()
    ranking = results[~results["metric"].isin(["mae", "rmse"])]["value"]
    assert (ranking >= 0).all() and (ranking <= 1 + 1e-9).all()
    wide = results.pivot_table(index=["task", "support_size", "item_split"], columns="metric",
                               values="value").dropna(subset=["mae"])
    assert (wide["rmse"] >= wide["mae"] - 1e-9).all()
    # Every test user at every support size is scored on the query of all items.
    n_test = len(ml_small.taskset.test)
    counts = results.query("item_split == 'all' and metric == 'mae'").groupby("support_size").size()
    assert (counts == n_test).all()
    # New-item rows exist for both views, and each (episode, split, metric) is either scored
    # or skipped with a reason.
    new = results[results["item_split"] == "new"]
    assert {"mae", "recall@10"} <= set(new["metric"])
    assert len(results) + len(skipped) == 3 * n_test * len(ITEM_SPLITS) * len(METRICS)
    assert (skipped["reason"].str.len() > 0).all()


def test_support_and_candidates_are_disjoint(ml_run, ml_small):
    model, results, _ = ml_run
    n_items = len(ml_small.item_vocab)
    assert len(model.calls) == 3 * len(ml_small.taskset.test)  # one call per episode
    for support, query in model.calls:
        assert not np.isin(query, support).any()
        assert len(query) == n_items - len(support) and len(np.unique(query)) == len(query)


def test_summary_means_over_users(ml_run):
    _, results, _ = ml_run
    summary = summarize_cold_start(results)
    assert len(summary) == len(results.groupby(["support_size", "item_split", "metric"]))
    row = summary.query("support_size == 10 and item_split == 'all' and metric == 'mae'")
    expected = results.query("support_size == 10 and item_split == 'all' and metric == 'mae'")
    assert row["mean"].item() == pytest.approx(expected["value"].mean())
    assert row["n_users"].item() == len(expected)
    assert 0.6 < row["mean"].item() < 0.9
    assert list(summary["item_split"].unique()) == list(ITEM_SPLITS)


# ----------------------------------------------------------------------------------------
# prediction intervals (coverage@90, interval_width)


def test_interval_metrics_of_one_episode_by_item_split():
    from fewshot_apps.core.calibration import Calibration
    from fewshot_apps.domains.recsys.evaluation import INTERVAL_METRICS, interval_metrics

    n_items = 30
    items = np.arange(14)
    ratings = np.r_[np.full(4, 4.0), np.arange(10) * 0.5]  # query ratings 0, .5, ... 4.5
    new = np.zeros(n_items, bool)
    new[10:14] = True  # the last four query items are new
    ep = make_episode(items, ratings, [0, 1, 2, 3], np.arange(4, 14), new)
    cand = candidate_items(n_items, ep.support_examples)
    scores = np.full(len(cand), 2.0)  # predicts 2.0 everywhere
    cal = Calibration("conformal", {"level": 0.9, "half_width": 1.0})
    values, skipped = interval_metrics(ep, cand, scores, new, cal.interval)
    got = as_dict(values)
    # inside [1, 3]: 1, 1.5, 2, 2.5, 3 of the ten query ratings
    assert got["all", "coverage@90"] == pytest.approx(0.5)
    assert got["existing", "coverage@90"] == pytest.approx(4 / 6)  # of 0 .5 1 1.5 2 2.5
    assert got["new", "coverage@90"] == pytest.approx(1 / 4)  # 3 3.5 4 4.5
    assert all(got[s, "interval_width"] == pytest.approx(2.0) for s in ITEM_SPLITS)
    assert skipped == [] and set(INTERVAL_METRICS) == {m for _, m in got}


def test_the_protocol_reports_coverage_for_a_model_with_an_interval_only():
    from fewshot_apps.core.calibration import Calibration

    ds = tiny_dataset()
    oracle = Oracle(ds)
    plain, _ = evaluate_cold_start(oracle, ds, "test")
    assert not {"coverage@90", "interval_width"} & set(plain["metric"])
    oracle.calibration = Calibration("conformal", {"level": 0.9, "half_width": 0.25})
    results, _ = evaluate_cold_start(oracle, ds, "test")
    v = results.set_index(["item_split", "metric"])["value"]
    np.testing.assert_allclose(v.loc[:, "coverage@90"], 1.0)  # the truth is always inside
    np.testing.assert_allclose(v.loc[:, "interval_width"], 0.5)
    assert (results.drop(columns="value").merge(plain.drop(columns="value")).shape[0]
            == len(plain))  # the other rows unchanged


def test_a_meta_learner_ranks_with_the_ratings_the_evaluation_already_predicted():
    """The cold-start evaluation hands its predictions to fit_rank, so a learner mixing
    who-watches score and rating predicts every candidate once, not twice."""
    from types import SimpleNamespace

    from fewshot_apps.domains.recsys.evaluation import _rank_scores

    seen = {}

    class Mixing:
        rank_share = 0.5

        def fit_rank(self, support, labels, candidates, *, predicted=None):
            seen["predicted"] = predicted
            return np.arange(len(candidates), dtype=np.float64)

    episode = SimpleNamespace(support_examples=np.array([0]), support_labels=np.array([4.0]))
    candidates = np.array([1, 2, 3])
    ratings = np.array([3.0, 4.0, 5.0])
    assert _rank_scores(Mixing(), episode, candidates, ratings).tolist() == [0.0, 1.0, 2.0]
    assert seen["predicted"] is ratings
