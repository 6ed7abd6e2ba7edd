"""Transfer baselines (finetune, linear-probe): multitask pre-training helps on planted
problems, runs are repeatable, and the interface matches the learners'."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from fewshot_apps.core.baselines import (
    FinetuneBaseline,
    LinearProbeBaseline,
    build_transfer_baseline,
    transfer_baseline_class,
)
from fewshot_apps.core.encoders import TableEncoder
from fewshot_apps.core.evaluation import encoded_once
from fewshot_apps.core.synthetic import PlantedProblem, score
from fewshot_apps.core.tasks import BalancedSampler, RandomSampler, Task
from fewshot_apps.errors import FewshotError

torch.set_num_threads(1)

FAST = {"batch_size": 128, "lr": 3e-3, "device": "cpu"}


def _encoder(problem: PlantedProblem, seed: int = 0) -> TableEncoder:
    torch.manual_seed(seed)
    return TableEncoder(problem.features, hidden=32, out_dim=16, depth=2)


def _sampler(kind: str):
    return BalancedSampler(5) if kind == "classification" else RandomSampler(10)


@pytest.fixture(scope="module", params=["classification", "regression"])
def planted(request):
    """A planted problem, a ``finetune`` pre-trained on its training tasks (200 steps), and
    the scores of an un-pre-trained twin, so that tests share one pre-training per kind."""
    kind = request.param
    problem = PlantedProblem.make(kind, seed=0)
    train = problem.tasks(60, seed=100, prefix="train")
    test = problem.tasks(30, seed=200, prefix="test")
    untrained = build_transfer_baseline("finetune", _encoder(problem), kind, **FAST)
    before = score(untrained, test, _sampler(kind))
    model = build_transfer_baseline("finetune", _encoder(problem), kind, **FAST)
    result = model.pretrain(train, steps=200)
    return kind, problem, train, test, model, result, before


def _beats_chance(kind: str, result: dict) -> bool:
    if kind == "classification":
        return result["auc"] >= 0.8
    return result["mse"] <= 0.5 * result["baseline_mse"]  # baseline: the support mean


def test_pretraining_reduces_the_multitask_loss(planted):
    *_, result, _ = planted
    assert result.steps_run == 200 and len(result.losses) == 200
    assert result.final_loss < 0.6 * result.initial_loss
    assert np.mean(result.losses[-20:]) < np.mean(result.losses[:20])
    assert result.best_step is None  # no validation asked for


def test_finetune_beats_chance_and_the_unpretrained_encoder(planted):
    kind, _, _, test, model, _, before = planted
    after = score(model, test, _sampler(kind))
    assert _beats_chance(kind, after)
    key = "auc" if kind == "classification" else "mse"
    assert (after[key] > before[key]) if kind == "classification" else (after[key] < before[key])


def test_finetune_with_the_last_layer_beats_chance(planted):
    kind, _, _, test, model, _, _ = planted
    tuned = FinetuneBaseline(model.encoder, kind, {**FAST, "tune_last_layer": True})
    tuned.head_init.copy_(model.head_init)
    weights = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    assert _beats_chance(kind, score(tuned, test, _sampler(kind)))
    for k, v in model.encoder.state_dict().items():  # the encoder itself never changes
        torch.testing.assert_close(v, weights[k])


def test_linear_probe_on_the_shared_pretrained_encoder_beats_chance(planted):
    kind, _, _, test, model, _, _ = planted
    probe = LinearProbeBaseline(model.encoder, kind)
    assert probe.name == "linear-probe" and probe.family == "transfer"
    assert _beats_chance(kind, score(probe, test, _sampler(kind)))


class _TableEmbeddings(torch.nn.Module):
    """An encoder whose embeddings are a fixed table ``[n, d]``."""

    def __init__(self, table: np.ndarray):
        super().__init__()
        self.register_buffer("table", torch.as_tensor(table, dtype=torch.float32))
        self.unused = torch.nn.Linear(1, 1)  # a parameter, for the device
        self.out_dim = table.shape[1]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.table[ids]


def test_linear_probe_ratings_survive_a_dimension_that_is_flat_on_the_support():
    """10 rated items whose dimension 0 barely varies, queries on which it does: scaling that
    dimension by its support spread made the predictions explode (MAE 31 here, 1.10 on
    MovieLens); the centred ridge, its strength chosen by leave-one-out, stays close."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8))
    x[:10, 0] = 1e-3 * rng.normal(size=10)
    y = 3.0 + 0.3 * x[:, 1] + 0.1 * rng.normal(size=200)
    probe = LinearProbeBaseline(_TableEmbeddings(x), "regression")
    out = probe.fit_predict(np.arange(10), y[:10], np.arange(10, 200))
    support_mean_mae = np.abs(y[:10].mean() - y[10:]).mean()
    assert np.abs(out - y[10:]).mean() < 0.8 * support_mean_mae
    # a fixed, huge ridge predicts the support mean
    flat = LinearProbeBaseline(_TableEmbeddings(x), "regression", {"alpha": 1e9})
    np.testing.assert_allclose(flat.fit_predict(np.arange(10), y[:10], np.arange(10, 200)),
                               y[:10].mean(), atol=1e-3)


