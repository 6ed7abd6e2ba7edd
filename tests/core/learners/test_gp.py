"""The deep-kernel GP learner (dkt): an exact GP against scikit-learn, the marginal-likelihood
fit, padding over a meta-batch, the jitter retry, and meta-training on a planted problem."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import norm
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, Matern, WhiteKernel

from fewshot_apps.core.learners import EpisodeBatch, build_learner
from fewshot_apps.core.learners.gp import MEAN, DeepKernelGP
from fewshot_apps.core.synthetic import PlantedProblem, run_planted
from fewshot_apps.core.tasks import RandomSampler, sample_episodes
from fewshot_apps.errors import FewshotError

torch.set_num_threads(1)


class FixedEmbeddings(torch.nn.Module):
    """An encoder returning rows of a fixed table: known embeddings, no parameters."""

    def __init__(self, table):
        super().__init__()
        self.register_buffer("table", torch.as_tensor(table, dtype=torch.float32))
        self.out_dim = self.table.shape[1]

    def forward(self, ids):
        return self.table[ids]


LENGTHSCALE, OUTPUTSCALE, NOISE, CONST = 0.8, 1.3, 0.05, 0.3


def fixed_gp(kind, table, kernel="rbf", **config):
    learner = build_learner(
        "dkt",
        FixedEmbeddings(table),
        kind,
        kernel=kernel,
        fit_steps=0,
        jitter=0.0,
        init_lengthscale=LENGTHSCALE,
        init_outputscale=OUTPUTSCALE,
        init_noise=NOISE,
        **config,
    )
    with torch.no_grad():
        learner.init_raw[MEAN] = CONST
    return learner


def sklearn_gp(kernel, x, y, xq):
    """Mean and variance (noise included) of the exact zero-mean GP, hyperparameters fixed."""
    base = RBF(LENGTHSCALE) if kernel == "rbf" else Matern(LENGTHSCALE, nu=2.5)
    gp = GaussianProcessRegressor(
        ConstantKernel(OUTPUTSCALE) * base + WhiteKernel(NOISE), optimizer=None, alpha=1e-12
    ).fit(x, y)
    mean, std = gp.predict(xq, return_std=True)
    return mean, std**2


@pytest.mark.parametrize("kernel", ["rbf", "matern52"])
def test_regression_posterior_is_the_exact_gp(kernel):
    rng = np.random.default_rng(0)
    table = rng.normal(size=(14, 3))
    ratings = rng.uniform(1.0, 5.0, size=8)
    learner = fixed_gp("regression", table, kernel)
    state = learner.adapt(np.arange(8), ratings)
    query = np.arange(8, 14)
    with torch.no_grad():
        got_mean = learner.predict(state, query).numpy()
        got_var = learner.predictive_variance(state, query).numpy()
    # The learner centres ratings on the support mean and has a constant mean CONST on top.
    offset = ratings.mean() + CONST
    mean, var = sklearn_gp(kernel, table[:8], ratings - offset, table[8:])
    np.testing.assert_allclose(got_mean, mean + offset, atol=1e-4)
    np.testing.assert_allclose(got_var, var, atol=1e-4)
    assert var.max() > NOISE + 0.1  # the queries are not all on the support: a real test


def test_classification_is_the_probit_of_the_exact_gp_on_plus_minus_one_targets():
    rng = np.random.default_rng(1)
    table = rng.normal(size=(20, 4))
    labels = np.array([1, 0, 1, 1, 0, 0, 1, 0, 0, 1], dtype=np.float32)
    learner = fixed_gp("classification", table)
    query = np.arange(10, 20)
    probs = learner.fit_predict(np.arange(10), labels, query)
    mean, var = sklearn_gp("rbf", table[:10], 2 * labels - 1 - CONST, table[10:])
    latent_var = var - NOISE
    expected = norm.cdf((mean + CONST) / np.sqrt(1.0 + latent_var))
    np.testing.assert_allclose(probs, expected, atol=1e-4)
    state = learner.adapt(np.arange(10), labels)
    with torch.no_grad():
        np.testing.assert_allclose(
            learner.predictive_variance(state, query).numpy(), latent_var, atol=1e-4
        )


def test_the_marginal_likelihood_fit_improves_on_the_initial_hyperparameters():
    x = np.linspace(-2.0, 2.0, 25)[:, None]
    y = np.sin(2.0 * x[:, 0])  # smooth; the initial lengthscale and noise are too large
    learner = build_learner(
        "dkt",
        FixedEmbeddings(x),
        "regression",
        init_lengthscale=2.0,
        init_noise=0.5,
        fit_steps=20,
    )
    state = learner.adapt(np.arange(25), y)
    fitted = state.inner.raw[0].detach()
    emb, targets = learner.encoder.table, torch.as_tensor(y - y.mean(), dtype=torch.float32)
    with torch.no_grad():
        before = learner.log_marginal_likelihood(emb, targets).item()
        after = learner.log_marginal_likelihood(emb, targets, fitted).item()
    # The likelihood itself is sklearn's (per support row) at the initial values.
    reference = GaussianProcessRegressor(
        ConstantKernel(1.0) * RBF(2.0) + WhiteKernel(0.5), optimizer=None, alpha=1e-12
    ).fit(x, y - y.mean())
    assert before == pytest.approx(reference.log_marginal_likelihood_value_ / 25, abs=1e-4)
    assert after > before + 0.5
    hyp = DeepKernelGP.hyperparameters(fitted)
    initial = DeepKernelGP.hyperparameters(learner.init_raw.detach())
    assert hyp["noise"] < initial["noise"] and hyp["lengthscale"] < initial["lengthscale"]


def planted(kind, seed=0, **config):
    torch.manual_seed(seed)
    problem = PlantedProblem.make(kind, n_examples=80, n_features=6, seed=seed)
    from fewshot_apps.core.encoders import TableEncoder

    learner = build_learner(
        "dkt", TableEncoder(problem.features, hidden=8, out_dim=4), kind, **config
    )
    return learner, problem.tasks(6, examples_per_task=30, seed=seed)


@pytest.mark.parametrize("kind", ["classification", "regression"])
def test_a_padded_meta_batch_equals_each_task_alone(kind):
    learner, tasks = planted(kind, fit_steps=5)
    triples, episodes = [], []
    for i, size in enumerate([3, 9, 6, 14]):
        ep = RandomSampler(size, n_query=4 + i).sample(tasks[i], i)
        triples.append((ep.support_examples, ep.support_labels, ep.query_examples))
        episodes.append(ep)
    many = learner.fit_predict_many(triples)
    for (s, y, q), got in zip(triples, many):
        np.testing.assert_allclose(got, learner.fit_predict(s, y, q), rtol=1e-5, atol=1e-5)
    batch_loss = learner.loss(EpisodeBatch.from_episodes(episodes))
    alone = torch.stack([learner.loss(EpisodeBatch.from_episodes([e])) for e in episodes])
    torch.testing.assert_close(batch_loss, alone.mean(), rtol=1e-5, atol=1e-5)


def test_the_meta_gradient_reaches_the_encoder_and_the_initial_hyperparameters():
    learner, tasks = planted("classification")
    batch = EpisodeBatch.from_episodes(
        list(sample_episodes(tasks, RandomSampler(8, n_query=8), 3, seed=0))
    )
    learner.loss(batch).backward()
    assert learner.init_raw.grad is not None and learner.init_raw.grad.abs().sum() > 0
    assert all(p.grad is not None for p in learner.encoder.parameters())
    assert learner.encoder.last.weight.grad.abs().sum() > 0


def test_a_failing_cholesky_retries_with_more_jitter_for_that_task_only():
    learner, _ = planted("regression", jitter=1e-6)
    good = torch.tensor([[2.0, 0.5], [0.5, 1.0]])
    bad = torch.tensor([[1.0, 1.0], [1.0, 1.0 - 5e-3]])  # eigenvalue ~ -2.5e-3 < -noise
    noise = torch.full((2,), 1e-3)
    mask = torch.ones(2, 2, dtype=torch.bool)
    with pytest.raises(RuntimeError):  # not positive definite with the noise alone
        torch.linalg.cholesky(bad + 1e-3 * torch.eye(2))
    chol = learner._cholesky(torch.stack([good, bad]), noise, mask)
    assert torch.isfinite(chol).all()
    alone = learner._cholesky(good[None], noise[:1], mask[:1])
    torch.testing.assert_close(chol[0], alone[0])  # the good task kept its jitter
    nan = torch.full((1, 2, 2), float("nan"))
    with pytest.raises(FewshotError, match="not positive definite even with jitter"):
        learner._cholesky(nan, noise[:1], mask[:1])


def test_short_meta_training_learns_a_planted_problem():
    result = run_planted("dkt", "classification", steps=100)
    assert result["auc"] >= 0.75
    assert run_planted("dkt", "classification", steps=0)["auc"] < result["auc"] - 0.1


def test_regression_meta_training_beats_the_support_mean():
    result = run_planted("dkt", "regression", steps=100)
    assert result["mse"] <= 0.7 * result["baseline_mse"]


def test_probabilities_lie_strictly_inside_the_unit_interval():
    learner, tasks = planted("classification")
    ep = RandomSampler(10).sample(tasks[0], 0)
    probs = learner.fit_predict(ep.support_examples, ep.support_labels, ep.query_examples)
    assert ((probs > 0) & (probs < 1)).all()
    state = learner.adapt(ep.support_examples, ep.support_labels)
    with torch.no_grad():
        logits = learner.predict(state, ep.query_examples)
    np.testing.assert_allclose(torch.sigmoid(logits).double().numpy(), probs, rtol=1e-6)


@pytest.mark.parametrize("kernel", ["rbf", "matern52", "linear"])
def test_deterministic_and_finite_for_every_kernel(kernel):
    outs = []
    for _ in range(2):
        learner, tasks = planted("classification", seed=3, kernel=kernel)
        ep = RandomSampler(8).sample(tasks[1], 0)
        outs.append(learner.fit_predict(ep.support_examples, ep.support_labels, ep.query_examples))
    assert np.isfinite(outs[0]).all()
    assert np.array_equal(outs[0], outs[1])


def test_bad_settings_are_clear_errors():
    with pytest.raises(FewshotError, match="fit_steps >= 0"):
        planted("classification", fit_steps=-1)
    with pytest.raises(FewshotError, match="kernel='cosine'"):
        planted("classification", kernel="cosine")


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_the_device_copy_matches_the_cpu(device):
    """Moved to each available device, the learner predicts what its CPU twin predicts, and
    its loss and meta-gradients live on that device."""
    import copy

    learner, tasks = planted("classification", fit_steps=5)
    ep = RandomSampler(10).sample(tasks[0], 0)
    cpu = learner.fit_predict(ep.support_examples, ep.support_labels, ep.query_examples)
    moved = copy.deepcopy(learner).to(device)
    out = moved.fit_predict(ep.support_examples, ep.support_labels, ep.query_examples)
    np.testing.assert_allclose(out, cpu, atol=1e-4)
    batch = EpisodeBatch.from_episodes(
        list(sample_episodes(tasks, RandomSampler(6, n_query=6), 3, seed=0))
    )
    loss = moved.loss(batch.to(device))
    loss.backward()
    assert loss.device.type == device and moved.init_raw.grad.device.type == device


# ---- the fixed kernel (an encoder's untrained similarity added to the learned kernel) -------


class EmbeddingsWithSimilarity(FixedEmbeddings):
    """Known embeddings plus 0/1 fingerprints whose Tanimoto is the encoder's similarity."""

    has_similarity = True

    def __init__(self, table, bits):
        super().__init__(table)
        self.register_buffer("bits", torch.as_tensor(bits, dtype=torch.float32))
        self.unused = torch.nn.Parameter(torch.zeros(1))  # evaluation reads the device off one

    def similarity(self, a, b):
        x, y = self.bits[a], self.bits[b]
        inter = x @ y.T
        return inter / (x.sum(1)[:, None] + y.sum(1)[None, :] - inter)

    def self_similarity(self, ids):
        return torch.ones(len(ids))


