import subprocess
import sys

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
