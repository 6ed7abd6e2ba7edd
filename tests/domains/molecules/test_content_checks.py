"""domains/molecules/content_checks.py: a card's ``[expected]`` table against what was read,
for a MoleculeNet file (rows, task columns, labels per task) and an FS-Mol fold (listed
tasks, task files present, rows). Each mismatch is a ContentCheckError naming the file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fewshot_apps.domains.molecules.content_checks import check_fsmol_fold, check_moleculenet
from fewshot_apps.domains.molecules.readers import Measurements
from fewshot_apps.errors import ContentCheckError
from fewshot_apps.sources import Card

PATH = Path("/data/toy.csv")


def measurements() -> Measurements:
    """3 molecules (rows) over tasks A (2 positives, 1 negative) and B (0 / 2)."""
    table = pd.DataFrame({"smiles": ["C", "CC", "CCC", "C", "CC"],
                          "task": ["A", "A", "A", "B", "B"],
                          "label": [1.0, 1.0, 0.0, 0.0, 0.0], "file": str(PATH),
                          "row": [2, 3, 4, 2, 3]})
    return Measurements(table, rows_read={str(PATH): 3}, task_order=["A", "B"])


def card(expected: dict) -> Card:
    return Card(name="toy", domain="molecules", format="moleculenet", root=Path("/data"),
                files={"data": "toy.csv", "split": "split.json"}, expected=expected)


def test_a_file_that_matches_every_expectation_passes():
    check_moleculenet(card({"rows": 3, "tasks": ["A", "B"], "n_tasks": 2,
                            "labels": {"A": [2, 1], "B": [0, 2]}}), measurements(), PATH)
    check_moleculenet(card({}), measurements(), PATH)  # nothing expected: nothing checked


def test_a_row_count_mismatch_names_the_file():
    with pytest.raises(ContentCheckError, match=r"^/data/toy\.csv: expected 4 data rows for "
                       r"'toy', found 3$"):
        check_moleculenet(card({"rows": 4}), measurements(), PATH)


def test_task_columns_missing_or_unexpected_are_listed():
    with pytest.raises(ContentCheckError, match=r"task columns differ from card 'toy': missing "
                       r"\['C'\], unexpected \[\]"):
        check_moleculenet(card({"tasks": ["A", "B", "C"]}), measurements(), PATH)
    with pytest.raises(ContentCheckError, match=r"missing \[\], unexpected \['B'\]"):
        check_moleculenet(card({"tasks": ["A"]}), measurements(), PATH)


def test_absent_tasks_may_be_missing():
    check_moleculenet(card({"tasks": ["A", "B", "C"], "absent_tasks": ["C"]}), measurements(),
                      PATH)


def test_the_number_of_task_columns():
    with pytest.raises(ContentCheckError, match=r"expected 3 task columns, found 2$"):
        check_moleculenet(card({"n_tasks": 3}), measurements(), PATH)


def test_label_counts_per_task_and_tasks_not_in_the_file_are_passed_over():
    with pytest.raises(ContentCheckError, match=r"task 'A': expected 1 positives / 2 "
                       r"negatives, found 2 / 1$"):
        check_moleculenet(card({"labels": {"A": [1, 2]}}), measurements(), PATH)
    check_moleculenet(card({"labels": {"Z": [5, 5]}}), measurements(), PATH)


# ------------------------------------------------------------------ FS-Mol folds

FOLDER = Path("/data/fsmol/train")


def fold(tasks_rows: dict[str, int]) -> Measurements:
    return Measurements(pd.DataFrame({"task": [], "label": []}),
                        rows_read={str(FOLDER / f"{t}.jsonl.gz"): n for t, n in tasks_rows.items()},
                        task_order=list(tasks_rows))


def fsmol_card(**train) -> Card:
    return card({"folds": {"train": train}})


def test_a_fold_without_expectations_is_not_checked():
    check_fsmol_fold(card({}), "train", ["X"], fold({}), FOLDER)
    check_fsmol_fold(fsmol_card(tasks=1), "valid", ["X"], fold({}), FOLDER)


def test_a_matching_fold_passes_and_absent_files_do_not_count_rows():
    listed = ["A", "B", "C"]
    check_fsmol_fold(fsmol_card(tasks=3, rows=30, absent_tasks=["C"]), "train", listed,
                     fold({"A": 10, "B": 20}), FOLDER)


def test_the_number_of_listed_tasks_is_checked_against_the_split_file():
    with pytest.raises(ContentCheckError, match=r"^/data/split\.json: fold 'train': expected 4 "
                       r"tasks, found 3$"):
        check_fsmol_fold(fsmol_card(tasks=4), "train", ["A", "B", "C"], fold({"A": 1}), FOLDER)


def test_missing_task_files_name_a_few_and_what_may_be_absent():
    with pytest.raises(ContentCheckError, match=r"^/data/fsmol/train: fold 'train': 2 listed "
                       r"task files are missing \(e\.g\. \['B', 'C'\]\); only none may be absent"):
        check_fsmol_fold(fsmol_card(tasks=3), "train", ["A", "B", "C"], fold({"A": 1}), FOLDER)
    with pytest.raises(ContentCheckError, match=r"1 listed task files are missing \(e\.g\. "
                       r"\['B'\]\); only \['C'\] may be absent"):
        check_fsmol_fold(fsmol_card(tasks=3, absent_tasks=["C"]), "train", ["A", "B", "C"],
                         fold({"A": 1}), FOLDER)


def test_the_row_count_of_a_fold():
    with pytest.raises(ContentCheckError, match=r"fold 'train': expected 31 rows, found 30$"):
        check_fsmol_fold(fsmol_card(tasks=2, rows=31), "train", ["A", "B"],
                         fold({"A": 10, "B": 20}), FOLDER)
