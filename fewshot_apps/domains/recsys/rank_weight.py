"""Choose how a meta-learner mixes its two views when it ranks every item for a user.

A learner trained with the implicit objective has two scores per candidate item: the
implicit head's (will the user watch it?) and the predicted rating (will they like it?).
:meth:`~fewshot_apps.core.learners.base.MetaLearner.fit_rank` ranks by ``(1 - a) *
z(implicit) + a * z(rating)``, each standardized over the candidates. ``a`` is chosen here,
after training, on the validation users' cold-start episodes: the value of :data:`GRID`
with the best mean all-item nDCG@10 (candidates and relevant items as in the cold-start
protocol, :mod:`~fewshot_apps.domains.recsys.evaluation`); ties go to the larger ``a`` (closer
to ranking by rating, the behaviour before the implicit objective). nDCG@10 rather than
recall@10: it also rewards the order within the top 10, and it varies less across users.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from fewshot_apps.core.learners.implicit import standardized
from fewshot_apps.core.metrics import ndcg_at_k, recall_at_k

from .evaluation import _encode_once, candidate_items

#: The values of ``rank_rating_weight`` tried (0: who-watches alone, 1: rating alone).
GRID = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)


def choose_rank_weight(learner, episodes: Sequence, n_items: int,
                       grid: Sequence[float] = GRID) -> dict | None:
    """Set ``learner.config.rank_rating_weight`` to the best value of ``grid`` on
    ``episodes`` (validation cold-start episodes) and return the record of the choice:
    ``{"rank_rating_weight", "metric", "grid", "ndcg@10", "recall@10", "n_episodes"}``
    (per grid value, the mean over episodes with a relevant held-out item). None, with
    nothing set, for a learner without an implicit head or when no episode has a relevant
    held-out item."""
    if getattr(learner, "implicit", None) is None or not episodes:
        return None
    ndcg = np.zeros(len(grid))
    recall = np.zeros(len(grid))
    used = 0
    for model, ep, candidates, is_relevant in _ranking_episodes(learner, episodes, n_items):
        rating = standardized(torch.as_tensor(model.fit_predict(
            ep.support_examples, ep.support_labels, candidates), dtype=torch.float64))
        implicit = standardized(
            model.implicit_scores(ep.support_examples, candidates).double().cpu())
        for j, a in enumerate(grid):
            mixed = ((1.0 - a) * implicit + a * rating).numpy()
            ndcg[j] += ndcg_at_k(is_relevant, mixed, k=10)
            recall[j] += recall_at_k(is_relevant, mixed, k=10)
        used += 1
    if not used:
        return None
    ndcg, recall = ndcg / used, recall / used
    # the last best: ties go to the larger share of the rating
    best = len(grid) - 1 - int(np.argmax(ndcg[::-1]))
    learner.config.rank_rating_weight = float(grid[best])
    return {"rank_rating_weight": float(grid[best]), "metric": "ndcg@10",
            "grid": [float(a) for a in grid], "ndcg@10": [round(float(v), 6) for v in ndcg],
            "recall@10": [round(float(v), 6) for v in recall], "n_episodes": used}


def relevant_candidates(episode, n_items: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The cold-start protocol's all-item view of an episode: ``(candidates int64 [c], 0/1
    float64 [c] relevant)`` (candidates: every item but the support's; relevant: the
    relevant held-out items), or None when nothing relevant is held out."""
    x = episode.extras
    relevant = x["heldout_examples"][np.asarray(x["heldout_relevant"], dtype=bool)]
    if not len(relevant):
        return None
    candidates = candidate_items(n_items, episode.support_examples)
    return candidates, np.isin(candidates, relevant).astype(np.float64)


def _ranking_episodes(learner, episodes: Sequence, n_items: int):
    """``(model, episode, candidates, is_relevant)`` for each episode with a relevant
    held-out item, ``model`` the learner with every item encoded once (for the loop)."""
    with _encode_once(learner, n_items, True) as model:
        for ep in episodes:
            found = relevant_candidates(ep, n_items)
            if found is not None:
                yield (model, ep, *found)


def ranking_validator(episodes: Sequence, n_items: int):
    """``validate(learner) -> float``: the mean all-item nDCG@10 of ``learner.fit_rank``
    over ``episodes`` (validation cold-start episodes with a relevant held-out item; NaN
    when none has one), items encoded once. The model-selection score where ratings
    carry nothing (implicit feedback)."""

    def validate(learner) -> float:
        scores = [ndcg_at_k(is_relevant, np.asarray(model.fit_rank(
                      ep.support_examples, ep.support_labels, candidates)), k=10)
                  for model, ep, candidates, is_relevant
                  in _ranking_episodes(learner, episodes, n_items)]
        return float(np.mean(scores)) if scores else float("nan")

    return validate


__all__ = ["GRID", "choose_rank_weight", "ranking_validator", "relevant_candidates"]
