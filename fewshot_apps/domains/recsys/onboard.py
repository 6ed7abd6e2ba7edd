"""Onboarding a new user: which items to ask them to rate first.

A brand-new user can rate only items they know, and each answer should tell a model
something about their taste. Every strategy orders **all** items of the vocabulary (the
interview order): ``fewshot-apps rec onboard`` shows the first ``n``, and the onboarding
protocol (:mod:`~fewshot_apps.domains.recsys.onboarding`) asks each test user down that order.

The parts of the scores come from meta-train users' ratings of existing items
(``dataset.train_interactions()``: what the baselines fit on; test users never enter):

* ``n_ratings`` ``n_i``: how many meta-train ratings item ``i`` has;
* ``popularity`` ``p_i = log1p(n_i) / log1p(max_j n_j)`` in [0, 1]: how likely a new user
  knows the item, on a log scale (a film 300 people rated is not 100 times more askable than
  one 3 people rated);
* ``spread`` ``s_i = sqrt((sum_u (r_ui - mean_i)^2 + m * var) / (n_i + m))``: the standard
  deviation of its ratings (in rating units), shrunk toward the standard deviation of all
  meta-train ratings (``var``) by ``m = 5`` pseudo-ratings, so that an item rated twice, 1 and
  5, is not the most divisive one; a film everybody rates 4.5 says little about a user, one
  that splits its raters says more;
* ``redundancy`` ``d_i = max_j sim(i, j)`` over the items ``j`` placed above ``i`` in the
  order: how much of the answer an earlier question already gave. ``sim`` in [0, 1] is the
  item-to-item similarity of :mod:`~fewshot_apps.domains.recsys.item_knn` (cosine over who
  rated what among meta-train users, shrunk by 200 co-raters:
  ``|U_i & U_j| / (sqrt(n_i n_j) + 200)``), or, for a given model, the cosine of the model's
  item embeddings (its encoder's; ``mf``'s item factors), centred and clipped at 0.

Strategies (ties go to the lower vocabulary index):

* ``popular``: by ``n_i``, most rated first (known);
* ``divisive``: by ``p_i * s_i``, log popularity times rating spread (known *and*
  informative: Rashid et al. 2002's "log popularity x entropy", with the rating spread for
  the entropy; MeLU's evidence candidates are likewise chosen for popularity and rating
  entropy);
* ``informative`` (the default): greedy, one item at a time, the next item maximizing::

      score_i = p_i * s_i - w * d_i        (w = redundancy_weight, default 1)

  known and divisive, and unlike the items already asked (the second film of a trilogy tells
  little the first did not). The next item is chosen among the **evidence candidates**, the
  100 items not yet asked with the highest ``p_i * s_i`` (MeLU's: popular and divisive), so
  that the penalty reorders askable items but never reaches for obscure ones (a model's
  embeddings can make every popular film look alike: after 300 meta-training steps, ``cnp``'s
  put the 50 most rated films of ml-latest-small at a mean cosine of 0.98).
  ``divisive`` is ``informative`` with ``w = 0``. Items no meta-train user rated come last, in
  every order but ``random``'s (``p_i = 0``);
* ``random``: a seeded random order (the onboarding benchmark's baseline).

The ``redundancy`` column is each listed item's ``d_i`` for every strategy (how much a
``popular`` list repeats itself); ``score`` is what the strategy maximized (``n_i`` for
``popular``; none for ``random``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fewshot_apps.errors import FewshotError

#: The strategies, the default first.
STRATEGIES = ("informative", "divisive", "popular", "random")
DEFAULT_STRATEGY = "informative"
#: Pseudo-ratings at the global variance that shrink each item's rating spread.
SPREAD_PRIOR = 5.0
#: The weight ``w`` of the redundancy penalty of ``informative``: a film as similar to an
#: earlier one as two films can be (``d = 1``) loses more than the whole gap between the
#: first and the 100th film of ml-latest-small's ``divisive`` order (``p * s`` 1.05 and 0.77);
#: the co-rating similarities of popular films are 0.1 to 0.4. On its validation users (the
#: onboarding protocol, item-knn and mf, 5 and 10 answers), w from 0 to 2 moved MAE by at
#: most 0.02 and recall@10 by at most 0.011, neither way consistently: not tuned.
REDUNDANCY_WEIGHT = 1.0
#: ``informative`` picks each next item among this many evidence candidates.
WINDOW = 100

DESCRIPTIONS = {
    "informative": "greedy: log popularity x rating spread - {w:g} x redundancy (max "
                   "similarity to the items above)",
    "divisive": "log popularity x rating spread (known items whose ratings vary most)",
    "popular": "most meta-train ratings first",
    "random": "a seeded random order (seed {seed})",
}


def check_options(n: int, strategy: str, redundancy_weight: float = REDUNDANCY_WEIGHT) -> None:
    """FewshotError for ``n`` below 1, an unknown strategy or a negative weight (checked
    before any data loads; ``n`` above the number of items is checked after)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise FewshotError(f"n (--n) must be a whole number of at least 1, not {n!r}")
    if strategy not in STRATEGIES:
        raise FewshotError(f"unknown onboarding strategy {strategy!r}; expected one of "
                           f"{', '.join(STRATEGIES)}")
    if not redundancy_weight >= 0:
        raise FewshotError(f"redundancy_weight must be 0 or more, not {redundancy_weight}")


