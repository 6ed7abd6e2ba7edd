"""Readers: per-assay molecule files -> one long table of measurements.

Every reader returns a :class:`Measurements`: a DataFrame with one row per (molecule, assay)
measurement, columns ``smiles, task, label, file, row`` (plus format extras such as FS-Mol's
``RegressionProperty``), and the rows it skipped, each with file, row and reason. Problems that
make a whole file unusable (empty, truncated gzip, no SMILES column) raise
:class:`~fewshot_apps.errors.DataError` naming the file.

Rows are numbered as a spreadsheet shows them: CSV header = row 1, first data row = row 2;
JSON-lines files count lines from 1. Reading, decoding and the delimiter check are
:mod:`fewshot_apps.core.table_reader`'s, shared with the recommendation readers.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fewshot_apps.core.table_reader import (
    delimiter_error,
    guess_delimiter,
    parser_error,
    read_text,
)
from fewshot_apps.errors import DataError

#: How a molecule CSV should look, for messages.
CSV_LAYOUT = "a CSV with a header row"
SMILES_COLUMN_NAMES = ("smiles", "canonical_smiles", "smi", "molecule", "mol")
ID_COLUMN_NAMES = ("mol_id", "id", "name", "compound_id", "molecule_id", "cmpd", "inchikey")
FSMOL_EXTRAS = ("RegressionProperty", "LogRegressionProperty", "Relation", "AssayType")


@dataclass
class Measurements:
    """A long table of measurements plus what was skipped while reading.

    ``table`` columns: ``smiles`` (str, as written), ``task`` (str), ``label`` (float 0/1),
    ``file`` (str), ``row`` (int) and any extras. ``skipped`` columns: ``file, row, task,
    reason``. ``rows_read`` counts data rows (molecules) per file.
    """

    table: pd.DataFrame
    skipped: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["file", "row", "task", "reason"])
    )
    rows_read: dict[str, int] = field(default_factory=dict)
    task_order: list[str] = field(default_factory=list)

    @property
    def n_rows_read(self) -> int:
        return sum(self.rows_read.values())

    @staticmethod
    def concat(parts: list[Measurements]) -> Measurements:
        parts = [p for p in parts]
        return Measurements(
            table=pd.concat([p.table for p in parts], ignore_index=True),
            skipped=pd.concat([p.skipped for p in parts if len(p.skipped)], ignore_index=True)
            if any(len(p.skipped) for p in parts)
            else parts[0].skipped,
            rows_read={k: v for p in parts for k, v in p.rows_read.items()},
            task_order=[t for p in parts for t in p.task_order],
        )


def read_name_list(path: str | Path) -> list[str]:
    """A text file of names (assays), one per line; blank lines and ``#`` comments skipped.
    A name may hold commas and spaces (only its surrounding whitespace is stripped)."""
    path = Path(path)
    names = [line.strip() for line in read_text(path).splitlines()]
    names = [n for n in names if n and not n.startswith("#")]
    if not names:
        raise DataError(path, "no names in the file (expected one assay name per line)")
    return names


def read_csv_table(path: str | Path) -> pd.DataFrame:
    """A CSV (gzipped or not) as strings, blanks kept as ''. Errors name the file."""
    path = Path(path)
    text = read_text(path)
    if not text.strip():
        raise DataError(path, "the file is empty")
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False,
                            na_filter=False)
    except pd.errors.ParserError as exc:
        raise parser_error(path, exc, ",", CSV_LAYOUT) from None
    except pd.errors.EmptyDataError:
        raise DataError(path, "the file has no header row") from None
    _check_header(frame, text, path)
    return frame


def _check_header(frame: pd.DataFrame, text: str, path: Path) -> None:
    """What pandas reads without a word but means a misread file: another delimiter, a
    repeated column name (pandas renames the copy ``name.1``), or data rows with one field
    more than the header (pandas makes the first column the index)."""
    header = next(csv.reader(io.StringIO(text)), [])
    if header:
        header[0] = header[0].removeprefix("\ufeff")
    if len(header) == 1 and guess_delimiter(header[0], ",") is not None:
        raise delimiter_error(path, header[0], ",", CSV_LAYOUT, 1)
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise DataError(path, f"column name(s) {repeated} appear more than once in the "
                        "header: give each column its own name")
    if not isinstance(frame.index, pd.RangeIndex):
        raise DataError(path, f"data rows have more fields than the header's {len(header)} "
                        f"columns {header[:12]} (a missing column name, or an unquoted comma "
                        "inside a value)", row=2)


def find_smiles_column(frame: pd.DataFrame, path: Path, given: str | None = None,
                       option: str | None = None) -> str:
    """The SMILES column: ``given``, else the first of the usual names; DataError naming the
    columns otherwise (and the command-line ``option`` that names one, when there is one)."""
    if given is not None:
        if given not in frame.columns:
            raise DataError(path, f"no column {given!r}; columns are {list(frame.columns)}")
        return given
    lowered = {c.lower().strip(): c for c in frame.columns}
    for name in SMILES_COLUMN_NAMES:
        if name in lowered:
            return lowered[name]
    raise DataError(
        path,
        f"no SMILES column: expected one named {' or '.join(SMILES_COLUMN_NAMES[:2])} "
        f"(columns are {list(frame.columns)[:12]}); pass the column name explicitly"
        + (f" ({option})" if option else ""),
    )


def _labels_from_strings(
    values: pd.Series, path: Path, task: str, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Parse a column of label strings: returns (mask of measured rows, labels, problems)."""
    stripped = values.str.strip()
    measured = (stripped != "").to_numpy()
    numbers = pd.to_numeric(stripped.where(measured), errors="coerce").to_numpy(dtype=float)
    ok = measured & np.isin(numbers, (0.0, 1.0))
    bad = measured & ~ok
    problems = []
    for i in np.flatnonzero(bad):
        value = stripped.iloc[i]
        why = "not a number" if np.isnan(numbers[i]) else "not 0 or 1"
        problems.append(
            {"file": str(path), "row": int(rows[i]), "task": task,
             "reason": f"label {value!r} in column {task!r} is {why}"}
        )
    return ok, numbers, problems


