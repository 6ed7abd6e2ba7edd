"""domains/recsys/adapter.py: RecsysTasks, the rating data set's side of the DomainDataset
protocol, on a tiny synthetic data set: no shots for ratings, the trainability message,
the minus-RMSE validator, evaluate (``max_tasks`` without touching the data set, refusals),
attach (refusing another user split or item vocabulary) and check_model_split."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from fewshot_apps.core.domain import DomainDataset
from fewshot_apps.core.encoders import TableEncoder
from fewshot_apps.core.learners import build_learner
from fewshot_apps.core.metrics import rmse
from fewshot_apps.core.persistence import save_model, task_record
from fewshot_apps.core.tasks import Task
from fewshot_apps.domains.recsys.adapter import (
    EPISODE_DEFAULTS,
    LEARNER_DEFAULTS,
    N_NEGATIVES,
    RESULT_COLUMNS,
)
from fewshot_apps.domains.recsys.config import ColdStartConfig
from fewshot_apps.domains.recsys.dataset import build_recsys_dataset
from fewshot_apps.domains.recsys.episodes import ColdStartSampler, unrated_items
from fewshot_apps.domains.recsys.readers import RatingScale, ReadReport, RecsysData
from fewshot_apps.domains.recsys.vocab import Vocabulary
from fewshot_apps.errors import FewshotError
from fewshot_apps.sources import Card

torch.set_num_threads(1)


def tiny_data(n_users: int = 16, seed: int = 3) -> RecsysData:
    """``n_users`` users rating 15-24 of 30 items, in turn; ratings 0.5-5."""
    rng = np.random.default_rng(seed)
    rows, t = [], 1_000_000_000
    for u in range(1, n_users + 1):
        for i in rng.choice(np.arange(1, 31), size=15 + u % 10, replace=False):
            t += int(rng.integers(1, 100))
            rows.append((u, int(i), float(rng.integers(1, 11)) / 2, float(t)))
    ratings = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    ratings = ratings.assign(rating=ratings["rating"].astype(np.float32),
                             line=np.arange(len(rows)) + 2)
    items = pd.DataFrame({"item": np.arange(1, 31), "title": [f"m{i}" for i in range(1, 31)],
                          "genres": ["Drama|Comedy"] * 30, "year": np.full(30, 2000.0)})
    return RecsysData("tiny", "interactions-csv", ratings, items, None, None,
                      RatingScale(0.5, 5.0, 0.5), ReadReport())


CONFIG = ColdStartConfig(split_fractions=(0.5, 0.25, 0.25), support_sizes=(5, 8), n_query=5,
                         min_eval_ratings=15, new_item_quantile=None)


@pytest.fixture(scope="module")
def ds():
    return build_recsys_dataset(tiny_data(), CONFIG)


class MeanLearner(torch.nn.Module):
    """Predicts each support's mean rating (or NaN); has an encoder, as learners do."""

    kind = "regression"

    def __init__(self, n_items: int, nan: bool = False):
        super().__init__()
        self.encoder = TableEncoder(torch.zeros(n_items, 2), hidden=2, out_dim=1, depth=1)
        self.nan = nan
        self.encoders_seen: set[str] = set()

    def fit_predict(self, support_ids, support_labels, query_ids):
        self.encoders_seen.add(type(self.encoder).__name__)
        value = np.nan if self.nan else float(np.mean(support_labels))
        return np.full(len(query_ids), value)


class Graphless:
    """A model whose encoder takes a graph (or refuses it, as a mismatched one)."""

    def __init__(self, saved_config=None, refuse: str | None = None):
        self.saved_config = saved_config
        self.model_path = "/models/m"
        refusal = refuse

        class Encoder:
            graph = None

            def set_graph(self, graph):
                if refusal:
                    raise ValueError(refusal)
                self.graph = graph

        self.encoder = Encoder()


def test_what_it_is(ds):
    assert isinstance(ds, DomainDataset)
    assert (ds.domain, ds.label_kind, ds.protocols) == ("recsys", "regression",
                                                        ("cold-start", "onboarding"))
    assert ds.episode_defaults == EPISODE_DEFAULTS == {
        "shots": None, "support_size": 10, "n_query": 10, "valid_draws": 1,
        "n_negatives": 50, "popular_negatives": 0.5}
    assert ds.validation_metric == "-RMSE"
    assert list(RESULT_COLUMNS) == ["task", "shots", "support_size", "item_split", "draw",
                                    "seed", "metric", "value"]
    assert ds.unvalidated_reason == "no validation user has 15 ratings"


