"""save_model / load_model: identical predictions after a round trip, clear errors otherwise."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from fewshot_apps.core.encoders import TableEncoder
from fewshot_apps.core.learners import build_learner, learner_class, learner_names
from fewshot_apps.core.persistence import (
    load_model,
    read_model_config,
    save_model,
)
from fewshot_apps.core.registry import ENCODERS
from fewshot_apps.core.synthetic import PlantedProblem, quick_train
from fewshot_apps.core.tasks import RandomSampler
from fewshot_apps.errors import FewshotError

torch.set_num_threads(1)

CASES = [
    (n, "regression" if "regression" in learner_class(n).SUPPORTED_KINDS else "classification")
    for n in sorted(learner_names())
]


def trained(name="protonet", kind="classification", hidden=8, **config):
    torch.manual_seed(0)
    problem = PlantedProblem.make(kind, n_examples=50, n_features=5, seed=0)
    learner = build_learner(
        name, TableEncoder(problem.features, hidden=hidden, out_dim=4, dropout=0.1), kind, **config
    )
    tasks = problem.tasks(4, examples_per_task=20, seed=1)
    quick_train(learner, tasks, RandomSampler(6, n_query=6), steps=3, meta_batch_size=2)
    return learner, tasks


@pytest.mark.parametrize("name,kind", CASES)
def test_save_load_predict_is_identical(tmp_path, name, kind):
    learner, tasks = trained(name, kind)
    save_model(learner, tmp_path, {"featurizer": {"bits": 5}})
    loaded = load_model(tmp_path)
    assert type(loaded) is type(learner) and loaded.kind == kind and not loaded.training
    assert loaded.saved_config["featurizer"] == {"bits": 5}
    assert loaded.saved_config["learner"]["config"] == learner.config.to_dict()
    ep = RandomSampler(6).sample(tasks[0], 0)
    expected = learner.fit_predict(ep.support_examples, ep.support_labels, ep.query_examples)
    got = loaded.fit_predict(ep.support_examples, ep.support_labels, ep.query_examples)
    assert np.array_equal(expected, got)


def test_config_json_content(tmp_path):
    learner, _ = trained("maml", "regression", inner_steps=2)
    save_model(learner, tmp_path, {"vocabulary": ["a", "b"]})
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["learner"] == {
        "name": "maml",
        "kind": "regression",
        "config": learner.config.to_dict(),
    }
    assert config["encoder"]["name"] == "table" and config["encoder"]["hidden"] == 8
    assert config["vocabulary"] == ["a", "b"]
    assert read_model_config(tmp_path / "model.pt") == config


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FewshotError, match=r"config\.json: file not found"):
        load_model(tmp_path)
    learner, _ = trained()
    save_model(learner, tmp_path)
    (tmp_path / "model.pt").unlink()
    with pytest.raises(FewshotError, match=r"model\.pt: file not found; .*\(no checkpoint is "
                                           r"there: train again"):
        load_model(tmp_path)
    # a run stopped mid-way (config.json and checkpoint.pt, no model.pt) says how to finish it
    (tmp_path / "checkpoint.pt").write_bytes(b"state")
    with pytest.raises(FewshotError, match=r"did not finish .*checkpoint\.pt is there: run the "
                                           r"same training command with --resume"):
        load_model(tmp_path)


def test_truncated_weights_are_a_clear_error(tmp_path):
    learner, _ = trained()
    save_model(learner, tmp_path)
    data = (tmp_path / "model.pt").read_bytes()
    (tmp_path / "model.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(FewshotError, match=r"model\.pt: cannot be read: the file is truncated"):
        load_model(tmp_path)


def test_mismatched_weights_are_a_clear_error(tmp_path):
    learner, _ = trained(hidden=8)
    save_model(learner, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["encoder"]["hidden"] = 16
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        FewshotError,
        match=r"model\.pt: does not match the model described by .*config\.json.*encoder\.trunk\.0\.weight is \[8, 5\] in the file but \[16, 5\]",
    ):
        load_model(tmp_path)

    other, _ = trained("attention")
    torch.save(other.state_dict(), tmp_path / "model.pt")
    config["encoder"]["hidden"] = 8
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        FewshotError, match=r"model\.pt: does not match .*config\.json: unexpected gain, bias"
    ):
        load_model(tmp_path)


def test_bad_config_is_a_clear_error(tmp_path):
    learner, _ = trained()
    save_model(learner, tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(FewshotError, match=r"config\.json: not valid JSON"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text(
        json.dumps(
            {"learner": {"name": "protonet", "kind": "classification"}, "encoder": {"name": "nope"}}
        )
    )
    with pytest.raises(FewshotError, match=r"config\.json: encoder 'nope' is not registered"):
        load_model(tmp_path)


def test_domain_encoder_factories(tmp_path, monkeypatch, request):
    # A large feature table is not stored; the domain rebuilds the encoder with its features.
    torch.manual_seed(0)
    features = torch.randn(30, 4)
    learner = build_learner(
        "anil", TableEncoder(features, hidden=8, out_dim=4, store_features=False), "regression"
    )
    save_model(learner, tmp_path)
    assert "encoder.features" not in torch.load(tmp_path / "model.pt", weights_only=True)
    with pytest.raises(FewshotError, match="saved without its feature table"):
        load_model(tmp_path)
    loaded = load_model(
        tmp_path, build_encoder=lambda config: TableEncoder.from_config(config["encoder"], features)
    )
    ids, labels = np.arange(6), np.linspace(1, 5, 6)
    assert np.array_equal(
        loaded.fit_predict(ids, labels, np.arange(6, 30)),
        learner.fit_predict(ids, labels, np.arange(6, 30)),
    )

    # An encoder registered elsewhere (a plugin's) is rebuilt by its class's from_config.
    class TableWithFeatures(TableEncoder):
        @classmethod
        def from_config(cls, config, features=features):
            return TableEncoder.from_config(config, features)

    ENCODERS.add("test-table-with-features", f"{__name__}:TableWithFeatures", domain=None)
    request.addfinalizer(lambda: ENCODERS.remove("test-table-with-features"))
    monkeypatch.setattr(sys.modules[__name__], "TableWithFeatures", TableWithFeatures,
                        raising=False)
    save_model(
        learner,
        tmp_path,
        {"encoder": {**learner.encoder.config(), "name": "test-table-with-features"}},
    )
    assert isinstance(load_model(tmp_path).encoder, TableEncoder)


def test_the_split_is_recorded_in_tasks_json(tmp_path):
    from fewshot_apps.core.persistence import check_unseen_tasks, read_model_tasks, task_record

    learner, tasks = trained()
    record = task_record(tasks[:3], tasks[3:])
    save_model(learner, tmp_path / "explicit", {"dataset": "planted"}, tasks=record)
    # a data set's saved_model_config() hands the record in the config
    save_model(learner, tmp_path / "in-config", {"dataset": "planted", "tasks": record})
    for folder in ("explicit", "in-config"):
        config = json.loads((tmp_path / folder / "config.json").read_text())
        assert config["tasks"]["n_train"] == 3 and config["tasks"]["n_valid"] == 1
        assert "task0" not in json.dumps(config)  # the names are in tasks.json only
        assert read_model_tasks(tmp_path / folder) == {
            "train": ["task0", "task1", "task2"], "valid": ["task3"]}
        assert load_model(tmp_path / folder).saved_config["tasks"] == config["tasks"]
    assert check_unseen_tasks(tmp_path / "explicit", "planted", ["task9", "task8"]) is True
    with pytest.raises(FewshotError, match=r"explicit: was trained on 2 of the suite planted's "
                       r"3 test tasks \(task0, task2\) and selected on 1 more \(task3\); its "
                       "scores on them would be inflated. Evaluate it on a suite whose test "
                       "tasks it has not seen"):
        check_unseen_tasks(tmp_path / "explicit", "planted", ["task0", "task2", "task3"])
    with pytest.raises(FewshotError, match=r"was selected \(validated\) on 1 of the suite "
                       r"planted's 2 test users \(task3\)"):
        check_unseen_tasks(tmp_path / "explicit", "planted", ["task3", "task7"], what="users")


def test_a_model_saved_before_splits_were_recorded_loads_and_warns(tmp_path):
    from fewshot_apps.core.persistence import check_unseen_tasks, read_model_tasks

    learner, tasks = trained()
    save_model(learner, tmp_path)  # no split: as every model saved before it was recorded
    assert not (tmp_path / "tasks.json").exists()
    assert "tasks" not in json.loads((tmp_path / "config.json").read_text())
    assert load_model(tmp_path).kind == "classification"
    assert read_model_tasks(tmp_path) is None
    with pytest.warns(UserWarning, match=r"records no training split .* whether it was trained "
                      "on the suite planted's test tasks cannot be checked"):
        assert check_unseen_tasks(tmp_path, "planted", ["task0"]) is False


def test_learner_settings_replace_the_adaptation_at_load(tmp_path):
    learner, tasks = trained("dkt", fit_steps=15)
    save_model(learner, tmp_path)
    loaded = load_model(tmp_path, learner_settings={"fit_steps": "0"})
    assert loaded.config.fit_steps == 0 and learner.config.fit_steps == 15
    assert loaded.saved_config["learner"]["config"]["fit_steps"] == 15  # the file is unchanged
    ep = RandomSampler(6).sample(tasks[0], 0)
    args = (ep.support_examples, ep.support_labels, ep.query_examples)
    trained_as_saved = learner.fit_predict(*args)
    learner.config.fit_steps = 0  # the same weights adapted without the per-task fit
    assert np.array_equal(loaded.fit_predict(*args), learner.fit_predict(*args))
    assert not np.allclose(loaded.fit_predict(*args), trained_as_saved)


def test_learner_settings_that_do_not_fit_the_weights_are_refused(tmp_path):
    learner, _ = trained("maml", head_hidden=0)
    save_model(learner, tmp_path)
    with pytest.raises(FewshotError, match=r"model\.pt: does not match the model described by"):
        load_model(tmp_path, learner_settings={"head_hidden": 4})
    with pytest.raises(FewshotError, match=r"config\.json: .*unknown.*nope"):
        load_model(tmp_path, learner_settings={"nope": 1})
