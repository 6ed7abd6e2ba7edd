"""Evaluation protocols: fixed, seeded draws per task -> a tidy per-draw DataFrame.

A *model* here is anything with ``fit_predict(support_ids, support_labels, query_ids) ->
scores`` (meta-learners and baselines alike). Draw ``d`` of seed ``s`` on task ``t`` at
support size ``n`` uses ``derive_seed(s, t, n, d)``, so every model sees the same episodes.
Draws that cannot be made (task too small, query with one class) are skipped and counted.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from fewshot_apps.core.encoders import (
    has_similarity,
    has_support_affinity,
    label_prior,
    support_affinity,
)
from fewshot_apps.core.metrics import auprc, brier, ece, ece_floor, roc_auc
from fewshot_apps.core.tasks import (
    BalancedSampler,
    SamplingError,
    StratifiedSampler,
    Task,
    UnusableDrawError,
    derive_seed,
)


def classification_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """ROC-AUC, AUPRC (average precision) and ΔAUPRC = AUPRC - positive fraction; and, when
    the scores are probabilities (all in [0, 1]), their calibration: ``brier``, ``ece`` and
    ``ece_floor`` (the ``ece`` exact probabilities would score on this query).

    ``labels [q]`` 0/1 with both classes (one class: ``OneClassError``, a ValueError) and
    ``scores [q]``; the functions live in :mod:`fewshot_apps.core.metrics`.
    """
    ap = auprc(labels, scores)
    out = {
        "roc_auc": roc_auc(labels, scores),
        "auprc": ap,
        "delta_auprc": ap - float(np.mean(labels)),
    }
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) and scores.min() >= 0 and scores.max() <= 1:
        out.update(brier=brier(labels, scores), ece=ece(labels, scores),
                   ece_floor=ece_floor(labels, scores))
    return out


#: Equal-width probability bins of the reliability diagram (the ``ece`` metric's 15).
RELIABILITY_BINS = 15
RELIABILITY_COLUMNS = ["size", "bin", "n", "sum_probability", "sum_label"]


def reliability_bins(labels: np.ndarray, probabilities: np.ndarray,
                     bins: int = RELIABILITY_BINS) -> np.ndarray:
    """``[bins, 3]``: per equal-width probability bin, the count, the summed predicted
    probability and the summed 0/1 label (a probability of exactly 1 falls in the last bin,
    as in :func:`~fewshot_apps.core.metrics.ece`). Sums, so that draws and tasks pool by
    adding; the reliability diagram plots ``sum_label / n`` against ``sum_probability / n``."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    return np.stack([np.bincount(which, minlength=bins).astype(np.float64),
                     np.bincount(which, weights=p, minlength=bins),
                     np.bincount(which, weights=y, minlength=bins)], axis=1)


def draw_episodes(tasks: Sequence[Task], make_sampler: Callable[[int], object],
                  sizes: Sequence[int], draws: int = 10, seeds: Sequence[int] = (0,)):
    """The protocols' fixed, seeded draws: ``(task, size, seed, draw, episode, reason)`` for
    every task x size x seed x draw, ``episode`` None (and ``reason`` why) where the draw
    cannot be made (a task with ``metadata["evaluable"] = False``, a task too small, an
    unusable draw). The evaluation and the validation episodes a calibration is fitted on
    (a data set's ``validation_episodes``) draw through here."""
    for task in tasks:
        for size in sizes:
            for seed in seeds:
                for draw in range(draws):
                    if task.metadata.get("evaluable", True) is False:
                        yield task, size, seed, draw, None, "one class only"
                        continue
                    try:
                        episode = make_sampler(size).sample(
                            task, derive_seed(seed, task.name, size, draw))
                    except UnusableDrawError as exc:
                        yield task, size, seed, draw, None, f"unusable draw: {exc}"
                        continue
                    except SamplingError as exc:
                        yield task, size, seed, draw, None, f"too small: {exc}"
                        continue
                    yield task, size, seed, draw, episode, ""


