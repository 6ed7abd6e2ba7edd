"""Peak resident memory of featurizing and meta-training on the FS-Mol train fold.

Featurizes the train fold from scratch into a fresh cache (worker processes), loads it, then
meta-trains ``protonet`` for a few steps on its tasks. Prints the peak resident set size of
this process and of the featurization workers (``getrusage``), and the wall time of each
stage.

    FEWSHOT_DATA_DIR=../shared/data python benchmarks/memory_fsmol.py --out benchmarks/results/perf/memory_fsmol.txt
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from fewshot_apps.bench.runner import machine
from fewshot_apps.core.fit import train_learner
from fewshot_apps.domains.molecules.dataset import load_molecule_dataset


def peak_gib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 2**20  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out")
    args = parser.parse_args()
    lines = [f"machine: {machine()}"]
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as run:
        t0 = time.perf_counter()
        ds = load_molecule_dataset("fsmol", folds=("train", "valid"), cache_dir=cache,
                                   progress=False)
        lines.append(f"featurize train+valid folds from scratch: {time.perf_counter() - t0:.0f} s, "
                     f"{len(ds.store):,} molecules, {len(ds.measurements):,} measurements; "
                     f"peak RSS main {peak_gib(resource.RUSAGE_SELF):.2f} GiB, "
                     f"largest worker {peak_gib(resource.RUSAGE_CHILDREN):.2f} GiB")
        del ds
        t0 = time.perf_counter()
        ds = load_molecule_dataset("fsmol", folds=("train", "valid"), cache_dir=cache,
                                   progress=False)
        lines.append(f"load from cache: {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        train_learner(ds, "protonet", Path(run) / "protonet",
                               {"steps": args.steps, "eval_every": args.steps, "shots": 8,
                                "valid_draws": 1, "device": "cpu"}, progress=False)
        lines.append(f"meta-train protonet {args.steps} steps (+1 validation): "
                     f"{time.perf_counter() - t0:.0f} s; peak RSS main "
                     f"{peak_gib(resource.RUSAGE_SELF):.2f} GiB")
    print("\n".join(lines))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
