"""Molecule data sets: raw files -> checked measurements -> featurized pool -> TaskSet.

:func:`load_molecule_dataset` is the entry point. For each *unit* of raw files (a
MoleculeNet CSV, an FS-Mol fold) it reads the measurements, checks them against the card,
featurizes each unique molecule once (worker processes) and caches the result in the cache
directory under a key made of the raw content hash and the featurizer settings, so a changed
file or setting never reuses a stale cache. Molecules RDKit rejects are reported with file,
row and RDKit's message, and left out of tasks.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import rdkit
import torch

from fewshot_apps.core.persistence import task_record
from fewshot_apps.core.tasks import Task, TaskSet, derive_seed
from fewshot_apps.errors import CardError, ContentCheckError, DataError, FewshotError
from fewshot_apps.paths import cache_dir as default_cache_dir
from fewshot_apps.paths import cache_file as cache_file_for
from fewshot_apps.paths import warn_cache_unwritable
from fewshot_apps.sources import Card, load_card

from .featurizer import FeaturizerConfig, featurize_parallel, whitespace_truncation
from .readers import Measurements, read_fsmol_fold, read_molecule_csv, read_wide_csv
from .store import MoleculeStore

DUPLICATE_POLICIES = ("keep", "drop-conflicting", "majority")
CACHE_FORMAT = 2  # 2: SMILES with whitespace inside are rejected


@dataclass
class MoleculeDataset:
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

    @property
    def n_rows_read(self) -> int:
        return sum(self.rows_read.values())

    @property
    def tasks(self) -> list[str]:
        return [t for tasks in self.units.values() for t in tasks]

    def saved_model_config(self) -> dict:
        """What a model trained on this data set saves to featurize new molecules the same
        way: the data set's name and featurizer settings; and the split it is trained on
        (``tasks``: training and validation task names, which ``save_model`` writes to
        ``tasks.json``)."""
        return {"dataset": self.name, "featurizer": self.featurizer.__dict__,
                "tasks": task_record(self.split.get("train", []), self.split.get("valid", []))}

    def duplicates(self) -> pd.DataFrame:
        """Per task: measurements of a molecule seen more than once, and conflicting ones."""
        valid = self.measurements[self.measurements["mol"] >= 0]
        grouped = valid.groupby(["task", "mol"])["label"].agg(["size", "nunique"])
        dup = grouped[grouped["size"] > 1]
        return (
            dup.assign(conflicting=dup["nunique"] > 1)
            .groupby("task")
            .agg(duplicate_molecules=("size", "size"), extra_rows=("size", lambda s: int((s - 1).sum())),
                 conflicting=("conflicting", "sum"))
        )

    def task_set(self, duplicates: str = "keep") -> TaskSet:
        """The few-shot tasks of the default split (molecules RDKit rejected left out).

        ``duplicates``: ``"keep"`` every measurement (FS-Mol's protocol), ``"drop-conflicting"``
        drops molecules measured with both labels in one assay (one copy of agreeing repeats
        is kept), ``"majority"`` keeps one measurement per molecule with the majority label
        (ties dropped). Tasks with one class are kept; they carry
        ``metadata["evaluable"] = False`` (usable for training, not for evaluation).
        """
        if duplicates not in DUPLICATE_POLICIES:
            raise ValueError(f"duplicates must be one of {DUPLICATE_POLICIES}")
        valid = self.measurements[self.measurements["mol"] >= 0]
        valid = _apply_duplicate_policy(valid, duplicates)
        by_task = {name: group for name, group in valid.groupby("task", sort=False)}
        lists: dict[str, list[Task]] = {}
        for split, names in self.split.items():
            tasks = []
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
            metadata={"featurizer": self.featurizer.__dict__, "duplicates": duplicates},
        )


def _apply_duplicate_policy(valid: pd.DataFrame, policy: str) -> pd.DataFrame:
    if policy == "keep":
        return valid
    stats = valid.groupby(["task", "mol"])["label"].agg(["mean", "size"])
    if policy == "drop-conflicting":
        keep = stats[(stats["mean"] == 0) | (stats["mean"] == 1)]
        label = keep["mean"]
    else:  # majority; a tie has mean 0.5 and is dropped
        keep = stats[stats["mean"] != 0.5]
        label = (keep["mean"] > 0.5).astype(float)
    first = valid.drop_duplicates(["task", "mol"]).set_index(["task", "mol"])
    out = first.loc[keep.index].copy()
    out["label"] = label.to_numpy()
    # Restore file order (the groupby sorted by task and molecule).
    return out.reset_index().sort_values(["unit", "file", "row"], kind="stable")


def content_hash(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


# --------------------------------------------------------------------------- content checks


def check_moleculenet(card: Card, m: Measurements, path: Path) -> None:
    """Check a MoleculeNet-style file against the card's ``[expected]`` table."""
    exp = card.expected
    if "rows" in exp and m.n_rows_read != exp["rows"]:
        raise ContentCheckError(
            path, f"expected {exp['rows']} data rows for {card.name!r}, found {m.n_rows_read}"
        )
    if "tasks" in exp:
        found, want = set(m.task_order), set(exp["tasks"])
        absent = set(exp.get("absent_tasks", []))
        if want - absent - found or found - want:
            raise ContentCheckError(
                path,
                f"task columns differ from card {card.name!r}: missing "
                f"{sorted(want - absent - found)}, unexpected {sorted(found - want)}",
            )
    if "n_tasks" in exp and len(m.task_order) != exp["n_tasks"]:
        raise ContentCheckError(
            path, f"expected {exp['n_tasks']} task columns, found {len(m.task_order)}"
        )
    counts = m.table.groupby("task")["label"].agg(["sum", "size"])
    for task, (pos, neg) in exp.get("labels", {}).items():
        if task not in counts.index:
            continue
        got_pos = int(counts.at[task, "sum"])
        got_neg = int(counts.at[task, "size"]) - got_pos
        if (got_pos, got_neg) != (pos, neg):
            raise ContentCheckError(
                path,
                f"task {task!r}: expected {pos} positives / {neg} negatives, "
                f"found {got_pos} / {got_neg}",
            )


def check_fsmol_fold(card: Card, fold: str, listed: list[str], m: Measurements, folder: Path) -> None:
    exp = card.expected.get("folds", {}).get(fold)
    if not exp:
        return
    absent = set(exp.get("absent_tasks", []))
    if len(listed) != exp["tasks"]:
        raise ContentCheckError(
            card.path("split"), f"fold {fold!r}: expected {exp['tasks']} tasks, found {len(listed)}"
        )
    present = set(m.task_order)
    missing = set(listed) - present - absent
    if missing:
        raise ContentCheckError(
            folder,
            f"fold {fold!r}: {len(missing)} listed task files are missing "
            f"(e.g. {sorted(missing)[:3]}); only {sorted(absent) or 'none'} may be absent",
        )
    counted = {f: n for f, n in m.rows_read.items() if Path(f).name.split(".")[0] not in absent}
    rows = sum(counted.values())
    if "rows" in exp and rows != exp["rows"]:
        raise ContentCheckError(
            folder, f"fold {fold!r}: expected {exp['rows']} rows, found {rows}"
        )


# --------------------------------------------------------------------------- cache


def _measurements_to_dict(table: pd.DataFrame) -> dict:
    """A table as tensors for ``torch.load(weights_only=True)``.

    String columns are stored factorized (codes + categories): one long list of Python
    strings per column would make a cached load slow.
    """
    out = {}
    for col in table.columns:
        series = table[col]
        if col == "label":
            out[col] = torch.tensor(series.to_numpy(dtype=np.float32))
        elif col in ("row", "mol"):
            out[col] = torch.tensor(series.to_numpy(dtype=np.int64))
        else:
            codes, categories = pd.factorize(series, use_na_sentinel=True)
            out[col] = {"codes": torch.as_tensor(codes, dtype=torch.int64),
                        "categories": [str(c) for c in categories]}
    return out


def _measurements_from_dict(d: dict) -> pd.DataFrame:
    columns = {}
    for key, value in d.items():
        if isinstance(value, dict):
            categories = np.array(value["categories"] + [None], dtype=object)
            columns[key] = categories[value["codes"].numpy()]  # code -1 -> None
        else:
            columns[key] = value.numpy()
    return pd.DataFrame(columns)


@dataclass
class _Unit:
    """A processed unit of raw files: featurized molecules plus its measurements."""

    store: MoleculeStore
    measurements: pd.DataFrame
    invalid: pd.DataFrame
    skipped: pd.DataFrame
    rows_read: dict[str, int]
    task_order: list[str]
    flagged: pd.DataFrame

    def to_dict(self) -> dict:
        return {
            "format": CACHE_FORMAT,
            "store": self.store.to_dict(),
            "measurements": _measurements_to_dict(self.measurements),
            "invalid": _measurements_to_dict(self.invalid),
            "skipped": _measurements_to_dict(self.skipped),
            "flagged": _measurements_to_dict(self.flagged),
            "rows_read": dict(self.rows_read),
            "task_order": list(self.task_order),
        }

    @classmethod
    def from_dict(cls, d: dict) -> _Unit:
        return cls(
            store=MoleculeStore.from_dict(d["store"]),
            measurements=_measurements_from_dict(d["measurements"]),
            invalid=_measurements_from_dict(d["invalid"]),
            skipped=_measurements_from_dict(d["skipped"]),
            flagged=_measurements_from_dict(d["flagged"]),
            rows_read=d["rows_read"],
            task_order=d["task_order"],
        )


def _process(m: Measurements, config: FeaturizerConfig, workers: int | None, progress: bool,
             desc: str) -> _Unit:
    """Featurize each unique SMILES once; pool molecules by canonical SMILES."""
    table = m.table.reset_index(drop=True)
    raw_unique, raw_index = np.unique(table["smiles"].astype(str).to_numpy(), return_inverse=True)
    feats = featurize_parallel(list(raw_unique), config, workers=workers, progress=progress,
                               desc=desc)
    # RDKit stops reading at whitespace ("CC O" parses as ethane): such a row's label belongs
    # to a molecule nobody wrote, so it is rejected (counted and reported), not trained on.
    for i, smi in enumerate(raw_unique):
        head = whitespace_truncation(smi)
        if head is not None and feats["canonical"][i] is not None:
            feats["canonical"][i] = None
            feats["errors"][i] = f"SMILES contains whitespace (RDKit would read only {head!r})"
    ok = np.array([c is not None for c in feats["canonical"]])
    canonical = np.array([c if c is not None else "" for c in feats["canonical"]], dtype=object)
    # Different spellings of one molecule share one pool entry.
    canon_unique, first_raw, canon_inverse = np.unique(
        canonical[ok].astype(str), return_index=True, return_inverse=True
    )
    ok_positions = np.flatnonzero(ok)
    store = MoleculeStore.from_featurized(feats, ok_positions[first_raw])
    raw_to_mol = np.full(len(raw_unique), -1, dtype=np.int64)
    raw_to_mol[ok_positions] = canon_inverse
    table["mol"] = raw_to_mol[raw_index]
    errors = np.array(feats["errors"], dtype=object)
    bad = table["mol"].to_numpy() < 0
    invalid = table.loc[bad, ["file", "row", "task", "smiles"]].assign(
        reason=errors[raw_index[bad]]
    )
    flags = np.array(feats["flags"], dtype=object)[raw_index]
    flagged_rows = np.array([f is not None for f in flags])
    flagged = table.loc[flagged_rows, ["file", "row", "task", "smiles"]].assign(
        flag=flags[flagged_rows]
    )
    return _Unit(store, table, invalid.reset_index(drop=True), m.skipped, m.rows_read,
                 m.task_order, flagged.reset_index(drop=True))


def _write_cache(cache_file: Path, data: dict) -> bool:
    """Write ``data`` to ``cache_file`` atomically; False (after one warning per folder on
    stderr) when the cache directory cannot be written, so loading goes on in memory."""
    folder = cache_file.parent
    tmp = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".", suffix=".tmp",
                                         delete=False) as f:
            tmp = Path(f.name)
            torch.save(data, f)
        os.replace(tmp, cache_file)
        return True
    except (OSError, RuntimeError) as exc:  # torch.save reports some OS errors as RuntimeError
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        warn_cache_unwritable(folder, exc)
        return False


