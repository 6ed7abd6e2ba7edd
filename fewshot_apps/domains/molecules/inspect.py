"""`fewshot-apps data inspect` for molecule data sets: counts per fold, tasks and skips."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fewshot_apps.sources import Card

from .dataset import MoleculeDataset, load_molecule_dataset, rdkit_version

MAX_TASK_ROWS = 30  # beyond this many tasks in a fold, summarize instead of listing


def _fmt(n: int | float) -> str:
    return f"{int(n):,}"


def _reason_kind(reason: str) -> str:
    """Group RDKit messages ('Explicit valence for atom # 3 Al, 6 ...') by their kind."""
    if reason.startswith("Explicit valence"):
        element = reason.split(",")[0].split()[-1]
        return f"explicit valence too high ({element})"
    if reason.startswith("SMILES contains whitespace"):
        return "SMILES contains whitespace (RDKit reads only the part before it)"
    return reason.split(":")[0] if ":" in reason else reason


def _names(tasks: list[str]) -> str:
    """Task names joined by commas; a name with a comma in it (SIDER's) is quoted."""
    return ", ".join(f'"{t}"' if "," in t else t for t in tasks) or "none"


def describe(ds: MoleculeDataset) -> str:
    lines = [f"data set: {ds.name}" + (f"  ({ds.card.title})" if ds.card and ds.card.title else "")]
    if ds.card is not None:
        lines.append(f"files under: {ds.card.root}")
    lines.append(f"RDKit {rdkit_version()}; featurizer {ds.featurizer}")
    m = ds.measurements
    split_of = {t: s for s, names in ds.split.items() for t in names}
    for unit, tasks in ds.units.items():
        files = sorted({f for f in m.loc[m["unit"] == unit, "file"].unique()})
        rows = sum(ds.rows_read.get(f, 0) for f in files) if unit != "all" else ds.n_rows_read
        um = m[m["unit"] == unit]
        valid = um[um["mol"] >= 0]
        invalid = ds.invalid[ds.invalid["file"].isin(files)] if unit != "all" else ds.invalid
        timing = ds.timings.get(unit, {})
        header = "all tasks" if unit == "all" else f"fold {unit}"
        lines.append("")
        lines.append(f"== {header} ==")
        lines.append(
            f"rows read: {_fmt(rows)}   measurements: {_fmt(len(um))}   tasks: {len(tasks)}"
        )
        mol_rows = um.drop_duplicates(["file", "row"])
        lines.append(
            f"valid molecules: {_fmt(valid['mol'].nunique())} unique "
            f"({_fmt(len(mol_rows) - invalid.drop_duplicates(['file', 'row']).shape[0])} rows); "
            f"rejected by RDKit: {_fmt(invalid.drop_duplicates(['file', 'row']).shape[0])} rows "
            f"({invalid['smiles'].nunique()} unique SMILES)"
        )
        if timing:
            lines.append(
                f"loaded from {timing['source']} in {timing['seconds']:.2f} s"
                + (f" (featurizing {timing['featurize_seconds']:.2f} s)"
                   if "featurize_seconds" in timing else "")
            )
        counts = (
            valid.groupby("task", sort=False)["label"].agg(positives="sum", n="size")
            .reindex(tasks).fillna(0)
        )
        counts["negatives"] = counts["n"] - counts["positives"]
        counts["split"] = [split_of.get(t, "-") for t in counts.index]
        one_class = counts[(counts["positives"] == 0) | (counts["negatives"] == 0)]
        if len(tasks) <= MAX_TASK_ROWS:
            lines.append(f"{'task':<24} {'split':<6} {'positives':>10} {'negatives':>10}")
            for task, row in counts.iterrows():
                lines.append(
                    f"{task:<24} {row['split']:<6} {_fmt(row['positives']):>10} "
                    f"{_fmt(row['negatives']):>10}"
                )
        else:
            sizes = counts["n"].to_numpy()
            frac = (counts["positives"] / counts["n"].clip(lower=1)).to_numpy()
            q = np.percentile(sizes, [0, 50, 100])
            lines.append(
                f"molecules per task: min {_fmt(q[0])}, median {_fmt(q[1])}, max {_fmt(q[2])}; "
                f"positive fraction: min {frac.min():.2f}, median {np.median(frac):.2f}, "
                f"max {frac.max():.2f}"
            )
            by_split = counts.groupby("split").size().to_dict()
            lines.append("tasks per split: " + ", ".join(f"{k} {v}" for k, v in by_split.items()))
        if len(one_class):
            lines.append(
                f"tasks with one class only (pre-training and label priors only; no episode): "
                f"{len(one_class)}: {_names([str(t) for t in one_class.index[:5]])}"
            )
        dup = ds.duplicates()
        dup = dup[dup.index.isin(tasks)]
        if len(dup):
            lines.append(
                f"repeated molecules within an assay: {_fmt(dup['extra_rows'].sum())} extra rows "
                f"in {len(dup)} tasks, {_fmt(dup['conflicting'].sum())} with conflicting labels "
                "(kept as separate measurements; see task_set(duplicates=...))"
            )
        lines.extend(_skips(invalid, ds.skipped[ds.skipped["file"].isin(files)]
                            if unit != "all" else ds.skipped))
    split_sizes = {k: len(v) for k, v in ds.split.items()}
    lines.append("")
    lines.append("default split: " + ", ".join(f"{k} {v} tasks" for k, v in split_sizes.items()))
    if len(ds.split.get("test", [])) <= 10:
        lines.append("test tasks: " + _names(ds.split.get("test", [])))
    valid = ds.split.get("valid", [])
    if len(valid) <= 10:
        lines.append("validation tasks (held out of training): "
                     + (_names(valid) if valid else f"none: {ds.unvalidated_reason}"))
    return "\n".join(lines)


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


def _examples(group: SkipGroup, named: str | None = None) -> str:
    """``e.g. f.csv row 3: xyz; row 7: abc ...``: the file named once when the examples
    share it, and not at all when it is ``named`` (the line says it already)."""
    files = {f for f, _, _ in group.examples}
    shared = files.pop() if len(files) == 1 else None
    rows = "; ".join(f"{'' if shared else f + ' '}row {r}: {what}"
                     for f, r, what in group.examples)
    prefix = f"{shared} " if shared and shared != named else ""
    return f"e.g. {prefix}{rows}" + (" ..." if group.count > len(group.examples) else "")


def _skips(invalid: pd.DataFrame, skipped: pd.DataFrame) -> list[str]:
    lines = []
    headings = {"rdkit": f"rows skipped, RDKit {rdkit_version()} rejected the SMILES:",
                "read": "measurements skipped while reading:"}
    for group in skip_groups(invalid, skipped):
        if headings.get(group.stage):
            lines.append(headings.pop(group.stage))
        lines.append(f"  {_fmt(group.count):>6}  {group.kind}  ({_examples(group)})")
    return lines


def skip_warnings(ds: MoleculeDataset) -> list[str]:
    """One self-contained line per kind of skip (the groups ``data inspect`` lists), for
    training to warn with: the rows a data set lost are never lost silently."""
    where = ds.source_label
    lines = []
    for group in skip_groups(ds.invalid, ds.skipped):
        n = group.count
        what = (f"row{'s' * (n != 1)} skipped, RDKit rejected the SMILES"
                if group.stage == "rdkit" else f"measurement{'s' * (n != 1)} skipped")
        lines.append(f"{where}: {_fmt(n)} {what} ({group.kind}): "
                     f"{_examples(group, named=where)}")
    return lines


def inspect_dataset(card: Card, data_dir=None, cache_dir=None, progress: bool = True) -> str:
    ds = load_molecule_dataset(card, data_dir=data_dir, cache_dir=cache_dir, progress=progress)
    return describe(ds)
