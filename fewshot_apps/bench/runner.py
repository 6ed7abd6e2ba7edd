"""Run a benchmark suite: train every learner on training tasks, score the test tasks.

Writes to the output folder ``results.csv`` (one row per measurement), ``summary.csv``,
``report.md``, ``report.html``, plots, ``run.json`` and ``models/<learner>/``. Rows are
appended learner by learner, and a rerun with the same output folder continues after the
learners already written, so long suites survive interruption.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fewshot_apps import __version__
from fewshot_apps.bench.locking import OutputLocks
from fewshot_apps.bench.suites import FAMILIES, Suite, file_slug, load_suites
from fewshot_apps.core.evaluation import encoded_once, fsmol_protocol, k_shot_protocol
from fewshot_apps.core.persistence import save_model
from fewshot_apps.core.tasks import Task, derive_seed
from fewshot_apps.core.training import CHECKPOINT_FILE, LOG_FILE, resolve_device
from fewshot_apps.errors import FewshotError
from fewshot_apps.paths import data_dir as default_data_dir
from fewshot_apps.plain_csv import load_card_or_csv

RESULT_COLUMNS = ["suite", "dataset", "task", "learner", "family", "shots", "support_size",
                  "item_split", "draw", "seed", "metric", "value"]
SUMMARY_COLUMNS = ["suite", "dataset", "learner", "family", "shots", "support_size",
                   "item_split", "metric", "mean", "std", "ci95_low", "ci95_high", "n_tasks",
                   "n_draws", "train_seconds", "eval_seconds"]
META_LEARNERS = {name for name, family in FAMILIES.items()
                 if family in ("metric", "generator", "optimizer")}
NOT_FOR_RATINGS = ("protonet", "rf", "knn", "logreg")  # classification only


# --------------------------------------------------------------------------- data


def load_data(name: str, data_dir=None, seed: int = 0):
    """A suite's data set: a card name, a card.toml or a plain CSV (fewshot_apps.plain_csv)."""
    card = load_card_or_csv(name, data_dir)
    card.require_present()
    if card.domain == "molecules":
        from fewshot_apps.domains.molecules.dataset import load_molecule_dataset

        return card.domain, load_molecule_dataset(card, progress=False)
    from fewshot_apps.domains.recsys.dataset import load_recsys_dataset

    return card.domain, load_recsys_dataset(card, data_dir=data_dir, seed=seed)


def limit_task(task: Task, limit: int | None, seed: int) -> Task:
    """A smaller copy of a task (stratified, seeded) for smoke runs."""
    if limit is None or len(task) <= limit:
        return task
    rng = np.random.default_rng(derive_seed(seed, "limit", task.name))
    pos = np.flatnonzero(task.labels == 1)
    neg = np.flatnonzero(task.labels != 1)
    # Enough positives for a 10-shot support plus a query that has both classes.
    n_pos = min(len(pos), max(round(limit * len(pos) / len(task)), 25))
    n_neg = min(len(neg), max(limit - n_pos, 25))
    keep = np.sort(np.concatenate([rng.choice(pos, n_pos, replace=False),
                                   rng.choice(neg, n_neg, replace=False)]))
    return task.subset(keep)


# --------------------------------------------------------------------------- building models


def _has_checkpoint(model_dir: Path) -> bool:
    """An interrupted suite continues a learner's training from its last checkpoint."""
    return (model_dir / CHECKPOINT_FILE).exists()


def _logged_train_seconds(model_dir: Path) -> float:
    """Training time of a resumed learner: the sum of its logged step times (the log is
    cut back to the checkpoint on resume, so every step counts once)."""
    with open(model_dir / LOG_FILE, encoding="utf-8") as log:
        return sum(json.loads(line).get("seconds", 0.0) for line in log if line.strip())


def _common_settings(suite: Suite, seed: int, device: str) -> dict:
    return {**suite.preset.settings, "steps": suite.preset.steps, "seed": seed, "device": device}


