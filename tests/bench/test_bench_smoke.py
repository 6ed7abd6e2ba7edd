"""A smoke-preset benchmark end to end: the outputs exist with exactly the promised columns."""

import contextlib
import io
import json

import pandas as pd
import pytest

from fewshot_apps.bench.runner import RESULT_COLUMNS, SUMMARY_COLUMNS, run_suite
from fewshot_apps.bench.suites import load_suites, suite_names
from fewshot_apps.core.registry import MODELS
from fewshot_apps.errors import CardError, FewshotError

METRICS = {"delta_auprc", "auprc", "roc_auc", "brier", "ece", "ece_floor", "mae", "rmse",
           "ndcg@5", "precision@5", "recall@10", "ndcg@10", "coverage@90", "interval_width"}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    stderr = io.StringIO()  # not a terminal, as in a log file or CI
    with contextlib.redirect_stderr(stderr):
        summary = run_suite("demo", out, preset="smoke", device="cpu", progress=True)
    (out / "stderr.log").write_text(stderr.getvalue())
    return out, summary


def test_progress_off_a_terminal_is_a_few_log_lines(demo_run):
    out, _ = demo_run
    log = (out / "stderr.log").read_text()
    assert "\r" not in log  # no redrawn bars
    lines = [line for line in log.splitlines() if "%" in line]
    bars = sum(" 100% (" in line for line in lines)
    assert bars >= 4  # meta-training, evaluation, ... each reported its end
    assert len(lines) <= 11 * bars  # at most a line per 10% of each


def test_outputs_and_columns(demo_run):
    out, summary = demo_run
    for name in ("results.csv", "summary.csv", "comparisons.csv", "report.md", "report.html",
                 "run.json"):
        assert (out / name).exists(), name
    results = pd.read_csv(out / "results.csv")
    assert list(results.columns) == RESULT_COLUMNS
    assert list(pd.read_csv(out / "summary.csv").columns) == SUMMARY_COLUMNS
    assert set(results["metric"]) <= METRICS
    assert set(results["family"]) <= {"metric", "generator", "optimizer", "transfer", "classic"}
    assert {"tox21", "movielens-latest-small"} == set(results["dataset"])
    tox = results[results["dataset"] == "tox21"]
    assert set(tox["shots"]) == {10} and set(tox["support_size"]) == {20}
    rec = results[results["dataset"] == "movielens-latest-small"]
    assert set(rec["item_split"]) >= {"all"} and rec["shots"].isna().all()
    assert results["value"].notna().all()


def test_calibration_outputs(demo_run):
    """Every learner and transfer baseline is calibrated on validation tasks: tox21's
    probabilities by temperature (ece, brier, a reliability diagram), ratings with a 90%
    interval (coverage@90, interval_width; the classic mf too)."""
    from fewshot_apps.bench.runner import RELIABILITY_COLUMNS
    from fewshot_apps.core.persistence import read_model_config

    out, _ = demo_run
    results = pd.read_csv(out / "results.csv")
    tox = results[results["dataset"] == "tox21"]
    assert {"ece", "brier"} <= set(tox["metric"])
    for learner in ("protonet", "cnp", "maml", "finetune"):
        config = read_model_config(out / "models" / "tox21" / learner)
        assert config["calibration"]["method"] == "temperature"
        assert config["calibration"]["temperature"] > 0
    reliability = pd.read_csv(out / "reliability.csv")
    assert list(reliability.columns) == RELIABILITY_COLUMNS
    assert set(reliability["learner"]) == {"protonet", "cnp", "maml", "finetune", "rf"}
    assert set(reliability["dataset"]) == {"tox21"} and set(reliability["bin"]) == set(range(15))
    assert (out / "plot_tox21_reliability.png").stat().st_size > 1000
    report = (out / "report.md").read_text()
    assert "![reliability diagram](plot_tox21_reliability.png)" in report
    assert "temperature T = " in report and "90% conformal ± " in report
    # the ECE over all test predictions, per learner, beside the per-draw mean and its floor
    from fewshot_apps.bench.report import pooled_ece

    pooled = pooled_ece(reliability)
    assert set(pooled["learner"]) == set(reliability["learner"])
    assert pooled["ece_pooled"].between(0, 1).all()
    assert "| learner | ece_pooled@" in report and "ece_floor" in report
    floors = tox[tox["metric"] == "ece_floor"]["value"]
    assert len(floors) and floors.between(0, 1).all()
    rec = results[(results["dataset"] == "movielens-latest-small")
                  & (results["item_split"] == "all")]
    coverage = rec[rec["metric"] == "coverage@90"]
    assert set(coverage["learner"]) == {"attention", "cnp", "maml", "finetune", "mf"}
    assert coverage["value"].between(0, 1).all()
    assert (rec.loc[rec["metric"] == "interval_width", "value"] > 0).all()
    timings = json.loads((out / "timings.json").read_text())
    assert timings["demo|movielens-latest-small|mf"]["calibration"]["method"] == "conformal"
    assert timings["demo|tox21|rf"]["calibration"] is None  # classic classifiers: as they are


