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
    ({"split_method": "alphabetical"}, "split_method must be 'random' or 'time'"),
    ({"split_fractions": (0.5, 0.5)}, r"split_fractions must be 3 shares summing to 1, not "
                                      r"\[0.5, 0.5\]"),
    ({"split_fractions": (0.8, 0.1, 0.2)}, "3 shares summing to 1"),
    ({"split_fractions": (1.2, -0.1, -0.1)}, "3 shares summing to 1"),
    ({"support_sizes": ()}, r"support_sizes must be positive, not \[\]"),
    ({"support_sizes": (5, 0)}, r"support_sizes must be positive, not \[5, 0\]"),
    ({"n_query": 0}, "n_query and melu_n_query must be at least 1"),
    ({"melu_n_query": 0}, "n_query and melu_n_query must be at least 1"),
    ({"new_item_quantile": 1.0}, r"new_item_quantile must be in \(0, 1\) or None, not 1.0"),
    ({"new_item_quantile": 0}, r"new_item_quantile must be in \(0, 1\) or None, not 0"),
])  # fmt: skip
def test_impossible_settings_are_card_errors(changes, message):
    with pytest.raises(CardError, match=message):
        ColdStartConfig(**changes)


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
