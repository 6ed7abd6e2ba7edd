"""The onboarding protocol: which items should a new user be asked to rate first?

A simulated interview, as Rashid et al. (2002) evaluate sign-up strategies offline and MeLU
its evidence candidates: a strategy (:mod:`~fewshot_apps.domains.recsys.onboard`) ranks
**all** items; the test user is asked down that ranking and answers the items they rated,
so **the user's support = the first** ``n`` **items of the ranking that the user rated**
(``n`` = each of the suite's support sizes, e.g. 5 and 10; the supports are nested, 5
answers then 5 more). The model adapts on those answers and is scored on the user's
held-out ratings.

The held-out ratings are the same for every strategy: per user, seed and draw, a seeded
``heldout_fraction`` (30%) of the user's ratings (``derive_seed(seed, user, "onboarding",
draw)``) is set aside first; the interview asks only about the others (the *pool*). Scoring
every rating not in the support instead would compare strategies on different targets: a
``popular`` interview takes the user's most popular films out of what is left to find, so
even ``popularity``, whose ranking ignores the support, loses most of its recall (on
validation users of ml-latest-small, recall@10 0.08 after a random interview of 10, 0.015
after a popular one). Here the strategies differ only in what the model was told, and the
paired tests between them compare like with like.

Metrics (item split ``all`` only), with the cold-start protocol's own
:func:`~fewshot_apps.domains.recsys.evaluation.episode_metrics`:

* ``mae``, ``rmse`` of the predicted ratings of the held-out ratings;
* the all-item view, ``recall@10`` and ``nDCG@10``: every item the user did not rate, and
  the held-out ones, ranked (the pool's items are the user's answers or known to the user:
  neither ranked nor scored, and the same for every strategy); relevant = held-out ratings
  >= the relevance threshold.

Strategies compared (``strategy`` of each row; the bench labels rows ``<learner>+<strategy>``):

* ``random`` (the baseline): a seeded random ranking per user, seed and draw
  (``derive_seed(seed, user, "onboarding-random", draw)``): ``n`` random pool ratings, as
  the cold-start protocol's supports are;
* ``popular``, ``divisive``, ``informative``: one ranking for every user, from meta-train
  users' ratings only (``informative`` with item-knn's co-rating similarity and the default
  redundancy weight), so every learner sees the same interviews.

A real interview also asks about items the user does not know; here those questions are
free (only the answers count). On the 49 validation users of ml-latest-small (3 seeds x 3
draws), no strategy beat ``random`` at 10 answers for ``item-knn``, ``mf`` or ``item-mean``
(Wilcoxon p > 0.09 on recall@10 and MAE); ``random`` had the lowest MAE (item-knn 0.698,
the others 0.707): a random interview is a fair sample of the user's ratings, the others
ask about films whose ratings spread.

A user whose pool has fewer than ``n`` ratings is not scored at ``n``: one ``skipped`` row
(``item_split`` and ``metric`` ``"*"``) per strategy, seed and draw (cannot happen with the
default 30 ratings per test user and ``n <= 20``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from fewshot_apps.core.tasks import TaskTooSmallError, derive_seed
from fewshot_apps.domains.recsys.episodes import interview_episode
from fewshot_apps.domains.recsys.evaluation import (
    RESULT_COLUMNS,
    SKIPPED_COLUMNS,
    _encode_once,
    _rank_scores,
    _scores,
    candidate_items,
    episode_metrics,
)
from fewshot_apps.domains.recsys.onboard import dataset_order
from fewshot_apps.errors import FewshotError

#: The strategies the protocol compares, the baseline first.
COMPARED = ("random", "popular", "divisive", "informative")
BASELINE_STRATEGY = "random"
#: The query metrics (on every held-out rating) and the item split scored.
QUERY_METRICS = ("mae", "rmse")
ITEM_SPLITS = ("all",)
DEFAULT_SIZES = (5, 10)
#: The share of each user's ratings set aside for scoring.
HELDOUT_FRACTION = 0.3
ONBOARDING_COLUMNS = [*RESULT_COLUMNS, "strategy"]
ONBOARDING_SKIPPED = [*SKIPPED_COLUMNS, "strategy"]


def positions(order: np.ndarray) -> np.ndarray:
    """int64 ``[n_items]``: each item's place in ``order`` (a permutation of the items)."""
    out = np.empty(len(order), dtype=np.int64)
    out[np.asarray(order, dtype=np.int64)] = np.arange(len(order))
    return out


def heldout_positions(task, seed: int, draw: int, fraction: float) -> np.ndarray:
    """int64 positions in ``task`` of the ratings set aside for scoring: a seeded
    ``fraction`` of them (at least 1), the same for every strategy."""
    rng = np.random.default_rng(derive_seed(seed, task.name, "onboarding", draw))
    size = min(len(task), max(1, int(round(fraction * len(task)))))
    return np.sort(rng.choice(len(task), size=size, replace=False))