def read_wide_csv(
    path: str | Path,
    smiles_column: str | None = None,
    task_columns: list[str] | None = None,
) -> Measurements:
    """A CSV with a SMILES column and one 0/1 column per assay (MoleculeNet style).

    Blank = not measured. Columns that look like ids (``mol_id``...) are not tasks.
    """
    path = Path(path)
    frame = read_csv_table(path)
    smiles_col = find_smiles_column(frame, path, smiles_column)
    if task_columns is None:
        task_columns = [
            c for c in frame.columns if c != smiles_col and c.lower().strip() not in ID_COLUMN_NAMES
        ]
    else:
        missing = [t for t in task_columns if t not in frame.columns]
        if missing:
            raise DataError(path, f"missing task columns {missing}")
    if not task_columns:
        raise DataError(path, "no assay columns besides the SMILES column")
    rows = np.arange(len(frame)) + 2
    parts, problems = [], []
    smiles = frame[smiles_col]
    for task in task_columns:
        ok, numbers, bad = _labels_from_strings(frame[task], path, task, rows)
        problems.extend(bad)
        parts.append(
            pd.DataFrame(
                {"smiles": smiles[ok].to_numpy(), "task": task, "label": numbers[ok],
                 "file": str(path), "row": rows[ok]}
            )
        )
    return Measurements(
        table=pd.concat(parts, ignore_index=True),
        skipped=pd.DataFrame(problems, columns=["file", "row", "task", "reason"]),
        rows_read={str(path): len(frame)},
        task_order=list(task_columns),
    )


def read_long_csv(
    path: str | Path,
    smiles_column: str | None = None,
    task_column: str = "assay",
    label_column: str = "label",
) -> Measurements:
    """A CSV of ``smiles, assay, label`` rows (one measurement per row)."""
    path = Path(path)
    frame = read_csv_table(path)
    smiles_col = find_smiles_column(frame, path, smiles_column)
    for col in (task_column, label_column):
        if col not in frame.columns:
            raise DataError(path, f"no column {col!r}; columns are {list(frame.columns)}")
    rows = np.arange(len(frame)) + 2
    stripped = frame[label_column].str.strip()
    numbers = pd.to_numeric(stripped, errors="coerce").to_numpy(dtype=float)
    ok = np.isin(numbers, (0.0, 1.0))
    problems = [
        {"file": str(path), "row": int(rows[i]), "task": frame[task_column].iloc[i],
         "reason": (f"label {stripped.iloc[i]!r} is "
                    + ("missing" if stripped.iloc[i] == "" else
                       "not a number" if np.isnan(numbers[i]) else "not 0 or 1"))}
        for i in np.flatnonzero(~ok)
    ]
    no_task = ok & (frame[task_column].str.strip() == "").to_numpy()
    problems += [
        {"file": str(path), "row": int(rows[i]), "task": "", "reason": "empty assay name"}
        for i in np.flatnonzero(no_task)
    ]
    ok &= ~no_task
    table = pd.DataFrame(
        {"smiles": frame[smiles_col].to_numpy()[ok], "task": frame[task_column].to_numpy()[ok],
         "label": numbers[ok], "file": str(path), "row": rows[ok]}
    )
    return Measurements(
        table=table,
        skipped=pd.DataFrame(problems, columns=["file", "row", "task", "reason"]),
        rows_read={str(path): len(frame)},
        task_order=list(pd.unique(table["task"])),
    )


