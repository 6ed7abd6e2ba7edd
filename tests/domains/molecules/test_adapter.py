"""domains/molecules/adapter.py: MoleculeTasks, the molecule data set's side of the
DomainDataset protocol, on a stand-in data set of random features (a TableEncoder stands
in for the GNN): training samplers for ``shots`` or ``support_size``, the trainability
check, the validation score, evaluate's tidy rows, limit_task and check_model_split."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fewshot_apps.core.encoders import TableEncoder
from fewshot_apps.core.learners import build_learner
from fewshot_apps.core.persistence import save_model, task_record
from fewshot_apps.core.synthetic import PlantedProblem
from fewshot_apps.core.tasks import BalancedSampler, StratifiedSampler, Task, TaskSet
from fewshot_apps.domains.molecules.adapter import EPISODE_DEFAULTS, MoleculeTasks, limit_task
from fewshot_apps.errors import FewshotError

torch.set_num_threads(1)

PROBLEM = PlantedProblem.make("classification", n_examples=120, n_features=6, seed=0)
RESULT_COLUMNS = ["task", "shots", "support_size", "item_split", "draw", "seed", "metric",
                  "value"]


class Assays(MoleculeTasks):
    """MoleculeTasks needs ``name``, ``store`` and ``task_set()``."""

    def __init__(self):
        self.name = "assays"
        self.store = None
        self.task_set_calls = 0

    def task_set(self) -> TaskSet:
        self.task_set_calls += 1
        tasks = PROBLEM.tasks(7, examples_per_task=50, seed=1, prefix="assay")
        return TaskSet(self.name, "classification", tasks[:3], tasks[3:5], tasks[5:])


@pytest.fixture(scope="module")
def data() -> Assays:
    return Assays()


@pytest.fixture(scope="module")
def learner():
    torch.manual_seed(0)
    return build_learner("protonet", TableEncoder(PROBLEM.features, hidden=8, out_dim=4),
                         "classification")


def test_what_it_is(data):
    assert (data.domain, data.label_kind, data.protocols) == (
        "molecules", "classification", ("k-shot", "fsmol", "active"))
    assert data.episode_defaults == {"shots": 10, "support_size": None, "n_query": 16,
                                     "valid_draws": 3, "valid_support_size": None} == \
        EPISODE_DEFAULTS
    assert data.validation_metric == "ROC-AUC"


def test_the_taskset_is_the_default_split_built_once(data):
    first = data.taskset
    assert data.taskset is first and data.task_set_calls == 1
    assert [len(first.train), len(first.valid), len(first.test)] == [3, 2, 2]


def test_shots_give_a_balanced_sampler_and_a_support_size_a_stratified_one(data):
    balanced = data.train_sampler({"shots": "4", "support_size": None, "n_query": 8})
    assert balanced == BalancedSampler(4, 8)
    stratified = data.train_sampler({"shots": None, "support_size": 12, "n_query": 6})
    assert stratified == StratifiedSampler(12, 6)
    both = data.train_sampler({"shots": 2, "support_size": 12, "n_query": 6})
    assert isinstance(both, BalancedSampler)  # shots win


def test_episodes_need_shots_or_a_support_size(data):
    data.check_trainable({"shots": 3, "support_size": None})
    data.check_trainable({"shots": None, "support_size": 16})
    with pytest.raises(FewshotError, match="^assays: training episodes need shots or "
                       "support_size$"):
        data.check_trainable({"shots": None, "support_size": None, "n_query": 16})


def test_episodes_no_training_assay_can_give_are_refused_before_training(data):
    # The largest training assays hold 19 to 26 actives and 24 to 31 inactives (50 each).
    data.check_trainable({"shots": 24, "support_size": None, "n_query": 16})  # assay2 can
    data.check_trainable({"shots": None, "support_size": 40, "n_query": 16})
    with pytest.raises(FewshotError, match=r"^assays: no training assay has the molecules a "
                       r"training episode needs: 27 actives and 27 inactives \(shots 27\) plus "
                       r"at least one query molecule; the 3 training assay\(s\): assay0 \(21 "
                       r"actives, 29 inactives\), .*\. Use more molecules per assay, or smaller "
                       r"episodes \(--shots N, or --support-size N\)$"):
        data.check_trainable({"shots": 27, "support_size": None, "n_query": 16})
    # 49 of 50 leave a query of one molecule: never both classes.
    with pytest.raises(FewshotError, match=r"a stratified support of 49 molecules "
                       r"\(support_size 49\) plus a query holding both classes"):
        data.check_trainable({"shots": None, "support_size": 49, "n_query": 16})


@pytest.mark.parametrize("episode", [
    {"shots": 3, "support_size": None, "valid_draws": 2},
    {"shots": None, "support_size": 6, "valid_draws": 1},
])  # fmt: skip
def test_the_validator_scores_a_roc_auc_and_is_repeatable(data, learner, episode):
    validate = data.validator(episode, seed=0)
    score = validate(learner)
    assert isinstance(score, float) and 0.0 <= score <= 1.0
    assert validate(learner) == score
    assert learner.training  # encoded_once restores the mode
    assert isinstance(learner.encoder, TableEncoder)


def test_evaluate_gives_tidy_rows_of_either_protocol(data, learner):
    rows, skipped = data.evaluate("k-shot", learner, shots=(2, 3), draws=2, seeds=(0,))
    assert list(rows.columns) == RESULT_COLUMNS and skipped == 0
    assert set(rows["task"]) == {t.name for t in data.taskset.test}
    assert set(rows["shots"]) == {2, 3} and set(rows["support_size"]) == {4, 6}
    assert rows["item_split"].isna().all() and set(rows["draw"]) == {0, 1}
    assert {"roc_auc", "auprc", "delta_auprc"} <= set(rows["metric"])
    roc = rows.loc[rows["metric"] == "roc_auc", "value"]
    assert roc.between(0, 1).all()
    fsmol, _ = data.evaluate("fsmol", learner, support_sizes=(8,), draws=1, seeds=(0,),
                             split="valid", max_tasks=1)
    assert list(fsmol.columns) == RESULT_COLUMNS
    assert set(fsmol["task"]) == {data.taskset.valid[0].name}
    assert fsmol["shots"].isna().all() and set(fsmol["support_size"]) == {8}


def test_validation_episodes_are_the_draws_the_validator_scores(data, learner, monkeypatch):
    """What a calibration is fitted on: exactly the validator's episodes."""
    episode = {"shots": 3, "support_size": None, "valid_draws": 2}
    seen = []
    original = learner.fit_predict
    monkeypatch.setattr(learner, "fit_predict", lambda s, y, q: seen.append(
        (list(s), list(y), list(q))) or original(s, y, q))
    data.validator(episode, seed=5)(learner)
    drawn = data.validation_episodes(episode, seed=5)
    assert len(drawn) == 2 * len(data.taskset.valid)
    assert seen == [(list(ep.support_examples), list(ep.support_labels),
                     list(ep.query_examples)) for ep in drawn]
    assert data.validation_episodes(episode, seed=6)[0].query_examples.tolist() != \
        drawn[0].query_examples.tolist()


