"""Shared fixtures. Tests read real data from FEWSHOT_DATA_DIR (CI: ../shared/data) and write
derived files to a per-session cache directory, never to the user's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent

torch.set_num_threads(1)


def _data_dir() -> Path:
    """Absolute, so subprocesses (notebook kernels, a wheel's CLI) that run from other
    folders resolve the same data directory."""
    env = os.environ.get("FEWSHOT_DATA_DIR")
    return (Path(env) if env else REPO.parent / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = _data_dir()
    if not (path / "README.md").exists():
        pytest.fail(f"the shared data folder is missing: {path} (set FEWSHOT_DATA_DIR)")
    return path


@pytest.fixture(scope="session", autouse=True)
def _isolated_dirs(tmp_path_factory):
    """Point the package at the shared data and a fresh cache for the whole session."""
    old = {k: os.environ.get(k) for k in ("FEWSHOT_DATA_DIR", "FEWSHOT_CACHE_DIR")}
    os.environ["FEWSHOT_DATA_DIR"] = str(_data_dir())
    os.environ["FEWSHOT_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def tiny_assays_csv(tmp_path_factory) -> Path:
    """A molecule data set of one's own: 40 alcohols and amines measured in 4 assays whose
    labels follow other bits of the row number (a few seconds to train a small learner on)."""
    smiles = ["C" * n + "O" for n in range(1, 21)] + ["C" * n + "N" for n in range(1, 21)]
    rows = ["smiles,a1,a2,a3,a4"] + [
        f"{s},{i % 2},{(i // 2) % 2},{(i // 3) % 2},{(i + 1) % 2}" for i, s in enumerate(smiles)]
    path = tmp_path_factory.mktemp("tiny-assays") / "assays.csv"
    path.write_text("\n".join(rows) + "\n")
    return path
