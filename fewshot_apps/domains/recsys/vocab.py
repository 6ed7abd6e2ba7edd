"""Stable id vocabularies: a data set's user or item ids -> contiguous indices ``0..n-1``.

The item vocabulary holds every *listed* item (``movies.csv``, ``u.item``, an items CSV),
rated or not, so that a new item with attributes but no ratings still has an index. Ids are
kept sorted, so the same id list always gives the same indices; a model saves its
vocabularies (:meth:`Vocabulary.to_dict` / :func:`save_vocabularies`) and ``recommend`` maps a
new user's item ids with :meth:`Vocabulary.indices`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fewshot_apps.errors import DataError

_FORMAT = "fewshot-apps/vocabulary/1"


@dataclass
class Vocabulary:
    """Ids (all ``int`` or all ``str``) in index order.

    Attributes:
        kind: ``"item"`` or ``"user"``.
        ids: the ids; ``ids[i]`` has index ``i``.
    """

    kind: str
    ids: list
    _index: pd.Index = field(init=False, repr=False)

    def __post_init__(self) -> None:
        values = list(self.ids)
        if values and all(isinstance(v, (int, np.integer)) for v in values):
            self.ids = [int(v) for v in values]
            self._index = pd.Index(np.asarray(self.ids, dtype=np.int64))
        else:
            self.ids = [str(v) for v in values]
            self._index = pd.Index(self.ids, dtype=object)
        if not self._index.is_unique:
            dup = self._index[self._index.duplicated()][0]
            raise ValueError(f"{self.kind} vocabulary: id {dup!r} appears twice")

    @classmethod
    def from_ids(cls, kind: str, ids: Iterable) -> Vocabulary:
        """A vocabulary of the distinct ``ids``, sorted (stable for the same id set)."""
        unique = pd.unique(pd.Series(list(ids)))
        return cls(kind, sorted(unique.tolist()))

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, item_id: object) -> bool:
        return self.index_of(item_id) >= 0

    @property
    def dtype(self) -> str:
        return "int" if self._index.dtype.kind == "i" else "str"

    def _coerce(self, ids: Iterable) -> tuple[pd.Index, np.ndarray | None]:
        values = pd.Series(list(ids) if not isinstance(ids, (pd.Series, np.ndarray)) else ids)
        if self.dtype == "int" and values.dtype.kind in "iu":
            return pd.Index(values.to_numpy(dtype=np.int64)), None
        if self.dtype == "int":
            as_num = pd.to_numeric(values.astype(str).str.strip(), errors="coerce")
            whole = as_num.notna() & (as_num == np.floor(as_num))
            out = np.full(len(values), -1, dtype=np.int64)
            out[whole.to_numpy()] = as_num[whole].to_numpy().astype(np.int64)
            # non-integers are marked separately: -1 could be a real id
            return pd.Index(out), ~whole.to_numpy()
        return pd.Index(values.astype(str).str.strip().to_numpy(), dtype=object), None

    def indices(self, ids: Iterable) -> np.ndarray:
        """int64 ``[len(ids)]``: the index of each id, ``-1`` where the id is unknown.

        Ids are compared by value after stripping blanks, so ``"12"`` finds the int id 12.
        """
        coerced, invalid = self._coerce(ids)
        out = self._index.get_indexer(coerced).astype(np.int64)
        if invalid is not None:
            out[invalid] = -1
        return out

    def index_of(self, item_id: object) -> int:
        return int(self.indices([item_id])[0])

    def fingerprint(self) -> str:
        """sha256 of the id list: a saved model checks it against the data it is used on."""
        return hashlib.sha256(json.dumps([self.kind, self.ids]).encode()).hexdigest()

    def to_dict(self) -> dict:
        return {
            "format": _FORMAT,
            "kind": self.kind,
            "dtype": self.dtype,
            "size": len(self),
            "sha256": self.fingerprint(),
            "ids": self.ids,
        }

    @classmethod
    def from_dict(cls, data: Mapping, *, origin: str | Path | None = None) -> Vocabulary:
        if data.get("format") != _FORMAT or "ids" not in data:
            raise DataError(origin, f"not a saved vocabulary (expected format {_FORMAT!r})")
        vocab = cls(data["kind"], list(data["ids"]))
        if data.get("sha256") and data["sha256"] != vocab.fingerprint():
            raise DataError(origin, f"{data['kind']} vocabulary: sha256 does not match its ids")
        return vocab


def save_vocabularies(path: str | Path, *vocabs: Vocabulary) -> Path:
    """Write the vocabularies as one JSON file ``{kind: vocabulary}``; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {v.kind: v.to_dict() for v in vocabs}
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


def load_vocabularies(path: str | Path) -> dict[str, Vocabulary]:
    """The vocabularies :func:`save_vocabularies` wrote, by kind (``"item"``, ``"user"``)."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(path, f"cannot read vocabularies: {exc}") from None
    return {kind: Vocabulary.from_dict(d, origin=path) for kind, d in payload.items()}
