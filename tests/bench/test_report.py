"""Paired comparisons: signs, wins and losses, the test chosen by the number of tasks."""

from html.parser import HTMLParser
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

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


def test_several_named_baselines_are_each_compared():
    learners = {"cnp": ("generator", 0.10), "label-profile": ("classic", 0.08),
                "label-prior": ("classic", 0.02), "rf": ("classic", -0.1),
                "finetune": ("transfer", 0.0)}
    comp = paired_comparisons(_results(3, learners, "roc_auc"), "k-shot",
                              named_baseline=["label-prior", "rf", "label-profile", "absent"])
    # the best (label-profile) once, then the other named ones that ran; finetune is not named
    assert set(comp["baseline"]) == {"label-profile", "label-prior", "rf"}
    mine = comp[comp["learner"] == "cnp"].set_index("baseline")["mean_difference"]
    assert np.allclose(mine[["label-profile", "label-prior", "rf"]], [0.02, 0.08, 0.20],
                       atol=0.02)


def test_few_tasks_use_a_paired_bootstrap():
    learners = {"protonet": ("metric", 0.05), "rf": ("classic", 0.0)}
    comp = paired_comparisons(_results(3, learners, "roc_auc"), "k-shot")
    row = comp.iloc[0]
    assert row["test"] == "paired bootstrap (task x draw)" and row["n_tasks"] == 3
    low, high = (float(x) for x in row["ci95"].strip("[]").split(","))
    assert 0 < low < 0.05 < high


# --------------------------------------------------------------------------- reports and plots


def _bounded_results() -> pd.DataFrame:
    """Three tasks far apart: a t-interval over them reaches past each metric's range."""
    rows = []
    for metric, values in {"roc_auc": [0.99, 0.3, 0.97], "mae": [0.1, 1.9, 0.2],
                           "delta_auprc": [0.9, -0.5, 0.8]}.items():
        for learner, family in (("protonet", "metric"), ("rf", "classic")):
            for t, value in enumerate(values):
                rows.append({"suite": "s", "dataset": "d", "task": f"t{t}", "learner": learner,
                             "family": family, "shots": 10, "support_size": 20,
                             "item_split": pd.NA, "draw": 0, "seed": 0, "metric": metric,
                             "value": value})
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def test_confidence_intervals_stay_inside_the_metric_range():
    from fewshot_apps.bench.report import metric_bounds, summarize

    summary = summarize(_bounded_results())
    for metric, (low, high) in {"roc_auc": (0, 1), "mae": (0, np.inf),
                                "delta_auprc": (-1, 1)}.items():
        rows = summary[summary["metric"] == metric]
        assert (rows["ci95_low"] >= low).all() and (rows["ci95_high"] <= high).all(), metric
        assert (rows["ci95_low"] <= rows["mean"]).all() and (rows["mean"] <= rows["ci95_high"]).all()
    roc = summary[summary["metric"] == "roc_auc"].iloc[0]
    assert roc["ci95_high"] == 1.0 and roc["ci95_low"] == 0.0  # both ends were past the range
    assert metric_bounds("recall@10") == (0.0, 1.0) and metric_bounds("ndcg@5") == (0.0, 1.0)
    assert metric_bounds("rmse") == (0.0, np.inf)


def test_plot_error_bars_are_clipped_even_for_an_unclipped_summary():
    from fewshot_apps.bench.report import _plot_points

    summary = pd.DataFrame({"learner": ["a", "a"], "support_size": ["16", "32"],
                            "item_split": ["", ""], "metric": ["roc_auc"] * 2,
                            "mean": [0.6, 0.9], "ci95_low": [-0.96, 0.5],
                            "ci95_high": [2.17, 1.3]})
    points, numeric = _plot_points(summary, "roc_auc")
    assert numeric and list(points["x"]) == [16.0, 32.0]
    assert np.allclose(points["mean"] - points["err_low"], [0.0, 0.5])
    assert np.allclose(points["mean"] + points["err_high"], [1.0, 1.0])


