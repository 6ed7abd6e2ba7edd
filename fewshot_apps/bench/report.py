"""Summaries, paired comparisons, plots and the Markdown / HTML reports of a suite run."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from fewshot_apps.bench.published import published_rows

GROUP = ["suite", "dataset", "learner", "family", "shots", "support_size", "item_split", "metric"]
LOWER_IS_BETTER = {"mae", "rmse"}
MAIN_METRICS = {"k-shot": ["roc_auc"], "fsmol": ["delta_auprc"], "cold-start": ["mae", "recall@10"]}
HEADLINE_METRICS = {m for metrics in MAIN_METRICS.values() for m in metrics}
BASELINE_FAMILIES = ("transfer", "classic")


def _keys(frame: pd.DataFrame) -> pd.DataFrame:
    """Empty cells (shots, item_split) as '' so that groupby keeps them."""
    frame = frame.copy()
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
    """``summary.csv``: mean over tasks of per-task means, std, t-interval over tasks."""
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
        timing = (timings or {}).get(f"{key[0]}|{key[1]}|{key[2]}", {})
        rows.append({**dict(zip(GROUP, key)), "mean": mean, "std": std,
                     "ci95_low": mean - half, "ci95_high": mean + half, "n_tasks": n,
                     "n_draws": int(group["n_draws"].max()),
                     "train_seconds": timing.get("train_seconds"),
                     "eval_seconds": timing.get("eval_seconds")})
    return pd.DataFrame(rows)


def paired_comparisons(results: pd.DataFrame, protocol: str, named_baseline: str | None = None,
                       rng_seed: int = 0) -> pd.DataFrame:
    """Each learner against the best baseline (transfer or classic) per setting and main
    metric, and also against the suite's ``named_baseline`` (its ``baseline`` field, e.g.
    ``mf``) where that is another one: wins / losses per task, and a Wilcoxon signed-rank
    test over tasks when there are at least 10, else a paired bootstrap 95% interval of the
    mean difference over task x draw pairs."""
    r = _keys(results)
    rows = []
    for metric in MAIN_METRICS.get(protocol, []):
        sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
        m = r[r["metric"] == metric]
        for setting, group in m.groupby(["dataset", "shots", "support_size", "item_split"]):
            tasks = group.groupby(["learner", "family", "task"])["value"].mean().reset_index()
            base = tasks[tasks["family"].isin(BASELINE_FAMILIES)]
            if base.empty:
                continue
            best = base.groupby("learner")["value"].mean().mul(sign).idxmax()
            references = [best]
            if named_baseline not in (None, best) and named_baseline in set(base["learner"]):
                references.append(named_baseline)
            draws = group.set_index(["task", "seed", "draw", "learner"])["value"]
            for reference in references:
                ref_tasks = tasks[tasks["learner"] == reference].set_index("task")["value"]
                for learner in tasks["learner"].unique():
                    if learner == reference:
                        continue
                    mine = tasks[tasks["learner"] == learner].set_index("task")["value"]
                    common = mine.index.intersection(ref_tasks.index)
                    diff = sign * (mine[common] - ref_tasks[common])
                    row = {"dataset": setting[0], "shots": setting[1],
                           "support_size": setting[2], "item_split": setting[3],
                           "metric": metric, "learner": learner, "baseline": reference,
                           "mean_difference": sign * float(diff.mean()),
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
                        boots = ([rng.choice(d, len(d)).mean() for _ in range(2000)]
                                 if len(d) else [np.nan])
                        lo, hi = np.percentile(boots, [2.5, 97.5])
                        row.update(test="paired bootstrap (task x draw)",
                                   ci95=f"[{sign * lo:.4f}, {sign * hi:.4f}]")
                    rows.append(row)
    return pd.DataFrame(rows)


def _plot(summary: pd.DataFrame, metric: str, title: str) -> bytes | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = summary[(summary["metric"] == metric) & (summary["item_split"].isin(["", "all"]))]
    if s.empty:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.set_prop_cycle(color=plt.cm.tab20.colors)  # up to 20 learners, each its own colour
    for learner, group in s.groupby("learner"):
        group = group.assign(x=group["support_size"].astype(float)).sort_values("x")
        ax.errorbar(group["x"], group["mean"], yerr=(group["ci95_high"] - group["mean"]).fillna(0),
                    marker="o", capsize=3, label=learner)
    ax.set_xlabel("support size")
    ax.set_ylabel(metric)
    ax.set_xscale("log", base=2)
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


INT_COLUMNS = {"n_tasks", "n_draws", "wins", "losses", "shots", "support_size"}


def _cell(value, column: str, digits: int) -> str:
    if pd.isna(value):
        return ""
    if column in INT_COLUMNS:
        return str(int(value))
    return f"{value:.1f}" if column.endswith("seconds") else f"{value:.{digits}f}"


def _table(frame: pd.DataFrame, digits: int = 4) -> str:
    frame = frame.copy()
    for col in frame.select_dtypes("number"):
        frame[col] = frame[col].map(lambda v, c=col: _cell(v, c, digits))
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    sep = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(map(str, row)) + " |" for row in frame.astype(str).to_numpy()]
    return "\n".join([header, sep, *body])


def write_reports(out: Path, results: pd.DataFrame, summary: pd.DataFrame, parts, run_info: dict,
                  data_dir=None) -> None:
    """``report.md``, ``report.html`` (self-contained) and ``plot_<dataset>_<metric>.png``."""
    md = [f"# Benchmark report: {run_info['suite']} ({run_info['preset']} preset)", "",
          f"Machine: {run_info['machine']}; device {run_info['device']}; git "
          f"{', '.join(run_info.get('git_revisions') or [run_info.get('git_revision') or 'unknown'])}"
          ".", "",
          "Measured rows: mean over test tasks of the per-task mean over draws and seeds; "
          "95% t-interval over tasks. Published rows are quoted, never measured here.", ""]
    html_parts = []
    comparisons = []
    for part in parts:
        s = summary[(summary["suite"] == part.name) & (summary["dataset"] == part.dataset)]
        md += [f"## {part.dataset} ({part.protocol} protocol)", ""]
        for metric in MAIN_METRICS.get(part.protocol, []):
            view = s[s["metric"] == metric][["learner", "family", "shots", "support_size",
                                             "item_split", "mean", "ci95_low", "ci95_high",
                                             "n_tasks", "n_draws", "train_seconds"]]
            if view.empty:
                continue
            md += [f"### {metric}", "", _table(view), ""]
            png = _plot(s, metric, f"{part.dataset}: {metric}")
            if png:
                name = f"plot_{part.dataset}_{metric.replace('@', 'at')}.png"
                (out / name).write_bytes(png)
                md += [f"![{metric} vs support size]({name})", ""]
                html_parts.append((f"{part.dataset}: {metric}", png))
        comp = paired_comparisons(results[(results["suite"] == part.name)
                                          & (results["dataset"] == part.dataset)], part.protocol,
                                  named_baseline=part.baseline)
        comparisons.append(comp)
        if not comp.empty:
            md += ["### Paired comparison with the best baseline"
                   + (f" and with `{part.baseline}`" if part.baseline else ""), "",
                   _table(comp), ""]
        pub = published_rows(part.published, part.dataset, data_dir or run_info["data_dir"])
        if not pub.empty:
            pub = pub.groupby(["method", "metric", "support_size"], dropna=False)["mean"].first().reset_index()
            md += ["### Published (not measured here)", "", _table(pub.assign(kind="published")), ""]
    (out / "report.md").write_text("\n".join(md), encoding="utf-8")
    # results.csv can be large; the comparisons are small enough to commit beside summary.csv.
    pd.concat(comparisons, ignore_index=True).to_csv(out / "comparisons.csv", index=False)
    body = "\n".join(_markdown_to_html(md, html_parts))
    (out / "report.html").write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>fewshot-apps report</title>"
        "<style>body{font-family:sans-serif;max-width:70em;margin:auto}table{border-collapse:"
        "collapse}td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%}</style></head><body>"
        + body + "</body></html>", encoding="utf-8")


def _markdown_to_html(md: list[str], images: list[tuple[str, bytes]]) -> list[str]:
    """The few Markdown forms report.md uses, with plots embedded as data URIs."""
    images_by_alt = iter(images)
    out, table = [], []

    def flush():
        if table:
            rows = [r.strip("|").split("|") for r in table if not set(r) <= set("|-")]
            out.append("<table>" + "".join(
                "<tr>" + "".join(f"<{'th' if i == 0 else 'td'}>{html.escape(c.strip())}</{'th' if i == 0 else 'td'}>"
                                 for c in row) + "</tr>" for i, row in enumerate(rows)) + "</table>")
            table.clear()

    for line in md:
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level}>{html.escape(line.lstrip('#').strip())}</h{level}>")
        elif line.startswith("!["):
            title, png = next(images_by_alt)
            data = base64.b64encode(png).decode()
            out.append(f"<img alt='{html.escape(title)}' src='data:image/png;base64,{data}'>")
        elif line:
            out.append(f"<p>{html.escape(line)}</p>")
    flush()
    return out
