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

The settings (:class:`~fewshot_apps.core.settings.TrainConfig`), the default validation
(:mod:`fewshot_apps.core.validation`) and the checkpoint file
(:mod:`fewshot_apps.core.checkpoints`) have their own modules; here :func:`meta_train` is a
loop over the steps of a :class:`_Run`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fewshot_apps.core import distributed
from fewshot_apps.core.checkpoints import (
    load_checkpoint,
    rng_state,
    set_rng_state,
    write_checkpoint,
)
from fewshot_apps.core.device import resolve_device
from fewshot_apps.core.encoders import tasks_hidden
from fewshot_apps.core.learners.base import EpisodeBatch, MetaLearner
from fewshot_apps.core.optim import adamw
from fewshot_apps.core.persistence import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    model_config,
    save_model,
    task_record,
    tasks_summary,
    write_config,
)
from fewshot_apps.core.settings import TrainConfig
from fewshot_apps.core.tasks import Task, derive_seed, sample_episodes
from fewshot_apps.core.validation import episode_validator
from fewshot_apps.errors import FewshotError
from fewshot_apps.paths import check_output_folder
from fewshot_apps.progress import progress_bar

log = logging.getLogger(__name__)

LOG_FILE = "train_log.jsonl"


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

    def __init__(self, signum: int, step: int, checkpoint: Path | None,
                 how_to_continue: str = "continue with --resume (resume=True)"):
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        self.how_to_continue = how_to_continue
        text = f"interrupted at step {step} ({signal.Signals(signum).name})"
        if checkpoint is not None:
            text += f"; checkpoint written to {checkpoint}; {how_to_continue}"
        super().__init__(text)

    def continued_by(self, how_to_continue: str) -> TrainingInterrupted:
        """The same interruption, telling the user ``how_to_continue`` (a caller whose command
        resumes otherwise than by ``--resume``, e.g. ``bench``)."""
        return TrainingInterrupted(self.signum, self.step, self.checkpoint, how_to_continue)


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
            (:func:`~fewshot_apps.core.validation.episode_validator` with ``valid_sampler``
            or ``train_sampler``) when
            ``valid_fn`` is None. No validation at all when both are empty/None.
        valid_fn: ``valid_fn(learner) -> float``, higher is better; runs under a forked RNG,
            so validating changes nothing of the training run.
        config: :class:`~fewshot_apps.core.settings.TrainConfig`.
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
    out_dir = check_output_folder(out_dir, "out_dir")
    multi = distributed.requested()
    device = resolve_device(config.device, distributed.local_rank() if multi else None)
    owns_group = distributed.init_from_env(device)
    try:
        run = _Run(learner, train_tasks, valid_tasks, train_sampler, valid_fn, config, out_dir,
                   extra_config, valid_sampler, device)
        return _meta_train(run, resume, progress)
    finally:
        if owns_group:
            distributed.destroy()


def _meta_train(run: _Run, resume: bool, progress: bool) -> TrainResult:
    """:func:`meta_train` once the device and the process group (if any) are set up: the
    loop over the run's steps."""
    config = run.config
    run.restore_or_start(resume)
    bar = progress_bar(
        total=config.steps,
        initial=min(run.step, config.steps),
        enabled=progress and run.main,
        desc="meta-train",
        dynamic_ncols=True,
    )
    run.started = time.perf_counter()  # max_minutes counts from here
    try:
        with _StopSignals(announce=run.main) as stop, run.open_log() as log_file:
            while run.step < config.steps and not run.stopped_early:
                record = run.train_step()
                run.maybe_validate(record)
                run.log_step(record, log_file, bar)
                run.maybe_checkpoint(stop)
    finally:
        bar.close()
    return run.finish()


