"""The `active` protocol in the bench: suites with strategies, rows per learner and strategy,
the per-round report and the paired tests of each strategy against random."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fewshot_apps.bench.report import round_table, strategy_comparisons, summarize
from fewshot_apps.bench.runner import RESULT_COLUMNS, run_suite
from fewshot_apps.bench.suites import load_suites, split_learner_label
from fewshot_apps.errors import CardError

STRATEGIES = ["random", "greedy", "uncertainty", "ucb"]

# fsmol-active's smoke preset on tox21 (loads in seconds): 2 test tasks, 3 rounds.
TOX21_ACTIVE = """
name = "tox21-active"
dataset = "tox21"
protocol = "active"
support_sizes = [8, 16, 24, 32]
learners = ["protonet", "knn"]
train_support_size = 16

[presets.smoke]
steps = 4
pretrain_steps = 4
draws = 1
seeds = [0]
max_test_tasks = 2
query_limit = 200
support_sizes = [8, 16, 24]
settings = { "encoder.kind" = "fingerprint", "encoder.hidden" = 16, "encoder.out_dim" = 16, "eval_every" = 2, "valid_draws" = 1, "meta_batch_size" = 4, "n_query" = 16 }
"""


def test_the_fsmol_active_suite_loads():
    for preset in ("smoke", "fast", "full"):
        (suite,) = load_suites("fsmol-active", preset)
        assert suite.protocol == "active" and suite.dataset == "fsmol"
        assert suite.strategies == STRATEGIES and suite.baseline == "random"
        assert suite.settings_for("protonet")["encoder.kind"] == "fingerprint"
        assert suite.support_sizes[0] == 8 and np.all(np.diff(suite.support_sizes) == 8)
    assert load_suites("fsmol-active", "full")[0].support_sizes[-1] == 64
    assert load_suites("fsmol-active", "full")[0].preset.max_test_tasks is None  # all 157


def _suite_file(tmp_path, text: str):
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return str(path)


def test_strategies_are_checked(tmp_path):
    (suite,) = load_suites(_suite_file(tmp_path, TOX21_ACTIVE), "smoke")
    assert suite.strategies == STRATEGIES and suite.baseline == "random"  # the defaults
    mine = TOX21_ACTIVE.replace('protocol = "active"',
                                'protocol = "active"\nstrategies = ["greedy", "ucb"]')
    (suite,) = load_suites(_suite_file(tmp_path, mine), "smoke")
    assert suite.strategies == ["greedy", "ucb"] and suite.baseline is None
    for bad, message in ((["best"], "unknown strategies"), ("ucb", "non-empty list")):
        text = TOX21_ACTIVE.replace('protocol = "active"',
                                    f'protocol = "active"\nstrategies = {json.dumps(bad)}')
        with pytest.raises(CardError, match=message):
            load_suites(_suite_file(tmp_path, text), "smoke")
    text = TOX21_ACTIVE.replace('protocol = "active"', 'protocol = "active"\nbaseline = "rf"')
    with pytest.raises(CardError, match="baseline 'rf'.*the strategy the others are compared"):
        load_suites(_suite_file(tmp_path, text), "smoke")
    text = TOX21_ACTIVE.replace('protocol = "active"',
                                'protocol = "fsmol"\nstrategies = ["random"]')
    with pytest.raises(CardError, match="the fsmol protocol has no acquisition strategies"):
        load_suites(_suite_file(tmp_path, text), "smoke")


def test_smoke_run_end_to_end(tmp_path):
    suite = _suite_file(tmp_path, TOX21_ACTIVE)
    out = tmp_path / "out"
    run_suite(suite, out, preset="smoke", device="cpu", progress=False)
    results = pd.read_csv(out / "results.csv")
    assert list(results.columns) == RESULT_COLUMNS
    assert set(results["learner"]) == {f"{learner}+{strategy}" for learner in ("protonet", "knn")
                                       for strategy in STRATEGIES}
    assert set(results["support_size"]) == {8, 16, 24} and results["shots"].isna().all()
    assert {"actives_found", "actives_acquired", "roc_auc", "delta_auprc"} <= set(
        results["metric"])
    assert set(results["family"]) == {"metric", "classic"}
    timings = json.loads((out / "timings.json").read_text())  # timed per learner
    assert set(timings) == {"tox21-active|tox21|protonet", "tox21-active|tox21|knn"}
    summary = pd.read_csv(out / "summary.csv")
    assert summary.loc[summary["learner"] == "protonet+ucb", "train_seconds"].notna().all()
    report = (out / "report.md").read_text()
    assert "### actives_found per round" in report and "### delta_auprc per round" in report
    assert "| learner | strategy | 8 | 16 | 24 |" in report
    assert "| protonet | ucb |" in report and "| knn | random |" in report
    assert "Paired comparison of each strategy with `random` at the last round (24" in report
    comparisons = pd.read_csv(out / "comparisons.csv")
    assert set(comparisons["baseline"]) == {"protonet+random", "knn+random"}
    assert set(comparisons["support_size"]) == {24}
    assert len(comparisons) == 2 * 3 * 2  # learners x strategies other than random x metrics
    assert (out / "plot_tox21_actives_found.png").exists()
    before = (out / "results.csv").read_text()  # a rerun sees every learner done
    run_suite(suite, out, preset="smoke", device="cpu", progress=False)
    assert (out / "results.csv").read_text() == before


def _rows(n_tasks: int = 12) -> pd.DataFrame:
    """Synthetic results: protonet+greedy finds 2 more actives than protonet+random on every
    task at the last round (64), the same at 8; ucb ties random."""
    rows = []
    for task in range(n_tasks):
        for size in (8, 64):
            for strategy, extra in (("random", 0), ("greedy", 2), ("ucb", 0)):
                value = 3.0 + task % 3 + (extra if size == 64 else 0)
                rows.append({"suite": "s", "dataset": "fsmol", "task": f"t{task}",
                             "learner": f"protonet+{strategy}", "family": "metric",
                             "shots": np.nan, "support_size": size, "item_split": np.nan,
                             "draw": 0, "seed": 0, "metric": "actives_found", "value": value})
    return pd.DataFrame(rows)


def test_strategies_are_compared_with_random_at_the_last_round():
    comp = strategy_comparisons(_rows(), "active", "random")
    assert set(comp["metric"]) == {"actives_found"}  # delta_auprc: no rows here
    comp = comp.set_index("learner")
    assert set(comp.index) == {"protonet+greedy", "protonet+ucb"}
    assert set(comp["baseline"]) == {"protonet+random"} and set(comp["support_size"]) == {"64"}
    greedy = comp.loc["protonet+greedy"]
    assert greedy["mean_difference"] == 2.0 and greedy["wins"] == 12
    assert greedy["test"] == "Wilcoxon signed-rank" and greedy["p_value"] < 0.01
    assert comp.loc["protonet+ucb", "mean_difference"] == 0.0
    assert strategy_comparisons(_rows(), "active", None).empty


def test_round_table_has_a_column_per_round():
    table = round_table(summarize(_rows()), "actives_found")
    assert list(table.columns) == ["learner", "strategy", "8", "64"]
    assert list(table["strategy"]) == ["random", "greedy", "ucb"]
    assert table.set_index("strategy").loc["greedy", "64"] == table.set_index(
        "strategy").loc["random", "64"] + 2


def test_learner_labels():
    assert split_learner_label("protonet+ucb") == ("protonet", "ucb")
    assert split_learner_label("linear-probe") == ("linear-probe", None)