def tanimoto_problem(seed=0, n=40, bits=24):
    """Embeddings of pure noise; labels follow the fingerprints (the first 6 bits of a
    prototype active, flipped with noise), so only the fixed kernel carries the task."""
    rng = np.random.default_rng(seed)
    fps = (rng.random((n, bits)) < 0.25).astype(np.float32)
    labels = (fps[:, :6].sum(1) >= 2).astype(np.float32)
    fps[:, 0] = 1.0  # no empty fingerprint
    return rng.normal(size=(n, 3)), fps, labels


W = 0.7


def test_the_fixed_kernel_posterior_is_the_exact_gp_of_the_summed_kernel():
    table, fps, labels = tanimoto_problem()
    learner = build_learner(
        "dkt", EmbeddingsWithSimilarity(table, fps), "classification", fit_steps=0, jitter=0.0,
        init_lengthscale=LENGTHSCALE, init_outputscale=OUTPUTSCALE, init_noise=NOISE,
        fixed_kernel=True, init_fixed_scale=W,
    )
    with torch.no_grad():
        learner.init_raw[MEAN] = CONST
    s, q = np.arange(12), np.arange(12, 40)
    probs = learner.fit_predict(s, labels[s], q)

    def kernel(a, b):  # written out in NumPy: scaled RBF on the embeddings + W * Tanimoto
        sq = ((table[a][:, None, :] - table[b][None, :, :]) ** 2).sum(-1)
        inter = fps[a] @ fps[b].T
        tani = inter / (fps[a].sum(1)[:, None] + fps[b].sum(1)[None, :] - inter)
        return OUTPUTSCALE * np.exp(-0.5 * sq / LENGTHSCALE**2) + W * tani

    system = kernel(s, s) + NOISE * np.eye(len(s))
    cross = kernel(q, s)
    mean = CONST + cross @ np.linalg.solve(system, 2 * labels[s] - 1 - CONST)
    var = OUTPUTSCALE + W - np.einsum("qs,qs->q", cross, np.linalg.solve(system, cross.T).T)
    np.testing.assert_allclose(probs, norm.cdf(mean / np.sqrt(1.0 + var)), atol=1e-4)
    state = learner.adapt(s, labels[s])
    with torch.no_grad():
        np.testing.assert_allclose(learner.predictive_variance(state, q).numpy(), var, atol=1e-4)
        assert learner.embed_features(learner.encode(torch.arange(3))).shape == (3, 3)


