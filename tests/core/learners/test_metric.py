"""Metric learners (protonet, attention) learn planted few-shot problems."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fewshot_apps.core.encoders import TableEncoder
from fewshot_apps.core.learners import build_learner
from fewshot_apps.core.synthetic import run_planted

torch.set_num_threads(1)


@pytest.mark.parametrize(
    "name,kind,config",
    [
        ("protonet", "classification", {}),
        ("protonet", "classification", {"distance": "cosine"}),
        ("attention", "classification", {}),
        ("attention", "regression", {}),
    ],
)
def test_learns_planted_problem(name, kind, config):
    result = run_planted(name, kind, steps=200, **config)
    if kind == "classification":
        assert result["auc"] >= 0.75
    else:
        assert result["mse"] <= 0.7 * result["baseline_mse"]


def test_protonet_copes_with_a_one_class_support():
    torch.manual_seed(0)
    learner = build_learner(
        "protonet", TableEncoder(torch.randn(20, 4), hidden=8, out_dim=4), "classification"
    )
    for labels in (np.zeros(4), np.ones(4)):
        out = learner.fit_predict(np.arange(4), labels, np.arange(4, 20))
        assert np.isfinite(out).all()


def test_protonet_logit_is_the_distance_difference():
    torch.manual_seed(0)
    learner = build_learner(
        "protonet", TableEncoder(torch.randn(6, 3), hidden=4, out_dim=2), "classification"
    )
    emb = learner.encoder(torch.arange(6)).detach()
    state = learner.adapt(torch.arange(4), torch.tensor([1.0, 1.0, 0.0, 0.0]))
    logits = learner.predict(state, torch.arange(4, 6)).detach()
    pos, neg = emb[:2].mean(0), emb[2:4].mean(0)
    expected = ((emb[4:] - neg) ** 2).sum(-1) - ((emb[4:] - pos) ** 2).sum(-1)
    torch.testing.assert_close(logits, expected * learner.log_scale.exp().detach())
