"""The loading option ``unseen_by = "<data set>"``: leave out every molecule that data set's
training assays measured, so that a model trained there (a suite's ``train_suite``) is
scored on molecules it never saw labelled. Molecules match by canonical SMILES (both stores
hold them canonical); the count left out is kept on the data set (``unseen_by``) and said
once at loading."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class UnseenBy:
    """What ``unseen_by`` left out: ``other``'s training molecules among this data set's."""

    other: str
    molecules: int  # distinct molecules of this data set left out
    measurements: int  # their measurements, in every split

    def record(self) -> dict:
        return {"data_set": self.other, "molecules": self.molecules,
                "measurements": self.measurements}


def training_smiles(other) -> set[str]:
    """The canonical SMILES of every molecule ``other``'s training tasks measured."""
    smiles = np.asarray(other.store.smiles, dtype=object)
    return {s for task in other.taskset.train for s in smiles[task.examples]}


def drop_seen(ds, other) -> None:
    """Remove from ``ds.measurements`` every measurement of a molecule ``other``'s training
    assays measured (in place; ``ds.unseen_by`` says how many)."""
    seen = training_smiles(other)
    rows = ds.measurements
    smiles = np.asarray(ds.store.smiles, dtype=object)
    mol = rows["mol"].to_numpy()
    hit = np.zeros(len(rows), dtype=bool)
    valid = mol >= 0
    hit[valid] = [s in seen for s in smiles[mol[valid]]]
    ds.measurements = rows[~hit].reset_index(drop=True)
    ds.unseen_by = UnseenBy(other.name, int(len(np.unique(mol[hit]))), int(hit.sum()))
    print(f"note: {ds.name}: left out {ds.unseen_by.measurements:,} measurements of "
          f"{ds.unseen_by.molecules:,} molecules that {other.name}'s training assays measured "
          "(unseen_by)", flush=True)
