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
