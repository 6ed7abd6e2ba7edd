"""Molecule data sets: raw files -> checked measurements -> featurized pool -> TaskSet.

:func:`load_molecule_dataset` is the entry point. For each *unit* of raw files (a
MoleculeNet CSV, an FS-Mol fold) it reads the measurements, checks them against the card,
featurizes each unique molecule once (worker processes) and caches the result in the cache
directory under a key made of the raw content hash and the featurizer settings, so a changed
file or setting never reuses a stale cache. Molecules RDKit rejects are reported with file,
row and RDKit's message, and left out of tasks.

Modules, one job each: ``loaders`` (the format loaders and the unit flow), ``content_checks``
(a card's ``[expected]`` table), ``pooling`` (featurizing a unit's molecules), ``cache``
(the cache entries), ``splits`` (task splits), ``molecule_split`` (the molecule-disjoint
variant's scaffold split), ``duplicates`` (repeated measurements).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import rdkit

from fewshot_apps.core.persistence import task_record
from fewshot_apps.core.tasks import Task, TaskSet
from fewshot_apps.errors import CardError, FewshotError
from fewshot_apps.paths import cache_dir as default_cache_dir
from fewshot_apps.sources import Card, load_card

from .adapter import MoleculeTasks
from .duplicates import DUPLICATE_POLICIES, apply_duplicate_policy, duplicate_counts
from .featurizer import FeaturizerConfig
from .loaders import LoadedUnits, load_fsmol, load_moleculenet, load_plain_csv
from .molecule_split import MoleculeSplit, check_variant, scaffold_split
from .store import MoleculeStore
from .unseen import UnseenBy


@dataclass
class MoleculeDataset(MoleculeTasks):
    """A featurized molecule data set.

    Attributes:
        name: the card's name (or the CSV's stem).
        store: the featurized molecule pool; ``measurements.mol`` indexes it.
        measurements: one row per measurement read: ``smiles, task, label, file, row,
            unit, mol`` (``mol = -1`` when RDKit rejected the SMILES) plus format extras.
        invalid: the rejected molecules: ``file, row, task, smiles, reason``.
        skipped: rows the readers skipped (bad labels, bad JSON): ``file, row, task, reason``.
        rows_read: data rows read per file.
        units: unit name -> the tasks it holds in original order (``fold`` for FS-Mol).
        split: ``{"train": [...], "valid": [...], "test": [...]}`` task names.
        timings: seconds spent reading / featurizing / loading from cache, per unit.
        molecules: ``"shared"`` (the published protocol: only the assays are split) or
            ``"disjoint"`` (also the molecules, by scaffold: ``molecule_split``).
        molecule_split: the disjoint variant's scaffold split (None when shared).
        unseen_by: what the ``unseen_by`` option left out (None without it).
    """

    name: str
    store: MoleculeStore
    measurements: pd.DataFrame
    invalid: pd.DataFrame
    skipped: pd.DataFrame
    rows_read: dict[str, int]
    units: dict[str, list[str]]
    split: dict[str, list[str]]
    featurizer: FeaturizerConfig
    card: Card | None = None
    timings: dict[str, dict] = field(default_factory=dict)
    flagged: pd.DataFrame | None = None
    molecules: str = "shared"
    molecule_split: MoleculeSplit | None = None
    unseen_by: UnseenBy | None = None

    @property
    def n_rows_read(self) -> int:
        return sum(self.rows_read.values())

    @property
    def tasks(self) -> list[str]:
        return [t for tasks in self.units.values() for t in tasks]

    @property
    def source_label(self) -> str:
        """How messages name the data: the file when one was read (your own CSV), else
        the name."""
        files = list(self.rows_read)
        return files[0] if len(files) == 1 else self.name

    def check_trainable(self, episode: dict) -> None:
        """As :meth:`MoleculeTasks.check_trainable`; first, for a CSV of your own, a warning
        per kind of skipped row (what ``data inspect`` lists: counts and example rows), so
        that training never loses rows silently. A card's skips are its known content."""
        from fewshot_apps.core import distributed

        if self._own_csv() and distributed.is_main_process():  # once, not once per rank
            from .skips import skip_warnings

            for line in skip_warnings(self):
                warnings.warn(line, stacklevel=2)
        super().check_trainable(episode)

    def saved_model_config(self) -> dict:
        """What a model trained on this data set saves to featurize new molecules the same
        way: the data set's name and featurizer settings; and the split it is trained on
        (``tasks``: training and validation task names, which ``save_model`` writes to
        ``tasks.json``); which molecule variant (``molecules``, and the disjoint variant's
        ``molecule_split``)."""
        config = {"dataset": self.name, "domain": self.domain,
                  "featurizer": self.featurizer.__dict__,
                  "tasks": task_record(self.split.get("train", []), self.split.get("valid", [])),
                  "molecules": self.molecules}
        if self.molecule_split is not None:
            config["molecule_split"] = self.molecule_split.record()
        if self.unseen_by is not None:
            config["unseen_by"] = self.unseen_by.record()
        return config

    def duplicates(self) -> pd.DataFrame:
        """Per task: measurements of a molecule seen more than once, and conflicting ones."""
        return duplicate_counts(self.measurements)

    def task_set(self, duplicates: str = "keep") -> TaskSet:
        """The few-shot tasks of the default split (molecules RDKit rejected left out).

        ``duplicates``: ``"keep"`` every measurement (FS-Mol's protocol), ``"drop-conflicting"``
        drops molecules measured with both labels in one assay (one copy of agreeing repeats
        is kept), ``"majority"`` keeps one measurement per molecule with the majority label
        (ties dropped). Tasks with one class are kept; they carry
        ``metadata["evaluable"] = False`` (multitask pre-training and label priors read them; no
        episode can be drawn from them).

        The molecule-disjoint variant keeps a test or validation task's test-side molecules
        and a training task's training-side ones; a task with none on its side is left out
        (:meth:`side_counts` lists them).
        """
        if duplicates not in DUPLICATE_POLICIES:
            raise ValueError(f"duplicates must be one of {DUPLICATE_POLICIES}")
        valid = self.measurements[self.measurements["mol"] >= 0]
        valid = apply_duplicate_policy(valid, duplicates)
        sides = {None: valid}
        if self.molecule_split is not None:
            on_test = self.molecule_split.test_side[valid["mol"].to_numpy()]
            sides = {"train": valid[~on_test], "test": valid[on_test]}
        by_side = {side: {name: group for name, group in rows.groupby("task", sort=False)}
                   for side, rows in sides.items()}
        lists: dict[str, list[Task]] = {}
        for split, names in self.split.items():
            tasks = []
            by_task = by_side[self._side(split)]
            for name in names:
                group = by_task.get(name)
                if group is None:
                    continue
                labels = group["label"].to_numpy(dtype=np.float32)
                both = bool((labels == 1).any() and (labels == 0).any())
                tasks.append(
                    Task(
                        name=name,
                        examples=group["mol"].to_numpy(),
                        labels=labels,
                        extras={"row": group["row"].to_numpy()},
                        metadata={"unit": group["unit"].iat[0], "evaluable": both},
                    )
                )
            lists[split] = tasks
        return TaskSet(
            name=self.name,
            kind="classification",
            train=lists.get("train", []),
            valid=lists.get("valid", []),
            test=lists.get("test", []),
            metadata={"featurizer": self.featurizer.__dict__, "duplicates": duplicates,
                      "molecules": self.molecules},
        )

    def _side(self, split: str) -> str | None:
        """The molecule side a split's tasks draw from (None: every molecule). Validation
        tasks take the test side: what they score (early stopping, calibration, selection)
        is then the test tasks' question, molecules no training task labelled; on the
        training side they would reward a model that remembers its training molecules."""
        if self.molecule_split is None:
            return None
        return "train" if split == "train" else "test"

    def side_counts(self) -> pd.DataFrame:
        """Per task of the split: ``split, side, positives, negatives`` on the molecules it
        keeps (all of them when shared; its side's when disjoint), and ``dropped``: its
        measurements on the other side. A task with one class left is not evaluable; one
        with none is left out of :meth:`task_set`."""
        valid = self.measurements[self.measurements["mol"] >= 0]
        on_test = (self.molecule_split.test_side[valid["mol"].to_numpy()]
                   if self.molecule_split is not None else np.zeros(len(valid), dtype=bool))
        rows = []
        for split, names in self.split.items():
            side = self._side(split)
            for name in names:
                mine = (valid["task"] == name).to_numpy()
                keep = mine & (on_test if side == "test" else ~on_test) if side else mine
                labels = valid["label"].to_numpy()[keep]
                rows.append({"task": name, "split": split, "side": side or "all",
                             "positives": int((labels == 1).sum()),
                             "negatives": int((labels != 1).sum()),
                             "dropped": int(mine.sum() - keep.sum())})
        return pd.DataFrame(rows, columns=["task", "split", "side", "positives", "negatives",
                                           "dropped"])


