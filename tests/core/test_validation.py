"""core/validation.py: episode_validator, the default ``valid_fn`` of meta-training. Fixed
episodes drawn once (seeded per task and draw); mean ROC-AUC or minus RMSE over them; tasks
too small are skipped, classification queries with one class are not scored, NaN
predictions of a regression learner make the score NaN. Learners are stand-ins here: the
validator needs only ``kind`` and ``fit_predict`` (or ``fit_predict_many``)."""

from __future__ import annotations

import numpy as np
import pytest

from fewshot_apps.core.metrics import rmse, roc_auc
from fewshot_apps.core.tasks import BalancedSampler, RandomSampler, Task, derive_seed
from fewshot_apps.core.validation import episode_validator
from fewshot_apps.errors import FewshotError


def task(name: str, labels, start: int = 0) -> Task:
    labels = np.asarray(labels, dtype=np.float32)
    return Task(name, np.arange(start, start + len(labels), dtype=np.int64), labels)


class Oracle:
    """Predicts a fixed table of scores by example id; records the calls."""

    def __init__(self, kind: str, scores: np.ndarray):
        self.kind, self.scores, self.calls = kind, scores, []

    def fit_predict(self, support_ids, support_labels, query_ids):
        self.calls.append((np.asarray(support_ids).copy(), np.asarray(query_ids).copy()))
        return self.scores[np.asarray(query_ids)]


class Batched(Oracle):
    """Answers every episode in one call, as the vmap engine does."""

    def fit_predict_many(self, triples):
        self.batches = getattr(self, "batches", 0) + 1
        return [self.scores[np.asarray(q)] for _, _, q in triples]

    def fit_predict(self, *args):
        raise AssertionError("fit_predict_many answers all episodes")


CLASSES = [task("a", [0, 1] * 10), task("b", [1, 1, 0, 0] * 5, start=20)]
LABELS = np.r_[CLASSES[0].labels, CLASSES[1].labels]


def test_a_perfect_classifier_scores_one_and_an_inverted_one_zero():
    validate = episode_validator(CLASSES, BalancedSampler(2, n_query=6), n_draws=2, seed=0)
    assert validate(Oracle("classification", LABELS)) == 1.0
    assert validate(Oracle("classification", 1.0 - LABELS)) == 0.0


def test_the_score_is_the_mean_roc_auc_over_the_fixed_seeded_episodes():
    sampler = BalancedSampler(2, n_query=8)
    rng = np.random.default_rng(0)
    scores = rng.random(40)
    got = episode_validator(CLASSES, sampler, n_draws=3, seed=5)(Oracle("classification", scores))
    want = []
    for t in CLASSES:
        for draw in range(3):
            ep = sampler.sample(t, derive_seed(5, t.name, draw))
            if len(np.unique(ep.query_labels)) == 2:
                want.append(roc_auc(ep.query_labels, scores[ep.query_examples]))
    assert got == pytest.approx(float(np.mean(want)))


def test_every_call_sees_the_same_episodes_and_n_draws_per_task():
    validate = episode_validator(CLASSES, BalancedSampler(2, n_query=6), n_draws=3, seed=1)
    first, second = Oracle("classification", LABELS), Oracle("classification", LABELS)
    validate(first)
    validate(second)
    assert len(first.calls) == 6  # 2 tasks x 3 draws
    for (s1, q1), (s2, q2) in zip(first.calls, second.calls):
        assert np.array_equal(s1, s2) and np.array_equal(q1, q2)
    other = Oracle("classification", LABELS)
    episode_validator(CLASSES, BalancedSampler(2, n_query=6), n_draws=3, seed=2)(other)
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(first.calls, other.calls))


def test_tasks_too_small_for_the_sampler_are_skipped():
    tiny = task("tiny", [0, 1, 0], start=40)
    oracle = Oracle("classification", np.r_[LABELS, [0, 1, 0]])
    validate = episode_validator([*CLASSES, tiny], BalancedSampler(2, n_query=6), seed=0)
    assert validate(oracle) == 1.0
    assert len(oracle.calls) == 2 and all(q.max() < 40 for _, q in oracle.calls)


def test_no_episode_at_all_is_an_error_naming_the_sampler():
    with pytest.raises(FewshotError, match=r"no validation episode could be drawn from 1 tasks "
                       r"with BalancedSampler\(shots=5"):
        episode_validator([task("tiny", [0, 1, 0, 1])], BalancedSampler(5))


def test_queries_with_one_class_are_not_scored_and_none_scored_is_nan():
    # A support of one of each leaves a query of one class in a task of 1 positive, 3 negatives.
    one_class = [task("t", [1, 0, 0, 0]), task("u", [0, 0, 0, 1], start=4)]
    validate = episode_validator(one_class, BalancedSampler(1), n_draws=2)
    oracle = Oracle("classification", np.zeros(8))
    assert np.isnan(validate(oracle)) and len(oracle.calls) == 4


def test_regression_scores_minus_the_rmse():
    rng = np.random.default_rng(3)
    tasks = [Task(f"r{i}", np.arange(10 * i, 10 * i + 10), rng.normal(size=10).astype(np.float32))
             for i in range(2)]
    labels = np.concatenate([t.labels for t in tasks])
    sampler = RandomSampler(3, n_query=4)
    validate = episode_validator(tasks, sampler, seed=0)
    assert validate(Oracle("regression", labels)) == 0.0
    shifted = validate(Oracle("regression", labels + 2.0))
    assert shifted == pytest.approx(-2.0)
    eps = [sampler.sample(t, derive_seed(0, t.name, 0)) for t in tasks]
    noisy = labels + rng.normal(size=len(labels))
    want = np.mean([-rmse(ep.query_labels, noisy[ep.query_examples]) for ep in eps])
    assert validate(Oracle("regression", noisy)) == pytest.approx(want)


def test_a_nan_regression_prediction_makes_the_score_nan():
    tasks = [Task("r", np.arange(10), np.linspace(1, 5, 10).astype(np.float32))]
    scores = np.linspace(1, 5, 10)
    scores[:] = np.nan
    assert np.isnan(episode_validator(tasks, RandomSampler(3))(Oracle("regression", scores)))


def test_a_learner_that_predicts_many_episodes_at_once_is_asked_once():
    validate = episode_validator(CLASSES, BalancedSampler(2, n_query=6), n_draws=2, seed=0)
    learner = Batched("classification", LABELS)
    assert validate(learner) == 1.0 and learner.batches == 1
