"""Rows a molecule data set skipped, counted per kind of reason with a few example rows:
what ``data inspect`` lists and what training on a CSV of your own warns of (so that no row is
lost silently). Reads the data set's ``invalid`` / ``skipped`` tables only, so that the data
set can use it without importing ``inspect``."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd


def fmt_count(n: int | float) -> str:
    """``12,345``."""
    return f"{int(n):,}"


def _reason_kind(reason: str) -> str:
    """Group RDKit messages ('Explicit valence for atom # 3 Al, 6 ...') by their kind."""
    if reason.startswith("Explicit valence"):
        element = reason.split(",")[0].split()[-1]
        return f"explicit valence too high ({element})"
    if reason.startswith("SMILES contains whitespace"):
        return "SMILES contains whitespace (RDKit reads only the part before it)"
    return reason.split(":")[0] if ":" in reason else reason


#: At most this many example rows per kind of skip.
MAX_EXAMPLE_ROWS = 3


def _read_kind(reason: str) -> str:
    """Group a reader's reasons ("label 'yes' in column 'A' is not a number") by their kind
    ("label is not a number"): the value and the column are in the examples."""
    match = re.fullmatch(r"label .* is (not a number|not 0 or 1|missing)", reason)
    return f"label is {match.group(1)}" if match else reason


@dataclass(frozen=True)
class SkipGroup:
    """Rows skipped for one kind of reason: ``stage`` is ``"rdkit"`` (RDKit rejected the
    SMILES) or ``"read"`` (the reader skipped the measurement); ``examples`` are the first
    rows as ``(file, row, what)`` (``what``: the SMILES, or the reader's full reason)."""

    stage: str
    kind: str
    count: int
    examples: list[tuple[str, int, str]]


def skip_groups(invalid: pd.DataFrame, skipped: pd.DataFrame) -> list[SkipGroup]:
    """The skipped rows counted per kind of reason, with a few example rows each: what
    ``data inspect`` lists and what training on a CSV of your own warns of."""
    groups = []
    if len(invalid):
        per_row = invalid.drop_duplicates(["file", "row"])
        kinds = per_row["reason"].map(_reason_kind)
        for kind, n in kinds.value_counts().items():
            first = per_row[kinds == kind].head(MAX_EXAMPLE_ROWS)
            groups.append(SkipGroup("rdkit", kind, int(n), [
                (f, int(r), repr(str(smi)[:60])) for f, r, smi in
                zip(first["file"], first["row"], first["smiles"])]))
    if len(skipped):
        kinds = skipped["reason"].map(_read_kind)
        for kind, n in kinds.value_counts().items():
            first = skipped[kinds == kind].head(MAX_EXAMPLE_ROWS)
            groups.append(SkipGroup("read", kind, int(n), [
                (f, int(r), why) for f, r, why in
                zip(first["file"], first["row"], first["reason"])]))
    return groups


def examples_text(group: SkipGroup, named: str | None = None) -> str:
    """``e.g. f.csv row 3: xyz; row 7: abc ...``: the file named once when the examples
    share it, and not at all when it is ``named`` (the line says it already)."""
    files = {f for f, _, _ in group.examples}
    shared = files.pop() if len(files) == 1 else None
    rows = "; ".join(f"{'' if shared else f + ' '}row {r}: {what}"
                     for f, r, what in group.examples)
    prefix = f"{shared} " if shared and shared != named else ""
    return f"e.g. {prefix}{rows}" + (" ..." if group.count > len(group.examples) else "")


def skip_warnings(ds) -> list[str]:
    """One self-contained line per kind of skip (the groups ``data inspect`` lists) of a
    :class:`~fewshot_apps.domains.molecules.dataset.MoleculeDataset` ``ds``, for training to
    warn with: the rows a data set lost are never lost silently."""
    where = ds.source_label
    lines = []
    for group in skip_groups(ds.invalid, ds.skipped):
        n = group.count
        what = (f"row{'s' * (n != 1)} skipped, RDKit rejected the SMILES"
                if group.stage == "rdkit" else f"measurement{'s' * (n != 1)} skipped")
        lines.append(f"{where}: {fmt_count(n)} {what} ({group.kind}): "
                     f"{examples_text(group, named=where)}")
    return lines
