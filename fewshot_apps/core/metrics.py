"""Scoring metrics of one episode: classification, rating regression and ranking.

Every function takes 1-D arrays of the same length ``[n]`` (anything ``np.asarray`` accepts:
lists, NumPy arrays, CPU tensors) and returns a Python ``float``. Bad inputs (different
lengths, not 1-D, empty, NaN scores, labels that are not 0/1) raise ``ValueError``.

Undefined values, by family:

* classification (:func:`roc_auc`, :func:`auprc`, :func:`delta_auprc`): labels of one class
  raise :class:`OneClassError` (a ``ValueError``). The protocols never score such a query
  (they skip the draw and count it), so reaching it is a bug worth stopping on.
* prediction intervals (:func:`interval_coverage`, :func:`interval_width`) take
  ``(targets, low, high)``.
* ranking (:func:`ndcg_at_k`, :func:`precision_at_k`, :func:`recall_at_k`): a user without
  anything to find (no positive gain, no relevant item) gets ``nan``; average per-user
  values with ``np.nanmean`` and report how many were ``nan``.

Ranking metrics resolve tied scores by their expectation over every order of the tied items
(as scikit-learn's ``ndcg_score`` does), so the result never depends on the input order.

By name: every metric is an entry of :data:`~fewshot_apps.core.registry.METRICS` (declared in
:mod:`fewshot_apps.core.catalog`) with its direction and range; :func:`metric_function`,
:func:`higher_is_better` and :func:`metric_bounds` read them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from fewshot_apps.core.registry import METRICS, Entry

__all__ = [
    "OneClassError",
    "actives_among",
    "auprc",
    "delta_auprc",
    "higher_is_better",
    "interval_coverage",
    "interval_width",
    "mae",
    "metric_bounds",
    "metric_function",
    "ndcg_at_k",
    "precision_at_k",
    "recall_at_k",
    "rmse",
    "roc_auc",
]


class OneClassError(ValueError):
    """Labels of one class only: ROC-AUC / AUPRC are undefined."""


# --------------------------------------------------------------------------------------------
# input checks


def _pair(a, b, a_name: str, b_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Two 1-D float64 arrays of the same non-zero length; ``b`` free of NaN."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"{a_name} and {b_name} must be 1-D, got shapes {a.shape} and {b.shape}")
    if len(a) != len(b):
        raise ValueError(f"{a_name} ({len(a)}) and {b_name} ({len(b)}) differ in length")
    if len(a) == 0:
        raise ValueError(f"{a_name} and {b_name} are empty")
    if np.isnan(a).any():
        raise ValueError(f"{a_name} contain NaN")
    if np.isnan(b).any():
        raise ValueError(f"{b_name} contain NaN (did the model diverge?)")
    return a, b


def _binary_labels(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    labels, scores = _pair(labels, scores, "labels", "scores")
    if not np.isin(labels, (0.0, 1.0)).all():
        raise ValueError(f"labels must be 0/1, got values {np.unique(labels)[:5].tolist()}...")
    n_pos = int(labels.sum())
    if n_pos in (0, len(labels)):
        raise OneClassError(
            f"labels hold one class only ({n_pos} positives of {len(labels)}); ROC-AUC and "
            "AUPRC need both classes (skip such a query)"
        )
    return labels, scores


def _check_k(k: int) -> int:
    if int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


# --------------------------------------------------------------------------------------------
# classification


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve (scikit-learn's ``roc_auc_score``).

    Args:
        labels: ``[n]`` 0/1, both classes present (else :class:`OneClassError`).
        scores: ``[n]`` any monotone score (probability or logit); higher means positive.
    """
    from sklearn.metrics import roc_auc_score

    labels, scores = _binary_labels(labels, scores)
    return float(roc_auc_score(labels, scores))


def auprc(labels, scores) -> float:
    """Area under the precision-recall curve as average precision (scikit-learn's
    ``average_precision_score``, step-wise, no interpolation).

    Args: as :func:`roc_auc` (both classes needed: :class:`OneClassError` otherwise).
    """
    from sklearn.metrics import average_precision_score

    labels, scores = _binary_labels(labels, scores)
    return float(average_precision_score(labels, scores))


