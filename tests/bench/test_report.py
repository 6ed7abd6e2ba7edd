"""Paired comparisons: signs, wins and losses, the test chosen by the number of tasks."""

import numpy as np
import pandas as pd

from fewshot_apps.bench.report import paired_comparisons
from fewshot_apps.bench.runner import RESULT_COLUMNS


def _results(n_tasks: int, values: dict[str, tuple[str, float]], metric: str) -> pd.DataFrame:
    """One row per learner, task and draw; ``values``: learner -> (family, offset)."""
    rng = np.random.default_rng(0)
    rows = []
    for t in range(n_tasks):
        task_level = rng.normal()
        for learner, (family, offset) in values.items():
            for draw in range(3):
                rows.append({"suite": "s", "dataset": "d", "task": f"t{t}", "learner": learner,
                             "family": family, "shots": pd.NA, "support_size": 10,
                             "item_split": "all", "draw": draw, "seed": 0, "metric": metric,
                             "value": task_level + offset + 0.01 * rng.normal()})
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def test_lower_is_better_and_named_baseline():
    learners = {"maml": ("optimizer", 0.70), "item-mean": ("classic", 0.74),
                "mf": ("classic", 0.80)}
    comp = paired_comparisons(_results(12, learners, "mae"), "cold-start", named_baseline="mf")
    assert set(comp["baseline"]) == {"item-mean", "mf"}  # the best, and the named one
    row = comp[(comp["learner"] == "maml") & (comp["baseline"] == "mf")].iloc[0]
    assert row["wins"] == 12 and row["losses"] == 0
    assert np.isclose(row["mean_difference"], -0.10, atol=0.01)  # in the metric's own sign
    assert row["test"] == "Wilcoxon signed-rank" and row["p_value"] < 0.001
    worse = comp[(comp["learner"] == "mf") & (comp["baseline"] == "item-mean")].iloc[0]
    assert worse["losses"] == 12


def test_few_tasks_use_a_paired_bootstrap():
    learners = {"protonet": ("metric", 0.05), "rf": ("classic", 0.0)}
    comp = paired_comparisons(_results(3, learners, "roc_auc"), "k-shot")
    row = comp.iloc[0]
    assert row["test"] == "paired bootstrap (task x draw)" and row["n_tasks"] == 3
    low, high = (float(x) for x in row["ci95"].strip("[]").split(","))
    assert 0 < low < 0.05 < high
