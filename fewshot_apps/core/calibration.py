"""Post-hoc calibration of a trained model's predictions, fitted on validation tasks only.

* Classification: **temperature scaling** (default): the probability of activity becomes
  ``sigmoid(logit / T)``, one scalar ``T > 0`` fitted by minimizing the negative
  log-likelihood (NLL) of the query predictions on validation episodes (:func:`fit_temperature`).
  **Platt scaling** (``calibration=platt``): ``sigmoid(a * logit + b)`` with ``a > 0``
  (:func:`fit_platt`). Both are monotone, so rankings (ROC-AUC, AUPRC) do not change; only the
  probabilities do (Brier score, ECE).
* Ratings: a **split-conformal** prediction interval, ``prediction ± q``, with ``q`` the
  ``ceil((n + 1) * 0.9) / n`` empirical quantile of the ``n`` absolute residuals of the model's
  query predictions on validation episodes (:func:`conformal_quantile`): about 90% of the
  ratings of new users fall inside when users are exchangeable (residuals of one user are
  pooled with the others', so the guarantee is marginal over ratings).

The validation episodes are the data set's ``validation_episodes(episode, seed)``: the episodes
its validator scores during training (molecules: draws of the validation assays with the
training episodes' kind of support, K-shot or stratified, query = the rest; ratings: the
cold-start episodes of the validation users). A data set without
them, or without validation tasks, leaves the model uncalibrated, and its config says why.

A fitted :class:`Calibration` lives on the model (``model.calibration``) and in its saved
``config.json`` (key ``calibration``; :meth:`Calibration.to_config`). ``fit_predict`` of the
meta-learners and transfer baselines applies it, so every use of a model (benchmarks, ``mol
predict``, ``mol suggest``) sees calibrated probabilities; :func:`prediction_interval` gives
a rating model's interval. A model saved before calibrations were recorded loads with the
identity (``method = "none"``).

``calibration`` is a setting (``--set calibration=...``): ``auto`` (default: temperature for
classification, conformal for ratings), ``temperature``, ``platt``, ``conformal`` or
``none``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fewshot_apps.errors import FewshotError

#: The nominal coverage of the rating intervals (``coverage@90``).
INTERVAL_LEVEL = 0.9
#: ``calibration`` setting -> method, per label kind (``auto``: the kind's default).
METHODS = {"classification": ("temperature", "platt", "none"),
           "regression": ("conformal", "none")}
DEFAULT_METHOD = {"classification": "temperature", "regression": "conformal"}
#: Fewest validation query predictions a calibration is fitted on.
MIN_PREDICTIONS = 20
#: Probabilities are clipped to [EPS, 1 - EPS] before their logit is taken.
EPS = 1e-12
#: The temperature is searched in [1 / BOUND, BOUND].
BOUND = 1e3
_PARAMS = {"temperature": ("temperature",), "platt": ("a", "b"),
           "conformal": ("level", "half_width"), "none": ()}


# --------------------------------------------------------------------------- fitting


def _logits_labels(logits, labels) -> tuple[np.ndarray, np.ndarray]:
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    if z.shape != y.shape:
        raise ValueError(f"{len(z)} logits but {len(y)} labels")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0/1")
    if not np.isfinite(z).all():
        raise ValueError("logits must be finite")
    return z, y


def binary_nll(logits, labels) -> float:
    """Mean negative log-likelihood of 0/1 ``labels`` under ``sigmoid(logits)`` (the BCE)."""
    z, y = _logits_labels(logits, labels)
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def fit_temperature(logits, labels) -> float:
    """The temperature ``T`` that minimizes the NLL of ``labels`` under ``sigmoid(logits /
    T)`` (``logits``, ``labels``: ``[n]``, labels 0/1). The NLL is convex in ``1 / T``; ``T``
    is searched in ``[1e-3, 1e3]`` (logits that rank the wrong way, or carry no signal, give
    the largest ``T``: a constant 0.5)."""
    from scipy.optimize import minimize_scalar

    z, y = _logits_labels(logits, labels)
    if len(z) == 0:
        raise ValueError("no logits to fit a temperature on")

    def nll(log_t: float) -> float:
        s = z * math.exp(-log_t)
        return float(np.mean(np.logaddexp(0.0, s) - y * s))

    bound = math.log(BOUND)
    result = minimize_scalar(nll, bounds=(-bound, bound), method="bounded",
                             options={"xatol": 1e-7})
    return float(math.exp(result.x))


def fit_platt(logits, labels) -> tuple[float, float]:
    """Platt scaling: ``(a, b)`` minimizing the NLL of ``labels`` under ``sigmoid(a * logits +
    b)``, with ``a >= 1e-6`` so that the ranking is never reversed."""
    from scipy.optimize import minimize

    z, y = _logits_labels(logits, labels)
    if len(z) == 0:
        raise ValueError("no logits to fit Platt scaling on")

    def nll(params: np.ndarray) -> tuple[float, np.ndarray]:
        a, b = params
        s = a * z + b
        p = 1.0 / (1.0 + np.exp(-s))
        value = float(np.mean(np.logaddexp(0.0, s) - y * s))
        residual = p - y
        return value, np.array([np.mean(residual * z), np.mean(residual)])

    result = minimize(nll, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B",
                      bounds=[(1e-6, None), (None, None)])
    return float(result.x[0]), float(result.x[1])


def conformal_quantile(residuals, level: float = INTERVAL_LEVEL) -> float:
    """The split-conformal half-width of ``level`` coverage: the ``ceil((n + 1) * level)``-th
    smallest of the ``n`` absolute ``residuals`` (the ``ceil((n + 1) * level) / n`` empirical
    quantile); ``inf`` when ``n`` is too small for that rank (``n < level / (1 - level)``)."""
    r = np.sort(np.abs(np.asarray(residuals, dtype=np.float64).reshape(-1)))
    if len(r) == 0 or not np.isfinite(r).all():
        raise ValueError("conformal_quantile needs finite residuals")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), not {level}")
    rank = math.ceil(round((len(r) + 1) * level, 9))  # round: 20 * 0.9 is 18, not 18.000...04
    return float("inf") if rank > len(r) else float(r[rank - 1])


# --------------------------------------------------------------------------- the calibration


@dataclass(frozen=True)
class Calibration:
    """A fitted calibration: ``method`` (``temperature``, ``platt``, ``conformal`` or
    ``none``), its parameters (``temperature``; ``a``, ``b``; ``level``, ``half_width``) and
    ``info``: what it was fitted on (``fitted_on``, ``n_episodes``, ``n_predictions``, the
    validation NLL / ECE before and after) or, for ``none``, the ``reason``."""

    method: str = "none"
    params: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.method not in _PARAMS:
            raise FewshotError(f"unknown calibration method {self.method!r}; known: "
                               f"{', '.join(_PARAMS)}")
        missing = [k for k in _PARAMS[self.method] if k not in self.params]
        if missing:
            raise FewshotError(f"calibration {self.method!r} lacks {', '.join(missing)}")

    # ---- what it is

    @property
    def calibrated(self) -> bool:
        """Whether probabilities are recalibrated (temperature or Platt)."""
        return self.method in ("temperature", "platt")

    @property
    def half_width(self) -> float | None:
        """The rating interval's half-width, or None without a (finite) one."""
        if self.method != "conformal":
            return None
        q = float(self.params["half_width"])
        return q if math.isfinite(q) else None

    @property
    def has_interval(self) -> bool:
        return self.half_width is not None

    def describe(self) -> str:
        """One line for reports."""
        where = self.info.get("fitted_on", "validation")
        n = self.info.get("n_predictions")
        on = f" fitted on {n} {where} predictions" if n else f" fitted on {where} predictions"
        if self.method == "temperature":
            return f"calibrated by temperature scaling (T = {self.params['temperature']:.3g}){on}"
        if self.method == "platt":
            return (f"calibrated by Platt scaling (a = {self.params['a']:.3g}, b = "
                    f"{self.params['b']:.3g}){on}")
        if self.method == "conformal":
            level = float(self.params["level"])
            return (f"{level:.0%} split-conformal interval, prediction ± "
                    f"{float(self.params['half_width']):.3g}{on}")
        return f"not calibrated: {self.info.get('reason', 'no calibration fitted')}"

    # ---- applying it

    def logits(self, logits):
        """Raw logits (NumPy array or tensor) -> calibrated logits."""
        if self.method == "temperature":
            return logits / float(self.params["temperature"])
        if self.method == "platt":
            return logits * float(self.params["a"]) + float(self.params["b"])
        return logits

    def probabilities(self, probabilities) -> np.ndarray:
        """Uncalibrated probabilities ``[n]`` -> calibrated ones (through their logits,
        clipped to ``[1e-12, 1 - 1e-12]``)."""
        p = np.asarray(probabilities, dtype=np.float64)
        if not self.calibrated:
            return p
        return _sigmoid(self.logits(_logit(p)))

    def interval(self, predictions) -> tuple[np.ndarray, np.ndarray] | None:
        """``(low, high)`` = predictions ∓ half-width, or None without an interval."""
        q = self.half_width
        if q is None:
            return None
        pred = np.asarray(predictions, dtype=np.float64)
        return pred - q, pred + q

    # ---- the saved form

    def to_config(self) -> dict:
        """The ``calibration`` entry of a saved model's config: ``{"method", <params>,
        <info>}``."""
        return {"method": self.method, **self.params, **self.info}

    @classmethod
    def from_config(cls, config: dict | None) -> Calibration:
        """The calibration a saved config records; ``None`` (a model saved before
        calibrations were recorded): the identity. FewshotError on a malformed entry."""
        if config is None:
            return cls("none", info={"reason": "the model was saved before fewshot-apps "
                                               "recorded a calibration"})
        if not isinstance(config, dict) or "method" not in config:
            raise FewshotError("its 'calibration' entry has no 'method'")
        method = config["method"]
        if method not in _PARAMS:
            raise FewshotError(f"unknown calibration method {method!r} (known: "
                               f"{', '.join(_PARAMS)})")
        params, info = {}, {}
        for key, value in config.items():
            if key == "method":
                continue
            if key in _PARAMS[method]:
                try:
                    params[key] = float(value)
                except (TypeError, ValueError):
                    raise FewshotError(f"calibration {key} {value!r} is not a number") from None
            else:
                info[key] = value
        return cls(method, params, info)


