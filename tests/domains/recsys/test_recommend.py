"""domains/recsys/recommend.py: a new user's few ratings -> top-k unrated items, unknown item
ids reported, never dropped silently."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
import torch

from fewshot_apps.core.encoders import TableEncoder
from fewshot_apps.core.learners import build_learner
from fewshot_apps.domains.recsys.config import ColdStartConfig
from fewshot_apps.domains.recsys.dataset import build_recsys_dataset
from fewshot_apps.domains.recsys.readers import RatingScale, ReadReport, RecsysData
from fewshot_apps.domains.recsys.recommend import (
    ModelScorer,
    PopularitySimilarity,
    check_options,
    default_scorer,
    model_scorer,
    ratings_from_frame,
    read_ratings,
    recommend_items,
)
from fewshot_apps.errors import DataError, FewshotError

N_ITEMS = 20  # item ids 101..120; odd ids are Drama, even ids Comedy; 121 listed, unrated


def tiny_data() -> RecsysData:
    """16 users; user u rates items 101..(104 + u % 12) (low ids are popular)."""
    rng = np.random.default_rng(0)
    rows, t = [], 1_000_000_000.0
    for u in range(1, 17):
        for i in range(101, 105 + u % 12):
            t += 10.0
            rows.append((u, i, float(rng.integers(1, 6)), t))
    ratings = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    ratings = ratings.assign(
        rating=ratings["rating"].astype(np.float32), line=np.arange(len(rows)) + 2
    )
    ids = np.arange(101, 122)
    items = pd.DataFrame(
        {"item": ids, "title": [f"Film {i}" for i in ids],
         "genres": ["Drama" if i % 2 else "Comedy" for i in ids], "year": 2000.0}
    )  # fmt: skip
    return RecsysData(
        "tiny", "movielens-latest", ratings, items, None, None, RatingScale(0.5, 5.0, 0.5),
        ReadReport(),
    )  # fmt: skip


@pytest.fixture(scope="module")
def ds():
    config = ColdStartConfig(
        split_fractions=(0.5, 0.25, 0.25), support_sizes=(3,), n_query=2, min_eval_ratings=5,
        new_item_quantile=None,
    )  # fmt: skip
    return build_recsys_dataset(tiny_data(), config)


def frame(**columns) -> pd.DataFrame:
    return pd.DataFrame(columns)


# ------------------------------------------------------------------ reading


def test_ratings_from_frame_detects_columns_and_normalizes():
    out = ratings_from_frame(
        frame(movieId=[101, " 102 ", 103], Rating=["4", 3.5, 5], title=["a", "b", "c"])
    )
    assert list(out.columns) == ["user", "item", "rating", "row"]
    assert out["item"].tolist() == ["101", "102", "103"]  # str, as written, stripped
    assert out["rating"].dtype == np.float64 and out["rating"].tolist() == [4.0, 3.5, 5.0]
    assert out["user"].tolist() == ["", "", ""]
    assert out["row"].tolist() == [2, 3, 4]  # spreadsheet rows: the header is row 1
    assert out.attrs["implicit"] is False and out.attrs["duplicates"] == 0
    users = ratings_from_frame(frame(UserId=[7, 8], item_id=[101, 102], score=[1, 2]))
    assert users["user"].tolist() == ["7", "8"]


def test_explicit_column_names_win_and_must_exist():
    out = ratings_from_frame(frame(a=[1], b=[2], item=[3]), item_column="a", rating_column="b")
    assert (out["item"].iat[0], out["rating"].iat[0]) == ("1", 2.0)
    with pytest.raises(DataError, match="no column 'nope'"):
        ratings_from_frame(frame(item=[1]), item_column="nope")


def test_without_a_rating_column_every_item_counts_as_liked():
    out = ratings_from_frame(frame(item=[101, 102]))
    assert out.attrs["implicit"] is True and out["rating"].isna().all()


def test_repeated_items_keep_the_last_rating():
    out = ratings_from_frame(frame(item=[101, 102, 101], rating=[1, 2, 5]))
    assert out.set_index("item")["rating"].to_dict() == {"101": 5.0, "102": 2.0}
    assert out.attrs["duplicates"] == 1
    assert out.set_index("item")["row"].to_dict() == {"101": 4, "102": 3}
    # the same item for two users is not a repeat
    two = ratings_from_frame(frame(user=["a", "b"], item=[101, 101], rating=[1, 2]))
    assert len(two) == 2 and two.attrs["duplicates"] == 0


@pytest.mark.parametrize(
    ("table", "message", "row"),
    [
        (frame(item=["101", ""], rating=[4, 5]), "blank item id in column 'item'", 3),
        (frame(item=[101, None], rating=[4, 5]), "blank item id", 3),
        (frame(item=[101, 102], rating=["4", "great"]), "rating 'great' in column 'rating' is not a number", 3),
        (frame(item=[101, 102], rating=[4, None]), "is not a number", 3),
    ],
)  # fmt: skip
def test_bad_rows_are_named(table, message, row):
    with pytest.raises(DataError, match=message) as info:
        ratings_from_frame(table, path="mine.csv")
    assert info.value.row == row and "mine.csv" in str(info.value)


def test_missing_item_column_and_empty_table():
    with pytest.raises(DataError, match=r"no item column.*--item-column"):
        ratings_from_frame(frame(thing=[1], rating=[4]))
    with pytest.raises(DataError, match="no rows"):
        ratings_from_frame(frame(item=[], rating=[]))


@pytest.mark.parametrize("sep", [",", "\t", ";"])
def test_read_ratings_separators_gzip_and_bom(tmp_path, sep):
    text = f"movieId{sep}rating\n101{sep}4\n102{sep}2.5\n"
    plain = tmp_path / "r.csv"
    plain.write_text(text, encoding="utf-8-sig")
    zipped = tmp_path / "r.csv.gz"
    zipped.write_bytes(gzip.compress(text.encode()))
    for path in (plain, zipped):
        out = read_ratings(path)
        assert out["item"].tolist() == ["101", "102"] and out["rating"].tolist() == [4.0, 2.5]


def test_read_ratings_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_ratings(tmp_path / "missing.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("  \n")
    with pytest.raises(DataError, match="the file is empty"):
        read_ratings(empty)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("item,rating,note\n101,4,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match="not valid UTF-8") as info:
        read_ratings(latin)
    assert info.value.row == 2
    broken = tmp_path / "broken.csv.gz"
    broken.write_bytes(gzip.compress(b"item,rating\n101,4\n")[:15])
    with pytest.raises(DataError, match="truncated or corrupt gzip"):
        read_ratings(broken)


def test_check_options():
    check_options(1, 0)
    with pytest.raises(FewshotError, match="at least 1"):
        check_options(0, 0)
    with pytest.raises(FewshotError, match="0 or more"):
        check_options(5, -1)


# ------------------------------------------------------------------ training-free scorer


def test_popularity_similarity_scores(ds):
    n = len(ds.item_vocab)
    assert n == N_ITEMS + 1
    pop = PopularitySimilarity(ds, similarity_weight=0.0)
    liked = ds.item_vocab.indices([101, 103])
    s = pop.scores(liked, np.array([5.0, 5.0]))
    assert s.shape == (n,) and s.dtype == np.float64
    count = ds.item_stats.count
    np.testing.assert_allclose(s, np.log1p(count) / np.log1p(count.max()))
    assert s.max() == pytest.approx(1.0) and s.min() >= 0.0
    sim = PopularitySimilarity(ds, similarity_weight=1.0)
    drama = np.array([i % 2 == 1 for i in ds.item_vocab.ids])
    s = sim.scores(liked, np.array([5.0, 5.0]))  # liked two dramas
    assert np.all(s >= -1 - 1e-9) and np.all(s <= 1 + 1e-9)
    assert s[drama].min() > s[~drama].max()
    s = sim.scores(liked, np.array([0.5, 0.5]))  # disliked them: dramas last
    assert s[drama].max() < s[~drama].min()
    # neutral ratings (the middle of the scale): no taste, popularity blends with 0
    np.testing.assert_allclose(sim.scores(liked, np.array([2.75, 2.75])), 0.0)


def test_similarity_weight_is_checked_and_the_default_scorer_cached(ds):
    with pytest.raises(FewshotError, match="similarity_weight must be in"):
        PopularitySimilarity(ds, 1.5)
    a = default_scorer(ds, 0.3)
    assert default_scorer(ds, 0.3) is a and default_scorer(ds, 0.6) is not a


# ------------------------------------------------------------------ recommend_items


def test_top_k_excludes_rated_items_and_is_ranked(ds):
    ratings = ratings_from_frame(frame(item=[101, 102, 103], rating=[5, 1, 4]))
    table, report = recommend_items(PopularitySimilarity(ds), ratings, k=5)
    assert list(table.columns) == ["rank", "item", "title", "score", "model"]
    assert table["rank"].tolist() == [1, 2, 3, 4, 5]
    assert not set(table["item"]) & {101, 102, 103}
    assert table["item"].map(type).eq(int).all()  # the vocabulary's ids
    assert table["title"].tolist() == [f"Film {i}" for i in table["item"]]
    assert table["score"].is_monotonic_decreasing
    assert (table["model"] == "popularity-similarity").all()
    assert report.unknown_items == [] and report.skipped_users == []
    kept, _ = recommend_items(PopularitySimilarity(ds), ratings, k=N_ITEMS + 1, exclude_rated=False)
    assert {101, 102, 103} <= set(kept["item"]) and len(kept) == N_ITEMS + 1


def test_unknown_ids_are_reported_with_their_rows(ds):
    ratings = ratings_from_frame(frame(item=[101, 999, "abc", 104], rating=[5, 4, 3, 4]))
    table, report = recommend_items(PopularitySimilarity(ds), ratings, k=3)
    assert report.unknown_items == [("", 3, "999"), ("", 4, "abc")]
    assert len(table) == 3 and not set(table["item"]) & {101, 104}
    text = "\n".join(report.lines())
    assert "2 item id(s) unknown to tiny (not used): '999' (row 3), 'abc' (row 4)" in text


def test_a_user_with_no_known_item_is_skipped_and_none_at_all_is_an_error(ds):
    ratings = ratings_from_frame(
        frame(user=["a", "b", "a", "c"], item=[101, 998, 102, 103], rating=[5, 4, 3, 2])
    )
    table, report = recommend_items(PopularitySimilarity(ds), ratings, k=2)
    assert list(table.columns)[0] == "user"
    assert table["user"].tolist() == ["a", "a", "c", "c"]  # order of first appearance
    assert report.skipped_users == [("b", "none of its 1 item id(s) is known to the model")]
    assert report.unknown_items == [("b", 3, "998")]
    assert not set(table.loc[table["user"] == "a", "item"]) & {101, 102}
    with pytest.raises(FewshotError, match=r"no item id in the ratings is known.*'998'"):
        recommend_items(PopularitySimilarity(ds), ratings_from_frame(frame(item=[998, 999])))


def test_implicit_ratings_count_as_the_top_of_the_scale(ds):
    ratings = ratings_from_frame(frame(item=[101, 103]))
    table, report = recommend_items(PopularitySimilarity(ds, 1.0), ratings, k=3)
    assert any("every listed item counts as liked (5)" in n for n in report.notes)
    assert all(i % 2 == 1 for i in table["item"])  # liked dramas -> dramas


def test_ratings_off_the_scale_name_their_row(ds):
    ratings = ratings_from_frame(frame(item=[101, 102], rating=[4, 7]))
    with pytest.raises(DataError, match=r"rating 7 is outside tiny's rating scale 0.5-5.0") as info:
        recommend_items(PopularitySimilarity(ds), ratings, path="r.csv")
    assert info.value.row == 3


def test_repeats_are_noted(ds):
    ratings = ratings_from_frame(frame(item=[101, 101], rating=[1, 4]))
    _, report = recommend_items(PopularitySimilarity(ds), ratings)
    assert "1 repeated item(s): the last rating of each was used" in report.notes


def test_min_item_ratings_leaves_out_rare_items(ds):
    ratings = ratings_from_frame(frame(item=[101], rating=[5]))
    threshold = int(np.median(ds.item_stats.count))
    table, report = recommend_items(
        PopularitySimilarity(ds), ratings, k=N_ITEMS, min_item_ratings=threshold
    )
    counts = ds.item_stats.count[ds.item_vocab.indices(table["item"].to_numpy())]
    assert (counts >= threshold).all()
    rare = int((ds.item_stats.count < threshold).sum())
    assert len(table) == N_ITEMS + 1 - 1 - rare
    assert f"{rare} items with fewer than {threshold} training ratings were not considered" in (
        report.notes
    )
    with pytest.raises(FewshotError):
        recommend_items(PopularitySimilarity(ds), ratings, k=0)


class Fixed:
    """A scorer that returns given scores (ties and NaN on purpose)."""

    name = "fixed"

    def __init__(self, dataset, scores):
        self.dataset = dataset
        self.values = np.asarray(scores, dtype=np.float64)
        self.seen: list[tuple] = []

    def describe(self):
        return "fixed scores"

    def scores(self, item_index, ratings):
        self.seen.append((item_index.tolist(), ratings.tolist()))
        return self.values


def test_ties_go_to_the_lower_index_and_nan_scores_come_last(ds):
    n = len(ds.item_vocab)
    scores = np.zeros(n)
    scores[[3, 7]] = 2.0
    scores[[0, 1]] = np.nan
    scorer = Fixed(ds, scores)
    ratings = ratings_from_frame(frame(item=[105], rating=[5]))
    table, _ = recommend_items(scorer, ratings, k=n)
    ids = ds.item_vocab.ids
    # 3 and 7 first, then the zeros in vocabulary order (105 is rated), NaN last
    expected = [3, 7] + [i for i in range(2, n) if i not in (3, 4, 7)] + [0, 1]
    assert table["item"].tolist() == [ids[i] for i in expected]
    assert table["rank"].tolist() == list(range(1, n))
    # the scorer saw the vocabulary indices and ratings of the known items
    assert scorer.seen == [([4], [5.0])]
    top2, _ = recommend_items(scorer, ratings, k=2)
    assert top2["item"].tolist() == [ids[3], ids[7]]


# ------------------------------------------------------------------ model scorers


class MeanModel(torch.nn.Module):
    """fit_predict: the support's mean rating plus a learned per-item offset."""

    name = "mean-model"

    def __init__(self, n):
        super().__init__()
        self.offset = torch.nn.Parameter(torch.linspace(0, 1, n))

    def fit_predict(self, support_ids, support_labels, query_ids):
        with torch.no_grad():
            return np.mean(support_labels) + self.offset[torch.as_tensor(query_ids)].numpy()


