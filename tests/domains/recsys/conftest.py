"""Recsys fixtures: the real ml-latest-small (read once per session) and writers of small
files in the exact MovieLens 100K / 1M formats (those sets may not be redistributed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fewshot_apps.domains.recsys.config import ColdStartConfig
from fewshot_apps.domains.recsys.dataset import build_recsys_dataset
from fewshot_apps.domains.recsys.readers import read_movielens_latest

# Titles with latin-1 characters, as the real files have them.
LATIN1_TITLES = [
    "Misérables, Les (1995)",
    "Café au Lait (Métisse) (1993)",
    "Jardin des plantes, Le (1994)",
    "Crónica del alba (1982)",
    "Belle époque (1992)",
]


@pytest.fixture(scope="session")
def ml_small_dir(data_dir: Path) -> Path:
    path = data_dir / "movielens" / "ml-latest-small"
    if not (path / "ratings.csv").exists():
        pytest.fail(f"ml-latest-small is missing from {path}")
    return path


@pytest.fixture(scope="session")
def ml_small_data(ml_small_dir: Path):
    """The validated tables (read once; tests that change them take a copy)."""
    return read_movielens_latest(
        ml_small_dir / "ratings.csv", ml_small_dir / "movies.csv", ml_small_dir / "tags.csv",
        name="movielens-latest-small",
    )  # fmt: skip


@pytest.fixture(scope="session")
def ml_small(ml_small_data):
    """The default cold-start build of ml-latest-small (seed 0)."""
    return build_recsys_dataset(ml_small_data, ColdStartConfig())


def synthetic_ratings(n_users: int = 40, n_items: int = 60, seed: int = 0):
    """(user, item, rating 1-5, timestamp) rows: user u rates 20 + (u * 7) % 25 items."""
    rng = np.random.default_rng(seed)
    rows = []
    t = 880_000_000
    for u in range(1, n_users + 1):
        n = min(20 + (u * 7) % 25, n_items)
        for i in rng.choice(np.arange(1, n_items + 1), size=n, replace=False):
            t += int(rng.integers(1, 5000))
            rows.append((u, int(i), int(rng.integers(1, 6)), t))
    return rows


def _title(i: int) -> str:
    if i == 7:  # like the real u.item's item 267: no title year, no release date
        return "unknown"
    if i <= len(LATIN1_TITLES):
        return LATIN1_TITLES[i - 1]
    return f"Movie {i} ({1950 + i % 50})"


def write_ml100k(folder: Path, n_users: int = 40, n_items: int = 60) -> Path:
    """``u.data``, ``u.item``, ``u.user`` exactly as MovieLens 100K lays them out."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = synthetic_ratings(n_users, n_items)
    (folder / "u.data").write_bytes(
        "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in rows).encode("latin-1")
    )
    lines = []
    for i in range(1, n_items + 1):
        flags = ["0"] * 19
        flags[1 + i % 18] = "1"
        if i % 5 == 0:
            flags[1 + (i + 3) % 18] = "1"
        date = "" if i in (7, 9) else f"01-Jan-{1950 + i % 50}"
        if i == 8:  # the real "unknown" genre flag: no genre
            flags = ["1"] + ["0"] * 18
        lines.append(
            f"{i}|{_title(i)}|{date}||http://us.imdb.com/M/title-exact?x{i}|" + "|".join(flags)
        )
    (folder / "u.item").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    occupations = ["technician", "writer", "student", "educator", "other"]
    users = [
        f"{u}|{18 + u % 40}|{'MF'[u % 2]}|{occupations[u % 5]}|{10000 + u:05d}"
        for u in range(1, n_users + 1)
    ]
    (folder / "u.user").write_bytes(("\n".join(users) + "\n").encode("latin-1"))
    return folder


def write_ml1m(folder: Path, n_users: int = 40, n_items: int = 60) -> Path:
    """``ratings.dat``, ``movies.dat``, ``users.dat`` exactly as MovieLens 1M lays them out."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = synthetic_ratings(n_users, n_items, seed=1)
    (folder / "ratings.dat").write_bytes(
        "".join(f"{u}::{i}::{r}::{t}\n" for u, i, r, t in rows).encode("latin-1")
    )
    genres = ["Action", "Adventure", "Animation", "Children's", "Comedy", "Drama", "Sci-Fi"]
    movies = [
        f"{i}::{_title(i)}::{genres[i % 7]}" + (f"|{genres[(i + 2) % 7]}" if i % 3 == 0 else "")
        for i in range(1, n_items + 1)
    ]
    (folder / "movies.dat").write_bytes(("\n".join(movies) + "\n").encode("latin-1"))
    ages = [1, 18, 25, 35, 45, 50, 56]
    users = [
        f"{u}::{'MF'[u % 2]}::{ages[u % 7]}::{u % 21}::{48000 + u}" for u in range(1, n_users + 1)
    ]
    (folder / "users.dat").write_bytes(("\n".join(users) + "\n").encode("latin-1"))
    return folder


@pytest.fixture
def ml100k_dir(tmp_path: Path) -> Path:
    return write_ml100k(tmp_path / "movielens" / "ml-100k")


@pytest.fixture
def ml1m_dir(tmp_path: Path) -> Path:
    return write_ml1m(tmp_path / "movielens" / "ml-1m")


@pytest.fixture
def latin1_titles() -> list[str]:
    return list(LATIN1_TITLES)
