"""core/domain.py: the vocabulary's compatibility map, and older saved models' domains."""

from __future__ import annotations

import pytest

from fewshot_apps.core.domain import SETTING_ALIASES, canonical_settings, model_domain
from fewshot_apps.errors import FewshotError


def test_older_episode_names_read_as_the_current_ones():
    assert canonical_settings({"k_shot": "8", "n_query": 16}) == {"shots": "8", "n_query": 16}
    assert canonical_settings({"k_support": 5}) == {"support_size": 5}
    assert canonical_settings({"n_support": 5, "support_size": 5}) == {"support_size": 5}
    assert set(SETTING_ALIASES.values()) == {"shots", "support_size"}


def test_an_old_and_a_new_name_that_disagree_are_refused():
    with pytest.raises(FewshotError, match="both 'k_shot' .* and 'shots'"):
        canonical_settings({"k_shot": 8, "shots": 10})


def test_a_model_saved_before_configs_named_their_domain_finds_it_by_its_encoder():
    assert model_domain({"domain": "recsys"}) == "recsys"
    assert model_domain({"encoder": {"name": "molecule-gin"}}) == "molecules"
    assert model_domain({"encoder": {"name": "item-graph"}}) == "recsys"
    assert model_domain({"encoder": {"name": "table"}}) is None  # a domain-free encoder


def test_old_settings_train_the_same_episodes(tmp_path):
    """``k_shot`` (written by suites, scripts and configs before the rename) still sets the
    training support: the saved episode settings say ``shots``."""
    import json

    import numpy as np

    from fewshot_apps.core.fit import split_run_settings

    class Data:
        episode_defaults = {"shots": 10, "support_size": None, "n_query": 16, "valid_draws": 3}

    _, episode, _, _ = split_run_settings(Data(), {"k_shot": "4", "steps": 2})
    assert episode == {"shots": 4, "support_size": None, "n_query": 16, "valid_draws": 3}
    _, episode, _, _ = split_run_settings(Data(), {"support_size": 12})
    assert episode["support_size"] == 12 and episode["shots"] is None
    assert json.loads(json.dumps(episode)) == episode and np.isscalar(episode["n_query"])
