"""`pip install .` builds a wheel that works outside the source tree.

The wheel is built from a copy of the sources (so the checkout gets no build/ folder), then
installed into a fresh virtual environment that sees this environment's packages (torch,
RDKit, ...) through a .pth file but not the editable install of the checkout. Everything runs
from a folder outside the repository: the dataset cards and suites must come from the wheel.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "fewshot_apps", "datasets", "benchmarks")

CHECK = r"""
import sys
from pathlib import Path
import fewshot_apps
from fewshot_apps.sources import builtin_card_names
from fewshot_apps.bench.suites import suite_names
from fewshot_apps.cli import main

where = Path(fewshot_apps.__file__).resolve()
assert "site-packages" in str(where) and str(REPO) not in str(where), where
assert {"tox21", "movielens-latest-small"} <= set(builtin_card_names())
assert "demo" in suite_names()
preds = fewshot_apps.predict_assay(None, "support.csv", ["CCO", "c1ccccc1O", "not-a-smiles"])
assert preds["error"].iloc[2] and preds["probability"].iloc[:2].notna().all()
sys.exit(main(["rec", "recommend", "--ratings", "ratings.csv", "--top-k", "3"]))
""".replace("REPO", repr(str(REPO)))


def _copy_sources(target: Path) -> None:
    for name in SOURCES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, target / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "results"))
        elif src.exists():
            shutil.copy2(src, target / name)


def _run(args, **kwargs) -> subprocess.CompletedProcess:
    out = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300,
                         **kwargs)
    assert out.returncode == 0, f"{args}\nstdout:\n{out.stdout}\nstderr:\n{out.stderr}"
    return out


def test_wheel_works_outside_the_source_tree(tmp_path):
    src, wheels, env, work = (tmp_path / n for n in ("src", "wheels", "env", "elsewhere"))
    for folder in (src, work):
        folder.mkdir()
    _copy_sources(src)
    # No build isolation: builds offline with this environment's setuptools.
    _run([sys.executable, "-m", "pip", "wheel", src, "--no-deps", "--no-build-isolation",
          "-w", wheels, "-q"])
    wheel = next(wheels.glob("fewshot_apps-*.whl"))

    _run([sys.executable, "-m", "venv", "--without-pip", env])
    env_python = env / "bin" / "python"
    purelib = Path(_run([env_python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
                   .stdout.strip())
    # The fresh environment borrows torch & co. from this one; a .pth line adds the folder
    # but does not run its .pth files, so the checkout's editable install stays invisible.
    (purelib / "_fewshot_test_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    _run([sys.executable, "-m", "pip", "--python", env_python, "install", "--no-deps",
          "--no-index", "-q", wheel])

    shutil.copy(REPO / "examples" / "assay_support.csv", work / "support.csv")
    shutil.copy(REPO / "examples" / "new_user_ratings.csv", work / "ratings.csv")
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = _run([env_python, "-c", CHECK], cwd=work, env=environ)
    assert "Star Wars" in out.stdout or "rank" in out.stdout
    assert "999999" in out.stderr  # the unknown item id is reported

    listing = _run([env / "bin" / "fewshot-apps", "data", "list"], cwd=work, env=environ)
    assert "tox21" in listing.stdout and "movielens-latest-small" in listing.stdout
    assert "yes" in listing.stdout  # the shared data directory was found
