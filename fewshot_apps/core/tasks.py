"""Few-shot tasks, task sets, episodes and seeded episode samplers.

A :class:`Task` is one assay or one user: the ids of its examples (molecule or item indices
into the domain's example pool) and one label per example. Nothing here knows which domain
the ids come from.

Samplers turn a task into an :class:`Episode` (support and query) with a seeded RNG:

* :class:`RandomSampler`: ``support_size`` random examples; the query is ``n_query`` random
  examples of the rest, or all of the rest.
* :class:`BalancedSampler`: ``shots`` positives + ``shots`` negatives (PAR / Meta-MGNN's
  2-way K-shot; support size = 2K).
* :class:`StratifiedSampler`: ``support_size`` examples with the task's class ratio, the query is
  all the rest (FS-Mol). A draw whose query lacks a class is unusable and raises
  :class:`UnusableDrawError`, which evaluation counts as a skipped draw.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from fewshot_apps.errors import FewshotError

TaskKind = Literal["classification", "regression"]


class SamplingError(FewshotError):
    """An episode cannot be drawn from a task."""


class TaskTooSmallError(SamplingError):
    """The task has too few examples (or too few of a class) for the requested sizes."""


class UnusableDrawError(SamplingError):
    """A draw was made but cannot be scored (its query lacks a class); skip and count it."""


def derive_seed(*parts: object) -> int:
    """A stable 63-bit seed from any parts (ints, strings), the same on every platform.

    Python's ``hash`` of a string changes between processes; this does not.
    """
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def as_rng(seed: int | np.random.Generator) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


@dataclass
class Task:
    """One few-shot task.

    Attributes:
        name: the assay id or user id.
        examples: int64 array ``[n]`` of example ids into the domain's example pool.
        labels: float32 array ``[n]``: 0/1 for classification, the rating for regression.
        extras: arrays aligned with ``examples`` (e.g. ``timestamp``, ``row``).
        metadata: anything else about the task (source file, assay type, user features).
    """

    name: str
    examples: np.ndarray
    labels: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.examples = np.asarray(self.examples, dtype=np.int64)
        self.labels = np.asarray(self.labels, dtype=np.float32)
        if self.examples.shape != self.labels.shape or self.examples.ndim != 1:
            raise ValueError(
                f"task {self.name!r}: examples {self.examples.shape} and labels "
                f"{self.labels.shape} must be 1-D arrays of the same length"
            )
        for key, value in self.extras.items():
            if len(value) != len(self.examples):
                raise ValueError(f"task {self.name!r}: extra {key!r} is not aligned with examples")

    def __len__(self) -> int:
        return len(self.examples)

    @property
    def n_positive(self) -> int:
        return int((self.labels == 1).sum())

    @property
    def n_negative(self) -> int:
        return int((self.labels == 0).sum())

    @property
    def has_both_classes(self) -> bool:
        return self.n_positive > 0 and self.n_negative > 0

    def subset(self, positions: np.ndarray) -> Task:
        """The task restricted to the given positions (order kept)."""
        return Task(
            self.name,
            self.examples[positions],
            self.labels[positions],
            {k: v[positions] for k, v in self.extras.items()},
            dict(self.metadata),
        )


@dataclass
class TaskSet:
    """Train / valid / test task lists of one data set.

    Test tasks never serve for model selection; ``valid`` tasks do.
    """

    name: str
    kind: TaskKind
    train: list[Task]
    valid: list[Task]
    test: list[Task]
    metadata: dict = field(default_factory=dict)

    SPLITS = ("train", "valid", "test")

    def split(self, name: str) -> list[Task]:
        if name not in self.SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {self.SPLITS}")
        return getattr(self, name)

    def __iter__(self) -> Iterator[tuple[str, Task]]:
        for split in self.SPLITS:
            for task in self.split(split):
                yield split, task

    def summary(self) -> pd.DataFrame:
        """One row per task: split, name, size and (classification) class counts."""
        rows = []
        for split, task in self:
            row = {"split": split, "task": task.name, "n": len(task)}
            if self.kind == "classification":
                row.update(positives=task.n_positive, negatives=task.n_negative)
            rows.append(row)
        return pd.DataFrame(rows)


@dataclass
class Episode:
    """A support set and a query set drawn from one task.

    ``support_index`` / ``query_index`` are positions in the task (so duplicate measurements
    stay distinct); ``*_examples`` and ``*_labels`` are the ids and labels at those positions.
    """

    task: str
    support_index: np.ndarray
    query_index: np.ndarray
    support_examples: np.ndarray
    support_labels: np.ndarray
    query_examples: np.ndarray
    query_labels: np.ndarray
    extras: dict = field(default_factory=dict)

    @classmethod
    def from_positions(
        cls, task: Task, support: np.ndarray, query: np.ndarray, **extras: object
    ) -> Episode:
        support = np.asarray(support, dtype=np.int64)
        query = np.asarray(query, dtype=np.int64)
        return cls(
            task=task.name,
            support_index=support,
            query_index=query,
            support_examples=task.examples[support],
            support_labels=task.labels[support],
            query_examples=task.examples[query],
            query_labels=task.labels[query],
            extras=dict(extras),
        )

    @property
    def support_size(self) -> int:
        return len(self.support_index)


def _rest(n: int, taken: np.ndarray) -> np.ndarray:
    mask = np.ones(n, dtype=bool)
    mask[taken] = False
    return np.flatnonzero(mask)


def _take_query(rest: np.ndarray, n_query: int | None, rng: np.random.Generator) -> np.ndarray:
    if n_query is None or n_query >= len(rest):
        return rest
    return np.sort(rng.choice(rest, size=n_query, replace=False))


@dataclass(frozen=True)
class RandomSampler:
    """``support_size`` random examples; query = ``n_query`` random others (None: all others)."""

    support_size: int
    n_query: int | None = None
    min_query: int = 1

    def sample(self, task: Task, seed: int | np.random.Generator) -> Episode:
        rng = as_rng(seed)
        n = len(task)
        needed = self.support_size + (self.n_query if self.n_query is not None else self.min_query)
        if n < needed:
            raise TaskTooSmallError(
                f"task {task.name!r} has {n} examples; support {self.support_size} + query "
                f"{self.n_query if self.n_query is not None else f'>= {self.min_query}'} "
                f"needs {needed}"
            )
        support = np.sort(rng.choice(n, size=self.support_size, replace=False))
        query = _take_query(_rest(n, support), self.n_query, rng)
        return Episode.from_positions(task, support, query)


@dataclass(frozen=True)
class BalancedSampler:
    """``shots`` positives + ``shots`` negatives; query = ``n_query`` random others or all.

    Classification only. The query of a draw is guaranteed nothing about its classes when
    ``n_query`` is set (training episodes); with ``n_query=None`` it is every other example.
    """

    shots: int
    n_query: int | None = None

    def sample(self, task: Task, seed: int | np.random.Generator) -> Episode:
        rng = as_rng(seed)
        pos = np.flatnonzero(task.labels == 1)
        neg = np.flatnonzero(task.labels == 0)
        if len(pos) < self.shots or len(neg) < self.shots:
            raise TaskTooSmallError(
                f"task {task.name!r} has {len(pos)} positives and {len(neg)} negatives; "
                f"a {self.shots}-shot support needs {self.shots} of each"
            )
        support = np.sort(
            np.concatenate(
                [
                    rng.choice(pos, size=self.shots, replace=False),
                    rng.choice(neg, size=self.shots, replace=False),
                ]
            )
        )
        rest = _rest(len(task), support)
        if len(rest) == 0:
            raise TaskTooSmallError(
                f"task {task.name!r} has {len(task)} examples, none left for a query after a "
                f"{self.shots}-shot support"
            )
        query = _take_query(rest, self.n_query, rng)
        return Episode.from_positions(task, support, query)


@dataclass(frozen=True)
class StratifiedSampler:
    """FS-Mol's draw: ``support_size`` examples with the task's class ratio; query = the rest.

    The support holds ``round(support_size * p)`` positives (``p`` = the task's positive
    fraction), at least one of each class. A query without both classes cannot be scored:
    :class:`UnusableDrawError` is raised so that evaluation skips and counts the draw.
    """

    support_size: int
    n_query: int | None = None

    def positives_in_support(self, task: Task) -> int:
        p = task.n_positive / max(len(task), 1)
        return int(min(max(round(self.support_size * p), 1), self.support_size - 1))

    def sample(self, task: Task, seed: int | np.random.Generator) -> Episode:
        rng = as_rng(seed)
        pos = np.flatnonzero(task.labels == 1)
        neg = np.flatnonzero(task.labels == 0)
        n_pos = self.positives_in_support(task)
        n_neg = self.support_size - n_pos
        if len(pos) < n_pos or len(neg) < n_neg or len(task) <= self.support_size:
            raise TaskTooSmallError(
                f"task {task.name!r} ({len(pos)} positives, {len(neg)} negatives) is too small "
                f"for a stratified support of {self.support_size} ({n_pos} positives, "
                f"{n_neg} negatives) plus a query"
            )
        support = np.sort(
            np.concatenate(
                [rng.choice(pos, size=n_pos, replace=False), rng.choice(neg, size=n_neg, replace=False)]
            )
        )
        query = _take_query(_rest(len(task), support), self.n_query, rng)
        query_labels = task.labels[query]
        if not ((query_labels == 1).any() and (query_labels == 0).any()):
            raise UnusableDrawError(
                f"task {task.name!r}: the query of this support-{self.support_size} draw has one "
                "class only"
            )
        return Episode.from_positions(task, support, query)


def sample_episodes(
    tasks: Sequence[Task], sampler, n_episodes: int, seed: int
) -> Iterator[Episode]:
    """Training episodes: a random task per episode (tasks too small for the sampler skipped).

    Raises SamplingError when no task can serve the sampler at all.
    """
    rng = np.random.default_rng(seed)
    usable = list(tasks)
    if not usable:
        raise SamplingError("no tasks to sample episodes from")
    produced = 0
    failures = 0
    while produced < n_episodes:
        task = usable[rng.integers(len(usable))]
        try:
            episode = sampler.sample(task, rng)
        except SamplingError:
            failures += 1
            if failures > 100 * max(n_episodes, 1) + 1000:
                raise SamplingError(
                    f"could not draw episodes with {sampler!r} from {len(usable)} tasks"
                ) from None
            continue
        produced += 1
        yield episode
