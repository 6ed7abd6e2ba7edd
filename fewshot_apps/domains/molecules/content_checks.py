"""A card's ``[expected]`` table checked against what was read: row, task and label counts of
a MoleculeNet file, task and row counts of an FS-Mol fold. A mismatch is a
:class:`~fewshot_apps.errors.ContentCheckError` naming the file."""

from __future__ import annotations

from pathlib import Path

from fewshot_apps.errors import ContentCheckError
from fewshot_apps.sources import Card

from .readers import Measurements


def check_moleculenet(card: Card, m: Measurements, path: Path) -> None:
    """Check a MoleculeNet-style file against the card's ``[expected]`` table."""
    exp = card.expected
    if "rows" in exp and m.n_rows_read != exp["rows"]:
        raise ContentCheckError(
            path, f"expected {exp['rows']} data rows for {card.name!r}, found {m.n_rows_read}"
        )
    if "tasks" in exp:
        found, want = set(m.task_order), set(exp["tasks"])
        absent = set(exp.get("absent_tasks", []))
        if want - absent - found or found - want:
            raise ContentCheckError(
                path,
                f"task columns differ from card {card.name!r}: missing "
                f"{sorted(want - absent - found)}, unexpected {sorted(found - want)}",
            )
    if "n_tasks" in exp and len(m.task_order) != exp["n_tasks"]:
        raise ContentCheckError(
            path, f"expected {exp['n_tasks']} task columns, found {len(m.task_order)}"
        )
    counts = m.table.groupby("task")["label"].agg(["sum", "size"])
    for task, (pos, neg) in exp.get("labels", {}).items():
        if task not in counts.index:
            continue
        got_pos = int(counts.at[task, "sum"])
        got_neg = int(counts.at[task, "size"]) - got_pos
        if (got_pos, got_neg) != (pos, neg):
            raise ContentCheckError(
                path,
                f"task {task!r}: expected {pos} positives / {neg} negatives, "
                f"found {got_pos} / {got_neg}",
            )


def check_fsmol_fold(card: Card, fold: str, listed: list[str], m: Measurements, folder: Path) -> None:
    """Check one FS-Mol fold against the card's ``[expected.folds.<fold>]`` table."""
    exp = card.expected.get("folds", {}).get(fold)
    if not exp:
        return
    absent = set(exp.get("absent_tasks", []))
    if len(listed) != exp["tasks"]:
        raise ContentCheckError(
            card.path("split"), f"fold {fold!r}: expected {exp['tasks']} tasks, found {len(listed)}"
        )
    present = set(m.task_order)
    missing = set(listed) - present - absent
    if missing:
        raise ContentCheckError(
            folder,
            f"fold {fold!r}: {len(missing)} listed task files are missing "
            f"(e.g. {sorted(missing)[:3]}); only {sorted(absent) or 'none'} may be absent",
        )
    counted = {f: n for f, n in m.rows_read.items() if Path(f).name.split(".")[0] not in absent}
    rows = sum(counted.values())
    if "rows" in exp and rows != exp["rows"]:
        raise ContentCheckError(
            folder, f"fold {fold!r}: expected {exp['rows']} rows, found {rows}"
        )
