"""Bad-input corpus: recommendation data.

Two kinds of input: a ratings CSV to train on or inspect (a plain CSV, no card: ``data
inspect``, ``rec train``, :func:`fewshot_apps.api.load_dataset`) and a new user's ratings
for ``rec recommend`` / :func:`fewshot_apps.api.recommend`. Each case writes one tiny bad
file and asserts what the user is told: an error naming the file, the row where there is one
and the problem (never a traceback), or a skip that is counted and reported. The reader-level
cases of the MovieLens formats live in tests/domains/recsys/test_bad_input.py.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from fewshot_apps import api
from fewshot_apps.cli import main
from fewshot_apps.errors import CardError, DataError, FewshotError

HEADER = "user,item,rating,timestamp\n"
GOOD = HEADER + "u1,1,4,100\nu1,2,3,101\nu2,1,5,102\n"  # rows 2-4; a bad row 5 follows
# A published split (rows 2-5; a bad row 6 follows).
FIXED = ("user,item,rating,split,role\nu1,1,4,train,\nu1,2,3,train,\nu2,1,5,test,support\n"
         "u2,2,4,test,query\n")


def write(path: Path, content: str | bytes) -> Path:
    """Text as UTF-8, bytes as they are; text to a ``.gz`` name is gzipped."""
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(content.encode("utf-8")))
    else:
        path.write_bytes(content.encode("utf-8"))
    return path


# ------------------------------------------------------------------ ratings to train on

EXPECTED = "expected a SMILES column (smiles) for molecules, or user, item and rating columns"

DATA_ERRORS = [
    pytest.param("r.csv", "item,rating,timestamp\n1,4,100\n",
                 ["row 1: cannot tell what this CSV holds: no user column (columns: 'item', "
                  "'rating', 'timestamp')", EXPECTED], id="no-user-column"),
    pytest.param("r.csv", "user,rating\nu1,4\n",
                 ["row 1: cannot tell what this CSV holds: no item column (columns: 'user', "
                  "'rating')", EXPECTED], id="no-item-column"),
    pytest.param("r.csv", "customer,product,amount\nc1,p1,3\n",
                 ["row 1: cannot tell what this CSV holds: no user and item column (columns: "
                  "'customer', 'product', 'amount')", EXPECTED], id="neither-domain"),
    pytest.param("r.csv", "user,item,clicked\nu1,1,1\nu2,1,0\n",
                 ["row 1: user and item columns but no rating column (columns: 'user', 'item', "
                  "'clicked'); a plain ratings CSV needs one named rating", "implicit feedback"],
                 id="no-rating-but-another-column"),
    pytest.param("r.csv", GOOD + "u2,2,great,103\n",
                 ["row 5: rating 'great' is not a number"], id="rating-is-text"),
    pytest.param("r.csv", GOOD + "u2,2,nan,103\n",
                 ["row 5: rating 'nan' is not a number"], id="rating-is-nan"),
    pytest.param("r.csv", GOOD + "u2,2,4,yesterday\n",
                 ["row 5: timestamp 'yesterday' is not a number (expected Unix seconds)"],
                 id="timestamp-not-numeric"),
    pytest.param("r.csv", "", ["the file is empty; expected a CSV with a header row"],
                 id="empty-file"),
    pytest.param("r.csv", "\n  \n", ["the file is empty; expected a CSV with a header row"],
                 id="blank-lines-only"),
    pytest.param("r.csv", HEADER, ["the file has no data rows; expected comma-separated "
                                   "columns user,item,rating[,timestamp]"], id="header-only"),
    pytest.param("r.csv", GOOD + ",2,4,103\n", ["row 5: missing user"], id="blank-user-id"),
    pytest.param("r.csv", GOOD + "u3,,4,103\n", ["row 5: missing item"], id="blank-item-id"),
    pytest.param("r.csv", GOOD + "u2,2,4,103,9\n",
                 ["row 5: expected 4 comma-separated fields, found 5"], id="too-many-fields"),
    pytest.param("r.csv", "user,item,rating\nu1,1,4\nJosé,1,4\n".encode("latin-1"),
                 ["row 3: byte 0xe9 is not valid UTF-8; expected UTF-8 text",
                  'encoding = "latin-1"'], id="latin-1-file"),
    pytest.param("r.csv", "user,item,rating,remarque_é\nu1,1,4,x\n".encode("latin-1"),
                 ["row 1: the header has byte 0xe9, which is not valid UTF-8"],
                 id="latin-1-header"),
    pytest.param("r.csv", GOOD.encode("utf-16"),
                 ["the file has NUL bytes (UTF-16 or binary?); expected UTF-8 text"],
                 id="utf-16-file"),
    pytest.param("r.csv.gz", b"\x1f\x8b\x08\x00cut short",
                 ["truncated or corrupt gzip file"], id="corrupt-gzip"),
    pytest.param("r.csv", "smiles;label\nCCO;1\n",
                 ["row 1: semicolon-separated columns ('smiles', 'label'); a molecule CSV "
                  "must be comma-separated"], id="semicolon-molecule-csv"),
    # a published (fixed) split: split (train / valid / test) and role (support / query)
    pytest.param("r.csv", FIXED + "u3,1,4,tset,\n",
                 ["row 6: split 'tset' in column 'split' is not train, valid or test"],
                 id="fixed-unknown-split"),
    pytest.param("r.csv", FIXED + "u3,1,4,,\n",
                 ["row 6: missing split in column 'split' (expected train, valid or test)"],
                 id="fixed-blank-split"),
    pytest.param("r.csv", FIXED + "u2,3,4,test,supprot\n",
                 ["row 6: role 'supprot' in column 'role' is not support or query (or blank)"],
                 id="fixed-unknown-role"),
    pytest.param("r.csv", FIXED + "u1,3,4,train,query\n",
                 ["row 6: role 'query' on a train row: only valid and test rows are support or "
                  "query rows"], id="fixed-role-on-a-train-row"),
    pytest.param("r.csv", FIXED + "u2,3,4,test,\n",
                 ["row 6: test row without a role: with a 'role' column every test row is "
                  "support or query"], id="fixed-test-row-without-a-role"),
    pytest.param("r.csv", FIXED + "u4,1,4,valid,support\nu4,2,2,valid,\n",
                 ["row 7: valid row without a role, while other valid rows have one"],
                 id="fixed-valid-rows-with-and-without-roles"),
    pytest.param("r.csv", FIXED + "u3,1,4,test,support\nu3,2,2,test,support\n",
                 ["row 6: test user 'u3' has no query rows (its 2 test rows are all support "
                  "rows): each test user needs at least one support and one query row"],
                 id="fixed-test-user-without-query-rows"),
    pytest.param("r.csv", FIXED + "u3,1,4,test,query\n",
                 ["row 6: test user 'u3' has no support rows (its test row is a query row)"],
                 id="fixed-test-user-without-support-rows"),
    pytest.param("r.csv", FIXED + "u3,1,good,test,query\n",
                 ["row 6: rating 'good' is not a number"], id="fixed-rating-is-text"),
    pytest.param("r.csv", FIXED + "u2,1,5,train,\n",
                 ["row 6: user 'u2' rated item 1 on rows of different splits or roles (row 4 "
                  "(test support), row 6 (train))"], id="fixed-one-rating-in-two-splits"),
    pytest.param("r.csv", "user,item,rating,role\nu1,1,4,\n",
                 ["row 1: a 'role' column (support / query) but no split column (columns: "
                  "'user', 'item', 'rating', 'role')"], id="fixed-role-without-split-column"),
    pytest.param("r.csv", "user,item,split\nu1,1,train\n",
                 ["row 1: user and item columns but no rating column (columns: 'user', 'item', "
                  "'split')"], id="fixed-split-without-rating-column"),
    pytest.param("r.csv", FIXED.replace(",train,", ",valid,"),
                 ["the split column has no train rows: a fixed split needs meta-training rows"],
                 id="fixed-no-train-rows"),
]


@pytest.mark.parametrize("via", ["api", "cli"])
@pytest.mark.parametrize("name, content, fragments", DATA_ERRORS)
def test_bad_ratings_csv_is_a_clear_error(tmp_path, capsys, via, name, content, fragments):
    path = write(tmp_path / name, content)
    if via == "api":
        with pytest.raises(DataError) as err:
            api.load_dataset(path)
        message = str(err.value)
        assert err.value.path == path
    else:
        assert main(["data", "inspect", str(path), "--quiet"]) == 2
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err and captured.out == ""
        message = captured.err.removeprefix("error: ").strip()
    assert message.startswith(str(path))
    for fragment in fragments:
        assert fragment in message


def test_missing_file_names_the_file(tmp_path, capsys):
    path = tmp_path / "nowhere.csv"
    assert main(["rec", "train", "--dataset", str(path), "--learner", "maml",
                 "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.startswith(f"error: {path}: no such file (expected a CSV")


def test_rating_out_of_a_cards_scale_in_a_gzipped_file_names_the_row(tmp_path):
    write(tmp_path / "r.csv.gz", "user,item,rating\nu1,1,4\nu1,2,7\n")
    card = tmp_path / "mine.toml"
    card.write_text('name = "mine"\ndomain = "recsys"\nformat = "interactions-csv"\n'
                    '[files]\nratings = "r.csv.gz"\n[options]\nrating_scale = [1, 5]\n')
    with pytest.raises(DataError, match=r"r\.csv\.gz, row 3: rating '7' is outside the "
                                        r"configured rating scale 1-5"):
        api.load_dataset(card)


def test_a_cards_split_column_missing_from_the_file_names_the_file(tmp_path):
    write(tmp_path / "r.csv", FIXED)
    card = tmp_path / "mine.toml"
    card.write_text('name = "mine"\ndomain = "recsys"\nformat = "interactions-csv"\n'
                    '[files]\nratings = "r.csv"\n[options]\nsplit_col = "fold"\n')
    with pytest.raises(DataError, match=r"r\.csv, row 1: no split column 'fold' \(columns: "
                                        r"user, item, rating, split, role\)"):
        api.load_dataset(card)


def test_card_expected_count_that_is_not_a_number_names_the_card(tmp_path):
    write(tmp_path / "r.csv", GOOD)
    card = tmp_path / "mine.toml"
    card.write_text('name = "mine"\ndomain = "recsys"\nformat = "interactions-csv"\n'
                    '[files]\nratings = "r.csv"\n[expected]\nratings = "many"\n')
    with pytest.raises(CardError, match=r"mine\.toml: \[expected\] ratings must be a whole "
                                        r"number, not 'many'"):
        api.load_dataset(card)


@pytest.mark.parametrize("content, skipped, check", [
    pytest.param(GOOD + "u1,1,2,50\n",
                 {"ratings: duplicate (user, item), kept the latest rating": 1},
                 lambda ds: ds.data.ratings.set_index(["user", "item"])["rating"][("u1", 1)] == 4,
                 id="duplicate-user-item-keeps-the-latest"),
    pytest.param(GOOD.replace("u1,2", "\n\nu1,2"), {"ratings: blank line": 2},
                 lambda ds: len(ds.data.ratings) == 3, id="blank-lines-counted"),
])
def test_counted_skips_are_reported(tmp_path, capsys, content, skipped, check):
    path = write(tmp_path / "r.csv", content)
    ds = api.load_dataset(path)
    assert ds.report.skipped == skipped and check(ds)
    assert main(["data", "inspect", str(path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"skipped rows           {sum(skipped.values())} by reason:" in out
    for reason, count in skipped.items():
        assert f"\n    {reason}: {count}\n" in out


@pytest.mark.parametrize("name, content, shown", [
    pytest.param("r.csv", GOOD.replace(",", ";"), "; semicolon-separated)", id="semicolon-file"),
    pytest.param("r.csv", GOOD.replace(",", "\t"), "; tab-separated)", id="tab-file"),
    pytest.param("r.csv.gz", GOOD, "timestamp 'timestamp')", id="gzipped-file"),
])
def test_other_delimiters_and_gzip_are_read_and_said(tmp_path, name, content, shown):
    ds = api.load_dataset(write(tmp_path / name, content))
    assert len(ds.data.ratings) == 3 and ds.report.skipped == {}
    assert ds.card.title.endswith(shown)


def test_users_too_small_to_evaluate_are_counted(tmp_path, capsys):
    path = write(tmp_path / "r.csv", GOOD)
    assert main(["data", "inspect", str(path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "evaluated users        valid 0 / test 0 (>= 30 ratings; 0 / 1 have fewer)" in out
    assert api.load_dataset(path).task_report.excluded["test"] == {
        "fewer than 30 ratings (not evaluated)": 1}


def test_too_few_ratings_to_train_is_a_clear_error(tmp_path, capsys):
    path = write(tmp_path / "r.csv", GOOD)
    assert main(["rec", "train", "--dataset", str(path), "--learner", "attention",
                 "--device", "cpu", "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: no meta-train user has the 20 ratings a training "
                          "episode needs (support_size 10 + n_query 10); its 1 meta-train users "
                          "have 1 to 1 ratings")
    assert not (tmp_path / "run" / "model.pt").exists()


def test_no_user_with_enough_ratings_to_evaluate_is_said_not_a_traceback(tmp_path, capsys):
    """21-28 ratings per user: enough to train (20 per episode), too few to validate or test
    (30): training says there was no model selection, --evaluate says why it has no scores."""
    rows = [f"u{u},{i},{1 + (u + i) % 5}" for u in range(1, 41) for i in range(1, 22 + u % 7)]
    path = write(tmp_path / "r.csv", "user,item,rating\n" + "\n".join(rows) + "\n")
    code = main(["rec", "train", "--dataset", str(path), "--learner", "attention",
                 "--set", "steps=2", "--set", "encoder.hidden=8", "--set", "encoder.depth=1",
                 "--device", "cpu", "--out", str(tmp_path / "run"), "--quiet", "--evaluate"])
    captured = capsys.readouterr()
    assert code == 2 and "Traceback" not in captured.err
    assert ("trained attention on r: 2 steps, no validation user has 30 ratings, so no model "
            "selection: the last step's model is kept") in captured.out
    assert captured.err.startswith("error: r: no test user has the 30 ratings evaluation needs")
    assert (tmp_path / "run" / "model.pt").is_file()


# ------------------------------------------------------------------ a new user's ratings


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A plain-CSV data set: 6 users x 8 items, ratings 1-5 (the observed scale)."""
    path = tmp_path_factory.mktemp("tiny") / "tiny.csv"
    rows = [f"u{u},{i},{1 + (u * i) % 5}" for u in range(1, 7) for i in range(1, 9)]
    path.write_text("user,item,rating\n" + "\n".join(rows) + "\n")
    return api.load_dataset(path)


