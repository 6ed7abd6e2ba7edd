"""`fewshot-apps mol suggest` end to end on the files in examples/ (the README's command)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fewshot_apps.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SUPPORT = str(EXAMPLES / "assay_support.csv")
CANDIDATES = str(EXAMPLES / "candidates.csv")


def suggest(tmp_path, *extra: str) -> pd.DataFrame:
    out = tmp_path / "next.csv"
    assert main(["mol", "suggest", "--support", SUPPORT, "--candidates", CANDIDATES,
                 "--out", str(out), "--quiet", *extra]) == 0
    return pd.read_csv(out, keep_default_na=False, na_values=[""])


def test_mol_suggest_readme_command(tmp_path, capsys):
    table = suggest(tmp_path, "--budget", "5")
    err = capsys.readouterr().err
    assert "strategy: ucb (p + 1*sqrt(p(1-p)), minus 0.5 x max Tanimoto" in err
    assert "suggested 5 of 15 candidate(s) to measure next" in err
    assert f"wrote 15 candidates (5 picked, 1 with errors) to {tmp_path / 'next.csv'}" in err
    source = pd.read_csv(CANDIDATES)
    assert table["compound_id"].tolist() == source["compound_id"].tolist()  # every row, in order
    assert list(table.columns) == ["compound_id", "name", "smiles", "probability",
                                   "uncertainty", "similarity", "score", "pick", "reason",
                                   "error", "warning", "model", "calibrated", "strategy"]
    assert sorted(table["pick"].dropna().astype(int)) == [1, 2, 3, 4, 5]
    broken = table[table["name"] == "broken ring"].iloc[0]
    assert broken["error"].startswith("SMILES Parse Error") and pd.isna(broken["pick"])
    assert (table["model"] == "rf").all() and (table["strategy"] == "ucb").all()
    # picks come in order of their score at pick time
    picks = table.dropna(subset=["pick"]).sort_values("pick")
    assert picks["score"].is_monotonic_decreasing
    assert picks["reason"].str.match(r"p=0\.\d\d \+ 1\*sd=0\.\d\d - 0\.5\*sim=0\.\d\d$").all()


def test_mol_suggest_greedy_is_the_top_probabilities_and_deterministic(tmp_path, capsys):
    table = suggest(tmp_path, "--budget", "3", "--strategy", "greedy", "--seed", "3")
    top = table.sort_values("probability", ascending=False, kind="stable").head(3)
    assert top["pick"].astype(int).tolist() == [1, 2, 3]
    again = suggest(tmp_path, "--budget", "3", "--strategy", "greedy", "--seed", "3")
    pd.testing.assert_frame_equal(table, again)


def test_mol_suggest_budget_above_the_pool_picks_all_valid(tmp_path, capsys):
    table = suggest(tmp_path, "--budget", "40", "--strategy", "uncertainty")
    assert sorted(table["pick"].dropna().astype(int)) == list(range(1, 15))
    assert "budget 40 is more than the 14 candidate(s) that can be picked: all 14 picked" in (
        capsys.readouterr().err)


def test_mol_suggest_to_stdout(capsys):
    assert main(["mol", "suggest", "--support", SUPPORT, "--candidates",
                 str(EXAMPLES / "candidates.smi"), "--budget", "2"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0] == ("smiles,name,probability,uncertainty,similarity,"
                                            "score,pick,reason,error,warning,model,"
                                            "calibrated,strategy")
    assert "suggested 2 of" in captured.err