UNCALIBRATED = Calibration("none", info={"reason": "no calibration fitted"})


def model_calibration(model) -> Calibration:
    """``model.calibration``, or the identity when the model has none."""
    calibration = getattr(model, "calibration", None)
    return calibration if isinstance(calibration, Calibration) else UNCALIBRATED


def prediction_interval(model, predictions) -> tuple[np.ndarray, np.ndarray] | None:
    """``(low, high)`` of a rating model's predictions, or None when it has no interval."""
    return model_calibration(model).interval(predictions)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1.0 - EPS)
    return np.log(p) - np.log1p(-p)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -z))


# --------------------------------------------------------------------------- the hook


def calibration_method(settings: dict, kind: str) -> tuple[str, dict]:
    """``(method, settings without the key)``: the ``calibration`` setting resolved for
    ``kind`` (``auto``/absent: the kind's default). FewshotError for a method that does not
    apply."""
    rest = dict(settings or {})
    given = str(rest.pop("calibration", "auto") or "auto").strip().lower()
    known = METHODS.get(kind, ("none",))
    method = DEFAULT_METHOD.get(kind, "none") if given == "auto" else given
    if method not in known:
        raise FewshotError(f"calibration={given!r} does not apply to {kind} models; use "
                           f"{', '.join(('auto', *known))}")
    return method, rest


