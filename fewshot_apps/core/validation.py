"""Validation during meta-training: :func:`episode_validator`, the default ``valid_fn`` of
:func:`~fewshot_apps.core.training.meta_train`, scores a learner on fixed, seeded episodes of
the validation tasks."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from fewshot_apps.core.learners.base import MetaLearner
from fewshot_apps.core.tasks import SamplingError, Task, derive_seed
from fewshot_apps.errors import FewshotError


def episode_validator(
    tasks: Sequence[Task], sampler: object, n_draws: int = 1, seed: int = 0
) -> Callable[[MetaLearner], float]:
    """A ``valid_fn``: mean ROC-AUC (classification) or minus RMSE (regression) over fixed,
    seeded episodes of ``tasks`` (drawn once, so every evaluation sees the same episodes).

    Tasks too small for ``sampler`` and draws whose query lacks a class are skipped; an
    episode whose predictions hold NaN scores NaN (the validation is then not finite).
    """
    from fewshot_apps.core.metrics import rmse, roc_auc

    episodes = []
    for task in tasks:
        for draw in range(n_draws):
            try:
                episodes.append(sampler.sample(task, derive_seed(seed, task.name, draw)))
            except SamplingError:
                continue
    if not episodes:
        raise FewshotError(
            f"no validation episode could be drawn from {len(tasks)} tasks with {sampler!r}"
        )

    triples = [(ep.support_examples, ep.support_labels, ep.query_examples) for ep in episodes]

    def validate(learner: MetaLearner) -> float:
        scores = []
        many = getattr(learner, "fit_predict_many", None)  # all episodes at once (vmap engine)
        preds = many(triples) if callable(many) else [learner.fit_predict(*t) for t in triples]
        for ep, pred in zip(episodes, preds):
            if learner.kind == "classification":
                if len(np.unique(ep.query_labels)) == 2:
                    scores.append(roc_auc(ep.query_labels, pred))
            else:
                nan = np.isnan(np.asarray(pred, dtype=np.float64)).any()
                scores.append(float("nan") if nan else -rmse(ep.query_labels, pred))
        return float(np.mean(scores)) if scores else float("nan")

    return validate

