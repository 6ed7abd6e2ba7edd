"""bench: a ``mean-ensemble`` learner averages learners the same run trained (its ``members``
setting), is evaluated and compared like any learner, and says what it needs when a member
is missing."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from fewshot_apps.bench.runner import evaluate_saved_model, run_suite
from fewshot_apps.errors import FewshotError

SUITE = """
name = "mine"
dataset = "tox21"
protocol = "k-shot"
learners = [{learners}]
train_shots = 3
baseline = "rf"

[presets.smoke]
steps = 2
draws = 1
seeds = [0]
max_test_tasks = 1
query_limit = 200
settings = {{ "encoder.hidden" = 8, "encoder.depth" = 1, "encoder.out_dim" = 8, "eval_every" = 2, "valid_draws" = 1 }}

[learner_settings.mean-ensemble]
members = "protonet,finetune"
"""


def write(tmp_path, learners: str):
    path = tmp_path / "mine.toml"
    path.write_text(SUITE.format(learners=learners))
    return str(path)


def test_an_ensemble_of_the_runs_learners_is_scored_beside_them(tmp_path):
    suite = write(tmp_path, '"protonet", "finetune", "mean-ensemble", "rf"')
    out = tmp_path / "run"
    run_suite(suite, out, preset="smoke", device="cpu", progress=False)
    results = pd.read_csv(out / "results.csv")
    ensemble = results[results["learner"] == "mean-ensemble"]
    assert len(ensemble) and set(ensemble["family"]) == {"ensemble"}
    # a meta-learner and a transfer baseline averaged on the same draws: the Brier score is
    # convex in the probability, so the mean's is at most the mean of theirs
    brier = results[results["metric"] == "brier"].groupby("learner")["value"].mean()
    assert brier["mean-ensemble"] <= (brier["protonet"] + brier["finetune"]) / 2 + 1e-9
    timings = json.loads((out / "timings.json").read_text())
    assert timings["mine|tox21|mean-ensemble"]["members"] == ["protonet", "finetune"]
    assert ("none of its own: the mean of protonet, finetune, each with its calibration"
            in (out / "report.md").read_text())
    comparisons = pd.read_csv(out / "comparisons.csv")
    assert "mean-ensemble" in set(comparisons["learner"])  # tested against the baseline like others
    saved = json.loads((out / "models" / "mean-ensemble" / "config.json").read_text())
    assert [m["learner"] for m in saved["learner"]["members"]] == ["protonet", "finetune"]
    # the saved ensemble scores as it did in the run
    evaluate_saved_model(out / "models" / "mean-ensemble", suite, tmp_path / "ev", preset="smoke")
    again = pd.read_csv(tmp_path / "ev" / "results.csv")
    pd.testing.assert_series_equal(again["value"].reset_index(drop=True),
                                   ensemble["value"].reset_index(drop=True), rtol=1e-5)


def test_an_ensemble_whose_members_are_not_trained_says_so(tmp_path):
    suite = write(tmp_path, '"mean-ensemble", "protonet", "finetune"')
    with pytest.raises(FewshotError, match=r"models/protonet: no saved model there, and the "
                                           r"ensemble in .* needs it as a member; train that "
                                           "learner first"):
        run_suite(suite, tmp_path / "run", learners=["mean-ensemble"], preset="smoke",
                  device="cpu", progress=False)
