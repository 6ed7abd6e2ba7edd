"""domains/recsys/domain.py: RecsysDomain claims a plain CSV with user, item and rating
columns (any delimiter, timestamp optional), refuses user-item pairs without ratings, says
what another CSV lacks, and finds the data set a saved rating model needs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fewshot_apps.core.domain import get_domain
from fewshot_apps.domains.recsys.config import ColdStartConfig
from fewshot_apps.domains.recsys.domain import RecsysDomain, saved_data_source
from fewshot_apps.errors import DataError, FewshotError
from fewshot_apps.plain_csv import PlainCSV


def plain(columns: list[str], delimiter: str = ",", path: Path = Path("/d/r.csv")) -> PlainCSV:
    return PlainCSV(path=path, name=path.name.split(".")[0], columns=columns,
                    delimiter=delimiter, shown=", ".join(repr(c) for c in columns))


def ratings_csv(path: Path, n_users: int = 16) -> Path:
    rng = np.random.default_rng(0)
    lines, t = ["user,item,rating,timestamp"], 1_000_000_000
    for u in range(1, n_users + 1):
        for i in rng.choice(np.arange(1, 31), size=15 + u % 10, replace=False):
            t += 7
            lines.append(f"{u},{i},{int(rng.integers(1, 6))},{t}")
    path.write_text("\n".join(lines) + "\n")
    return path


SMALL = {"split_fractions": (0.5, 0.25, 0.25), "support_sizes": (5,), "n_query": 5,
         "min_eval_ratings": 12, "new_item_quantile": None}


def test_it_is_the_registered_recsys_domain():
    domain = get_domain("recsys")
    assert isinstance(domain, RecsysDomain) and domain.name == "recsys"
    assert "user, item and rating columns" in domain.csv_expectation


def test_user_item_rating_and_timestamp_are_claimed_with_their_spellings():
    card = RecsysDomain().card_for_csv(plain(["userId", "movieId", "Rating", "timestamp"]))
    assert (card.name, card.domain, card.format) == ("r", "recsys", "interactions-csv")
    assert card.files == {"ratings": "r.csv"} and card.root == Path("/d")
    assert card.source == Path("/d/r.csv")
    assert card.options == {"user_col": "userId", "item_col": "movieId", "rating_col": "Rating",
                            "timestamp_col": "timestamp", "delimiter": ","}
    assert card.title == ("r.csv (plain CSV: user 'userId', item 'movieId', rating 'Rating', "
                          "timestamp 'timestamp')")


def test_without_a_timestamp_and_with_another_delimiter():
    card = RecsysDomain().card_for_csv(plain(["user_id", "item_id", "stars"], delimiter=";"))
    assert card.options == {"user_col": "user_id", "item_col": "item_id", "rating_col": "stars",
                            "timestamp_col": "", "delimiter": ";"}
    assert card.title == ("r.csv (plain CSV: user 'user_id', item 'item_id', rating 'stars', no "
                          "timestamp; semicolon-separated)")


def test_user_and_item_with_other_columns_but_no_rating_are_refused():
    csv = plain(["user", "item", "clicked"])
    with pytest.raises(DataError) as caught:
        RecsysDomain().card_for_csv(csv)
    err = caught.value
    assert err.path == csv.path and err.row == 1
    assert err.problem.startswith("user and item columns but no rating column (columns: 'user', "
                                  "'item', 'clicked'); a plain ratings CSV needs one named "
                                  "rating or ratings or score or stars")
    assert "implicit feedback" in err.problem


@pytest.mark.parametrize("columns", [["user", "item"], ["userId", "movieId", "timestamp"]])
def test_bare_user_item_pairs_are_implicit_feedback(columns):
    card = RecsysDomain().card_for_csv(plain(columns))
    assert card.format == "interactions-csv" and card.options["implicit"] is True
    assert card.options["rating_col"] == ""
    assert card.options["timestamp_col"] == ("timestamp" if "timestamp" in columns else "")
    assert "implicit feedback" in card.title


@pytest.mark.parametrize("columns", [["smiles", "assay", "label"], ["user", "rating"],
                                     ["item", "rating"]])
def test_a_csv_without_users_or_items_is_not_claimed(columns):
    assert RecsysDomain().card_for_csv(plain(columns)) is None


@pytest.mark.parametrize("columns,missing", [
    (["smiles", "label"], "no user and item column"),
    (["user", "score"], "no item column"),
    (["movieId", "score"], "no user column"),
    (["userId", "id"], None),
])  # fmt: skip
def test_csv_missing_says_which_of_user_and_item_is_lacking(columns, missing):
    assert RecsysDomain().csv_missing(plain(columns)) == missing


# --------------------------------------------------------------------------- saved models


def test_saved_data_source_prefers_the_users_file_and_refuses_one_that_moved(tmp_path):
    assert saved_data_source({"dataset": "movielens-latest-small"}, "m") == (
        "movielens-latest-small")
    assert saved_data_source({}, "m") is None
    there = ratings_csv(tmp_path / "r.csv")
    assert saved_data_source({"dataset": "r", "dataset_source": str(there)}, "m") == str(there)
    with pytest.raises(FewshotError, match=rf"^/models/m: the model was trained on "
                       rf"{tmp_path}/gone\.csv, which is not there any more; pass its data set"):
        saved_data_source({"dataset_source": str(tmp_path / "gone.csv")}, "/models/m")


def test_a_model_needs_a_named_data_set():
    with pytest.raises(FewshotError, match=r"^/models/m: the model's config names no data set; "
                       r"pass dataset=$"):
        RecsysDomain().dataset_for_model({}, "/models/m")


def test_a_passed_data_set_is_used_as_it_is():
    class Loaded:
        domain = "recsys"

        def saved_model_config(self):
            return {}

    ds = Loaded()
    assert RecsysDomain().dataset_for_model({"dataset": "x"}, "m", ds) is ds


def test_the_data_set_is_rebuilt_with_the_models_cold_start_settings(tmp_path):
    path = ratings_csv(tmp_path / "mine.csv")
    config = ColdStartConfig(**SMALL, seed=5).to_dict()
    ds = RecsysDomain().dataset_for_model(
        {"dataset": "mine", "dataset_source": str(path), "cold_start": config}, "m")
    assert ds.name == "mine" and ds.config.seed == 5 and ds.config.support_sizes == (5,)
    by_path = RecsysDomain().dataset_for_model({"cold_start": config}, "m", str(path))
    assert by_path.split_fingerprint() == ds.split_fingerprint()


def test_load_takes_cold_start_options_and_ignores_progress(tmp_path):
    path = ratings_csv(tmp_path / "mine.csv")
    ds = RecsysDomain().load(str(path), progress=True, seed=2, **SMALL)
    assert ds.domain == "recsys" and ds.config.seed == 2 and ds.card.source == path.absolute()


def test_describe_refuses_molecule_split_options_and_reports_a_csv(tmp_path):
    path = ratings_csv(tmp_path / "mine.csv")
    with pytest.raises(FewshotError, match=r"^test_assays, test_fraction: molecule split "
                       r"options; they do not apply to rating data$"):
        RecsysDomain().describe(str(path), test_assays="A", test_fraction=0.1, seed=None)
    text = RecsysDomain().describe(str(path), progress=False, seed=None)
    assert "mine" in text and "16" in text
