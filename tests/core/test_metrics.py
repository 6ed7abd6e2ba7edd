"""Metrics agree with scikit-learn where it has them, and with hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    average_precision_score,
    mean_absolute_error,
    mean_squared_error,
    ndcg_score,
    roc_auc_score,
)

from fewshot_apps.core.evaluation import classification_metrics
from fewshot_apps.core.metrics import (
    OneClassError,
    auprc,
    delta_auprc,
    mae,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    rmse,
    roc_auc,
)


def _binary(seed: int, n: int = 50, tied: bool = False):
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.3).astype(np.float32)
    labels[:2] = [0, 1]
    scores = labels + rng.standard_normal(n)
    if tied:
        scores = np.round(scores)  # a handful of distinct values: many ties
    return labels, scores


@pytest.mark.parametrize("seed,tied", [(0, False), (1, False), (2, True)])
def test_classification_metrics_match_sklearn(seed, tied):
    labels, scores = _binary(seed, tied=tied)
    assert roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))
    assert auprc(labels, scores) == pytest.approx(average_precision_score(labels, scores))
    assert delta_auprc(labels, scores) == pytest.approx(
        average_precision_score(labels, scores) - labels.mean()
    )
    assert classification_metrics(labels, scores) == pytest.approx(
        {
            "roc_auc": roc_auc_score(labels, scores),
            "auprc": average_precision_score(labels, scores),
            "delta_auprc": average_precision_score(labels, scores) - labels.mean(),
        }
    )


def test_perfect_and_chance_rankings():
    labels = np.array([0, 0, 1, 1])
    assert roc_auc(labels, [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert delta_auprc(labels, [0.1, 0.2, 0.8, 0.9]) == pytest.approx(0.5)
    assert roc_auc(labels, np.zeros(4)) == 0.5  # constant scores


@pytest.mark.parametrize("fn", [roc_auc, auprc, delta_auprc, classification_metrics])
@pytest.mark.parametrize("labels", [[0, 0, 0], [1, 1, 1]])
def test_one_class_labels_raise(fn, labels):
    with pytest.raises(OneClassError, match="one class"):
        fn(np.array(labels), np.array([0.1, 0.5, 0.9]))
    assert issubclass(OneClassError, ValueError)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="0/1"):
        roc_auc([0, 2, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="length"):
        auprc([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="NaN"):
        roc_auc([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError, match="empty"):
        mae([], [])
    with pytest.raises(ValueError, match="1-D"):
        rmse(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="k must"):
        ndcg_at_k([1, 2], [0.1, 0.2], k=0)
    with pytest.raises(ValueError, match="non-negative"):
        ndcg_at_k([-1, 2], [0.1, 0.2])


def test_regression_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    y, p = rng.uniform(1, 5, 30), rng.uniform(1, 5, 30)
    assert mae(y, p) == pytest.approx(mean_absolute_error(y, p))
    assert rmse(y, p) == pytest.approx(np.sqrt(mean_squared_error(y, p)))
    assert mae([1.0, 2.0], [2.0, 4.0]) == 1.5
    assert rmse([1.0, 2.0], [2.0, 4.0]) == pytest.approx(np.sqrt(2.5))


@pytest.mark.parametrize("k", [1, 3, 5, 10, 100])
@pytest.mark.parametrize("tied", [False, True])
def test_ndcg_matches_sklearn_with_the_same_gains(k, tied):
    rng = np.random.default_rng(k)
    ratings = rng.integers(1, 6, 20).astype(float)
    gains = 2.0**ratings - 1
    scores = ratings + rng.standard_normal(20)
    if tied:
        scores = np.round(scores / 2)
    expected = ndcg_score(gains[None], scores[None], k=k)
    assert ndcg_at_k(gains, scores, k=k) == pytest.approx(expected)


def test_ndcg_hand_computed_and_undefined():
    # ranking by scores: gains 1, 3, 0 -> DCG@2 = 1/log2(2) + 3/log2(3); ideal 3 + 1/log2(3)
    got = ndcg_at_k([0.0, 3.0, 1.0], [0.1, 0.5, 0.9], k=2)
    assert got == pytest.approx((1 + 3 / np.log2(3)) / (3 + 1 / np.log2(3)))
    assert ndcg_at_k([0.0, 3.0, 1.0], [0.1, 0.9, 0.5]) == 1.0
    assert np.isnan(ndcg_at_k([0.0, 0.0], [0.3, 0.1]))  # nothing to gain


def test_precision_and_recall_at_k_hand_computed():
    ratings = np.array([5, 1, 4, 2, 3, 5])  # relevant (>= 4): positions 0, 2, 5
    scores = np.array([0.9, 0.8, 0.1, 0.7, 0.6, 0.5])  # ranking: 0, 1, 3, 4, 5, 2
    assert precision_at_k(ratings, scores, k=1, threshold=4) == 1.0
    assert precision_at_k(ratings, scores, k=2, threshold=4) == 0.5
    assert precision_at_k(ratings, scores, k=5, threshold=4) == pytest.approx(2 / 5)
    assert recall_at_k(ratings, scores, k=2, threshold=4) == pytest.approx(1 / 3)
    assert recall_at_k(ratings, scores, k=5, threshold=4) == pytest.approx(2 / 3)
    assert recall_at_k(ratings, scores, k=6, threshold=4) == 1.0
    # fewer items than k: precision over the items there are
    assert precision_at_k([1, 0], [0.2, 0.1], k=10) == 0.5
    # binary labels with the default threshold
    assert precision_at_k([0, 1, 1], [0.3, 0.2, 0.1], k=1) == 0.0


def test_ranking_ties_count_by_expectation():
    # the 2nd and 3rd items tie for the last top-2 slot: half a hit, whatever their order
    labels = np.array([1, 1, 0])
    assert precision_at_k(labels, [0.9, 0.5, 0.5], k=2) == pytest.approx(0.75)
    assert precision_at_k(labels[[0, 2, 1]], [0.9, 0.5, 0.5], k=2) == pytest.approx(0.75)
    assert recall_at_k(labels, [0.9, 0.5, 0.5], k=2) == pytest.approx(0.75)
    assert precision_at_k(labels, np.zeros(3), k=1) == pytest.approx(2 / 3)


def test_ranking_without_relevant_items():
    assert np.isnan(recall_at_k([1, 2, 3], [0.1, 0.2, 0.3], k=2, threshold=4))
    assert precision_at_k([1, 2, 3], [0.1, 0.2, 0.3], k=2, threshold=4) == 0.0


def test_brier_and_ece_on_known_examples():
    from fewshot_apps.core.metrics import brier, ece

    labels = np.array([1, 0, 1, 0])
    assert brier(labels, np.array([1.0, 0.0, 1.0, 0.0])) == 0.0
    assert brier(labels, np.full(4, 0.5)) == pytest.approx(0.25)
    # all in one bin (0.5 .. 0.5667): observed rate 0.5, mean prediction 0.5 -> calibrated
    assert ece(labels, np.full(4, 0.5)) == pytest.approx(0.0)
    # bin of 0.9 holds labels 1, 0 (rate 0.5): |0.5 - 0.9| weighted 2/4; bin of 0.1 holds
    # 1, 0: |0.5 - 0.1| weighted 2/4
    assert ece(labels, np.array([0.9, 0.9, 0.1, 0.1])) == pytest.approx(0.4)
    assert ece(np.array([1]), np.array([1.0])) == 0.0  # a probability of 1 is in the last bin
    with pytest.raises(ValueError, match="probabilities in \\[0, 1\\]"):
        brier(labels, np.array([2.0, 0, 0, 0]))


def test_classification_metrics_add_calibration_only_for_probabilities():
    from fewshot_apps.core.evaluation import classification_metrics

    labels = np.array([1, 0, 1, 0])
    probs = classification_metrics(labels, np.array([0.8, 0.3, 0.6, 0.1]))
    assert set(probs) == {"roc_auc", "auprc", "delta_auprc", "brier", "ece", "ece_floor"}
    assert probs["brier"] == pytest.approx(np.mean([0.04, 0.09, 0.16, 0.01]))
    logits = classification_metrics(labels, np.array([2.0, -1.0, 0.5, -3.0]))
    assert set(logits) == {"roc_auc", "auprc", "delta_auprc"}


def test_ece_floor_is_the_finite_sample_ece_of_exact_probabilities():
    """Labels drawn from the probabilities themselves still score an ECE above 0 on a small
    sample; ece_floor estimates it (seeded: the same inputs give the same floor), and it
    shrinks like 1 / sqrt(n) as the query grows."""
    from fewshot_apps.core.metrics import ece, ece_floor

    rng = np.random.default_rng(3)
    small, large = rng.uniform(0, 1, 300), rng.uniform(0, 1, 30_000)
    observed = [ece((rng.random(300) < small).astype(float), small) for _ in range(400)]
    floor = ece_floor(np.zeros(300), small)
    assert floor == ece_floor(np.ones(300), small)  # labels only fix the count
    assert floor == pytest.approx(np.mean(observed), rel=0.1)
    assert 0.04 < floor < 0.12
    assert ece_floor(np.zeros(30_000), large) < floor / 5
    # predictions of exactly 0 or 1 have no label noise at all
    assert ece_floor(np.array([0.0, 1.0]), np.array([0.0, 1.0])) == 0.0
    with pytest.raises(ValueError, match="probabilities in \\[0, 1\\]"):
        ece_floor(np.zeros(2), np.array([0.5, 1.5]))