def test_the_likelihood_moves_weight_to_the_fixed_kernel_when_it_carries_the_task():
    table, fps, labels = tanimoto_problem(seed=3)
    learner = build_learner("dkt", EmbeddingsWithSimilarity(table, fps), "classification",
                            fixed_kernel=True, fit_steps=30)
    s = np.arange(30)
    fitted = DeepKernelGP.hyperparameters(learner.adapt(s, labels[s]).inner.raw[0].detach())
    initial = DeepKernelGP.hyperparameters(learner.init_raw.detach())
    # more weight on the similarity, relative to the learned (noise) kernel's
    assert (fitted["fixed_scale"] / fitted["outputscale"]
            > 1.5 * initial["fixed_scale"] / initial["outputscale"])
    probs = learner.fit_predict(s, labels[s], np.arange(30, 40))
    plain = build_learner("dkt", FixedEmbeddings(table), "classification", fit_steps=30)
    from fewshot_apps.core.metrics import roc_auc

    assert roc_auc(labels[30:], probs) > roc_auc(
        labels[30:], plain.fit_predict(s, labels[s], np.arange(30, 40))
    )


def test_a_padded_meta_batch_with_the_fixed_kernel_equals_each_task_alone():
    table, fps, labels = tanimoto_problem(seed=5)
    learner = build_learner("dkt", EmbeddingsWithSimilarity(table, fps), "classification",
                            fixed_kernel=True, fit_steps=5)
    rng = np.random.default_rng(0)
    triples = []
    for size in (4, 9, 6):
        ids = rng.permutation(40)
        triples.append((ids[:size], labels[ids[:size]], ids[size:size + 7]))
    for (s, y, q), got in zip(triples, learner.fit_predict_many(triples)):
        np.testing.assert_allclose(got, learner.fit_predict(s, y, q), rtol=1e-5, atol=1e-5)


def test_the_fixed_kernel_needs_an_encoder_with_a_similarity():
    with pytest.raises(FewshotError, match="fixed_kernel needs an encoder with a fixed"):
        build_learner("dkt", FixedEmbeddings(np.zeros((4, 2))), "classification",
                      fixed_kernel=True)


def test_evaluation_with_the_encoder_run_once_keeps_the_fixed_kernel():
    from fewshot_apps.core.evaluation import encoded_once
    from fewshot_apps.core.tasks import Task

    table, fps, labels = tanimoto_problem(seed=7)
    learner = build_learner("dkt", EmbeddingsWithSimilarity(table, fps), "classification",
                            fixed_kernel=True, fit_steps=5)
    s, q = np.arange(10), np.arange(10, 40)
    live = learner.fit_predict(s, labels[s], q)
    with encoded_once(learner, [Task("t", np.arange(40), labels)]):
        assert type(learner.encoder).__name__ == "FrozenTrunk"
        np.testing.assert_allclose(learner.fit_predict(s, labels[s], q), live, atol=1e-6)