REC_ERRORS = [
    pytest.param(None, DataError, ["no such file"], id="ratings-file-missing"),
    pytest.param("", DataError, ["the file is empty"], id="ratings-file-empty"),
    pytest.param("item,rating\n", DataError, ["the ratings table has no rows"],
                 id="ratings-header-only"),
    pytest.param("item,rating\n1,4\n2,good\n", DataError,
                 ["row 3: rating 'good' in column 'rating' is not a number"],
                 id="ratings-rating-is-text"),
    pytest.param("item,rating\n1,4\n2,9\n", DataError,
                 ["row 3: rating 9 is outside tiny's rating scale 1-5"],
                 id="ratings-out-of-scale"),
    pytest.param("item,rating\n1,4\n,5\n", DataError,
                 ["row 3: blank item id in column 'item'"], id="ratings-blank-item"),
    pytest.param("user,item,rating\nann,1,4\n,2,5\n", DataError,
                 ["row 3: blank user id in column 'user'"], id="ratings-blank-user"),
    pytest.param("title,rating\nx,4\n", DataError,
                 ["no item column: expected one named item", "columns are ['title', 'rating']"],
                 id="ratings-no-item-column"),
    pytest.param("item,rating,note\n1,4,ok\n2,5,café\n".encode("latin-1"), DataError,
                 ["row 3: byte 0xe9 is not valid UTF-8; expected UTF-8 text"],
                 id="ratings-latin-1"),
    pytest.param("item,rating\n998,4\n999,5\n", FewshotError,
                 ["no item id in the ratings is known to the model (2 unknown, e.g. '998'); "
                  "item ids must be tiny ids (e.g. [1, 2, 3])"], id="ratings-all-unknown"),
]