# --------------------------------------------------------------------------------------------
# the parts


@dataclass(frozen=True)
class ItemEvidence:
    """Per item of the vocabulary (float64 / int64 ``[n_items]``): ``n_ratings``,
    ``popularity`` and ``spread`` as the module docstring defines them."""

    n_ratings: np.ndarray
    popularity: np.ndarray
    spread: np.ndarray

    @property
    def divisive(self) -> np.ndarray:
        """``p_i * s_i``: the score of ``divisive``, before the redundancy penalty."""
        return self.popularity * self.spread


def item_evidence(items: np.ndarray, ratings: np.ndarray, n_items: int,
                  prior: float = SPREAD_PRIOR) -> ItemEvidence:
    """:class:`ItemEvidence` from meta-train ratings (``items`` int64 ``[m]`` vocabulary
    indices, ``ratings`` ``[m]``)."""
    items = np.asarray(items, dtype=np.int64)
    ratings = np.asarray(ratings, dtype=np.float64)
    count = np.bincount(items, minlength=n_items).astype(np.int64)
    top = np.log1p(count.max()) if len(count) and count.max() > 0 else 1.0
    popularity = np.log1p(count) / top
    variance = float(ratings.var()) if len(ratings) else 0.0
    total = np.bincount(items, weights=ratings, minlength=n_items)
    mean = np.divide(total, count, out=np.zeros(n_items), where=count > 0)
    squares = np.bincount(items, weights=(ratings - mean[items]) ** 2, minlength=n_items)
    spread = np.sqrt((squares + prior * variance) / np.maximum(count + prior, 1e-12))
    return ItemEvidence(count, popularity, spread)


def dataset_evidence(dataset) -> ItemEvidence:
    """:func:`item_evidence` of ``dataset``'s meta-train ratings (cached on the data set)."""
    cache = dataset.__dict__.setdefault("_fewshot_onboarding", {})
    if "evidence" not in cache:
        train = dataset.train_interactions()
        cache["evidence"] = item_evidence(train["item_index"].to_numpy(),
                                          train["rating"].to_numpy(), len(dataset.item_vocab))
    return cache["evidence"]


class CoRatingSimilarity:
    """``sim(i, j)``: item-knn's shrunk cosine over who rated what (a sparse ``[n, n]``
    matrix, symmetric, 0 on the diagonal)."""

    def __init__(self, matrix, description: str):
        import scipy.sparse as sp

        self.matrix = sp.csr_matrix(matrix)
        self.description = description

    def to(self, j: int) -> np.ndarray:
        """float64 ``[n_items]``: every item's similarity to item ``j``."""
        return self.matrix[int(j)].toarray().ravel().astype(np.float64)


class EmbeddingSimilarity:
    """``sim(i, j)``: the cosine of two item embeddings, centred (the mean embedding
    subtracted: learned embeddings tend to share one direction, which would make every pair
    look alike), clipped at 0."""

    def __init__(self, embeddings: np.ndarray, description: str):
        e = np.asarray(embeddings, dtype=np.float64)
        e = e - e.mean(axis=0, keepdims=True)
        norms = np.linalg.norm(e, axis=1, keepdims=True)
        self.unit = np.divide(e, norms, out=np.zeros_like(e), where=norms > 0)
        self.description = description

    def to(self, j: int) -> np.ndarray:
        return np.clip(self.unit @ self.unit[int(j)], 0.0, 1.0)


def co_rating_similarity(dataset) -> CoRatingSimilarity:
    """item-knn's co-rating similarity of ``dataset``'s meta-train users (cached)."""
    from .item_knn import ItemKNNBaseline

    cache = dataset.__dict__.setdefault("_fewshot_onboarding", {})
    if "co-rating" not in cache:
        knn = ItemKNNBaseline.from_dataset(dataset)
        cache["co-rating"] = CoRatingSimilarity(
            knn.similarity, "item-knn's co-rating cosine (who rated what among meta-train "
            f"users, shrunk by {knn.shrinkage:g} co-raters)")
    return cache["co-rating"]


