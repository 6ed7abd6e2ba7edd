"""Every bad-input case gets a message naming file, row and problem, or a counted skip."""

import gzip

import pytest

from fewshot_apps.domains.molecules.dataset import load_molecule_dataset
from fewshot_apps.domains.molecules.readers import read_fsmol_task, read_wide_csv
from fewshot_apps.errors import ContentCheckError, DataError
from fewshot_apps.sources import load_card

GOOD = "CCO"


def write(path, text):
    path.write_text(text)
    return path


def load(path, **kw):
    return load_molecule_dataset(path, progress=False, workers=1, **kw)


def test_invalid_and_empty_smiles_are_reported_with_row_and_reason(tmp_path):
    csv = write(tmp_path / "a.csv", f"smiles,A,B\n{GOOD},1,0\nC1CC,0,1\n,1,\nc1ccccc1,0,1\nCCN,1,0\n")
    ds = load(csv, test_assays=["B"])
    invalid = ds.invalid.drop_duplicates("row").set_index("row")
    assert set(invalid.index) == {3, 4}
    assert "unclosed ring" in invalid.at[3, "reason"]
    assert invalid.at[4, "reason"] == "empty SMILES"
    assert ds.n_rows_read == 5
    ts = ds.task_set()
    assert sum(len(t) for _, t in ts) == len(ds.measurements) - len(ds.invalid)


@pytest.mark.parametrize(
    "value,why", [("2", "not 0 or 1"), ("yes", "not a number"), ("0.5", "not 0 or 1")]
)
def test_bad_labels_are_counted_skips_naming_row_and_column(tmp_path, value, why):
    csv = write(tmp_path / "b.csv", f"smiles,A\n{GOOD},1\nCCN,{value}\nCCC,0\n")
    m = read_wide_csv(csv)
    assert len(m.table) == 2
    (skip,) = m.skipped.to_dict("records")
    assert skip["row"] == 3 and why in skip["reason"] and "'A'" in skip["reason"]


def test_missing_smiles_column(tmp_path):
    csv = write(tmp_path / "c.csv", "molecule_name,A\nx,1\n")
    with pytest.raises(DataError, match=r"c\.csv: no SMILES column"):
        read_wide_csv(csv)


def test_empty_file(tmp_path):
    csv = write(tmp_path / "d.csv", "")
    with pytest.raises(DataError, match=r"d\.csv: the file is empty"):
        read_wide_csv(csv)


def test_truncated_gzip(tmp_path):
    data = gzip.compress(("smiles,A\n" + f"{GOOD},1\n" * 2000).encode())
    path = tmp_path / "e.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"e\.csv\.gz: truncated or corrupt gzip"):
        read_wide_csv(path)


def test_bad_fsmol_lines(tmp_path):
    path = tmp_path / "CHEMBL1.jsonl.gz"
    lines = [
        '{"SMILES": "CCO", "Property": "1.0"}',
        "{not json",
        '{"SMILES": "CCN", "Property": "maybe"}',
        '{"SMILES": "CCC", "Property": "0.0", "fingerprints": [1, 2]}',
    ]
    path.write_bytes(gzip.compress("\n".join(lines).encode()))
    m = read_fsmol_task(path)
    assert len(m.table) == 2
    reasons = dict(zip(m.skipped["row"], m.skipped["reason"]))
    assert "not valid JSON" in reasons[2] and "Property 'maybe'" in reasons[3]


def test_duplicates_counted_and_policies(tmp_path):
    csv = write(
        tmp_path / "f.csv",
        "smiles,assay,label\nCCO,A,1\nOCC,A,0\nCCN,A,1\nCCN,A,1\nCCC,A,0\nCCCl,A,0\n"
        "CCO,B,1\nCCN,B,0\nCCC,B,1\nCCCC,B,0\n",
    )
    ds = load(csv, test_assays=["B"])
    dup = ds.duplicates()
    # CCO and OCC are one molecule after canonicalization: a conflicting pair.
    assert dup.loc["A", "extra_rows"] == 2 and dup.loc["A", "conflicting"] == 1
    sizes = {p: len(ds.task_set(p).train[0]) for p in ("keep", "drop-conflicting", "majority")}
    assert sizes == {"keep": 6, "drop-conflicting": 3, "majority": 3}


def test_one_class_assay_is_train_only(tmp_path):
    csv = write(tmp_path / "g.csv", "smiles,assay,label\nCCO,A,1\nCCN,A,1\nCCC,B,0\nCCCl,B,1\n")
    ds = load(csv, test_assays=["B"])
    (task_a,) = ds.task_set().train
    assert task_a.metadata["evaluable"] is False


def test_content_check_failure_names_file_expected_and_found(tmp_path):
    data = write(tmp_path / "mini.csv", "smiles,T1,T2\nCCO,1,0\nCCN,0,0\n")
    card = write(
        tmp_path / "mini.toml",
        'name = "mini"\ndomain = "molecules"\nformat = "moleculenet-csv"\n'
        '[files]\ndata = "mini.csv"\n[expected]\nrows = 3\ntasks = ["T1", "T2"]\n'
        '[split]\nmethod = "task-index"\ntrain = "0"\ntest = "1"\n',
    )
    with pytest.raises(ContentCheckError, match=r"mini\.csv: expected 3 data rows .* found 2"):
        load(load_card(card))
    assert data.exists()  # nothing the user had is deleted
    card.write_text(card.read_text().replace("rows = 3", "rows = 2").replace('"T2"]', '"T3"]'))
    with pytest.raises(ContentCheckError, match=r"missing \['T3'\], unexpected \['T2'\]"):
        load(load_card(card))


def test_user_card_loads_local_files(tmp_path):
    write(tmp_path / "mini.csv", "smiles,T1,T2\nCCO,1,0\nCCN,0,1\nCCC,1,1\n")
    card = write(
        tmp_path / "mini.toml",
        'name = "mini"\ndomain = "molecules"\nformat = "moleculenet-csv"\n'
        '[files]\ndata = "mini.csv"\n[split]\nmethod = "task-index"\ntrain = "0"\ntest = "1"\n',
    )
    ts = load(load_card(card)).task_set()
    assert [t.name for t in ts.train] == ["T1"] and [t.name for t in ts.test] == ["T2"]
