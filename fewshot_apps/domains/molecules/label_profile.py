"""``label-profile``: logistic regression on each molecule's labels in the training assays,
fitted on the support set.

The strongest simple model of what assay-split protocols (PAR / Meta-MGNN's Tox21, SIDER,
ToxCast) reward: a test assay's molecules were measured in the training assays too, and a few
support labels are enough to learn which training assays the new one resembles.
``label-prior`` averages a molecule's training labels into one score with no support at all;
this baseline weighs them per assay from the support. It reads no structure: a learner that
does not beat it has learned nothing from the molecules themselves on such a split.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from fewshot_apps.core.classic import ClassicBaseline
from fewshot_apps.errors import FewshotError

from .assay_profile import profile_table


class LabelProfileBaseline(ClassicBaseline):
    """Logistic regression (L2, ``C=0.1``, balanced class weights: ``logreg``'s settings) on
    the one-hot (active, inactive) pair of every training and validation assay.

    Args:
        profile: ``[n_molecules, assays]`` int8 (+1 active, -1 inactive, 0 not measured) of
            the store's molecules (:func:`~.assay_profile.profile_table`).
        seed: passed to scikit-learn (lbfgs is deterministic).
        C: inverse regularization strength.
    """

    kind: ClassVar[str] = "classification"
    title: ClassVar[str] = "logistic regression on the training-assay labels"

    def __init__(self, profile: np.ndarray, seed: int = 0, C: float = 0.1):
        profile = np.asarray(profile, dtype=np.int8)
        self.features = np.concatenate([profile == 1, profile == -1], axis=1).astype(np.float32)
        self.seed, self.C = int(seed), float(C)

    def settings(self) -> dict:
        return {"C": self.C, "penalty": "l2", "class_weight": "balanced", "max_iter": 1000}

    @classmethod
    def from_dataset(cls, dataset, seed: int = 0) -> LabelProfileBaseline:
        """The profile of ``dataset``'s molecules over its training and validation tasks (the
        molecule-disjoint variant: its training tasks, see ``label_tasks``)."""
        tasks = dataset.label_tasks
        if not tasks:
            raise FewshotError(f"label-profile: {dataset.name} has no training tasks")
        table = profile_table(tasks, [t.name for t in tasks], len(dataset.store))
        return cls(table.numpy(), seed=seed)

    def fit_predict(self, support_ids, support_labels, query_ids) -> np.ndarray:
        """``[q]`` probabilities of the positive class; a one-class support gives that
        class's probability to every query molecule."""
        from sklearn.linear_model import LogisticRegression

        support_ids = np.asarray(support_ids, dtype=np.int64)
        query_ids = np.asarray(query_ids, dtype=np.int64)
        ids = np.concatenate([support_ids, query_ids])
        if len(ids) and (ids.min() < 0 or ids.max() >= len(self.features)):
            raise FewshotError(f"label-profile: molecule ids outside "
                               f"0..{len(self.features) - 1}")
        labels = np.asarray(support_labels, dtype=np.int64)
        if labels.min() == labels.max():
            return np.full(len(query_ids), float(labels[0]))
        model = LogisticRegression(C=self.C, class_weight="balanced", max_iter=1000,
                                   random_state=self.seed)
        model.fit(self.features[support_ids], labels)
        return model.predict_proba(self.features[query_ids])[:, list(model.classes_).index(1)]


__all__ = ["LabelProfileBaseline"]
