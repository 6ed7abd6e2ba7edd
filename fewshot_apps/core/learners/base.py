"""The meta-learner interface, the episode batch, learner configs and learner look-ups.

Every learner answers the same three calls:

* ``adapt(support_ids [s], support_labels [s]) -> state``: fit to one task's support set.
* ``predict(state, query_ids [q]) -> [q]``: logits (classification) or ratings (regression).
* ``loss(batch: EpisodeBatch) -> scalar``: the meta-training loss of a batch of episodes,
  BCE-with-logits (classification) or MSE (regression) on the query sets.

and ``fit_predict(support_ids, support_labels, query_ids) -> np.ndarray`` wraps the first two
for evaluation (eval mode, no autograd graph kept; probabilities for classification).

Internally a learner works in two stages, so that a meta-batch needs ONE encoder call:
``encode(ids) -> features`` (the encoder's embeddings by default) over the unique ids of all
episodes, then per task ``_adapt(support_features, targets)`` and ``_predict(state,
query_features)`` on slices of those features.

Regression targets are normalized inside the learner: ``(rating - support mean) /
label_scale``; outputs are mapped back to ratings. So a learner sees centred targets of unit
scale whether ratings run 0.5-5 stars or 1-10. When the encoder has a ``label_prior``
(:mod:`fewshot_apps.core.encoders`), the learner works on residuals ``rating - prior``
throughout (support, query and loss) and adds the prior back to its predictions.

The learners are the meta-learning families' entries of
:data:`~fewshot_apps.core.registry.MODELS` (declared in :mod:`fewshot_apps.core.catalog`),
which gives each class its ``name`` and ``SUPPORTED_KINDS`` (the entry's ``label_kinds``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fewshot_apps.core.config import check_fields_in_range, config_from_dict
from fewshot_apps.core.encoders import has_support_affinity, label_prior, support_affinity
from fewshot_apps.core.learners.implicit import ImplicitHead, standardized
from fewshot_apps.core.registry import (
    ENSEMBLE_FAMILY,
    MODELS,
    meta_learners,
    registered_meta,
    registered_name,
)
from fewshot_apps.core.tasks import Episode
from fewshot_apps.errors import FewshotError

KINDS = ("classification", "regression")
Kind = Literal["classification", "regression"]


# --------------------------------------------------------------------------------------------
# configs


@dataclass
class LearnerConfig:
    """Settings every learner has.

    Attributes:
        label_scale: regression only; targets are ``(rating - support mean) / label_scale``.
        offset_shrinkage: regression with an encoder ``label_prior`` only: the support's
            mean residual over the prior (the user's own bias) is shrunk towards 0 as if this
            many more support ratings sat exactly at their prior, so a 5-rating support moves
            the prediction less than a 20-rating one (the learner sees centred targets and
            cannot shrink it itself). 3 is the ``item-mean`` baseline's ``user_prior``.
        rank_loss_weight: weight of the implicit-feedback loss (BPR of an
            :class:`~fewshot_apps.core.learners.implicit.ImplicitHead`: which examples
            belong to a task) added to the label loss during meta-training, on episodes
            whose sampler draws negatives; 0 (the default in core; a domain with implicit
            feedback sets its own, see ``learner_defaults``) builds no head, and the model
            ranks by its label predictions. Models saved before it existed load with 0.
        rank_rating_weight: share ``a`` of the standardized predicted label in
            :meth:`MetaLearner.fit_rank`'s score, ``(1 - a) * implicit_z + a * label_z``,
            in [0, 1] (1: rank by prediction alone, 0: by the implicit score alone). None:
            chosen on validation tasks after training (the domain's ``choose_rank_weight``);
            still None when ranking (no validation was possible): 0.5.
        rank_affinity_scale: when the implicit head scores with the encoder's support
            affinity: the factor on its learned affinity weight when ranking (training
            always uses 1). None: chosen on validation tasks with ``rank_rating_weight``
            (the domain's ``choose_rank_weight``); still None when ranking: 1. BPR fits the
            embedding part of the score on 60 sampled items per episode; over every item
            of a catalogue the affinity can deserve more weight than that.
        rank_liking: with an affinity term, when ranking: each support example's weight in
            the affinity is ``exp(rank_liking * (label - support mean) / label_scale)``, so
            the examples a task's owner rated highly count more (0: all equal, as in
            training). The all-item view counts liked items only, and neighbours of liked
            items are more often liked. None: chosen on validation tasks with the other
            two; still None when ranking: 0.
        rank_loss: the implicit loss: ``"bpr"`` (every query example above every negative)
            or ``"softmax"`` (sampled softmax: each query example against all negatives).
        label_loss_weight: weight of the label loss (BCE or MSE on the query labels);
            0 trains the implicit objective alone (labels that carry nothing, e.g. implicit
            feedback, every rating 1), which needs ``rank_loss_weight > 0``.
    """

    label_scale: float = 1.0
    offset_shrinkage: float = 3.0
    rank_loss_weight: float = 0.0
    rank_rating_weight: float | None = None
    rank_affinity_scale: float | None = None
    rank_liking: float | None = None
    label_loss_weight: float = 1.0
    rank_loss: Literal["bpr", "softmax"] = "bpr"

    def __post_init__(self) -> None:
        # every learner's rates, weights and scales (config.RANGE_SETTINGS), also when the
        # config is built directly rather than read from settings
        check_fields_in_range(self, type(self).__name__)
        if self.rank_loss_weight == 0 and self.label_loss_weight == 0:
            raise FewshotError("label_loss_weight and rank_loss_weight are both 0: nothing "
                               "to train; give one of them a positive weight")

    @classmethod
    def from_dict(cls, values: dict | None = None, *, learner: str = "") -> LearnerConfig:
        """The defaults overridden by ``values``; strings (``--set key=value``) are parsed.

        Raises FewshotError on an unknown key or a value of the wrong type.
        """
        return config_from_dict(cls, values, f"learner {learner!r}" if learner else cls.__name__)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------------------
# episode batch


@dataclass
class EpisodeBatch:
    """Episodes of one meta-batch over a shared set of unique example ids.

    Attributes:
        example_ids: ``LongTensor[u]``, the unique example ids of all episodes (sorted), so
            that one encoder call embeds the whole batch.
        support_index / query_index: per episode, ``LongTensor[s_i]`` / ``[q_i]`` positions
            into ``example_ids``.
        support_labels / query_labels: per episode, ``FloatTensor[s_i]`` / ``[q_i]``.
        tasks: the task name of each episode.
    """

    example_ids: Tensor
    support_index: list[Tensor]
    support_labels: list[Tensor]
    query_index: list[Tensor]
    query_labels: list[Tensor]
    tasks: list[str]
    negative_index: list[Tensor] | None = None

    @classmethod
    def from_episodes(cls, episodes: Sequence[Episode]) -> EpisodeBatch:
        if not episodes:
            raise FewshotError("an episode batch needs at least one episode")
        parts = [np.asarray(e.support_examples, dtype=np.int64) for e in episodes]
        parts += [np.asarray(e.query_examples, dtype=np.int64) for e in episodes]
        negatives = [e.extras.get("negatives") for e in episodes]
        has_negatives = any(n is not None and len(n) for n in negatives)
        if has_negatives:
            parts += [np.asarray(n if n is not None else [], dtype=np.int64) for n in negatives]
        unique, inverse = np.unique(np.concatenate(parts), return_inverse=True)
        inverse = torch.from_numpy(inverse.astype(np.int64))
        sizes = [len(p) for p in parts]
        pieces = list(torch.split(inverse, sizes))
        n = len(episodes)
        return cls(
            example_ids=torch.from_numpy(unique),
            support_index=pieces[:n],
            support_labels=[
                torch.as_tensor(e.support_labels, dtype=torch.float32) for e in episodes
            ],
            query_index=pieces[n : 2 * n],
            query_labels=[torch.as_tensor(e.query_labels, dtype=torch.float32) for e in episodes],
            tasks=[e.task for e in episodes],
            negative_index=pieces[2 * n :] if has_negatives else None,
        )

    def __len__(self) -> int:
        return len(self.tasks)

    def to(self, device: torch.device | str) -> EpisodeBatch:
        def move(ts: list[Tensor]) -> list[Tensor]:
            return [t.to(device) for t in ts]

        return EpisodeBatch(
            self.example_ids.to(device),
            move(self.support_index),
            move(self.support_labels),
            move(self.query_index),
            move(self.query_labels),
            list(self.tasks),
            None if self.negative_index is None else move(self.negative_index),
        )


# --------------------------------------------------------------------------------------------
# the learner


@dataclass
class AdaptedState:
    """What ``adapt`` returns: the learner's task state and the regression offset.

    ``inner`` is learner-specific (prototypes, generated weights, adapted parameters);
    ``offset`` is the support mean rating (``None`` for classification).
    """

    inner: Any
    offset: Tensor | None = None


class MetaLearner(nn.Module):
    """Base class of the meta-learners (see the module docstring for the interface).

    Subclasses set ``Config`` (a :class:`LearnerConfig` dataclass) and implement ``_adapt``
    and ``_predict`` on features; they may override ``encode`` (what is computed once per
    meta-batch) and ``_episode_loss``. ``name`` and ``SUPPORTED_KINDS`` come from the class's
    :data:`~fewshot_apps.core.registry.MODELS` entry, or its nearest registered base class's
    (a learner used without any sets ``name`` itself and supports both kinds unless it sets
    ``SUPPORTED_KINDS``).
    """

    name = registered_name(MODELS)
    Config: ClassVar[type[LearnerConfig]] = LearnerConfig
    SUPPORTED_KINDS = registered_meta(MODELS, "label_kinds", default=KINDS)
    # MAML-family learners need autograd in adapt (inner-loop gradients), even at evaluation.
    needs_grad_to_adapt: ClassVar[bool] = False
    # The post-hoc calibration fitted on validation tasks after training (a
    # fewshot_apps.core.calibration.Calibration; None: probabilities as the learner gives them).
    calibration: Any = None

    def __init__(self, encoder: nn.Module, kind: Kind, config: LearnerConfig | dict | None = None):
        super().__init__()
        check_kind(type(self), kind)
        out_dim = getattr(encoder, "out_dim", None)
        if not isinstance(out_dim, int) or out_dim < 1:
            raise FewshotError(
                f"learner {self.name!r}: the encoder {type(encoder).__name__} must have an "
                "integer attribute out_dim (its embedding width)"
            )
        if config is None:
            config = self.Config()
        elif isinstance(config, dict):
            config = self.Config.from_dict(config, learner=self.name)
        elif not isinstance(config, self.Config):
            raise FewshotError(
                f"learner {self.name!r}: config must be a {self.Config.__name__} or a dict, "
                f"got {type(config).__name__}"
            )
        self.encoder = encoder
        self.kind: Kind = kind
        self.config = config
        self.embed_dim = out_dim
        # Built only when trained: a model without the setting keeps its state_dict keys.
        self.implicit = (ImplicitHead(out_dim, affinity=has_support_affinity(encoder))
                         if config.rank_loss_weight > 0 else None)

    # ---- description ---------------------------------------------------------------------

    def describe(self) -> dict:
        """``{"name", "kind", "config"}``: what rebuilds this learner (with its encoder)."""
        return {"name": self.name, "kind": self.kind, "config": self.config.to_dict()}

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(p for p in self.parameters() if p.is_floating_point()).dtype

    # ---- the two stages (subclasses) -----------------------------------------------------

    def encode(self, example_ids: Tensor) -> Tensor:
        """``LongTensor[n] -> [n, ...]`` features computed once per meta-batch."""
        return self.encoder(example_ids)

    def embed_features(self, features: Tensor) -> Tensor:
        """``encode``'s features ``[n, ...]`` -> the encoder's embeddings ``[n, d]`` (what the
        implicit head scores); the identity unless ``encode`` returns something else."""
        return features

    def _adapt(self, support: Tensor, targets: Tensor) -> Any:
        """Fit one task: ``support`` features ``[s, ...]``, ``targets`` ``[s]`` (0/1 labels or
        normalized ratings) -> task state."""
        raise NotImplementedError

    def _predict(self, state: Any, query: Tensor) -> Tensor:
        """``query`` features ``[q, ...]`` -> ``[q]`` logits or normalized ratings."""
        raise NotImplementedError

    def _episode_loss(
        self, support: Tensor, targets: Tensor, query: Tensor, query_targets: Tensor
    ) -> Tensor:
        """The query loss of one episode (features and normalized targets)."""
        return self._criterion(self._predict(self._adapt(support, targets), query), query_targets)

    # ---- labels --------------------------------------------------------------------------

    def _criterion(self, output: Tensor, targets: Tensor) -> Tensor:
        """BCE-with-logits (classification) or MSE on normalized ratings (regression)."""
        targets = targets.to(output.dtype)
        if self.kind == "classification":
            return F.binary_cross_entropy_with_logits(output, targets)
        return F.mse_loss(output, targets)

    def _normalize(
        self, labels: Tensor, offset: Tensor | None = None, pseudo_count: float = 0.0
    ) -> tuple[Tensor, Tensor | None]:
        """Labels -> (targets, offset); regression: ``(y - offset) / label_scale`` with offset
        the support mean (``pseudo_count`` extra zeros in the mean: the shrunk mean)."""
        labels = labels.to(device=self.device, dtype=self.dtype)
        if self.kind == "classification":
            return labels, None
        if offset is None:
            offset = labels.sum() / (len(labels) + pseudo_count)
        return (labels - offset) / self.config.label_scale, offset

    def _prior(self, example_ids: Tensor) -> Tensor | None:
        """``[n]`` the encoder's prior ratings of ``example_ids`` (regression), else None."""
        if self.kind != "regression":
            return None
        prior = label_prior(self.encoder, example_ids)
        return None if prior is None else prior.to(device=self.device, dtype=self.dtype)

    def _offset_pseudo_count(self, prior: Tensor | None) -> float:
        """The support offset's shrinkage: ``offset_shrinkage`` on residuals over a prior;
        none on raw ratings (their mean is not near 0)."""
        return 0.0 if prior is None else float(self.config.offset_shrinkage)

    def _residual_batch(self, batch: EpisodeBatch) -> tuple[EpisodeBatch, float]:
        """``batch`` with the encoder's prior subtracted from every label (unchanged without
        a prior), and the support offset's pseudo-count (:meth:`_offset_pseudo_count`)."""
        prior = self._prior(batch.example_ids)
        if prior is None:
            return batch, 0.0

        def residual(labels: list[Tensor], index: list[Tensor]) -> list[Tensor]:
            return [y.to(prior) - prior[i.to(prior.device)] for y, i in zip(labels, index)]

        return dataclasses.replace(
            batch,
            support_labels=residual(batch.support_labels, batch.support_index),
            query_labels=residual(batch.query_labels, batch.query_index),
        ), self._offset_pseudo_count(prior)

    def _add_prior(self, output: Tensor, example_ids: Tensor) -> Tensor:
        """Predicted residuals ``[n]`` of ``example_ids`` -> predicted labels."""
        prior = self._prior(example_ids)
        return output if prior is None else output + prior.to(output.dtype)

    def _denormalize(self, output: Tensor, offset: Tensor | None) -> Tensor:
        if self.kind == "classification":
            return output
        return output * self.config.label_scale + offset

    # ---- the public interface ------------------------------------------------------------

    def _ids(self, ids: Tensor | np.ndarray | Sequence[int]) -> Tensor:
        return torch.as_tensor(
            np.asarray(ids, dtype=np.int64) if not isinstance(ids, Tensor) else ids
        ).to(device=self.device, dtype=torch.long)

    def adapt(self, support_ids: Tensor, support_labels: Tensor) -> AdaptedState:
        """Fit one task's support set: ids ``[s]``, labels ``[s]`` -> :class:`AdaptedState`."""
        support_ids = self._ids(support_ids)
        labels = torch.as_tensor(support_labels).to(device=self.device, dtype=self.dtype)
        prior = self._prior(support_ids)
        targets, offset = self._normalize(labels if prior is None else labels - prior,
                                          pseudo_count=self._offset_pseudo_count(prior))
        return AdaptedState(self._adapt(self.encode(support_ids), targets), offset)

    def predict(self, state: AdaptedState, query_ids: Tensor) -> Tensor:
        """``[q]`` logits (classification) or predicted ratings (regression)."""
        query_ids = self._ids(query_ids)
        output = self._predict(state.inner, self.encode(query_ids))
        return self._add_prior(self._denormalize(output, state.offset), query_ids)

    def loss(self, batch: EpisodeBatch) -> Tensor:
        """Mean query loss over the episodes of ``batch``; one ``encode`` call for all."""
        batch, pseudo_count = self._residual_batch(batch.to(self.device))
        features = self.encode(batch.example_ids)
        losses = []
        for s_idx, s_lab, q_idx, q_lab in zip(
            batch.support_index, batch.support_labels, batch.query_index, batch.query_labels
        ):
            targets, offset = self._normalize(s_lab, pseudo_count=pseudo_count)
            query_targets, _ = self._normalize(q_lab, offset)
            losses.append(
                self._episode_loss(features[s_idx], targets, features[q_idx], query_targets)
            )
        return self._with_implicit(torch.stack(losses).mean(), features, batch)

    def _with_implicit(self, label_loss: Tensor, features: Tensor, batch: EpisodeBatch) -> Tensor:
        """``label_loss_weight * label_loss + rank_loss_weight * implicit loss`` of the batch
        (``features``: the batch's ``encode`` output, reused so the encoder runs once);
        ``label_loss`` alone without a head or without negatives in the batch."""
        if self.implicit is None or batch.negative_index is None:
            return label_loss
        rank_loss = self.implicit_loss(features, batch)
        cfg = self.config
        return cfg.label_loss_weight * label_loss + cfg.rank_loss_weight * rank_loss

    def implicit_loss(self, features: Tensor, batch: EpisodeBatch) -> Tensor:
        """The implicit head's BPR loss (:meth:`ImplicitHead.loss`): query examples against
        the sampled negatives, task vectors pooled from the supports."""
        if self.implicit is None:
            raise FewshotError(f"learner {self.name!r} has no implicit head "
                               "(rank_loss_weight is 0)")
        if batch.negative_index is None:
            raise FewshotError("the episode batch has no negatives (its sampler drew none)")
        pos_affinity = neg_affinity = None
        if self.implicit.uses_affinity:
            ids = batch.example_ids
            pos_affinity, neg_affinity = [], []
            for s, q, n in zip(batch.support_index, batch.query_index, batch.negative_index):
                # one call per episode: the support's columns are taken once
                both = support_affinity(self.encoder, ids[s], ids[torch.cat([q, n])])
                pos_affinity.append(both[: len(q)])
                neg_affinity.append(both[len(q):])
        return self.implicit.loss(self.embed_features(features), batch.support_index,
                                  batch.query_index, batch.negative_index,
                                  kind=self.config.rank_loss, positive_affinity=pos_affinity,
                                  negative_affinity=neg_affinity)

    def fit_predict(
        self,
        support_ids: Tensor | np.ndarray,
        support_labels: Tensor | np.ndarray,
        query_ids: Tensor | np.ndarray,
        chunk_size: int | None = 4096,
    ) -> np.ndarray:
        """Adapt to the support set and score the query: ``[q]`` float64 numpy array of
        probabilities (classification; calibrated by ``self.calibration`` when the model has
        one, see :mod:`fewshot_apps.core.calibration`) or ratings (regression).

        Runs in eval mode; without autograd except inside the inner loops of the MAML family,
        whose gradients never touch the meta-parameters. Queries are scored in chunks of
        ``chunk_size`` (every learner scores queries independently given the state).
        """
        output = self._fit_predict_output(support_ids, support_labels, query_ids, chunk_size)
        if self.kind == "classification":
            output = self.probabilities(output)
        return output.detach().cpu().double().numpy()

    def fit_predict_logits(
        self,
        support_ids: Tensor | np.ndarray,
        support_labels: Tensor | np.ndarray,
        query_ids: Tensor | np.ndarray,
        chunk_size: int | None = 4096,
    ) -> np.ndarray:
        """As :meth:`fit_predict`, but the raw, uncalibrated logits (classification only):
        what a calibration is fitted on."""
        if self.kind != "classification":
            raise FewshotError(f"learner {self.name!r}: logits of a {self.kind} model")
        output = self._fit_predict_output(support_ids, support_labels, query_ids, chunk_size)
        return output.detach().cpu().double().numpy()

    def fit_rank(
        self,
        support_ids: Tensor | np.ndarray,
        support_labels: Tensor | np.ndarray,
        candidate_ids: Tensor | np.ndarray,
        chunk_size: int | None = 4096,
        *,
        predicted: np.ndarray | None = None,
    ) -> np.ndarray:
        """Ranking scores ``[c]`` (float64, higher first) of the candidates for the task of
        this support set: what the task's owner will pick, not only how they will label it.
        ``predicted``: :meth:`fit_predict`'s ratings of the same candidates when the caller
        has them already (regression only: they are then not predicted a second time).

        ``(1 - a) * z(implicit score) + a * z(predicted label)``, ``z`` standardizing over
        the candidates and ``a`` = ``rank_rating_weight`` (chosen on validation tasks; 0.5 if
        never chosen). Without an implicit head (``rank_loss_weight`` 0, models saved
        before it existed) or with ``a = 1``: the predicted labels, the ranking
        :meth:`fit_predict` gives.
        """
        a = self.rank_share
        if a > 0.0:
            if predicted is not None and self.kind == "regression":
                predicted = torch.as_tensor(np.asarray(predicted, dtype=np.float64))
            else:
                predicted = self._fit_predict_output(support_ids, support_labels,
                                                     candidate_ids, chunk_size).detach()
            if a >= 1.0:
                return predicted.cpu().double().numpy()
        implicit = standardized(self.implicit_scores(support_ids, candidate_ids, chunk_size,
                                                     support_labels=support_labels).double())
        if a == 0.0:  # the implicit score alone: no label predicted at all
            return implicit.cpu().numpy()
        combined = (1.0 - a) * implicit + a * standardized(predicted.to(implicit.device).double())
        return combined.cpu().numpy()

    @property
    def rank_share(self) -> float:
        """The share ``a`` of the predicted label in :meth:`fit_rank` (1 without a head)."""
        if self.implicit is None:
            return 1.0
        a = self.config.rank_rating_weight
        return 0.5 if a is None else float(a)

    @property
    def liking(self) -> float:
        """How much liked support examples count in the affinity when ranking (0 if never
        chosen)."""
        k = self.config.rank_liking
        return 0.0 if k is None else float(k)

    def _support_weights(self, labels, liking: float) -> Tensor | None:
        """``[s]`` weights summing to 1, ``softmax(liking * (label - mean) / label_scale)``;
        None (equal weights) without labels, with ``liking`` 0 or without an affinity term."""
        if labels is None or liking == 0.0 or not self.implicit.uses_affinity:
            return None
        y = torch.as_tensor(labels).detach().cpu().double()
        if len(y) == 0:
            return None
        return torch.softmax(liking * (y - y.mean()) / self.config.label_scale, dim=0)

    @property
    def affinity_scale(self) -> float:
        """The factor on the implicit head's affinity weight when ranking (1 if never
        chosen)."""
        k = self.config.rank_affinity_scale
        return 1.0 if k is None else float(k)

    def implicit_scores(
        self,
        support_ids: Tensor | np.ndarray,
        candidate_ids: Tensor | np.ndarray,
        chunk_size: int | None = 4096,
        *,
        affinity_scale: float | None = None,
        support_labels: Tensor | np.ndarray | None = None,
        liking: float | None = None,
    ) -> Tensor:
        """``[c]`` the implicit head's scores of the candidates for the support set (eval
        mode, no autograd; FewshotError without a head), the affinity term scaled by
        ``affinity_scale`` (default: ``rank_affinity_scale``, 1 when never chosen) and its
        support examples weighted by their ``support_labels`` with ``liking`` (default:
        ``rank_liking``, 0 when never chosen; no labels: equal weights)."""
        if affinity_scale is None:
            affinity_scale = self.affinity_scale
        if liking is None:
            liking = self.liking
        if self.implicit is None:
            raise FewshotError(f"learner {self.name!r} has no implicit head "
                               "(rank_loss_weight is 0): it ranks by its predictions")
        support_ids, candidate_ids = self._ids(support_ids), self._ids(candidate_ids)
        weights = self._support_weights(support_labels, liking)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                support = self.encoder(support_ids)
                step = chunk_size or max(len(candidate_ids), 1)
                parts = [self.implicit.score_examples(
                            support, self.encoder(chunk),
                            support_affinity(self.encoder, support_ids, chunk, weights),
                            affinity_scale=affinity_scale)
                         for chunk in torch.split(candidate_ids, step)]
        finally:
            self.train(was_training)
        return torch.cat(parts) if parts else torch.zeros(0, device=self.device)

    def probabilities(self, logits: Tensor) -> Tensor:
        """Raw logits -> probabilities of activity: ``sigmoid`` of the logits recalibrated
        by ``self.calibration`` (temperature or Platt scaling fitted on validation tasks;
        unchanged without one)."""
        calibration = self.calibration
        return torch.sigmoid(logits if calibration is None else calibration.logits(logits))

    def _fit_predict_output(self, support_ids, support_labels, query_ids,
                            chunk_size: int | None) -> Tensor:
        """``[q]`` raw logits or ratings of the query after adapting (eval mode)."""
        was_training = self.training
        self.eval()
        try:
            with torch.set_grad_enabled(False):
                state = self.adapt(
                    support_ids, torch.as_tensor(np.asarray(support_labels, dtype=np.float32))
                )
                query_ids = self._ids(query_ids)
                step = chunk_size or max(len(query_ids), 1)
                outputs = [self.predict(state, chunk) for chunk in torch.split(query_ids, step)]
                output = torch.cat(outputs) if outputs else torch.zeros(0, device=self.device)
        finally:
            self.train(was_training)
        return output


# --------------------------------------------------------------------------------------------
# kinds and look-ups


def learner_names(kind: str | None = None) -> list[str]:
    """The meta-learners of :data:`~fewshot_apps.core.registry.MODELS` (the metric, generator
    and optimizer families), in declaration order; only those supporting ``kind`` if given."""
    return meta_learners(kind)


def check_kind(cls: type[MetaLearner], kind: str) -> None:
    """FewshotError unless ``cls`` supports ``kind``."""
    if kind not in KINDS:
        raise FewshotError(f"unknown task kind {kind!r}; expected 'classification' or 'regression'")
    if kind not in cls.SUPPORTED_KINDS:
        raise FewshotError(
            f"learner {cls.name!r} supports {' and '.join(cls.SUPPORTED_KINDS)} tasks only, "
            f"not {kind}; pick another learner for {kind} (e.g. "
            f"{', '.join(sorted(learner_names(kind)))})"
        )


def learner_class(name: str) -> type[MetaLearner]:
    """The class of meta-learner ``name`` (its :data:`~fewshot_apps.core.registry.MODELS`
    entry, loaded); FewshotError naming the meta-learners for any other name."""
    if name not in learner_names():
        known = f"known: {', '.join(sorted(learner_names()))}"
        if name in MODELS and MODELS.get(name).family == ENSEMBLE_FAMILY:
            raise FewshotError(f"{name!r} is not trained: it averages trained models; save one "
                               f"with `fewshot-apps ensemble --model A --model B --out DIR` "
                               f"(meta-learners, {known})")
        raise FewshotError(f"unknown learner {name!r}; {known}")
    return MODELS.load(name)


def build_learner(name: str, encoder: nn.Module, kind: Kind, **config: Any) -> MetaLearner:
    """``learner_class(name)(encoder, kind, Config.from_dict(config))``; strings are parsed."""
    cls = learner_class(name)
    check_kind(cls, kind)
    return cls(encoder, kind, cls.Config.from_dict(config, learner=name))


def default_config(name: str) -> dict:
    """The default settings of learner ``name`` as a dict."""
    return learner_class(name).Config().to_dict()
