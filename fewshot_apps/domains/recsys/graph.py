"""The user–item–attribute graph (PyG ``HeteroData``) for a GNN item encoder.

Built from meta-train users' ratings of existing items and from item attributes only; valid
and test users are not nodes and none of their ratings or tags is an edge. Every vocabulary
item is a node (row ``i`` = item index ``i``), so a new item with attributes but no ratings
still has a node and its attribute edges.

Node types and features:

* graph attributes ``rating_mean``, ``rating_scale``: the meta-train ratings' mean and
  standard deviation (the units of ``rating_stats``).
* ``user``: meta-train users; ``node_id`` int64 ``[n_u]`` (user vocabulary index);
  ``task_name`` list of str (their tasks' names, when given);
  ``x`` float32 ``[n_u, d_u]`` user features (``d_u`` may be 0); ``rating_stats`` float32
  ``[n_u, 2]`` (:func:`rating_stats`).
* ``item``: ``x`` float32 ``[n_items, d_i]`` (:meth:`ItemFeatures.matrix`); ``new`` bool
  ``[n_items]`` (item cold start); ``n_ratings`` int64 ``[n_items]`` rating edges per item;
  ``rating_stats`` float32 ``[n_items, 2]``; ``rating_prior`` float32 ``[n_items]``: the
  shrunk mean rating in rating units (the global mean for items without ratings), the
  prior that rating learners personalize (:meth:`ItemGraphEncoder.label_prior`).
* ``genre``, ``tag``: ``x`` float32 identity ``[n, n]`` (one learnable slot each).

Edge types (each with its reverse):

* ``(user, rates, item)`` / ``(item, rated_by, user)``: ``edge_index`` int64 ``[2, E]``,
  ``edge_attr`` float32 ``[E, 1]`` (the rating), ``timestamp`` float64 ``[E]``.
* ``(item, has_genre, genre)`` / ``(genre, genre_of, item)``: ``edge_index`` ``[2, E_g]``.
* ``(item, has_tag, tag)`` / ``(tag, tag_of, item)``: ``edge_index`` ``[2, E_t]``,
  ``edge_weight`` float32 ``[E_t]`` (how often meta-train users applied the tag).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch_geometric.data import HeteroData

from fewshot_apps.domains.recsys.features import ItemFeatures, UserFeatures

# Pseudo-ratings at the global mean that a node's mean rating is shrunk towards. A film rated
# once says little about its quality, and in meta-training that one rating may be the very
# query label of the episode's user (who is a graph node). With 5 pseudo-ratings the learners
# learned to trust rarely-rated items' statistics and ranked obscure films first; 25 was
# chosen over 5 on validation users' all-item recall@10, at the same MAE.
SHRINK_RATINGS = 25.0


def shrunk_mean(node: np.ndarray, rating: np.ndarray, n_nodes: int, global_mean: float) -> np.ndarray:
    """float64 ``[n_nodes]``: each node's mean rating shrunk towards ``global_mean`` by
    :data:`SHRINK_RATINGS` pseudo-ratings (``global_mean`` for a node without ratings)."""
    count = np.bincount(node, minlength=n_nodes).astype(np.float64)
    total = np.bincount(node, weights=rating.astype(np.float64) - global_mean, minlength=n_nodes)
    return global_mean + total / (count + SHRINK_RATINGS)


def rating_stats(node: np.ndarray, rating: np.ndarray, n_nodes: int, global_mean: float,
                 scale: float) -> np.ndarray:
    """float32 ``[n_nodes, 2]``: the node's shrunk mean rating minus the global mean, in
    units of ``scale`` (the ratings' standard deviation), and log(1 + its number of ratings).

    GraphSAGE messages do not carry the rating on an edge, so without these an item's
    embedding would know who rated it but not how well."""
    count = np.bincount(node, minlength=n_nodes).astype(np.float64)
    shrunk = (shrunk_mean(node, rating, n_nodes, global_mean) - global_mean) / scale
    return np.stack([shrunk, np.log1p(count)], axis=1).astype(np.float32)


def item_rating_features(item_index: np.ndarray, rating: np.ndarray, n_items: int,
                         global_mean: float, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The item nodes' ``rating_stats`` ``[n_items, 2]`` and ``rating_prior`` ``[n_items]``
    (float32) from rating edges (item index, rating) ``[E]``."""
    stats = rating_stats(item_index, rating, n_items, global_mean, scale)
    prior = shrunk_mean(item_index, rating, n_items, global_mean).astype(np.float32)
    return torch.from_numpy(stats), torch.from_numpy(prior)


def _edges(src: np.ndarray, dst: np.ndarray) -> torch.Tensor:
    return torch.tensor(np.stack([np.asarray(src), np.asarray(dst)]).astype(np.int64))


def build_graph(
    train_user_index: np.ndarray,
    edge_user_index: np.ndarray,
    edge_item_index: np.ndarray,
    edge_rating: np.ndarray,
    edge_timestamp: np.ndarray,
    item_features: ItemFeatures,
    new_items: np.ndarray,
    user_features: UserFeatures | None = None,
    user_names: Sequence[str] | None = None,
) -> HeteroData:
    """The graph.

    Args:
        train_user_index: int64 ``[n_u]``: user vocabulary indices of meta-train users
            (the ``user`` nodes, in this order).
        edge_user_index, edge_item_index, edge_rating, edge_timestamp: ``[E]``: meta-train
            ratings of existing items (user vocabulary index, item index, rating, time).
        new_items: bool ``[n_items]``.
        user_names: the meta-train users' task names (``user`` nodes' ``task_name``), so
            that meta-training can hide a batch's own users (:meth:`ItemGraphEncoder.hide_tasks`).
    """
    data = HeteroData()
    n_items = item_features.n_items
    train_user_index = np.asarray(train_user_index, dtype=np.int64)
    # A negative index would wrap around and take another user's slot in the table below.
    if (train_user_index < 0).any():
        raise ValueError("a meta-train user index is negative: it is no user of the vocabulary")
    local = np.full(int(train_user_index.max(initial=-1)) + 1, -1, dtype=np.int64)
    local[train_user_index] = np.arange(len(train_user_index))
    edge_user = np.asarray(edge_user_index, dtype=np.int64)
    # An index outside the table (negative, or beyond every meta-train index) is no node
    # either: refuse it before indexing, or -1 would read the last user's slot.
    if ((edge_user < 0) | (edge_user >= len(local))).any():
        raise ValueError("a rating edge comes from a user who is not a meta-train user")
    src = local[edge_user]
    if (src < 0).any():
        raise ValueError("a rating edge comes from a user who is not a meta-train user")
    new_items = np.asarray(new_items, dtype=bool)
    edge_item = np.asarray(edge_item_index, dtype=np.int64)
    # Likewise an item index outside the items (negative, or beyond the last) is no node:
    # refuse it before indexing, or -1 would read the last item's flag.
    n_known = min(len(new_items), n_items)
    if ((edge_item < 0) | (edge_item >= n_known)).any():
        raise ValueError(f"a rating edge points at no item (an index outside the {n_known} "
                         "items)")
    if new_items[edge_item].any():
        raise ValueError("a rating edge points at a new item")

    data["user"].node_id = torch.tensor(train_user_index)
    if user_names is not None:
        if len(user_names) != len(train_user_index):
            raise ValueError(f"{len(user_names)} user names for {len(train_user_index)} users")
        data["user"].task_name = [str(n) for n in user_names]
    d_u = 0 if user_features is None else user_features.matrix.shape[1]
    data["user"].x = (
        torch.tensor(user_features.matrix[train_user_index])
        if user_features is not None
        else torch.zeros((len(train_user_index), d_u), dtype=torch.float32)
    )
    data["item"].x = torch.from_numpy(item_features.matrix())
    rating = np.asarray(edge_rating, dtype=np.float64)
    global_mean = float(rating.mean()) if len(rating) else 0.0
    scale = float(rating.std()) if len(rating) > 1 and rating.std() > 0 else 1.0
    edge_item_index = edge_item
    data.rating_mean, data.rating_scale = global_mean, scale
    data["item"].rating_stats, data["item"].rating_prior = item_rating_features(
        edge_item_index, rating, n_items, global_mean, scale)
    data["user"].rating_stats = torch.from_numpy(
        rating_stats(src, rating, len(train_user_index), global_mean, scale))
    data["item"].new = torch.tensor(new_items)
    data["item"].n_ratings = torch.from_numpy(
        np.bincount(edge_item_index, minlength=n_items).astype(np.int64)
    )
    n_genres = len(item_features.genre_names)
    n_tags = len(item_features.tag_names)
    data["genre"].x = torch.eye(n_genres, dtype=torch.float32)
    data["tag"].x = torch.eye(n_tags, dtype=torch.float32)

    rates = _edges(src, edge_item_index)
    attr = torch.tensor(np.asarray(edge_rating, dtype=np.float32)).unsqueeze(1)
    stamp = torch.tensor(np.asarray(edge_timestamp, dtype=np.float64))
    data["user", "rates", "item"].edge_index = rates
    data["user", "rates", "item"].edge_attr = attr
    data["user", "rates", "item"].timestamp = stamp
    data["item", "rated_by", "user"].edge_index = rates.flip(0)
    data["item", "rated_by", "user"].edge_attr = attr.clone()
    data["item", "rated_by", "user"].timestamp = stamp.clone()

    gi, gg = np.nonzero(item_features.genres)
    data["item", "has_genre", "genre"].edge_index = _edges(gi, gg)
    data["genre", "genre_of", "item"].edge_index = _edges(gg, gi)

    ti, tt = np.nonzero(item_features.tags)
    weight = torch.from_numpy(item_features.tags[ti, tt].astype(np.float32))
    data["item", "has_tag", "tag"].edge_index = _edges(ti, tt)
    data["item", "has_tag", "tag"].edge_weight = weight
    data["tag", "tag_of", "item"].edge_index = _edges(tt, ti)
    data["tag", "tag_of", "item"].edge_weight = weight.clone()
    data.validate(raise_on_error=True)
    return data
