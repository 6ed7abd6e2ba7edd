"""The vmap inner-loop engine gives the loop's losses, meta-gradients and predictions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fewshot_apps.core.encoders import TableEncoder
from fewshot_apps.core.learners import EpisodeBatch, build_learner
from fewshot_apps.core.learners.batched import masked_criterion, pad_rows
from fewshot_apps.core.synthetic import PlantedProblem
from fewshot_apps.core.tasks import RandomSampler
from fewshot_apps.errors import FewshotError

torch.set_num_threads(1)

# (support, query) sizes of the episodes of one meta-batch: all different.
SIZES = [(3, 4), (6, 9), (4, 2), (8, 5)]

HEAD_ONLY = [
    ("anil", {"inner_steps": 3, "inner_lr": 0.5}),
    ("anil", {"inner_steps": 2, "head_hidden": 5, "first_order": True}),
    ("metasgd", {"adapt_encoder": "none", "inner_steps": 2}),
    ("maml", {"adapt_encoder": "none", "inner_steps": 2, "head_hidden": 4}),
    ("lstm", {"inner_steps": 3, "first_order": False}),
    ("lstm", {"inner_steps": 4, "truncate": 2}),
]


def setup(name, kind, seed=0, **config):
    """A float64 learner on a tiny planted problem and episodes of different sizes."""
    torch.manual_seed(seed)
    problem = PlantedProblem.make(kind, n_examples=60, n_features=5, n_relevant=2, seed=seed)
    encoder = TableEncoder(problem.features.double(), hidden=6, out_dim=4, depth=2)
    learner = build_learner(name, encoder, kind, **config).double()
    tasks = problem.tasks(len(SIZES), examples_per_task=20, seed=seed)
    episodes = [
        RandomSampler(s, n_query=q).sample(task, seed + i)
        for i, (task, (s, q)) in enumerate(zip(tasks, SIZES))
    ]
    return learner, episodes


def loss_and_grads(learner, batch, engine):
    learner.config.engine = engine
    params = [p for p in learner.parameters() if p.requires_grad]
    loss = learner.loss(batch)
    return loss, torch.autograd.grad(loss, params)


@pytest.mark.parametrize("kind", ["classification", "regression"])
@pytest.mark.parametrize("name,config", HEAD_ONLY)
def test_vmap_and_loop_give_the_same_loss_and_meta_gradients(name, config, kind, monkeypatch):
    learner, episodes = setup(name, kind, **config)
    batch = EpisodeBatch.from_episodes(episodes)
    assert learner.uses_vmap
    loop_loss, loop_grads = loss_and_grads(learner, batch, "loop")

    def per_task(*args, **kwargs):  # the vmap engine must not fall back to the loop
        raise AssertionError("per-task inner loop called by the vmap engine")

    monkeypatch.setattr(learner, "_episode_loss", per_task)
    vmap_loss, vmap_grads = loss_and_grads(learner, batch, "vmap")
    torch.testing.assert_close(vmap_loss, loop_loss, rtol=1e-5, atol=1e-5)
    assert len(vmap_grads) == len(loop_grads) > 0
    for a, b in zip(vmap_grads, loop_grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert sum(float(g.abs().sum()) for g in vmap_grads) > 0


@pytest.mark.parametrize("kind", ["classification", "regression"])
@pytest.mark.parametrize("name,config", [HEAD_ONLY[0], HEAD_ONLY[2], HEAD_ONLY[4]])
def test_fit_predict_many_matches_fit_predict(name, config, kind):
    learner, episodes = setup(name, kind, eval_inner_steps=4, **config)
    triples = [(e.support_examples, e.support_labels, e.query_examples) for e in episodes]
    triples.append((episodes[0].support_examples, episodes[0].support_labels, []))  # no query
    learner.train()
    many = learner.fit_predict_many(triples, group_size=3)
    assert learner.training  # mode restored
    for (s, y, q), got in zip(triples, many):
        expected = learner.fit_predict(s, y, q)
        assert got.shape == expected.shape == (len(q),)
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)


def test_maml_adapting_the_encoder_falls_back_to_the_loop():
    learner, episodes = setup("maml", "classification", inner_steps=2)
    assert learner.config.engine == "vmap" and learner.adapt_encoder == "last"
    assert not learner.uses_vmap
    batch = EpisodeBatch.from_episodes(episodes)
    loss, grads = loss_and_grads(learner, batch, "vmap")
    ref_loss, ref_grads = loss_and_grads(learner, batch, "loop")
    assert torch.equal(loss, ref_loss)
    assert all(torch.equal(a, b) for a, b in zip(grads, ref_grads))


def test_engine_option():
    learner, _ = setup("anil", "classification", engine="loop")
    assert not learner.uses_vmap and learner.describe()["config"]["engine"] == "loop"
    assert build_learner("lstm", learner.encoder, "regression").config.engine == "vmap"
    with pytest.raises(FewshotError, match="engine"):
        build_learner("anil", learner.encoder, "classification", engine="threads")


def test_padding_and_masked_losses():
    rows, mask = pad_rows([torch.tensor([1, 2, 3]), torch.tensor([4])])
    assert rows.tolist() == [[1, 2, 3], [4, 0, 0]]
    assert mask.tolist() == [[True, True, True], [True, False, False]]
    output = torch.tensor([[0.5, -1.0, 2.0], [1.0, 1e6, -1e6]], dtype=torch.float64)
    targets = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    for kind in ("classification", "regression"):
        got = masked_criterion(kind, output, targets, mask)
        assert torch.isfinite(got).all()
        ref = torch.stack(
            [
                masked_criterion(
                    kind,
                    output[i, mask[i]][None],
                    targets[i, mask[i]][None],
                    torch.ones(1, int(mask[i].sum()), dtype=torch.bool),
                )[0]
                for i in range(2)
            ]
        )
        torch.testing.assert_close(got, ref)
