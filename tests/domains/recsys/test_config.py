"""domains/recsys/config.py: ColdStartConfig, every number of the cold-start protocol. Its
defaults, the checks that refuse impossible settings with a CardError, from_mapping
(defaults, then each mapping, then overrides; unknown keys refused; dashes read as
underscores; ``new_item_quantile = false`` turns item cold start off) and the round trip."""

from __future__ import annotations

import dataclasses
import json

import pytest

from fewshot_apps.domains.recsys.config import CONFIG_KEYS, ColdStartConfig
from fewshot_apps.errors import CardError


def test_defaults():
    c = ColdStartConfig()
    assert (c.protocol, c.seed, c.split_fractions, c.split_method) == (
        "cold-start", 0, (0.7, 0.1, 0.2), "random")
    assert (c.support_sizes, c.n_query, c.min_eval_ratings) == ((5, 10, 20), 10, 30)
    assert (c.melu_min_ratings, c.melu_max_ratings, c.melu_n_query) == (13, 100, 10)
    assert (c.new_item_quantile, c.relevance_threshold) == (0.8, 4.0)
    assert (c.max_tags, c.min_tag_count, c.max_categories) == (100, 2, 50)
    assert c.max_support == 20
    assert {f.name for f in dataclasses.fields(ColdStartConfig)} == CONFIG_KEYS


def test_it_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ColdStartConfig().seed = 3


def test_lists_become_tuples_of_the_right_type():
    c = ColdStartConfig(split_fractions=[1, 0, 0], support_sizes=["3", 7.0])
    assert c.split_fractions == (1.0, 0.0, 0.0) and c.support_sizes == (3, 7)
    assert all(type(k) is int for k in c.support_sizes)
    assert c.max_support == 7


@pytest.mark.parametrize("changes,message", [
    ({"protocol": "warm-start"}, "protocol must be 'cold-start' or 'melu', not 'warm-start'"),
    ({"split_method": "alphabetical"}, "split_method must be 'random', 'time' or 'fixed'"),
    ({"split_fractions": (0.5, 0.5)}, r"split_fractions must be 3 shares summing to 1, not "
                                      r"\[0.5, 0.5\]"),
    ({"split_fractions": (0.8, 0.1, 0.2)}, "3 shares summing to 1"),
    ({"split_fractions": (1.2, -0.1, -0.1)}, "3 shares summing to 1"),
    ({"support_sizes": ()}, r"support_sizes must be positive whole numbers .*, not \[\]"),
    ({"support_sizes": (5, 0)}, r"support_sizes must be positive whole numbers .*, not \[5, 0\]"),
    ({"n_query": 0}, "n_query must be a positive whole number, not 0"),
    ({"melu_n_query": 0}, "melu_n_query must be a positive whole number, not 0"),
    ({"new_item_quantile": 1.0}, r"new_item_quantile must be in \(0, 1\) or None, not 1.0"),
    ({"new_item_quantile": 0}, r"new_item_quantile must be in \(0, 1\) or None, not 0"),
])  # fmt: skip
def test_impossible_settings_are_card_errors(changes, message):
    with pytest.raises(CardError, match=message):
        ColdStartConfig(**changes)


@pytest.mark.parametrize("changes,message", [
    ({"support_sizes": 5.5}, r"support_sizes must be positive whole numbers \(e.g. \[5, 10, 20\]\), "
                             r"not 5.5"),
    ({"support_sizes": [5, 2.5]}, r"support_sizes must be .*, not \[5, 2.5\]"),
    ({"support_sizes": "5,x"}, r"support_sizes must be .*, not '5,x'"),
    ({"support_sizes": {"k": 5}}, r"support_sizes must be .*, not \{'k': 5\}"),
    ({"support_sizes": [True]}, r"support_sizes must be .*, not \[True\]"),
    ({"n_query": "3x"}, "n_query must be a positive whole number, not '3x'"),
    ({"n_query": 2.5}, "n_query must be a positive whole number, not 2.5"),
    ({"n_query": None}, "n_query must be a positive whole number, not None"),
    ({"n_query": True}, "n_query must be a positive whole number, not True"),
    ({"split_fractions": "abc"}, "split_fractions must be 3 shares summing to 1, not 'abc'"),
    ({"split_fractions": 1}, "split_fractions must be 3 shares summing to 1, not 1"),
    ({"split_fractions": ["a", "b", "c"]}, r"3 shares summing to 1, not \['a', 'b', 'c'\]"),
    ({"split_fractions": [float("nan"), 0.5, 0.5]}, r"3 shares summing to 1, not \[nan"),
    ({"seed": "one"}, "seed must be a whole number, not 'one'"),
    ({"seed": 1.5}, "seed must be a whole number, not 1.5"),
    ({"min_eval_ratings": -1}, "min_eval_ratings must be a whole number >= 0, not -1"),
    ({"melu_min_ratings": 0}, "melu_min_ratings must be a positive whole number, not 0"),
    ({"melu_max_ratings": "many"}, "melu_max_ratings must be a positive whole number, not 'many'"),
    ({"melu_min_ratings": 50, "melu_max_ratings": 20},
     r"melu_min_ratings \(50\) must not exceed melu_max_ratings \(20\)"),
    ({"melu_n_query": 20, "melu_max_ratings": 20},
     r"melu_n_query \(20\) must be below melu_max_ratings \(20\)"),
    ({"new_item_quantile": "soon"}, r"new_item_quantile must be in \(0, 1\) or None, not 'soon'"),
    ({"new_item_quantile": float("nan")}, r"new_item_quantile must be in \(0, 1\) or None"),
    ({"new_item_quantile": True}, r"new_item_quantile must be in \(0, 1\) or None, not True"),
    ({"relevance_threshold": "high"}, "relevance_threshold must be a number, not 'high'"),
    ({"relevance_threshold": float("inf")}, "relevance_threshold must be a number, not inf"),
    ({"max_tags": -5}, "max_tags must be a whole number >= 0, not -5"),
    ({"min_tag_count": 0}, "min_tag_count must be a positive whole number, not 0"),
    ({"max_categories": [50]}, r"max_categories must be a whole number >= 0, not \[50\]"),
    ({"protocol": ["melu"]}, r"protocol must be 'cold-start' or 'melu', not \['melu'\]"),
])  # fmt: skip
def test_values_of_the_wrong_kind_are_card_errors_naming_the_option_and_value(changes, message):
    with pytest.raises(CardError, match=message):
        ColdStartConfig(**changes)
    with pytest.raises(CardError, match=message):  # from a card or load options alike
        ColdStartConfig.from_mapping(changes)


