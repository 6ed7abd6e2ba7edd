"""Summaries, paired comparisons, plots and the Markdown / HTML reports of a suite run.

A suite whose protocol has acquisition strategies (``active``: rows of learner
``<learner>+<strategy>``, ``support_size`` the labelled molecules after each round) gets, per
main metric, a table of the mean per round (a row per learner and strategy, a column per
number of labelled molecules) and, instead of the comparison with the best baseline, each
strategy against the suite's baseline strategy (``random``) for the same learner at the last
round (:func:`strategy_comparisons`).

For classification suites the report has a calibration section per data set: each learner's
calibration (read from ``timings.json``), its ``ece`` and ``brier``, and a reliability
diagram (``plot_<dataset>_reliability.png``: observed frequency of actives against the mean
predicted probability per equal-width bin, pooled over test tasks, from ``reliability.csv``).
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from fewshot_apps.bench.published import published_rows
from fewshot_apps.bench.suites import file_slug, learner_label, split_learner_label
from fewshot_apps.core.metrics import higher_is_better
from fewshot_apps.core.metrics import metric_bounds as metric_bounds  # re-exported
from fewshot_apps.core.registry import METRICS, PROTOCOLS

GROUP = ["suite", "dataset", "learner", "family", "shots", "support_size", "item_split", "metric"]
# Direction and range of each metric come from its METRICS entry (fewshot_apps.core.catalog).
LOWER_IS_BETTER = {e.name for e in METRICS.entries() if e.direction == "lower"}
# The range of each metric (``name@k`` metrics share their name's entry; metric_bounds reads
# the registry). Confidence intervals in summary.csv, the reports and the plots are clipped
# to it: a t-interval over few tasks can otherwise reach past what the metric can take (an
# ROC-AUC interval up to 2.17).
METRIC_BOUNDS = {e.name.split("@", 1)[0]: tuple(e.bounds) for e in METRICS.entries()}
# Each protocol's headline metrics (its PROTOCOLS entry's main_metrics).
MAIN_METRICS = {e.name: list(e.main_metrics) for e in PROTOCOLS.entries()}
HEADLINE_METRICS = {m for metrics in MAIN_METRICS.values() for m in metrics}
BASELINE_FAMILIES = ("transfer", "classic")


def _keys(frame: pd.DataFrame) -> pd.DataFrame:
    """Empty cells (shots, item_split) as '' so that groupby keeps them."""
    frame = frame.copy()
    for col in ("shots", "support_size"):
        # Whole numbers as such: a column with empty cells is read as float ("10.0").
        numbers = pd.to_numeric(frame[col], errors="coerce")
        given = frame[col].notna() & (frame[col].astype("string") != "")
        if numbers[given].notna().all() and (numbers[given] % 1 == 0).all():
            frame[col] = numbers.round().astype("Int64")
    for col in ("shots", "support_size", "item_split"):
        frame[col] = frame[col].astype("string").fillna("")
    return frame


def per_task(results: pd.DataFrame) -> pd.DataFrame:
    """Mean per task over draws and seeds, with the number of draws."""
    r = _keys(results)
    return (
        r.groupby([*GROUP, "task"], sort=False)["value"]
        .agg(value="mean", n_draws="size")
        .reset_index()
    )


def summarize(results: pd.DataFrame, timings: dict | None = None) -> pd.DataFrame:
    """``summary.csv``: mean over tasks of per-task means, their std, and ``ci95_low`` /
    ``ci95_high``, the 95% t-interval of the mean over tasks clipped to the metric's range
    (:data:`METRIC_BOUNDS`; NaN with a single task)."""
    if results.empty:
        return pd.DataFrame(columns=[*GROUP, "mean", "std", "ci95_low", "ci95_high", "n_tasks",
                                     "n_draws", "train_seconds", "eval_seconds"])
    tasks = per_task(results)
    rows = []
    for key, group in tasks.groupby(GROUP, sort=False):
        values = group["value"].to_numpy(dtype=float)
        n = len(values)
        mean = float(values.mean())
        std = float(values.std(ddof=1)) if n > 1 else float("nan")
        half = float(stats.t.ppf(0.975, n - 1) * std / np.sqrt(n)) if n > 1 else float("nan")
        # timed per learner: protonet+ucb's rows are protonet's
        timing = (timings or {}).get(f"{key[0]}|{key[1]}|{split_learner_label(key[2])[0]}",
                                     {})
        low, high = metric_bounds(key[GROUP.index("metric")])
        rows.append({**dict(zip(GROUP, key)), "mean": mean, "std": std,
                     "ci95_low": float(np.clip(mean - half, low, high)),
                     "ci95_high": float(np.clip(mean + half, low, high)), "n_tasks": n,
                     "n_draws": int(group["n_draws"].max()),
                     "train_seconds": timing.get("train_seconds"),
                     "eval_seconds": timing.get("eval_seconds")})
    return pd.DataFrame(rows)


def _paired_test(tasks: pd.DataFrame, draws: pd.Series, learner: str, reference: str,
                 sign: float, rng_seed: int = 0) -> dict:
    """``learner`` against ``reference`` on one setting and metric: the mean difference,
    wins / losses per task and a Wilcoxon signed-rank test over tasks when there are at least
    10, else a paired bootstrap 95% interval of the mean difference over task x draw pairs.
    ``tasks``: per-task means (``learner, task, value``); ``draws``: values indexed by
    ``task, seed, draw, learner``; ``sign``: 1 when higher is better, else -1."""
    mine = tasks[tasks["learner"] == learner].set_index("task")["value"]
    ref_tasks = tasks[tasks["learner"] == reference].set_index("task")["value"]
    common = mine.index.intersection(ref_tasks.index)
    diff = sign * (mine[common] - ref_tasks[common])
    row = {"learner": learner, "baseline": reference, "mean_difference": sign * float(diff.mean()),
           "wins": int((diff > 0).sum()), "losses": int((diff < 0).sum()),
           "n_tasks": len(common)}
    if len(common) >= 10:
        nonzero = diff[diff != 0]
        p = stats.wilcoxon(nonzero).pvalue if len(nonzero) else 1.0
        row.update(test="Wilcoxon signed-rank", p_value=float(p))
    else:
        d = (draws.xs(learner, level="learner")
             - draws.xs(reference, level="learner")).dropna().to_numpy() * sign
        rng = np.random.default_rng(rng_seed)
        boots = [rng.choice(d, len(d)).mean() for _ in range(2000)] if len(d) else [np.nan]
        lo, hi = np.percentile(boots, [2.5, 97.5])
        row.update(test="paired bootstrap (task x draw)",
                   ci95=f"[{sign * lo:.4f}, {sign * hi:.4f}]")
    return row


def paired_comparisons(results: pd.DataFrame, protocol: str,
                       named_baseline: str | list[str] | None = None,
                       rng_seed: int = 0) -> pd.DataFrame:
    """Each learner against the best baseline (transfer or classic) per setting and main
    metric, and also against the suite's ``named_baseline`` (its ``baseline`` field, e.g.
    ``mf``, or a list of names) where that is another one: wins / losses per task, and a Wilcoxon signed-rank
    test over tasks when there are at least 10, else a paired bootstrap 95% interval of the
    mean difference over task x draw pairs (:func:`_paired_test`)."""
    r = _keys(results)
    rows = []
    for metric in MAIN_METRICS.get(protocol, []):
        sign = 1.0 if higher_is_better(metric) else -1.0
        m = r[r["metric"] == metric]
        for setting, group in m.groupby(["dataset", "shots", "support_size", "item_split"]):
            tasks = group.groupby(["learner", "family", "task"])["value"].mean().reset_index()
            base = tasks[tasks["family"].isin(BASELINE_FAMILIES)]
            if base.empty:
                continue
            best = base.groupby("learner")["value"].mean().mul(sign).idxmax()
            references = [best] + [name for name in _names(named_baseline)
                                   if name != best and name in set(base["learner"])]
            draws = group.set_index(["task", "seed", "draw", "learner"])["value"]
            for reference in references:
                for learner in tasks["learner"].unique():
                    if learner == reference:
                        continue
                    rows.append({"dataset": setting[0], "shots": setting[1],
                                 "support_size": setting[2], "item_split": setting[3],
                                 "metric": metric, **_paired_test(tasks, draws, learner,
                                                                  reference, sign, rng_seed)})
    return pd.DataFrame(rows)


def _names(baseline: str | list[str] | None) -> list[str]:
    """A suite's ``baseline`` field as a list of names."""
    if baseline is None:
        return []
    return [baseline] if isinstance(baseline, str) else list(baseline)


