"""core/fit.py: the episode settings of a run (``shots`` and ``support_size`` exclude each
other; older names read as the current ones), and build_model's refusals and its dispatch
to meta-training, transfer pre-training or the data set's classic baseline, on a tiny fake
DomainDataset over a TableEncoder of random features."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from fewshot_apps.core.domain import DomainDataset
from fewshot_apps.core.encoders import TableEncoder
from fewshot_apps.core.fit import build_model, episode_settings, split_run_settings
from fewshot_apps.core.learners.base import MetaLearner
from fewshot_apps.core.registry import MODELS
from fewshot_apps.core.synthetic import PlantedProblem
from fewshot_apps.core.tasks import BalancedSampler, RandomSampler, TaskSet
from fewshot_apps.core.validation import episode_validator
from fewshot_apps.errors import FewshotError

torch.set_num_threads(1)

DEFAULTS = {"shots": 10, "support_size": None, "n_query": 16, "valid_draws": 3}
SMALL = {"steps": 2, "meta_batch_size": 2, "eval_every": 2, "encoder.hidden": 8,
         "encoder.out_dim": 4, "encoder.depth": 2}


class Defaults:
    """Only what the episode functions read."""

    def __init__(self, defaults: dict):
        self.episode_defaults = defaults


class FakeData:
    """A DomainDataset of random features, recording what fit asks of it."""

    domain = "fit-fake"
    protocols = ("k-shot",)
    validation_metric = "ROC-AUC"
    unvalidated_reason = "no validation task"

    def __init__(self, label_kind: str = "classification", n_train: int = 6, n_valid: int = 2):
        self.name = "fake-set"
        self.label_kind = label_kind
        self.episode_defaults = (
            {"shots": 3, "support_size": None, "n_query": 4, "valid_draws": 1}
            if label_kind == "classification"
            else {"shots": None, "support_size": 6, "n_query": 4, "valid_draws": 1}
        )
        problem = PlantedProblem.make(label_kind, n_examples=80, n_features=5, seed=0)
        self.features = problem.features
        train = problem.tasks(n_train, examples_per_task=40, seed=1, prefix="train")
        valid = problem.tasks(n_valid, examples_per_task=40, seed=2, prefix="valid")
        test = problem.tasks(2, examples_per_task=40, seed=3, prefix="test")
        self.taskset = TaskSet(self.name, label_kind, train, valid, test)
        self.calls: list[tuple] = []

    def make_encoder(self, settings: dict):
        self.calls.append(("make_encoder", dict(settings)))
        return TableEncoder(self.features, **{k: int(v) for k, v in settings.items()})

    def train_sampler(self, episode: dict):
        self.calls.append(("train_sampler", dict(episode)))
        if episode.get("shots") is not None:
            return BalancedSampler(int(episode["shots"]), episode["n_query"])
        return RandomSampler(int(episode["support_size"]), episode["n_query"])

    def check_trainable(self, episode: dict) -> None:
        self.calls.append(("check_trainable", dict(episode)))

    def validator(self, episode: dict, seed: int):
        self.calls.append(("validator", dict(episode), seed))
        return episode_validator(self.taskset.valid, self.train_sampler(episode), seed=seed)

    def build_baseline(self, name: str, seed: int = 0):
        self.calls.append(("build_baseline", name, seed))
        return ("fitted", name, seed)

    def evaluate(self, protocol, model, *, split="test", **options):
        raise AssertionError("fit never evaluates")

    def saved_model_config(self) -> dict:
        return {"dataset": self.name, "domain": self.domain}

    def attach(self, model, path=None) -> None:
        pass

    def check_model_split(self, model_path, suite: str) -> bool:
        return True

    def called(self, what: str) -> list[tuple]:
        return [c for c in self.calls if c[0] == what]


@pytest.fixture(scope="module")
def classic_entry():
    """A classic baseline of the fake domain (forgotten afterwards)."""
    MODELS.add("fit-fake-classic", f"{__name__}:FakeData",
               family="classic", label_kinds=("classification",), domain="fit-fake",
               summary="a classic baseline of the fake domain")
    yield "fit-fake-classic"
    MODELS.remove("fit-fake-classic")


def test_the_fake_data_set_meets_the_protocol():
    assert isinstance(FakeData(), DomainDataset)


# ---------------------------------------------------------------------- episode settings


def test_no_episode_settings_give_the_defaults_and_leave_them_untouched():
    data = Defaults(dict(DEFAULTS))
    assert episode_settings(data, {}) == DEFAULTS
    out = episode_settings(data, {"n_query": 5})
    assert out == {**DEFAULTS, "n_query": 5}
    out["shots"] = 99
    assert data.episode_defaults == DEFAULTS  # a copy, never the data set's own dict


def test_a_support_size_drops_the_default_shots_and_shots_drop_the_default_support_size():
    shots_first = Defaults(dict(DEFAULTS))
    assert episode_settings(shots_first, {"support_size": 12}) == {
        "shots": None, "support_size": 12, "n_query": 16, "valid_draws": 3}
    size_first = Defaults({"shots": None, "support_size": 10, "n_query": 10, "valid_draws": 1})
    assert episode_settings(size_first, {"shots": 4}) == {
        "shots": 4, "support_size": None, "n_query": 10, "valid_draws": 1}


def test_both_given_are_both_kept_and_none_values_do_not_override():
    data = Defaults(dict(DEFAULTS))
    assert episode_settings(data, {"shots": 2, "support_size": 8}) == {
        "shots": 2, "support_size": 8, "n_query": 16, "valid_draws": 3}
    assert episode_settings(data, {"n_query": None, "valid_draws": None}) == DEFAULTS


def test_split_run_settings_sorts_a_flat_dict_into_its_four_parts():
    train, episode, encoder, learner = split_run_settings(Defaults(dict(DEFAULTS)), {
        "steps": "7", "lr": 0.01, "shots": "4", "n_query": "8", "encoder.hidden": 16,
        "learner.temperature": "0.5"})
    assert train == {"steps": "7", "lr": 0.01}  # parsed later, by TrainConfig
    assert episode == {"shots": 4, "support_size": None, "n_query": 8, "valid_draws": 3}
    assert encoder == {"hidden": 16} and learner == {"temperature": "0.5"}


def test_split_run_settings_without_settings_gives_the_defaults():
    assert split_run_settings(Defaults(dict(DEFAULTS)), None) == ({}, DEFAULTS, {}, {})


@pytest.mark.parametrize("old", ["k_support", "n_support"])
def test_older_support_names_read_as_support_size_and_drop_the_default_shots(old):
    _, episode, _, _ = split_run_settings(Defaults(dict(DEFAULTS)), {old: "12"})
    assert episode == {"shots": None, "support_size": 12, "n_query": 16, "valid_draws": 3}


def test_an_older_shots_name_overrides_a_support_size_default():
    data = Defaults({"shots": None, "support_size": 10, "n_query": 10, "valid_draws": 1})
    _, episode, _, _ = split_run_settings(data, {"k_shot": 5})
    assert episode == {"shots": 5, "support_size": None, "n_query": 10, "valid_draws": 1}


def test_split_run_settings_refuses_unknown_keys_and_disagreeing_old_and_new_names():
    data = Defaults(dict(DEFAULTS))
    with pytest.raises(FewshotError, match=r"unknown setting 'k_shots'; known: .*shots"):
        split_run_settings(data, {"k_shots": 3})
    with pytest.raises(FewshotError, match="both 'k_support' .* and 'support_size'"):
        split_run_settings(data, {"k_support": 3, "support_size": 4})


# ---------------------------------------------------------------------- build_model


def test_a_model_of_another_domain_is_refused_before_anything_is_built(tmp_path):
    data = FakeData()
    with pytest.raises(FewshotError, match=r"^'rf' is a model for molecules data, not for "
                       r"fake-set \(fit-fake\)$"):
        build_model(data, "rf", tmp_path / "rf")
    assert data.calls == [] and not (tmp_path / "rf").exists()


def test_a_model_of_another_label_kind_is_refused_before_anything_is_built(tmp_path):
    data = FakeData("regression")
    with pytest.raises(FewshotError, match=r"^'protonet' predicts classification labels; "
                       r"fake-set has regression labels$"):
        build_model(data, "protonet", tmp_path / "p")
    assert data.calls == [] and not (tmp_path / "p").exists()


def test_an_unknown_model_names_the_known_ones(tmp_path):
    with pytest.raises(FewshotError, match="unknown model 'no-such'; known: .*protonet"):
        build_model(FakeData(), "no-such", tmp_path / "x")


def test_a_classic_baseline_is_the_data_sets_own_fitted_with_the_seed(tmp_path, classic_entry):
    data = FakeData()
    model = build_model(data, classic_entry, tmp_path / "c", SMALL, seed=5)
    assert model == ("fitted", classic_entry, 5)
    assert [c[0] for c in data.calls] == ["build_baseline"]  # no encoder, no episodes
    assert not (tmp_path / "c").exists()


def test_a_meta_learner_is_meta_trained_with_the_episode_settings_and_saved(tmp_path):
    data = FakeData()
    out = tmp_path / "protonet"
    model = build_model(data, "protonet", out, {**SMALL, "k_shot": 2}, seed=3, device="cpu",
                        progress=False)
    assert isinstance(model, MetaLearner) and model.name == "protonet"
    episode = {"shots": 2, "support_size": None, "n_query": 4, "valid_draws": 1}
    assert data.called("check_trainable") == [("check_trainable", episode)]
    assert ("train_sampler", episode) in data.calls
    assert data.called("validator") == [("validator", episode, 3)]
    assert data.called("make_encoder") == [("make_encoder", {"hidden": 8, "out_dim": 4,
                                                             "depth": 2})]
    assert not data.called("build_baseline")
    config = json.loads((out / "config.json").read_text())
    assert config["episode"] == episode and config["dataset"] == "fake-set"
    assert (config["train"]["steps"], config["train"]["seed"], config["train"]["device"]) == (
        2, 3, "cpu")
    assert config["encoder"]["name"] == "table" and (out / "model.pt").is_file()


def test_a_meta_learner_on_support_size_episodes(tmp_path):
    data = FakeData("regression")
    build_model(data, "cnp", tmp_path / "cnp", {**SMALL, "support_size": 5}, device="cpu",
                progress=False)
    episode = {"shots": None, "support_size": 5, "n_query": 4, "valid_draws": 1}
    assert data.called("check_trainable") == [("check_trainable", episode)]
    assert json.loads((tmp_path / "cnp" / "config.json").read_text())["sampler"] == {
        "type": "RandomSampler", "support_size": 5, "n_query": 4, "min_query": 1}


def test_resuming_a_run_of_other_episodes_or_encoder_is_refused(tmp_path):
    """A checkpoint trained on other supports (or with another encoder) is not finished and
    reported as if trained with this run's settings."""
    data = FakeData()
    out = tmp_path / "protonet"
    build_model(data, "protonet", out, {**SMALL, "shots": 2}, device="cpu", progress=False)
    again = build_model(data, "protonet", out, {**SMALL, "shots": "2", "steps": 3},
                        device="cpu", resume=True, progress=False)  # same settings: resumed
    assert isinstance(again, MetaLearner)
    with pytest.raises(FewshotError, match=r"trained with other settings \(episode shots 2 "
                                           r"-> 3\); resume with its settings"):
        build_model(data, "protonet", out, {**SMALL, "shots": 3}, device="cpu", resume=True,
                    progress=False)
    with pytest.raises(FewshotError, match=r"encoder hidden 8 -> 16"):
        build_model(data, "protonet", out, {**SMALL, "shots": 2, "encoder.hidden": 16},
                    device="cpu", resume=True, progress=False)


