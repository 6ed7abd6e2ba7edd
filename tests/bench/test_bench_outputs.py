"""Output folders of ``bench``: suites whose data set is a card's path (plot file names), the
MeLU protocol (support size 'melu'), the folder's locks, and no measurement written twice.

Each suite here is one cheap baseline (``global-mean``) on a copy of ml-latest-small, at the
smoke preset: a few seconds a run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from fewshot_apps.bench import locking
from fewshot_apps.bench.locking import FileLock, OutputLockedError, OutputLocks
from fewshot_apps.bench.runner import RESULT_COLUMNS, _append_rows, run_suite

REPO = Path(__file__).resolve().parents[2]
SUITE = """
name = "{name}"
dataset = "{card}"
protocol = "cold-start"
learners = ["global-mean"]
baseline = "global-mean"

[presets.smoke]
steps = 2
draws = 1
seeds = [0]
max_test_tasks = 3
"""


def _card(folder: Path, data_dir: Path, protocol: str) -> Path:
    """A user's card for ml-latest-small (its files copied beside it) with ``protocol``."""
    files = folder / "ml"
    if not files.exists():
        files.mkdir(parents=True)
        for name in ("ratings.csv", "movies.csv", "tags.csv"):
            shutil.copy(data_dir / "movielens" / "ml-latest-small" / name, files / name)
    text = (REPO / "datasets" / "movielens-latest-small.toml").read_text(encoding="utf-8")
    text = text.replace('"movielens/ml-latest-small/', '"ml/')
    text = text.replace('protocol = "cold-start"', f'protocol = "{protocol}"', 1)
    assert f'protocol = "{protocol}"' in text and '"ml/ratings.csv"' in text
    card = folder / f"my-{protocol}.toml"
    card.write_text(text, encoding="utf-8")
    return card


@pytest.fixture(scope="module")
def suites(tmp_path_factory, data_dir) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cards")
    out = {}
    for protocol in ("cold-start", "melu"):
        card = _card(folder, data_dir, protocol)
        suite = folder / f"suite-{protocol}.toml"
        suite.write_text(SUITE.format(name=f"by-path-{protocol}", card=card.as_posix()),
                         encoding="utf-8")
        out[protocol] = suite
    return out


@pytest.fixture(scope="module")
def cold_run(suites, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cold") / "out"
    run_suite(str(suites["cold-start"]), out, preset="smoke", device="cpu", progress=False)
    return out


def _plots(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*.png"))


def test_a_card_path_as_data_set_writes_plots_with_safe_names(cold_run):
    results = pd.read_csv(cold_run / "results.csv")
    dataset = results["dataset"].iloc[0]
    assert dataset.endswith("my-cold-start.toml") and "/" in dataset
    plots = _plots(cold_run)
    assert len(plots) == 3  # mae, recall@10 and nDCG@10, straight in the output folder
    for plot in plots:
        assert plot.parent == cold_run
        assert plot.name.startswith("plot_my-cold-start-") and "/" not in plot.name[5:]
    assert {p.name.rsplit("_", 1)[-1] for p in plots} == {"mae.png", "recallat10.png",
                                                           "ndcgat10.png"}
    report = (cold_run / "report.md").read_text(encoding="utf-8")
    assert all(f"]({p.name})" in report for p in plots)
    assert "data:image/png;base64," in (cold_run / "report.html").read_text(encoding="utf-8")
    assert not (cold_run / ".lock").exists() and not (cold_run / ".claims").exists()


def test_melu_protocol_card_runs_to_the_end(suites, tmp_path):
    out = tmp_path / "melu"
    summary = run_suite(str(suites["melu"]), out, preset="smoke", device="cpu", progress=False)
    assert set(summary["support_size"]) == {"melu"}
    assert set(pd.read_csv(out / "results.csv")["support_size"]) == {"melu"}
    assert len(_plots(out)) == 3  # mae, recall@10, nDCG@10
    assert "| melu |" in (out / "report.md").read_text(encoding="utf-8")


HOLDER = """
import sys, time
from fewshot_apps.bench.locking import OutputLocks
locks = OutputLocks(sys.argv[1], command="holder in a test")
locks.claim([(sys.argv[2], sys.argv[3], "global-mean")])
print("held", flush=True)
time.sleep(300)
"""


@contextlib.contextmanager
def _held_global_mean(suite: Path, out: Path):
    """A live process holding the claim on ``global-mean`` in ``out`` (killed after: its
    claim file stays, stale)."""
    out.mkdir()
    dataset = str(suite.parent / "my-cold-start.toml")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out), "by-path-cold-start",
                               dataset], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.kill()
        holder.wait()


def test_a_second_run_is_refused_while_another_holds_the_learner_then_takes_over(
        suites, tmp_path, capsys):
    suite, out = suites["cold-start"], tmp_path / "shared-out"
    with _held_global_mean(suite, out) as holder:
        with pytest.raises(OutputLockedError) as refused:
            run_suite(str(suite), out, preset="smoke", device="cpu", progress=False)
        message = str(refused.value)
        assert f"pid {holder.pid} on host {socket.gethostname()}, started " in message
        assert "learner global-mean" in message and "holder in a test" in message
        assert not (out / "results.csv").exists()
    # The holder died without releasing: its claim file is left, stale, and taken over.
    assert list((out / ".claims").glob("*.lock"))
    capsys.readouterr()
    run_suite(str(suite), out, preset="smoke", device="cpu", progress=False)
    err = capsys.readouterr().err
    assert f"taking over the lock of pid {holder.pid} on host" in err
    assert set(pd.read_csv(out / "results.csv")["learner"]) == {"global-mean"}
    assert not (out / ".claims").exists() and not (out / ".lock").exists()


