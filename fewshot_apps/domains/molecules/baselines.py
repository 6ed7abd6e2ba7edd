"""Classic few-shot baselines on ECFP fingerprints: random forest, Tanimoto k-NN, logistic
regression, a Tanimoto-kernel Gaussian process.

Each baseline fits a fresh scikit-learn (or NumPy) model on the support set of every episode
and scores the query, behind the interface of the learners::

    fit_predict(support_ids [s], support_labels [s] (0/1), query_ids [q]) -> [q] float64

(the probability of the positive class), with ``name``, ``family = "classic"`` and ``kind =
"classification"``. Hyperparameters are fixed and documented, never searched per episode:
FS-Mol grid-searched its RF / kNN on every support set, which with 16 molecules mostly fits
noise and costs minutes per task; fixed settings keep the baselines fast and comparable.

Fingerprints come from a :class:`~fewshot_apps.domains.molecules.store.MoleculeStore`
(``store.fingerprints(ids) -> [n, bits]`` 0/1) or any callable ``ids -> [n, bits]`` matrix
(NumPy or tensor), e.g. a fake fingerprint table in tests.

A support set of one class cannot train a classifier: every query molecule then gets that
class's probability (1 or 0), a constant score (ROC-AUC 0.5). The protocols' samplers never
draw such a support.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Union

import numpy as np

from fewshot_apps.core.classic import ClassicBaseline
from fewshot_apps.core.registry import MODELS
from fewshot_apps.errors import FewshotError

if TYPE_CHECKING:  # torch loads on first use: `mol predict` checks its inputs without it
    from .store import MoleculeStore

FingerprintSource = Union["MoleculeStore", Callable[[np.ndarray], Any]]

# Queries are featurized and scored in chunks: a 2048-bit float32 row is 8 KiB, so a
# 5000-molecule FS-Mol query would otherwise take 40 MiB at once.
QUERY_CHUNK = 4096


def fingerprint_function(source: FingerprintSource) -> Callable[[np.ndarray], np.ndarray]:
    """``ids [n] -> [n, bits] float32`` 0/1 from a store or a callable."""
    import torch

    from .store import MoleculeStore

    fn = source.fingerprints if isinstance(source, MoleculeStore) else source
    if not callable(fn):
        raise FewshotError(
            f"fingerprints must be a MoleculeStore or a callable ids -> [n, bits], "
            f"got {type(source).__name__}"
        )

    def fingerprints(ids: np.ndarray) -> np.ndarray:
        out = fn(np.asarray(ids, dtype=np.int64))
        if isinstance(out, torch.Tensor):
            out = out.detach().cpu().numpy()
        out = np.asarray(out, dtype=np.float32)
        if out.ndim != 2 or len(out) != len(ids):
            raise FewshotError(f"fingerprints of {len(ids)} ids have shape {out.shape}, not [n, bits]")
        return out

    return fingerprints


class ECFPBaseline(ClassicBaseline):
    """Base class: fetches fingerprints, checks labels, handles one-class supports.

    Subclasses are :data:`~fewshot_apps.core.registry.MODELS` entries (which give their
    ``name``), set ``title`` (a few words for ``mol predict``'s report) and implement
    ``_fit(x [s, bits], y [s]) -> model`` and ``_score(model, x [q, bits]) -> [q]``
    probabilities.

    Args:
        fingerprints: a :class:`MoleculeStore` or a callable ``ids -> [n, bits]``.
        seed: fixes everything random in the model (the same episode gives the same scores).
    """

    title: ClassVar[str] = "ECFP baseline"
    kind: ClassVar[str] = "classification"

    def __init__(self, fingerprints: FingerprintSource, seed: int = 0):
        self._fingerprints = fingerprint_function(fingerprints)
        self.seed = int(seed)

    def _fit(self, x: np.ndarray, y: np.ndarray) -> Any:
        raise NotImplementedError

    def _score(self, model: Any, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def fit_predict(self, support_ids, support_labels, query_ids) -> np.ndarray:
        """Fit the support molecules, score the query: ``[q]`` float64 probabilities."""
        support_ids = np.asarray(support_ids, dtype=np.int64)
        query_ids = np.asarray(query_ids, dtype=np.int64)
        y = np.asarray(support_labels, dtype=np.float64)
        if y.shape != support_ids.shape or y.ndim != 1:
            raise FewshotError(f"{self.name}: {len(support_ids)} support ids but labels of shape {y.shape}")
        if not np.isin(y, (0.0, 1.0)).all():
            raise FewshotError(f"{self.name}: support labels must be 0/1 (a classification task)")
        if len(query_ids) == 0:
            return np.zeros(0)
        if len(y) == 0 or y.min() == y.max():
            # One class (or none): nothing to discriminate; its probability for everyone.
            return np.full(len(query_ids), float(y[0]) if len(y) else 0.5)
        model = self._fit(self._fingerprints(support_ids), y.astype(np.int64))
        out = [
            self._score(model, self._fingerprints(chunk))
            for chunk in np.array_split(query_ids, max(1, -(-len(query_ids) // QUERY_CHUNK)))
        ]
        return np.concatenate(out).astype(np.float64)


class RandomForestBaseline(ECFPBaseline):
    """``rf``: scikit-learn ``RandomForestClassifier`` on ECFP bits.

    Settings: ``n_estimators=500`` (the largest of FS-Mol's grid; more trees only lower the
    variance of the scores), ``max_features="sqrt"`` (45 of 2048 bits per split),
    ``min_samples_leaf=1`` and unlimited depth (scikit-learn's defaults, fully grown trees),
    ``class_weight="balanced"`` (supports of 16 hold few positives; on FS-Mol's validation
    tasks it scored as without: ΔAUPRC .129 / .201 at support 16 / 64 against .130 / .198),
    ``random_state=seed``. An episode (fit + FS-Mol-sized query) takes 1-2 s on one core.
    ``n_jobs``: worker threads of one fit (1 by default: the evaluation may already run
    episodes in parallel).
    """

    title = "ECFP random forest"

    def __init__(self, fingerprints: FingerprintSource, seed: int = 0, n_estimators: int = 500,
                 n_jobs: int | None = 1):
        super().__init__(fingerprints, seed)
        self.n_estimators = int(n_estimators)
        self.n_jobs = n_jobs

    def settings(self) -> dict:
        return {"n_estimators": self.n_estimators, "max_features": "sqrt",
                "min_samples_leaf": 1, "class_weight": "balanced", "n_jobs": self.n_jobs}

    def _fit(self, x: np.ndarray, y: np.ndarray):
        from sklearn.ensemble import RandomForestClassifier

        model = RandomForestClassifier(
            n_estimators=self.n_estimators, max_features="sqrt", min_samples_leaf=1,
            class_weight="balanced", n_jobs=self.n_jobs, random_state=self.seed,
        )
        return model.fit(x, y)

    def _score(self, model, x: np.ndarray) -> np.ndarray:
        return model.predict_proba(x)[:, list(model.classes_).index(1)]


def tanimoto(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Tanimoto (Jaccard) similarity of 0/1 fingerprints: ``[n, bits], [m, bits] -> [n, m]``.

    ``|a & b| / (|a| + |b| - |a & b|)`` with one matrix product for all intersections; two
    empty fingerprints have similarity 0.
    """
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    # float32 counts are exact up to 2**24 bits, far above any fingerprint length.
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


class TanimotoKNNBaseline(ECFPBaseline):
    """``knn``: the ``k`` support molecules most similar (Tanimoto on ECFP) to each query
    molecule vote, each with its similarity as weight.

    ``score = sum_j sim_j * y_j / sum_j sim_j`` over the ``k`` nearest (ties broken by
    support position); when all ``k`` similarities are 0 the score is the support's positive
    fraction. Weighting by similarity gives graded scores where a plain vote of ``k``
    neighbours gives only ``k + 1`` values, which would make ranking metrics coarse.

    Settings: ``k=5`` (clipped to the support size). On FS-Mol's validation tasks (support
    16 / 64, 3 draws) k = 3 / 5 / 10 gave ΔAUPRC .103 / .110 / .108 and .157 / .174 / .174;
    FS-Mol's own grid allowed k < s/2, i.e. 4 at support 16.
    """

    title = "ECFP Tanimoto k-NN"

    def __init__(self, fingerprints: FingerprintSource, seed: int = 0, k: int = 5):
        super().__init__(fingerprints, seed)
        if k < 1:
            raise FewshotError(f"knn: k must be >= 1, got {k}")
        self.k = int(k)

    def settings(self) -> dict:
        return {"k": self.k}

    def _fit(self, x: np.ndarray, y: np.ndarray):
        return x, y.astype(np.float64)

    def _score(self, model, x: np.ndarray) -> np.ndarray:
        support, y = model
        sim = tanimoto(x, support).astype(np.float64)  # [q, s]
        k = min(self.k, len(y))
        # Stable sort of -sim: deterministic ties (lowest support position first).
        nearest = np.argsort(-sim, axis=1, kind="stable")[:, :k]
        w = np.take_along_axis(sim, nearest, axis=1)
        total = w.sum(1)
        votes = (w * y[nearest]).sum(1)
        return np.divide(votes, total, out=np.full(len(x), y.mean()), where=total > 0)


class TanimotoGPBaseline(ECFPBaseline):
    """``gp``: an exact Gaussian process on the support's ``+-1`` labels with the Tanimoto
    kernel on ECFP bits (FS-Mol's GP baseline, without meta-learning).

    Kernel ``s * T(x, y)`` (Tanimoto is positive semi-definite on 0/1 vectors) plus noise
    ``r * s`` on the diagonal and a constant mean ``c``. For each ratio ``r`` of
    :attr:`NOISE_RATIOS` the mean and the scale have closed-form maximum-likelihood values
    (generalized least squares: ``c = 1'A^-1 y / 1'A^-1 1``, ``s = (y - c)'A^-1 (y - c) / n``
    with ``A = T + r I``); the ratio with the highest marginal likelihood wins. The score is
    the probit of the posterior: ``Phi(mean / sqrt(1 + var))``. Deterministic; ``seed`` is
    kept for the common interface.
    """

    title = "ECFP Tanimoto Gaussian process"
    NOISE_RATIOS: ClassVar[tuple[float, ...]] = (0.01, 0.03, 0.1, 0.3, 1.0)

    def _fit(self, x: np.ndarray, y: np.ndarray):
        from scipy.linalg import cho_solve

        t = 2.0 * y.astype(np.float64) - 1.0
        gram = tanimoto(x, x).astype(np.float64)
        n, ones = len(t), np.ones(len(t))
        best = None
        for ratio in self.NOISE_RATIOS:
            chol = np.linalg.cholesky(gram + ratio * np.eye(n))
            a_inv_1, a_inv_t = cho_solve((chol, True), ones), cho_solve((chol, True), t)
            mean = float(ones @ a_inv_t / (ones @ a_inv_1))
            alpha = a_inv_t - mean * a_inv_1  # A^-1 (t - c)
            scale = max(float((t - mean) @ alpha) / n, 1e-12)
            log_ml = -0.5 * n * np.log(scale) - np.log(np.diag(chol)).sum()
            if best is None or log_ml > best[0]:
                best = (log_ml, x, chol, alpha, mean, scale)
        return best[1:]

    def _score(self, model, x: np.ndarray) -> np.ndarray:
        from scipy.linalg import solve_triangular
        from scipy.special import ndtr

        support, chol, alpha, mean, scale = model
        cross = tanimoto(x, support).astype(np.float64)  # [q, s], in units of the scale
        latent = mean + cross @ alpha
        v = solve_triangular(chol, cross.T, lower=True)
        self_sim = (x.sum(1) > 0).astype(np.float64)  # T(x, x): 1, or 0 for an empty row
        var = scale * np.clip(self_sim - (v * v).sum(0), 0.0, None)
        return ndtr(latent / np.sqrt(1.0 + var))


class LogisticRegressionBaseline(ECFPBaseline):
    """``logreg``: scikit-learn ``LogisticRegression`` (L2, lbfgs) on ECFP bits.

    Settings: ``C=0.1``. With 2048 bits and 16-128 molecules the support is separable and C
    only sets how far the weights grow; on FS-Mol's validation tasks (support 16 / 64, 3
    draws) C = 0.01 / 0.1 / 1 gave ΔAUPRC .130 / .128 / .127 and .190 / .201 / .197.
    ``class_weight="balanced"`` (few positives), ``max_iter=1000``. Deterministic (lbfgs);
    ``seed`` is kept for the common interface.
    """

    title = "ECFP logistic regression"

    def __init__(self, fingerprints: FingerprintSource, seed: int = 0, C: float = 0.1):
        super().__init__(fingerprints, seed)
        self.C = float(C)

    def settings(self) -> dict:
        return {"C": self.C, "penalty": "l2", "class_weight": "balanced", "max_iter": 1000}

    def _fit(self, x: np.ndarray, y: np.ndarray):
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=self.C, class_weight="balanced", max_iter=1000,
                                   random_state=self.seed)
        return model.fit(x, y)

    def _score(self, model, x: np.ndarray) -> np.ndarray:
        return model.predict_proba(x)[:, list(model.classes_).index(1)]


def classic_baseline_names() -> list[str]:
    """The molecules' classic baselines: the ``classic`` entries of
    :data:`~fewshot_apps.core.registry.MODELS` for the molecules domain."""
    return MODELS.names(domain="molecules", family="classic", support_only=True)


def build_classic_baseline(name: str, fingerprints: FingerprintSource, seed: int = 0,
                           **settings: Any) -> ECFPBaseline:
    """Classic baseline ``name`` (:func:`classic_baseline_names`) on ``fingerprints`` with
    ``seed`` and ``settings``; FewshotError on an unknown name or setting."""
    known = classic_baseline_names()
    if name not in known:
        raise FewshotError(f"unknown classic baseline {name!r}; known: {', '.join(sorted(known))}")
    try:
        return MODELS.load(name)(fingerprints, seed=seed, **settings)
    except TypeError as err:
        raise FewshotError(f"classic baseline {name!r}: {err}") from None
