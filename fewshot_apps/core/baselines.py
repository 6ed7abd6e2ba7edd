"""Transfer-learning baselines: multitask pre-training, then a fresh head per new task.

Both baselines receive an encoder as the learners do (see :mod:`fewshot_apps.core.encoders`)
and answer ``fit_predict(support_ids [s], support_labels [s], query_ids [q]) -> [q]``
(probabilities for classification, ratings for regression), with ``name``, ``kind`` and
``family = "transfer"``.

**Pre-training** (:meth:`TransferBaseline.pretrain`, FS-Mol's GNN-MT): the encoder and a
multitask head learn every training task at once from mini-batches of observed (example,
task) pairs, one encoder call per batch over the batch's unique examples:

* one linear output per training task, ``e . w_t + b_t`` (``e`` the embedding);
* classification: binary cross-entropy on the observed pairs (the masked multitask BCE:
  unobserved pairs never enter a batch);
* regression (ratings): MSE on ratings centred on each task's mean and divided by
  ``label_scale`` (at test time the support mean takes that mean's place). With users as
  tasks and items as examples this is matrix factorization with encoder item vectors.

Afterwards the per-task outputs are dropped; their mean ``w̄`` (the "global" model: for
ratings, the direction of the items' general appeal) is kept as the starting point of new
heads. Validation tasks (never test tasks) pick the best pre-training step when given: every
``eval_every`` steps the baseline's own ``fit_predict`` is scored on fixed episodes of them.

**A new task** then gets a fresh head on frozen embeddings:

* ``finetune`` (:class:`FinetuneBaseline`): a linear head (logistic or rating) starting at
  ``w̄``, optionally with the encoder's last layer (``forward_trunk`` / ``forward_last``),
  trained with full-batch Adam and an L2 pull towards its start; the number of steps is
  chosen by early stopping on a held-out split of the support, then the head is refit on the
  whole support for that many steps.
* ``linear-probe`` (:class:`LinearProbeBaseline`): scikit-learn ``LogisticRegression`` /
  ``Ridge`` on the standardized embeddings.

With an encoder ``label_prior`` (regression; :mod:`fewshot_apps.core.encoders`) both stages
model the residual ``rating - prior`` and predictions add the prior back, as the learners do.

Both may share one pre-trained encoder: pre-train one, build the other on the same encoder
module and skip its ``pretrain``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fewshot_apps.core.config import config_from_dict
from fewshot_apps.core.device import resolve_device
from fewshot_apps.core.encoders import label_prior, pretraining_hidden, supports_last_layer_split
from fewshot_apps.core.optim import adamw
from fewshot_apps.core.registry import MODELS, registered_name
from fewshot_apps.core.tasks import RandomSampler, StratifiedSampler, Task, derive_seed
from fewshot_apps.errors import FewshotError

log = logging.getLogger(__name__)

Kind = Literal["classification", "regression"]


# --------------------------------------------------------------------------------------------
# configs


@dataclass
class PretrainConfig:
    """Multitask pre-training settings (shared by both transfer baselines).

    Attributes:
        steps: optimizer steps (``pretrain(steps=...)`` overrides).
        batch_size: (example, task) pairs per step; each epoch visits every pair once.
        lr / weight_decay: AdamW settings; grad_clip: max gradient norm (None: none).
        eval_every: validate every this many steps (and at the last) when validating.
        patience: stop after this many validations without improvement (None: never).
        label_scale: regression only; targets are ``(rating - task mean) / label_scale``.
        device: ``cpu``, ``cuda``, ``cuda:1``... or ``auto``; where pre-training moves the
            model (``fit_predict`` runs wherever the model is).
        chunk_size: examples per encoder call when embedding many (queries, loss checks).
    """

    steps: int = 2000
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    eval_every: int = 200
    patience: int | None = None
    label_scale: float = 1.0
    device: str = "auto"
    chunk_size: int = 4096

    @classmethod
    def from_dict(cls, values: dict | None = None, *, who: str = ""):
        """Defaults overridden by ``values`` (strings parsed; unknown keys rejected)."""
        return config_from_dict(cls, values, who or cls.__name__)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class FinetuneConfig(PretrainConfig):
    """Pre-training settings plus the per-task head fit of ``finetune``.

    Attributes:
        head_steps: at most this many full-batch Adam steps on the support set.
        head_lr: Adam learning rate of the head.
        head_l2: L2 penalty ``head_l2 * |w - w̄|^2`` pulling the head's weights towards
            their start (the mean pre-trained task head), which, like a logistic
            regression's C, keeps a fit on a handful of examples from running off.
        tune_last_layer: also adapt the encoder's last layer (a copy per task; the encoder
            itself never changes) when the encoder offers ``forward_trunk`` / ``forward_last``.
        last_layer_lr: Adam learning rate of that copy (small: it starts pre-trained).
        holdout_fraction: share of the support held out to choose the number of steps
            (stratified; none when a class has fewer than 2 examples, or fewer than 4
            examples for regression: then ``head_steps`` are run).
        check_every: the held-out loss is checked every this many steps (also the fewest
            steps run, so that the head always moves away from its constant start).
    """

    head_steps: int = 100
    head_lr: float = 1e-2
    head_l2: float = 1e-3
    tune_last_layer: bool = False
    last_layer_lr: float = 1e-3
    holdout_fraction: float = 0.25
    check_every: int = 5


@dataclass
class LinearProbeConfig(PretrainConfig):
    """Pre-training settings plus the scikit-learn probe of ``linear-probe``.

    Attributes:
        C: inverse L2 strength of ``LogisticRegression`` (classification) on standardized
            embeddings; 1.0, scikit-learn's default, on features of unit scale.
        alpha: L2 strength of ``Ridge`` (regression) on centred embeddings; None (the
            default): chosen per support set by leave-one-out among ``ALPHAS``.
    """

    C: float = 1.0
    alpha: float | None = None

    #: The ridge strengths leave-one-out chooses from (regression, ``alpha`` None).
    ALPHAS = tuple(10.0 ** k for k in range(-2, 6))


@dataclass
class PretrainResult:
    """What :meth:`TransferBaseline.pretrain` did.

    ``losses``: the training loss of every step; ``initial_loss`` / ``final_loss``: the
    multitask loss (eval mode) on a fixed sample of training pairs before and after (at the
    best step when validating); ``best_step`` / ``best_valid``: None without validation.
    """

    steps_run: int
    losses: list[float] = field(repr=False)
    initial_loss: float
    final_loss: float
    best_step: int | None
    best_valid: float | None
    stopped_early: bool


# --------------------------------------------------------------------------------------------
# helpers


def _device_of(module: nn.Module) -> torch.device:
    for t in itertools.chain(module.parameters(), module.buffers()):
        return t.device
    return torch.device("cpu")


def _content_seed(*arrays: np.ndarray) -> str:
    """A short digest of arrays, so that a split depends on the episode, not on its order."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def _check_labels(kind: str, labels: np.ndarray, where: str) -> None:
    if kind == "classification" and not np.isin(labels, (0.0, 1.0)).all():
        raise FewshotError(f"{where}: classification labels must be 0/1")
    if not np.isfinite(labels).all():
        raise FewshotError(f"{where}: labels contain NaN or infinite values")