def strategy_comparisons(results: pd.DataFrame, protocol: str, baseline: str | None,
                         rng_seed: int = 0) -> pd.DataFrame:
    """A protocol with acquisition strategies: per learner and main metric, each strategy
    (rows of learner ``<learner>+<strategy>``) against the ``baseline`` strategy of the same
    learner (``protonet+ucb`` vs ``protonet+random``) at the last round (the largest
    ``support_size`` of the data set): the tests of :func:`_paired_test`, paired over test
    tasks (each task's strategies start from the same supports)."""
    if baseline is None or results.empty:
        return pd.DataFrame()
    r = _keys(results)
    r = r.assign(base_learner=[split_learner_label(x)[0] for x in r["learner"]])
    rows = []
    for metric in MAIN_METRICS.get(protocol, []):
        sign = 1.0 if higher_is_better(metric) else -1.0
        m = r[r["metric"] == metric]
        for (dataset, name), group in m.groupby(["dataset", "base_learner"], sort=False):
            last = max(group["support_size"], key=lambda v: float(v) if v else -1.0)
            group = group[group["support_size"] == last]
            reference = learner_label(name, baseline)
            if reference not in set(group["learner"]):
                continue
            tasks = group.groupby(["learner", "task"])["value"].mean().reset_index()
            draws = group.set_index(["task", "seed", "draw", "learner"])["value"]
            for learner in tasks["learner"].unique():
                if learner == reference:
                    continue
                rows.append({"dataset": dataset, "shots": group["shots"].iat[0],
                             "support_size": last, "item_split": group["item_split"].iat[0],
                             "metric": metric, **_paired_test(tasks, draws, learner, reference,
                                                              sign, rng_seed)})
    return pd.DataFrame(rows)


