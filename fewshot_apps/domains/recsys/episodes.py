"""Cold-start episodes: a user's support ratings, a 10-item query, and the held-out set.

:class:`ColdStartSampler` (the default protocol): support = ``k`` random ratings of the user,
query = ``n_query`` random ratings of the rest (the "10-item" view), held-out = every rating
not in the support (the query included) for all-item ranking.

:class:`MeLUSampler` (``protocol = "melu"``): users with 13 to 100 ratings; query =
``n_query`` random ratings, support = the rest; the held-out set is the query.

:func:`interview_episode` (the onboarding protocol): the user's ratings minus a held-out set
are the interview's pool; support = the first ``n`` pool items in an interview order (the
items a strategy asks about, in turn, that the user rated), query = held-out = the held-out
set.

A task of a fixed split with roles (``extras["support"]``, see
:mod:`~fewshot_apps.domains.recsys.tasks`) has one episode, :func:`fixed_episode`: support =
its support rows, query = its query rows, held-out = the query (as MeLU); ``k`` ``"fixed"``,
draw 0 whatever the number of draws or the seed.

All return :class:`~fewshot_apps.core.tasks.Episode` with these ``extras``:

* ``k``: the support size (``"melu"`` for MeLU, ``"fixed"``); ``draw``: the draw number (from
  :func:`evaluation_episodes`);
* ``heldout_index`` int64 ``[h]`` (positions in the task), ``heldout_examples`` int64
  ``[h]`` (item indices), ``heldout_labels`` float32 ``[h]``;
* ``query_relevant`` bool ``[q]``, ``heldout_relevant`` bool ``[h]``: rating >= the
  relevance threshold; ``has_relevant_heldout``: False when the user has no relevant
  held-out item (such a draw is left out of binary ranking metrics and counted);
* ``query_gain`` float32 ``[q]``: graded gain ``2**rating - 1`` for nDCG on the 10-item view;
* ``query_new_item`` bool ``[q]``, ``heldout_new_item`` bool ``[h]``: new items (item cold
  start), so existing and new items can be scored apart.

Positions are distinct and a task holds each item once, so support and query never share an
item.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from fewshot_apps.core.tasks import (
    Episode,
    SamplingError,
    Task,
    TaskTooSmallError,
    as_rng,
    derive_seed,
)
from fewshot_apps.domains.recsys.config import ColdStartConfig
from fewshot_apps.errors import FewshotError


def relevant(labels: np.ndarray, threshold: float = 4.0) -> np.ndarray:
    """bool ``[n]``: ratings >= ``threshold`` (binary ranking metrics)."""
    return np.asarray(labels) >= threshold


def graded_gain(labels: np.ndarray) -> np.ndarray:
    """float32 ``[n]``: ``2**rating - 1``, the graded gain of nDCG on the 10-item view."""
    return (np.power(2.0, np.asarray(labels, dtype=np.float64)) - 1.0).astype(np.float32)


def _episode(
    task: Task,
    support: np.ndarray,
    query: np.ndarray,
    heldout: np.ndarray,
    threshold: float,
    k: object,
) -> Episode:
    new = task.extras.get("new_item")
    new = np.zeros(len(task), dtype=bool) if new is None else np.asarray(new, dtype=bool)
    heldout_labels = task.labels[heldout]
    heldout_relevant = relevant(heldout_labels, threshold)
    return Episode.from_positions(
        task,
        support,
        query,
        k=k,
        heldout_index=heldout,
        heldout_examples=task.examples[heldout],
        heldout_labels=heldout_labels,
        query_relevant=relevant(task.labels[query], threshold),
        heldout_relevant=heldout_relevant,
        has_relevant_heldout=bool(heldout_relevant.any()),
        query_gain=graded_gain(task.labels[query]),
        query_new_item=new[query],
        heldout_new_item=new[heldout],
    )


@dataclass(frozen=True)
class ColdStartSampler:
    """Support = ``support_size`` random ratings; query = ``n_query`` random others; held-out =
    all non-support ratings. A task needs ``support_size + n_query`` ratings.

    With ``n_negatives > 0`` (meta-training: the learners' implicit objective) each episode
    also gets ``extras["negatives"]``, int64 ``[n_negatives]``: items drawn without
    replacement from the ``n_items`` items the user did NOT rate; a share
    ``popular_negatives`` of them with probability proportional to ``item_counts`` (how many
    meta-train users rated each item), the rest uniformly. Uniform negatives are mostly
    obscure items, so the implicit head learns that popular items get watched, which the
    all-item view rewards (``popularity`` beats the rating-ranked learners there), but
    little about which of the popular items this user will pick, which is where the top
    of an all-item list is decided; popular negatives teach that. They are drawn after the
    support and query, so the support and query of a seed do not depend on them.
    """

    support_size: int
    n_query: int = 10
    relevance_threshold: float = 4.0
    n_negatives: int = 0
    n_items: int = 0
    popular_negatives: float = 0.0
    item_counts: np.ndarray | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.n_negatives < 0:
            raise FewshotError(f"n_negatives must be >= 0, got {self.n_negatives}")
        if self.n_negatives and self.n_items < 1:
            raise FewshotError("negatives need the number of items (n_items)")
        if not 0.0 <= self.popular_negatives <= 1.0:
            raise FewshotError(f"popular_negatives must be in [0, 1], got "
                               f"{self.popular_negatives}")
        if self.popular_negatives > 0 and (self.item_counts is None
                                           or len(self.item_counts) != self.n_items):
            raise FewshotError("popular negatives need the rating count of each of the "
                               "n_items items (item_counts)")

    def sample(self, task: Task, seed: int | np.random.Generator) -> Episode:
        rng = as_rng(seed)
        n = len(task)
        if n < self.support_size + self.n_query:
            raise TaskTooSmallError(
                f"user {task.name!r} has {n} ratings; a support of {self.support_size} plus a "
                f"query of {self.n_query} needs {self.support_size + self.n_query}"
            )
        support = np.sort(rng.choice(n, size=self.support_size, replace=False))
        rest = np.setdiff1d(np.arange(n), support)
        query = np.sort(rng.choice(rest, size=self.n_query, replace=False))
        episode = _episode(task, support, query, rest, self.relevance_threshold,
                           self.support_size)
        if self.n_negatives:
            episode.extras["negatives"] = unrated_items(
                task, self.n_items, self.n_negatives, rng,
                popular_share=self.popular_negatives, item_counts=self.item_counts)
        return episode


def unrated_items(task: Task, n_items: int, n: int, rng: np.random.Generator, *,
                  popular_share: float = 0.0,
                  item_counts: np.ndarray | None = None) -> np.ndarray:
    """int64 ``[min(n, unrated)]``: distinct items ``task``'s user did not rate, among the
    ``n_items`` items; ``round(popular_share * n)`` of them drawn with probability
    proportional to ``item_counts`` (items nobody rated are never drawn this way), the rest
    uniformly from the remaining ones."""
    unrated = np.ones(n_items, dtype=bool)
    unrated[np.asarray(task.examples, dtype=np.int64)] = False
    pool = np.flatnonzero(unrated)
    n = min(n, len(pool))
    popular = np.zeros(0, dtype=np.int64)
    if popular_share > 0 and item_counts is not None:
        weights = np.asarray(item_counts, dtype=np.float64)[pool]
        n_popular = min(int(round(popular_share * n)), int(np.count_nonzero(weights)))
        if n_popular:
            popular = rng.choice(pool, size=n_popular, replace=False, p=weights / weights.sum())
            pool = np.setdiff1d(pool, popular)
    rest = rng.choice(pool, size=n - len(popular), replace=False)
    return np.sort(np.concatenate([popular, rest])).astype(np.int64)


@dataclass(frozen=True)
class MeLUSampler:
    """MeLU: users with ``min_ratings``..``max_ratings`` ratings; query = ``n_query`` random
    ratings, support = the rest (held-out = the query)."""

    n_query: int = 10
    min_ratings: int = 13
    max_ratings: int = 100
    relevance_threshold: float = 4.0

    def sample(self, task: Task, seed: int | np.random.Generator) -> Episode:
        rng = as_rng(seed)
        n = len(task)
        if n < max(self.min_ratings, self.n_query + 1):
            raise TaskTooSmallError(
                f"user {task.name!r} has {n} ratings; MeLU needs {self.min_ratings} to "
                f"{self.max_ratings}"
            )
        if n > self.max_ratings:
            raise SamplingError(
                f"user {task.name!r} has {n} ratings; MeLU uses users with at most "
                f"{self.max_ratings}"
            )
        query = np.sort(rng.choice(n, size=self.n_query, replace=False))
        support = np.setdiff1d(np.arange(n), query)
        return _episode(task, support, query, query, self.relevance_threshold, "melu")


#: The support size label of a fixed split's episodes.
FIXED = "fixed"


def is_fixed(task: Task) -> bool:
    """Whether ``task`` has a fixed support and query (a fixed split's roles)."""
    return "support" in task.extras


def fixed_episode(task: Task, relevance_threshold: float = 4.0) -> Episode:
    """The one episode of a task with roles: its support rows, its query rows (held-out =
    the query)."""
    support = np.flatnonzero(task.extras["support"])
    query = np.flatnonzero(~np.asarray(task.extras["support"], dtype=bool))
    return _episode(task, support, query, query, relevance_threshold, FIXED)


def interview_episode(task: Task, position: np.ndarray, n: int, heldout: np.ndarray,
                      relevance_threshold: float = 4.0) -> Episode:
    """The onboarding protocol's episode (a simulated interview). The user's ratings not in
    ``heldout`` (positions in the task) are what the interview can ask about (the *pool*);
    support = the ``n`` pool items that come first in an interview order, query = held-out =
    ``heldout``. ``position`` int64 ``[n_items]``: each item's place in the order (0 = asked
    first). ``k`` is ``n``; ``extras["pool_examples"]``: the pool's item indices (rated by
    the user, so neither scored nor ranked). TaskTooSmallError when the pool has fewer than
    ``n`` ratings."""
    heldout = np.sort(np.asarray(heldout, dtype=np.int64))
    pool = np.setdiff1d(np.arange(len(task)), heldout)
    if len(pool) < n or len(heldout) == 0:
        raise TaskTooSmallError(f"user {task.name!r} has {len(pool)} ratings to ask about and "
                                f"{len(heldout)} to score; {n} answers need {n} and 1")
    asked = pool[np.argsort(np.asarray(position)[task.examples[pool]], kind="stable")[:n]]
    episode = _episode(task, np.sort(asked), heldout, heldout, relevance_threshold, n)
    episode.extras["pool_examples"] = task.examples[pool]
    return episode


def episode_sizes(task: Task, config: ColdStartConfig) -> list:
    """The support sizes (keys of :func:`samplers_for`, or ``"fixed"``) ``task`` is
    evaluated at."""
    return [FIXED] if is_fixed(task) else list(samplers_for(config))


def samplers_for(config: ColdStartConfig) -> dict[object, ColdStartSampler | MeLUSampler]:
    """The protocol's samplers: support size -> sampler, or ``{"melu": MeLUSampler}``."""
    if config.protocol == "melu":
        return {
            "melu": MeLUSampler(
                config.melu_n_query, config.melu_min_ratings, config.melu_max_ratings,
                config.relevance_threshold,
            )  # fmt: skip
        }
    return {
        k: ColdStartSampler(k, config.n_query, config.relevance_threshold)
        for k in config.support_sizes
    }


def evaluation_episodes(
    tasks: Sequence[Task],
    config: ColdStartConfig,
    *,
    seed: int = 0,
    n_draws: int = 1,
) -> Iterator[Episode]:
    """Every (support size, task, draw) episode of the protocol, each with its own seed
    ``derive_seed(seed, task.name, k, draw)``. Tasks too small for a size are skipped for that
    size only (``TaskReport.per_size`` counts them). A task with a fixed support and query
    gives its one episode (:func:`fixed_episode`), first."""
    for task in tasks:
        if is_fixed(task):
            episode = fixed_episode(task, config.relevance_threshold)
            episode.extras["draw"] = 0
            yield episode
    for k, sampler in samplers_for(config).items():
        for task in tasks:
            if is_fixed(task):
                continue
            for draw in range(n_draws):
                try:
                    episode = sampler.sample(task, derive_seed(seed, task.name, k, draw))
                except SamplingError:
                    break
                episode.extras["draw"] = draw
                yield episode
