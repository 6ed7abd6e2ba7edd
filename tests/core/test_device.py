"""core/device.py: resolve_device. ``auto`` is the CPU on a machine without CUDA; CUDA asked
for where there is none is a FewshotError saying what to use; in a distributed run ``auto``
and ``cuda`` mean ``cuda:LOCAL_RANK`` (CUDA availability faked by monkeypatching)."""

from __future__ import annotations

import pytest
import torch

from fewshot_apps.core.device import resolve_device
from fewshot_apps.errors import FewshotError


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def fake_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)


def test_auto_is_the_cpu_without_cuda(no_cuda):
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("auto", local_rank=3) == torch.device("cpu")  # ranks share the CPU


def test_auto_follows_this_machine():
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == want


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu")])
def test_the_cpu_is_the_cpu_whatever_the_rank(device):
    assert resolve_device(device) == torch.device("cpu")
    assert resolve_device(device, local_rank=1) == torch.device("cpu")


@pytest.mark.parametrize("device", ["cuda", "cuda:1", torch.device("cuda", 0)])
def test_cuda_without_cuda_is_refused_with_what_to_use(no_cuda, device):
    with pytest.raises(FewshotError, match=r"CUDA is not available; use device='cpu'"):
        resolve_device(device)


def test_the_refusal_names_the_device_asked_for(no_cuda):
    with pytest.raises(FewshotError, match=r"^device cuda:2 asked for"):
        resolve_device("cuda:2")
    with pytest.raises(FewshotError, match=r"^device cuda:1 asked for"):
        resolve_device("cuda", local_rank=1)  # mapped to the rank's GPU, then refused


def test_auto_and_cuda_mean_the_ranks_gpu_in_a_distributed_run(fake_cuda):
    assert resolve_device("auto", local_rank=2) == torch.device("cuda", 2)
    assert resolve_device("cuda", local_rank=1) == torch.device("cuda", 1)
    assert resolve_device(torch.device("cuda"), local_rank=0) == torch.device("cuda", 0)


def test_an_explicit_gpu_index_wins_over_the_rank(fake_cuda):
    assert resolve_device("cuda:3", local_rank=1) == torch.device("cuda", 3)


def test_without_a_rank_cuda_keeps_no_index(fake_cuda):
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda").index is None


def test_an_unknown_device_name_is_torchs_error(no_cuda):
    with pytest.raises(RuntimeError):
        resolve_device("tpu-please")
