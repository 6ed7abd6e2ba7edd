"""Deep-kernel Gaussian process learner ``dkt`` (DKT, Patacchiola et al. 2020; ADKF-IFT, Chen
et al. 2023), both kinds.

An exact GP regression head over the encoder's embeddings of a task's support set:

* **targets**: classification labels mapped to ``+-1`` (as DKT and ADKF-IFT do on FS-Mol);
  regression: the normalized ratings the base class gives (centred on the support mean).
* **kernel** (config ``kernel``) on the embeddings divided by a lengthscale ``l``:
  ``rbf`` ``s * exp(-|x - y|^2 / 2 l^2)``, ``matern52`` or ``linear`` ``s * x.y / l^2`` (there
  ``l`` and ``s`` are redundant, harmlessly), plus a noise ``n`` on the diagonal and a
  constant mean ``c``. ``l``, ``s``, ``n`` are kept positive by softplus (``n`` above 1e-4).
* **fixed kernel** (config ``fixed_kernel``): plus ``w * S(x, y)``, the encoder's fixed,
  untrained similarity of the examples (molecules: Tanimoto of ECFP bits; the encoder
  contract's ``similarity``), with its own weight ``w``, a fifth hyperparameter fitted with the
  others. Where the meta-learned embedding does not separate a task's classes and close
  analogues do, the marginal likelihood moves weight to ``S`` (FS-Mol's single-task GP, inside
  the meta-learner). ``encode`` then appends each example's id to its embedding (a float
  column, exact below 2**24 examples), so that the kernel can look the similarity up.
* **per-task fit**: the hyperparameters (four; five with the fixed kernel) start from
  meta-learned initial values (a parameter of the learner, ``init_raw``) and take
  ``fit_steps`` Adam steps maximizing the exact log marginal likelihood of the support
  targets, on embeddings detached from the encoder (so the fit builds no graph through the
  encoder).
* **posterior**: ``mean(q) = c + k_q^T (K + n I)^-1 (y - c)``, ``var(q) = k(q, q) -
  k_q^T (K + n I)^-1 k_q`` (the latent function's variance; the noise is added for
  regression's predictive distribution).
* **outputs**: classification: the logit of the probit approximation ``P(+1) =
  Phi(mean / sqrt(1 + var))``, computed stably as ``log Phi(z) - log Phi(-z)``, so that the
  base class's ``sigmoid`` gives that probability; regression: the posterior mean.
  :meth:`DeepKernelGP.predictive_variance` gives the variance (the calibration code's hook).

**Meta-training** (config ``outer_loss``; ``auto`` picks the first of each pair):

* classification: BCE of the probit probability on the query labels (``criterion``), the
  loss of the probabilities the learner actually reports and that ROC-AUC, AUPRC, Brier and
  ECE score; the alternative ``nll``, the Gaussian predictive NLL of the ``+-1`` query
  targets (ADKF-IFT's outer loss), also penalizes confident *correct* predictions whose
  mean overshoots ``+-1``.
* regression: the Gaussian predictive negative log-likelihood of the normalized query
  ratings (``nll``), which trains the predictive variance too; ``criterion`` is the MSE of
  the mean.

Gradient approximation: ADKF-IFT differentiates the outer loss through the fitted
hyperparameters by the implicit function theorem. Here the fitted values are treated as
constants with respect to the encoder (first-order approximation: the encoder is
meta-learned through the GP posterior only), and with an identity Jacobian with respect to
their initial values (``fitted = init + stop_grad(fitted - init)``, as first-order MAML), so
the initial hyperparameters are meta-learned too.

All tasks of a meta-batch are fitted at once: supports of different sizes are padded, the
padded rows and columns of the kernel matrix are the identity and padded targets 0, so
every task's likelihood, gradient and posterior are exactly those of the task alone; one
batched ``torch.linalg.cholesky_ex`` per step. A Cholesky that fails for a task is retried
with ten times its jitter (that task only) up to :data:`JITTER_TRIES` times before a
FewshotError. ``loss`` and ``fit_predict_many`` come from the vmap engine's mixin
(:mod:`fewshot_apps.core.learners.vmap_engine`), which pads the episodes.

Plain torch, not gpytorch: the exact-GP head is a few dozen lines, its padding/masking over a
meta-batch and the per-task jitter retry are simpler written directly than through
gpytorch's batch shapes, and the package gains no dependency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fewshot_apps.core.encoders import has_similarity
from fewshot_apps.core.learners.base import AdaptedState, LearnerConfig, MetaLearner
from fewshot_apps.core.learners.batched import PaddedEpisodes, masked_criterion
from fewshot_apps.core.learners.vmap_engine import VmapEngine
from fewshot_apps.errors import FewshotError

# Order of the hyperparameters in ``init_raw`` and in the fitted ``[T, H]`` tensors (``H`` = 4,
# or 5 with the fixed kernel's weight).
LENGTHSCALE, OUTPUTSCALE, NOISE, MEAN, FIXED_SCALE = range(5)
MAX_EXACT_ID = 2**24  # float32 holds every integer below it exactly
NOISE_FLOOR = 1e-4
SCALE_FLOOR = 1e-6
JITTER_TRIES = 6
_LOG_2PI = math.log(2.0 * math.pi)


def _inverse_softplus(value: float) -> float:
    return value + math.log(-math.expm1(-value))


@dataclass
class DKTConfig(LearnerConfig):
    """Attributes:
    kernel: ``rbf``, ``matern52`` or ``linear`` on the embeddings.
    fit_steps: Adam steps of the per-task marginal-likelihood fit (0: the initial values).
    fit_lr: their step size (on the softplus-unconstrained hyperparameters).
    init_lengthscale: initial lengthscale; ``None``: ``sqrt(embedding width)``.
    init_outputscale / init_noise: initial output scale and noise variance.
    learn_init: meta-learn the initial hyperparameters (first-order, see the module).
    outer_loss: ``auto`` (classification: ``criterion``; regression: ``nll``), ``criterion``
        (BCE of the probit probability / MSE of the mean) or ``nll`` (Gaussian predictive
        negative log-likelihood of the ``+-1`` / normalized query targets).
    jitter: added to the kernel matrix's diagonal; multiplied by 10 for a task whose
        Cholesky fails.
    fixed_kernel: add the encoder's fixed similarity of examples with a weight fitted per
        task (see the module); the encoder must offer one.
    init_fixed_scale: that weight's initial value.
    """

    kernel: Literal["rbf", "matern52", "linear"] = "rbf"
    fit_steps: int = 15
    fit_lr: float = 0.1
    init_lengthscale: float | None = None
    init_outputscale: float = 1.0
    init_noise: float = 0.1
    learn_init: bool = True
    outer_loss: Literal["auto", "criterion", "nll"] = "auto"
    jitter: float = 1e-6
    fixed_kernel: bool = False
    init_fixed_scale: float = 1.0


@dataclass
class GPState:
    """The adapted GP of ``T`` tasks (``T = 1`` through ``adapt``).

    Attributes:
        support: ``[T, S, d]`` embeddings, centred (stationary kernels) by ``center``.
        support_ids: ``[T, S]`` example ids (with the fixed kernel) or None.
        center: ``[T, 1, d]`` subtracted from support and query embeddings.
        mask: ``[T, S]`` True on real support rows.
        chol: ``[T, S, S]`` Cholesky factor of ``K + (noise + jitter) I`` (identity padding).
        alpha: ``[T, S]`` ``(K + n I)^-1 (y - c)`` (0 on padding).
        raw: ``[T, 4]`` the fitted unconstrained hyperparameters.
    """

    support: Tensor
    support_ids: Tensor | None
    center: Tensor
    mask: Tensor
    chol: Tensor
    alpha: Tensor
    raw: Tensor


class DeepKernelGP(VmapEngine, MetaLearner):
    """Deep-kernel GP: an exact GP head over the encoder's embeddings, its kernel fitted per
    support set by marginal likelihood (see the module docstring)."""

    Config = DKTConfig
    needs_grad_to_adapt = True  # the per-task fit takes gradient steps, even at evaluation

    def __init__(self, encoder, kind, config=None):
        super().__init__(encoder, kind, config)
        cfg: DKTConfig = self.config
        if cfg.fit_steps < 0 or cfg.fit_lr <= 0 or cfg.jitter < 0:
            raise FewshotError(
                f"learner {self.name!r}: fit_steps >= 0, fit_lr > 0 and jitter >= 0 needed, got "
                f"{cfg.fit_steps}, {cfg.fit_lr}, {cfg.jitter}"
            )
        lengthscale = cfg.init_lengthscale or math.sqrt(self.embed_dim)
        scales = [lengthscale, cfg.init_outputscale] + [cfg.init_fixed_scale] * cfg.fixed_kernel
        if min(scales) <= SCALE_FLOOR or cfg.init_noise <= NOISE_FLOOR:
            raise FewshotError(
                f"learner {self.name!r}: initial lengthscale and scales must exceed "
                f"{SCALE_FLOOR}, the noise {NOISE_FLOOR}"
            )
        if cfg.fixed_kernel and not has_similarity(self.encoder):
            raise FewshotError(
                f"learner {self.name!r}: fixed_kernel needs an encoder with a fixed similarity "
                f"of examples (molecules: Tanimoto of ECFP); {type(self.encoder).__name__} has "
                "none"
            )
        init = [
            _inverse_softplus(lengthscale - SCALE_FLOOR),
            _inverse_softplus(cfg.init_outputscale - SCALE_FLOOR),
            _inverse_softplus(cfg.init_noise - NOISE_FLOOR),
            0.0,
        ] + [_inverse_softplus(cfg.init_fixed_scale - SCALE_FLOOR)] * cfg.fixed_kernel
        self.init_raw = nn.Parameter(torch.tensor(init), requires_grad=cfg.learn_init)

    @property
    def uses_vmap(self) -> bool:
        return True  # the batched (padded) path is the only one; no vmap is involved

    # ---- hyperparameters and kernel ------------------------------------------------------

    @staticmethod
    def hyperparameters(raw: Tensor) -> dict[str, Tensor]:
        """``[..., H]`` unconstrained -> ``{"lengthscale", "outputscale", "noise", "mean"}``,
        and ``"fixed_scale"`` when ``H = 5``."""
        hyp = {
            "lengthscale": SCALE_FLOOR + F.softplus(raw[..., LENGTHSCALE]),
            "outputscale": SCALE_FLOOR + F.softplus(raw[..., OUTPUTSCALE]),
            "noise": NOISE_FLOOR + F.softplus(raw[..., NOISE]),
            "mean": raw[..., MEAN],
        }
        if raw.shape[-1] > FIXED_SCALE:
            hyp["fixed_scale"] = SCALE_FLOOR + F.softplus(raw[..., FIXED_SCALE])
        return hyp

    # ---- the fixed kernel: ids carried beside the embeddings -----------------------------

    def encode(self, example_ids: Tensor) -> Tensor:
        """``[n] -> [n, d]`` embeddings, or ``[n, d + 1]`` with the ids appended (fixed kernel)."""
        embeddings = self.encoder(example_ids)
        if not self.config.fixed_kernel:
            return embeddings
        if len(example_ids) and int(example_ids.max()) >= MAX_EXACT_ID:
            raise FewshotError(
                f"learner {self.name!r}: the fixed kernel carries example ids as floats, exact "
                f"below {MAX_EXACT_ID}; this pool has more examples"
            )
        return torch.cat([embeddings, example_ids.to(embeddings.dtype)[:, None]], dim=1)

    def embed_features(self, features: Tensor) -> Tensor:
        return features[:, :-1] if self.config.fixed_kernel else features

    def _split(self, features: Tensor) -> tuple[Tensor, Tensor | None]:
        """``encode``'s features ``[..., d (+1)]`` -> embeddings ``[..., d]`` and ids or None."""
        if not self.config.fixed_kernel:
            return features, None
        return features[..., :-1], features[..., -1].round().long()

    def _fixed(self, a_ids: Tensor, b_ids: Tensor) -> Tensor:
        """``[T, n], [T, m] -> [T, n, m]`` the encoder's similarity, task by task."""
        return torch.stack([self.encoder.similarity(a, b) for a, b in zip(a_ids, b_ids)])

    @property
    def _stationary(self) -> bool:
        return self.config.kernel != "linear"

    def _base(self, x: Tensor, y: Tensor) -> Tensor:
        """``[T, n, d] x [T, m, d] -> [T, n, m]``: squared distances (stationary kernels) or
        dot products (linear), before the lengthscale."""
        dot = x @ y.transpose(-1, -2)
        if not self._stationary:
            return dot
        sq = x.pow(2).sum(-1)[..., :, None] + y.pow(2).sum(-1)[..., None, :] - 2.0 * dot
        return sq.clamp_min(0.0)

    def _kernel(self, base: Tensor, hyp: dict[str, Tensor], fixed: Tensor | None = None) -> Tensor:
        """:meth:`_base` ``[T, n, m]`` (and the fixed similarity ``[T, n, m]``) -> kernel
        values with ``[T]`` hyperparameters."""
        ls2 = hyp["lengthscale"].pow(2)[:, None, None]
        scale = hyp["outputscale"][:, None, None]
        r2 = base / ls2
        if self.config.kernel == "rbf":
            learned = scale * torch.exp(-0.5 * r2)
        elif self.config.kernel == "matern52":
            r = torch.sqrt(r2.clamp_min(1e-12)) * math.sqrt(5.0)
            learned = scale * (1.0 + r + r.pow(2) / 3.0) * torch.exp(-r)
        else:
            learned = scale * r2
        if fixed is None:
            return learned
        return learned + hyp["fixed_scale"][:, None, None] * fixed

    def _prior_variance(self, query: Tensor, hyp: dict[str, Tensor],
                        query_ids: Tensor | None = None) -> Tensor:
        """``k(q, q)`` ``[T, Q]``."""
        scale = hyp["outputscale"][:, None]
        if self._stationary:
            var = scale.expand(query.shape[:2])
        else:
            var = scale * query.pow(2).sum(-1) / hyp["lengthscale"].pow(2)[:, None]
        if query_ids is None:
            return var
        own = self.encoder.self_similarity(query_ids.reshape(-1)).reshape(query_ids.shape)
        return var + hyp["fixed_scale"][:, None] * own.to(var.dtype)

    # ---- exact GP pieces -----------------------------------------------------------------

    def _cholesky(self, kernel: Tensor, noise: Tensor, mask: Tensor) -> Tensor:
        """Cholesky factor of ``kernel + (noise + jitter) I`` on the real rows, identity on the
        padding; a task whose factorization fails retries with ten times its jitter."""
        size = kernel.shape[-1]
        eye = torch.eye(size, dtype=kernel.dtype, device=kernel.device)
        pair = mask[:, :, None] & mask[:, None, :]
        padded = torch.where(pair, kernel, eye)
        jitter = torch.full_like(noise, self.config.jitter)
        real_diag = torch.diag_embed(mask.to(kernel.dtype))
        for _ in range(JITTER_TRIES):
            system = padded + (noise + jitter)[:, None, None] * real_diag
            chol, info = torch.linalg.cholesky_ex(system)
            failed = info > 0
            if not bool(failed.any()):
                return chol
            jitter = torch.where(failed, jitter.clamp_min(1e-6) * 10.0, jitter)
        raise FewshotError(
            f"learner {self.name!r}: the GP kernel matrix of {int(failed.sum())} task(s) is not "
            f"positive definite even with jitter {float(jitter.max()):.3g} on its diagonal "
            "(non-finite embeddings or hyperparameters?)"
        )

    def _gp_targets(self, targets: Tensor, mask: Tensor) -> Tensor:
        """Targets of the GP: ``+-1`` (classification) or the normalized ratings; 0 on padding."""
        values = 2.0 * targets - 1.0 if self.kind == "classification" else targets
        return torch.where(mask, values, torch.zeros_like(values))

    def _neg_mll(self, raw: Tensor, base: Tensor, y: Tensor, mask: Tensor,
                 fixed: Tensor | None = None) -> Tensor:
        """``[T]`` negative log marginal likelihoods of the supports, per support row."""
        hyp = self.hyperparameters(raw)
        chol = self._cholesky(self._kernel(base, hyp, fixed), hyp["noise"], mask)
        resid = torch.where(mask, y - hyp["mean"][:, None], torch.zeros_like(y))
        alpha = torch.cholesky_solve(resid.unsqueeze(-1), chol).squeeze(-1)
        log_diag = torch.log(torch.diagonal(chol, dim1=-2, dim2=-1))
        log_det = 2.0 * torch.where(mask, log_diag, torch.zeros_like(log_diag)).sum(-1)
        n = mask.sum(-1).to(y.dtype)
        return (0.5 * (resid * alpha).sum(-1) + 0.5 * log_det + 0.5 * n * _LOG_2PI) / n.clamp_min(1)

    def log_marginal_likelihood(
        self, support: Tensor, targets: Tensor, raw: Tensor | None = None
    ) -> Tensor:
        """The exact log marginal likelihood (per support row) of one task's features ``[s,
        d (+1)]`` (:meth:`encode`'s) and GP targets ``[s]`` (``+-1`` or normalized ratings)
        under the unconstrained hyperparameters ``raw`` ``[H]`` (default: the initial
        values)."""
        raw = self.init_raw if raw is None else raw
        x, ids = self._split(support.unsqueeze(0))
        if self._stationary:
            x = x - x.mean(1, keepdim=True)
        mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        fixed = None if ids is None else self._fixed(ids, ids)
        return -self._neg_mll(raw.reshape(1, -1), self._base(x, x), targets.reshape(1, -1), mask,
                              fixed)[0]

    def fit_hyperparameters(self, base: Tensor, y: Tensor, mask: Tensor,
                            fixed: Tensor | None = None) -> Tensor:
        """``fit_steps`` Adam steps on the negative log marginal likelihood of every task from
        the initial values -> ``[T, H]`` fitted unconstrained hyperparameters (no graph).

        ``base`` ``[T, S, S]`` is :meth:`_base` of detached embeddings (``fixed``: the fixed
        similarity of the supports); Adam acts coordinate by coordinate and task ``t``'s loss
        depends on row ``t`` only, so every task is fitted exactly as alone.
        """
        cfg: DKTConfig = self.config
        raw = self.init_raw.detach().expand(len(y), -1).clone()
        first, second = torch.zeros_like(raw), torch.zeros_like(raw)
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        with torch.enable_grad():
            for step in range(1, cfg.fit_steps + 1):
                current = raw.detach().requires_grad_()
                loss = self._neg_mll(current, base, y, mask, fixed).sum()
                (grad,) = torch.autograd.grad(loss, current)
                first = beta1 * first + (1.0 - beta1) * grad
                second = beta2 * second + (1.0 - beta2) * grad * grad
                step_size = cfg.fit_lr / (1.0 - beta1**step)
                raw = raw - step_size * first / ((second / (1.0 - beta2**step)).sqrt() + eps)
        return raw.detach()

    # ---- adapt and predict, batched over tasks ----------------------------------------------

    def _adapt_tensors(self, features: Tensor, targets: Tensor, mask: Tensor) -> GPState:
        """Supports ``[T, S, d (+1)]`` (:meth:`encode`'s features), normalized targets ``[T,
        S]``, mask ``[T, S]`` -> state."""
        support, ids = self._split(features)
        fixed = None if ids is None else self._fixed(ids, ids).to(support.dtype)
        if self._stationary:  # distances are translation invariant; centring limits round-off
            weights = mask.to(support.dtype).unsqueeze(-1)
            center = (support * weights).sum(1, keepdim=True) / weights.sum(1, keepdim=True)
        else:
            center = torch.zeros_like(support[:, :1])
        support = support - center
        y = self._gp_targets(targets.to(support.dtype), mask)
        detached = support.detach()
        fitted = self.fit_hyperparameters(self._base(detached, detached), y, mask, fixed)
        # Constants w.r.t. the encoder; identity Jacobian w.r.t. the initial values.
        raw = self.init_raw + (fitted - self.init_raw.detach())
        hyp = self.hyperparameters(raw)
        kernel = self._kernel(self._base(support, support), hyp, fixed)
        chol = self._cholesky(kernel, hyp["noise"], mask)
        resid = torch.where(mask, y - hyp["mean"][:, None], torch.zeros_like(y))
        alpha = torch.cholesky_solve(resid.unsqueeze(-1), chol).squeeze(-1)
        return GPState(support, ids, center, mask, chol, alpha, raw)

    def posterior(self, state: GPState, query: Tensor) -> tuple[Tensor, Tensor]:
        """Query features ``[T, Q, d (+1)]`` -> the latent GP's mean and variance ``[T, Q]``
        (targets' units: ``+-1`` or normalized ratings; the variance without the noise)."""
        hyp = self.hyperparameters(state.raw)
        query, query_ids = self._split(query)
        query = query - state.center
        fixed = None
        if query_ids is not None:
            fixed = self._fixed(query_ids, state.support_ids).to(query.dtype)
        cross = self._kernel(self._base(query, state.support), hyp, fixed)  # [T, Q, S]
        cross = torch.where(state.mask[:, None, :], cross, torch.zeros_like(cross))
        mean = hyp["mean"][:, None] + (cross @ state.alpha.unsqueeze(-1)).squeeze(-1)
        v = torch.linalg.solve_triangular(state.chol, cross.transpose(-1, -2), upper=False)
        prior = self._prior_variance(query, hyp, query_ids)
        var = (prior - v.pow(2).sum(-2)).clamp_min(0.0)
        return mean, var

    def _output(self, mean: Tensor, var: Tensor) -> Tensor:
        if self.kind == "classification":  # logit of Phi(z), stably
            z = mean / torch.sqrt(1.0 + var)
            return torch.special.log_ndtr(z) - torch.special.log_ndtr(-z)
        return mean

    def _adapt_batched(self, pad: PaddedEpisodes) -> GPState:
        return self._adapt_tensors(pad.support, pad.targets, pad.support_mask)

    def _predict_batched(self, state: GPState, query: Tensor) -> Tensor:
        return self._output(*self.posterior(state, query))

    def _adapt(self, support: Tensor, targets: Tensor) -> GPState:
        mask = torch.ones(1, len(support), dtype=torch.bool, device=support.device)
        return self._adapt_tensors(support.unsqueeze(0), targets.unsqueeze(0), mask)

    def _predict(self, state: GPState, query: Tensor) -> Tensor:
        return self._predict_batched(state, query.unsqueeze(0))[0]

    # ---- meta-training loss ------------------------------------------------------------

    def _uses_nll(self) -> bool:
        loss = self.config.outer_loss
        return loss == "nll" or (loss == "auto" and self.kind == "regression")

    def _batched_loss(self, pad: PaddedEpisodes) -> Tensor:
        """Mean over episodes of the query loss (``outer_loss``)."""
        state = self._adapt_batched(pad)
        mean, var = self.posterior(state, pad.query)
        if not self._uses_nll():
            output = self._output(mean, var)
            return masked_criterion(self.kind, output, pad.query_targets, pad.query_mask).mean()
        y = self._gp_targets(pad.query_targets.to(mean.dtype), pad.query_mask)
        total = var + self.hyperparameters(state.raw)["noise"][:, None]
        per_row = 0.5 * (torch.log(total) + (y - mean).pow(2) / total + _LOG_2PI)
        per_row = torch.where(pad.query_mask, per_row, torch.zeros_like(per_row))
        return (per_row.sum(-1) / pad.query_mask.sum(-1).clamp_min(1).to(mean.dtype)).mean()

    def _episode_loss(self, support, targets, query, query_targets):
        """One episode's query loss (the batched loss of a one-episode batch)."""
        ones = torch.ones
        pad = PaddedEpisodes(
            support.unsqueeze(0),
            ones(1, len(support), dtype=torch.bool, device=support.device),
            targets.unsqueeze(0),
            query.unsqueeze(0),
            ones(1, len(query), dtype=torch.bool, device=query.device),
            query_targets.unsqueeze(0),
            None,
        )
        return self._batched_loss(pad)

    # ---- uncertainty -------------------------------------------------------------------

    def predictive_variance(self, state: AdaptedState, query_ids: Tensor) -> Tensor:
        """``[q]`` predictive variance of the query examples given ``state`` (from
        :meth:`adapt`).

        Regression: the variance of a new rating, in squared label units (latent variance
        plus noise, times ``label_scale**2``), the spread around :meth:`predict`'s mean.
        Classification: the latent function's variance in ``+-1`` target units, the
        ``var`` of the probit ``P(+1) = Phi(mean / sqrt(1 + var))``.
        """
        query_ids = self._ids(query_ids)
        inner: GPState = state.inner
        _, var = self.posterior(inner, self.encode(query_ids).unsqueeze(0))
        var = var[0]
        if self.kind == "classification":
            return var
        noise = self.hyperparameters(inner.raw)["noise"][0]
        return (var + noise) * self.config.label_scale**2
