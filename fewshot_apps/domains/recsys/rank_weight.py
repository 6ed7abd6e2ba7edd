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

A head that scores with the encoder's support affinity also gets the factor on its affinity
weight (:data:`AFFINITY_SCALES`: BPR fitted that weight against 50 sampled items per
episode, and all-item ranking may want it larger) and how much the support items the user
liked count in it (:data:`LIKINGS`: the view counts liked items only) chosen here, jointly
with ``a``.
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
#: The values of ``rank_affinity_scale`` tried with each of :data:`GRID`, for a head that
#: scores with the encoder's support affinity (1: the weight as trained).
AFFINITY_SCALES = (1.0, 2.0, 4.0, 8.0, 16.0)
#: The values of ``rank_liking`` tried with those (0: every support item counts the same).
LIKINGS = (0.0, 0.5, 1.0, 2.0)


def choose_rank_weight(learner, episodes: Sequence, n_items: int,
                       grid: Sequence[float] = GRID,
                       scales: Sequence[float] = AFFINITY_SCALES,
                       likings: Sequence[float] = LIKINGS) -> dict | None:
    """Set ``learner.config.rank_rating_weight`` (and, for a head that uses the support
    affinity, ``rank_affinity_scale`` and ``rank_liking``) to the best combination of
    ``grid`` x ``scales`` x ``likings`` on ``episodes`` (validation cold-start episodes); a
    value already set in the config is kept and only the others are chosen. Returns the
    record of the choice: ``{"rank_rating_weight", "metric", "grid", "ndcg@10",
    "recall@10", "n_episodes"}`` (per grid value, at the chosen scale and liking, the mean
    over episodes with a relevant held-out item), plus, with an affinity,
    ``"rank_affinity_scale"``, ``"scales"``, ``"ndcg@10_by_scale"`` (one row per scale, at the
    chosen liking), ``"rank_liking"``, ``"likings"`` and ``"best_ndcg@10_by_liking"``. None,
    with nothing set, for a learner without an implicit head or when no episode has a
    relevant held-out item. Ties go to the larger rating share, then to the smaller scale,
    then to the smaller liking."""
    if getattr(learner, "implicit", None) is None or not episodes:
        return None
    config = learner.config
    if config.rank_rating_weight is not None:
        grid = (float(config.rank_rating_weight),)
    uses_affinity = learner.implicit.uses_affinity
    if not uses_affinity:
        scales, likings = (1.0,), (0.0,)
    if config.rank_affinity_scale is not None:
        scales = (float(config.rank_affinity_scale),)
    if config.rank_liking is not None:
        likings = (float(config.rank_liking),)
    ndcg = np.zeros((len(likings), len(scales), len(grid)))
    recall = np.zeros_like(ndcg)
    used = 0
    for model, ep, candidates, is_relevant in _ranking_episodes(learner, episodes, n_items):
        rating = standardized(torch.as_tensor(model.fit_predict(
            ep.support_examples, ep.support_labels, candidates), dtype=torch.float64))

        at_0 = _implicit(model, ep, candidates, 0.0) if uses_affinity else None
        for h, liking in enumerate(likings):
            # The score is linear in the scale: two evaluations give every scale.
            at_1 = _implicit(model, ep, candidates, 1.0, liking)
            for i, k in enumerate(scales):
                z = standardized(at_1 if at_0 is None else at_0 + k * (at_1 - at_0))
                for j, a in enumerate(grid):
                    mixed = ((1.0 - a) * z + a * rating).numpy()
                    ndcg[h, i, j] += ndcg_at_k(is_relevant, mixed, k=10)
                    recall[h, i, j] += recall_at_k(is_relevant, mixed, k=10)
        used += 1
    if not used:
        return None
    ndcg, recall = ndcg / used, recall / used
    # the best: ties to the larger rating share (the last column), then the smaller scale
    # and liking (the first rows)
    flipped = ndcg[:, :, ::-1]
    h, i, j_flipped = np.unravel_index(int(np.argmax(flipped)), flipped.shape)
    j = len(grid) - 1 - int(j_flipped)
    config.rank_rating_weight = float(grid[j])
    record = {"rank_rating_weight": float(grid[j]), "metric": "ndcg@10",
              "grid": [float(a) for a in grid],
              "ndcg@10": [round(float(v), 6) for v in ndcg[h, i]],
              "recall@10": [round(float(v), 6) for v in recall[h, i]], "n_episodes": used}
    if uses_affinity:
        config.rank_affinity_scale = float(scales[i])
        config.rank_liking = float(likings[h])
        record.update({
            "rank_affinity_scale": float(scales[i]), "scales": [float(k) for k in scales],
            "ndcg@10_by_scale": [[round(float(v), 6) for v in row] for row in ndcg[h]],
            "rank_liking": float(likings[h]), "likings": [float(b) for b in likings],
            "best_ndcg@10_by_liking": [round(float(ndcg[b].max()), 6)
                                       for b in range(len(likings))]})
    return record


def _implicit(model, ep, candidates: np.ndarray, scale: float,
              liking: float = 0.0) -> torch.Tensor:
    """float64 ``[c]`` CPU: the model's implicit scores of one episode's candidates."""
    return model.implicit_scores(ep.support_examples, candidates, affinity_scale=scale,
                                 support_labels=ep.support_labels, liking=liking).double().cpu()


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


__all__ = ["AFFINITY_SCALES", "GRID", "LIKINGS", "choose_rank_weight", "ranking_validator", "relevant_candidates"]
