"""Bad-input corpus, `mol suggest`: bad options and files end in one error line (exit 2) that
names the option or the file (and row); inputs that run keep every row, with the reason a row
is not picked. Inputs are tiny files written in tmp_path; the API and the CLI run in-process.
"""

from __future__ import annotations

import re

import pytest

import fewshot_apps as fa
from fewshot_apps.cli import main
from fewshot_apps.errors import DataError, FewshotError

GOOD_SUPPORT = "smiles,label\nOc1ccc(O)cc1,1\nOc1ccccc1,1\nCCCl,0\nCCCC,0\n"
GOOD_QUERY = "id,smiles\nq1,Oc1ccc(Cl)cc1\nq2,CCCBr\n"


def write(path, content: str):
    path.write_text(content, encoding="utf-8")
    return path


CASES = {
    # id: (support, candidates file name and content, extra options, message)
    "budget 0": (GOOD_SUPPORT, ("q.csv", GOOD_QUERY), ["--budget", "0"],
                 r"--budget 0: the number of molecules to measure must be a whole number of "
                 r"at least 1"),
    "negative budget": (GOOD_SUPPORT, ("q.csv", GOOD_QUERY), ["--budget", "-3"],
                        r"--budget -3"),
    "negative diversity": (GOOD_SUPPORT, ("q.csv", GOOD_QUERY),
                           ["--budget", "1", "--diversity", "-0.5"],
                           r"--diversity -0\.5: must be a number >= 0"),
    "negative beta": (GOOD_SUPPORT, ("q.csv", GOOD_QUERY), ["--budget", "1", "--beta", "-1"],
                      r"--beta -1\.0: must be a number >= 0"),
    "one-class support": ("smiles,label\nCCO,1\nCCN,1\n", ("q.csv", GOOD_QUERY),
                          ["--budget", "1"],
                          r"s\.csv: every valid support molecule is active \(1\)"),
    "label 2": ("smiles,label\nCCO,1\nCCN,2\nCCC,0\n", ("q.csv", GOOD_QUERY),
                ["--budget", "1"], r"s\.csv, row 3: label '2' in column 'label' is not 0 or 1"),
    "header-only candidates": (GOOD_SUPPORT, ("q.csv", "id,smiles\n"), ["--budget", "1"],
                               r"q\.csv: the file has a header but no rows"),
    "candidates without SMILES": (GOOD_SUPPORT, ("q.csv", "name\naspirin\n"),
                                  ["--budget", "1"], r"q\.csv: no SMILES column"),
    "empty .smi": (GOOD_SUPPORT, ("q.smi", "# nothing\n"), ["--budget", "1"],
                   r"q\.smi: the file has no SMILES lines"),
}


@pytest.mark.parametrize("support, query, extra, message", CASES.values(), ids=CASES)
def test_bad_suggest_input_is_one_error_line(tmp_path, capsys, support, query, extra, message):
    s = write(tmp_path / "s.csv", support)
    q = write(tmp_path / query[0], query[1])
    out = tmp_path / "next.csv"
    assert main(["mol", "suggest", "--support", str(s), "--candidates", str(q),
                 "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and re.search(message, err), err
    assert "Traceback" not in err and not out.exists()


def test_bad_budget_is_an_api_error_before_the_files_are_read(tmp_path):
    with pytest.raises(FewshotError, match="--budget 0"):
        fa.suggest_assays(None, tmp_path / "missing.csv", tmp_path / "missing.csv", 0)
    with pytest.raises(DataError, match="no such file"):
        fa.suggest_assays(None, tmp_path / "missing.csv", ["CCO"], 1)


def test_invalid_and_support_candidates_are_kept_and_never_picked(tmp_path):
    s = write(tmp_path / "s.csv", GOOD_SUPPORT)
    q = write(tmp_path / "q.csv", "id,smiles\nq1,C1CC(\nq2,c1ccccc1O\nq3,CCCBr\nq4,BrCCC\n")
    table = fa.suggest_assays(None, s, q, 4)
    assert table["id"].tolist() == ["q1", "q2", "q3", "q4"]
    assert table["error"].iat[0] != "" and table["pick"].isna().iat[0]
    # phenol is support row 3: its label is known
    assert table["pick"].isna().iat[1]
    assert "not suggested: a support molecule" in table["warning"].iat[1]
    # q4 is q3 written backwards: one of them is picked, the other would measure it twice
    assert table["pick"].iloc[2:].notna().sum() == 1
    assert "the same molecule as pick 1" in table["warning"].iloc[2:].str.cat()
    assert any("budget 4 is more than the 1 candidate(s)" in line
               for line in table.attrs["report"])
