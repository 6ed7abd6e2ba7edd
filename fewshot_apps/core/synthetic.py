"""A planted few-shot problem for tests, smoke runs and examples.

A pool of examples with random Gaussian features; each task picks a random direction ``w``
inside a low-dimensional subspace shared by all tasks (what meta-learning can discover) and
labels its examples by it:

* classification: ``y = 1[x . w > 0]`` (a fraction ``flip`` of labels flipped);
* regression: a star rating ``clip(3 + b + x . w + noise, 0.5, 5)`` with a task bias ``b``
  (the user's generosity), so predicting the support mean is a real baseline to beat.

A learner that only memorizes training tasks cannot beat chance on fresh tasks: their
directions are new.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fewshot_apps.core.tasks import Task, TaskKind


@dataclass
class PlantedProblem:
    """The example pool (``features``: ``[n_examples, n_features]``) and the task generator."""

    kind: TaskKind
    features: torch.Tensor
    basis: np.ndarray  # [n_features, n_relevant], orthonormal columns
    flip: float = 0.05
    noise: float = 0.2

    @classmethod
    def make(
        cls,
        kind: TaskKind,
        n_examples: int = 400,
        n_features: int = 16,
        n_relevant: int = 3,
        seed: int = 0,
        **kwargs,
    ) -> PlantedProblem:
        rng = np.random.default_rng(seed)
        features = rng.standard_normal((n_examples, n_features)).astype(np.float32)
        basis, _ = np.linalg.qr(rng.standard_normal((n_features, n_relevant)))
        return cls(kind, torch.from_numpy(features), basis, **kwargs)

    def tasks(
        self, n_tasks: int, examples_per_task: int = 40, seed: int = 1, prefix: str = "task"
    ) -> list[Task]:
        """``n_tasks`` fresh tasks with their own directions (a different ``seed``, new tasks)."""
        rng = np.random.default_rng(seed)
        x = self.features.numpy()
        out = []
        for t in range(n_tasks):
            w = self.basis @ rng.standard_normal(self.basis.shape[1])
            w /= np.linalg.norm(w)
            ids = np.sort(rng.choice(len(x), size=examples_per_task, replace=False))
            score = x[ids] @ w
            if self.kind == "classification":
                labels = (score > 0).astype(np.float32)
                flip = rng.random(len(ids)) < self.flip
                labels[flip] = 1.0 - labels[flip]
            else:
                bias = rng.uniform(-1.0, 1.0)
                labels = np.clip(
                    3.0 + bias + score + self.noise * rng.standard_normal(len(ids)), 0.5, 5.0
                )
            out.append(Task(f"{prefix}{t}", ids, labels.astype(np.float32)))
        return out


def quick_train(
    learner,
    tasks: list[Task],
    sampler,
    steps: int = 200,
    meta_batch_size: int = 4,
    lr: float = 3e-3,
    seed: int = 0,
) -> float:
    """A bare meta-training loop (Adam, no files) for tests and smoke runs; the last loss.

    :func:`fewshot_apps.core.training.meta_train` is the real loop.
    """
    from fewshot_apps.core.learners.base import EpisodeBatch
    from fewshot_apps.core.tasks import derive_seed, sample_episodes

    optimizer = torch.optim.Adam([p for p in learner.parameters() if p.requires_grad], lr=lr)
    learner.train()
    loss = torch.tensor(float("nan"))
    for step in range(steps):
        episodes = list(sample_episodes(tasks, sampler, meta_batch_size, derive_seed(seed, step)))
        loss = learner.loss(EpisodeBatch.from_episodes(episodes))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return float(loss.detach())


def score(learner, tasks: list[Task], sampler, seed: int = 0) -> dict[str, float]:
    """One episode per task scored with ``fit_predict``.

    Classification: ``{"auc": mean ROC-AUC}``; regression: ``{"mse": ..., "baseline_mse":
    ...}`` where the baseline predicts each task's support mean.
    """
    from fewshot_apps.core.metrics import roc_auc
    from fewshot_apps.core.tasks import derive_seed

    aucs, mse, base = [], [], []
    for task in tasks:
        ep = sampler.sample(task, derive_seed(seed, task.name))
        pred = learner.fit_predict(ep.support_examples, ep.support_labels, ep.query_examples)
        if learner.kind == "classification":
            if len(np.unique(ep.query_labels)) == 2:
                aucs.append(roc_auc(ep.query_labels, pred))
        else:
            mse.append(np.mean((pred - ep.query_labels) ** 2))
            base.append(np.mean((ep.support_labels.mean() - ep.query_labels) ** 2))
    if learner.kind == "classification":
        return {"auc": float(np.mean(aucs))}
    return {"mse": float(np.mean(mse)), "baseline_mse": float(np.mean(base))}


def run_planted(
    name: str, kind: TaskKind, steps: int = 200, seed: int = 0, lr: float = 3e-3, **config
) -> dict[str, float]:
    """Meta-train learner ``name`` on a small planted problem and score it on fresh tasks.

    Tiny sizes (16 features, 3 relevant; TableEncoder 32 -> 16; 5+5-shot classification or
    10-shot regression) so that a few hundred steps take seconds on a CPU. Returns
    :func:`score`'s dict.
    """
    from fewshot_apps.core.encoders import TableEncoder
    from fewshot_apps.core.learners import build_learner
    from fewshot_apps.core.tasks import BalancedSampler, RandomSampler

    torch.manual_seed(seed)
    problem = PlantedProblem.make(kind, seed=seed)
    train = problem.tasks(60, seed=100 + seed, prefix="train")
    test = problem.tasks(30, seed=200 + seed, prefix="test")
    learner = build_learner(
        name, TableEncoder(problem.features, hidden=32, out_dim=16, depth=2), kind, **config
    )
    if kind == "classification":
        train_sampler, test_sampler = BalancedSampler(5, n_query=10), BalancedSampler(5)
    else:
        train_sampler, test_sampler = RandomSampler(10, n_query=10), RandomSampler(10)
    quick_train(learner, train, train_sampler, steps=steps, seed=seed, lr=lr)
    return score(learner, test, test_sampler, seed=seed)
