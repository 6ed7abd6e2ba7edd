"""Metric learners (protonet, attention) learn planted few-shot problems."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fewshot_apps.core.encoders import TableEncoder
from fewshot_apps.core.learners import build_learner
from fewshot_apps.core.synthetic import run_planted
from fewshot_apps.errors import FewshotError

torch.set_num_threads(1)


@pytest.mark.parametrize(
    "name,kind,config",
    [
        ("protonet", "classification", {}),
        ("protonet", "classification", {"distance": "cosine"}),
        ("protonet", "classification", {"distance": "mahalanobis"}),
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


@pytest.mark.parametrize("distance", ["sqeuclidean", "mahalanobis"])
def test_protonet_copes_with_a_one_class_support(distance):
    torch.manual_seed(0)
    learner = build_learner(
        "protonet", TableEncoder(torch.randn(20, 4), hidden=8, out_dim=4), "classification",
        distance=distance,
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


def _fs_mol_logits(emb: np.ndarray, targets: np.ndarray, ridge: float) -> np.ndarray:
    """FS-Mol's ProtoNet logit (before the learned scale) written out with explicit inverses:
    per class ``P_c = (l S_c + (1 - l) S + ridge I)^-1`` with ``l = min(n_c / (n_c + 1), 0.1)``
    (S_c, S: the class's and the support set's sample covariances); the first
    ``len(targets)`` rows of ``emb`` are the support, the rest the query."""
    support, query = emb[:len(targets)], emb[len(targets):]
    dim = emb.shape[1]
    task_cov = np.cov(support, rowvar=False)

    def distance(members):
        weight = min(len(members) / (len(members) + 1), 0.1)
        cov = np.cov(members, rowvar=False) if len(members) > 1 else np.zeros((dim, dim))
        precision = np.linalg.inv(weight * cov + (1 - weight) * task_cov + ridge * np.eye(dim))
        diff = query - members.mean(0)
        return np.einsum("qi,ij,qj->q", diff, precision, diff)

    return distance(support[targets == 0]) - distance(support[targets == 1])


def _mahalanobis_protonet(dim: int, **config):
    torch.manual_seed(0)
    return build_learner(
        "protonet", TableEncoder(torch.randn(12, 3), hidden=6, out_dim=dim), "classification",
        distance="mahalanobis", **config,
    ).double()


@pytest.mark.parametrize("dim", [3, 16])  # 16: more dimensions than examples (Woodbury)
def test_protonet_mahalanobis_logit_matches_fs_mols_formula(dim):
    """The Mahalanobis logit against FS-Mol's ProtoNet (ridge 0.1), with a class of one
    example (covariance zero) beside a class of five."""
    learner = _mahalanobis_protonet(dim)
    emb = learner.encoder(torch.arange(12)).detach().numpy()
    targets = np.array([1.0, 0, 0, 0, 0, 0])
    state = learner.adapt(torch.arange(6), torch.tensor(targets))
    logits = learner.predict(state, torch.arange(6, 12)).detach().numpy()
    expected = _fs_mol_logits(emb, targets, ridge=0.1)
    np.testing.assert_allclose(logits, expected * float(learner.log_scale.exp().detach()), rtol=1e-8)


@pytest.mark.parametrize("dim", [3, 16])
def test_protonet_eval_ridge_replaces_the_ridge_in_eval_mode_only(dim):
    # Training keeps ``ridge``; validation, calibration and prediction (eval mode) use
    # ``eval_ridge``. The encoder has no dropout, so only the ridge differs between modes.
    learner = _mahalanobis_protonet(dim, ridge=0.1, eval_ridge=2.5)
    emb = learner.encoder(torch.arange(12)).detach().numpy()
    targets = np.array([1.0, 1, 0, 0, 0, 0])
    scale = float(learner.log_scale.exp().detach())
    for mode, ridge in ((learner.train, 0.1), (learner.eval, 2.5)):
        mode()
        state = learner.adapt(torch.arange(6), torch.tensor(targets))
        logits = learner.predict(state, torch.arange(6, 12)).detach().numpy()
        np.testing.assert_allclose(logits, _fs_mol_logits(emb, targets, ridge) * scale,
                                   rtol=1e-8)
    assert not np.allclose(_fs_mol_logits(emb, targets, 0.1), _fs_mol_logits(emb, targets, 2.5))


@pytest.mark.parametrize("dim", [3, 16])
@pytest.mark.parametrize("support_size", [6, 12])
def test_protonet_eval_ridge_support_scales_the_ridge_by_the_support_size(dim, support_size):
    # eval_ridge holds at eval_ridge_support molecules; a support of n gets
    # eval_ridge * eval_ridge_support / n in eval mode, and training keeps ``ridge``.
    learner = _mahalanobis_protonet(dim, ridge=0.1, eval_ridge=2.0, eval_ridge_support=6)
    emb = learner.encoder(torch.arange(12)).detach().numpy()
    targets = np.array([1.0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0])[:support_size]
    scale = float(learner.log_scale.exp().detach())
    query = np.arange(12) if support_size == 6 else np.arange(6)
    for mode, ridge in ((learner.train, 0.1), (learner.eval, 2.0 * 6 / support_size)):
        mode()
        state = learner.adapt(torch.arange(support_size), torch.tensor(targets))
        logits = learner.predict(state, torch.tensor(query)).detach().numpy()
        expected = _fs_mol_logits(np.concatenate([emb[:support_size], emb[query]]), targets, ridge)
        np.testing.assert_allclose(logits, expected * scale, rtol=1e-8)


@pytest.mark.parametrize("size, message", [(0, "must be greater than 0"),
                                           (-16, "must be greater than 0"),
                                           ("16.5", "expected int or none"),
                                           ("big", "expected int or none")])
def test_protonet_refuses_an_eval_ridge_support_that_is_not_a_positive_count(size, message):
    with pytest.raises(FewshotError, match=rf"option eval_ridge_support=.*: {message}$"):
        _mahalanobis_protonet(3, eval_ridge=1.0, eval_ridge_support=size)


def test_protonet_eval_ridge_support_needs_eval_ridge():
    with pytest.raises(FewshotError, match="eval_ridge_support scales eval_ridge, which is not"):
        _mahalanobis_protonet(3, eval_ridge_support=16)


@pytest.mark.parametrize("key", ["ridge", "eval_ridge"])
@pytest.mark.parametrize("ridge", [0, -1, float("nan"), "big"])
def test_protonet_refuses_a_ridge_that_could_leave_the_covariance_singular(key, ridge):
    with pytest.raises(FewshotError, match=rf"option {key}=.*: must be greater than 0$|"
                                           rf"option {key}='big': expected (a number|float or none)$"):
        build_learner("protonet", TableEncoder(torch.randn(6, 3), hidden=4, out_dim=2),
                      "classification", distance="mahalanobis", **{key: ridge})