def test_the_training_sampler_draws_support_size_ratings(ds):
    assert ds.train_sampler({"support_size": "6", "n_query": 4}) == ColdStartSampler(
        6, 4, n_negatives=N_NEGATIVES, n_items=len(ds.item_vocab))


def test_training_episodes_carry_unrated_negatives(ds):
    """The implicit objective's negatives: items the user did not rate, drawn after the
    support and query, so those are the evaluation sampler's for the same seed."""
    sampler = ds.train_sampler({"support_size": 6, "n_query": 4})
    task = ds.taskset.train[0]
    episode = sampler.sample(task, 3)
    negatives = episode.extras["negatives"]
    unrated = len(ds.item_vocab) - len(np.unique(task.examples))
    assert len(negatives) == min(N_NEGATIVES, unrated) and len(np.unique(negatives)) == len(negatives)
    assert not np.isin(negatives, task.examples).any()
    plain = ColdStartSampler(6, 4).sample(task, 3)
    assert "negatives" not in plain.extras
    assert np.array_equal(plain.support_examples, episode.support_examples)
    assert np.array_equal(plain.query_examples, episode.query_examples)


def test_a_share_of_negatives_is_drawn_by_popularity(ds):
    """``popular_negatives``: that share of the negatives drawn in proportion to how many
    meta-train users rated each item (never an item nobody rated), the rest uniformly; all
    of them distinct and unrated by the user."""
    counts = np.bincount(np.concatenate([t.examples for t in ds.taskset.train]),
                         minlength=len(ds.item_vocab))
    task = ds.taskset.train[0]
    for share in (0.0, 0.5, 1.0):
        sampler = ds.train_sampler({"support_size": 6, "n_query": 4, "popular_negatives": share})
        assert sampler.popular_negatives == share
        np.testing.assert_array_equal(sampler.item_counts, counts)
        negatives = sampler.sample(task, 3).extras["negatives"]
        assert len(np.unique(negatives)) == len(negatives)
        assert not np.isin(negatives, task.examples).any()
        if share == 1.0:
            assert (counts[negatives] > 0).all()
    rng = np.random.default_rng(0)
    weights = np.zeros(100)
    weights[:10] = 1.0
    tiny = Task("t", np.array([0, 1]), np.array([4.0, 3.0]))
    drawn = unrated_items(tiny, 100, 20, rng, popular_share=0.5, item_counts=weights)
    # 10 by popularity (only items 2..9 have a count, so 8 of them), the rest uniformly
    assert len(drawn) == 20 and set(range(2, 10)) <= set(drawn.tolist())
    with pytest.raises(FewshotError, match="popular_negatives"):
        ColdStartSampler(5, n_negatives=5, n_items=10, popular_negatives=1.5)
    with pytest.raises(FewshotError, match="item_counts"):
        ColdStartSampler(5, n_negatives=5, n_items=10, popular_negatives=0.5)


def test_popular_negatives_is_a_numeric_setting(ds):
    from fewshot_apps.core.fit import split_run_settings

    _, episode, _, _ = split_run_settings(ds, {"popular_negatives": "0.25", "n_query": "7"})
    assert episode["popular_negatives"] == 0.25 and episode["n_query"] == 7
    with pytest.raises(FewshotError, match="'popular_negatives' must be a number"):
        split_run_settings(ds, {"popular_negatives": "many"})


def test_the_learners_default_to_the_implicit_objective(ds):
    from fewshot_apps.core.fit import domain_learner_defaults

    assert ds.learner_defaults == LEARNER_DEFAULTS == {"rank_loss_weight": 1.0}
    assert domain_learner_defaults(ds, "cnp") == {"rank_loss_weight": 1.0}


@pytest.mark.parametrize("bad", [{"n_negatives": -1}, {"n_negatives": 5, "n_items": 0}])
def test_bad_negative_settings_are_refused(bad):
    with pytest.raises(FewshotError, match="n_negatives|n_items"):
        ColdStartSampler(5, **bad)


def test_shots_are_refused_for_ratings(ds):
    with pytest.raises(FewshotError, match=r"^tiny: ratings have no classes, so no shots; give "
                       r"the support size instead \(--support-size N, support_size=N\)$"):
        ds.check_trainable({"shots": 5, "support_size": None, "n_query": 10})


def test_episodes_that_some_meta_train_user_can_give_are_trainable(ds):
    largest = max(len(t) for t in ds.taskset.train)
    ds.check_trainable({"shots": None, "support_size": largest - 5, "n_query": 5})


