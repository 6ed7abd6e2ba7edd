"""Bad-input corpus, molecule domain: every case ends in an error naming the file (and row) and
the problem, or in a counted, reported skip or warning; never a traceback, never a silent
misread. Inputs are tiny files written in tmp_path; the API and the CLI run in-process.

Cases already pinned elsewhere are not repeated here: bad wide-CSV labels, truncated gzip,
bad FS-Mol lines, card content checks (tests/domains/molecules/test_bad_input.py), and the
README's `mol predict` commands (tests/test_cli_predict_recommend.py).
"""

from __future__ import annotations

import re

import pytest

import fewshot_apps as fa
from fewshot_apps.cli import main
from fewshot_apps.domains.molecules.dataset import load_molecule_dataset
from fewshot_apps.errors import DataError, FewshotError

GOOD_SUPPORT = "smiles,label\nOc1ccc(O)cc1,1\nOc1ccccc1,1\nCCCl,0\nCCCC,0\n"


def write(path, content: str | bytes):
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# ------------------------------------------------------------------ support files that stop


SUPPORT_ERRORS = {
    # id: (file content, the message after "<file>[, row N]: ")
    "empty file": ("", r"s\.csv: the file is empty"),
    "header only": ("smiles,label\n", r"s\.csv: the support set has no rows"),
    "no SMILES column": ("structure_name,label\nx,1\ny,0\n", r"s\.csv: no SMILES column"),
    "no label column": ("smiles,notes\nCCO,a\nCCN,b\n", r"s\.csv: no label column"),
    "label 2": ("smiles,label\nCCO,1\nCCN,2\nCCC,0\n",
                r"s\.csv, row 3: label '2' in column 'label' is not 0 or 1"),
    "blank label": ("smiles,label\nCCO,1\nCCN,\nCCC,0\n",
                    r"s\.csv, row 3: label '' in column 'label' is not 0 or 1"),
    "NaN label": ("smiles,label\nCCO,1\nCCN,NaN\nCCC,nan\n",
                  r"s\.csv, row 3: label 'NaN' .* \(1 more rows like it\)"),
    "one class": ("smiles,label\nCCO,1\nCCN,1\nCCC,1\n",
                  r"s\.csv: every valid support molecule is active \(1\)"),
    "one molecule": ("smiles,label\nCCO,1\n", r"s\.csv: the support set has 1 valid molecule"),
    "only invalid SMILES": ("smiles,label\nC1CC(,1\nxyz,0\n",
                            r"s\.csv: none of the 2 support SMILES could be parsed by RDKit "
                            r"\(row 2: .*\)"),
    "latin-1 bytes": ("smiles,label,name\nCCO,1,café\nCCN,0,x\n".encode("latin-1"),
                      r"s\.csv, row 2: byte 0xe9 is not valid UTF-8; expected UTF-8 text"),
    "semicolon delimiter": ("smiles;label\nCCO;1\nCCN;0\n",
                            r"s\.csv, row 1: expected comma-separated fields .*; line 1 looks "
                            r"semicolon-separated"),
    "tab delimiter": ("smiles\tlabel\nCCO\t1\nCCN\t0\n",
                      r"s\.csv, row 1: expected comma-separated fields .*; line 1 looks "
                      r"tab-separated"),
    "duplicate column names": ("smiles,label,label\nCCO,1,0\nCCN,0,1\n",
                               r"s\.csv: column name\(s\) \['label'\] appear more than once"),
    "more fields than header": ("smiles,label\nCC,O,1\nCCN,0\n",
                                r"s\.csv, row 2: data rows have more fields than the "
                                r"header's 2 columns"),
}


