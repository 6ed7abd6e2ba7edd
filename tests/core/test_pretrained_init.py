"""core/pretrained_init.py: ``init=pretrained`` starts a meta-learner from the multitask-
pretrained encoder, pre-trained once and reused."""

from __future__ import annotations

import json

import pytest
import torch

from fewshot_apps.core import fit
from fewshot_apps.core.pretrained_init import init_settings
from fewshot_apps.errors import FewshotError

TINY = {"encoder.hidden": 8, "encoder.depth": 1, "encoder.out_dim": 8, "encoder.ecfp_hidden": 8,
        "steps": 1, "eval_every": 1, "valid_draws": 1, "device": "cpu", "seed": 3}


class Started(Exception):
    """Raised by the stand-in meta_train with the encoder weights it was given."""


@pytest.fixture(scope="module")
def tox21():
    from fewshot_apps.domains.molecules.dataset import load_molecule_dataset

    return load_molecule_dataset("tox21", progress=False)


def start_weights(monkeypatch, dataset, settings, out):
    """The encoder weights meta-training starts from."""
    def stand_in(learner, *args, **kwargs):
        raise Started({k: v.clone() for k, v in learner.encoder.state_dict().items()},
                      kwargs["extra_config"]["init"])

    monkeypatch.setattr(fit, "meta_train", stand_in)
    with pytest.raises(Started) as caught:
        fit.train_learner(dataset, "protonet", out, settings, progress=False)
    return caught.value.args


def test_settings_are_read_and_checked():
    assert init_settings({"init": "Pretrained", "init_pretrain_steps": "5", "lr": 1}) == (
        "pretrained", 5, {"lr": 1})
    assert init_settings({})[:2] == ("scratch", 1000)
    with pytest.raises(FewshotError, match="init must be"):
        init_settings({"init": "imagenet"})
    with pytest.raises(FewshotError, match="init_pretrain_steps"):
        init_settings({"init": "pretrained", "init_pretrain_steps": "0"})


def test_the_encoder_starts_pretrained_once_then_from_the_cache(tox21, tmp_path, monkeypatch):
    from fewshot_apps.paths import cache_dir

    settings = {**TINY, "init": "pretrained", "init_pretrain_steps": 3}
    scratch, scratch_init = start_weights(monkeypatch, tox21, TINY, tmp_path / "a")
    first, first_init = start_weights(monkeypatch, tox21, settings, tmp_path / "b")
    again, again_init = start_weights(monkeypatch, tox21, settings, tmp_path / "c")
    assert scratch_init == {"from": "scratch"}
    assert first_init["from"] == "pretrained" and first_init["source"] == "trained"
    assert again_init["source"] == "cache" and again_init["key"] == first_init["key"]
    assert any(not torch.equal(scratch[k], first[k]) for k in scratch)  # pretraining moved it
    for name in first:
        torch.testing.assert_close(again[name], first[name])
    saved = list((cache_dir() / "pretrained").glob("encoder-*.pt"))
    assert saved
    # Another budget is another pre-training.
    other, other_init = start_weights(monkeypatch, tox21, {**settings, "init_pretrain_steps": 4},
                                      tmp_path / "d")
    assert other_init["source"] == "trained" and other_init["key"] != first_init["key"]
    # Another release is another pre-training: its code may pre-train differently.
    import fewshot_apps

    monkeypatch.setattr(fewshot_apps, "__version__", "999.0")
    newer, newer_init = start_weights(monkeypatch, tox21, settings, tmp_path / "e")
    assert newer_init["source"] == "trained" and newer_init["key"] != first_init["key"]


def test_a_trained_model_records_where_its_encoder_started(tox21, tmp_path):
    fit.train_learner(tox21, "protonet", tmp_path, {**TINY, "init": "pretrained",
                                                    "init_pretrain_steps": 3}, progress=False)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["init"]["from"] == "pretrained" and config["init"]["pretrain_steps"] == 3


def test_a_resumed_run_keeps_the_record_of_where_its_encoder_started(tox21, tmp_path):
    """Resuming skips the pre-training (the checkpoint holds the weights) but must not
    rewrite config.json's ``init`` as if the run had started from scratch."""
    settings = {**TINY, "init": "pretrained", "init_pretrain_steps": 3}
    fit.train_learner(tox21, "protonet", tmp_path, settings, progress=False)
    first = json.loads((tmp_path / "config.json").read_text())["init"]
    assert (tmp_path / "checkpoint.pt").exists()
    fit.train_learner(tox21, "protonet", tmp_path, settings, resume=True, progress=False)
    assert json.loads((tmp_path / "config.json").read_text())["init"] == first
    (tmp_path / "config.json").write_text("{not json")  # a run without a readable record
    assert fit._recorded_init(tmp_path, "pretrained") == {"from": "pretrained",
                                                          "resumed": True}


def test_transfer_baselines_ignore_the_init_setting(tox21, tmp_path):
    model = fit.build_model(tox21, "linear-probe", tmp_path, {**TINY, "init": "pretrained"},
                            pretrain_steps=2, progress=False)
    assert model is not None
