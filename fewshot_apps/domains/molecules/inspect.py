"""`fewshot-apps data inspect` for molecule data sets: counts per fold, tasks and skips."""

from __future__ import annotations

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
                f"tasks with one class only (usable for training, not for evaluation): "
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
    if len(ds.split.get("valid", [])) <= 10:
        lines.append("validation tasks (held out of training): "
                     + _names(ds.split.get("valid", [])))
    return "\n".join(lines)


def _skips(invalid: pd.DataFrame, skipped: pd.DataFrame) -> list[str]:
    lines = []
    if len(invalid):
        per_row = invalid.drop_duplicates(["file", "row"])
        kinds = per_row["reason"].map(_reason_kind).value_counts()
        lines.append(f"rows skipped, RDKit {rdkit_version()} rejected the SMILES:")
        for kind, n in kinds.items():
            example = per_row[per_row["reason"].map(_reason_kind) == kind].iloc[0]
            lines.append(
                f"  {_fmt(n):>6}  {kind}  (e.g. {example['file']} row {example['row']}: "
                f"{example['smiles'][:60]})"
            )
    if len(skipped):
        lines.append("measurements skipped while reading:")
        for reason, group in skipped.groupby(skipped["reason"].str.split(" in column").str[0]):
            first = group.iloc[0]
            lines.append(f"  {len(group):>6}  {reason}  (e.g. {first['file']} row {first['row']})")
    return lines


def inspect_dataset(card: Card, data_dir=None, cache_dir=None, progress: bool = True) -> str:
    ds = load_molecule_dataset(card, data_dir=data_dir, cache_dir=cache_dir, progress=progress)
    return describe(ds)
