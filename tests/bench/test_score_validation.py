"""benchmarks/score_validation.py: each kind of draw asked for becomes the validator's
episode settings for that kind (balanced K-shot or stratified N), whatever the data set's
defaults."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pytest

from fewshot_apps.core.tasks import BalancedSampler, StratifiedSampler
from fewshot_apps.domains.molecules.adapter import EPISODE_DEFAULTS, _validation_draw

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "score_validation.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("score_validation", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_kind_of_draw_reaches_the_validator_as_asked(script):
    kinds = script.draw_kinds(argparse.Namespace(shots=8, support_size=16))
    assert [label for label, _ in kinds] == ["balanced 8-shot", "stratified 16"]
    # over a model's own episode settings (trained on stratified 64, validated on 16)
    trained = {**EPISODE_DEFAULTS, "shots": None, "support_size": 64, "valid_support_size": 16}
    (make_balanced, k), (make_stratified, n) = (_validation_draw({**trained, **episode})
                                                for _, episode in kinds)
    assert (make_balanced(k), make_stratified(n)) == (BalancedSampler(8), StratifiedSampler(16))
    assert script.draw_kinds(argparse.Namespace(shots=None, support_size=None)) == []
