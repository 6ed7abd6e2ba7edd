"""Integration tests on the real data in FEWSHOT_DATA_DIR (CI: ../shared/data)."""

import numpy as np
import pytest

from fewshot_apps.core.tasks import StratifiedSampler
from fewshot_apps.domains.molecules.dataset import load_molecule_dataset


@pytest.fixture(scope="module")
def tox21(data_dir):
    return load_molecule_dataset("tox21", data_dir=data_dir, progress=False)


@pytest.fixture(scope="module")
def fsmol_test(data_dir):
    return load_molecule_dataset("fsmol", data_dir=data_dir, folds=("test",), progress=False)


def test_tox21_counts(tox21):
    assert tox21.n_rows_read == 7831
    assert len(tox21.tasks) == 12
    rejected_rows = tox21.invalid.drop_duplicates(["file", "row"]).shape[0]
    valid_rows = tox21.measurements[tox21.measurements["mol"] >= 0].drop_duplicates(
        ["file", "row"]).shape[0]
    assert valid_rows + rejected_rows == 7831
    p53 = tox21.measurements[tox21.measurements["task"] == "SR-p53"]
    assert (p53["label"] == 1).sum() == 423 and (p53["label"] == 0).sum() == 6351


def test_tox21_split(tox21):
    ts = tox21.task_set()
    assert [t.name for t in ts.test] == ["SR-HSE", "SR-MMP", "SR-p53"]
    assert [t.name for t in ts.valid] == ["SR-ATAD5"]
    assert len(ts.train) == 8
    assert not {t.name for t in ts.train} & {t.name for t in ts.test}


def test_fsmol_test_fold(fsmol_test):
    assert len(fsmol_test.split["test"]) == 157
    assert fsmol_test.n_rows_read == 56220
    invalid_rows = fsmol_test.invalid.shape[0]
    assert (fsmol_test.measurements["mol"] >= 0).sum() + invalid_rows == 56220
    assert {"RegressionProperty", "LogRegressionProperty", "Relation"} <= set(
        fsmol_test.measurements.columns
    )


def test_fsmol_stratified_draw_keeps_ratio_and_seed(fsmol_test):
    ts = fsmol_test.task_set()
    for task in ts.test[:20]:
        ep = StratifiedSampler(16).sample(task, 11)
        ratio = task.n_positive / len(task)
        assert abs(ep.support_labels.sum() - 16 * ratio) <= 1
        again = StratifiedSampler(16).sample(task, 11)
        np.testing.assert_array_equal(ep.support_index, again.support_index)
        assert len(ep.query_index) == len(task) - 16


def test_cached_load_is_identical(data_dir, tox21):
    again = load_molecule_dataset("tox21", data_dir=data_dir, progress=False)
    assert again.timings["all"]["source"] == "cache"
    assert again.store.smiles == tox21.store.smiles
    assert (again.measurements["mol"].to_numpy() == tox21.measurements["mol"].to_numpy()).all()
