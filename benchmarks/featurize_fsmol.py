"""Featurization throughput on the FS-Mol test fold.

Featurizes the fold from scratch (worker processes, one per core), then loads it from the
cache, and runs PyG's ``from_smiles`` in one process on the same unique SMILES. Prints
molecules per second for each, with the machine.

    FEWSHOT_DATA_DIR=../shared/data python benchmarks/featurize_fsmol.py
"""

from __future__ import annotations

import os
import platform
import tempfile
import time

import numpy as np
import rdkit
import torch
import torch_geometric
from torch_geometric.utils import from_smiles

from fewshot_apps.domains.molecules.dataset import load_molecule_dataset


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        ds = load_molecule_dataset("fsmol", folds=("test",), cache_dir=cache, progress=False)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = load_molecule_dataset("fsmol", folds=("test",), cache_dir=cache, progress=False)
        cached = time.perf_counter() - t0
        assert again.timings["test"]["source"] == "cache"
    unique = np.unique(ds.measurements["smiles"].astype(str)).tolist()
    t0 = time.perf_counter()
    for smi in unique:
        from_smiles(smi)
    pyg = time.perf_counter() - t0

    n = len(unique)
    print(f"machine: {cpu_model()}, {cores} cores; torch {torch.__version__}, "
          f"torch-geometric {torch_geometric.__version__}, RDKit {rdkit.__version__}")
    print(f"FS-Mol test fold: {ds.n_rows_read:,} rows, {n:,} unique SMILES, "
          f"{len(ds.store):,} valid molecules")
    print(f"{'step':<48} {'seconds':>8} {'mol/s':>10}")
    rows = [
        (f"fewshot-apps featurize from scratch ({cores} workers)", first),
        ("fewshot-apps load from cache (graphs+ECFP+labels)", cached),
        ("PyG from_smiles, 1 process (graphs only)", pyg),
    ]
    for name, seconds in rows:
        print(f"{name:<48} {seconds:>8.2f} {n / seconds:>10,.0f}")
    print(f"featurize vs from_smiles: {pyg / first:.2f}x; cached load vs first: "
          f"{first / cached:.1f}x")


if __name__ == "__main__":
    main()
