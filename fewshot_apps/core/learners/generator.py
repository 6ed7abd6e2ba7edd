"""Generator learners: the support set generates the task model in one forward pass.

* ``cnp``: conditional neural process (Garnelo et al. 2018). Each support pair (embedding,
  target) is encoded, the codes are mean-pooled into a permutation-invariant task
  representation ``r``, and a decoder maps (query embedding, ``r``) to a logit or a normalized
  rating. The decoder is conditioned on ``r`` by concatenation and by FiLM (feature-wise
  scale and shift, Perez et al. 2018), which lets it form the products of query features and
  task directions that a concatenation-only MLP must approximate.
* ``hypernet``: a hypernetwork generates the weights of the task's head (linear or one hidden
  layer) from ``r``, as an offset from a shared, meta-learned base head; the generator's output
  layer starts at zero, so every task starts at the base head.

Both encode a support pair as ``[e, v, v * e]`` with ``v = 2y - 1`` (classification) or the
normalized rating: the mean of ``v * e`` is a label-weighted prototype difference, available to
the set encoder from the start.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from fewshot_apps.core.learners.base import LearnerConfig, MetaLearner
from fewshot_apps.core.learners.heads import MLPHead, flatten, unflatten


def _mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class SetEncoder(nn.Module):
    """Support set -> task representation: ``[s, d], [s] -> [repr_dim]`` (mean of pair codes)."""

    def __init__(self, embed_dim: int, hidden: int, repr_dim: int, depth: int = 2):
        super().__init__()
        self.net = _mlp([2 * embed_dim + 1] + [hidden] * (depth - 1) + [repr_dim])
        # A linear path beside the MLP: a prototype difference (the mean of v * e) reaches
        # the representation without first being rebuilt from ReLU units.
        self.skip = nn.Linear(2 * embed_dim + 1, repr_dim, bias=False)

    def forward(self, support: Tensor, values: Tensor) -> Tensor:
        v = values.to(support.dtype).unsqueeze(-1)
        pairs = torch.cat([support, v, v * support], dim=-1)
        return (self.net(pairs) + self.skip(pairs)).mean(0)


def _values(learner: MetaLearner, targets: Tensor) -> Tensor:
    # Centred values: +-1 for classes, the normalized (support-mean-centred) rating otherwise.
    return 2.0 * targets - 1.0 if learner.kind == "classification" else targets


@dataclass
class CNPConfig(LearnerConfig):
    """Attributes:
    hidden: width of the set encoder and decoder MLPs.
    repr_dim: width of the task representation ``r``.
    encoder_depth: layers of the set encoder MLP.
    decoder_depth: layers of the decoder after the FiLM-conditioned first layer.
    """

    hidden: int = 64
    repr_dim: int = 64
    encoder_depth: int = 2
    decoder_depth: int = 2


class CNP(MetaLearner):
    """Conditional neural process, both kinds (deterministic; the mean is the prediction)."""

    Config = CNPConfig

    def __init__(self, encoder, kind, config=None):
        super().__init__(encoder, kind, config)
        cfg: CNPConfig = self.config
        d = self.embed_dim
        self.set_encoder = SetEncoder(d, cfg.hidden, cfg.repr_dim, cfg.encoder_depth)
        self.decoder_in = nn.Linear(d + cfg.repr_dim, cfg.hidden)
        self.film = nn.Linear(cfg.repr_dim, 2 * cfg.hidden)
        # FiLM starts as the identity (scale 1, shift 0).
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)
        self.decoder_out = _mlp([cfg.hidden] * max(cfg.decoder_depth, 1) + [1])
        # Linear read-out of the FiLM-ed features beside the MLP: sum_k u_k (a_k . q)(1 + s_k(r))
        # is a bilinear form of query and task, the shape of a task-specific direction.
        self.decoder_skip = nn.Linear(cfg.hidden, 1, bias=False)

    def _adapt(self, support: Tensor, targets: Tensor) -> Tensor:
        """-> task representation ``[repr_dim]``."""
        return self.set_encoder(support, _values(self, targets))

    def _predict(self, r: Tensor, query: Tensor) -> Tensor:
        """query ``[q, d]`` -> ``[q]``."""
        r_q = r.expand(len(query), -1)
        scale, shift = self.film(r).chunk(2, dim=-1)
        h = self.decoder_in(torch.cat([query, r_q], dim=-1)) * (1.0 + scale) + shift
        return (self.decoder_out(torch.relu(h)) + self.decoder_skip(h)).squeeze(-1)


@dataclass
class HypernetConfig(LearnerConfig):
    """Attributes:
    hidden: width of the set encoder and of the generator MLP.
    repr_dim: width of the task representation.
    head_hidden: hidden width of the generated head (0: a linear head).
    encoder_depth: layers of the set encoder MLP.
    """

    hidden: int = 64
    repr_dim: int = 64
    head_hidden: int = 0
    encoder_depth: int = 2


class HyperNetwork(MetaLearner):
    """Support set -> the weights of a task-specific head (base head + generated offset)."""

    Config = HypernetConfig

    def __init__(self, encoder, kind, config=None):
        super().__init__(encoder, kind, config)
        cfg: HypernetConfig = self.config
        self.head = MLPHead(self.embed_dim, cfg.head_hidden)
        n_head = sum(p.numel() for p in self.head.parameters())
        self.set_encoder = SetEncoder(self.embed_dim, cfg.hidden, cfg.repr_dim, cfg.encoder_depth)
        self.generator = _mlp([cfg.repr_dim, cfg.hidden, n_head])
        self.generator_skip = nn.Linear(cfg.repr_dim, n_head, bias=False)
        # Zero offsets at the start: every task begins at the shared base head.
        for layer in (self.generator[-1], self.generator_skip):
            nn.init.zeros_(layer.weight)
        nn.init.zeros_(self.generator[-1].bias)

    def _adapt(self, support: Tensor, targets: Tensor) -> dict[str, Tensor]:
        """-> the task's head parameters (names of ``self.head``)."""
        base = self.head.param_dict()
        r = self.set_encoder(support, _values(self, targets))
        offset = self.generator(r) + self.generator_skip(r)
        return unflatten(flatten(base) + offset, base)

    def _predict(self, params: dict[str, Tensor], query: Tensor) -> Tensor:
        return self.head.call_with(params, query)
