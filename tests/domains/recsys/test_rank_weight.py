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
    from fewshot_apps.domains.recsys.rank_weight import AFFINITY_SCALES, LIKINGS

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
    assert record["likings"] == list(LIKINGS)
    assert model.config.rank_liking == record["rank_liking"] == model.liking
    best_by_liking = record["best_ndcg@10_by_liking"]
    assert max(best_by_liking) == best_by_liking[LIKINGS.index(record["rank_liking"])] == table.max()
    # the score is linear in the scale, as the choice assumes
    ep = episodes[0]
    candidates = np.setdiff1d(np.arange(len(ds.item_vocab)), ep.support_examples)
    at = {k: model.implicit_scores(ep.support_examples, candidates, affinity_scale=k).double()
          for k in (0.0, 1.0, 3.0)}
    torch.testing.assert_close(at[3.0], at[0.0] + 3.0 * (at[1.0] - at[0.0]))
    # a scale given in the settings is kept; only the others are chosen
    fixed = build_learner("cnp", encoder, "regression", rank_loss_weight=1.0,
                          rank_affinity_scale=2.0, rank_liking=0.0)
    fixed_record = choose_rank_weight(fixed, episodes, len(ds.item_vocab))
    assert fixed_record["scales"] == [2.0] and fixed_record["likings"] == [0.0]
    assert fixed.config.rank_affinity_scale == 2.0 and fixed.config.rank_liking == 0.0
    with pytest.raises(Exception, match="rank_affinity_scale"):
        build_learner("cnp", encoder, "regression", rank_loss_weight=1.0,
                      rank_affinity_scale=-1.0)


def test_liking_weights_the_support_items_by_their_ratings(ds):  # noqa: F811
    """``rank_liking`` b: support weights ``softmax(b * (rating - mean) / label_scale)``, so
    with b > 0 the affinity follows the items the user rated highly; b = 0 (or no labels):
    every support item the same, as in training."""
    torch.manual_seed(0)
    model = build_learner("cnp", ds.make_encoder({"hidden": 8, "out_dim": 4, "depth": 1}),
                          "regression", rank_loss_weight=1.0, label_scale=2.0)
    labels = np.array([5.0, 1.0, 3.0])
    assert model._support_weights(labels, 0.0) is None
    assert model._support_weights(None, 1.0) is None
    w = model._support_weights(labels, 1.0)
    torch.testing.assert_close(w, torch.softmax(torch.tensor([1.0, -1.0, 0.0],
                                                             dtype=torch.float64), 0))
    ep = ds.validation_episodes({"valid_draws": 1}, seed=0)[0]
    # every item (the support's too: in this tiny graph only they are co-rated unevenly)
    candidates = np.arange(len(ds.item_vocab))
    plain = model.implicit_scores(ep.support_examples, candidates)
    same = model.implicit_scores(ep.support_examples, candidates,
                                 support_labels=ep.support_labels, liking=0.0)
    torch.testing.assert_close(plain, same)
    varied = np.linspace(1.0, 5.0, len(ep.support_examples))
    liked = model.implicit_scores(ep.support_examples, candidates,
                                  support_labels=varied, liking=2.0)
    assert liked.shape == plain.shape and not torch.allclose(liked, plain)
    with pytest.raises(Exception, match="rank_liking"):
        build_learner("cnp", ds.make_encoder({}), "regression", rank_loss_weight=1.0,
                      rank_liking=-1.0)
