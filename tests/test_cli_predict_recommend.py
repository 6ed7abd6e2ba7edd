"""`fewshot-apps mol predict` and `fewshot-apps rec recommend` end to end, on the files the
repository ships in examples/ (the README's copy-paste commands) and on bad input."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fewshot_apps.cli import main

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
SUPPORT = str(EXAMPLES / "assay_support.csv")
CANDIDATES = str(EXAMPLES / "candidates.csv")
RATINGS = str(EXAMPLES / "new_user_ratings.csv")


@pytest.fixture(scope="module")
def mol_model_dir(tmp_path_factory):
    """An untrained protonet saved as `mol train` saves models (weights + config)."""
    import torch

    from fewshot_apps.core.learners import build_learner
    from fewshot_apps.core.persistence import save_model
    from fewshot_apps.domains.molecules.encoder import MoleculeEncoder
    from fewshot_apps.domains.molecules.featurizer import FeaturizerConfig

    torch.manual_seed(0)
    encoder = MoleculeEncoder(hidden=16, depth=1, out_dim=16, ecfp_hidden=16)
    out = tmp_path_factory.mktemp("mol-model")
    save_model(build_learner("cnp", encoder, "classification"), out,
               {"dataset": "tox21", "featurizer": asdict(FeaturizerConfig()),
                "encoder": encoder.config()})
    return out


@pytest.fixture(scope="module")
def rec_model_dir(tmp_path_factory):
    import torch

    from fewshot_apps.core.learners import build_learner
    from fewshot_apps.core.persistence import save_model
    from fewshot_apps.domains.recsys.dataset import load_recsys_dataset
    from fewshot_apps.domains.recsys.encoder import ItemGraphEncoder

    ml = load_recsys_dataset("movielens-latest-small")
    torch.manual_seed(0)
    encoder = ItemGraphEncoder(ml.graph, hidden=8, depth=1, out_dim=8)
    out = tmp_path_factory.mktemp("rec-model")
    save_model(build_learner("maml", encoder, "regression"), out,
               {"dataset": ml.name, "encoder": encoder.config(),
                "item_vocab": ml.item_vocab.to_dict()})
    return out


# ------------------------------------------------------------------------- mol predict


def test_mol_predict_readme_command(tmp_path, capsys):
    out = tmp_path / "preds.csv"
    assert main(["mol", "predict", "--support", SUPPORT, "--query", CANDIDATES,
                 "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "model: rf (training-free ECFP random forest" in captured.err
    assert "support row 22 skipped: invalid SMILES" in captured.err
    assert f"wrote 15 predictions (1 with errors, 0 with warnings) to {out}" in captured.err
    assert "bisphenol A" in captured.out  # a preview of the top predictions

    preds = pd.read_csv(out, keep_default_na=False)
    candidates = pd.read_csv(CANDIDATES, keep_default_na=False)
    # every input row, in input order, with its own columns
    assert list(preds.columns) == [*candidates.columns, "probability", "rank", "error",
                                   "warning", "model", "calibrated"]
    assert not preds["calibrated"].astype(bool).any()  # a training-free rf: no validation
    assert "probabilities not calibrated: a training-free baseline" in captured.err
    pd.testing.assert_frame_equal(preds[candidates.columns], candidates)
    invalid = preds["smiles"] == "c1ccccc"
    assert preds.loc[invalid, "error"].str.contains("unclosed ring").all()
    assert (preds.loc[invalid, ["probability", "rank"]] == "").all(axis=None)
    valid = preds[~invalid]
    assert (valid["error"] == "").all() and set(preds["model"]) == {"rf"}
    probability = valid["probability"].astype(float)
    assert probability.between(0, 1).all()
    ranks = valid["rank"].astype(int)
    assert sorted(ranks) == list(range(1, 15))
    assert probability[ranks.idxmin()] == probability.max()


def test_mol_predict_smi_to_stdout_with_a_model(mol_model_dir, capsys):
    assert main(["mol", "predict", "--support", SUPPORT, "--query",
                 str(EXAMPLES / "candidates.smi"), "--model", str(mol_model_dir)]) == 0
    captured = capsys.readouterr()
    assert "model: cnp (meta-learned cnp meta-trained on tox21" in captured.err
    assert "probabilities not calibrated: the model was saved before" in captured.err
    lines = captured.out.strip().splitlines()
    assert lines[0] == "smiles,name,probability,rank,error,warning,model,calibrated"
    assert [line.split(",")[1] for line in lines[1:]] == ["aspirin", "triclosan",
                                                          "broken-ring", "ethanol"]
    assert "unclosed ring" in lines[3] and lines[1].endswith(",cnp,False")


def test_mol_predict_applies_the_models_calibration(mol_model_dir, tmp_path, capsys):
    """A model whose config records a temperature predicts sigmoid(logit / T)."""
    import json
    import shutil

    calibrated = tmp_path / "calibrated"
    shutil.copytree(mol_model_dir, calibrated)
    config = json.loads((calibrated / "config.json").read_text())
    config["calibration"] = {"method": "temperature", "temperature": 3.0,
                             "fitted_on": "validation", "n_predictions": 120}
    (calibrated / "config.json").write_text(json.dumps(config))
    tables = {}
    for name, model in (("raw", mol_model_dir), ("calibrated", calibrated)):
        out = tmp_path / f"{name}.csv"
        assert main(["mol", "predict", "--support", SUPPORT, "--query", CANDIDATES,
                     "--model", str(model), "--out", str(out), "--quiet"]) == 0
        tables[name] = pd.read_csv(out)
    err = capsys.readouterr().err
    assert "probabilities calibrated by temperature scaling (T = 3) fitted on 120 validation" \
        in err
    raw, cal = tables["raw"], tables["calibrated"]
    assert not raw["calibrated"].any() and cal["calibrated"].all()
    valid = raw["probability"].notna()
    p = raw.loc[valid, "probability"].to_numpy()
    expected = 1 / (1 + np.exp(-np.log(p / (1 - p)) / 3.0))
    np.testing.assert_allclose(cal.loc[valid, "probability"], expected, rtol=1e-4)
    assert list(cal.loc[valid, "rank"]) == list(raw.loc[valid, "rank"])  # same ranking


def test_mol_predict_explicit_columns(tmp_path, capsys):
    support = tmp_path / "s.csv"
    support.write_text("structure,hit,other\nOc1ccc(O)cc1,1,0\nCCCl,0,0\nOc1ccccc1,1,1\n")
    query = tmp_path / "q.csv"
    query.write_text("mol\nCCO\nOc1ccc(Cl)cc1\n")
    assert main(["mol", "predict", "--support", str(support), "--query", str(query),
                 "--smiles-column", "structure", "--label-column", "hit",
                 "--query-smiles-column", "mol", "--out", str(tmp_path / "p.csv"),
                 "--quiet"]) == 0
    assert list(pd.read_csv(tmp_path / "p.csv")["mol"]) == ["CCO", "Oc1ccc(Cl)cc1"]
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("content, message", [
    ("smiles,label\nCCO,1\nCCN,1\nCCC,1\n", "every valid support molecule is active (1)"),
    ("smiles,label\nCCO,1\n", "1 valid molecule"),
    ("smiles,label\nC1CC(,1\nxyz,0\n", "none of the 2 support SMILES could be parsed"),
    ("smiles,label\nCCO,1\nCCN,2\n", "s.csv, row 3: label '2' in column 'label' is not 0 or 1"),
    ("name,label\nx,1\n", "s.csv: no SMILES column"),
    ("name,label\nx,1\n", "pass the column name explicitly (--smiles-column)"),
    ("", "s.csv: the file is empty"),
])
def test_mol_predict_bad_support_is_a_clear_error(tmp_path, capsys, content, message):
    support = tmp_path / "s.csv"
    support.write_text(content)
    code = main(["mol", "predict", "--support", str(support), "--query", CANDIDATES,
                 "--out", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and message in err
    assert "Traceback" not in err and not (tmp_path / "p.csv").exists()


def test_mol_predict_missing_files_and_models(tmp_path, capsys):
    assert main(["mol", "predict", "--support", str(tmp_path / "nope.csv"),
                 "--query", CANDIDATES]) == 2
    assert "nope.csv: no such file" in capsys.readouterr().err
    # a folder given for a file is called one (it was "no such file", though it exists)
    for files in (["--support", str(tmp_path), "--query", CANDIDATES],
                  ["--support", SUPPORT, "--query", str(tmp_path)]):
        assert main(["mol", "predict", *files]) == 2
        assert capsys.readouterr().err.strip() == f"error: {tmp_path}: a folder, not a file"
    assert main(["rec", "recommend", "--ratings", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path}: a folder, not a file"
    assert main(["mol", "predict", "--support", SUPPORT, "--query", CANDIDATES,
                 "--model", str(tmp_path / "no-model")]) == 2
    assert "no saved model folder" in capsys.readouterr().err


# ------------------------------------------------------------------------- rec recommend


def test_rec_recommend_readme_command(tmp_path, capsys):
    out = tmp_path / "recs.csv"
    assert main(["rec", "recommend", "--ratings", RATINGS, "--top-k", "10",
                 "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "model: popularity-similarity (training-free default" in captured.err
    assert "1 item id(s) unknown to movielens-latest-small (not used): '999999' (row 7)" \
        in captured.err
    assert "Return of the Jedi" in captured.out  # the list is printed too

    recs = pd.read_csv(out)
    assert list(recs.columns) == ["rank", "item", "title", "score", "model"]
    assert list(recs["rank"]) == list(range(1, 11))
    rated = set(pd.read_csv(RATINGS)["movieId"])
    assert not set(recs["item"]) & rated  # rated items are excluded
    assert recs["score"].is_monotonic_decreasing and recs["title"].notna().all()


def test_rec_recommend_one_list_per_user(capsys):
    assert main(["rec", "recommend", "--ratings", str(EXAMPLES / "users_ratings.csv"),
                 "--top-k", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:3] == ["user", "rank", "item"]
    assert [line.split()[0] for line in lines[1:]] == ["scifi-fan"] * 3 + ["romance-fan"] * 3


def test_rec_recommend_with_a_saved_model(rec_model_dir, tmp_path, capsys):
    out = tmp_path / "recs.csv"
    assert main(["rec", "recommend", "--ratings", RATINGS, "--top-k", "5",
                 "--model", str(rec_model_dir), "--out", str(out), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "model: maml (meta-learned maml trained on movielens-latest-small" in captured.err
    assert "'999999'" in captured.err and captured.out == ""
    recs = pd.read_csv(out)
    assert len(recs) == 5 and set(recs["model"]) == {"maml"}
    assert not set(recs["item"]) & set(pd.read_csv(RATINGS)["movieId"])
    assert "rating_low" not in recs  # saved before calibrations: no interval


def test_rec_recommend_with_an_ensemble(rec_model_dir, tmp_path, capsys):
    """An ensemble of a rating model with a copy of itself ranks as that model does: each
    member reads the data set's item graph, and the mean of equal rankings is that ranking."""
    import shutil

    twin = shutil.copytree(rec_model_dir, tmp_path / "twin")
    assert main(["ensemble", "--model", str(rec_model_dir), "--model", str(twin),
                 "--out", str(tmp_path / "ens")]) == 0
    lists = {}
    for name, model in (("single", rec_model_dir), ("ensemble", tmp_path / "ens")):
        out = tmp_path / f"{name}.csv"
        assert main(["rec", "recommend", "--ratings", RATINGS, "--top-k", "5", "--model",
                     str(model), "--out", str(out), "--quiet"]) == 0
        lists[name] = pd.read_csv(out)
    assert "model: mean-ensemble" in capsys.readouterr().err
    assert lists["ensemble"]["item"].tolist() == lists["single"]["item"].tolist()
    assert set(lists["ensemble"]["model"]) == {"mean-ensemble"}


