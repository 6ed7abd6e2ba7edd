"""A plain CSV works where a card name works: its header decides the domain (README: "A plain
CSV works without a card"). Ratings CSVs go to the recommendation reader, SMILES CSVs to the
molecule reader; anything else is a DataError naming the file and its columns."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fewshot_apps import api
from fewshot_apps.cli import main
from fewshot_apps.errors import DataError
from fewshot_apps.plain_csv import load_card_or_csv, plain_csv_card

REPO = Path(__file__).resolve().parent.parent


def ratings_rows(n_users: int = 60, n_items: int = 50, seed: int = 0) -> list[tuple]:
    """(user, item, rating 1-5, timestamp): every user rates 32-44 items, enough for the
    cold-start protocol (valid / test users need 30 ratings: a 20-support + 10-query)."""
    rng = np.random.default_rng(seed)
    rows, t = [], 1_000_000_000
    for u in range(1, n_users + 1):
        for i in rng.choice(np.arange(1, n_items + 1), size=int(rng.integers(32, 45)),
                            replace=False):
            t += int(rng.integers(1, 1000))
            rows.append((f"u{u}", int(i), int(rng.integers(1, 6)), t))
    return rows


def write_ratings(path: Path, header=("user", "item", "rating", "timestamp"), sep=",",
                  rows=None) -> Path:
    rows = ratings_rows() if rows is None else rows
    width = len(header)
    text = sep.join(header) + "\n" + "".join(
        sep.join(str(v) for v in row[:width]) + "\n" for row in rows)
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name, header, sep, shown", [
    ("ratings.csv", ("user", "item", "rating", "timestamp"), ",",
     "user 'user', item 'item', rating 'rating', timestamp 'timestamp')"),
    ("ml.csv", ("userId", "movieId", "rating", "timestamp"), ";",
     "user 'userId', item 'movieId', rating 'rating', timestamp 'timestamp'; "
     "semicolon-separated)"),
    ("no-time.csv.gz", ("user_id", "item_id", "stars"), "\t",
     "user 'user_id', item 'item_id', rating 'stars', no timestamp; tab-separated)"),
])
def test_data_inspect_reads_a_plain_ratings_csv(tmp_path, capsys, name, header, sep, shown):
    path = write_ratings(tmp_path / name, header, sep)
    assert main(["data", "inspect", str(path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"(plain CSV: {shown}" in out
    assert "format                 interactions-csv" in out
    assert "users                  60" in out
    assert f"ratings                {len(ratings_rows()):,}" in out
    assert "observed range 1-5" in out  # the scale is the data's, and the report says so
    assert "users                  meta-train 42 / valid 6 / test 12" in out


def test_rec_train_on_a_plain_csv_then_recommend_from_the_saved_model(tmp_path, capsys):
    path = write_ratings(tmp_path / "my ratings.csv")
    out = tmp_path / "run"
    code = main(["rec", "train", "--dataset", str(path), "--learner", "attention",
                 "--set", "steps=2", "--set", "eval_every=2", "--set", "encoder.hidden=8",
                 "--set", "encoder.depth=1", "--device", "cpu", "--out", str(out), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "trained attention on my-ratings: 2 steps" in printed
    assert (out / "model.pt").is_file()
    config = json.loads((out / "config.json").read_text())
    # rating data: the implicit objective by default, its mix chosen on validation users
    a = config["learner"]["config"]["rank_rating_weight"]
    assert config["learner"]["config"]["rank_loss_weight"] == 1.0 and a in config["ranking"]["grid"]
    assert f"ranking: {1 - a:g} x the implicit score + {a:g} x the prediction" in printed
    assert config["dataset"] == "my-ratings"
    assert config["dataset_source"] == str(path.absolute())
    assert len(config["item_vocab"]["ids"]) == 50

    # the saved model finds its data set again by path, with no --dataset
    mine = tmp_path / "me.csv"
    mine.write_text("item,rating\n3,5\n7,1\n999,4\n")
    assert main(["rec", "recommend", "--model", str(out), "--ratings", str(mine),
                 "--top-k", "4"]) == 0
    captured = capsys.readouterr()
    assert "model: attention (meta-learned attention trained on my-ratings" in captured.err
    assert "1 item id(s) unknown to my-ratings (not used): '999' (row 4)" in captured.err
    ranked = captured.out.strip().splitlines()[1:]
    assert [line.split()[0] for line in ranked] == ["1", "2", "3", "4"]
    assert not {line.split()[1] for line in ranked} & {"3", "7"}

    # moved: the error says so, and --dataset gives the new place
    moved = path.rename(tmp_path / "moved.csv")
    assert main(["rec", "recommend", "--model", str(out), "--ratings", str(mine)]) == 2
    assert capsys.readouterr().err.startswith(
        f"error: {out}: the model was trained on {path.absolute()}, which is not there any "
        "more; pass its data set (--dataset")
    assert main(["rec", "recommend", "--model", str(out), "--ratings", str(mine),
                 "--dataset", str(moved), "--top-k", "2"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 3


def test_api_and_bench_load_a_plain_ratings_csv(tmp_path):
    from fewshot_apps.bench.runner import load_data

    path = write_ratings(tmp_path / "ratings.csv")
    ds = api.load_dataset(path, seed=1)
    assert ds.card.source == path and len(ds.user_vocab) == 60 and ds.config.seed == 1
    tasks = api.load_tasks(str(path))
    assert tasks.kind == "regression"
    assert (len(tasks.train), len(tasks.valid), len(tasks.test)) == (42, 6, 12)
    bench_ds = load_data(str(path))
    assert bench_ds.domain == "recsys" and len(bench_ds.taskset.test) == 12


def test_the_header_decides_the_domain(tmp_path):
    mol = tmp_path / "assays.csv"
    mol.write_text("mol_id,SMILES,NR-AR\nm1,CCO,1\n")
    card = plain_csv_card(mol)
    assert (card.domain, card.format, card.path("data")) == ("molecules", "molecules-csv", mol)
    assert load_card_or_csv(str(mol)).domain == "molecules"
    ratings = write_ratings(tmp_path / "r.csv")
    assert load_card_or_csv(str(ratings)).domain == "recsys"
    assert load_card_or_csv("movielens-latest-small").format == "movielens-latest"


def test_a_csv_that_is_neither_names_its_columns_and_what_was_expected(tmp_path, capsys):
    path = tmp_path / "sales.csv"
    path.write_text("customer,product,amount\nc1,p1,3\n")
    for args in (["data", "inspect", str(path)],
                 ["rec", "train", "--dataset", str(path), "--learner", "maml", "--out",
                  str(tmp_path / "run")]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {path}, row 1: cannot tell what this CSV holds: no user "
                              "and item column (columns: 'customer', 'product', 'amount')")
        assert "expected a SMILES column (smiles) for molecules, or user, item and rating" in err
        assert "Traceback" not in err
    with pytest.raises(DataError, match="cannot tell what this CSV holds"):
        api.load_tasks(path)


def test_a_csv_of_bare_user_item_pairs_is_implicit_feedback(tmp_path, capsys):
    path = write_ratings(tmp_path / "clicks.csv", ("user", "item"))
    assert main(["data", "inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "plain CSV, implicit feedback: user 'user', item 'item', no timestamp" in out


def test_a_csv_with_another_column_but_no_rating_asks_for_a_rating_column(tmp_path, capsys):
    path = write_ratings(tmp_path / "clicks.csv", ("user", "item", "clicked"))
    assert main(["data", "inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"error: {path}, row 1: user and item columns but no rating column (columns: " \
           "'user', 'item', 'clicked'); a plain ratings CSV needs one named rating or ratings" in err
    assert "implicit feedback" in err


def test_rec_train_refuses_a_molecule_csv(tmp_path, capsys):
    path = tmp_path / "assays.csv"
    path.write_text("smiles,assay,label\nCCO,a1,1\n")
    assert main(["rec", "train", "--dataset", str(path), "--learner", "maml",
                 "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"error: {path}: molecule data; `fewshot-apps rec` works on rating data" in err
    assert "featurizing" not in err  # refused before the data set loads


LIGHT = """
import sys
from fewshot_apps.cli import main
for args in {cases!r}:
    assert main(["rec", "recommend", *args]) == 2, args
    assert "torch" not in sys.modules, ("torch imported by", args)