# --------------------------------------------------------------------------- entry point


def load_molecule_dataset(
    source: str | Path | Card,
    *,
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    featurizer: FeaturizerConfig = FeaturizerConfig(),
    folds: tuple[str, ...] | None = None,
    use_cache: bool = True,
    workers: int | None = None,
    progress: bool = True,
    test_assays: str | list[str] | None = None,
    test_fraction: float | None = None,
    seed: int = 0,
    csv_columns: dict | None = None,
    molecules: str = "shared",
    molecule_seed: int = 0,
    unseen_by: str | None = None,
) -> MoleculeDataset:
    """Load a molecule data set by card name, card path, or a plain CSV path.

    Args:
        source: ``"tox21"``, ``"fsmol"``, ``"path/to/card.toml"`` or ``"my_assays.csv"``
            (``smiles,assay,label`` rows or a SMILES column plus one column per assay).
        folds: FS-Mol only: which folds to load (default all three).
        test_assays / test_fraction / seed: the test split of a plain CSV (or of a
            ``molecules-csv`` card, whose own ``test_assays`` they override):
            ``test_assays`` is a list of exact names or a comma-separated string (see
            :func:`~fewshot_apps.domains.molecules.splits.resolve_test_assays`);
            ``test_fraction`` defaults to 0.2. A card with
            a fixed split (Tox21, FS-Mol ...) refuses both.
        csv_columns: column names of a plain CSV (``smiles_column``, ``task_column``,
            ``label_column``).
        molecules: ``"shared"`` (default: the assays are split, a molecule may be in
            training and test assays, as in the published MoleculeNet protocol) or
            ``"disjoint"``: the molecules are split too, by Bemis–Murcko scaffold, about half
            on each side (:func:`~fewshot_apps.domains.molecules.molecule_split.scaffold_split`,
            seeded by ``molecule_seed``); training tasks keep their training-side molecules,
            validation and test tasks their test-side ones.
        unseen_by: another molecule data set (a card name): every molecule its training
            assays measured is left out of this one's tasks (:mod:`.unseen`), so that a model
            trained there is scored on molecules it never saw labelled.
    """
    check_variant(molecules, molecule_seed)
    cache = Path(default_cache_dir(cache_dir)) if use_cache else None
    path = Path(str(source)) if not isinstance(source, Card) else None
    if path is not None and path.suffix.lower() in (".csv", ".gz") and not str(source).endswith(".toml"):
        ds = _with_feature_cache(_with_molecules(_assemble(
            load_plain_csv(path, featurizer, cache, workers, progress, test_assays,
                           0.2 if test_fraction is None else test_fraction, seed,
                           csv_columns or {}), featurizer), molecules, molecule_seed), cache)
        return _unseen_by(ds, unseen_by, data_dir, cache_dir, use_cache, featurizer)
    card = source if isinstance(source, Card) else load_card(source, data_dir)
    if card.domain != "molecules":
        raise CardError(f"{card.name!r} is a {card.domain} data set, not a molecule data set")
    if (test_assays or test_fraction is not None) and card.format != "molecules-csv":
        raise FewshotError(
            f"test assays (or a test fraction) can be chosen for a CSV of your own, not for "
            f"{card.name!r}: its card fixes the split ([split] method "
            f"{card.split.get('method', '?')!r})")
    card.require_present()
    if card.format == "moleculenet-csv":
        loaded = load_moleculenet(card, featurizer, cache, workers, progress)
    elif card.format == "fsmol-jsonl":
        loaded = load_fsmol(card, featurizer, cache, workers, progress, folds)
    elif card.format == "molecules-csv":
        loaded = load_plain_csv(card.path("data"), featurizer, cache, workers, progress,
                                test_assays or card.split.get("test_assays"),
                                test_fraction if test_fraction is not None
                                else card.split.get("test_fraction", 0.2),
                                card.split.get("seed", seed), card.options, name=card.name,
                                card=card)
    else:
        raise CardError(f"card {card.name!r}: unknown molecule format {card.format!r}")
    ds = _with_feature_cache(_with_molecules(_assemble(loaded, featurizer), molecules,
                                             molecule_seed), cache)
    return _unseen_by(ds, unseen_by, data_dir, cache_dir, use_cache, featurizer)


