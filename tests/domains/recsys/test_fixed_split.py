"""A published (fixed) split: ``user,item,rating,split[,role]`` rows are the split, exactly.

The file written here has meta-train users, validation users with roles, and three kinds of
test user: user-cold (a new user rating known items), item-cold (a meta-train user rating
items no train row rates) and user-and-item-cold (a new user rating such items). Loading it
(as a plain CSV, as a card's file, in a suite) must give exactly those tasks, supports and
queries, and the cold-start metrics must be computed on exactly the written query rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fewshot_apps import api
from fewshot_apps.bench.runner import run_suite
from fewshot_apps.core.metrics import metric_function, ndcg_at_k
from fewshot_apps.domains.recsys.baselines import build_rec_baseline
from fewshot_apps.domains.recsys.dataset import load_recsys_dataset
from fewshot_apps.domains.recsys.evaluation import (
    FIXED_QUERY_METRICS,
    QUERY_METRICS,
    evaluate_cold_start,
)
from fewshot_apps.domains.recsys.readers import read_interactions_csv
from fewshot_apps.errors import CardError

N_TRAIN_USERS, KNOWN_ITEMS = 12, 30
COLD_ITEMS = [101, 102, 103, 104, 105, 106]  # rated in test rows only

# Test users: (user, [(item, rating, role)]).
TEST_USERS = {
    "new-user": [(1, 5, "support"), (2, 4, "support"), (3, 1, "support"), (4, 2, "query"),
                 (5, 5, "query"), (6, 3, "query"), (7, 4, "query")],  # user cold
    "t1": [(101, 4, "support"), (102, 2, "support"), (103, 5, "query"), (8, 3, "query"),
           (9, 1, "query")],  # item cold: t1 is also a meta-train user
    "new-both": [(104, 3, "support"), (105, 5, "query"), (106, 2, "query"),
                 (10, 4, "query")],  # user and item cold
}
VALID_USERS = {
    "v1": [(11, 4, "support"), (12, 3, "support"), (13, 5, "query"), (14, 2, "query")],
    "v2": [(15, 1, "support"), (16, 4, "query"), (17, 3, "query")],
}


def train_rows(seed: int = 0) -> list[tuple]:
    """Each of t1..t12 rates 22 of the known items 1..30 (t1 not the items of its test
    rows)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(1, N_TRAIN_USERS + 1):
        items = np.setdiff1d(np.arange(1, KNOWN_ITEMS + 1), [8, 9] if u == 1 else [])
        for item in rng.choice(items, size=22, replace=False):
            rows.append((f"t{u}", int(item), int(rng.integers(1, 6)), "train", ""))
    return rows


def held_rows(users: dict, split: str, roles: bool = True) -> list[tuple]:
    return [(u, i, r, split, role if roles else "") for u, rows in users.items()
            for i, r, role in rows]


def write_fixed(path, *, roles: bool = True, extra: str = ""):
    rows = train_rows() + held_rows(VALID_USERS, "valid", roles) + held_rows(TEST_USERS, "test", roles)
    header = "user,item,rating,split" + (",role" if roles else "")
    lines = [header] + [",".join(map(str, r if roles else r[:4])) for r in rows]
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


@pytest.fixture(scope="module")
def fixed_csv(tmp_path_factory):
    return write_fixed(tmp_path_factory.mktemp("fixed") / "published.csv")


@pytest.fixture(scope="module")
def ds(fixed_csv):
    return api.load_dataset(fixed_csv)


def written(users: dict, role: str | None = None) -> dict:
    """user -> sorted [(item, rating)] of the written rows (of one role)."""
    return {u: sorted((i, float(r)) for i, r, rl in rows if role in (None, rl))
            for u, rows in users.items()}


def task_rows(ds, task, mask=None) -> list[tuple]:
    items = np.asarray(ds.item_vocab.ids)
    keep = np.ones(len(task), dtype=bool) if mask is None else mask
    return sorted((items[i], float(r)) for i, r in zip(task.examples[keep], task.labels[keep]))


# ------------------------------------------------------------------ the split as written


