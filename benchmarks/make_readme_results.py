"""Regenerate README.md's results section from the committed results in benchmarks/results/.

Reads every ``benchmarks/results/<suite>/summary.csv`` written by ``fewshot-apps bench`` (with
its ``run.json``) and ``benchmarks/results/tox21_10shot/summary.json`` written by
``benchmarks/tox21_10shot.py``, and rewrites the text between the README's
``<!-- results:start -->`` and ``<!-- results:end -->`` markers.

    python benchmarks/make_readme_results.py
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from fewshot_apps.bench.published import PAR_TABLE
from fewshot_apps.bench.report import (
    BASELINE_FAMILIES,
    HEADLINE_METRICS,
    MAIN_METRICS,
    machine_text,
)
from fewshot_apps.bench.suites import load_suites, split_learner_label
from fewshot_apps.core.metrics import higher_is_better
from fewshot_apps.core.registry import ENSEMBLE_FAMILY, META_LEARNING_FAMILIES, model_family

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
START, END = "<!-- results:start -->", "<!-- results:end -->"
LABELS = {"roc_auc": "ROC-AUC", "delta_auprc": "ΔAUPRC", "mae": "MAE", "recall@10": "recall@10"}
HEADLINE = {m: LABELS.get(m, m) for m in HEADLINE_METRICS}
# A reference run and the folders that continue it: learners run later, at a later revision,
# with the suite's baselines beside them (the gitignored per-draw rows of the first run are
# not committed, so a later learner cannot join its report). Where a learner is in several,
# the later folder's rows count.
RUN_GROUPS = {
    "fsmol-full": ("fsmol-full", "fsmol-full-more", "fsmol-full-later",
                   "fsmol-full-support64", "fsmol-full-protonet-q64",
                   "fsmol-full-protonet-evalridge", "fsmol-full-protonet-ridge-by-support"),
    "fsmol-published": ("fsmol-published", "fsmol-published-more", "fsmol-published-dkt64",
                        "fsmol-published-ensemble"),
    "fsmol-fingerprint-full": ("fsmol-fingerprint-full", "fsmol-fingerprint-full-protonet-ridge"),
    "muv-fsmol-full": ("muv-fsmol-full", "muv-fsmol-full-ensemble"),
    "movielens-latest-small-full": ("movielens-latest-small-full",
                                    "movielens-latest-small-full-more"),
}


def _group(name: str) -> tuple[str, ...]:
    """The folders of reference run ``name`` (itself alone when nothing continues it)."""
    return RUN_GROUPS.get(name, (name,))


def _group_of(folder: str) -> tuple[str, ...]:
    """The folders of the run group that ``folder`` belongs to."""
    return next((group for group in RUN_GROUPS.values() if folder in group), (folder,))


def _read_csv(path: Path) -> pd.DataFrame | None:
    """The table at ``path``; None when there is none or it is empty (a run with no pairs to
    compare writes an empty comparisons.csv)."""
    try:
        return pd.read_csv(path)
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return None


def _read_group(name: str, file: str, keys: list[str]) -> pd.DataFrame | None:
    """``file`` of every folder of reference run ``name``, the later folder's row kept where
    two share ``keys``; None when no folder has it."""
    frames = [frame for folder in _group(name)
              if (frame := _read_csv(RESULTS / folder / file)) is not None]
    if not frames:
        return None
    table = pd.concat(frames, ignore_index=True)
    keys = [k for k in keys if k in table.columns]
    # item_split is empty for molecule runs: NaN keys compare equal in drop_duplicates
    return table.drop_duplicates(keys, keep="last").reset_index(drop=True)


def _summary(name: str) -> pd.DataFrame | None:
    return _read_group(name, "summary.csv",
                       ["dataset", "learner", "metric", "support_size", "item_split"])


def _learner_names(summary: pd.DataFrame) -> pd.Series:
    """Each row's learner without its acquisition strategy (``protonet+ucb`` -> ``protonet``)."""
    return summary["learner"].map(lambda label: split_learner_label(label)[0])


def _learners_in(folder: str) -> set[str]:
    """The learners whose rows are in ``folder``'s summary."""
    summary = _read_csv(RESULTS / folder / "summary.csv")
    return set() if summary is None else set(_learner_names(summary))


def _comparisons(name: str) -> pd.DataFrame | None:
    return _read_group(name, "comparisons.csv", ["dataset", "learner", "baseline", "metric",
                                                  "support_size", "item_split"])


def _reliability(name: str) -> pd.DataFrame | None:
    """reliability.csv of reference run ``name``: each learner's bins from the latest folder
    of the group that has them; None when no folder has the file."""
    frames = {}
    for folder in _group(name):
        path = RESULTS / folder / "reliability.csv"
        if path.exists():
            table = pd.read_csv(path)
            for learner, rows in table.groupby("learner"):
                frames[learner] = rows
    return pd.concat(frames.values(), ignore_index=True) if frames else None


