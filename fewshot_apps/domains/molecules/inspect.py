"""`fewshot-apps data inspect` for molecule data sets: counts per fold, tasks and skips."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fewshot_apps.sources import Card

from .dataset import MoleculeDataset, load_molecule_dataset, rdkit_version
from .skips import examples_text, fmt_count, skip_groups

MAX_TASK_ROWS = 30  # beyond this many tasks in a fold, summarize instead of listing


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
            f"rows read: {fmt_count(rows)}   measurements: {fmt_count(len(um))}   tasks: {len(tasks)}"
        )
        mol_rows = um.drop_duplicates(["file", "row"])
        lines.append(
            f"valid molecules: {fmt_count(valid['mol'].nunique())} unique "
            f"({fmt_count(len(mol_rows) - invalid.drop_duplicates(['file', 'row']).shape[0])} rows); "
            f"rejected by RDKit: {fmt_count(invalid.drop_duplicates(['file', 'row']).shape[0])} rows "
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
                    f"{task:<24} {row['split']:<6} {fmt_count(row['positives']):>10} "
                    f"{fmt_count(row['negatives']):>10}"
                )
        else:
            sizes = counts["n"].to_numpy()
            frac = (counts["positives"] / counts["n"].clip(lower=1)).to_numpy()
            q = np.percentile(sizes, [0, 50, 100])
            lines.append(
                f"molecules per task: min {fmt_count(q[0])}, median {fmt_count(q[1])}, max {fmt_count(q[2])}; "
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
                f"repeated molecules within an assay: {fmt_count(dup['extra_rows'].sum())} extra rows "
                f"in {len(dup)} tasks, {fmt_count(dup['conflicting'].sum())} with conflicting labels "
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


def _skips(invalid: pd.DataFrame, skipped: pd.DataFrame) -> list[str]:
    lines = []
    headings = {"rdkit": f"rows skipped, RDKit {rdkit_version()} rejected the SMILES:",
                "read": "measurements skipped while reading:"}
    for group in skip_groups(invalid, skipped):
        if headings.get(group.stage):
            lines.append(headings.pop(group.stage))
        lines.append(f"  {fmt_count(group.count):>6}  {group.kind}  ({examples_text(group)})")
    return lines


def inspect_dataset(card: Card, data_dir=None, cache_dir=None, progress: bool = True) -> str:
    ds = load_molecule_dataset(card, data_dir=data_dir, cache_dir=cache_dir, progress=progress)
    return describe(ds)
