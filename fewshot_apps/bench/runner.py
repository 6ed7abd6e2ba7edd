"""Run a benchmark suite: train every learner on training tasks, score the test tasks.

Writes to the output folder ``results.csv`` (one row per measurement), ``summary.csv``,
``report.md``, ``report.html``, plots, ``run.json`` and ``models/<learner>/``; for
classification, ``reliability.csv`` (the reliability diagram's bins of each learner's
predicted probabilities, pooled over test tasks). Rows are appended learner by learner, and a
rerun with the same output folder continues after the learners already written, so long
suites survive interruption.
"""

from __future__ import annotations

import contextlib
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
from fewshot_apps.bench.folds import pool_folds
from fewshot_apps.bench.locking import OutputLocks, describe
from fewshot_apps.bench.suites import (
    Suite,
    file_slug,
    learner_label,
    load_suites,
    split_learner_label,
    without_folds,
)
from fewshot_apps.core.device import resolve_device
from fewshot_apps.core.domain import get_domain, load_saved_model
from fewshot_apps.core.fit import build_model
from fewshot_apps.core.persistence import (
    CHECKPOINT_FILE,
    read_model_config,
)
from fewshot_apps.core.registry import (
    DOMAINS,
    ENSEMBLE_FAMILY,
    MODELS,
    PROTOCOLS,
    model_family,
    models_for,
)
from fewshot_apps.core.training import LOG_FILE, TrainingInterrupted
from fewshot_apps.errors import FewshotError
from fewshot_apps.paths import check_output_folder
from fewshot_apps.paths import data_dir as default_data_dir
from fewshot_apps.plain_csv import load_card_or_csv

RESULT_COLUMNS = ["suite", "dataset", "task", "learner", "family", "shots", "support_size",
                  "item_split", "draw", "seed", "metric", "value"]
SUMMARY_COLUMNS = ["suite", "dataset", "learner", "family", "shots", "support_size",
                   "item_split", "metric", "mean", "std", "ci95_low", "ci95_high", "n_tasks",
                   "n_draws", "train_seconds", "eval_seconds"]
#: ``reliability.csv``: per learner, support size and equal-width probability bin, the
#: number of test query predictions in the bin, their summed probability and summed label.
RELIABILITY_COLUMNS = ["suite", "dataset", "learner", "family", "shots", "support_size", "bin",
                       "n", "sum_probability", "sum_label"]


# --------------------------------------------------------------------------- data


def load_data(name: str, data_dir=None, seed: int = 0, dataset_options: dict | None = None):
    """A suite's data set: a card name, a card.toml or a plain CSV (fewshot_apps.plain_csv),
    loaded by its domain, with the suite's ``dataset_options`` (checked by the domain)."""
    card = load_card_or_csv(name, data_dir)
    card.require_present()
    domain = get_domain(card.domain)
    options = {"seed": seed} if data_dir is None else {"seed": seed, "data_dir": data_dir}
    return domain.load(card, **domain.check_dataset_options(dataset_options or {}), **options)


# --------------------------------------------------------------------------- building models


def _has_checkpoint(model_dir: Path) -> bool:
    """An interrupted suite continues a learner's training from its last checkpoint."""
    return (model_dir / CHECKPOINT_FILE).exists()


def _logged_train_seconds(model_dir: Path) -> float:
    """Training time of a resumed learner: the sum of its logged step times (the log is
    cut back to the checkpoint on resume, so every step counts once)."""
    with open(model_dir / LOG_FILE, encoding="utf-8") as log:
        return sum(json.loads(line).get("seconds", 0.0) for line in log if line.strip())


def build_suite_model(suite: Suite, name: str, ds, model_dir: Path, seed: int, device: str,
                      progress: bool):
    """Model ``name`` trained (or fitted) for ``suite``: the preset's steps and settings (with
    the learner's own ``learner_settings`` over them), and the suite's training episodes
    (``train_shots`` / ``train_support_size``; its ``learner_settings`` may set its own); a
    learner that starts from the pretrained encoder (``init = "pretrained"``) pre-trains for
    the preset's ``pretrain_steps``."""
    settings = {**suite.train_episode(name), **suite.settings_for(name),
                "steps": suite.preset.steps}
    if str(settings.get("init", "")).strip().lower() == "pretrained":
        # one pre-training per suite and seed, shared by the learners (and cached)
        settings.setdefault("init_pretrain_steps", suite.preset.pretrain_steps)
    # a meta-learner continues from its checkpoint; a transfer baseline pre-trained there
    # before with the same settings is loaded
    resume = _has_checkpoint(model_dir) or MODELS.get(name).family == "transfer"
    return build_model(ds, name, model_dir, settings, seed=seed, device=device,
                       pretrain_steps=suite.preset.pretrain_steps, resume=resume,
                       progress=progress)