@contextlib.contextmanager
def uncalibrated(model):
    """Within the block, ``model.fit_predict`` gives uncalibrated predictions."""
    had = "calibration" in getattr(model, "__dict__", {})
    previous = getattr(model, "calibration", None)
    try:
        with contextlib.suppress(AttributeError):
            model.calibration = None
        yield model
    finally:
        with contextlib.suppress(AttributeError):
            if had:
                model.calibration = previous
            else:
                del model.calibration


def raw_logits(model, support_ids, support_labels, query_ids) -> np.ndarray:
    """The model's uncalibrated logits of ``query_ids``: ``fit_predict_logits`` where it has
    one (the meta-learners), else the logit of its uncalibrated probabilities."""
    direct = getattr(model, "fit_predict_logits", None)
    with uncalibrated(model):
        if callable(direct):
            return np.asarray(direct(support_ids, support_labels, query_ids), dtype=np.float64)
        return _logit(model.fit_predict(support_ids, support_labels, query_ids))


def _encoded_once(model, episodes: Sequence):
    """Trunk outputs of the episodes' examples computed once, as the validator does."""
    import torch

    from fewshot_apps.core.evaluation import encoded_once
    from fewshot_apps.core.tasks import Task

    if not (isinstance(model, torch.nn.Module) and getattr(model, "encoder", None) is not None):
        return contextlib.nullcontext(model)
    ids = np.unique(np.concatenate([np.concatenate([ep.support_examples, ep.query_examples])
                                    for ep in episodes]).astype(np.int64))
    return encoded_once(model, [Task("calibration", ids, np.zeros(len(ids), np.float32))])