def test_without_validation_tasks_no_validator_is_asked_for(tmp_path):
    data = FakeData(n_valid=0)
    build_model(data, "protonet", tmp_path / "p", SMALL, device="cpu", progress=False)
    assert not data.called("validator")


def test_without_training_tasks_meta_training_is_refused(tmp_path):
    data = FakeData(n_train=0)
    with pytest.raises(FewshotError, match="^fake-set: no training tasks$"):
        build_model(data, "protonet", tmp_path / "p", SMALL, device="cpu", progress=False)


def test_an_unknown_setting_is_refused_before_training(tmp_path):
    data = FakeData()
    with pytest.raises(FewshotError, match="unknown setting 'stepz'"):
        build_model(data, "protonet", tmp_path / "p", {"stepz": 3}, device="cpu")
    assert not data.called("make_encoder")


def test_a_transfer_baseline_is_pre_trained_for_the_given_steps_and_saved(tmp_path):
    data = FakeData()
    model = build_model(data, "finetune", tmp_path / "ft", SMALL, seed=1, device="cpu",
                        pretrain_steps=3, progress=False)
    assert model.name == "finetune" and model.family == "transfer"
    config = json.loads((tmp_path / "ft" / "config.json").read_text())
    assert config["pretrain_steps"] == 3 and config["dataset"] == "fake-set"
    assert data.called("make_encoder") == [("make_encoder", {"hidden": 8, "out_dim": 4,
                                                             "depth": 2})]
    assert not data.called("check_trainable") and not data.called("build_baseline")


