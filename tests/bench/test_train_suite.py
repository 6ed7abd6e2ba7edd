"""bench: a suite's ``train_suite`` trains its learners on another suite's data set (as that
suite trains them) and scores them on its own test tasks; classic baselines stay on its own
data. Here: trained on Tox21, tested on a CSV of other assays (smoke presets, seconds)."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from fewshot_apps.bench.runner import load_data, run_suite, trains_elsewhere
from fewshot_apps.bench.suites import load_suites
from fewshot_apps.core.persistence import load_model, read_model_config
from fewshot_apps.errors import CardError, FewshotError

SMOKE = """
[presets.smoke]
steps = 2
pretrain_steps = 2
draws = 1
seeds = [0]
max_test_tasks = 1
query_limit = 200
settings = { "encoder.hidden" = 8, "encoder.depth" = 1, "encoder.out_dim" = 8, "eval_every" = 2, "valid_draws" = 1 }
"""

SOURCE = """
name = "source"
dataset = "tox21"
protocol = "k-shot"
learners = ["protonet"]
[learner_settings.protonet]
"encoder.kind" = "fingerprint"
""" + SMOKE

TARGET = """
name = "target"
dataset = "{csv}"
protocol = "k-shot"
shots = [10]
train_suite = "{source}"
learners = ["protonet", "finetune", "rf"]
baseline = "rf"
""" + SMOKE


@pytest.fixture(scope="module")
def suites(tmp_path_factory):
    folder = tmp_path_factory.mktemp("suites")
    (folder / "source.toml").write_text(SOURCE)
    # "Your own assays": Tox21's first 2,000 molecules under other assay names, as a CSV.
    frame = pd.read_csv(load_data("tox21").card.root / "moleculenet" / "tox21.csv.gz",
                        nrows=2000)
    labels = [c for c in frame.columns if c not in ("smiles", "mol_id")]
    frame = frame[["smiles", *labels]].rename(
        columns={c: f"assay-{i}" for i, c in enumerate(labels)})
    frame.to_csv(folder / "mine.csv", index=False)
    (folder / "target.toml").write_text(TARGET.replace("{source}", str(folder / "source.toml"))
                                        .replace("{csv}", str(folder / "mine.csv")))
    return folder


@pytest.fixture(scope="module")
def run(suites, tmp_path_factory):
    out = tmp_path_factory.mktemp("target-run")
    run_suite(str(suites / "target.toml"), out, preset="smoke", device="cpu", progress=False)
    return out


def test_the_suite_names_its_training_suite(suites):
    (target,) = load_suites(str(suites / "target.toml"), "smoke")
    assert target.train_suite == str(suites / "source.toml")
    assert trains_elsewhere(target, "protonet") and trains_elsewhere(target, "finetune")
    assert not trains_elsewhere(target, "rf")
    (muv,) = load_suites("muv-fsmol", "full")
    assert muv.train_suite == "fsmol-fingerprint" and muv.dataset == "muv"
    assert muv.baseline == "rf" and not load_suites("muv", "full")[0].train_suite


def test_learners_train_on_the_training_suites_data_and_are_scored_on_the_suites(run, suites):
    tox21_tasks = load_data("tox21").split
    for learner in ("protonet", "finetune"):
        config = read_model_config(run / "models" / learner)
        assert config["dataset"] == "tox21"
        record = json.loads((run / "models" / learner / "tasks.json").read_text())
        assert set(record["train"]) == set(tox21_tasks["train"])
    # the training suite's own learner settings: protonet reads fingerprints there
    assert read_model_config(run / "models" / "protonet")["encoder"]["name"] == "molecule-fingerprint"
    results = pd.read_csv(run / "results.csv")
    mine = load_data(str(suites / "mine.csv"))
    assert set(results["learner"]) == {"protonet", "finetune", "rf"}
    assert set(results["dataset"]) == {str(suites / "mine.csv")}  # the suite's label
    assert set(results["task"]) <= {t.name for t in mine.taskset.test}
    parts = json.loads((run / "run.json").read_text())["parts"]
    assert parts[0]["train_suite"].endswith("source.toml")
    report = (run / "report.md").read_text()
    assert "were trained by the suite `" in report and "source.toml`" in report


def test_a_trained_model_put_in_models_is_reused_not_retrained(run, suites, tmp_path):
    """The training suite's own run's models/<learner> (same preset, same seed) serve as-is."""
    out = tmp_path / "again"
    shutil.copytree(run / "models" / "protonet", out / "models" / "protonet")
    before = (out / "models" / "protonet" / "train_log.jsonl").read_text()
    run_suite(str(suites / "target.toml"), out, learners=["protonet"], preset="smoke",
              device="cpu", progress=False)
    assert (out / "models" / "protonet" / "train_log.jsonl").read_text() == before
    rows = pd.read_csv(out / "results.csv")
    assert set(rows["learner"]) == {"protonet"}
    first = pd.read_csv(run / "results.csv")
    assert rows["value"].tolist() == first[first["learner"] == "protonet"]["value"].tolist()


def test_a_model_of_molecules_featurized_otherwise_is_refused(run):
    model = load_model(run / "models" / "protonet")
    model.saved_config = read_model_config(run / "models" / "protonet")
    model.saved_config["featurizer"] = {**model.saved_config["featurizer"], "ecfp_radius": 3}
    with pytest.raises(FewshotError, match="ecfp_radius=3.*tox21 featurizes them with "
                                           "ecfp_radius=2"):
        load_data("tox21").attach(model, "my-model")


@pytest.mark.parametrize("value, match", [
    ('"no-such-suite"', "train_suite 'no-such-suite': unknown suite"),
    ('"tox21-disjoint"', "not a composite suite"),
    ("3", "must be a suite's name"),
])
def test_a_bad_training_suite_is_refused_when_the_suite_loads(tmp_path, value, match):
    path = tmp_path / "bad.toml"
    path.write_text(TARGET.replace('"{source}"', value))
    with pytest.raises(CardError, match=match):
        load_suites(str(path), "smoke")
