"""The encoder contract and a table encoder (an MLP over a fixed feature table).

An *encoder* is an ``nn.Module`` that owns the pool of examples (molecule graphs, an item
graph, a feature table) and maps example ids to embeddings:

* ``out_dim: int``: the embedding width.
* ``forward(example_ids: LongTensor[n]) -> FloatTensor[n, out_dim]``. Ids arrive on the
  learner's device; the encoder moves whatever else it needs.

Optional parts, used by the optimization-based learners (``maml``):

* ``last_layer_names() -> list[str]``: names (as in ``named_parameters()`` of the encoder) of
  the parameters of its last layer, which ``maml`` adapts in its inner loop with the head.
* ``forward_trunk(example_ids) -> hidden`` and ``forward_last(hidden, params=None) -> [n,
  out_dim]``: ``forward`` split before the last layer, so that an inner loop that adapts the
  last layer re-runs only that layer. ``params`` maps ``last_layer_names()`` to tensors that
  replace the module's own parameters (``None``: the module's own).
* ``config() -> dict``: the JSON-able settings that rebuild the encoder; its ``"name"`` is
  the encoder's entry in :data:`~fewshot_apps.core.registry.ENCODERS`, whose class
  :func:`~fewshot_apps.core.persistence.load_model` rebuilds with
  ``from_config(config["encoder"])``.

Optional for regression (ratings):

* ``label_prior(example_ids) -> FloatTensor[n] | None``: a prior guess of each example's
  label in label units (an item's shrunk mean rating), or ``None``. Learners and transfer
  baselines then model the residual ``label - prior`` and add the prior back to their
  predictions (:func:`label_prior`), so a few support ratings personalize a prior instead
  of rebuilding it.

Optional for ranking (which examples a task will take part in):

* ``has_support_affinity: bool`` and ``support_affinity(support_ids [s], candidate_ids [c],
  support_weights [s] | None) -> FloatTensor[c] | None``: a label-free, non-negative
  structural score of how much each candidate goes with the support examples (weighted by
  ``support_weights``, which sum to 1; None: equally) (in recommendation: the mean co-rating
  similarity of an item to the user's rated items). The learners' implicit head adds its
  log, with a learned weight, to its score (:func:`support_affinity`). It is computed from
  the same inputs as the embeddings, so ``hide_tasks`` applies to it too.

Optional, a fixed similarity of examples (used by ``dkt`` with ``fixed_kernel``):

* ``has_similarity: bool``, ``similarity(a_ids [n], b_ids [m]) -> FloatTensor[n, m]`` and
  ``self_similarity(ids [n]) -> FloatTensor[n]``: a label-free, untrained, positive
  semi-definite kernel between examples, in ``[0, 1]`` (molecules: Tanimoto of ECFP bits), on
  the ids' device.

Optional for an encoder built from the training tasks' own labels (a graph whose nodes are
the training users):

* ``hide_tasks(task_names: Sequence[str])``: meta-training calls it with each meta-batch's
  task names before that batch's loss, and with ``()`` after (:func:`tasks_hidden`). The
  encoder then leaves those tasks' labels out of its inputs, so a training episode sees what
  a new task sees: its own query labels nowhere in the encoder's input. An encoder with
  ``hides_task_examples = True`` is called ``hide_tasks(task_names, examples)``, with each
  episode's example ids (support and query), and may hide only those examples' labels in
  that task (a molecule's label in its episode's assay, not the whole assay).
* ``hides_tasks_in_pretraining: bool``: True for an encoder whose input holds each example's
  labels in the training tasks (a molecule's assay profile). Multitask pre-training, whose
  every step mixes all training tasks, then hides all of them (:func:`pretraining_hidden`);
  without it each task's output would learn to copy its own label.

Learners never know what the ids stand for.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fewshot_apps.core.registry import ENCODERS, registered_name
from fewshot_apps.errors import FewshotError


@runtime_checkable
class Encoder(Protocol):
    """What a learner needs of an encoder (an ``nn.Module``)."""

    out_dim: int

    def __call__(self, example_ids: Tensor) -> Tensor: ...


def supports_last_layer_split(encoder: nn.Module) -> bool:
    """Whether ``encoder`` offers ``forward_trunk`` / ``forward_last`` and ``last_layer_names``."""
    return all(
        callable(getattr(encoder, name, None))
        for name in ("forward_trunk", "forward_last", "last_layer_names")
    )


def label_prior(encoder: nn.Module, example_ids: Tensor) -> Tensor | None:
    """``[n]`` the encoder's prior labels of ``example_ids``, or None when it has none."""
    fn = getattr(encoder, "label_prior", None)
    return None if fn is None else fn(example_ids)


def has_support_affinity(encoder: nn.Module) -> bool:
    """Whether ``encoder`` offers :func:`support_affinity` scores."""
    return bool(getattr(encoder, "has_support_affinity", False))


def support_affinity(encoder: nn.Module, support_ids: Tensor, candidate_ids: Tensor,
                     support_weights: Tensor | None = None) -> Tensor | None:
    """``[c]`` the encoder's affinity of each candidate to the support set (the support
    examples weighted by ``support_weights`` ``[s]``, summing to 1; None: equal), or None
    when it offers none."""
    if not has_support_affinity(encoder):
        return None
    if support_weights is None:
        return encoder.support_affinity(support_ids, candidate_ids)
    return encoder.support_affinity(support_ids, candidate_ids, support_weights)


def has_similarity(encoder: nn.Module) -> bool:
    """Whether ``encoder`` offers a fixed ``similarity`` of examples (see the module)."""
    return bool(getattr(encoder, "has_similarity", False))


