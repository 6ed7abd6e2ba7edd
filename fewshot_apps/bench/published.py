"""Published reference results, kept apart from measured rows (marked ``published``).

* FS-Mol: the per-task CSVs of FS-Mol's baselines and ADKF-IFT in the data directory
  (``fsmol/published/*/*.csv``): per support size, AUPRC as ``mean+/-std`` over 10 draws;
  ΔAUPRC = AUPRC - ``fraction_positive_test``; mean over the test tasks.
* PAR (Wang et al., NeurIPS 2021), Table 2, 10-shot ROC-AUC (%) without pre-training, as
  quoted in ``../shared/data/README.md``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

PAR_TABLE = {
    # dataset: {method: 10-shot ROC-AUC}
    "tox21": {"ProtoNet": 0.7498, "MAML": 0.8021, "Siamese": 0.8040, "EGNN": 0.8121,
              "IterRefLSTM": 0.8110, "PAR (reported near)": 0.821},
    "muv": {"ProtoNet": 0.6588, "MAML": 0.6390, "EGNN": 0.6520},
}

COLUMNS = ["dataset", "method", "metric", "shots", "support_size", "mean", "n_tasks", "source"]


def par_rows(dataset: str) -> pd.DataFrame:
    rows = [
        {"dataset": dataset, "method": method, "metric": "roc_auc", "shots": 10,
         "support_size": 20, "mean": value, "n_tasks": None, "source": "PAR paper, Table 2"}
        for method, value in PAR_TABLE.get(dataset, {}).items()
    ]
    return pd.DataFrame(rows, columns=COLUMNS)


def _mean_of(cell) -> float:
    if not isinstance(cell, str) or "+/-" not in cell:
        return float("nan")
    return float(cell.split("+/-")[0])


def fsmol_rows(data_dir: str | Path) -> pd.DataFrame:
    """Mean ΔAUPRC per method and support size from the published per-task CSVs."""
    folder = Path(data_dir) / "fsmol" / "published"
    rows = []
    for csv in sorted(folder.glob("*/*.csv")):
        table = pd.read_csv(csv)
        method = csv.stem.replace("_summary", "").replace("_classification", "")
        for size in (16, 32, 64, 128):
            column = f"{size}_train"
            if column not in table:
                continue
            auprc = table[column].map(_mean_of)
            delta = (auprc - table["fraction_positive_test"]).dropna()
            if len(delta):
                rows.append({"dataset": "fsmol", "method": method, "metric": "delta_auprc",
                             "shots": None, "support_size": size, "mean": float(delta.mean()),
                             "n_tasks": int(len(delta)), "source": f"{csv.parent.name}/{csv.name}"})
    return pd.DataFrame(rows, columns=COLUMNS)


def published_rows(kind: str, dataset: str, data_dir: str | Path) -> pd.DataFrame:
    if kind == "fsmol":
        return fsmol_rows(data_dir)
    if kind == "par":
        return par_rows(dataset)
    return pd.DataFrame(columns=COLUMNS)
