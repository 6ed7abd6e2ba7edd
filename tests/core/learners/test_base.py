"""The meta-learner interface shared by every learner: batches, kinds, configs, fit_predict."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from fewshot_apps.core.encoders import TableEncoder
from fewshot_apps.core.evaluation import encoded_once
from fewshot_apps.core.learners import (
    EpisodeBatch,
    MetaLearner,
    ProtoNet,
    build_learner,
    default_config,
    learner_class,
    learner_names,
)
from fewshot_apps.core.synthetic import PlantedProblem
from fewshot_apps.core.tasks import RandomSampler, sample_episodes
from fewshot_apps.errors import FewshotError

torch.set_num_threads(1)

ALL = ["protonet", "attention", "dkt", "cnp", "hypernet", "maml", "anil", "metasgd", "lstm"]
CASES = [
    (n, k)
    for n in ALL
    for k in ("classification", "regression")
    if k in learner_class(n).SUPPORTED_KINDS
]


class CountingEncoder(TableEncoder):
    """A TableEncoder that counts how often the features are looked up."""

    calls = 0

    def forward_trunk(self, example_ids):
        CountingEncoder.calls += 1
        return super().forward_trunk(example_ids)


def make(name, kind, seed=0, encoder_cls=TableEncoder, **config):
    torch.manual_seed(seed)
    problem = PlantedProblem.make(kind, n_examples=60, n_features=6, seed=seed)
    encoder = encoder_cls(problem.features, hidden=8, out_dim=4, depth=2)
    return build_learner(name, encoder, kind, **config), problem.tasks(
        4, examples_per_task=20, seed=seed
    )


def test_registry_has_every_learner():
    assert learner_names() == ALL
    assert learner_names("regression") == [n for n in ALL if n != "protonet"]
    for name in ALL:
        assert isinstance(default_config(name), dict)
        assert learner_class(name).name == name
    with pytest.raises(FewshotError, match="unknown learner 'rf'; known: anil, attention"):
        learner_class("rf")  # a model, but not a meta-learner


def test_episode_batch_shares_unique_ids():
    _, tasks = make("protonet", "classification")
    episodes = list(sample_episodes(tasks, RandomSampler(5, n_query=6), 3, seed=1))
    batch = EpisodeBatch.from_episodes(episodes)
    assert len(batch) == 3
    ids = batch.example_ids
    assert torch.equal(ids, torch.unique(ids))
    for ep, s_idx, s_lab, q_idx, q_lab in zip(
        episodes, batch.support_index, batch.support_labels, batch.query_index, batch.query_labels
    ):
        assert np.array_equal(ids[s_idx].numpy(), ep.support_examples)
        assert np.array_equal(ids[q_idx].numpy(), ep.query_examples)
        assert np.array_equal(s_lab.numpy(), ep.support_labels)
        assert np.array_equal(q_lab.numpy(), ep.query_labels)
    moved = batch.to("cpu")
    assert moved.tasks == batch.tasks
    with pytest.raises(FewshotError):
        EpisodeBatch.from_episodes([])


@pytest.mark.parametrize("name", ALL)
def test_one_encoder_pass_per_meta_batch(name):
    learner, tasks = make(
        name, "classification" if name == "protonet" else "regression", encoder_cls=CountingEncoder
    )
    batch = EpisodeBatch.from_episodes(
        list(sample_episodes(tasks, RandomSampler(5, n_query=6), 4, seed=0))
    )
    CountingEncoder.calls = 0
    learner.loss(batch).backward()
    assert CountingEncoder.calls == 1


def test_a_subclass_reads_its_registered_base_and_an_unregistered_learner_names_itself():
    encoder = TableEncoder(torch.randn(10, 3), hidden=4, out_dim=2)

    class Tweaked(ProtoNet):  # not registered: ProtoNet's name and kinds, as before
        pass

    assert Tweaked.name == "protonet" and Tweaked.SUPPORTED_KINDS == ("classification",)
    with pytest.raises(FewshotError, match="protonet.*classification.*not regression"):
        Tweaked(encoder, "regression")

    class Mine(MetaLearner):  # registered nowhere: sets its name, supports both kinds
        name = "mine"

    assert Mine.SUPPORTED_KINDS == ("classification", "regression")
    assert Mine(encoder, "regression").describe()["name"] == "mine"
    with pytest.raises(AttributeError, match="MetaLearner is not a registered model"):
        MetaLearner.name  # noqa: B018


def test_wrong_kind_is_a_clear_error():
    encoder = TableEncoder(torch.randn(10, 3), hidden=4, out_dim=2)
    with pytest.raises(FewshotError, match="protonet.*classification.*not regression"):
        build_learner("protonet", encoder, "regression")
    with pytest.raises(FewshotError, match="protonet.*classification"):
        ProtoNet(encoder, "regression")
    with pytest.raises(FewshotError, match="unknown task kind"):
        build_learner("maml", encoder, "ranking")
    with pytest.raises(FewshotError, match="unknown learner 'foo'"):
        build_learner("foo", encoder, "regression")


def test_config_overrides_parse_strings_and_reject_unknown_keys():
    encoder = TableEncoder(torch.randn(10, 3), hidden=4, out_dim=2)
    learner = build_learner(
        "maml",
        encoder,
        "classification",
        inner_steps="2",
        first_order="true",
        eval_inner_steps="none",
        inner_lr="0.3",
    )
    assert (learner.config.inner_steps, learner.config.first_order) == (2, True)
    assert learner.config.eval_inner_steps is None and learner.config.inner_lr == 0.3
    with pytest.raises(FewshotError, match="unknown option.*inner_step\\b"):
        build_learner("maml", encoder, "classification", inner_step=2)
    with pytest.raises(FewshotError, match="inner_steps='x': expected an integer"):
        build_learner("maml", encoder, "classification", inner_steps="x")
    with pytest.raises(FewshotError, match="distance='manhattan'"):
        build_learner("protonet", encoder, "classification", distance="manhattan")


def test_maml_needs_last_layer_names_or_another_mode():
    class Plain(torch.nn.Module):
        out_dim = 3

        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Embedding(10, 3)

        def forward(self, ids):
            return self.lin(ids)

    with pytest.raises(FewshotError, match="last_layer_names"):
        build_learner("maml", Plain(), "regression")
    learner = build_learner("maml", Plain(), "regression", adapt_encoder="all", inner_steps=1)
    out = learner.fit_predict(np.arange(4), np.array([1.0, 2.0, 3.0, 4.0]), np.arange(4, 9))
    assert out.shape == (5,) and np.isfinite(out).all()


@pytest.mark.parametrize("name,kind", CASES)
def test_fit_predict_leaves_the_learner_untouched(name, kind):
    learner, tasks = make(name, kind)
    learner.train()
    before = {k: v.clone() for k, v in learner.state_dict().items()}
    ep = RandomSampler(6).sample(tasks[0], 0)
    out = learner.fit_predict(ep.support_examples, ep.support_labels, ep.query_examples)
    chunked = learner.fit_predict(
        ep.support_examples, ep.support_labels, ep.query_examples, chunk_size=3
    )
    assert out.shape == (len(ep.query_examples),) and out.dtype == np.float64
    np.testing.assert_allclose(out, chunked, rtol=1e-5, atol=1e-6)
    if kind == "classification":
        assert ((out >= 0) & (out <= 1)).all()
    assert learner.training
    assert all(torch.equal(before[k], v) for k, v in learner.state_dict().items())
    assert all(p.grad is None for p in learner.parameters())


@pytest.mark.parametrize("name", [n for n, k in CASES if k == "regression"])
def test_regression_is_shift_equivariant(name):
    # Ratings are centred on the support mean inside the learner: shifting every rating by c
    # shifts every prediction by c.
    learner, tasks = make(name, "regression")
    ep = RandomSampler(6).sample(tasks[0], 0)
    out = learner.fit_predict(ep.support_examples, ep.support_labels, ep.query_examples)
    shifted = learner.fit_predict(ep.support_examples, ep.support_labels + 2.0, ep.query_examples)
    np.testing.assert_allclose(shifted, out + 2.0, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("name", [n for n, k in CASES if k == "regression"])
def test_an_encoder_label_prior_makes_the_learner_model_residuals(name):
    # With encoder.label_prior, a learner fits ``label - prior`` and adds the prior back:
    # without offset shrinkage, the learner without a prior fed residual labels, plus the
    # query's prior.
    learner, tasks = make(name, "regression", offset_shrinkage=0.0)
    prior = torch.linspace(-2.0, 3.0, 60)
    ep = RandomSampler(6, n_query=8).sample(tasks[0], 0)
    s, y, q = ep.support_examples, ep.support_labels, ep.query_examples
    without = learner.fit_predict(s, y, q)
    residual_fit = learner.fit_predict(s, y - prior[s].numpy(), q) + prior[q].numpy()
    episodes = list(sample_episodes(tasks, RandomSampler(5, n_query=6), 3, seed=1))
    torch.manual_seed(0)
    residual_loss = learner.loss(EpisodeBatch.from_episodes([
        dataclasses.replace(e, support_labels=e.support_labels - prior[e.support_examples].numpy(),
                            query_labels=e.query_labels - prior[e.query_examples].numpy())
        for e in episodes]))

    learner.encoder.label_prior = lambda ids: prior.to(ids.device)[ids]
    with_prior = learner.fit_predict(s, y, q)
    np.testing.assert_allclose(with_prior, residual_fit, rtol=1e-5, atol=1e-4)
    assert np.abs(with_prior - without).max() > 0.1
    with encoded_once(learner, tasks):  # the evaluation's frozen trunk keeps the prior
        np.testing.assert_allclose(learner.fit_predict(s, y, q), with_prior, rtol=1e-5, atol=1e-4)
    torch.manual_seed(0)
    torch.testing.assert_close(learner.loss(EpisodeBatch.from_episodes(episodes)), residual_loss)

    # Offset shrinkage: the user's mean residual counts as if 3 more ratings sat at the prior.
    learner.config.offset_shrinkage = 3.0
    state = learner.adapt(s, y)
    residuals = torch.as_tensor(y) - prior[s]
    assert state.offset.item() == pytest.approx(residuals.sum().item() / (len(s) + 3), abs=1e-5)
    shrunk = learner.fit_predict(s, y, q)
    if hasattr(learner, "fit_predict_many"):  # the batched engine: the same prior and offset
        np.testing.assert_allclose(learner.fit_predict_many([(s, y, q)])[0], shrunk,
                                   rtol=1e-5, atol=1e-4)
