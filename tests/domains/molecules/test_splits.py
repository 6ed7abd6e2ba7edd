"""domains/molecules/splits.py: a card's task-index split (index ranges, ``valid`` or
``valid_last``, ``min_labels``, the expected counts), test assays named by a user (names
with commas, ambiguity, close matches), a seeded random split of a user's assays, and
FS-Mol's split file."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from fewshot_apps.domains.molecules.splits import (
    parse_index_ranges,
    random_task_split,
    read_fsmol_split,
    resolve_test_assays,
    task_index_split,
)
from fewshot_apps.errors import CardError, ContentCheckError, DataError
from fewshot_apps.sources import Card

TASKS = [f"t{i}" for i in range(10)]
ALL_LABELLED = pd.Series(100, index=TASKS)


def card(split: dict, expected: dict | None = None) -> Card:
    return Card(name="toy", domain="molecules", format="moleculenet", root=Path("/data"),
                files={"data": "toy.csv"}, split=split, expected=expected or {})


# ------------------------------------------------------------------ parse_index_ranges


@pytest.mark.parametrize("spec,expected", [
    ("0-2", [0, 1, 2]),
    ("0-2, 5", [0, 1, 2, 5]),
    ("7-", [7, 8, 9]),
    ("3,3,1", [1, 3]),
    ("8-12", [8, 9]),  # indices past the end are dropped
    ("", []),
    (" , 4 ,", [4]),
    ([5, 2, 11], [2, 5]),
    ([], []),
])  # fmt: skip
def test_index_ranges(spec, expected):
    assert parse_index_ranges(spec, 10) == expected


@pytest.mark.parametrize("spec,message", [
    ("-3", "'-3' is not a task index or a range of them"),
    ("0-2, x", "'x' is not a task index"),
    ("1-2-3", "'1-2-3' is not a task index"),
    ("2.5", "'2.5' is not a task index"),
    ("5-2", "the range '5-2' ends before it starts"),
    ([3, -1], "task indices must be whole numbers >= 0, not -1"),
    ([1, "2"], "task indices must be whole numbers >= 0, not '2'"),
    ([True], "task indices must be whole numbers >= 0, not True"),
])  # fmt: skip
def test_a_bad_index_spec_is_a_card_error_naming_the_key_and_the_spec(spec, message):
    with pytest.raises(CardError, match=rf"^\[split\] test = {re.escape(repr(spec))}: "
                       + re.escape(message)):
        parse_index_ranges(spec, 10, "[split] test")


def test_a_cards_bad_index_spec_names_the_card_and_its_key():
    with pytest.raises(CardError, match=r"^card 'toy': \[split\] valid = '-3': '-3' is not"):
        task_index_split(card({"train": "0-7", "valid": "-3", "test": "8-"}), TASKS,
                         ALL_LABELLED)
    with pytest.raises(CardError, match=r"^card 'toy': \[split\] train = \[0, -2\]: "):
        task_index_split(card({"train": [0, -2], "test": "8-"}), TASKS, ALL_LABELLED)


# ------------------------------------------------------------------ task_index_split


def test_train_valid_and_test_by_index():
    split = task_index_split(card({"train": "0-7", "valid": "6-7", "test": "8-"}), TASKS,
                             ALL_LABELLED)
    assert split == {"train": TASKS[:6], "valid": ["t6", "t7"], "test": ["t8", "t9"]}


def test_indices_follow_the_cards_task_list_not_the_files_column_order():
    reordered = list(reversed(TASKS))
    split = task_index_split(card({"train": "0-7", "test": "8-"}, {"tasks": TASKS}), reordered,
                             ALL_LABELLED)
    assert split["test"] == ["t8", "t9"] and split["train"] == TASKS[:8]
    assert split["valid"] == []


def test_valid_last_takes_the_last_kept_training_tasks_after_min_labels():
    counts = ALL_LABELLED.copy()
    counts[["t7", "t5"]] = 3  # too sparse: dropped first
    split = task_index_split(card({"train": "0-7", "test": "8-", "valid_last": 2,
                                   "min_labels": 10}), TASKS, counts)
    assert split["valid"] == ["t4", "t6"]  # the last 2 kept, however many were dropped
    assert split["train"] == ["t0", "t1", "t2", "t3"]
    none = task_index_split(card({"train": "0-7", "test": "8-", "valid_last": 0}), TASKS,
                            ALL_LABELLED)
    assert none["valid"] == [] and len(none["train"]) == 8


def test_min_labels_drops_sparse_tasks_from_every_split():
    counts = pd.Series({"t1": 50, "t9": 2})  # tasks absent from the counts have no labels
    split = task_index_split(card({"train": "0-7", "test": "8-", "min_labels": 10}), TASKS,
                             counts)
    assert split == {"train": ["t1"], "valid": [], "test": []}


def test_valid_and_valid_last_together_are_refused():
    with pytest.raises(CardError, match=r"card 'toy': \[split\] has both valid and valid_last"):
        task_index_split(card({"train": "0-7", "test": "8-", "valid": "7", "valid_last": 1}),
                         TASKS, ALL_LABELLED)


def test_expected_counts_are_checked_train_counting_validation_too():
    spec = {"train": "0-7", "valid": "7", "test": "8-", "expect_train": 8, "expect_valid": 1,
            "expect_test": 2}
    assert len(task_index_split(card(spec), TASKS, ALL_LABELLED)["train"]) == 7
    with pytest.raises(ContentCheckError, match=r"toy\.csv: split of 'toy': expected 9 train "
                       r"\(validation included\) tasks, found 8$"):
        task_index_split(card({**spec, "expect_train": 9}), TASKS, ALL_LABELLED)
    with pytest.raises(ContentCheckError, match=r"expected 3 test tasks, found 2$"):
        task_index_split(card({**spec, "expect_test": 3}), TASKS, ALL_LABELLED)
    with pytest.raises(ContentCheckError, match=r"expected 2 valid tasks after dropping tasks "
                       r"with < 5 labels, found 1$"):
        task_index_split(card({**spec, "expect_valid": 2, "min_labels": 5}), TASKS,
                         ALL_LABELLED)


# ------------------------------------------------------------------ resolve_test_assays

ASSAYS = ["NR-AR", "SR-MMP", "Injury, poisoning and procedural complications", " padded "]


def test_a_list_holds_exact_names_and_surrounding_spaces_do_not_matter():
    assert resolve_test_assays(["SR-MMP", "padded"], ASSAYS) == ["SR-MMP", " padded "]
    assert resolve_test_assays([ASSAYS[2]], ASSAYS) == [ASSAYS[2]]


def test_a_string_splits_at_commas_except_inside_a_known_name():
    assert resolve_test_assays("NR-AR, SR-MMP", ASSAYS) == ["NR-AR", "SR-MMP"]
    assert resolve_test_assays(
        "NR-AR,Injury, poisoning and procedural complications", ASSAYS) == ["NR-AR", ASSAYS[2]]


def test_a_string_with_two_readings_asks_for_names_one_by_one():
    with pytest.raises(DataError, match=r"test assays 'A,B' can be read as \['A', 'B'\] or as "
                       r"\['A,B'\]; name them one by one"):
        resolve_test_assays("A,B", ["A", "B", "A,B"])


def test_an_unknown_name_lists_close_matches_or_the_assays(tmp_path):
    path = tmp_path / "mine.csv"
    with pytest.raises(DataError, match=r"mine\.csv: test assay 'nr-ar ' is not in the data; "
                       r"close matches: 'NR-AR'"):
        resolve_test_assays(["nr-ar "], ASSAYS, path)
    with pytest.raises(DataError, match=r"test assay 'zzz' is not in the data; the 4 assays "
                       r"are \['NR-AR'"):
        resolve_test_assays("NR-AR,zzz", ASSAYS)
    many = [f"assay{i}" for i in range(12)]
    with pytest.raises(DataError, match=r"the 12 assays are \[.*'assay9'\] \.\.\.$"):
        resolve_test_assays(["qqqq"], many)


# ------------------------------------------------------------------ random_task_split


def test_a_seeded_random_split_is_deterministic_disjoint_and_in_file_order():
    tasks = [f"a{i}" for i in range(20)]
    one = random_task_split(tasks, seed=3)
    assert one == random_task_split(tasks, seed=3) != random_task_split(tasks, seed=4)
    assert (len(one["test"]), len(one["valid"]), len(one["train"])) == (4, 2, 14)
    assert sorted(sum(one.values(), [])) == sorted(tasks)
    for part in one.values():
        assert part == sorted(part, key=tasks.index)


def test_named_test_assays_are_the_test_split():
    split = random_task_split(ASSAYS, seed=0, test_tasks="SR-MMP")
    assert split["test"] == ["SR-MMP"] and len(split["valid"]) == 1
    assert set(split["train"]) | set(split["valid"]) == set(ASSAYS) - {"SR-MMP"}


def test_at_least_one_validation_assay_with_three_left_and_none_with_fewer():
    assert len(random_task_split(["a", "b", "c", "d"], 0, test_tasks=["a"])["valid"]) == 1
    two_left = random_task_split(["a", "b", "c"], 0, test_tasks=["a"])
    assert two_left["valid"] == [] and two_left["train"] == ["b", "c"]


def test_one_class_assays_are_never_drawn_as_test_or_validation_assays():
    tasks = [f"a{i}" for i in range(20)]
    scorable = tasks[::2]  # the odd ones have one class
    for seed in range(10):
        split = random_task_split(tasks, seed, evaluable=scorable)
        assert (len(split["test"]), len(split["valid"])) == (4, 2)
        assert set(split["test"] + split["valid"]) <= set(scorable)
        assert sorted(sum(split.values(), [])) == sorted(tasks)
    # With every assay scorable the draws are those of a split that was not told.
    assert random_task_split(tasks, 3, evaluable=tasks) == random_task_split(tasks, 3)


def test_with_no_scorable_assay_left_none_is_drawn_and_all_train():
    split = random_task_split(["a", "b", "c", "d", "e"], 0, evaluable=["a"])
    assert split["test"] == ["a"] and split["valid"] == []
    assert split["train"] == ["b", "c", "d", "e"]


def test_a_single_assay_has_no_test_split():
    assert random_task_split(["only"], 0) == {"train": ["only"], "valid": [], "test": []}


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.1])
def test_the_test_fraction_must_lie_between_0_and_1(fraction, tmp_path):
    with pytest.raises(DataError, match=rf"test fraction {fraction} is not between 0 and 1"):
        random_task_split(ASSAYS, 0, test_fraction=fraction, path=tmp_path / "x.csv")


def test_naming_every_assay_as_test_leaves_none_to_train_on():
    with pytest.raises(DataError, match=r"every assay \(2\) is a test assay"):
        random_task_split(["a", "b"], 0, test_tasks=["a", "b"])


# ------------------------------------------------------------------ read_fsmol_split


def test_read_fsmol_split(tmp_path):
    path = tmp_path / "split.json"
    path.write_text('{"train": ["A", "B"], "test": ["C"]}')
    assert read_fsmol_split(path) == {"train": ["A", "B"], "test": ["C"]}
    path.write_text('{"train": [')
    with pytest.raises(DataError, match=r"split\.json: not a valid split file"):
        read_fsmol_split(path)
    path.write_bytes(b"\xff\xfe{}")
    with pytest.raises(DataError, match="not a valid split file"):
        read_fsmol_split(path)


def test_a_missing_or_unreadable_split_file_is_a_data_error_naming_it(tmp_path):
    missing = tmp_path / "fsmol-0.1.json"
    with pytest.raises(DataError, match=r"fsmol-0\.1\.json: the split file .* is missing") as err:
        read_fsmol_split(missing)
    assert err.value.path == missing
    with pytest.raises(DataError, match="cannot read the split file") as err:
        read_fsmol_split(tmp_path)  # a folder
    assert err.value.path == tmp_path


@pytest.mark.parametrize("value", ["x", -1, 2.5, True])
def test_a_valid_last_that_is_not_a_count_is_a_card_error(value):
    with pytest.raises(CardError, match="valid_last = .*expected a whole number >= 0"):
        task_index_split(card({"train": "0-7", "test": "8-", "valid_last": value}), TASKS,
                         ALL_LABELLED)