def test_the_header_is_claimed_as_a_fixed_split(ds, fixed_csv):
    assert ds.card.domain == "recsys" and ds.card.options["split_col"] == "split"
    assert ds.card.title.endswith("; fixed split from 'split', roles from 'role')")
    assert ds.config.split_method == "fixed"
    assert ("published.csv: fixed split from column 'split': users with train / valid / test "
            "rows 12 / 2 / 3; supports and queries from column 'role'") in ds.report.notes


def test_tasks_are_exactly_the_written_users_and_rows(ds):
    ts = ds.taskset
    assert sorted(t.name for t in ts.train) == sorted(f"t{u}" for u in range(1, 13))
    assert all("support" not in t.extras and len(t) == 22 for t in ts.train)
    for split, users in (("valid", VALID_USERS), ("test", TEST_USERS)):
        tasks = {t.name: t for t in ts.split(split)}
        assert set(tasks) == set(users)
        for name, task in tasks.items():
            support = task.extras["support"]
            assert task_rows(ds, task) == written(users)[name]
            assert task_rows(ds, task, support) == written(users, "support")[name]
            assert task_rows(ds, task, ~support) == written(users, "query")[name]
    # t1 trains on its train rows and is tested on its item-cold test rows
    t1_train = next(t for t in ts.train if t.name == "t1")
    assert not set(t1_train.examples) & set(next(t for t in ts.test if t.name == "t1").examples)


def test_items_only_in_test_rows_are_cold_items_and_meta_train_never_sees_them(ds):
    cold = set(np.asarray(ds.item_vocab.ids)[np.flatnonzero(ds.new_items.mask)])
    assert cold == set(COLD_ITEMS) and ds.new_items.fixed
    train = ds.train_interactions()
    assert set(train["user"]) == {f"t{u}" for u in range(1, 13)}
    assert not set(train["item"]) & cold
    assert len(train) == N_TRAIN_USERS * 22  # no valid or test row reaches a fit
    assert ds.graph["user"].num_nodes == N_TRAIN_USERS
    assert ds.item_stats.n_ratings == len(train)
    kinds = {t.name: bool(t.extras["new_item"].any()) for t in ds.taskset.test}
    assert kinds == {"new-user": False, "t1": True, "new-both": True}


def test_one_fixed_episode_per_user_whatever_the_seed_and_draws(ds):
    for seed in (0, 7):
        episodes = ds.evaluation_episodes("test", seed=seed, n_draws=3)
        assert sorted(e.task for e in episodes) == sorted(TEST_USERS)
        for ep in episodes:
            assert ep.extras["k"] == "fixed" and ep.extras["draw"] == 0
            items = np.asarray(ds.item_vocab.ids)
            support = sorted(zip(items[ep.support_examples], ep.support_labels.astype(float)))
            query = sorted(zip(items[ep.query_examples], ep.query_labels.astype(float)))
            assert support == written(TEST_USERS, "support")[ep.task]
            assert query == written(TEST_USERS, "query")[ep.task]
            assert list(ep.extras["heldout_examples"]) == list(ep.query_examples)


def test_a_card_naming_the_file_gives_the_same_split(fixed_csv, ds, tmp_path):
    card = tmp_path / "published.toml"
    card.write_text(f'name = "published"\ndomain = "recsys"\nformat = "interactions-csv"\n'
                    f'[files]\nratings = "{fixed_csv}"\n'.replace(str(fixed_csv), "p.csv"))
    (tmp_path / "p.csv").write_text(fixed_csv.read_text())
    other = load_recsys_dataset(card, use_cache=False)
    assert other.config.split_method == "fixed"
    for split in ("train", "valid", "test"):
        mine = {t.name: task_rows(other, t) for t in other.taskset.split(split)}
        assert mine == {t.name: task_rows(ds, t) for t in ds.taskset.split(split)}


# ------------------------------------------------------------------ metrics on the written rows


def hand_mae(prediction) -> dict:
    """user -> MAE over its written query rows of ``prediction(user, item, support)``."""
    out = {}
    for user, rows in TEST_USERS.items():
        support = [(i, r) for i, r, role in rows if role == "support"]
        errors = [abs(prediction(i, support) - r) for i, r, role in rows if role == "query"]
        out[user] = float(np.mean(errors))
    return out