def test_a_second_run_leaves_a_held_learner_to_its_holder_and_runs_the_rest(
        suites, tmp_path, capsys):
    suite, out = suites["cold-start"], tmp_path / "shared-by-two"
    with _held_global_mean(suite, out) as holder:
        capsys.readouterr()
        run_suite(str(suite), out, learners=["global-mean", "item-mean"], preset="smoke",
                  device="cpu", progress=False)
        err = capsys.readouterr().err
        dataset = suite.parent / "my-cold-start.toml"
        assert f"learner global-mean of by-path-cold-start/{dataset}" in err
        assert f"pid {holder.pid} on host {socket.gethostname()}" in err and "left to it" in err
        assert set(pd.read_csv(out / "results.csv")["learner"]) == {"item-mean"}
        assert list((out / ".claims").glob("*.lock"))  # the holder's claim stays its own


def test_two_runs_of_one_list_split_its_learners(suites, tmp_path, monkeypatch):
    """A run claims a learner only when its turn comes: while the first run evaluates
    item-mean, a second run of the same list takes global-mean, and the first then finds its
    rows written and leaves it."""
    from fewshot_apps.bench import runner

    suite, out = suites["cold-start"], tmp_path / "split"
    both = ["item-mean", "global-mean"]
    evaluate, seen = runner.evaluate_suite_model, []

    def evaluate_and_start_a_second_run(part, model, *args, **kwargs):
        # the learners claimed in the folder while one is evaluated
        seen.append(sorted(p.stem.split("--")[-1] for p in (out / ".claims").glob("*.lock")))
        if len(seen) == 1:  # the first run is at its first learner: a second run starts
            run_suite(str(suite), out, learners=both, preset="smoke", device="cpu",
                      progress=False)
        return evaluate(part, model, *args, **kwargs)

    monkeypatch.setattr(runner, "evaluate_suite_model", evaluate_and_start_a_second_run)
    run_suite(str(suite), out, learners=both, preset="smoke", device="cpu", progress=False)
    # the first run held item-mean alone; the second took global-mean beside it; nothing
    # was evaluated a third time
    assert seen == [["item-mean"], ["global-mean", "item-mean"]]
    rows = pd.read_csv(out / "results.csv")
    assert sorted(set(rows["learner"])) == ["global-mean", "item-mean"]
    assert not rows.duplicated([c for c in RESULT_COLUMNS if c != "value"]).any()
    assert not (out / ".claims").exists() and not (out / ".lock").exists()


def test_a_held_folder_lock_is_waited_for_then_refused(suites, tmp_path, monkeypatch):
    monkeypatch.setattr(locking, "WRITE_WAIT_S", 0.3)
    out = tmp_path / "busy"
    held = rf"pid {os.getpid()} on host .*report writer in a test.*waited 0.3 s"
    with FileLock(out / ".lock", "test", command="report writer in a test"), \
            pytest.raises(OutputLockedError, match=held):
        run_suite(str(suites["cold-start"]), out, preset="smoke", device="cpu", progress=False)
    assert not (out / "results.csv").exists()


def test_stale_folder_lock_of_a_dead_process_is_taken_over(suites, cold_run, tmp_path, capsys):
    out = tmp_path / "stale"
    shutil.copytree(cold_run, out)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / ".lock").write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(),
                                           "started": "2020-01-01T00:00:00+00:00",
                                           "command": "fewshot-apps bench (crashed)"}))
    run_suite(str(suites["cold-start"]), out, preset="smoke", device="cpu", progress=False)
    assert f"taking over the lock of pid {dead.pid}" in capsys.readouterr().err
    assert not (out / ".lock").exists()


def test_rows_written_twice_by_old_runs_are_dropped(suites, cold_run, tmp_path, capsys):
    out = tmp_path / "doubled"
    shutil.copytree(cold_run, out)
    once = pd.read_csv(out / "results.csv")
    pd.concat([once, once]).to_csv(out / "results.csv", index=False)  # two runs, no lock
    summary = run_suite(str(suites["cold-start"]), out, preset="smoke", device="cpu",
                        progress=False)
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv"), once)
    assert "dropping" in capsys.readouterr().err
    assert set(summary["n_draws"]) == {1}


def test_a_learner_is_never_appended_twice(tmp_path):
    rows = pd.DataFrame([{"suite": "s", "dataset": "d", "task": "u1", "learner": "mf",
                          "family": "classic", "shots": pd.NA, "support_size": 5,
                          "item_split": "all", "draw": 0, "seed": 0, "metric": "mae",
                          "value": 0.7}], columns=RESULT_COLUMNS)
    path = tmp_path / "results.csv"
    with OutputLocks(tmp_path) as locks:
        assert _append_rows(locks, path, rows, ("s", "d", "mf"))
        assert not _append_rows(locks, path, rows.assign(value=0.8), ("s", "d", "mf"))
    written = pd.read_csv(path)
    assert len(written) == 1 and written["value"].iloc[0] == 0.7