def test_reports_are_self_contained(demo_run):
    out, _ = demo_run
    page = (out / "report.html").read_text()
    assert "http://" not in page and "https://" not in page
    assert "data:image/png;base64," in page
    run = json.loads((out / "run.json").read_text())
    assert run["versions"]["torch"] and run["preset"] == "smoke"


def test_models_saved_and_loadable(demo_run):
    from fewshot_apps.core.persistence import load_model

    out, _ = demo_run
    for learner in ("protonet", "cnp", "maml", "finetune"):
        assert load_model(out / "models" / "tox21" / learner).kind == "classification"
    for learner in ("cnp", "maml", "finetune"):
        model = load_model(out / "models" / "movielens-latest-small" / learner)
        assert model.kind == "regression"


def test_rerun_continues_without_recomputing(demo_run):
    out, _ = demo_run
    before = (out / "results.csv").read_text()
    run_suite("demo", out, preset="smoke", device="cpu", progress=False)
    assert (out / "results.csv").read_text() == before


def test_suites_parse():
    names = suite_names()
    assert {"demo", "tox21", "muv", "fsmol", "sider", "toxcast", "movielens-latest-small",
            "movielens-100k", "movielens-1m"} <= set(names)
    for name in names:
        for preset in ("smoke", "fast", "full"):
            for suite in load_suites(name, preset):
                assert set(suite.learners) <= set(MODELS)
    with pytest.raises(CardError, match="unknown preset"):
        load_suites("tox21", "huge")


def test_published_preset_matches_the_published_episode_counts():
    """fsmol's optional ``published`` preset trains as many episodes as FS-Mol's ProtoNet and
    ADKF-IFT's DKT and CNP (10,000 steps of 16 tasks); a suite without it says which it has."""
    (suite,) = load_suites("fsmol", "published")
    (full,) = load_suites("fsmol", "full")
    for learner in ("protonet", "dkt", "cnp", "maml"):
        settings = suite.settings_for(learner)
        assert suite.preset.steps * settings["meta_batch_size"] >= 160_000
        # the learner's own choices (lr, init, ...) are the full preset's
        assert {k: v for k, v in settings.items() if k not in ("eval_every", "meta_batch_size")} \
            == {k: v for k, v in full.settings_for(learner).items() if k != "eval_every"}
    assert suite.preset.pretrain_steps == full.preset.pretrain_steps
    with pytest.raises(CardError, match=r"no preset 'published' \(has \['fast', 'full', 'smoke'\]\)"):
        load_suites("tox21", "published")


