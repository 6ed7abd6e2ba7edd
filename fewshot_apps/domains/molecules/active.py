"""The ``active`` protocol: how well each acquisition strategy of ``mol suggest`` finds actives.

On each test task, per seed and draw:

1. Round 0: a stratified support of ``sizes[0]`` molecules (8 by default; the task's class
   ratio, both classes present: :class:`~fewshot_apps.core.tasks.StratifiedSampler`, the same
   seed as the ``fsmol`` protocol's draw of that size). Only these labels are known.
2. Each round: the model is adapted on the labelled molecules and predicts every other
   molecule of the task (the pool, whose labels stay hidden); the round's metrics are
   recorded; then the strategy chooses the next ``sizes[r + 1] - sizes[r]`` molecules
   (8 by default) from the pool, and only their labels are revealed and added to the
   labelled set. The last round (``sizes[-1]``, 64 by default) adapts, scores and stops.

Every strategy of a draw starts from the same support (paired comparisons); each then acquires
its own molecules. Strategies (:data:`STRATEGIES`): ``random`` (a seeded uniform choice: the
baseline), ``greedy``, ``uncertainty`` and ``ucb`` with their ``mol suggest`` defaults (ucb:
beta 1 and the Tanimoto diversity penalty 0.5 against the labelled molecules and the earlier
picks of the batch). The choice is :func:`fewshot_apps.domains.molecules.suggest.select`, the
function ``mol suggest`` chooses with; the labelled molecules play the support.

Metrics after each round ``r`` (rows with ``n_labelled = sizes[r]``):

* ``actives_found``: actives among all labelled molecules, the initial support's included.
* ``actives_acquired``: actives among the molecules acquired in rounds 1..r, the initial
  support's excluded (0 at round 0). Both are counts; the initial support is the same for
  every strategy of a draw, so their differences between strategies are the same.
* ``roc_auc``, ``auprc``, ``delta_auprc``: the model adapted on the labelled set, scored on
  the never-acquired rest of the task (the pool after round ``r``). That rest differs between
  strategies (each acquired other molecules; greedy takes actives out of it, so the rest's
  positive fraction drops); ``delta_auprc`` is AUPRC minus that rest's positive fraction. A
  round whose rest holds one class only records the counts alone.

A draw is skipped (and counted) when the task is too small (fewer than ``sizes[-1] + 2``
molecules) or its support cannot be drawn. A round that cannot acquire its whole batch (the
pool exhausted: every molecule left is a copy of a labelled one) ends that strategy's draw.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from fewshot_apps.core.tasks import SamplingError, StratifiedSampler, Task, derive_seed
from fewshot_apps.errors import FewshotError

from .suggest import ACQUISITION_STRATEGIES, DEFAULT_BETA, fingerprints_of, select

#: The strategies the protocol compares (``random`` first: the baseline).
STRATEGIES = ACQUISITION_STRATEGIES
BASELINE_STRATEGY = "random"
#: Labelled molecules after each round: a support of 8, then batches of 8 up to 64.
DEFAULT_SIZES = (8, 16, 24, 32, 40, 48, 56, 64)
#: The protocol's tidy rows.
COLUMNS = ["task", "draw", "seed", "strategy", "round", "n_labelled", "metric", "value"]
SKIPPED_COLUMNS = ["task", "seed", "draw", "reason"]
SCORE_METRICS = ("roc_auc", "auprc", "delta_auprc")


def check_sizes(sizes: Sequence[int]) -> tuple[int, ...]:
    """The labelled-set sizes of the rounds: whole numbers, increasing, the first at least 2
    (a support with both classes). FewshotError otherwise."""
    try:
        out = tuple(int(s) for s in sizes)
    except (TypeError, ValueError):
        raise FewshotError(f"active protocol: support sizes {sizes!r} must be whole numbers "
                           "(the labelled molecules after each round)") from None
    if not out or out[0] < 2 or any(b <= a for a, b in zip(out, out[1:])):
        raise FewshotError(f"active protocol: support sizes {list(out)} must increase and "
                           "start at 2 or more (the initial support, then after each round)")
    return out


def check_strategies(strategies: Sequence[str]) -> tuple[str, ...]:
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown or not strategies:
        raise FewshotError(f"active protocol: strategies {list(strategies)}: each one of "
                           f"{', '.join(STRATEGIES)}")
    return tuple(dict.fromkeys(strategies))


def _score(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    from fewshot_apps.core.evaluation import classification_metrics

    if not ((labels == 1).any() and (labels == 0).any()):
        return {}
    metrics = classification_metrics(labels, scores)
    return {m: metrics[m] for m in SCORE_METRICS}


def acquire(model, task: Task, support: np.ndarray, sizes: Sequence[int], strategy: str, *,
            fingerprints: tuple[list, list], rng: np.random.Generator | None = None,
            beta: float = DEFAULT_BETA, diversity: float | None = None) -> list[dict]:
    """One strategy's rounds on one draw: per round ``{"round", "n_labelled", "labelled"
    (task positions, in the order they were labelled), "metrics"}``.

    ``support``: the task positions of the initial support (``len == sizes[0]``);
    ``fingerprints``: ``(canonical SMILES, fingerprints)`` per task position
    (:func:`~fewshot_apps.domains.molecules.suggest.fingerprints_of`); ``rng``: the
    ``random`` strategy's. The model sees the labels of the labelled positions only (its
    ``fit_predict`` support); the pool's labels are read to score the round, never passed
    to the model or the choice.
    """
    from fewshot_apps.core.metrics import actives_among

    canonical, fps = fingerprints
    labelled = [int(i) for i in support]
    rounds = []
    for r, size in enumerate(sizes):
        taken = np.zeros(len(task), dtype=bool)
        taken[labelled] = True
        pool = np.flatnonzero(~taken)
        known = task.labels[labelled]  # revealed: the support and the acquired molecules
        scores = np.asarray(model.fit_predict(task.examples[labelled], known,
                                              task.examples[pool]), dtype=np.float64)
        acquired = np.arange(len(labelled)) >= len(support)  # after the initial support
        metrics = {"actives_found": actives_among(known, np.ones(len(known))),
                   "actives_acquired": actives_among(known, acquired),
                   **_score(task.labels[pool], scores)}
        rounds.append({"round": r, "n_labelled": size, "labelled": list(labelled),
                       "metrics": metrics})
        if r + 1 == len(sizes):
            break
        batch = sizes[r + 1] - size
        chosen = select(scores, [fps[i] for i in pool], [canonical[i] for i in pool],
                        [fps[i] for i in labelled], [canonical[i] for i in labelled], batch,
                        strategy=strategy, beta=beta, diversity=diversity, rng=rng)
        picked = np.flatnonzero(chosen.pick)
        if len(picked) < batch:
            break  # the pool is exhausted: this draw ends here
        labelled += [int(pool[i]) for i in picked[np.argsort(chosen.pick[picked])]]
    return rounds


def active_protocol(model, tasks: Sequence[Task], store, *, sizes: Sequence[int] = DEFAULT_SIZES,
                    strategies: Sequence[str] = STRATEGIES, draws: int = 10,
                    seeds: Sequence[int] = (0,), progress: bool = False
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every strategy on every task x seed x draw (see the module docstring).

    ``model``: ``fit_predict(support_ids, support_labels, query_ids) -> probabilities``;
    ``store``: the molecules (its ECFP gives the fingerprints of the diversity term).
    Returns ``(rows, skipped)``: ``rows`` in :data:`COLUMNS`, ``skipped`` one row per draw
    that could not be made (``task, seed, draw, reason``).
    """
    from fewshot_apps.progress import progress_bar

    sizes = check_sizes(sizes)
    strategies = check_strategies(strategies)
    rows, skipped = [], []
    work = [(task, seed, draw) for task in tasks for seed in seeds for draw in range(draws)]
    prints: dict[str, tuple[list, list]] = {}
    for task, seed, draw in progress_bar(work, total=len(work), desc="active rounds",
                                         enabled=progress):
        if task.metadata.get("evaluable", True) is False:
            skipped.append((task.name, seed, draw, "one class only"))
            continue
        if len(task) < sizes[-1] + 2:
            skipped.append((task.name, seed, draw, f"too small: {len(task)} molecules for "
                            f"{sizes[-1]} labelled plus a rest to score"))
            continue
        try:  # the fsmol protocol's draw of this support size
            episode = StratifiedSampler(sizes[0]).sample(
                task, derive_seed(seed, task.name, sizes[0], draw))
        except SamplingError as exc:
            skipped.append((task.name, seed, draw, f"support: {exc}"))
            continue
        if task.name not in prints:
            prints = {task.name: fingerprints_of(store, task.examples)}  # one task at a time
        for strategy in strategies:
            rng = np.random.default_rng(derive_seed(seed, task.name, "active", strategy, draw))
            for r in acquire(model, task, episode.support_index, sizes, strategy,
                             fingerprints=prints[task.name], rng=rng):
                rows += [(task.name, draw, seed, strategy, r["round"], r["n_labelled"], metric,
                          value) for metric, value in r["metrics"].items()]
    return (pd.DataFrame(rows, columns=COLUMNS),
            pd.DataFrame(skipped, columns=SKIPPED_COLUMNS))


__all__ = ["BASELINE_STRATEGY", "COLUMNS", "DEFAULT_SIZES", "STRATEGIES", "acquire",
           "active_protocol", "check_sizes", "check_strategies"]
