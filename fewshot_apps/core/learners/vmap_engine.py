"""The vmap engine: all episodes of a meta-batch adapt at once.

:class:`VmapEngine` is mixed into a :class:`~fewshot_apps.core.learners.base.MetaLearner`
with a head-only inner loop (``anil``, ``lstm``, ``maml`` / ``metasgd`` with
``adapt_encoder='none'``): ``loss`` and ``fit_predict_many`` pad the episodes' embeddings
with masks and adapt the head over tasks with ``torch.func.vmap``
(:mod:`fewshot_apps.core.learners.batched`), or fall back to the per-episode loop when the
engine does not apply. :func:`fewshot_apps.core.validation.episode_validator` scores with
``fit_predict_many``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from fewshot_apps.core.learners.base import EpisodeBatch
from fewshot_apps.core.learners.batched import PaddedEpisodes, masked_criterion, pad_episodes
from fewshot_apps.errors import FewshotError

# One support/query triple of fit_predict_many: (support ids, support labels, query ids).
EpisodeInput = tuple[
    Sequence[int] | np.ndarray | Tensor,
    Sequence[float] | np.ndarray | Tensor,
    Sequence[int] | np.ndarray | Tensor,
]


class VmapEngine:
    """The vmap engine for head-only inner loops, mixed into a :class:`MetaLearner` (see
    :mod:`fewshot_apps.core.learners.batched`).

    Subclasses say whether it applies (:attr:`uses_vmap`) and implement
    ``_adapt_batched(pad) -> {name: [T, ...]}`` and ``_predict_batched(params, query [T, Q,
    d]) -> [T, Q]``; ``loss`` and ``fit_predict_many`` then batch over episodes, and fall back
    to the per-episode loop when the engine does not apply.
    """

    @property
    def uses_vmap(self) -> bool:
        return False

    def _pad(self, features: Tensor, batch: EpisodeBatch, pseudo_count: float) -> PaddedEpisodes:
        return pad_episodes(
            features,
            batch.support_index,
            batch.support_labels,
            batch.query_index,
            batch.query_labels,
            self.kind,
            self.config.label_scale,
            pseudo_count,
        )

    def _batched_loss(self, pad: PaddedEpisodes) -> Tensor:
        """The mean over episodes of the query losses."""
        output = self._predict_batched(self._adapt_batched(pad), pad.query)
        return masked_criterion(self.kind, output, pad.query_targets, pad.query_mask).mean()

    def loss(self, batch: EpisodeBatch) -> Tensor:
        """Mean query loss over the episodes of ``batch``: one ``encode`` call, then all
        episodes at once (vmap engine) or one by one (loop engine)."""
        if not self.uses_vmap:
            return super().loss(batch)
        batch, pseudo_count = self._residual_batch(batch.to(self.device))
        features = self.encode(batch.example_ids)
        label_loss = self._batched_loss(self._pad(features, batch, pseudo_count))
        return self._with_implicit(label_loss, features, batch)

    def fit_predict_many(
        self, episodes: Sequence[EpisodeInput], group_size: int = 64
    ) -> list[np.ndarray]:
        """:meth:`fit_predict` for many episodes ``(support_ids, support_labels,
        query_ids)``: one ``encode`` call and one batched adaptation per ``group_size``
        episodes (the loop of ``fit_predict`` when the vmap engine does not apply)."""
        if not self.uses_vmap:
            return [self.fit_predict(s, y, q) for s, y, q in episodes]
        results: list[np.ndarray] = []
        was_training = self.training
        self.eval()
        try:
            with torch.set_grad_enabled(False):
                for start in range(0, len(episodes), group_size):
                    results += self._fit_predict_group(episodes[start : start + group_size])
        finally:
            self.train(was_training)
        return results

    def _fit_predict_group(self, episodes: Sequence[EpisodeInput]) -> list[np.ndarray]:
        support = [self._ids(s) for s, _, _ in episodes]
        query = [self._ids(q) for _, _, q in episodes]
        labels = [torch.as_tensor(np.asarray(y, dtype=np.float32)) for _, y, _ in episodes]
        if any(len(s) == 0 for s in support):
            raise FewshotError(f"learner {self.name!r}: an episode has an empty support set")
        unique, inverse = torch.unique(torch.cat(support + query), return_inverse=True)
        pieces = list(torch.split(inverse, [len(i) for i in support + query]))
        n = len(episodes)
        batch = EpisodeBatch(
            unique, pieces[:n], labels, pieces[n:], [torch.zeros(len(q)) for q in query], []
        )
        keep = [i for i, q in enumerate(query) if len(q)]  # padding needs a non-empty query
        output = torch.zeros(n, 0, device=self.device)
        if keep:
            batch = EpisodeBatch(
                batch.example_ids,
                [batch.support_index[i] for i in keep],
                [labels[i] for i in keep],
                [batch.query_index[i] for i in keep],
                [batch.query_labels[i] for i in keep],
                [],
            )
            batch, pseudo_count = self._residual_batch(batch)
            pad = self._pad(self.encode(unique), batch, pseudo_count)
            output = self._predict_batched(self._adapt_batched(pad), pad.query)
            if self.kind == "classification":
                output = self.probabilities(output)  # calibrated, as fit_predict's
            else:
                output = output * self.config.label_scale + pad.offsets[:, None]
        out: list[np.ndarray] = [np.zeros(0) for _ in episodes]
        for row, i in enumerate(keep):
            scores = output[row, : len(query[i])]
            if self.kind == "regression":
                scores = self._add_prior(scores, query[i])
            out[i] = scores.detach().cpu().double().numpy()
        return out