def test_rec_recommend_gives_the_models_90_percent_interval(rec_model_dir, tmp_path, capsys):
    import json
    import shutil

    model = tmp_path / "model"
    shutil.copytree(rec_model_dir, model)
    config = json.loads((model / "config.json").read_text())
    config["calibration"] = {"method": "conformal", "level": 0.9, "half_width": 0.75,
                             "fitted_on": "validation", "n_predictions": 600}
    (model / "config.json").write_text(json.dumps(config))
    out = tmp_path / "recs.csv"
    assert main(["rec", "recommend", "--ratings", RATINGS, "--top-k", "5",
                 "--model", str(model), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert ("rating_low, rating_high: the 90% split-conformal interval, prediction ± 0.75 "
            "fitted on 600 validation predictions") in captured.err
    recs = pd.read_csv(out)
    assert list(recs.columns) == ["rank", "item", "title", "score", "rating_low",
                                  "rating_high", "model"]
    np.testing.assert_allclose(recs["rating_low"], (recs["score"] - 0.75).clip(0.5, 5.0))
    np.testing.assert_allclose(recs["rating_high"], (recs["score"] + 0.75).clip(0.5, 5.0))
    assert "rating_low" in captured.out  # the preview shows them too


def test_rec_recommend_baseline_and_columns(tmp_path, capsys):
    ratings = tmp_path / "r.tsv"
    ratings.write_text("film\tstars\n1\t5\n2\t4\n")
    assert main(["rec", "recommend", "--ratings", str(ratings), "--model", "popularity",
                 "--item-column", "film", "--rating-column", "stars", "--top-k", "2"]) == 0
    captured = capsys.readouterr()
    assert "model: popularity" in captured.err and len(captured.out.strip().splitlines()) == 3


@pytest.mark.parametrize("content, message", [
    ("movieId,rating\n999999,4\n", "no item id in the ratings is known"),
    ("movieId,rating\n1,4\n2,six\n", "r.csv, row 3: rating 'six' in column 'rating' is not a number"),
    ("movieId,rating\n1,9\n", "r.csv, row 2: rating 9 is outside movielens-latest-small's"),
    ("title,rating\nx,4\n", "r.csv: no item column"),
])
def test_rec_recommend_bad_ratings_are_clear_errors(tmp_path, capsys, content, message):
    ratings = tmp_path / "r.csv"
    ratings.write_text(content)
    code = main(["rec", "recommend", "--ratings", str(ratings)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and message in err and "Traceback" not in err


def test_rec_recommend_min_item_ratings_leaves_out_rare_items(tmp_path, capsys):
    """item-mean ranks films rated once with 5 stars first; the filter leaves them out."""
    from fewshot_apps.api import load_dataset

    counts = dict(zip(*_item_counts(load_dataset("movielens-latest-small"))))
    lists = {}
    for n in (0, 20):
        out = tmp_path / f"top{n}.csv"
        assert main(["rec", "recommend", "--ratings", RATINGS, "--model", "item-mean",
                     "--min-item-ratings", str(n), "--top-k", "10", "--out", str(out),
                     "--quiet"]) == 0
        lists[n] = pd.read_csv(out)["item"].tolist()
    assert min(counts[i] for i in lists[0]) < 20  # what the option is for
    assert min(counts[i] for i in lists[20]) >= 20 and len(lists[20]) == 10
    assert "fewer than 20 training ratings were not considered" in capsys.readouterr().err
    assert main(["rec", "recommend", "--ratings", RATINGS, "--min-item-ratings", "-1"]) == 2


def _item_counts(ds):
    return [int(i) for i in ds.item_vocab.ids], ds.item_stats.count


# ------------------------------------------------------------------------- evaluate


def test_evaluate_refuses_a_model_of_the_other_domain(mol_model_dir, rec_model_dir, tmp_path,
                                                      capsys):
    # It was an AttributeError from inside the encoder (set_graph / set_store).
    for model, suite, theirs, mine in ((mol_model_dir, "movielens-latest-small", "molecules",
                                        "recsys"),
                                       (rec_model_dir, "tox21", "recsys", "molecules")):
        out = tmp_path / f"ev-{suite}"
        assert main(["evaluate", "--model", str(model), "--suite", suite, "--preset", "smoke",
                     "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"{model}: the model is of the {theirs} domain" in err
        assert f"a data set of the {mine} domain; give it a {theirs} data set or suite" in err
        assert not out.exists()
