"""Where data sets and derived caches live.

Raw data goes to the *data directory* (``$FEWSHOT_DATA_DIR``, else the user data directory),
which may be read-only. Everything derived (featurized graphs, fingerprints, label tables)
goes to the *cache directory* (``$FEWSHOT_CACHE_DIR``, else the user cache directory).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

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