def build_molecule_model(suite: Suite, name: str, ds, model_dir: Path, seed: int, device: str,
                         progress: bool):
    from fewshot_apps.domains.molecules.baselines import build_classic_baseline
    from fewshot_apps.domains.molecules.training import (
        _encoder_settings,
        split_settings,
        train_molecule_learner,
    )

    settings = _common_settings(suite, seed, device)
    if suite.protocol == "fsmol":
        settings["k_shot"] = suite.train_shots
    if name in META_LEARNERS:
        model, _ = train_molecule_learner(ds, name, model_dir, settings,
                                          resume=_has_checkpoint(model_dir), progress=progress)
        return model
    if FAMILIES[name] == "transfer":
        from fewshot_apps.core.baselines import build_transfer_baseline
        from fewshot_apps.domains.molecules.encoder import MoleculeEncoder

        _, _, encoder, _ = split_settings(settings)
        torch.manual_seed(seed)
        enc = MoleculeEncoder(ds.store, **_encoder_settings(encoder))
        model = build_transfer_baseline(name, enc, "classification", seed=seed,
                                        device=device)
        ts = ds.task_set()
        model.pretrain(ts.train, ts.valid, steps=suite.preset.pretrain_steps, progress=progress)
        save_model(model, model_dir, {**ds.saved_model_config(), "encoder": enc.config(),
                                      "pretrain_steps": suite.preset.pretrain_steps})
        return model
    return build_classic_baseline(name, ds.store, seed=seed)


def build_recsys_model(suite: Suite, name: str, ds, model_dir: Path, seed: int, device: str,
                       progress: bool):
    from fewshot_apps.domains.recsys.baselines import build_rec_baseline
    from fewshot_apps.domains.recsys.training import (
        _encoder_settings,
        split_settings,
        train_rec_learner,
    )

    settings = _common_settings(suite, seed, device)
    if name in META_LEARNERS:
        model, _ = train_rec_learner(ds, name, model_dir, settings,
                                     resume=_has_checkpoint(model_dir), progress=progress)
        return model
    if FAMILIES[name] == "transfer":
        from fewshot_apps.core.baselines import build_transfer_baseline
        from fewshot_apps.domains.recsys.encoder import ItemGraphEncoder

        _, _, encoder, _ = split_settings(settings)
        torch.manual_seed(seed)
        enc = ItemGraphEncoder(ds.graph, **_encoder_settings(encoder))
        model = build_transfer_baseline(name, enc, ds.taskset.kind, seed=seed, device=device)
        model.pretrain(ds.taskset.train, ds.taskset.valid, steps=suite.preset.pretrain_steps,
                       progress=progress)
        save_model(model, model_dir, {**ds.saved_model_config(), "encoder": enc.config(),
                                      "pretrain_steps": suite.preset.pretrain_steps})
        return model
    return build_rec_baseline(name, ds, seed=seed)


# --------------------------------------------------------------------------- evaluating


def evaluate_molecules(suite: Suite, model, ds, seeds: list[int],
                       progress: bool = False) -> tuple[pd.DataFrame, int]:
    tasks = ds.task_set().test[: suite.preset.max_test_tasks]
    tasks = [limit_task(t, suite.preset.query_limit, 0) for t in tasks]

    def run():
        if suite.protocol == "k-shot":
            return k_shot_protocol(model, tasks, shots=suite.shots, draws=suite.preset.draws,
                                   seeds=seeds, progress=progress)
        return fsmol_protocol(model, tasks, sizes=suite.support_sizes, draws=suite.preset.draws,
                              seeds=seeds, progress=progress)

    if isinstance(model, torch.nn.Module) and hasattr(model, "encoder"):
        with encoded_once(model, tasks):
            results, skipped = run()
    else:
        results, skipped = run()
    k_shot = suite.protocol == "k-shot"
    out = pd.DataFrame({
        "task": results["task"],
        "shots": results["size"] if k_shot else pd.NA,
        "support_size": results["size"] * 2 if k_shot else results["size"],
        "item_split": pd.NA, "draw": results["draw"], "seed": results["seed"],
        "metric": results["metric"], "value": results["value"],
    })
    return out, len(skipped)


