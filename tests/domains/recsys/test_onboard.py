"""Which items to ask a new user about (``rec onboard``, fewshot_apps.domains.recsys.onboard):
the strategies' picks on ml-latest-small and on planted data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fewshot_apps import api
from fewshot_apps.domains.recsys.onboard import (
    STRATEGIES,
    CoRatingSimilarity,
    EmbeddingSimilarity,
    greedy_order,
    item_evidence,
    onboarding_table,
    strategy_order,
)
from fewshot_apps.errors import FewshotError


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_n_distinct_items_the_same_for_a_seed(ml_small, strategy):
    first, lines = onboarding_table(ml_small, 12, strategy, seed=3)
    again, _ = onboarding_table(ml_small, 12, strategy, seed=3)
    pd.testing.assert_frame_equal(first, again)
    assert len(first) == 12 and first["item"].is_unique
    assert list(first["rank"]) == list(range(1, 13))
    assert list(first.columns) == ["rank", "item", "title", "n_ratings", "popularity", "spread",
                                   "redundancy", "score", "strategy"]
    assert set(first["strategy"]) == {strategy} and first["title"].str.len().gt(0).all()
    assert lines[0].startswith(f"strategy: {strategy} (")
    other, _ = onboarding_table(ml_small, 12, strategy, seed=4)
    if strategy == "random":  # only the random order depends on the seed
        assert other["item"].tolist() != first["item"].tolist()
    else:
        pd.testing.assert_frame_equal(other, first)


def test_popular_is_the_top_n_by_rating_count(ml_small):
    table, _ = onboarding_table(ml_small, 15, "popular")
    train = ml_small.train_interactions()
    counts = train.groupby("item_index").size()
    # most ratings first, ties to the lower vocabulary index
    expected = sorted(counts.index, key=lambda i: (-counts[i], i))[:15]
    assert table["item"].tolist() == [ml_small.item_vocab.ids[i] for i in expected]
    assert table["n_ratings"].tolist() == [counts[i] for i in expected]
    assert table["score"].tolist() == [float(counts[i]) for i in expected]


def test_the_parts_are_the_documented_formula(ml_small):
    table, _ = onboarding_table(ml_small, 10, "informative")
    train = ml_small.train_interactions()
    ratings = train.groupby("item_index")["rating"]
    index = ml_small.item_vocab.indices(table["item"].to_numpy())
    n = ratings.size()[index].to_numpy()
    squares = ratings.apply(lambda r: float(((r - r.mean()) ** 2).sum()))[index].to_numpy()
    variance = float(train["rating"].astype(float).var(ddof=0))
    np.testing.assert_allclose(table["n_ratings"], n)
    np.testing.assert_allclose(table["popularity"],
                               np.log1p(n) / np.log1p(ratings.size().max()))
    np.testing.assert_allclose(table["spread"], np.sqrt((squares + 5 * variance) / (n + 5)),
                               rtol=1e-5)
    np.testing.assert_allclose(table["score"], table["popularity"] * table["spread"]
                               - table["redundancy"])
    assert table["redundancy"].iat[0] == 0 and (table["redundancy"] >= 0).all()


def test_the_greedy_penalty_changes_the_pick_of_a_near_duplicate():
    base = np.array([1.0, 0.99, 0.9, 0.01])
    sim = np.eye(4)
    sim[0, 1] = sim[1, 0] = 0.95  # items 0 and 1: near-duplicates
    np.fill_diagonal(sim, 0)
    planted = CoRatingSimilarity(sim, "planted")
    assert greedy_order(base, planted, 0.0)[0].tolist() == [0, 1, 2, 3]
    order, redundancy = greedy_order(base, planted, 1.0)
    assert order.tolist() == [0, 2, 1, 3]
    np.testing.assert_allclose(redundancy, [0, 0, 0.95, 0])
    # the window of evidence candidates: the penalty never reaches past it
    assert greedy_order(base, planted, 1.0, window=1)[0].tolist() == [0, 1, 2, 3]
    assert greedy_order(base, planted, 1.0, window=2)[0].tolist() == [0, 2, 1, 3]


def test_items_nobody_rated_come_last():
    evidence = item_evidence(np.array([0, 0, 2, 2, 2]), np.array([1.0, 5.0, 3, 4, 5]), 4)
    assert evidence.n_ratings.tolist() == [2, 0, 3, 0]
    embeddings = EmbeddingSimilarity(np.array([[1.0, 0], [0, 1], [1, 0.1], [-1, 0]]), "e")
    for strategy in ("popular", "divisive", "informative"):
        order = strategy_order(strategy, evidence, embeddings, redundancy_weight=5.0)
        assert set(order[:2].tolist()) == {0, 2} and order[2:].tolist() == [1, 3], strategy


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    """A fixed split: 40 meta-train users. Items 1 and 2 are twins (users 1-20 rate both,
    alike: 1 or 5 stars); item 3, as divisive, is rated by users 21-39; items 4-6 by
    everyone, 3 stars."""
    rows = []
    for u in range(1, 41):
        star = 1 if u % 2 else 5
        if u <= 20:
            rows += [(u, 1, star), (u, 2, star)]
        elif u < 40:
            rows.append((u, 3, star))
        rows += [(u, i, 3) for i in (4, 5, 6)]
    path = tmp_path_factory.mktemp("twins") / "twins.csv"
    path.write_text("user,item,rating,split\n"
                    + "".join(f"u{u},{i},{r},train\n" for u, i, r in rows))
    return api.load_dataset(path)


def test_the_redundancy_penalty_skips_a_planted_twin(twins):
    divisive = api.onboard(twins, 3, strategy="divisive")
    assert divisive["item"].tolist() == [1, 2, 3]  # the twins lead, both asked
    informative = api.onboard(twins, 3)  # the default strategy
    assert informative["item"].tolist() == [1, 3, 2]  # the twin waits its turn
    assert informative["redundancy"].tolist()[:2] == [0, 0]
    assert informative["redundancy"].iat[2] == pytest.approx(20 / (20 + 200))
    assert informative.attrs["strategy"] == "informative"
    assert "co-rating cosine" in informative.attrs["similarity"]
    # without a penalty informative is divisive
    plain = api.onboard(twins, 3, redundancy_weight=0)
    assert plain["item"].tolist() == [1, 2, 3]


def test_a_models_embeddings_measure_redundancy(twins):
    class Factors:  # an mf-like model: item factors
        name = "planted-mf"

        def __init__(self, dataset):
            index = dataset.item_vocab.indices(np.array([1, 2, 3, 4, 5, 6]))
            self.item_factors = np.zeros((len(dataset.item_vocab), 2))
            self.item_factors[index] = [[1, 0], [0, 1], [1, 0.05], [-1, 0], [0, -1], [-1, 1]]

        def fit_predict(self, support_ids, support_ratings, query_ids):
            return np.zeros(len(query_ids))

    # by these factors, 1 and 3 are twins, not 1 and 2
    table = api.onboard(twins, 3, model=Factors(twins))
    assert table["item"].tolist() == [1, 2, 3]
    assert table.attrs["similarity"] == "cosine of planted-mf's item factors"


def test_n_outside_the_items_is_an_error(twins):
    with pytest.raises(FewshotError, match=r"n \(--n\) is 7, but twins has 6 items"):
        onboarding_table(twins, 7)
    with pytest.raises(FewshotError, match=r"n \(--n\) must be a whole number of at least 1"):
        onboarding_table(twins, 0)
    with pytest.raises(FewshotError, match="unknown onboarding strategy 'best'"):
        onboarding_table(twins, 2, "best")