def _load_unit(
    name: str,
    files: list[Path],
    read,
    check,
    config: FeaturizerConfig,
    cache: Path | None,
    workers: int | None,
    progress: bool,
) -> tuple[_Unit, dict]:
    """Load one unit from cache, or read + check + featurize it and cache the result."""
    t0 = time.perf_counter()
    key = content_hash(files)[:24]
    cache_file = None
    if cache is not None:
        cache_file = cache_file_for(cache / "molecules", name, config.key(), key, suffix=".pt")
        if cache_file.is_file():
            try:
                data = torch.load(cache_file, weights_only=True)
                if data.get("format") == CACHE_FORMAT:
                    unit = _Unit.from_dict(data)
                    return unit, {"source": "cache", "seconds": time.perf_counter() - t0,
                                  "molecules": len(unit.store), "cache_file": str(cache_file)}
            except Exception as exc:  # a corrupt cache entry is rebuilt, never trusted
                print(f"note: the cache file {cache_file} was unusable "
                      f"({type(exc).__name__}: {str(exc)[:120]}); rebuilding it", file=sys.stderr)
    m = read()
    check(m)
    t1 = time.perf_counter()
    unit = _process(m, config, workers, progress, desc=f"featurizing {name}")
    t2 = time.perf_counter()
    if cache_file is not None and not _write_cache(cache_file, unit.to_dict()):
        cache_file = None
    return unit, {"source": "featurized", "seconds": time.perf_counter() - t0,
                  "read_seconds": t1 - t0, "featurize_seconds": t2 - t1,
                  "molecules": len(unit.store), "cache_file": str(cache_file)}