def evaluate_classification(
    model,
    tasks: Sequence[Task],
    make_sampler: Callable[[int], object],
    sizes: Sequence[int],
    draws: int = 10,
    seeds: Sequence[int] = (0,),
    progress: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score ``model`` on every task x size x seed x draw.

    Returns ``(results, skipped)``: ``results`` has one row per draw and metric (``task,
    size, seed, draw, metric, value``); ``skipped`` one row per draw that could not be made
    (``task, size, seed, draw, reason``). Tasks with ``metadata["evaluable"] = False`` (one
    class) are skipped whole. When the scores are probabilities, ``results.attrs
    ["reliability"]`` holds the reliability diagram's bins pooled over tasks, seeds and draws
    per size: rows ``(size, bin, n, sum_probability, sum_label)``
    (:func:`reliability_bins`).
    """
    from fewshot_apps.progress import progress_bar

    rows, skipped = [], []
    bins: dict[int, np.ndarray] = {}
    probabilities = True
    n_work = len(tasks) * len(sizes) * len(seeds) * draws
    work = draw_episodes(tasks, make_sampler, sizes, draws, seeds)
    for task, size, seed, draw, episode, reason in progress_bar(
            work, total=n_work, desc="evaluating", enabled=progress):
        if episode is None:
            skipped.append((task.name, size, seed, draw, reason))
            continue
        t0 = time.perf_counter()
        scores = model.fit_predict(
            episode.support_examples, episode.support_labels, episode.query_examples
        )
        seconds = time.perf_counter() - t0
        for metric, value in classification_metrics(episode.query_labels, scores).items():
            rows.append((task.name, size, seed, draw, metric, value, seconds))
        scores = np.asarray(scores, dtype=np.float64)
        if probabilities and len(scores) and scores.min() >= 0 and scores.max() <= 1:
            add = reliability_bins(episode.query_labels, scores)
            bins[size] = bins[size] + add if size in bins else add
        elif len(scores):
            probabilities = False
    results = pd.DataFrame(
        rows, columns=["task", "size", "seed", "draw", "metric", "value", "seconds"]
    )
    if probabilities and bins:
        results.attrs["reliability"] = [
            (int(size), b, int(table[b, 0]), float(table[b, 1]), float(table[b, 2]))
            for size, table in bins.items() for b in range(len(table))]
    return results, pd.DataFrame(skipped, columns=["task", "size", "seed", "draw", "reason"])


def k_shot_protocol(model, tasks, shots=(10,), draws=10, seeds=(0, 1, 2), progress=False):
    """PAR / Meta-MGNN: K positives + K negatives, query = every other labelled molecule."""
    return evaluate_classification(
        model, tasks, lambda k: BalancedSampler(k), shots, draws, seeds, progress
    )


def fsmol_protocol(model, tasks, sizes=(16, 32, 64, 128), draws=10, seeds=(0,), progress=False):
    """FS-Mol: stratified supports of 16/32/64/128, query = all other molecules."""
    return evaluate_classification(
        model, tasks, lambda n: StratifiedSampler(n), sizes, draws, seeds, progress
    )


def classification_protocol(protocol: str, model, tasks: Sequence[Task], *, shots=(10,),
                            support_sizes=(16, 32, 64, 128), draws: int = 10, seeds=(0,),
                            progress: bool = False) -> tuple[pd.DataFrame, int]:
    """``k-shot`` (K positives + K negatives, for each K in ``shots``) or ``fsmol``
    (stratified supports of ``support_sizes``) on ``tasks``, the model's encoder run once
    over their examples. Returns the tidy rows (task, shots, support_size, item_split,
    draw, seed, metric, value) and the number of skipped draws; ``rows.attrs
    ["reliability"]``: the reliability diagram's bins of probability scores, ``(shots,
    support_size, bin, n, sum_probability, sum_label)`` pooled over tasks, seeds and draws."""
    from fewshot_apps.core.registry import PROTOCOLS

    entry = PROTOCOLS.get(protocol)
    run = entry.load()
    k_shot = entry.support == "shots"  # K per class (k-shot) vs a support size (fsmol)
    sizes = {"shots": tuple(shots)} if k_shot else {"sizes": tuple(support_sizes)}
    with encoded_once_if_encoder(model, tasks):
        results, skipped = run(model, tasks, **sizes, draws=draws, seeds=tuple(seeds),
                               progress=progress)
    out = pd.DataFrame({
        "task": results["task"],
        "shots": results["size"] if k_shot else pd.NA,
        "support_size": results["size"] * 2 if k_shot else results["size"],
        "item_split": pd.NA, "draw": results["draw"], "seed": results["seed"],
        "metric": results["metric"], "value": results["value"],
    })
    if results.attrs.get("reliability"):
        # (shots, support_size, bin, n, sum_probability, sum_label), as the rows name sizes
        out.attrs["reliability"] = [
            (size if k_shot else None, size * 2 if k_shot else size, *rest)
            for size, *rest in results.attrs["reliability"]]
    return out, len(skipped)


def mean_over_tasks(results: pd.DataFrame, metric: str) -> float:
    """``metric`` averaged over draws within each task, then over tasks (each task counts
    once, however many draws it had): the model-selection score of a validation run."""
    per_task = results[results["metric"] == metric].groupby("task")["value"].mean()
    return float(np.mean(per_task))


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Mean per task over draws and seeds, then mean / std over tasks, per size and metric."""
    per_task = results.groupby(["size", "metric", "task"])["value"].mean().reset_index()
    return (
        per_task.groupby(["size", "metric"])["value"]
        .agg(mean="mean", std="std", n_tasks="size")
        .reset_index()
    )