def test_model_scorer_scores_every_item_and_is_cached_until_the_weights_change(ds):
    model = MeanModel(len(ds.item_vocab))
    scorer = model_scorer(model, ds)
    s = scorer.scores(np.array([0, 1]), np.array([4.0, 2.0]))
    np.testing.assert_allclose(s, 3.0 + np.linspace(0, 1, len(ds.item_vocab)), rtol=1e-6)
    assert model_scorer(model, ds) is scorer
    with torch.no_grad():
        model.offset.add_(1.0)
    fresh = model_scorer(model, ds)
    assert fresh is not scorer
    assert fresh.scores(np.array([0]), np.array([3.0]))[0] == pytest.approx(4.0)
    table, report = recommend_items(fresh, ratings_from_frame(frame(item=[101], rating=[4])), k=3)
    assert report.model == "mean-model" and "adapted to the user's ratings" in report.description
    assert table["item"].tolist() == [121, 120, 119]  # the largest offsets


def test_cached_item_embeddings_give_the_same_predictions_as_the_model(ds):
    torch.manual_seed(0)
    features = torch.randn(len(ds.item_vocab), 6)
    model = build_learner("anil", TableEncoder(features, hidden=8, out_dim=4), "regression")
    support, labels = np.array([0, 2, 5]), np.array([4.0, 1.0, 3.5])
    direct = model.fit_predict(support, labels, np.arange(len(ds.item_vocab)))
    scorer = ModelScorer(model, ds)
    assert scorer._frozen is not None  # the trunk is computed once, here
    np.testing.assert_allclose(scorer.scores(support, labels), direct, rtol=1e-5, atol=1e-6)
    assert isinstance(model.encoder, TableEncoder)  # the model's own encoder is put back


