"""The cold-start protocol: per-episode rating and ranking metrics of a recommendation model.

A *model* is anything with ``fit_predict(support_item_ids [s], support_ratings [s],
query_item_ids [q]) -> [q]`` predicted ratings (the classic baselines of
:mod:`~fewshot_apps.domains.recsys.baselines`, meta-learners, transfer baselines). Episodes
come from :meth:`RecsysDataset.evaluation_episodes` (seed ``s``, draw ``d`` of user ``t`` at
support size ``k`` uses ``derive_seed(s, t, k, d)``), so every model sees the same supports.

Per episode the model is called **once**, with the query = every *candidate* item (the whole
item vocabulary minus the support items); the 10-item query is looked up in those scores.
That assumes a model scores each query item on its own (true of the baselines and, in eval
mode, of the learners), which is what makes ranking ~10k items per episode cheap.

Metrics (``metric`` column):

* on the 10 query ratings: ``mae``, ``rmse``; ``ndcg@5`` with graded gain ``2**rating - 1``
  and ``precision@5`` (relevant: rating >= the relevance threshold) ranking those items;
* all-item ranking: ``recall@10`` and ``ndcg@10`` (binary gain) ranking every candidate,
  where the relevant items are the user's held-out ratings (all non-support ratings) >= the
  threshold and every item the user did not rate counts as irrelevant.

A fixed split (``split_method = "fixed"``, a published split) also reports MeLU's
``ndcg@3`` on the query ratings (graded gain ``2**rating - 1``, as ``ndcg@5``); with roles,
each test user's one episode is its given support and query (``support_size`` ``"fixed"``).

A model with a prediction interval (``model.calibration``: the 90% split-conformal one
fitted on validation users, :mod:`fewshot_apps.core.calibration`) also gets, on the query
ratings, ``coverage@90`` (the fraction inside ``prediction ± q``) and ``interval_width``
(the interval's mean width); a model without one has neither row.

Each metric is reported for ``item_split`` ``"all"``, ``"existing"`` and ``"new"`` (new
items per ``dataset.new_items``): for the latter two, the query, the candidates and the
relevant items are restricted to that kind of item.

What is skipped (one row of ``skipped`` per episode, item split and metric, with a reason):

* a restricted query or candidate set that is empty (e.g. no new item in the query);
* the binary ranking metrics (``precision@5``, ``recall@10``, ``ndcg@10``) when there is
  nothing relevant to find: no relevant held-out item (all-item metrics), no relevant query
  item (``precision@5``: every model would score 0 there, which only dilutes the mean);
* a (user, support size) the sampler cannot serve (too few ratings): ``item_split`` and
  ``metric`` ``"*"`` (cannot happen with ``min_eval_ratings >= max support + n_query``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from fewshot_apps.core.evaluation import encoded_once
from fewshot_apps.core.metrics import mae, ndcg_at_k, precision_at_k, recall_at_k, rmse
from fewshot_apps.core.tasks import Episode, Task
from fewshot_apps.domains.recsys.episodes import episode_sizes
from fewshot_apps.errors import FewshotError

__all__ = [
    "ALL_ITEM_METRICS",
    "INTERVAL_METRICS",
    "FIXED_QUERY_METRICS",
    "ITEM_SPLITS",
    "QUERY_METRICS",
    "RESULT_COLUMNS",
    "SKIPPED_COLUMNS",
    "candidate_items",
    "episode_metrics",
    "interval_metrics",
    "evaluate_cold_start",
    "summarize_cold_start",
]

RESULT_COLUMNS = ["task", "support_size", "item_split", "seed", "draw", "metric", "value"]
SKIPPED_COLUMNS = ["task", "support_size", "item_split", "seed", "draw", "metric", "reason"]
ITEM_SPLITS = ("all", "existing", "new")
QUERY_METRICS = ("mae", "rmse", "ndcg@5", "precision@5")
#: A fixed split's query metrics: MeLU reports MAE and nDCG@3.
FIXED_QUERY_METRICS = ("mae", "rmse", "ndcg@3", "ndcg@5", "precision@5")
ALL_ITEM_METRICS = ("recall@10", "ndcg@10")
#: A model with a prediction interval: its coverage and width on the query ratings.
INTERVAL_METRICS = ("coverage@90", "interval_width")


def query_metrics_for(dataset) -> tuple[str, ...]:
    """The query-rating metrics of a data set's runs: :data:`FIXED_QUERY_METRICS` for a
    fixed split, else :data:`QUERY_METRICS`."""
    config = getattr(dataset, "config", None)
    fixed = getattr(config, "split_method", None) == "fixed"
    return FIXED_QUERY_METRICS if fixed else QUERY_METRICS


def candidate_items(n_items: int, support_ids: np.ndarray) -> np.ndarray:
    """int64 ``[n_items - |support|]``, sorted: every item index except the support's."""
    keep = np.ones(n_items, dtype=bool)
    keep[np.asarray(support_ids, dtype=np.int64)] = False
    return np.flatnonzero(keep)


