"""molecules/unseen.py: the loading option ``unseen_by`` leaves out every molecule another
data set's training assays measured (here Tox21's own training assays: its test assays keep
only the molecules no training assay measured)."""

from __future__ import annotations

import numpy as np
import pytest

from fewshot_apps.bench.runner import load_data
from fewshot_apps.domains.molecules.molecule_split import check_suite_options
from fewshot_apps.domains.molecules.unseen import training_smiles
from fewshot_apps.errors import FewshotError


@pytest.fixture(scope="module")
def plain():
    return load_data("tox21")


@pytest.fixture(scope="module")
def unseen():
    return load_data("tox21", dataset_options={"unseen_by": "tox21"})


def test_no_kept_molecule_was_measured_in_the_other_data_sets_training_assays(plain, unseen):
    seen = training_smiles(plain)
    smiles = np.asarray(unseen.store.smiles, dtype=object)
    kept = {s for task in unseen.taskset.test + unseen.taskset.valid
            for s in smiles[task.examples]}
    assert kept and not kept & seen
    assert not unseen.taskset.train  # every training molecule was measured in training


def test_what_is_left_out_is_counted_and_nothing_else_is(plain, unseen):
    smiles = np.asarray(plain.store.smiles, dtype=object)
    rows = plain.measurements[plain.measurements["mol"] >= 0]
    seen = training_smiles(plain)
    hit = np.array([s in seen for s in smiles[rows["mol"].to_numpy()]])
    assert unseen.unseen_by.measurements == int(hit.sum()) > 0
    assert unseen.unseen_by.molecules == len(set(rows["mol"][hit]))
    assert len(unseen.measurements) == len(plain.measurements) - int(hit.sum())
    assert unseen.saved_model_config()["unseen_by"] == unseen.unseen_by.record()
    assert unseen.unseen_by.other == "tox21"


def test_a_bad_value_is_refused_naming_the_option():
    with pytest.raises(FewshotError, match="unseen_by must be a molecule data set's name"):
        check_suite_options({"unseen_by": 3})
    with pytest.raises(FewshotError, match="molecule data sets accept .*unseen_by"):
        check_suite_options({"unseen": "fsmol"})
