"""Pretrain, then meta-train: start a meta-learner's encoder from the multitask-pretrained one.

``--set init=pretrained`` (a flat setting, like ``calibration``) makes
:func:`~fewshot_apps.core.fit.train_learner` first pre-train the encoder the way ``finetune``
and ``linear-probe`` do (one multitask head over all training tasks, the best step chosen on
the validation tasks; :meth:`~fewshot_apps.core.baselines.TransferBaseline.pretrain`), then
load those encoder weights before meta-training. ``init_pretrain_steps`` sets its budget
(default 1000; a suite passes its preset's ``pretrain_steps``).

The pretrained encoder is saved once per package version, data set (name, variant and the
exact training and validation task names), encoder settings, steps and seed, in the cache folder
(``pretrained/``), and reused by every learner that asks for it: a suite pre-trains once per
seed whatever the number of learners. A saved model records where its encoder started
(``config.json`` ``"init"``).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import torch
from torch import nn

from fewshot_apps.errors import FewshotError
from fewshot_apps.paths import cache_dir, warn_cache_unwritable

INIT_CHOICES = ("scratch", "pretrained")
DEFAULT_PRETRAIN_STEPS = 1000


def init_settings(settings: dict) -> tuple[str, int, dict]:
    """``(init, pretrain steps, settings without the two keys)`` from flat settings;
    FewshotError for an unknown ``init`` or a bad step count."""
    rest = dict(settings or {})
    init = str(rest.pop("init", "scratch") or "scratch").strip().lower()
    steps = rest.pop("init_pretrain_steps", DEFAULT_PRETRAIN_STEPS)
    if init not in INIT_CHOICES:
        raise FewshotError(f"init must be one of {', '.join(INIT_CHOICES)}, not {init!r}")
    try:
        steps = int(steps)
    except (TypeError, ValueError):
        steps = -1
    if steps < 1:
        raise FewshotError(f"init_pretrain_steps must be a positive whole number, "
                           f"not {settings.get('init_pretrain_steps')!r}")
    return init, steps, rest


def _key(dataset, encoder: nn.Module, steps: int, seed: int) -> str:
    from fewshot_apps import __version__
    from fewshot_apps.core.persistence import task_record, tasks_fingerprint

    ts = dataset.taskset
    # the package version: a release that changes pre-training never reuses an older encoder
    payload = {"version": __version__,
               "dataset": dataset.saved_model_config(), "encoder": encoder.config(),
               "steps": steps, "seed": seed, "tasks": tasks_fingerprint(task_record(ts.train,
                                                                                   ts.valid))}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _save(path: Path, state: dict) -> None:
    """Cache ``state`` at ``path`` (atomically); an unwritable cache only warns: the run goes
    on and the next one pre-trains again."""
    from fewshot_apps.core.checkpoints import write_checkpoint

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_checkpoint(path, state)
    except OSError as exc:
        warn_cache_unwritable(path.parent, exc)


def pretrained_encoder(dataset, encoder: nn.Module, *, steps: int, seed: int, device: str,
                       progress: bool = True) -> dict:
    """Load into ``encoder`` the weights of the same encoder pre-trained on ``dataset``'s
    training tasks (multitask, selected on its validation tasks) for ``steps`` steps; from
    the cache when a run before did it. Returns the record a saved model keeps."""
    from fewshot_apps.core.baselines import FinetuneBaseline

    key = _key(dataset, encoder, steps, seed)
    path = cache_dir() / "pretrained" / f"encoder-{key[:40]}.pt"
    state, source = None, "cache"
    if path.is_file():
        try:
            state = torch.load(path, weights_only=True)
        except Exception as exc:  # a corrupt entry is re-trained, never trusted
            print(f"note: the pretrained encoder {path} was unusable ({type(exc).__name__}); "
                  "pre-training again", file=sys.stderr)
    if state is None:
        source = "trained"
        # ``pretrain`` seeds and restores the random generators itself: meta-training
        # draws the same episodes whether the weights came from here or from the cache.
        model = FinetuneBaseline(encoder, dataset.label_kind, {"device": device}, seed=seed)
        model.pretrain(dataset.taskset.train, dataset.taskset.valid, steps=steps,
                       progress=progress)
        state = {name: value.detach().cpu() for name, value in encoder.state_dict().items()}
        _save(path, state)
    encoder.load_state_dict(state)
    return {"from": "pretrained", "pretrain_steps": steps, "seed": seed, "source": source,
            "key": key[:16]}


__all__ = ["DEFAULT_PRETRAIN_STEPS", "INIT_CHOICES", "init_settings", "pretrained_encoder"]