def test_evaluate_a_saved_model(demo_run, tmp_path):
    from fewshot_apps.cli import main

    out, _ = demo_run
    code = main(["evaluate", "--model", str(out / "models" / "tox21" / "protonet"),
                 "--suite", "tox21", "--preset", "smoke", "--out", str(tmp_path / "ev")])
    assert code == 0
    results = pd.read_csv(tmp_path / "ev" / "results.csv")
    assert list(results.columns) == RESULT_COLUMNS
    assert set(results["learner"]) == {"protonet"} and set(results["shots"]) == {1, 10}


def test_interrupted_learner_resumes_from_its_checkpoint(tmp_path):
    """A run killed after training but before its rows were written trains no step again."""
    out = tmp_path / "tox"
    run_suite("tox21", out, learners=["protonet"], preset="smoke", device="cpu", progress=False)
    log = out / "models" / "protonet" / "train_log.jsonl"
    logged = log.read_text()  # step times differ from run to run: a retrain would rewrite it
    first = pd.read_csv(out / "results.csv")
    for written_after_training in ("results.csv", "summary.csv"):  # as if killed before
        (out / written_after_training).unlink()
    run_suite("tox21", out, learners=["protonet"], preset="smoke", device="cpu", progress=False)
    assert log.read_text() == logged
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv"), first)
    timings = json.loads((out / "timings.json").read_text())
    assert timings["tox21|tox21|protonet"]["resumed"] is True


