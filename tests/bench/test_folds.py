"""A preset's ``folds = N``: the suite runs once per fold (data set variants
``<dataset>:folds=N,fold=f``, each trained and evaluated on its own) and the summary, the
paired comparisons and the report pool the folds (``<dataset>:folds=N``), so that every
user with enough ratings is scored once, and paired tests run over all of them."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from fewshot_apps.bench.runner import evaluate_saved_model, run_suite
from fewshot_apps.bench.suites import load_suites, without_folds
from fewshot_apps.errors import CardError

N_EVALUABLE, N_SMALL, FOLDS = 24, 6, 3
LEARNERS = ["global-mean", "item-mean"]


def write_ratings(path):
    """24 users with 30-36 ratings (evaluated), 6 with 22 (meta-train only)."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(1, N_EVALUABLE + N_SMALL + 1):
        n = int(rng.integers(30, 37)) if u <= N_EVALUABLE else 22
        rows += [(f"u{u}", int(i), int(rng.integers(1, 6))) for i in
                 rng.choice(np.arange(1, 61), size=n, replace=False)]
    pd.DataFrame(rows, columns=["user", "item", "rating"]).to_csv(path, index=False)
    return path


def suite_text(ratings, folds: str = f"folds = {FOLDS}", options: str = "") -> str:
    return f'''name = "cv"
dataset = "{ratings}"
protocol = "cold-start"
learners = {json.dumps(LEARNERS)}
baseline = "global-mean"
{options}

[presets.smoke]
steps = 2
draws = 1
seeds = [0]
{folds}

[presets.fast]
steps = 2
draws = 1
seeds = [0]
'''


@pytest.fixture(scope="module")
def cv(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cv")
    ratings = write_ratings(folder / "ratings.csv")
    suite = folder / "cv.toml"
    suite.write_text(suite_text(ratings))
    out = folder / "out"
    summary = run_suite(str(suite), out, preset="smoke", device="cpu", progress=False)
    return suite, out, summary, ratings


def test_a_preset_with_folds_makes_one_variant_per_fold(cv):
    suite, *_ = cv
    parts = load_suites(str(suite), "smoke")
    assert [p.dataset_options for p in parts] == [{"folds": 3, "fold": f} for f in range(3)]
    assert [p.fold for p in parts] == [0, 1, 2]
    assert {p.pooled_label for p in parts} == {f"{parts[0].dataset}:folds=3"}
    assert parts[1].label == f"{parts[0].dataset}:folds=3,fold=1"
    (fast,) = load_suites(str(suite), "fast")  # a preset without folds: one data set
    assert fast.fold is None and not fast.dataset_options
    assert without_folds(parts) == [replace(parts[0], dataset_options={})]


def test_each_fold_is_trained_and_evaluated_on_its_own(cv):
    _, out, _, _ = cv
    results = pd.read_csv(out / "results.csv")
    labels = sorted(set(results["dataset"]))
    assert labels == [f"{labels[0].split(':')[0]}:folds=3,fold={f}" for f in range(3)]
    tested = results.groupby("dataset")["task"].agg(set)
    assert sum(len(t) for t in tested) == N_EVALUABLE  # each user in one fold only
    assert set().union(*tested) == {f"u{u}" for u in range(1, N_EVALUABLE + 1)}
    timings = json.loads((out / "timings.json").read_text())
    assert sorted(timings) == sorted(f"cv|{label}|{n}" for label in labels for n in LEARNERS)
    parts = json.loads((out / "run.json").read_text())["parts"]
    assert [p["dataset_options"] for p in parts] == [{"folds": 3, "fold": f} for f in range(3)]


def test_the_summary_and_paired_tests_pool_all_folds(cv):
    _, out, summary, _ = cv
    pooled = pd.read_csv(out / "summary.csv")
    (label,) = set(pooled["dataset"])
    assert set(summary["dataset"]) == {label}
    assert label.endswith(":folds=3")
    main = pooled[(pooled["metric"] == "mae") & (pooled["item_split"] == "all")]
    assert set(main["n_tasks"]) == {N_EVALUABLE} and set(main["learner"]) == set(LEARNERS)
    assert (main["train_seconds"].notna()).all()  # summed over the folds
    comparisons = pd.read_csv(out / "comparisons.csv")
    mae = comparisons[comparisons["metric"] == "mae"]
    assert set(mae["dataset"]) == {label} and set(mae["n_tasks"]) == {N_EVALUABLE}
    assert set(mae["test"]) == {"Wilcoxon signed-rank"}  # over all users, >= 10 of them
    results = pd.read_csv(out / "results.csv")
    mine = results[(results["metric"] == "mae") & (results["item_split"] == "all")
                   & (results["learner"] == "item-mean") & (results["support_size"] == 10)]
    per_user = mine.groupby("task")["value"].mean()
    row = main[(main["learner"] == "item-mean") & (main["support_size"] == 10)].iloc[0]
    assert row["mean"] == pytest.approx(per_user.mean())  # the pooled mean over every user
    report = (out / "report.md").read_text()
    assert report.count(f"## {label} (cold-start protocol") == 1
    assert "fold=" not in report


def test_a_rerun_continues_fold_by_fold(cv):
    suite, out, _, _ = cv
    before = (out / "results.csv").read_text()
    run_suite(str(suite), out, preset="smoke", device="cpu", progress=False)
    assert (out / "results.csv").read_text() == before


def test_a_saved_model_is_evaluated_on_the_suite_without_folds(cv, tmp_path):
    suite, out, _, ratings = cv
    from fewshot_apps import api

    ds = api.load_dataset(ratings)
    api.train_learner(ds, "cnp", tmp_path / "m", {
        "steps": 1, "device": "cpu", "encoder.hidden": 8, "encoder.depth": 1,
        "encoder.out_dim": 8})
    summary = evaluate_saved_model(tmp_path / "m", str(suite), tmp_path / "ev", preset="smoke")
    assert set(summary["dataset"]) == {str(ratings)}


def test_folds_and_fold_options_are_not_given_twice(cv, tmp_path):
    _, _, _, ratings = cv
    twice = tmp_path / "twice.toml"
    twice.write_text(suite_text(ratings, options="dataset_options = { fold = 1 }"))
    with pytest.raises(CardError, match="dataset_options fold are set by the preset's folds"):
        load_suites(str(twice), "smoke")
    one = tmp_path / "one.toml"
    one.write_text(suite_text(ratings, folds="folds = 1"))
    with pytest.raises(CardError, match="folds must be 2 or more, not 1"):
        load_suites(str(one), "smoke")
