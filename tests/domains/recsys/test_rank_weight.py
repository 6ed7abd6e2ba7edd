"""domains/recsys/rank_weight.py: fit_rank's mix of who-watches score and predicted rating,
chosen on validation users."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fewshot_apps.core.encoders import TableEncoder
from fewshot_apps.core.learners import build_learner
from fewshot_apps.domains.recsys.rank_weight import GRID, choose_rank_weight

from .test_recommend import ds  # noqa: F401  (the tiny data set fixture)


def learner(ds, **config):  # noqa: F811
    torch.manual_seed(0)
    features = torch.randn(len(ds.item_vocab), 6)
    return build_learner("cnp", TableEncoder(features, hidden=8, out_dim=4), "regression",
                         **config)


def test_the_weight_is_chosen_from_the_grid_and_recorded(ds):  # noqa: F811
    model = learner(ds, rank_loss_weight=1.0)
    episodes = ds.validation_episodes({"valid_draws": 2}, seed=0)
    record = choose_rank_weight(model, episodes, len(ds.item_vocab))
    assert record is not None and record["n_episodes"] > 0
    assert record["grid"] == list(GRID) and len(record["ndcg@10"]) == len(GRID)
    best = record["rank_rating_weight"]
    assert model.config.rank_rating_weight == best == model.rank_share
    # the chosen value has the best validation nDCG@10; ties go to the larger rating share
    scores = np.array(record["ndcg@10"])
    assert scores[GRID.index(best)] == scores.max()
    assert all(s < scores.max() for a, s in zip(GRID, scores) if a > best)


def test_a_grid_of_one_value_and_a_model_without_head(ds):  # noqa: F811
    episodes = ds.validation_episodes({"valid_draws": 1}, seed=0)
    model = learner(ds, rank_loss_weight=1.0)
    assert choose_rank_weight(model, episodes, len(ds.item_vocab), grid=(0.5,))[
        "rank_rating_weight"] == 0.5
    plain = learner(ds)
    assert choose_rank_weight(plain, episodes, len(ds.item_vocab)) is None
    assert plain.config.rank_rating_weight is None and plain.rank_share == 1.0
    assert choose_rank_weight(model, [], len(ds.item_vocab)) is None


@pytest.mark.parametrize("bad", [{"rank_rating_weight": "half"}, {"rank_loss_weight": -0.5}])
def test_bad_settings_are_refused_when_building(ds, bad):  # noqa: F811
    from fewshot_apps.errors import FewshotError

    with pytest.raises(FewshotError, match="rank_"):
        learner(ds, **bad)


def test_the_cold_start_protocol_ranks_by_fit_rank_only_when_it_is_not_the_rating(ds):  # noqa: F811
    from fewshot_apps.domains.recsys.evaluation import _rank_scores, candidate_items

    ep = ds.evaluation_episodes("test")[0]
    candidates = candidate_items(len(ds.item_vocab), ep.support_examples)
    assert _rank_scores(learner(ds), ep, candidates) is None  # no head: rank by rating
    mixed = learner(ds, rank_loss_weight=1.0, rank_rating_weight=0.5)
    np.testing.assert_allclose(_rank_scores(mixed, ep, candidates),
                               mixed.fit_rank(ep.support_examples, ep.support_labels, candidates))
    mixed.config.rank_rating_weight = 1.0
    assert _rank_scores(mixed, ep, candidates) is None


def test_with_a_support_affinity_the_scale_is_chosen_with_the_weight(ds):  # noqa: F811
    from fewshot_apps.domains.recsys.rank_weight import AFFINITY_SCALES

    torch.manual_seed(0)
    encoder = ds.make_encoder({"hidden": 8, "out_dim": 4, "depth": 1})
    assert encoder.has_support_affinity
    model = build_learner("cnp", encoder, "regression", rank_loss_weight=1.0)
    assert model.implicit.uses_affinity and model.affinity_scale == 1.0
    episodes = ds.validation_episodes({"valid_draws": 2}, seed=0)
    record = choose_rank_weight(model, episodes, len(ds.item_vocab))
    assert record["scales"] == list(AFFINITY_SCALES)
    table = np.array(record["ndcg@10_by_scale"])
    assert table.shape == (len(AFFINITY_SCALES), len(GRID))
    i = AFFINITY_SCALES.index(record["rank_affinity_scale"])
    j = GRID.index(record["rank_rating_weight"])
    assert table[i, j] == table.max() and record["ndcg@10"] == list(table[i])
    assert model.config.rank_affinity_scale == record["rank_affinity_scale"] == model.affinity_scale
    # the score is linear in the scale, as the choice assumes
    ep = episodes[0]
    candidates = np.setdiff1d(np.arange(len(ds.item_vocab)), ep.support_examples)
    at = {k: model.implicit_scores(ep.support_examples, candidates, affinity_scale=k).double()
          for k in (0.0, 1.0, 3.0)}
    torch.testing.assert_close(at[3.0], at[0.0] + 3.0 * (at[1.0] - at[0.0]))
    # a scale given in the settings is kept; only the weight is chosen
    fixed = build_learner("cnp", encoder, "regression", rank_loss_weight=1.0,
                          rank_affinity_scale=2.0)
    assert choose_rank_weight(fixed, episodes, len(ds.item_vocab))["scales"] == [2.0]
    assert fixed.config.rank_affinity_scale == 2.0
    with pytest.raises(Exception, match="rank_affinity_scale"):
        build_learner("cnp", encoder, "regression", rank_loss_weight=1.0,
                      rank_affinity_scale=-1.0)