@contextlib.contextmanager
def tasks_hidden(encoder: nn.Module, task_names: Sequence[str],
                 examples: Sequence | None = None) -> Iterator[None]:
    """Within the block, ``encoder`` hides the named tasks' labels from its inputs (a no-op
    for an encoder without ``hide_tasks``); ``examples`` (one id array per name, any
    iterable, read only then) go to an encoder with ``hides_task_examples``."""
    hide = getattr(encoder, "hide_tasks", None)
    if hide is None:
        yield
        return
    if examples is not None and getattr(encoder, "hides_task_examples", False):
        hide(list(task_names), list(examples))
    else:
        hide(list(task_names))
    try:
        yield
    finally:
        hide(())


def pretraining_hidden(encoder: nn.Module, task_names: Sequence[str]):
    """The context of one multitask pre-training step: :func:`tasks_hidden` of every
    training task for an encoder with ``hides_tasks_in_pretraining``, nothing otherwise."""
    if not getattr(encoder, "hides_tasks_in_pretraining", False):
        return contextlib.nullcontext()
    return tasks_hidden(encoder, task_names)


class LastLayerSplit:
    """Mixin of an encoder that is ``forward_trunk`` followed by one linear layer ``self.last``:
    the last-layer split of the contract above (``last_layer_names``, ``forward_last``,
    ``forward``), written once. Put it before ``nn.Module`` in the bases."""

    last: nn.Linear

    def last_layer_names(self) -> list[str]:
        return ["last.weight", "last.bias"]

    def forward_last(self, hidden: Tensor, params: dict[str, Tensor] | None = None) -> Tensor:
        """``[n, hidden] -> [n, out_dim]`` with the last layer's own or the given parameters."""
        if params is None:
            return self.last(hidden)
        return F.linear(hidden, params["last.weight"], params["last.bias"])

    def forward(self, example_ids: Tensor) -> Tensor:
        """``LongTensor[n] -> FloatTensor[n, out_dim]``."""
        return self.forward_last(self.forward_trunk(example_ids))


class TableEncoder(LastLayerSplit, nn.Module):
    """An MLP over a fixed feature table: ``features[ids] -> [n, out_dim]``.

    ``depth`` linear layers: ``depth - 1`` blocks of Linear -> LayerNorm -> ReLU -> Dropout
    (LayerNorm, not BatchNorm: no running statistics leak across tasks), then a last Linear.
    ``depth=1`` is a linear map of the features.

    Args:
        features: ``[num_examples, f]`` float tensor, row ``i`` describes example id ``i``
            (random features in tests; ECFP bits for a fingerprint-only molecule model).
        hidden: width of the hidden blocks.
        out_dim: embedding width.
        depth: number of linear layers (>= 1).
        dropout: dropout after each hidden block.
        store_features: keep the table in the ``state_dict`` (a saved model is then
            self-contained); ``False`` for large tables that the domain rebuilds itself.
    """

    name = registered_name(ENCODERS)

    def __init__(
        self,
        features: Tensor,
        hidden: int = 64,
        out_dim: int = 32,
        depth: int = 2,
        dropout: float = 0.0,
        store_features: bool = True,
    ):
        super().__init__()
        features = torch.as_tensor(features)
        if features.ndim != 2:
            raise FewshotError(
                f"TableEncoder: features must be [num_examples, f], got {tuple(features.shape)}"
            )
        if depth < 1:
            raise FewshotError(f"TableEncoder: depth must be >= 1, got {depth}")
        if not features.is_floating_point():
            features = features.float()
        self.register_buffer("features", features, persistent=store_features)
        self.num_examples, self.in_dim = features.shape
        self.hidden, self.out_dim, self.depth = hidden, out_dim, depth
        self.dropout, self.store_features = dropout, store_features
        blocks: list[nn.Module] = []
        width = self.in_dim
        for _ in range(depth - 1):
            blocks += [
                nn.Linear(width, hidden),
                nn.LayerNorm(hidden),
                nn.ReLU(),
                nn.Dropout(dropout),
            ]
            width = hidden
        self.trunk = nn.Sequential(*blocks)
        self.last = nn.Linear(width, out_dim)

    def config(self) -> dict:
        return {
            "name": self.name,
            "num_examples": int(self.num_examples),
            "in_dim": int(self.in_dim),
            "hidden": self.hidden,
            "out_dim": self.out_dim,
            "depth": self.depth,
            "dropout": self.dropout,
            "store_features": self.store_features,
        }

    @classmethod
    def from_config(cls, config: dict, features: Tensor | None = None) -> TableEncoder:
        """Rebuild from :meth:`config`; without ``features`` a zero table of the saved shape
        is made (filled by ``load_state_dict`` when the table was stored)."""
        if features is None:
            if not config.get("store_features", True):
                raise FewshotError(
                    "encoder 'table' was saved without its feature table (store_features=false); "
                    "pass build_encoder=... that calls TableEncoder.from_config(config, features)"
                )
            features = torch.zeros(int(config["num_examples"]), int(config["in_dim"]))
        return cls(
            features,
            hidden=int(config.get("hidden", 64)),
            out_dim=int(config.get("out_dim", 32)),
            depth=int(config.get("depth", 2)),
            dropout=float(config.get("dropout", 0.0)),
            store_features=bool(config.get("store_features", True)),
        )

    def forward_trunk(self, example_ids: Tensor) -> Tensor:
        """``[n] -> [n, hidden]`` (``[n, f]`` when ``depth == 1``)."""
        return self.trunk(self.features[example_ids])