def test_a_transfer_baseline_takes_its_steps_from_the_settings_without_pretrain_steps(tmp_path):
    data = FakeData()
    build_model(data, "linear-probe", tmp_path / "lp", SMALL, device="cpu", progress=False)
    config = json.loads((tmp_path / "lp" / "config.json").read_text())
    assert config["pretrain_steps"] == SMALL["steps"]


def test_a_transfer_baseline_pre_trained_before_with_the_same_settings_is_loaded(
        tmp_path, monkeypatch):
    """A rerun of a suite (``resume``) loads a finished transfer baseline instead of
    pre-training it again, and only when every setting that made it is the same."""
    from fewshot_apps.core.baselines import TransferBaseline

    out = tmp_path / "ft"
    first = build_model(FakeData(), "finetune", out, SMALL, seed=1, device="cpu",
                        pretrain_steps=3, progress=False)
    assert not first.reused
    assert json.loads((out / "config.json").read_text())["pretrain_seconds"] >= 0
    pretrained = []
    monkeypatch.setattr(TransferBaseline, "pretrain",
                        lambda self, *args, steps, **kw: pretrained.append(steps))
    again = build_model(FakeData(), "finetune", out, SMALL, seed=1, device="cpu",
                        pretrain_steps=3, resume=True, progress=False)
    assert again.reused and pretrained == []
    assert again.calibration.to_config() == first.calibration.to_config()
    for key, value in first.state_dict().items():
        assert torch.equal(again.state_dict()[key], value), key
    # another budget, seed or encoder, or no resume: pre-trained again (a fresh copy each)
    cases = {"steps": (SMALL, 1, 4, True), "seed": (SMALL, 2, 3, True),
             "encoder": ({**SMALL, "encoder.hidden": 16}, 1, 3, True),
             "no resume": (SMALL, 1, 3, False)}
    for case, (settings, seed, steps, resume) in cases.items():
        copy = shutil.copytree(out, tmp_path / case)
        pretrained.clear()
        model = build_model(FakeData(), "finetune", copy, settings, seed=seed, device="cpu",
                            pretrain_steps=steps, resume=resume, progress=False)
        assert pretrained == [steps] and not model.reused, case
