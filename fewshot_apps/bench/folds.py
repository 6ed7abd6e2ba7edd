"""Cross-validated suites: the folds' rows pooled into one data set's summary and report.

A preset's ``folds = N`` makes N variants of a suite (:func:`~fewshot_apps.bench.suites.with_folds`):
dataset options ``folds = N`` and ``fold = f``, rows labelled ``<dataset>:folds=N,fold=f`` in
``results.csv``, so that the runner trains, evaluates, claims and resumes each fold on its own.
The domain makes each fold's test tasks a different part of its tasks (rating data: each user
with enough ratings is a test user in exactly one fold), so relabelling every fold's rows
``<dataset>:folds=N`` (:attr:`~fewshot_apps.bench.suites.Suite.pooled_label`) pools them: the
summary's means, intervals and paired tests run over the tasks of all folds.
"""

from __future__ import annotations

import pandas as pd

from fewshot_apps.bench.suites import Suite

TIMED = ("train_seconds", "eval_seconds")


def pool_folds(results: pd.DataFrame, parts: list[Suite],
               timings: dict) -> tuple[pd.DataFrame, list[Suite], dict]:
    """``results`` with each fold's ``dataset`` set to its pooled label, the parts to report
    (each cross-validated suite once, without its fold), and ``timings`` with entries of the
    pooled labels (train and evaluation seconds summed over the folds). Results without
    folds come back as they are."""
    pooled_of = {(p.name, p.label): p.pooled_label for p in parts if p.fold is not None}
    if not pooled_of:
        return results, list(parts), timings
    results = results.assign(dataset=[
        pooled_of.get((suite, dataset), dataset)
        for suite, dataset in zip(results["suite"], results["dataset"])])
    report_parts: list[Suite] = []
    for part in parts:
        part = part.without_fold()
        if all((p.name, p.label) != (part.name, part.label) for p in report_parts):
            report_parts.append(part)
    pooled_timings = {k: v for k, v in timings.items()
                      if not any(k.startswith(f"{s}|{label}|") for s, label in pooled_of)}
    for (suite, label), pooled in pooled_of.items():
        prefix = f"{suite}|{label}|"
        for key, entry in timings.items():
            if not key.startswith(prefix):
                continue
            total = pooled_timings.setdefault(f"{suite}|{pooled}|{key[len(prefix):]}",
                                              {"folds": 0})
            total["folds"] += 1
            for what in TIMED:
                if entry.get(what) is not None:
                    total[what] = round(total.get(what, 0.0) + entry[what], 2)
    return results, report_parts, pooled_timings


__all__ = ["pool_folds"]
