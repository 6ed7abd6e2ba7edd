"""Meta-training settings: :class:`TrainConfig`, and :func:`split_settings`, which sorts one
flat dict of settings (a TOML file, ``--set key=value``) into training, episode, encoder and
learner settings."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

from fewshot_apps.core.config import check_count, config_from_dict
from fewshot_apps.errors import FewshotError


@dataclass
class TrainConfig:
    """Attributes:
    steps: meta-training steps (one optimizer step per meta-batch).
    meta_batch_size: episodes (tasks) per step.
    lr / weight_decay: AdamW settings.
    grad_clip: max gradient norm (None: no clipping).
    eval_every: validate every this many steps (and at the last step).
    checkpoint_every: write ``checkpoint.pt`` every this many steps (and at the end).
    checkpoint_minutes: also write it when this many minutes have passed since the last one
        (None: only by steps). A run stopped by SIGINT / SIGTERM always writes one.
    patience: stop after this many evaluations without improvement (None: never).
    max_minutes: a wall-clock budget for this run's training (None: none). When it is spent,
        the learner is validated and training stops with the best weights so far; like
        ``patience`` it depends on the machine, so a budget-stopped run is not reproducible
        step for step (the steps it ran are in the log).
    seed: fixes the episodes, dropout and everything random in the run (on one device).
    device: ``cpu``, ``cuda``, ``cuda:1``... or ``auto`` (CUDA when available). In a
        distributed run ``auto`` and ``cuda`` mean ``cuda:LOCAL_RANK``.
    """

    steps: int = 2000
    meta_batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    eval_every: int = 100
    checkpoint_every: int = 500
    checkpoint_minutes: float | None = 10.0
    patience: int | None = None
    max_minutes: float | None = None
    seed: int = 0
    device: str = "auto"

    @classmethod
    def from_dict(cls, values: dict | None = None) -> TrainConfig:
        """Defaults overridden by ``values`` (strings parsed; unknown keys rejected; counts
        such as ``steps`` at least 1: ``steps=0`` would save an untrained model)."""
        config = config_from_dict(cls, values, "training")
        for key in values or {}:
            check_count(key, getattr(config, key), f"training: option {key}")
        return config

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)



def _parsed(value) -> float:
    """``value`` (a number or a ``--set`` string) as a float; NaN when it is none."""
    if isinstance(value, bool):
        return float("nan")
    try:
        return float(str(value).strip())
    except ValueError:
        return float("nan")


def _whole_number(key: str, value) -> int:
    """An episode setting as an int (``"8"``, ``8`` and ``8.0`` alike); FewshotError for
    anything else, e.g. ``"abc"`` or ``2.7``."""
    number = _parsed(value)
    if not number.is_integer():
        raise FewshotError(f"setting {key!r} must be a whole number, not {value!r}")
    return int(number)


def _number(key: str, value) -> float:
    """A finite number (``--set`` strings parsed); FewshotError otherwise."""
    number = _parsed(value)
    if not math.isfinite(number):
        raise FewshotError(f"setting {key!r} must be a number, not {value!r}")
    return number


def train_keys() -> set[str]:
    """The settings :class:`TrainConfig` holds."""
    return {f.name for f in dataclasses.fields(TrainConfig)}


def prefixed(settings: Mapping, prefix: str) -> dict:
    """The settings under ``prefix`` (``"learner."``, ``"encoder."``), prefix removed."""
    return {str(key)[len(prefix):]: value for key, value in settings.items()
            if str(key).startswith(prefix)}


def split_settings(settings: dict, episode_defaults: dict) -> tuple[dict, dict, dict, dict]:
    """``(train, episode, encoder, learner)`` settings from one flat dict (TOML / ``--set``).

    Keys of :class:`TrainConfig` go to ``train``; keys of ``episode_defaults`` (the domain's
    episode settings, parsed as ints, or as floats where the default is a float) to
    ``episode``; ``encoder.<key>`` and ``learner.<key>``
    to ``encoder`` and ``learner``. Any other key is a FewshotError listing the known ones.
    """
    known_train = train_keys()
    train, episode = {}, dict(episode_defaults)
    encoder, learner = prefixed(settings, "encoder."), prefixed(settings, "learner.")
    for key, value in settings.items():
        if key.startswith(("encoder.", "learner.")):
            continue
        if key in episode_defaults:
            episode[key] = (None if value is None
                            else _number(key, value) if isinstance(episode_defaults[key], float)
                            else _whole_number(key, value))
            check_count(key, episode[key], f"setting {key}")
        elif key in known_train:
            train[key] = value
        else:
            raise FewshotError(
                f"unknown setting {key!r}; known: "
                f"{', '.join(sorted(known_train | set(episode_defaults)))}, encoder.<key>, "
                "learner.<key>"
            )
    return train, episode, encoder, learner