# --------------------------------------------------------------------------- splits


def parse_index_ranges(spec: str | list[int], n: int) -> list[int]:
    """``"0-8"``, ``"9,10"``, ``"450-"`` or a list of ints -> sorted indices < n."""
    if isinstance(spec, list):
        return sorted(i for i in spec if i < n)
    out: set[int] = set()
    for part in str(spec).split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            out.update(range(int(lo), (int(hi) + 1) if hi else n))
        else:
            out.add(int(part))
    return sorted(i for i in out if i < n)


def task_index_split(card: Card, task_order: list[str], label_counts: pd.Series) -> dict:
    """Train / valid / test task names from a card's ``[split]`` of method ``task-index``.

    Indices refer to the card's task list (the public file's column order) when it has one,
    so a reordered copy splits the same way. ``min_labels`` drops sparse tasks first.
    Validation tasks are either ``valid`` (index ranges, as ``train``) or ``valid_last = N``:
    the N *kept* training tasks of highest index, a fixed count however many tasks of an
    index range ``min_labels`` drops. ``expect_train`` counts train and validation tasks
    together; ``expect_valid`` and ``expect_test`` count their own.
    """
    spec = card.split
    order = list(card.expected.get("tasks", task_order))
    kept = order
    if "min_labels" in spec:
        kept = [t for t in order if label_counts.get(t, 0) >= spec["min_labels"]]
    index = {t: i for i, t in enumerate(order)}
    n = len(order)
    train_idx = set(parse_index_ranges(spec["train"], n))
    test_idx = set(parse_index_ranges(spec["test"], n))
    if "valid" in spec and "valid_last" in spec:
        raise CardError(f"card {card.name!r}: [split] has both valid and valid_last")
    valid_idx = set(parse_index_ranges(spec.get("valid", []), n))
    if "valid_last" in spec:
        kept_train = [index[t] for t in kept if index[t] in train_idx]
        last = int(spec["valid_last"])
        valid_idx = set(kept_train[max(0, len(kept_train) - last):]) if last > 0 else set()
    split = {
        "train": [t for t in kept if index[t] in train_idx and index[t] not in valid_idx],
        "valid": [t for t in kept if index[t] in valid_idx],
        "test": [t for t in kept if index[t] in test_idx],
    }
    for key, want in (("train", spec.get("expect_train")), ("valid", spec.get("expect_valid")),
                      ("test", spec.get("expect_test"))):
        got = len(split[key]) + (len(split["valid"]) if key == "train" else 0)
        if want is not None and got != want:
            what = "train (validation included)" if key == "train" else key
            dropped = (f" after dropping tasks with < {spec['min_labels']} labels"
                       if "min_labels" in spec else "")
            raise ContentCheckError(
                card.path("data"), f"split of {card.name!r}: expected {want} {what} tasks"
                f"{dropped}, found {got}"
            )
    return split


