"""domains/recsys/readers/base.py: the skeleton the recommendation readers share. The
rating scale, the MovieLens format defaults, the small helpers (years from titles, genres,
dedupes) and read_movielens, the read-validate-report template every MovieLens release
fills in, exercised here with a made-up release: a CSV of items, a headerless latin-1 users
file, a ratings CSV and a tags hook, every hook recorded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fewshot_apps.core.table_reader import ReadReport, parse_numbers
from fewshot_apps.domains.recsys.readers.base import (
    FORMAT_SCALES,
    FileLayout,
    MovieLensFormat,
    RatingScale,
    RecsysData,
    clean_genres,
    declared_scale,
    dedupe_ratings,
    headerless_latin1,
    read_movielens,
    year_from_title,
)
from fewshot_apps.errors import DataError

SCALE = RatingScale(1, 5, 1)
ITEMS = "id,title,genres\n1,Heat (1995),Action|Crime\n2,Unknown,(no genres listed)\n" \
        "3,Café (2001),Drama\n"
USERS = "1|24|F|writer|12345\n2|35|M|artist|54321\n"
RATINGS = "uid,iid,score,ts\n1,1,4,100\n1,3,5,200\n2,2,3,150\n2,1,2,300\n"


class Hooks:
    """The release's own steps, recording that the template called them."""

    def __init__(self):
        self.called: list[str] = []

    def genres(self, table, sink):
        self.called.append("genres")
        return clean_genres(table.col("genres"))

    def years(self, table, keep, titles):
        self.called.append("years")
        return year_from_title(titles)

    def user_fields(self, table, sink):
        self.called.append("user_fields")
        return {"age": parse_numbers(table, "age", "age", sink, integer=True),
                "occupation": table.col("occupation").str.strip().to_numpy()}

    def note_users(self, users, report):
        self.called.append("note_users")
        report.note(f"{len(users)} users")

    def read_tags(self, path, ratings, items, report, sink):
        self.called.append("read_tags")
        return pd.DataFrame({"user": [1], "item": [1], "tag": [path.read_text().strip()],
                             "timestamp": [np.nan]})


def toy_format(hooks: Hooks) -> MovieLensFormat:
    return MovieLensFormat(
        name="toy-lens",
        items=FileLayout(role="items", description="id,title,genres", sep=",",
                         required=("id", "title", "genres")),
        ratings=FileLayout(role="ratings", description="uid,iid,score,ts", sep=",",
                           required=("uid", "iid", "score", "ts"), all_numeric=True),
        item_word="film", genres=hooks.genres, years=hooks.years, note_missing_genres=True,
        users=headerless_latin1("users", "user|age|gender|occupation|zip", "|",
                                ("user", "age", "gender", "occupation", "zip")),
        user_fields=hooks.user_fields, note_users=hooks.note_users, read_tags=hooks.read_tags,
    )  # fmt: skip


def release(tmp_path: Path, items=ITEMS, users=USERS, ratings=RATINGS) -> dict:
    paths = {"items_path": tmp_path / "items.csv", "users_path": tmp_path / "users.txt",
             "ratings_path": tmp_path / "ratings.csv", "tags_path": tmp_path / "tags.txt"}
    paths["items_path"].write_text(items, encoding="utf-8")
    paths["users_path"].write_bytes(users.encode("latin-1"))
    paths["ratings_path"].write_text(ratings)
    paths["tags_path"].write_text("great\n")
    return paths


def read(tmp_path, hooks=None, errors="raise", **files):
    hooks = hooks or Hooks()
    paths = release(tmp_path, **files)
    return read_movielens(toy_format(hooks), paths.pop("ratings_path"), paths.pop("items_path"),
                          scale=SCALE, errors=errors, name="toy", **paths)


# --------------------------------------------------------------------------- scales


def test_a_rating_scale_flags_ratings_off_its_range_or_grid():
    half = RatingScale(0.5, 5.0, 0.5)
    assert half.invalid([0.5, 5.0, 3.5, 0.0, 5.5, 3.25]).tolist() == [
        False, False, False, True, True, True]
    assert RatingScale(1, 10).invalid([1.7, 10.0, 10.5]).tolist() == [False, False, True]


def test_a_rating_scale_prints_whole_numbers_plainly():
    assert str(RatingScale(1, 5, 1)) == "1-5 in steps of 1"
    assert str(RatingScale(0.5, 5.0, 0.5)) == "0.5-5.0 in steps of 0.5"
    assert str(RatingScale(1, 10)) == "1-10"