def test_numbers_and_lists_given_as_text_are_parsed():
    c = ColdStartConfig.from_mapping({
        "seed": "7", "split_fractions": "0.6, 0.2, 0.2", "support_sizes": "[3,6]",
        "n_query": "4", "min_eval_ratings": "12.0", "melu_min_ratings": " 5 ",
        "melu_max_ratings": "50", "melu_n_query": "3", "new_item_quantile": "0.5",
        "relevance_threshold": "3.5", "max_tags": "0", "min_tag_count": "1",
        "max_categories": "9",
    })
    assert (c.seed, c.split_fractions, c.support_sizes) == (7, (0.6, 0.2, 0.2), (3, 6))
    assert (c.n_query, c.min_eval_ratings, c.melu_min_ratings) == (4, 12, 5)
    assert (c.melu_max_ratings, c.melu_n_query, c.new_item_quantile) == (50, 3, 0.5)
    assert (c.relevance_threshold, c.max_tags, c.min_tag_count, c.max_categories) == (
        3.5, 0, 1, 9)
    assert all(type(v) is int for v in (c.seed, c.n_query, c.min_eval_ratings, c.max_tags))
    assert ColdStartConfig(seed=3.0) == ColdStartConfig(seed=3)  # one split, one record


def test_one_support_size_may_be_given_without_a_list():
    assert ColdStartConfig(support_sizes=5).support_sizes == (5,)
    assert ColdStartConfig.from_mapping({"support_sizes": "8"}).support_sizes == (8,)


@pytest.mark.parametrize("word", ["none", "None", "null", "false"])
def test_words_for_none_turn_item_cold_start_off(word):
    assert ColdStartConfig(new_item_quantile=word).new_item_quantile is None


def test_the_shares_may_be_off_by_rounding():
    assert ColdStartConfig(split_fractions=(0.7, 0.1, 0.2000001)).split_fractions[2] > 0.2


def test_no_item_cold_start_is_allowed():
    assert ColdStartConfig(new_item_quantile=None).new_item_quantile is None


def test_from_mapping_applies_mappings_in_turn_then_overrides():
    split = {"seed": 4, "split_method": "time", "split_fractions": [0.6, 0.2, 0.2]}
    options = {"seed": 5, "min_eval_ratings": 20}
    c = ColdStartConfig.from_mapping(split, None, options, n_query=7)
    assert (c.seed, c.split_method, c.split_fractions) == (5, "time", (0.6, 0.2, 0.2))
    assert (c.min_eval_ratings, c.n_query) == (20, 7)
    assert ColdStartConfig.from_mapping(split, seed=9).seed == 9
    assert ColdStartConfig.from_mapping() == ColdStartConfig()


def test_from_mapping_reads_dashes_as_underscores():
    c = ColdStartConfig.from_mapping({"support-sizes": [3, 6], "new-item-quantile": 0.5})
    assert c.support_sizes == (3, 6) and c.new_item_quantile == 0.5


def test_from_mapping_refuses_unknown_keys_listing_the_known_ones():
    with pytest.raises(CardError, match=r"unknown cold-start option 'support_size'; known: "
                       r"max_categories, .*support_sizes"):
        ColdStartConfig.from_mapping({"support_size": 5})
    with pytest.raises(CardError, match="unknown cold-start option 'shots'"):
        ColdStartConfig.from_mapping(shots=5)


def test_false_turns_item_cold_start_off():
    assert ColdStartConfig.from_mapping({"new_item_quantile": False}).new_item_quantile is None


def test_from_mapping_checks_the_result():
    with pytest.raises(CardError, match="split_fractions must be 3 shares"):
        ColdStartConfig.from_mapping({"split_fractions": [0.5, 0.6, 0.1]})


def test_with_changes_a_copy_and_checks_it():
    c = ColdStartConfig()
    d = c.with_(seed=3, support_sizes=[2])
    assert (d.seed, d.support_sizes, c.seed) == (3, (2,), 0)
    with pytest.raises(CardError):
        c.with_(n_query=0)


def test_to_dict_is_json_and_reads_back_the_same():
    c = ColdStartConfig(seed=2, support_sizes=(4, 8), new_item_quantile=None, protocol="melu")
    d = c.to_dict()
    assert d["split_fractions"] == [0.7, 0.1, 0.2] and d["support_sizes"] == [4, 8]
    assert set(d) == CONFIG_KEYS
    assert ColdStartConfig.from_mapping(json.loads(json.dumps(d))) == c
