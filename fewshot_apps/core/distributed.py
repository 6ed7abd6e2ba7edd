"""Data-parallel meta-training helpers over ``torch.distributed``.

:func:`fewshot_apps.core.training.meta_train` runs data-parallel when the default process
group is initialized with more than one process, or when it was launched by ``torchrun``
(``WORLD_SIZE > 1`` in the environment; it then initializes the group itself with
:func:`init_from_env`: NCCL on CUDA, gloo on CPU). Every rank draws the same global
meta-batch (episodes are seeded by the step), computes the loss on its share of the
episodes, and the meta-gradients are all-reduced (:func:`all_reduce_gradients`) so that every
rank takes the same optimizer step as one process on the whole meta-batch would. Only rank 0
writes files and validates.

An entry point wraps its command in :func:`process_group` (the group then spans dataset
loading too), builds shared caches under :func:`main_process_first`, and prints or writes
reports only where :func:`is_main_process`.

Launch, one node with N processes (GPUs or CPU processes)::

    torchrun --standalone --nproc_per_node=N -m fewshot_apps mol train ...

Several nodes (run on each node; ``--node_rank`` 0..M-1, the same rendezvous endpoint)::

    torchrun --nnodes=M --nproc_per_node=N --rdzv_backend=c10d \\
        --rdzv_endpoint=HOST:29500 --rdzv_id=JOB -m fewshot_apps mol train ...
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from fewshot_apps.errors import FewshotError

# Rank 0 validates while the others wait in a collective: give it time.
DEFAULT_TIMEOUT = timedelta(minutes=60)


def is_initialized() -> bool:
    """Whether the default process group exists."""
    return dist.is_available() and dist.is_initialized()


def env_world_size() -> int:
    """``WORLD_SIZE`` from the environment (set by ``torchrun``); 1 when absent."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def requested() -> bool:
    """Whether this process is part of a multi-process run (group initialized or torchrun)."""
    return (is_initialized() and dist.get_world_size() > 1) or env_world_size() > 1


def world_size() -> int:
    """Processes in the default group (1 without one)."""
    return dist.get_world_size() if is_initialized() else 1


def rank() -> int:
    """This process's global rank: the group's, else ``RANK`` from the environment (so it is
    right before the group exists and after it is destroyed), else 0."""
    if is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0") or 0)


def local_rank() -> int:
    """This process's rank on its node (``LOCAL_RANK``, set by ``torchrun``); 0 when absent."""
    return int(os.environ.get("LOCAL_RANK", "0") or 0)


def is_main_process() -> bool:
    """True on global rank 0 (and in a single-process run): the one that writes and prints."""
    return rank() == 0


