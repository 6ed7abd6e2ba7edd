"""Meta-training and evaluating learners on molecule data sets (the `mol` commands).

Settings come as one flat dict (from TOML or ``--set key=value``): training keys
(:class:`~fewshot_apps.core.training.TrainConfig`), episode keys (``k_shot``, ``n_query``),
``encoder.<key>`` for :class:`MoleculeEncoder` and ``learner.<key>`` for the learner's config.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fewshot_apps.core.evaluation import encoded_once, k_shot_protocol
from fewshot_apps.core.learners import build_learner
from fewshot_apps.core.persistence import load_model
from fewshot_apps.core.tasks import BalancedSampler, derive_seed
from fewshot_apps.core.training import (
    TrainConfig,
    TrainResult,
    meta_train,
    seed_everything,
)
from fewshot_apps.core.settings import split_settings as split_run_settings
from fewshot_apps.errors import FewshotError

from .dataset import MoleculeDataset
from .encoder import MoleculeEncoder

EPISODE_DEFAULTS = {"k_shot": 10, "n_query": 16, "valid_draws": 3}


def split_settings(settings: dict) -> tuple[dict, dict, dict, dict]:
    """``(train, episode, encoder, learner)`` settings, with this domain's episode keys."""
    return split_run_settings(settings, EPISODE_DEFAULTS)


def _encoder_settings(encoder: dict) -> dict:
    defaults = MoleculeEncoder().settings
    out = dict(defaults)
    for key, value in encoder.items():
        if key not in defaults:
            raise FewshotError(f"unknown encoder setting {key!r}; known: {', '.join(defaults)}")
        kind = type(defaults[key])
        out[key] = (str(value).lower() in ("1", "true", "yes")) if kind is bool else kind(value)
    return out


def train_molecule_learner(
    dataset: MoleculeDataset,
    learner_name: str,
    out_dir: str | Path,
    settings: dict | None = None,
    resume: bool = False,
    progress: bool = True,
) -> tuple[object, TrainResult]:
    """Meta-train ``learner_name`` on the data set's training tasks with K-shot balanced
    episodes; select on its validation tasks (never test tasks). Returns (learner, result)."""
    train, episode, encoder, learner_cfg = split_settings(settings or {})
    config = TrainConfig.from_dict(train)
    ts = dataset.task_set()
    if not ts.train:
        raise FewshotError(f"{dataset.name}: no training tasks")
    seed_everything(config.seed)
    enc = MoleculeEncoder(dataset.store, **_encoder_settings(encoder))
    learner = build_learner(learner_name, enc, "classification", **learner_cfg)
    sampler = BalancedSampler(episode["k_shot"], episode["n_query"])
    validate = k_shot_validator(ts.valid, episode["k_shot"], episode["valid_draws"], config.seed)
    result = meta_train(
        learner, ts.train, ts.valid, sampler, valid_fn=validate if ts.valid else None,
        config=config, out_dir=out_dir, resume=resume, progress=progress,
        extra_config={**dataset.saved_model_config(), "encoder": enc.config(),
                      "episode": episode},
    )
    return learner, result


def k_shot_validator(tasks, k_shot: int, draws: int, seed: int):
    """Validation score: mean ROC-AUC over ``draws`` K-shot draws per validation task, query =
    every other labelled molecule (the test protocol, on validation tasks only). Molecules
    are encoded once per evaluation."""

    def validate(learner) -> float:
        with encoded_once(learner, tasks):
            results, _ = k_shot_protocol(learner, tasks, shots=(k_shot,), draws=draws,
                                         seeds=(derive_seed(seed, "valid"),))
        return mean_test_auc(results)

    return validate


def load_molecule_model(path: str | Path, dataset: MoleculeDataset | None = None):
    """A saved molecule model; its encoder reads molecules from ``dataset.store``."""
    learner = load_model(path)
    if dataset is not None:
        learner.encoder.set_store(dataset.store)
    return learner


def mean_test_auc(results) -> float:
    per_task = results[results["metric"] == "roc_auc"].groupby("task")["value"].mean()
    return float(np.mean(per_task))
