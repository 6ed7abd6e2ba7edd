"""Optimization-based learners: an inner loop of gradient steps per task, meta-learned.

* ``maml`` (Finn et al. 2017): meta-learns an initialization; the inner loop takes
  ``inner_steps`` SGD steps on the support loss, adapting the head AND the encoder's last layer
  (``encoder.last_layer_names()``). Second-order by default (``create_graph=True``);
  ``first_order=True`` drops the second derivatives (FOMAML).
* ``anil`` (Raghu et al. 2020): MAML adapting the head only; the encoder is a fixed feature
  map inside the inner loop (but meta-learned in the outer loop).
* ``metasgd`` (Li et al. 2017): MAML with a meta-learned step size per parameter coordinate.
* ``lstm``: a learned optimizer (Andrychowicz et al. 2016; Ravi & Larochelle 2017): a
  coordinate-wise two-layer LSTM, shared across the head's coordinates, reads each gradient
  coordinate (log-magnitude and sign preprocessing, p = 10) and outputs its update. It is
  meta-trained through (optionally truncated) unrolls of the inner loop, together with the
  head's initialization.

Inner loops are functional: parameters live in dicts, the model runs through
``torch.func.functional_call``, gradients come from ``torch.autograd.grad``; no module's
parameters are ever mutated. Head-only loops run on embeddings computed once per meta-batch;
the MAML loop re-runs only the encoder's last layer when the encoder can split its forward
(``forward_trunk`` / ``forward_last``), else the whole encoder with ``functional_call``.

At evaluation (``fit_predict``) the inner loop still uses autograd, but keeps no graph
between steps and the meta-parameters are never updated.

Two engines compute ``loss(batch)`` (config ``engine``):

* ``vmap`` (the default): all episodes of the meta-batch adapt at once, on padded embeddings
  with masks, the head run over tasks with ``torch.func.vmap``
  (:mod:`fewshot_apps.core.learners.batched`). It applies to head-only inner loops: ``anil``,
  ``lstm``, and ``maml`` / ``metasgd`` with ``adapt_encoder='none'``. When the encoder's last
  layer (or the whole encoder) is adapted (``maml`` / ``metasgd`` with ``adapt_encoder='last'``
  or ``'all'``, their defaults being ``'last'``), the learner falls back to the loop: the
  adapted encoder part runs on arbitrary encoder inputs (trunk outputs, graphs) that are not
  padded per task.
* ``loop``: one inner loop per episode, the reference; both give the same losses and
  meta-gradients up to rounding.

``fit_predict_many`` scores many episodes with one adaptation over all of them (the vmap
engine, :mod:`fewshot_apps.core.learners.vmap_engine`) for evaluation;
:func:`fewshot_apps.core.validation.episode_validator` uses it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn
from torch.func import functional_call

from fewshot_apps.core.encoders import supports_last_layer_split
from fewshot_apps.core.learners.base import LearnerConfig, MetaLearner
from fewshot_apps.core.learners.batched import (
    PaddedEpisodes,
    batched_call,
    inner_gradients,
    masked_criterion,
    stack_params,
    unflatten_batched,
)
from fewshot_apps.core.learners.heads import MLPHead, flatten, unflatten
from fewshot_apps.core.learners.vmap_engine import VmapEngine
from fewshot_apps.errors import FewshotError

AdaptEncoder = Literal["last", "all", "none"]
Engine = Literal["vmap", "loop"]
Params = dict[str, Tensor]


def _refuse_running_stats(learner: str, encoder: nn.Module, adapted: list[str]) -> None:
    """FewshotError if an adapted encoder parameter belongs to a BatchNorm with running
    statistics: inner loops would update them in place and leak one task into the next."""
    for prefix, module in encoder.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
            owned = [n for n in adapted if n.startswith(f"{prefix}.")]
            if owned:
                raise FewshotError(
                    f"learner {learner!r}: adapted encoder parameters {owned} belong to a "
                    "BatchNorm with running statistics; use LayerNorm/GraphNorm or BatchNorm "
                    "with track_running_stats=False in adapted layers, or adapt_encoder='none'"
                )


@dataclass
class InnerLoopConfig(LearnerConfig):
    """Attributes:
    inner_steps: gradient steps on the support set during meta-training.
    eval_inner_steps: steps at evaluation (None: ``inner_steps``).
    inner_lr: SGD step size of the inner loop (Meta-SGD: the initial step sizes).
    first_order: drop second derivatives of the inner loop (FOMAML).
    head_hidden: hidden width of the adapted head (0: linear head).
    engine: ``vmap``: all episodes of a meta-batch adapt at once (head-only inner loops;
        otherwise the loop is used); ``loop``: one episode after the other (the reference).
    """

    inner_steps: int = 5
    eval_inner_steps: int | None = None
    inner_lr: float = 0.1
    first_order: bool = False
    head_hidden: int = 0
    engine: Engine = "vmap"


class InnerLoopLearner(VmapEngine, MetaLearner):
    """Shared machinery of ``maml``, ``anil`` and ``metasgd``: a head (and optionally encoder
    parameters) adapted by ``inner_steps`` gradient steps from meta-learned values."""

    needs_grad_to_adapt = True
    adapt_encoder: AdaptEncoder = "none"

    def __init__(self, encoder, kind, config=None):
        super().__init__(encoder, kind, config)
        self.head = MLPHead(self.embed_dim, self.config.head_hidden)
        mode = getattr(self.config, "adapt_encoder", self.adapt_encoder)
        if mode == "last" and not callable(getattr(encoder, "last_layer_names", None)):
            raise FewshotError(
                f"learner {self.name!r}: encoder {type(encoder).__name__} has no "
                "last_layer_names(), so its last layer cannot be adapted; set "
                "adapt_encoder='all' (adapt every encoder parameter) or 'none' (head only)"
            )
        self.adapt_encoder = mode
        encoder_names = {n for n, p in encoder.named_parameters() if p.requires_grad}
        if mode == "last":
            wanted = list(encoder.last_layer_names())
            missing = [n for n in wanted if n not in encoder_names]
            if missing:
                raise FewshotError(
                    f"learner {self.name!r}: last_layer_names() of {type(encoder).__name__} "
                    f"names unknown parameters {missing}"
                )
        elif mode == "all":
            wanted = [n for n, p in encoder.named_parameters() if p.requires_grad]
        else:
            wanted = []
        _refuse_running_stats(self.name, encoder, wanted)
        self._encoder_names = wanted
        # Re-run only the last layer in the inner loop when the encoder can split its forward.
        self._split = mode == "last" and supports_last_layer_split(encoder)

    # ---- stages --------------------------------------------------------------------------

    def encode(self, example_ids: Tensor) -> Tensor:
        """Features computed once per meta-batch: embeddings (head only), the encoder's
        trunk output (last layer adapted, split encoder), or the ids themselves (the encoder
        is re-run inside the inner loop)."""
        if self.adapt_encoder == "none":
            return self.encoder(example_ids)
        if self._split:
            return self.encoder.forward_trunk(example_ids)
        return example_ids

    def embed_features(self, features: Tensor) -> Tensor:
        """:meth:`encode`'s features -> the (unadapted) encoder's embeddings ``[n, d]``."""
        if self.adapt_encoder == "none":
            return features
        if self._split:
            return self.encoder.forward_last(features)
        return self.encoder(features)

    def initial_params(self) -> Params:
        """The meta-learned starting point of the inner loop (learner-level names)."""
        params = {f"head.{n}": p for n, p in self.head.named_parameters()}
        own = dict(self.encoder.named_parameters())
        params.update({f"encoder.{n}": own[n] for n in self._encoder_names})
        return params

    def forward_with(self, params: Params, features: Tensor) -> Tensor:
        """``[n] -> [n]`` scores with the adapted ``params`` (see :meth:`encode`)."""
        enc = {n[len("encoder.") :]: p for n, p in params.items() if n.startswith("encoder.")}
        if self.adapt_encoder == "none":
            embeddings = features
        elif self._split:
            embeddings = self.encoder.forward_last(features, enc)
        else:
            embeddings = functional_call(self.encoder, enc, (features,))
        head = {n[len("head.") :]: p for n, p in params.items() if n.startswith("head.")}
        return self.head.call_with(head, embeddings)

    def _step(self, params: Params, grads: dict[str, Tensor], step: int) -> Params:
        """One inner update (plain SGD here)."""
        lr = self.config.inner_lr
        return {n: p - lr * grads[n] for n, p in params.items()}

    def _n_steps(self) -> int:
        cfg = self.config
        if not self.training and cfg.eval_inner_steps is not None:
            return cfg.eval_inner_steps
        return cfg.inner_steps

    def _adapt(self, support: Tensor, targets: Tensor) -> Params:
        """``inner_steps`` gradient steps on the support loss -> adapted parameter dict."""
        outer_grad = torch.is_grad_enabled()
        create_graph = outer_grad and not self.config.first_order
        params = self.initial_params()
        if not outer_grad:
            params = {n: p.detach().requires_grad_() for n, p in params.items()}
        with torch.enable_grad():
            for step in range(self._n_steps()):
                loss = self._criterion(self.forward_with(params, support), targets)
                names = [n for n, p in params.items() if p.requires_grad]
                found = torch.autograd.grad(
                    loss, [params[n] for n in names], create_graph=create_graph, allow_unused=True
                )
                grads = {n: torch.zeros_like(p) for n, p in params.items()}
                grads.update({n: g for n, g in zip(names, found) if g is not None})
                params = self._step(params, grads, step)
                if not outer_grad:
                    # Evaluation: nothing is differentiated through the loop; keep no graph.
                    params = {n: p.detach().requires_grad_() for n, p in params.items()}
        if not outer_grad:
            params = {n: p.detach() for n, p in params.items()}
        return params

    def _predict(self, params: Params, query: Tensor) -> Tensor:
        return self.forward_with(params, query)

    # ---- the vmap engine -----------------------------------------------------------------

    @property
    def uses_vmap(self) -> bool:
        """engine='vmap' and a head-only inner loop (``adapt_encoder='none'``)."""
        return self.config.engine == "vmap" and self.adapt_encoder == "none"

    def _adapt_batched(self, pad: PaddedEpisodes) -> Params:
        """:meth:`_adapt` for all episodes at once -> ``{name: [T, ...]}``."""
        outer_grad = torch.is_grad_enabled()
        create_graph = outer_grad and not self.config.first_order
        params = stack_params(self.initial_params(), len(pad))
        if not outer_grad:
            params = {n: p.detach().clone().requires_grad_() for n, p in params.items()}
        with torch.enable_grad():
            for step in range(self._n_steps()):
                output = batched_call(self.forward_with, params, pad.support)
                losses = masked_criterion(self.kind, output, pad.targets, pad.support_mask)
                grads = inner_gradients(losses, params, create_graph)
                params = self._step(params, grads, step)
                if not outer_grad:
                    params = {n: p.detach().requires_grad_() for n, p in params.items()}
        if not outer_grad:
            params = {n: p.detach() for n, p in params.items()}
        return params

    def _predict_batched(self, params: Params, query: Tensor) -> Tensor:
        return batched_call(self.forward_with, params, query)


@dataclass
class MAMLConfig(InnerLoopConfig):
    """Attributes (besides :class:`InnerLoopConfig`):
    adapt_encoder: ``last`` (the encoder's last layer, with the head), ``all`` (every
        encoder parameter; re-runs the encoder each inner step) or ``none`` (= ANIL).
    """

    adapt_encoder: AdaptEncoder = "last"


class MAML(InnerLoopLearner):
    """Model-agnostic meta-learning; both kinds. Second-order unless ``first_order``."""

    Config = MAMLConfig


class ANIL(InnerLoopLearner):
    """Almost no inner loop: MAML adapting the head only, on embeddings computed once."""

    Config = InnerLoopConfig


@dataclass
class MetaSGDConfig(InnerLoopConfig):
    """Meta-SGD: ``inner_lr`` is the initial value of the learned per-coordinate step sizes;
    one inner step by default (Li et al. 2017)."""

    inner_steps: int = 1
    adapt_encoder: AdaptEncoder = "last"


class MetaSGD(InnerLoopLearner):
    """Meta-SGD: ``p - alpha * grad`` with a meta-learned ``alpha`` per parameter coordinate."""

    Config = MetaSGDConfig

    def __init__(self, encoder, kind, config=None):
        super().__init__(encoder, kind, config)
        # ParameterDict keys may not contain dots.
        self.step_sizes = nn.ParameterDict(
            {
                self._key(n): nn.Parameter(torch.full_like(p.detach(), self.config.inner_lr))
                for n, p in self.initial_params().items()
            }
        )

    @staticmethod
    def _key(name: str) -> str:
        return name.replace(".", "__")

    def _step(self, params: Params, grads: dict[str, Tensor], step: int) -> Params:
        return {n: p - self.step_sizes[self._key(n)] * grads[n] for n, p in params.items()}


# --------------------------------------------------------------------------------------------
# learned optimizer


def preprocess_gradient(grad: Tensor, p: float = 10.0) -> Tensor:
    """Andrychowicz et al. 2016 (appendix A): ``[n] -> [n, 2]``.

    ``(log|g| / p, sign g)`` if ``|g| >= e^-p``, else ``(-1, e^p g)``: gradient coordinates of
    very different magnitudes become inputs of similar scale.
    """
    big = grad.abs() >= math.exp(-p)
    # clamp: log(0) would give -inf and a NaN derivative in the unselected branch
    log_part = torch.where(big, grad.abs().clamp_min(1e-30).log() / p, -torch.ones_like(grad))
    sign_part = torch.where(big, torch.sign(grad), math.exp(p) * grad)
    return torch.stack([log_part, sign_part], dim=-1)


@dataclass
class LSTMOptimizerConfig(LearnerConfig):
    """Attributes:
    inner_steps: unrolled update steps on the support set.
    eval_inner_steps: steps at evaluation (None: ``inner_steps``).
    truncate: truncated BPTT: cut the graph every ``truncate`` steps; each segment is trained
        on the query loss at its end (None: no truncation).
    hidden: LSTM width per coordinate.
    layers: stacked LSTM layers.
    preprocess_p: the ``p`` of the gradient preprocessing.
    output_scale: the LSTM's output is multiplied by this to form the update.
    first_order: treat gradients as inputs without second derivatives (as Andrychowicz et
        al.); ``False`` differentiates through them too.
    head_hidden: hidden width of the adapted head (0: linear head).
    learn_init: meta-learn the head's initialization along with the optimizer.
    engine: ``vmap`` (all episodes of a meta-batch at once) or ``loop`` (the reference).
    """

    inner_steps: int = 5
    eval_inner_steps: int | None = None
    truncate: int | None = None
    hidden: int = 20
    layers: int = 2
    preprocess_p: float = 10.0
    output_scale: float = 0.1
    first_order: bool = True
    head_hidden: int = 0
    learn_init: bool = True
    engine: Engine = "vmap"


class LSTMOptimizer(VmapEngine, MetaLearner):
    """A coordinate-wise LSTM that adapts the head; both kinds."""

    Config = LSTMOptimizerConfig
    needs_grad_to_adapt = True

    def __init__(self, encoder, kind, config=None):
        super().__init__(encoder, kind, config)
        cfg: LSTMOptimizerConfig = self.config
        self.head = MLPHead(self.embed_dim, cfg.head_hidden)
        self.head.requires_grad_(cfg.learn_init)
        self.cells = nn.ModuleList(
            [nn.LSTMCell(2 if i == 0 else cfg.hidden, cfg.hidden) for i in range(cfg.layers)]
        )
        self.out = nn.Linear(cfg.hidden, 1)

    def _optimizer_step(self, grad: Tensor, states: list[tuple[Tensor, Tensor]]):
        """gradient ``[n]`` -> update ``[n]`` and the new per-coordinate LSTM states."""
        x = preprocess_gradient(grad, self.config.preprocess_p)
        new_states = []
        for cell, state in zip(self.cells, states):
            h, c = cell(x, state)
            new_states.append((h, c))
            x = h
        return self.out(x).squeeze(-1) * self.config.output_scale, new_states

    def _unroll(self, support: Tensor, targets: Tensor) -> list[Params]:
        """Run the learned optimizer; the head parameters at the end of each segment."""
        cfg: LSTMOptimizerConfig = self.config
        outer_grad = torch.is_grad_enabled()
        create_graph = outer_grad and not cfg.first_order
        like = self.head.param_dict()
        flat = flatten(like)
        if not (outer_grad and flat.requires_grad):
            flat = flat.detach().requires_grad_()
        n = flat.numel()
        zeros = flat.new_zeros(n, cfg.hidden)
        states = [(zeros, zeros) for _ in self.cells]
        steps = self._n_steps()
        segments: list[Params] = []
        with torch.enable_grad():
            for step in range(steps):
                loss = self._criterion(self.head.call_with(unflatten(flat, like), support), targets)
                (grad,) = torch.autograd.grad(loss, flat, create_graph=create_graph)
                if not create_graph:
                    grad = grad.detach()
                update, states = self._optimizer_step(grad, states)
                flat = flat + update
                flat, states = self._cut(flat, states, step, steps, outer_grad, segments,
                                         lambda f: unflatten(f, like))
        if not outer_grad:
            flat = flat.detach()
        segments.append(unflatten(flat, like))
        return segments

    def _cut(self, flat, states, step, steps, outer_grad, segments, unflatten_fn):
        """After an update: without an outer graph, drop the graph at once; with truncated
        unrolls, end a segment every ``truncate`` steps (its end is scored on the query)."""
        cfg: LSTMOptimizerConfig = self.config
        truncate_here = cfg.truncate and (step + 1) % cfg.truncate == 0 and step + 1 < steps
        if outer_grad and not truncate_here:
            return flat, states
        if outer_grad:
            segments.append(unflatten_fn(flat))
        return flat.detach().requires_grad_(), [(h.detach(), c.detach()) for h, c in states]

    def _adapt(self, support: Tensor, targets: Tensor) -> Params:
        return self._unroll(support, targets)[-1]

    def _predict(self, params: Params, query: Tensor) -> Tensor:
        return self.head.call_with(params, query)

    def _episode_loss(self, support, targets, query, query_targets) -> Tensor:
        # Truncated unrolls: every segment's end is scored on the query, so the optimizer
        # gets a learning signal from each segment through its own (cut) graph.
        segments = self._unroll(support, targets)
        return torch.stack(
            [self._criterion(self._predict(p, query), query_targets) for p in segments]
        ).mean()

    # ---- the vmap engine -----------------------------------------------------------------

    @property
    def uses_vmap(self) -> bool:
        return self.config.engine == "vmap"

    def _n_steps(self) -> int:
        cfg: LSTMOptimizerConfig = self.config
        if not self.training and cfg.eval_inner_steps is not None:
            return cfg.eval_inner_steps
        return cfg.inner_steps

    def _unroll_batched(self, pad: PaddedEpisodes) -> list[Params]:
        """:meth:`_unroll` for all episodes at once: the LSTM reads the ``[T, n]`` gradients
        as ``T * n`` coordinates (it is coordinate-wise, so this is the per-task update)."""
        cfg: LSTMOptimizerConfig = self.config
        outer_grad = torch.is_grad_enabled()
        create_graph = outer_grad and not cfg.first_order
        like = self.head.param_dict()
        n_tasks = len(pad)
        flat = flatten(like).unsqueeze(0).expand(n_tasks, -1)
        if not (outer_grad and flat.requires_grad):
            flat = flat.detach().clone().requires_grad_()
        n = flat.shape[1]
        zeros = flat.new_zeros(n_tasks * n, cfg.hidden)
        states = [(zeros, zeros) for _ in self.cells]
        steps = self._n_steps()
        segments: list[Params] = []
        with torch.enable_grad():
            for step in range(steps):
                output = batched_call(
                    self.head.call_with, unflatten_batched(flat, like), pad.support
                )
                losses = masked_criterion(self.kind, output, pad.targets, pad.support_mask)
                (grad,) = torch.autograd.grad(losses.sum(), flat, create_graph=create_graph)
                if not create_graph:
                    grad = grad.detach()
                update, states = self._optimizer_step(grad.reshape(-1), states)
                flat = flat + update.view(n_tasks, n)
                flat, states = self._cut(flat, states, step, steps, outer_grad, segments,
                                         lambda f: unflatten_batched(f, like))
        if not outer_grad:
            flat = flat.detach()
        segments.append(unflatten_batched(flat, like))
        return segments

    def _adapt_batched(self, pad: PaddedEpisodes) -> Params:
        return self._unroll_batched(pad)[-1]

    def _predict_batched(self, params: Params, query: Tensor) -> Tensor:
        return batched_call(self.head.call_with, params, query)

    def _batched_loss(self, pad: PaddedEpisodes) -> Tensor:
        losses = [
            masked_criterion(
                self.kind, self._predict_batched(p, pad.query), pad.query_targets, pad.query_mask
            )
            for p in self._unroll_batched(pad)
        ]
        return torch.stack(losses).mean(0).mean()
