"""The meta-training loop: seeded, CPU or CUDA, checkpoint/resume, early stopping, logs.

``meta_train`` draws ``meta_batch_size`` training episodes per step (episodes of step ``s``
come from ``derive_seed(seed, "episodes", s)``, so they depend on the seed and the step only),
minimizes ``learner.loss`` with AdamW and gradient clipping, and every ``eval_every`` steps
scores the learner with ``valid_fn(learner) -> float`` (higher is better; validation tasks
only, never test tasks) to keep the best weights and stop early after ``patience``
evaluations without improvement.

Files in ``out_dir``:

* ``config.json``: the resolved config (learner, train settings, sampler, and the domain's
  ``extra_config``), written at the start; at the end ``model.pt`` + ``config.json`` form a
  saved model (:func:`fewshot_apps.core.persistence.load_model`).
* ``train_log.jsonl``: one JSON object per step (``step``, ``loss``, ``grad_norm``, and
  ``valid`` / ``best_valid`` on evaluation steps).
* ``checkpoint.pt``: weights, optimizer and RNG states, best weights and early-stopping state
  every ``checkpoint_every`` steps; ``resume=True`` continues from it and reaches the same
  weights as an uninterrupted run (on the same device).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from fewshot_apps.core.config import config_from_dict
from fewshot_apps.core.learners.base import EpisodeBatch, MetaLearner
from fewshot_apps.core.persistence import model_config, save_model, write_config
from fewshot_apps.core.tasks import SamplingError, Task, derive_seed, sample_episodes
from fewshot_apps.errors import FewshotError

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"
LOG_FILE = "train_log.jsonl"
CONFIG_FILE = "config.json"

# Settings a resumed run must share with the checkpoint to continue the same run.
_RESUME_FIXED = ("meta_batch_size", "lr", "weight_decay", "grad_clip", "seed")


@dataclass
class TrainConfig:
    """Attributes:
    steps: meta-training steps (one optimizer step per meta-batch).
    meta_batch_size: episodes (tasks) per step.
    lr / weight_decay: AdamW settings.
    grad_clip: max gradient norm (None: no clipping).
    eval_every: validate every this many steps (and at the last step).
    checkpoint_every: write ``checkpoint.pt`` every this many steps (and at the end).
    patience: stop after this many evaluations without improvement (None: never).
    seed: fixes the episodes, dropout and everything random in the run (on one device).
    device: ``cpu``, ``cuda``, ``cuda:1``... or ``auto`` (CUDA when available).
    """

    steps: int = 2000
    meta_batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    eval_every: int = 100
    checkpoint_every: int = 500
    patience: int | None = None
    seed: int = 0
    device: str = "auto"

    @classmethod
    def from_dict(cls, values: dict | None = None) -> TrainConfig:
        """Defaults overridden by ``values`` (strings parsed; unknown keys rejected)."""
        return config_from_dict(cls, values, "training")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class TrainResult:
    """What a run did. ``best_step`` / ``best_valid`` are None without validation."""

    steps_run: int
    best_step: int | None
    best_valid: float | None
    stopped_early: bool
    last_loss: float | None
    out_dir: Path


def resolve_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise FewshotError(
            f"device {device} asked for, but CUDA is not available; use device='cpu'"
        )
    return device


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA) and NumPy's global RNG, e.g. before building a learner."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def describe_sampler(sampler: object) -> dict:
    """``{"type": ..., **fields}`` of a sampler dataclass (for config.json)."""
    fields = (
        dataclasses.asdict(sampler)
        if dataclasses.is_dataclass(sampler)
        else {"repr": repr(sampler)}
    )
    return {"type": type(sampler).__name__, **fields}


def episode_validator(
    tasks: Sequence[Task], sampler: object, n_draws: int = 1, seed: int = 0
) -> Callable[[MetaLearner], float]:
    """A ``valid_fn``: mean ROC-AUC (classification) or minus RMSE (regression) over fixed,
    seeded episodes of ``tasks`` (drawn once, so every evaluation sees the same episodes).

    Tasks too small for ``sampler`` and draws whose query lacks a class are skipped.
    """
    from sklearn.metrics import roc_auc_score

    episodes = []
    for task in tasks:
        for draw in range(n_draws):
            try:
                episodes.append(sampler.sample(task, derive_seed(seed, task.name, draw)))
            except SamplingError:
                continue
    if not episodes:
        raise FewshotError(
            f"no validation episode could be drawn from {len(tasks)} tasks with {sampler!r}"
        )

    def validate(learner: MetaLearner) -> float:
        scores = []
        for ep in episodes:
            pred = learner.fit_predict(ep.support_examples, ep.support_labels, ep.query_examples)
            if learner.kind == "classification":
                if len(np.unique(ep.query_labels)) == 2:
                    scores.append(roc_auc_score(ep.query_labels, pred))
            else:
                scores.append(-float(np.sqrt(np.mean((pred - ep.query_labels) ** 2))))
        return float(np.mean(scores)) if scores else float("nan")

    return validate


def _rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _cuda_index(device: torch.device) -> int:
    return device.index if device.index is not None else torch.cuda.current_device()


def _snapshot(learner: MetaLearner) -> dict:
    return {k: v.detach().clone() for k, v in learner.state_dict().items()}


def _nonfinite_error(step: int, what: str, value: float, config: TrainConfig) -> FewshotError:
    return FewshotError(
        f"step {step}: the {what} is {value}; training diverged. Try a lower lr (now "
        f"{config.lr:g}), gradient clipping (grad_clip, now {config.grad_clip}), a smaller "
        "inner_lr for MAML-family learners, or check the inputs for NaN / infinite values"
    )


def meta_train(
    learner: MetaLearner,
    train_tasks: Sequence[Task],
    valid_tasks: Sequence[Task] | None,
    train_sampler: object,
    valid_fn: Callable[[MetaLearner], float] | None = None,
    config: TrainConfig | None = None,
    out_dir: str | Path = "run",
    resume: bool = False,
    progress: bool = True,
    extra_config: dict | None = None,
    valid_sampler: object | None = None,
) -> TrainResult:
    """Meta-train ``learner`` in place; at the end it holds the best validated weights.

    Args:
        learner: any :class:`MetaLearner`, built by the caller (seed before building it for
            a reproducible initialization, e.g. :func:`seed_everything`).
        train_tasks: tasks to draw training episodes from with ``train_sampler``.
        valid_tasks: validation tasks; used by the default ``valid_fn``
            (:func:`episode_validator` with ``valid_sampler`` or ``train_sampler``) when
            ``valid_fn`` is None. No validation at all when both are empty/None.
        valid_fn: ``valid_fn(learner) -> float``, higher is better; runs under a forked RNG,
            so validating changes nothing of the training run.
        config: :class:`TrainConfig`.
        out_dir: where the config, log, checkpoint and final model go.
        resume: continue from ``out_dir/checkpoint.pt`` (FewshotError if absent).
        progress: show a tqdm progress bar.
        extra_config: the domain's keys for config.json (``encoder``, ``featurizer``,
            data set, ...).

    Raises FewshotError when the loss or gradient becomes NaN/inf (naming the step).
    """
    config = config or TrainConfig()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device)
    learner.to(device)
    if valid_fn is None and valid_tasks:
        valid_fn = episode_validator(
            valid_tasks, valid_sampler or train_sampler, seed=derive_seed(config.seed, "valid")
        )
    params = [p for p in learner.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)

    resolved = model_config(
        learner,
        {
            **(extra_config or {}),
            "train": config.to_dict(),
            "sampler": describe_sampler(train_sampler),
        },
    )
    checkpoint_path = out_dir / CHECKPOINT_FILE
    log_path = out_dir / LOG_FILE
    step, best_valid, best_step, best_weights = 0, None, None, None
    bad_evals, stopped_early = 0, False
    if resume:
        ckpt = _load_checkpoint(checkpoint_path, config, learner)
        try:
            learner.load_state_dict(ckpt["learner"])
            optimizer.load_state_dict(ckpt["optimizer"])
        except (RuntimeError, ValueError, KeyError) as err:
            raise FewshotError(
                f"{checkpoint_path}: does not fit this learner or its optimizer ({err}); "
                "resume with the same learner settings, or start afresh without resume"
            ) from None
        _set_rng_state(ckpt["rng"], device)
        step = int(ckpt["step"])
        best_valid, best_step = ckpt["best_valid"], ckpt["best_step"]
        best_weights, bad_evals = ckpt["best_weights"], int(ckpt["bad_evals"])
        stopped_early = bool(ckpt["stopped_early"])
        _truncate_log(log_path, step)
        log.info("resuming %s from step %d", out_dir, step)
    else:
        torch.manual_seed(derive_seed(config.seed, "torch"))
        log_path.write_text("", encoding="utf-8")
    write_config(out_dir / CONFIG_FILE, resolved)

    def save_checkpoint() -> None:
        ckpt = {
            "step": step,
            "learner": learner.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": _rng_state(device),
            "best_valid": best_valid,
            "best_step": best_step,
            "best_weights": best_weights,
            "bad_evals": bad_evals,
            "stopped_early": stopped_early,
            "train_config": config.to_dict(),
            "learner_spec": learner.describe(),
        }
        tmp = checkpoint_path.with_name(checkpoint_path.name + ".tmp")
        torch.save(ckpt, tmp)
        os.replace(tmp, checkpoint_path)

    last_loss = None
    bar = tqdm(
        total=config.steps,
        initial=min(step, config.steps),
        disable=not progress,
        desc="meta-train",
        dynamic_ncols=True,
    )
    try:
        with log_path.open("a", encoding="utf-8") as log_file:
            while step < config.steps and not stopped_early:
                step += 1
                started = time.perf_counter()
                learner.train()
                episodes = list(
                    sample_episodes(
                        train_tasks,
                        train_sampler,
                        config.meta_batch_size,
                        seed=derive_seed(config.seed, "episodes", step),
                    )
                )
                loss = learner.loss(EpisodeBatch.from_episodes(episodes).to(device))
                last_loss = float(loss.detach())
                if not math.isfinite(last_loss):
                    raise _nonfinite_error(step, "meta-training loss", last_loss, config)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                max_norm = config.grad_clip if config.grad_clip else float("inf")
                grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
                if not math.isfinite(grad_norm):
                    raise _nonfinite_error(step, "gradient norm", grad_norm, config)
                optimizer.step()
                record = {"step": step, "loss": last_loss, "grad_norm": grad_norm}
                if valid_fn is not None and (step % config.eval_every == 0 or step == config.steps):
                    # A forked RNG: validation draws nothing from the training run's stream.
                    devices = [_cuda_index(device)] if device.type == "cuda" else []
                    with torch.random.fork_rng(devices=devices):
                        valid = float(valid_fn(learner))
                    learner.train()
                    if math.isfinite(valid) and (best_valid is None or valid > best_valid):
                        best_valid, best_step, best_weights, bad_evals = (
                            valid,
                            step,
                            _snapshot(learner),
                            0,
                        )
                    else:
                        bad_evals += 1
                    record.update(valid=valid, best_valid=best_valid, best_step=best_step)
                    if config.patience is not None and bad_evals >= config.patience:
                        stopped_early = True
                        record["stopped_early"] = True
                record["seconds"] = round(time.perf_counter() - started, 6)
                log_file.write(json.dumps(record) + "\n")
                log_file.flush()
                bar.update(1)
                bar.set_postfix(
                    loss=f"{last_loss:.4f}",
                    **({"valid": f"{best_valid:.4f}"} if best_valid is not None else {}),
                )
                if step % config.checkpoint_every == 0 or step == config.steps or stopped_early:
                    save_checkpoint()
    finally:
        bar.close()

    if best_weights is not None:
        learner.load_state_dict(best_weights)
    learner.eval()
    save_model(
        learner,
        out_dir,
        {k: v for k, v in resolved.items() if k not in ("learner", "format_version")},
    )
    return TrainResult(step, best_step, best_valid, stopped_early, last_loss, out_dir)


def _load_checkpoint(path: Path, config: TrainConfig, learner: MetaLearner) -> dict:
    if not path.is_file():
        raise FewshotError(
            f"{path}: no checkpoint to resume from; run without resume to start afresh"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated / foreign files
        raise FewshotError(
            f"{path}: cannot be read, the checkpoint is truncated or corrupted ({err})"
        ) from None
    spec = ckpt.get("learner_spec")
    if spec is not None and spec != learner.describe():
        raise FewshotError(
            f"{path}: the checkpoint is of learner {spec['name']!r} ({spec['kind']}, "
            f"{spec['config']}), not {learner.describe()}; resume with the same learner or "
            "start afresh"
        )
    saved = ckpt.get("train_config", {})
    changed = [
        f"{key} {saved.get(key)!r} -> {getattr(config, key)!r}"
        for key in _RESUME_FIXED
        if saved.get(key) != getattr(config, key)
    ]
    if changed:
        raise FewshotError(
            f"{path}: the checkpoint was written with other settings ({'; '.join(changed)}); "
            "resume with the same settings (only steps, eval_every, checkpoint_every, patience "
            "and device may change) or start afresh"
        )
    return ckpt


def _truncate_log(path: Path, step: int) -> None:
    """Keep log lines up to ``step`` (a resumed run rewrites the steps after its checkpoint)."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                kept.append(line)
        except json.JSONDecodeError:
            continue  # a line cut by the interruption
    path.write_text("".join(k + "\n" for k in kept), encoding="utf-8")
