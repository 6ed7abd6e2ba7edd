"""A plain CSV used where a card name goes: its header decides the domain.

``fewshot-apps data inspect ratings.csv``, ``rec train --dataset ratings.csv``,
:func:`fewshot_apps.load_dataset` and benchmark suites accept a CSV path (``.csv`` or
``.csv.gz``) as well as a card name or a ``card.toml``. :func:`plain_csv_card` reads the
header only and builds an in-memory card:

each registered domain in turn is asked whether the header is its kind
(:meth:`~fewshot_apps.core.domain.Domain.card_for_csv`): the molecule domain claims a SMILES
column, the recommendation domain user, item and rating columns. A header no domain claims is
a :class:`~fewshot_apps.errors.DataError` naming the file, the columns it has and what each
domain expects.

Only the header is read here; the domain's reader validates every row.
"""

from __future__ import annotations

import csv
import gzip
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

from fewshot_apps.core.domain import get_domain
from fewshot_apps.core.registry import DOMAINS
from fewshot_apps.errors import DataError, missing_file
from fewshot_apps.sources import Card, load_card

#: What a plain CSV's name ends with (case-insensitive).
PLAIN_CSV_SUFFIXES = (".csv", ".csv.gz")
#: The delimiters a plain CSV may use, and their names for messages.
DELIMITERS = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}
_HEADER_BYTES = 1 << 16


def is_plain_csv(source) -> bool:
    """Whether ``source`` (a card name, a path, a Card ...) names a plain CSV file."""
    return isinstance(source, (str, Path)) and str(source).lower().endswith(PLAIN_CSV_SUFFIXES)


def _header_line(path: Path) -> str:
    """The first non-blank line of the file (gunzipped), decoded as UTF-8."""
    if not path.is_file():
        raise DataError(path, f"{missing_file(path)} (expected a CSV with a header row, a card name or "
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
    sep = max(DELIMITERS, key=lambda d: (header.count(d), d == ","))
    names = next(csv.reader([header], delimiter=sep))
    return [n.strip() for n in names], sep


def find_column(columns: list[str], names: tuple[str, ...]) -> str | None:
    """The first of ``names`` (lower case) among ``columns``, as the file spells it."""
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
    found = PlainCSV(path=path, name=_card_name(path), columns=columns, delimiter=sep,
                     shown=shown)
    domains = [get_domain(name) for name in DOMAINS]
    for domain in domains:
        card = domain.card_for_csv(found)
        if card is not None:
            return card
    lacking = "; ".join(m for d in domains if (m := d.csv_missing(found)))
    raise DataError(
        path,
        f"cannot tell what this CSV holds{': ' + lacking if lacking else ''} (columns: "
        f"{shown}); expected {', or '.join(d.csv_expectation for d in domains)}",
        row=1,
    )


@dataclass(frozen=True)
class PlainCSV:
    """What a domain sees of a plain CSV: its path, a card name made from the file name,
    the header's columns, its delimiter, and the columns as messages show them."""

    path: Path
    name: str
    columns: list[str]
    delimiter: str
    shown: str

    def find(self, names: tuple[str, ...]) -> str | None:
        return find_column(self.columns, names)


def load_card_or_csv(source: str | Path | Card, data_dir: str | Path | None = None) -> Card:
    """A card as :func:`~fewshot_apps.sources.load_card` finds it, or a plain CSV's
    in-memory card (:func:`plain_csv_card`)."""
    if isinstance(source, Card):
        return source
    if is_plain_csv(source):
        return plain_csv_card(source)
    return load_card(source, data_dir)


__all__ = ["DELIMITERS", "PLAIN_CSV_SUFFIXES", "PlainCSV", "find_column", "is_plain_csv",
           "load_card_or_csv", "plain_csv_card"]
