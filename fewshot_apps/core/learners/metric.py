"""Metric learners: prototypical networks and a similarity-weighted (attention) predictor.

* ``protonet`` (Snell et al. 2017), classification only: one prototype per class (the mean
  support embedding); the logit of a query is the difference of its (scaled) distances to the
  two prototypes, ``scale * (d(q, c_neg) - d(q, c_pos))``, with squared Euclidean distance,
  cosine similarity or a Mahalanobis distance (FS-Mol's ProtoNet default, after Simple CNAPS,
  Bateni et al. 2020: each class's covariance shrunk towards the support set's) and a learned
  scale (inverse temperature).
* ``attention``, both kinds: attention of each query over the support embeddings (softmax of
  scaled similarities, as in matching networks, Vinyals et al. 2016) averages the support
  targets; a learned gain and bias map the average to a logit or a normalized rating, and for
  regression the support mean (the user's / task's own bias) is added back by the base class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fewshot_apps.core.learners.base import LearnerConfig, MetaLearner
from fewshot_apps.errors import FewshotError


def _log_scale(temperature: float, learn: bool) -> nn.Parameter:
    # A learned inverse temperature, kept positive through its log.
    return nn.Parameter(torch.tensor(-math.log(temperature)), requires_grad=learn)


@dataclass
class ProtoNetConfig(LearnerConfig):
    """Attributes:
    distance: ``sqeuclidean`` (Snell et al.), ``cosine`` or ``mahalanobis`` (per class,
        ``(q - c)^T P_c (q - c)`` with ``P_c = (l S_c + (1 - l) S + ridge I)^-1``: ``S_c`` the
        class's support covariance, ``S`` the whole support set's, ``l = min(n_c / (n_c + 1),
        0.1)``, as FS-Mol's ProtoNet).
    temperature: initial temperature (logits are divided by it); ``None``: 1.0 for
        ``sqeuclidean`` and ``mahalanobis``, 0.1 for ``cosine`` (cosine similarities lie in
        [-1, 1]).
    learn_temperature: meta-learn the temperature.
    ridge: the Mahalanobis covariance's added diagonal (FS-Mol: 0.1).
    eval_ridge: the ridge in eval mode (validation, calibration, prediction); ``None``:
        ``ridge``. Training keeps ``ridge``: a covariance estimated from a few support
        molecules is worth more shrinkage at evaluation than the training loss wants
        (``benchmarks/results/fsmol/selection/protonet-ridge.md``).
    eval_ridge_support: the support size at which ``eval_ridge`` holds; at a support of ``n``
        the ridge in eval mode is ``eval_ridge * eval_ridge_support / n``. A covariance
        estimated from more molecules needs less shrinkage (its error falls like ``1 / n``);
        ``None``: ``eval_ridge`` at every size.
    """

    distance: Literal["sqeuclidean", "cosine", "mahalanobis"] = "sqeuclidean"
    temperature: float | None = None
    learn_temperature: bool = True
    ridge: float = 0.1  # > 0 (config.RANGE_SETTINGS): the covariance must stay invertible
    eval_ridge: float | None = None  # > 0 as well
    eval_ridge_support: int | None = None  # > 0 as well

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.eval_ridge_support is not None and self.eval_ridge is None:
            raise FewshotError("eval_ridge_support scales eval_ridge, which is not set: "
                               "set learner.eval_ridge too")


class ProtoNet(MetaLearner):
    """Prototypical network for binary classification (classification only).

    A support set missing a class (possible with random, unstratified draws) keeps one
    prototype; the missing class then sits at the present class's mean support distance, so
    queries farther out than the class's own members lean towards the missing class.
    """

    Config = ProtoNetConfig

    def __init__(self, encoder, kind, config=None):
        super().__init__(encoder, kind, config)
        cfg: ProtoNetConfig = self.config
        temperature = cfg.temperature or (0.1 if cfg.distance == "cosine" else 1.0)
        self.log_scale = _log_scale(temperature, cfg.learn_temperature)

    def _distance(self, x: Tensor, proto: Tensor, factor: tuple | None = None) -> Tensor:
        """``[n, d]`` points, a prototype ``[d]`` -> ``[n]`` distances (cosine: ``1 - cos``;
        Mahalanobis: ``factor`` from :meth:`_class_factor`)."""
        if self.config.distance == "cosine":
            return 1.0 - F.normalize(x, dim=-1) @ F.normalize(proto, dim=-1)
        diff = x - proto
        if self.config.distance != "mahalanobis":
            return diff.pow(2).sum(-1)
        low_rank, cholesky, ridge = factor
        if low_rank is None:  # the covariance's own Cholesky factor: |L^-1 v|^2
            return torch.linalg.solve_triangular(cholesky, diff.T, upper=False).pow(2).sum(0)
        # Woodbury: (r I + U U^T)^-1 = (I - U (r I + U^T U)^-1 U^T) / r
        inner = torch.linalg.solve_triangular(cholesky, low_rank.T @ diff.T, upper=False)
        return (diff.pow(2).sum(-1) - inner.pow(2).sum(0)) / ridge

    def _ridge(self, support_size: int) -> float:
        """The covariance's added diagonal for a support of ``support_size`` now:
        ``eval_ridge`` in eval mode when set, scaled by ``eval_ridge_support / support_size``
        when that is set too."""
        cfg: ProtoNetConfig = self.config
        if self.training or cfg.eval_ridge is None:
            return cfg.ridge
        if cfg.eval_ridge_support is None:
            return cfg.eval_ridge
        return cfg.eval_ridge * cfg.eval_ridge_support / support_size

    def _class_factor(self, members: Tensor,
                      support: Tensor) -> tuple[Tensor | None, Tensor, float]:
        """One class's shrunk covariance ``C = l S_c + (1 - l) S + ridge I`` (FS-Mol's
        ProtoNet: a class weight ``l = min(n / (n + 1), 0.1)``, i.e. 0.1 for every class
        present), factored for :meth:`_distance`. ``C`` is the ridge plus a low-rank part
        ``U U^T`` (``U``: the centred members and support, ``[d, n_c + s]``): with fewer
        examples than dimensions, ``(U, cholesky(ridge I + U^T U))`` (Woodbury: a
        ``[k, k]`` factorization instead of ``[d, d]``), else ``(None, cholesky(C))``; the
        ridge last."""
        weight = min(len(members) / (len(members) + 1), 0.1)
        parts = [(members - members.mean(0)) * math.sqrt(weight / max(len(members) - 1, 1)),
                 (support - support.mean(0)) * math.sqrt((1 - weight) / max(len(support) - 1, 1))]
        low_rank = torch.cat(parts).T  # [d, k]
        dim, rank = low_rank.shape
        small = low_rank.T if rank < dim else low_rank
        eye = torch.eye(min(dim, rank), dtype=low_rank.dtype, device=low_rank.device)
        ridge = self._ridge(len(support))
        cholesky = torch.linalg.cholesky(ridge * eye + small @ small.T)
        return (low_rank if rank < dim else None), cholesky, ridge

    def _adapt(self, support: Tensor, targets: Tensor) -> dict:
        """support ``[s, d]``, 0/1 targets ``[s]`` -> prototypes ``[d]`` (None if absent) and,
        for the Mahalanobis distance, their covariance factors (:meth:`_class_factor`)."""
        pos = targets > 0.5
        state: dict = {"pos": None, "neg": None, "radius": None,
                       "pos_factor": None, "neg_factor": None}
        for key, mask in (("pos", pos), ("neg", ~pos)):
            if mask.any():
                state[key] = support[mask].mean(0)
                if self.config.distance == "mahalanobis":
                    state[f"{key}_factor"] = self._class_factor(support[mask], support)
        present = "pos" if state["neg"] is None else "neg"
        if state["pos"] is None or state["neg"] is None:
            state["radius"] = self._distance(support, state[present],
                                             state[f"{present}_factor"]).mean()
        return state

    def _predict(self, state: dict, query: Tensor) -> Tensor:
        """query ``[q, d]`` -> logits ``[q]``."""

        def dist(key: str) -> Tensor:
            if state[key] is None:
                return state["radius"].expand(len(query))
            return self._distance(query, state[key], state[f"{key}_factor"])

        return self.log_scale.exp() * (dist("neg") - dist("pos"))


@dataclass
class AttentionConfig(LearnerConfig):
    """Attributes:
    similarity: ``cosine``, ``dot`` or ``sqeuclidean`` (negative squared distance).
    temperature: initial softmax temperature of the attention.
    learn_temperature: meta-learn the temperature.
    """

    similarity: Literal["cosine", "dot", "sqeuclidean"] = "cosine"
    temperature: float = 0.1
    learn_temperature: bool = True


class AttentionLearner(MetaLearner):
    """Similarity-weighted average of support targets, both kinds.

    ``a = softmax_j(sim(q, s_j) / T)``; classification: logit ``= g * sum_j a_j (2 y_j - 1) +
    b``; regression: normalized rating ``= g * sum_j a_j y_j + b`` (centred targets; the
    support mean, the task's bias, is added back).
    """

    Config = AttentionConfig

    def __init__(self, encoder, kind, config=None):
        super().__init__(encoder, kind, config)
        cfg: AttentionConfig = self.config
        self.log_scale = _log_scale(cfg.temperature, cfg.learn_temperature)
        # A vote in [-1, 1] needs a gain to reach confident logits; ratings start as the average.
        self.gain = nn.Parameter(torch.tensor(4.0 if kind == "classification" else 1.0))
        self.bias = nn.Parameter(torch.tensor(0.0))

    def _similarity(self, query: Tensor, support: Tensor) -> Tensor:
        """``[q, d] x [s, d] -> [q, s]``."""
        if self.config.similarity == "cosine":
            return F.normalize(query, dim=-1) @ F.normalize(support, dim=-1).T
        if self.config.similarity == "dot":
            return query @ support.T
        return -(query.unsqueeze(1) - support.unsqueeze(0)).pow(2).sum(-1)

    def _adapt(self, support: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        values = 2.0 * targets - 1.0 if self.kind == "classification" else targets
        return support, values

    def _predict(self, state: tuple[Tensor, Tensor], query: Tensor) -> Tensor:
        support, values = state
        weights = torch.softmax(self._similarity(query, support) * self.log_scale.exp(), dim=-1)
        return self.gain * (weights @ values) + self.bias