def test_plot_with_support_sizes_that_are_labels():
    """The MeLU protocol's support size is 'melu': plotted as a label, not a number."""
    from fewshot_apps.bench.report import _plot, _plot_points

    summary = pd.DataFrame({"learner": ["a", "b", "a"], "support_size": ["melu", "melu", "5"],
                            "item_split": ["all"] * 3, "metric": ["mae"] * 3,
                            "mean": [0.8, 0.9, 0.7], "ci95_low": [0.7, 0.8, 0.6],
                            "ci95_high": [0.9, 1.0, 0.8]})
    points, numeric = _plot_points(summary, "mae")
    assert not numeric
    assert dict(zip(points["label"], points["x"])) == {"5": 0.0, "melu": 1.0}
    assert _plot(summary, "mae", "d: mae").startswith(b"\x89PNG")


class _Tables(HTMLParser):
    """Header cells and body rows of each table in a page."""

    def __init__(self):
        super().__init__()
        self.tables, self.images, self._where, self._cell = [], [], None, None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append({"header": [], "rows": []})
        elif tag in ("thead", "tbody"):
            self._where = tag
        elif tag == "tr" and self._where == "tbody":
            self.tables[-1]["rows"].append([])
        elif tag in ("th", "td"):
            self._cell = ""
        elif tag == "img":
            self.images.append(dict(attrs).get("src", ""))

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("th", "td"):
            if self._where == "thead":
                self.tables[-1]["header"].append(self._cell.strip())
            else:
                self.tables[-1]["rows"][-1].append(self._cell.strip())
            self._cell = None


def test_html_report_has_real_tables_and_the_plots(tmp_path):
    from fewshot_apps.bench.report import summarize, write_reports

    results = _bounded_results()
    summary = summarize(results)
    part = SimpleNamespace(name="s", dataset="d", protocol="k-shot", baseline="rf",
                           published="none")
    run_info = {"suite": "s", "preset": "smoke", "machine": "m", "device": "cpu",
                "git_revision": "abc", "data_dir": str(tmp_path)}
    write_reports(tmp_path, results, summary, [part], run_info, tmp_path)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    parsed = _Tables()
    parsed.feed(page)
    measured, comparison = parsed.tables  # roc_auc summary, paired comparison
    assert measured["header"] == ["learner", "family", "shots", "support_size", "item_split",
                                  "mean", "ci95_low", "ci95_high", "n_tasks", "n_draws",
                                  "train_seconds"]
    roc = summary[summary["metric"] == "roc_auc"]
    assert len(measured["rows"]) == len(roc) == 2
    assert [row[0] for row in measured["rows"]] == list(roc["learner"])
    assert all(len(row) == len(measured["header"]) for row in measured["rows"])
    assert measured["rows"][0][2] == "10" and measured["rows"][0][6] == "0.0000"
    assert comparison["header"][:3] == ["dataset", "shots", "support_size"]
    assert len(comparison["rows"]) == 1 and comparison["rows"][0][5] == "protonet"
    assert len(parsed.images) == 1 and parsed.images[0].startswith("data:image/png;base64,")
    assert (tmp_path / "plot_d_roc_auc.png").exists()
    assert "overflow-x: auto" in page and 'class="table-scroll"' in page


def test_pooled_ece_sums_the_bins_over_tasks_and_draws_before_taking_the_gap():
    """Two draws' bins that are each off by 10 actives in opposite bins pool into one table
    per learner and support size; the pooled ECE is |observed - predicted| summed over the
    pooled bins, over every prediction."""
    from fewshot_apps.bench.report import pooled_ece

    rows = pd.DataFrame({
        "learner": ["a", "a", "a", "a", "b"],
        "support_size": [16, 16, 16, 64, 16],
        "bin": [3, 3, 12, 3, 3],
        "n": [100, 100, 50, 40, 10],
        "sum_probability": [20.0, 20.0, 40.0, 8.0, 2.0],
        "sum_label": [30.0, 20.0, 40.0, 8.0, 2.0]})
    pooled = pooled_ece(rows).set_index(["learner", "support_size"])
    assert pooled.loc[("a", 16), "ece_pooled"] == pytest.approx(10 / 250)
    assert pooled.loc[("a", 16), "n"] == 250
    assert pooled.loc[("a", 64), "ece_pooled"] == 0.0
    assert pooled.loc[("b", 16), "ece_pooled"] == 0.0
    assert pooled_ece(rows.iloc[:0]).empty