class _Run:
    """One meta-training run: its state (step, best weights, early stopping ...) and the
    steps :func:`_meta_train` takes, the same on every rank of a distributed run."""

    def __init__(
        self,
        learner: MetaLearner,
        train_tasks: Sequence[Task],
        valid_tasks: Sequence[Task] | None,
        train_sampler: object,
        valid_fn: Callable[[MetaLearner], float] | None,
        config: TrainConfig,
        out_dir: Path,
        extra_config: dict | None,
        valid_sampler: object | None,
        device: torch.device,
    ):
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
        optimizer = adamw(params, lr=config.lr, weight_decay=config.weight_decay)

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
        self.world, self.rank, self.main = world, rank, main
        self.learner, self.params, self.optimizer = learner, params, optimizer
        self.train_tasks, self.train_sampler, self.valid_fn = train_tasks, train_sampler, valid_fn
        self.config, self.device, self.out_dir = config, device, out_dir
        self.recorded = recorded
        self.resolved = model_config(learner, extra)
        self.checkpoint_path = out_dir / CHECKPOINT_FILE
        self.log_path = out_dir / LOG_FILE
        self.step, self.best_valid, self.best_step, self.best_weights = 0, None, None, None
        self.bad_evals, self.stopped_early = 0, False
        self.last_loss: float | None = None
        self.last_saved = self.started = self.step_started = time.perf_counter()

    # ---------------------------------------------------------------- the steps, in order

    def restore_or_start(self, resume: bool) -> None:
        """Continue from the checkpoint (``resume``) or start afresh; write config.json."""
        if resume:
            self._restore()
        else:
            # Rank 0 draws what a single process draws; other ranks their own streams (dropout).
            torch.manual_seed(
                derive_seed(self.config.seed, "torch")
                if self.main
                else derive_seed(self.config.seed, "torch", "rank", self.rank)
            )
            if self.main:
                self.log_path.write_text("", encoding="utf-8")
        if self.main:
            write_config(self.out_dir / CONFIG_FILE, self.resolved)
        self.last_saved = time.perf_counter()

    def open_log(self):
        """``train_log.jsonl`` opened for appending on rank 0; None on other ranks."""
        if self.main:
            return self.log_path.open("a", encoding="utf-8")
        return contextlib.nullcontext()

    def train_step(self) -> dict:
        """One optimizer step on the step's meta-batch; the step's log record."""
        config = self.config
        self.step += 1
        self.step_started = time.perf_counter()
        self.learner.train()
        episodes = list(
            sample_episodes(
                self.train_tasks,
                self.train_sampler,
                config.meta_batch_size,
                seed=derive_seed(config.seed, "episodes", self.step),
            )
        )
        self.last_loss = self._backward(episodes)
        max_norm = config.grad_clip if config.grad_clip else float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, max_norm))
        if not math.isfinite(grad_norm):
            raise _nonfinite_error(self.step, "gradient norm", grad_norm, config)
        self.optimizer.step()
        if self.world > 1:
            distributed.sync_running_stats(self.learner)
        return {"step": self.step, "loss": self.last_loss, "grad_norm": grad_norm}

    def maybe_validate(self, record: dict) -> None:
        """Validate every ``eval_every`` steps, at the last step and when ``max_minutes`` are
        spent (then stop): keep the best weights, stop after ``patience`` evaluations without
        improvement."""
        config = self.config
        budget_spent = self._out_of_time()
        if self.valid_fn is not None and (
            self.step % config.eval_every == 0 or self.step == config.steps or budget_spent
        ):
            valid = self._validate()
            self.learner.train()
            if math.isfinite(valid) and (self.best_valid is None or valid > self.best_valid):
                self.best_valid, self.best_step, self.best_weights, self.bad_evals = (
                    valid,
                    self.step,
                    _snapshot(self.learner),
                    0,
                )
            else:
                self.bad_evals += 1
            record.update(valid=valid, best_valid=self.best_valid, best_step=self.best_step)
            if config.patience is not None and self.bad_evals >= config.patience:
                self.stopped_early = True
                record["stopped_early"] = True
        if budget_spent:
            self.stopped_early = True
            record["out_of_time"] = True

    def log_step(self, record: dict, log_file, bar) -> None:
        """The step's line in the log (rank 0) and on the progress bar."""
        record["seconds"] = round(time.perf_counter() - self.step_started, 6)
        if log_file is not None:
            log_file.write(json.dumps(record) + "\n")
            log_file.flush()
        bar.update(1)
        bar.set_postfix(
            loss=f"{self.last_loss:.4f}",
            **({"valid": f"{self.best_valid:.4f}"} if self.best_valid is not None else {}),
        )

    def maybe_checkpoint(self, stop: _StopSignals) -> None:
        """Write the checkpoint every ``checkpoint_every`` steps or ``checkpoint_minutes``, at
        the end, and when a signal asks to stop (then raise :class:`TrainingInterrupted`)."""
        config = self.config
        signum, due = self._stop_or_save(stop)
        if (
            self.step % config.checkpoint_every == 0
            or self.step == config.steps
            or self.stopped_early
            or due
            or signum
        ):
            self.save_checkpoint()
        if signum:
            stop.acted = True
            raise TrainingInterrupted(signum, self.step, self.checkpoint_path if self.main else None)

    def finish(self) -> TrainResult:
        """Load the best weights and save the model (rank 0); every rank waits for it."""
        if self.best_weights is not None:
            self.learner.load_state_dict(self.best_weights)
        self.learner.eval()
        if self.main:
            save_model(
                self.learner,
                self.out_dir,
                {k: v for k, v in self.resolved.items() if k not in ("learner", "format_version")},
                tasks=self.recorded,
            )
        distributed.barrier()  # the model is on disk when meta_train returns on any rank
        return TrainResult(self.step, self.best_step, self.best_valid, self.stopped_early,
                           self.last_loss, self.out_dir)

    # ---------------------------------------------------------------- what the steps use

    def _restore(self) -> None:
        """The checkpoint's weights, optimizer, RNG and early-stopping state."""
        config, world, rank, device = self.config, self.world, self.rank, self.device
        ckpt, error = None, None
        if self.main:
            try:
                ckpt = load_checkpoint(self.checkpoint_path, config, self.learner, self.recorded)
            except FewshotError as err:
                if world == 1:
                    raise
                error = str(err)
        if world > 1:  # rank 0 reads, every rank gets it (no shared file system needed)
            ckpt, error = distributed.broadcast_object((ckpt, error))
        if error is not None:
            raise FewshotError(error)
        try:
            self.learner.load_state_dict(ckpt["learner"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except (RuntimeError, ValueError, KeyError) as err:
            raise FewshotError(
                f"{self.checkpoint_path}: does not fit this learner or its optimizer ({err}); "
                "resume with the same learner settings, or start afresh without resume"
            ) from None
        self.step = int(ckpt["step"])
        rng_ranks = ckpt.get("rng_ranks")
        if rng_ranks is not None and len(rng_ranks) == world:
            set_rng_state(rng_ranks[rank], device)
        elif self.main:
            set_rng_state(ckpt["rng"], device)
        else:  # resumed with another world size: fresh, still seeded, streams on ranks > 0
            torch.manual_seed(derive_seed(config.seed, "torch", "rank", rank, "step", self.step))
        self.best_valid, self.best_step = ckpt["best_valid"], ckpt["best_step"]
        self.best_weights, self.bad_evals = ckpt["best_weights"], int(ckpt["bad_evals"])
        self.stopped_early = bool(ckpt["stopped_early"])
        if self.main:
            _truncate_log(self.log_path, self.step)
        log.info("resuming %s from step %d", self.out_dir, self.step)

    def save_checkpoint(self) -> None:
        """Write ``checkpoint.pt`` (rank 0, with every rank's RNG state)."""
        self.last_saved = time.perf_counter()
        rng = rng_state(self.device)
        rng_ranks = distributed.all_gather_object(rng) if self.world > 1 else None
        if not self.main:
            return
        ckpt = {
            "step": self.step,
            "learner": self.learner.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": rng,
            "best_valid": self.best_valid,
            "best_step": self.best_step,
            "best_weights": self.best_weights,
            "bad_evals": self.bad_evals,
            "stopped_early": self.stopped_early,
            "train_config": self.config.to_dict(),
            "learner_spec": self.learner.describe(),
            "tasks": self.recorded,
        }
        if rng_ranks is not None:
            ckpt["rng_ranks"] = rng_ranks
        write_checkpoint(self.checkpoint_path, ckpt)

    def _backward(self, episodes: list) -> float:
        """Gradients of the mean query loss over ``episodes`` in ``p.grad``; the loss. The
        encoder hides the whole meta-batch's tasks (every rank the same ones; an encoder
        that can, only each episode's examples in its own task)."""
        # a generator: only an encoder that takes the examples concatenates them
        examples = (np.concatenate([ep.support_examples, ep.query_examples])
                    for ep in episodes)
        with tasks_hidden(self.learner.encoder, [ep.task for ep in episodes], examples):
            return self._batch_backward(episodes)

    def _batch_backward(self, episodes: list) -> float:
        learner, device, world = self.learner, self.device, self.world
        self.optimizer.zero_grad(set_to_none=True)
        if world == 1:
            loss = learner.loss(EpisodeBatch.from_episodes(episodes).to(device))
            value = float(loss.detach())
            if not math.isfinite(value):
                raise _nonfinite_error(self.step, "meta-training loss", value, self.config)
            loss.backward()
            return value
        start, stop = distributed.share(len(episodes), world, self.rank)
        mine = episodes[start:stop]
        loss_sum = torch.zeros((), device=device)
        if mine:  # this rank's share: back-propagate the SUM of its episodes' losses
            loss = learner.loss(EpisodeBatch.from_episodes(mine).to(device)) * len(mine)
            loss.backward()
            loss_sum = loss.detach()
        value = distributed.all_reduce_gradients(self.params, loss_sum, len(episodes))
        if not math.isfinite(value):  # the same value on every rank: all raise
            raise _nonfinite_error(self.step, "meta-training loss", value, self.config)
        return value

    def _validate(self) -> float:
        """Rank 0 validates; every rank gets its score (or its failure)."""
        valid = None
        if self.main:
            # A forked RNG: validation draws nothing from the training run's stream.
            device = self.device
            devices = [_cuda_index(device)] if device.type == "cuda" else []
            try:
                with torch.random.fork_rng(devices=devices):
                    valid = float(self.valid_fn(self.learner))
            except BaseException as err:
                if self.world > 1:
                    distributed.broadcast_object(("failed", f"{type(err).__name__}: {err}"))
                raise
        if self.world > 1:
            status, valid = distributed.broadcast_object(("ok", valid))
            if status != "ok":
                raise FewshotError(f"step {self.step}: validation failed on rank 0 ({valid})")
        return valid

    def _out_of_time(self) -> bool:
        if self.config.max_minutes is None:
            return False
        spent = time.perf_counter() - self.started > 60.0 * self.config.max_minutes
        # Every rank must stop at the same step: rank 0's clock decides.
        return bool(distributed.broadcast_object(spent)) if self.world > 1 else spent

    def _stop_or_save(self, stop: _StopSignals) -> tuple[int, bool]:
        """(the signal that asks to stop, 0 if none; whether ``checkpoint_minutes`` have
        passed since the last checkpoint): the same on every rank, which all stop at the
        same step and write the checkpoint together (any rank's signal, rank 0's clock)."""
        due = (
            self.main
            and self.config.checkpoint_minutes is not None
            and time.perf_counter() - self.last_saved >= 60.0 * self.config.checkpoint_minutes
        )
        signum = stop.received or 0
        if self.world > 1:
            signum, due = distributed.all_reduce_max([signum, int(due)], self.device)
        return signum, bool(due)


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