def train_ratings() -> pd.DataFrame:
    return pd.DataFrame(train_rows(), columns=["user", "item", "rating", "split", "role"])


@pytest.fixture(scope="module")
def global_mean_results(ds):
    model = build_rec_baseline("global-mean", ds)
    results, _ = evaluate_cold_start(model, ds, seeds=(0, 1), draws=2)
    return results


def test_global_mean_mae_is_computed_on_exactly_the_written_query_rows(global_mean_results):
    mu = train_ratings()["rating"].mean()
    expected = hand_mae(lambda item, support: mu)
    got = global_mean_results[(global_mean_results["metric"] == "mae")
                              & (global_mean_results["item_split"] == "all")]
    assert set(got["support_size"]) == {"fixed"} and set(got["draw"]) == {0}
    assert len(got) == 2 * len(TEST_USERS)  # one episode per user and seed
    for user, value in expected.items():
        assert got.loc[got["task"] == user, "value"].tolist() == pytest.approx([value] * 2)


def test_item_mean_mae_and_ndcg_at_3_match_a_hand_computation(ds):
    train = train_ratings()
    mu = train["rating"].mean()
    stats = train.groupby("item")["rating"].agg(["sum", "count"])

    def base(item):  # item-mean: 5 pseudo-ratings at the global mean
        s, n = (stats.loc[item, "sum"], stats.loc[item, "count"]) if item in stats.index else (0, 0)
        return (s + 5 * mu) / (n + 5)

    def predict(item, support):  # plus the support's residual shrunk by 3 pseudo-ratings
        return base(item) + sum(r - base(i) for i, r in support) / (len(support) + 3)

    results, _ = evaluate_cold_start(build_rec_baseline("item-mean", ds), ds)
    got = results[results["item_split"] == "all"].set_index(["task", "metric"])["value"]
    for user, value in hand_mae(predict).items():
        assert got[user, "mae"] == pytest.approx(value)
        rows = TEST_USERS[user]
        support = [(i, r) for i, r, role in rows if role == "support"]
        query = [(i, r) for i, r, role in rows if role == "query"]
        gains = [2.0 ** r - 1 for _, r in query]
        ndcg = ndcg_at_k(gains, [predict(i, support) for i, _ in query], k=3)
        assert got[user, "ndcg@3"] == pytest.approx(ndcg)
        assert metric_function("ndcg@3")(gains, [predict(i, support) for i, _ in query]) == (
            pytest.approx(ndcg))
    # the existing / new item views split the same query rows
    new = results[(results["item_split"] == "new") & (results["metric"] == "mae")]
    assert set(new["task"]) == {"t1", "new-both"}


def test_a_learner_trains_on_the_fixed_split_and_is_scored_on_its_queries(ds, tmp_path):
    model = api.train_learner(ds, "cnp", tmp_path / "cnp", {
        "steps": 3, "support_size": 5, "n_query": 5, "device": "cpu", "eval_every": 3,
        "encoder.hidden": 8, "encoder.depth": 1, "encoder.out_dim": 8})
    assert model.train_result.steps_run == 3 and model.train_result.best_valid is not None
    rows, skipped = ds.evaluate("cold-start", model, seeds=[0], draws=1)
    assert set(rows["task"]) == set(TEST_USERS) and set(rows["support_size"]) == {"fixed"}
    assert {"mae", "ndcg@3", "ndcg@5", "rmse"} <= set(rows["metric"])
    # item-cold t1 trains on its train rows by design: the saved model is not refused
    assert ds.check_model_split(tmp_path / "cnp", "published") is True


