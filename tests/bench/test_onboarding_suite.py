"""The movielens-onboarding suite's smoke preset end to end: every learner after every
strategy's interview, and the report's paired tests of each strategy against random."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from fewshot_apps.bench.runner import RESULT_COLUMNS, run_suite
from fewshot_apps.bench.suites import load_suites

LEARNERS = ["item-knn", "popularity", "mf", "cnp"]
STRATEGIES = ["random", "popular", "divisive", "informative"]


@pytest.fixture(scope="module")
def onboarding_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("onboarding")
    summary = run_suite("movielens-onboarding", out, preset="smoke", device="cpu",
                        progress=False)
    return out, summary


def test_the_suite_and_its_presets():
    for preset in ("smoke", "fast", "full"):
        parts = load_suites("movielens-onboarding", preset)
        assert {p.protocol for p in parts} == {"onboarding"}
        assert all(p.strategies == STRATEGIES and p.baseline == "random" for p in parts)
        assert all(p.support_sizes == [5, 10] and p.learners == LEARNERS for p in parts)
    assert len(load_suites("movielens-onboarding", "full")) == 5  # 5 user folds


def test_rows_of_every_learner_and_strategy(onboarding_run):
    out, summary = onboarding_run
    results = pd.read_csv(out / "results.csv")
    assert list(results.columns) == RESULT_COLUMNS
    assert set(results["learner"]) == {f"{n}+{s}" for n in LEARNERS for s in STRATEGIES}
    assert set(results["support_size"]) == {5, 10} and set(results["item_split"]) == {"all"}
    assert set(results["metric"]) == {"mae", "rmse", "recall@10", "ndcg@10"}
    assert results["task"].nunique() == 5 and results["value"].notna().all()
    cnp = summary[summary["learner"] == "cnp+informative"]
    assert cnp["train_seconds"].notna().all()  # timed per learner, whatever the strategy
    timings = json.loads((out / "timings.json").read_text())
    assert set(timings) == {f"movielens-onboarding|movielens-latest-small|{n}" for n in LEARNERS}


def test_the_report_compares_each_strategy_with_random_at_10(onboarding_run):
    out, _ = onboarding_run
    report = (out / "report.md").read_text()
    assert "## movielens-latest-small (onboarding protocol)" in report
    assert "support_size = the answers of a simulated interview" in report
    assert "### recall@10 per round (mean over test tasks; columns: answers)" in report
    assert ("### Paired comparison of each strategy with `random` at the last round "
            "(10 answers)") in report
    comparisons = pd.read_csv(out / "comparisons.csv")
    assert set(comparisons["support_size"]) == {10}
    assert set(comparisons["metric"]) == {"recall@10", "ndcg@10", "mae"}
    pairs = set(zip(comparisons["learner"], comparisons["baseline"]))
    assert pairs == {(f"{n}+{s}", f"{n}+random") for n in LEARNERS for s in STRATEGIES[1:]}
    assert (comparisons["n_tasks"] == 5).all()
    assert comparisons["test"].eq("paired bootstrap (task x draw)").all()  # < 10 users


def test_a_rerun_continues_without_recomputing(onboarding_run):
    out, _ = onboarding_run
    before = (out / "results.csv").read_text()
    run_suite("movielens-onboarding", out, preset="smoke", device="cpu", progress=False)
    assert (out / "results.csv").read_text() == before