def backend_for(device: torch.device) -> str:
    """NCCL for CUDA devices, gloo for the CPU."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def init_from_env(device: torch.device | str = "cpu", timeout: timedelta = DEFAULT_TIMEOUT) -> bool:
    """Initialize the default process group from ``torchrun``'s environment (``env://``)
    when ``WORLD_SIZE > 1`` and no group exists yet; the backend follows ``device``
    (:func:`backend_for`), and a CUDA device becomes the current one.

    Returns True when this call created the group (the caller then destroys it with
    :func:`destroy`); False when a group already existed or the run is single-process.
    """
    if is_initialized() or env_world_size() <= 1:
        return False
    if not dist.is_available():
        raise FewshotError(
            f"WORLD_SIZE={env_world_size()} asks for a distributed run, but this PyTorch build "
            "has no torch.distributed"
        )
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend_for(device), timeout=timeout)
    return True


@contextmanager
def process_group(device: str | torch.device = "auto") -> Iterator[torch.device]:
    """For entry points (the CLI): initialize the process group from ``torchrun``'s
    environment for the whole command (so that :func:`main_process_first` works before
    ``meta_train``), yield this process's device (``cuda:LOCAL_RANK`` for ``auto`` / ``cuda``
    in a distributed run), and destroy the group at the end if this call created it. A
    single-process run just gets its device."""
    from fewshot_apps.core.device import resolve_device

    resolved = resolve_device(device, local_rank() if requested() else None)
    owns = init_from_env(resolved)
    try:
        yield resolved
    finally:
        if owns:
            destroy()


def destroy() -> None:
    """Destroy the default process group (if any)."""
    if is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


@contextmanager
def main_process_first() -> Iterator[None]:
    """Rank 0 runs the body first, then the other ranks (e.g. to build a data cache once
    instead of every rank writing it at the same time). A no-op without a process group."""
    if not (is_initialized() and dist.get_world_size() > 1):
        yield
        return
    if dist.get_rank() != 0:
        dist.barrier()
    try:
        yield
    finally:
        if dist.get_rank() == 0:
            dist.barrier()


def share(n: int, world: int, this_rank: int) -> tuple[int, int]:
    """``[start, stop)`` of rank ``this_rank``'s contiguous share of ``n`` items (the first
    ``n % world`` ranks get one more)."""
    base, extra = divmod(n, world)
    start = this_rank * base + min(this_rank, extra)
    return start, start + base + (1 if this_rank < extra else 0)


def all_reduce_gradients(params: Sequence[Tensor], loss_sum: Tensor, count: int) -> float:
    """Sum the ranks' gradients and loss sums, divide by the global episode ``count``.

    Each rank has back-propagated the SUM of its episodes' losses (``loss_sum``); afterwards
    every rank holds the gradients of the mean loss over all ``count`` episodes, what one
    process gets on the whole meta-batch. A parameter without a gradient on every rank keeps
    ``grad=None`` (as in one process, where AdamW then skips it). One collective per step.
    Returns the global mean loss.
    """
    params = list(params)
    reference = params[0]
    pieces, flags = [], []
    for p in params:
        if p.grad is None:
            pieces.append(reference.new_zeros(p.numel()))
            flags.append(0.0)
        else:
            pieces.append(p.grad.detach().reshape(-1).to(reference.dtype))
            flags.append(1.0)
    extra = torch.tensor(flags + [float(loss_sum)], dtype=reference.dtype, device=reference.device)
    buffer = torch.cat(pieces + [extra])
    dist.all_reduce(buffer)
    buffer /= count
    start = 0
    for p, piece in zip(params, pieces):
        size = piece.numel()
        if p.grad is None:
            p.grad = buffer[start : start + size].view_as(p).to(p.dtype).clone()
        else:
            p.grad.copy_(buffer[start : start + size].view_as(p))
        start += size
    has_grad = buffer[start : start + len(params)]
    for p, flag in zip(params, has_grad.tolist()):
        if flag == 0:
            p.grad = None
    return float(buffer[-1])


def broadcast_parameters(module: nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s parameters and normalization running statistics to every rank."""
    for tensor in [*module.parameters(), *running_stats(module)]:
        dist.broadcast(tensor.data, src)


def running_stats(module: nn.Module) -> list[Tensor]:
    """The running-statistics buffers of BatchNorm-like layers (they change in training)."""
    out = []
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._NormBase) and m.track_running_stats:
            out += [
                b for b in (m.running_mean, m.running_var, m.num_batches_tracked) if b is not None
            ]
    return out


def sync_running_stats(module: nn.Module, src: int = 0) -> None:
    """Rank ``src``'s running statistics to every rank (as DDP's ``broadcast_buffers``)."""
    for tensor in running_stats(module):
        dist.broadcast(tensor.data, src)


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``obj`` from rank ``src`` on every rank (pickled; tensors come back on their device)."""
    holder = [obj if dist.get_rank() == src else None]
    dist.broadcast_object_list(holder, src)
    return holder[0]


def all_reduce_max(values: Sequence[int], device: torch.device | str) -> list[int]:
    """The element-wise maximum of every rank's ``values`` (small ints, e.g. flags), on
    every rank; ``device``: the process group's (CUDA for NCCL). One collective."""
    buffer = torch.tensor(list(values), dtype=torch.int64, device=device)
    dist.all_reduce(buffer, op=dist.ReduceOp.MAX)
    return [int(v) for v in buffer.tolist()]


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out
