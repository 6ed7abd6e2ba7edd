"""Tox21 10-shot (PAR / Meta-MGNN protocol) for meta-learners trained here.

Meta-trains each learner on Tox21's training tasks (SR-ATAD5 held out for model selection),
then scores the 3 test tasks: 10 draws x 3 seeds of 10 positives + 10 negatives, query = every
other labelled molecule, ROC-AUC per task. Writes per-draw results and a summary.

    FEWSHOT_DATA_DIR=../shared/data python benchmarks/tox21_10shot.py \
        --learners protonet,cnp,maml --steps 1500 --out benchmarks/results/tox21_10shot
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from fewshot_apps.core.evaluation import encoded_once, k_shot_protocol, mean_over_tasks
from fewshot_apps.core.fit import train_learner
from fewshot_apps.domains.molecules.dataset import load_molecule_dataset


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--learners", default="protonet,cnp,maml")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], help="key=value settings")
    parser.add_argument("--out", default="benchmarks/results/tox21_10shot")
    parser.add_argument("--runs", default="runs/tox21_10shot")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ds = load_molecule_dataset("tox21", progress=False)
    test = ds.task_set().test
    settings = {"steps": args.steps, "eval_every": max(args.steps // 10, 1),
                "checkpoint_every": max(args.steps // 4, 1), "device": "cpu"}
    settings.update(dict(s.split("=", 1) for s in args.set))
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {args.threads} threads"
    summary_path = out / "summary.json"
    # Rows of learners not rerun now are kept; a rerun learner's row is replaced.
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else []
    for name in args.learners.split(","):
        t0 = time.perf_counter()
        learner, result = train_learner(ds, name, Path(args.runs) / name, settings,
                                                 progress=False)
        train_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        with encoded_once(learner, test):
            results, skipped = k_shot_protocol(learner, test, shots=(10,), draws=10, seeds=(0, 1, 2))
        eval_s = time.perf_counter() - t0
        results.assign(learner=name).to_csv(out / f"{name}_results.csv", index=False)
        auc = results[results.metric == "roc_auc"].groupby("task")["value"].mean().round(4).to_dict()
        row = {"learner": name, "mean_test_roc_auc": round(mean_over_tasks(results, "roc_auc"), 4),
               "per_task": auc, "best_valid_roc_auc": result.best_valid,
               "best_step": result.best_step, "steps": result.steps_run,
               "train_seconds": round(train_s, 1), "eval_seconds": round(eval_s, 1),
               "skipped_draws": len(skipped), "settings": settings, "machine": machine}
        print(json.dumps(row), flush=True)
        summary = [r for r in summary if r["learner"] != name] + [row]
        summary_path.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