def _unseen_by(ds: MoleculeDataset, other: str | None, data_dir, cache_dir, use_cache: bool,
               featurizer: FeaturizerConfig) -> MoleculeDataset:
    """``ds`` without the molecules ``other``'s training assays measured (``unseen_by``)."""
    if other is None:
        return ds
    from .unseen import drop_seen

    # FS-Mol: its training fold alone (the other folds are not training assays)
    trained = load_molecule_dataset(other, data_dir=data_dir, cache_dir=cache_dir,
                                    featurizer=featurizer, folds=("train",),
                                    use_cache=use_cache, progress=False)
    drop_seen(ds, trained)
    return ds


def _with_feature_cache(ds: MoleculeDataset, cache: Path | None) -> MoleculeDataset:
    """Fixed representations of ``ds``'s molecules (count-ECFP, descriptors) are cached
    beside its featurized units (:mod:`.representations`); none without a cache."""
    ds.store.feature_cache = None if cache is None else cache / "molecules" / "features"
    return ds


def _with_molecules(ds: MoleculeDataset, molecules: str, seed: int) -> MoleculeDataset:
    """``ds`` as the ``molecules`` variant: the disjoint one gets its scaffold split."""
    if molecules == "disjoint":
        ds.molecules = "disjoint"
        ds.molecule_split = scaffold_split(ds.store.smiles, seed=int(seed))
    return ds


