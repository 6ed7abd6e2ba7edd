"""evaluate refuses a saved model whose training (or validation) tasks include the suite's
test tasks: the model records its split in tasks.json."""

from __future__ import annotations

import gzip
import json
import re

import pytest

from fewshot_apps.bench.runner import evaluate_saved_model
from fewshot_apps.cli import main
from fewshot_apps.core.fit import train_learner
from fewshot_apps.domains.molecules.dataset import load_molecule_dataset
from fewshot_apps.errors import FewshotError

TINY = {"steps": 1, "eval_every": 1, "encoder.hidden": 8, "encoder.depth": 1,
        "encoder.out_dim": 8, "encoder.ecfp_hidden": 8, "valid_draws": 1, "device": "cpu"}


@pytest.fixture(scope="module")
def own_tox21_csv(tmp_path_factory, data_dir):
    """Tox21 as a CSV of one's own: same name (its stem) and assays, a random task split."""
    path = tmp_path_factory.mktemp("own") / "tox21.csv"
    with gzip.open(data_dir / "moleculenet" / "tox21.csv.gz", "rb") as f:
        path.write_bytes(f.read())
    return path


def test_a_model_trained_on_the_suites_test_tasks_is_refused(own_tox21_csv, tmp_path, capsys):
    ds = load_molecule_dataset(own_tox21_csv, progress=False)  # the seed-0 random split
    assert ds.name == "tox21"
    leaked = [t for t in ("SR-HSE", "SR-MMP", "SR-p53") if t in ds.split["train"]]
    assert leaked == ["SR-HSE", "SR-MMP"] and ds.split["valid"] == ["SR-p53"]
    train_learner(ds, "protonet", tmp_path / "m", TINY, progress=False)
    with pytest.raises(FewshotError, match=(
            rf"^{re.escape(str(tmp_path / 'm'))}: was trained on 2 of the suite tox21's 3 test tasks \(SR-HSE, "
            r"SR-MMP\) and selected on 1 more \(SR-p53\); .*Evaluate it on a suite whose "
            "test tasks it has not seen")):
        evaluate_saved_model(tmp_path / "m", "tox21", tmp_path / "ev", preset="smoke")
    assert not (tmp_path / "ev").exists()  # a refused model leaves no output folder
    code = main(["evaluate", "--model", str(tmp_path / "m"), "--suite", "tox21", "--preset",
                 "smoke", "--out", str(tmp_path / "ev")])
    assert code == 2
    assert "was trained on 2 of the suite tox21's 3 test tasks" in capsys.readouterr().err


def test_an_ensemble_with_a_member_trained_on_the_test_tasks_is_refused(own_tox21_csv,
                                                                        tmp_path):
    from fewshot_apps.core.ensemble import save_ensemble

    leaky = load_molecule_dataset(own_tox21_csv, progress=False)  # tests on SR-HSE, ... in train
    clean = load_molecule_dataset(own_tox21_csv, progress=False,
                                  test_assays=["SR-HSE", "SR-MMP", "SR-p53"])
    train_learner(leaky, "protonet", tmp_path / "leaky", TINY, progress=False)
    train_learner(clean, "anil", tmp_path / "clean", TINY, progress=False)
    save_ensemble([tmp_path / "clean", tmp_path / "leaky"], tmp_path / "ens")
    with pytest.raises(FewshotError, match=(
            rf"^{re.escape(str(tmp_path / 'ens'))}: was trained on 2 of the suite tox21's 3 "
            r"test tasks \(SR-HSE, SR-MMP\) and selected on 1 more \(SR-p53\)")):
        evaluate_saved_model(tmp_path / "ens", "tox21", tmp_path / "ev", preset="smoke")


def test_the_same_csv_split_on_the_suites_test_tasks_is_accepted(own_tox21_csv, tmp_path,
                                                                  capsys):
    ds = load_molecule_dataset(own_tox21_csv, progress=False,
                               test_assays=["SR-HSE", "SR-MMP", "SR-p53"])
    train_learner(ds, "protonet", tmp_path / "m", TINY, progress=False)
    summary = evaluate_saved_model(tmp_path / "m", "tox21", tmp_path / "ev", preset="smoke")
    assert len(summary)
    assert json.loads((tmp_path / "ev" / "run.json").read_text())["split_checked"] is True
    report = (tmp_path / "ev" / "report.md").read_text()
    assert (f"Scored without training: the saved model `{tmp_path / 'm'}` (protonet, trained "
            "on tox21).\n") in report and "could not be checked" not in report

    # The same model as saved before splits were recorded: scored, with a warning.
    (tmp_path / "m" / "tasks.json").unlink()
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    del config["tasks"]
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.warns(UserWarning, match="records no training split.*cannot be checked"):
        evaluate_saved_model(tmp_path / "m", "tox21", tmp_path / "ev2", preset="smoke")
    assert json.loads((tmp_path / "ev2" / "run.json").read_text())["split_checked"] is False
    assert ("saved without its training tasks, so that none of them is a test task here "
            "could not be checked") in (tmp_path / "ev2" / "report.md").read_text()
    capsys.readouterr()
    assert main(["evaluate", "--model", str(tmp_path / "m"), "--suite", "tox21", "--preset",
                 "smoke", "--out", str(tmp_path / "ev3")]) == 0
    err = capsys.readouterr().err  # the CLI says it in one plain line, no source location
    assert "warning: " in err and "cannot be checked" in err and "UserWarning" not in err


def test_a_rating_model_trained_on_the_suites_test_users_is_refused(tmp_path, data_dir):
    from fewshot_apps.domains.recsys.dataset import load_recsys_dataset

    other = load_recsys_dataset("movielens-latest-small", data_dir=data_dir, seed=1)
    suite_ds = load_recsys_dataset("movielens-latest-small", data_dir=data_dir)
    seen = [t.name for t in suite_ds.taskset.test
            if t.name in {u.name for u in other.taskset.train}]
    assert seen  # another user split: some of the suite's test users are training users
    settings = {k: v for k, v in TINY.items() if k not in ("valid_draws", "encoder.ecfp_hidden")}
    train_learner(other, "cnp", tmp_path / "m", settings, progress=False)
    with pytest.raises(FewshotError, match=(
            rf"was trained on {len(seen)} of the suite movielens-latest-small's "
            rf"{len(suite_ds.taskset.test)} test users \({seen[0]}, ")):
        evaluate_saved_model(tmp_path / "m", "movielens-latest-small", tmp_path / "ev",
                             preset="smoke")
