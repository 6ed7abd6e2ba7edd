"""The optimizer every trainer (meta-learners, transfer pre-training) builds."""

from __future__ import annotations

import torch


def adamw(params: list[torch.nn.Parameter], lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW over ``params`` (already on their device), fused where every parameter allows it
    (floating point, on CPU or CUDA): on CPU the unfused step was a third of a fingerprint
    learner's training step; the fused one is about 9x cheaper (same update rule, rounding
    may differ in the last bits)."""
    fused = bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda")
                                 for p in params)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=fused or None)
