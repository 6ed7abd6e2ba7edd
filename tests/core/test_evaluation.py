"""The evaluation protocols: sizes, stratification, seeds, skipped draws, encode-once."""

import numpy as np
import pytest
import torch

from fewshot_apps.core.encoders import TableEncoder
from fewshot_apps.core.evaluation import (
    encoded_once,
    evaluate_classification,
    fsmol_protocol,
    k_shot_protocol,
    summarize,
)
from fewshot_apps.core.learners import build_learner
from fewshot_apps.core.tasks import StratifiedSampler, Task


class Recorder:
    """A model that scores by example id and remembers every support set it saw."""

    def __init__(self):
        self.supports = []

    def fit_predict(self, support_ids, support_labels, query_ids):
        self.supports.append((np.asarray(support_ids).copy(), np.asarray(support_labels).copy()))
        return np.asarray(query_ids, dtype=float)


def task(name, n_pos, n_neg, evaluable=True):
    labels = np.array([1] * n_pos + [0] * n_neg, dtype=np.float32)
    return Task(name, np.arange(len(labels)), labels, metadata={"evaluable": evaluable})


def test_k_shot_sizes_draws_and_seeds():
    model = Recorder()
    results, skipped = k_shot_protocol(model, [task("a", 30, 60)], shots=(1, 10), draws=4,
                                       seeds=(0, 1))
    assert skipped.empty
    assert len(model.supports) == 2 * 4 * 2
    sizes = sorted({len(ids) for ids, _ in model.supports})
    assert sizes == [2, 20]
    assert all(labels.sum() * 2 == len(labels) for _, labels in model.supports)
    assert set(results["metric"]) == {"roc_auc", "auprc", "delta_auprc"}
    # The same protocol gives every model the same episodes.
    other = Recorder()
    k_shot_protocol(other, [task("a", 30, 60)], shots=(1, 10), draws=4, seeds=(0, 1))
    for (a, _), (b, _) in zip(model.supports, other.supports):
        np.testing.assert_array_equal(a, b)


def test_fsmol_stratified_and_skipped_draws_counted():
    model = Recorder()
    tasks = [task("big", 100, 100), task("small", 60, 69), task("one-class", 50, 0, False)]
    results, skipped = fsmol_protocol(model, tasks, sizes=(16, 128), draws=3)
    for _, labels in model.supports:  # the class ratio of "big" (0.5) or "small" (60/129)
        assert min(abs(labels.sum() - len(labels) * r) for r in (0.5, 60 / 129)) <= 1
    reasons = skipped.groupby("task")["reason"].first()
    assert reasons["one-class"] == "one class only"
    assert reasons["small"].startswith("unusable draw")  # 128 of 129 leaves a one-class query
    assert len(skipped[skipped["task"] == "one-class"]) == 2 * 3
    assert set(results["task"]) == {"big", "small"}
    summary = summarize(results)
    assert set(summary["size"]) == {16, 128}


def test_too_small_is_counted_not_raised():
    results, skipped = evaluate_classification(
        Recorder(), [task("tiny", 3, 3)], lambda n: StratifiedSampler(n), (16,), draws=2
    )
    assert results.empty and list(skipped["reason"].str[:9]) == ["too small"] * 2


@pytest.mark.parametrize("name", ["protonet", "maml"])
def test_encoded_once_gives_the_same_scores(name):
    torch.manual_seed(0)
    features = torch.randn(200, 8)
    learner = build_learner(name, TableEncoder(features, hidden=8, out_dim=4), "classification")
    tasks = [task("a", 40, 60)]
    plain, _ = k_shot_protocol(learner, tasks, shots=(5,), draws=2, seeds=(0,))
    with encoded_once(learner, tasks):
        cached, _ = k_shot_protocol(learner, tasks, shots=(5,), draws=2, seeds=(0,))
    np.testing.assert_allclose(plain["value"], cached["value"], atol=1e-6)
    assert isinstance(learner.encoder, TableEncoder)  # restored
