"""Classic ECFP baselines (rf, knn, logreg, gp) learn a planted property of real molecules."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from rdkit import Chem, DataStructs
from rdkit.Chem import rdFingerprintGenerator

from fewshot_apps.core.metrics import roc_auc
from fewshot_apps.core.tasks import StratifiedSampler, Task, derive_seed
from fewshot_apps.domains.molecules.baselines import (
    build_classic_baseline,
    classic_baseline_names,
    tanimoto,
)
from fewshot_apps.domains.molecules.featurizer import featurize_smiles
from fewshot_apps.domains.molecules.store import MoleculeStore
from fewshot_apps.errors import FewshotError

torch.set_num_threads(1)

# Small molecules built from a core and two substituents; the label is "has an aromatic
# ring", which comes from the core (benzene, thiophene) or from a substituent (phenyl,
# pyridyl), so both similarity (kNN) and single ECFP bits (RF, logreg) carry the signal.
CORES = ["c1ccc({a})cc1{b}", "C({a})CC{b}", "C1CC({a})CCC1{b}", "c1cc({a})sc1{b}", "OC({a})C{b}"]
SUBSTITUENTS = ["N", "C#N", "C(=O)N", "O", "Cl", "F", "C", "OC", "C(=O)O", "S",
                "c1ccccc1", "c1ccncc1"]


@pytest.fixture(scope="module")
def molecules():
    smiles = [core.format(a=a, b=b) for core, a, b in
              itertools.product(CORES, SUBSTITUENTS, ["", "C", "Cl", "c1ccccc1"])]
    feats = featurize_smiles(smiles)
    keep = np.array([i for i, e in enumerate(feats["errors"]) if not e])
    store = MoleculeStore.from_featurized(feats, keep)
    aromatic = Chem.MolFromSmarts("a")
    labels = [float(Chem.MolFromSmiles(s).HasSubstructMatch(aromatic)) for s in store.smiles]
    return store, Task("aromatic", np.arange(len(keep)), np.array(labels, dtype=np.float32))


def _mean_auc(model, task: Task, size: int = 16, draws: int = 5) -> float:
    aucs = []
    for d in range(draws):
        ep = StratifiedSampler(size).sample(task, derive_seed("molecule-baselines", d))
        scores = model.fit_predict(ep.support_examples, ep.support_labels, ep.query_examples)
        assert scores.shape == (len(ep.query_examples),) and scores.dtype == np.float64
        assert ((scores >= 0) & (scores <= 1)).all()
        aucs.append(roc_auc(ep.query_labels, scores))
    return float(np.mean(aucs))


@pytest.mark.parametrize("name", sorted(classic_baseline_names()))
def test_baseline_beats_chance_on_real_molecules(name, molecules):
    store, task = molecules
    settings = {"n_estimators": 100} if name == "rf" else {}
    model = build_classic_baseline(name, store, seed=0, **settings)
    assert model.name == name and model.family == "classic"
    assert _mean_auc(model, task) >= 0.9


def test_rf_default_settings_are_documented(molecules):
    store, _ = molecules
    model = build_classic_baseline("rf", store)
    assert model.describe()["settings"]["n_estimators"] == 500
    assert build_classic_baseline("knn", store).describe()["settings"] == {"k": 5}
    assert build_classic_baseline("logreg", store).describe()["settings"]["C"] == 0.1


def test_seed_makes_rf_repeatable(molecules):
    store, task = molecules
    ep = StratifiedSampler(16).sample(task, 0)
    args = (ep.support_examples, ep.support_labels, ep.query_examples)
    a = build_classic_baseline("rf", store, seed=1, n_estimators=50).fit_predict(*args)
    b = build_classic_baseline("rf", store, seed=1, n_estimators=50).fit_predict(*args)
    c = build_classic_baseline("rf", store, seed=2, n_estimators=50).fit_predict(*args)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_tanimoto_matches_rdkit(molecules):
    store, _ = molecules
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    fps = [gen.GetFingerprint(Chem.MolFromSmiles(s)) for s in store.smiles[:6]]
    expected = np.array([DataStructs.BulkTanimotoSimilarity(f, fps) for f in fps])
    bits = store.fingerprints(np.arange(6)).numpy()
    np.testing.assert_allclose(tanimoto(bits, bits), expected, rtol=1e-6)
    assert tanimoto(np.zeros((1, 8)), np.zeros((2, 8))).tolist() == [[0.0, 0.0]]


def test_knn_weights_neighbours_by_similarity():
    # fake 4-bit fingerprints from a callable returning a tensor
    table = torch.tensor([[1, 1, 0, 0], [0, 0, 1, 1], [1, 1, 1, 0], [1, 0, 0, 0]], dtype=torch.float32)
    knn = build_classic_baseline("knn", lambda ids: table[torch.as_tensor(ids)], k=2)
    out = knn.fit_predict([0, 1], [1.0, 0.0], [2, 3])
    # query 2: sim 2/3 to the positive, 1/4 to the negative -> (2/3) / (2/3 + 1/4)
    assert out[0] == pytest.approx((2 / 3) / (2 / 3 + 1 / 4))
    assert out[1] == pytest.approx(1.0)  # only the positive shares a bit


def test_gp_is_the_exact_gp_of_its_maximum_likelihood_settings(molecules):
    """Against a GP written another way: for the chosen noise ratio, the closed-form mean and
    scale maximize the Gaussian log-density of the +-1 labels (no better point nearby, none
    at another ratio), and the score is the probit of the textbook posterior."""
    from scipy.optimize import minimize
    from scipy.special import ndtr
    from scipy.stats import multivariate_normal

    store, task = molecules
    gp = build_classic_baseline("gp", store)
    ep = StratifiedSampler(12).sample(task, derive_seed("gp-exact", 0))
    x = store.fingerprints(ep.support_examples).numpy()
    y = 2.0 * np.asarray(ep.support_labels, dtype=np.float64) - 1.0
    gram = tanimoto(x, x).astype(np.float64)

    def best_log_density(ratio: float) -> tuple[float, np.ndarray]:
        def neg(p):  # p = (mean, log scale)
            cov = np.exp(p[1]) * (gram + ratio * np.eye(len(y)))
            return -multivariate_normal(np.full(len(y), p[0]), cov).logpdf(y)
        fit = minimize(neg, np.array([0.0, 0.0]), method="Nelder-Mead",
                       options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 4000})
        return -fit.fun, fit.x

    ratio = max(gp.NOISE_RATIOS, key=lambda r: best_log_density(r)[0])
    mean, log_scale = best_log_density(ratio)[1]
    scale = np.exp(log_scale)
    query = store.fingerprints(ep.query_examples).numpy()
    cross = tanimoto(query, x).astype(np.float64)
    system = scale * (gram + ratio * np.eye(len(y)))
    latent = mean + scale * cross @ np.linalg.solve(system, y - mean)
    var = scale - scale**2 * np.einsum("qs,qs->q", cross, np.linalg.solve(system, cross.T).T)
    expected = ndtr(latent / np.sqrt(1.0 + var))
    scores = gp.fit_predict(ep.support_examples, ep.support_labels, ep.query_examples)
    np.testing.assert_allclose(scores, expected, atol=2e-4)


def test_one_class_support_and_bad_inputs(molecules):
    store, _ = molecules
    assert classic_baseline_names() == ["rf", "knn", "logreg", "gp"]
    for name in classic_baseline_names():
        model = build_classic_baseline(name, store, **({"n_estimators": 5} if name == "rf" else {}))
        np.testing.assert_array_equal(model.fit_predict([0, 1], [1, 1], [2, 3, 4]), np.ones(3))
        assert model.fit_predict([0, 1], [0, 1], []).shape == (0,)
        with pytest.raises(FewshotError, match="0/1"):
            model.fit_predict([0, 1], [0.5, 2.0], [2])
    with pytest.raises(FewshotError, match="unknown classic baseline 'svm'; known: gp, knn, logreg, rf$"):
        build_classic_baseline("svm", store)
    with pytest.raises(FewshotError, match="unknown classic baseline 'mf'"):  # another domain's
        build_classic_baseline("mf", store)
    with pytest.raises(FewshotError, match="n_trees"):
        build_classic_baseline("rf", store, n_trees=3)