def _close_matches(name: str, known: list[str], n: int = 5) -> list[str]:
    """Known names like ``name`` (case-insensitive; difflib's similarity)."""
    import difflib

    lowered: dict[str, str] = {}
    for k in known:
        lowered.setdefault(k.lower().strip(), k)
    hits = difflib.get_close_matches(name.lower().strip(), list(lowered), n=n, cutoff=0.6)
    return [lowered[h] for h in hits]


def _unknown_assay(name: str, tasks: list[str], path) -> DataError:
    close = _close_matches(name, tasks)
    hint = (f"close matches: {', '.join(map(repr, close))}" if close
            else f"the {len(tasks)} assays are {tasks[:10]}" + (" ..." if len(tasks) > 10 else ""))
    return DataError(path, f"test assay {name!r} is not in the data; {hint}")


def resolve_test_assays(spec: str | list[str], tasks: list[str], path=None) -> list[str]:
    """The test assays a user named, checked against the data's assay names.

    A list holds exact names (a name may contain commas: SIDER's "Injury, poisoning and
    procedural complications"). A string is a comma-separated list; a comma inside a known
    name is read as part of it when that reading is the only one (``"A,B"`` is ambiguous
    when the data has assays ``A``, ``B`` and ``A,B``: an error asks for names one by one).
    Unknown names are a :class:`DataError` listing close matches.
    """
    known = set(tasks)
    stripped = {t.strip(): t for t in tasks}

    def match(text: str) -> str | None:
        return text if text in known else stripped.get(text.strip())

    if not isinstance(spec, str):
        names = []
        for name in spec:
            hit = match(str(name))
            if hit is None:
                raise _unknown_assay(str(name), tasks, path)
            names.append(hit)
        return names
    pieces = spec.split(",")
    n = len(pieces)
    # parses[i]: the readings of pieces[i:] as known names (at most 2 kept: 2 = ambiguous).
    parses: list[list[list[str]]] = [[] for _ in range(n)] + [[[]]]
    for i in range(n - 1, -1, -1):
        for j in range(i + 1, n + 1):
            hit = match(",".join(pieces[i:j]))
            if hit is not None and parses[j]:
                parses[i].extend([hit, *rest] for rest in parses[j][:2])
        parses[i] = parses[i][:2]
    if len(parses[0]) == 1:
        return parses[0][0]
    if len(parses[0]) > 1:
        a, b = parses[0]
        raise DataError(path, f"test assays {spec!r} can be read as {a} or as {b}; name them "
                        "one by one (--test-assay NAME, repeated, or --test-assays-file)")
    # No reading: the first piece that starts no known name (from a readable prefix) is unknown.
    i = 0
    while i < n:
        ends = [j for j in range(n, i, -1) if match(",".join(pieces[i:j])) is not None]
        if not ends:
            raise _unknown_assay(pieces[i].strip(), tasks, path)
        i = ends[0]
    raise DataError(path, f"test assays {spec!r}: no reading as known assay names")


