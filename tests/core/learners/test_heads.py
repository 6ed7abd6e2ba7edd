"""core/learners/heads.py: the small head adapted per task, and parameter (un)flattening."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import vmap

from fewshot_apps.core.learners.heads import MLPHead, flatten, unflatten


def x(n: int = 6, d: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    ("hidden", "shapes"),
    [
        (0, {"net.0.weight": (1, 4), "net.0.bias": (1,)}),
        (
            5,
            {
                "net.0.weight": (5, 4),
                "net.0.bias": (5,),
                "net.2.weight": (1, 5),
                "net.2.bias": (1,),
            },
        ),
    ],
)
def test_parameter_names_and_shapes(hidden, shapes):
    head = MLPHead(4, hidden)
    assert {n: tuple(p.shape) for n, p in head.named_parameters()} == shapes
    assert list(head.param_dict()) == list(shapes)  # named_parameters order
    # nothing with running statistics may sit in adapted parts
    assert list(head.buffers()) == []
    assert not any(
        isinstance(m, (nn.modules.batchnorm._NormBase, nn.LayerNorm)) for m in head.modules()
    )


@pytest.mark.parametrize("hidden", [0, 3])
@pytest.mark.parametrize("n", [0, 1, 6])
def test_forward_maps_n_by_in_dim_to_n(hidden, n):
    head = MLPHead(4, hidden)
    out = head(x(n))
    assert out.shape == (n,)  # a single row stays a vector, never a scalar


def test_linear_head_is_a_linear_map():
    head = MLPHead(4, 0)
    w, b = head.net[0].weight, head.net[0].bias
    torch.testing.assert_close(head(x()), x() @ w[0] + b[0])


def test_call_with_own_params_equals_forward_and_leaves_the_module_alone():
    head = MLPHead(4, 3)
    before = {n: p.detach().clone() for n, p in head.named_parameters()}
    torch.testing.assert_close(head.call_with(head.param_dict(), x()), head(x()))
    zeros = {n: torch.zeros_like(p) for n, p in head.param_dict().items()}
    torch.testing.assert_close(head.call_with(zeros, x()), torch.zeros(6))
    for n, p in head.named_parameters():
        torch.testing.assert_close(p, before[n])


def test_gradients_reach_the_given_params_not_the_module():
    head = MLPHead(4, 3)
    fast = {n: p.detach().clone().requires_grad_(True) for n, p in head.param_dict().items()}
    head.call_with(fast, x()).pow(2).sum().backward()
    assert all(fast[n].grad is not None and fast[n].grad.abs().sum() > 0 for n in fast)
    assert all(p.grad is None for p in head.parameters())


def test_call_with_vectorizes_over_a_stack_of_heads():
    """What a batched inner loop relies on: vmap over per-task parameters."""
    head = MLPHead(4, 3)
    heads = [MLPHead(4, 3) for _ in range(3)]
    stacked = {
        n: torch.stack([h.param_dict()[n].detach() for h in heads]) for n in head.param_dict()
    }
    xs = torch.stack([x(seed=s) for s in range(3)])
    out = vmap(head.call_with)(stacked, xs)
    assert out.shape == (3, 6)
    for t, h in enumerate(heads):
        torch.testing.assert_close(out[t], h(xs[t]))


def test_flatten_unflatten_round_trip():
    params = MLPHead(4, 3).param_dict()
    vec = flatten(params)
    assert vec.shape == (sum(p.numel() for p in params.values()),) == (4 * 3 + 3 + 3 + 1,)
    back = unflatten(vec, params)
    assert list(back) == list(params)
    for name, p in params.items():
        assert back[name].shape == p.shape
        torch.testing.assert_close(back[name], p)


def test_flatten_follows_dict_order():
    a, b = torch.tensor([[1.0, 2.0]]), torch.tensor([3.0])
    assert flatten({"a": a, "b": b}).tolist() == [1.0, 2.0, 3.0]
    assert flatten({"b": b, "a": a}).tolist() == [3.0, 1.0, 2.0]
    out = unflatten(torch.tensor([9.0, 8.0, 7.0]), {"b": b, "a": a})
    assert out["b"].tolist() == [9.0] and out["a"].tolist() == [[8.0, 7.0]]


def test_unflatten_keeps_the_graph_to_the_vector():
    params = MLPHead(4, 0).param_dict()
    vec = flatten(params).detach().requires_grad_(True)
    head = MLPHead(4, 0)
    head.call_with(unflatten(vec, params), x()).sum().backward()
    assert vec.grad is not None and vec.grad.shape == vec.shape
    # d(sum(w.x + b))/db = n rows
    assert vec.grad[-1].item() == pytest.approx(6.0)