def trains_elsewhere(suite: Suite, name: str) -> bool:
    """Whether learner ``name`` of ``suite`` is trained by the suite's ``train_suite`` (every
    learner that trains; a classic baseline is fitted on the suite's own data, an ensemble
    assembled from the run's saved models)."""
    return suite.train_suite is not None and MODELS.get(name).family not in ("classic",
                                                                             ENSEMBLE_FAMILY)


class _TrainSuites:
    """The ``train_suite`` of a suite and its data set, loaded once per run."""

    def __init__(self):
        self._loaded = {}

    def get(self, suite: Suite, preset: str, data_dir) -> tuple[Suite, object]:
        if suite.train_suite not in self._loaded:
            (source,) = without_folds(load_suites(suite.train_suite, preset))
            ds = load_data(source.dataset, data_dir, dataset_options=source.dataset_options)
            self._loaded[suite.train_suite] = (source, ds)
        return self._loaded[suite.train_suite]


def attach_trained_elsewhere(model, model_dir: Path, ds, suite: Suite) -> None:
    """A model trained by ``suite``'s ``train_suite`` made to read ``ds``: refused when it was
    trained or selected on any of ``ds``'s test tasks, or reads its examples differently (the
    domain's ``attach``: molecules featurized otherwise, another item vocabulary)."""
    ds.check_model_split(model_dir, suite.name)
    model.saved_config = read_model_config(model_dir)
    ds.attach(model, model_dir)


def evaluate_suite_model(suite: Suite, model, ds, seeds: list[int],
                         progress: bool = False) -> tuple[pd.DataFrame, int]:
    """The suite's protocol on the data set's test tasks: tidy rows and skipped draws (a
    protocol with acquisition strategies gets the suite's ``strategies``; its rows say each
    row's in a ``strategy`` column)."""
    options = {"strategies": suite.strategies} if suite.strategies else {}
    return ds.evaluate(suite.protocol, model, split="test", shots=suite.shots,
                       support_sizes=suite.support_sizes, draws=suite.preset.draws,
                       seeds=seeds, max_tasks=suite.preset.max_test_tasks,
                       query_limit=suite.preset.query_limit, progress=progress, **options)


def result_rows(rows: pd.DataFrame, suite: str, dataset: str, name: str) -> pd.DataFrame:
    """A learner's evaluation rows as ``results.csv`` rows (:data:`RESULT_COLUMNS`): suite,
    data set label, ``learner`` (``name``, or ``name+<strategy>`` where the rows have a
    ``strategy`` column: :func:`~fewshot_apps.bench.suites.learner_label`) and family."""
    learner = (name if "strategy" not in rows.columns
               else [learner_label(name, s) for s in rows["strategy"]])
    out = rows.drop(columns=["strategy"], errors="ignore")
    out.insert(0, "suite", suite)
    out.insert(1, "dataset", dataset)
    out.insert(3, "learner", learner)
    out.insert(4, "family", model_family(name))
    out.attrs = dict(rows.attrs)
    return out


# --------------------------------------------------------------------------- the run


# What decides a run's numbers besides the data: the package and the suites' TOML files.
_RUN_CODE = (":/fewshot_apps", ":/benchmarks/*.toml")


