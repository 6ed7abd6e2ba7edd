"""A plain CSV used where a card name goes: its header decides the domain.

``fewshot-apps data inspect ratings.csv``, ``rec train --dataset ratings.csv``,
:func:`fewshot_apps.load_dataset` and benchmark suites accept a CSV path (``.csv`` or
``.csv.gz``) as well as a card name or a ``card.toml``. :func:`plain_csv_card` reads the
header only and builds an in-memory card:

* a SMILES column (``smiles``, ``canonical_smiles`` ...): molecules, format
  ``molecules-csv`` (``smiles,assay,label`` rows, or one column per assay);
* user and item columns (``user``/``userId``, ``item``/``movieId`` ...) and a rating column:
  recommendation, format ``interactions-csv`` with the columns it found, the file's
  delimiter (comma, tab, semicolon or pipe) and the observed rating range as the scale;
* anything else: a :class:`~fewshot_apps.errors.DataError` naming the file, the columns it
  has and what was expected. So is a user/item CSV with no rating column (implicit
  feedback needs a card for now).

Only the header is read here; the domain's reader validates every row.
"""

from __future__ import annotations

import csv
import gzip
import re
import zlib
from pathlib import Path

from fewshot_apps.domains.molecules.readers import SMILES_COLUMN_NAMES as SMILES_NAMES
from fewshot_apps.domains.recsys.recommend import ITEM_COLUMN_NAMES as ITEM_NAMES
from fewshot_apps.domains.recsys.recommend import RATING_COLUMN_NAMES as RATING_NAMES
from fewshot_apps.domains.recsys.recommend import USER_COLUMN_NAMES as USER_NAMES
from fewshot_apps.errors import DataError
from fewshot_apps.sources import Card, load_card

#: What a plain CSV's name ends with (case-insensitive).
PLAIN_CSV_SUFFIXES = (".csv", ".csv.gz")
#: Column names tried (case-insensitive) besides the molecule reader's SMILES names and
#: ``rec recommend``'s user / item / rating names.
TIMESTAMP_NAMES = ("timestamp",)
_DELIMITERS = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}
_HEADER_BYTES = 1 << 16


def is_plain_csv(source) -> bool:
    """Whether ``source`` (a card name, a path, a Card ...) names a plain CSV file."""
    return isinstance(source, (str, Path)) and str(source).lower().endswith(PLAIN_CSV_SUFFIXES)


def _header_line(path: Path) -> str:
    """The first non-blank line of the file (gunzipped), decoded as UTF-8."""
    if not path.is_file():
        raise DataError(path, "no such file (expected a CSV with a header row, a card name or "
                        "a card.toml)")
    with open(path, "rb") as f:
        raw = f.read(_HEADER_BYTES)
    if raw[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as f:
                raw = f.read(_HEADER_BYTES)
        except (EOFError, OSError, zlib.error) as exc:
            raise DataError(path, f"truncated or corrupt gzip file ({exc})") from None
    if not raw.strip():
        raise DataError(path, "the file is empty; expected a CSV with a header row (e.g. "
                        "user,item,rating for ratings, or smiles,... for molecules)")
    if b"\x00" in raw[:4096]:
        raise DataError(path, "the file has NUL bytes (UTF-16 or binary?); expected UTF-8 text")
    lines = raw.split(b"\n")
    complete = lines if len(raw) < _HEADER_BYTES else lines[:-1]  # the last may be cut
    row, line = next(((n, ln) for n, ln in enumerate(complete, 1) if ln.strip()), (1, b""))
    try:
        return line.decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError as exc:
        raise DataError(path, f"the header has byte 0x{line[exc.start]:02x}, which is not "
                        "valid UTF-8; a plain CSV must be UTF-8 text", row=row) from None


def _columns(path: Path, header: str) -> tuple[list[str], str]:
    """The header's column names and its delimiter (the one that splits it the most)."""
    sep = max(_DELIMITERS, key=lambda d: (header.count(d), d == ","))
    names = next(csv.reader([header], delimiter=sep))
    return [n.strip() for n in names], sep


def _find(columns: list[str], names: tuple[str, ...]) -> str | None:
    lowered = {c.lower(): c for c in reversed(columns)}
    return next((lowered[n] for n in names if n in lowered), None)


def _card_name(path: Path) -> str:
    """A valid card name from the file name (``my ratings.csv.gz`` -> ``my-ratings``)."""
    stem = path.name.split(".")[0] or "plain-csv"
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._")[:100]
    return name or "plain-csv"


def plain_csv_card(path: str | Path) -> Card:
    """The in-memory card of a plain CSV, its domain decided by the header (see the module
    docstring). Raises :class:`DataError` naming the file and its columns when the header
    matches neither domain."""
    path = Path(path).expanduser().absolute()  # as the reader's messages name it
    header = _header_line(path)
    columns, sep = _columns(path, header)
    shown = ", ".join(repr(c) for c in columns[:12]) + (" ..." if len(columns) > 12 else "")
    common = {"name": _card_name(path), "root": path.parent,
              "files": {}, "source": path}
    smiles = _find(columns, SMILES_NAMES)
    if smiles is not None:
        if sep != ",":
            raise DataError(path, f"{_DELIMITERS[sep]}-separated columns ({shown}); a molecule "
                            "CSV must be comma-separated", row=1)
        common["files"] = {"data": path.name}
        return Card(domain="molecules", format="molecules-csv",
                    title=f"{path.name} (plain CSV of molecules, SMILES column {smiles!r})",
                    **common)
    user, item = _find(columns, USER_NAMES), _find(columns, ITEM_NAMES)
    rating = _find(columns, RATING_NAMES)
    if user is None or item is None:
        lacking = " and ".join(w for w, c in (("user", user), ("item", item)) if c is None)
        raise DataError(
            path,
            f"cannot tell what this CSV holds: no {lacking} column (columns: {shown}); "
            "expected a SMILES column (smiles) for molecules, or user, item and rating "
            "columns (user or userId, item or movieId, rating[, timestamp]) for ratings",
            row=1,
        )
    if rating is None:
        raise DataError(
            path,
            f"user and item columns but no rating column (columns: {shown}); a plain ratings "
            f"CSV needs one named {' or '.join(RATING_NAMES)} (implicit feedback, user-item "
            "pairs without ratings, is not supported from a plain CSV for now)",
            row=1,
        )
    timestamp = _find(columns, TIMESTAMP_NAMES)
    common["files"] = {"ratings": path.name}
    where = "" if sep == "," else f"; {_DELIMITERS[sep]}-separated"
    return Card(
        domain="recsys", format="interactions-csv",
        title=f"{path.name} (plain CSV: user {user!r}, item {item!r}, rating {rating!r}"
              + (f", timestamp {timestamp!r}" if timestamp else ", no timestamp") + where + ")",
        options={"user_col": user, "item_col": item, "rating_col": rating,
                 "timestamp_col": timestamp or "", "delimiter": sep},
        **common,
    )


def load_card_or_csv(source: str | Path | Card, data_dir: str | Path | None = None) -> Card:
    """A card as :func:`~fewshot_apps.sources.load_card` finds it, or a plain CSV's
    in-memory card (:func:`plain_csv_card`)."""
    if isinstance(source, Card):
        return source
    if is_plain_csv(source):
        return plain_csv_card(source)
    return load_card(source, data_dir)


__all__ = ["PLAIN_CSV_SUFFIXES", "is_plain_csv", "load_card_or_csv", "plain_csv_card"]
