"""Where data sets and derived caches live.

Raw data goes to the *data directory* (``$FEWSHOT_DATA_DIR``, else the user data directory),
which may be read-only. Everything derived (featurized graphs, fingerprints, label tables)
goes to the *cache directory* (``$FEWSHOT_CACHE_DIR``, else the user cache directory).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from pathlib import Path

import platformdirs

from fewshot_apps.errors import FewshotError

APP_NAME = "fewshot-apps"


def data_dir(override: str | Path | None = None) -> Path:
    if override is not None:
        return Path(override).expanduser()
    env = os.environ.get("FEWSHOT_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir(APP_NAME))


def cache_dir(override: str | Path | None = None) -> Path:
    if override is not None:
        return Path(override).expanduser()
    env = os.environ.get("FEWSHOT_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir(APP_NAME))


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_warned_unwritable: set[str] = set()


def cache_file(folder: str | Path, label: str, *key: object, suffix: str) -> Path:
    """The cache file in ``folder`` for ``label`` (a data set name) and ``key`` parts.

    The name is ``<prefix>-<sha256 of label and key>`` + ``suffix``, where the prefix is the
    label reduced to ``[A-Za-z0-9._-]`` for people browsing the folder: no user text decides
    where the file goes, and two labels that sanitize alike still get different files.
    """
    digest = hashlib.sha256(json.dumps([str(label), *map(str, key)]).encode()).hexdigest()
    prefix = _UNSAFE.sub("_", str(label)).strip("._-")[:48] or "data"
    return Path(folder) / f"{prefix}-{digest[:40]}{suffix}"


def warn_cache_unwritable(folder: str | Path, exc: BaseException) -> None:
    """Say once per folder (on stderr) that the cache cannot be written there."""
    key = str(folder)
    if key in _warned_unwritable:
        return
    _warned_unwritable.add(key)
    print(
        f"warning: the cache directory {folder} is not writable ({exc}); working in memory "
        "(set FEWSHOT_CACHE_DIR to a writable folder to keep derived files)",
        file=sys.stderr,
    )


def check_output_folder(out: str | Path, option: str = "--out") -> Path:
    """``out`` as a Path; FewshotError when it, or the nearest existing path above it, is a
    file. Checked before any work: making the folder fails only after the data are loaded."""
    out = Path(out)
    existing = _nearest_existing(out)
    if existing is not None and not existing.is_dir():
        if existing == out:
            raise FewshotError(f"{option} {out} is a file, not a folder")
        raise FewshotError(f"{option} {out}: {existing} is a file, not a folder")
    return out


def check_output_file(out: str | Path, option: str = "--out") -> Path:
    """``out`` as a Path; FewshotError when it is a folder, or the nearest existing path above
    it is a file or a folder this process cannot write in. Checked before any work: writing
    the file fails only after the model has run. Missing folders above it are made when the
    file is written."""
    out = Path(out)
    if out.is_dir():
        raise FewshotError(f"{option} {out} is a folder; give the name of the file to write")
    existing = _nearest_existing(out.parent)
    if existing is not None and not existing.is_dir():
        raise FewshotError(f"{option} {out}: {existing} is a file, not a folder")
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise FewshotError(f"{option} {out}: cannot write in {existing} (permission denied)")
    return out


def _nearest_existing(path: Path) -> Path | None:
    """``path`` or the nearest folder above it that exists (None: none does)."""
    return next((p for p in (path, *path.parents) if p.exists()), None)
