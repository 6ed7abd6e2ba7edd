"""The implicit-feedback ("who takes part") head every learner with an encoder can train.

A task's examples are the ones its owner chose to label (a user rated them); any other
example, drawn by the domain's sampler, is a *negative* (``Episode.extras["negatives"]``).
Next to its labels, a learner can learn from the same episodes which examples belong to a
task at all:

* task vector ``u = W_u · pool(support embeddings)``: attention pooling (a learned query
  vector scores each support embedding; softmax over the support) so a few telling
  examples can outweigh the rest; the support set is all a new task has;
* score of example ``i``: ``<u, e_i> + b(e_i)``, with ``e_i`` the encoder's embedding and
  ``b`` a linear bias on it, which can learn an example's general appeal (in
  recommendation: popularity, which the item embeddings carry through their statistics);
* with an encoder that offers a support affinity (:func:`~fewshot_apps.core.encoders.support_affinity`,
  in recommendation the candidate's mean co-rating similarity to the support items, what
  ``item-knn`` ranks by) the score adds ``w * log(affinity + AFFINITY_FLOOR)``, ``w`` learned
  and starting at 1: the head starts as the neighbour ranking times its own
  ``exp(<u, e_i> + b(e_i))`` and learns how far to trust each. An example the affinity
  knows nothing about (NaN: in recommendation, an item nobody in the graph rated, a new
  item) gets a learned log-affinity instead (``unknown_affinity``, starting at
  ``log(0.01)``, a typical affinity), so its own embedding decides whether it reaches the
  top of a list;
* loss (``rank_loss``): ``"bpr"`` (Rendle et al. 2009), ``mean softplus(s_neg - s_pos)``
  over every (query example, negative) pair of an episode, or ``"softmax"`` (sampled
  softmax), ``mean -log(exp(s_pos) / (exp(s_pos) + sum exp(s_neg)))`` over query examples;
  query examples are the positives. The support
  examples are not scored: the task vector is pooled from them, so scoring them teaches
  self-similarity, and they are never candidates when a task's examples are ranked.

Everything works on padded ``[T, n, d]`` tensors, all episodes of a meta-batch at once.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fewshot_apps.core.learners.batched import pad_rows
from fewshot_apps.errors import FewshotError

#: Added to the affinity before its log: an example no support example co-occurs with (a new
#: item) gets a finite score, about 4 below one with a typical affinity of 0.01 (the mean
#: shrunk cosine of an item and a support set on ml-latest-small).
AFFINITY_FLOOR = 1e-4
#: Where the learned log-affinity of an example the affinity knows nothing about starts.
TYPICAL_AFFINITY = 1e-2


class ImplicitHead(nn.Module):
    """Scores ``[T, n]`` of examples for tasks described by their support embeddings.

    Args:
        embed_dim: the encoder's embedding width ``d``.
        affinity: add the learned-weight log-affinity term (the encoder offers one).
    """

    def __init__(self, embed_dim: int, affinity: bool = False):
        super().__init__()
        self.attend = nn.Linear(embed_dim, 1)
        self.task = nn.Linear(embed_dim, embed_dim)
        self.bias = nn.Linear(embed_dim, 1)
        self.affinity_weight = nn.Parameter(torch.ones(())) if affinity else None
        self.unknown_affinity = (nn.Parameter(torch.tensor(math.log(TYPICAL_AFFINITY)))
                                 if affinity else None)

    @property
    def uses_affinity(self) -> bool:
        return self.affinity_weight is not None

    def task_vectors(self, support: Tensor, mask: Tensor) -> Tensor:
        """``support`` ``[T, S, d]`` embeddings, ``mask`` ``[T, S]`` (True on real rows) ->
        ``[T, d]`` task vectors."""
        logits = self.attend(support).squeeze(-1)
        logits = logits.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(logits, dim=-1)
        # A task with no support row at all would give NaN weights: pool nothing instead.
        weights = torch.nan_to_num(weights, nan=0.0)
        return self.task(torch.einsum("ts,tsd->td", weights, support))

    def scores(self, task_vectors: Tensor, examples: Tensor,
               affinity: Tensor | None = None, affinity_scale: float = 1.0) -> Tensor:
        """``task_vectors`` ``[T, d]``, ``examples`` ``[T, n, d]`` embeddings, ``affinity``
        ``[T, n]`` (needed exactly when the head uses it; its term multiplied by
        ``affinity_scale``) -> ``[T, n]``."""
        dot = torch.einsum("td,tnd->tn", task_vectors, examples)
        out = dot + self.bias(examples).squeeze(-1)
        if self.affinity_weight is None:
            return out
        if affinity is None:
            raise FewshotError("this implicit head scores with the encoder's support affinity, "
                               "but none was given")
        affinity = affinity.to(out.dtype)
        unknown = torch.isnan(affinity)
        log_affinity = torch.log(affinity.nan_to_num(0.0).clamp_min(0.0) + AFFINITY_FLOOR)
        log_affinity = torch.where(unknown, self.unknown_affinity.to(out.dtype), log_affinity)
        return out + (affinity_scale * self.affinity_weight) * log_affinity

    def score_examples(self, support: Tensor, candidates: Tensor,
                       affinity: Tensor | None = None, affinity_scale: float = 1.0) -> Tensor:
        """One task: ``support`` ``[s, d]``, ``candidates`` ``[c, d]`` embeddings, ``affinity``
        ``[c]`` -> ``[c]``."""
        mask = torch.ones(1, len(support), dtype=torch.bool, device=support.device)
        u = self.task_vectors(support[None], mask)
        return self.scores(u, candidates[None], None if affinity is None else affinity[None],
                           affinity_scale)[0]

    def loss(
        self,
        embeddings: Tensor,
        support_index: list[Tensor],
        positive_index: list[Tensor],
        negative_index: list[Tensor],
        kind: str = "bpr",
        positive_affinity: list[Tensor] | None = None,
        negative_affinity: list[Tensor] | None = None,
    ) -> Tensor:
        """The mean BPR (``kind="bpr"``) or sampled-softmax (``"softmax"``) loss over episodes.

        Args:
            embeddings: ``[u, d]`` embeddings of the meta-batch's unique examples.
            support_index / positive_index / negative_index: per episode, positions
                ``[s_i]`` / ``[p_i]`` / ``[n_i]`` into ``embeddings``.
            positive_affinity / negative_affinity: per episode, ``[p_i]`` / ``[n_i]``
                affinities of the positives / negatives to the support (a head that uses
                them only).

        Returns:
            a scalar: the mean over episodes of each episode's mean over its (positive,
            negative) pairs of ``softplus(s_neg - s_pos)`` (BPR), or over its positives of
            ``logsumexp(s_pos, s_negs) - s_pos`` (softmax); episodes without a positive or a
            negative are left out of the mean.
        """
        if kind not in ("bpr", "softmax"):
            raise FewshotError(f"unknown implicit loss {kind!r}; expected 'bpr' or 'softmax'")
        s_idx, s_mask = pad_rows(support_index)
        p_idx, p_mask = pad_rows(positive_index)
        n_idx, n_mask = pad_rows(negative_index)
        # Padding rows point at row 0: finite values, masked out below.
        u = self.task_vectors(embeddings[s_idx], s_mask)
        pos_aff = None if positive_affinity is None else pad_rows(positive_affinity)[0]
        neg_aff = None if negative_affinity is None else pad_rows(negative_affinity)[0]
        pos = self.scores(u, embeddings[p_idx], pos_aff)  # [T, P]
        neg = self.scores(u, embeddings[n_idx], neg_aff)  # [T, N]
        zero = torch.zeros((), dtype=pos.dtype, device=pos.device)
        if kind == "bpr":
            pairs = F.softplus(neg[:, None, :] - pos[:, :, None])  # [T, P, N]
            pair_mask = p_mask[:, :, None] & n_mask[:, None, :]
            per_task_n = pair_mask.sum((1, 2))
            per_task = torch.where(pair_mask, pairs, zero).sum((1, 2))
        else:
            # Padded negatives leave the normalizer; a padded positive row is masked out.
            neg = neg.masked_fill(~n_mask, float("-inf"))
            both = torch.cat([pos[:, :, None], neg[:, None, :].expand(-1, pos.shape[1], -1)],
                             dim=-1)  # [T, P, 1 + N]
            per_positive = torch.logsumexp(both, dim=-1) - pos  # [T, P]
            has_negative = n_mask.any(1, keepdim=True)
            mask = p_mask & has_negative
            per_task_n = mask.sum(1)
            per_task = torch.where(mask, per_positive, zero).sum(1)
        used = per_task_n > 0
        if not bool(used.any()):
            return zero
        return (per_task[used] / per_task_n[used].to(pos.dtype)).mean()


def standardized(scores: Tensor) -> Tensor:
    """``[c]`` -> ``[c]`` z-scores over the candidates (all zeros when they are all equal),
    so two kinds of score can be mixed with one weight whatever their units."""
    std = scores.std(unbiased=False) if len(scores) > 1 else scores.new_zeros(())
    centred = scores - scores.mean() if len(scores) else scores
    return centred / std if float(std) > 0 else torch.zeros_like(scores)


__all__ = ["AFFINITY_FLOOR", "ImplicitHead", "TYPICAL_AFFINITY", "standardized"]
