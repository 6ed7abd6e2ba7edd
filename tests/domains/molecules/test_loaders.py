"""domains/molecules/loaders.py: load_unit (read, check, featurize and cache once; the next
load comes from the cache; a failed check featurizes nothing) and the three format loaders
on tiny files: a MoleculeNet CSV split by its card, FS-Mol folds, a user's CSV."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from fewshot_apps.domains.molecules.featurizer import FeaturizerConfig
from fewshot_apps.domains.molecules.loaders import (
    load_fsmol,
    load_moleculenet,
    load_plain_csv,
    load_unit,
)
from fewshot_apps.domains.molecules.readers import Measurements, read_wide_csv
from fewshot_apps.errors import ContentCheckError, DataError
from fewshot_apps.sources import Card

SMILES = ["CCO", "CCN", "CCC", "c1ccccc1", "CC(=O)O", "CCCl"]
CONFIG = FeaturizerConfig()


def wide_csv(path: Path, tasks=("A", "B", "C", "D")) -> Path:
    rows = ["smiles," + ",".join(tasks)]
    for i, s in enumerate(SMILES):
        rows.append(s + "," + ",".join(str((i + j) % 2) for j in range(len(tasks))))
    path.write_text("\n".join(rows) + "\n")
    return path


class Calls:
    def __init__(self, path):
        self.path, self.reads, self.checks = path, 0, 0

    def read(self) -> Measurements:
        self.reads += 1
        return read_wide_csv(self.path)

    def check(self, m: Measurements) -> None:
        self.checks += 1


def test_load_unit_featurizes_once_then_reads_the_cache(tmp_path):
    path = wide_csv(tmp_path / "m.csv")
    calls = Calls(path)
    unit, timing = load_unit("m", [path], calls.read, calls.check, CONFIG, tmp_path / "cache",
                             workers=1, progress=False)
    assert timing["source"] == "featurized" and timing["molecules"] == len(SMILES)
    assert Path(timing["cache_file"]).is_file()
    assert Path(timing["cache_file"]).parent == tmp_path / "cache" / "molecules"
    again, timing2 = load_unit("m", [path], calls.read, calls.check, CONFIG,
                               tmp_path / "cache", workers=1, progress=False)
    assert (calls.reads, calls.checks) == (1, 1) and timing2["source"] == "cache"
    assert timing2["cache_file"] == timing["cache_file"]
    assert again.store.smiles == unit.store.smiles and again.task_order == ["A", "B", "C", "D"]


def test_a_changed_file_or_featurizer_setting_is_not_served_from_the_cache(tmp_path):
    path = wide_csv(tmp_path / "m.csv")
    calls = Calls(path)
    kw = dict(workers=1, progress=False)
    load_unit("m", [path], calls.read, calls.check, CONFIG, tmp_path / "c", **kw)
    load_unit("m", [path], calls.read, calls.check, FeaturizerConfig(ecfp_bits=1024),
              tmp_path / "c", **kw)
    wide_csv(path, tasks=("A", "B"))
    _, timing = load_unit("m", [path], calls.read, calls.check, CONFIG, tmp_path / "c", **kw)
    assert calls.reads == 3 and timing["source"] == "featurized"


def test_without_a_cache_nothing_is_written(tmp_path):
    path = wide_csv(tmp_path / "m.csv")
    calls = Calls(path)
    _, timing = load_unit("m", [path], calls.read, calls.check, CONFIG, None, workers=1,
                          progress=False)
    assert timing["cache_file"] == "None" and sorted(p.name for p in tmp_path.iterdir()) == [
        "m.csv"]


def test_a_failed_check_stops_before_featurizing_and_caching(tmp_path):
    path = wide_csv(tmp_path / "m.csv")

    def refuse(m):
        raise ContentCheckError(path, "not what the card says")

    with pytest.raises(ContentCheckError, match="not what the card says"):
        load_unit("m", [path], lambda: read_wide_csv(path), refuse, CONFIG, tmp_path / "c",
                  workers=1, progress=False)
    assert not (tmp_path / "c").exists()


# ------------------------------------------------------------------ the format loaders


def test_load_moleculenet_splits_by_the_cards_task_indices(tmp_path):
    wide_csv(tmp_path / "toy.csv")
    card = Card(name="toy", domain="molecules", format="moleculenet", root=tmp_path,
                files={"data": "toy.csv"}, split={"train": "0-2", "valid": "2", "test": "3"},
                expected={"rows": 6})
    loaded = load_moleculenet(card, CONFIG, None, 1, False)
    assert loaded.name == "toy" and loaded.card is card and set(loaded.units) == {"all"}
    assert loaded.split == {"train": ["A", "B"], "valid": ["C"], "test": ["D"]}
    assert loaded.unit_tasks == {"all": ["A", "B", "C", "D"]}
    assert loaded.timings["all"]["source"] == "featurized"
    bad = Card(name="toy", domain="molecules", format="moleculenet", root=tmp_path,
               files={"data": "toy.csv"}, split=card.split, expected={"rows": 7})
    with pytest.raises(ContentCheckError, match="expected 7 data rows for 'toy', found 6"):
        load_moleculenet(bad, CONFIG, None, 1, False)


def write_fold(folder: Path, tasks: list[str]) -> None:
    folder.mkdir(parents=True)
    for t in tasks:
        lines = [json.dumps({"SMILES": s, "Property": str(i % 2)}) for i, s in enumerate(SMILES)]
        (folder / f"{t}.jsonl.gz").write_bytes(gzip.compress("\n".join(lines).encode()))


def test_load_fsmol_reads_each_fold_as_a_unit(tmp_path):
    write_fold(tmp_path / "train", ["T1", "T2"])
    write_fold(tmp_path / "test", ["X1"])
    (tmp_path / "split.json").write_text(json.dumps({"train": ["T1", "T2"], "test": ["X1"]}))
    card = Card(name="fs", domain="molecules", format="fsmol", root=tmp_path,
                files={"split": "split.json", "train": "train", "test": "test"},
                expected={"folds": {"train": {"tasks": 2, "rows": 12}}})
    loaded = load_fsmol(card, CONFIG, None, 1, False, folds=("train", "test"))
    assert set(loaded.units) == {"train", "test"}
    assert loaded.split == {"train": ["T1", "T2"], "valid": [], "test": ["X1"]}
    with pytest.raises(DataError, match=r"split\.json: the split file has no 'valid' list"):
        load_fsmol(card, CONFIG, None, 1, False, folds=("valid",))


def test_load_plain_csv_splits_a_users_assays(tmp_path):
    path = wide_csv(tmp_path / "my assays.csv", tasks=("A", "B", "C", "D", "E"))
    loaded = load_plain_csv(path, CONFIG, None, 1, False, test_assays="B,D",
                            test_fraction=0.2, seed=0, columns={})
    assert loaded.name == "my assays" and loaded.card is None
    assert loaded.split["test"] == ["B", "D"]
    assert sorted(loaded.split["train"] + loaded.split["valid"]) == ["A", "C", "E"]
    named = load_plain_csv(path, CONFIG, None, 1, False, None, 0.2, 0, {}, name="mine")
    assert named.name == "mine" and len(named.split["test"]) == 1


def test_load_plain_csv_refuses_a_missing_file_and_an_unknown_test_assay(tmp_path):
    with pytest.raises(DataError, match=r"nothing\.csv: no such file$"):
        load_plain_csv(tmp_path / "nothing.csv", CONFIG, None, 1, False, None, 0.2, 0, {})
    with pytest.raises(DataError, match=r"tmp.*: a folder, not a file$"):
        load_plain_csv(tmp_path, CONFIG, None, 1, False, None, 0.2, 0, {})
    path = wide_csv(tmp_path / "m.csv")
    with pytest.raises(DataError, match=r"test assay 'Q' is not in the data"):
        load_plain_csv(path, CONFIG, tmp_path / "cache", 1, False, "Q", 0.2, 0, {})
    assert not (tmp_path / "cache").exists()  # refused before featurizing


def test_load_plain_csv_reads_a_long_csv(tmp_path):
    rows = pd.DataFrame({"smiles": SMILES * 2, "assay": ["P"] * 6 + ["Q"] * 6,
                         "label": [0, 1] * 6})
    path = tmp_path / "long.csv"
    rows.to_csv(path, index=False)
    loaded = load_plain_csv(path, CONFIG, None, 1, False, ["Q"], 0.2, 0, {})
    assert loaded.split == {"train": ["P"], "valid": [], "test": ["Q"]}