def test_encoded_once_gives_the_same_scores(planted):
    kind, _, _, test, model, _, _ = planted
    tuned = FinetuneBaseline(model.encoder, kind, {**FAST, "tune_last_layer": True})
    ep = _sampler(kind).sample(test[0], 0)
    args = (ep.support_examples, ep.support_labels, ep.query_examples)
    direct = tuned.fit_predict(*args)
    with encoded_once(tuned, test[:1]):
        cached = tuned.fit_predict(*args)
    np.testing.assert_allclose(cached, direct, rtol=1e-5, atol=1e-6)
    assert tuned.encoder is model.encoder


def test_outputs_are_probabilities_or_ratings(planted):
    kind, _, _, test, model, _, _ = planted
    ep = _sampler(kind).sample(test[1], 3)
    for baseline in (model, LinearProbeBaseline(model.encoder, kind)):
        out = baseline.fit_predict(ep.support_examples, ep.support_labels, ep.query_examples)
        assert out.shape == (len(ep.query_examples),) and out.dtype == np.float64
        if kind == "classification":
            assert ((out > 0) & (out < 1)).all()
        else:  # ratings around the support's, not centred values
            assert abs(out.mean() - ep.support_labels.mean()) < 1.5


def _tiny(kind: str = "classification", seed: int = 0):
    problem = PlantedProblem.make(kind, n_examples=120, seed=0)
    model = build_transfer_baseline("finetune", _encoder(problem, seed=7), kind, seed=seed, **FAST)
    return problem, model


def test_same_seed_same_run_other_seed_other_run():
    problem, _ = _tiny()
    train = problem.tasks(8, seed=1)
    ep = BalancedSampler(4).sample(problem.tasks(1, seed=2)[0], 0)
    runs = []
    for seed in (0, 0, 1):
        _, model = _tiny(seed=seed)
        rng_before = torch.get_rng_state()
        result = model.pretrain(train, steps=15)
        assert torch.equal(torch.get_rng_state(), rng_before)  # the caller's RNG is untouched
        runs.append((result.losses, model.fit_predict(ep.support_examples, ep.support_labels, ep.query_examples)))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert runs[0][0] != runs[2][0]


def test_validation_keeps_the_best_step_and_stops_early():
    problem, _ = _tiny()
    model = build_transfer_baseline("finetune", _encoder(problem), "classification",
                                    eval_every=5, patience=2, **FAST)
    scores = iter([0.7, 0.9, 0.8, 0.6, 0.5, 0.4])
    seen = []

    def valid_fn(baseline):
        seen.append({k: v.clone() for k, v in baseline.encoder.state_dict().items()})
        return next(scores)

    result = model.pretrain(problem.tasks(8, seed=1), steps=100, valid_fn=valid_fn)
    assert result.best_step == 10 and result.best_valid == 0.9
    assert result.stopped_early and result.steps_run == 20
    for k, v in model.encoder.state_dict().items():  # the best weights are back
        torch.testing.assert_close(v, seen[1][k])


def test_default_validation_on_valid_tasks():
    problem, model = _tiny()
    model.config.eval_every = 10
    result = model.pretrain(problem.tasks(8, seed=1), problem.tasks(3, seed=3), steps=20,
                            valid_sampler=BalancedSampler(4))
    assert result.best_step in (10, 20) and 0.0 <= result.best_valid <= 1.0


