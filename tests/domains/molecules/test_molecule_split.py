"""domains/molecules/molecule_split.py: the Bemis–Murcko scaffold split of the molecules
(deterministic, seeded, disjoint, about half each side), the data set's ``molecules =
"disjoint"`` variant (test tasks hold only test-side molecules), what a saved model records
of it and the refusal of a model trained on the other variant."""

from __future__ import annotations

import numpy as np
import pytest

import fewshot_apps as fa
from fewshot_apps.core.evaluation import mean_over_tasks
from fewshot_apps.domains.molecules.domain import MoleculeDomain
from fewshot_apps.domains.molecules.molecule_split import (
    check_model_molecules,
    scaffold_key,
    scaffold_split,
)
from fewshot_apps.errors import FewshotError

# Scaffolds: benzene (4), pyridine (2), naphthalene (2), cyclohexane (2); 6 acyclic molecules.
SMILES = ["Oc1ccccc1", "Nc1ccccc1", "Clc1ccccc1", "CCc1ccccc1", "Oc1ccncc1", "Nc1ccncc1",
          "Oc1ccc2ccccc2c1", "Nc1ccc2ccccc2c1", "OC1CCCCC1", "NC1CCCCC1",
          "CCO", "CCN", "CCC", "CC(=O)O", "CCCl", "OCCO"]


def sides(split, smiles) -> dict[str, bool]:
    return dict(zip(smiles, split.test_side.tolist()))


def test_scaffold_keys_group_ring_systems_and_keep_acyclic_molecules_apart():
    assert scaffold_key("Oc1ccccc1") == scaffold_key("Clc1ccccc1") == "c1ccccc1"
    assert scaffold_key("C[C@H](N)c1ccccc1") == "c1ccccc1"  # no stereochemistry
    assert scaffold_key("CCO") == "acyclic:CCO" != scaffold_key("CCN")
    assert scaffold_key("not a molecule").startswith("unparsed:")


def test_the_split_is_deterministic_seeded_disjoint_and_balanced():
    first = scaffold_split(SMILES, seed=0)
    assert sides(first, SMILES) == sides(scaffold_split(SMILES, seed=0), SMILES)
    # The order molecules were read in does not matter, only the seed.
    shuffled = list(np.random.default_rng(5).permutation(SMILES))
    assert sides(scaffold_split(shuffled, seed=0), shuffled) == sides(first, SMILES)
    assert len({scaffold_split(SMILES, seed=s).fingerprint for s in range(6)}) > 1
    for seed in range(6):
        split = scaffold_split(SMILES, seed=seed)
        by_scaffold: dict[str, set[bool]] = {}
        for smi, test in sides(split, SMILES).items():
            by_scaffold.setdefault(scaffold_key(smi), set()).add(test)
        assert all(len(s) == 1 for s in by_scaffold.values())  # no scaffold on both sides
        assert split.counts == (8, 8)  # acyclic singletons fill the test side exactly
        assert sum(split.scaffolds) == 10


def test_a_test_fraction_outside_0_1_is_refused():
    with pytest.raises(FewshotError, match="not between 0 and 1"):
        scaffold_split(SMILES, test_fraction=1.0)


def test_suite_options_are_checked_by_the_domain():
    domain = MoleculeDomain()
    assert domain.check_dataset_options({"molecules": "disjoint"}) == {"molecules": "disjoint"}
    with pytest.raises(FewshotError, match="'molecule': molecule data sets accept molecules"):
        domain.check_dataset_options({"molecule": "disjoint"})
    with pytest.raises(FewshotError, match="molecules='apart': expected one of 'shared', "
                                           "'disjoint'"):
        domain.check_dataset_options({"molecules": "apart"})
    with pytest.raises(FewshotError, match="molecule_seed='1': expected a whole number"):
        domain.check_dataset_options({"molecules": "disjoint", "molecule_seed": "1"})


def write_assays(path, assays: dict[str, dict[str, int]]):
    rows = ["smiles,assay,label"]
    rows += [f"{smi},{assay},{label}" for assay, labels in assays.items()
             for smi, label in labels.items()]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_a_csv_variant_keeps_each_task_on_its_side_and_reports_what_it_left(tmp_path):
    everything = {smi: i % 2 for i, smi in enumerate(SMILES)}
    first = fa.load_dataset(write_assays(tmp_path / "a.csv", {"A": everything, "B": everything,
                                                               "T": everything}),
                            test_assays=["T"], molecules="disjoint", workers=1)
    on_test = dict(zip(first.store.smiles, first.molecule_split.test_side))
    # Same molecules, other assays: the same split. T has both classes on the test side;
    # U's molecules are all training-side; V keeps one class on the test side.
    train_side = [s for s in SMILES if not on_test[s]]
    test_side = [s for s in SMILES if on_test[s]]
    ds = fa.load_dataset(write_assays(tmp_path / "b.csv", {
        "A": everything, "B": everything,
        "T": {**{s: i % 2 for i, s in enumerate(test_side)}, **{s: 1 for s in train_side}},
        "U": {s: i % 2 for i, s in enumerate(train_side)},
        "V": {**{s: 0 for s in test_side}, train_side[0]: 1}}),
        test_assays=["T", "U", "V"], molecules="disjoint", workers=1)
    assert dict(zip(ds.store.smiles, ds.molecule_split.test_side)) == on_test
    smiles = np.asarray(ds.store.smiles)
    for split in ("train", "valid", "test"):
        for task in getattr(ds.taskset, split):
            assert all(on_test[s] == (split != "train") for s in smiles[task.examples])
    assert [t.name for t in ds.taskset.test] == ["T", "V"]  # U: none on the test side
    assert [t.metadata["evaluable"] for t in ds.taskset.test] == [True, False]
    counts = ds.side_counts().set_index("task")
    assert counts.loc["U", ["positives", "negatives", "dropped"]].tolist() == [0, 0, 8]
    assert counts.loc["V", ["positives", "negatives", "dropped"]].tolist() == [0, 8, 1]
    assert (counts["positives"] + counts["negatives"] + counts["dropped"]).to_dict() == \
        ds.measurements.groupby("task").size().to_dict()
    results, skipped = ds.evaluate("k-shot", ds.build_baseline("rf"), shots=(1,), draws=2,
                                   seeds=(0,))
    assert set(results["task"]) == {"T"} and skipped == 2  # V: one class, counted
    # shared (the default) is the published data set: every molecule in every task
    shared = fa.load_dataset(tmp_path / "b.csv", test_assays=["T", "U", "V"], workers=1)
    assert shared.molecule_split is None and shared.side_counts()["dropped"].sum() == 0
    assert [len(t) for t in shared.taskset.test] == [16, 8, 9]


