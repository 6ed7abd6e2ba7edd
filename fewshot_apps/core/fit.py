"""Build a model of any family on any domain's data set: meta-train a learner, pre-train a
transfer baseline, or fit a classic one. The one place that turns a model name and flat
settings into a trained model, used by the API, the command line and the benchmarks.

Settings are one flat dict (a TOML file or ``--set key=value``): training keys
(:class:`~fewshot_apps.core.training.TrainConfig`), episode keys (``shots`` or
``support_size``, ``n_query``, ``valid_draws``), ``encoder.<key>``, ``learner.<key>``,
``calibration`` (``auto``, ``temperature``, ``platt``, ``conformal``, ``none``) and ``init``
(``scratch`` or ``pretrained``: the encoder starts from the multitask-pretrained one,
:mod:`fewshot_apps.core.pretrained_init`, with ``init_pretrain_steps``).

Every model built here, once trained, gets its post-hoc calibration fitted on the data set's
validation episodes (:mod:`fewshot_apps.core.calibration`): temperature (or Platt) scaling of
a classifier's probabilities, a 90% split-conformal interval of a rating model's
predictions. A saved model records it in its ``config.json``; classic rating baselines get
their interval too; classic molecule baselines, fitted on each support set with no training
of their own, stay uncalibrated.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from fewshot_apps.core.domain import DomainDataset, canonical_settings, load_saved_model
from fewshot_apps.core.learners import build_learner
from fewshot_apps.core.persistence import save_model, update_model_config
from fewshot_apps.core.pretrained_init import init_settings, pretrained_encoder
from fewshot_apps.core.registry import ENSEMBLE_FAMILY, META_LEARNING_FAMILIES, MODELS
from fewshot_apps.core.settings import TrainConfig, split_settings
from fewshot_apps.core.training import TrainResult, meta_train, seed_everything
from fewshot_apps.errors import FewshotError


def episode_settings(dataset: DomainDataset, episode: dict) -> dict:
    """The episode settings of a run: the data set's defaults overridden by ``episode``;
    ``shots`` and ``support_size`` exclude each other (giving one drops the other's
    default)."""
    out = dict(dataset.episode_defaults)
    if episode.get("support_size") is not None and "shots" not in episode:
        out["shots"] = None
    if episode.get("shots") is not None and "support_size" not in episode:
        out["support_size"] = None
    out.update({k: v for k, v in episode.items() if v is not None})
    return out


def split_run_settings(dataset: DomainDataset, settings: dict | None):
    """``(train, episode, encoder, learner)`` settings for ``dataset`` from a flat dict
    (older names such as ``k_shot`` read as ``shots``; ``calibration`` is read by
    :func:`~fewshot_apps.core.calibration.calibration_method`, ``init`` by
    :func:`~fewshot_apps.core.pretrained_init.init_settings`)."""
    keys = {**dict.fromkeys(("shots", "support_size", "n_query", "valid_draws")),
            **{k: v for k, v in dataset.episode_defaults.items()
               if k not in ("shots", "support_size", "n_query", "valid_draws")}}
    settings = {k: v for k, v in (settings or {}).items()
                if k not in ("calibration", "init", "init_pretrain_steps")}
    train, episode, encoder, learner = split_settings(canonical_settings(settings), keys)
    return train, episode_settings(dataset, {k: v for k, v in episode.items()
                                             if v is not None}), encoder, learner


def domain_learner_defaults(dataset: DomainDataset, learner_name: str) -> dict:
    """The data set's ``learner_defaults`` (e.g. ratings: the implicit objective's
    ``rank_loss_weight``) that learner ``learner_name``'s config has; ``--set learner.<key>``
    overrides them."""
    from dataclasses import fields

    from fewshot_apps.core.learners import learner_class

    defaults = dict(getattr(dataset, "learner_defaults", None) or {})
    known = {f.name for f in fields(learner_class(learner_name).Config)}
    return {k: v for k, v in defaults.items() if k in known}


def choose_rank_weight(dataset: DomainDataset, learner, episode: dict, seed: int) -> dict | None:
    """After training, the data set's choice of how ``fit_rank`` mixes the implicit score
    with the predicted label (``rank_rating_weight``, and ``rank_affinity_scale`` for a head
    with an affinity term), on validation tasks: its record for the model's config, or None
    (no implicit head, everything given in the settings, no validation tasks, or a domain
    that ranks nothing)."""
    choose = getattr(dataset, "choose_rank_weight", None)
    head = getattr(learner, "implicit", None)
    if choose is None or head is None or not dataset.taskset.valid:
        return None
    config = learner.config
    given = [config.rank_rating_weight]
    if head.uses_affinity:
        given += [config.rank_affinity_scale, config.rank_liking]
    if all(v is not None for v in given):
        return None  # everything given in the settings
    return choose(learner, episode, seed)


def train_learner(dataset: DomainDataset, learner_name: str, out_dir: str | Path,
                  settings: dict | None = None, *, resume: bool = False,
                  progress: bool = True) -> tuple[object, TrainResult]:
    """Meta-train ``learner_name`` on the data set's training tasks and select it on its
    validation tasks (never test tasks), then fit its calibration on the validation tasks;
    the model is saved in ``out_dir`` (its ``config.json`` records the calibration, or why
    there is none). Returns ``(learner, result)``."""
    from fewshot_apps.core import distributed
    from fewshot_apps.core.calibration import calibrate, calibration_method

    method, settings = calibration_method(settings or {}, dataset.label_kind)
    init, init_steps, settings = init_settings(settings)
    train, episode, encoder, learner_cfg = split_run_settings(dataset, settings)
    # the data set's defaults (ratings: the implicit objective) under the given settings
    learner_cfg = {**domain_learner_defaults(dataset, learner_name), **learner_cfg}
    config = TrainConfig.from_dict(train)
    ts = dataset.taskset
    if not ts.train:
        raise FewshotError(f"{dataset.name}: no training tasks")
    dataset.check_trainable(episode)
    sampler = dataset.train_sampler(episode)
    seed_everything(config.seed)
    enc = dataset.make_encoder(encoder)
    started = {"from": "scratch"}
    resuming = resume and (Path(out_dir) / "checkpoint.pt").exists()
    if init == "pretrained" and not resuming:
        started = pretrained_encoder(dataset, enc, steps=init_steps, seed=config.seed,
                                     device=config.device, progress=progress)
    elif resuming:  # the checkpoint's weights came from there; config.json says how it began
        _check_resumed_run(out_dir, episode, enc.config())
        started = _recorded_init(out_dir, init)
    learner = build_learner(learner_name, enc, dataset.label_kind, **learner_cfg)
    validate = dataset.validator(episode, config.seed) if ts.valid else None
    result = meta_train(
        learner, ts.train, ts.valid, sampler, valid_fn=validate, config=config,
        out_dir=out_dir, resume=resume, progress=progress,
        extra_config={**dataset.saved_model_config(), "encoder": enc.config(),
                      "episode": episode, "init": started},
    )
    ranking = choose_rank_weight(dataset, learner, episode, config.seed)
    calibration = calibrate(learner, dataset, episode, config.seed, method)
    if distributed.is_main_process():
        entries = {"calibration": calibration.to_config()}
        if ranking is not None:
            entries.update(learner=learner.describe(), ranking=ranking)
        update_model_config(out_dir, **entries)
    return learner, result


def _check_resumed_run(out_dir: str | Path, episode: dict, encoder: dict) -> None:
    """FewshotError when the run to resume in ``out_dir`` (its ``config.json``) drew other
    episodes or built another encoder than this one would: its checkpoint would be finished
    and reported as if trained with these settings. The checkpoint itself checks the
    learner and the training settings."""
    path = Path(out_dir) / "config.json"
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # nothing recorded to compare with (the checkpoint checks what it can)
    changed = []
    for part, now in (("episode", episode), ("encoder", encoder)):
        before = recorded.get(part)
        if not isinstance(before, dict):
            continue
        # values compare as text: 64 set in a suite file and "64" from --set are one setting;
        # a key an older config lacks counts as unset
        changed += [f"{part} {key} {before.get(key)!r} -> {now.get(key)!r}"
                    for key in sorted(set(before) | set(now))
                    if str(before.get(key)) != str(now.get(key))
                    and (key in before or now.get(key) is not None)]
    if changed:
        raise FewshotError(
            f"{out_dir}: the run to resume was trained with other settings "
            f"({'; '.join(changed)}); resume with its settings, or start afresh (another "
            "output folder, or delete this one)")


def _recorded_init(out_dir: str | Path, init: str) -> dict:
    """The ``init`` record of the run being resumed (its ``config.json``, written when it
    began), so that resuming does not rewrite where the weights started from."""
    path = Path(out_dir) / "config.json"
    try:
        recorded = json.loads(path.read_text(encoding="utf-8")).get("init")
    except (OSError, ValueError, AttributeError):
        recorded = None
    return recorded if isinstance(recorded, dict) else {"from": init, "resumed": True}


def _as_json(value):
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _load_if_pretrained_before(model, dataset: DomainDataset, out_dir: Path, steps: int,
                               method: str) -> bool:
    """Whether ``out_dir`` holds transfer baseline ``model`` pre-trained before with exactly
    these settings (data set and split, encoder, the baseline's own settings and seed,
    pre-training steps, calibration method); if so, its weights, calibration and config are
    loaded into ``model``. Anything else (no model, another setting, an unreadable file) is
    False: the caller pre-trains again and overwrites it."""
    from fewshot_apps.core.calibration import Calibration
    from fewshot_apps.core.persistence import (
        MODEL_FILE,
        load_state,
        read_model_config,
        task_record,
        tasks_summary,
    )

    if not (out_dir / MODEL_FILE).is_file():
        return False
    try:
        saved = read_model_config(out_dir)
    except FewshotError:
        return False
    expected = {**dataset.saved_model_config(), "encoder": model.encoder.config(),
                "pretrain_steps": steps}
    tasks = expected.pop("tasks", None)
    if tasks is not None:  # the saved config keeps a summary of the split, with its hash
        summary = tasks_summary(task_record(tasks["train"], tasks.get("valid", ())))
        if (saved.get("tasks") or {}).get("sha256") != summary["sha256"]:
            return False
    def placeless(spec: dict) -> dict:  # the device it ran on is not a setting of the model
        return {**spec, "config": {k: v for k, v in (spec.get("config") or {}).items()
                                   if k != "device"}}

    calibration = saved.get("calibration") or {}  # "requested": a method that could not fit
    if (_as_json({k: saved.get(k) for k in expected}) != _as_json(expected)
            or _as_json(placeless(saved.get("learner") or {})) != _as_json(placeless(
                model.describe()))
            or calibration.get("requested", calibration.get("method", "none")) != method):
        return False
    try:
        load_state(out_dir / MODEL_FILE, model, f"the model described by {out_dir}")
        model.calibration = Calibration.from_config(saved.get("calibration"))
    except FewshotError:
        return False
    model.pretrained, model.saved_config = True, saved
    return True


def pretrain_transfer(dataset: DomainDataset, name: str, out_dir: str | Path,
                      settings: dict | None = None, *, steps: int, seed: int = 0,
                      device: str = "auto", progress: bool = True, reuse: bool = False):
    """A transfer baseline (``finetune``, ``linear-probe``): multitask pre-training on the
    training tasks (selected on the validation tasks), calibrated on the validation tasks,
    saved in ``out_dir`` (with the seconds it took, ``pretrain_seconds``).

    ``reuse``: a baseline pre-trained before in ``out_dir`` with exactly these settings is
    loaded instead (``model.reused`` is then True), as a meta-learner's run continues from
    its checkpoint: an interrupted or extended suite does not pre-train it again."""
    from fewshot_apps.core.baselines import build_transfer_baseline
    from fewshot_apps.core.calibration import calibrate, calibration_method

    start = time.perf_counter()
    method, settings = calibration_method(settings or {}, dataset.label_kind)
    _, episode, encoder, _ = split_run_settings(dataset, settings)
    torch.manual_seed(seed)
    enc = dataset.make_encoder(encoder)
    model = build_transfer_baseline(name, enc, dataset.label_kind, seed=seed, device=device)
    model.reused = reuse and _load_if_pretrained_before(model, dataset, Path(out_dir), steps,
                                                        method)
    if model.reused:
        if progress:
            print(f"{name}: pre-trained before with these settings, loaded from {out_dir}",
                  flush=True)
        return model
    ts = dataset.taskset
    model.pretrain(ts.train, ts.valid, steps=steps, progress=progress)
    calibrate(model, dataset, episode, seed, method)
    save_model(model, out_dir, {**dataset.saved_model_config(), "encoder": enc.config(),
                                "pretrain_steps": steps,
                                "pretrain_seconds": round(time.perf_counter() - start, 1)})
    return model


def build_model(dataset: DomainDataset, name: str, out_dir: str | Path,
                settings: dict | None = None, *, seed: int | None = None,
                device: str | None = None,
                pretrain_steps: int | None = None, resume: bool = False,
                progress: bool = True):
    """Model ``name`` of any family, ready to adapt and predict: a meta-learner trained
    (continuing from ``out_dir``'s checkpoint when ``resume``), a transfer baseline
    pre-trained (loaded from ``out_dir`` when ``resume`` and it was pre-trained there with
    the same settings), or a classic baseline of the data set's domain fitted; each calibrated on
    the validation tasks (a classic baseline: rating intervals only). An ``ensemble`` is
    assembled in ``out_dir`` from the saved models its ``members`` setting names
    (:func:`~fewshot_apps.core.ensemble.assemble_ensemble`)."""
    entry = MODELS.get(name)
    if entry.domain not in (None, dataset.domain):
        raise FewshotError(f"{name!r} is a model for {entry.domain} data, not for "
                           f"{dataset.name} ({dataset.domain})")
    if dataset.label_kind not in entry.label_kinds:
        raise FewshotError(f"{name!r} predicts {' or '.join(entry.label_kinds)} labels; "
                           f"{dataset.name} has {dataset.label_kind} labels")
    settings = dict(settings or {})
    # the keywords win over the settings; without either, seed 0 on the default device
    seed = int(seed if seed is not None else settings.get("seed", 0))
    device = device if device is not None else str(settings.get("device", "auto"))
    settings.update(seed=seed, device=device)
    if entry.family in META_LEARNING_FAMILIES:
        model, _ = train_learner(dataset, name, out_dir, settings, resume=resume,
                                 progress=progress)
        return model
    if entry.family == ENSEMBLE_FAMILY:  # nothing to train: its members are saved models
        from fewshot_apps.core.device import resolve_device
        from fewshot_apps.core.ensemble import assemble_ensemble

        return load_saved_model(assemble_ensemble(dataset, out_dir, settings), dataset=dataset,
                                device=str(resolve_device(device)))
    if entry.family == "transfer":
        steps = pretrain_steps if pretrain_steps is not None else int(settings.get("steps", 1000))
        settings.pop("steps", None)
        return pretrain_transfer(dataset, name, out_dir, settings, steps=steps, seed=seed,
                                 device=device, progress=progress, reuse=resume)
    model = dataset.build_baseline(name, seed=seed)
    if dataset.label_kind == "regression":  # its interval; classic classifiers stay as they are
        from fewshot_apps.core.calibration import calibrate, calibration_method

        method, settings = calibration_method(settings, dataset.label_kind)
        _, episode, _, _ = split_run_settings(dataset, settings)
        calibrate(model, dataset, episode, seed, method)
    return model


__all__ = ["build_model", "episode_settings", "pretrain_transfer", "split_run_settings",
           "train_learner"]
