"""Classic rating baselines: meta-train-only fits, shrinkage, MF by ALS, the builder."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from fewshot_apps.domains.recsys.baselines import (
    ItemMeanBaseline,
    MatrixFactorizationBaseline,
    build_rec_baseline,
    rec_baseline_names,
)
from fewshot_apps.errors import FewshotError

FAST_MF = {"epochs": 3}  # the fit's properties hold from the first epoch; keep tests quick


def _frame(users, items, ratings) -> pd.DataFrame:
    return pd.DataFrame({"user_index": users, "item_index": items, "rating": ratings})


def _episodes(ds, k: int):
    return [ep for ep in ds.evaluation_episodes("test", seed=0) if ep.support_size == k]


@pytest.fixture(scope="module")
def fitted(ml_small):
    return {
        name: build_rec_baseline(name, ml_small, seed=0, **(FAST_MF if name == "mf" else {}))
        for name in rec_baseline_names()
    }


def test_registry_and_interface(fitted, ml_small):
    assert rec_baseline_names() == ["global-mean", "item-mean", "popularity", "mf", "item-knn"]
    ep = _episodes(ml_small, 5)[0]
    for name, model in fitted.items():
        assert model.name == name and model.family == "classic" and model.kind == "regression"
        assert model.describe()["name"] == name
        pred = model.fit_predict(ep.support_examples, ep.support_labels, ep.query_examples)
        assert pred.shape == ep.query_examples.shape and pred.dtype == np.float64
        assert np.isfinite(pred).all()
        assert model.fit_predict(ep.support_examples, ep.support_labels, []).shape == (0,)


def test_fits_see_meta_train_users_only(ml_small):
    """Changing every valid / test user's ratings (and every new-item rating) changes no
    fitted number; changing one meta-train rating does."""
    i = ml_small.interactions
    outside = (i["split"] != "train") | i["new_item"]
    assert outside.any()
    changed = dataclasses.replace(
        ml_small, interactions=i.assign(rating=np.where(outside, 0.5, i["rating"]).astype(np.float32))
    )
    for name in ("global-mean", "item-mean", "popularity", "mf"):
        opts = FAST_MF if name == "mf" else {}
        a = build_rec_baseline(name, ml_small, **opts)
        b = build_rec_baseline(name, changed, **opts)
        assert a.global_mean == b.global_mean
        if name in ("item-mean", "popularity"):
            np.testing.assert_array_equal(a.base, b.base)
        if name == "mf":
            np.testing.assert_array_equal(a.item_factors, b.item_factors)
            np.testing.assert_array_equal(a.item_bias, b.item_bias)
    # The check has teeth: a meta-train rating does move the item means.
    row = np.flatnonzero(~outside.to_numpy())[0]
    ratings = i["rating"].to_numpy().copy()
    ratings[row] = 5.5 - ratings[row]
    moved = dataclasses.replace(ml_small, interactions=i.assign(rating=ratings))
    assert not np.array_equal(build_rec_baseline("item-mean", ml_small).base,
                              build_rec_baseline("item-mean", moved).base)


def test_item_statistics_match_the_dataset(fitted, ml_small):
    item_mean = fitted["item-mean"]
    np.testing.assert_array_equal(item_mean.count, ml_small.item_stats.count)
    assert item_mean.global_mean == pytest.approx(ml_small.item_stats.global_mean, abs=1e-6)
    # Items without meta-train ratings (new items included) get the global mean.
    unrated = item_mean.count == 0
    new = ml_small.new_items.mask
    assert new.any() and unrated[new].all()
    np.testing.assert_allclose(item_mean.base[unrated], item_mean.global_mean)


def test_item_mean_beats_global_mean_at_support_10(fitted, ml_small):
    episodes = _episodes(ml_small, 10)
    assert len(episodes) == len(ml_small.taskset.test)

    def mae(model):
        errors = [
            model.fit_predict(ep.support_examples, ep.support_labels, ep.query_examples)
            - ep.query_labels
            for ep in episodes
        ]
        return float(np.abs(np.concatenate(errors)).mean())

    gm, im = mae(fitted["global-mean"]), mae(fitted["item-mean"])
    assert im < gm - 0.05, (im, gm)


def test_bayesian_average_and_shrunk_user_offset():
    # item 0: one 5; item 1: four 3s; item 2: never rated. Global mean 3.4.
    train = _frame([0, 1, 1, 2, 2], [0, 1, 1, 1, 1], [5.0, 3.0, 3.0, 3.0, 3.0])
    m = ItemMeanBaseline(train, 3, prior_weight=2.0, user_prior=3.0)
    np.testing.assert_allclose(m.base, [(5 + 2 * 3.4) / 3, (12 + 2 * 3.4) / 6, 3.4])
    # Two support ratings 1 above their items' base: offset 2 / (2 + 3).
    pred = m.fit_predict([0, 1], m.base[[0, 1]] + 1.0, [2])
    np.testing.assert_allclose(pred, [3.4 + 0.4])
    off = ItemMeanBaseline(train, 3, prior_weight=2.0, user_offset=False)
    np.testing.assert_allclose(off.fit_predict([0, 1], [5.0, 5.0], [2]), [3.4])


def test_popularity_ranks_by_meta_train_count(fitted, ml_small):
    pop = fitted["popularity"]
    ep = _episodes(ml_small, 10)[0]
    items = np.arange(len(ml_small.item_vocab))
    pred = pop.fit_predict(ep.support_examples, ep.support_labels, items)
    count = ml_small.item_stats.count
    order = np.argsort(count, kind="stable")
    assert (np.diff(pred[order]) >= 0).all()  # more ratings, higher score
    strictly = np.diff(count[order]) > 0
    assert (np.diff(pred[order])[strictly] > 0).all()
    assert pred.min() > 0.5 and pred.max() < 5.5  # rating-like values


def test_mf_loss_decreases_and_is_seeded(ml_small):
    a = build_rec_baseline("mf", ml_small, seed=0, **FAST_MF)
    b = build_rec_baseline("mf", ml_small, seed=0, **FAST_MF)
    c = build_rec_baseline("mf", ml_small, seed=1, **FAST_MF)
    assert len(a.losses) == FAST_MF["epochs"]
    # Exact ALS steps never increase the regularized objective.
    assert all(later <= earlier + 1e-9 for earlier, later in zip(a.losses, a.losses[1:]))
    assert a.losses[-1] < a.losses[0]
    assert a.train_rmse[-1] < 0.8
    np.testing.assert_array_equal(a.item_factors, b.item_factors)
    assert not np.allclose(a.item_factors, c.item_factors)
    ep = _episodes(ml_small, 5)[0]
    np.testing.assert_array_equal(
        a.fit_predict(ep.support_examples, ep.support_labels, ep.query_examples),
        b.fit_predict(ep.support_examples, ep.support_labels, ep.query_examples),
    )


def test_mf_new_items_and_new_users(fitted, ml_small):
    mf = fitted["mf"]
    new = ml_small.new_items.mask
    assert (mf.item_factors[new] == 0).all() and (mf.item_bias[new] == 0).all()
    ep = _episodes(ml_small, 20)[0]
    p, b = mf.fit_user(ep.support_examples, ep.support_labels.astype(np.float64))
    # New items fall back to global mean + user bias.
    pred = mf.fit_predict(ep.support_examples, ep.support_labels, np.flatnonzero(new)[:5])
    np.testing.assert_allclose(pred, mf.global_mean + b)
    # The user's vector is the ridge solution with the items fixed.
    x = np.c_[mf.item_factors[ep.support_examples], np.ones(20)]
    t = ep.support_labels.astype(np.float64) - mf.global_mean - mf.item_bias[ep.support_examples]
    reg = np.r_[np.full(mf.factors, mf.user_reg_factors), mf.user_reg_bias]
    np.testing.assert_allclose(np.r_[p, b], np.linalg.solve(x.T @ x + np.diag(reg), x.T @ t))


def test_mf_recovers_a_low_rank_matrix():
    rng = np.random.default_rng(0)
    users, items = np.meshgrid(np.arange(60), np.arange(40), indexing="ij")
    u, v = rng.normal(size=(60, 2)), rng.normal(size=(40, 2))
    ratings = 3 + (u @ v.T)[users, items]
    keep = rng.random(users.shape) < 0.7
    m = MatrixFactorizationBaseline(
        _frame(users[keep], items[keep], ratings[keep]), 41, factors=2, reg_factors=0.1,
        reg_bias=0.1, epochs=30,
    )
    assert m.train_rmse[-1] < 0.05
    # A new user with the same structure: predicted from 15 ratings.
    w = rng.normal(size=2)
    truth = 3 + v @ w
    pred = m.fit_predict(np.arange(15), truth[:15], np.arange(15, 41))
    assert np.abs(pred[:-1] - truth[15:]).mean() < 0.2
    assert pred[-1] == pytest.approx(m.global_mean + m.fit_user(np.arange(15), truth[:15])[1])


def test_bad_input_and_builder_errors(fitted, ml_small):
    m = fitted["item-mean"]
    with pytest.raises(FewshotError, match="outside"):
        m.fit_predict([0], [4.0], [len(ml_small.item_vocab)])
    with pytest.raises(FewshotError, match="support ratings"):
        m.fit_predict([0, 1], [4.0], [2])
    with pytest.raises(FewshotError, match=r"unknown recommendation baseline 'svd\+\+'; known: "
                       "global-mean, item-knn, item-mean, mf, popularity$"):
        build_rec_baseline("svd++", ml_small)
    with pytest.raises(FewshotError, match="unknown recommendation baseline 'rf'"):
        build_rec_baseline("rf", ml_small)  # another domain's
    with pytest.raises(FewshotError, match="item-mean"):
        build_rec_baseline("item-mean", ml_small, factors=3)
    clipped = build_rec_baseline("item-mean", ml_small, clip=True)
    pred = clipped.fit_predict([0, 1], [5.0, 5.0], np.arange(len(ml_small.item_vocab)))
    assert pred.max() <= 5.0 and clipped.settings()["clip"] is True
