import subprocess
import sys
from pathlib import Path

import pytest

from fewshot_apps import __version__
from fewshot_apps.cli import main


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert __version__ in capsys.readouterr().out


def test_data_list(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "tox21" in out and "fsmol" in out and "yes" in out


def test_data_inspect_tox21(capsys):
    assert main(["data", "inspect", "tox21", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "rows read: 7,831" in out
    assert "SR-p53" in out and "423" in out and "6,344" in out  # valid molecules only
    assert "test tasks: SR-HSE, SR-MMP, SR-p53" in out
    assert "rejected the SMILES" in out and "RDKit" in out


def test_bad_input_is_a_clear_error_not_a_traceback(tmp_path, capsys):
    bad = tmp_path / "mine.csv"
    bad.write_text("name,A\nx,1\n")
    assert main(["data", "inspect", str(bad), "--quiet"]) == 2
    err = capsys.readouterr().err
    # neither a SMILES column (molecules) nor user/item/rating columns (ratings)
    assert err.startswith("error: ") and "mine.csv, row 1: cannot tell what this CSV holds" in err
    assert "SMILES" in err and "user" in err
    assert "Traceback" not in err


def test_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "fewshot_apps", "--version"],
                         capture_output=True, text=True, check=True)
    assert __version__ in out.stdout


def _assays_csv(folder) -> str:
    """A tiny molecule CSV of your own: 30 molecules, 4 assays of 0/1 labels."""
    smiles = ["C" * n + "O" for n in range(1, 16)] + ["C" * n + "N" for n in range(1, 16)]
    rows = ["smiles,a1,a2,a3,a4"] + [
        f"{s},{i % 2},{(i // 2) % 2},{(i // 3) % 2},{(i + 1) % 2}" for i, s in enumerate(smiles)]
    path = folder / "assays.csv"
    path.write_text("\n".join(rows) + "\n")
    return str(path)


def test_out_that_is_a_file_is_an_error_for_every_command(tmp_path, capsys):
    # It used to be a FileExistsError traceback, after the data had loaded (or a whole run).
    existing = tmp_path / "existing_file"
    existing.write_text("keep me\n")
    commands = {
        "mol train": ["mol", "train", "--dataset", _assays_csv(tmp_path), "--learner",
                      "protonet", "--quiet"],
        "rec train": ["rec", "train", "--dataset", "movielens-latest-small", "--learner",
                      "attention", "--quiet"],
        "bench": ["bench", "--suite", "tox21", "--preset", "smoke", "--learners", "rf",
                  "--quiet"],
        "evaluate": ["evaluate", "--model", str(tmp_path / "model"), "--suite", "tox21"],
    }
    for name, args in commands.items():
        for out, message in [
                (existing, f"error: --out {existing} is a file, not a folder"),
                (existing / "run", f"error: --out {existing / 'run'}: {existing} is a file, "
                                   "not a folder")]:
            assert main([*args, "--out", str(out)]) == 2, name
            err = capsys.readouterr().err
            assert err.strip() == message, (name, err)
    assert existing.read_text() == "keep me\n"


_EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
_CSV_COMMANDS = {
    "mol predict": ["mol", "predict", "--support", str(_EXAMPLES / "assay_support.csv"),
                    "--query", str(_EXAMPLES / "candidates.csv")],
    "mol suggest": ["mol", "suggest", "--support", str(_EXAMPLES / "assay_support.csv"),
                    "--candidates", str(_EXAMPLES / "candidates.csv"), "--budget", "2"],
    "rec recommend": ["rec", "recommend", "--ratings", str(_EXAMPLES / "new_user_ratings.csv")],
    "rec onboard": ["rec", "onboard", "--n", "3"],
}


def test_out_csv_that_cannot_be_written_is_refused_before_the_model_runs(tmp_path, capsys):
    # A folder, or a path under a file, was a traceback from pandas after the model had run.
    existing = tmp_path / "existing_file"
    existing.write_text("keep me\n")
    for name, args in _CSV_COMMANDS.items():
        for out, message in [
                (tmp_path, f"error: --out {tmp_path} is a folder; give the name of the file "
                           "to write"),
                (existing / "preds.csv", f"error: --out {existing / 'preds.csv'}: {existing} "
                                         "is a file, not a folder")]:
            assert main([*args, "--out", str(out), "--quiet"]) == 2, name
            err = capsys.readouterr().err
            assert err.strip() == message, (name, err)  # no "model: ..." line: nothing ran
    assert existing.read_text() == "keep me\n"


def test_out_csv_in_folders_not_made_yet_is_written(tmp_path, capsys):
    # "new/../new/deeper/x.csv": the folders are made, ".." through one not made yet included.
    for i, (name, args) in enumerate(_CSV_COMMANDS.items()):
        out = tmp_path / f"new{i}" / ".." / f"new{i}" / "deeper" / "x.csv"
        assert main([*args, "--out", str(out), "--quiet"]) == 0, name
        assert f"to {out}" in capsys.readouterr().err
        lines = (tmp_path / f"new{i}" / "deeper" / "x.csv").read_text().splitlines()
        assert len(lines) > 2 and "," in lines[0], name


def test_out_csv_the_system_refuses_to_write_is_an_error_naming_it(tmp_path, capsys,
                                                                    monkeypatch):
    import errno

    import pandas as pd

    def full_disk(self, path, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", full_disk)
    out = tmp_path / "preds.csv"
    assert main([*_CSV_COMMANDS["mol predict"], "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (f"error: --out {out}: cannot write the CSV (No space "
                                            "left on device)")


def _a_trained_model(folder):
    folder.mkdir()
    (folder / "model.pt").write_bytes(b"weights")
    (folder / "config.json").write_text('{"learner": {"name": "protonet"}}')
    return folder


def test_train_refuses_a_folder_that_holds_a_trained_model(tmp_path, capsys):
    # Retraining into it silently replaced the model; --resume is how to continue that run.
    out = _a_trained_model(tmp_path / "run")
    for command, learner in (("mol", "protonet"), ("rec", "attention")):
        code = main([command, "train", "--dataset", _assays_csv(tmp_path), "--learner",
                     learner, "--out", str(out), "--quiet"])
        err = capsys.readouterr().err
        assert code == 2
        assert err.strip() == (f"error: --out {out} already holds a trained model (model.pt, "
                               "config.json); pass --resume to continue that run, or choose "
                               "another folder")
    assert (out / "model.pt").read_bytes() == b"weights"
    # with --resume the run goes on to load its data set (here: one that is not there)
    missing = tmp_path / "nowhere.csv"
    assert main(["mol", "train", "--dataset", str(missing), "--learner", "protonet", "--out",
                 str(out), "--resume", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "already holds a trained model" not in err and str(missing) in err


@pytest.mark.parametrize(("option", "message"), [
    (["--shots", "0"], "error: setting shots=0: must be at least 1"),
    (["--set", "steps=0"], "error: training: option steps=0: must be at least 1"),
    (["--set", "steps=-1"], "error: training: option steps=-1: must be at least 1"),
    (["--set", "encoder.hidden=-4"], "error: encoder.hidden=-4: must be at least 1"),
])
def test_train_refuses_counts_below_one_before_training(tmp_path, capsys, option, message):
    # They failed deep in training (TypeError, negative dimension) or, for steps, saved an
    # untrained model and exited 0.
    out = tmp_path / "run"
    code = main(["mol", "train", "--dataset", _assays_csv(tmp_path), "--learner", "protonet",
                 "--set", "steps=2", "--set", "encoder.hidden=8", "--set", "encoder.depth=1",
                 *option,
                 "--device", "cpu", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().splitlines()[-1] == message, err
    assert "Traceback" not in err and not (out / "model.pt").exists()