@pytest.mark.parametrize("content, error, fragments", REC_ERRORS)
def test_bad_new_user_ratings_are_clear_errors(tiny, tmp_path, content, error, fragments):
    path = tmp_path / "me.csv"
    if content is not None:
        write(path, content)
    with pytest.raises(error) as err:
        api.recommend(None, path, k=3, dataset=tiny)
    assert str(err.value).startswith(str(path))
    for fragment in fragments:
        assert fragment in str(err.value)


@pytest.mark.parametrize("content, lines, attrs", [
    pytest.param("item,rating\n1,4\n999,5\n",
                 ["1 item id(s) unknown to tiny (not used): '999' (row 3)"],
                 {"unknown_items": [("", 3, "999")], "skipped_users": []},
                 id="unknown-item-counted"),
    pytest.param("user,item,rating\nann,1,4\nbob,999,5\nbob,998,2\n",
                 ["2 item id(s) unknown to tiny (not used): '999' (row 3, user bob), "
                  "'998' (row 4, user bob)",
                  "user bob: skipped: none of its 2 item id(s) is known to the model"],
                 {"skipped_users": [("bob", "none of its 2 item id(s) is known to the model")]},
                 id="user-with-no-usable-rating-skipped"),
    pytest.param("item,rating\n1,4\n1,2\n",
                 ["1 repeated item(s): the last rating of each was used"], {},
                 id="repeated-item-noted"),
    pytest.param("item\n1\n2\n",
                 ["no ratings given: every listed item counts as liked (5)"], {},
                 id="implicit-ratings-noted"),
    pytest.param("item;rating\n1;4\n2;5\n", [], {"unknown_items": []},
                 id="semicolon-ratings-read"),
])
def test_new_user_ratings_skips_are_counted_and_reported(tiny, tmp_path, content, lines, attrs):
    table = api.recommend(None, write(tmp_path / "me.csv", content), k=3, dataset=tiny)
    assert table.attrs["report"][0].startswith("model: popularity-similarity")
    for line in lines:
        assert line in table.attrs["report"]
    for key, value in attrs.items():
        assert table.attrs[key] == value
    assert len(table) == 3  # one list of k = 3 (bob, when skipped, has none)


