"""Performance table: where the time goes, measured on this machine.

Prints (and writes as Markdown with ``--out``) the machine, then:

* meta-training episodes per second per learner (Tox21, 10-shot episodes, default GINE+ECFP
  encoder, meta-batch of 8 episodes);
* FS-Mol full evaluation wall time per learner (157 test tasks x 10 draws x supports of
  16/32/64/128, query = all other molecules) for a model as it comes out of training (timing
  does not depend on the weights), molecules encoded once per model;
* featurization molecules per second (FS-Mol test fold, worker processes, one per core);
* in-process latency of ``predict_assay`` on 1,000 query molecules (featurization included)
  and of ``recommend`` per user over all ml-latest-small items, after the model is loaded;
  interpreter + import start-up reported separately.

The inner-loop engine (loop vs vmap) has its own script, ``benchmarks/perf_inner_loop.py``.

    FEWSHOT_DATA_DIR=../shared/data python benchmarks/perf.py --out benchmarks/results/perf/cpu.md
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import fewshot_apps as fa
from fewshot_apps.bench.runner import machine
from fewshot_apps.core.evaluation import encoded_once, fsmol_protocol
from fewshot_apps.core.learners import EpisodeBatch, build_learner
from fewshot_apps.core.registry import meta_learners
from fewshot_apps.core.tasks import BalancedSampler, sample_episodes
from fewshot_apps.domains.molecules.dataset import load_molecule_dataset
from fewshot_apps.domains.molecules.encoder import MoleculeEncoder
from fewshot_apps.domains.molecules.featurizer import featurize_parallel

LEARNERS = meta_learners("classification")  # every meta-learner, in the catalogue's order
# FS-Mol evaluation takes minutes per learner: one or two of each family.
EVAL_LEARNERS = [n for n in LEARNERS if n not in ("attention", "hypernet", "maml")]


def episodes_per_second(tox21, name: str, steps: int) -> float:
    torch.manual_seed(0)
    learner = build_learner(name, MoleculeEncoder(tox21.store), "classification")
    optimizer = torch.optim.AdamW(learner.parameters(), lr=1e-3)
    tasks = tox21.task_set().train
    batches = [list(sample_episodes(tasks, BalancedSampler(10, 16), 8, seed=s))
               for s in range(steps + 1)]

    def step(episodes):
        optimizer.zero_grad()
        learner.loss(EpisodeBatch.from_episodes(episodes)).backward()
        optimizer.step()

    step(batches[0])  # warm-up
    t0 = time.perf_counter()
    for episodes in batches[1:]:
        step(episodes)
    return steps * 8 / (time.perf_counter() - t0)


def fsmol_eval_seconds(fsmol, name: str, max_tasks: int | None) -> tuple[float, int]:
    torch.manual_seed(0)
    learner = build_learner(name, MoleculeEncoder(fsmol.store), "classification")
    tasks = fsmol.task_set().test[:max_tasks]
    t0 = time.perf_counter()
    with encoded_once(learner, tasks):
        results, _ = fsmol_protocol(learner, tasks, sizes=(16, 32, 64, 128), draws=10)
    return time.perf_counter() - t0, len(tasks)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20, help="timed meta-training steps")
    parser.add_argument("--eval-tasks", type=int, default=None,
                        help="FS-Mol test tasks to evaluate (default: all 157)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", help="write the table as Markdown here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    lines = [f"machine: {machine()}; torch {torch.__version__}", ""]

    def emit(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    emit("| measurement | learner | value |")
    emit("|---|---|---|")
    tox21 = load_molecule_dataset("tox21", progress=False)
    for name in LEARNERS:
        emit(f"| meta-training episodes / s (Tox21, 10-shot, meta-batch 8) | {name} | "
             f"{episodes_per_second(tox21, name, args.steps):.1f} |")

    fsmol = load_molecule_dataset("fsmol", folds=("test",), progress=False)
    for name in EVAL_LEARNERS:
        seconds, n_tasks = fsmol_eval_seconds(fsmol, name, args.eval_tasks)
        emit(f"| FS-Mol evaluation, {n_tasks} tasks x 10 draws x 4 sizes (s) | {name} | "
             f"{seconds:.1f} |")

    smiles = np.unique(fsmol.measurements["smiles"].astype(str)).tolist()
    t0 = time.perf_counter()
    featurize_parallel(smiles, progress=False)
    emit(f"| featurization, FS-Mol test fold, worker processes (molecules / s) | - | "
         f"{len(smiles) / (time.perf_counter() - t0):,.0f} |")

    support = pd.read_csv(Path(__file__).resolve().parent.parent / "examples" / "assay_support.csv")
    query = tox21.store.smiles[:1000]
    fa.predict_assay(None, support, query[:10])  # warm-up (imports, scikit-learn)
    t0 = time.perf_counter()
    fa.predict_assay(None, support, query)
    emit(f"| predict_assay, 1,000 query molecules, rf, featurization included (s) | rf | "
         f"{time.perf_counter() - t0:.2f} |")
    model = build_learner("protonet", MoleculeEncoder(), "classification")
    fa.predict_assay(model, support, query[:10])
    t0 = time.perf_counter()
    fa.predict_assay(model, support, query)
    emit(f"| predict_assay, 1,000 query molecules, meta-learner (s) | protonet | "
         f"{time.perf_counter() - t0:.2f} |")

    ratings = pd.DataFrame({"movieId": [260, 1196, 2571, 1, 50], "rating": [5, 5, 4.5, 3, 4]})
    ml = fa.load_dataset("movielens-latest-small")
    torch.manual_seed(0)
    from fewshot_apps.domains.recsys.encoder import ItemGraphEncoder

    rec_models = {"default": None,
                  "cnp": build_learner("cnp", ItemGraphEncoder(ml.graph), "regression")}
    for label, model in rec_models.items():
        fa.recommend(model, ratings, k=10, dataset=ml)  # first call: item embeddings cached
        t0 = time.perf_counter()
        for _ in range(20):
            fa.recommend(model, ratings, k=10, dataset=ml)
        emit(f"| recommend, one user over all ml-latest-small items (ms) | {label} | "
             f"{(time.perf_counter() - t0) / 20 * 1000:.1f} |")

    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import fewshot_apps.api, fewshot_apps.domains."
                    "molecules.dataset, fewshot_apps.domains.recsys.dataset"], check=True)
    emit(f"| interpreter + import start-up (s) | - | {time.perf_counter() - t0:.2f} |")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