@pytest.mark.parametrize("content, message", SUPPORT_ERRORS.values(), ids=SUPPORT_ERRORS)
def test_bad_support_file_is_an_error_naming_file_row_and_problem(tmp_path, capsys, content,
                                                                  message):
    support = write(tmp_path / "s.csv", content)
    with pytest.raises(DataError, match=message):
        fa.predict_assay(None, support, ["CCO"])
    # The CLI says the same in one line, exit status 2, and writes nothing.
    out = tmp_path / "p.csv"
    assert main(["mol", "predict", "--support", str(support), "--query", str(support),
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and re.search(message, err)
    assert "Traceback" not in err and not out.exists()


def test_missing_support_file_names_it(tmp_path, capsys):
    assert main(["mol", "predict", "--support", str(tmp_path / "nope.csv"),
                 "--query", str(tmp_path / "q.csv")]) == 2
    assert "nope.csv: no such file" in capsys.readouterr().err


# ------------------------------------------------------------------ query files that stop


QUERY_ERRORS = {
    "empty query": ("q.csv", "", r"q\.csv: the file is empty"),
    "header-only query": ("q.csv", "smiles,name\n", r"q\.csv: the file has a header but no rows"),
    "query without SMILES column": ("q.csv", "name\naspirin\n", r"q\.csv: no SMILES column"),
    "empty .smi": ("q.smi", "# only a comment\n\n", r"q\.smi: the file has no SMILES lines"),
}


@pytest.mark.parametrize("name, content, message", QUERY_ERRORS.values(), ids=QUERY_ERRORS)
def test_bad_query_file_is_an_error(tmp_path, name, content, message):
    support = write(tmp_path / "s.csv", GOOD_SUPPORT)
    query = write(tmp_path / name, content)
    with pytest.raises(DataError, match=message):
        fa.predict_assay(None, support, query)


# -------------------------------------------------- inputs that run: counted skips, warnings


def predict(tmp_path, support: str, query):
    return fa.predict_assay(None, write(tmp_path / "s.csv", support), query)


def test_invalid_support_smiles_is_a_counted_skip_naming_row_and_reason(tmp_path):
    out = predict(tmp_path, GOOD_SUPPORT + "C1CC(,0\n,1\n", ["CCO"])
    assert out.attrs["n_support"] == 4
    assert [(row, smi) for row, smi, _ in out.attrs["skipped_support"]] == [(6, "C1CC("),
                                                                           (7, "")]
    assert any(line.startswith("support row 6 skipped: invalid SMILES 'C1CC('")
               for line in out.attrs["report"])


def test_smi_query_with_bad_lines_keeps_every_line_with_its_error(tmp_path):
    query = write(tmp_path / "q.smi", "# candidates\nOc1ccc(Cl)cc1 chlorophenol\n\n"
                  "C1CC( broken\nnot_a_smiles x\nCCO ethanol\n")
    out = predict(tmp_path, GOOD_SUPPORT, query)
    assert list(out["name"]) == ["chlorophenol", "broken", "x", "ethanol"]
    assert (out["error"] != "").tolist() == [False, True, True, False]
    assert out["probability"].isna().tolist() == [False, True, True, False]
    assert "2 of 4 candidate(s) have SMILES RDKit cannot parse" in "\n".join(out.attrs["report"])


def test_whitespace_inside_a_query_smiles_is_warned_not_silently_truncated(tmp_path):
    query = write(tmp_path / "q.csv", "id,smiles\nq1,CCCO\nq2,CC O\n")
    out = predict(tmp_path, GOOD_SUPPORT, query)
    assert out["probability"].notna().all()  # kept and scored, as RDKit reads it ...
    assert out["warning"].iloc[0] == ""
    assert "whitespace inside; RDKit reads only 'CC' (scored as 'CC')" in out["warning"].iloc[1]
    # ... and the report names the row, the SMILES and what was read.
    assert ("query row 3: SMILES 'CC O' has whitespace inside; RDKit reads only 'CC' "
            "(scored as 'CC')") in out.attrs["report"]


def test_whitespace_inside_a_support_smiles_is_reported(tmp_path):
    out = predict(tmp_path, GOOD_SUPPORT + "CC N,1\n", ["CCCCCC"])
    assert ("support row 6: SMILES 'CC N' has whitespace inside; RDKit reads only 'CC' "
            "(used as 'CC')") in out.attrs["report"]
    assert out.attrs["warnings"]


def test_conflicting_duplicate_support_labels_are_reported_and_both_kept(tmp_path):
    # OCC and CCO are one molecule: compared by canonical SMILES.
    out = predict(tmp_path, GOOD_SUPPORT + "CCO,1\nOCC,0\n", ["CCCCCC"])
    assert out.attrs["n_support"] == 6
    assert ("support rows 6, 7: the same molecule 'CCO' labelled 1 (row 6) and 0 (row 7): "
            "conflicting labels, all kept") in out.attrs["report"]


def test_skipped_support_rows_take_no_part_in_the_duplicate_check(tmp_path):
    # Two rejected rows with both labels are skips, not "the same molecule" conflicting.
    out = predict(tmp_path, GOOD_SUPPORT + "xyz,1\n,0\n", ["CCCCCC"])
    report = "\n".join(out.attrs["report"])
    assert "support row 6 skipped" in report and "support row 7 skipped" in report
    assert "the same molecule" not in report
    assert out.attrs["warnings"] == []


def test_plain_duplicate_support_rows_are_reported(tmp_path):
    out = predict(tmp_path, GOOD_SUPPORT + "c1ccc(O)cc1,1\n", ["CCCCCC"])
    assert ("support rows 3, 6: the same molecule 'Oc1ccccc1' 2 times (label 1): all kept, "
            "it counts 2 times") in out.attrs["report"]


def test_query_molecule_that_is_in_the_support_is_warned(tmp_path):
    query = write(tmp_path / "q.csv", "smiles\nCCCCCC\nClCC\n")
    out = predict(tmp_path, GOOD_SUPPORT, query)
    assert out["warning"].tolist() == ["", "the same molecule as support row 4 labelled 0"]
    assert "query row 3: the same molecule as support row 4 labelled 0" in out.attrs["report"]
    assert out["probability"].notna().all()


def test_cli_counts_warnings_and_writes_the_warning_column(tmp_path, capsys):
    support = write(tmp_path / "s.csv", GOOD_SUPPORT)
    query = write(tmp_path / "q.smi", "ClCC a\nCC O b\n")
    out = tmp_path / "p.csv"
    assert main(["mol", "predict", "--support", str(support), "--query", str(query),
                 "--out", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "query line 1: the same molecule as support row 4 labelled 0" in err
    assert "wrote 2 predictions (0 with errors, 1 with warnings)" in err
    assert "warning" in out.read_text().splitlines()[0].split(",")


# ------------------------------------------------------- your own assay CSV as a data set


ASSAYS = ('smiles,"Injury, poisoning and procedural complications",Eye disorders,'
          "Cardiac disorders,Psychiatric disorders\n"
          "CCO,1,0,1,0\nCCN,0,1,0,1\nCCC,1,0,0,1\nCCCl,0,1,1,0\n")


def load(path, **options):
    return load_molecule_dataset(path, progress=False, workers=1, **options)


def test_unknown_test_assay_names_the_file_and_close_matches(tmp_path):
    path = write(tmp_path / "assays.csv", ASSAYS)
    with pytest.raises(DataError, match=r"assays\.csv: test assay 'eye disorder' is not in "
                       r"the data; close matches: 'Eye disorders'"):
        load(path, test_assays=["eye disorder"])


def test_test_assay_with_a_comma_in_its_name(tmp_path, capsys):
    path = write(tmp_path / "assays.csv", ASSAYS)
    name = "Injury, poisoning and procedural complications"
    assert load(path, test_assays=[name]).split["test"] == [name]
    # A comma list reads a comma inside a known name as part of it ...
    both = load(path, test_assays=f"{name},Eye disorders").split["test"]
    assert both == [name, "Eye disorders"]
    # ... and on the command line: --test-assay (repeatable) or --test-assays.
    assert main(["data", "inspect", str(path), "--quiet", "--test-assay", name,
                 "--test-assay", "Cardiac disorders"]) == 0
    assert f'test tasks: "{name}", Cardiac disorders' in capsys.readouterr().out


def test_ambiguous_comma_list_asks_for_names_one_by_one(tmp_path):
    path = write(tmp_path / "ab.csv", 'smiles,A,B,"A,B",C\nCCO,1,0,1,0\nCCN,0,1,0,1\n')
    with pytest.raises(DataError, match=r"ab\.csv: test assays 'A,B' can be read as "
                       r"\['A', 'B'\] or as \['A,B'\]"):
        load(path, test_assays="A,B")


def test_test_assays_file_one_name_per_line(tmp_path, capsys):
    path = write(tmp_path / "assays.csv", ASSAYS)
    names = write(tmp_path / "test.txt", "# test tasks\nEye disorders\n\nCardiac disorder\n")
    assert main(["data", "inspect", str(path), "--quiet", "--test-assays-file",
                 str(names)]) == 2
    assert ("assays.csv: test assay 'Cardiac disorder' is not in the data; close matches: "
            "'Cardiac disorders'") in capsys.readouterr().err
    empty = write(tmp_path / "none.txt", "# nothing\n")
    assert main(["data", "inspect", str(path), "--quiet", "--test-assays-file",
                 str(empty)]) == 2
    assert "none.txt: no names in the file" in capsys.readouterr().err


@pytest.mark.parametrize("options, message", [
    ({"test_fraction": 1.5}, r"assays\.csv: test fraction 1\.5 is not between 0 and 1"),
    ({"test_assays": ["Eye disorders", "Cardiac disorders", "Psychiatric disorders",
                      "Injury, poisoning and procedural complications"]},
     r"assays\.csv: every assay \(4\) is a test assay: none is left to train on"),
])
def test_impossible_split_of_your_own_csv(tmp_path, options, message):
    with pytest.raises(DataError, match=message):
        load(write(tmp_path / "assays.csv", ASSAYS), **options)


def test_a_card_with_a_fixed_split_refuses_test_assays():
    with pytest.raises(FewshotError, match="not for 'tox21': its card fixes the split"):
        load("tox21", test_assays=["SR-p53"])


def test_missing_own_csv_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv: no such file"):
        load(tmp_path / "nope.csv")


def test_whitespace_smiles_in_a_training_file_is_a_counted_skip(tmp_path, capsys):
    path = write(tmp_path / "ws.csv", "smiles,A,B\nCCO,1,0\nCC N,0,1\nCCC,1,0\nCCCl,0,1\n")
    ds = load(path, test_assays=["B"])
    rejected = ds.invalid.drop_duplicates("row")
    assert rejected["row"].tolist() == [3]
    assert rejected["reason"].iloc[0] == "SMILES contains whitespace (RDKit would read only 'CC')"
    assert (ds.measurements.loc[ds.measurements["row"] == 3, "mol"] == -1).all()
    assert main(["data", "inspect", str(path), "--quiet", "--test-assays", "B"]) == 0
    out = capsys.readouterr().out
    assert "rejected by RDKit: 1 rows" in out and "SMILES contains whitespace" in out


# ---------------------------------------------- your own assay CSV: rows that stop or skip


@pytest.mark.parametrize("content, message", [
    ("smiles,assay,label\n", r"x\.csv: the file has a header but no rows"),
    ("smiles,assay\nCCO,A\nCCCO,B\n", r"x\.csv: no 'label' column: a CSV of 'assay' rows "
                                      r"needs columns smiles,assay,label"),
    ("smiles,A,B\nCCO,yes,no\nCCN,x,y\n", r"x\.csv: no 0/1 label in any row .*; e\.g\. row 2: "
                                          r"label 'yes' in column 'A' is not a number"),
    ("smiles,assay,label\nCCO,A,yes\n", r"x\.csv: no 0/1 label in any row .*; e\.g\. row 2: "
                                        r"label 'yes' is not a number"),
    ("smiles,A,B\nxyz,1,0\n,0,1\n", r"x\.csv: RDKit could parse none of the 2 rows' SMILES; "
                                    r"e\.g\. row 2: 'xyz' \(SMILES Parse Error"),
], ids=["header only", "no label column", "no 0/1 label", "no 0/1 long label",
        "no valid SMILES"])
def test_a_csv_with_nothing_to_train_on_is_an_error_naming_the_file(tmp_path, capsys,
                                                                     content, message):
    path = write(tmp_path / "x.csv", content)
    with pytest.raises(DataError, match=message):
        load(path)
    for command in (["data", "inspect", str(path)],
                    ["mol", "train", "--dataset", str(path), "--learner", "protonet",
                     "--out", str(tmp_path / "run")]):
        assert main([*command, "--quiet"]) == 2
        err = capsys.readouterr().err
        assert re.search("error: .*" + message, err) and "Traceback" not in err
    assert not (tmp_path / "run").exists()


#: 24 molecules, five two-class assays, one with actives only, and rows to skip.
MOLECULES = [f"{'C' * i}{end}" for end in ("O", "N") for i in range(1, 13)]
WIDE = "smiles,a1,a2,a3,a4,a5,only1\n" + "".join(
    f"{smi},{i % 2},{(i // 2) % 2},{(i // 3) % 2},{(i + 1) % 2},{(i // 4) % 2},1\n"
    for i, smi in enumerate(MOLECULES)) + (
    "notasmiles,1,0,1,0,1,1\n,1,0,1,0,1,1\nCCCCS,yes,0.5,1,0,1,1\n")
TINY_TRAINING = ["--learner", "protonet", "--set", "steps=1", "--set", "encoder.hidden=8",
                 "--set", "encoder.depth=1", "--set", "valid_draws=1", "--device", "cpu",
                 "--quiet"]


def test_mol_train_reports_the_skipped_rows_data_inspect_lists(tmp_path, capsys):
    path = write(tmp_path / "wide.csv", WIDE)
    assert main(["data", "inspect", str(path), "--quiet"]) == 0
    inspected = capsys.readouterr().out
    assert "notasmiles" in inspected and "label is not 0 or 1" in inspected
    assert main(["mol", "train", "--dataset", str(path), "--shots", "2", "--out",
                 str(tmp_path / "run"), *TINY_TRAINING]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len([line for line in err if line.startswith("warning: ")]) == 4
    assert f"warning: {path}: 1 row skipped, RDKit rejected the SMILES (SMILES Parse " \
           "Error): e.g. row 26: 'notasmiles'" in err
    assert f"warning: {path}: 1 row skipped, RDKit rejected the SMILES (empty SMILES): " \
           "e.g. row 27: ''" in err
    assert f"warning: {path}: 1 measurement skipped (label is not a number): e.g. row 28: " \
           "label 'yes' in column 'a1' is not a number" in err
    assert f"warning: {path}: 1 measurement skipped (label is not 0 or 1): e.g. row 28: " \
           "label '0.5' in column 'a2' is not 0 or 1" in err
    # ... and training from the Python API warns the same.
    with pytest.warns(UserWarning) as caught:
        fa.train_learner(str(path), "protonet", tmp_path / "api",
                         {"steps": 1, "shots": 2, "encoder.hidden": 8, "encoder.depth": 1,
                          "valid_draws": 1, "device": "cpu"})
    assert [f"warning: {w.message}" for w in caught] == [
        line for line in err if line.startswith("warning: ")]


@pytest.mark.parametrize("seed", range(6))
def test_a_one_class_assay_is_never_a_test_or_validation_assay(tmp_path, capsys, seed):
    path = write(tmp_path / "wide.csv", WIDE)
    split = load(path, seed=seed).split
    assert "only1" in split["train"] and len(split["test"]) == len(split["valid"]) == 1
    assert main(["data", "inspect", str(path), "--quiet", "--split-seed", str(seed)]) == 0
    out = capsys.readouterr().out
    assert "tasks with one class only (pre-training and label priors only; no episode): 1: only1" in out
    assert "validation tasks (held out of training): only1" not in out


def test_no_validation_assay_says_why(tmp_path, capsys):
    path = write(tmp_path / "two.csv", "smiles,a1,a2\n" + "".join(
        f"{smi},{i % 2},{(i // 2) % 2}\n" for i, smi in enumerate(MOLECULES)))
    assert main(["data", "inspect", str(path), "--quiet"]) == 0
    assert ("validation tasks (held out of training): none: no validation assay (one is held "
            "out of training when 3 or more non-test assays are left, and here 1 are)"
            ) in capsys.readouterr().out


def test_too_small_assays_say_why_and_what_to_do_and_write_no_model(tmp_path, capsys):
    path = write(tmp_path / "tiny.csv", "smiles,assay,label\nCCO,A,1\nCCCO,A,0\nCCN,A,1\n"
                 "CCCN,A,0\n")
    out = tmp_path / "run"
    assert main(["mol", "train", "--dataset", str(path), "--out", str(out),
                 *TINY_TRAINING]) == 2
    assert (f"error: {path}: no training assay has the molecules a training episode needs: "
            "10 actives and 10 inactives (shots 10) plus at least one query molecule; the 1 "
            "training assay(s): A (2 actives, 2 inactives). Use more molecules per assay, or "
            "smaller episodes (--shots N, or --support-size N)") in capsys.readouterr().err
    assert not out.exists()  # nothing that looks like a model
    assert main(["mol", "train", "--dataset", str(path), "--out", str(out), "--shots", "1",
                 *TINY_TRAINING]) == 0
    assert (out / "model.pt").exists()
    assert ("no validation assay (one is held out of training when 3 or more non-test "
            "assays are left, and here 1 are), so no model selection") in capsys.readouterr().out
