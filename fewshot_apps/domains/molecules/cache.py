"""The molecule cache: one file per unit of raw files (a MoleculeNet CSV, an FS-Mol fold),
under a key made of the raw content hash and the featurizer settings, so a changed file or
setting never reuses a stale cache. An entry is a :class:`Unit` as tensors and lists that
``torch.load(weights_only=True)`` reads; an entry of another :data:`CACHE_FORMAT` is rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fewshot_apps.paths import warn_cache_unwritable

from .store import MoleculeStore

CACHE_FORMAT = 2  # 2: SMILES with whitespace inside are rejected


def content_hash(paths: list[Path]) -> str:
    """SHA-256 of the files' names and bytes: a changed file never reuses a stale
    cache."""
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _measurements_to_dict(table: pd.DataFrame) -> dict:
    """A table as tensors for ``torch.load(weights_only=True)``.

    String columns are stored factorized (codes + categories): one long list of Python
    strings per column would make a cached load slow.
    """
    out = {}
    for col in table.columns:
        series = table[col]
        if col == "label":
            out[col] = torch.tensor(series.to_numpy(dtype=np.float32))
        elif col in ("row", "mol"):
            out[col] = torch.tensor(series.to_numpy(dtype=np.int64))
        else:
            codes, categories = pd.factorize(series, use_na_sentinel=True)
            out[col] = {"codes": torch.as_tensor(codes, dtype=torch.int64),
                        "categories": [str(c) for c in categories]}
    return out


def _measurements_from_dict(d: dict) -> pd.DataFrame:
    columns = {}
    for key, value in d.items():
        if isinstance(value, dict):
            categories = np.array(value["categories"] + [None], dtype=object)
            columns[key] = categories[value["codes"].numpy()]  # code -1 -> None
        else:
            columns[key] = value.numpy()
    return pd.DataFrame(columns)


@dataclass
class Unit:
    """A processed unit of raw files: featurized molecules plus its measurements."""

    store: MoleculeStore
    measurements: pd.DataFrame
    invalid: pd.DataFrame
    skipped: pd.DataFrame
    rows_read: dict[str, int]
    task_order: list[str]
    flagged: pd.DataFrame

    def to_dict(self) -> dict:
        return {
            "format": CACHE_FORMAT,
            "store": self.store.to_dict(),
            "measurements": _measurements_to_dict(self.measurements),
            "invalid": _measurements_to_dict(self.invalid),
            "skipped": _measurements_to_dict(self.skipped),
            "flagged": _measurements_to_dict(self.flagged),
            "rows_read": dict(self.rows_read),
            "task_order": list(self.task_order),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Unit:
        return cls(
            store=MoleculeStore.from_dict(d["store"]),
            measurements=_measurements_from_dict(d["measurements"]),
            invalid=_measurements_from_dict(d["invalid"]),
            skipped=_measurements_from_dict(d["skipped"]),
            flagged=_measurements_from_dict(d["flagged"]),
            rows_read=d["rows_read"],
            task_order=d["task_order"],
        )


def read_unit(cache_file: Path) -> Unit | None:
    """The unit cached in ``cache_file``; None when there is none or it is of another format,
    and when it is unusable (said on stderr: a corrupt entry is rebuilt, never trusted)."""
    if cache_file.is_file():
        try:
            data = torch.load(cache_file, weights_only=True)
            if data.get("format") == CACHE_FORMAT:
                return Unit.from_dict(data)
        except Exception as exc:  # a corrupt cache entry is rebuilt, never trusted
            print(f"note: the cache file {cache_file} was unusable "
                  f"({type(exc).__name__}: {str(exc)[:120]}); rebuilding it", file=sys.stderr)
    return None


def write_cache(cache_file: Path, data: dict) -> bool:
    """Write ``data`` to ``cache_file`` atomically; False (after one warning per folder on
    stderr) when the cache directory cannot be written, and False after a warning when
    ``data`` cannot be saved, so loading goes on in memory. A failed write (an interrupt
    too, which is re-raised) leaves no temporary file behind."""
    folder = cache_file.parent
    tmp = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".", suffix=".tmp",
                                         delete=False) as f:
            tmp = Path(f.name)
            torch.save(data, f)
        os.replace(tmp, cache_file)
        return True
    except BaseException as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if isinstance(exc, (OSError, RuntimeError)):  # torch.save reports some OS errors so
            warn_cache_unwritable(folder, exc)
        elif isinstance(exc, Exception):  # pickling: the entry, not the folder, is at fault
            print(f"warning: the cache entry {cache_file} could not be saved "
                  f"({type(exc).__name__}: {str(exc)[:120]}); working in memory",
                  file=sys.stderr)
        else:
            raise
        return False
