"""Optimization-based learners: planted problems, real second-order gradients, learned steps."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fewshot_apps.core.encoders import TableEncoder
from fewshot_apps.core.learners import EpisodeBatch, build_learner
from fewshot_apps.core.learners.optimizer import preprocess_gradient
from fewshot_apps.core.synthetic import PlantedProblem, run_planted
from fewshot_apps.core.tasks import RandomSampler, sample_episodes
from fewshot_apps.errors import FewshotError

torch.set_num_threads(1)


@pytest.mark.parametrize(
    "name,steps,config",
    [
        ("maml", 150, {"inner_steps": 3}),
        ("anil", 150, {"inner_steps": 3}),
        ("metasgd", 200, {}),
        ("lstm", 200, {"inner_steps": 3}),
    ],
)
@pytest.mark.parametrize("kind", ["classification", "regression"])
def test_learns_planted_problem(name, steps, config, kind):
    result = run_planted(name, kind, steps=steps, **config)
    if kind == "classification":
        assert result["auc"] >= 0.75
    else:
        assert result["mse"] <= 0.7 * result["baseline_mse"]


def tiny(name, kind="classification", seed=0, **config):
    """A float64 learner on a tiny planted problem and one meta-batch of two episodes."""
    torch.manual_seed(seed)
    problem = PlantedProblem.make(kind, n_examples=40, n_features=3, n_relevant=2, seed=seed)
    encoder = TableEncoder(problem.features.double(), hidden=4, out_dim=3, depth=2)
    learner = build_learner(name, encoder, kind, **config).double()
    tasks = problem.tasks(2, examples_per_task=16, seed=seed)
    batch = EpisodeBatch.from_episodes(
        list(sample_episodes(tasks, RandomSampler(6, n_query=6), 2, seed=seed))
    )
    return learner, batch


def meta_grad(learner, batch):
    params = [p for p in learner.parameters() if p.requires_grad]
    return torch.autograd.grad(learner.loss(batch), params)


def test_maml_second_order_meta_gradient_matches_finite_differences():
    learner, batch = tiny("maml", inner_steps=2, inner_lr=0.5)
    named = [(n, p) for n, p in learner.named_parameters() if p.requires_grad]
    grads = dict(zip([n for n, _ in named], meta_grad(learner, batch)))
    eps = 1e-6
    rng = np.random.default_rng(0)
    checked = 0
    for name, p in named:  # a few coordinates of every parameter: trunk, last layer, head
        for flat_index in rng.choice(p.numel(), size=min(2, p.numel()), replace=False):
            index = np.unravel_index(flat_index, p.shape)
            with torch.no_grad():
                p[index] += eps
            plus = learner.loss(batch).item()
            with torch.no_grad():
                p[index] -= 2 * eps
            minus = learner.loss(batch).item()
            with torch.no_grad():
                p[index] += eps
            numeric = (plus - minus) / (2 * eps)
            assert math.isclose(grads[name][index].item(), numeric, rel_tol=1e-4, abs_tol=1e-7), (
                name
            )
            checked += 1
    assert checked >= 10


def test_first_order_differs_from_second_order():
    second, batch = tiny("maml", inner_steps=2, inner_lr=0.5)
    first, _ = tiny("maml", inner_steps=2, inner_lr=0.5, first_order=True)
    first.load_state_dict(second.state_dict())
    g2 = torch.cat([g.reshape(-1) for g in meta_grad(second, batch)])
    g1 = torch.cat([g.reshape(-1) for g in meta_grad(first, batch)])
    assert (g1 - g2).norm() > 1e-3 * g2.norm()


def test_maml_adapts_the_encoder_last_layer_and_anil_the_head_only():
    maml, batch = tiny("maml")
    anil, _ = tiny("anil")
    assert {"encoder.last.weight", "encoder.last.bias"} <= set(maml.initial_params())
    assert all(n.startswith("head.") for n in anil.initial_params())
    state = maml.adapt(batch.example_ids[:6], batch.support_labels[0])
    assert not torch.equal(state.inner["encoder.last.weight"], maml.encoder.last.weight)


def test_maml_split_and_functional_call_paths_agree():
    # Re-running only the last layer (split encoder) or the whole encoder through
    # functional_call must give the same meta-loss and meta-gradient.
    split, batch = tiny("maml", inner_steps=2)
    whole, _ = tiny("maml", inner_steps=2)
    whole.load_state_dict(split.state_dict())
    whole._split = False
    assert split._split
    torch.testing.assert_close(split.loss(batch), whole.loss(batch))
    for a, b in zip(meta_grad(split, batch), meta_grad(whole, batch)):
        torch.testing.assert_close(a, b)


def test_metasgd_step_sizes_receive_gradients():
    learner, batch = tiny("metasgd", kind="regression")
    learner.loss(batch).backward()
    assert len(learner.step_sizes) == 4  # head weight + bias, encoder last weight + bias
    for name, alpha in learner.step_sizes.items():
        assert alpha.grad is not None and alpha.grad.abs().sum() > 0, name


@pytest.mark.parametrize("truncate", [None, 2])
def test_lstm_optimizer_receives_gradients_through_the_unroll(truncate):
    learner, batch = tiny("lstm", inner_steps=5, truncate=truncate)
    learner.loss(batch).backward()
    for name, p in learner.named_parameters():
        if name.startswith(("cells.", "out.")):
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_lstm_updates_the_head():
    learner, batch = tiny("lstm", inner_steps=3)
    state = learner.adapt(batch.example_ids[:6], batch.support_labels[0])
    assert not torch.equal(state.inner["net.0.weight"], learner.head.net[0].weight)


def test_gradient_preprocessing():
    p = 10.0
    g = torch.tensor([1.0, -0.5, 1e-6, -1e-6, 0.0])
    out = preprocess_gradient(g, p)
    assert out.shape == (5, 2)
    torch.testing.assert_close(out[0], torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(out[1], torch.tensor([math.log(0.5) / p, -1.0]))
    # |g| < e^-p: (-1, e^p g)
    torch.testing.assert_close(out[2], torch.tensor([-1.0, math.exp(p) * 1e-6]))
    torch.testing.assert_close(out[4], torch.tensor([-1.0, 0.0]))


def test_batchnorm_with_running_stats_is_refused_in_adapted_layers():
    class BNEncoder(torch.nn.Module):
        out_dim = 3

        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(10, 3)
            self.norm = torch.nn.BatchNorm1d(3)

        def forward(self, ids):
            return self.norm(self.emb(ids))

        def last_layer_names(self):
            return ["norm.weight", "norm.bias"]

    with pytest.raises(FewshotError, match="BatchNorm with running statistics"):
        build_learner("maml", BNEncoder(), "regression")
    with pytest.raises(FewshotError, match="BatchNorm with running statistics"):
        build_learner("maml", BNEncoder(), "regression", adapt_encoder="all")
    build_learner("maml", BNEncoder(), "regression", adapt_encoder="none")