def read_molecule_csv(path: str | Path, **columns) -> Measurements:
    """A user's CSV: long (``smiles, assay, label``) when it has those columns, else wide.

    A file with no rows, or none with a 0/1 label, is a :class:`DataError` saying which
    (and, for an ``assay`` column without a ``label`` one, that the label column is
    missing), not an empty data set."""
    path = Path(path)
    frame = read_csv_table(path)
    header = list(frame.columns)
    if frame.empty:
        raise DataError(path, f"the file has a header but no rows (columns {header[:12]})")
    task_column = columns.get("task_column", "assay")
    label_column = columns.get("label_column", "label")
    if task_column in header and label_column in header:
        m = read_long_csv(path, columns.get("smiles_column"), task_column, label_column)
    else:
        m = read_wide_csv(path, columns.get("smiles_column"), columns.get("task_columns"))
    if m.table.empty:
        raise DataError(path, _no_labels(header, m, task_column, label_column))
    return m


def _no_labels(header: list[str], m: Measurements, task_column: str, label_column: str) -> str:
    """Why a CSV gave no measurement: a missing label column, or labels that are not 0/1
    (with the first skipped rows as examples)."""
    examples = "; ".join(f"row {r}: {why}" for r, why in
                         zip(m.skipped["row"][:3], m.skipped["reason"][:3]))
    if task_column in header and label_column not in header:
        return (f"no {label_column!r} column: a CSV of {task_column!r} rows needs columns "
                f"smiles,{task_column},{label_column} (columns are {header[:12]})")
    return (f"no 0/1 label in any row (columns are {header[:12]}): expected "
            f"smiles,{task_column},{label_column} rows or one 0/1 column per assay"
            + (f"; e.g. {examples}" if examples else ""))


def read_fsmol_task(path: str | Path) -> Measurements:
    """One FS-Mol task file (``<ASSAY>.jsonl.gz``), slim or public form.

    Keeps ``SMILES``, ``Property`` (-> label) and the regression keys; the public form's
    ``fingerprints``, ``descriptors`` and ``graph`` are ignored.
    """
    path = Path(path)
    task = path.name.split(".")[0]
    text = read_text(path)
    records, problems = [], []
    n_lines = 0
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        n_lines += 1
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append({"file": str(path), "row": line_no, "task": task,
                             "reason": f"not valid JSON ({exc.msg})"})
            continue
        smiles = item.get("SMILES")
        prop = item.get("Property")
        try:
            label = float(prop)
        except (TypeError, ValueError):
            label = float("nan")
        if smiles is None:
            problems.append({"file": str(path), "row": line_no, "task": task,
                             "reason": "no SMILES key"})
            continue
        if label not in (0.0, 1.0):
            problems.append({"file": str(path), "row": line_no, "task": task,
                             "reason": f"Property {prop!r} is not 0 or 1"})
            continue
        record = {"smiles": smiles, "task": task, "label": label, "file": str(path),
                  "row": line_no}
        for key in FSMOL_EXTRAS:
            record[key] = item.get(key)
        records.append(record)
    if n_lines == 0:
        raise DataError(path, "the file has no records")
    columns = ["smiles", "task", "label", "file", "row", *FSMOL_EXTRAS]
    return Measurements(
        table=pd.DataFrame(records, columns=columns),
        skipped=pd.DataFrame(problems, columns=["file", "row", "task", "reason"]),
        rows_read={str(path): n_lines},
        task_order=[task],
    )


def read_fsmol_fold(folder: str | Path, tasks: list[str] | None = None) -> Measurements:
    """All task files of one FS-Mol fold folder (optionally only the listed tasks)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "no such folder")
    files = sorted(folder.glob("*.jsonl.gz"))
    if tasks is not None:
        wanted = set(tasks)
        files = [f for f in files if f.name.split(".")[0] in wanted]
    if not files:
        raise DataError(folder, "no <ASSAY_ID>.jsonl.gz task files in the folder")
    return Measurements.concat([read_fsmol_task(f) for f in files])