print("light")
"""


def test_rec_recommend_answers_bad_input_before_importing_torch(tmp_path, data_dir):
    """File missing, empty, missing columns, out of the default data set's scale, unknown
    baseline, bad --top-k: each answered in a fresh process that never imports torch."""
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "cols.csv").write_text("title,rating\nx,4\n")
    (tmp_path / "scale.csv").write_text("movieId,rating\n1,4\n2,9\n")
    (tmp_path / "ok.csv").write_text("movieId,rating\n1,4\n")
    cases = [["--ratings", str(tmp_path / "missing.csv")],
             ["--ratings", str(tmp_path / "empty.csv")],
             ["--ratings", str(tmp_path / "cols.csv")],
             ["--ratings", str(tmp_path / "scale.csv")],
             ["--ratings", str(tmp_path / "scale.csv"), "--model", "mf"],
             ["--ratings", str(tmp_path / "ok.csv"), "--model", "nosuch"],
             ["--ratings", str(tmp_path / "ok.csv"), "--top-k", "0"]]
    done = subprocess.run([sys.executable, "-c", LIGHT.format(cases=cases)], cwd=REPO,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "FEWSHOT_DATA_DIR": str(data_dir)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "light"
    err = done.stderr
    assert "missing.csv: no such file" in err
    assert "empty.csv: the file is empty" in err
    assert "cols.csv: no item column" in err
    assert err.count("scale.csv, row 3: rating 9 is outside movielens-latest-small's rating "
                     "scale 0.5-5.0 in steps of 0.5") == 2
    assert "model 'nosuch': no saved model folder there" in err
    assert "k (--top-k) must be at least 1, not 0" in err