def test_a_rating_scale_prints_bounds_with_the_decimals_they_need():
    assert str(RatingScale(0.25, 5, 0.25)) == "0.25-5.00 in steps of 0.25"
    assert str(RatingScale(0, 1, 0.125)) == "0.0-1.0 in steps of 0.125"
    assert str(RatingScale(0.125, 1, 0.125)) == "0.125-1.000 in steps of 0.125"
    assert str(RatingScale(1, 5, 0.5)) == "1.0-5.0 in steps of 0.5"
    assert str(RatingScale(0.1 + 0.2, 5.5)) == "0.3-5.5"  # no float noise


def test_declared_scales_of_the_formats_and_a_cards_overrides():
    assert declared_scale("movielens-latest", {}) == FORMAT_SCALES["movielens-latest"] == (
        RatingScale(0.5, 5.0, 0.5))
    assert declared_scale("movielens-1m", {}) == RatingScale(1, 5, 1)
    assert declared_scale("interactions-csv", {"rating_scale": [1, 10]}) is None
    assert declared_scale("movielens-100k", {"rating_scale": [0, 10]}) == RatingScale(0, 10, 1)
    assert declared_scale("movielens-100k", {"rating_step": 0.5}) == RatingScale(1, 5, 0.5)
    assert declared_scale("movielens-latest", {"rating_step": 0}) == RatingScale(0.5, 5.0, None)


# --------------------------------------------------------------------------- helpers


def test_years_come_from_the_end_of_titles_only():
    titles = pd.Series(["Heat (1995)", "1984 (1956) ", "Unknown", "(2001) Odyssey", "Up (20)"])
    np.testing.assert_array_equal(year_from_title(titles), [1995, 1956, np.nan, np.nan, np.nan])


def test_genre_markers_of_no_genre_become_empty():
    out = clean_genres(pd.Series([" Drama|Comedy ", "(no genres listed)", "unknown", ""]))
    assert out.tolist() == ["Drama|Comedy", "", "", ""]


def test_dedupe_keeps_the_latest_rating_then_the_later_row(tmp_path):
    ratings = pd.DataFrame({"user": [1, 1, 1, 2, 2], "item": [5, 5, 6, 5, 5],
                            "rating": [1.0, 2.0, 3.0, 4.0, 5.0],
                            "timestamp": [20.0, 10.0, 5.0, np.nan, np.nan],
                            "line": [2, 3, 4, 5, 6]})
    report = ReadReport()
    out = dedupe_ratings(ratings, report, "ratings", tmp_path / "r.csv")
    assert out["line"].tolist() == [2, 4, 6]  # file order; user 1 kept time 20, user 2 row 6
    assert report.skipped == {"ratings: duplicate (user, item), kept the latest rating": 2}
    assert report.examples["ratings: duplicate (user, item), kept the latest rating"][0] == (
        "r.csv, row 3: user 1 rated item 5 again later; this rating was dropped")


def test_nothing_left_to_dedupe_is_an_error_listing_what_was_skipped(tmp_path):
    report = ReadReport()
    report.skip("ratings: non-numeric rating", 4)
    empty = pd.DataFrame(columns=["user", "item", "rating", "timestamp", "line"])
    with pytest.raises(DataError, match=r"r\.csv: no valid rows left \(see the skipped rows: "
                       r"ratings: non-numeric rating 4\)"):
        dedupe_ratings(empty, report, "ratings", tmp_path / "r.csv")
    with pytest.raises(DataError, match=r"skipped rows: none\)"):
        dedupe_ratings(empty, ReadReport(), "ratings", tmp_path / "r.csv")


def test_recsys_data_counts_and_implicit_feedback():
    ratings = pd.DataFrame({"user": [1, 1, 2], "item": [1, 2, 2]})
    items = pd.DataFrame({"item": [1, 2, 3]})
    data = RecsysData("d", "f", ratings, items, None, None, None, ReadReport())
    assert data.implicit and data.counts() == {"ratings": 3, "users": 2, "rated_items": 2,
                                               "listed_items": 3}
    tagged = RecsysData("d", "f", ratings, items, None, pd.DataFrame({"tag": ["a"]}), SCALE,
                        ReadReport())
    assert not tagged.implicit and tagged.counts()["tags"] == 1


# --------------------------------------------------------------------------- the template