def delta_auprc(labels, scores) -> float:
    """FS-Mol's ΔAUPRC: :func:`auprc` minus the positive fraction of ``labels`` (the AUPRC of
    a random ranking), so 0 is chance on every task whatever its class balance."""
    labels, scores = _binary_labels(labels, scores)
    return auprc(labels, scores) - float(labels.mean())


def actives_among(labels, selected) -> float:
    """How many actives (label 1) are among the ``selected`` examples (a truthy entry of
    ``selected``, aligned with ``labels``): the ``active`` protocol's ``actives_found`` (every
    labelled molecule) and ``actives_acquired`` (those acquired after the initial support)."""
    labels, selected = _pair(labels, selected, "labels", "selected")
    return float(((labels == 1) & (selected != 0)).sum())


def _probabilities(labels, probabilities) -> tuple[np.ndarray, np.ndarray]:
    labels, probabilities = _pair(labels, probabilities, "labels", "probabilities")
    if not np.isin(labels, (0.0, 1.0)).all():
        raise ValueError("labels must be 0/1")
    if len(probabilities) and (probabilities.min() < 0 or probabilities.max() > 1):
        raise ValueError("calibration metrics need probabilities in [0, 1]")
    return labels, probabilities


def brier(labels, probabilities) -> float:
    """The Brier score: mean squared difference between the predicted probability of
    activity and the 0/1 label (0 is perfect; always predicting 0.5 scores 0.25).

    Args:
        labels: ``[n]`` 0/1.
        probabilities: ``[n]`` predicted probabilities of label 1, in [0, 1].
    """
    labels, probabilities = _probabilities(labels, probabilities)
    return float(np.mean((probabilities - labels) ** 2))


def ece(labels, probabilities, bins: int = 15) -> float:
    """Expected calibration error over ``bins`` equal-width probability bins: the
    count-weighted mean, over bins, of |fraction of positives - mean predicted
    probability| (0 when every bin's predictions match its observed rate).

    Args: as :func:`brier`; a probability of exactly 1 falls in the last bin.
    """
    labels, probabilities = _probabilities(labels, probabilities)
    if len(labels) == 0:
        return float("nan")
    which = np.minimum((probabilities * bins).astype(np.int64), bins - 1)
    observed = np.bincount(which, weights=labels, minlength=bins)
    predicted = np.bincount(which, weights=probabilities, minlength=bins)
    # sum over bins of n_b / n * |observed_b / n_b - predicted_b / n_b|
    return float(np.abs(observed - predicted).sum() / len(labels))


#: Label draws :func:`ece_floor` averages over (its own fixed seed: the floor of a draw does
#: not depend on the run's seed).
ECE_FLOOR_SIMULATIONS = 64


def ece_floor(labels, probabilities, bins: int = 15) -> float:
    """The :func:`ece` a perfectly calibrated model would show with these predictions on
    this many examples: the mean ECE over :data:`ECE_FLOOR_SIMULATIONS` label vectors drawn
    as ``y_i ~ Bernoulli(p_i)``. ECE is biased upwards on a finite sample (each bin's
    observed rate is noisy), so on a few hundred query molecules even exact probabilities
    score several hundredths; this is the value to read a draw's ``ece`` against.

    Args: as :func:`ece` (``labels`` only fix the count and are checked)."""
    labels, probabilities = _probabilities(labels, probabilities)
    rng = np.random.default_rng(0)
    which = np.minimum((probabilities * bins).astype(np.int64), bins - 1)
    predicted = np.bincount(which, weights=probabilities, minlength=bins)
    draws = rng.random((ECE_FLOOR_SIMULATIONS, len(probabilities))) < probabilities
    # observed positives per (simulation, bin): one bincount over offset bin indices
    offset = which[None, :] + bins * np.arange(ECE_FLOOR_SIMULATIONS)[:, None]
    observed = np.bincount(offset[draws], minlength=bins * ECE_FLOOR_SIMULATIONS)
    observed = observed.reshape(ECE_FLOOR_SIMULATIONS, bins)
    return float(np.abs(observed - predicted[None, :]).sum(axis=1).mean() / len(labels))


