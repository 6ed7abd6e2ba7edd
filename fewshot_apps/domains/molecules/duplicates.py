"""Repeated measurements of one molecule in one assay: how many there are, and the policies
that keep, drop or resolve them when tasks are built."""

from __future__ import annotations

import pandas as pd

DUPLICATE_POLICIES = ("keep", "drop-conflicting", "majority")


def duplicate_counts(measurements: pd.DataFrame) -> pd.DataFrame:
    """Per task: measurements of a molecule seen more than once, and conflicting ones
    (molecules RDKit rejected left out)."""
    valid = measurements[measurements["mol"] >= 0]
    grouped = valid.groupby(["task", "mol"])["label"].agg(["size", "nunique"])
    dup = grouped[grouped["size"] > 1]
    return (
        dup.assign(conflicting=dup["nunique"] > 1)
        .groupby("task")
        .agg(duplicate_molecules=("size", "size"), extra_rows=("size", lambda s: int((s - 1).sum())),
             conflicting=("conflicting", "sum"))
    )


def apply_duplicate_policy(valid: pd.DataFrame, policy: str) -> pd.DataFrame:
    """``valid`` (one row per measurement) under ``policy`` (one of
    :data:`DUPLICATE_POLICIES`), in file order."""
    if policy == "keep":
        return valid
    stats = valid.groupby(["task", "mol"])["label"].agg(["mean", "size"])
    if policy == "drop-conflicting":
        keep = stats[(stats["mean"] == 0) | (stats["mean"] == 1)]
        label = keep["mean"]
    else:  # majority; a tie has mean 0.5 and is dropped
        keep = stats[stats["mean"] != 0.5]
        label = (keep["mean"] > 0.5).astype(float)
    first = valid.drop_duplicates(["task", "mol"]).set_index(["task", "mol"])
    out = first.loc[keep.index].copy()
    out["label"] = label.to_numpy()
    # Restore file order (the groupby sorted by task and molecule).
    return out.reset_index().sort_values(["unit", "file", "row"], kind="stable")