# ------------------------------------------------------------------ which items to ask a new user

ONBOARD_ERRORS = [
    pytest.param({"n": 0}, ["n (--n) must be a whole number of at least 1, not 0"], id="n-zero"),
    pytest.param({"n": -2}, ["n (--n) must be a whole number of at least 1, not -2"],
                 id="n-negative"),
    pytest.param({"n": 9}, ["n (--n) is 9, but tiny has 8 items"], id="n-above-the-items"),
    pytest.param({"dataset": "no-such-set"},
                 ["unknown data set 'no-such-set'; known: fsmol, movielens-100k"],
                 id="unknown-data-set"),
    pytest.param({"dataset": "tox21"},
                 ["tox21: molecule data; `fewshot-apps rec` works on rating data"],
                 id="molecule-data-set"),
    pytest.param({"dataset": "nowhere.csv"}, ["nowhere.csv: no such file"],
                 id="missing-ratings-file"),
    pytest.param({"model": "global-mean"},
                 ["model 'global-mean' has no item embeddings or item-to-item similarity to "
                  "measure redundancy with; give a meta-trained model's folder, mf or item-knn"],
                 id="model-without-item-similarity"),
    pytest.param({"model": "nowhere"},
                 ["model 'nowhere': no saved model folder there, nor one of default"],
                 id="unknown-model"),
]