def _uncalibrated_reason(reason: str, method: str) -> Calibration:
    return Calibration("none", info={"requested": method, "reason": reason})


def fit_calibration(model, episodes: Sequence | None, kind: str,
                    method: str | None = None) -> Calibration:
    """Fit ``method`` (default: the kind's) on the query predictions of ``episodes``
    (validation episodes; None or empty: uncalibrated, saying so). Returns the
    :class:`Calibration` (not set on the model)."""
    method = DEFAULT_METHOD.get(kind, "none") if method in (None, "auto") else method
    if method == "none":
        return Calibration("none", info={"reason": "calibration=none was asked for"})
    if episodes is None:
        return _uncalibrated_reason("the data set gives no validation episodes", method)
    episodes = [ep for ep in episodes if len(ep.query_examples)]
    if not episodes:
        return _uncalibrated_reason("no validation episode (no validation task was held out, "
                                    "or none is large enough for one)", method)
    with _encoded_once(model, episodes):
        if kind == "classification":
            outputs = [raw_logits(model, ep.support_examples, ep.support_labels,
                                  ep.query_examples) for ep in episodes]
        else:
            with uncalibrated(model):
                outputs = [np.asarray(model.fit_predict(ep.support_examples, ep.support_labels,
                                                        ep.query_examples), dtype=np.float64)
                           for ep in episodes]
    scores = np.concatenate(outputs)
    labels = np.concatenate([np.asarray(ep.query_labels, dtype=np.float64) for ep in episodes])
    info = {"fitted_on": "validation", "n_episodes": len(episodes),
            "n_tasks": len({ep.task for ep in episodes}), "n_predictions": int(len(labels))}
    if not np.isfinite(scores).all():
        return _uncalibrated_reason("the model's validation predictions are not finite", method)
    if len(labels) < MIN_PREDICTIONS:
        return _uncalibrated_reason(f"only {len(labels)} validation predictions (fewer than "
                                    f"{MIN_PREDICTIONS})", method)
    if kind != "classification":
        q = conformal_quantile(labels - scores, INTERVAL_LEVEL)
        if not math.isfinite(q):
            return _uncalibrated_reason(f"too few validation residuals ({len(labels)}) for a "
                                        f"{INTERVAL_LEVEL:.0%} interval", method)
        return Calibration("conformal", {"level": INTERVAL_LEVEL, "half_width": q}, info)
    if len(np.unique(labels)) < 2:
        return _uncalibrated_reason("the validation queries hold one class only", method)
    from fewshot_apps.core.metrics import ece

    if method == "temperature":
        cal = Calibration("temperature", {"temperature": fit_temperature(scores, labels)}, info)
    else:
        a, b = fit_platt(scores, labels)
        cal = Calibration("platt", {"a": a, "b": b}, info)
    calibrated = cal.logits(scores)
    cal.info.update(nll_before=binary_nll(scores, labels), nll_after=binary_nll(calibrated, labels),
                    ece_before=ece(labels, _sigmoid(scores)),
                    ece_after=ece(labels, _sigmoid(calibrated)))
    return cal


def calibrate(model, dataset, episode: dict, seed: int, method: str | None = None) -> Calibration:
    """Fit ``model``'s calibration on ``dataset``'s validation episodes (its
    ``validation_episodes(episode, seed)``; none without validation tasks) and set it on the
    model (``model.calibration``). Returns it."""
    kind = getattr(model, "kind", None) or dataset.label_kind
    episodes = None
    draw = getattr(dataset, "validation_episodes", None)
    if callable(draw):
        episodes = draw(episode, seed) if dataset.taskset.valid else []
    calibration = fit_calibration(model, episodes, kind, method)
    with contextlib.suppress(AttributeError):
        model.calibration = calibration
    return calibration


def describe_model_calibration(model: Any) -> str:
    """One line about ``model``'s calibration (for reports)."""
    return model_calibration(model).describe()


__all__ = ["Calibration", "INTERVAL_LEVEL", "UNCALIBRATED", "binary_nll", "calibrate",
           "calibration_method", "conformal_quantile", "fit_calibration", "fit_platt",
           "fit_temperature", "model_calibration", "prediction_interval", "raw_logits",
           "uncalibrated"]