def test_an_unknown_variant_fails_before_loading(tmp_path):
    from fewshot_apps.domains.molecules.dataset import load_molecule_dataset

    with pytest.raises(FewshotError, match="molecules='scaffold'"):  # not "no such file"
        load_molecule_dataset(tmp_path / "missing.csv", molecules="scaffold")


# --------------------------------------------------------------------------- real Tox21


@pytest.fixture(scope="module")
def tox21_disjoint(data_dir):
    return fa.load_dataset("tox21", data_dir=data_dir, molecules="disjoint")


def test_tox21_disjoint_test_molecules_are_never_training_molecules(tox21_disjoint):
    ds = tox21_disjoint
    ts = ds.taskset
    train = np.concatenate([t.examples for t in ts.train])
    test = np.concatenate([t.examples for t in ts.test])
    assert not set(train.tolist()) & set(test.tolist())
    # validation asks the test's question: molecules no training task labelled
    valid = np.concatenate([t.examples for t in ts.valid])
    assert ds.molecule_split.test_side[valid].all()
    smiles = np.asarray(ds.store.smiles)
    train_scaffolds = {scaffold_key(s) for s in smiles[np.unique(train)]}
    test_scaffolds = {scaffold_key(s) for s in smiles[np.unique(test)]}
    assert not train_scaffolds & test_scaffolds
    n_train, n_test = ds.molecule_split.counts
    assert abs(n_test - n_train) <= 0.02 * len(ds.store)  # about half each
    # the assay split is the published one; each test assay keeps about half its molecules
    assert [t.name for t in ts.test] == ["SR-HSE", "SR-MMP", "SR-p53"]
    assert all(t.metadata["evaluable"] and len(t) > 2500 for t in ts.test)


def test_tox21_disjoint_label_prior_is_at_chance(tox21_disjoint):
    """Its test molecules were never labelled in training: every one gets the same score.
    The validation assay, which holds test-side molecules, is not read for them."""
    ds = tox21_disjoint
    assert [t.name for t in ds.label_tasks] == [t.name for t in ds.taskset.train]
    model = ds.build_baseline("label-prior")
    test = np.concatenate([t.examples for t in ds.taskset.test])
    assert len(np.unique(model.prior[test])) == 1
    profile = ds.build_baseline("label-profile")
    assert profile.features.shape[1] == 2 * len(ds.taskset.train)
    assert not profile.features[test].any()
    results, skipped = ds.evaluate("k-shot", model, shots=(10,), draws=3, seeds=(0,))
    assert skipped == 0
    assert 0.4 <= mean_over_tasks(results, "roc_auc") <= 0.6


def test_a_saved_model_knows_its_variant_and_the_other_one_is_refused(tox21_disjoint):
    disjoint = tox21_disjoint.saved_model_config()
    assert disjoint["molecules"] == "disjoint"
    assert disjoint["molecule_split"]["seed"] == 0
    assert disjoint["molecule_split"]["method"] == "bemis-murcko-scaffold"
    shared = {**disjoint, "molecules": "shared"}
    del shared["molecule_split"]
    older = {k: v for k, v in shared.items() if k != "molecules"}  # saved before variants
    check_model_molecules("m", "s", disjoint, disjoint)
    check_model_molecules("m", "s", shared, older)
    with pytest.raises(FewshotError, match="m: suite s: the model was trained on tox21 with "
                                           "molecules shared.*seen labelled in training"):
        check_model_molecules("m", "s", older, disjoint)
    with pytest.raises(FewshotError, match="trained on the molecule-disjoint variant of tox21"):
        check_model_molecules("m", "s", disjoint, shared)
    other = {**disjoint, "molecule_split": {**disjoint["molecule_split"], "seed": 1,
                                            "fingerprint": "0" * 16}}
    with pytest.raises(FewshotError, match=r"another molecule-disjoint split of tox21 \(seed 1\)"):
        check_model_molecules("m", "s", other, disjoint)
    # a model of another data set is not this check's business
    check_model_molecules("m", "s", {**shared, "dataset": "sider"}, disjoint)
