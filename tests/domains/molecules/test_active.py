"""The `active` protocol: labels revealed only once acquired, seeded random acquisition, exact
batches, and a model that knows the labels makes greedy beat random."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fewshot_apps.core.registry import PROTOCOLS
from fewshot_apps.core.tasks import StratifiedSampler, Task, derive_seed
from fewshot_apps.domains.molecules.active import (
    COLUMNS,
    STRATEGIES,
    acquire,
    active_protocol,
    check_sizes,
)
from fewshot_apps.domains.molecules.predict import featurize_assay
from fewshot_apps.domains.molecules.suggest import fingerprints_of
from fewshot_apps.errors import FewshotError

SIZES = (8, 16, 24, 32)


def _smiles() -> list[str]:
    """120 distinct small molecules: chains with a head group."""
    heads = ["", "O", "N", "Cl", "C(=O)O", "c1ccccc1"]
    return [f"{'C' * n}{h}" for h in heads for n in range(1, 21)]


@pytest.fixture(scope="module")
def store():
    molecules = featurize_assay([], _smiles())
    assert (molecules.query_ids >= 0).all()
    return molecules.store


def _task(store, name: str = "planted", positive_every: int = 4) -> Task:
    """Every molecule of the store, a quarter of them active (every 4th)."""
    n = len(store)
    labels = (np.arange(n) % positive_every == 0).astype(np.float32)
    return Task(name, np.arange(n), labels)


class Recorder:
    """A stand-in model: scores each query id by a fixed hash of the id (label-blind) and
    records every call: the ids it was given labels of, those labels, the query ids."""

    def __init__(self):
        self.calls = []

    def fit_predict(self, support_ids, support_labels, query_ids):
        self.calls.append((np.asarray(support_ids).copy(), np.asarray(support_labels).copy(),
                           np.asarray(query_ids).copy()))
        return (np.asarray(query_ids) * 7919 % 101) / 100.0


class Oracle:
    """A model that knows every label (planted): its scores are the true labels."""

    def __init__(self, task: Task):
        self.truth = dict(zip(task.examples.tolist(), task.labels.tolist()))

    def fit_predict(self, support_ids, support_labels, query_ids):
        return np.array([self.truth[int(i)] for i in query_ids], dtype=np.float64)


def _support(task: Task, seed: int = 0) -> np.ndarray:
    return StratifiedSampler(SIZES[0]).sample(task, derive_seed(seed, task.name, SIZES[0],
                                                                0)).support_index


def _calls_per_strategy(recorder: Recorder, n_rounds: int) -> list[list]:
    calls = recorder.calls
    assert len(calls) % n_rounds == 0
    return [calls[i:i + n_rounds] for i in range(0, len(calls), n_rounds)]


def test_labels_are_revealed_only_once_acquired_in_batches_of_eight(store):
    """Each model call gets the labels of the initial support and of the molecules acquired
    so far, exactly 8 more each round, all from the previous call's pool (never the support,
    never twice); the query is every molecule not labelled."""
    task = _task(store)
    truth = dict(zip(task.examples.tolist(), task.labels.tolist()))
    recorder = Recorder()
    rows, skipped = active_protocol(recorder, [task], store, sizes=SIZES, draws=2, seeds=(0,))
    assert skipped.empty and list(rows.columns) == COLUMNS
    groups = _calls_per_strategy(recorder, len(SIZES))
    assert len(groups) == 2 * len(STRATEGIES)  # draws x strategies
    for calls in groups:
        initial = set(calls[0][0].tolist())
        assert len(initial) == SIZES[0]
        previous_support, previous_query = None, None
        for r, (support, labels, query) in enumerate(calls):
            assert len(support) == SIZES[r] and len(set(support.tolist())) == SIZES[r]
            assert labels.tolist() == [truth[int(i)] for i in support]  # the true labels
            assert set(query.tolist()) == set(task.examples.tolist()) - set(support.tolist())
            if r:
                new = set(support.tolist()) - set(previous_support.tolist())
                assert set(previous_support.tolist()) <= set(support.tolist())
                assert len(new) == SIZES[r] - SIZES[r - 1] == 8
                assert new <= set(previous_query.tolist())  # acquired from the pool
                assert not new & initial
            previous_support, previous_query = support, query
    # both strategies of a draw start from the same support (paired)
    assert all(set(g[0][0].tolist()) == set(groups[0][0][0].tolist())
               for g in groups[:len(STRATEGIES)])


def test_the_choice_never_reads_the_hidden_labels(store):
    """Flipping every label outside the support changes no acquisition of a label-blind
    model (the scoring of the rest changes, the choice must not)."""
    task = _task(store)
    support = _support(task)
    flipped = task.labels.copy()
    rest = np.setdiff1d(np.arange(len(task)), support)
    flipped[rest] = 1 - flipped[rest]
    other = Task(task.name, task.examples, flipped)
    prints = fingerprints_of(store, task.examples)
    for strategy in STRATEGIES:
        runs = [acquire(Recorder(), t, support, SIZES, strategy, fingerprints=prints,
                        rng=np.random.default_rng(3)) for t in (task, other)]
        assert [r["labelled"] for r in runs[0]] == [r["labelled"] for r in runs[1]], strategy
        assert runs[0][-1]["metrics"]["actives_found"] != runs[1][-1]["metrics"]["actives_found"]


def test_random_acquisition_is_seeded(store):
    task = _task(store)
    support = _support(task)
    prints = fingerprints_of(store, task.examples)

    def picks(seed):
        return acquire(Recorder(), task, support, SIZES, "random", fingerprints=prints,
                       rng=np.random.default_rng(seed))[-1]["labelled"]

    assert picks(1) == picks(1)
    assert picks(1) != picks(2)
    first = active_protocol(Recorder(), [task], store, sizes=SIZES, strategies=["random"],
                            draws=2, seeds=(0,))[0]
    again = active_protocol(Recorder(), [task], store, sizes=SIZES, strategies=["random"],
                            draws=2, seeds=(0,))[0]
    pd.testing.assert_frame_equal(first, again)
    final = first[(first["metric"] == "actives_found") & (first["n_labelled"] == SIZES[-1])]
    assert len(final) == 2
    with pytest.raises(FewshotError, match="needs a seeded rng"):
        acquire(Recorder(), task, support, SIZES, "random", fingerprints=prints)


def test_greedy_finds_more_actives_than_random_when_the_scores_are_the_labels(store):
    task = _task(store)
    rows, _ = active_protocol(Oracle(task), [task], store, sizes=SIZES,
                              strategies=["random", "greedy"], draws=3, seeds=(0,))
    final = rows[(rows["n_labelled"] == SIZES[-1])]
    found = final[final["metric"] == "actives_found"].groupby("strategy")["value"].mean()
    acquired = final[final["metric"] == "actives_acquired"].groupby("strategy")["value"].mean()
    assert acquired["greedy"] == SIZES[-1] - SIZES[0]  # every acquired molecule an active
    assert found["greedy"] > found["random"] + 5
    initial = found - acquired  # the initial support's actives: the same for both
    assert initial["greedy"] == pytest.approx(initial["random"])
    round0 = rows[rows["round"] == 0]
    assert set(round0.loc[round0["metric"] == "actives_acquired", "value"]) == {0.0}
    # scored on the never-acquired rest: the oracle ranks it perfectly
    assert set(rows.loc[rows["metric"] == "roc_auc", "value"]) == {1.0}


def test_sizes_and_small_tasks(store):
    with pytest.raises(FewshotError, match="must increase"):
        check_sizes([8, 8, 16])
    with pytest.raises(FewshotError, match="strategies"):
        active_protocol(Recorder(), [], store, strategies=["best"])
    task = _task(store).subset(np.arange(40))
    rows, skipped = active_protocol(Recorder(), [task], store, sizes=(8, 16, 64), draws=1)
    assert rows.empty and "too small" in skipped["reason"].iat[0]


def test_registered_with_the_strategies_it_runs():
    entry = PROTOCOLS.get("active")
    assert entry.domain == "molecules" and tuple(entry.strategies) == STRATEGIES
    assert entry.baseline_strategy == STRATEGIES[0] == "random"