def random_task_split(
    tasks: list[str],
    seed: int,
    test_tasks: str | list[str] | None = None,
    test_fraction: float = 0.2,
    valid_fraction: float = 0.1,
    path=None,
) -> dict:
    """Split a user's assays: the given test assays (see :func:`resolve_test_assays`), or a
    seeded ``test_fraction`` of them; ``valid_fraction`` of the rest (at least one when there
    are 3 or more) for selection. ``path`` is the file errors name."""
    if not 0 < float(test_fraction) < 1:
        raise DataError(path, f"test fraction {test_fraction} is not between 0 and 1")
    if test_tasks:
        wanted = set(resolve_test_assays(test_tasks, tasks, path))
        test = [t for t in tasks if t in wanted]
        if len(test) == len(tasks):
            raise DataError(path, f"every assay ({len(tasks)}) is a test assay: none is left "
                            "to train on")
    else:
        rng = np.random.default_rng(derive_seed(seed, "test-split"))
        n_test = max(1, int(round(test_fraction * len(tasks)))) if len(tasks) > 1 else 0
        test = sorted(rng.choice(tasks, size=n_test, replace=False).tolist(), key=tasks.index)
    rest = [t for t in tasks if t not in set(test)]
    rng = np.random.default_rng(derive_seed(seed, "valid-split"))
    n_valid = max(1, int(round(valid_fraction * len(rest)))) if len(rest) >= 3 else 0
    valid = sorted(rng.choice(rest, size=n_valid, replace=False).tolist(), key=rest.index) if n_valid else []
    train = [t for t in rest if t not in set(valid)]
    return {"train": train, "valid": valid, "test": test}


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
) -> MoleculeDataset:
    """Load a molecule data set by card name, card path, or a plain CSV path.

    Args:
        source: ``"tox21"``, ``"fsmol"``, ``"path/to/card.toml"`` or ``"my_assays.csv"``
            (``smiles,assay,label`` rows or a SMILES column plus one column per assay).
        folds: FS-Mol only: which folds to load (default all three).
        test_assays / test_fraction / seed: the test split of a plain CSV (or of a
            ``molecules-csv`` card, whose own ``test_assays`` they override):
            ``test_assays`` is a list of exact names or a comma-separated string (see
            :func:`resolve_test_assays`); ``test_fraction`` defaults to 0.2. A card with
            a fixed split (Tox21, FS-Mol ...) refuses both.
        csv_columns: column names of a plain CSV (``smiles_column``, ``task_column``,
            ``label_column``).
    """
    cache = Path(default_cache_dir(cache_dir)) if use_cache else None
    path = Path(str(source)) if not isinstance(source, Card) else None
    if path is not None and path.suffix.lower() in (".csv", ".gz") and not str(source).endswith(".toml"):
        return _load_plain_csv(path, featurizer, cache, workers, progress, test_assays,
                               0.2 if test_fraction is None else test_fraction, seed,
                               csv_columns or {})
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
        return _load_moleculenet(card, featurizer, cache, workers, progress)
    if card.format == "fsmol-jsonl":
        return _load_fsmol(card, featurizer, cache, workers, progress, folds)
    if card.format == "molecules-csv":
        return _load_plain_csv(card.path("data"), featurizer, cache, workers, progress,
                               test_assays or card.split.get("test_assays"),
                               test_fraction if test_fraction is not None
                               else card.split.get("test_fraction", 0.2),
                               card.split.get("seed", seed), card.options, name=card.name,
                               card=card)
    raise CardError(f"card {card.name!r}: unknown molecule format {card.format!r}")