def model_similarity(model, dataset, name: str | None = None):
    """The item similarity of a model: the cosine of its encoder's item embeddings (a
    meta-learner, a transfer baseline), of ``mf``'s item factors, or item-knn's own
    matrix. FewshotError for a model with none of them."""
    name = name or getattr(model, "name", type(model).__name__)
    n_items = len(dataset.item_vocab)
    encoder = getattr(model, "encoder", None)
    if encoder is not None and callable(encoder):
        import torch

        was_training = getattr(model, "training", False)
        model.eval()
        try:
            with torch.no_grad():
                device = next(encoder.parameters()).device
                ids = torch.arange(n_items, device=device)
                embeddings = torch.cat([encoder(chunk) for chunk in torch.split(ids, 4096)])
        finally:
            model.train(was_training)
        return EmbeddingSimilarity(embeddings.detach().cpu().numpy(),
                                   f"cosine of {name}'s item embeddings")
    factors = getattr(model, "item_factors", None)
    if factors is not None and np.ndim(factors) == 2 and len(factors) == n_items:
        return EmbeddingSimilarity(factors, f"cosine of {name}'s item factors")
    matrix = getattr(model, "similarity", None)
    if matrix is not None and getattr(matrix, "shape", None) == (n_items, n_items):
        return CoRatingSimilarity(matrix, f"{name}'s item-to-item similarity")
    raise FewshotError(f"model {name!r} has no item embeddings or item-to-item similarity to "
                       "measure redundancy with; give a meta-trained model's folder, mf or "
                       "item-knn, or no model (item-knn's co-rating similarity)")


# --------------------------------------------------------------------------------------------
# the orders


def greedy_order(base: np.ndarray, similarity, weight: float, n: int | None = None,
                 window: int = WINDOW) -> tuple[np.ndarray, np.ndarray]:
    """``informative``'s greedy order: each next item maximizes ``base_i - weight * d_i``,
    ``d_i`` its largest similarity (``similarity.to(j)``) to the items already placed, among
    the ``window`` items not yet placed with the highest ``base`` (the evidence candidates).
    Items whose ``base`` is ``-inf`` come after all others, by index.

    Returns ``(order, redundancy)``: int64 ``[n]`` item indices (every item when ``n`` is
    None) and float64 ``[n]`` each one's ``d_i`` when it was placed. Ties go to the higher
    ``base``, then the lower index."""
    base = np.asarray(base, dtype=np.float64)
    size = len(base) if n is None else min(int(n), len(base))
    remaining = _by_score(base)  # the candidates, best base first
    redundancy = np.zeros(len(base))
    order = np.empty(size, dtype=np.int64)
    at_pick = np.empty(size)
    for step in range(size):
        head = remaining[:max(1, int(window))]
        gain = base[head] - weight * redundancy[head]
        k = int(np.argmax(gain))
        if not np.isfinite(gain[k]):  # only the items that come last are left
            rest = remaining[: size - step]
            order[step:], at_pick[step:] = rest, redundancy[rest]
            break
        j = int(head[k])
        order[step], at_pick[step] = j, redundancy[j]
        remaining = np.delete(remaining, k)
        if step + 1 < size:
            np.maximum(redundancy, similarity.to(j), out=redundancy)
    return order, at_pick


def _by_score(score: np.ndarray) -> np.ndarray:
    """Item indices by ``score``, highest first, ties to the lower index."""
    score = np.asarray(score, dtype=np.float64)
    return np.lexsort((np.arange(len(score)), -score))


def redundancy_along(order: np.ndarray, similarity) -> np.ndarray:
    """float64 ``[len(order)]``: each item's largest similarity to the items before it."""
    out = np.zeros(len(order))
    seen = np.zeros(0)
    for step, j in enumerate(order):
        if step:
            out[step] = seen[j]
        column = similarity.to(j)
        seen = column if not step else np.maximum(seen, column)
    return out