def test_episodes_larger_than_every_meta_train_user_say_what_users_have(ds):
    sizes = [len(t) for t in ds.taskset.train]
    need = max(sizes) + 1
    with pytest.raises(FewshotError) as caught:
        ds.check_trainable({"shots": None, "support_size": need - 3, "n_query": 3})
    assert str(caught.value) == (
        f"tiny: no meta-train user has the {need} ratings a training episode needs "
        f"(support_size {need - 3} + n_query 3); its {len(sizes)} meta-train users have "
        f"{min(sizes)} to {max(sizes)} ratings. Use more ratings per user, or smaller episodes "
        "(--set support_size=... --set n_query=...)")


def test_the_trainability_message_names_a_users_own_file(ds, tmp_path):
    source = tmp_path / "mine.csv"
    mine = build_recsys_dataset(tiny_data(), CONFIG, card=Card(
        name="mine", domain="recsys", format="interactions-csv", root=tmp_path,
        files={"ratings": "mine.csv"}, source=source))
    with pytest.raises(FewshotError, match=rf"^{source}: no meta-train user has the 1000 "):
        mine.check_trainable({"support_size": 990, "n_query": 10})


def test_the_validator_is_minus_the_rmse_over_validation_episodes(ds):
    validate = ds.validator({"valid_draws": 2}, seed=4)
    learner = MeanLearner(len(ds.item_vocab))
    score = validate(learner)
    episodes = ds.evaluation_episodes("valid", seed=4, n_draws=2)
    assert episodes
    truth = np.concatenate([ep.query_labels for ep in episodes])
    guess = np.concatenate([np.full(len(ep.query_labels), ep.support_labels.mean())
                            for ep in episodes])
    assert score == pytest.approx(-rmse(truth, guess)) and score < 0
    assert learner.encoders_seen == {"FrozenTrunk"} and learner.training
    assert validate(learner) == score  # the same episodes every time


def test_nan_predictions_validate_as_nan(ds):
    assert np.isnan(ds.validator({"valid_draws": 1}, 0)(MeanLearner(len(ds.item_vocab), True)))


def test_no_validation_user_with_enough_ratings_is_an_error():
    strict = build_recsys_dataset(tiny_data(), CONFIG.with_(min_eval_ratings=500))
    with pytest.raises(FewshotError, match="^tiny: no validation user has enough ratings$"):
        strict.validator({"valid_draws": 1}, 0)


def test_evaluate_gives_tidy_rows_without_shots(ds):
    rows, skipped = ds.evaluate("cold-start", MeanLearner(len(ds.item_vocab)), seeds=(0,))
    assert list(rows.columns) == RESULT_COLUMNS and rows["shots"].isna().all()
    assert set(rows["task"]) == {t.name for t in ds.taskset.test}
    assert set(rows["support_size"]) == {5, 8} and isinstance(skipped, int)
    assert {"mae", "rmse"} <= set(rows["metric"])


def test_max_tasks_scores_the_first_users_and_leaves_the_data_set_whole(ds):
    test_users = list(ds.taskset.test)
    rows, _ = ds.evaluate("cold-start", MeanLearner(len(ds.item_vocab)), split="valid",
                          max_tasks=1, seeds=(0,))
    assert set(rows["task"]) == {ds.taskset.valid[0].name}
    assert ds.taskset.test == test_users and len(ds.taskset.valid) > 1


def test_evaluate_refuses_another_protocol_and_a_split_without_evaluable_users(ds):
    with pytest.raises(FewshotError, match=r"protocol 'k-shot' does not apply to tiny "
                       r"\(ratings: cold-start, onboarding\)"):
        ds.evaluate("k-shot", MeanLearner(len(ds.item_vocab)))
    strict = build_recsys_dataset(tiny_data(), CONFIG.with_(min_eval_ratings=500))
    with pytest.raises(FewshotError, match=r"^tiny: no test user has the 500 ratings "
                       r"evaluation needs, so there is nothing to score"):
        strict.evaluate("cold-start", MeanLearner(len(strict.item_vocab)))


# --------------------------------------------------------------------------- attach


def test_attach_gives_the_model_the_graph_of_its_own_data(ds):
    model = Graphless({"train_users_sha256": ds.split_fingerprint(),
                       "item_vocab": ds.item_vocab.to_dict()})
    ds.attach(model)
    assert model.encoder.graph is ds.graph and model.rec_dataset is ds
    bare = Graphless()  # nothing recorded: nothing to check
    ds.attach(bare, "/models/bare")
    assert bare.rec_dataset is ds