def evaluate_recsys(suite: Suite, model, ds, seeds: list[int],
                    progress: bool = False) -> tuple[pd.DataFrame, int]:
    from fewshot_apps.domains.recsys.evaluation import evaluate_cold_start

    if suite.preset.max_test_tasks is not None:
        ds = copy.copy(ds)
        ds.taskset = copy.copy(ds.taskset)
        ds.taskset.test = ds.taskset.test[: suite.preset.max_test_tasks]
    results, skipped = evaluate_cold_start(model, ds, split="test", seeds=tuple(seeds),
                                           draws=suite.preset.draws, progress=progress)
    out = results.assign(shots=pd.NA)[
        ["task", "shots", "support_size", "item_split", "draw", "seed", "metric", "value"]
    ]
    return out, len(skipped)


# --------------------------------------------------------------------------- the run


def _git_revision() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _versions() -> dict:
    import rdkit
    import sklearn
    import torch_geometric

    return {"fewshot_apps": __version__, "torch": torch.__version__,
            "torch_geometric": torch_geometric.__version__, "rdkit": rdkit.__version__,
            "scikit_learn": sklearn.__version__, "pandas": pd.__version__,
            "numpy": np.__version__, "python": platform.python_version()}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info
                        if line.startswith("model name")), cpu)
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
    if torch.cuda.is_available():
        text += f"; GPU {torch.cuda.get_device_name(0)}"
    return text


def _refuse_lost_rows(out: Path) -> None:
    """A folder with a summary but no results.csv (a clean clone: git ignores results.csv)
    would rerun its finished learners, or with --learners rewrite the summary without them."""
    summary_path = out / "summary.csv"
    if (out / "results.csv").exists() or not summary_path.exists():
        return
    learners = sorted(set(pd.read_csv(summary_path, usecols=["learner"])["learner"]))
    if learners:
        raise FewshotError(
            f"{out}: summary.csv has results of {', '.join(learners)} but results.csv, the "
            "rows they come from, is missing; running here would lose them. Put back "
            "results.csv (and models/ to resume training) or choose another --out")


def _learners_written(results_path: Path) -> set[tuple[str, str, str]]:
    """``(suite, dataset, learner)`` of the rows already in ``results.csv``."""
    if not results_path.exists():
        return set()
    rows = pd.read_csv(results_path, usecols=["suite", "dataset", "learner"])
    return set(zip(rows["suite"], rows["dataset"], rows["learner"]))


# A measurement: one value per key. Two runs into one folder once wrote every row twice.
ROW_KEY = [c for c in RESULT_COLUMNS if c not in ("family", "value")]


def _without_duplicate_rows(results: pd.DataFrame, results_path: Path) -> pd.DataFrame:
    """``results`` with each measurement (:data:`ROW_KEY`) once, the first written kept;
    rewrites ``results.csv`` (under the folder's write lock) when it had repeats."""
    repeated = results.duplicated(ROW_KEY, keep="first")
    if not repeated.any():
        return results
    learners = sorted(set(results.loc[repeated, "learner"].astype(str)))
    print(f"note: {results_path}: dropping {int(repeated.sum())} repeated rows (of "
          f"{', '.join(learners)}), each measurement written twice; keeping the first",
          file=sys.stderr, flush=True)
    results = results[~repeated].reset_index(drop=True)
    tmp = results_path.with_name(results_path.name + ".tmp")
    results.to_csv(tmp, index=False)
    os.replace(tmp, results_path)
    return results


