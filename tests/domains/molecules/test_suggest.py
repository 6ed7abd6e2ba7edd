"""The batch selection of `mol suggest`: strategies, the diversity penalty, rows never picked."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fewshot_apps.domains.molecules.predict import featurize_assay
from fewshot_apps.domains.molecules.suggest import (
    base_scores,
    fingerprints,
    select,
    suggestions_table,
)
from fewshot_apps.errors import FewshotError

SUPPORT = ["FC(F)F", "c1ccncc1"]  # far from every candidate below


def run_select(smiles, p, budget, **options):
    canonical, fps = fingerprints(smiles)
    support_canonical, support_fps = fingerprints(SUPPORT)
    return select(np.asarray(p, dtype=float), fps, canonical, support_fps, support_canonical,
                  budget, **options)


def picked(selection) -> list[int]:
    """Row indices in pick order."""
    order = np.argsort(selection.pick)
    return [int(i) for i in order if selection.pick[i] > 0]


POOL = ["CCO", "CCN", "CCCl", "CC(=O)O", "OCCO"]


def test_greedy_picks_the_top_probabilities():
    chosen = run_select(POOL, [0.2, 0.9, 0.5, 0.7, 0.1], 3, strategy="greedy")
    assert picked(chosen) == [1, 3, 2]
    assert np.allclose(chosen.score[[1, 3, 2]], [0.9, 0.7, 0.5])


def test_uncertainty_picks_those_nearest_one_half():
    chosen = run_select(POOL, [0.2, 0.9, 0.52, 0.45, 0.05], 2, strategy="uncertainty")
    assert picked(chosen) == [2, 3]
    assert chosen.score[2] == pytest.approx(0.52 * 0.48)


def test_ucb_score_is_p_plus_beta_sd():
    p = np.array([0.5, 0.9])
    assert np.allclose(base_scores(p, "ucb", beta=2.0), p + 2.0 * np.sqrt(p * (1 - p)))
    # beta 0 is greedy; a large beta favours the uncertain one
    assert picked(run_select(["CCO", "CCN"], p, 1, strategy="ucb", beta=0.0,
                             diversity=0.0)) == [1]
    assert picked(run_select(["CCO", "CCN"], p, 1, strategy="ucb", beta=3.0,
                             diversity=0.0)) == [0]


# two near-identical high-probability phenols and one different molecule
NEAR = ["CCCCCCCCc1ccc(O)cc1", "CCCCCCCCCc1ccc(O)cc1", "OC(=O)CN"]
NEAR_P = [0.70, 0.69, 0.60]  # ucb keeps this order


def test_diversity_moves_the_second_pick_off_a_near_duplicate():
    without = run_select(NEAR, NEAR_P, 2, strategy="ucb", diversity=0.0)
    assert picked(without) == [0, 1]
    with_penalty = run_select(NEAR, NEAR_P, 2, strategy="ucb", diversity=0.5)
    assert picked(with_penalty) == [0, 2]
    # the near-duplicate's similarity counts the first pick (a Tanimoto well above the rest)
    assert with_penalty.similarity[1] > 0.7
    assert with_penalty.similarity[2] < 0.3
    # greedy takes the same penalty when asked
    assert picked(run_select(NEAR, NEAR_P, 2, strategy="greedy", diversity=0.5)) == [0, 2]
    assert picked(run_select(NEAR, NEAR_P, 2, strategy="greedy")) == [0, 1]


def test_support_molecules_invalid_rows_and_repeats_are_never_picked():
    smiles = ["OCC", "CCO", "C1CC(", "CCN", "NCC"]  # OCC = CCO; NCC = CCN
    canonical, fps = fingerprints(smiles)
    assert canonical[2] is None and fps[2] is None
    support_canonical, support_fps = fingerprints(["CCO", "CCCC"])
    p = np.array([0.99, 0.98, np.nan, 0.5, 0.4])
    chosen = select(p, fps, canonical, support_fps, support_canonical, 10, strategy="greedy")
    assert list(chosen.pick) == [0, 0, 0, 1, 0]
    assert "a support molecule" in chosen.excluded[0]
    assert "a support molecule" in chosen.excluded[1]
    assert chosen.excluded[4] == "not suggested: the same molecule as pick 1"
    assert np.isnan(chosen.similarity[2]) and np.isnan(chosen.score[2])


def test_bad_options_are_errors():
    with pytest.raises(FewshotError, match="--budget 0"):
        run_select(POOL, [0.5] * 5, 0)
    with pytest.raises(FewshotError, match="--strategy 'best'"):
        run_select(POOL, [0.5] * 5, 1, strategy="best")
    with pytest.raises(FewshotError, match="--diversity -1"):
        run_select(POOL, [0.5] * 5, 1, diversity=-1)


def test_table_keeps_every_row_in_order_with_reasons():
    predictions = pd.DataFrame({
        "id": ["a", "b", "c", "d"],
        "smiles": ["CCCCCCCCc1ccc(O)cc1", "c1ccccc", "CCCCCCCCCc1ccc(O)cc1", "OC(=O)CN"],
        "probability": [0.7, np.nan, 0.69, 0.6],
        "rank": [1, None, 2, 3],
        "error": ["", "SMILES Parse Error", "", ""],
        "warning": ["", "", "", ""],
        "model": "rf",
    })
    molecules = featurize_assay(SUPPORT, predictions["smiles"].tolist())
    table, lines = suggestions_table(predictions, molecules, 5)
    assert list(table["id"]) == ["a", "b", "c", "d"]
    assert list(table.columns) == ["id", "smiles", "probability", "uncertainty", "similarity",
                                   "score", "pick", "reason", "error", "warning", "model",
                                   "strategy"]
    assert table["pick"].tolist()[0] == 1 and pd.isna(table["pick"].iat[1])
    assert table["error"].iat[1] == "SMILES Parse Error" and table["reason"].iat[1] == ""
    assert table["reason"].iat[0].startswith("p=0.70 + 1*sd=0.46 - 0.5*sim=")
    assert any("budget 5 is more than the 3" in line for line in lines)
    again, _ = suggestions_table(predictions, molecules, 5)
    pd.testing.assert_frame_equal(table, again)