def _assemble(loaded: LoadedUnits, featurizer: FeaturizerConfig) -> MoleculeDataset:
    """One data set of the loaded units: their pools concatenated, ``mol`` indices shifted."""
    units = loaded.units
    stores, tables, offset = [], [], 0
    for unit_name, unit in units.items():
        table = unit.measurements.copy()
        table["unit"] = unit_name
        table["mol"] = np.where(table["mol"] >= 0, table["mol"] + offset, -1)
        offset += len(unit.store)
        stores.append(unit.store)
        tables.append(table)

    def cat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
        # With nothing to report the table still has its columns (inspect reads them).
        frames = [f for f in frames if len(f)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
            columns=columns)

    return MoleculeDataset(
        name=loaded.name,
        store=MoleculeStore.concat(stores) if len(stores) > 1 else stores[0],
        measurements=pd.concat(tables, ignore_index=True),
        invalid=cat([u.invalid for u in units.values()],
                    ["file", "row", "task", "smiles", "reason"]),
        skipped=cat([u.skipped for u in units.values()], ["file", "row", "task", "reason"]),
        flagged=cat([u.flagged for u in units.values()],
                    ["file", "row", "task", "smiles", "flag"]),
        rows_read={k: v for u in units.values() for k, v in u.rows_read.items()},
        units=loaded.unit_tasks,
        split=loaded.split,
        featurizer=featurizer,
        card=loaded.card,
        timings=loaded.timings,
    )


def rdkit_version() -> str:
    """The RDKit version that featurizes (``data inspect`` reports it)."""
    return rdkit.__version__
