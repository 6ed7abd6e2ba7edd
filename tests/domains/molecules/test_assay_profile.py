"""domains/molecules/assay_profile.py and label_profile.py: the molecules' labels in the
training assays, as an encoder branch and as the ``label-profile`` baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import fewshot_apps as fa
from fewshot_apps.core.encoders import pretraining_hidden, tasks_hidden
from fewshot_apps.domains.molecules.assay_profile import AssayProfileBranch, profile_table

# CCO active in A and B; CCN inactive in A, active in B; CCCl only in B; T is the test assay.
CSV = ("smiles,assay,label\nCCO,A,1\nCCN,A,0\nCCO,B,1\nCCN,B,1\nCCCl,B,0\nCCBr,A,0\n"
       "CCO,T,1\nCCN,T,0\nCCC,T,1\nCCCl,T,0\nCCBr,T,0\n")


@pytest.fixture
def ds(tmp_path):
    csv = tmp_path / "assays.csv"
    csv.write_text(CSV)
    return fa.load_dataset(csv, test_assays=["T"], workers=1)


def _ids(ds) -> dict[str, int]:
    return dict(zip(ds.measurements["smiles"], ds.measurements["mol"]))


def test_profile_table_holds_each_label_once_per_assay(ds):
    ids = _ids(ds)
    tasks = [*ds.taskset.train, *ds.taskset.valid]
    table = profile_table(tasks, ["A", "B"], len(ds.store))
    assert table.dtype == torch.int8 and table.shape == (len(ds.store), 2)
    assert table[ids["CCO"]].tolist() == [1, 1]
    assert table[ids["CCN"]].tolist() == [-1, 1]
    assert table[ids["CCCl"]].tolist() == [0, -1]
    assert table[ids["CCC"]].tolist() == [0, 0]  # measured in the test assay only
    with pytest.raises(fa.FewshotError, match="'T'"):
        profile_table(tasks, ["A", "T"], len(ds.store))


def test_branch_hides_assays_and_reads_nothing_for_another_store():
    branch = AssayProfileBranch(["A", "B"], hidden=4)
    store, other = object(), object()
    branch.set_table(store, torch.tensor([[1, -1], [0, 1]], dtype=torch.int8))
    ids = torch.tensor([0, 1])
    assert branch.values(store, ids).tolist() == [[1, -1], [0, 1]]
    branch.hide(["B"])
    assert branch.values(store, ids).tolist() == [[1, 0], [0, 0]]
    branch.hide(())
    assert branch.values(other, ids).tolist() == [[0, 0], [0, 0]]
    assert branch(store, ids).shape == (2, 4)
    with pytest.raises(fa.FewshotError, match="2 assays"):
        AssayProfileBranch(["A"]).set_table(store, torch.zeros(2, 2, dtype=torch.int8))


def test_branch_hides_only_an_episodes_molecules_in_its_own_assay():
    branch = AssayProfileBranch(["A", "B", "C"], hidden=4)
    store = object()
    branch.set_table(store, torch.tensor([[1, -1, 1], [1, 1, -1], [-1, 1, 1]],
                                         dtype=torch.int8))
    ids = torch.tensor([0, 1, 2])
    # episode of A with molecules 0, 1; episode of C with molecule 2; "V" is no column
    branch.hide(["A", "C", "V"], [np.array([0, 1]), np.array([2]), np.array([0])])
    assert branch.values(store, ids).tolist() == [[0, -1, 1], [0, 1, -1], [-1, 1, 0]]
    branch.hide(())
    assert branch.values(store, ids).tolist() == [[1, -1, 1], [1, 1, -1], [-1, 1, 1]]


def test_meta_training_hides_each_episodes_own_labels(ds, tmp_path, monkeypatch):
    from fewshot_apps.core.fit import train_learner

    calls = []
    real = AssayProfileBranch.hide

    def spy(self, names, examples=None):
        calls.append((list(names), examples))
        return real(self, names, examples)

    monkeypatch.setattr(AssayProfileBranch, "hide", spy)
    settings = {"steps": 2, "eval_every": 2, "encoder.assay_profile": "true",
                "encoder.hidden": "16", "encoder.out_dim": "8", "encoder.depth": "1",
                "shots": 1, "n_query": 2, "valid_draws": 1, "meta_batch_size": 2}
    train_learner(ds, "protonet", tmp_path / "model", settings, progress=False)
    steps = [(names, examples) for names, examples in calls if names]
    assert len(steps) == 2 and len(calls) == 4  # each step's episodes, then () again
    molecules = {t.name: set(np.asarray(t.examples).tolist()) for t in ds.taskset.train}
    for names, examples in steps:
        assert len(names) == len(examples) == 2  # one id array per episode
        for name, ids in zip(names, examples):
            assert set(ids.tolist()) <= molecules[name] and len(ids) >= 3


@pytest.mark.parametrize("kind", ["gnn", "fingerprint"])
def test_encoder_reads_the_training_assays_and_hides_them(ds, kind):
    ids = _ids(ds)
    enc = ds.make_encoder({"kind": kind, "assay_profile": "true", "hidden": "16",
                           "out_dim": "8", "profile_hidden": "8"})
    enc.eval()
    assert enc.config()["profile_assays"] == [t.name for t in ds.taskset.train]
    mols = torch.tensor([ids["CCO"], ids["CCN"]])
    seen = enc(mols)
    with tasks_hidden(enc, enc.config()["profile_assays"]):
        hidden = enc(mols)
        assert enc.profile_branch.values(ds.store, mols).abs().sum() == 0
    assert not torch.allclose(seen, hidden)
    assert torch.allclose(enc(mols), seen)  # visible again after the block
    with pretraining_hidden(enc, ["A"]):
        assert enc.profile_branch.values(ds.store, mols)[:, :].ne(0).sum() < 4


def test_saved_profile_encoder_gets_its_table_back(ds, tmp_path):
    from fewshot_apps.core.fit import train_learner

    assert ds.make_encoder({}).profile_branch is None  # off by default
    out = tmp_path / "model"
    settings = {"steps": 2, "eval_every": 1, "encoder.assay_profile": "true",
                "encoder.hidden": "16", "encoder.out_dim": "8", "encoder.depth": "1",
                "shots": 1, "n_query": 2, "valid_draws": 1}
    train_learner(ds, "protonet", out, settings, progress=False)
    loaded = fa.load_model(out, dataset=ds)
    ids = _ids(ds)
    mols = torch.tensor([ids["CCO"], ids["CCN"]])
    branch = loaded.encoder.profile_branch
    assert branch.values(ds.store, mols).tolist() == [[1, 1], [-1, 1]]
    # your own molecules: scored, and told that the profile reads nothing for them
    support = pd.DataFrame({"smiles": ["CCO", "CCN", "CCCC", "CCCN"], "label": [1, 0, 1, 0]})
    out = fa.predict_assay(loaded, support, ["CCS", "CCF"])
    assert out["probability"].notna().all()
    assert "reads every molecule as not measured" in out.attrs["description"]
    assert branch.values(ds.store, mols).tolist() == [[1, 1], [-1, 1]]  # restored after


def test_label_profile_learns_which_training_assay_the_new_one_follows(ds):
    ids = _ids(ds)
    model = ds.build_baseline("label-profile")
    assert model.describe()["settings"]["C"] == 0.1
    # support: CCO active, CCN inactive -> T follows assay A; CCBr (inactive in A) scores low
    query = [ids["CCBr"], ids["CCC"]]
    scores = model.fit_predict([ids["CCO"], ids["CCN"]], [1, 0], query)
    assert scores.shape == (2,) and np.all((scores >= 0) & (scores <= 1))
    assert scores[0] < 0.5
    assert model.fit_predict([ids["CCO"]], [1], query).tolist() == [1.0, 1.0]
    with pytest.raises(fa.FewshotError, match="molecule ids outside"):
        model.fit_predict([ids["CCO"], ids["CCN"]], [1, 0], [10_000])
