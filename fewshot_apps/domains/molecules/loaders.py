"""The format loaders: a MoleculeNet CSV, FS-Mol's JSON-lines folds, a user's own CSV. Each
reads its units of raw files (:func:`load_unit`: from the cache, or read, checked against
the card and featurized, then cached) and splits their tasks; ``dataset`` assembles the
result into a :class:`~fewshot_apps.domains.molecules.dataset.MoleculeDataset`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from fewshot_apps.errors import DataError, missing_file
from fewshot_apps.paths import cache_file as cache_file_for
from fewshot_apps.sources import Card

from .cache import Unit, content_hash, read_unit, write_cache
from .content_checks import check_fsmol_fold, check_moleculenet
from .featurizer import FeaturizerConfig
from .pooling import featurize_unit
from .readers import read_fsmol_fold, read_molecule_csv, read_wide_csv
from .splits import random_task_split, read_fsmol_split, task_index_split


@dataclass
class LoadedUnits:
    """What a format loader read: the processed units (unit name -> :class:`Unit`), the
    tasks of each in original order, the split, the card, per-unit timings."""

    name: str
    units: dict[str, Unit]
    unit_tasks: dict[str, list[str]]
    split: dict
    card: Card | None
    timings: dict


def load_unit(
    name: str,
    files: list[Path],
    read,
    check,
    config: FeaturizerConfig,
    cache: Path | None,
    workers: int | None,
    progress: bool,
) -> tuple[Unit, dict]:
    """Load one unit from cache, or read + check + featurize it and cache the result."""
    t0 = time.perf_counter()
    key = content_hash(files)[:24]
    cache_file = None
    if cache is not None:
        cache_file = cache_file_for(cache / "molecules", name, config.key(), key, suffix=".pt")
        unit = read_unit(cache_file)
        if unit is not None:
            return unit, {"source": "cache", "seconds": time.perf_counter() - t0,
                          "molecules": len(unit.store), "cache_file": str(cache_file)}
    m = read()
    check(m)
    t1 = time.perf_counter()
    unit = featurize_unit(m, config, workers, progress, desc=f"featurizing {name}")
    t2 = time.perf_counter()
    if cache_file is not None and not write_cache(cache_file, unit.to_dict()):
        cache_file = None
    return unit, {"source": "featurized", "seconds": time.perf_counter() - t0,
                  "read_seconds": t1 - t0, "featurize_seconds": t2 - t1,
                  "molecules": len(unit.store), "cache_file": str(cache_file)}


def load_moleculenet(card, featurizer, cache, workers, progress) -> LoadedUnits:
    """A MoleculeNet CSV (one column per assay), split by the card's task indices."""
    path = card.path("data")
    tasks = card.expected.get("tasks")
    unit, timing = load_unit(
        card.name, [path],
        read=lambda: read_wide_csv(path),
        check=lambda m: check_moleculenet(card, m, path),
        config=featurizer, cache=cache, workers=workers, progress=progress,
    )
    order = [t for t in (tasks or unit.task_order) if t in set(unit.task_order)]
    counts = unit.measurements.groupby("task").size()
    split = task_index_split(card, unit.task_order, counts)
    return LoadedUnits(card.name, {"all": unit}, {"all": order}, split, card, {"all": timing})


def load_fsmol(card, featurizer, cache, workers, progress, folds) -> LoadedUnits:
    """FS-Mol's task files, one unit per fold; the folds are the split."""
    split_file = card.path("split")
    listed = read_fsmol_split(split_file)
    folds = folds or ("train", "valid", "test")
    units, unit_tasks, timings = {}, {}, {}
    for fold in folds:
        if fold not in listed:
            raise DataError(split_file, f"the split file has no {fold!r} list")
        folder = card.path(fold)
        files = sorted(folder.glob("*.jsonl.gz"))
        unit, timing = load_unit(
            f"{card.name}-{fold}", files + [split_file],
            read=lambda folder=folder, fold=fold: read_fsmol_fold(folder, listed[fold]),
            check=lambda m, fold=fold, folder=folder: check_fsmol_fold(card, fold, listed[fold], m, folder),
            config=featurizer, cache=cache, workers=workers, progress=progress,
        )
        units[fold] = unit
        unit_tasks[fold] = unit.task_order
        timings[fold] = timing
    split = {fold: unit_tasks.get(fold, []) for fold in ("train", "valid", "test")}
    return LoadedUnits(card.name, units, unit_tasks, split, card, timings)


def load_plain_csv(path, featurizer, cache, workers, progress, test_assays, test_fraction,
                    seed, columns, name=None, card=None) -> LoadedUnits:
    """A user's CSV (long or wide), split into test, validation and training assays."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, missing_file(path))
    unit, timing = load_unit(
        name or path.stem.split(".")[0], [path],
        read=lambda: read_molecule_csv(path, **columns),
        # Named test assays are checked before featurizing (a typo should not wait for it).
        check=lambda m: random_task_split(m.task_order, seed, test_assays, test_fraction,
                                          path=path),
        config=featurizer, cache=cache, workers=workers, progress=progress,
    )
    valid = unit.measurements[unit.measurements["mol"] >= 0]
    if valid.empty:  # nothing to train on or score: say why rather than load no tasks
        rows = unit.invalid.drop_duplicates("row")
        examples = "; ".join(f"row {r}: {smi!r} ({why})" for r, smi, why in
                             zip(rows["row"][:3], rows["smiles"][:3], rows["reason"][:3]))
        raise DataError(path, f"RDKit could parse none of the {len(rows)} rows' SMILES; "
                        f"e.g. {examples}")
    # Only assays with both classes among their valid molecules can be scored, so only they
    # are drawn as test or validation assays.
    classes = valid.groupby("task")["label"].nunique()
    split = random_task_split(unit.task_order, seed, test_assays, test_fraction, path=path,
                              evaluable=list(classes.index[classes == 2]))
    return LoadedUnits(name or path.stem.split(".")[0], {"all": unit}, {"all": unit.task_order},
                       split, card, {"all": timing})