def _interviews(dataset, tasks, strategies, seeds, draws, sizes, fraction):
    """Every episode to score: ``(strategy, seed, draw, episode)``, and the skipped rows."""
    threshold = dataset.config.relevance_threshold
    fixed = {s: positions(dataset_order(dataset, s)) for s in strategies if s != "random"}
    work, skipped = [], []
    for task in tasks:
        for seed in seeds:
            for draw in range(draws):
                heldout = heldout_positions(task, seed, draw, fraction)
                for strategy in strategies:
                    place = fixed.get(strategy)
                    if place is None:
                        place = positions(dataset_order(dataset, "random", seed=derive_seed(
                            seed, task.name, "onboarding-random", draw)))
                    for n in sizes:
                        try:
                            episode = interview_episode(task, place, n, heldout, threshold)
                        except TaskTooSmallError as err:
                            skipped.append((task.name, n, "*", seed, draw, "*", str(err),
                                            strategy))
                            continue
                        work.append((strategy, seed, draw, episode))
    return work, skipped


def evaluate_onboarding(
    model,
    dataset,
    split: str = "test",
    seeds: Sequence[int] = (0,),
    draws: int = 1,
    support_sizes: Sequence[int] = DEFAULT_SIZES,
    strategies: Sequence[str] = COMPARED,
    progress: bool = False,
    *,
    heldout_fraction: float = HELDOUT_FRACTION,
    encode_once: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score ``model`` after each strategy's interview of every ``split`` user.

    Args:
        model: ``fit_predict(support_ids, support_ratings, query_ids) -> [q]`` (and
            optionally ``fit_rank``), as the cold-start protocol takes.
        dataset: a :class:`~fewshot_apps.domains.recsys.dataset.RecsysDataset`.
        seeds, draws: per user, each (seed, draw) sets its held-out ratings aside and
            draws ``random``'s ranking.
        support_sizes: the numbers of answers ``n``.
        strategies: of :data:`COMPARED`.
        heldout_fraction: the share of each user's ratings scored (never asked about).

    Returns:
        ``(results, skipped)``: one row per (user, strategy, seed, draw, ``n``, metric)
        (:data:`ONBOARDING_COLUMNS`: the cold-start protocol's columns and ``strategy``;
        ``support_size`` = ``n``, ``item_split`` ``all``) and the rows not scored, with the
        reason (:data:`ONBOARDING_SKIPPED`).
    """
    from fewshot_apps.progress import progress_bar

    unknown = [s for s in strategies if s not in COMPARED]
    sizes = [int(n) for n in support_sizes]
    if unknown or not strategies:
        raise FewshotError(f"onboarding strategies {unknown or '(none)'}: expected some of "
                           f"{', '.join(COMPARED)}")
    if not sizes or min(sizes) < 1:
        raise FewshotError(f"onboarding support sizes must be 1 or more, not {sizes}")
    if not 0 < heldout_fraction < 1:
        raise FewshotError(f"heldout_fraction must be between 0 and 1, not {heldout_fraction}")
    n_items = len(dataset.item_vocab)
    new_mask = np.asarray(dataset.new_items.mask, dtype=bool)
    tasks = dataset.taskset.split(split)
    work, skipped = _interviews(dataset, tasks, list(strategies), list(seeds), int(draws), sizes,
                                heldout_fraction)
    rows = []
    with _encode_once(model, n_items, encode_once) as m:
        for strategy, seed, draw, ep in progress_bar(work, desc=f"onboarding ({split})",
                                                     enabled=progress):
            # the pool (answers and unasked known items) is neither ranked nor scored
            candidates = candidate_items(n_items, ep.extras["pool_examples"])
            scores = _scores(m, ep, candidates)
            values, missing = episode_metrics(ep, candidates, scores, new_mask,
                                              item_splits=ITEM_SPLITS,
                                              rank_scores=_rank_scores(m, ep, candidates, scores),
                                              query_metrics=QUERY_METRICS)
            n = ep.extras["k"]
            rows += [(ep.task, n, s, seed, draw, metric, v, strategy) for s, metric, v in values]
            skipped += [(ep.task, n, s, seed, draw, metric, why, strategy)
                        for s, metric, why in missing]
    return (pd.DataFrame(rows, columns=ONBOARDING_COLUMNS),
            pd.DataFrame(skipped, columns=ONBOARDING_SKIPPED))


__all__ = ["BASELINE_STRATEGY", "COMPARED", "DEFAULT_SIZES", "HELDOUT_FRACTION",
           "ONBOARDING_COLUMNS", "ONBOARDING_SKIPPED", "evaluate_onboarding",
           "heldout_positions", "positions"]
