"""Implicit feedback (user-item pairs, no ratings): the learners train the implicit
objective alone, are selected on all-item nDCG@10, and rank by their who-watches score."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fewshot_apps.core.fit import train_learner
from fewshot_apps.core.persistence import load_model
from fewshot_apps.domains.recsys.adapter import IMPLICIT_LEARNER_DEFAULTS
from fewshot_apps.domains.recsys.config import ColdStartConfig
from fewshot_apps.domains.recsys.dataset import build_recsys_dataset
from fewshot_apps.domains.recsys.readers import read_interactions_csv

SETTINGS = {"steps": 4, "eval_every": 2, "device": "cpu", "support_size": 5, "n_query": 5,
            "encoder.hidden": 8, "encoder.depth": 1, "encoder.out_dim": 8}


@pytest.fixture(scope="module")
def implicit_ds(tmp_path_factory):
    """40 users, each watching 25-39 of 80 items, more often the low-numbered ones."""
    rng = np.random.default_rng(0)
    popular = np.linspace(2.0, 0.1, 80)
    lines = ["user,item"]
    for u in range(40):
        for i in rng.choice(80, size=25 + u % 15, replace=False, p=popular / popular.sum()):
            lines.append(f"u{u},i{i}")
    path = tmp_path_factory.mktemp("implicit") / "pairs.csv"
    path.write_text("\n".join(lines) + "\n")
    config = ColdStartConfig(min_eval_ratings=15, support_sizes=(5,), new_item_quantile=None,
                             split_fractions=(0.6, 0.2, 0.2))
    return build_recsys_dataset(read_interactions_csv(path), config)


def test_implicit_data_has_its_own_defaults_and_relevance(implicit_ds):
    ds = implicit_ds
    assert ds.implicit and ds.config.relevance_threshold == 1.0
    assert ds.learner_defaults == IMPLICIT_LEARNER_DEFAULTS
    assert ds.learner_defaults["label_loss_weight"] == 0.0
    assert ds.validation_metric == "all-item nDCG@10"
    episode = ds.evaluation_episodes("valid")[0]
    assert episode.extras["heldout_relevant"].all()  # every held-out pair is relevant


@pytest.mark.parametrize("name", ["cnp", "metasgd"])
def test_a_learner_trains_on_pairs_and_ranks_by_who_watches(implicit_ds, tmp_path, name):
    learner, result = train_learner(implicit_ds, name, tmp_path / name, SETTINGS,
                                    progress=False)
    assert result.best_valid is not None and 0.0 <= result.best_valid <= 1.0
    config = json.loads((tmp_path / name / "config.json").read_text())["learner"]["config"]
    assert (config["label_loss_weight"], config["rank_rating_weight"]) == (0.0, 0.0)
    model = load_model(tmp_path / name, build_encoder=lambda c: _encoder(implicit_ds, c))
    assert model.implicit is not None and model.rank_share == 0.0
    ep = implicit_ds.evaluation_episodes("test")[0]
    candidates = np.setdiff1d(np.arange(len(implicit_ds.item_vocab)), ep.support_examples)
    scores = model.fit_rank(ep.support_examples, ep.support_labels, candidates)
    assert scores.shape == candidates.shape and np.isfinite(scores).all()
    rows, _ = implicit_ds.evaluate("cold-start", model, seeds=[0])
    assert {"recall@10", "ndcg@10"} <= set(rows["metric"])


def _encoder(ds, config):
    from fewshot_apps.domains.recsys.encoder import ItemGraphEncoder

    return ItemGraphEncoder.from_config(config["encoder"], ds.graph)