# --------------------------------------------------------------------------------------------
# regression


def mae(targets, predictions) -> float:
    """Mean absolute error: ``mean |prediction - target|`` over ``[n]`` values."""
    targets, predictions = _pair(targets, predictions, "targets", "predictions")
    return float(np.mean(np.abs(predictions - targets)))


def rmse(targets, predictions) -> float:
    """Root mean squared error: ``sqrt(mean (prediction - target)^2)`` over ``[n]`` values."""
    targets, predictions = _pair(targets, predictions, "targets", "predictions")
    return float(np.sqrt(np.mean((predictions - targets) ** 2)))


# --------------------------------------------------------------------------------------------
# prediction intervals (their METRICS entries have ``inputs = "interval"``: f(targets, low, high))


def _interval(targets, low, high) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    targets, low = _pair(targets, low, "targets", "interval lows")
    _, high = _pair(targets, high, "targets", "interval highs")
    if (high < low).any():
        raise ValueError("an interval's high is below its low")
    return targets, low, high


def interval_coverage(targets, low, high) -> float:
    """Fraction of ``targets`` inside their prediction interval ``[low, high]`` (bounds
    included); a 90% interval should cover about 0.9 (``coverage@90``)."""
    targets, low, high = _interval(targets, low, high)
    return float(np.mean((targets >= low) & (targets <= high)))


def interval_width(targets, low, high) -> float:
    """Mean width ``high - low`` of the prediction intervals (``targets`` only checked)."""
    _, low, high = _interval(targets, low, high)
    return float(np.mean(high - low))


# --------------------------------------------------------------------------------------------
# ranking


