"""The public Python API: `import fewshot_apps as fa` -> load, train, load_model,
predict_assay, recommend, run_suite. Models here are tiny (a few training steps, or untrained
and saved) so the file runs in seconds; the notebooks train for real."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fewshot_apps as fa
from fewshot_apps.errors import DataError, FewshotError

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"

ACTIVE = ["Oc1ccc(Sc2ccc(O)cc2)cc1", "CC(c1ccc(O)cc1)c1ccc(O)cc1", "Cc1ccc(C(C)(C)C)c(O)c1"]
INACTIVE = ["CC(Cl)C(Cl)Cl", "Brc1ccccc1-c1ccccc1", "CCCCCCCCS(=O)(=O)Cl"]


def support_frame(active=ACTIVE, inactive=INACTIVE) -> pd.DataFrame:
    return pd.DataFrame({"smiles": list(active) + list(inactive),
                         "label": [1] * len(active) + [0] * len(inactive)})


# ------------------------------------------------------------------------- fixtures: models


@pytest.fixture(scope="module")
def ml():
    return fa.load_dataset("movielens-latest-small")


@pytest.fixture(scope="module")
def mol_model_dir(tmp_path_factory):
    """An untrained protonet on the molecule encoder, saved as `mol train` saves models."""
    import torch

    from fewshot_apps.core.learners import build_learner
    from fewshot_apps.core.persistence import save_model
    from fewshot_apps.domains.molecules.encoder import MoleculeEncoder
    from fewshot_apps.domains.molecules.featurizer import FeaturizerConfig

    torch.manual_seed(0)
    encoder = MoleculeEncoder(hidden=16, depth=1, out_dim=16, ecfp_hidden=16)
    learner = build_learner("protonet", encoder, "classification")
    out = tmp_path_factory.mktemp("mol-model")
    save_model(learner, out, {"dataset": "tox21", "featurizer": asdict(FeaturizerConfig()),
                              "encoder": encoder.config()})
    return out


@pytest.fixture(scope="module")
def rec_model_dir(ml, tmp_path_factory):
    """An untrained attention learner on the item graph, saved as `rec train` saves models."""
    import torch

    from fewshot_apps.core.learners import build_learner
    from fewshot_apps.core.persistence import save_model
    from fewshot_apps.domains.recsys.encoder import ItemGraphEncoder

    torch.manual_seed(0)
    encoder = ItemGraphEncoder(ml.graph, hidden=8, depth=1, out_dim=8)
    learner = build_learner("attention", encoder, "regression")
    out = tmp_path_factory.mktemp("rec-model")
    save_model(learner, out, {"dataset": ml.name, "encoder": encoder.config(),
                              "item_vocab": ml.item_vocab.to_dict()})
    return out


# ------------------------------------------------------------------------- the package


def test_import_is_light_and_names_resolve():
    code = ("import sys, fewshot_apps as fa; "
            "heavy = [m for m in ('torch', 'rdkit', 'torch_geometric', 'pandas') if m in sys.modules]; "
            "assert not heavy, heavy; assert fa.__version__ == '0.1.0'; "
            "assert 'predict_assay' in dir(fa) and 'recommend' in fa.__all__")
    subprocess.run([sys.executable, "-c", code], check=True)
    from fewshot_apps import api

    for name in ("load_dataset", "load_tasks", "train_learner", "load_model", "predict_assay",
                 "recommend", "run_suite"):
        assert getattr(fa, name) is getattr(api, name)
    with pytest.raises(AttributeError):
        fa.no_such_name  # noqa: B018


# ------------------------------------------------------------------------- molecules


def test_predict_assay_rf_keeps_every_row_in_order():
    query = pd.DataFrame({"id": ["q3", "q1", "q2", "q4"], "note": ["a", "b", "c", "d"],
                          "smiles": ["CCO", "C1CC(", "Oc1ccc(O)cc1", ""]}, index=[7, 5, 3, 1])
    out = fa.predict_assay(None, support_frame(), query)
    assert list(out.index) == [7, 5, 3, 1]
    assert list(out["id"]) == ["q3", "q1", "q2", "q4"] and list(out["note"]) == list("abcd")
    assert list(out.columns) == ["id", "note", "smiles", "probability", "rank", "error",
                                 "warning", "model", "calibrated"]
    assert not out["calibrated"].any() and out.attrs["calibrated"] is False
    assert out["error"].iloc[1] and "empty" in out["error"].iloc[3]
    assert out["probability"].iloc[[1, 3]].isna().all() and out["rank"].iloc[[1, 3]].isna().all()
    valid = out.iloc[[0, 2]]
    assert valid["probability"].between(0, 1).all() and (valid["error"] == "").all()
    assert sorted(valid["rank"].tolist()) == [1, 2]
    # The phenol is closer to the active support molecules than ethanol.
    assert out["probability"].iloc[2] > out["probability"].iloc[0]
    assert out.attrs["model"] == "rf" and (out["model"] == "rf").all()
    assert "random forest" in out.attrs["description"]


def test_predict_assay_from_files_and_lists():
    out = fa.predict_assay("rf", EXAMPLES / "assay_support.csv", EXAMPLES / "candidates.csv")
    candidates = pd.read_csv(EXAMPLES / "candidates.csv")
    assert list(out["compound_id"]) == list(candidates["compound_id"])
    bad = out[out["error"] != ""]
    assert list(bad["name"]) == ["broken ring"] and "unclosed ring" in bad["error"].iloc[0]
    assert out.attrs["n_support"] == 20
    (row, smiles, why), = out.attrs["skipped_support"]
    assert row == 22 and "valence" in why.lower()
    assert any("support row 22 skipped" in line for line in out.attrs["report"])
    listed = fa.predict_assay("knn", EXAMPLES / "assay_support.csv", ["CCO", "CCN"])
    assert list(listed["smiles"]) == ["CCO", "CCN"] and listed.attrs["model"] == "knn"
    smi = fa.predict_assay(None, EXAMPLES / "assay_support.csv", EXAMPLES / "candidates.smi")
    assert list(smi["name"]) == ["aspirin", "triclosan", "broken-ring", "ethanol"]


def test_user_columns_named_like_ours_are_kept():
    query = pd.DataFrame({"smiles": ["CCO"], "probability": ["theirs"]})
    out = fa.predict_assay(None, support_frame(), query)
    assert out["input_probability"].iloc[0] == "theirs" and 0 <= out["probability"].iloc[0] <= 1


@pytest.mark.parametrize("support, message", [
    (support_frame(inactive=[]), "every valid support molecule is active"),
    (support_frame(active=ACTIVE[:1], inactive=[]), "1 valid molecule"),
    (support_frame(active=["C1CC(", "xyz"], inactive=["C(C)(C)(C)(C)C"]),
     "none of the 3 support SMILES could be parsed"),
    (support_frame(active=ACTIVE, inactive=["C1CC("]), "every valid support molecule is active"),
])
def test_unusable_support_is_an_error_before_any_model(support, message):
    with pytest.raises(DataError, match=message):
        fa.predict_assay(None, support, ["CCO"])


def test_bad_label_names_the_file_and_row(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("smiles,label\nCCO,1\nCCN,maybe\nCCC,0\n")
    with pytest.raises(DataError, match=r"labels\.csv, row 3: label 'maybe'"):
        fa.predict_assay(None, path, ["CCO"])
    path.write_text("smiles,assay_x,notes\nCCO,1,a\nCCN,0,b\n")  # label column by content
    assert fa.predict_assay(None, path, ["CCO"]).attrs["n_support"] == 2
    path.write_text("smiles,notes\nCCO,a\n")
    with pytest.raises(DataError, match="no label column"):
        fa.predict_assay(None, path, ["CCO"])


def test_unknown_model_argument_is_a_clear_error(tmp_path):
    with pytest.raises(FewshotError, match="no saved model folder"):
        fa.predict_assay(str(tmp_path / "nothing"), support_frame(), ["CCO"])


def test_saved_molecule_model_adapts_to_the_support(mol_model_dir):
    model = fa.load_model(mol_model_dir)
    before = model.encoder.store
    out = fa.predict_assay(model, support_frame(), ["CCO", "bad(", "Oc1ccc(O)cc1"])
    assert out.attrs["model"] == "protonet" and "meta-learned" in out.attrs["description"]
    assert out["probability"].iloc[[0, 2]].between(0, 1).all() and out["error"].iloc[1]
    assert model.encoder.store is before  # the user's molecules are not left in the model
    again = fa.predict_assay(str(mol_model_dir), support_frame(), ["CCO", "bad(", "Oc1ccc(O)cc1"])
    np.testing.assert_allclose(again["probability"], out["probability"])


def test_saved_model_takes_other_adaptation_settings(mol_model_dir):
    model = fa.load_model(mol_model_dir, learner_settings={"distance": "mahalanobis"})
    assert model.config.distance == "mahalanobis" and fa.load_model(
        mol_model_dir).config.distance == "sqeuclidean"
    out = fa.predict_assay(model, support_frame(), ["CCO", "Oc1ccc(O)cc1"])
    assert out["probability"].between(0, 1).all()
    with pytest.raises(FewshotError, match="distance"):
        fa.load_model(mol_model_dir, learner_settings={"distance": "cosine-ish"})


def test_models_refuse_the_other_domain(mol_model_dir, rec_model_dir, ml):
    with pytest.raises(FewshotError, match="not a molecule model"):
        fa.predict_assay(fa.load_model(rec_model_dir, dataset=ml), support_frame(), ["CCO"])
    with pytest.raises(FewshotError, match="not ratings"):
        fa.recommend(fa.load_model(mol_model_dir), pd.DataFrame({"item": [1], "rating": [4]}),
                     dataset=ml)


def test_train_learner_on_your_own_assay_csv(tmp_path):
    raw = pd.read_csv(EXAMPLES / "assay_support.csv")
    rng = np.random.default_rng(0)
    smiles = raw["smiles"].tolist()[:20]
    rows = [{"smiles": s, "assay": f"A{a}", "label": int(rng.random() < 0.5)}
            for a in range(4) for s in smiles]
    for a in range(4):  # both classes in every assay
        rows[a * 20]["label"], rows[a * 20 + 1]["label"] = 1, 0
    path = tmp_path / "assays.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    tasks = fa.load_tasks(path, test_assays=["A3"])
    assert [t.name for t in tasks.test] == ["A3"] and len(tasks.train) + len(tasks.valid) == 3
    ds = fa.load_dataset(path, test_assays=["A3"])
    model = fa.train_learner(ds, "protonet", tmp_path / "run",
                             {"steps": 2, "eval_every": 2, "encoder.hidden": 8,
                              "encoder.depth": 1, "k_shot": 2, "n_query": 4, "valid_draws": 1})
    assert (tmp_path / "run" / "model.pt").exists() and model.train_result.steps_run == 2
    out = fa.predict_assay(model, support_frame(), ["CCO", "CCN"])
    assert out["probability"].notna().all() and model.encoder.store is ds.store


# ------------------------------------------------------------------------- recommendation


RATINGS = pd.DataFrame({"movieId": [260, 1196, 2571, 999999], "rating": [5, 5, 4.5, 4]})


@pytest.mark.parametrize(("learner", "settings", "message"), [
    ("maml", {"learner.inner_lr": "-1"}, r"learner 'maml': option inner_lr=-1.0: must be at least 0"),
    ("maml", {"learner.bogus": "1"}, r"learner 'maml': unknown option\(s\) bogus"),
    ("protonet", {"lr": "0"}, r"training: option lr=0.0: must be greater than 0"),
    ("finetune", {}, r"unknown learner 'finetune'; known: .*protonet"),
])
def test_train_from_source_refuses_bad_settings_before_loading_the_data(
        tmp_path, monkeypatch, learner, settings, message):
    from fewshot_apps import api

    def not_loaded(*args, **kwargs):
        raise AssertionError("the data set was loaded before the settings were checked")

    # these failed only after the data set was loaded and featurized (minutes for FS-Mol)
    monkeypatch.setattr(api, "load_dataset", not_loaded)
    with pytest.raises(FewshotError, match=message):
        api.train_from_source("tox21", learner, tmp_path / "run", settings, progress=False)


def test_default_recommender_excludes_rated_and_reports_unknown(ml):
    out = fa.recommend(None, RATINGS, k=10, dataset=ml)
    assert list(out.columns) == ["rank", "item", "title", "score", "model"]
    assert list(out["rank"]) == list(range(1, 11))
    assert not set(out["item"]) & {260, 1196, 2571}
    assert out["score"].is_monotonic_decreasing and out["title"].str.len().gt(0).all()
    assert out.attrs["unknown_items"] == [("", 5, "999999")]
    assert any("999999" in line and "unknown" in line for line in out.attrs["report"])
    assert out.attrs["model"] == "popularity-similarity"
    assert "Star Wars: Episode VI - Return of the Jedi (1983)" in set(out["title"])
    kept = fa.recommend("default", RATINGS, k=5, dataset=ml, exclude_rated=False)
    assert len(kept) == 5


def test_one_list_per_user(ml):
    ratings = pd.read_csv(EXAMPLES / "users_ratings.csv")
    out = fa.recommend(None, ratings, k=4, dataset=ml)
    assert list(out.columns[:2]) == ["user", "rank"]
    assert list(dict.fromkeys(out["user"])) == ["scifi-fan", "romance-fan"]
    for user, group in out.groupby("user"):
        rated = set(ratings.loc[ratings["userId"] == user, "movieId"])
        assert len(group) == 4 and not set(group["item"]) & rated
    first = out[out["user"] == "scifi-fan"]["item"].tolist()
    assert first != out[out["user"] == "romance-fan"]["item"].tolist()


def test_rating_problems_are_clear(ml):
    with pytest.raises(FewshotError, match="no item id in the ratings is known"):
        fa.recommend(None, pd.DataFrame({"item": [999998, 999999], "rating": [4, 5]}),
                     dataset=ml)
    with pytest.raises(DataError, match=r"row 3: rating 7 is outside"):
        fa.recommend(None, pd.DataFrame({"item": [1, 2], "rating": [4, 7]}), dataset=ml)
    with pytest.raises(DataError, match=r"row 2: rating 'great' .* not a number"):
        fa.recommend(None, pd.DataFrame({"item": [1], "rating": ["great"]}), dataset=ml)
    with pytest.raises(DataError, match="no item column"):
        fa.recommend(None, pd.DataFrame({"thing": [1], "rating": [4]}), dataset=ml)
    with pytest.raises(FewshotError, match="at least 1"):
        fa.recommend(None, RATINGS, k=0, dataset=ml)


def test_saved_rec_model_recommends_and_caches_item_embeddings(rec_model_dir, ml):
    model = fa.load_model(rec_model_dir, dataset=ml)
    out = fa.recommend(model, RATINGS, k=7)
    assert len(out) == 7 and not set(out["item"]) & {260, 1196, 2571}
    assert out.attrs["model"] == "attention" and np.isfinite(out["score"]).all()
    assert out.attrs["unknown_items"] == [("", 5, "999999")]
    scorer = model._fewshot_scorer
    fa.recommend(model, RATINGS, k=7)
    assert model._fewshot_scorer is scorer  # item embeddings computed once per model
    assert "_fewshot_scorer" not in str(list(model.state_dict()))
    by_path = fa.recommend(str(rec_model_dir), RATINGS, k=7, dataset=ml)
    assert list(by_path["item"]) == list(out["item"])


def test_named_baseline_recommends(ml):
    out = fa.recommend("mf", RATINGS, k=5, dataset=ml)
    assert out.attrs["model"] == "mf" and len(out) == 5
    # its 90% interval, fitted on the validation users
    assert list(out.columns) == ["rank", "item", "title", "score", "rating_low", "rating_high",
                                 "model"]
    assert (out["rating_low"] <= out["score"]).all() and (out["score"] <= out["rating_high"]).all()
    assert any(line.startswith("rating_low, rating_high: the 90% split-conformal interval")
               for line in out.attrs["report"])
    with pytest.raises(FewshotError, match="nor one of"):
        fa.recommend("no-such-model", RATINGS, dataset=ml)


def test_train_learner_on_ratings_then_recommend(ml, tmp_path):
    model = fa.train_learner(ml, "attention", tmp_path / "run",
                             {"steps": 2, "eval_every": 2, "encoder.hidden": 8,
                              "encoder.depth": 1, "encoder.out_dim": 8})
    out = fa.recommend(model, RATINGS, k=3)
    assert len(out) == 3 and out.attrs["model"] == "attention"
    assert model.saved_config["dataset"] == ml.name
    # the 90% interval of the predicted rating, fitted on validation users and saved
    assert model.saved_config["calibration"]["method"] == "conformal"
    q = model.saved_config["calibration"]["half_width"]
    assert {"rating_low", "rating_high"} <= set(out.columns) and q > 0
    width = out["rating_high"] - out["rating_low"]
    assert (width > 0).all() and (width <= 2 * q + 1e-9).all()
    assert out["rating_low"].ge(ml.scale.low).all() and out["rating_high"].le(ml.scale.high).all()
    again = fa.recommend(fa.load_model(tmp_path / "run"), RATINGS, k=3)
    pd.testing.assert_frame_equal(again[["rating_low", "rating_high"]],
                                  out[["rating_low", "rating_high"]])


def test_run_suite_returns_the_summary(tmp_path):
    summary = fa.run_suite("movielens-latest-small", tmp_path / "bench", learners=["popularity"],
                           preset="smoke", device="cpu")
    assert isinstance(summary, pd.DataFrame) and set(summary["learner"]) == {"popularity"}
    assert (tmp_path / "bench" / "summary.csv").exists()
