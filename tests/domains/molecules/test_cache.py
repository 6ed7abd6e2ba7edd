"""domains/molecules/cache.py: the content hash of raw files, a Unit's round trip through a
``weights_only`` cache file, a cache entry of another format or a corrupt one (rebuilt,
never trusted) and an atomic write that falls back to memory when the folder cannot be
written."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fewshot_apps.domains.molecules.cache import (
    CACHE_FORMAT,
    Unit,
    content_hash,
    read_unit,
    write_cache,
)
from fewshot_apps.domains.molecules.featurizer import FeaturizerConfig
from fewshot_apps.domains.molecules.pooling import featurize_unit
from fewshot_apps.domains.molecules.readers import Measurements


@pytest.fixture(scope="module")
def unit() -> Unit:
    table = pd.DataFrame({"smiles": ["CCO", "c1ccccc1", "bad((", "CCN"],
                          "task": ["A", "A", "B", "B"], "label": [1.0, 0.0, 1.0, 0.0],
                          "file": "m.csv", "row": [2, 3, 4, 5],
                          "Relation": ["=", None, ">", "="]})
    skipped = pd.DataFrame([{"file": "m.csv", "row": 6, "task": "B", "reason": "blank"}])
    m = Measurements(table, skipped, {"m.csv": 5}, ["A", "B"])
    return featurize_unit(m, FeaturizerConfig(), workers=1, progress=False, desc="test")


# --------------------------------------------------------------------------- content hash


def test_the_hash_follows_names_and_bytes_not_the_order_given(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("x")
    b.write_text("y")
    h = content_hash([a, b])
    assert h == content_hash([b, a]) and len(h) == 64
    b.write_text("z")
    assert content_hash([a, b]) != h
    c = tmp_path / "c.csv"
    c.write_text("z")
    assert content_hash([a, c]) != content_hash([a, b])  # same bytes, another name


# --------------------------------------------------------------------------- round trip


def test_a_unit_survives_a_weights_only_round_trip(unit, tmp_path):
    path = tmp_path / "unit.pt"
    assert write_cache(path, unit.to_dict())
    back = read_unit(path)
    assert back is not None
    assert back.store.smiles == unit.store.smiles and torch.equal(back.store.x, unit.store.x)
    assert back.rows_read == unit.rows_read and back.task_order == unit.task_order
    got, want = back.measurements, unit.measurements
    assert list(got.columns) == list(want.columns)
    assert got["mol"].tolist() == want["mol"].tolist() and got["row"].tolist() == [2, 3, 4, 5]
    np.testing.assert_array_equal(got["label"].to_numpy(), want["label"].to_numpy())
    assert got["smiles"].tolist() == want["smiles"].tolist()
    relation = got["Relation"]
    assert pd.isna(relation.iloc[1]) and relation.drop(index=1).tolist() == ["=", ">", "="]
    assert back.invalid["reason"].tolist() == unit.invalid["reason"].tolist()
    assert back.skipped.to_dict("records") == [
        {"file": "m.csv", "row": 6, "task": "B", "reason": "blank"}]
    assert back.flagged.empty


def test_the_entry_names_its_format_and_stores_strings_factorized(unit):
    d = unit.to_dict()
    assert d["format"] == CACHE_FORMAT
    task = d["measurements"]["task"]
    assert task["categories"] == ["A", "B"] and task["codes"].tolist() == [0, 0, 1, 1]
    assert d["measurements"]["label"].dtype == torch.float32
    assert d["measurements"]["row"].dtype == torch.int64


# --------------------------------------------------------------------------- reading


def test_no_file_or_another_format_reads_as_none(unit, tmp_path, capsys):
    assert read_unit(tmp_path / "none.pt") is None
    path = tmp_path / "old.pt"
    torch.save({**unit.to_dict(), "format": CACHE_FORMAT - 1}, path)
    assert read_unit(path) is None
    assert capsys.readouterr().err == ""  # an older format is simply rebuilt


@pytest.mark.parametrize("content", [b"garbage, not a torch file", None])
def test_a_corrupt_or_foreign_entry_is_rebuilt_with_a_note(tmp_path, capsys, content):
    path = tmp_path / "bad.pt"
    if content is None:
        torch.save([1, 2, 3], path)  # readable, but not an entry
    else:
        path.write_bytes(content)
    assert read_unit(path) is None
    err = capsys.readouterr().err
    assert f"note: the cache file {path} was unusable" in err and "rebuilding it" in err


# --------------------------------------------------------------------------- writing


def test_a_write_replaces_the_entry_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "entry.pt"
    assert write_cache(path, {"format": 0, "n": 1}) and write_cache(path, {"format": 0, "n": 2})
    assert torch.load(path, weights_only=True)["n"] == 2
    assert [p.name for p in path.parent.iterdir()] == ["entry.pt"]


class _Unpicklable:
    def __reduce__(self):
        raise TypeError("cannot pickle this object")


@pytest.mark.parametrize("make_bad", [lambda: (lambda: None), _Unpicklable],
                         ids=["lambda", "reduce-raises"])
def test_an_entry_that_cannot_be_saved_warns_answers_false_and_leaves_no_temporary(
        tmp_path, capsys, make_bad):
    path = tmp_path / "entry.pt"
    assert write_cache(path, {"format": 0, "n": 1})
    assert write_cache(path, {"format": 0, "bad": make_bad()}) is False
    assert [p.name for p in tmp_path.iterdir()] == ["entry.pt"]
    assert torch.load(path, weights_only=True)["n"] == 1  # the previous entry is whole
    err = capsys.readouterr().err
    assert f"warning: the cache entry {path} could not be saved" in err
    assert "working in memory" in err


def test_an_interrupted_write_leaves_no_temporary_and_re_raises(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_cache(tmp_path / "entry.pt", {"n": 1})
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_folder_warns_once_and_answers_false(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert write_cache(blocker / "entry.pt", {"n": 1}) is False
    assert write_cache(blocker / "other.pt", {"n": 1}) is False
    err = capsys.readouterr().err
    assert err.count(f"warning: the cache directory {blocker} is not writable") == 1