def test_a_suite_runs_the_fixed_split_and_reports_mae_and_ndcg_at_3(fixed_csv, tmp_path):
    suite = tmp_path / "published-suite.toml"
    suite.write_text(f'''name = "published"
dataset = "{fixed_csv}"
protocol = "cold-start"
learners = ["global-mean", "item-mean"]
baseline = "item-mean"

[presets.smoke]
steps = 2
draws = 3
seeds = [0]
''')
    summary = run_suite(str(suite), tmp_path / "out", preset="smoke", device="cpu",
                        progress=False)
    main = summary[summary["item_split"] == "all"].set_index(["learner", "metric"])
    for learner in ("global-mean", "item-mean"):
        assert main.loc[(learner, "mae"), "n_tasks"] == len(TEST_USERS)
        assert main.loc[(learner, "ndcg@3"), "n_tasks"] == len(TEST_USERS)
        assert main.loc[(learner, "mae"), "n_draws"] == 1
    assert main.loc[("global-mean", "mae"), "mean"] == pytest.approx(
        np.mean(list(hand_mae(lambda i, s: train_ratings()["rating"].mean()).values())))
    report = (tmp_path / "out" / "report.md").read_text()
    assert "### mae" in report and "### ndcg@3" in report


# ------------------------------------------------------------------ without roles, and misuse


def test_without_roles_supports_are_drawn_from_the_test_users_rows(tmp_path):
    path = write_fixed(tmp_path / "no-roles.csv", roles=False)
    ds = load_recsys_dataset(path, use_cache=False, min_eval_ratings=4, support_sizes=[2],
                             n_query=2)
    assert ds.config.split_method == "fixed"
    assert {t.name for t in ds.taskset.test} == set(TEST_USERS)
    assert all("support" not in t.extras for t in ds.taskset.test)
    for ep in ds.evaluation_episodes("test", seed=0, n_draws=2):
        rows = dict(written(TEST_USERS)[ep.task])
        items = np.asarray(ds.item_vocab.ids)
        assert ep.extras["k"] == 2 and len(ep.query_examples) == 2
        assert all(rows[i] == r for i, r in zip(items[ep.support_examples], ep.support_labels))
    results, _ = evaluate_cold_start(build_rec_baseline("global-mean", ds), ds)
    assert "ndcg@3" in set(results["metric"])  # a fixed split's runs report nDCG@3


def test_random_split_runs_keep_their_metrics(tmp_path):
    """nDCG@3 is a fixed split's: a random split's runs report what they always did."""
    rng = np.random.default_rng(0)
    rows = [f"u{u},{i},{rng.integers(1, 6)}" for u in range(40)
            for i in rng.choice(60, size=35, replace=False)]
    path = tmp_path / "plain.csv"
    path.write_text("user,item,rating\n" + "\n".join(rows) + "\n")
    ds = load_recsys_dataset(path, use_cache=False)
    assert ds.config.split_method == "random" and "role" not in ds.interactions
    results, _ = evaluate_cold_start(build_rec_baseline("global-mean", ds), ds)
    assert set(results["support_size"]) == {5, 10, 20}
    assert set(results["metric"]) == set(QUERY_METRICS) | {"recall@10", "ndcg@10"}
    assert ("mae", "rmse", "ndcg@3", *QUERY_METRICS[2:]) == FIXED_QUERY_METRICS


def test_other_split_settings_do_not_apply_to_a_fixed_split(fixed_csv, tmp_path):
    with pytest.raises(CardError, match="split_method = 'time' does not apply"):
        load_recsys_dataset(fixed_csv, split_method="time")
    plain = tmp_path / "plain.csv"
    plain.write_text("user,item,rating\nu1,1,4\nu2,1,3\n")
    with pytest.raises(CardError, match="split_method = 'fixed' needs a split column"):
        load_recsys_dataset(plain, split_method="fixed")


def test_bad_split_rows_are_counted_when_skipping(tmp_path):
    path = write_fixed(tmp_path / "r.csv", extra="t1,1,4,later,\nt2,2,3,train,query\n")
    data = read_interactions_csv(path, errors="skip")
    assert data.report.skipped == {"ratings: unknown split": 1, "ratings: role on a train row": 1}
    assert set(data.ratings["split"]) == {"train", "valid", "test"}


def test_inspect_says_the_split_is_fixed(fixed_csv):
    from fewshot_apps.domains.recsys.inspect import inspect_dataset
    from fewshot_apps.plain_csv import load_card_or_csv

    text = inspect_dataset(load_card_or_csv(fixed_csv))
    assert "fixed split: the ratings' split column" in text
    assert "evaluated users        valid 2 / test 3 with given support and query rows" in text
    assert "new items              6 items rated in valid or test rows only" in text