def test_stratified_training_is_validated_and_calibrated_on_stratified_supports(data, learner):
    """Training on stratified supports (FS-Mol) means validation draws of the same kind: the
    support keeps the task's class balance instead of K actives + K inactives, so a
    calibration fitted on them expects the test queries' balance."""
    episode = {"shots": None, "support_size": 8, "valid_draws": 2}
    drawn = data.validation_episodes(episode, seed=5)
    assert len(drawn) == 2 * len(data.taskset.valid)
    assert all(len(ep.support_examples) == 8 for ep in drawn)
    by_name = {t.name: t for t in data.taskset.valid}
    for ep in drawn:
        expected = StratifiedSampler(8).sample(by_name[ep.task], 0).support_labels.sum()
        assert ep.support_labels.sum() == expected  # the stratified count of actives
    score = data.validator(episode, seed=5)(learner)
    assert 0 <= score <= 1


@pytest.mark.parametrize("training", [
    {"shots": 3, "support_size": None},
    {"shots": None, "support_size": 12},
])  # fmt: skip
def test_valid_support_size_validates_every_training_on_the_same_draws(data, learner,
                                                                       training):
    """Runs trained on other supports (K-shot, or stratified of another size) are selected
    and compared on the same stratified validation draws."""
    episode = {**training, "valid_draws": 2, "valid_support_size": 8}
    drawn = data.validation_episodes(episode, seed=5)
    same = data.validation_episodes({"shots": None, "support_size": 8, "valid_draws": 2},
                                    seed=5)
    assert all(len(ep.support_examples) == 8 for ep in drawn)
    assert [ep.support_examples.tolist() for ep in drawn] == \
        [ep.support_examples.tolist() for ep in same]
    assert data.validator(episode, seed=5)(learner) == data.validator(
        {"shots": None, "support_size": 8, "valid_draws": 2}, seed=5)(learner)
    # without it, validation draws are the training's kind: these differ
    assert [len(ep.support_examples) for ep in data.validation_episodes(
        {**training, "valid_draws": 2}, seed=5)] != [8] * len(drawn)