def round_table(summary: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The mean of ``metric`` per round: a row per learner and strategy (rows of learner
    ``<learner>+<strategy>``), a column per ``support_size`` (labelled molecules), in
    increasing order."""
    s = summary[summary["metric"] == metric]
    if s.empty:
        return pd.DataFrame()
    parts = [split_learner_label(x) for x in s["learner"]]
    s = s.assign(learner=[p[0] for p in parts], strategy=[p[1] or "" for p in parts])
    table = s.pivot_table(index=["learner", "strategy"], columns="support_size", values="mean",
                          aggfunc="first", sort=False)
    order = sorted(table.columns, key=lambda v: (pd.to_numeric(v, errors="coerce"), str(v)))
    table = table[order]
    table.columns = [str(c) for c in table.columns]
    return table.reset_index()


def _plot_points(summary: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, bool]:
    """What a plot of ``metric`` draws: per learner and support size, its x position and
    label, the mean and the error bar lengths below / above it, the interval clipped to the
    metric's range. Support sizes are numbers (a log2 axis) or labels such as ``melu`` (the
    MeLU protocol's supports; then evenly spaced, numbers first). Also: whether x is numeric."""
    s = summary[(summary["metric"] == metric) & (summary["item_split"].isin(["", "all"]))]
    labels = [str(v) for v in dict.fromkeys(s["support_size"].astype("string").fillna(""))]
    numbers = pd.to_numeric(pd.Series(labels, dtype=object), errors="coerce")
    numeric = bool(len(labels)) and bool(numbers.notna().all()) and bool((numbers > 0).all())
    if numeric:
        x_of = dict(zip(labels, numbers.astype(float)))
    else:
        order = sorted(range(len(labels)), key=lambda i: (pd.isna(numbers[i]),
                                                          numbers[i] if pd.notna(numbers[i])
                                                          else 0.0, labels[i]))
        x_of = {labels[i]: float(rank) for rank, i in enumerate(order)}
    low, high = metric_bounds(metric)
    label = s["support_size"].astype("string").fillna("").astype(str)
    points = pd.DataFrame({
        "learner": s["learner"].to_numpy(), "label": label.to_numpy(),
        "x": label.map(x_of).to_numpy(dtype=float), "mean": s["mean"].to_numpy(dtype=float),
        "err_low": (s["mean"] - s["ci95_low"].clip(lower=low)).clip(lower=0).fillna(0).to_numpy(),
        "err_high": (s["ci95_high"].clip(upper=high) - s["mean"]).clip(lower=0).fillna(0)
        .to_numpy(),
    })
    return points.sort_values(["learner", "x"], kind="stable"), numeric


def _plot(summary: pd.DataFrame, metric: str, title: str) -> bytes | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points, numeric = _plot_points(summary, metric)
    if points.empty:
        return None
    many = points["learner"].nunique() > 8  # a legend beside the axes, not over the lines
    fig, ax = plt.subplots(figsize=(8.5, 4) if many else (6, 4))
    ax.set_prop_cycle(color=plt.cm.tab20.colors)  # up to 20 learners, each its own colour
    for learner, group in points.groupby("learner", sort=True):
        ax.errorbar(group["x"], group["mean"], yerr=[group["err_low"], group["err_high"]],
                    marker="o", capsize=3, label=learner)
    ax.set_xlabel("support size")
    ax.set_ylabel(metric)
    if numeric:
        ax.set_xscale("log", base=2)
        # the sizes themselves as ticks: 5 and 10 on a log axis would show only "2^3"
        sizes = sorted(set(points["x"]))
        ax.set_xticks(sizes, [f"{v:g}" for v in sizes])
        ax.minorticks_off()
    else:
        ticks = points.drop_duplicates("x").sort_values("x")
        ax.set_xticks(ticks["x"], ticks["label"])
        ax.set_xlim(ticks["x"].min() - 0.5, ticks["x"].max() + 0.5)
    ax.set_title(title)
    if many:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    else:
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def reliability_points(reliability: pd.DataFrame) -> pd.DataFrame:
    """Per learner and non-empty bin, pooled over support sizes, tasks, seeds and draws:
    ``learner, bin, n, predicted`` (mean predicted probability) and ``observed`` (fraction
    of actives)."""
    if reliability.empty:
        return pd.DataFrame(columns=["learner", "bin", "n", "predicted", "observed"])
    pooled = (reliability.groupby(["learner", "bin"], sort=True)[["n", "sum_probability",
                                                                 "sum_label"]]
              .sum().reset_index())
    pooled = pooled[pooled["n"] > 0]
    return pd.DataFrame({"learner": pooled["learner"], "bin": pooled["bin"].astype(int),
                         "n": pooled["n"].astype(int),
                         "predicted": pooled["sum_probability"] / pooled["n"],
                         "observed": pooled["sum_label"] / pooled["n"]}).reset_index(drop=True)


def pooled_ece(reliability: pd.DataFrame) -> pd.DataFrame:
    """ECE over every test prediction of a learner at a support size at once (its bins
    summed over tasks, seeds and draws): ``learner, support_size, ece_pooled, n``. The
    ``ece`` metric is a mean over draws, each on one query of a few hundred molecules, so it
    carries each draw's finite-sample bias (``ece_floor``); pooled over ~10^5 predictions that
    bias is gone, and what remains is miscalibration (including across tasks: a task whose
    actives are rarer than its predictions say counts against it)."""
    columns = ["learner", "support_size", "ece_pooled", "n"]
    if reliability.empty:
        return pd.DataFrame(columns=columns)
    sums = (reliability.groupby(["learner", "support_size"], sort=False)
            .apply(lambda g: pd.Series({
                "ece_pooled": float(np.abs(g["sum_label"] - g["sum_probability"]).sum()
                                    / max(float(g["n"].sum()), 1.0)),
                "n": int(g["n"].sum())}), include_groups=False)
            .reset_index())
    sums["n"] = sums["n"].astype(int)
    return sums[columns]


def _reliability_plot(reliability: pd.DataFrame, title: str) -> bytes | None:
    """One reliability diagram, a line per learner (empty bins left out), the diagonal of
    perfect calibration dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = reliability_points(reliability)
    if points.empty:
        return None
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.set_prop_cycle(color=plt.cm.tab20.colors)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="calibrated")
    for learner, group in points.groupby("learner", sort=True):
        ax.plot(group["predicted"], group["observed"], marker="o", markersize=3, label=learner)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("predicted probability (bin mean)")
    ax.set_ylabel("observed frequency of actives")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def _calibration_text(record, members=None) -> str:
    """A learner's calibration from its ``timings.json`` entry, in a few words (an ensemble's:
    its ``members``, each calibrated on its own)."""
    if members:
        return f"none of its own: the mean of {', '.join(members)}, each with its calibration"
    if not isinstance(record, dict):
        return "none (no validation-fitted calibration)"
    method = record.get("method")
    if method == "temperature":
        return f"temperature T = {float(record['temperature']):.3g}"
    if method == "platt":
        return f"Platt a = {float(record['a']):.3g}, b = {float(record['b']):.3g}"
    if method == "conformal":
        return f"90% conformal ± {float(record['half_width']):.3g}"
    return f"none: {record.get('reason', 'not fitted')}"


def _calibration_section(out: Path, part, label: str, s: pd.DataFrame, timings: dict,
                         reliability: pd.DataFrame) -> tuple[list[str], dict[str, bytes]]:
    """The Markdown of a data set's calibration section and its plot (none for a protocol
    without calibration metrics)."""
    metrics = [m for m in ("ece", "ece_floor", "brier", "coverage@90", "interval_width")
               if m in set(s["metric"])]
    if not metrics:
        return [], {}
    md = ["### Calibration", "",
          "Calibrations are fitted on validation tasks only, after training (temperature "
          "scaling of probabilities; a 90% split-conformal interval of ratings); `ece` uses 15 "
          "equal-width bins; `coverage@90` should be near 0.9.", ""]
    learners = list(dict.fromkeys(s["learner"]))
    entries = [timings.get(f"{part.name}|{label}|{split_learner_label(n)[0]}", {})
               for n in learners]
    fitted = pd.DataFrame({"learner": learners, "calibration": [
        _calibration_text(entry.get("calibration"), entry.get("members")) for entry in entries]})
    md += [_table(fitted), ""]
    view = s[s["metric"].isin(metrics) & s["item_split"].isin(["", "all"])][[
        "learner", "shots", "support_size", "metric", "mean", "ci95_low", "ci95_high",
        "n_tasks"]]
    md += [_table(view), ""]
    images = {}
    mine = reliability[(reliability["suite"] == part.name) & (reliability["dataset"] == label)] \
        if not reliability.empty else reliability
    pooled = pooled_ece(mine)
    if not pooled.empty:
        md += ["`ece` above is a mean over draws, each scored on one query; `ece_floor` is "
               "what exact probabilities would score on the same queries (a sample of a few "
               "hundred molecules keeps ECE above 0). Pooled over every test prediction, "
               "the ECE of each learner (`ece_pooled`, from `reliability.csv`):", "",
               _table(pooled.pivot(index="learner", columns="support_size",
                                   values="ece_pooled").reset_index()
                      .rename(columns=lambda c: c if c == "learner"
                              else f"ece_pooled@{c}")), ""]
    png = _reliability_plot(mine, f"{label}: reliability (test tasks pooled)")
    if png:
        name = f"plot_{file_slug(label)}_reliability.png"
        (out / name).write_bytes(png)
        md += [f"![reliability diagram]({name})", ""]
        images[name] = png
    return md, images


def _read_reliability(out: Path) -> pd.DataFrame:
    path = out / "reliability.csv"
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame(columns=["suite", "dataset", "learner", "bin", "n",
                                     "sum_probability", "sum_label"])
    return pd.read_csv(path)


def _read_timings(out: Path) -> dict:
    path = out / "timings.json"
    try:
        return json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):
        return {}


INT_COLUMNS = {"n_tasks", "n_draws", "wins", "losses", "shots", "support_size"}


def _cell(value, column: str, digits: int) -> str:
    if pd.isna(value):
        return ""
    if column in INT_COLUMNS:
        return str(int(value))
    return f"{value:.1f}" if column.endswith("seconds") else f"{value:.{digits}f}"


def _md_cell(value) -> str:
    """A Markdown table cell: empty for a missing value, ``|`` escaped so that it stays one cell."""
    if not isinstance(value, str) and pd.isna(value):
        return ""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(frame: pd.DataFrame, digits: int = 4) -> str:
    frame = frame.copy()
    for col in frame.select_dtypes("number"):
        frame[col] = frame[col].map(lambda v, c=col: _cell(v, c, digits))
    header = "| " + " | ".join(map(_md_cell, frame.columns)) + " |"
    sep = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(map(_md_cell, row)) + " |" for row in frame.to_numpy()]
    return "\n".join([header, sep, *body])


def machine_text(run_info: dict) -> str:
    """The machine of a run; where a folder's learners were measured on several (other
    thread counts, another host), each with its learners, and the learners run before
    machines were recorded per learner."""
    machines = run_info.get("machines") or {}
    if len(machines) < 2:
        return run_info["machine"]
    listed = {n for names in machines.values() for n in names}
    others = [n for part in run_info.get("parts") or []
              for n in part.get("learners_in_results", []) if n not in listed]
    text = "; ".join(f"{m} ({', '.join(names)})" for m, names in machines.items())
    return text + (f"; not recorded ({', '.join(dict.fromkeys(others))})" if others else "")


def _evaluated_model_lines(run_info: dict) -> list[str]:
    """What an ``evaluate`` report scored (a saved model, no training here); none for a
    bench run."""
    if "model" not in run_info:
        return []
    config = run_info.get("model_config") or {}
    learner = (config.get("learner") or {}).get("name", "unknown learner")
    text = (f"Scored without training: the saved model `{run_info['model']}` ({learner}, "
            f"trained on {config.get('dataset', 'an unrecorded data set')}).")
    if not run_info.get("split_checked", True):
        text += (" It was saved without its training tasks, so that none of them is a test "
                 "task here could not be checked.")
    return [text, ""]


def write_reports(out: Path, results: pd.DataFrame, summary: pd.DataFrame, parts, run_info: dict,
                  data_dir=None) -> None:
    """``report.md``, ``report.html`` (self-contained: plots embedded) and
    ``plot_<dataset>_<metric>.png`` (the data set's name made safe for a file name: a card
    given as a path becomes its file's stem and a short hash of the path); with
    ``reliability.csv`` in ``out``, ``plot_<dataset>_reliability.png`` too."""
    md = [f"# Benchmark report: {run_info['suite']} ({run_info['preset']} preset)", "",
          f"Machine: {machine_text(run_info)}; device {run_info['device']}; git "
          f"{', '.join(run_info.get('git_revisions') or [run_info.get('git_revision') or 'unknown'])}"
          ".", "", *_evaluated_model_lines(run_info),
          "Measured rows: mean over test tasks of the per-task mean over draws and seeds; "
          "95% t-interval over tasks, clipped to the metric's range. Published rows are "
          "quoted, never measured here.", ""]
    images = {}  # plot file name -> PNG, embedded in report.html
    comparisons = []
    reliability = _read_reliability(out)
    timings = _read_timings(out)
    for part in parts:
        label = getattr(part, "label", part.dataset)  # the rows' dataset: with its options
        s = summary[(summary["suite"] == part.name) & (summary["dataset"] == label)]
        options = getattr(part, "dataset_options", None)
        loaded = ("; data set " + part.dataset + " loaded with " + ", ".join(
            f"{k} = {v}" for k, v in options.items())) if options else ""
        md += [f"## {label} ({part.protocol} protocol{loaded})", ""]
        if getattr(part, "train_suite", None):
            md += [f"Learners that train (meta-learners and transfer baselines) were trained "
                   f"by the suite `{part.train_suite}`, on its data set and settings, and scored "
                   f"here on {part.dataset}'s test tasks; classic baselines were fitted on "
                   f"each support set of {part.dataset}.", ""]
        strategies = getattr(part, "strategies", None)
        # what a protocol with strategies says of its rounds (its PROTOCOLS entry's
        # strategy_note and support_noun; the active protocol's by default)
        about = PROTOCOLS.get(part.protocol).meta if strategies else {}
        rounds = about.get("support_noun", "labelled")
        if strategies:
            md += [f"Strategies: {', '.join(strategies)}; rows of learner "
                   "`<learner>+<strategy>`; " + about.get("strategy_note",
                   "support_size = labelled molecules after the round "
                   "(the first: the initial stratified support). `actives_found` counts the "
                   "initial support's actives, `actives_acquired` (summary.csv) does not; "
                   "ΔAUPRC and ROC-AUC score the model adapted on the labelled molecules on "
                   "the molecules that strategy never acquired."), ""]
        for metric in MAIN_METRICS.get(part.protocol, []):
            view = s[s["metric"] == metric][["learner", "family", "shots", "support_size",
                                             "item_split", "mean", "ci95_low", "ci95_high",
                                             "n_tasks", "n_draws", "train_seconds"]]
            if view.empty:
                continue
            if strategies:  # one row per learner and strategy, a column per round
                columns = "labelled molecules" if rounds == "labelled" else rounds
                md += [f"### {metric} per round (mean over test tasks; columns: {columns})",
                       "", _table(round_table(s, metric)), ""]
            else:
                md += [f"### {metric}", "", _table(view), ""]
            png = _plot(s, metric, f"{label}: {metric}")
            if png:
                name = f"plot_{file_slug(label)}_{file_slug(metric.replace('@', 'at'))}.png"
                (out / name).write_bytes(png)
                md += [f"![{metric} vs support size]({name})", ""]
                images[name] = png
        section, plots = _calibration_section(out, part, label, s, timings, reliability)
        md += section
        images.update(plots)
        mine = results[(results["suite"] == part.name) & (results["dataset"] == label)]
        if strategies:
            comp = strategy_comparisons(mine, part.protocol, part.baseline)
            comparisons.append(comp)
            if not comp.empty:
                md += [f"### Paired comparison of each strategy with `{part.baseline}` at the "
                       f"last round ({comp['support_size'].iat[0]} {rounds})", "",
                       _table(comp), ""]
            comp = pd.DataFrame()
        else:
            comp = paired_comparisons(mine, part.protocol, named_baseline=part.baseline)
            comparisons.append(comp)
        if not comp.empty:
            named = [n for n in _names(part.baseline) if n in set(comp["baseline"])]
            md += ["### Paired comparison with the best baseline"
                   + (" and with " + ", ".join(f"`{n}`" for n in named) if named else ""), "",
                   _table(comp), ""]
        pub = published_rows(part.published, part.dataset, data_dir or run_info["data_dir"])
        if not pub.empty:
            pub = pub.groupby(["method", "metric", "support_size"], dropna=False)["mean"].first().reset_index()
            md += ["### Published (not measured here)", "", _table(pub.assign(kind="published")), ""]
    (out / "report.md").write_text("\n".join(md), encoding="utf-8")
    # results.csv can be large; the comparisons are small enough to commit beside summary.csv.
    pd.concat(comparisons, ignore_index=True).to_csv(out / "comparisons.csv", index=False)
    (out / "report.html").write_text(report_html(md, images, f"Benchmark report: {run_info['suite']}"),
                                     encoding="utf-8")


# Wide tables scroll sideways inside their box instead of running off the page.
REPORT_CSS = """
body { font-family: sans-serif; max-width: 75em; margin: auto; padding: 0 1em; }
.table-scroll { overflow-x: auto; max-width: 100%; margin: 0.5em 0 1em; }
table { border-collapse: collapse; font-size: 90%; }
th, td { border: 1px solid #ccc; padding: 2px 6px; white-space: nowrap; text-align: left; }
thead th { background: #f2f2f2; }
tbody tr:nth-child(even) { background: #fafafa; }
img { max-width: 100%; height: auto; }
code { background: #f2f2f2; padding: 0 2px; }
"""


def report_html(md: list[str], images: dict[str, bytes], title: str) -> str:
    """report.md's lines as one self-contained HTML page: rendered by the ``markdown``
    package (its ``tables`` extension: a thead row of headers, a tbody row per table line),
    with the plots the Markdown links to (``images``: file name -> PNG) embedded as data URIs."""
    import markdown

    text = "\n".join(md)
    for name, png in images.items():
        text = text.replace(f"]({name})", f"](data:image/png;base64,{base64.b64encode(png).decode()})")
    body = markdown.markdown(text, extensions=["tables"], output_format="html")
    body = body.replace("<table>", "<div class=\"table-scroll\"><table>").replace(
        "</table>", "</table></div>")
    return ("<!doctype html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{REPORT_CSS}</style></head>\n<body>\n"
            f"{body}\n</body></html>\n")