def tox21_section() -> list[str]:
    path = RESULTS / "tox21_10shot" / "summary.json"
    if not path.exists():
        return []
    rows = json.loads(path.read_text())
    lines = [
        "### Tox21 10-shot, meta-learners trained here (`benchmarks/tox21_10shot.py`)",
        "",
        "Meta-trained on Tox21's 8 training tasks (SR-ATAD5 held out for model selection), at "
        "most 10 minutes of training each; test: SR-HSE, SR-MMP, SR-p53, 10 draws x 3 seeds of "
        "10 positives + 10 negatives, query = every other labelled molecule.",
        "",
        "| learner | mean test ROC-AUC | SR-HSE | SR-MMP | SR-p53 | steps | best step | training | machine |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        t = r["per_task"]
        lines.append(
            f"| {r['learner']} | **{r['mean_test_roc_auc']:.3f}** | {t['SR-HSE']:.3f} | "
            f"{t['SR-MMP']:.3f} | {t['SR-p53']:.3f} | {r['steps']} | {r['best_step']} | "
            f"{r['train_seconds'] / 60:.1f} min | {r['machine']} |"
        )
    for extra in sorted((RESULTS / "tox21_10shot").glob("*_under_load.json")):
        r = json.loads(extra.read_text())
        lines.append(f"\nAlso measured: {r['learner']} {r['mean_test_roc_auc']:.3f} ({r['note']}; "
                     f"`{extra.relative_to(ROOT)}`). cnp and maml above also shared the cores "
                     "with other jobs, so they ran fewer steps in their budget.")
    settings = rows[0]["settings"] if rows else {}
    sets = " ".join(f"--set {k}={v}" for k, v in settings.items()
                    if k not in ("steps", "eval_every", "checkpoint_every", "device"))
    lines += ["", "```bash", f"python benchmarks/tox21_10shot.py --learners "
              f"{','.join(r['learner'] for r in rows)} --steps {settings.get('steps', 3000)} "
              f"{sets} --set eval_every=100", "```", ""]
    return lines


# Published numbers the reference runs are measured against (quoted, not measured here):
# FS-Mol (Stanley et al. 2021) ΔAUPRC at support 16; PAR / EGNN 10-shot ROC-AUC on Tox21.
FSMOL_TARGETS = {"ProtoNet": 0.211, "GNN-MT": 0.117, "RF": 0.098}
# Issue 14: the count-ECFP prototypical network of ../shared/REFERENCES.md (same 2 cores) and
# the best published learner (ADKF-IFT) at support 16.
FINGERPRINT_REFERENCE = {16: 0.209, 32: 0.234, 64: 0.252}
ISSUE14_BEST = 0.23
# The published learners our meta-learners stand in for, and their ΔAUPRC at support 16
# (FS-Mol's and ADKF-IFT's per-task CSVs in the data directory's fsmol/published/).
PUBLISHED_COUNTERPARTS = {"protonet": ("FS-Mol's ProtoNet", 0.211), "maml": ("FS-Mol's MAML", 0.165),
                          "dkt": ("ADKF-IFT's DKT", 0.220), "cnp": ("ADKF-IFT's CNP", 0.190)}
TOX21_TARGET = 0.82
# Issue 16: ECE of the best FS-Mol learner at support 64, coverage of the 90% rating interval.
ISSUE16_ECE = 0.05
ISSUE16_COVERAGE = (0.87, 0.93)


def _best(summary: pd.DataFrame, metric: str, size: int, families=META_LEARNING_FAMILIES,
          lower_is_better: bool = False) -> pd.Series | None:
    rows = summary[(summary["metric"] == metric) & (summary["support_size"] == size)
                   & summary["family"].isin(families)
                   & summary["item_split"].astype("string").fillna("all").eq("all")]
    if rows.empty:
        return None
    return rows.loc[rows["mean"].idxmin() if lower_is_better else rows["mean"].idxmax()]


def _duration(seconds) -> str:
    if pd.isna(seconds) or seconds < 0.5:
        return "none"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def targets_section() -> list[str]:
    """Issue 5's targets, each with the measured number beside it."""
    lines = []
    s = _summary("fsmol-full")
    if s is not None:
        best = _best(s, "delta_auprc", 16)
        if best is not None:
            lines.append(f"| FS-Mol ΔAUPRC, support 16 | >= {FSMOL_TARGETS['ProtoNet']} "
                         f"(FS-Mol's ProtoNet) | {best['learner']} {best['mean']:.3f} | "
                         f"{_met(best['mean'] >= FSMOL_TARGETS['ProtoNet'])} |")
        base = _best(s, "delta_auprc", 16, families=BASELINE_FAMILIES)
        if base is not None:
            lines.append(f"| FS-Mol ΔAUPRC, support 16: our best baseline, for context | | "
                         f"{base['learner']} {base['mean']:.3f} | |")
        for family in META_LEARNING_FAMILIES:
            top = _best(s, "delta_auprc", 16, families=(family,))
            floor = max(FSMOL_TARGETS["GNN-MT"], FSMOL_TARGETS["RF"])
            lines.append(f"| FS-Mol ΔAUPRC, support 16, best {family} learner | > "
                         f"{FSMOL_TARGETS['GNN-MT']} (GNN-MT), > {FSMOL_TARGETS['RF']} (RF) | "
                         + (f"{top['learner']} {top['mean']:.3f} | {_met(top['mean'] > floor)} |"
                            if top is not None else "not run yet | |"))
    lines += published_counts_rows(s)
    path = RESULTS / "tox21-disjoint-full" / "summary.csv"  # its published-split rows
    if path.exists():
        published = pd.read_csv(path).query("dataset == 'tox21'")
        best = _best(published, "roc_auc", 20)
        base = _best(published, "roc_auc", 20, families=BASELINE_FAMILIES)
        if best is not None:
            lines.append(f"| Tox21 10-shot ROC-AUC | >= {TOX21_TARGET} (EGNN 0.812, PAR ~0.821) "
                         f"| {best['learner']} {best['mean']:.3f} | "
                         f"{_met(best['mean'] >= TOX21_TARGET)} |")
            if base is not None:
                lines.append(f"| Tox21 10-shot ROC-AUC: our best baseline, for context | | "
                             f"{base['learner']} {base['mean']:.3f} | |")
    s, comp = _summary("movielens-latest-small-full"), _comparisons("movielens-latest-small-full")
    if s is not None and comp is not None:
        for metric in MAIN_METRICS["cold-start"]:
            lower = not higher_is_better(metric)
            best = _best(s, metric, 10, lower_is_better=lower)
            mf = s[(s["learner"] == "mf") & (s["metric"] == metric) & (s["support_size"] == 10)
                   & s["item_split"].eq("all")]
            test = comp[(comp["learner"] == best["learner"]) & (comp["baseline"] == "mf")
                        & (comp["metric"] == metric) & (comp["support_size"] == 10)
                        & comp["item_split"].eq("all")] if best is not None else comp.iloc[:0]
            if best is None or mf.empty or test.empty:
                continue
            t = test.iloc[0]
            better = best["mean"] < mf["mean"].iloc[0] if lower else best["mean"] > mf["mean"].iloc[0]
            lines.append(f"| MovieLens cold start, support 10, {metric} | beat mf "
                         f"({mf['mean'].iloc[0]:.3f}) | {best['learner']} {best['mean']:.3f}; "
                         f"{t['wins']} users better, {t['losses']} worse, Wilcoxon "
                         f"p = {t['p_value']:.2g} | {_met(better and t['p_value'] < 0.05)} |")
    if not lines:
        return []
    return ["### Targets (issue 5)", "",
            "Best meta-learner of the `full` reference runs against the published numbers "
            "(quoted, not measured here). \"met\" for MovieLens also needs p < 0.05.", "",
            "| target | threshold | measured | |", "|---|---|---|---|", *lines, ""]


def published_counts_rows(full: pd.DataFrame | None) -> list[str]:
    """The learners trained at the published episode counts (the `published` preset), each
    against its published counterpart at support 16, with the `full` preset's number beside."""
    s = _summary("fsmol-published")
    if s is None:
        return []
    lines = []
    for learner, (method, published) in PUBLISHED_COUNTERPARTS.items():
        ours = _delta_auprc(s, learner, 16)
        if ours is None:
            continue
        at_full = _delta_auprc(full, learner, 16) if full is not None else None
        # the group's last folder with the learner: its rows are the ones kept
        folder = [f for f in _group("fsmol-published") if learner in _learners_in(f)][-1]
        lines.append(f"| FS-Mol ΔAUPRC, support 16, `{learner}` at the published episode "
                     f"counts (`{folder}`) | >= {published:.3f} ({method}) | {ours:.3f}"
                     + (f" (full preset: {at_full:.3f})" if at_full is not None else "")
                     + f" | {_met(ours >= published)} |")
    return lines


def _delta_auprc(summary: pd.DataFrame, learner: str, size: int) -> float | None:
    row = summary[(summary["learner"] == learner) & (summary["metric"] == "delta_auprc")
                  & (summary["support_size"] == size)]
    return None if row.empty else float(row["mean"].iloc[0])


def _shown(measured: float, threshold: float) -> str:
    """``measured`` to 3 decimals, or 4 where 3 would round a miss up to the threshold."""
    if measured < threshold <= round(measured, 3):
        return f"{measured:.4f}"
    return f"{measured:.3f}"


def _against_finetune(comp: pd.DataFrame, learner: str) -> tuple[str, bool]:
    """``learner``'s paired test against finetune at support 16 (ΔAUPRC) in ``comp``: the
    text, and whether it is above (Wilcoxon p < 0.05 with more tasks better)."""
    test = comp[(comp["learner"] == learner) & (comp["baseline"] == "finetune")
                & (comp["metric"] == "delta_auprc") & (comp["support_size"] == 16)]
    if test.empty:
        return "", False
    r = test.iloc[0]
    return (f"; vs finetune: {r['wins']} tasks better, {r['losses']} worse, "
            f"p = {r['p_value']:.2g}"), bool(r["p_value"] < 0.05 and r["wins"] > r["losses"])


def _meta_learner_ensembles(run: str) -> dict[str, list[str]]:
    """The ensembles of reference run ``run`` whose members are all meta-learners: ``{learner:
    members}``, from the ``members`` each folder's timings.json records."""
    out = {}
    for folder in _group(run):
        path = RESULTS / folder / "timings.json"
        for key, entry in (json.loads(path.read_text()) if path.exists() else {}).items():
            members = entry.get("members")
            if members and all(model_family(m) in META_LEARNING_FAMILIES for m in members):
                out[key.rsplit("|", 1)[-1]] = list(members)
    return out


def fsmol_targets_section(run: str, title: str, protonet: bool = True) -> list[str]:
    """Issue 14's FS-Mol targets, measured on reference run ``run`` (a full run of `fsmol`,
    the GNN, or of `fsmol-fingerprint`; the `published` run of `fsmol`); ``protonet=False``
    leaves out protonet's rows (where the run's protonet predates its suite's settings)."""
    s = _summary(run)
    if s is None:
        return []
    comp = _comparisons(run)
    if comp is None:
        comp = pd.DataFrame(columns=["learner", "baseline", "metric", "support_size"])
    lines = []
    best = _best(s, "delta_auprc", 16)
    if best is not None:
        tested, above = _against_finetune(comp, best["learner"])
        lines.append(f"| best meta-learner, support 16 | >= {ISSUE14_BEST} and above finetune "
                     f"(p < 0.05) | {best['learner']} {best['mean']:.3f}{tested} | "
                     f"{_met(best['mean'] >= ISSUE14_BEST and above)} |")
    for learner, members in _meta_learner_ensembles(run).items():
        measured = _delta_auprc(s, learner, 16)
        if measured is None:
            continue
        tested, above = _against_finetune(comp, learner)
        lines.append(f"| ensemble of meta-learners (`{learner}`: {' + '.join(members)}), "
                     f"support 16 | >= {ISSUE14_BEST} and above finetune (p < 0.05) | "
                     f"{_shown(measured, ISSUE14_BEST)}{tested} | "
                     f"{_met(measured >= ISSUE14_BEST and above)} |")
    for size, reference in FINGERPRINT_REFERENCE.items() if protonet else ():
        measured = _delta_auprc(s, "protonet", size)
        if measured is None:
            continue
        need = max(reference, FSMOL_TARGETS["ProtoNet"]) if size == 16 else reference
        lines.append(f"| protonet, support {size} | >= {need} (fingerprint reference "
                     f"{reference}" + (", published 0.211" if size == 16 else "") +
                     f") | {_shown(measured, need)} | {_met(measured >= need)} |")
    if not lines:
        return []
    return [f"### Targets (issue 14), FS-Mol ΔAUPRC {title}", "",
            "| target | threshold | measured | |", "|---|---|---|---|", *lines, ""]


def _versus(comp: pd.DataFrame, dataset: str, learner: str, baseline: str) -> tuple[str, bool]:
    """``learner`` against ``baseline`` at 10-shot ROC-AUC in ``comp`` (a report's
    comparisons.csv): the text, and whether it is above (Wilcoxon p < 0.05 with more wins,
    or a paired bootstrap interval above 0)."""
    rows = comp[(comp["dataset"] == dataset) & (comp["learner"] == learner)
                & (comp["baseline"] == baseline) & (comp["metric"] == "roc_auc")
                & (comp["support_size"] == 20)]
    if rows.empty:
        return f"no paired test with {baseline}", False
    r = rows.iloc[0]
    if pd.notna(r.get("p_value")):
        above = r["p_value"] < 0.05 and r["wins"] > r["losses"]
        test = f"p = {r['p_value']:.2g}"
    else:
        low = float(str(r["ci95"]).strip("[]").split(",")[0])
        above = low > 0
        test = f"paired bootstrap 95% interval {r['ci95']}"
    return (f"{r['mean_difference']:+.3f} vs {baseline} ({r['wins']} of {r['n_tasks']} tasks "
            f"better; {test})"), bool(above)


def moleculenet_targets_section() -> list[str]:
    """Issue 14's Tox21 targets (the `tox21-disjoint` full run: the published split and its
    molecule-disjoint variant) and its MUV target (the `muv` full run; `muv-fsmol`: meta-trained
    on FS-Mol)."""
    lines = []
    folder = RESULTS / "tox21-disjoint-full"
    if (folder / "summary.csv").exists() and (folder / "comparisons.csv").exists():
        s, comp = pd.read_csv(folder / "summary.csv"), pd.read_csv(folder / "comparisons.csv")
        for dataset, needs in (("tox21", ("label-prior", "label-profile")),
                               ("tox21:disjoint", ("rf", "finetune"))):
            best = _best(s[s["dataset"] == dataset], "roc_auc", 20)
            if best is None:
                continue
            tests = [_versus(comp, dataset, best["learner"], name) for name in needs]
            if dataset == "tox21":
                ok = best["mean"] >= TOX21_TARGET and tests[0][1]
                lines.append(f"| Tox21 10-shot, published split | >= {TOX21_TARGET} and above "
                             f"label-prior | {best['learner']} {best['mean']:.3f}; "
                             f"{tests[0][0]} | {_met(ok)} |")
                lines.append(f"| the same, against the strongest trivial baseline | above "
                             f"label-profile (not in the issue) | {tests[1][0]} | "
                             f"{_met(tests[1][1])} |")
            else:
                lines.append(f"| Tox21 10-shot, molecule-disjoint | above rf and finetune | "
                             f"{best['learner']} {best['mean']:.3f}; "
                             + "; ".join(text for text, _ in tests)
                             + f" | {_met(all(ok for _, ok in tests))} |")
    lines += _muv_rows()
    if not lines:
        return []
    return ["### Targets (issue 14), MoleculeNet ROC-AUC (`tox21-disjoint`, `muv`, `muv-fsmol`, "
            "`muv-fsmol-unseen` full runs)",
            "", "Above: a paired test over test tasks and draws (3 Tox21 test tasks: a paired "
            "bootstrap over task x draw pairs, its 95% interval above 0).", "",
            "| target | threshold | measured | |", "|---|---|---|---|", *lines, ""]


def _muv_rows() -> list[str]:
    """MUV's target, best meta-learner against rf at 10-shot, in each run that has it: `muv`
    (trained on MUV), `muv-fsmol` (meta-trained on FS-Mol) and `muv-fsmol-unseen` (the same,
    on the MUV molecules FS-Mol never measured); with the paired test where the run has one
    against rf."""
    lines = []
    for folder, dataset, what in (
            ("muv-full", "muv", ""),
            ("muv-fsmol-full", "muv", ", learners meta-trained on FS-Mol (`muv-fsmol`)"),
            ("muv-fsmol-unseen-full", "muv:fsmol", ", the same, on molecules FS-Mol never "
             "measured (`muv-fsmol-unseen`)")):
        s = _summary(folder)
        if s is None:
            continue
        best = _best(s, "roc_auc", 20)
        rf = s[(s["learner"] == "rf") & (s["metric"] == "roc_auc") & (s["support_size"] == 20)]
        if best is None or rf.empty:
            continue
        comp = _comparisons(folder)
        tested = comp is not None and not comp[comp["baseline"] == "rf"].empty
        text = "; " + _versus(comp, dataset, best["learner"], "rf")[0] if tested else ""
        lines.append(f"| MUV 10-shot{what} | >= rf ({rf['mean'].iloc[0]:.3f}) | "
                     f"{best['learner']} {best['mean']:.3f}{text} | "
                     f"{_met(best['mean'] >= rf['mean'].iloc[0])} |")
        for learner, members in _meta_learner_ensembles(folder).items():
            row = s[(s["learner"] == learner) & (s["metric"] == "roc_auc")
                    & (s["support_size"] == 20)]
            if row.empty:
                continue
            mean = float(row["mean"].iloc[0])
            text = "; " + _versus(comp, dataset, learner, "rf")[0] if tested else ""
            lines.append(f"| the same, ensemble of meta-learners (`{learner}`: "
                         f"{' + '.join(members)}) | >= rf ({rf['mean'].iloc[0]:.3f}) | "
                         f"{mean:.3f}{text} | {_met(mean >= rf['mean'].iloc[0])} |")
    return lines


def _comparison(folder: Path, metric: str, size: int) -> pd.DataFrame:
    """The paired tests on ``metric`` at support ``size`` of ``folder``'s run group."""
    comp = _comparisons(folder.name)
    if comp is None:
        return pd.DataFrame()
    return comp[(comp["metric"] == metric) & (comp["support_size"] == size)]


def _strategy_targets(folder: Path, metric: str, size: int, guard: str | None) -> list[str]:
    """One line per strategy compared with random at ``size``: its gain on ``metric`` and,
    with ``guard``, its difference on that metric too (met: more, p < 0.05, and ``guard`` not
    significantly below random's)."""
    lines = []
    guarded = _comparison(folder, guard, size).set_index("learner") if guard else None
    for _, row in _comparison(folder, metric, size).iterrows():
        ok = row["mean_difference"] > 0 and row["p_value"] < 0.05
        text = (f"{row['mean_difference']:+.3g} ({row['wins']} better, {row['losses']} worse, "
                f"p = {row['p_value']:.2g})")
        if guarded is not None and row["learner"] in guarded.index:
            g = guarded.loc[row["learner"]]
            below = g["mean_difference"] < 0 and g["p_value"] < 0.05
            ok = ok and not below
            text += f"; {LABELS.get(guard, guard)} {g['mean_difference']:+.3f} (p = {g['p_value']:.2g})"
        lines.append(f"| {row['learner']} vs {row['baseline']} | {text} | {_met(ok)} |")
    return lines


def _cold_start_row(s: pd.DataFrame, learner: str, metric: str, split: str = "all"):
    rows = s[(s["learner"] == learner) & (s["metric"] == metric) & (s["support_size"] == 10)
             & s["item_split"].astype("string").fillna("all").eq(split)]
    return None if rows.empty else float(rows["mean"].iloc[0])


def recommendation_targets_section() -> list[str]:
    """Issue 15's targets on the movielens-latest-small full run (support 10, paired over
    users): ranking against item-knn, MAE against mf and item-mean, new-item MAE against
    item-mean for every meta-learner that has run."""
    folder = RESULTS / "movielens-latest-small-full"
    s = _summary(folder.name)
    if s is None:
        return []
    lines = []
    for metric, baseline in (("recall@10", "item-knn"), ("ndcg@10", "item-knn"), ("mae", "mf")):
        lower = not higher_is_better(metric)
        best = _best(s, metric, 10, lower_is_better=lower)
        reference = _cold_start_row(s, baseline, metric)
        if best is None or reference is None:
            continue
        test = _comparison(folder, metric, 10)
        test = test[(test["learner"] == best["learner"]) & (test["baseline"] == baseline)
                    & test["item_split"].astype("string").fillna("all").eq("all")]
        better = best["mean"] < reference if lower else best["mean"] > reference
        tested = ""
        if len(test):
            t = test.iloc[0]
            tested = f"; {t['wins']} users better, {t['losses']} worse, p = {t['p_value']:.2g}"
            better = better and t["p_value"] < 0.05
        extra = significant = ""
        if metric == "mae":
            item_mean = _cold_start_row(s, "item-mean", "mae")
            if item_mean is not None:
                extra = f" and item-mean ({item_mean:.3f})"
                better = better and best["mean"] < item_mean
            # meta-learners that tie with the best by mean may carry the paired test
            below = _comparison(folder, metric, 10)
            below = below[(below["baseline"] == baseline)
                          & below["item_split"].astype("string").fillna("all").eq("all")
                          & below["learner"].isin(s.loc[s["family"].isin(
                              META_LEARNING_FAMILIES), "learner"])
                          & (below["mean_difference"] < 0) & (below["p_value"] < 0.05)]
            if len(below) and not better:
                means = {r["learner"]: _cold_start_row(s, r["learner"], metric)
                         for _, r in below.iterrows()}
                ok = [r for _, r in below.iterrows()
                      if item_mean is None or means[r["learner"]] < item_mean]
                significant = "; below mf with p < 0.05: " + ", ".join(
                    f"{r['learner']} {means[r['learner']]:.3f} (p = {r['p_value']:.2g})"
                    for r in ok)
                better = bool(ok)
        lines.append(f"| {metric}, all items | below {baseline}" if lower else
                     f"| {metric}, all items | above {baseline}")
        lines[-1] += (f" ({reference:.3f}){extra}, p < 0.05 | {best['learner']} "
                      f"{best['mean']:.3f}{tested}{significant} | {_met(bool(better))} |")
    item_mean_new = _cold_start_row(s, "item-mean", "mae", "new")
    if item_mean_new is not None:
        meta = s[s["family"].isin(META_LEARNING_FAMILIES) & (s["metric"] == "mae")
                 & (s["support_size"] == 10)
                 & s["item_split"].astype("string").fillna("all").eq("new")]
        if len(meta):
            ok = bool((meta["mean"] <= item_mean_new).all())
            lines.append(f"| mae, new items, every meta-learner run | at most item-mean's "
                         f"({item_mean_new:.3f}) | " + ", ".join(
                             f"{r['learner']} {r['mean']:.3f}" for _, r in meta.iterrows())
                         + f" | {_met(ok)} |")
    if not lines:
        return []
    return ["### Targets (issue 15), `movielens-latest-small` full, support 10", "",
            "| target | threshold | measured | |", "|---|---|---|---|", *lines, ""]


def uncertainty_targets_section() -> list[str]:
    """Issue 16's targets from the committed runs that measure them (each one skipped until
    its run is committed)."""
    lines = []
    active = RESULTS / "fsmol-active-fast"
    if (active / "summary.csv").exists():
        rounds = pd.read_csv(active / "summary.csv")["support_size"].max()
        lines += [f"FS-Mol active protocol (`{active.name}`), {rounds} molecules labelled: "
                  "actives found against random acquisition, and the final ΔAUPRC on the "
                  "never-acquired rest (met: more actives, p < 0.05, ΔAUPRC not significantly "
                  "below random's).", "", "| strategy | actives found; ΔAUPRC | |",
                  "|---|---|---|", *_strategy_targets(active, "actives_found", rounds,
                                                       "delta_auprc"), ""]
    calibrated = RESULTS / "fsmol-fingerprint-full"
    reliability = _reliability(calibrated.name)
    if (s := _summary(calibrated.name)) is not None and reliability is not None:
        from fewshot_apps.bench.report import pooled_ece

        best = _best(s, "delta_auprc", 64, families=list(META_LEARNING_FAMILIES)
                     + list(BASELINE_FAMILIES))
        if best is not None:
            mean = s[(s["metric"].isin(["ece", "ece_floor"])) & (s["support_size"] == 64)
                     & (s["learner"] == best["learner"])].set_index("metric")["mean"]
            pooled = pooled_ece(reliability)
            pooled = pooled[(pooled["learner"] == best["learner"])
                            & (pooled["support_size"] == 64)]["ece_pooled"]
            floor = (f", the floor of exact probabilities on the same queries "
                     f"{mean['ece_floor']:.3f}" if "ece_floor" in mean else "")
            if len(pooled):
                lines += [f"Calibration (`{calibrated.name}`, support 64, best learner by "
                          f"ΔAUPRC: {best['learner']}): ECE over all "
                          f"test predictions {pooled.iloc[0]:.3f} (target <= {ISSUE16_ECE}: "
                          f"{_met(pooled.iloc[0] <= ISSUE16_ECE)}); per draw, the mean ECE is "
                          f"{mean.get('ece', float('nan')):.3f}{floor} (a few hundred query "
                          "molecules per draw).", ""]
    s = _summary("movielens-latest-small-full")
    if s is not None:
        cov = s[(s["metric"] == "coverage@90") & (s["support_size"] == 10)
                & s["item_split"].astype("string").fillna("all").eq("all")]
        if len(cov):
            low, high = ISSUE16_COVERAGE
            inside = cov["mean"].between(low, high)
            outside = ", ".join(cov.loc[~inside, "learner"])
            meta = cov["family"].isin(META_LEARNING_FAMILIES)
            lines += ["coverage@90 of the rating intervals, ml-latest-small test users, support "
                      f"10 (target {low} to {high}): " + ", ".join(
                          f"{r['learner']} {r['mean']:.3f}" for _, r in cov.iterrows())
                      + f" (inside for {int(inside.sum())} of {len(cov)}"
                      + (f"; outside: {outside}" if outside else "")
                      + f"; every meta-learner inside: {_met(bool(inside[meta].all()))}).", ""]
    onboarding = RESULTS / "movielens-onboarding-full"
    if (onboarding / "comparisons.csv").exists():
        lines += ["Onboarding (`movielens-onboarding-full`), 10 answers: recall@10 of each "
                  "question strategy against random questions, per learner.", "",
                  "| strategy | recall@10 | |", "|---|---|---|",
                  *_strategy_targets(onboarding, "recall@10", 10, None), ""]
    return ["### Targets (issue 16): uncertainty and what to ask next", "", *lines] \
        if lines else []


def suite_sections() -> list[str]:
    lines = []
    for summary_path in sorted(RESULTS.glob("*/summary.csv")):
        run = json.loads((summary_path.parent / "run.json").read_text())
        summary = pd.read_csv(summary_path)
        summary = summary[summary["metric"].isin(HEADLINE)
                          & summary["item_split"].astype("string").fillna("all").isin(["all"])]
        suite_learners = [n for part in load_suites(run["suite"], run["preset"])
                          for n in part.learners]
        group = _group_of(summary_path.parent.name)
        here = set(_learner_names(summary))
        # the command that wrote the folder: with --learners where it ran some of the suite's
        chosen = (" --learners " + ",".join(n for n in dict.fromkeys(suite_learners) if n in here)
                  if not set(suite_learners) <= here else "")
        lines += [f"### Suite `{run['suite']}`, preset `{run['preset']}` "
                  f"(`benchmarks/results/{summary_path.parent.name}/`)", "",
                  f"`fewshot-apps bench --suite {run['suite']} --preset {run['preset']}{chosen} "
                  f"--out benchmarks/results/{summary_path.parent.name}` on {machine_text(run)}.",
                  ""]
        ran = set(_learner_names(_summary(group[0])))
        missing = [n for n in dict.fromkeys(suite_learners) if n not in ran]
        # an ensemble needs its members' saved models, which the repository does not keep
        averaged = [n for n in missing if model_family(n) == ENSEMBLE_FAMILY]
        missing = [n for n in missing if n not in averaged]
        others = [f"`{folder}`" for folder in group if folder != summary_path.parent.name
                  and (RESULTS / folder / "summary.csv").exists()]
        if others:
            lines += [f"The same suite and preset, other learners or a later revision: "
                      f"{', '.join(others)}.", ""]
        if averaged:
            lines += [f"Not run: {', '.join(averaged)} (the mean of models the run saved in "
                      "`models/`, which are not committed: run it where they are).", ""]
        if missing:
            lines += [f"Not run yet (the run continues where it stopped): {', '.join(missing)}.",
                      ""]
        # a learner that a later folder of the group ran again is shown there only
        position = group.index(summary_path.parent.name)
        rerun = {folder: sorted(here & _learners_in(folder)) for folder in group[position + 1:]}
        for folder, names in rerun.items():
            if names:
                summary = summary[~_learner_names(summary).isin(names)]
                lines += [f"Run again later, shown in `{folder}`: {', '.join(names)}.", ""]
        for (dataset, metric), group in summary.groupby(["dataset", "metric"], sort=False):
            table = group.pivot_table(index=["learner", "family"], columns="support_size",
                                      values="mean", sort=False)
            table.columns = [f"support {int(c)}" for c in table.columns]
            # the suite's order (pieces run in parallel write their rows in any order)
            rank = {name: i for i, name in enumerate(suite_learners)}
            table = table.iloc[sorted(range(len(table)),
                                      key=lambda i: rank.get(table.index[i][0], len(rank)))]
            seconds = group.groupby("learner")["train_seconds"].first()
            lines += [f"{dataset}, {HEADLINE[metric]} (mean over test tasks):", "",
                      "| learner | family | " + " | ".join(table.columns) + " | training |",
                      "|---|---|" + "---|" * (len(table.columns) + 1)]
            for (learner, family), values in table.iterrows():
                took = _duration(seconds.get(learner))
                lines.append(f"| {learner} | {family} | "
                             + " | ".join(f"{v:.3f}" for v in values) + f" | {took} |")
            lines.append("")
        for dataset in summary["dataset"].unique():  # tox21:disjoint is not the published split
            published = PAR_TABLE.get(dataset)
            if published:
                lines += [f"Published 10-shot ROC-AUC on {dataset} without pre-training (PAR "
                          "paper; quoted, not measured here): "
                          + ", ".join(f"{m} {v:.3f}" for m, v in published.items()) + ".", ""]
        lines += [f"Full tables, intervals, paired tests and plots: "
                  f"`benchmarks/results/{summary_path.parent.name}/report.md`.", ""]
    return lines


def main() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise SystemExit(f"README.md has no {START} ... {END} markers")
    body = (targets_section()
            + fsmol_targets_section("fsmol-full", "with the GNN (`fsmol`, the default encoder)")
            # protonet's published-counts run predates its eval_ridge settings: its own rows
            # stay in the published-counts table (targets_section)
            + fsmol_targets_section("fsmol-published", "with the GNN at the published episode "
                                    "counts (`fsmol`, `published` preset)", protonet=False)
            + fsmol_targets_section("fsmol-fingerprint-full",
                                    "on count-ECFP (`fsmol-fingerprint`)")
            + moleculenet_targets_section()
            + recommendation_targets_section() + uncertainty_targets_section()
            + tox21_section() + suite_sections())
    reference = ("fsmol-full", "tox21-disjoint-full", "muv-full", "movielens-latest-small-full")
    missing = [name for name in reference if not (RESULTS / name).exists()]
    if missing:
        body += [f"Not committed yet: the `full`-preset reference runs {', '.join(missing)} "
                 "(hours of CPU); `fast`-preset tables use shorter training and fewer draws "
                 "than the published protocols' full budgets.", ""]
    if not body:
        body = ["No committed results yet."]
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(head + START + "\n" + "\n".join(body).rstrip() + "\n" + END + tail,
                      encoding="utf-8")
    print(f"updated {readme}")


if __name__ == "__main__":
    main()
