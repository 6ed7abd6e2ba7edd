"""core/config.py: settings dataclasses from dicts (TOML tables, CLI ``--set`` strings)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

import pytest

from fewshot_apps.core.config import coerce, config_from_dict, learner_grid, settings_grid
from fewshot_apps.errors import FewshotError


@dataclass
class Settings:
    steps: int = 10
    lr: float = 0.01
    first_order: bool = False
    name: str = "x"
    mode: Literal["sum", "mean"] = "mean"
    clip: float | None = 1.0
    patience: Optional[int] = None  # noqa: UP045 (the typing spelling must work too)
    width: int | float = 4
    sizes: tuple[int, ...] = (1, 2)


def test_defaults_when_nothing_is_given():
    assert config_from_dict(Settings, None, "s") == Settings()
    assert config_from_dict(Settings, {}, "s") == Settings()


def test_strings_are_parsed_by_annotation():
    got = config_from_dict(
        Settings,
        {"steps": " 3 ", "lr": "1e-3", "first_order": "true", "name": "abc", "mode": "sum",
         "clip": "none", "patience": "5", "width": "7"},
        "s",
    )  # fmt: skip
    assert got == Settings(steps=3, lr=1e-3, first_order=True, name="abc", mode="sum",
                           clip=None, patience=5, width=7)  # fmt: skip
    assert type(got.steps) is int and type(got.width) is int and type(got.lr) is float


def test_typed_values_pass_through_like_their_strings():
    typed = config_from_dict(Settings, {"steps": 3, "first_order": True, "clip": None}, "s")
    text = config_from_dict(Settings, {"steps": "3", "first_order": "True", "clip": "null"}, "s")
    assert typed == text


@pytest.mark.parametrize("word", ["true", "TRUE", "yes", "1", "on", " On "])
def test_true_words(word):
    assert coerce(word, bool, "w") is True


@pytest.mark.parametrize("word", ["false", "no", "0", "off", "OFF"])
def test_false_words(word):
    assert coerce(word, bool, "w") is False


@pytest.mark.parametrize(
    ("value", "hint", "message"),
    [
        ("maybe", bool, "expected true or false"),
        ("2.5", int, "expected an integer"),
        (2.5, int, "expected an integer"),
        (True, int, "expected an integer"),  # a bool is not a count
        ("three", int, "expected an integer"),
        ("fast", float, "expected a number"),
        (True, float, "expected a number"),
        (3, str, "expected a string"),
        ("median", Literal["sum", "mean"], "expected one of 'sum', 'mean'"),
        ("x", float | None, "expected float or none"),
    ],
)
def test_bad_values_name_the_place_and_the_expected_type(value, hint, message):
    with pytest.raises(FewshotError, match=message) as info:
        coerce(value, hint, "model: option k")
    assert str(info.value).startswith(f"model: option k={value!r}")


def test_whole_floats_are_integers_and_ints_are_floats():
    assert coerce(4.0, int, "w") == 4 and type(coerce(4.0, int, "w")) is int
    assert coerce(4, float, "w") == 4.0 and type(coerce(4, float, "w")) is float


def test_none_words_mean_none_only_where_none_is_allowed():
    for word in ("none", "None", "NULL", " null "):
        assert coerce(word, int | None, "w") is None
        assert coerce(word, type(None), "w") is None
    # a plain str field keeps the word
    assert config_from_dict(Settings, {"name": "none"}, "s").name == "none"
    with pytest.raises(FewshotError, match="expected none"):
        coerce("0", type(None), "w")


def test_union_tries_members_in_order():
    assert coerce("3", int | float, "w") == 3 and type(coerce("3", int | float, "w")) is int
    assert coerce("3.5", int | float, "w") == 3.5


def test_unknown_keys_are_listed_with_the_known_ones():
    with pytest.raises(FewshotError) as info:
        config_from_dict(Settings, {"step": 3, "lrate": 0.1, "steps": 2}, "learner maml")
    text = str(info.value)
    assert text.startswith("learner maml: unknown option(s) lrate, step;")
    assert "known: steps, lr, first_order, name, mode, clip, patience, width, sizes" in text


def test_a_bad_value_names_the_caller_and_the_option():
    with pytest.raises(
        FewshotError, match=r"^learner maml: option steps='lots': expected an integer"
    ):
        config_from_dict(Settings, {"steps": "lots"}, "learner maml")


def test_other_annotations_pass_through_unchanged():
    got = config_from_dict(Settings, {"sizes": (5, 10)}, "s")
    assert got.sizes == (5, 10)


def test_the_input_dict_is_not_modified():
    values = {"steps": "3"}
    config_from_dict(Settings, values, "s")
    assert values == {"steps": "3"}


def test_settings_like_parses_to_the_defaults_types_and_refuses_typos():
    from fewshot_apps.core.config import settings_like

    defaults = {"hidden": 64, "dropout": 0.1, "use_ecfp": True, "pooling": "mean"}
    got = settings_like(defaults, {"hidden": "128", "use_ecfp": "off"}, "encoder")
    assert got == {"hidden": 128, "dropout": 0.1, "use_ecfp": False, "pooling": "mean"}
    with pytest.raises(FewshotError, match=r"encoder.use_ecfp='maybe': expected true or false"):
        settings_like(defaults, {"use_ecfp": "maybe"}, "encoder")  # was silently False
    with pytest.raises(FewshotError, match=r"unknown encoder setting\(s\) \['depht'\]"):
        settings_like(defaults, {"depht": 3}, "encoder")


def test_settings_grid_is_every_combination():
    assert settings_grid([]) == [{}]
    assert settings_grid(["lr=3e-4, 1e-3", "encoder.kind=gnn"]) == [
        {"lr": "3e-4", "encoder.kind": "gnn"}, {"lr": "1e-3", "encoder.kind": "gnn"}]


@pytest.mark.parametrize("item", ["lr", "=1", "lr=", "lr= , "])
def test_settings_grid_refuses_an_item_with_nothing_to_try(item):
    # before, "lr" and "lr=" silently made a grid of no combinations: nothing ran
    with pytest.raises(FewshotError, match=r"expected KEY=V1,V2"):
        settings_grid([item])


@pytest.mark.parametrize(("key", "value"), [("hidden", "-4"), ("depth", 0), ("out_dim", "0")])
def test_settings_like_refuses_counts_below_one(key, value):
    from fewshot_apps.core.config import settings_like

    # encoder.hidden=-4 was a RuntimeError (negative dimension) once training started
    defaults = {"hidden": 64, "depth": 2, "out_dim": 32, "dropout": 0.1}
    with pytest.raises(FewshotError, match=rf"^encoder.{key}={int(value)}: must be at least 1$"):
        settings_like(defaults, {key: value}, "encoder")
    # zero stays allowed where it means none
    assert settings_like(defaults, {"dropout": "0"}, "encoder")["dropout"] == 0.0


def test_parse_like_parses_known_keys_and_keeps_the_others():
    from fewshot_apps.core.config import parse_like

    saved = {"name": "gnn", "hidden": "8", "use_ecfp": True, "extra": [1]}
    assert parse_like(saved, {"hidden": 64, "use_ecfp": False}, "encoder") == {
        "name": "gnn", "hidden": 8, "use_ecfp": True, "extra": [1]}
    with pytest.raises(FewshotError, match=r"^cfg: encoder.hidden='eight': expected an integer"):
        parse_like({"hidden": "eight"}, {"hidden": 64}, "cfg: encoder")


@pytest.mark.parametrize("key", ["steps", "meta_batch_size", "eval_every", "checkpoint_every",
                                 "patience"])
@pytest.mark.parametrize("value", ["0", -1])
def test_training_counts_below_one_are_refused(key, value):
    from fewshot_apps.core.settings import TrainConfig

    # steps=-1 saved an untrained model after "0 steps"; eval_every=0 divided by zero
    with pytest.raises(FewshotError,
                       match=rf"^training: option {key}={int(value)}: must be at least 1$"):
        TrainConfig.from_dict({key: value})
    assert TrainConfig.from_dict({key: "1", "weight_decay": 0}).to_dict()[key] == 1


@pytest.mark.parametrize("key", ["shots", "support_size", "n_query", "valid_draws"])
def test_episode_counts_below_one_are_refused(key):
    from fewshot_apps.core.settings import split_settings

    defaults = {"shots": 10, "support_size": None, "n_query": 16, "valid_draws": 3,
                "n_negatives": 50}
    # --shots 0 was a TypeError deep in the metric learner
    with pytest.raises(FewshotError, match=rf"^setting {key}=0: must be at least 1$"):
        split_settings({key: "0"}, defaults)
    assert split_settings({key: "2", "n_negatives": "0"}, defaults)[1][key] == 2


@pytest.mark.parametrize(("key", "value", "allowed"), [
    ("lr", "0", "greater than 0"),  # trained nothing and saved the untrained model
    ("lr", -1e-3, "greater than 0"),  # trained the wrong way
    ("lr", "inf", "greater than 0"),
    ("weight_decay", "-0.1", "at least 0"),
    ("max_minutes", "nan", "greater than 0"),
])
def test_training_values_out_of_range_are_refused(key, value, allowed):
    from fewshot_apps.core.settings import TrainConfig

    with pytest.raises(FewshotError, match=rf"^training: option {key}=.*: must be {allowed}$"):
        TrainConfig.from_dict({key: value})
    assert TrainConfig.from_dict({"weight_decay": "0", "grad_clip": "none"}).grad_clip is None


def test_learner_settings_out_of_range_are_refused_and_zero_that_switches_off_is_kept():
    from fewshot_apps.core.learners.optimizer import MAMLConfig

    # inner_lr=-1 ascended the support loss; inner_lr=0 is a valid ablation (no adaptation)
    with pytest.raises(FewshotError, match=r"^maml: option inner_lr=-1.0: must be at least 0$"):
        config_from_dict(MAMLConfig, {"inner_lr": "-1"}, "maml")
    assert config_from_dict(MAMLConfig, {"inner_lr": "0"}, "maml").inner_lr == 0.0


def test_encoder_dropout_must_be_a_probability_below_one():
    from fewshot_apps.core.config import settings_like

    # dropout=1.5 was a ValueError from inside torch at the first forward pass
    for value in ("1", "1.5", "-0.1"):
        with pytest.raises(FewshotError, match=r"^encoder.dropout=.*: must be at least 0 and "
                                               r"below 1$"):
            settings_like({"dropout": 0.1}, {"dropout": value}, "encoder")
    assert settings_like({"dropout": 0.1}, {"dropout": "0.5"}, "encoder")["dropout"] == 0.5


# ------------------------------------------------------------------ learner_grid (--grid)


def test_learner_grid_is_every_combination_of_learner_settings():
    assert learner_grid([]) == [{}]
    assert learner_grid(["learner.fit_steps=0, 15", "learner.fit_lr=0.1"]) == [
        {"fit_steps": "0", "fit_lr": "0.1"}, {"fit_steps": "15", "fit_lr": "0.1"}]


@pytest.mark.parametrize("item", ["fit_steps=0", "encoder.hidden=8", "learner.fit_steps",
                                  "learner.=1", "learner.fit_steps="])
def test_learner_grid_refuses_what_is_not_a_learner_setting(item):
    with pytest.raises(FewshotError, match="expected learner.KEY=V1,V2"):
        learner_grid([item])
