"""One unit's molecule pool: each unique SMILES featurized once (worker processes), spellings
of one molecule pooled by canonical SMILES; rows RDKit rejects (or that hold whitespace) are
reported with file, row and reason, and rows the featurizer flags are listed."""

from __future__ import annotations

import numpy as np

from .cache import Unit
from .featurizer import FeaturizerConfig, featurize_parallel, whitespace_truncation
from .readers import Measurements
from .store import MoleculeStore


def featurize_unit(m: Measurements, config: FeaturizerConfig, workers: int | None,
                   progress: bool, desc: str) -> Unit:
    """Featurize each unique SMILES once; pool molecules by canonical SMILES."""
    table = m.table.reset_index(drop=True)
    raw_unique, raw_index = np.unique(table["smiles"].astype(str).to_numpy(), return_inverse=True)
    feats = featurize_parallel(list(raw_unique), config, workers=workers, progress=progress,
                               desc=desc)
    # RDKit stops reading at whitespace ("CC O" parses as ethane): such a row's label belongs
    # to a molecule nobody wrote, so it is rejected (counted and reported), not trained on.
    for i, smi in enumerate(raw_unique):
        head = whitespace_truncation(smi)
        if head is not None and feats["canonical"][i] is not None:
            feats["canonical"][i] = None
            feats["errors"][i] = f"SMILES contains whitespace (RDKit would read only {head!r})"
    ok = np.array([c is not None for c in feats["canonical"]], dtype=bool)  # bool when empty too
    canonical = np.array([c if c is not None else "" for c in feats["canonical"]], dtype=object)
    # Different spellings of one molecule share one pool entry.
    canon_unique, first_raw, canon_inverse = np.unique(
        canonical[ok].astype(str), return_index=True, return_inverse=True
    )
    ok_positions = np.flatnonzero(ok)
    store = MoleculeStore.from_featurized(feats, ok_positions[first_raw])
    raw_to_mol = np.full(len(raw_unique), -1, dtype=np.int64)
    raw_to_mol[ok_positions] = canon_inverse
    table["mol"] = raw_to_mol[raw_index]
    errors = np.array(feats["errors"], dtype=object)
    bad = table["mol"].to_numpy() < 0
    invalid = table.loc[bad, ["file", "row", "task", "smiles"]].assign(
        reason=errors[raw_index[bad]]
    )
    flags = np.array(feats["flags"], dtype=object)[raw_index]
    flagged_rows = np.array([f is not None for f in flags], dtype=bool)  # bool when empty too
    flagged = table.loc[flagged_rows, ["file", "row", "task", "smiles"]].assign(
        flag=flags[flagged_rows]
    )
    return Unit(store, table, invalid.reset_index(drop=True), m.skipped, m.rows_read,
                 m.task_order, flagged.reset_index(drop=True))
