"""A published (fixed) split in an interactions CSV: ``split`` and optional ``role`` columns.

A ratings CSV ``user,item,rating,split[,role][,timestamp]`` says which rows are meta-training
(``train``), validation (``valid``) and test (``test``) rows; with a ``role`` column each test
(and optionally valid) row is a ``support`` or a ``query`` row, so the cold-start evaluation
uses exactly those supports and queries (one fixed episode per user).

Rules (every broken rule is a bad row naming the file and row, or, for a whole user, an
error naming the user and one of its rows):

* ``split`` is ``train``, ``valid`` or ``test`` (any case); blank or anything else is a bad row.
* ``role`` is ``support``, ``query`` or blank; train rows have none.
* with a ``role`` column, every test row has a role; valid rows all have one or none do.
* a user's test (valid) rows with roles hold at least one support and one query row.
* a ``role`` column needs a ``split`` column; the file needs train rows.
* a (user, item) pair on rows of different splits or roles is an error (a repeat within one
  split and role is deduplicated like any repeated rating).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fewshot_apps.core.table_reader import Sink, Table
from fewshot_apps.errors import DataError

SPLIT_VALUES = ("train", "valid", "test")
ROLE_VALUES = ("support", "query")


def _plain(value):
    """A NumPy scalar as the Python value (for messages: 7, not np.int64(7))."""
    return value.item() if isinstance(value, np.generic) else value


def _flag(table: Table, sink: Sink, mask: np.ndarray, reason: str, detail) -> None:
    """Rows of ``mask`` (kept ones) are bad rows: ``detail(i)`` says why row ``i`` is."""
    bad = table.keep & mask
    if bad.any():
        idx = np.flatnonzero(bad)
        sink.bad(table.path, table.role, reason, table.lines[idx], [detail(i) for i in idx[:3]])
        table.drop(bad)


def read_split_columns(
    table: Table, split_col: str, role_col: str | None, sink: Sink
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's split and role, checked; bad rows go to ``sink``.

    Returns:
        ``split`` object ``[n]`` (``train`` / ``valid`` / ``test``) and ``role`` object
        ``[n]`` (``support`` / ``query`` / ``""``), lower-cased; meaningful on kept rows.
    """
    split = table.col(split_col).astype(str).str.strip().str.lower().to_numpy(dtype=object)
    _flag(table, sink, ~np.isin(split, SPLIT_VALUES), "unknown split",
          lambda i: (f"missing split in column {split_col!r} (expected train, valid or test)"
                     if not table.cell(split_col, i) else
                     f"split {table.cell(split_col, i)!r} in column {split_col!r} is not train, "
                     "valid or test"))  # fmt: skip
    if role_col is None:
        return split, np.full(len(split), "", dtype=object)
    role = table.col(role_col).astype(str).str.strip().str.lower().to_numpy(dtype=object)
    _flag(table, sink, ~np.isin(role, (*ROLE_VALUES, "")), "unknown role",
          lambda i: f"role {table.cell(role_col, i)!r} in column {role_col!r} is not support or "
                    "query (or blank)")  # fmt: skip
    _flag(table, sink, (split == "train") & (role != ""), "role on a train row",
          lambda i: f"role {table.cell(role_col, i)!r} on a train row: only valid and test rows "
                    "are support or query rows")  # fmt: skip
    _flag(table, sink, (split == "test") & (role == ""), "test row without a role",
          lambda i: f"test row without a role: with a {role_col!r} column every test row is "
                    "support or query")  # fmt: skip
    valid = split == "valid"
    if (table.keep & valid & (role != "")).any():
        _flag(table, sink, valid & (role == ""), "valid row without a role",
              lambda i: "valid row without a role, while other valid rows have one: give every "
                        "valid row a role (support or query), or none")  # fmt: skip
    return split, role


def check_repeats(frame: pd.DataFrame, path: Path) -> None:
    """A (user, item) pair rated on two rows of different splits or roles is an error (which
    row would be meant?); repeats within one split and role are deduplicated as usual."""
    again = frame.loc[frame.duplicated(["user", "item"], keep=False)]
    if again.empty:
        return
    kinds = again.groupby(["user", "item"], sort=False)[["split", "role"]].nunique()
    mixed = kinds.loc[(kinds["split"] > 1) | (kinds["role"] > 1)]
    if len(mixed):
        user, item = map(_plain, mixed.index[0])
        rows = again.loc[(again["user"] == user) & (again["item"] == item)].sort_values("line")
        where = ", ".join(f"row {int(r.line)} ({r.split}" + (f" {r.role}" if r.role else "") + ")"
                          for r in rows.itertuples())
        raise DataError(path, f"user {user!r} rated item {item!r} on rows of different splits or "
                        f"roles ({where}): a fixed split gives each rating one place",
                        row=int(rows["line"].iloc[-1]))


def check_fixed_split(frame: pd.DataFrame, path: Path) -> None:
    """The whole-file rules of a fixed split, on the kept rows (``frame``: ``user``,
    ``split``, ``role``, ``line``): train rows exist, and every valid / test user with roles
    has a support and a query row (DataError naming the user and its first row otherwise)."""
    if not (frame["split"] == "train").any():
        raise DataError(path, "the split column has no train rows: a fixed split needs "
                        "meta-training rows (split = train)")
    roled = frame.loc[frame["role"] != ""]
    if roled.empty:
        return
    has = (roled.assign(support=roled["role"] == "support", query=roled["role"] == "query")
           .groupby(["split", "user"], sort=False)
           .agg(support=("support", "any"), query=("query", "any"), line=("line", "min"),
                n=("line", "size")))  # fmt: skip
    lacking = has.loc[~(has["support"] & has["query"])]
    if len(lacking):
        (split, user), row = lacking.index[0], lacking.iloc[0]
        user = _plain(user)
        missing, other = ("query", "support") if row["support"] else ("support", "query")
        n = int(row["n"])
        rows = f"its {split} row is a {other} row" if n == 1 else (
            f"its {n} {split} rows are all {other} rows")
        raise DataError(
            path, f"{split} user {user!r} has no {missing} rows ({rows}): each {split} user "
            "needs at least one support and one query row", row=int(row["line"]))


__all__ = ["ROLE_VALUES", "SPLIT_VALUES", "check_fixed_split", "check_repeats",
           "read_split_columns"]