@pytest.mark.parametrize("via", ["api", "cli"])
@pytest.mark.parametrize("options, fragments", ONBOARD_ERRORS)
def test_bad_onboarding_requests_are_clear_errors(tiny, tmp_path, capsys, monkeypatch, via,
                                                  options, fragments):
    monkeypatch.chdir(tmp_path)  # nowhere.csv: a file that is not there
    options = {"dataset": str(tiny.card.source), "n": 3, **options}
    if via == "api":
        with pytest.raises(FewshotError) as err:
            api.onboard(options["dataset"], options["n"], model=options.get("model"))
        message = str(err.value)
    else:
        args = ["rec", "onboard", "--dataset", options["dataset"], "--n", str(options["n"])]
        args += ["--model", options["model"]] if "model" in options else []
        assert main(args) == 2
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err and captured.out == ""
        message = captured.err.removeprefix("error: ").strip()
    for fragment in fragments:
        assert fragment in message


def test_an_unknown_onboarding_strategy_is_refused(tiny, capsys):
    with pytest.raises(FewshotError, match="unknown onboarding strategy 'best'; expected one "
                                           "of informative, divisive, popular, random"):
        api.onboard(tiny, 3, strategy="best")
    with pytest.raises(SystemExit):
        main(["rec", "onboard", "--dataset", str(tiny.card.source), "--strategy", "best"])
    assert "invalid choice: 'best'" in capsys.readouterr().err


