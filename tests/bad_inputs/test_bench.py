"""Bad-input corpus: benchmark suites and ``bench`` runs.

Each case builds one bad input (a suite file, an option, an output folder another run holds)
in a temporary folder and returns the message the user sees together with the fragments that
message must hold: the suite, key, learner or holder it is about and the problem. Cases run
through the command line where they can (exit status 2, one ``error:`` line, no traceback);
each fails before any data set is loaded, so all of them take a second or two.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from fewshot_apps.bench.locking import OutputLocks
from fewshot_apps.bench.runner import run_suite
from fewshot_apps.bench.suites import load_suites
from fewshot_apps.cli import main
from fewshot_apps.errors import FewshotError

CASES = {}
PRESET = "[presets.smoke]\nsteps = 2\ndraws = 1\nseeds = [0]\n"
GOOD = ('name = "mine"\ndataset = "tox21"\nprotocol = "k-shot"\nlearners = ["rf"]\n'
        + PRESET)


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def suite_file(folder: Path, text: str, name: str = "suite.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def bench(capsys, *argv, out: Path, creates_out: bool = False) -> str:
    """``fewshot-apps bench ARGV --out OUT``'s error line; the run must fail as a user error,
    before it creates the output folder (unless ``creates_out``)."""
    capsys.readouterr()
    code = main(["bench", "--quiet", *map(str, argv), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and "Traceback" not in err, err
    assert creates_out or not out.exists(), f"{out} was created before the error"
    return err


def error_of(call) -> str:
    with pytest.raises(FewshotError) as info:
        call()
    return str(info.value)


@case
def unknown_suite_name(tmp_path, capsys):
    err = bench(capsys, "--suite", "tox22", "--preset", "smoke", out=tmp_path / "o")
    return err, ["unknown suite 'tox22'", "known: ", "demo", "tox21", "(or a .toml path)"]


@case
def suite_file_missing(tmp_path, capsys):
    path = tmp_path / "nowhere.toml"
    err = bench(capsys, "--suite", path, "--preset", "smoke", out=tmp_path / "o")
    return err, [str(path), "no such suite file"]


@case
def suite_not_toml(tmp_path, capsys):
    path = suite_file(tmp_path, 'name = "mine"\nlearners = [rf]\n')
    err = bench(capsys, "--suite", path, "--preset", "smoke", out=tmp_path / "o")
    return err, [str(path), "not valid TOML"]


@case
def suite_with_unknown_key(tmp_path, capsys):
    path = suite_file(tmp_path, GOOD.replace("learners =", "learnres = ['rf']\nlearners ="))
    err = bench(capsys, "--suite", path, "--preset", "smoke", out=tmp_path / "o")
    return err, [str(path), "unknown key 'learnres'", "allowed: ", "learners"]


@case
def suite_without_dataset(tmp_path, capsys):
    path = suite_file(tmp_path, GOOD.replace('dataset = "tox21"\n', ""))
    err = bench(capsys, "--suite", path, "--preset", "smoke", out=tmp_path / "o")
    return err, [str(path), "missing 'dataset'"]


@case
def suite_with_unknown_protocol(tmp_path, capsys):
    path = suite_file(tmp_path, GOOD.replace('"k-shot"', '"k_shot"'))
    err = bench(capsys, "--suite", path, "--preset", "smoke", out=tmp_path / "o")
    return err, [str(path), "unknown protocol 'k_shot'", "k-shot, fsmol, active, cold-start"]


@case
def preset_with_a_typo(tmp_path, capsys):
    path = suite_file(tmp_path, GOOD.replace("steps = 2", "step = 2"))
    err = bench(capsys, "--suite", path, "--preset", "smoke", out=tmp_path / "o")
    return err, [str(path), "[presets.smoke]", "unknown key 'step'", "steps"]


@case
def preset_steps_not_a_number(tmp_path, capsys):
    path = suite_file(tmp_path, GOOD.replace("steps = 2", 'steps = "two"'))
    err = bench(capsys, "--suite", path, "--preset", "smoke", out=tmp_path / "o")
    return err, [str(path), "[presets.smoke]", "whole numbers"]


@case
def suite_without_the_preset(tmp_path, capsys):
    path = suite_file(tmp_path, GOOD)
    err = bench(capsys, "--suite", path, "--preset", "fast", out=tmp_path / "o")
    return err, [str(path), "no preset 'fast'", "['smoke']"]


@case
def suite_without_the_published_preset(tmp_path, capsys):
    err = bench(capsys, "--suite", "tox21", "--preset", "published", out=tmp_path / "o")
    assert not (tmp_path / "o").exists()
    return err, ["suite tox21", "no preset 'published'", "['fast', 'full', 'smoke']"]


@case
def unknown_preset(tmp_path, capsys):
    message = error_of(lambda: run_suite("tox21", tmp_path / "o", preset="huge",
                                         progress=False))
    assert not (tmp_path / "o").exists()
    return message, ["unknown preset 'huge'", "smoke, fast, full, published"]


@case
def unknown_learner_in_options(tmp_path, capsys):
    out = tmp_path / "o"
    err = bench(capsys, "--suite", "tox21", "--learners", "rf,protonett", "--preset", "smoke",
                out=out)
    return err, ["unknown learners ['protonett']", "known: ", "protonet"]


@case
def unknown_learner_in_suite(tmp_path, capsys):
    path = suite_file(tmp_path, GOOD.replace('["rf"]', '["rf", "xgboost"]'))
    message = error_of(lambda: load_suites(str(path), "smoke"))
    return message, [str(path), "unknown learners ['xgboost']", "known: "]


@case
def composite_part_with_unknown_key(tmp_path, capsys):
    path = suite_file(tmp_path, 'name = "both"\nparts = ["tox21"]\n[part.tox21]\nshot = [10]\n'
                      + PRESET)
    err = bench(capsys, "--suite", path, "--preset", "smoke", out=tmp_path / "o")
    return err, [str(path), "[part.tox21]", "unknown key 'shot'", "allowed: dataset_options, learners, published, settings, shots, suite"]


@case
def dataset_card_missing(tmp_path, capsys):
    card = tmp_path / "cards" / "mine.toml"
    path = suite_file(tmp_path, GOOD.replace('"tox21"', f'"{card.as_posix()}"'))
    err = bench(capsys, "--suite", path, "--preset", "smoke", out=tmp_path / "o")
    return err, [str(card), "no such card file"]


@case
def dataset_name_unknown(tmp_path, capsys):
    path = suite_file(tmp_path, GOOD.replace('"tox21"', '"tox22"'))
    err = bench(capsys, "--suite", path, "--preset", "smoke", out=tmp_path / "o")
    return err, ["unknown data set 'tox22'", "known: "]


@case
def classifier_on_rating_data(tmp_path, capsys):
    """Refused before anything trains (it used to fail after the suite's other learners)."""
    err = bench(capsys, "--suite", "movielens-latest-small", "--learners", "mf,knn", "--preset",
                "smoke", out=tmp_path / "o")
    return err, ["learners ['knn'] do not apply to rating data", "movielens-latest-small"]


@case
def output_folder_held_by_another_run(tmp_path, capsys):
    path = suite_file(tmp_path, GOOD)
    out = tmp_path / "o"
    with OutputLocks(out, command="fewshot-apps bench --suite mine (elsewhere)") as other:
        other.claim([("mine", "tox21", "rf")])
        err = bench(capsys, "--suite", path, "--preset", "smoke", out=out, creates_out=True)
    assert not (out / "results.csv").exists()
    return err, [str(out), "learner rf of mine/tox21", "another bench run",
                 f"pid {os.getpid()} on host {socket.gethostname()}", "started ",
                 "fewshot-apps bench --suite mine (elsewhere)", "another --out"]


@case
def no_evaluation_seeds(tmp_path, capsys):
    # --seeds 0 was an IndexError after the folder was made (-2 too)
    for seeds in ("0", "-2"):
        err = bench(capsys, "--suite", "tox21", "--preset", "smoke", "--learners", "rf",
                    "--seeds", seeds, out=tmp_path / "o")
        assert f"--seeds must be at least 1, not {seeds}" in err
    return err, ["--seeds must be at least 1"]


@case
def no_evaluation_seeds_to_evaluate(tmp_path, capsys):
    from fewshot_apps.bench.runner import evaluate_saved_model

    message = error_of(lambda: evaluate_saved_model(tmp_path / "model", "tox21", tmp_path / "o",
                                                    seeds=0))
    assert not (tmp_path / "o").exists()
    return message, ["--seeds must be at least 1, not 0"]


@case
def learners_option_names_none(tmp_path, capsys):
    # --learners "" used to run every learner of the suite
    for learners in ("", ", "):
        err = bench(capsys, "--suite", "tox21", "--preset", "smoke", "--learners", learners,
                    out=tmp_path / "o")
        assert "--learners names no learner" in err
    message = error_of(lambda: run_suite("tox21", tmp_path / "o", learners=[], preset="smoke"))
    return message, ["--learners names no learner", "leave it out to run all of them"]


@case
def output_folder_is_a_file(tmp_path, capsys):
    out = tmp_path / "o"
    out.write_text("not a folder\n")
    err = bench(capsys, "--suite", "tox21", "--preset", "smoke", "--learners", "rf", out=out,
                creates_out=True)
    assert out.read_text() == "not a folder\n"
    return err, [f"--out {out} is a file, not a folder"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, tmp_path, capsys):
    message, fragments = CASES[name](tmp_path, capsys)
    for fragment in fragments:
        assert fragment in message, f"{name}: {fragment!r} not in {message!r}"
