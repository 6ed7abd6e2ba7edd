"""Score saved models and classic baselines on a data set's NON-TEST tasks (training and
validation), never its test tasks: how to decide whether models trained on another data set
(a suite's ``train_suite``) are worth it for this one, on more tasks than its validation split.

Each saved model must have been trained on another data set: one that was trained or
selected on any of the scored tasks is refused (their scores would be inflated). The k-shot
protocol (K actives + K inactives, query = every other labelled molecule) with the given
draws; the mean ROC-AUC over tasks, and per task, go to a Markdown log.

    FEWSHOT_DATA_DIR=../shared/data python benchmarks/score_non_test_tasks.py --dataset muv \\
        --model benchmarks/results/fsmol-fingerprint-full/models/dkt --baseline gp,rf \\
        --out benchmarks/results/muv-fsmol/selection/meta-train-on-fsmol.md

``--grid learner.KEY=V1,V2`` (repeatable: every combination) scores each saved model with its
adaptation's settings replaced at evaluation (``dkt``'s ``fit_steps``, a MAML learner's
``inner_steps``): the weights stay those trained.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from fewshot_apps.bench.runner import load_data, machine
from fewshot_apps.core.config import learner_grid
from fewshot_apps.core.domain import load_saved_model
from fewshot_apps.core.evaluation import classification_protocol
from fewshot_apps.core.persistence import check_unseen_tasks
from fewshot_apps.errors import FewshotError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--model", action="append", default=[], help="a saved model folder "
                        "trained on another data set (repeatable)")
    parser.add_argument("--baseline", default="", help="classic baselines, comma-separated")
    parser.add_argument("--shots", type=int, default=10)
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grid", action="append", default=[], metavar="learner.KEY=V1,V2",
                        help="score each --model with these learner settings at evaluation "
                        "(repeatable: every combination)")
    parser.add_argument("--out", type=Path, required=True, help="the Markdown log")
    args = parser.parse_args()
    try:
        grid = learner_grid(args.grid)
    except FewshotError as err:
        parser.error(str(err))

    ds = load_data(args.dataset)
    tasks = list(ds.taskset.train) + list(ds.taskset.valid)
    for path in args.model:  # refuses a model trained or selected on any scored task
        check_unseen_tasks(path, f"{args.dataset} (non-test tasks)", tasks)
    print(f"machine: {machine()}; torch threads {torch.get_num_threads()}; {args.dataset}: "
          f"{len(tasks)} non-test tasks, {args.shots}-shot, {args.draws} draws", flush=True)
    per_task, rows = {}, []
    runs = [(path, settings) for path in args.model for settings in grid]
    runs += [(name, None) for name in filter(None, args.baseline.split(","))]
    for name, settings in runs:
        start = time.perf_counter()
        model = (load_saved_model(name, dataset=ds, learner_settings=settings)
                 if settings is not None else ds.build_baseline(name, seed=args.seed))
        results, _ = classification_protocol("k-shot", model, tasks, shots=[args.shots],
                                             draws=args.draws, seeds=[args.seed])
        scores = results[results["metric"] == "roc_auc"].groupby("task")["value"].mean()
        # a saved model: its learner, where it comes from and the settings replaced at
        # evaluation
        label = name if settings is None else " ".join(
            [f"{model.name} ({_source(name)})",
             *(f"{key}={value}" for key, value in settings.items())])
        if label in per_task:  # two models of one learner from one place: tell them apart
            label = f"{label} `{name}`"
        per_task[label] = scores
        rows.append({"model": label, "mean_ROC-AUC": round(float(scores.mean()), 4),
                     "seconds": round(time.perf_counter() - start, 1)})
        print(rows[-1], flush=True)
    table = pd.DataFrame(per_task).round(3)
    lines = [f"# {args.dataset}: saved models and classic baselines on its non-test tasks",
             "", f"`{' '.join(['python', 'benchmarks/score_non_test_tasks.py'] + sys.argv[1:])}`",
             "", f"{len(tasks)} tasks (training and validation; never test), {args.shots}-shot, "
             f"{args.draws} draws, seed {args.seed}; {machine()}", "",
             "| model | mean ROC-AUC | seconds |", "|---|---|---|",
             *(f"| {r['model']} | {r['mean_ROC-AUC']:.4f} | {r['seconds']} |" for r in rows),
             "", "Per task (mean ROC-AUC over draws):", "",
             "| task | " + " | ".join(table.columns) + " |", "|---" * (len(table.columns) + 1) + "|",
             *(f"| {task} | " + " | ".join(f"{v:.3f}" for v in row) + " |"
               for task, row in table.iterrows())]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _source(path) -> str:
    """Where a saved model comes from: the run of ``results/<run>/models/<learner>``, else
    its own folder's name (an ensemble saved by ``fewshot-apps ensemble``, say)."""
    folder = Path(path).resolve()
    return folder.parent.parent.name if folder.parent.name == "models" else folder.name


if __name__ == "__main__":
    main()