def test_onboarding_lists_items_nobody_rated_last_and_says_so(tmp_path):
    """Item 4 is rated on a test row only: no meta-train user rated it, so it comes last in
    every order but random's and the report says how many such items were listed."""
    path = write(tmp_path / "r.csv", "user,item,rating,split\nu1,1,4,train\nu1,2,2,train\n"
                 "u2,1,5,train\nu2,3,1,train\nu3,4,5,test\nu3,1,4,test\n")
    for strategy in ("informative", "divisive", "popular"):
        table = api.onboard(path, 4, strategy=strategy)
        assert table["item"].tolist()[-1] == 4 and table["n_ratings"].tolist()[-1] == 0
        assert ("1 of the 4 items have no meta-train rating: few new users will know them"
                in table.attrs["report"])
    assert "have no meta-train rating" not in " ".join(api.onboard(path, 3).attrs["report"])


def test_a_min_item_ratings_no_item_reaches_is_an_error_not_an_empty_list(tiny, tmp_path):
    ratings = write(tmp_path / "me.csv", "item,rating\n1,4\n")
    most = int(tiny.item_stats.count.max())
    with pytest.raises(FewshotError, match=rf"^min_item_ratings={most + 1}: no item of tiny has "
                       rf"that many training ratings \(the most: {most}\), so there is nothing "
                       "to recommend"):
        api.recommend(None, ratings, k=3, dataset=tiny, min_item_ratings=most + 1)
    assert len(api.recommend(None, ratings, k=3, dataset=tiny, min_item_ratings=most)) >= 1


def test_a_molecule_model_given_to_recommend_is_named_as_such(tmp_path, capsys):
    """Its data set is not looked for among the ratings data sets."""
    model = tmp_path / "mol-model"
    model.mkdir()
    (model / "config.json").write_text(
        '{"dataset": "my-assays", "domain": "molecules", "learner": {"name": "protonet"}}')
    ratings = write(tmp_path / "me.csv", "item,rating\n1,4\n")
    assert main(["rec", "recommend", "--ratings", str(ratings), "--model", str(model)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {model}: model 'protonet' was trained on molecules data, not ratings: it is "
        "not a recommendation model")