def test_a_signal_during_training_tells_how_to_continue_a_bench_run(tmp_path, monkeypatch, capsys):
    """SIGTERM while a learner trains: its checkpoint is written and the message says to run
    the same bench command again (bench has no --resume); doing so finishes the run."""
    import os
    import signal

    import fewshot_apps.core.training as training
    from fewshot_apps.cli import main

    sample, calls = training.sample_episodes, []

    def sample_then_signal(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return sample(*args, **kwargs)

    monkeypatch.setattr(training, "sample_episodes", sample_then_signal)
    out = tmp_path / "tox"
    args = ["bench", "--suite", "tox21", "--preset", "smoke", "--learners", "protonet",
            "--device", "cpu", "--out", str(out)]
    assert main(args) == 143
    err = capsys.readouterr().err
    checkpoint = out / "models" / "protonet" / "checkpoint.pt"
    assert (f"checkpoint written to {checkpoint}; run the same bench command again to "
            f"continue from it") in err
    assert "--resume" not in err and "Traceback" not in err
    monkeypatch.setattr(training, "sample_episodes", sample)
    assert main(args) == 0
    assert set(pd.read_csv(out / "results.csv")["learner"]) == {"protonet"}


def test_interrupted_transfer_baseline_is_not_pre_trained_again(tmp_path):
    """A transfer baseline's finished pre-training is loaded on a rerun (its weights file is
    not rewritten), scores the same, and reports the time its pre-training took."""
    out = tmp_path / "tox"
    run_suite("tox21", out, learners=["finetune"], preset="smoke", device="cpu", progress=False)
    weights = out / "models" / "finetune" / "model.pt"
    written = weights.stat().st_mtime_ns
    first = pd.read_csv(out / "results.csv")
    pretrain_seconds = json.loads((out / "timings.json").read_text())[
        "tox21|tox21|finetune"]["train_seconds"]
    for written_after_training in ("results.csv", "summary.csv"):  # as if killed before
        (out / written_after_training).unlink()
    run_suite("tox21", out, learners=["finetune"], preset="smoke", device="cpu", progress=False)
    assert weights.stat().st_mtime_ns == written
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv"), first)
    timing = json.loads((out / "timings.json").read_text())["tox21|tox21|finetune"]
    assert timing["resumed"] is True
    assert timing["train_seconds"] == pytest.approx(pretrain_seconds, abs=0.5)


def test_run_json_keeps_every_revision_that_wrote_rows(tmp_path):
    from fewshot_apps.bench.runner import _revisions

    run_json = tmp_path / "run.json"
    timings = {"s|d|a": {"git_revision": "b"}, "s|d|c": {"git_revision": "c"},
               "s|d|e": {"git_revision": "b"}}
    assert _revisions(timings, run_json) == ["b", "c"]
    run_json.write_text(json.dumps({"git_revision": "z", "git_revisions": ["a"]}))
    assert _revisions(timings, run_json) == ["a", "b", "c"]
    assert _revisions({"s|d|x": {}}, run_json) == ["a"]  # a rerun that only reports


def test_a_folder_without_its_rows_is_refused(tmp_path):
    """A clean clone has summary.csv but not results.csv (git ignores it): no silent loss."""
    out = tmp_path / "cloned"
    out.mkdir()
    pd.DataFrame({c: ["x"] for c in SUMMARY_COLUMNS}).assign(learner="protonet").to_csv(
        out / "summary.csv", index=False)
    with pytest.raises(FewshotError, match="results.csv, the rows they come from, is missing"):
        run_suite("tox21", out, learners=["rf"], preset="smoke", device="cpu", progress=False)


def test_a_folder_filled_on_two_thread_counts_says_which_learner_ran_on_which(tmp_path):
    """Timings depend on the threads: a folder whose learners were run with different thread
    counts names each machine line with its learners, in report.md and run.json."""
    import torch

    out = tmp_path / "tox"
    threads = torch.get_num_threads()
    try:
        for n, learner in ((1, "rf"), (2, "label-prior")):
            torch.set_num_threads(n)
            run_suite("tox21", out, learners=[learner], preset="smoke", device="cpu",
                      progress=False)
    finally:
        torch.set_num_threads(threads)
    machines = json.loads((out / "run.json").read_text())["machines"]
    assert sorted(machines.values()) == [["label-prior"], ["rf"]]
    one, two = (next(m for m, names in machines.items() if names == [n])
                for n in ("rf", "label-prior"))
    assert one.endswith("1 torch threads") and two.endswith("2 torch threads")
    report = (out / "report.md").read_text()
    assert f"Machine: {one} (rf); {two} (label-prior); device cpu" in report


def test_a_machine_line_lists_the_learners_run_before_machines_were_recorded():
    from fewshot_apps.bench.report import machine_text
    from fewshot_apps.bench.runner import _machines

    timings = {"s|d|dkt": {"machine": "A, 1 torch threads"}, "s|d|gp": {},
               "s|d|protonet": {"machine": "A, 2 torch threads"}}
    run_info = {"machine": "A, 2 torch threads", "machines": _machines(timings),
                "parts": [{"learners_in_results": ["dkt", "gp", "protonet"]}]}
    assert machine_text(run_info) == ("A, 1 torch threads (dkt); A, 2 torch threads "
                                      "(protonet); not recorded (gp)")
    assert machine_text({**run_info, "machines": {"A, 1 torch threads": ["dkt"]}}) == (
        "A, 2 torch threads")  # one machine recorded: the run's own line, as before


def test_the_revision_says_when_the_package_or_a_suite_differs_from_the_commit(tmp_path):
    """A run's git revision gets ``+modified`` for uncommitted package or suite changes, not
    for result files (a run writes those itself)."""
    import shutil
    import subprocess

    from fewshot_apps.bench.runner import _git_revision

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                       cwd=tmp_path, check=True, capture_output=True)

    for path in ("fewshot_apps/model.py", "benchmarks/suite.toml", "benchmarks/results/r.csv"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("a\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "c")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / "benchmarks/results/r.csv").write_text("b\n")
    (tmp_path / "notes.txt").write_text("untracked\n")
    assert _git_revision(tmp_path / "fewshot_apps") == head
    for path in ("benchmarks/suite.toml", "fewshot_apps/model.py"):
        (tmp_path / path).write_text("b\n")
        assert _git_revision(tmp_path / "fewshot_apps") == head + "+modified"
        git("checkout", "--", path)
    assert _git_revision(tmp_path) == head
    shutil.rmtree(tmp_path / ".git")
    assert _git_revision(tmp_path) is None  # not a git checkout
