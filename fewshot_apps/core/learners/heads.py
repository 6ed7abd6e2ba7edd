"""The small prediction head that the optimization-based and hypernetwork learners adapt.

``MLPHead(in_dim, hidden)`` maps ``[n, in_dim]`` embeddings to ``[n]`` scores (a logit or a
normalized rating): a linear layer when ``hidden == 0``, else Linear -> ReLU -> Linear. No
normalization layers: its parameters are replaced per task in inner loops, and nothing with
running statistics may sit in adapted parts.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.func import functional_call


class MLPHead(nn.Module):
    """``[n, in_dim] -> [n]``; linear when ``hidden == 0``."""

    def __init__(self, in_dim: int, hidden: int = 0):
        super().__init__()
        if hidden > 0:
            self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        else:
            self.net = nn.Sequential(nn.Linear(in_dim, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(-1)

    def call_with(self, params: dict[str, Tensor], x: Tensor) -> Tensor:
        """The head with ``params`` (names as in ``named_parameters()``) instead of its own."""
        return functional_call(self, params, (x,))

    def param_dict(self) -> dict[str, Tensor]:
        return dict(self.named_parameters())


def flatten(params: dict[str, Tensor]) -> Tensor:
    """A parameter dict -> one vector ``[sum numel]`` (in dict order)."""
    return torch.cat([p.reshape(-1) for p in params.values()])


def unflatten(vector: Tensor, like: dict[str, Tensor]) -> dict[str, Tensor]:
    """Inverse of :func:`flatten` with the names and shapes of ``like``."""
    out, start = {}, 0
    for name, p in like.items():
        out[name] = vector[start : start + p.numel()].view_as(p)
        start += p.numel()
    return out