def _kind_mask(new: np.ndarray, item_split: str) -> np.ndarray:
    """bool mask of the items of one ``item_split`` given their new-item flags."""
    if item_split == "all":
        return np.ones(len(new), dtype=bool)
    return new if item_split == "new" else ~new


def episode_metrics(
    episode: Episode,
    candidates: np.ndarray,
    scores: np.ndarray,
    new_item_mask: np.ndarray,
    item_splits: Sequence[str] = ITEM_SPLITS,
    rank_scores: np.ndarray | None = None,
    query_metrics: Sequence[str] = QUERY_METRICS,
) -> tuple[list[tuple[str, str, float]], list[tuple[str, str, str]]]:
    """The protocol's metrics of one episode from the model's scores of every candidate.

    Args:
        episode: a cold-start episode with the extras of
            :mod:`~fewshot_apps.domains.recsys.episodes` (``heldout_examples``,
            ``heldout_relevant``, ``query_relevant``, ``query_gain``, ``query_new_item``).
        candidates: int64 ``[c]`` sorted item indices, none in the support
            (:func:`candidate_items`).
        scores: float ``[c]`` predicted ratings of ``candidates`` (the rating view: MAE,
            RMSE, and the 10 query items' ranking).
        new_item_mask: bool ``[n_items]``: the data set's new items.
        rank_scores: float ``[c]``, the model's own all-item ranking (``fit_rank``), or
            None to rank every item by ``scores``.
        query_metrics: the metrics of the query ratings, in order (``mae``, ``rmse``,
            ``ndcg@k``, ``precision@k``).

    Returns:
        ``(values, skipped)``: ``(item_split, metric, value)`` and ``(item_split, metric,
        reason)`` tuples.
    """
    candidates = np.asarray(candidates, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    ranking = scores if rank_scores is None else np.asarray(rank_scores, dtype=np.float64)
    if scores.shape != candidates.shape:
        raise FewshotError(f"{len(candidates)} candidates but scores of shape {scores.shape}")
    if np.isin(episode.support_examples, candidates).any():
        raise FewshotError(f"user {episode.task!r}: a support item is among the candidates")
    x = episode.extras
    query = episode.query_examples
    pos = np.searchsorted(candidates, query)
    if (pos >= len(candidates)).any() or (candidates[np.minimum(pos, len(candidates) - 1)] != query).any():
        raise FewshotError(f"user {episode.task!r}: a query item is not among the candidates")
    query_scores = scores[pos]
    query_labels = episode.query_labels.astype(np.float64)
    query_new = np.asarray(x.get("query_new_item", new_item_mask[query]), dtype=bool)
    query_relevant = np.asarray(x["query_relevant"], dtype=bool)
    query_gain = np.asarray(x["query_gain"], dtype=np.float64)
    heldout = np.asarray(x["heldout_examples"], dtype=np.int64)
    relevant_items = heldout[np.asarray(x["heldout_relevant"], dtype=bool)]
    # 0/1 over all candidates: a held-out relevant item; unrated items count as irrelevant.
    candidate_relevant = np.isin(candidates, relevant_items).astype(np.float64)
    candidate_new = np.asarray(new_item_mask, dtype=bool)[candidates]

    values: list[tuple[str, str, float]] = []
    skipped: list[tuple[str, str, str]] = []
    for split in item_splits:
        q = _kind_mask(query_new, split)
        if not q.any():
            skipped += [(split, m, f"no {split} item in the query") for m in query_metrics]
        else:
            y, s = query_labels[q], query_scores[q]
            for metric in query_metrics:
                name, _, k = metric.partition("@")
                if name == "mae":
                    values.append((split, metric, mae(y, s)))
                elif name == "rmse":
                    values.append((split, metric, rmse(y, s)))
                elif name == "ndcg":
                    ndcg = ndcg_at_k(query_gain[q], s, k=int(k))
                    if np.isnan(ndcg):
                        skipped.append((split, metric, "no query item with a positive gain"))
                    else:
                        values.append((split, metric, ndcg))
                elif name == "precision" and query_relevant[q].any():
                    values.append((split, metric,
                                   precision_at_k(query_relevant[q], s, k=int(k))))
                elif name == "precision":
                    skipped.append((split, metric, "no relevant query item"))
                else:
                    raise FewshotError(f"unknown query metric {metric!r}")
        c = _kind_mask(candidate_new, split)
        if not c.any():
            skipped += [(split, m, f"no {split} candidate item") for m in ALL_ITEM_METRICS]
        elif not candidate_relevant[c].any():
            skipped += [(split, m, "no relevant held-out item") for m in ALL_ITEM_METRICS]
        else:
            rel, s = candidate_relevant[c], ranking[c]
            values += [(split, "recall@10", recall_at_k(rel, s, k=10)),
                       (split, "ndcg@10", ndcg_at_k(rel, s, k=10))]
    return values, skipped


def interval_metrics(
    episode: Episode,
    candidates: np.ndarray,
    scores: np.ndarray,
    new_item_mask: np.ndarray,
    interval,
    item_splits: Sequence[str] = ITEM_SPLITS,
) -> tuple[list[tuple[str, str, float]], list[tuple[str, str, str]]]:
    """``coverage@90`` and ``interval_width`` of one episode's query ratings per item split,
    as :func:`episode_metrics` returns its rows; ``interval``: ``predictions -> (low,
    high)`` (:meth:`~fewshot_apps.core.calibration.Calibration.interval`)."""
    from fewshot_apps.core.metrics import interval_coverage, interval_width

    candidates = np.asarray(candidates, dtype=np.int64)
    query = episode.query_examples
    predicted = np.asarray(scores, dtype=np.float64)[np.searchsorted(candidates, query)]
    labels = episode.query_labels.astype(np.float64)
    new = np.asarray(episode.extras.get("query_new_item", new_item_mask[query]), dtype=bool)
    low, high = interval(predicted)
    values, skipped = [], []
    for split in item_splits:
        q = _kind_mask(new, split)
        if not q.any():
            skipped += [(split, m, f"no {split} item in the query") for m in INTERVAL_METRICS]
            continue
        values += [(split, "coverage@90", interval_coverage(labels[q], low[q], high[q])),
                   (split, "interval_width", interval_width(labels[q], low[q], high[q]))]
    return values, skipped


def _interval_of(model):
    """``predictions -> (low, high)`` of a model with a prediction interval, else None."""
    from fewshot_apps.core.calibration import model_calibration

    calibration = model_calibration(model)
    return calibration.interval if calibration.has_interval else None


def _rank_scores(model, episode: Episode, candidates: np.ndarray,
                 predicted: np.ndarray | None = None) -> np.ndarray | None:
    """A model's own ranking scores of the candidates (``fit_rank``: what the user will
    watch, e.g. item-knn's neighbour similarity, a meta-learner's mix of who-watches score
    and predicted rating), or None: rank by predicted rating (also for a meta-learner whose
    ``fit_rank`` is its predicted rating, ``rank_share`` 1, which is not predicted twice)."""
    rank = getattr(model, "fit_rank", None)
    if rank is None or float(getattr(model, "rank_share", 0.0)) >= 1.0:
        return None
    # a meta-learner mixes in its predicted ratings: hand over the ones already computed
    given = {"predicted": predicted} if predicted is not None and hasattr(model, "rank_share") \
        else {}
    out = np.asarray(rank(episode.support_examples, episode.support_labels, candidates,
                          **given), dtype=np.float64).reshape(-1)
    if out.shape != candidates.shape or not np.isfinite(out).all():
        raise FewshotError(f"{getattr(model, 'name', type(model).__name__)}: fit_rank gave "
                           f"{out.shape[0]} scores (finite: {np.isfinite(out).all()}) for "
                           f"{len(candidates)} candidates")
    return out


def _scores(model, episode: Episode, candidates: np.ndarray) -> np.ndarray:
    out = model.fit_predict(episode.support_examples, episode.support_labels, candidates)
    if isinstance(out, torch.Tensor):
        out = out.detach().cpu().numpy()
    out = np.asarray(out, dtype=np.float64).reshape(-1)
    if len(out) != len(candidates):
        raise FewshotError(
            f"{getattr(model, 'name', type(model).__name__)}: fit_predict returned {len(out)} "
            f"scores for {len(candidates)} query items"
        )
    if not np.isfinite(out).all():
        raise FewshotError(
            f"{getattr(model, 'name', type(model).__name__)}: non-finite scores for user "
            f"{episode.task!r} (did the model diverge?)"
        )
    return out


def _encode_once(model, n_items: int, enabled: bool):
    """``encoded_once`` over every item for a learner with an encoder, else a no-op."""
    if enabled and isinstance(model, torch.nn.Module) and hasattr(model, "encoder"):
        every_item = Task("all-items", np.arange(n_items), np.zeros(n_items, dtype=np.float32))
        return encoded_once(model, [every_item])
    return contextlib.nullcontext(model)


def evaluate_cold_start(
    model,
    dataset,
    split: str = "test",
    seeds: Sequence[int] = (0,),
    draws: int = 1,
    progress: bool = False,
    *,
    encode_once: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score ``model`` on every evaluation episode of ``split`` users.

    Args:
        model: ``fit_predict(support_ids, support_ratings, query_ids) -> [q]`` predicted
            ratings (item-vocabulary indices).
        dataset: a :class:`~fewshot_apps.domains.recsys.dataset.RecsysDataset`.
        split: ``"valid"`` (model selection) or ``"test"``.
        seeds, draws: episode seeds and draws per (user, support size, seed).
        encode_once: a ``torch.nn.Module`` with an ``encoder`` is wrapped in
            :func:`~fewshot_apps.core.evaluation.encoded_once` over every item, so its
            encoder runs once for the whole evaluation (eval mode, restored afterwards).

    A model with a prediction interval (``model.calibration``, fitted on validation users)
    also gets ``coverage@90`` and ``interval_width`` rows (:func:`interval_metrics`).

    Returns:
        ``(results, skipped)``: ``results`` one row per episode, item split and metric
        (``RESULT_COLUMNS``); ``skipped`` one row per metric not computed, with the reason
        (``SKIPPED_COLUMNS``).
    """
    from fewshot_apps.progress import progress_bar

    n_items = len(dataset.item_vocab)
    new_mask = np.asarray(dataset.new_items.mask, dtype=bool)
    tasks = dataset.taskset.split(split)
    query_metrics = query_metrics_for(dataset)
    work = [(seed, ep) for seed in seeds
            for ep in dataset.evaluation_episodes(split, seed=seed, n_draws=draws)]
    rows, skipped = [], []
    interval = _interval_of(model)
    with _encode_once(model, n_items, encode_once) as m:
        for seed, ep in progress_bar(work, desc=f"cold start ({split})", enabled=progress):
            key = (ep.task, ep.extras.get("k", ep.support_size), seed, ep.extras.get("draw", 0))
            candidates = candidate_items(n_items, ep.support_examples)
            scores = _scores(m, ep, candidates)
            ranked = _rank_scores(m, ep, candidates, scores)
            values, missing = episode_metrics(ep, candidates, scores, new_mask,
                                              rank_scores=ranked, query_metrics=query_metrics)
            if interval is not None:
                more, unmeasured = interval_metrics(ep, candidates, scores, new_mask, interval)
                values, missing = values + more, missing + unmeasured
            rows += [(key[0], key[1], s, key[2], key[3], metric, v) for s, metric, v in values]
            skipped += [(key[0], key[1], s, key[2], key[3], metric, why) for s, metric, why in missing]
    # Episodes the sampler could not draw (a user too small for a support size).
    drawn = {(e.task, e.extras.get("k", e.support_size), seed) for seed, e in work}
    for seed in seeds:
        for task in tasks:
            for k in episode_sizes(task, dataset.config):
                if (task.name, k, seed) not in drawn:
                    skipped += [(task.name, k, "*", seed, d, "*", "too few ratings for this support size")
                                for d in range(draws)]
    return (pd.DataFrame(rows, columns=RESULT_COLUMNS),
            pd.DataFrame(skipped, columns=SKIPPED_COLUMNS))


def summarize_cold_start(results: pd.DataFrame) -> pd.DataFrame:
    """Mean per user over seeds and draws, then ``mean`` / ``std`` / ``n_users`` over users,
    per ``support_size``, ``item_split`` and ``metric`` (item splits and metrics in the
    protocol's order)."""
    keys = ["support_size", "item_split", "metric"]
    per_user = results.groupby([*keys, "task"], sort=False)["value"].mean().reset_index()
    out = (per_user.groupby(keys, sort=False)["value"]
           .agg(mean="mean", std="std", n_users="size").reset_index())
    split_order = {s: i for i, s in enumerate(ITEM_SPLITS)}
    metric_order = {m: i for i, m in enumerate(FIXED_QUERY_METRICS + ALL_ITEM_METRICS)}
    out = out.assign(_s=out["item_split"].map(split_order).fillna(len(split_order)),
                     _m=out["metric"].map(metric_order).fillna(len(metric_order)))
    out = out.sort_values(["support_size", "_s", "_m"], kind="stable")
    return out.drop(columns=["_s", "_m"]).reset_index(drop=True)
