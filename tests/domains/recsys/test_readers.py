"""Readers of the MovieLens 100K / 1M formats (on files written here) and of a user's CSVs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fewshot_apps.domains.recsys.config import ColdStartConfig
from fewshot_apps.domains.recsys.dataset import build_recsys_dataset, load_recsys_dataset
from fewshot_apps.domains.recsys.readers import (
    RatingScale,
    read_interactions_csv,
    read_movielens_1m,
    read_movielens_100k,
    read_new_user_ratings,
)
from fewshot_apps.domains.recsys.vocab import Vocabulary
from fewshot_apps.errors import CardError, ContentCheckError
from fewshot_apps.sources import load_card

SMALL = ColdStartConfig(min_eval_ratings=25, split_fractions=(0.6, 0.2, 0.2))


def test_ml100k_reader(ml100k_dir: Path, latin1_titles):
    data = read_movielens_100k(ml100k_dir / "u.data", ml100k_dir / "u.item", ml100k_dir / "u.user")
    assert data.format == "movielens-100k" and data.scale == RatingScale(1, 5, 1)
    assert data.counts()["listed_items"] == 60 and data.counts()["users"] == 40
    items = data.items.set_index("item")
    for i, title in enumerate(latin1_titles, start=1):
        assert items.loc[i, "title"] == title  # latin-1 bytes decoded, not mojibake
    assert np.isnan(items.loc[7, "year"])  # no date, no year in the title: missing, not guessed
    assert items.loc[9, "year"] == 1959  # no release date: the title's year
    assert items.loc[2, "year"] == 1952
    assert items.loc[8, "genres"] == ""  # the "unknown" flag is no genre
    assert set(items.loc[5, "genres"].split("|")) == {"Crime", "Fantasy"}
    assert list(data.users.columns) == ["user", "age", "gender", "occupation", "zip"]
    assert data.user_feature_columns == ["age", "gender", "occupation"]
    assert data.report.skipped == {}
    assert any("1 of 60 items have no release year" in n for n in data.report.notes)
    assert data.ratings["rating"].dtype == np.float32


def test_ml1m_reader(ml1m_dir: Path, latin1_titles):
    data = read_movielens_1m(ml1m_dir / "ratings.dat", ml1m_dir / "movies.dat", ml1m_dir / "users.dat")
    assert data.format == "movielens-1m"
    items = data.items.set_index("item")
    assert items.loc[1, "title"] == latin1_titles[0]
    assert items.loc[1, "year"] == 1995
    assert items.loc[3, "genres"] == "Children's|Drama"
    users = data.users.set_index("user")
    assert users.loc[1, "occupation"] == "academic/educator" and users.loc[1, "age"] == 18
    assert users.loc[2, "gender"] == "M"
    assert data.counts()["ratings"] == len(data.ratings) > 1000


def test_ml100k_and_1m_cards_build_with_user_features(tmp_path, ml100k_dir, ml1m_dir):
    for name in ("movielens-100k", "movielens-1m"):
        card = load_card(name, data_dir=tmp_path)
        assert card.downloads[0].dest == f"movielens/{name.replace('movielens-', 'ml-')}"
        # the tiny files do not match the card's published counts
        with pytest.raises(ContentCheckError, match="expected"):
            load_recsys_dataset(card, use_cache=False)
        ds = load_recsys_dataset(card, use_cache=False, check_content=False, min_eval_ratings=25)
        assert ds.user_features is not None
        names = ds.user_features.names
        assert "age" in names and any(n.startswith("gender:") for n in names)
        assert ds.graph["user"].x.shape == (ds.task_report.users["train"], len(names))
        assert len(ds.taskset.train) == ds.task_report.users["train"] > 0


def test_card_options_are_validated(tmp_path, ml100k_dir):
    with pytest.raises(CardError, match="unknown option 'support_size'"):
        load_recsys_dataset("movielens-100k", data_dir=tmp_path, support_size=[5])
    with pytest.raises(CardError, match="interactions-csv cards only"):
        load_recsys_dataset("movielens-100k", data_dir=tmp_path, delimiter=";")


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def _user_rows(n_users: int = 12, per_user: int = 30) -> list[str]:
    rng = np.random.default_rng(0)
    rows = []
    for u in range(n_users):
        for j, i in enumerate(rng.choice(50, size=per_user, replace=False)):
            rows.append(f"u{u},m{i},{rng.integers(1, 6)},{1_600_000_000 + 1000 * u + j}")
    return rows


def test_user_csv_explicit_with_features(tmp_path):
    ratings = _write(tmp_path / "r.csv", "uid,iid,stars,when\n" + "\n".join(_user_rows()) + "\n")
    items = _write(
        tmp_path / "items.csv",
        "iid,title,genres,year,price,brand\n"
        + "\n".join(f"m{i},Item {i},{'A|B' if i % 2 else 'C'},{2000 + i},{i * 1.5},b{i % 3}" for i in range(50))
        + "\n",
    )
    users = _write(tmp_path / "users.csv", "uid,age,country\n" + "\n".join(f"u{u},{20 + u},c{u % 2}" for u in range(12)) + "\n")
    data = read_interactions_csv(
        ratings, items_path=items, users_path=users, user_col="uid", item_col="iid",
        rating_col="stars", timestamp_col="when", rating_scale=(1, 5),
    )  # fmt: skip
    assert not data.implicit and len(data.ratings) == 12 * 30
    assert data.item_feature_columns == ["price", "brand"]
    assert data.user_feature_columns == ["age", "country"]
    ds = build_recsys_dataset(data, SMALL)
    names = ds.item_features.names()
    assert {"genre:A", "genre:C", "price", "brand:b0"} <= set(names)
    assert ds.item_vocab.dtype == "str" and ds.item_vocab.index_of("m3") >= 0
    assert ds.user_features.names[:1] == ["age"]


def test_user_csv_implicit_feedback(tmp_path):
    rows = [",".join(r.split(",")[:2]) for r in _user_rows(6, 20)]
    ratings = _write(tmp_path / "clicks.csv", "user,item\n" + "\n".join(rows) + "\n")
    data = read_interactions_csv(ratings)
    assert data.implicit and (data.ratings["rating"] == 1).all()
    assert any("implicit feedback" in n for n in data.report.notes)
    assert any("no timestamp column" in n for n in data.report.notes)
    ds = build_recsys_dataset(data, ColdStartConfig(min_eval_ratings=15, new_item_quantile=None))
    assert ds.taskset.kind == "classification" and ds.new_items.count == 0
    assert ds.task_report.no_relevant == {"train": 0, "valid": 0, "test": 0}


def test_user_csv_integer_ids_match_items_file(tmp_path):
    ratings = _write(tmp_path / "r.csv", "user,item,rating\n1,10,4\n1,11,3\n2,10,5\n")
    items = _write(tmp_path / "i.csv", "item,genres\n10,X\n11,Y|Z\n12,\n")
    data = read_interactions_csv(ratings, items_path=items)
    assert data.ratings["item"].dtype == np.int64 and data.items["item"].tolist() == [10, 11, 12]
    assert any("observed range 3-5" in n for n in data.report.notes)


def test_user_card(tmp_path):
    _write(tmp_path / "ratings.csv", "user,item,rating,timestamp\n" + "\n".join(
        r.replace("u", "").replace("m", "") for r in _user_rows()) + "\n")  # fmt: skip
    card = tmp_path / "mine.toml"
    card.write_text(
        'name = "mine"\ndomain = "recsys"\nformat = "interactions-csv"\n'
        '[files]\nratings = "ratings.csv"\n'
        "[split]\nsupport_sizes = [3, 5]\nmin_eval_ratings = 20\n"
        "[options]\nrating_scale = [1, 5]\n"
    )
    ds = load_recsys_dataset(card, use_cache=False)
    assert ds.config.support_sizes == (3, 5) and ds.scale == RatingScale(1, 5, None)
    assert set(ds.task_report.per_size) == {3, 5}


def test_new_user_ratings_map_through_the_vocabulary(tmp_path):
    vocab = Vocabulary("item", [1, 2, 3, 50])
    path = _write(tmp_path / "me.csv", "item,rating\n50,4\n2,3.5\n")
    frame, report = read_new_user_ratings(path, vocab.indices, scale=RatingScale(0.5, 5, 0.5))
    assert frame["item_index"].tolist() == [3, 1] and report.skipped == {}
