"""``label-prior``: each molecule's mean label over the training tasks, with no support set
and no model.

MoleculeNet-style few-shot splits (PAR / Meta-MGNN's Tox21, SIDER, MUV, ToxCast) split the
*assays*, not the molecules: a test assay's molecules are mostly labelled in training assays
too, and toxicity labels correlate across assays. Scoring a test molecule by how often it was
active in the training assays therefore reaches a good ROC-AUC without looking at the
support set at all. This baseline measures that: a few-shot learner is only learning from
the support where it beats it.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from fewshot_apps.core.classic import ClassicBaseline
from fewshot_apps.errors import FewshotError


class LabelPriorBaseline(ClassicBaseline):
    """Scores ``prior[molecule]``: the molecule's mean label over the training and
    validation tasks that measured it; a molecule none measured gets those labels' mean.

    Args:
        prior: ``[n_molecules]`` float, the score of each molecule id of the store.
        seed: unused (the scores are fixed); kept for the common baseline interface.
    """

    kind: ClassVar[str] = "classification"
    title: ClassVar[str] = "training-task label prior (ignores the support set)"

    def __init__(self, prior: np.ndarray, seed: int = 0):
        self.prior = np.asarray(prior, dtype=np.float64)
        self.seed = int(seed)

    @classmethod
    def from_dataset(cls, dataset, seed: int = 0) -> LabelPriorBaseline:
        """The prior of ``dataset``'s molecules from the measurements of its non-test tasks
        (training and validation: both are known before any test assay is seen; the
        molecule-disjoint variant: its training tasks, see ``label_tasks``)."""
        tasks = dataset.label_tasks
        mols = np.concatenate([np.asarray(t.examples, dtype=np.int64) for t in tasks]
                              or [np.zeros(0, dtype=np.int64)])
        labels = np.concatenate([np.asarray(t.labels, dtype=np.float64) for t in tasks]
                                or [np.zeros(0)])
        if not len(mols):
            raise FewshotError(f"label-prior: {dataset.name} has no training measurements")
        n = len(dataset.store)
        total = np.bincount(mols, weights=labels, minlength=n)
        count = np.bincount(mols, minlength=n)
        prior = np.full(n, float(labels.mean()))
        seen = count > 0
        prior[seen] = total[seen] / count[seen]
        return cls(prior, seed=seed)

    def fit_predict(self, support_ids, support_labels, query_ids) -> np.ndarray:
        """``[q]`` scores of the query molecules; the support set is not used."""
        query_ids = np.asarray(query_ids, dtype=np.int64)
        if len(query_ids) and (query_ids.min() < 0 or query_ids.max() >= len(self.prior)):
            raise FewshotError(f"label-prior: molecule ids outside 0..{len(self.prior) - 1}")
        return self.prior[query_ids]


__all__ = ["LabelPriorBaseline"]
