"""core/settings.py: TrainConfig (defaults, parsing, round trip) and split_settings, which
sorts one flat dict into training, episode, encoder and learner settings."""

from __future__ import annotations

import dataclasses

import pytest

from fewshot_apps.core.settings import TrainConfig, split_settings
from fewshot_apps.errors import FewshotError

EPISODE = {"shots": 10, "support_size": None, "n_query": 16}


def test_defaults():
    cfg = TrainConfig()
    assert (cfg.steps, cfg.meta_batch_size, cfg.lr, cfg.weight_decay, cfg.grad_clip) == (
        2000, 8, 1e-3, 0.0, 1.0)
    assert (cfg.eval_every, cfg.checkpoint_every, cfg.checkpoint_minutes) == (100, 500, 10.0)
    assert (cfg.patience, cfg.max_minutes, cfg.seed, cfg.device) == (None, None, 0, "auto")
    assert TrainConfig.from_dict(None) == cfg == TrainConfig.from_dict({})


def test_to_dict_holds_every_field_and_reads_back_the_same():
    cfg = TrainConfig(steps=5, lr=0.5, grad_clip=None, patience=2, device="cpu")
    d = cfg.to_dict()
    assert set(d) == {f.name for f in dataclasses.fields(TrainConfig)}
    assert d["grad_clip"] is None and d["lr"] == 0.5
    assert TrainConfig.from_dict(d) == cfg


def test_from_dict_parses_strings_of_every_kind():
    cfg = TrainConfig.from_dict({"lr": "1e-4", "weight_decay": "0.01", "max_minutes": "2.5",
                                 "checkpoint_minutes": "None", "meta_batch_size": " 4 ",
                                 "seed": 7.0, "device": "cpu"})
    assert (cfg.lr, cfg.weight_decay, cfg.max_minutes) == (1e-4, 0.01, 2.5)
    assert cfg.checkpoint_minutes is None and cfg.meta_batch_size == 4 and cfg.seed == 7


@pytest.mark.parametrize("key,value,expected", [
    ("steps", "many", "an integer"),
    ("steps", 2.5, "an integer"),
    ("lr", "fast", "a number"),
    ("device", 3, "a string"),
])  # fmt: skip
def test_from_dict_names_the_option_and_what_it_expected(key, value, expected):
    with pytest.raises(FewshotError, match=f"training: option {key}=.*: expected {expected}"):
        TrainConfig.from_dict({key: value})


def test_unknown_training_options_are_listed_with_the_known_ones():
    with pytest.raises(FewshotError, match=r"unknown option\(s\) epochs, stepz; known: steps, "):
        TrainConfig.from_dict({"stepz": 1, "epochs": 2})


def test_split_settings_sorts_each_key():
    train, episode, encoder, learner = split_settings(
        {"steps": 3, "device": "cpu", "shots": "4", "encoder.hidden": "8",
         "encoder.pool.kind": "mean", "learner.inner_steps": 2}, EPISODE)
    assert train == {"steps": 3, "device": "cpu"}
    assert episode == {"shots": 4, "support_size": None, "n_query": 16}
    assert encoder == {"hidden": "8", "pool.kind": "mean"}  # only the prefix is cut
    assert learner == {"inner_steps": 2}


def test_split_settings_parses_episode_values_as_ints_and_leaves_the_defaults_alone():
    defaults = dict(EPISODE)
    _, episode, _, _ = split_settings({"n_query": "12", "support_size": 8.0}, defaults)
    assert episode == {"shots": 10, "support_size": 8, "n_query": 12}
    assert all(type(v) is int for v in episode.values() if v is not None)
    assert defaults == EPISODE


def test_split_settings_of_nothing_is_the_episode_defaults():
    assert split_settings({}, EPISODE) == ({}, EPISODE, {}, {})


def test_an_episode_key_is_only_one_the_domain_has():
    with pytest.raises(FewshotError, match="unknown setting 'valid_draws'"):
        split_settings({"valid_draws": 2}, EPISODE)
    _, episode, _, _ = split_settings({"valid_draws": 2}, {**EPISODE, "valid_draws": 1})
    assert episode["valid_draws"] == 2


def test_an_unknown_setting_lists_training_and_episode_keys_and_the_prefixes():
    with pytest.raises(FewshotError) as caught:
        split_settings({"hidden": 8}, EPISODE)
    message = str(caught.value)
    assert message.startswith("unknown setting 'hidden'; known: ")
    for key in ("steps", "lr", "device", "shots", "n_query", "support_size",
                "encoder.<key>", "learner.<key>"):
        assert key in message


@pytest.mark.parametrize("value", ["abc", "2.7", True, "none"])
def test_an_episode_setting_that_is_not_a_whole_number_is_a_clear_error(value):
    with pytest.raises(FewshotError, match="setting 'shots' must be a whole number"):
        split_settings({"shots": value}, {"shots": 10})


def test_whole_numbers_in_any_spelling_are_read():
    _, episode, _, _ = split_settings({"shots": "8", "n_query": 8.0}, {"shots": 10, "n_query": 16})
    assert episode == {"shots": 8, "n_query": 8}
