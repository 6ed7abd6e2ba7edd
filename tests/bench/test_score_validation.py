"""benchmarks/score_validation.py: each kind of draw asked for becomes the validator's
episode settings for that kind (balanced K-shot or stratified N), whatever the data set's
defaults."""

from __future__ import annotations

import argparse

import pytest

from fewshot_apps.core.tasks import BalancedSampler, StratifiedSampler
from fewshot_apps.domains.molecules.adapter import EPISODE_DEFAULTS, _validation_draw


@pytest.fixture(scope="module")
def script(benchmark_script):
    return benchmark_script("score_validation")


def test_each_kind_of_draw_reaches_the_validator_as_asked(script):
    kinds = script.draw_kinds(argparse.Namespace(shots=8, support_size=16))
    assert [label for label, _ in kinds] == ["balanced 8-shot", "stratified 16"]
    # over a model's own episode settings (trained on stratified 64, validated on 16)
    trained = {**EPISODE_DEFAULTS, "shots": None, "support_size": 64, "valid_support_size": 16}
    (make_balanced, k), (make_stratified, n) = (_validation_draw({**trained, **episode})
                                                for _, episode in kinds)
    assert (make_balanced(k), make_stratified(n)) == (BalancedSampler(8), StratifiedSampler(16))
    assert script.draw_kinds(argparse.Namespace(shots=None, support_size=None)) == []


def test_grid_scores_each_model_with_the_learner_settings_replaced(script, tmp_path,
                                                                   monkeypatch, capsys,
                                                                   tiny_assays_csv):
    from fewshot_apps.api import load_dataset, train_learner

    data = tiny_assays_csv
    ds = load_dataset(str(data), progress=False)
    train_learner(ds, "protonet", tmp_path / "m",
                  {"steps": 2, "encoder.hidden": 16, "encoder.depth": 1, "encoder.out_dim": 16,
                   "learner.distance": "mahalanobis"}, progress=False)

    def scores(*grid: str) -> list[str]:
        out = tmp_path / "scores.md"
        monkeypatch.setattr("sys.argv", ["score_validation.py", "--dataset", str(data),
                                         "--model", str(tmp_path / "m"), "--support-size", "8",
                                         "--draws", "2", *grid, "--out", str(out)])
        script.main()
        capsys.readouterr()
        return [line for line in out.read_text().splitlines() if line.startswith("| `")]

    (trained,) = scores()
    # the mean of a model with itself is that model: the same draws, scored as the validator does
    mean_row = scores("--model", str(tmp_path / "m"), "--mean")
    out = (tmp_path / "scores.md").read_text()
    (mean,) = [line for line in out.splitlines() if line.startswith("| mean probability")]
    assert mean.split(" | ")[1] == trained.split(" | ")[1] == mean_row[0].split(" | ")[1]
    with pytest.raises(SystemExit):
        scores("--mean")  # one model: nothing to average
    capsys.readouterr()
    as_trained, wider = scores("--grid", "learner.ridge=0.1,1000")
    assert as_trained.split(" | ")[0].endswith("ridge=0.1")
    assert wider.split(" | ")[0].endswith("ridge=1000")
    # the trained ridge (0.1) scores as the saved model does; another ridge is another model
    assert as_trained.split(" | ")[1] == trained.split(" | ")[1]
    assert wider.split(" | ")[1] != trained.split(" | ")[1]