def test_one_class_support_and_bad_inputs():
    _, model = _tiny()
    np.testing.assert_array_equal(model.fit_predict([0, 1], [1, 1], [2, 3]), np.ones(2))
    assert model.fit_predict([0, 1], [0, 1], []).shape == (0,)
    with pytest.raises(FewshotError, match="0/1"):
        model.fit_predict([0, 1], [0, 2], [3])
    with pytest.raises(FewshotError, match="0/1"):
        model.pretrain([Task("t", [0, 1], [0.0, 3.0])], steps=1)
    with pytest.raises(FewshotError, match="unknown transfer baseline 'mt'; known: finetune, "
                       "linear-probe$"):
        build_transfer_baseline("mt", model.encoder, "classification")
    with pytest.raises(FewshotError, match="unknown transfer baseline 'protonet'"):
        build_transfer_baseline("protonet", model.encoder, "classification")
    with pytest.raises(FewshotError, match="unknown option"):
        build_transfer_baseline("finetune", model.encoder, "classification", head_stepz=3)
    parsed = build_transfer_baseline("linear-probe", model.encoder, "regression", C="0.5", steps="7")
    assert parsed.config.C == 0.5 and parsed.config.steps == 7
    assert transfer_baseline_class("finetune") is FinetuneBaseline
    assert transfer_baseline_class("linear-probe") is LinearProbeBaseline
    assert parsed.name == LinearProbeBaseline.name == "linear-probe"
    assert parsed.describe()["family"] == "transfer"


# Every device this machine has (CI: the CPU only), never skipped.
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_runs_on_device(device):
    problem = PlantedProblem.make("regression", n_examples=120, seed=0)
    model = build_transfer_baseline("finetune", _encoder(problem), "regression",
                                    **{**FAST, "device": device, "tune_last_layer": True})
    model.pretrain(problem.tasks(8, seed=1), steps=10)
    assert model.encoder.last.weight.device.type == device
    ep = RandomSampler(10).sample(problem.tasks(1, seed=2)[0], 0)
    out = model.fit_predict(ep.support_examples, ep.support_labels, ep.query_examples)
    assert np.isfinite(out).all()
    probe = LinearProbeBaseline(model.encoder, "regression")
    assert np.isfinite(probe.fit_predict(ep.support_examples, ep.support_labels, ep.query_examples)).all()


@pytest.mark.parametrize("name", ["finetune", "linear-probe"])
def test_saved_and_loaded_baseline_predicts_the_same(planted, tmp_path, name):
    from fewshot_apps.core.persistence import load_model, save_model

    kind, problem, _, test, model, _, _ = planted
    baseline = model if name == "finetune" else LinearProbeBaseline(model.encoder, kind, FAST)
    baseline.head_init.copy_(model.head_init)
    save_model(baseline, tmp_path / name, {"encoder": {"name": "table"}})
    loaded = load_model(tmp_path / name, build_encoder=lambda config: _encoder(problem, seed=9))
    assert type(loaded) is type(baseline) and loaded.pretrained and loaded.kind == kind
    assert loaded.describe() == baseline.describe()
    ep = _sampler(kind).sample(test[0], 3)
    args = (ep.support_examples, ep.support_labels, ep.query_examples)
    np.testing.assert_allclose(loaded.fit_predict(*args), baseline.fit_predict(*args),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["finetune", "linear-probe"])
def test_an_encoder_label_prior_is_modelled_as_a_residual(name):
    # Pre-training and a new task's head both fit ``rating - prior``; predictions add it back.
    problem = PlantedProblem.make("regression", n_examples=120, seed=0)
    prior = torch.linspace(-2.0, 3.0, 120)
    encoder = _encoder(problem, seed=7)
    encoder.label_prior = lambda ids: prior.to(ids.device)[ids]
    model = build_transfer_baseline(name, encoder, "regression", seed=0, **FAST)
    train = problem.tasks(8, seed=1)
    model.pretrain(train, steps=10)
    twin = build_transfer_baseline(name, _encoder(problem, seed=7), "regression", seed=0, **FAST)
    shifted = [dataclasses.replace(t, labels=t.labels - prior[t.examples].numpy()) for t in train]
    twin.pretrain(shifted, steps=10)
    for a, b in zip(model.encoder.parameters(), twin.encoder.parameters()):
        torch.testing.assert_close(a, b)
    ep = RandomSampler(10).sample(problem.tasks(1, seed=2)[0], 0)
    s, y, q = ep.support_examples, ep.support_labels, ep.query_examples
    np.testing.assert_allclose(
        model.fit_predict(s, y, q),
        # float64 residuals, as the model forms them: the support split is seeded by its labels
        twin.fit_predict(s, y.astype(np.float64) - prior[s].double().numpy(), q)
        + prior[q].numpy(), rtol=1e-5, atol=1e-4)


def test_a_saved_baseline_takes_no_learner_settings(planted, tmp_path):
    from fewshot_apps.core.persistence import load_model, save_model

    kind, problem, _, _, model, _, _ = planted
    save_model(model, tmp_path, {"encoder": {"name": "table"}})
    with pytest.raises(FewshotError, match=r"config\.json: 'finetune' is a transfer baseline: "
                                           r"it takes no learner settings at evaluation"):
        load_model(tmp_path, build_encoder=lambda config: _encoder(problem, seed=9),
                   learner_settings={"inner_steps": 3})