@pytest.mark.parametrize("name", ["anil", "metasgd", "cnp"])
def test_a_learner_with_an_implicit_head_recommends_by_fit_rank(ds, name):
    """The ranking mixes who-watches and rating (cached item table or not), and the report
    says what the score column is; weight 1 ranks by the predicted rating again."""
    torch.manual_seed(0)
    features = torch.randn(len(ds.item_vocab), 6)
    model = build_learner(name, TableEncoder(features, hidden=8, out_dim=4), "regression",
                          rank_loss_weight=1.0, rank_rating_weight=0.25)
    support, labels = np.array([0, 2, 5]), np.array([4.0, 1.0, 3.5])
    every = np.arange(len(ds.item_vocab))
    scorer = ModelScorer(model, ds)
    assert scorer.ranks_by_own_score
    np.testing.assert_allclose(scorer.scores(support, labels),
                               model.fit_rank(support, labels, every), rtol=1e-5, atol=1e-6)
    _, report = recommend_items(scorer, ratings_from_frame(frame(item=[101], rating=[4])), k=3)
    assert ("score: 0.75 x the standardized who-watches score + 0.25 x the standardized "
            "predicted rating (rank_rating_weight 0.25), not a rating") in report.notes
    model.config.rank_rating_weight = 1.0
    scorer = ModelScorer(model, ds)
    assert not scorer.ranks_by_own_score
    np.testing.assert_allclose(scorer.scores(support, labels),
                               model.fit_predict(support, labels, every), rtol=1e-5, atol=1e-6)
    _, report = recommend_items(scorer, ratings_from_frame(frame(item=[101], rating=[4])), k=3)
    assert "score: the predicted rating" in report.notes


def test_the_report_says_when_the_score_includes_the_co_rating_affinity(ds):
    torch.manual_seed(0)
    model = build_learner("cnp", ds.make_encoder({"hidden": 8, "out_dim": 4, "depth": 1}),
                          "regression", rank_loss_weight=1.0, rank_rating_weight=0.25,
                          rank_affinity_scale=4.0, rank_liking=1.0)
    _, report = recommend_items(ModelScorer(model, ds),
                                ratings_from_frame(frame(item=[101], rating=[4])), k=3)
    note = next(n for n in report.notes if n.startswith("score: 0.75 x"))
    assert "co-rating affinity" in note and "rank_affinity_scale 4" in note
    assert "rank_liking 1" in note
