"""Generator learners (cnp, hypernet) learn planted few-shot problems."""

from __future__ import annotations

import pytest
import torch

from fewshot_apps.core.encoders import TableEncoder
from fewshot_apps.core.learners import build_learner
from fewshot_apps.core.synthetic import run_planted

torch.set_num_threads(1)


@pytest.mark.parametrize("name", ["cnp", "hypernet"])
@pytest.mark.parametrize("kind", ["classification", "regression"])
def test_learns_planted_problem(name, kind):
    result = run_planted(name, kind, steps=300)
    if kind == "classification":
        assert result["auc"] >= 0.7
    else:
        assert result["mse"] <= 0.8 * result["baseline_mse"]


@pytest.mark.parametrize("name", ["cnp", "hypernet"])
def test_support_order_does_not_matter(name):
    torch.manual_seed(0)
    learner = build_learner(
        name, TableEncoder(torch.randn(20, 4), hidden=8, out_dim=4), "regression"
    ).eval()
    ids, labels = torch.arange(8), torch.linspace(1, 5, 8)
    perm = torch.randperm(8)
    query = torch.arange(8, 20)
    with torch.no_grad():
        a = learner.predict(learner.adapt(ids, labels), query)
        b = learner.predict(learner.adapt(ids[perm], labels[perm]), query)
    torch.testing.assert_close(a, b)


def test_hypernet_starts_at_the_base_head():
    torch.manual_seed(0)
    learner = build_learner(
        "hypernet", TableEncoder(torch.randn(20, 4), hidden=8, out_dim=4), "classification"
    )
    state = learner.adapt(torch.arange(6), torch.tensor([1.0, 0, 1, 0, 1, 0]))
    for name, p in learner.head.named_parameters():
        torch.testing.assert_close(state.inner[name], p)
