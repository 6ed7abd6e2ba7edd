"""domains/molecules/duplicates.py: counting repeated measurements of a molecule in an
assay (conflicting ones apart, rejected molecules left out) and the keep /
drop-conflicting / majority policies, which return rows in file order."""

from __future__ import annotations

import pandas as pd
import pytest

from fewshot_apps.domains.molecules.duplicates import (
    DUPLICATE_POLICIES,
    apply_duplicate_policy,
    duplicate_counts,
)


def rows() -> pd.DataFrame:
    """Task A: molecule 1 thrice (1, 1, 0: conflicting, majority 1), molecule 2 twice (0, 0),
    molecule 3 once; task B: molecule 1 twice (1, 0: a tie), molecule 4 once; a rejected
    SMILES (mol -1) twice in B. Rows are in file order (unit, file, row)."""
    data = [  # task, mol, label, row
        ("A", 1, 1.0, 2), ("B", 1, 1.0, 2), ("A", 2, 0.0, 3), ("A", 1, 1.0, 4),
        ("B", 4, 0.0, 5), ("A", 3, 1.0, 6), ("A", 1, 0.0, 7), ("B", 1, 0.0, 8),
        ("A", 2, 0.0, 9), ("B", -1, 1.0, 10), ("B", -1, 1.0, 11),
    ]
    frame = pd.DataFrame(data, columns=["task", "mol", "label", "row"])
    return frame.assign(unit="all", file="f.csv", smiles=[f"s{m}" for m in frame["mol"]])


def test_the_policies():
    assert DUPLICATE_POLICIES == ("keep", "drop-conflicting", "majority")


def test_counts_per_task_leave_out_rejected_molecules():
    counts = duplicate_counts(rows())
    assert counts.to_dict("index") == {
        "A": {"duplicate_molecules": 2, "extra_rows": 3, "conflicting": 1},
        "B": {"duplicate_molecules": 1, "extra_rows": 1, "conflicting": 1},
    }


def test_no_duplicates_count_nothing():
    once = rows().drop_duplicates(["task", "mol"])
    assert duplicate_counts(once[once["mol"] >= 0]).empty


def test_keep_returns_every_measurement():
    valid = rows()[rows()["mol"] >= 0]
    assert apply_duplicate_policy(valid, "keep") is valid


def test_drop_conflicting_keeps_agreeing_repeats_once_at_their_first_row():
    out = apply_duplicate_policy(rows()[rows()["mol"] >= 0], "drop-conflicting")
    assert list(zip(out["task"], out["mol"], out["label"], out["row"])) == [
        ("A", 2, 0.0, 3), ("B", 4, 0.0, 5), ("A", 3, 1.0, 6)]


def test_majority_resolves_conflicts_and_drops_ties():
    out = apply_duplicate_policy(rows()[rows()["mol"] >= 0], "majority")
    assert list(zip(out["task"], out["mol"], out["label"], out["row"])) == [
        ("A", 1, 1.0, 2), ("A", 2, 0.0, 3), ("B", 4, 0.0, 5), ("A", 3, 1.0, 6)]
    assert out["smiles"].tolist() == ["s1", "s2", "s4", "s3"]  # other columns follow


@pytest.mark.parametrize("policy", ["drop-conflicting", "majority"])
def test_file_order_runs_over_units_and_files(policy):
    frame = pd.DataFrame({"task": ["A", "A", "A"], "mol": [3, 2, 1], "label": [1.0, 0.0, 1.0],
                          "row": [9, 2, 5], "unit": ["u1", "u1", "u0"],
                          "file": ["b.csv", "a.csv", "z.csv"]})
    out = apply_duplicate_policy(frame, policy)
    assert out["mol"].tolist() == [1, 2, 3]  # u0 first, then a.csv before b.csv
