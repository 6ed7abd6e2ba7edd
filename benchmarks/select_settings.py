"""Model selection for a suite's learner on VALIDATION tasks only (never test tasks).

Trains the learner once per combination of a small grid (``--grid lr=3e-4,1e-3 --grid
encoder.kind=fingerprint,gnn``) with the suite's training episodes and preset settings (its
``[learner_settings]`` left out, since they are what is being chosen), for ``--steps`` steps,
and records the data set's validation score (the one training selects checkpoints on: mean
ROC-AUC over the validation tasks for molecules) at the best step, with the time it took.
Where the trained model chose how to mix its ranking score on validation users
(recommendation), the best validation all-item nDCG@10 of that choice is recorded too
(``valid_ranking_ndcg@10``); ``--order-by`` picks the column the summary ranks by.

The log goes to ``benchmarks/results/<suite>/selection/<learner>.csv`` (one row per
combination; a rerun skips the rows already there, so a stopped search resumes) and a
Markdown summary beside it. Copy the chosen row into the suite's
``[learner_settings.<learner>]``.

    FEWSHOT_DATA_DIR=../shared/data python benchmarks/select_settings.py --suite fsmol-fingerprint \
        --learner protonet --steps 1000 --grid lr=3e-4,1e-3 --grid encoder.descriptors=false,true
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from fewshot_apps.bench.runner import load_data, machine
from fewshot_apps.bench.suites import chooses_episodes, load_suites
from fewshot_apps.core.config import settings_grid
from fewshot_apps.core.fit import train_learner
from fewshot_apps.errors import FewshotError

RESULTS = Path(__file__).resolve().parent / "results"


def markdown_table(frame: pd.DataFrame) -> list[str]:
    def cell(value) -> str:
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    return ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns),
            *("| " + " | ".join(cell(v) for v in row) + " |"
              for row in frame.itertuples(index=False))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suite", required=True)
    parser.add_argument("--learner", required=True)
    parser.add_argument("--preset", default="full")
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--grid", action="append", default=[], help="key=v1,v2 (repeatable)")
    parser.add_argument("--set", action="append", default=[], help="key=value for every run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, help="default: results/<suite>/selection")
    parser.add_argument("--eval-every", type=int, help="validation every N steps (default: "
                        "steps / 10); the preset's own value makes a run the suite would train")
    parser.add_argument("--keep", type=Path, help="keep each combination's run directory "
                        "(model, config, train log) under this folder, named by its settings: "
                        "a kept run with the suite's settings can be copied to a results "
                        "folder's models/<learner> and is then reused, not trained again")
    parser.add_argument("--order-by", help="the log column to rank by (default: the "
                        "validation score training selects checkpoints on)")
    args = parser.parse_args()

    (suite,) = load_suites(args.suite, args.preset)
    out = args.out or RESULTS / suite.name / "selection"
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / f"{args.learner}.csv"
    done = pd.read_csv(log_path) if log_path.exists() else pd.DataFrame()
    try:
        grid = settings_grid(args.grid)
    except FewshotError as err:
        parser.error(str(err))
    fixed = dict(item.split("=", 1) for item in args.set)
    dataset = load_data(suite.dataset, seed=args.seed, dataset_options=suite.dataset_options)
    print(f"machine: {machine()}; torch threads {torch.get_num_threads()}; "
          f"{suite.name} / {args.learner}: {args.steps} steps per combination, "
          f"validation tasks: {len(dataset.taskset.valid)}", flush=True)
    for chosen in grid:
        combo = {**fixed, **chosen}
        label = ";".join(f"{k}={v}" for k, v in sorted(combo.items()))
        if len(done) and label in set(done["settings"]):
            print(f"{label}: already in {log_path}", flush=True)
            continue
        # The grid may choose the training episodes too (``support_size=16,64``): they then
        # replace the suite's (a K-shot suite's shots would otherwise win).
        episode = {} if chooses_episodes(combo) else suite.train_episode()
        settings = {**suite.preset.settings, **episode, **combo,
                    "steps": args.steps,
                    "eval_every": args.eval_every or max(1, args.steps // 10),
                    "seed": args.seed, "device": args.device}
        # init=pretrained starts from the pre-training the suite's runs use (the preset's
        # pretrain_steps, as the bench runner sets it), not the library default.
        settings.setdefault("init_pretrain_steps", suite.preset.pretrain_steps)
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            run_dir = args.keep / label.replace("/", "_") if args.keep else Path(tmp)
            _, result = train_learner(dataset, args.learner, run_dir, settings, progress=False)
            ranking = json.loads((run_dir / "config.json").read_text()).get("ranking")
        row = {"settings": label, "steps": args.steps,
               "valid_" + dataset.validation_metric: result.best_valid,
               **({"valid_ranking_ndcg@10": max(ranking["ndcg@10"]),
                   "rank_rating_weight": ranking["rank_rating_weight"]} if ranking else {}),
               "best_step": result.best_step, "seconds": round(time.perf_counter() - start, 1),
               "seed": args.seed, "machine": machine()}
        print(row, flush=True)
        done = pd.concat([done, pd.DataFrame([row])], ignore_index=True)
        done.to_csv(log_path, index=False)
    metric = args.order_by or "valid_" + dataset.validation_metric
    if metric not in done.columns:
        sys.exit(f"--order-by {metric!r}: no such column in {log_path} "
                 f"({', '.join(done.columns)})")
    ranked = done.sort_values(metric, ascending=False)
    lines = [f"# Selection: {suite.name} / {args.learner} (validation tasks only)", "",
             f"`{' '.join(['python', 'benchmarks/select_settings.py'] + sys.argv[1:])}`", "",
             *markdown_table(ranked), "",
             f"Chosen: `{ranked.iloc[0]['settings']}`"]
    (out / f"{args.learner}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
