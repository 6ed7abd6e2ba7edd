"""Score saved models on a data set's VALIDATION tasks with a chosen kind of support: how to
compare models that were validated on different draws during training (a model trained on
balanced 8-shot episodes validates on those; one trained on supports of 64 with
``valid_support_size = 16`` on stratified supports of 16), on the same draws.

The draws are the training validator's own (``MoleculeTasks.validator``: ``--draws`` per
task, seeded by ``--seed``), so a model scored with the draws it was validated on during
training gets its logged best score back. ``--mean`` adds a row for the mean of the models'
probabilities on the same draws (an ensemble of the saved models, each as saved: with its
calibration). Test tasks are never read.

    FEWSHOT_DATA_DIR=../shared/data python benchmarks/score_validation.py --dataset fsmol \\
        --model benchmarks/results/fsmol-full-later/models/protonet --support-size 16 \\
        --shots 8 --out benchmarks/results/fsmol/selection/support-size.md
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from fewshot_apps.bench.runner import load_data, machine
from fewshot_apps.core.config import learner_grid
from fewshot_apps.core.domain import load_saved_model
from fewshot_apps.core.ensemble import Ensemble
from fewshot_apps.errors import FewshotError


def draw_kinds(args) -> list[tuple[str, dict]]:
    """``(label, episode settings)`` of each kind of validation draw asked for."""
    kinds = []
    if args.shots is not None:
        kinds.append((f"balanced {args.shots}-shot",
                      {"shots": args.shots, "valid_support_size": None}))
    if args.support_size is not None:
        kinds.append((f"stratified {args.support_size}",
                      {"shots": None, "valid_support_size": args.support_size}))
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--model", action="append", required=True, type=Path,
                        help="a saved model folder (repeatable)")
    parser.add_argument("--shots", type=int, help="balanced K-shot supports")
    parser.add_argument("--support-size", type=int, help="stratified supports of N")
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grid", action="append", default=[], metavar="learner.KEY=V1,V2",
                        help="score each --model with these learner settings at evaluation "
                        "(repeatable: every combination)")
    parser.add_argument("--mean", action="store_true",
                        help="also score the mean of the --model folders' probabilities")
    parser.add_argument("--out", type=Path, required=True, help="the Markdown log")
    args = parser.parse_args()
    kinds = draw_kinds(args)
    if not kinds:
        parser.error("give --shots, --support-size or both")
    if args.mean and (len(args.model) < 2 or args.grid):
        parser.error("--mean needs two or more --model folders and no --grid")
    try:
        grid = learner_grid(args.grid)
    except FewshotError as err:
        parser.error(str(err))

    ds = load_data(args.dataset)
    print(f"machine: {machine()}; torch threads {torch.get_num_threads()}; {args.dataset}: "
          f"{len(ds.taskset.valid)} validation tasks, {args.draws} draws", flush=True)
    header = "| model | " + " | ".join(label for label, _ in kinds) + " | seconds |"
    lines = [f"# Validation ROC-AUC, {args.dataset} (validation tasks only)", "",
             f"`python benchmarks/score_validation.py {_command_args(args)}`", "",
             f"Machine: {machine()}; {args.draws} draws per task, seed {args.seed}.", "",
             header, "|" + "---|" * (len(kinds) + 2)]
    def add_row(label: str, score) -> None:
        """Score each kind of draw with ``score(episode settings)``; print and log the row."""
        start = time.perf_counter()
        scores = [score({"valid_draws": args.draws, **episode}) for _, episode in kinds]
        seconds = time.perf_counter() - start
        print(label, " ".join(f"{s:.4f}" for s in scores), f"{seconds:.0f} s", flush=True)
        lines.append(f"| {label} | " + " | ".join(f"{s:.4f}" for s in scores)
                     + f" | {seconds:.0f} |")

    members = []  # with --mean (no --grid): each --model once, loaded once
    for path in args.model:
        for settings in grid:
            model = load_saved_model(path, dataset=ds, learner_settings=settings)
            members += [model] if args.mean else []
            add_row(" ".join([f"`{path}`", *(f"{k}={v}" for k, v in settings.items())]),
                    lambda episode, model=model: ds.validator(episode, args.seed)(model))
    if args.mean:  # the models above as one saved ensemble would average them
        ensemble = Ensemble(members)
        add_row("mean probability of the models above",
                lambda episode: ds.validator(episode, args.seed)(ensemble))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


def _command_args(args) -> str:
    parts = [f"--dataset {args.dataset}", *(f"--model {m}" for m in args.model)]
    if args.shots is not None:
        parts.append(f"--shots {args.shots}")
    if args.support_size is not None:
        parts.append(f"--support-size {args.support_size}")
    parts += [f"--grid {item}" for item in args.grid]
    parts += ["--mean"] if args.mean else []
    parts += [f"--draws {args.draws}", f"--seed {args.seed}", f"--out {args.out}"]
    return " ".join(parts)


if __name__ == "__main__":
    main()
