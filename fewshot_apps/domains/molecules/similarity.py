"""The molecule encoders' fixed similarity: Tanimoto of ECFP bits.

A label-free kernel between molecules that needs no training, offered to the learners
through the encoder contract's ``similarity`` (:mod:`fewshot_apps.core.encoders`): ``dkt``
with ``fixed_kernel`` adds it, with a weight fitted per task, to its learned kernel, so that a
task whose actives are close analogues (MUV's) is scored by similarity even where the
meta-learned embedding does not carry it. Tanimoto is positive semi-definite on 0/1 vectors,
so the sum stays a valid GP kernel.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fewshot_apps.errors import FewshotError

from .baselines import tanimoto
from .store import MoleculeStore


def tanimoto_matrix(store: MoleculeStore, a_ids: Tensor, b_ids: Tensor) -> Tensor:
    """``[n] x [m] -> [n, m] float32``: Tanimoto similarity of the molecules' ECFP bits (the
    classic baselines' :func:`~.baselines.tanimoto`)."""
    a_ids, b_ids = a_ids.detach().cpu().long(), b_ids.detach().cpu().long()
    a, b = store.fingerprints(a_ids).numpy(), store.fingerprints(b_ids).numpy()
    return torch.from_numpy(tanimoto(a, b))


class TanimotoSimilarity:
    """Mixin of a molecule encoder with a ``store``: the encoder contract's fixed similarity
    (``has_similarity``, ``similarity``, ``self_similarity``), on the learner's device."""

    has_similarity = True
    store: MoleculeStore | None

    def _similarity_store(self) -> MoleculeStore:
        if self.store is None:
            raise FewshotError("the molecule encoder has no molecules: call set_store(store)")
        return self.store

    def similarity(self, a_ids: Tensor, b_ids: Tensor) -> Tensor:
        """``[n], [m] -> [n, m]`` Tanimoto of ECFP bits, in ``[0, 1]``."""
        return tanimoto_matrix(self._similarity_store(), a_ids, b_ids).to(a_ids.device)

    def self_similarity(self, ids: Tensor) -> Tensor:
        """``[n]``: each molecule's similarity to itself (1; 0 for an empty fingerprint)."""
        packed = self._similarity_store().ecfp[ids.detach().cpu().long()]
        return (packed.sum(1) > 0).float().to(ids.device)


__all__ = ["TanimotoSimilarity", "tanimoto_matrix"]
