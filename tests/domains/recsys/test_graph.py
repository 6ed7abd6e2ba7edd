"""domains/recsys/graph.py: the user–item–attribute HeteroData, from meta-train users'
ratings of existing items and item attributes only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fewshot_apps.domains.recsys.config import ColdStartConfig
from fewshot_apps.domains.recsys.dataset import build_recsys_dataset
from fewshot_apps.domains.recsys.features import UserFeatures, fit_item_features
from fewshot_apps.domains.recsys.graph import (
    SHRINK_RATINGS,
    build_graph,
    item_rating_features,
    rating_stats,
    shrunk_mean,
)
from fewshot_apps.domains.recsys.readers import RatingScale, ReadReport, RecsysData

# 6 items; item 5 is new. Meta-train users are user-vocabulary indices 1, 4, 5 (of 7).
TRAIN_USERS = np.array([1, 4, 5])
EDGE_USER = np.array([1, 1, 4, 4, 5])
EDGE_ITEM = np.array([0, 1, 1, 2, 0])
EDGE_RATING = np.array([4.0, 2.0, 5.0, 3.0, 1.0])
EDGE_TIME = np.array([10.0, 11.0, 12.0, 13.0, 14.0])
NEW = np.array([False, False, False, False, False, True])


def item_features():
    items = pd.DataFrame(
        {
            "genres": ["A|B", "B", "", "A", "C", "C"],
            "year": [1990.0, 1991.0, np.nan, 1993.0, 1994.0, 1995.0],
        }
    )
    tags = pd.DataFrame({"item_index": [0, 0, 0, 3, 5], "tag": ["x", "x", "y", "y", "x"]})
    return fit_item_features(items, tags, min_tag_count=1)


def graph(**kw):
    args = dict(
        train_user_index=TRAIN_USERS, edge_user_index=EDGE_USER, edge_item_index=EDGE_ITEM,
        edge_rating=EDGE_RATING, edge_timestamp=EDGE_TIME, item_features=item_features(),
        new_items=NEW,
    )  # fmt: skip
    return build_graph(**{**args, **kw})


def test_node_types_and_shapes():
    g = graph(user_names=["u1", "u4", "u5"])
    f = item_features()
    assert g["user"].num_nodes == 3 and g["item"].num_nodes == 6
    assert g["user"].node_id.tolist() == [1, 4, 5] and g["user"].node_id.dtype == torch.int64
    assert g["user"].task_name == ["u1", "u4", "u5"]
    assert g["user"].x.shape == (3, 0) and g["user"].x.dtype == torch.float32
    assert g["user"].rating_stats.shape == (3, 2)
    assert g["item"].x.dtype == torch.float32
    np.testing.assert_array_equal(g["item"].x.numpy(), f.matrix())  # row i = item index i
    assert g["item"].rating_stats.shape == (6, 2) and g["item"].rating_stats.dtype == torch.float32
    assert g["item"].rating_prior.shape == (6,) and g["item"].rating_prior.dtype == torch.float32
    assert g["item"].new.tolist() == NEW.tolist() and g["item"].new.dtype == torch.bool
    assert g["item"].n_ratings.tolist() == [2, 2, 1, 0, 0, 0]
    assert g["item"].n_ratings.dtype == torch.int64
    # one learnable slot per genre and tag
    assert torch.equal(g["genre"].x, torch.eye(3)) and f.genre_names == ["A", "B", "C"]
    assert torch.equal(g["tag"].x, torch.eye(2)) and f.tag_names == ["x", "y"]
    assert g.validate(raise_on_error=True)


def test_rating_edges_use_local_user_nodes_and_carry_rating_and_time():
    g = graph()
    rates = g["user", "rates", "item"]
    # user vocabulary indices 1, 4, 5 -> nodes 0, 1, 2
    assert rates.edge_index.tolist() == [[0, 0, 1, 1, 2], [0, 1, 1, 2, 0]]
    assert rates.edge_index.dtype == torch.int64
    assert rates.edge_attr.shape == (5, 1) and rates.edge_attr.dtype == torch.float32
    assert rates.edge_attr[:, 0].tolist() == EDGE_RATING.tolist()
    assert rates.timestamp.dtype == torch.float64 and rates.timestamp.tolist() == EDGE_TIME.tolist()
    back = g["item", "rated_by", "user"]
    assert torch.equal(back.edge_index, rates.edge_index.flip(0))
    assert torch.equal(back.edge_attr, rates.edge_attr) and torch.equal(
        back.timestamp, rates.timestamp
    )


def test_genre_and_tag_edges_with_tag_counts_as_weights():
    g = graph()
    genre = g["item", "has_genre", "genre"].edge_index
    # A|B, B, -, A, C, C
    assert sorted(map(tuple, genre.T.tolist())) == [(0, 0), (0, 1), (1, 1), (3, 0), (4, 2), (5, 2)]
    assert torch.equal(g["genre", "genre_of", "item"].edge_index, genre.flip(0))
    tag = g["item", "has_tag", "tag"]
    pairs = {tuple(p): w for p, w in zip(tag.edge_index.T.tolist(), tag.edge_weight.tolist())}
    assert pairs == {(0, 0): 2.0, (0, 1): 1.0, (3, 1): 1.0, (5, 0): 1.0}
    assert torch.equal(g["tag", "tag_of", "item"].edge_index, tag.edge_index.flip(0))
    assert torch.equal(g["tag", "tag_of", "item"].edge_weight, tag.edge_weight)
    # a new item keeps its attribute edges: it is reachable without ratings
    assert 5 in genre[0].tolist() and 5 in tag.edge_index[0].tolist()


def test_rating_statistics_and_prior():
    g = graph()
    gm, sd = EDGE_RATING.mean(), EDGE_RATING.std()
    assert g.rating_mean == pytest.approx(gm) and g.rating_scale == pytest.approx(sd)
    k = SHRINK_RATINGS
    prior = [gm + ((4 - gm) + (1 - gm)) / (2 + k), gm + ((2 - gm) + (5 - gm)) / (2 + k),
             gm + (3 - gm) / (1 + k), gm, gm, gm]  # fmt: skip
    np.testing.assert_allclose(g["item"].rating_prior.numpy(), prior, rtol=1e-6)
    stats = g["item"].rating_stats.numpy()
    np.testing.assert_allclose(stats[:, 0], (np.array(prior) - gm) / sd, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(stats[:, 1], np.log1p([2, 2, 1, 0, 0, 0]), rtol=1e-6)
    user = g["user"].rating_stats.numpy()
    np.testing.assert_allclose(user[:, 1], np.log1p([2, 2, 1]), rtol=1e-6)
    np.testing.assert_allclose(user[2, 0], ((1 - gm) / (1 + k)) / sd, rtol=1e-5)


def test_shrunk_mean_lies_between_the_global_and_the_raw_mean():
    node = np.r_[np.zeros(100, np.int64), np.ones(1, np.int64)]
    rating = np.r_[np.full(100, 5.0), [1.0]]
    out = shrunk_mean(node, rating, 3, global_mean=3.0)
    assert out.shape == (3,) and out.dtype == np.float64
    assert 3.0 < out[0] < 5.0 and out[0] == pytest.approx(3.0 + 200 / 125)
    assert 1.0 < out[1] < 3.0 and out[1] == pytest.approx(3.0 - 2 / 26)
    assert out[2] == 3.0  # no ratings: the global mean
    st = rating_stats(node, rating, 3, global_mean=3.0, scale=2.0)
    assert st.shape == (3, 2) and st.dtype == np.float32
    np.testing.assert_allclose(st[:, 0], (out - 3.0) / 2.0, rtol=1e-6)
    stats, prior = item_rating_features(node, rating, 3, 3.0, 2.0)
    assert stats.dtype == prior.dtype == torch.float32 and prior.shape == (3,)
    np.testing.assert_allclose(prior.numpy(), out, rtol=1e-6)


def test_user_features_rows_follow_the_meta_train_users():
    matrix = np.arange(14, dtype=np.float32).reshape(7, 2)
    g = graph(user_features=UserFeatures(["a", "b"], matrix))
    np.testing.assert_array_equal(g["user"].x.numpy(), matrix[[1, 4, 5]])


def test_no_edge_of_a_user_who_is_not_meta_train_nor_to_a_new_item():
    with pytest.raises(ValueError, match="not a meta-train user"):
        graph(edge_user_index=np.array([1, 1, 4, 4, 2]))  # user 2 is not a node
    with pytest.raises(ValueError, match="points at a new item"):
        graph(edge_item_index=np.array([0, 1, 1, 2, 5]))
    with pytest.raises(ValueError, match="2 user names for 3 users"):
        graph(user_names=["a", "b"])


def test_an_edge_of_a_user_beyond_every_meta_train_index_is_refused_too():
    with pytest.raises(ValueError, match="not a meta-train user"):
        graph(edge_user_index=np.array([1, 1, 4, 4, 6]))  # user 6 is not a node


@pytest.mark.parametrize("bad", [-1, -2, -6, -7, 6, 100])
def test_an_edge_to_an_item_index_outside_the_items_is_refused(bad):
    # -1 would read the last (new) item's flag and -2 an existing item's; 6 is past the end
    with pytest.raises(ValueError, match=r"points at no item \(an index outside the 6 items\)"):
        graph(edge_item_index=np.array([0, 1, 1, 2, bad]))


@pytest.mark.parametrize("users", [[1, 4, -1], [-2, 4, 5]])
def test_a_negative_meta_train_user_index_is_refused(users):
    # -1 would take user 4's slot (the table's last), so user 4's edges went to another node
    with pytest.raises(ValueError, match="a meta-train user index is negative"):
        graph(train_user_index=np.array(users))


def test_no_ratings_still_gives_every_item_a_node():
    empty = np.zeros(0)
    g = graph(
        edge_user_index=empty.astype(np.int64), edge_item_index=empty.astype(np.int64),
        edge_rating=empty, edge_timestamp=empty,
    )  # fmt: skip
    assert g["item"].num_nodes == 6 and g["user", "rates", "item"].edge_index.shape == (2, 0)
    assert g.rating_scale == 1.0 and g["item"].n_ratings.sum() == 0
    assert torch.isfinite(g["item"].rating_stats).all()


# ------------------------------------------------------------------ as a data set builds it


def tiny_data() -> RecsysData:
    """12 users rating 10-14 of items 1-20 at increasing times, then items 21-23 (first rated
    last of all: new items)."""
    rng = np.random.default_rng(1)
    rows, t = [], 1_000_000_000.0
    for u in range(1, 13):
        for i in rng.choice(np.arange(1, 21), size=10 + u % 5, replace=False):
            t += 10.0
            rows.append((u, int(i), float(rng.integers(1, 6)), t))
    for u in range(1, 13):
        for i in (21, 22, 23):
            t += 10.0
            rows.append((u, i, 4.0, t))
    ratings = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    ratings = ratings.assign(
        rating=ratings["rating"].astype(np.float32), line=np.arange(len(rows)) + 2
    )
    items = pd.DataFrame(
        {"item": np.arange(1, 25), "title": [f"m{i}" for i in range(1, 25)],
         "genres": ["Drama|Comedy" if i % 3 else "Horror" for i in range(1, 25)], "year": 2000.0}
    )  # fmt: skip
    return RecsysData(
        "tiny", "interactions-csv", ratings, items, None, None, RatingScale(1, 5, 1), ReadReport()
    )


def test_a_built_graph_holds_meta_train_users_and_existing_items_only():
    config = ColdStartConfig(
        split_fractions=(0.5, 0.25, 0.25), support_sizes=(3,), n_query=2, min_eval_ratings=5,
        new_item_quantile=0.75,
    )  # fmt: skip
    ds = build_recsys_dataset(tiny_data(), config)
    g = ds.graph
    new = ds.new_items.mask
    assert new[ds.item_vocab.indices([21, 22, 23])].all() and new.sum() == 3
    train = ds.user_split.index[ds.user_split == "train"]
    held_out = ds.user_split.index[ds.user_split != "train"]
    # user nodes: exactly the meta-train users, named by their tasks
    node_users = [ds.user_vocab.ids[i] for i in g["user"].node_id.tolist()]
    assert sorted(node_users) == sorted(train) and not set(node_users) & set(held_out)
    assert g["user"].task_name == [str(u) for u in node_users]
    # rating edges: meta-train users' ratings of existing items, one edge each
    ei = g["user", "rates", "item"].edge_index.numpy()
    edges = {(node_users[u], ds.item_vocab.ids[i]) for u, i in ei.T}
    r = ds.data.ratings
    expected = r[r["user"].isin(train) & ~r["item"].isin([21, 22, 23])]
    assert edges == set(zip(expected["user"], expected["item"]))
    assert ei.shape[1] == len(expected)
    assert not new[ei[1]].any()
    # every listed item is a node, the unrated item 24 included, with its genre edges
    assert g["item"].num_nodes == len(ds.item_vocab) == 24
    assert ds.item_vocab.index_of(24) in g["item", "has_genre", "genre"].edge_index[0].tolist()
    # item statistics of the graph agree with the data set's (meta-train) statistics
    np.testing.assert_array_equal(g["item"].n_ratings.numpy(), ds.item_stats.count)