class FrozenTrunk(torch.nn.Module):
    """An encoder whose trunk outputs are computed once for a fixed set of example ids.

    Evaluation runs many draws on the same task; no learner adapts the encoder's trunk, so
    its outputs are computed once and looked up. The last layer stays live (the same module
    under the same parameter names), so ``maml`` still adapts it.
    """

    def __init__(self, encoder: torch.nn.Module, example_ids: np.ndarray, batch_size: int = 2048):
        super().__init__()
        self.out_dim = encoder.out_dim
        self._encoder = [encoder]  # a list: not registered as a submodule (names stay flat)
        split = callable(getattr(encoder, "forward_trunk", None))
        ids = torch.as_tensor(np.unique(np.asarray(example_ids)), dtype=torch.long)
        device = next(encoder.parameters()).device
        with torch.no_grad():
            chunks = [
                (encoder.forward_trunk(c.to(device)) if split else encoder(c.to(device)))
                for c in torch.split(ids, batch_size)
            ]
        self.register_buffer("table", torch.cat(chunks))
        lookup = torch.full((int(ids.max()) + 1 if len(ids) else 1,), -1, dtype=torch.long)
        lookup[ids] = torch.arange(len(ids))
        self.register_buffer("lookup", lookup)
        self.split = split
        if split:
            for name in encoder.last_layer_names():
                top = name.split(".")[0]
                setattr(self, top, getattr(encoder, top))

    def last_layer_names(self) -> list[str]:
        return self._encoder[0].last_layer_names()

    def label_prior(self, example_ids: torch.Tensor) -> torch.Tensor | None:
        """The wrapped encoder's label prior (not a trunk output: it is looked up live)."""
        return label_prior(self._encoder[0], example_ids)

    @property
    def has_support_affinity(self) -> bool:
        return has_support_affinity(self._encoder[0])

    def support_affinity(self, support_ids: torch.Tensor, candidate_ids: torch.Tensor,
                         support_weights: torch.Tensor | None = None) -> torch.Tensor | None:
        """The wrapped encoder's support affinity (computed live, as the label prior)."""
        return support_affinity(self._encoder[0], support_ids, candidate_ids, support_weights)

    @property
    def has_similarity(self) -> bool:
        return has_similarity(self._encoder[0])

    def similarity(self, a_ids: torch.Tensor, b_ids: torch.Tensor) -> torch.Tensor:
        """The wrapped encoder's fixed similarity (not a trunk output: computed live)."""
        return self._encoder[0].similarity(a_ids, b_ids)

    def self_similarity(self, ids: torch.Tensor) -> torch.Tensor:
        return self._encoder[0].self_similarity(ids)

    def forward_trunk(self, example_ids: torch.Tensor) -> torch.Tensor:
        rows = self.lookup[example_ids.to(self.lookup.device)]
        if bool((rows < 0).any()):
            raise KeyError("FrozenTrunk: an example id was not encoded in advance")
        return self.table[rows]

    def forward_last(self, hidden: torch.Tensor, params=None) -> torch.Tensor:
        return self._encoder[0].forward_last(hidden, params) if self.split else hidden

    def forward(self, example_ids: torch.Tensor) -> torch.Tensor:
        return self.forward_last(self.forward_trunk(example_ids))


def encoded_once_if_encoder(model, tasks: Sequence[Task]):
    """:func:`encoded_once` for a model with an encoder (a ``torch.nn.Module`` learner or
    transfer baseline) or with members that have one (an ensemble); nothing for others
    (classic baselines)."""
    if isinstance(model, torch.nn.Module) and (getattr(model, "encoder", None) is not None
                                               or getattr(model, "members", None) is not None):
        return encoded_once(model, tasks)
    return contextlib.nullcontext()


@contextlib.contextmanager
def encoded_once(learner, tasks: Sequence[Task]):
    """Within the block, ``learner`` reads the trunk outputs of the tasks' examples from a
    table computed once (eval mode), instead of re-running its encoder on every draw; an
    ensemble (``learner.members``): each of its members does."""
    members = getattr(learner, "members", None)
    if members is not None:
        with contextlib.ExitStack() as stack:
            for member in members:
                stack.enter_context(encoded_once(member, tasks))
            yield learner
        return
    original = learner.encoder
    was_training = learner.training
    learner.eval()
    ids = np.concatenate([t.examples for t in tasks]) if tasks else np.zeros(0, dtype=np.int64)
    learner.encoder = FrozenTrunk(original, ids)
    try:
        yield learner
    finally:
        learner.encoder = original
        learner.train(was_training)
