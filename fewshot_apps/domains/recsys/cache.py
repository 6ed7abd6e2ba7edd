"""The recsys read cache: a :class:`RecsysData` as one ``.npz`` file, loaded without pickle.

Numeric and boolean columns are stored as plain arrays; text and other object columns as
integer codes plus a JSON list of their distinct values; everything else (names, the rating
scale, the read report, column dtypes) as JSON. ``numpy.load(allow_pickle=False)`` reads it,
so a file someone swapped into the cache directory can be wrong, never run code. Anything
unexpected in a file raises :class:`CacheFileError` and the caller rebuilds the entry.
"""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from fewshot_apps.domains.recsys.readers import RatingScale, ReadReport, RecsysData

#: Bumped when the layout changes; a file of another version is rebuilt.
CACHE_LAYOUT = 1
_FRAMES = ("ratings", "items", "users", "tags")
_PLAIN_KINDS = "biufcmM"  # bool, ints, floats, complex, timedelta, datetime: no pickle needed


class CacheFileError(Exception):
    """A cache file is unreadable, of another format or layout, or for another key."""


class _Uncacheable(Exception):
    """The data holds values this layout cannot store without pickle."""


def _json_value(v: object) -> object:
    if isinstance(v, np.generic):
        v = v.item()
    if v is None or isinstance(v, (str, bool, int, float)):
        return v
    raise _Uncacheable(f"a value of type {type(v).__name__}")


def _encode_series(series: pd.Series, slot: str, arrays: dict) -> dict:
    dtype = series.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in _PLAIN_KINDS:
        arrays[slot] = series.to_numpy()
        return {"kind": "array", "dtype": str(dtype)}
    codes, uniques = pd.factorize(series.to_numpy(dtype=object), use_na_sentinel=True)
    arrays[slot] = codes.astype(np.int64)
    return {"kind": "codes", "dtype": str(dtype), "values": [_json_value(u) for u in uniques]}


def _decode_series(spec: dict, array: np.ndarray) -> pd.Series:
    if spec["kind"] == "array":
        if str(array.dtype) != spec["dtype"]:
            raise CacheFileError(f"column dtype {array.dtype}, expected {spec['dtype']}")
        return pd.Series(array, copy=False)
    values = np.array(list(spec["values"]) + [None], dtype=object)
    if array.dtype.kind != "i" or (len(array) and (array.min() < -1 or array.max() >= len(values) - 1)):
        raise CacheFileError("bad codes")
    column = values[array]
    if spec["dtype"] == "object":
        return pd.Series(column, dtype=object)
    return pd.Series(column, dtype=spec["dtype"])


def _encode_frame(frame: pd.DataFrame, name: str, arrays: dict) -> dict:
    columns = []
    for i, col in enumerate(frame.columns):
        columns.append([_json_value(col), _encode_series(frame[col], f"{name}.{i}", arrays)])
    index = None
    if not frame.index.equals(pd.RangeIndex(len(frame))):
        index = _encode_series(frame.index.to_series(), f"{name}.index", arrays)
    return {"rows": len(frame), "columns": columns, "index": index}


def _decode_frame(spec: dict, name: str, z) -> pd.DataFrame:
    data = {}
    for i, (col, col_spec) in enumerate(spec["columns"]):
        series = _decode_series(col_spec, z[f"{name}.{i}"])
        if len(series) != spec["rows"]:
            raise CacheFileError(f"{name}: column {col!r} has {len(series)} rows, not {spec['rows']}")
        data[col] = series
    frame = pd.DataFrame(data)
    if not spec["columns"]:
        frame = pd.DataFrame(index=pd.RangeIndex(spec["rows"]))
    if spec["index"] is not None:
        frame.index = pd.Index(_decode_series(spec["index"], z[f"{name}.index"]))
    return frame


def encode(data: RecsysData, key: str) -> bytes:
    """The ``.npz`` bytes of ``data`` (raises :class:`_Uncacheable` for unsupported values)."""
    arrays: dict[str, np.ndarray] = {}
    frames = {}
    for name in _FRAMES:
        frame = getattr(data, name)
        frames[name] = None if frame is None else _encode_frame(frame, name, arrays)
    meta = {
        "layout": CACHE_LAYOUT,
        "key": key,
        "name": data.name,
        "format": data.format,
        "scale": None if data.scale is None else dataclasses.asdict(data.scale),
        "report": dataclasses.asdict(data.report),
        "item_feature_columns": list(data.item_feature_columns),
        "user_feature_columns": list(data.user_feature_columns),
        "frames": frames,
    }
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def decode(raw: bytes | Path, key: str) -> RecsysData:
    """The :class:`RecsysData` in an ``.npz`` written by :func:`encode` for ``key``."""
    source = raw if isinstance(raw, Path) else io.BytesIO(raw)
    try:
        with np.load(source, allow_pickle=False) as z:
            meta = json.loads(z["meta"].tobytes().decode())
            if not isinstance(meta, dict) or meta.get("layout") != CACHE_LAYOUT:
                raise CacheFileError(f"cache layout {meta.get('layout')!r}, not {CACHE_LAYOUT}")
            if meta.get("key") != key:
                raise CacheFileError("written for other files or settings")
            frames = {
                name: None if spec is None else _decode_frame(spec, name, z)
                for name, spec in meta["frames"].items()
            }
        scale = None if meta["scale"] is None else RatingScale(**meta["scale"])
        return RecsysData(
            name=meta["name"],
            format=meta["format"],
            ratings=frames["ratings"],
            items=frames["items"],
            users=frames["users"],
            tags=frames["tags"],
            scale=scale,
            report=ReadReport(**meta["report"]),
            item_feature_columns=list(meta["item_feature_columns"]),
            user_feature_columns=list(meta["user_feature_columns"]),
        )
    except CacheFileError:
        raise
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError, IndexError,
            UnicodeDecodeError, zipfile.BadZipFile) as exc:
        raise CacheFileError(f"{type(exc).__name__}: {exc}") from None


def _same(a: pd.DataFrame | None, b: pd.DataFrame | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.equals(b) and list(a.columns) == list(b.columns) and a.index.equals(b.index)


def to_bytes(data: RecsysData, key: str) -> bytes | None:
    """:func:`encode`, checked by decoding it again: None when this layout would not give
    back exactly the same tables (then the data is simply not cached)."""
    try:
        raw = encode(data, key)
        back = decode(raw, key)
    except (_Uncacheable, CacheFileError, TypeError, ValueError):
        return None
    if all(_same(getattr(data, n), getattr(back, n)) for n in _FRAMES):
        return raw
    return None