def _git_revision(checkout: Path = Path(__file__).parent) -> str | None:
    """The commit of the git ``checkout`` (this package's by default), with ``+modified`` when
    its package or a suite file differs from it (a run made from uncommitted code is not that
    commit's run); None outside git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True,
                              cwd=checkout, timeout=5).stdout.strip()

    try:
        revision = git("rev-parse", "HEAD")
        if revision and git("status", "--porcelain", "--untracked-files=no", "--", *_RUN_CODE):
            revision += "+modified"
        return revision or None
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
    """``(suite, dataset, learner)`` of the rows already in ``results.csv`` (the learner of
    a ``protonet+ucb`` row: ``protonet``)."""
    if not results_path.exists():
        return set()
    rows = pd.read_csv(results_path, usecols=["suite", "dataset", "learner"])
    return {(suite, dataset, split_learner_label(learner)[0])
            for suite, dataset, learner in zip(rows["suite"], rows["dataset"], rows["learner"])}


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


def reliability_rows(rows: pd.DataFrame, suite: str, dataset: str, learner: str) -> pd.DataFrame:
    """``reliability.csv`` rows of one learner from its evaluation rows' ``attrs
    ["reliability"]`` (:func:`~fewshot_apps.core.evaluation.classification_protocol`; none
    for ratings or scores that are not probabilities)."""
    bins = rows.attrs.get("reliability") or []
    family = model_family(learner)
    return pd.DataFrame([(suite, dataset, learner, family, *b) for b in bins],
                        columns=RELIABILITY_COLUMNS)


def _append_reliability(path: Path, rows: pd.DataFrame) -> None:
    """Append a learner's reliability bins (the caller holds the folder's write lock)."""
    if rows.empty:
        return
    with open(path, "a", encoding="utf-8", newline="") as f:
        f.write(rows[RELIABILITY_COLUMNS].to_csv(index=False, header=not path.exists()
                                                 or path.stat().st_size == 0))


def calibration_record(model) -> dict | None:
    """What ``timings.json`` says of a model's calibration (None: the model has none, e.g.
    a classic molecule baseline)."""
    calibration = getattr(model, "calibration", None)
    return calibration.to_config() if callable(getattr(calibration, "to_config", None)) else None


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
    from fewshot_apps.bench.report import summarize, write_reports

    out = check_output_folder(out)
    _check_seeds(seeds)
    parts = without_folds(load_suites(suite, preset))  # one model: one split, not the folds
    if len(parts) != 1:
        raise FewshotError(f"suite {suite!r} has several data sets; evaluate on one of them")
    part = parts[0]
    ds = load_data(part.dataset, data_dir, dataset_options=part.dataset_options)
    split_checked = ds.check_model_split(model_path, part.name)
    model = load_saved_model(model_path, dataset=ds)
    name = model.saved_config["learner"]["name"]
    eval_seeds = part.preset.seeds if seeds is None else list(range(seeds))
    t0 = time.perf_counter()
    rows, skipped = evaluate_suite_model(part, model, ds, eval_seeds)
    timings = {f"{part.name}|{part.label}|{name}": {
        "train_seconds": None, "eval_seconds": round(time.perf_counter() - t0, 2),
        "skipped_draws": skipped}}
    timings[f"{part.name}|{part.label}|{name}"]["calibration"] = calibration_record(model)
    rows = result_rows(rows, part.name, part.label, name)
    results = rows[RESULT_COLUMNS]
    reliability = reliability_rows(rows, part.name, part.label, name)
    summary = summarize(results, timings)
    out.mkdir(parents=True, exist_ok=True)  # only now: a refused model leaves no folder
    with OutputLocks(out) as locks:
        locks.hold_writing()  # another evaluate or bench writing this folder waits or refuses
        results.to_csv(out / "results.csv", index=False)
        summary.to_csv(out / "summary.csv", index=False)
        (out / "timings.json").write_text(json.dumps(timings, indent=1))
        (out / "reliability.csv").unlink(missing_ok=True)
        _append_reliability(out / "reliability.csv", reliability)
        run_info = _write_evaluation_info(out, suite, preset, model_path, model, eval_seeds,
                                          data_dir, split_checked)
        write_reports(out, results, summary, parts, run_info, data_dir)
    return summary


def _machines(timings: dict) -> dict[str, list[str]]:
    """``{machine: [learner, ...]}`` of a folder's learners, from the machine each one's rows
    were measured on (``timings.json``; a learner run before that was recorded is left out):
    a folder filled by several runs (threads, hosts) says which timing came from where."""
    out: dict[str, list[str]] = {}
    for key, entry in timings.items():
        if entry.get("machine"):
            learner = key.rsplit("|", 1)[-1]
            names = out.setdefault(entry["machine"], [])
            if learner not in names:
                names.append(learner)
    return out


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


def _check_seeds(seeds: int | None) -> None:
    """``--seeds``: None (the preset's) or a number of evaluation seeds, at least 1."""
    if seeds is not None and seeds < 1:
        raise FewshotError(f"--seeds must be at least 1, not {seeds}")


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

    The run claims each learner while it trains it (``out/.claims/``) and appends rows, writes
    the summary and the reports under the folder's write lock (``out/.lock``): a second run
    leaves a learner a live run has claimed to that run, with a note naming its pid, host,
    start and command, and runs the rest; it refuses at once when nothing else is left
    (:mod:`fewshot_apps.bench.locking`). Two runs of one list split its learners between them.
    No measurement is written to ``results.csv`` twice."""
    parts = load_suites(suite, preset)  # bad input fails before anything is written
    out = check_output_folder(out)
    _check_seeds(seeds)
    if learners is not None and not learners:  # not "all of them": that is learners=None
        raise FewshotError("--learners names no learner; give a comma-separated list of the "
                           "suite's learners, or leave it out to run all of them")
    for part in parts:
        unknown = [n for n in (learners or part.learners) if n not in MODELS]
        if unknown:
            raise FewshotError(f"unknown learners {unknown}; known: {', '.join(MODELS)}")
        card = load_card_or_csv(part.dataset, data_dir)  # unknown or missing data sets too
        card.require_present()
        get_domain(card.domain).check_dataset_options(part.dataset_options)
        applies = models_for(card.domain, PROTOCOLS.get(part.protocol).label_kind)
        wrong = [n for n in (learners or part.learners) if n not in applies]
        if wrong:
            noun = DOMAINS.get(card.domain).domain_noun
            raise FewshotError(f"learners {wrong} do not apply to {noun} data "
                               f"({part.dataset}, {part.protocol} protocol)")
    out.mkdir(parents=True, exist_ok=True)
    with OutputLocks(out) as locks:
        try:
            return _run_suite(locks, parts, suite, out, learners, preset, seeds, device,
                              data_dir, progress)
        except TrainingInterrupted as stopped:
            # A bench run has no --resume: run again, it continues from the checkpoint.
            raise stopped.continued_by(
                "run the same bench command again to continue from it") from None


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
        # Refused at once when another live run holds everything left to do; otherwise each
        # learner is claimed when its turn comes (below), so that runs sharing the folder
        # split its learners between them.
        left = [(part.name, part.label, n) for part in parts
                for n in (learners or part.learners) if (part.name, part.label, n) not in done]
        held = locks.held_by_others(left)
        if held and len(held) == len(left):
            raise next(iter(held.values()))
    wrote_rows = False
    resolved = []
    elsewhere = _TrainSuites()
    for part in parts:
        names = learners or part.learners
        eval_seeds = part.preset.seeds if seeds is None else list(range(seeds))
        resolved.append({"suite": part.name, "dataset": part.label, "protocol": part.protocol,
                         "learners": names, "preset": preset, "budget": part.preset.__dict__,
                         "shots": part.shots, "support_sizes": part.support_sizes,
                         "eval_seeds": eval_seeds, "source": part.source})
        if part.strategies:
            resolved[-1].update(strategies=part.strategies, baseline=part.baseline)
        if part.dataset_options:
            resolved[-1].update(card=part.dataset, dataset_options=part.dataset_options)
        if part.train_suite:
            resolved[-1].update(train_suite=part.train_suite)
        todo = [n for n in names if (part.name, part.label, n) not in done]
        if not todo:
            continue
        ds = load_data(part.dataset, data_dir, dataset_options=part.dataset_options)
        bar = progress_bar(todo, desc=f"{part.name}/{part.label}", enabled=progress)
        for name in bar:
            bar.set_postfix_str(name)
            key = (part.name, part.label, name)
            with locks.writing():  # another bench run may share this folder
                if key in _learners_written(results_path):
                    continue
                refusal = locks.claim_available([key]).get(key)  # claimed when None
            if refusal is not None:
                print(f"note: {out}: learner {name} of {part.name}/{part.label} is being run "
                      f"into this folder by another bench run ({describe(refusal.holder)}); "
                      "left to it", file=sys.stderr, flush=True)
                continue
            # models/<learner>/; a composite suite (demo) keeps one folder per data set (and
            # variant: tox21-disjoint), named safely (a data set given as a path must not
            # lead out of ``out``).
            model_dir = out / "models" / (
                name if len(parts) == 1 else f"{file_slug(part.label)}/{name}")
            resumed = _has_checkpoint(model_dir)
            t0 = time.perf_counter()
            if trains_elsewhere(part, name):
                source, source_ds = elsewhere.get(part, preset, data_dir)
                model = build_suite_model(source, name, source_ds, model_dir, eval_seeds[0],
                                          device, progress=progress)
                attach_trained_elsewhere(model, model_dir, ds, part)
            else:
                model = build_suite_model(part, name, ds, model_dir, eval_seeds[0], device,
                                          progress=progress)
            train_seconds = time.perf_counter() - t0
            if resumed:  # this process saw only the steps after the checkpoint
                train_seconds = _logged_train_seconds(model_dir)
            elif getattr(model, "reused", False):  # a transfer baseline pre-trained before
                resumed = True
                train_seconds = model.saved_config.get("pretrain_seconds", train_seconds)
            t0 = time.perf_counter()
            rows, skipped = evaluate_suite_model(part, model, ds, eval_seeds, progress=progress)
            eval_seconds = time.perf_counter() - t0
            rows = result_rows(rows, part.name, part.label, name)
            with locks.writing():
                # Given up under the write lock: a run that takes the learner next finds its rows.
                locks.release(key)
                if not _append_rows(locks, results_path, rows, key):
                    continue
                wrote_rows = True
                _append_reliability(out / "reliability.csv",
                                    reliability_rows(rows, part.name, part.label, name))
                # Re-read first: another process may be running other learners into this folder.
                if timings_path.exists():
                    timings.update(json.loads(timings_path.read_text()))
                timings[f"{part.name}|{part.label}|{name}"] = {
                    "train_seconds": round(train_seconds, 2),
                    "eval_seconds": round(eval_seconds, 2),
                    "skipped_draws": skipped, "resumed": resumed, "git_revision": revision,
                    "machine": machine(), "calibration": calibration_record(model)}
                if getattr(model, "member_names", None):  # an ensemble: what it averages
                    timings[f"{part.name}|{part.label}|{name}"]["members"] = model.member_names
                timings_path.write_text(json.dumps(timings, indent=1))
    locks.hold_writing()  # the summary and reports from a consistent results.csv
    if timings_path.exists():
        timings.update(json.loads(timings_path.read_text()))
    results = pd.read_csv(results_path) if results_path.exists() else pd.DataFrame(columns=RESULT_COLUMNS)
    results = _without_duplicate_rows(results, results_path)
    for entry in resolved:  # a folder filled by several --learners runs lists them all
        mine = (results["suite"] == entry["suite"]) & (results["dataset"] == entry["dataset"])
        entry["learners_in_results"] = sorted(set(results.loc[mine, "learner"]))
    # a cross-validated suite's folds are pooled into one data set (bench/folds.py)
    pooled, report_parts, pooled_timings = pool_folds(results, parts, timings)
    summary = summarize(pooled, pooled_timings)
    summary.to_csv(out / "summary.csv", index=False)
    run_info = {"suite": suite, "preset": preset, "device": device, "machine": machine(),
                "threads": torch.get_num_threads(), "git_revision": revision,
                "git_revisions": _revisions(timings, out / "run.json"),
                "machines": _machines(timings),
                "versions": _versions(), "parts": resolved,
                "data_dir": str(default_data_dir(data_dir))}
    if not wrote_rows and (out / "run.json").exists():
        # Only the reports were rewritten: the rows were measured where the old run.json says.
        old = json.loads((out / "run.json").read_text())
        run_info.update({k: old[k] for k in ("device", "machine", "threads", "git_revision",
                                              "versions") if k in old})
    (out / "run.json").write_text(json.dumps(run_info, indent=2, default=str))
    write_reports(out, pooled, summary, report_parts, run_info, data_dir)
    return summary