def _assemble(name: str, units: dict[str, _Unit], unit_tasks: dict[str, list[str]],
              split: dict, featurizer: FeaturizerConfig, card: Card | None,
              timings: dict) -> MoleculeDataset:
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
        name=name,
        store=MoleculeStore.concat(stores) if len(stores) > 1 else stores[0],
        measurements=pd.concat(tables, ignore_index=True),
        invalid=cat([u.invalid for u in units.values()],
                    ["file", "row", "task", "smiles", "reason"]),
        skipped=cat([u.skipped for u in units.values()], ["file", "row", "task", "reason"]),
        flagged=cat([u.flagged for u in units.values()],
                    ["file", "row", "task", "smiles", "flag"]),
        rows_read={k: v for u in units.values() for k, v in u.rows_read.items()},
        units=unit_tasks,
        split=split,
        featurizer=featurizer,
        card=card,
        timings=timings,
    )


def _load_moleculenet(card, featurizer, cache, workers, progress) -> MoleculeDataset:
    path = card.path("data")
    tasks = card.expected.get("tasks")
    unit, timing = _load_unit(
        card.name, [path],
        read=lambda: read_wide_csv(path),
        check=lambda m: check_moleculenet(card, m, path),
        config=featurizer, cache=cache, workers=workers, progress=progress,
    )
    order = [t for t in (tasks or unit.task_order) if t in set(unit.task_order)]
    counts = unit.measurements.groupby("task").size()
    split = task_index_split(card, unit.task_order, counts)
    return _assemble(card.name, {"all": unit}, {"all": order}, split, featurizer, card,
                     {"all": timing})