def _append_rows(locks: OutputLocks, results_path: Path, rows: pd.DataFrame,
                 key: tuple[str, str, str]) -> bool:
    """Append one learner's rows to ``results.csv`` under the folder's write lock, unless rows
    of that learner are there already (written meanwhile by a run not holding our claims):
    then nothing is written and the answer is False."""
    with locks.writing():
        if key in _learners_written(results_path):
            print(f"note: {results_path}: rows of {key[2]} ({key[0]}/{key[1]}) were written by "
                  "another run meanwhile; not writing this run's again", file=sys.stderr,
                  flush=True)
            return False
        text = rows[RESULT_COLUMNS].to_csv(index=False, header=not results_path.exists())
        with open(results_path, "a", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        return True


def _revisions(timings: dict, run_json: Path) -> list[str]:
    """The git revisions whose code wrote this folder's rows (a long suite may be continued
    after commits, or by several processes): each learner's entry in ``timings.json`` names
    its own; an older ``run.json``'s list covers entries from before that was recorded."""
    older = []
    if run_json.exists():
        with contextlib.suppress(json.JSONDecodeError, OSError):
            older = json.loads(run_json.read_text()).get("git_revisions") or []
    mine = [entry.get("git_revision") for entry in timings.values()]
    return list(dict.fromkeys(r for r in [*older, *mine] if r))


def refuse_seen_test_tasks(model_path: str | Path, suite: str, domain: str, ds) -> bool:
    """FewshotError when the saved model was trained or selected on test tasks of ``ds``
    (the suite's data set; users for rating data), through
    :func:`~fewshot_apps.core.persistence.check_unseen_tasks`. True when checked; False
    (with a warning) for a model saved without its split."""
    from fewshot_apps.core.persistence import check_unseen_tasks, read_model_config

    config = read_model_config(model_path)
    if domain == "molecules":  # assay names identify assays in any file (an own CSV too)
        return check_unseen_tasks(model_path, suite, ds.task_set().test, config)
    # User ids name the same people only within one data set; another data set's model is
    # refused when loaded (item vocabulary). A recorded user-split fingerprint is checked
    # then too, so an older model with one is not warned about.
    test = ds.taskset.test if config.get("dataset") == ds.name else []
    fingerprint = bool(config.get("train_users_sha256"))
    return check_unseen_tasks(model_path, suite, test, config, what="users",
                              warn=not fingerprint) or fingerprint


def evaluate_saved_model(
    model_path: str | Path,
    suite: str,
    out: str | Path,
    preset: str = "full",
    seeds: int | None = None,
    data_dir: str | Path | None = None,
) -> pd.DataFrame:
    """A trained model (``mol train`` / ``rec train`` / a suite's ``models/``) through a
    suite's protocol on its test tasks; writes the same files as :func:`run_suite` (without
    training) and returns the summary. The suite's data set must be the one the model was
    trained on (its encoder's graph or featurizer must match), and its test tasks (users)
    must not be among the model's training or validation tasks (FewshotError naming them;
    a model saved without its split is scored with a warning that this cannot be
    checked)."""
    from fewshot_apps.api import load_model
    from fewshot_apps.bench.report import summarize, write_reports

    out = Path(out)
    parts = load_suites(suite, preset)
    if len(parts) != 1:
        raise FewshotError(f"suite {suite!r} has several data sets; evaluate on one of them")
    part = parts[0]
    domain, ds = load_data(part.dataset, data_dir)
    split_checked = refuse_seen_test_tasks(model_path, part.name, domain, ds)
    model = load_model(model_path, dataset=ds if domain == "recsys" else None)
    if domain == "molecules":
        model.encoder.set_store(ds.store)
    name = model.saved_config["learner"]["name"]
    eval_seeds = part.preset.seeds if seeds is None else list(range(seeds))
    evaluate = evaluate_molecules if domain == "molecules" else evaluate_recsys
    t0 = time.perf_counter()
    rows, skipped = evaluate(part, model, ds, eval_seeds)
    timings = {f"{part.name}|{part.dataset}|{name}": {
        "train_seconds": None, "eval_seconds": round(time.perf_counter() - t0, 2),
        "skipped_draws": skipped}}
    rows.insert(0, "suite", part.name)
    rows.insert(1, "dataset", part.dataset)
    rows.insert(3, "learner", name)
    rows.insert(4, "family", FAMILIES[name])
    results = rows[RESULT_COLUMNS]
    summary = summarize(results, timings)
    out.mkdir(parents=True, exist_ok=True)  # only now: a refused model leaves no folder
    with OutputLocks(out) as locks:
        locks.hold_writing()  # another evaluate or bench writing this folder waits or refuses
        results.to_csv(out / "results.csv", index=False)
        summary.to_csv(out / "summary.csv", index=False)
        run_info = _write_evaluation_info(out, suite, preset, model_path, model, eval_seeds,
                                          data_dir, split_checked)
        write_reports(out, results, summary, parts, run_info, data_dir)
    return summary


def _write_evaluation_info(out: Path, suite: str, preset: str, model_path, model, eval_seeds,
                           data_dir, split_checked: bool) -> dict:
    """``out/run.json`` of an evaluation: what was scored, where, with what; returned too."""
    run_info = {"suite": suite, "preset": preset, "model": str(model_path),
                "device": str(next(model.parameters()).device), "machine": machine(),
                "threads": torch.get_num_threads(), "git_revision": _git_revision(),
                "versions": _versions(), "eval_seeds": eval_seeds,
                "data_dir": str(default_data_dir(data_dir)), "model_config": model.saved_config,
                "split_checked": split_checked}
    (out / "run.json").write_text(json.dumps(run_info, indent=2, default=str))
    return run_info


def run_suite(
    suite: str,
    out: str | Path,
    learners: list[str] | None = None,
    preset: str = "fast",
    seeds: int | None = None,
    device: str = "auto",
    data_dir: str | Path | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Run ``suite`` (a name in ``benchmarks/`` or a ``.toml`` path) and write its outputs to
    ``out``; returns the summary DataFrame. ``seeds`` overrides the preset's number of
    evaluation seeds; ``learners`` restricts the suite's learner list.

    The run claims the learners it trains (``out/.claims/``) and appends rows, writes the
    summary and the reports under the folder's write lock (``out/.lock``): a second run that
    needs a learner a live run has claimed refuses at once, naming that run's pid, host, start
    and command (:mod:`fewshot_apps.bench.locking`); runs of other ``learners`` may share the
    folder. No measurement is written to ``results.csv`` twice."""
    parts = load_suites(suite, preset)  # bad input fails before anything is written
    for part in parts:
        unknown = [n for n in (learners or part.learners) if n not in FAMILIES]
        if unknown:
            raise FewshotError(f"unknown learners {unknown}; known: {', '.join(FAMILIES)}")
        card = load_card_or_csv(part.dataset, data_dir)  # unknown or missing data sets too
        card.require_present()
        wrong = [n for n in (learners or part.learners) if n in NOT_FOR_RATINGS]
        if card.domain == "recsys" and wrong:
            raise FewshotError(f"learners {wrong} do not apply to rating data ({part.dataset})")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with OutputLocks(out) as locks:
        return _run_suite(locks, parts, suite, out, learners, preset, seeds, device, data_dir,
                          progress)


def _run_suite(locks: OutputLocks, parts: list, suite: str, out: Path, learners, preset, seeds,
               device, data_dir, progress) -> pd.DataFrame:
    """:func:`run_suite` once its inputs are checked, with the output folder's ``locks``
    (released by the caller)."""
    from fewshot_apps.bench.report import summarize, write_reports
    from fewshot_apps.progress import progress_bar

    revision = _git_revision()  # the code that runs, even if commits land while it does
    device = str(resolve_device(device))
    results_path = out / "results.csv"
    timings_path = out / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    with locks.writing():
        _refuse_lost_rows(out)
        done = _learners_written(results_path)
        # Claim what is left to run (refused at once if another live run has it), then look
        # again: a run that ended just now may have written some of it.
        locks.claim((part.name, part.dataset, n) for part in parts
                    for n in (learners or part.learners)
                    if (part.name, part.dataset, n) not in done)
        done = _learners_written(results_path)
    wrote_rows = False
    resolved = []
    for part in parts:
        names = learners or part.learners
        eval_seeds = part.preset.seeds if seeds is None else list(range(seeds))
        resolved.append({"suite": part.name, "dataset": part.dataset, "protocol": part.protocol,
                         "learners": names, "preset": preset, "budget": part.preset.__dict__,
                         "shots": part.shots, "support_sizes": part.support_sizes,
                         "eval_seeds": eval_seeds, "source": part.source})
        todo = [n for n in names if (part.name, part.dataset, n) not in done]
        if not todo:
            continue
        domain, ds = load_data(part.dataset, data_dir)
        bar = progress_bar(todo, desc=f"{part.name}/{part.dataset}", enabled=progress)
        for name in bar:
            bar.set_postfix_str(name)
            # Another bench process with other --learners may share this folder.
            if (part.name, part.dataset, name) in _learners_written(results_path):
                continue
            build = build_molecule_model if domain == "molecules" else build_recsys_model
            # models/<learner>/; a composite suite (demo) keeps one folder per data set, named
            # safely (a data set given as a path must not lead out of ``out``).
            model_dir = out / "models" / (
                name if len(parts) == 1 else f"{file_slug(part.dataset)}/{name}")
            evaluate = evaluate_molecules if domain == "molecules" else evaluate_recsys
            resumed = _has_checkpoint(model_dir)
            t0 = time.perf_counter()
            model = build(part, name, ds, model_dir, eval_seeds[0], device, progress=progress)
            train_seconds = time.perf_counter() - t0
            if resumed:  # this process saw only the steps after the checkpoint
                train_seconds = _logged_train_seconds(model_dir)
            t0 = time.perf_counter()
            rows, skipped = evaluate(part, model, ds, eval_seeds, progress=progress)
            eval_seconds = time.perf_counter() - t0
            rows.insert(0, "suite", part.name)
            rows.insert(1, "dataset", part.dataset)
            rows.insert(3, "learner", name)
            rows.insert(4, "family", FAMILIES[name])
            with locks.writing():
                if not _append_rows(locks, results_path, rows, (part.name, part.dataset, name)):
                    continue
                wrote_rows = True
                # Re-read first: another process may be running other learners into this folder.
                if timings_path.exists():
                    timings.update(json.loads(timings_path.read_text()))
                timings[f"{part.name}|{part.dataset}|{name}"] = {
                    "train_seconds": round(train_seconds, 2),
                    "eval_seconds": round(eval_seconds, 2),
                    "skipped_draws": skipped, "resumed": resumed, "git_revision": revision}
                timings_path.write_text(json.dumps(timings, indent=1))
    locks.hold_writing()  # the summary and reports from a consistent results.csv
    if timings_path.exists():
        timings.update(json.loads(timings_path.read_text()))
    results = pd.read_csv(results_path) if results_path.exists() else pd.DataFrame(columns=RESULT_COLUMNS)
    results = _without_duplicate_rows(results, results_path)
    for entry in resolved:  # a folder filled by several --learners runs lists them all
        mine = (results["suite"] == entry["suite"]) & (results["dataset"] == entry["dataset"])
        entry["learners_in_results"] = sorted(set(results.loc[mine, "learner"]))
    summary = summarize(results, timings)
    summary.to_csv(out / "summary.csv", index=False)
    run_info = {"suite": suite, "preset": preset, "device": device, "machine": machine(),
                "threads": torch.get_num_threads(), "git_revision": revision,
                "git_revisions": _revisions(timings, out / "run.json"),
                "versions": _versions(), "parts": resolved,
                "data_dir": str(default_data_dir(data_dir))}
    if not wrote_rows and (out / "run.json").exists():
        # Only the reports were rewritten: the rows were measured where the old run.json says.
        old = json.loads((out / "run.json").read_text())
        run_info.update({k: old[k] for k in ("device", "machine", "threads", "git_revision",
                                              "versions") if k in old})
    (out / "run.json").write_text(json.dumps(run_info, indent=2, default=str))
    write_reports(out, results, summary, parts, run_info, data_dir)
    return summary
