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
* ``checkpoint.pt``: weights, optimizer and RNG states, best weights, early-stopping state
  and the training and validation task names, every ``checkpoint_every`` steps, every
  ``checkpoint_minutes`` minutes, and when the run is stopped by SIGINT (Ctrl-C) or SIGTERM
  (the step under way is finished and checkpointed, then :class:`TrainingInterrupted` is
  raised); ``resume=True`` continues from it and reaches the same weights as an
  uninterrupted run (on the same device).
* ``tasks.json``: the names of the training and validation tasks of the saved model
  (:func:`fewshot_apps.core.persistence.check_unseen_tasks` refuses to score it on them).

Data-parallel runs (:mod:`fewshot_apps.core.distributed`): under ``torchrun`` (``WORLD_SIZE >
1``; ``meta_train`` then initializes the process group itself, NCCL on CUDA with one GPU per
process, ``cuda:LOCAL_RANK``, gloo on the CPU) or with a process group the caller initialized,
every rank draws the same global meta-batch of ``meta_batch_size`` episodes, computes the loss
of its contiguous share of them, and the summed gradients are all-reduced and divided by the
global count, so each step equals the single-process step on the whole meta-batch (up to
rounding; not with dropout or BatchNorm statistics in the encoder, which see each rank's
share). Rank 0 alone validates (the score is broadcast, so every rank makes the same
model-selection and early-stopping decisions) and writes ``config.json``, the log, the
checkpoints (with every rank's RNG state) and the model; on resume rank 0 reads the checkpoint
and broadcasts it (no shared file system needed).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fewshot_apps.core import distributed
from fewshot_apps.core.config import config_from_dict
from fewshot_apps.core.encoders import tasks_hidden
from fewshot_apps.core.learners.base import EpisodeBatch, MetaLearner
from fewshot_apps.core.persistence import (
    model_config,
    save_model,
    task_record,
    tasks_summary,
    torch_load_problem,
    write_config,
)
from fewshot_apps.core.tasks import SamplingError, Task, derive_seed, sample_episodes
from fewshot_apps.errors import FewshotError
from fewshot_apps.progress import progress_bar

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


class TrainingInterrupted(KeyboardInterrupt):
    """Meta-training was stopped by SIGINT (Ctrl-C) or SIGTERM: the step under way was
    finished and ``checkpoint`` (None on ranks > 0 of a distributed run) written, so
    ``resume=True`` (``--resume``) continues the run as if it had not been stopped.

    A KeyboardInterrupt, so that code which handles Ctrl-C handles it too.
    """

    def __init__(self, signum: int, step: int, checkpoint: Path | None):
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        text = f"interrupted at step {step} ({signal.Signals(signum).name})"
        if checkpoint is not None:
            text += f"; checkpoint written to {checkpoint}; continue with --resume (resume=True)"
        super().__init__(text)


class _StopSignals:
    """While training: the first SIGINT / SIGTERM asks the loop to stop after the step under
    way (``received``); a second one stops at once (KeyboardInterrupt). Handlers are
    installed only in the main thread (Python allows no other), not over a signal that is
    ignored (e.g. SIGINT of a background job) or handled outside Python, and the previous
    handlers are put back on exit. A signal that came too late for the loop to act on is
    raised again then, so the previous handler sees it."""

    def __init__(self, announce: bool):
        self.announce = announce
        self.received: int | None = None
        self.acted = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is not threading.main_thread():
            return self
        for name in ("SIGINT", "SIGTERM"):
            signum = getattr(signal, name, None)
            previous = None if signum is None else signal.getsignal(signum)
            if previous is None or previous is signal.SIG_IGN:
                continue
            signal.signal(signum, self._handle)
            self._previous[signum] = previous
        return self

    def _handle(self, signum, frame) -> None:
        if self.received is not None:
            self.acted = True
            raise KeyboardInterrupt(f"{signal.Signals(signum).name} again: stopped at once")
        self.received = signum
        if self.announce:
            log.warning("%s received: finishing this step and writing a checkpoint (press "
                        "Ctrl-C again to stop at once)", signal.Signals(signum).name)

    def __exit__(self, exc_type, exc, tb) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()
        if self.received is not None and not self.acted and exc_type is None:
            signal.raise_signal(self.received)


def split_settings(settings: dict, episode_defaults: dict) -> tuple[dict, dict, dict, dict]:
    """``(train, episode, encoder, learner)`` settings from one flat dict (TOML / ``--set``).

    Keys of :class:`TrainConfig` go to ``train``; keys of ``episode_defaults`` (the domain's
    episode settings, parsed as ints) to ``episode``; ``encoder.<key>`` and ``learner.<key>``
    to ``encoder`` and ``learner``. Any other key is a FewshotError listing the known ones.
    """
    train_keys = {f.name for f in dataclasses.fields(TrainConfig)}
    train, episode, encoder, learner = {}, dict(episode_defaults), {}, {}
    for key, value in settings.items():
        if key.startswith("encoder."):
            encoder[key[len("encoder."):]] = value
        elif key.startswith("learner."):
            learner[key[len("learner."):]] = value
        elif key in episode_defaults:
            episode[key] = int(value)
        elif key in train_keys:
            train[key] = value
        else:
            raise FewshotError(
                f"unknown setting {key!r}; known: "
                f"{', '.join(sorted(train_keys | set(episode_defaults)))}, encoder.<key>, "
                "learner.<key>"
            )
    return train, episode, encoder, learner


def resolve_device(device: str | torch.device, local_rank: int | None = None) -> torch.device:
    """``auto`` -> CUDA when available, else the CPU. With ``local_rank`` (a distributed run),
    ``auto`` and ``cuda`` mean ``cuda:local_rank``: one GPU per process."""
    if str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if local_rank is not None and device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
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

    Tasks too small for ``sampler`` and draws whose query lacks a class are skipped; an
    episode whose predictions hold NaN scores NaN (the validation is then not finite).
    """
    from fewshot_apps.core.metrics import rmse, roc_auc

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

    triples = [(ep.support_examples, ep.support_labels, ep.query_examples) for ep in episodes]

    def validate(learner: MetaLearner) -> float:
        scores = []
        many = getattr(learner, "fit_predict_many", None)  # all episodes at once (vmap engine)
        preds = many(triples) if callable(many) else [learner.fit_predict(*t) for t in triples]
        for ep, pred in zip(episodes, preds):
            if learner.kind == "classification":
                if len(np.unique(ep.query_labels)) == 2:
                    scores.append(roc_auc(ep.query_labels, pred))
            else:
                nan = np.isnan(np.asarray(pred, dtype=np.float64)).any()
                scores.append(float("nan") if nan else -rmse(ep.query_labels, pred))
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
        resume: continue from ``out_dir/checkpoint.pt`` (FewshotError if absent, unreadable,
            or written with other fixed settings, another learner or other tasks).
        progress: report progress (a bar on a terminal, a line per 10% elsewhere).
        extra_config: the domain's keys for config.json (``encoder``, ``featurizer``,
            data set, ...); its ``tasks`` entry, if any, is replaced by the record of
            ``train_tasks`` and ``valid_tasks`` (names in ``tasks.json``).

    Distributed (see the module docstring): under ``torchrun`` or with an initialized
    process group, call it on every rank with the same arguments; each rank computes its
    share of every meta-batch, rank 0 validates and writes the files, and every rank returns
    the same result with the same weights in ``learner``.

    Raises FewshotError when the loss or gradient becomes NaN/inf (naming the step), and
    :class:`TrainingInterrupted` (a KeyboardInterrupt) after writing the checkpoint when
    SIGINT or SIGTERM arrives (handled in the main thread only).
    """
    config = config or TrainConfig()
    out_dir = Path(out_dir)
    multi = distributed.requested()
    device = resolve_device(config.device, distributed.local_rank() if multi else None)
    owns_group = distributed.init_from_env(device)
    try:
        return _meta_train(
            learner,
            train_tasks,
            valid_tasks,
            train_sampler,
            valid_fn,
            config,
            out_dir,
            resume,
            progress,
            extra_config,
            valid_sampler,
            device,
        )
    finally:
        if owns_group:
            distributed.destroy()


def _meta_train(
    learner: MetaLearner,
    train_tasks: Sequence[Task],
    valid_tasks: Sequence[Task] | None,
    train_sampler: object,
    valid_fn: Callable[[MetaLearner], float] | None,
    config: TrainConfig,
    out_dir: Path,
    resume: bool,
    progress: bool,
    extra_config: dict | None,
    valid_sampler: object | None,
    device: torch.device,
) -> TrainResult:
    """:func:`meta_train` once the device and the process group (if any) are set up."""
    world, rank = distributed.world_size(), distributed.rank()
    main = rank == 0
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
    learner.to(device)
    if world > 1:
        if device.type == "cuda":  # NCCL object collectives use the current device
            torch.cuda.set_device(device)
        distributed.broadcast_parameters(learner)  # every rank starts from rank 0's weights
    if valid_fn is None and valid_tasks:  # on every rank: the same errors everywhere
        valid_fn = episode_validator(
            valid_tasks, valid_sampler or train_sampler, seed=derive_seed(config.seed, "valid")
        )
    params = [p for p in learner.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)

    extra = {
        **(extra_config or {}),
        "train": config.to_dict(),
        "sampler": describe_sampler(train_sampler),
    }
    # The split the model is trained and selected on: names in tasks.json and the checkpoint.
    recorded = task_record(train_tasks, valid_tasks)
    extra["tasks"] = tasks_summary(recorded)
    if world > 1:
        extra["distributed"] = {"world_size": world, "backend": distributed.backend_for(device)}
    resolved = model_config(learner, extra)
    checkpoint_path = out_dir / CHECKPOINT_FILE
    log_path = out_dir / LOG_FILE
    step, best_valid, best_step, best_weights = 0, None, None, None
    bad_evals, stopped_early = 0, False
    if resume:
        ckpt, error = None, None
        if main:
            try:
                ckpt = _load_checkpoint(checkpoint_path, config, learner, recorded)
            except FewshotError as err:
                if world == 1:
                    raise
                error = str(err)
        if world > 1:  # rank 0 reads, every rank gets it (no shared file system needed)
            ckpt, error = distributed.broadcast_object((ckpt, error))
        if error is not None:
            raise FewshotError(error)
        try:
            learner.load_state_dict(ckpt["learner"])
            optimizer.load_state_dict(ckpt["optimizer"])
        except (RuntimeError, ValueError, KeyError) as err:
            raise FewshotError(
                f"{checkpoint_path}: does not fit this learner or its optimizer ({err}); "
                "resume with the same learner settings, or start afresh without resume"
            ) from None
        step = int(ckpt["step"])
        rng_ranks = ckpt.get("rng_ranks")
        if rng_ranks is not None and len(rng_ranks) == world:
            _set_rng_state(rng_ranks[rank], device)
        elif main:
            _set_rng_state(ckpt["rng"], device)
        else:  # resumed with another world size: fresh, still seeded, streams on ranks > 0
            torch.manual_seed(derive_seed(config.seed, "torch", "rank", rank, "step", step))
        best_valid, best_step = ckpt["best_valid"], ckpt["best_step"]
        best_weights, bad_evals = ckpt["best_weights"], int(ckpt["bad_evals"])
        stopped_early = bool(ckpt["stopped_early"])
        if main:
            _truncate_log(log_path, step)
        log.info("resuming %s from step %d", out_dir, step)
    else:
        # Rank 0 draws what a single process draws; other ranks their own streams (dropout).
        torch.manual_seed(
            derive_seed(config.seed, "torch")
            if main
            else derive_seed(config.seed, "torch", "rank", rank)
        )
        if main:
            log_path.write_text("", encoding="utf-8")
    if main:
        write_config(out_dir / CONFIG_FILE, resolved)

    last_saved = time.perf_counter()

    def save_checkpoint() -> None:
        nonlocal last_saved
        last_saved = time.perf_counter()
        rng = _rng_state(device)
        rng_ranks = distributed.all_gather_object(rng) if world > 1 else None
        if not main:
            return
        ckpt = {
            "step": step,
            "learner": learner.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": rng,
            "best_valid": best_valid,
            "best_step": best_step,
            "best_weights": best_weights,
            "bad_evals": bad_evals,
            "stopped_early": stopped_early,
            "train_config": config.to_dict(),
            "learner_spec": learner.describe(),
            "tasks": recorded,
        }
        if rng_ranks is not None:
            ckpt["rng_ranks"] = rng_ranks
        tmp = checkpoint_path.with_name(checkpoint_path.name + ".tmp")
        torch.save(ckpt, tmp)
        os.replace(tmp, checkpoint_path)

    def backward(episodes: list) -> float:
        """Gradients of the mean query loss over ``episodes`` in ``p.grad``; the loss. The
        encoder hides the whole meta-batch's tasks (every rank the same ones)."""
        with tasks_hidden(learner.encoder, [ep.task for ep in episodes]):
            return batch_backward(episodes)

    def batch_backward(episodes: list) -> float:
        optimizer.zero_grad(set_to_none=True)
        if world == 1:
            loss = learner.loss(EpisodeBatch.from_episodes(episodes).to(device))
            value = float(loss.detach())
            if not math.isfinite(value):
                raise _nonfinite_error(step, "meta-training loss", value, config)
            loss.backward()
            return value
        start, stop = distributed.share(len(episodes), world, rank)
        mine = episodes[start:stop]
        loss_sum = torch.zeros((), device=device)
        if mine:  # this rank's share: back-propagate the SUM of its episodes' losses
            loss = learner.loss(EpisodeBatch.from_episodes(mine).to(device)) * len(mine)
            loss.backward()
            loss_sum = loss.detach()
        value = distributed.all_reduce_gradients(params, loss_sum, len(episodes))
        if not math.isfinite(value):  # the same value on every rank: all raise
            raise _nonfinite_error(step, "meta-training loss", value, config)
        return value

    def validate() -> float:
        """Rank 0 validates; every rank gets its score (or its failure)."""
        valid = None
        if main:
            # A forked RNG: validation draws nothing from the training run's stream.
            devices = [_cuda_index(device)] if device.type == "cuda" else []
            try:
                with torch.random.fork_rng(devices=devices):
                    valid = float(valid_fn(learner))
            except BaseException as err:
                if world > 1:
                    distributed.broadcast_object(("failed", f"{type(err).__name__}: {err}"))
                raise
        if world > 1:
            status, valid = distributed.broadcast_object(("ok", valid))
            if status != "ok":
                raise FewshotError(f"step {step}: validation failed on rank 0 ({valid})")
        return valid

    last_loss = None
    bar = progress_bar(
        total=config.steps,
        initial=min(step, config.steps),
        enabled=progress and main,
        desc="meta-train",
        dynamic_ncols=True,
    )
    run_started = time.perf_counter()

    def out_of_time() -> bool:
        if config.max_minutes is None:
            return False
        spent = time.perf_counter() - run_started > 60.0 * config.max_minutes
        # Every rank must stop at the same step: rank 0's clock decides.
        return bool(distributed.broadcast_object(spent)) if world > 1 else spent

    def stop_or_save(stop: _StopSignals) -> tuple[int, bool]:
        """(the signal that asks to stop, 0 if none; whether ``checkpoint_minutes`` have
        passed since the last checkpoint): the same on every rank, which all stop at the
        same step and write the checkpoint together (any rank's signal, rank 0's clock)."""
        due = (
            main
            and config.checkpoint_minutes is not None
            and time.perf_counter() - last_saved >= 60.0 * config.checkpoint_minutes
        )
        signum = stop.received or 0
        if world > 1:
            signum, due = distributed.all_reduce_max([signum, int(due)], device)
        return signum, bool(due)

    try:
        with _StopSignals(announce=main) as stop, (
            log_path.open("a", encoding="utf-8") if main else contextlib.nullcontext()
        ) as log_file:
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
                last_loss = backward(episodes)
                max_norm = config.grad_clip if config.grad_clip else float("inf")
                grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
                if not math.isfinite(grad_norm):
                    raise _nonfinite_error(step, "gradient norm", grad_norm, config)
                optimizer.step()
                if world > 1:
                    distributed.sync_running_stats(learner)
                record = {"step": step, "loss": last_loss, "grad_norm": grad_norm}
                budget_spent = out_of_time()
                if valid_fn is not None and (
                    step % config.eval_every == 0 or step == config.steps or budget_spent
                ):
                    valid = validate()
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
                if budget_spent:
                    stopped_early = True
                    record["out_of_time"] = True
                record["seconds"] = round(time.perf_counter() - started, 6)
                if log_file is not None:
                    log_file.write(json.dumps(record) + "\n")
                    log_file.flush()
                bar.update(1)
                bar.set_postfix(
                    loss=f"{last_loss:.4f}",
                    **({"valid": f"{best_valid:.4f}"} if best_valid is not None else {}),
                )
                signum, due = stop_or_save(stop)
                if (
                    step % config.checkpoint_every == 0
                    or step == config.steps
                    or stopped_early
                    or due
                    or signum
                ):
                    save_checkpoint()
                if signum:
                    stop.acted = True
                    raise TrainingInterrupted(signum, step, checkpoint_path if main else None)
    finally:
        bar.close()

    if best_weights is not None:
        learner.load_state_dict(best_weights)
    learner.eval()
    if main:
        save_model(
            learner,
            out_dir,
            {k: v for k, v in resolved.items() if k not in ("learner", "format_version")},
            tasks=recorded,
        )
    distributed.barrier()  # the model is on disk when meta_train returns on any rank
    return TrainResult(step, best_step, best_valid, stopped_early, last_loss, out_dir)


_CHECKPOINT_KEYS = ("step", "learner", "optimizer", "rng", "best_valid", "best_step",
                    "best_weights", "bad_evals", "stopped_early")


def _load_checkpoint(
    path: Path, config: TrainConfig, learner: MetaLearner, tasks: dict | None = None
) -> dict:
    if not path.is_file():
        raise FewshotError(
            f"{path}: no checkpoint to resume from; run without resume to start afresh"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated / foreign files
        raise FewshotError(
            f"{path}: cannot be read, the checkpoint is truncated or corrupted "
            f"({torch_load_problem(err)}); start afresh without resume"
        ) from None
    missing = [k for k in _CHECKPOINT_KEYS if k not in ckpt] if isinstance(ckpt, dict) else None
    if missing is None or missing:
        raise FewshotError(
            f"{path}: is not a training checkpoint written by fewshot-apps (it has no "
            f"{', '.join(missing or _CHECKPOINT_KEYS)}); start afresh without resume"
        )
    spec = ckpt.get("learner_spec")
    if spec is not None and _without_engine(spec) != _without_engine(learner.describe()):
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
            "resume with the same settings (only steps, eval_every, checkpoint_every, "
            "checkpoint_minutes, patience, max_minutes and device may change) or start afresh"
        )
    saved_tasks = ckpt.get("tasks")  # None in checkpoints written before tasks were recorded
    if tasks is not None and saved_tasks is not None:
        problems = []
        for split in ("train", "valid"):
            before, now = list(saved_tasks.get(split, [])), list(tasks.get(split, []))
            if before == now:
                continue
            new = [t for t in now if t not in set(before)]
            gone = [t for t in before if t not in set(now)]
            changes = [f"{len(names)} {what} ({_listed(names)})"
                       for names, what in ((new, "new"), (gone, "no longer there")) if names]
            problems.append(f"{split} tasks: {', '.join(changes) or 'the same, in another order'}")
        if problems:
            raise FewshotError(
                f"{path}: the checkpoint was trained on other tasks than this run's "
                f"({'; '.join(problems)}); resume with the same data set and split (e.g. the "
                "same test assays, seed or cold-start settings) or start afresh"
            )
    return ckpt


def _listed(names: list, limit: int = 5) -> str:
    more = f", ... {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(map(str, names[:limit])) + more


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


def _without_engine(spec: dict) -> dict:
    """A learner description without ``engine`` (loop / vmap compute the same run, so a run
    may resume with the other engine)."""
    config = {k: v for k, v in dict(spec.get("config") or {}).items() if k != "engine"}
    return {**spec, "config": config}
