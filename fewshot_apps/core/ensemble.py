"""An ensemble of saved models: the mean of their predictions on each episode.

Each member adapts to the support set on its own (a deep-kernel GP fits its kernel, a
prototypical network builds its prototypes) and scores the query; the ensemble averages
the members' outputs: probabilities (each already calibrated by its member's own
calibration) for classification, ratings for regression. Nothing is trained.

A saved ensemble is a folder, self-contained so that it can be copied as a whole::

    config.json        {"learner": {"name": "mean-ensemble", "kind", "family": "ensemble",
                        "members": [{"folder": "members/dkt", "learner": "dkt",
                                     "family": "metric", "source": "<copied from>"}, ...]},
                        "tasks": {...}, plus the data keys the members share}
    tasks.json         the union of the members' training and validation tasks, so that the
                       usual check refuses test tasks any member has seen
    members/<name>/    each member's config.json, model.pt and tasks.json, copied

The members must describe their data identically (``dataset``, ``domain``, the featurizer,
the molecule variant, the item vocabulary ...: every key of their configs but the ones
that describe a model, :data:`MODEL_KEYS`), so that one data set (and, for ``mol predict``,
one molecule store) serves them all.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from torch import nn

from fewshot_apps.core.persistence import (
    CONFIG_FILE,
    FORMAT_VERSION,
    MODEL_FILE,
    TASKS_FILE,
    read_model_config,
    read_model_tasks,
    write_config,
    write_tasks,
)
from fewshot_apps.core.registry import ENSEMBLE_FAMILY, MODELS, registered_name
from fewshot_apps.errors import FewshotError

MEMBERS_DIR = "members"
#: Config keys that describe one model (its learner, encoder, training, calibration, ranking
#: weight and split: what ``save_model``'s callers write besides the data set's
#: ``saved_model_config()``) rather than the data it reads: the members may differ in these.
MODEL_KEYS = frozenset({"format_version", "learner", "encoder", "calibration", "tasks",
                        "episode", "init", "train", "sampler", "pretrain_steps",
                        "pretrain_seconds", "ranking"})


class Ensemble(nn.Module):
    """The mean of ``members``' predictions (loaded models, each with ``fit_predict`` and one
    ``kind``). ``member_names``: how results and reports name them (default: their learners).
    :func:`~fewshot_apps.core.evaluation.encoded_once` encodes each member's examples once.
    """

    name = registered_name(MODELS)  # "mean-ensemble"
    family = ENSEMBLE_FAMILY

    def __init__(self, members: Sequence[nn.Module], member_names: Sequence[str] | None = None):
        super().__init__()
        if len(members) < 2:
            raise FewshotError(f"an ensemble needs at least two members, got {len(members)}")
        kinds = sorted({str(getattr(m, "kind", "")) for m in members})
        if len(kinds) != 1:
            raise FewshotError(f"the members of an ensemble must predict one kind of label; "
                               f"these predict {' and '.join(kinds)}")
        self.members = nn.ModuleList(members)
        self.kind = kinds[0]
        self.member_names = list(member_names or [getattr(m, "name", type(m).__name__)
                                                  for m in members])
        # the members' own calibrations are applied; their mean is not calibrated again
        self.calibration = None

    @property
    def encoders(self) -> list:
        """Each member's encoder (``mol predict`` points them all at the user's molecules)."""
        return [member.encoder for member in self.members]

    def fit_predict(self, support_ids, support_labels, query_ids) -> np.ndarray:
        """``[q]`` float64: the mean over members of their ``fit_predict`` (probabilities or
        ratings) for this support set and query."""
        return np.mean([np.asarray(member.fit_predict(support_ids, support_labels, query_ids),
                                   dtype=np.float64) for member in self.members], axis=0)

    def fit_rank(self, support_ids, support_labels, candidate_ids) -> np.ndarray:
        """``[c]`` float64 ranking scores of the candidates (higher first): the mean of the
        members' own (``fit_rank`` where a member has one, else its ``fit_predict``)."""
        def ranks(member):
            rank = getattr(member, "fit_rank", None)
            return (rank(support_ids, support_labels, candidate_ids) if callable(rank)
                    else member.fit_predict(support_ids, support_labels, candidate_ids))

        return np.mean([np.asarray(ranks(m), dtype=np.float64) for m in self.members], axis=0)

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind, "family": ENSEMBLE_FAMILY,
                "members": list(self.member_names)}


