"""domains/molecules/pooling.py: featurize_unit. Each distinct SMILES is featurized once;
spellings of one molecule share a pool entry; rows RDKit rejects, or whose SMILES holds
whitespace, are reported with file, row, task and reason (never pooled); flagged rows are
listed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fewshot_apps.domains.molecules.featurizer import FeaturizerConfig
from fewshot_apps.domains.molecules.pooling import featurize_unit
from fewshot_apps.domains.molecules.readers import Measurements

SMILES = ["CCO", "OCC", "c1ccccc1", "not-a-smiles", "CC O", "CCO", " CCN "]


def measurements(smiles=SMILES) -> Measurements:
    n = len(smiles)
    table = pd.DataFrame({"smiles": smiles, "task": ["A", "B"] * (n // 2) + ["A"] * (n % 2),
                          "label": np.arange(n) % 2 * 1.0, "file": "m.csv",
                          "row": np.arange(n) + 2})
    skipped = pd.DataFrame([{"file": "m.csv", "row": 99, "task": "A", "reason": "blank"}])
    return Measurements(table, skipped, {"m.csv": n + 1}, ["A", "B"])


@pytest.fixture(scope="module")
def unit():
    return featurize_unit(measurements(), FeaturizerConfig(), workers=1, progress=False,
                          desc="test")


def test_spellings_of_one_molecule_share_an_entry(unit):
    mol = unit.measurements["mol"].tolist()
    assert mol[0] == mol[1] == mol[5] >= 0  # CCO, OCC, CCO
    assert len({mol[0], mol[2], mol[6]}) == 3
    assert len(unit.store) == 3 and sorted(unit.store.smiles) == ["CCN", "CCO", "c1ccccc1"]
    assert unit.store.smiles[mol[2]] == "c1ccccc1"


def test_rejected_rows_have_no_molecule_and_are_reported_with_their_reason(unit):
    mol = unit.measurements["mol"].to_numpy()
    assert (mol[[3, 4]] == -1).all() and (np.delete(mol, [3, 4]) >= 0).all()
    invalid = unit.invalid
    assert list(invalid.columns) == ["file", "row", "task", "smiles", "reason"]
    assert invalid["row"].tolist() == [5, 6] and invalid["task"].tolist() == ["B", "A"]
    assert "SMILES Parse Error" in invalid["reason"].iloc[0]
    assert invalid["reason"].iloc[1] == ("SMILES contains whitespace (RDKit would read only "
                                         "'CC')")


def test_leading_and_trailing_whitespace_is_harmless(unit):
    assert unit.measurements["mol"].iloc[6] >= 0


def test_the_rest_of_the_measurements_passes_through(unit):
    m = measurements()
    assert unit.measurements.drop(columns="mol").equals(m.table)
    assert unit.rows_read == m.rows_read and unit.task_order == ["A", "B"]
    assert unit.skipped.equals(m.skipped)
    assert unit.flagged.empty and list(unit.flagged.columns) == [
        "file", "row", "task", "smiles", "flag"]


def test_flagged_rows_are_listed():
    out = featurize_unit(measurements(["CCO", "CC(C)(C)(C)(C)C"]),
                         FeaturizerConfig(recover_valence=True), workers=1, progress=False,
                         desc="test")
    assert out.flagged[["row", "smiles", "flag"]].to_dict("records") == [
        {"row": 3, "smiles": "CC(C)(C)(C)(C)C", "flag": "recovered"}]
    assert (out.measurements["mol"] >= 0).all()


def test_nothing_valid_gives_an_empty_store():
    out = featurize_unit(measurements(["xx", "C C"]), FeaturizerConfig(), workers=1,
                         progress=False, desc="test")
    assert len(out.store) == 0 and (out.measurements["mol"] == -1).all()
    assert len(out.invalid) == 2


def test_no_measurements_give_an_empty_unit_not_an_index_error():
    # (readers refuse such a file first; the pool itself must not crash on it)
    empty = featurize_unit(measurements([]), FeaturizerConfig(), workers=1, progress=False,
                           desc="test")
    assert len(empty.store) == 0 and len(empty.measurements) == 0 and len(empty.invalid) == 0
