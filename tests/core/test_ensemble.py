"""core/ensemble.py: a saved ensemble predicts the mean of its members' predictions, loads
and evaluates as any saved model does, and refuses members that cannot be averaged."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from fewshot_apps.api import load_dataset, train_learner
from fewshot_apps.cli import main
from fewshot_apps.core.domain import load_saved_model
from fewshot_apps.core.ensemble import Ensemble, save_ensemble
from fewshot_apps.core.evaluation import encoded_once
from fewshot_apps.core.persistence import load_model
from fewshot_apps.errors import FewshotError

TINY = {"steps": 2, "encoder.hidden": 16, "encoder.depth": 1, "encoder.out_dim": 16,
        "valid_draws": 1, "device": "cpu"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_assays_csv):
    """Two learners of different kinds trained (two steps) on one small assay CSV, and the
    data set: ``(dataset, csv path, {learner: model folder})``."""
    root = tmp_path_factory.mktemp("ensemble")
    data = tiny_assays_csv
    ds = load_dataset(str(data), progress=False)
    models = {}
    for learner in ("protonet", "dkt"):
        models[learner] = root / learner
        train_learner(ds, learner, models[learner], TINY, progress=False)
    return ds, data, models


def _episode(ds):
    task = ds.taskset.train[0]
    labels = np.asarray(task.labels)
    support = np.r_[np.flatnonzero(labels == 1)[:3], np.flatnonzero(labels == 0)[:3]]
    query = np.setdiff1d(np.arange(len(labels)), support)
    return task.examples[support], labels[support], task.examples[query]


def test_an_ensemble_predicts_the_mean_of_its_members(trained, tmp_path):
    ds, _, models = trained
    out = save_ensemble([models["protonet"], models["dkt"]], tmp_path / "ens")
    ensemble = load_saved_model(out, dataset=ds)
    assert isinstance(ensemble, Ensemble) and ensemble.member_names == ["protonet", "dkt"]
    support, labels, query = _episode(ds)
    members = [load_saved_model(models[m], dataset=ds).fit_predict(support, labels, query)
               for m in ("protonet", "dkt")]
    assert not np.allclose(members[0], members[1])  # two models, two answers
    mean = ensemble.fit_predict(support, labels, query)
    np.testing.assert_allclose(mean, (members[0] + members[1]) / 2, rtol=1e-6)
    # each member's encoder run once per task set gives the same predictions
    with encoded_once(ensemble, ds.taskset.train):
        np.testing.assert_allclose(ensemble.fit_predict(support, labels, query), mean,
                                   rtol=1e-5, atol=1e-7)

    # self-contained: the members are copied, the split is the union of theirs
    config = json.loads((out / "config.json").read_text())
    assert config["learner"]["family"] == "ensemble" and config["dataset"] == ds.name
    assert [m["folder"] for m in config["learner"]["members"]] == ["members/protonet",
                                                                  "members/dkt"]
    for member in ("protonet", "dkt"):
        assert (out / "members" / member / "model.pt").is_file()
    split = json.loads((out / "tasks.json").read_text())
    assert split["train"] == sorted(t.name for t in ds.taskset.train)
    moved = shutil.copytree(out, tmp_path / "elsewhere" / "ens")
    np.testing.assert_allclose(load_saved_model(moved, dataset=ds).fit_predict(
        support, labels, query), mean, rtol=1e-6)


def test_mol_predict_and_evaluate_take_an_ensemble(trained, tmp_path, capsys):
    ds, data, models = trained
    support = tmp_path / "support.csv"
    query = tmp_path / "query.csv"
    pd.DataFrame({"smiles": ["CO", "CCO", "CN", "CCN"], "label": [1, 1, 0, 0]}).to_csv(
        support, index=False)
    pd.DataFrame({"smiles": ["CCCO", "CCCN", "CCCCO", "not a smiles"]}).to_csv(query,
                                                                                index=False)
    assert main(["ensemble", "--model", str(models["protonet"]), "--model", str(models["dkt"]),
                 "--out", str(tmp_path / "ens")]) == 0
    assert "saved an ensemble of 2 models" in capsys.readouterr().out
    probabilities = {}
    for name, model in (("protonet", models["protonet"]), ("dkt", models["dkt"]),
                        ("ensemble", tmp_path / "ens")):
        out = tmp_path / f"{name}.csv"
        assert main(["mol", "predict", "--support", str(support), "--query", str(query),
                     "--model", str(model), "--out", str(out), "--quiet"]) == 0
        probabilities[name] = pd.read_csv(out)["probability"].to_numpy()
    said = "".join(capsys.readouterr())
    assert "meta-learned mean-ensemble of protonet + dkt" in said
    assert "probabilities: the mean of the members' (protonet calibrated by" in said
    np.testing.assert_allclose(probabilities["ensemble"][:3],
                               (probabilities["protonet"][:3] + probabilities["dkt"][:3]) / 2,
                               rtol=1e-5)
    assert np.isnan(probabilities["ensemble"][3])  # the invalid SMILES: kept, not scored

    # the suite protocol through the data set: every member adapts on the same draws
    rows, _ = ds.evaluate("k-shot", load_saved_model(tmp_path / "ens", dataset=ds),
                          split="valid", shots=(2,), draws=1, seeds=(0,))
    assert len(rows) and rows["value"].notna().all()


def test_members_that_cannot_be_averaged_are_refused(trained, tmp_path):
    ds, _, models = trained
    protonet, dkt = models["protonet"], models["dkt"]
    with pytest.raises(FewshotError, match="'mean-ensemble' is not trained: it averages "
                                           "trained models; save one with `fewshot-apps ensemble"):
        train_learner(ds, "mean-ensemble", tmp_path / "trained", TINY, progress=False)
    with pytest.raises(FewshotError, match="at least two member models, got 1"):
        save_ensemble([protonet], tmp_path / "one")
    other = shutil.copytree(dkt, tmp_path / "other-data")
    config = json.loads((other / "config.json").read_text())
    config["dataset"] = "muv"
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(FewshotError, match=r"other-data: its 'dataset' \('muv'\) differs from "
                                           r"that of .*protonet.*same data"):
        save_ensemble([protonet, other], tmp_path / "mixed")
    assert not (tmp_path / "mixed").exists()  # refused before anything is written
    unfinished = shutil.copytree(dkt, tmp_path / "unfinished")
    (unfinished / "model.pt").unlink()
    with pytest.raises(FewshotError, match="unfinished/model.pt: file not found"):
        save_ensemble([protonet, unfinished], tmp_path / "e")
    # a member's config edited to name its learner as a path: its copy stays in members/
    renamed = shutil.copytree(dkt, tmp_path / "renamed" / "deep" / "dkt")
    config = json.loads((renamed / "config.json").read_text())
    config["learner"]["name"] = "../../escaped"
    (renamed / "config.json").write_text(json.dumps(config))
    save_ensemble([protonet, renamed], tmp_path / "edited" / "ens")
    assert (tmp_path / "edited" / "ens" / "members" / "member" / "model.pt").is_file()
    assert not (tmp_path / "edited" / "escaped").exists()
    ens = save_ensemble([protonet, dkt], tmp_path / "ens")
    with pytest.raises(FewshotError, match="is itself an ensemble"):
        save_ensemble([ens, dkt], tmp_path / "nested")
    with pytest.raises(FewshotError, match="already holds a saved model"):
        save_ensemble([protonet, dkt], ens)
    with pytest.raises(FewshotError, match="an ensemble takes no learner settings"):
        load_saved_model(ens, dataset=ds, learner_settings={"fit_steps": 3})
    with pytest.raises(FewshotError, match="load it with fewshot_apps.load_model"):
        load_model(ens)  # the single-model loader says where to go instead
    config = json.loads((ens / "config.json").read_text())
    config["learner"]["members"][1]["folder"] = "../../unfinished"
    (ens / "config.json").write_text(json.dumps(config))
    with pytest.raises(FewshotError, match="is outside the ensemble's folder"):
        load_saved_model(ens, dataset=ds)