class MultitaskHead(nn.Module):
    """The pre-training head: one linear output per training task.

    ``forward(embeddings [n, d], task_index [n]) -> [n]``: ``e_i . w_{t_i} + b_{t_i}``, a
    logit (classification) or a centred, scaled rating (regression).
    """

    def __init__(self, in_dim: int, n_tasks: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_tasks, in_dim) / math.sqrt(in_dim))
        self.bias = nn.Parameter(torch.zeros(n_tasks))

    def forward(self, embeddings: Tensor, task_index: Tensor) -> Tensor:
        return (embeddings * self.weight[task_index]).sum(-1) + self.bias[task_index]


@dataclass
class _Pairs:
    """Observed (example, task) pairs: ids ``[p]``, task index ``[p]``, targets ``[p]``."""

    ids: np.ndarray
    task: np.ndarray
    target: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, rows: np.ndarray) -> _Pairs:
        return _Pairs(self.ids[rows], self.task[rows], self.target[rows])


# --------------------------------------------------------------------------------------------
# the shared part


class TransferBaseline(nn.Module):
    """Multitask pre-training of an encoder; subclasses fit a new head per task.

    Args:
        encoder: an encoder (``out_dim``, ``forward(ids) -> [n, out_dim]``).
        kind: ``classification`` or ``regression``.
        config: the subclass's ``Config`` or a dict of overrides.
        seed: fixes pre-training (head init, pair order, dropout) and the support splits.
    """

    name = registered_name(MODELS)  # the subclass's MODELS entry
    family: ClassVar[str] = "transfer"
    Config: ClassVar[type[PretrainConfig]] = PretrainConfig
    # The post-hoc calibration fitted on validation tasks after pre-training (a
    # fewshot_apps.core.calibration.Calibration; None: probabilities as the head gives them).
    calibration: Any = None

    def __init__(self, encoder: nn.Module, kind: Kind, config: PretrainConfig | dict | None = None,
                 seed: int = 0):
        super().__init__()
        if kind not in ("classification", "regression"):
            raise FewshotError(f"unknown task kind {kind!r}; expected 'classification' or 'regression'")
        out_dim = getattr(encoder, "out_dim", None)
        if not isinstance(out_dim, int) or out_dim < 1:
            raise FewshotError(
                f"{self.name}: the encoder {type(encoder).__name__} must have an integer "
                "attribute out_dim (its embedding width)"
            )
        if config is None:
            config = self.Config()
        elif isinstance(config, dict):
            config = self.Config.from_dict(config, who=f"baseline {self.name!r}")
        elif not isinstance(config, self.Config):
            raise FewshotError(f"{self.name}: config must be a {self.Config.__name__} or a dict")
        self.encoder = encoder
        self.kind: Kind = kind
        self.config = config
        self.seed = int(seed)
        self.embed_dim = out_dim
        self.multitask_head: MultitaskHead | None = None
        # The mean pre-trained task head [out_dim]: where new heads start (zeros before).
        self.register_buffer("head_init", torch.zeros(out_dim))
        self.pretrained = False

    def describe(self) -> dict:
        """``{"name", "family", "kind", "seed", "config"}``."""
        return {"name": self.name, "family": self.family, "kind": self.kind,
                "seed": self.seed, "config": self.config.to_dict()}

    @classmethod
    def from_description(cls, encoder: nn.Module, spec: dict) -> TransferBaseline:
        """The baseline :meth:`describe` describes, marked pre-trained (its weights are
        loaded next by :func:`~fewshot_apps.core.persistence.load_model`)."""
        model = cls(encoder, spec["kind"], spec.get("config", {}), seed=spec.get("seed", 0))
        model.pretrained = True
        return model

    @property
    def device(self) -> torch.device:
        return _device_of(self)

    # ---- embeddings ----------------------------------------------------------------------

    def _ids(self, ids) -> Tensor:
        ids = ids.detach().cpu().numpy() if isinstance(ids, Tensor) else ids
        return torch.as_tensor(np.asarray(ids, dtype=np.int64), device=self.device)

    @torch.no_grad()
    def _encode(self, ids, trunk: bool = False) -> Tensor:
        """``[n] -> [n, out_dim]`` embeddings (``trunk``: the trunk's hidden features) in
        chunks, without autograd; the caller sets eval mode."""
        ids = self._ids(ids)
        fn = self.encoder.forward_trunk if trunk else self.encoder
        if len(ids) == 0:
            raise FewshotError(f"{self.name}: no example ids to embed")
        return torch.cat([fn(chunk) for chunk in torch.split(ids, max(1, self.config.chunk_size))]).float()

    def embed(self, ids) -> Tensor:
        """Frozen embeddings ``[n, out_dim]`` of example ids (eval mode, no autograd)."""
        was_training = self.training
        self.eval()
        try:
            return self._encode(ids)
        finally:
            self.train(was_training)

    # ---- pre-training --------------------------------------------------------------------

    def _prior(self, ids: np.ndarray) -> np.ndarray | None:
        """float64 ``[n]`` the encoder's prior ratings of ``ids`` (regression), else None."""
        if self.kind != "regression" or len(ids) == 0:
            return None
        with torch.no_grad():
            prior = label_prior(self.encoder, self._ids(ids))
        return None if prior is None else prior.detach().cpu().double().numpy()

    def _residual(self, ids: np.ndarray, labels: np.ndarray) -> np.ndarray:
        prior = self._prior(ids)
        return labels if prior is None else labels - prior

    def _pairs(self, tasks: Sequence[Task]) -> _Pairs:
        ids, task_index, targets = [], [], []
        for t, task in enumerate(tasks):
            labels = np.asarray(task.labels, dtype=np.float64)
            _check_labels(self.kind, labels, f"{self.name}: training task {task.name!r}")
            if self.kind == "regression" and len(labels):
                labels = self._residual(np.asarray(task.examples, dtype=np.int64), labels)
                labels = (labels - labels.mean()) / self.config.label_scale
            ids.append(np.asarray(task.examples, dtype=np.int64))
            task_index.append(np.full(len(labels), t, dtype=np.int64))
            targets.append(labels.astype(np.float32))
        if not ids or sum(len(i) for i in ids) == 0:
            raise FewshotError(f"{self.name}: no training examples to pre-train on")
        return _Pairs(np.concatenate(ids), np.concatenate(task_index), np.concatenate(targets))

    def _batch_loss(self, pairs: _Pairs) -> Tensor:
        """The multitask loss of a batch of pairs: one encoder call over its unique ids."""
        unique, inverse = np.unique(pairs.ids, return_inverse=True)
        device = self.device
        embeddings = self.encoder(torch.as_tensor(unique, device=device))
        inverse = torch.as_tensor(inverse.reshape(-1), device=device)
        output = self.multitask_head(embeddings[inverse].float(), torch.as_tensor(pairs.task, device=device))
        target = torch.as_tensor(pairs.target, device=device)
        if self.kind == "classification":
            return F.binary_cross_entropy_with_logits(output, target)
        return F.mse_loss(output, target)

    @torch.no_grad()
    def _eval_loss(self, pairs: _Pairs) -> float:
        was_training = self.training
        self.eval()
        try:
            total = 0.0
            step = max(1, self.config.chunk_size)
            for start in range(0, len(pairs), step):
                part = pairs.take(np.arange(start, min(start + step, len(pairs))))
                total += float(self._batch_loss(part)) * len(part)
            return total / len(pairs)
        finally:
            self.train(was_training)

    def default_valid_sampler(self):
        """Episodes for validation during pre-training: FS-Mol's smallest stratified support
        (16) for classification, 10 random ratings for regression; query = the rest."""
        return StratifiedSampler(16) if self.kind == "classification" else RandomSampler(10)

    def pretrain(
        self,
        train_tasks: Sequence[Task],
        valid_tasks: Sequence[Task] | None = None,
        steps: int | None = None,
        valid_fn: Callable[[TransferBaseline], float] | None = None,
        valid_sampler: object | None = None,
        loss_sample: int = 4096,
        progress: bool = False,
    ) -> PretrainResult:
        """Pre-train the encoder on all ``train_tasks`` at once (see the module docstring).

        Args:
            train_tasks: the training tasks; each gets its own linear output.
            valid_tasks: validation tasks (never test tasks): when given (or ``valid_fn``),
                the weights of the best validation score are kept.
            steps: optimizer steps (default ``config.steps``).
            valid_fn: ``valid_fn(baseline) -> float``, higher is better; default: mean
                ROC-AUC / minus RMSE of ``fit_predict`` on fixed episodes of ``valid_tasks``
                drawn with ``valid_sampler`` (default :meth:`default_valid_sampler`).
            loss_sample: training pairs on which ``initial_loss`` / ``final_loss`` are measured.
            progress: show a progress bar.

        The run is fixed by ``seed`` (on one device); the global torch RNG is left as it was.
        Raises FewshotError when the loss becomes NaN / infinite.
        """
        from fewshot_apps.progress import progress_bar

        cfg = self.config
        steps = cfg.steps if steps is None else int(steps)
        device = resolve_device(cfg.device)
        pairs = self._pairs(train_tasks)
        if valid_fn is None and valid_tasks:
            from fewshot_apps.core.validation import episode_validator

            valid_fn = episode_validator(
                valid_tasks, valid_sampler or self.default_valid_sampler(),
                seed=derive_seed(self.seed, "valid"),
            )
        check_rows = np.random.default_rng(derive_seed(self.seed, "loss-sample")).permutation(len(pairs))
        check = pairs.take(np.sort(check_rows[:loss_sample]))
        batch = max(1, min(cfg.batch_size, len(pairs)))
        per_epoch = -(-len(pairs) // batch)

        devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            # A forked RNG: the run is fixed by the seed and leaves the caller's RNG alone
            # (only the generators that fork_rng restores are seeded).
            run_seed = derive_seed(self.seed, "pretrain")
            torch.default_generator.manual_seed(run_seed)
            if device.type == "cuda":
                with torch.cuda.device(device):
                    torch.cuda.manual_seed(run_seed)
            self.multitask_head = MultitaskHead(self.embed_dim, len(train_tasks))
            self.to(device)
            params = [p for p in self.parameters() if p.requires_grad]
            optimizer = adamw(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
            initial_loss = self._eval_loss(check)
            losses: list[float] = []
            best_valid, best_step, best_weights, bad, stopped = None, None, None, 0, False
            order = np.zeros(0, dtype=np.int64)
            task_names = [t.name for t in train_tasks]
            self.train()
            for step in progress_bar(range(1, steps + 1), desc=f"pretrain {self.name}", enabled=progress):
                epoch, slot = divmod(step - 1, per_epoch)
                if slot == 0:
                    order = np.random.default_rng(derive_seed(self.seed, "epoch", epoch)).permutation(len(pairs))
                with pretraining_hidden(self.encoder, task_names):
                    loss = self._batch_loss(pairs.take(order[slot * batch:(slot + 1) * batch]))
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise FewshotError(
                        f"{self.name}: pre-training step {step}: the loss is {value}; lower lr "
                        f"(now {cfg.lr:g}) or check the inputs for NaN / infinite values"
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip:
                    torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                optimizer.step()
                losses.append(value)
                if valid_fn is not None and (step % cfg.eval_every == 0 or step == steps):
                    with torch.random.fork_rng(devices=devices):
                        valid = float(valid_fn(self))
                    self.train()
                    log.info("%s pretrain step %d: loss %.4f valid %.4f", self.name, step, value, valid)
                    if math.isfinite(valid) and (best_valid is None or valid > best_valid):
                        best_valid, best_step, bad = valid, step, 0
                        best_weights = {k: v.detach().clone() for k, v in self.state_dict().items()}
                    else:
                        bad += 1
                    if cfg.patience is not None and bad >= cfg.patience:
                        stopped = True
                        break
            if best_weights is not None:
                self.load_state_dict(best_weights)
            self.eval()
            final_loss = self._eval_loss(check)
            self.head_init.copy_(self.multitask_head.weight.detach().mean(0))
        # The per-training-task outputs served pre-training only (new tasks start from their
        # mean): dropping them leaves encoder + head_init, the state that save_model writes.
        self.multitask_head = None
        self.pretrained = True
        return PretrainResult(len(losses), losses, initial_loss, final_loss, best_step, best_valid, stopped)

    # ---- a new task ----------------------------------------------------------------------

    def _prepare(self, support_ids, support_labels, query_ids):
        support_ids = np.asarray(support_ids.cpu() if isinstance(support_ids, Tensor) else support_ids, dtype=np.int64)
        query_ids = np.asarray(query_ids.cpu() if isinstance(query_ids, Tensor) else query_ids, dtype=np.int64)
        labels = np.asarray(
            support_labels.cpu() if isinstance(support_labels, Tensor) else support_labels, dtype=np.float64
        )
        if labels.shape != support_ids.shape or labels.ndim != 1:
            raise FewshotError(f"{self.name}: {len(support_ids)} support ids but labels of shape {labels.shape}")
        if len(labels) == 0:
            raise FewshotError(f"{self.name}: the support set is empty")
        _check_labels(self.kind, labels, f"{self.name}: support")
        return support_ids, labels, query_ids

    def _constant(self, labels: np.ndarray, n: int) -> np.ndarray | None:
        """One-class classification supports: that class's probability for every query."""
        if self.kind == "classification" and labels.min() == labels.max():
            return np.full(n, float(labels[0]))
        return None

    def fit_predict(self, support_ids, support_labels, query_ids) -> np.ndarray:
        """Fit a fresh head on the support set and score the query: ``[q]`` float64
        probabilities (classification; calibrated by ``self.calibration`` when the baseline
        has one, see :mod:`fewshot_apps.core.calibration`) or ratings (regression). Eval
        mode; the encoder's weights never change."""
        support_ids, labels, query_ids = self._prepare(support_ids, support_labels, query_ids)
        if len(query_ids) == 0:
            return np.zeros(0)
        constant = self._constant(labels, len(query_ids))
        if constant is not None:
            return constant
        was_training = self.training
        self.eval()
        try:
            output = self._fit_predict(support_ids, self._residual(support_ids, labels), query_ids)
        finally:
            self.train(was_training)
        if self.kind == "classification":
            return output if self.calibration is None else self.calibration.probabilities(output)
        prior = self._prior(query_ids)
        return output if prior is None else output + prior

    def _fit_predict(self, support_ids: np.ndarray, labels: np.ndarray, query_ids: np.ndarray) -> np.ndarray:
        raise NotImplementedError


# --------------------------------------------------------------------------------------------
# finetune


class FinetuneBaseline(TransferBaseline):
    """``finetune``: multitask pre-training, then a fresh linear head (optionally with the
    encoder's last layer) fit per task by gradient steps with early stopping.

    The head starts at the mean pre-trained task head and the support's prior as bias (logit
    of the positive fraction; 0 on centred ratings, i.e. the support mean). No randomness but
    the holdout split, seeded by ``seed`` and the episode's content.
    """

    Config = FinetuneConfig
    config: FinetuneConfig

    def _split_last_layer(self) -> bool:
        """Whether the last layer is adapted (asked for and offered by the encoder)."""
        enc = self.encoder
        return (self.config.tune_last_layer and supports_last_layer_split(enc)
                and getattr(enc, "split", True))  # FrozenTrunk without a split has no last layer

    def _holdout(self, support_ids: np.ndarray, labels: np.ndarray) -> np.ndarray | None:
        """bool ``[s]``: the held-out positions (stratified), or None if too few examples."""
        frac = self.config.holdout_fraction
        if frac <= 0:
            return None
        rng = np.random.default_rng(derive_seed(self.seed, "holdout", _content_seed(support_ids, labels)))
        held = np.zeros(len(labels), dtype=bool)
        groups = [np.flatnonzero(labels == c) for c in (0.0, 1.0)] if self.kind == "classification" else [np.arange(len(labels))]
        minimum = 2 if self.kind == "classification" else 4
        for group in groups:
            if len(group) < minimum:
                return None
            n_held = int(min(max(round(frac * len(group)), 1), len(group) - 1))
            held[rng.choice(group, size=n_held, replace=False)] = True
        return held

    def _init_params(self, labels: np.ndarray) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Fresh head (``head_init`` weights, prior bias) and, when adapted, a copy of the
        last layer."""
        device = self.device
        if self.kind == "classification":
            p = float(np.clip(labels.mean(), 0.01, 0.99))
            bias = math.log(p / (1 - p))
        else:
            bias = 0.0
        head = {
            "weight": self.head_init.detach().clone().float().to(device).requires_grad_(True),
            "bias": torch.tensor(bias, device=device, requires_grad=True),
        }
        last: dict[str, Tensor] = {}
        if self._split_last_layer():
            own = dict(self.encoder.named_parameters())
            last = {n: own[n].detach().clone().float().requires_grad_(True) for n in self.encoder.last_layer_names()}
        return head, last

    def _forward(self, head: dict[str, Tensor], last: dict[str, Tensor], features: Tensor) -> Tensor:
        embedding = self.encoder.forward_last(features, last) if last else features
        return embedding @ head["weight"] + head["bias"]

    def _loss(self, output: Tensor, target: Tensor) -> Tensor:
        if self.kind == "classification":
            return F.binary_cross_entropy_with_logits(output, target)
        return F.mse_loss(output, target)

    def _targets(self, labels: np.ndarray) -> tuple[Tensor, float]:
        """Labels -> (targets, offset): 0/1, or ``(rating - mean) / label_scale`` and the mean."""
        offset = float(labels.mean()) if self.kind == "regression" else 0.0
        scale = self.config.label_scale if self.kind == "regression" else 1.0
        return torch.as_tensor((labels - offset) / scale, dtype=torch.float32, device=self.device), offset

    def _train_head(self, features: Tensor, labels: np.ndarray, steps: int,
                    monitor: tuple[Tensor, np.ndarray] | None = None):
        """Full-batch Adam on ``features [s, width]``; returns ``(head, last, offset,
        best_steps)``; with ``monitor`` (held-out features and labels) ``best_steps`` is the
        checked step count of the lowest held-out loss (ties: the fewest steps)."""
        cfg = self.config
        targets, offset = self._targets(labels)
        head, last = self._init_params(labels)
        groups = [{"params": list(head.values()), "lr": cfg.head_lr}]
        if last:
            groups.append({"params": list(last.values()), "lr": cfg.last_layer_lr})
        optimizer = torch.optim.Adam(groups)
        start = head["weight"].detach().clone()
        if monitor is not None:
            held_features = monitor[0]
            held_targets = torch.as_tensor(
                (monitor[1] - offset) / (cfg.label_scale if self.kind == "regression" else 1.0),
                dtype=torch.float32, device=self.device,
            )
        best_loss, best_steps = math.inf, steps
        every = max(1, cfg.check_every)
        with torch.enable_grad():
            for step in range(1, steps + 1):
                loss = self._loss(self._forward(head, last, features), targets)
                loss = loss + cfg.head_l2 * ((head["weight"] - start) ** 2).sum()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if monitor is not None and (step % every == 0 or step == steps):
                    with torch.no_grad():
                        held = float(self._loss(self._forward(head, last, held_features), held_targets))
                    if held < best_loss - 1e-9:
                        best_loss, best_steps = held, step
        return head, last, offset, best_steps

    def _fit_predict(self, support_ids: np.ndarray, labels: np.ndarray, query_ids: np.ndarray) -> np.ndarray:
        cfg = self.config
        trunk = self._split_last_layer()
        features = self._encode(support_ids, trunk=trunk)
        steps = max(1, cfg.head_steps)
        held = self._holdout(support_ids, labels)
        if held is not None:
            *_, steps = self._train_head(features[torch.as_tensor(~held, device=self.device)], labels[~held],
                                         steps, (features[torch.as_tensor(held, device=self.device)], labels[held]))
        # Refit on the whole support for the chosen number of steps: no support label wasted.
        head, last, offset, _ = self._train_head(features, labels, steps)
        outputs = []
        with torch.no_grad():
            for chunk in np.array_split(query_ids, max(1, -(-len(query_ids) // max(1, cfg.chunk_size)))):
                outputs.append(self._forward(head, last, self._encode(chunk, trunk=trunk)))
        output = torch.cat(outputs).double().cpu().numpy()
        if self.kind == "classification":
            return 1.0 / (1.0 + np.exp(-output))
        return output * cfg.label_scale + offset


# --------------------------------------------------------------------------------------------
# linear probe


class LinearProbeBaseline(TransferBaseline):
    """``linear-probe``: scikit-learn on frozen, standardized embeddings of the encoder.

    Classification: ``LogisticRegression(C, class_weight="balanced", lbfgs)`` on embeddings
    standardized on the support. Regression: ridge on the support-centred embeddings, its
    strength chosen by leave-one-out on the support (``alpha`` None) or fixed; it predicts
    the residual to the encoder's prior rating, its intercept playing the support's mean.
    Regression embeddings are not scaled: per-dimension spreads of 5 to 20 support items
    are too noisy a scale (a dimension nearly constant on the support blew up the query's
    predictions: MAE 1.10 against item-mean's 0.70 on MovieLens). Without :meth:`pretrain` it
    probes the encoder as it is (a random-features ablation).
    """

    Config = LinearProbeConfig
    config: LinearProbeConfig

    def _fit_predict(self, support_ids: np.ndarray, labels: np.ndarray, query_ids: np.ndarray) -> np.ndarray:
        from sklearn.linear_model import LogisticRegression, Ridge, RidgeCV
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        x = self._encode(support_ids).double().cpu().numpy()
        if self.kind == "classification":
            model = LogisticRegression(C=self.config.C, class_weight="balanced", max_iter=1000)
            model = make_pipeline(StandardScaler(), model).fit(x, labels.astype(np.int64))
        else:
            alpha = self.config.alpha
            # RidgeCV's default is efficient leave-one-out over the grid
            ridge = RidgeCV(alphas=self.config.ALPHAS) if alpha is None else Ridge(alpha=alpha)
            model = make_pipeline(StandardScaler(with_std=False), ridge).fit(x, labels)
        outputs = []
        for chunk in np.array_split(query_ids, max(1, -(-len(query_ids) // max(1, self.config.chunk_size)))):
            q = self._encode(chunk).double().cpu().numpy()
            outputs.append(model.predict_proba(q)[:, 1] if self.kind == "classification" else model.predict(q))
        return np.concatenate(outputs).astype(np.float64)


# --------------------------------------------------------------------------------------------
# look-up


def transfer_baseline_class(name: str) -> type[TransferBaseline]:
    """The class of transfer baseline ``name`` (a ``transfer`` entry of
    :data:`~fewshot_apps.core.registry.MODELS`); FewshotError naming them otherwise."""
    known = MODELS.names(family="transfer")
    if name not in known:
        raise FewshotError(f"unknown transfer baseline {name!r}; known: {', '.join(sorted(known))}")
    return MODELS.load(name)


def build_transfer_baseline(name: str, encoder: nn.Module, kind: Kind, seed: int = 0,
                            **config: Any) -> TransferBaseline:
    """``transfer_baseline_class(name)(encoder, kind, config, seed)``; strings in ``config``
    are parsed (``--set key=value``); FewshotError on an unknown name or option."""
    return transfer_baseline_class(name)(encoder, kind, dict(config), seed=seed)
