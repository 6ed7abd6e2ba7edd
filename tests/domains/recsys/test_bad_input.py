"""Bad input: a clear message naming file, row and problem, or a counted and reported skip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fewshot_apps.core.tasks import Task, TaskTooSmallError
from fewshot_apps.domains.recsys.config import ColdStartConfig
from fewshot_apps.domains.recsys.dataset import build_recsys_dataset
from fewshot_apps.domains.recsys.episodes import ColdStartSampler, evaluation_episodes
from fewshot_apps.domains.recsys.readers import (
    RatingScale,
    read_interactions_csv,
    read_movielens_1m,
    read_movielens_100k,
    read_movielens_latest,
    read_new_user_ratings,
)
from fewshot_apps.domains.recsys.vocab import Vocabulary
from fewshot_apps.errors import DataError

MOVIES = "movieId,title,genres\n1,Toy Story (1995),Animation|Comedy\n2,Heat (1995),Action\n3,\"Misérables, Les (1995)\",Drama\n"
HEADER = "userId,movieId,rating,timestamp\n"


def _latest(tmp_path: Path, ratings: str, movies: str = MOVIES, **kw):
    (tmp_path / "movies.csv").write_text(movies, encoding="utf-8")
    (tmp_path / "ratings.csv").write_text(ratings, encoding="utf-8")
    return read_movielens_latest(tmp_path / "ratings.csv", tmp_path / "movies.csv", **kw)


GOOD = HEADER + "1,1,4.0,100\n1,2,3.5,101\n2,1,5.0,102\n"


def test_good_file_reads(tmp_path):
    data = _latest(tmp_path, GOOD)
    assert len(data.ratings) == 3 and data.items.loc[2, "title"] == "Misérables, Les (1995)"


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        ("2,2,7.0,103", "row 5: rating '7.0' is outside the movielens-latest rating scale 0.5-5.0"),
        ("2,2,3.7,103", "row 5: rating '3.7' is outside"),
        ("2,2,0,103", "row 5: rating '0' is outside"),
        ("2,2,four,103", "row 5: rating 'four' is not a number"),
        ("2,2,4.0,yesterday", "row 5: timestamp 'yesterday' is not a number (expected Unix seconds)"),
        ("2,x,4.0,103", "row 5: item id 'x' is not an integer"),
        ("2,2,,103", "row 5: missing rating"),
        ("2,2,4.0", "row 5: expected 4 comma-separated fields, found 3"),
        ("2,9,4.0,103", "row 5: unknown movie id 9 (not in movies.csv)"),
    ],
)
def test_bad_rating_rows_raise_with_file_and_row(tmp_path, bad_row, message):
    with pytest.raises(DataError) as err:
        _latest(tmp_path, GOOD + bad_row + "\n")
    assert str(err.value).startswith(str(tmp_path / "ratings.csv"))
    assert message in str(err.value)
    assert err.value.row == 5


def test_bad_rows_are_counted_when_skipping(tmp_path):
    rows = GOOD + "2,2,7.0,103\n2,3,four,104\n3,1,4.0,soon\n3,9,4.0,105\n3,2,4.0,106\n\n"
    data = _latest(tmp_path, rows, errors="skip")
    assert len(data.ratings) == 4
    assert data.report.skipped == {
        "ratings: rating outside the scale": 1,
        "ratings: non-numeric rating": 1,
        "ratings: non-numeric timestamp": 1,
        "ratings: unknown movie id": 1,
        "ratings: blank line": 1,
    }
    assert data.report.examples["ratings: rating outside the scale"] == [
        "ratings.csv, row 5: rating '7.0' is outside the movielens-latest rating scale 0.5-5.0 in steps of 0.5"
    ]


def test_too_many_fields_names_the_row(tmp_path):
    with pytest.raises(DataError, match=r"row 3: expected 4 comma-separated fields, found 5"):
        _latest(tmp_path, HEADER + "1,1,4.0,100\n1,2,3.5,101,9\n")


def test_duplicate_pairs_keep_the_latest_and_are_counted(tmp_path):
    rows = HEADER + "1,1,2.0,500\n1,2,3.0,100\n1,1,5.0,300\n2,1,1.0,100\n1,2,4.0,200\n"
    data = _latest(tmp_path, rows)
    got = data.ratings.set_index(["user", "item"])["rating"]
    assert got[(1, 1)] == 2.0  # timestamp 500 is the latest, though first in the file
    assert got[(1, 2)] == 4.0
    assert data.report.skipped == {"ratings: duplicate (user, item), kept the latest rating": 2}


def test_duplicate_pairs_without_timestamps_keep_the_later_row(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("user,item,rating\na,x,1\na,x,4\nb,x,2\n")
    data = read_interactions_csv(path, rating_scale=(1, 5))
    assert data.ratings.set_index(["user", "item"])["rating"][("a", "x")] == 4
    assert sum(data.report.skipped.values()) == 1


def test_unknown_item_in_a_new_users_ratings(tmp_path):
    vocab = Vocabulary("item", [1, 2, 3])
    path = tmp_path / "me.csv"
    path.write_text("item,rating\n1,4\n77,5\n2,3\n")
    with pytest.raises(DataError, match=r"me.csv, row 3: unknown item id '77' \(not in the item vocabulary\)"):
        read_new_user_ratings(path, vocab.indices)
    frame, report = read_new_user_ratings(path, vocab.indices, errors="skip")
    assert frame["item_index"].tolist() == [0, 1]
    assert report.skipped == {"ratings: unknown item id": 1}
    path.write_text("item,rating\n1,9\n")
    with pytest.raises(DataError, match="row 2: rating '9' is outside the model's rating scale 1-5"):
        read_new_user_ratings(path, vocab.indices, scale=RatingScale(1, 5, 1))


def test_users_with_too_few_ratings_for_a_support_size(ml_small_data):
    cfg = ColdStartConfig(support_sizes=(5, 40))
    ds = build_recsys_dataset(ml_small_data, cfg)
    ok, excluded = ds.task_report.per_size[40]["test"]
    assert excluded > 0 and ok + excluded == len(ds.taskset.test)
    episodes = list(evaluation_episodes(ds.taskset.test, cfg, seed=0))
    per_k = {k: sum(1 for e in episodes if e.extras["k"] == k) for k in (5, 40)}
    assert per_k == {5: len(ds.taskset.test), 40: ok}
    small = Task("u7", np.arange(30), np.full(30, 4.0))
    with pytest.raises(TaskTooSmallError, match="user 'u7' has 30 ratings; a support of 40"):
        ColdStartSampler(40).sample(small, 0)


def test_wrong_delimiters_say_what_was_expected(tmp_path):
    with pytest.raises(DataError, match=r"expected comma-separated fields .*line 1 looks semicolon-separated"):
        _latest(tmp_path, GOOD.replace(",", ";"))
    (tmp_path / "u.item").write_text("1|Toy Story (1995)|01-Jan-1995||url|" + "|".join("0" * 19) + "\n")
    (tmp_path / "u.data").write_text("1,1,4,100\n")
    with pytest.raises(DataError, match=r"u.data, row 1: expected tab-separated fields .*looks comma-separated"):
        read_movielens_100k(tmp_path / "u.data", tmp_path / "u.item")
    (tmp_path / "movies.dat").write_text("1::Toy Story (1995)::Comedy\n")
    (tmp_path / "ratings.dat").write_text("1\t1\t4\t100\n")
    with pytest.raises(DataError, match=r"ratings.dat, row 1: expected '::'-separated fields .*looks tab-separated"):
        read_movielens_1m(tmp_path / "ratings.dat", tmp_path / "movies.dat")
    path = tmp_path / "mine.csv"
    path.write_text("user\titem\trating\n1\t2\t3\n")
    with pytest.raises(DataError, match="expected comma-separated fields .*looks tab-separated"):
        read_interactions_csv(path)


def test_wrong_encodings_say_what_was_expected(tmp_path):
    (tmp_path / "movies.csv").write_bytes(MOVIES.encode("latin-1"))
    (tmp_path / "ratings.csv").write_text(GOOD)
    with pytest.raises(DataError, match=r"movies.csv, row 4: byte 0xe9 is not valid UTF-8; expected UTF-8"):
        read_movielens_latest(tmp_path / "ratings.csv", tmp_path / "movies.csv")
    (tmp_path / "movies.csv").write_bytes(MOVIES.encode("utf-16"))
    with pytest.raises(DataError, match="NUL bytes .*expected utf-8 text"):
        read_movielens_latest(tmp_path / "ratings.csv", tmp_path / "movies.csv")
    # MovieLens 1M ships latin-1: a UTF-8 copy is read correctly and the report says so
    (tmp_path / "movies.dat").write_text("1::Misérables, Les (1995)::Drama\n", encoding="utf-8")
    (tmp_path / "ratings.dat").write_text("1::1::4::100\n")
    data = read_movielens_1m(tmp_path / "ratings.dat", tmp_path / "movies.dat")
    assert data.items.loc[0, "title"] == "Misérables, Les (1995)"
    assert any("expected latin-1" in n and "read as UTF-8" in n for n in data.report.notes)


def test_empty_files(tmp_path):
    with pytest.raises(DataError, match=r"ratings.csv: the file is empty; expected a CSV with header userId,movieId,rating,timestamp"):
        _latest(tmp_path, "")
    with pytest.raises(DataError, match=r"ratings.csv: the file has no data rows"):
        _latest(tmp_path, HEADER)
    (tmp_path / "u.item").write_text("")
    (tmp_path / "u.data").write_text("1\t1\t4\t100\n")
    with pytest.raises(DataError, match=r"u.item: the file is empty; expected u.item: id\|title"):
        read_movielens_100k(tmp_path / "u.data", tmp_path / "u.item")
    (tmp_path / "u.item").write_text("1|A (1995)|01-Jan-1995||u|" + "|".join("0" * 19) + "\n")
    with pytest.raises(DataError, match=r"nope.data: no such file \(expected u.data"):
        read_movielens_100k(tmp_path / "nope.data", tmp_path / "u.item")


def test_every_row_bad_is_an_error_even_when_skipping(tmp_path):
    with pytest.raises(DataError, match="no valid rows left .*non-numeric rating 1"):
        _latest(tmp_path, HEADER + "1,1,x,100\n", errors="skip")


def test_blank_rating_in_a_user_csv_is_a_bad_row(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("user,item,rating\n1,2,3\n1,3,\n")
    with pytest.raises(DataError, match=r"r.csv, row 3: missing rating"):
        read_interactions_csv(path)
    data = read_interactions_csv(path, errors="skip")
    assert len(data.ratings) == 1 and data.report.skipped == {"ratings: missing rating": 1}


def test_missing_column_names_the_header(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("user,product,rating\n1,2,3\n")
    with pytest.raises(DataError, match=r"r.csv, row 1: no column 'item' \(columns: user, product, rating\)"):
        read_interactions_csv(path)
    data = read_interactions_csv(path, item_col="product", rating_scale=(1, 5))
    assert data.ratings["item"].tolist() == [2]


def test_ml100k_bad_rows(tmp_path):
    flags = "|".join("0" * 19)
    (tmp_path / "u.item").write_text(f"1|A (1995)|01-Jan-1995||u|{flags}\n2|B (1996)|01-Jan-1996||u|{flags}\n")
    (tmp_path / "u.data").write_text("1\t1\t4\t100\n1\t2\t6\t101\n")
    with pytest.raises(DataError, match=r"u.data, row 2: rating '6' is outside the movielens-100k rating scale 1-5"):
        read_movielens_100k(tmp_path / "u.data", tmp_path / "u.item")
    (tmp_path / "u.user").write_text("1|24|M|technician|85711\n")
    (tmp_path / "u.data").write_text("1\t1\t4\t100\n2\t2\t4\t101\n")
    with pytest.raises(DataError, match=r"u.data, row 2: unknown user id 2 \(not in u.user\)"):
        read_movielens_100k(tmp_path / "u.data", tmp_path / "u.item", tmp_path / "u.user")