def is_ensemble_config(config: dict) -> bool:
    """Whether a saved model's ``config.json`` (a dict) describes an ensemble."""
    return (config.get("learner") or {}).get("family") == ENSEMBLE_FAMILY


def _member_folder_names(learners: list[str]) -> list[str]:
    """``members/<learner>`` for each member, numbered where a learner comes twice; a name
    that is no registered model's (read from a config that may be edited) is ``member``, so
    that a copy never leaves ``members/``."""
    names, seen = [], {}
    for learner in (name if name in MODELS else "member" for name in learners):
        seen[learner] = seen.get(learner, 0) + 1
        names.append(learner if seen[learner] == 1 else f"{learner}-{seen[learner]}")
    return names


def _shared_data_keys(configs: list[tuple[Path, dict]]) -> dict:
    """The data keys (every key but :data:`MODEL_KEYS`) of the members' configs, which must
    agree: FewshotError naming the key and the two members that differ."""
    (first_path, first), *others = configs
    shared = {k: v for k, v in first.items() if k not in MODEL_KEYS}
    for path, config in others:
        mine = {k: v for k, v in config.items() if k not in MODEL_KEYS}
        for key in sorted(set(shared) | set(mine)):
            if shared.get(key) != mine.get(key):
                raise FewshotError(
                    f"{path}: its {key!r} ({_short(mine.get(key))}) differs from that of "
                    f"{first_path} ({_short(shared.get(key))}); the members of an ensemble "
                    "must be trained on the same data, read the same way")
    return shared


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def save_ensemble(members: Sequence[str | Path], out_dir: str | Path,
                  replace: bool = False) -> Path:
    """Write an ensemble of the saved models in ``members`` (their folders) to ``out_dir``:
    the members are copied into ``out_dir/members/`` (config, weights, split); returns
    ``out_dir``.

    FewshotError, before anything is written, when there are fewer than two members, a
    member is not a finished saved model or is itself an ensemble, the members read
    different data or predict different kinds, or ``out_dir`` already holds a model (unless
    ``replace``: ``bench`` assembles its ensemble again on every run)."""
    out_dir = Path(out_dir)
    paths = [Path(m) for m in members]
    if len(paths) < 2:
        raise FewshotError(f"an ensemble needs at least two member models, got {len(paths)}")
    configs = []
    for path in paths:
        if path.is_file():
            path = path.parent
        config = read_model_config(path)
        if is_ensemble_config(config):
            raise FewshotError(f"{path}: is itself an ensemble; give its members' folders")
        if not (path / MODEL_FILE).is_file():
            raise FewshotError(f"{path / MODEL_FILE}: file not found; the member's training "
                               "did not finish (resume it) or its weights were removed")
        configs.append((path, config))
    kinds = {config["learner"]["kind"] for _, config in configs}
    if len(kinds) != 1:
        raise FewshotError(f"the members predict {' and '.join(sorted(kinds))} labels; an "
                           "ensemble averages members of one kind")
    shared = _shared_data_keys(configs)
    records = [read_model_tasks(path, config) for path, config in configs]
    if (out_dir / CONFIG_FILE).is_file() and not replace:
        raise FewshotError(f"{out_dir} already holds a saved model ({CONFIG_FILE}); choose "
                           "another folder")

    learners = [config["learner"]["name"] for _, config in configs]
    folders = _member_folder_names(learners)
    target = out_dir / MEMBERS_DIR
    if target.exists():
        shutil.rmtree(target)  # a replaced ensemble keeps none of its old members
    entries = []
    for (path, config), folder in zip(configs, folders, strict=True):
        copy = target / folder
        copy.mkdir(parents=True)
        for name in (CONFIG_FILE, MODEL_FILE, TASKS_FILE):
            if (path / name).is_file():
                shutil.copy2(path / name, copy / name)
        entries.append({"folder": f"{MEMBERS_DIR}/{folder}", "learner": config["learner"]["name"],
                        "family": config["learner"].get("family"), "source": str(path)})
    learner = {"name": Ensemble.name, "kind": kinds.pop(), "family": ENSEMBLE_FAMILY,
               "members": entries}
    config = {"format_version": FORMAT_VERSION, **shared, "learner": learner}
    if all(record is not None for record in records):
        train = sorted({t for record in records for t in record["train"]})
        seen = set(train)
        valid = sorted({t for record in records for t in record["valid"]} - seen)
        config["tasks"] = write_tasks(out_dir, {"train": train, "valid": valid})
    else:  # a member saved before splits were recorded: the check warns, as for that member
        (out_dir / TASKS_FILE).unlink(missing_ok=True)
    write_config(out_dir / CONFIG_FILE, config)
    return out_dir


