"""Which torch device a run uses."""

from __future__ import annotations

import torch

from fewshot_apps.errors import FewshotError


def resolve_device(device: str | torch.device, local_rank: int | None = None) -> torch.device:
    """``auto`` -> CUDA when available, else the CPU. With ``local_rank`` (a distributed run),
    ``auto`` and ``cuda`` mean ``cuda:local_rank``: one GPU per process. FewshotError when
    CUDA is asked for and not available."""
    if str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if local_rank is not None and device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise FewshotError(
            f"device {device} asked for, but CUDA is not available; use device='cpu'"
        )
    return device
