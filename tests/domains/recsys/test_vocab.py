"""domains/recsys/vocab.py: stable id -> index vocabularies, saved with a model."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fewshot_apps.domains.recsys.vocab import Vocabulary, load_vocabularies, save_vocabularies
from fewshot_apps.errors import DataError

# sha256 of json.dumps(["item", [1, 2, 10]]): a saved model compares it with the data it
# is used on, so it must not change between releases or processes.
ITEM_1_2_10 = "dfba9493e2652cee04fe0ed4aa72d4dbfea7c8f47e3755a825857e314fc2e9e2"


def test_from_ids_sorts_and_dedupes_so_the_same_set_gives_the_same_indices():
    a = Vocabulary.from_ids("item", [10, 2, 1, 2, 10])
    b = Vocabulary.from_ids("item", np.array([1, 10, 2]))
    assert a.ids == b.ids == [1, 2, 10]
    assert a.fingerprint() == b.fingerprint() == ITEM_1_2_10
    assert len(a) == 3 and a.dtype == "int"
    assert all(type(i) is int for i in a.ids)  # numpy ints become plain ints (JSON-able)
    assert a.indices([1, 2, 10]).tolist() == [0, 1, 2]


def test_string_ids_sort_as_strings():
    v = Vocabulary.from_ids("user", ["b", "a", "10", "9"])
    assert v.ids == ["10", "9", "a", "b"] and v.dtype == "str"
    assert v.indices(["a", " b ", "9", "zz"]).tolist() == [2, 3, 1, -1]


def test_fingerprint_depends_on_kind_order_and_id_type():
    v = Vocabulary("item", [1, 2, 10])
    assert v.fingerprint() == ITEM_1_2_10
    assert Vocabulary("user", [1, 2, 10]).fingerprint() != ITEM_1_2_10
    assert Vocabulary("item", [2, 1, 10]).fingerprint() != ITEM_1_2_10
    assert Vocabulary("item", ["1", "2", "10"]).fingerprint() != ITEM_1_2_10
    assert Vocabulary("item", [1, 2, 11]).fingerprint() != ITEM_1_2_10


def test_unknown_ids_are_minus_one_never_dropped():
    v = Vocabulary("item", [1, 2, 10])
    ids = [10, 3, 1, -1, 999]
    out = v.indices(ids)
    assert out.dtype == np.int64 and out.shape == (len(ids),)
    assert out.tolist() == [2, -1, 0, -1, -1]
    assert 10 in v and 3 not in v and v.index_of(2) == 1 and v.index_of(4) == -1


def test_int_ids_are_found_by_value_from_text_and_floats():
    v = Vocabulary("item", [1, 2, 10])
    assert v.indices(["1", " 10 ", 2.0, "2.0"]).tolist() == [0, 2, 1, 1]
    # not whole numbers / not numbers: unknown, even where -1 would be a real id
    assert v.indices(["1.5", "x", "", None]).tolist() == [-1, -1, -1, -1]
    neg = Vocabulary("item", [-1, 0])
    assert neg.indices(["abc", "-1", -1]).tolist() == [-1, 0, 0]
    # arrays and Series of every int width, nullable ints included
    assert v.indices(np.array([10, 1], dtype=np.int32)).tolist() == [2, 0]
    assert v.indices(pd.Series([2, 1], dtype="Int64")).tolist() == [1, 0]


def test_duplicate_ids_are_refused():
    with pytest.raises(ValueError, match="appears twice"):
        Vocabulary("item", [1, 2, 1])
    with pytest.raises(ValueError, match="'a' appears twice"):
        Vocabulary("user", ["a", "b", "a"])


def test_to_dict_from_dict_round_trip_through_json():
    for v in (Vocabulary("item", [1, 2, 10]), Vocabulary("user", ["u1", "u2"])):
        d = json.loads(json.dumps(v.to_dict()))
        assert d["format"] == "fewshot-apps/vocabulary/1"
        assert d["size"] == len(v) and d["dtype"] == v.dtype and d["sha256"] == v.fingerprint()
        back = Vocabulary.from_dict(d)
        assert back.ids == v.ids and back.kind == v.kind and back.dtype == v.dtype
        assert back.fingerprint() == v.fingerprint()


def test_from_dict_refuses_other_files_and_tampered_ids():
    d = Vocabulary("item", [1, 2, 10]).to_dict()
    with pytest.raises(DataError, match="not a saved vocabulary"):
        Vocabulary.from_dict({**d, "format": "something/else"}, origin="v.json")
    with pytest.raises(DataError, match="not a saved vocabulary"):
        Vocabulary.from_dict({k: x for k, x in d.items() if k != "ids"})
    with pytest.raises(DataError, match="sha256 does not match its ids"):
        Vocabulary.from_dict({**d, "ids": [1, 2, 11]})
    # the saved order is kept (indices must not move), not re-sorted
    unsorted = Vocabulary("item", [10, 1]).to_dict()
    assert Vocabulary.from_dict(unsorted).ids == [10, 1]


def test_save_and_load_vocabularies(tmp_path):
    items, users = Vocabulary("item", [5, 7]), Vocabulary("user", ["x", "y", "z"])
    path = save_vocabularies(tmp_path / "deep" / "vocab.json", items, users)
    assert path.is_file()
    loaded = load_vocabularies(path)
    assert set(loaded) == {"item", "user"}
    assert loaded["item"].ids == [5, 7] and loaded["user"].ids == ["x", "y", "z"]
    assert loaded["item"].indices([7, 6]).tolist() == [1, -1]


def test_load_vocabularies_names_the_file_when_unreadable(tmp_path):
    bad = tmp_path / "vocab.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="cannot read vocabularies") as info:
        load_vocabularies(bad)
    assert "vocab.json" in str(info.value)
    with pytest.raises(DataError, match="cannot read vocabularies"):
        load_vocabularies(tmp_path / "missing.json")
