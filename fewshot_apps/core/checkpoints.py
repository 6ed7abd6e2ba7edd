"""Meta-training checkpoints (``checkpoint.pt``): what one holds (weights, optimizer and RNG
states, best weights, early-stopping state, the settings, the learner and the training and
validation task names), writing one atomically, and reading one back for ``resume``, refused
when it is unreadable or was written for another learner, other fixed settings or other
tasks."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from fewshot_apps.core.learners.base import MetaLearner
from fewshot_apps.core.persistence import torch_load_problem
from fewshot_apps.core.settings import TrainConfig
from fewshot_apps.errors import FewshotError

# Settings a resumed run must share with the checkpoint to continue the same run.
_RESUME_FIXED = ("meta_batch_size", "lr", "weight_decay", "grad_clip", "seed")

# What every checkpoint holds (besides the settings, the learner and the task names).
_CHECKPOINT_KEYS = ("step", "learner", "optimizer", "rng", "best_valid", "best_step",
                    "best_weights", "bad_evals", "stopped_early")


def rng_state(device: torch.device) -> dict:
    """The torch RNG states (CPU, and every CUDA device's on CUDA) a checkpoint keeps."""
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    """Restore RNG states saved by :func:`rng_state`."""
    torch.set_rng_state(state["torch"].cpu())
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def write_checkpoint(path: Path, ckpt: dict) -> None:
    """Write ``ckpt`` to ``path`` through a temporary file: a run stopped while writing
    leaves the previous checkpoint whole, and a write that fails (a setting that cannot be
    saved, a full disk, an interrupt) leaves no temporary file behind before re-raising."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(ckpt, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_checkpoint(
    path: Path, config: TrainConfig, learner: MetaLearner, tasks: dict | None = None
) -> dict:
    """The checkpoint at ``path`` for resuming a run of ``learner`` with ``config`` on
    ``tasks`` (their record); FewshotError when it is missing or unreadable, or was written
    for another learner, other fixed settings or other tasks."""
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
    if spec is not None:
        spec = _with_new_defaults(spec, learner)
    if spec is not None and _without_engine(spec) != _without_engine(learner.describe()):
        now = learner.describe()
        old_c, new_c = _without_engine(spec)["config"], _without_engine(now)["config"]
        # The settings that differ only (a learner has a dozen; the message stays readable).
        keys = ([k for k in sorted(set(old_c) | set(new_c)) if old_c.get(k) != new_c.get(k)]
                if spec["name"] == now["name"] else [])

        def shown(config: dict) -> str:
            return "".join(f", {k}={config.get(k)!r}" for k in keys)

        raise FewshotError(
            f"{path}: the checkpoint is of learner {spec['name']!r} ({spec['kind']}"
            f"{shown(old_c)}), not {now['name']!r} ({now['kind']}{shown(new_c)}); resume "
            "with the same learner or start afresh"
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


def _with_new_defaults(spec: dict, learner: MetaLearner) -> dict:
    """A saved learner description with the settings its learner gained since it was written
    at their defaults (the run trained without them): a checkpoint of an older revision
    resumes unless a setting it had differs."""
    if spec.get("name") != learner.name:
        return spec
    defaults = type(learner.config)().to_dict()
    config = dict(spec.get("config") or {})
    return {**spec, "config": {**{k: v for k, v in defaults.items() if k not in config},
                               **config}}


def _without_engine(spec: dict) -> dict:
    """A learner description without ``engine`` (loop / vmap compute the same run, so a run
    may resume with the other engine)."""
    config = {k: v for k, v in dict(spec.get("config") or {}).items() if k != "engine"}
    return {**spec, "config": config}
