"""Saving and loading trained learners: ``model.pt`` (state_dict) + ``config.json``.

A saved model is a folder:

* ``model.pt``: the learner's ``state_dict`` only (read back with ``weights_only=True``, so
  loading never runs pickled code);
* ``config.json``: ``{"format_version", "learner": {"name", "kind", "config"}, "encoder":
  {"name", ...}, ...}`` plus whatever the domain adds (featurizer settings, vocabularies,
  the training config), ``"tasks": {"file": "tasks.json", "sha256", "n_train",
  "n_valid"}`` when the split is recorded, and ``"calibration": {"method", ...}`` (the
  post-hoc calibration fitted on validation tasks, :mod:`fewshot_apps.core.calibration`;
  a model saved without it loads uncalibrated);
* ``tasks.json``: the names of the tasks (users, for recommendation) the model was trained
  and selected on, ``{"format_version", "train": [...], "valid": [...]}``, so that
  :func:`check_unseen_tasks` can refuse to score it on tasks it has seen. Models saved before
  the split was recorded have neither.

The encoder is rebuilt from ``config["encoder"]["name"]``, its entry in
:data:`~fewshot_apps.core.registry.ENCODERS` (core's and every domain's encoders are declared
there), by ``from_config(config["encoder"])`` of the registered class; or by a
``build_encoder`` callable given to :func:`load_model`, which receives the whole config dict.
The learner is rebuilt from its :data:`~fewshot_apps.core.registry.MODELS` entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from fewshot_apps.core.calibration import Calibration
from fewshot_apps.core.config import constructor_defaults, parse_like
from fewshot_apps.core.learners.base import MetaLearner, learner_class
from fewshot_apps.core.registry import ENCODERS, ENSEMBLE_FAMILY, MODELS
from fewshot_apps.errors import FewshotError

MODEL_FILE = "model.pt"
CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint.pt"  # a run's training state until it finishes (training.py)
TASKS_FILE = "tasks.json"
FORMAT_VERSION = 1

EncoderFactory = Callable[[dict], nn.Module]


def model_config(learner: MetaLearner, config: dict | None = None) -> dict:
    """The config saved beside the weights: ``config`` (the domain's keys, e.g. ``encoder``,
    ``featurizer``) with the learner's description and, when the caller gives no ``encoder``
    entry, the encoder's own ``config()`` if it has one; and, when the caller gives no
    ``calibration`` entry, the learner's calibration if it has one
    (:mod:`fewshot_apps.core.calibration`)."""
    out = {"format_version": FORMAT_VERSION, **dict(config or {})}
    out["learner"] = learner.describe()
    if "encoder" not in out and callable(getattr(learner.encoder, "config", None)):
        out["encoder"] = learner.encoder.config()
    calibration = getattr(learner, "calibration", None)
    if "calibration" not in out and callable(getattr(calibration, "to_config", None)):
        out["calibration"] = calibration.to_config()
    return out


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    # Write beside, then rename: an interrupted save never leaves a half-written file.
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def write_config(path: str | Path, config: dict) -> None:
    """``config`` as indented JSON (paths and other objects as strings)."""
    text = json.dumps(config, indent=2, default=str) + "\n"
    _write_atomic(Path(path), lambda p: p.write_text(text, encoding="utf-8"))


def update_model_config(path: str | Path, **entries) -> dict:
    """Set ``entries`` in the ``config.json`` of a saved model (``path``: its folder or one
    of its files), e.g. the calibration fitted after training; returns the new config."""
    _, config_path = _model_paths(path)
    config = read_model_config(config_path)
    config.update(entries)
    write_config(config_path, config)
    return config


def task_record(train, valid=()) -> dict:
    """``{"train": [names], "valid": [names]}`` of tasks (anything with ``.name``) or names:
    the split a model is trained (``train``) and selected (``valid``) on."""

    def names(tasks) -> list[str]:
        return [str(getattr(t, "name", t)) for t in (tasks or ())]

    return {"train": names(train), "valid": names(valid)}


def _is_task_record(value) -> bool:
    return isinstance(value, dict) and isinstance(value.get("train"), list | tuple)


def tasks_fingerprint(record: dict) -> str:
    """sha256 of a :func:`task_record` (names in their order)."""
    text = json.dumps({"train": list(record["train"]), "valid": list(record.get("valid", []))},
                      separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def tasks_summary(record: dict) -> dict:
    """What ``config.json`` says of a recorded split (the names are in ``tasks.json``)."""
    return {"file": TASKS_FILE, "sha256": tasks_fingerprint(record),
            "n_train": len(record["train"]), "n_valid": len(record.get("valid", []))}


def save_model(learner: MetaLearner | nn.Module, out_dir: str | Path,
               config: dict | None = None, tasks: dict | None = None) -> Path:
    """Write ``out_dir/model.pt`` (state_dict) and ``out_dir/config.json``; returns ``out_dir``.
    ``learner``: a meta-learner or a pre-trained transfer baseline (anything with
    ``describe()`` and ``encoder``).

    ``config`` holds the encoder's config (``{"name": ..., ...}``, unless the encoder has a
    ``config()`` method) and anything the domain needs to predict again.

    ``tasks``: the split the learner was trained on (:func:`task_record`), written to
    ``out_dir/tasks.json`` and summarized in ``config["tasks"]``; when None, a task record in
    ``config["tasks"]`` (e.g. from a data set's ``saved_model_config()``) is used.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = dict(config or {})
    if tasks is None and _is_task_record(config.get("tasks")):
        tasks = config["tasks"]
    state = {k: v.detach().cpu() for k, v in learner.state_dict().items()}
    _write_atomic(out_dir / MODEL_FILE, lambda p: torch.save(state, p))
    if tasks is not None:
        config["tasks"] = write_tasks(out_dir, tasks)
    else:
        config.pop("tasks", None)  # a summary without its tasks.json would claim a split
    write_config(out_dir / CONFIG_FILE, model_config(learner, config))
    return out_dir


def write_tasks(out_dir: str | Path, tasks: dict) -> dict:
    """Write the split ``tasks`` (:func:`task_record`'s keys) to ``out_dir/tasks.json``;
    returns the summary that ``config.json`` keeps of it (:func:`tasks_summary`)."""
    record = task_record(tasks["train"], tasks.get("valid", ()))
    text = json.dumps({"format_version": FORMAT_VERSION, **record}, indent=0) + "\n"
    _write_atomic(Path(out_dir) / TASKS_FILE, lambda p: p.write_text(text, encoding="utf-8"))
    return tasks_summary(record)


def read_model_tasks(path: str | Path, config: dict | None = None) -> dict | None:
    """The split a saved model records (:func:`task_record`), or None for a model saved
    without one (before splits were recorded). ``path``: the model's folder or one of its
    files. FewshotError naming ``tasks.json`` when it is missing, unreadable or not the one
    ``config.json`` describes."""
    _, config_path = _model_paths(path)
    config = read_model_config(config_path) if config is None else config
    summary = config.get("tasks")
    if summary is None:
        return None
    tasks_path = config_path.parent / TASKS_FILE
    if not isinstance(summary, dict) or not summary.get("sha256"):
        raise FewshotError(f"{config_path}: its 'tasks' entry has no sha256 of {TASKS_FILE}")
    if not tasks_path.is_file():
        raise FewshotError(
            f"{tasks_path}: file not found; {config_path.name} says the model's training tasks "
            f"are listed there ({summary.get('n_train')} training, {summary.get('n_valid')} "
            "validation tasks). Copy it along with the model"
        )
    try:
        data = json.loads(tasks_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise FewshotError(f"{tasks_path}: not valid JSON ({err})") from None
    if not _is_task_record(data) or not isinstance(data.get("valid", []), list):
        raise FewshotError(f"{tasks_path}: has no 'train' and 'valid' lists of task names")
    record = task_record(data["train"], data.get("valid", []))
    if tasks_fingerprint(record) != summary["sha256"]:
        raise FewshotError(
            f"{tasks_path}: does not match the sha256 in {config_path.name}; it lists other "
            "tasks than the model was trained on (was it copied from another model?)"
        )
    return record


def _listed(names: list[str], limit: int = 6) -> str:
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def check_unseen_tasks(
    model_path: str | Path,
    suite: str,
    test_tasks,
    config: dict | None = None,
    what: str = "tasks",
    warn: bool = True,
) -> bool:
    """Refuse to score a saved model on tasks it was trained or selected on.

    ``test_tasks``: the suite's test tasks (or their names); ``what``: what a task is
    (``"users"`` for recommendation). Raises FewshotError naming the model, the suite and
    the test tasks that are among the model's training or validation tasks. Returns True
    when the model records its split; False (with a warning when ``warn``) for a model saved
    before splits were recorded, whose leakage cannot be checked.
    """
    config = read_model_config(model_path) if config is None else config
    record = read_model_tasks(model_path, config)
    if record is None:
        if warn:
            warnings.warn(
                f"{model_path}: the model records no training split (saved before "
                f"fewshot-apps recorded one in {TASKS_FILE}); whether it was trained on the "
                f"suite {suite}'s test {what} cannot be checked",
                stacklevel=2,
            )
        return False
    test = task_record(test_tasks)["train"]
    trained, selected = set(record["train"]), set(record["valid"])
    seen = [t for t in test if t in trained]
    chosen = [t for t in test if t in selected and t not in trained]
    if seen or chosen:
        of_suite = f"of the suite {suite}'s {len(test)} test {what}"
        if seen:
            problem = f"was trained on {len(seen)} {of_suite} ({_listed(seen)})"
            if chosen:
                problem += f" and selected on {len(chosen)} more ({_listed(chosen)})"
        else:
            problem = f"was selected (validated) on {len(chosen)} {of_suite} ({_listed(chosen)})"
        raise FewshotError(
            f"{model_path}: {problem}; its scores on them would be inflated. Evaluate "
            f"it on a suite whose test {what} it has not seen, or train a model on the "
            f"suite's own split (e.g. fewshot-apps bench --suite {suite})"
        )
    return True


def check_new_run(out: str | Path, resume: bool, option: str = "--out") -> None:
    """FewshotError when ``out`` already holds a trained model and the run does not resume:
    training afresh there would silently replace that model."""
    out = Path(out)
    if not resume and (out / MODEL_FILE).is_file() and (out / CONFIG_FILE).is_file():
        raise FewshotError(
            f"{option} {out} already holds a trained model ({MODEL_FILE}, {CONFIG_FILE}); "
            "pass --resume to continue that run, or choose another folder")


def _model_paths(path: str | Path) -> tuple[Path, Path]:
    path = Path(path)
    folder = path.parent if path.suffix in (".pt", ".json") else path
    return folder / MODEL_FILE, folder / CONFIG_FILE


def config_path(path: str | Path) -> Path:
    """The ``config.json`` of a saved model (``path``: its folder or one of its files)."""
    return _model_paths(path)[1]


def read_model_config(path: str | Path) -> dict:
    """The ``config.json`` of a saved model (``path``: its folder or one of its files)."""
    _, config_path = _model_paths(path)
    if not config_path.is_file():
        raise FewshotError(
            f"{config_path}: file not found; a saved model is a folder with {MODEL_FILE} and "
            f"{CONFIG_FILE} (written by save_model or meta_train)"
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise FewshotError(f"{config_path}: not valid JSON ({err})") from None
    learner = config.get("learner") if isinstance(config, dict) else None
    if not isinstance(learner, dict) or not {"name", "kind"} <= set(learner):
        raise FewshotError(f"{config_path}: has no 'learner' entry with 'name' and 'kind'")
    return config


def _build_encoder(
    config: dict, config_path: Path, build_encoder: EncoderFactory | None
) -> nn.Module:
    if build_encoder is not None:
        return build_encoder(config)
    encoder_config = config.get("encoder")
    if not isinstance(encoder_config, dict) or "name" not in encoder_config:
        raise FewshotError(
            f"{config_path}: has no 'encoder' entry with a 'name'; pass build_encoder=... to "
            "load_model to rebuild the encoder"
        )
    name = encoder_config["name"]
    if name not in ENCODERS:
        raise FewshotError(
            f"{config_path}: encoder {name!r} is not registered (known: "
            f"{', '.join(sorted(ENCODERS))}); install the package that provides it, or pass "
            "build_encoder=..."
        )
    cls = ENCODERS.load(name)
    # config.json can be edited by hand: a value of the wrong type is an error naming the key
    # here, not a TypeError deep inside torch. (A None default says nothing of the type.)
    typed = {k: v for k, v in constructor_defaults(cls).items() if v is not None}
    return cls.from_config(parse_like(encoder_config, typed, "encoder"))


def torch_load_problem(err: BaseException) -> str:
    """A short reason why ``torch.load(..., weights_only=True)`` failed, for a message about
    a user's file: torch's own text runs to paragraphs, and its advice to retry with
    ``weights_only=False`` would run code pickled in the file, which fewshot-apps never
    does."""
    text = str(err).strip()
    if "WeightsUnpickler error:" in text:
        detail = text.split("WeightsUnpickler error:", 1)[1].strip().splitlines()[0]
        detail = detail.split(". ")[0].rstrip(".")
        return f"not plain tensors, safe to load: {detail}"
    first = text.splitlines()[0] if text else ""
    first = first.split(". ")[0].rstrip(".")
    return f"{type(err).__name__}: {first[:160]}" if first else type(err).__name__


def load_state(model_path: Path, module: nn.Module, described_by: str) -> None:
    """Load a state_dict file into ``module`` with errors that name the file and problem."""
    if not model_path.is_file():
        raise FewshotError(f"{model_path}: file not found (the weights of {described_by})")
    try:
        state = torch.load(model_path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, ValueError, OSError, KeyError) as err:
        raise FewshotError(
            f"{model_path}: cannot be read: the file is truncated, corrupted or not a state_dict "
            f"saved by fewshot-apps ({torch_load_problem(err)})"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise FewshotError(f"{model_path}: does not hold a state_dict (a dict of tensors)")
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k} is {list(state[k].shape)} in the file but {list(v.shape)} in the model"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or shapes:
        problems = []
        if missing:
            problems.append(f"missing {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")
        if unexpected:
            problems.append(
                f"unexpected {', '.join(unexpected[:8])}{' ...' if len(unexpected) > 8 else ''}"
            )
        problems += shapes[:8]
        raise FewshotError(f"{model_path}: does not match {described_by}: {'; '.join(problems)}")
    module.load_state_dict(state)


def load_model(
    path: str | Path,
    build_encoder: EncoderFactory | None = None,
    device: str | torch.device | None = None,
    learner_settings: dict | None = None,
) -> MetaLearner:
    """Rebuild a saved learner (eval mode) from its folder (or one of its files); a saved
    transfer baseline (``finetune``, ``linear-probe``) comes back pre-trained.

    ``build_encoder(config) -> encoder`` overrides the registered factory (e.g. to hand a
    feature table or molecule pool to the encoder). ``learner_settings`` (``{key: value}``, the
    keys of the learner's config, values as ``--set`` gives them) replace the saved ones at
    evaluation: settings of the adaptation that hold no weights (``dkt``'s ``fit_steps``, a MAML
    learner's ``inner_steps``); one that changes the weights' shapes is refused when they are
    loaded, and a transfer baseline takes none. The loaded config is kept as
    ``learner.saved_config``, its calibration as ``learner.calibration`` (the identity for a
    model saved before calibrations were recorded). Missing, unreadable or mismatched files raise FewshotError
    naming the file and the problem.
    """
    model_path, config_path = _model_paths(path)
    config = read_model_config(config_path)
    if config["learner"].get("family") == ENSEMBLE_FAMILY:
        raise FewshotError(
            f"{config_path}: an ensemble of saved models (its weights are its members'); load "
            "it with fewshot_apps.load_model, which loads each member")
    if not model_path.is_file():
        # training writes config.json first and model.pt last: this run did not finish
        checkpoint = model_path.parent / CHECKPOINT_FILE
        how = (f"its {CHECKPOINT_FILE} is there: run the same training command with --resume "
               "(resume=True in Python) to finish it" if checkpoint.is_file()
               else "no checkpoint is there: train again")
        raise FewshotError(
            f"{model_path}: file not found; {config_path.name} is there, so the training run "
            f"in this folder did not finish or its weights were removed ({how})"
        )
    spec = config["learner"]
    try:
        encoder = _build_encoder(config, config_path, build_encoder)
        if spec.get("family") == "transfer":
            if learner_settings:
                raise FewshotError(f"{spec['name']!r} is a transfer baseline: it takes no "
                                   f"learner settings at evaluation, got {sorted(learner_settings)}")
            known = MODELS.names(family="transfer")
            if spec["name"] not in known:
                raise FewshotError(f"unknown transfer baseline {spec['name']!r}; known: "
                                   f"{', '.join(sorted(known))}")
            learner = MODELS.load(spec["name"]).from_description(encoder, spec)
        else:
            cls = learner_class(spec["name"])
            values = {**spec.get("config", {}), **(learner_settings or {})}
            learner = cls(encoder, spec["kind"], cls.Config.from_dict(values, learner=spec["name"]))
    except FewshotError as err:
        message = str(err)
        raise FewshotError(
            message if message.startswith(str(config_path)) else f"{config_path}: {message}"
        ) from None
    load_state(model_path, learner, f"the model described by {config_path}")
    try:
        learner.calibration = Calibration.from_config(config.get("calibration"))
    except FewshotError as err:
        raise FewshotError(f"{config_path}: {err}") from None
    learner.saved_config = config
    if device is not None:
        learner.to(device)
    return learner.eval()
