"""benchmarks/score_non_test_tasks.py's --grid: the learner settings replaced at evaluation."""

from __future__ import annotations

import pytest

from fewshot_apps.errors import FewshotError


@pytest.fixture(scope="module")
def script(benchmark_script):
    return benchmark_script("score_non_test_tasks")


def test_grid_is_every_combination_of_learner_settings(script):
    assert script.learner_grid([]) == [{}]
    assert script.learner_grid(["learner.fit_steps=0, 15", "learner.fit_lr=0.1"]) == [
        {"fit_steps": "0", "fit_lr": "0.1"}, {"fit_steps": "15", "fit_lr": "0.1"}]


@pytest.mark.parametrize("item", ["fit_steps=0", "encoder.hidden=8", "learner.fit_steps",
                                  "learner.=1", "learner.fit_steps="])
def test_grid_refuses_what_is_not_a_learner_setting(script, item):
    with pytest.raises(FewshotError, match="expected learner.KEY=V1,V2"):
        script.learner_grid([item])