def _load_fsmol(card, featurizer, cache, workers, progress, folds) -> MoleculeDataset:
    split_file = card.path("split")
    try:
        listed = json.loads(split_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(split_file, f"not a valid split file: {exc}") from None
    folds = folds or ("train", "valid", "test")
    units, unit_tasks, timings = {}, {}, {}
    for fold in folds:
        if fold not in listed:
            raise DataError(split_file, f"the split file has no {fold!r} list")
        folder = card.path(fold)
        files = sorted(folder.glob("*.jsonl.gz"))
        unit, timing = _load_unit(
            f"{card.name}-{fold}", files + [split_file],
            read=lambda folder=folder, fold=fold: read_fsmol_fold(folder, listed[fold]),
            check=lambda m, fold=fold, folder=folder: check_fsmol_fold(card, fold, listed[fold], m, folder),
            config=featurizer, cache=cache, workers=workers, progress=progress,
        )
        units[fold] = unit
        unit_tasks[fold] = unit.task_order
        timings[fold] = timing
    split = {fold: unit_tasks.get(fold, []) for fold in ("train", "valid", "test")}
    return _assemble(card.name, units, unit_tasks, split, featurizer, card, timings)


def _load_plain_csv(path, featurizer, cache, workers, progress, test_assays, test_fraction,
                    seed, columns, name=None, card=None) -> MoleculeDataset:
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "no such file" if not path.exists() else "not a file")
    unit, timing = _load_unit(
        name or path.stem.split(".")[0], [path],
        read=lambda: read_molecule_csv(path, **columns),
        # Named test assays are checked before featurizing (a typo should not wait for it).
        check=lambda m: random_task_split(m.task_order, seed, test_assays, test_fraction,
                                          path=path),
        config=featurizer, cache=cache, workers=workers, progress=progress,
    )
    split = random_task_split(unit.task_order, seed, test_assays, test_fraction, path=path)
    return _assemble(name or path.stem.split(".")[0], {"all": unit}, {"all": unit.task_order},
                     split, featurizer, card, {"all": timing})


def rdkit_version() -> str:
    return rdkit.__version__
