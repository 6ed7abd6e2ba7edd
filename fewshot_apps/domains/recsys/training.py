"""Meta-training and evaluating learners on cold-start users (the `rec` commands).

Settings come as one flat dict: training keys (:class:`~fewshot_apps.core.training.TrainConfig`),
episode keys (``k_support``, ``n_query``), ``encoder.<key>`` for :class:`ItemGraphEncoder`
and ``learner.<key>`` for the learner's config. Model selection uses validation users only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fewshot_apps.core.evaluation import encoded_once
from fewshot_apps.core.learners import build_learner
from fewshot_apps.core.persistence import load_model
from fewshot_apps.core.training import (
    TrainConfig,
    TrainResult,
    meta_train,
    seed_everything,
)
from fewshot_apps.core.settings import split_settings as split_run_settings
from fewshot_apps.errors import FewshotError

from .dataset import RecsysDataset
from .encoder import ItemGraphEncoder
from .episodes import ColdStartSampler
from .vocab import Vocabulary

EPISODE_DEFAULTS = {"k_support": 10, "n_query": 10, "valid_draws": 1}


def split_settings(settings: dict) -> tuple[dict, dict, dict, dict]:
    """``(train, episode, encoder, learner)`` settings, with this domain's episode keys."""
    return split_run_settings(settings, EPISODE_DEFAULTS)


def _encoder_settings(encoder: dict) -> dict:
    defaults = ItemGraphEncoder(shape=_NO_GRAPH).settings
    unknown = set(encoder) - set(defaults)
    if unknown:
        raise FewshotError(f"unknown encoder setting(s) {sorted(unknown)}; known: {', '.join(defaults)}")
    return {k: _parse_like(v, encoder.get(k, v)) for k, v in defaults.items()}


# The smallest shape, to read the encoder's default settings without a graph.
_NO_GRAPH = {"n_items": 1, "item_dim": 1, "n_users": 1, "user_dim": 0, "n_genres": 0, "n_tags": 0}


def _parse_like(default, value):
    """``value`` (maybe a ``--set`` string) as the type of ``default``."""
    if isinstance(default, bool):
        return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
    return type(default)(value)


def rating_validator(dataset: RecsysDataset, draws: int, seed: int):
    """Validation score: minus the RMSE on the 10 query ratings of validation users (all
    support sizes of the protocol), items encoded once per evaluation."""
    episodes = dataset.evaluation_episodes("valid", seed=seed, n_draws=draws)
    if not episodes:
        raise FewshotError(f"{dataset.name}: no validation user has enough ratings")
    tasks = dataset.taskset.valid

    def validate(learner) -> float:
        with encoded_once(learner, tasks):
            errors = [
                learner.fit_predict(ep.support_examples, ep.support_labels, ep.query_examples)
                - ep.query_labels
                for ep in episodes
            ]
        return -float(np.sqrt(np.mean(np.concatenate(errors) ** 2)))

    return validate


def _check_enough_ratings(dataset: RecsysDataset, k_support: int, n_query: int) -> None:
    """FewshotError, before any model is built, when no meta-train user has the ratings a
    training episode needs (a small ratings CSV of your own)."""
    needed = k_support + n_query
    sizes = [len(t) for t in dataset.taskset.train]
    if any(n >= needed for n in sizes):
        return
    where = dataset.card.source if dataset.card is not None and dataset.card.source else None
    have = (f"its {len(sizes)} meta-train users have {min(sizes)} to {max(sizes)} ratings"
            if sizes else "it has no meta-train users")
    raise FewshotError(
        f"{where or dataset.name}: no meta-train user has the {needed} ratings a training "
        f"episode needs (k_support {k_support} + n_query {n_query}); {have}. Use more ratings "
        "per user, or smaller episodes (--set k_support=... --set n_query=...)")


def train_rec_learner(
    dataset: RecsysDataset,
    learner_name: str,
    out_dir: str | Path,
    settings: dict | None = None,
    resume: bool = False,
    progress: bool = True,
):
    """Meta-train ``learner_name`` on meta-train users' rating episodes; select on validation
    users (never test users). Returns ``(learner, TrainResult)``."""
    train, episode, encoder, learner_cfg = split_settings(settings or {})
    config = TrainConfig.from_dict(train)
    ts = dataset.taskset
    _check_enough_ratings(dataset, episode["k_support"], episode["n_query"])
    seed_everything(config.seed)
    enc = ItemGraphEncoder(dataset.graph, **_encoder_settings(encoder))
    learner = build_learner(learner_name, enc, ts.kind, **learner_cfg)
    sampler = ColdStartSampler(episode["k_support"], episode["n_query"])
    result: TrainResult = meta_train(
        learner, ts.train, ts.valid, sampler,
        valid_fn=rating_validator(dataset, episode["valid_draws"], config.seed) if ts.valid else None,
        config=config, out_dir=out_dir, resume=resume, progress=progress,
        extra_config={**dataset.saved_model_config(), "encoder": enc.config(),
                      "episode": episode},
    )
    return learner, result


def load_rec_model(path: str | Path, dataset: RecsysDataset | None = None):
    """A saved recommendation model; its encoder reads the graph of ``dataset``."""
    learner = load_model(path)
    if dataset is not None:
        attach_rec_dataset(learner, dataset, path)
    return learner


def attach_rec_dataset(model, dataset: RecsysDataset, path) -> None:
    """Give a loaded model the graph of ``dataset`` (``model.rec_dataset``) after checking
    that it is the data the model was trained on: same item vocabulary and same meta-train
    users (another user split would put the model's training users among the test users).
    FewshotError naming ``path`` otherwise."""
    config = model.saved_config
    saved_split = config.get("train_users_sha256")
    if saved_split and saved_split != dataset.split_fingerprint():
        raise FewshotError(
            f"{path}: the model was trained on another user split of {dataset.name} than this "
            f"one (cold-start settings at training: {config.get('cold_start')}); its training "
            "users would be among the test users. Load the data set with those settings "
            "(e.g. the same seed), or pass no dataset to rebuild it from the model's config")
    saved_vocab = config.get("item_vocab")
    if saved_vocab:
        vocab = Vocabulary.from_dict(saved_vocab, origin=path)
        if vocab.fingerprint() != dataset.item_vocab.fingerprint():
            raise FewshotError(
                f"{path}: the model's item vocabulary ({len(vocab)} items) differs from "
                f"{dataset.name}'s ({len(dataset.item_vocab)} items): use the data set the "
                "model was trained on")
    try:
        model.encoder.set_graph(dataset.graph)
    except ValueError as err:
        raise FewshotError(f"{path}: {err}; use the data set the model was trained on") from None
    model.rec_dataset = dataset


def rating_errors(model, dataset: RecsysDataset, seed: int = 0, draws: int = 1) -> pd.DataFrame:
    """MAE and RMSE on the 10 query ratings of each test user, per support size.
    FewshotError when no test user has enough ratings to be evaluated."""
    rows = []
    for ep in dataset.evaluation_episodes("test", seed=seed, n_draws=draws):
        pred = model.fit_predict(ep.support_examples, ep.support_labels, ep.query_examples)
        err = pred - ep.query_labels
        rows.append({"task": ep.task, "size": ep.support_size,
                     "mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err**2).mean()))})
    if not rows:
        raise FewshotError(
            f"{dataset.name}: no test user has the {dataset.config.min_eval_ratings} ratings "
            "evaluation needs, so there is nothing to score (the model is saved; "
            "`fewshot-apps data inspect` shows how many ratings users have)")
    return pd.DataFrame(rows)