def test_evaluate_pools_the_reliability_bins_of_its_probabilities(data, learner):
    rows, _ = data.evaluate("k-shot", learner, shots=(2, 3), draws=2, seeds=(0,))
    bins = rows.attrs["reliability"]  # (shots, support_size, bin, n, sum_p, sum_label)
    assert {(b[0], b[1]) for b in bins} == {(2, 4), (3, 6)}
    assert sorted({b[2] for b in bins}) == list(range(15))
    n_queries = sum(len(t) - 2 * k for t in data.taskset.test for k in (2, 3)) * 2
    assert sum(b[3] for b in bins) == n_queries
    assert all(0 <= b[4] <= b[3] and 0 <= b[5] <= b[3] for b in bins)
    # every query molecule counted once per draw: the actives too
    positives = {k: sum(int(t.labels.sum()) - k for t in data.taskset.test) * 2 for k in (2, 3)}
    for k in (2, 3):
        assert sum(b[5] for b in bins if b[0] == k) == pytest.approx(positives[k])


def test_evaluate_refuses_a_protocol_of_another_domain(data, learner):
    with pytest.raises(FewshotError, match=r"protocol 'cold-start' does not apply to assays "
                       r"\(molecules: k-shot, fsmol, active\)"):
        data.evaluate("cold-start", learner)


def test_query_limit_shrinks_each_task_before_evaluating(data, learner):
    rows, _ = data.evaluate("k-shot", learner, shots=(2,), draws=1, seeds=(0,),
                            query_limit=30)
    assert len(rows) and np.isfinite(rows["value"]).all()


def test_limit_task_keeps_small_tasks_and_shrinks_large_ones_stratified():
    rng = np.random.default_rng(0)
    labels = (rng.random(400) < 0.2).astype(np.float32)
    task = Task("big", np.arange(400), labels)
    assert limit_task(task, None, 0) is task and limit_task(task, 400, 0) is task
    small = limit_task(task, 100, seed=1)
    assert len(small) == 100 and set(small.examples) <= set(task.examples)
    assert small.n_positive == 25  # at least 25 positives for a 10-shot support and a query
    assert np.array_equal(small.examples, limit_task(task, 100, seed=1).examples)
    assert not np.array_equal(small.examples, limit_task(task, 100, seed=2).examples)
    assert (np.diff(small.examples) > 0).all()  # in the task's order


def test_attach_lends_the_model_the_store(data):
    class Encoder:
        def set_store(self, store):
            self.store = store

    class Model:
        encoder = Encoder()

    model = Model()
    data.store = "the store"
    try:
        data.attach(model)
        assert model.encoder.store == "the store"
    finally:
        data.store = None


def test_check_model_split_refuses_a_model_that_saw_test_assays(data, learner, tmp_path):
    ts = data.taskset
    clean = save_model(learner, tmp_path / "clean",
                       {"tasks": task_record(ts.train, ts.valid)})
    assert data.check_model_split(clean, "suite") is True
    trained = save_model(learner, tmp_path / "trained",
                         {"tasks": task_record([*ts.train, ts.test[0]], ts.valid)})
    with pytest.raises(FewshotError, match=rf"was trained on 1 of the suite suite's 2 test "
                       rf"tasks \({ts.test[0].name}\)"):
        data.check_model_split(trained, "suite")
    selected = save_model(learner, tmp_path / "selected",
                          {"tasks": task_record(ts.train, [ts.test[1]])})
    with pytest.raises(FewshotError, match="was selected"):
        data.check_model_split(selected, "suite")


def test_a_model_without_its_split_is_warned_about(data, learner, tmp_path):
    old = save_model(learner, tmp_path / "old", {})
    with pytest.warns(UserWarning, match="records no training split"):
        assert data.check_model_split(old, "suite") is False

