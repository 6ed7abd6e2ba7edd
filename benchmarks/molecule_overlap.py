"""How many of one data set's test molecules another data set's training assays measured, and
with what labels: what a model trained on the other data set (a suite's ``train_suite``)
could have seen of the test molecules. Molecules match by RDKit canonical SMILES (each store
holds them canonical).

    FEWSHOT_DATA_DIR=../shared/data python benchmarks/molecule_overlap.py --test muv \\
        --train fsmol --out benchmarks/results/muv-fsmol/molecule-overlap.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from fewshot_apps.bench.runner import load_data
from fewshot_apps.domains.molecules.unseen import training_smiles


def labelled(ds, split: str) -> pd.DataFrame:
    """``smiles, task, label``: every measurement of the ``split`` tasks."""
    rows = [pd.DataFrame({"smiles": np.asarray(ds.store.smiles, dtype=object)[task.examples],
                          "task": task.name, "label": task.labels})
            for task in getattr(ds.taskset, split)]
    return pd.concat(rows, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--test", required=True, help="the data set whose test tasks are scored")
    parser.add_argument("--train", required=True, help="the data set trained on")
    parser.add_argument("--out", type=Path, required=True, help="the Markdown log")
    args = parser.parse_args()

    trained = load_data(args.train)
    test, train = labelled(load_data(args.test), "test"), labelled(trained, "train")
    seen = training_smiles(trained)  # what the unseen_by option leaves out
    test["seen"] = test["smiles"].isin(seen)
    test["active_seen"] = test["seen"] & (test["label"] == 1)
    per_task = test.groupby("task").agg(
        molecules=("smiles", "size"), actives=("label", "sum"), seen=("seen", "sum"),
        actives_seen=("active_seen", "sum"))
    measured = train[train["smiles"].isin(set(test["smiles"]))]
    lines = [f"# Test molecules of {args.test} measured in {args.train}'s training assays", "",
             f"`{' '.join(['python', 'benchmarks/molecule_overlap.py'] + sys.argv[1:])}`", "",
             f"{args.train}: {len(train):,} training measurements of {len(seen):,} molecules in "
             f"{train['task'].nunique():,} assays. {args.test}: {len(test):,} test measurements "
             f"of {test['smiles'].nunique():,} molecules; {int(test['seen'].sum()):,} of them "
             f"({test['seen'].mean():.2%}) are of molecules {args.train}'s training assays "
             f"measured, {len(measured):,} measurements there, "
             f"{int(measured['label'].sum()):,} of them active.", "",
             "| test task | molecules | actives | measured in training | actives measured in "
             "training |", "|---|---|---|---|---|",
             *(f"| {task} | {r.molecules:,} | {int(r.actives)} | {int(r.seen):,} | "
               f"{int(r.actives_seen)} |" for task, r in per_task.iterrows())]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