def _expected_hits(values: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> float:
    """``sum_i values[rank_i] * weights[i]`` over the ranking by descending ``scores``, the
    value of each group of tied scores replaced by its mean (the expectation over every order
    of the group). ``weights[i]`` is the weight of rank ``i`` (0 beyond the cut-off)."""
    # Groups of equal scores, best first: np.unique sorts ascending, so negate.
    unique, inverse, counts = np.unique(-scores, return_inverse=True, return_counts=True)
    del unique
    group_mean = np.bincount(inverse, weights=values, minlength=len(counts)) / counts
    cum_weight = np.concatenate([[0.0], np.cumsum(weights)])
    end = np.cumsum(counts)
    start = end - counts
    # Each group fills ranks [start, end); its weight is the sum of those ranks' weights.
    return float(np.sum(group_mean * (cum_weight[end] - cum_weight[start])))


def ndcg_at_k(gains, scores, k: int = 10) -> float:
    """Normalized discounted cumulative gain of the top ``k`` of a ranking.

    ``DCG@k = sum_{rank r < k} gain(r) / log2(r + 2)`` (rank 0 is the best score), divided by
    the DCG@k of the same items ranked by their gains (the ideal order). The caller chooses
    the gain, e.g. ``2**rating - 1`` for graded ratings or 0/1 for binary relevance; this
    matches scikit-learn's ``ndcg_score(gains[None], scores[None], k=k)``, ties included.

    Args:
        gains: ``[n]`` non-negative gains of the items.
        scores: ``[n]`` model scores; higher ranks first.
        k: cut-off (``k >= n`` scores the whole list).

    Returns ``nan`` when no item has a positive gain (the ideal DCG is 0; scikit-learn
    returns 0 there).
    """
    gains, scores = _pair(gains, scores, "gains", "scores")
    k = _check_k(k)
    if (gains < 0).any():
        raise ValueError("gains must be non-negative")
    n = len(gains)
    discount = np.zeros(n)
    top = min(k, n)
    discount[:top] = 1.0 / np.log2(np.arange(top) + 2.0)
    ideal = float(np.sum(np.sort(gains)[::-1] * discount))
    if ideal == 0.0:
        return float("nan")
    return _expected_hits(gains, scores, discount) / ideal


def _relevant(labels, scores, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    labels, scores = _pair(labels, scores, "labels", "scores")
    return (labels >= threshold).astype(np.float64), scores


def precision_at_k(labels, scores, k: int = 10, threshold: float = 1.0) -> float:
    """Fraction of relevant items among the ``k`` best-scored items.

    Args:
        labels: ``[n]`` labels or ratings; an item is relevant when ``label >= threshold``
            (default 1.0: 0/1 labels; e.g. 4.0 for "rated 4 stars or more").
        scores: ``[n]`` model scores; higher ranks first.
        k: cut-off. With fewer than ``k`` items, the denominator is ``n`` (a short list is
            not penalized for items it does not have).

    Never ``nan``: a list without relevant items scores 0.
    """
    relevant, scores = _relevant(labels, scores, threshold)
    k = _check_k(k)
    top = min(k, len(relevant))
    weights = np.zeros(len(relevant))
    weights[:top] = 1.0
    return _expected_hits(relevant, scores, weights) / top


def recall_at_k(labels, scores, k: int = 10, threshold: float = 1.0) -> float:
    """Relevant items among the ``k`` best-scored, divided by all relevant items.

    Args: as :func:`precision_at_k` (``labels`` are the held-out items' labels or ratings).

    Returns ``nan`` when no item is relevant (nothing to recall).
    """
    relevant, scores = _relevant(labels, scores, threshold)
    k = _check_k(k)
    n_relevant = relevant.sum()
    if n_relevant == 0:
        return float("nan")
    weights = np.zeros(len(relevant))
    weights[: min(k, len(relevant))] = 1.0
    return _expected_hits(relevant, scores, weights) / float(n_relevant)


# --------------------------------------------------------------------------------------------
# by name (the METRICS registry)


def metric_function(name: str) -> Callable[..., float]:
    """``f(labels, scores) -> float``: metric ``name`` of
    :data:`~fewshot_apps.core.registry.METRICS` (``ndcg@5``: :func:`ndcg_at_k` with
    ``k=5`` bound); ``f(targets, low, high)`` for the interval metrics (entries with
    ``inputs = "interval"``: ``coverage@90``, ``interval_width``). FewshotError naming the
    known metrics for any other name."""
    entry = METRICS.get(name)
    function = entry.load()
    k = entry.meta.get("k")
    if k is None:
        return function

    def at_k(labels, scores) -> float:
        return function(labels, scores, k=k)

    at_k.__name__ = at_k.__qualname__ = f"{function.__name__}_{k}"
    at_k.__doc__ = f"{name}: :func:`{function.__name__}` with ``k={k}``."
    return at_k


def _entry(name: str) -> Entry | None:
    """The entry of ``name``; for ``base@k`` not registered with that ``k``, a registered
    ``base@...`` (direction and range do not depend on ``k``); else None."""
    if name in METRICS:
        return METRICS.get(name)
    base, at, _ = name.partition("@")
    if at:
        for entry in METRICS.entries():
            if entry.name.partition("@")[0] == base and "@" in entry.name:
                return entry
    return None


def higher_is_better(name: str) -> bool:
    """Whether a larger value of metric ``name`` is better (``mae``, ``rmse``: no).
    FewshotError on a name that is not a registered metric (or ``base@k`` of one)."""
    entry = _entry(str(name))
    if entry is None:
        METRICS.get(str(name))  # raises, naming the known metrics
    return entry.direction == "higher"


def metric_bounds(name: str) -> tuple[float, float]:
    """``(low, high)``, the range metric ``name`` can take (``recall@20``: recall's, whatever
    ``k``); a name that is no registered metric is unbounded ``(-inf, inf)``."""
    entry = _entry(str(name))
    if entry is None:
        return (-math.inf, math.inf)
    low, high = entry.bounds
    return (float(low), float(high))