def strategy_order(strategy: str, evidence: ItemEvidence, similarity=None, *,
                   n: int | None = None, seed: int = 0,
                   redundancy_weight: float = REDUNDANCY_WEIGHT) -> np.ndarray:
    """The first ``n`` items (all when None) of ``strategy``'s interview order: int64
    vocabulary indices. ``similarity`` is needed by ``informative`` only."""
    check_options(1, strategy, redundancy_weight)
    n_items = len(evidence.n_ratings)
    size = n_items if n is None else min(int(n), n_items)
    if strategy == "random":
        return np.random.default_rng(seed).permutation(n_items)[:size]
    if strategy == "popular":
        return _by_score(evidence.n_ratings)[:size]
    if strategy == "divisive" or redundancy_weight == 0:
        return _by_score(evidence.divisive)[:size]
    if similarity is None:
        raise FewshotError("the informative strategy needs an item similarity")
    # items nobody rated come last (as in the other orders): nothing says anyone knows them
    base = np.where(evidence.n_ratings > 0, evidence.divisive, -np.inf)
    return greedy_order(base, similarity, redundancy_weight, size)[0]


def dataset_order(dataset, strategy: str, seed: int = 0) -> np.ndarray:
    """Every item of ``dataset`` in ``strategy``'s interview order, with item-knn's
    co-rating similarity and the default weight (what the onboarding protocol asks by;
    cached on the data set, except ``random``'s)."""
    if strategy == "random":
        return strategy_order(strategy, dataset_evidence(dataset), seed=seed)
    cache = dataset.__dict__.setdefault("_fewshot_onboarding", {})
    key = ("order", strategy)
    if key not in cache:
        similarity = co_rating_similarity(dataset) if strategy == "informative" else None
        cache[key] = strategy_order(strategy, dataset_evidence(dataset), similarity)
    return cache[key]


# --------------------------------------------------------------------------------------------
# the table


def onboarding_table(
    dataset,
    n: int,
    strategy: str = DEFAULT_STRATEGY,
    *,
    similarity=None,
    seed: int = 0,
    redundancy_weight: float = REDUNDANCY_WEIGHT,
) -> tuple[pd.DataFrame, list[str]]:
    """The ``n`` items to ask a new user about first, and the lines that say how.

    Args:
        dataset: a :class:`~fewshot_apps.domains.recsys.dataset.RecsysDataset`.
        similarity: ``.to(j)`` and ``.description`` (:func:`model_similarity`); default
            item-knn's co-rating similarity (:func:`co_rating_similarity`).

    Returns:
        ``(table, lines)``: one row per chosen item, in the order to ask: ``rank, item,
        [title,] n_ratings, popularity, spread, redundancy, score, strategy`` (``title``
        when the data set has titles); FewshotError for ``n`` outside 1 .. the number of
        items or an unknown strategy.
    """
    from .recommend import item_titles

    check_options(n, strategy, redundancy_weight)
    n_items = len(dataset.item_vocab)
    if n > n_items:
        raise FewshotError(f"n (--n) is {n}, but {dataset.name} has {n_items} items")
    evidence = dataset_evidence(dataset)
    if similarity is None:
        similarity = co_rating_similarity(dataset)
    order = strategy_order(strategy, evidence, similarity, n=n, seed=seed,
                           redundancy_weight=redundancy_weight)
    redundancy = redundancy_along(order, similarity)
    score = {"popular": evidence.n_ratings[order].astype(np.float64),
             "divisive": evidence.divisive[order],
             "informative": evidence.divisive[order] - redundancy_weight * redundancy,
             "random": np.full(len(order), np.nan)}[strategy]
    table = {"rank": np.arange(1, len(order) + 1),
             "item": [dataset.item_vocab.ids[i] for i in order]}
    titles = item_titles(dataset)
    if titles is not None:
        table["title"] = titles[order]
    table.update(n_ratings=evidence.n_ratings[order], popularity=evidence.popularity[order],
                 spread=evidence.spread[order], redundancy=redundancy, score=score,
                 strategy=strategy)
    how = DESCRIPTIONS[strategy].format(w=redundancy_weight, seed=seed)
    train = dataset.train_interactions()
    lines = [f"strategy: {strategy} ({how})",
             f"statistics: {len(train):,} ratings of {train['user_index'].nunique():,} "
             f"meta-train users of {dataset.name} ({n_items:,} items)",
             f"redundancy: {similarity.description}"]
    unrated = int((evidence.n_ratings[order] == 0).sum())
    if unrated:
        lines.append(f"{unrated} of the {len(order)} items have no meta-train rating: few "
                     "new users will know them")
    return pd.DataFrame(table), lines


__all__ = [
    "CoRatingSimilarity", "DEFAULT_STRATEGY", "EmbeddingSimilarity", "ItemEvidence",
    "REDUNDANCY_WEIGHT", "STRATEGIES", "check_options", "co_rating_similarity",
    "dataset_evidence", "dataset_order", "greedy_order", "item_evidence", "model_similarity",
    "onboarding_table", "redundancy_along", "strategy_order",
]