def test_the_template_reads_items_users_ratings_and_tags_calling_every_hook(tmp_path):
    hooks = Hooks()
    data = read(tmp_path, hooks)
    assert hooks.called == ["genres", "years", "user_fields", "note_users", "read_tags"]
    assert (data.name, data.format, data.scale) == ("toy", "toy-lens", SCALE)
    assert data.items["item"].tolist() == [1, 2, 3]
    assert data.items["title"].tolist() == ["Heat (1995)", "Unknown", "Café (2001)"]
    np.testing.assert_array_equal(data.items["year"], [1995.0, np.nan, 2001.0])
    assert data.items["genres"].tolist() == ["Action|Crime", "", "Drama"]
    assert data.users.to_dict("list") == {"user": [1, 2], "age": [24.0, 35.0],
                                          "gender": ["F", "M"], "occupation": ["writer", "artist"],
                                          "zip": ["12345", "54321"]}
    assert data.user_feature_columns == ["age", "gender", "occupation"]
    r = data.ratings
    assert r[["user", "item"]].values.tolist() == [[1, 1], [1, 3], [2, 2], [2, 1]]
    assert r["rating"].dtype == np.float32 and r["timestamp"].dtype == np.float64
    assert r["line"].tolist() == [2, 3, 4, 5]
    assert data.tags["tag"].tolist() == ["great"]
    notes = data.report.notes
    assert "2 users" in notes
    assert "1 items list no genres ('(no genres listed)': no genre features)" in notes
    assert any(n.startswith("1 of 3 items have no release year") and "'Unknown'" in n
               for n in notes)
    assert data.report.rows_read == {"items": 3, "users": 2, "ratings": 4}


def test_without_users_or_tags_the_template_skips_those_steps(tmp_path):
    hooks = Hooks()
    paths = release(tmp_path)
    data = read_movielens(toy_format(hooks), paths["ratings_path"], paths["items_path"],
                          scale=SCALE, errors="raise", name="toy")
    assert data.users is None and data.tags is None and data.user_feature_columns == []
    assert hooks.called == ["genres", "years"]


@pytest.mark.parametrize("ratings,message", [
    ("uid,iid,score,ts\n1,1,4,100\n1,9,5,200\n", r"ratings\.csv, row 3: unknown film id 9 "
                                                 r"\(not in items\.csv\)"),
    ("uid,iid,score,ts\n1,1,4,100\n7,2,5,200\n", r"ratings\.csv, row 3: unknown user id 7 "
                                                 r"\(not in users\.txt\)"),
    ("uid,iid,score,ts\n1,1,4.5,100\n", r"ratings\.csv, row 2: rating '4.5' is outside the "
                                        r"toy rating scale 1-5 in steps of 1"),
    ("uid,iid,score,ts\n1,1,4,100\n1.5,1,4,100\n", r"row 3: user id '1.5' is not an integer"),
    ("uid,iid,score,ts\n1,1,4,noon\n", r"row 2: timestamp 'noon' is not a number \(expected "
                                       r"Unix seconds\)"),
])  # fmt: skip
def test_a_bad_rating_row_raises_naming_its_file_row_and_value(tmp_path, ratings, message):
    with pytest.raises(DataError, match=message):
        read(tmp_path, ratings=ratings)


def test_skipping_counts_bad_rating_rows_and_keeps_the_rest(tmp_path):
    ratings = ("uid,iid,score,ts\n1,1,4,100\n1,9,5,200\n7,2,5,200\n2,2,9,10\n2,3,2,20\n"
               "2,3,3,30\n")
    data = read(tmp_path, errors="skip", ratings=ratings)
    assert data.ratings[["user", "item", "rating"]].values.tolist() == [[1, 1, 4], [2, 3, 3]]
    assert data.report.skipped == {
        "ratings: unknown film id": 1, "ratings: unknown user id": 1,
        "ratings: rating outside the scale": 1,
        "ratings: duplicate (user, item), kept the latest rating": 1}


def test_an_item_listed_twice_keeps_its_first_listing(tmp_path):
    items = ITEMS + "1,Heat again (2000),Drama\n"
    with pytest.raises(DataError, match=r"items\.csv, row 5: film id 1 is listed twice"):
        read(tmp_path, items=items)
    data = read(tmp_path, errors="skip", items=items)
    assert data.items["title"].tolist() == ["Heat (1995)", "Unknown", "Café (2001)"]
    assert data.report.skipped["items: duplicate film id"] == 1


def test_a_user_listed_twice_keeps_the_first(tmp_path):
    data = read(tmp_path, errors="skip", users=USERS + "1|60|M|doctor|00000\n")
    assert data.users["age"].tolist() == [24.0, 35.0]
    assert data.report.skipped["users: duplicate user id"] == 1


def test_a_latin1_users_file_is_read_as_latin1(tmp_path):
    data = read(tmp_path, users="1|24|F|écrivain|12345\n2|35|M|artist|54321\n")
    assert data.users["occupation"].tolist() == ["écrivain", "artist"]


def test_a_release_whose_ratings_are_all_bad_is_an_error_even_when_skipping(tmp_path):
    with pytest.raises(DataError, match=r"no valid rows left \(see the skipped rows: ratings: "
                       r"unknown film id 1\)"):
        read(tmp_path, errors="skip", ratings="uid,iid,score,ts\n1,9,4,100\n")

