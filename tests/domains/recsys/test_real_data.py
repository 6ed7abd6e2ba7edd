"""Integration tests on the real ml-latest-small in FEWSHOT_DATA_DIR (../shared/data)."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pandas as pd
import pytest
import torch

from fewshot_apps.core.tasks import TaskTooSmallError
from fewshot_apps.domains.recsys.config import ColdStartConfig
from fewshot_apps.domains.recsys.dataset import build_recsys_dataset, load_recsys_dataset
from fewshot_apps.domains.recsys.episodes import (
    ColdStartSampler,
    MeLUSampler,
    evaluation_episodes,
    graded_gain,
)
from fewshot_apps.domains.recsys.inspect import inspect_dataset
from fewshot_apps.domains.recsys.readers import ReadReport
from fewshot_apps.domains.recsys.splits import split_users
from fewshot_apps.domains.recsys.vocab import Vocabulary, load_vocabularies
from fewshot_apps.errors import ContentCheckError
from fewshot_apps.sources import load_card


def test_counts_match_the_published_ones(ml_small_data):
    assert ml_small_data.counts() == {
        "ratings": 100_836,
        "users": 610,
        "rated_items": 9_724,
        "listed_items": 9_742,
        "tags": 3_683,
    }
    assert ml_small_data.report.skipped == {}
    assert str(ml_small_data.scale) == "0.5-5.0 in steps of 0.5"
    items = ml_small_data.items
    assert items["year"].isna().sum() == 13  # titles without a (single) year: not guessed
    assert (items["genres"] == "").sum() == 34  # "(no genres listed)"
    assert any("13 of 9742 items have no release year" in n for n in ml_small_data.report.notes)


def test_card_loads_and_checks_content(data_dir, tmp_path):
    card = load_card("movielens-latest-small", data_dir=data_dir)
    assert card.domain == "recsys" and card.format == "movielens-latest"
    assert card.downloads[0].url.endswith("ml-latest-small.zip") and card.downloads[0].strip == 1
    ds = load_recsys_dataset(card, seed=0, cache_dir=tmp_path)
    assert len(ds.interactions) == 100_836 and not ds.read_cached
    again = load_recsys_dataset(card, seed=0, cache_dir=tmp_path)
    assert again.read_cached and len(again.interactions) == 100_836
    wrong = dataclasses.replace(card, expected={**card.expected, "ratings": 100_000})
    with pytest.raises(ContentCheckError, match="expected 100,000 ratings, found 100,836"):
        load_recsys_dataset(wrong, use_cache=False)


def test_user_split_is_disjoint_seeded_and_sized(ml_small):
    split = ml_small.user_split
    assert len(split) == 610 and split.index.is_unique
    assert split.value_counts().to_dict() == {"train": 427, "test": 122, "valid": 61}
    cfg = ColdStartConfig()
    pd.testing.assert_series_equal(split_users(ml_small.data.ratings, cfg), split)
    other = split_users(ml_small.data.ratings, cfg.with_(seed=1))
    assert not other.equals(split)
    ts = ml_small.taskset
    names = [{t.name for t in ts.split(s)} for s in ("train", "valid", "test")]
    assert not (names[0] & names[1]) and not (names[0] & names[2]) and not (names[1] & names[2])
    # time-based split: every meta-train user started before every test user
    tsplit = split_users(ml_small.data.ratings, cfg.with_(split_method="time"))
    first = ml_small.data.ratings.groupby("user")["timestamp"].min()
    assert first[tsplit == "train"].max() <= first[tsplit == "test"].min()


def test_tasks_one_per_user_and_evaluated_users(ml_small):
    ts, rep = ml_small.taskset, ml_small.task_report
    assert ts.kind == "regression"
    assert len(ts.train) == 427
    for s in ("valid", "test"):
        assert all(len(t) >= 30 for t in ts.split(s))
        assert rep.tasks[s] + sum(rep.excluded[s].values()) == rep.users[s]
    # 501 of the 610 users have >= 30 ratings; the evaluated ones are those in valid/test
    per_user = ml_small.interactions.groupby("user").size()
    evaluated = {t.name for t in ts.valid + ts.test}
    eligible = {str(u) for u in per_user[per_user >= 30].index}
    assert evaluated == eligible & {str(u) for u in ml_small.user_split.index[ml_small.user_split != "train"]}
    assert (per_user >= 30).sum() == 501
    # every k is scored on the same users
    for k in (5, 10, 20):
        assert rep.per_size[k]["test"] == (len(ts.test), 0)
    task = ts.test[0]
    assert task.examples.dtype == np.int64 and task.labels.dtype == np.float32
    assert np.all(np.diff(task.extras["timestamp"]) >= 0)
    assert ml_small.item_vocab.ids[task.examples[0]] in set(
        ml_small.interactions.loc[ml_small.interactions["user"] == int(task.name), "item"]
    )


def test_no_test_user_rating_or_tag_reaches_graph_or_statistics(ml_small, ml_small_data):
    """Scramble every test and valid user's ratings and tags: nothing used at training
    time may change, and the graph has no node or edge of theirs."""
    ds = ml_small
    held_out = set(ds.user_split.index[ds.user_split != "train"])
    graph_users = set(np.asarray(ds.user_vocab.ids)[ds.graph["user"].node_id.numpy()])
    assert graph_users == set(ds.user_split.index[ds.user_split == "train"])
    assert not graph_users & held_out

    rng = np.random.default_rng(0)
    ratings = ml_small_data.ratings.copy()
    mask = ratings["user"].isin(held_out).to_numpy()
    ratings.loc[mask, "rating"] = rng.choice(np.arange(0.5, 5.01, 0.5), mask.sum()).astype(np.float32)
    tags = ml_small_data.tags.copy()
    tmask = tags["user"].isin(held_out)
    tags.loc[tmask, "tag"] = "leaked test tag"
    tags.loc[tmask, "item"] = rng.choice(ml_small_data.items["item"], tmask.sum())
    changed = dataclasses.replace(ml_small_data, ratings=ratings, tags=tags, report=ReadReport())
    other = build_recsys_dataset(changed, ds.config)

    assert "leaked test tag" not in other.item_features.tag_names
    assert other.item_features.tag_names == ds.item_features.tag_names
    np.testing.assert_array_equal(other.item_features.tags, ds.item_features.tags)
    np.testing.assert_array_equal(other.item_stats.count, ds.item_stats.count)
    np.testing.assert_array_equal(other.item_stats.mean, ds.item_stats.mean)
    assert other.item_stats.global_mean == ds.item_stats.global_mean
    for key in ds.graph.node_types + ds.graph.edge_types:
        for attr, value in ds.graph[key].items():
            same = (torch.equal(value, other.graph[key][attr]) if torch.is_tensor(value)
                    else value == other.graph[key][attr])  # e.g. the users' task names
            assert same, (key, attr)
    assert (ds.graph.rating_mean, ds.graph.rating_scale) == (
        other.graph.rating_mean, other.graph.rating_scale)
    # and the scrambling did reach the test tasks
    assert not all(
        np.array_equal(a.labels, b.labels) for a, b in zip(ds.taskset.test, other.taskset.test)
    )


def test_support_and_query_never_share_an_item(ml_small):
    tasks = ml_small.taskset.test
    n = 0
    for ep in evaluation_episodes(tasks, ml_small.config, seed=3, n_draws=2):
        assert not set(ep.support_examples) & set(ep.query_examples)
        assert len(ep.query_examples) == 10
        held = set(ep.extras["heldout_examples"])
        assert set(ep.query_examples) <= held and not held & set(ep.support_examples)
        assert len(held) + ep.support_size == len(next(t for t in tasks if t.name == ep.task))
        n += 1
    assert n == 3 * 2 * len(tasks)
    ep = ColdStartSampler(20).sample(tasks[0], 0)
    np.testing.assert_allclose(ep.extras["query_gain"], 2.0 ** ep.query_labels - 1)
    assert ep.extras["has_relevant_heldout"] == bool((ep.extras["heldout_labels"] >= 4).any())
    again = ColdStartSampler(20).sample(tasks[0], 0)
    np.testing.assert_array_equal(ep.support_index, again.support_index)
    np.testing.assert_array_equal(graded_gain(np.array([0.0, 1.0, 4.0])), [0, 1, 15])


def test_new_items_have_no_rating_edges(ml_small):
    ds = ml_small
    new = ds.new_items.mask
    assert ds.new_items.count > 0 and ds.new_items.quantile == 0.8
    ts_all = np.sort(ds.interactions["timestamp"].to_numpy())
    assert np.mean(ts_all <= ds.new_items.cutoff) >= 0.8
    rated_items = ds.graph["user", "rates", "item"].edge_index[1].numpy()
    assert not new[rated_items].any()
    assert (ds.graph["item"].n_ratings.numpy()[new] == 0).all()
    # new items keep their nodes and attribute edges
    assert ds.graph["item"].num_nodes == len(ds.item_vocab) == 9_742
    genre_items = set(ds.graph["item", "has_genre", "genre"].edge_index[0].numpy())
    assert genre_items & set(np.flatnonzero(new))
    # no meta-train task holds a new-item rating; test tasks flag theirs
    assert not any(t.extras["new_item"].any() for t in ds.taskset.train)
    assert sum(int(t.extras["new_item"].sum()) for t in ds.taskset.test) > 0
    assert ds.task_report.new_item_ratings["train"] == int(
        ((ds.interactions["split"] == "train") & ds.interactions["new_item"]).sum()
    )
    assert ds.graph["user", "rates", "item"].num_edges == len(ds.train_interactions())


def test_graph_vocabulary_and_features(ml_small, tmp_path):
    ds = ml_small
    g = ds.graph
    assert g["item"].x.shape == (9_742, len(ds.item_features.names()))
    assert g["genre"].num_nodes == 19  # 20 genre labels less "(no genres listed)"
    assert g["tag"].num_nodes == 100
    ei = g["user", "rates", "item"].edge_index
    assert torch.equal(g["item", "rated_by", "user"].edge_index, ei.flip(0))
    # item year: missing stays missing, with a flag column
    year = ds.item_features.year
    assert np.isnan(year).sum() == 13
    miss_col = ds.item_features.names().index("year_missing")
    assert g["item"].x[:, miss_col].sum().item() == 13
    # vocabularies are stable and round-trip through JSON
    path = ds.save_vocabularies(tmp_path / "vocab.json")
    vocabs = load_vocabularies(path)
    assert vocabs["item"].ids == ds.item_vocab.ids and vocabs["user"].ids == ds.user_vocab.ids
    assert vocabs["item"].indices(["1", 1, 193609, 999_999_999]).tolist() == [0, 0, 9_741, -1]
    assert Vocabulary("item", list(reversed(ds.item_vocab.ids))).fingerprint() != (
        ds.item_vocab.fingerprint()
    )


def test_melu_protocol(ml_small_data):
    ds = build_recsys_dataset(ml_small_data, ColdStartConfig(protocol="melu"))
    for split in ("train", "valid", "test"):
        assert all(13 <= len(t) <= 100 for t in ds.taskset.split(split))
    ep = MeLUSampler().sample(ds.taskset.test[0], 0)
    assert len(ep.query_index) == 10 and ep.support_size == len(ds.taskset.test[0]) - 10
    with pytest.raises(TaskTooSmallError):
        ColdStartSampler(5).sample(ds.taskset.test[0].subset(np.arange(12)), 0)


def test_building_is_fast_and_inspect_prints_the_counts(data_dir, tmp_path):
    start = time.perf_counter()
    text = inspect_dataset(load_card("movielens-latest-small", data_dir=data_dir), cache_dir=tmp_path)
    assert time.perf_counter() - start < 10
    for expected in (
        "users                  610",
        "9,724 rated / 9,742 listed",
        "ratings                100,836",
        "0.5-5.0 in steps of 0.5",
        "min 20 / median 70.5 / max 2,698",
        "items with features",
        "skipped rows           none",
        "matches the card",
        "tasks and graph",
    ):
        assert expected in text, expected
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("tasks and graph"))
    assert float(line.split()[3]) < 10


def test_graph_rating_statistics(ml_small):
    """Nodes carry how well they were rated (SAGE messages do not carry edge ratings)."""
    ds = ml_small
    item = ds.graph["item"].rating_stats.numpy()
    user = ds.graph["user"].rating_stats.numpy()
    assert item.shape == (9_742, 2) and user.shape == (ds.graph["user"].num_nodes, 2)
    count = ds.item_stats.count
    np.testing.assert_allclose(item[:, 1], np.log1p(count), rtol=1e-6)
    assert (item[ds.new_items.mask] == 0).all()  # no training rating: at the prior
    # The shrunk mean follows the raw mean for items with many ratings, and lies between
    # the global mean and the raw mean for every rated item.
    rated = count > 0
    rating = ds.train_interactions()["rating"].to_numpy(np.float64)
    offset = (ds.item_stats.mean[rated] - rating.mean()) / rating.std()
    assert np.all(np.abs(item[rated, 0]) <= np.abs(offset) + 1e-5)
    assert np.all(np.sign(item[rated, 0]) * np.sign(offset) >= 0)
    many = count[rated] >= 100
    assert np.corrcoef(item[rated, 0][many], offset[many])[0, 1] > 0.99
    assert np.isfinite(user).all() and user[:, 1].min() > 0