def test_attach_refuses_another_user_split(ds):
    other = build_recsys_dataset(tiny_data(), CONFIG.with_(seed=1))
    assert other.split_fingerprint() != ds.split_fingerprint()
    model = Graphless({"train_users_sha256": other.split_fingerprint(),
                       "cold_start": {"seed": 1}})
    with pytest.raises(FewshotError, match=r"^/saved: the model was trained on another user "
                       r"split of tiny than this one \(cold-start settings at training: "
                       r"\{'seed': 1\}\)"):
        ds.attach(model, "/saved")
    assert model.encoder.graph is None and not hasattr(model, "rec_dataset")


def test_attach_names_the_data_set_a_model_of_another_one_was_trained_on(ds):
    """A model of another data set is not called "another user split" of this one."""
    other = build_recsys_dataset(tiny_data(), CONFIG.with_(seed=1))
    model = Graphless({"train_users_sha256": other.split_fingerprint(), "dataset": "ratings",
                       "dataset_source": "/data/ratings.csv"})
    with pytest.raises(FewshotError, match=r"^/saved: the model was trained on ratings "
                       r"\(/data/ratings.csv\), not on tiny: its users differ"):
        ds.attach(model, "/saved")


def test_a_model_saves_its_rating_scale_and_attach_refuses_another(ds):
    assert ds.saved_model_config()["rating_scale"] == {"low": 0.5, "high": 5.0, "step": 0.5}
    same = Graphless({"rating_scale": ds.saved_model_config()["rating_scale"]})
    ds.attach(same, "/saved")
    assert same.rec_dataset is ds
    model = Graphless({"rating_scale": {"low": 1.0, "high": 10.0, "step": 1.0}})
    with pytest.raises(FewshotError, match=r"^/saved: the model predicts ratings on a scale of "
                       r"1-10 in steps of 1, tiny's scale is 0.5-5.0"):
        ds.attach(model, "/saved")


def test_attach_refuses_another_item_vocabulary(ds):
    model = Graphless({"item_vocab": Vocabulary("item", [1, 2, 3]).to_dict()})
    with pytest.raises(FewshotError, match=r"^/models/m: the model's item vocabulary \(3 items\) "
                       r"differs from tiny's \(30 items\)"):
        ds.attach(model)


def test_a_graph_the_encoder_refuses_is_a_fewshot_error(ds):
    with pytest.raises(FewshotError, match=r"^/models/m: 5 genres, not 2; use the data set the "
                       r"model was trained on$"):
        ds.attach(Graphless(refuse="5 genres, not 2"))


# --------------------------------------------------------------------------- model split


def saved(ds, path, train, valid=(), **config):
    learner = build_learner("attention", TableEncoder(torch.zeros(4, 2), hidden=2, out_dim=2),
                            "regression")
    return save_model(learner, path, {"tasks": task_record(train, valid), **config})


def test_a_model_of_this_data_set_trained_on_its_test_users_is_refused(ds, tmp_path):
    ts = ds.taskset
    path = saved(ds, tmp_path / "m", [*ts.train, ts.test[0]], ts.valid, dataset="tiny")
    with pytest.raises(FewshotError, match=rf"was trained on 1 of the suite s's "
                       rf"{len(ts.test)} test users \({ts.test[0].name}\)"):
        ds.check_model_split(path, "s")
    clean = saved(ds, tmp_path / "c", ts.train, ts.valid, dataset="tiny")
    assert ds.check_model_split(clean, "s") is True


def test_another_data_sets_model_is_not_compared_by_user_names(ds, tmp_path):
    ts = ds.taskset
    path = saved(ds, tmp_path / "m", ts.test, (), dataset="other-set")
    assert ds.check_model_split(path, "s") is True


def test_a_recorded_user_split_counts_as_checked_without_a_warning(ds, tmp_path):
    learner = build_learner("attention", TableEncoder(torch.zeros(4, 2), hidden=2, out_dim=2),
                            "regression")
    old = save_model(learner, tmp_path / "old", {"dataset": "tiny"})
    with pytest.warns(UserWarning, match="records no training split"):
        assert ds.check_model_split(old, "s") is False
    fingerprinted = save_model(learner, tmp_path / "fp", {
        "dataset": "tiny", "train_users_sha256": ds.split_fingerprint()})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ds.check_model_split(fingerprinted, "s") is True
