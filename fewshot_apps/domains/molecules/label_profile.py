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

import numpy as np

from fewshot_apps.errors import FewshotError

from .assay_profile import profile_table
from .baselines import LogisticRegressionBaseline


class LabelProfileBaseline(LogisticRegressionBaseline):
    """``logreg`` (its settings, its one-class and label checks) on the one-hot (active,
    inactive) pair of every training and validation assay instead of ECFP bits.

    Args:
        profile: ``[n_molecules, assays]`` int8 (+1 active, -1 inactive, 0 not measured) of
            the store's molecules (:func:`~.assay_profile.profile_table`).
        seed: passed to scikit-learn (lbfgs is deterministic).
        C: inverse regularization strength.
    """

    title = "logistic regression on the training-assay labels"

    def __init__(self, profile: np.ndarray, seed: int = 0, C: float = 0.1):
        profile = np.asarray(profile, dtype=np.int8)
        self.features = np.concatenate([profile == 1, profile == -1], axis=1).astype(np.float32)
        super().__init__(self._profile_rows, seed=seed, C=C)

    def _profile_rows(self, ids: np.ndarray) -> np.ndarray:
        """``[n, 2 * assays]`` features of store ids (FewshotError outside the store)."""
        if len(ids) and (ids.min() < 0 or ids.max() >= len(self.features)):
            raise FewshotError(f"label-profile: molecule ids outside "
                               f"0..{len(self.features) - 1}")
        return self.features[ids]

    @classmethod
    def from_dataset(cls, dataset, seed: int = 0) -> LabelProfileBaseline:
        """The profile of ``dataset``'s molecules over its training and validation tasks (the
        molecule-disjoint variant: its training tasks, see ``label_tasks``)."""
        tasks = dataset.label_tasks
        if not tasks:
            raise FewshotError(f"label-profile: {dataset.name} has no training tasks")
        table = profile_table(tasks, [t.name for t in tasks], len(dataset.store))
        return cls(table.numpy(), seed=seed)


__all__ = ["LabelProfileBaseline"]
