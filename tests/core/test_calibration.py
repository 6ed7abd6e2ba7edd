"""core/calibration.py: temperature and Platt scaling of probabilities, the split-conformal
rating interval, the hook in core/fit (validation tasks only), and how a calibration is
saved, loaded (weights_only=True) and applied by ``fit_predict``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from fewshot_apps.core.calibration import (
    Calibration,
    binary_nll,
    calibration_method,
    conformal_quantile,
    fit_calibration,
    fit_platt,
    fit_temperature,
    model_calibration,
)
from fewshot_apps.core.encoders import TableEncoder
from fewshot_apps.core.fit import build_model, train_learner
from fewshot_apps.core.learners import build_learner
from fewshot_apps.core.metrics import ece
from fewshot_apps.core.persistence import load_model, read_model_config, save_model
from fewshot_apps.core.synthetic import PlantedProblem, quick_train
from fewshot_apps.core.tasks import RandomSampler
from fewshot_apps.errors import FewshotError

torch.set_num_threads(1)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def synthetic(n: int, temperature: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose labels are drawn from ``sigmoid(logit / temperature)``."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 4.0, n)
    labels = (rng.random(n) < sigmoid(logits / temperature)).astype(np.float64)
    return logits, labels


# ------------------------------------------------------------------------ temperature, Platt


@pytest.mark.parametrize("true_t", [0.5, 1.0, 2.5])
def test_fit_temperature_recovers_a_known_temperature(true_t):
    logits, labels = synthetic(40_000, true_t, seed=int(true_t * 10))
    assert fit_temperature(logits, labels) == pytest.approx(true_t, rel=0.05)


def test_fit_temperature_finds_the_nll_minimum():
    logits, labels = synthetic(2_000, 3.0, seed=1)
    t = fit_temperature(logits, labels)
    best = binary_nll(logits / t, labels)
    for other in (t * 0.9, t * 1.1):
        assert binary_nll(logits / other, labels) > best


def test_calibration_reduces_nll_and_ece_of_an_overconfident_model():
    # The model's logits are 4x the true ones: far too sure of itself.
    fit_logits, fit_labels = synthetic(5_000, 4.0, seed=2)
    test_logits, test_labels = synthetic(5_000, 4.0, seed=3)
    for method in ("temperature", "platt"):
        cal = (Calibration("temperature", {"temperature": fit_temperature(fit_logits, fit_labels)})
               if method == "temperature"
               else Calibration("platt", dict(zip("ab", fit_platt(fit_logits, fit_labels)))))
        before_p, after_p = sigmoid(test_logits), cal.probabilities(sigmoid(test_logits))
        assert binary_nll(cal.logits(test_logits), test_labels) < 0.8 * binary_nll(
            test_logits, test_labels)
        assert ece(test_labels, after_p) < 0.5 * ece(test_labels, before_p)
        assert ece(test_labels, after_p) < 0.03
        # monotone: the ranking (ROC-AUC) is unchanged
        assert np.array_equal(np.argsort(before_p, kind="stable"),
                              np.argsort(after_p, kind="stable"))


def test_platt_recovers_a_slope_and_offset_and_never_reverses_the_ranking():
    rng = np.random.default_rng(4)
    z = rng.normal(0, 2, 30_000)
    y = (rng.random(len(z)) < sigmoid(0.5 * z - 1.0)).astype(float)
    a, b = fit_platt(z, y)
    assert a == pytest.approx(0.5, rel=0.08) and b == pytest.approx(-1.0, abs=0.08)
    a, _ = fit_platt(-z, y)  # logits that rank the wrong way: flattened, never flipped
    assert a <= 1e-3


def test_fitting_refuses_bad_inputs():
    with pytest.raises(ValueError, match="0/1"):
        fit_temperature([0.1, 0.2], [0.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        fit_temperature([np.inf, 0.2], [0.0, 1.0])


# ------------------------------------------------------------------------ conformal


def test_conformal_quantile_matches_a_hand_computation():
    residuals = np.array([0.5, -3.0, 1.0, 2.0, -0.25, 4.0, 1.5, -2.5, 0.75, 3.5])
    # n = 10: rank ceil(11 * 0.9) = 10, the largest |r| = 4.0
    assert conformal_quantile(residuals, 0.9) == 4.0
    # rank ceil(11 * 0.5) = 6 of |r| sorted .25 .5 .75 1 1.5 2 2.5 3 3.5 4 -> 2.0
    assert conformal_quantile(residuals, 0.5) == 2.0
    # n = 19: rank ceil(20 * 0.9) = 18 exactly (not 19 from 18.000000000000004)
    assert conformal_quantile(np.arange(1, 20), 0.9) == 18.0
    # n = 8: ceil(9 * 0.9) = 9 > 8, no finite interval
    assert math.isinf(conformal_quantile(np.arange(8), 0.9))
    # the ceil((n+1)*0.9)/n empirical quantile
    r = np.random.default_rng(0).exponential(size=101)
    assert conformal_quantile(r) == np.quantile(np.abs(r), math.ceil(102 * 0.9) / 101,
                                                method="inverted_cdf")


def test_split_conformal_covers_at_least_90_percent_on_exchangeable_data():
    rng = np.random.default_rng(5)
    coverages = []
    for _ in range(400):
        calibration = rng.standard_t(3, size=60)  # heavy tails: no Gaussian shortcut
        test = rng.standard_t(3, size=500)
        q = conformal_quantile(calibration, 0.9)
        coverages.append(np.mean(np.abs(test) <= q))
    mean = float(np.mean(coverages))
    assert mean >= 0.895  # E[coverage] >= 0.9 (up to the Monte Carlo error)
    assert mean <= 0.9 + 1 / 61 + 0.005  # and at most 1 / (n + 1) above it


def test_fit_calibration_on_episodes_gives_an_interval_and_refuses_too_few():
    class Echo:
        kind = "regression"

        def fit_predict(self, s, y, q):
            return np.asarray(q, dtype=float)  # the prediction is the item id

    class Ep:
        def __init__(self, task, query, labels):
            self.task, self.query_examples, self.query_labels = task, np.asarray(query), labels
            self.support_examples, self.support_labels = np.array([0]), np.array([3.0])

    rng = np.random.default_rng(6)
    episodes = [Ep(f"u{i}", np.arange(10), np.arange(10) + rng.normal(0, 1, 10))
                for i in range(20)]
    cal = fit_calibration(Echo(), episodes, "regression")
    residuals = np.concatenate([ep.query_labels - ep.query_examples for ep in episodes])
    assert cal.method == "conformal" and cal.has_interval
    assert cal.half_width == conformal_quantile(residuals, 0.9)
    assert cal.info["n_predictions"] == 200 and cal.info["n_tasks"] == 20
    low, high = cal.interval(np.array([3.0]))
    assert high[0] - low[0] == pytest.approx(2 * cal.half_width)
    few = fit_calibration(Echo(), episodes[:1], "regression")
    assert few.method == "none" and "fewer than 20" in few.info["reason"]
    none = fit_calibration(Echo(), [], "regression")
    assert none.method == "none" and "no validation episode" in none.info["reason"]


# ------------------------------------------------------------------------ settings


def test_the_calibration_setting():
    assert calibration_method({}, "classification") == ("temperature", {})
    assert calibration_method({"calibration": "platt", "steps": 3}, "classification") == (
        "platt", {"steps": 3})
    assert calibration_method({"calibration": "auto"}, "regression")[0] == "conformal"
    assert calibration_method({"calibration": "none"}, "regression")[0] == "none"
    with pytest.raises(FewshotError, match="does not apply to regression"):
        calibration_method({"calibration": "platt"}, "regression")


# ------------------------------------------------------------------------ saving, loading


def trained(kind="classification"):
    torch.manual_seed(0)
    problem = PlantedProblem.make(kind, n_examples=50, n_features=5, seed=0)
    learner = build_learner("protonet" if kind == "classification" else "cnp",
                            TableEncoder(problem.features, hidden=8, out_dim=4), kind)
    tasks = problem.tasks(4, examples_per_task=20, seed=1)
    quick_train(learner, tasks, RandomSampler(6, n_query=6), steps=3, meta_batch_size=2)
    return learner, tasks


def test_a_calibration_survives_save_and_load_and_is_applied(tmp_path, monkeypatch):
    learner, tasks = trained()
    ep = RandomSampler(6).sample(tasks[0], 0)
    args = (ep.support_examples, ep.support_labels, ep.query_examples)
    raw = learner.fit_predict(*args)
    logits = learner.fit_predict_logits(*args)
    learner.calibration = Calibration("temperature", {"temperature": 2.0},
                                      {"fitted_on": "validation", "n_predictions": 50})
    np.testing.assert_allclose(learner.fit_predict(*args), sigmoid(logits / 2.0), rtol=1e-5)
    assert not np.allclose(learner.fit_predict(*args), raw)

    loads = []
    original = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: loads.append(k) or original(*a, **k))
    save_model(learner, tmp_path)
    config = read_model_config(tmp_path)
    assert config["calibration"] == {"method": "temperature", "temperature": 2.0,
                                     "fitted_on": "validation", "n_predictions": 50}
    loaded = load_model(tmp_path)
    assert loads and all(k.get("weights_only") is True for k in loads)
    assert loaded.calibration == learner.calibration
    np.testing.assert_array_equal(loaded.fit_predict(*args), learner.fit_predict(*args))


def test_an_old_model_without_a_calibration_loads_uncalibrated(tmp_path):
    learner, tasks = trained()
    save_model(learner, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert "calibration" not in config  # an uncalibrated learner: as before calibrations
    loaded = load_model(tmp_path)
    cal = model_calibration(loaded)
    assert cal.method == "none" and not cal.calibrated and "saved before" in cal.describe()
    ep = RandomSampler(6).sample(tasks[0], 0)
    args = (ep.support_examples, ep.support_labels, ep.query_examples)
    np.testing.assert_array_equal(loaded.fit_predict(*args), learner.fit_predict(*args))


def test_a_malformed_calibration_entry_names_the_file(tmp_path):
    learner, _ = trained()
    save_model(learner, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["calibration"] = {"method": "temperature"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(FewshotError, match=r"config\.json: calibration 'temperature' lacks "
                                           "temperature"):
        load_model(tmp_path)
    config["calibration"] = {"method": "magic"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(FewshotError, match="unknown calibration method 'magic'"):
        load_model(tmp_path)


# ------------------------------------------------------------------------ the hook in fit


class Data:
    """A DomainDataset of random features with validation episodes (see tests/core/test_fit)."""

    domain = "calibration-fake"
    protocols = ("k-shot",)
    validation_metric = "ROC-AUC"
    unvalidated_reason = "no validation task"

    def __init__(self, label_kind="classification", n_valid=3):
        from fewshot_apps.core.tasks import TaskSet

        self.name = "fake"
        self.label_kind = label_kind
        self.episode_defaults = {"shots": None, "support_size": 6, "n_query": 8,
                                 "valid_draws": 3}
        problem = PlantedProblem.make(label_kind, n_examples=80, n_features=5, seed=0)
        self.features = problem.features
        self.taskset = TaskSet(self.name, label_kind,
                               problem.tasks(4, examples_per_task=40, seed=1, prefix="train"),
                               problem.tasks(n_valid, examples_per_task=40, seed=2,
                                             prefix="valid"),
                               problem.tasks(2, examples_per_task=40, seed=3, prefix="test"))
        self.drawn = []

    def make_encoder(self, settings):
        return TableEncoder(self.features, **{k: int(v) for k, v in settings.items()})

    def train_sampler(self, episode):
        return RandomSampler(int(episode["support_size"]), episode["n_query"])

    def check_trainable(self, episode):
        pass

    def validator(self, episode, seed):
        from fewshot_apps.core.validation import episode_validator

        return episode_validator(self.taskset.valid, self.train_sampler(episode), seed=seed)

    def validation_episodes(self, episode, seed):
        self.drawn.append(seed)
        sampler = RandomSampler(int(episode["support_size"]))
        return [sampler.sample(t, 100 * d + seed) for t in self.taskset.valid
                for d in range(episode["valid_draws"])]

    def build_baseline(self, name, seed=0):
        class Mean:
            kind = "regression"

            def fit_predict(self, s, y, q):
                return np.full(len(q), float(np.mean(y)))

        return Mean()

    def saved_model_config(self):
        return {"dataset": self.name, "domain": self.domain}


SMALL = {"steps": 2, "meta_batch_size": 2, "eval_every": 2, "encoder.hidden": 8,
         "encoder.out_dim": 4, "encoder.depth": 1, "seed": 7}


@pytest.mark.parametrize("kind,method", [("classification", "temperature"),
                                         ("classification", "platt"),
                                         ("regression", "conformal")])
def test_training_fits_the_calibration_on_validation_tasks_and_saves_it(tmp_path, kind,
                                                                        method):
    data = Data(kind)
    learner, _ = train_learner(data, "cnp", tmp_path, {**SMALL, "calibration": method},
                               progress=False)
    assert data.drawn == [7]  # the run's seed, as its validator
    cal = learner.calibration
    assert cal.method == method and cal.info["n_episodes"] == 9
    assert cal.info["n_predictions"] == 9 * 34  # 40 examples - 6 support per episode
    saved = read_model_config(tmp_path)["calibration"]
    assert saved == cal.to_config()
    loaded = load_model(tmp_path)
    assert loaded.calibration == cal
    if kind == "classification":
        assert cal.info["nll_after"] <= cal.info["nll_before"] + 1e-9
    else:
        assert cal.has_interval and cal.half_width > 0


def test_a_model_without_validation_tasks_stays_uncalibrated_and_says_so(tmp_path):
    learner, _ = train_learner(Data(n_valid=0), "protonet", tmp_path, SMALL, progress=False)
    saved = read_model_config(tmp_path)["calibration"]
    assert saved["method"] == "none" and "no validation episode" in saved["reason"]
    assert not load_model(tmp_path).calibration.calibrated
    train_learner(Data(), "protonet", tmp_path / "off", {**SMALL, "calibration": "none"},
                  progress=False)
    assert read_model_config(tmp_path / "off")["calibration"]["reason"] == (
        "calibration=none was asked for")


def test_transfer_and_classic_rating_baselines_get_their_interval(tmp_path):
    from fewshot_apps.core.registry import MODELS

    data = Data("regression")
    model = build_model(data, "linear-probe", tmp_path, SMALL, pretrain_steps=2,
                        progress=False)
    assert model.calibration.has_interval
    assert read_model_config(tmp_path)["calibration"] == model.calibration.to_config()
    assert load_model(tmp_path).calibration == model.calibration
    MODELS.add("calibration-fake-mean", f"{__name__}:Data", family="classic",
               label_kinds=("regression",), domain="calibration-fake", summary="support mean")
    try:
        classic = build_model(data, "calibration-fake-mean", tmp_path / "classic", SMALL)
    finally:
        MODELS.remove("calibration-fake-mean")
    assert classic.calibration.method == "conformal" and classic.calibration.has_interval