def load_ensemble(path: str | Path, config: dict, load_member: Callable[[Path], nn.Module],
                  learner_settings: dict | None = None) -> Ensemble:
    """The saved ensemble at ``path`` (its ``config``), each member loaded by
    ``load_member(folder)`` (:func:`~fewshot_apps.core.domain.load_saved_model` with the
    caller's data set and device)."""
    path = Path(path)
    folder = path.parent if path.suffix in (".pt", ".json") else path
    where = folder / CONFIG_FILE
    if learner_settings:
        raise FewshotError(f"{where}: an ensemble takes no learner settings "
                           f"({', '.join(sorted(learner_settings))}); set them on a member")
    entries = config["learner"].get("members")
    if not isinstance(entries, list) or len(entries) < 2 or not all(
            isinstance(e, dict) and isinstance(e.get("folder"), str) for e in entries):
        raise FewshotError(f"{where}: its learner entry has no list of 'members' with a "
                           "'folder' each")
    members, names = [], []
    for entry in entries:
        member = (folder / entry["folder"]).resolve()
        # an edited config must not send the loader out of the ensemble's folder
        if not member.is_relative_to(folder.resolve()):
            raise FewshotError(f"{where}: member folder {entry['folder']!r} is outside the "
                               "ensemble's folder")
        members.append(load_member(member))
        names.append(str(entry.get("learner") or members[-1].name))
    ensemble = Ensemble(members, names)
    ensemble.saved_config = config
    ensemble.model_path = str(folder)
    return ensemble.eval()


def resolve_members(members, out_dir: str | Path) -> list[Path]:
    """``members`` (a list, or a comma-separated string) as model folders: a bare name is a
    learner of the same run (the folder beside ``out_dir``, as ``bench`` lays out
    ``models/``); anything else is a path."""
    if isinstance(members, str):
        members = [m.strip() for m in members.split(",") if m.strip()]
    if not isinstance(members, list | tuple) or not members:
        raise FewshotError("an ensemble needs its 'members': the learners (of the same run) or "
                           "saved model folders it averages, e.g. members = \"dkt,protonet\"")
    out = []
    for member in members:
        text = str(member)
        bare = "/" not in text and "\\" not in text and text not in (".", "..")
        out.append(Path(out_dir).parent / text if bare else Path(text))
    return out


def assemble_ensemble(dataset, out_dir: str | Path, settings: dict) -> Path:
    """Save an ensemble of ``settings["members"]`` (:func:`resolve_members`) to ``out_dir``
    (replacing one there), for ``dataset``: refused when a member was trained or selected on
    one of its test tasks. The other settings (a run's steps, seed, episodes) are training
    settings, which an ensemble has none of. Returns ``out_dir``."""
    members = resolve_members(settings.get("members"), out_dir)
    for member in members:
        if not (member / CONFIG_FILE).is_file():
            raise FewshotError(f"{member}: no saved model there, and the ensemble in {out_dir} "
                               "needs it as a member; train that learner first (a bench run "
                               "lists the ensemble after its members)")
    save_ensemble(members, out_dir, replace=True)
    dataset.check_model_split(out_dir, dataset.name)
    return Path(out_dir)


__all__ = ["Ensemble", "assemble_ensemble", "is_ensemble_config", "load_ensemble",
           "resolve_members", "save_ensemble"]
