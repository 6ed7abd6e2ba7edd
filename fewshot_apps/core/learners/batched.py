"""The batched inner-loop engine: all tasks of a meta-batch adapt at once.

Head-only inner loops (``anil``, ``metasgd`` / ``maml`` with ``adapt_encoder='none'``,
``lstm``) run on embeddings computed once per meta-batch. Instead of one inner loop per
episode, the engine

1. pads every episode's support and query rows to ``[T, max_n, ...]`` with boolean masks
   ``[T, max_n]`` (:func:`pad_episodes`; padded rows repeat a real row, so every value stays
   finite, and are masked out of every loss);
2. stacks the inner-loop parameters to ``[T, ...]`` (one copy per task, :func:`stack_params`);
3. runs the head over all tasks with ``torch.func.vmap`` (:func:`batched_call`) and scores
   it with per-task masked losses, the mean over real rows only (:func:`masked_criterion`);
4. takes the inner gradient of the SUM of the per-task losses with ``torch.autograd.grad``
   with respect to the stacked parameters. Task ``t``'s loss depends on slice ``t`` of the
   stacked parameters only, so slice ``t`` of that gradient is exactly task ``t``'s own
   gradient; ``create_graph=True`` keeps it differentiable, so second-order meta-gradients
   flow through the whole batched loop into the shared meta-parameters (autograd through
   vmap, which composes with the outer ``loss.backward()`` without nested functorch levels).

Update rules (SGD, Meta-SGD's per-coordinate step sizes, the coordinate-wise LSTM) act
coordinate by coordinate, so they apply to the stacked ``[T, ...]`` tensors unchanged.

The per-task loop of :meth:`MetaLearner.loss` stays the reference; ``engine='loop'`` in a
learner's config selects it, and tests check that both give the same losses and
meta-gradients.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import vmap

Params = dict[str, Tensor]


@dataclass
class PaddedEpisodes:
    """A meta-batch as padded tensors over ``T`` episodes.

    Attributes:
        support / query: ``[T, S, ...]`` / ``[T, Q, ...]`` features.
        support_mask / query_mask: ``[T, S]`` / ``[T, Q]``, True on real rows.
        targets / query_targets: ``[T, S]`` / ``[T, Q]`` normalized targets (0 on padding).
        offsets: ``[T]`` support mean ratings (regression) or None (classification).
    """

    support: Tensor
    support_mask: Tensor
    targets: Tensor
    query: Tensor
    query_mask: Tensor
    query_targets: Tensor
    offsets: Tensor | None

    def __len__(self) -> int:
        return self.support.shape[0]


def pad_rows(pieces: list[Tensor], fill: float | int = 0) -> tuple[Tensor, Tensor]:
    """Per-episode 1-D tensors ``[n_i]`` -> ``([T, max n_i], mask [T, max n_i])``; padding is
    ``fill``."""
    sizes = torch.tensor([len(p) for p in pieces], device=pieces[0].device)
    width = int(sizes.max()) if len(pieces) else 0
    mask = torch.arange(width, device=sizes.device)[None, :] < sizes[:, None]
    out = torch.full((len(pieces), width), fill, dtype=pieces[0].dtype, device=pieces[0].device)
    out[mask] = torch.cat(pieces)  # row-major order: episode by episode, as concatenated
    return out, mask


def pad_episodes(
    features: Tensor,
    support_index: list[Tensor],
    support_labels: list[Tensor],
    query_index: list[Tensor],
    query_labels: list[Tensor],
    kind: str,
    label_scale: float = 1.0,
    offset_pseudo_count: float = 0.0,
) -> PaddedEpisodes:
    """Gather and pad the episodes' rows of ``features`` (``[u, ...]``, the meta-batch's
    unique examples) and normalize their labels as :meth:`MetaLearner._normalize` does
    (regression: ``(y - support mean) / label_scale``, the mean with ``offset_pseudo_count``
    extra zeros)."""
    s_idx, s_mask = pad_rows(support_index)
    q_idx, q_mask = pad_rows(query_index)
    # Padding rows point at row 0 of ``features``: real, finite values, masked out of losses.
    support, query = features[s_idx], features[q_idx]
    dtype, device = features.dtype, features.device
    s_lab, _ = pad_rows([y.to(device=device, dtype=dtype) for y in support_labels])
    q_lab, _ = pad_rows([y.to(device=device, dtype=dtype) for y in query_labels])
    offsets = None
    if kind == "regression":
        offsets = s_lab.sum(1) / (s_mask.sum(1).to(dtype) + offset_pseudo_count)
        s_lab = (s_lab - offsets[:, None]) / label_scale
        q_lab = (q_lab - offsets[:, None]) / label_scale
    zero = torch.zeros((), dtype=dtype, device=device)
    return PaddedEpisodes(
        support,
        s_mask,
        torch.where(s_mask, s_lab, zero),
        query,
        q_mask,
        torch.where(q_mask, q_lab, zero),
        offsets,
    )


def masked_criterion(kind: str, output: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
    """Per-task losses ``[T]``: BCE-with-logits (classification) or squared error
    (regression), averaged over each task's real rows (``mask``) only."""
    targets = targets.to(output.dtype)
    if kind == "classification":
        per_row = F.binary_cross_entropy_with_logits(output, targets, reduction="none")
    else:
        per_row = (output - targets) ** 2
    per_row = torch.where(mask, per_row, torch.zeros((), dtype=output.dtype, device=output.device))
    return per_row.sum(-1) / mask.sum(-1).clamp_min(1).to(output.dtype)


def stack_params(params: Params, n_tasks: int) -> Params:
    """One copy of every parameter per task: ``[*shape] -> [T, *shape]`` (an expanded view:
    gradients flow back to the shared parameter, summed over tasks)."""
    return {n: p.unsqueeze(0).expand(n_tasks, *p.shape) for n, p in params.items()}


def batched_call(fn: Callable[[Params, Tensor], Tensor], params: Params, x: Tensor) -> Tensor:
    """``fn(params, x)`` for every task at once: ``params`` ``[T, ...]``, ``x`` ``[T, n, ...]``
    -> ``[T, n]`` through ``torch.func.vmap``."""
    return vmap(fn)(params, x)


def flatten_batched(params: Params) -> Tensor:
    """``{name: [T, *shape]}`` -> ``[T, sum numel]`` (in dict order), per task as
    :func:`~fewshot_apps.core.learners.heads.flatten`."""
    return torch.cat([p.reshape(p.shape[0], -1) for p in params.values()], dim=1)


def unflatten_batched(flat: Tensor, like: Params) -> Params:
    """Inverse of :func:`flatten_batched` with the names and (per-task) shapes of ``like``."""
    out, start = {}, 0
    for name, p in like.items():
        out[name] = flat[:, start : start + p.numel()].reshape(flat.shape[0], *p.shape)
        start += p.numel()
    return out


def inner_gradients(task_losses: Tensor, params: Params, create_graph: bool) -> dict[str, Tensor]:
    """Per-task gradients ``{name: [T, ...]}`` of ``task_losses`` ``[T]`` with respect to the
    stacked ``params`` (zeros for parameters that need no gradient or are unused)."""
    names = [n for n, p in params.items() if p.requires_grad]
    found = torch.autograd.grad(
        task_losses.sum(), [params[n] for n in names], create_graph=create_graph, allow_unused=True
    )
    grads = {n: torch.zeros_like(p) for n, p in params.items()}
    grads.update({n: g for n, g in zip(names, found) if g is not None})
    return grads
